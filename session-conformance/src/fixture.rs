//! Records, keys, times and namespaces the cases are built from.

use serde_json::Value;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{truncate_to_millis, Data, Id, Record, StorageKey};

/// How long the cases' records live in real time. Backends with their own
/// real-time expiry (Redis) keep them for at least this long, so cases
/// expire records by moving `now` forward, never by sleeping.
pub(crate) const LIFETIME: Duration = Duration::hours(1);

/// The absolute lifetime of the cases' records.
pub(crate) const ABSOLUTE: Duration = Duration::days(30);

/// One millisecond, the resolution every store keeps.
pub(crate) const MS: Duration = Duration::milliseconds(1);

/// The current time, truncated to milliseconds as records are.
pub(crate) fn now() -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc())
}

/// A storage key no other case uses.
pub(crate) fn fresh_key() -> StorageKey {
    Id::random().storage_key()
}

/// A namespace name no other case uses: `sc_` and 16 hex digits, valid as
/// a key prefix and as an unquoted SQL identifier.
pub(crate) fn fresh_namespace() -> String {
    let hex = fresh_key().to_hex();
    format!("sc_{}", &hex[..16])
}

/// A JSON object; anything else becomes an empty one.
pub(crate) fn data(value: Value) -> Data {
    Data::try_from(value).unwrap_or_default()
}

/// A fresh record created at `t0`: version 1, live for [`LIFETIME`].
pub(crate) fn record(key: StorageKey, t0: OffsetDateTime, data: Data) -> Record {
    Record {
        key,
        data,
        version: 1,
        created_at: t0,
        expires_at: t0 + LIFETIME,
        deadline: t0 + ABSOLUTE,
        principal: None,
        expiry: None,
    }
}

/// A fresh record under a fresh key with one small value.
pub(crate) fn simple(t0: OffsetDateTime, user: &str) -> Record {
    record(fresh_key(), t0, data(serde_json::json!({ "user": user })))
}

/// The next version of `record` (for a save expecting its version) with
/// `data` as its whole data.
pub(crate) fn next(record: &Record, data: Data) -> Record {
    Record {
        data,
        version: record.version + 1,
        ..record.clone()
    }
}
