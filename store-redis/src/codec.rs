//! How a [`Record`] is laid out in a Redis hash.
//!
//! Fields: `version`, `data` (JSON object), `created`, `expires` and
//! `deadline` (Unix milliseconds as decimal text), `writer` (the token of
//! the last create or save), and `principal` and `expiry` (JSON) when the
//! record has them. The key itself is the storage key, so it is not
//! repeated inside.

use std::io::Write as _;

use redis::{RedisWrite, ToRedisArgs, Value};
use session_core::time::OffsetDateTime;
use session_core::{from_unix_millis, to_unix_millis, Data, Record, StorageKey};

use crate::error::Error;

/// The fields a record is read back from, in the order [`decode`] takes
/// their values (an `HMGET` reply).
pub(crate) const FIELDS: [&str; 7] = [
    "version",
    "data",
    "created",
    "expires",
    "deadline",
    "principal",
    "expiry",
];

/// What decoding a stored field gives.
type Decoded<T> = Result<T, Error>;

/// A storage key as 64 lower-case hex digits: a record's key without its
/// prefix, and its member in a principal's set.
pub(crate) fn hex(key: &StorageKey) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";

    let mut out = [0; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(key.as_bytes()) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

/// The Redis key of a record, written straight into a command: the
/// prefix, then the storage key in hex.
#[derive(Clone, Copy)]
pub(crate) struct RecordKey<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) key: &'a StorageKey,
}

impl RecordKey<'_> {
    /// The key as text, for callers outside a command.
    pub(crate) fn to_text(self) -> String {
        let mut text = String::with_capacity(self.prefix.len() + 64);
        text.push_str(self.prefix);
        // Hex digits are ASCII.
        text.extend(hex(self.key).iter().map(|&digit| char::from(digit)));
        text
    }
}

impl ToRedisArgs for RecordKey<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(&hex(self.key));
    }
}

/// A record as the create and save scripts take it: the field and value
/// pairs of one `HSET`, with `version`, `data`, `created`, `expires`,
/// `deadline` and `writer` first and in that order (the scripts read
/// them by position), then `principal` and `expiry` when it has them.
pub(crate) struct RecordFields<'a> {
    pub(crate) record: &'a Record,
    /// The token naming this one write (see `create.lua`).
    pub(crate) writer: u64,
}

