//! Records of the previous layout, one hash per record, still read so
//! that an upgrade logs nobody out.
//!
//! Fields: `version`, `data` (JSON object), `created`, `expires` and
//! `deadline` (Unix milliseconds as decimal text), and `principal`,
//! `expiry` (JSON) and `writer` (the last write's token; none before
//! write tokens came) when the record has them. Only reads
//! and touches leave such a record a hash; a save or create rewrites it
//! as a string.

use redis::Value;
use session_core::time::OffsetDateTime;
use session_core::{from_unix_millis, Record, StorageKey};

use super::{parse_data, parse_expiry, signed, unsigned, Decoded, WIDTH};
use crate::error::Error;

/// The fields a record is read back from, in the order [`decode`] takes
/// their values (an `HMGET` reply).
pub(crate) const FIELDS: [&str; 8] = [
    "version",
    "data",
    "created",
    "expires",
    "deadline",
    "principal",
    "expiry",
    "writer",
];

/// The values of [`FIELDS`] in an `HMGET` reply.
pub(crate) fn field_values(reply: &Value) -> Decoded<&[Value; FIELDS.len()]> {
    let unexpected = Error::UnexpectedRead { command: "HMGET" };
    let Value::Array(values) = reply else {
        return Err(unexpected);
    };
    values.as_slice().try_into().map_err(|_| unexpected)
}

/// Rebuilds the record stored under `key` from the values of [`FIELDS`];
/// `None` when the hash holds none of them.
pub(crate) fn decode(key: StorageKey, values: &[Value; FIELDS.len()]) -> Decoded<Option<Record>> {
    if values.iter().all(|value| matches!(value, Value::Nil)) {
        return Ok(None);
    }
    let [version, data, created, expires, deadline, principal, expiry, writer] = values;

    // Only the scripts read the writer, but a wide one would shift every
    // number after it in the header they build.
    if let Some(writer) = optional_bytes(writer, "writer")? {
        unsigned(within_width(writer, "writer")?, "writer")?;
    }

    let data = parse_data(bytes(data, "data")?)?;
    let expiry = optional_bytes(expiry, "expiry")?
        .map(parse_expiry)
        .transpose()?;
    let principal = optional_bytes(principal, "principal")?
        .map(|bytes| std::str::from_utf8(bytes).map(str::to_owned))
        .transpose()
        .map_err(|_| Error::Malformed { field: "principal" })?;

    Ok(Some(Record {
        key,
        data,
        version: version_of(version)?,
        created_at: time(created, "created")?,
        expires_at: time(expires, "expires")?,
        deadline: time(deadline, "deadline")?,
        principal,
        expiry,
    }))
}

fn optional_bytes<'a>(value: &'a Value, field: &'static str) -> Decoded<Option<&'a [u8]>> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => Ok(Some(bytes)),
        _ => Err(Error::Malformed { field }),
    }
}

fn bytes<'a>(value: &'a Value, field: &'static str) -> Decoded<&'a [u8]> {
    optional_bytes(value, field)?.ok_or_else(|| Error::Malformed { field })
}

/// A field's number, in the only forms the scripts read the same way
/// (`read.lua` pads them into a header): plain decimal digits, with a
/// leading `-` for a time, at most 20 characters. `+3` or a 23-digit
/// `3` would load here as one thing and be written there as another.
fn digits<'a>(value: &'a Value, field: &'static str) -> Decoded<&'a [u8]> {
    within_width(bytes(value, field)?, field)
}

fn within_width<'a>(text: &'a [u8], field: &'static str) -> Decoded<&'a [u8]> {
    if text.len() > WIDTH {
        return Err(Error::Malformed { field });
    }
    Ok(text)
}

fn version_of(value: &Value) -> Decoded<u64> {
    unsigned(digits(value, "version")?, "version")
}

fn time(value: &Value, field: &'static str) -> Decoded<OffsetDateTime> {
    from_unix_millis(signed(digits(value, field)?, field)?)
        .ok_or_else(|| Error::Malformed { field })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::record;
    use session_core::to_unix_millis;

    /// The `HMGET` reply for the hash an earlier version wrote.
    fn as_read(record: &Record) -> Value {
        let text = |value: String| Value::BulkString(value.into_bytes());
        let time = |at| text(to_unix_millis(at).to_string());
        Value::Array(vec![
            text(record.version.to_string()),
            text(record.data.as_str().to_owned()),
            time(record.created_at),
            time(record.expires_at),
            time(record.deadline),
            record.principal.clone().map_or(Value::Nil, text),
            record.expiry.as_ref().map_or(Value::Nil, |expiry| {
                text(serde_json::to_string(expiry).expect("json"))
            }),
            text("12345".to_owned()),
        ])
    }

    fn values(reply: &Value) -> &[Value; FIELDS.len()] {
        field_values(reply).expect("an HMGET reply")
    }

    fn set(reply: &mut Value, field: &str, value: Value) {
        let Value::Array(values) = reply else {
            unreachable!("as_read builds an array");
        };
        let at = FIELDS.iter().position(|name| *name == field).expect(field);
        values[at] = value;
    }

    #[test]
    fn a_hash_record_still_decodes() {
        let record = record();

        let back = decode(record.key, values(&as_read(&record))).expect("decodes");

        assert_eq!(back, Some(record));
    }

    #[test]
    fn a_hash_without_any_field_is_no_record() {
        let reply = Value::Array(vec![Value::Nil; FIELDS.len()]);

        let decoded = decode(record().key, values(&reply)).expect("decodes");

        assert_eq!(decoded, None);
    }

    #[test]
    fn damaged_fields_are_decode_errors() {
        let record = record();
        let good = as_read(&record);
        let cases: [(&str, &[u8]); 12] = [
            ("version", b"-1"),
            ("version", b"+3"),
            ("version", b"00000000000000000000003"),
            ("expires", b"+1796374450000"),
            ("deadline", b" 1796374450000"),
            ("expires", b"soon"),
            ("created", b"99999999999999999999"),
            ("data", b"[1, 2]"),
            ("principal", b"\xff\xfe"),
            ("writer", b"100000000000000000000"),
            ("writer", b"+1"),
            ("writer", b""),
        ];

        for (field, value) in cases {
            let mut reply = good.clone();
            set(&mut reply, field, Value::BulkString(value.to_vec()));

            let error = decode(record.key, values(&reply)).expect_err(field);

            assert!(error.is_malformed_record(), "{field}: {error}");
        }

        let mut missing = good.clone();
        set(&mut missing, "deadline", Value::Nil);
        assert!(decode(record.key, values(&missing)).is_err());

        // Hashes written before write tokens have no writer.
        let mut no_writer = good;
        set(&mut no_writer, "writer", Value::Nil);
        assert_eq!(
            decode(record.key, values(&no_writer)).ok(),
            Some(Some(record))
        );
    }
}
