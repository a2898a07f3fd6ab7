//! How a [`Record`] is laid out in a Redis hash.
//!
//! Fields: `version`, `data` (JSON object), `created`, `expires` and
//! `deadline` (Unix milliseconds as decimal text), and `principal` and
//! `expiry` (JSON) when the record has them. The key itself is the
//! storage key, so it is not repeated inside.

use std::collections::HashMap;

use session_core::time::OffsetDateTime;
use session_core::{from_unix_millis, to_unix_millis, Record, StorageKey};

use crate::error::Error;

/// A hash as `HGETALL` returns it.
pub(crate) type Fields = HashMap<Vec<u8>, Vec<u8>>;

/// What decoding a stored field gives.
type Decoded<T> = Result<T, Error>;

/// The script arguments that carry a record, in the order `write.lua`
/// reads them (ARGV[4] to ARGV[11]).
pub(crate) fn record_args(record: &Record) -> [Vec<u8>; 8] {
    let principal = record.principal.as_deref();

    [
        record.version.to_string().into_bytes(),
        record.data_json().into_bytes(),
        millis_text(record.created_at),
        millis_text(record.expires_at),
        millis_text(record.deadline),
        if principal.is_some() {
            b"1".to_vec()
        } else {
            b"0".to_vec()
        },
        principal.unwrap_or_default().as_bytes().to_vec(),
        record.expiry_json().unwrap_or_default().into_bytes(),
    ]
}

/// Unix milliseconds as decimal text, the form the scripts compare.
pub(crate) fn millis_text(at: OffsetDateTime) -> Vec<u8> {
    to_unix_millis(at).to_string().into_bytes()
}

/// Rebuilds the record stored under `key` from its hash fields.
pub(crate) fn decode(key: StorageKey, fields: &Fields) -> Decoded<Record> {
    let data_text = text(fields, "data")?;
    let data = Record::parse_data(data_text).map_err(|source| Error::Json {
        field: "data",
        source,
    })?;

    let expiry_text = optional_text(fields, "expiry")?;
    let expiry = Record::parse_expiry(expiry_text).map_err(|source| Error::Json {
        field: "expiry",
        source,
    })?;

    Ok(Record {
        key,
        data,
        version: number(fields, "version")?,
        created_at: time(fields, "created")?,
        expires_at: time(fields, "expires")?,
        deadline: time(fields, "deadline")?,
        principal: optional_text(fields, "principal")?.map(str::to_owned),
        expiry,
    })
}

fn optional_text<'a>(fields: &'a Fields, field: &'static str) -> Decoded<Option<&'a str>> {
    fields
        .get(field.as_bytes())
        .map(|bytes| std::str::from_utf8(bytes).map_err(|_| Error::Malformed { field }))
        .transpose()
}

fn text<'a>(fields: &'a Fields, field: &'static str) -> Decoded<&'a str> {
    optional_text(fields, field)?.ok_or(Error::Malformed { field })
}

fn number<T: std::str::FromStr>(fields: &Fields, field: &'static str) -> Decoded<T> {
    text(fields, field)?
        .parse()
        .map_err(|_| Error::Malformed { field })
}

fn time(fields: &Fields, field: &'static str) -> Decoded<OffsetDateTime> {
    from_unix_millis(number(fields, field)?).ok_or(Error::Malformed { field })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use session_core::time::Duration;
    use session_core::{truncate_to_millis, Expiry, Id};

    use super::*;

    fn record() -> Record {
        let now = truncate_to_millis(OffsetDateTime::now_utc());
        let serde_json::Value::Object(data) = json!({ "user": "alice", "n": 1.5 }) else {
            unreachable!("a JSON object literal");
        };

        Record {
            key: Id::random().storage_key(),
            data,
            version: u64::MAX,
            created_at: now,
            expires_at: now + Duration::hours(1),
            deadline: now + Duration::days(30),
            principal: Some("user 7 {x}".to_owned()),
            expiry: Some(Expiry::new(Duration::minutes(5), Duration::days(30))),
        }
    }

    /// The hash `write.lua` stores for these arguments.
    fn as_stored(args: [Vec<u8>; 8]) -> Fields {
        let [version, data, created, expires, deadline, flag, principal, expiry] = args;
        let mut fields = Fields::new();
        let mut put = |name: &str, value| fields.insert(name.as_bytes().to_vec(), value);

        put("version", version);
        put("data", data);
        put("created", created);
        put("expires", expires);
        put("deadline", deadline);
        if flag == b"1" {
            put("principal", principal);
        }
        if !expiry.is_empty() {
            put("expiry", expiry);
        }
        fields
    }

    #[test]
    fn record_round_trips_through_its_fields() {
        let record = record();

        let fields = as_stored(record_args(&record));
        let back = decode(record.key, &fields).expect("decodes");

        assert_eq!(back, record);
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let record = Record {
            principal: None,
            expiry: None,
            ..record()
        };
        let args = record_args(&record);

        assert_eq!(args[5], b"0");
        let fields = as_stored(args);

        assert_eq!(fields.len(), 5);
        assert_eq!(decode(record.key, &fields).expect("decodes"), record);
    }

    #[test]
    fn damaged_fields_are_decode_errors() {
        let record = record();
        let good = as_stored(record_args(&record));
        let cases: [(&str, &[u8]); 5] = [
            ("version", b"-1"),
            ("expires", b"soon"),
            ("created", b"99999999999999999999"),
            ("data", b"[1, 2]"),
            ("principal", b"\xff\xfe"),
        ];

        for (field, value) in cases {
            let mut fields = good.clone();
            fields.insert(field.as_bytes().to_vec(), value.to_vec());

            let error = decode(record.key, &fields).expect_err(field);

            assert!(error.is_malformed_record(), "{field}: {error}");
        }

        let mut missing = good;
        missing.remove(&b"deadline"[..]);
        assert!(decode(record.key, &missing).is_err());
    }
}