impl ToRedisArgs for RecordFields<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let record = self.record;

        out.write_arg(b"version");
        record.version.write_redis_args(out);
        out.write_arg(b"data");
        out.write_arg(record.data.as_str().as_bytes());
        out.write_arg(b"created");
        to_unix_millis(record.created_at).write_redis_args(out);
        out.write_arg(b"expires");
        to_unix_millis(record.expires_at).write_redis_args(out);
        out.write_arg(b"deadline");
        to_unix_millis(record.deadline).write_redis_args(out);
        out.write_arg(b"writer");
        self.writer.write_redis_args(out);

        if let Some(principal) = &record.principal {
            out.write_arg(b"principal");
            out.write_arg(principal.as_bytes());
        }
        if let Some(expiry) = &record.expiry {
            out.write_arg(b"expiry");
            let mut arg = out.writer_for_next_arg();
            let _ = serde_json::to_writer(&mut arg, expiry);
        }
    }

    fn num_of_args(&self) -> usize {
        let optional = usize::from(self.record.principal.is_some())
            + usize::from(self.record.expiry.is_some());
        2 * (6 + optional)
    }
}

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
    let [version, data, created, expires, deadline, principal, expiry] = values;

    let data = std::str::from_utf8(bytes(data, "data")?)
        .map_err(|_| Error::Malformed { field: "data" })
        .and_then(|text| {
            Data::parse(text).map_err(|source| Error::Json {
                field: "data",
                source,
            })
        })?;
    let expiry = optional_bytes(expiry, "expiry")?
        .map(serde_json::from_slice)
        .transpose()
        .map_err(|source| Error::Json {
            field: "expiry",
            source,
        })?;
    let principal = optional_bytes(principal, "principal")?
        .map(|bytes| std::str::from_utf8(bytes).map(str::to_owned))
        .transpose()
        .map_err(|_| Error::Malformed { field: "principal" })?;

    Ok(Some(Record {
        key,
        data,
        version: number(version, "version")?,
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
    optional_bytes(value, field)?.ok_or(Error::Malformed { field })
}

fn number<T: std::str::FromStr>(value: &Value, field: &'static str) -> Decoded<T> {
    std::str::from_utf8(bytes(value, field)?)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(Error::Malformed { field })
}

fn time(value: &Value, field: &'static str) -> Decoded<OffsetDateTime> {
    from_unix_millis(number(value, field)?).ok_or(Error::Malformed { field })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use session_core::time::Duration;
    use session_core::{truncate_to_millis, Expiry, Id};

    use super::*;

    fn record() -> Record {
        let now = truncate_to_millis(OffsetDateTime::now_utc());
        let data = Data::try_from(json!({ "user": "alice", "n": 1.5 })).expect("an object");

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

    /// The field and value pairs the scripts are given for `record`.
    fn pairs(record: &Record) -> Vec<(String, Vec<u8>)> {
        let args = RecordFields { record, writer: 7 }.to_redis_args();
        assert_eq!(args.len(), RecordFields { record, writer: 7 }.num_of_args());
        args.chunks_exact(2)
            .map(|pair| {
                let name = String::from_utf8(pair[0].clone()).expect("field names are text");
                (name, pair[1].clone())
            })
            .collect()
    }

    /// The `HMGET` reply for a hash holding `pairs`.
    fn as_read(pairs: &[(String, Vec<u8>)]) -> Value {
        let values = FIELDS
            .iter()
            .map(|field| {
                pairs
                    .iter()
                    .find(|(name, _)| name == field)
                    .map_or(Value::Nil, |(_, value)| Value::BulkString(value.clone()))
            })
            .collect();
        Value::Array(values)
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
    fn record_round_trips_through_its_fields() {
        let record = record();

        let back = decode(record.key, values(&as_read(&pairs(&record)))).expect("decodes");

        assert_eq!(back, Some(record));
    }

    #[test]
    fn scripts_find_the_fixed_fields_by_position() {
        let record = record();
        let names: Vec<String> = pairs(&record).into_iter().map(|(name, _)| name).collect();

        assert_eq!(
            names,
            [
                "version",
                "data",
                "created",
                "expires",
                "deadline",
                "writer",
                "principal",
                "expiry"
            ]
        );
        assert_eq!(pairs(&record)[5].1, b"7");
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let record = Record {
            principal: None,
            expiry: None,
            ..record()
        };
        let pairs = pairs(&record);

        assert_eq!(pairs.len(), 6);
        let back = decode(record.key, values(&as_read(&pairs))).expect("decodes");
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
        let good = as_read(&pairs(&record));
        let cases: [(&str, &[u8]); 5] = [
            ("version", b"-1"),
            ("expires", b"soon"),
            ("created", b"99999999999999999999"),
            ("data", b"[1, 2]"),
            ("principal", b"\xff\xfe"),
        ];

        for (field, value) in cases {
            let mut reply = good.clone();
            set(&mut reply, field, Value::BulkString(value.to_vec()));

            let error = decode(record.key, values(&reply)).expect_err(field);

            assert!(error.is_malformed_record(), "{field}: {error}");
        }

        let mut missing = good;
        set(&mut missing, "deadline", Value::Nil);
        assert!(decode(record.key, values(&missing)).is_err());
    }

    #[test]
    fn keys_are_lower_case_hex() {
        let key = Id::random().storage_key();

        let text = RecordKey {
            prefix: "p:",
            key: &key,
        }
        .to_text();

        assert_eq!(text, format!("p:{}", key.to_hex()));
        let mut args = Vec::new();
        RecordKey {
            prefix: "p:",
            key: &key,
        }
        .write_redis_args(&mut args);
        assert_eq!(args, [text.into_bytes()]);
    }
}
