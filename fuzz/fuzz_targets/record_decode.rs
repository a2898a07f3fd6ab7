//! Stored record fields as every store hands them to `session-core`: the
//! data JSON, the expiry override JSON and millisecond timestamps. They
//! must decode or fail cleanly, and what decodes must encode back to the
//! same thing and give sane expiry arithmetic.
//!
//! Input layout: `data \0 expiry \0 times`, where `times` holds two
//! little-endian i64 millisecond values (creation, now), zero-padded.

#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{from_unix_millis, to_unix_millis, Data, Record, SessionConfig, StorageKey};

fn millis(bytes: &[u8], at: usize) -> i64 {
    let mut word = [0u8; 8];
    for (i, slot) in word.iter_mut().enumerate() {
        *slot = bytes.get(at + i).copied().unwrap_or(0);
    }
    i64::from_le_bytes(word)
}

fuzz_target!(|input: &[u8]| {
    let mut parts = input.splitn(3, |&b| b == 0);
    let data = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let expiry = parts.next().map(String::from_utf8_lossy);
    let times = parts.next().unwrap_or_default();

    // Data checks the text without building a map; it must accept exactly
    // what a map of values accepts, and hold the same values.
    let map = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&data);
    let parsed = Data::parse(&data);
    assert_eq!(parsed.is_ok(), map.is_ok(), "{parsed:?} vs {map:?}");
    let (Ok(data), Ok(map)) = (parsed, map) else {
        return;
    };
    assert_eq!(data.to_map(), map);
    // Reading one value finds it in the text without a parser; every key
    // must still read back as the map has it.
    assert_eq!(data.len(), map.len());
    for (key, value) in &map {
        assert_eq!(data.get(key).as_ref(), Some(value), "{key:?}");
    }
    let Ok(expiry) = Record::parse_expiry(expiry.as_deref()) else {
        return;
    };
    let (Some(created), Some(now)) = (
        from_unix_millis(millis(times, 0)),
        from_unix_millis(millis(times, 8)),
    ) else {
        return;
    };
    assert_eq!(to_unix_millis(created), millis(times, 0));

    let policy = expiry.unwrap_or_default();
    assert!(policy.idle().is_positive() && policy.absolute().is_positive());
    let deadline = policy.deadline(created);
    let expires_at = policy.expires_at(created, now);
    assert!(expires_at <= deadline);
    assert!(!SessionConfig::default()
        .touch_after_for(&policy)
        .is_negative());

    let record = Record {
        key: StorageKey::from_bytes([0; 32]),
        data,
        version: 1,
        created_at: created,
        expires_at,
        deadline,
        principal: None,
        expiry,
    };
    assert_eq!(record.is_expired(now), expires_at <= now);

    // What a store writes back must read back as the same record.
    let data_again = Data::parse(record.data.as_str()).expect("own data JSON");
    let expiry_again =
        Record::parse_expiry(record.expiry_json().as_deref()).expect("own expiry JSON");
    assert_eq!(data_again, record.data);
    assert_eq!(expiry_again, record.expiry);
});
