//! Records as the memory store keeps them: one shared byte buffer each.
//!
//! A decoded [`Record`] holds its data as a `serde_json::Map`, a tree of
//! small allocations several times the size of the JSON text. Keeping the
//! text instead, with the rest of the record in a fixed header in the same
//! allocation, is what lets a million sessions fit in a few hundred MiB;
//! a load parses the text, which costs about what copying the tree did.
//!
//! Layout, integers little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | flags: bit 0 principal present, bit 1 expiry present |
//! | 8 | version |
//! | 12 × 3 | `created_at`, `expires_at`, `deadline`: Unix ms (i64), then the ns below (u32) |
//! | 25 | expiry, if present: idle and absolute as (seconds i64, nanoseconds i32), cookie |
//! | 4 + n | principal, if present: length, then UTF-8 |
//! | rest | data as JSON text |

use std::fmt;
use std::sync::Arc;

use session_core::time::{Duration, OffsetDateTime};
use session_core::{CookieLifetime, Data, Expiry, Record, StorageKey};

const HAS_PRINCIPAL: u8 = 1;
const HAS_EXPIRY: u8 = 2;

const VERSION_AT: usize = 1;
const CREATED_AT: usize = 9;
const EXPIRES_AT: usize = 21;
const DEADLINE_AT: usize = 33;
const FIXED_LEN: usize = 45;
const STAMP_LEN: usize = 12;
const NANOS_PER_MILLI: i128 = 1_000_000;

/// A time as the header keeps it. Records carry whole milliseconds, but a
/// store reads back exactly what it was given, so the rest is kept too.
/// Ordered as the times are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    millis: i64,
    nanos: u32,
}

impl Stamp {
    /// `at`, split at the millisecond below it.
    pub(crate) fn of(at: OffsetDateTime) -> Self {
        let total = at.unix_timestamp_nanos();
        // Every OffsetDateTime is a few hundred thousand years from the
        // epoch at most, far inside i64 milliseconds.
        let millis = i64::try_from(total.div_euclid(NANOS_PER_MILLI)).unwrap_or(i64::MAX);
        let nanos = u32::try_from(total.rem_euclid(NANOS_PER_MILLI)).unwrap_or(0);
        Self { millis, nanos }
    }

    /// Whole milliseconds since the Unix epoch, for tests.
    #[cfg(test)]
    pub(crate) fn from_millis(millis: i64) -> Self {
        Self { millis, nanos: 0 }
    }

    fn total(self) -> i128 {
        i128::from(self.millis) * NANOS_PER_MILLI + i128::from(self.nanos)
    }

    /// Nanoseconds from `earlier` to this stamp (negative if it is later).
    pub(crate) fn nanos_since(self, earlier: Self) -> i128 {
        self.total() - earlier.total()
    }

    fn time(self) -> Result<OffsetDateTime, Corrupt> {
        if i128::from(self.nanos) >= NANOS_PER_MILLI {
            return Err(Corrupt("bad sub-millisecond part"));
        }
        OffsetDateTime::from_unix_timestamp_nanos(self.total())
            .map_err(|_| Corrupt("time out of range"))
    }

    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.millis.to_le_bytes());
        out.extend_from_slice(&self.nanos.to_le_bytes());
    }

    fn read(bytes: &[u8], at: usize) -> Option<Self> {
        Some(Self {
            millis: read_i64(bytes, at)?,
            nanos: read_u32(bytes, at + 8)?,
        })
    }
}
const EXPIRY_LEN: usize = 25;

/// One record, encoded; clones share the bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Packed(Arc<[u8]>);

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes hold session data, which must never reach a log.
        f.debug_struct("Packed")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

/// Why a stored buffer does not decode.
#[derive(Debug)]
pub(crate) struct Corrupt(&'static str);

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compact session record: {}", self.0)
    }
}

impl std::error::Error for Corrupt {}

/// The fields of a [`Packed`] record, borrowed, data still as text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) version: u64,
    pub(crate) created_at: Stamp,
    pub(crate) expires_at: Stamp,
    pub(crate) deadline: Stamp,
    pub(crate) expiry: Option<Expiry>,
    pub(crate) principal: Option<&'a str>,
    pub(crate) data: &'a str,
}

impl Packed {
    /// Encodes `record`; its key is not kept, since the cache has it.
    pub(crate) fn encode(record: &Record) -> Self {
        let principal = record.principal.as_deref();
        let head = FIXED_LEN + EXPIRY_LEN + principal.map_or(0, |p| 4 + p.len());
        // Room for the ~100 bytes of JSON a typical session holds.
        let mut out = Vec::with_capacity(head + 128);

        let mut flags = 0;
        if principal.is_some() {
            flags |= HAS_PRINCIPAL;
        }
        if record.expiry.is_some() {
            flags |= HAS_EXPIRY;
        }
        out.push(flags);
        out.extend_from_slice(&record.version.to_le_bytes());
        for at in [record.created_at, record.expires_at, record.deadline] {
            Stamp::of(at).put(&mut out);
        }
        if let Some(expiry) = &record.expiry {
            put_duration(&mut out, expiry.idle());
            put_duration(&mut out, expiry.absolute());
            out.push(match expiry.cookie() {
                CookieLifetime::Persistent => 0,
                CookieLifetime::BrowserSession => 1,
            });
        }
        if let Some(principal) = principal {
            // A principal of 4 GiB is not a principal; clamp rather than
            // panic, and let the decoder's length check catch it.
            let len = u32::try_from(principal.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(principal.as_bytes());
        }
        out.extend_from_slice(record.data.as_str().as_bytes());
        Self(Arc::from(out))
    }

    /// A copy with `expires_at` replaced and every other byte kept, so a
    /// touch never rewrites data.
    pub(crate) fn with_expires_at(&self, expires_at: Stamp) -> Self {
        let mut bytes = self.0.to_vec();
        let mut stamp = Vec::with_capacity(STAMP_LEN);
        expires_at.put(&mut stamp);
        if let Some(field) = bytes.get_mut(EXPIRES_AT..DEADLINE_AT) {
            field.copy_from_slice(&stamp);
        }
        Self(Arc::from(bytes))
    }

    /// The record's `expires_at`; `None` when the buffer is too short to
    /// hold one.
    pub(crate) fn expires_at(&self) -> Option<Stamp> {
        Stamp::read(&self.0, EXPIRES_AT)
    }

    /// Whether the record is dead at `now`. A buffer that does not even
    /// hold an expiry counts as dead.
    pub(crate) fn is_expired(&self, now: Stamp) -> bool {
        self.expires_at().is_none_or(|at| at <= now)
    }

    /// The record's `deadline`; `None` when the buffer is too short to
    /// hold one.
    pub(crate) fn deadline(&self) -> Option<Stamp> {
        Stamp::read(&self.0, DEADLINE_AT)
    }

    /// The version; `None` for a buffer too short to hold one.
    pub(crate) fn version(&self) -> Option<u64> {
        read_u64(&self.0, VERSION_AT)
    }

    /// The principal, if the record has one and it decodes.
    pub(crate) fn principal(&self) -> Option<&str> {
        self.view().ok().and_then(|view| view.principal)
    }

    /// The header decoded, data left as text.
    pub(crate) fn view(&self) -> Result<View<'_>, Corrupt> {
        let bytes = &*self.0;
        let short = Corrupt("truncated");
        let flags = *bytes.first().ok_or(Corrupt("empty"))?;
        if flags & !(HAS_PRINCIPAL | HAS_EXPIRY) != 0 {
            return Err(Corrupt("unknown flags"));
        }
        let version = read_u64(bytes, VERSION_AT).ok_or(short)?;
        let created_at = Stamp::read(bytes, CREATED_AT).ok_or(Corrupt("truncated"))?;
        let expires_at = Stamp::read(bytes, EXPIRES_AT).ok_or(Corrupt("truncated"))?;
        let deadline = Stamp::read(bytes, DEADLINE_AT).ok_or(Corrupt("truncated"))?;

        let mut at = FIXED_LEN;
        let expiry = if flags & HAS_EXPIRY == 0 {
            None
        } else {
            let idle = read_duration(bytes, at)?;
            let absolute = read_duration(bytes, at + 12)?;
            let cookie = match bytes.get(at + 24) {
                Some(0) => CookieLifetime::Persistent,
                Some(1) => CookieLifetime::BrowserSession,
                _ => return Err(Corrupt("bad cookie lifetime")),
            };
            at += EXPIRY_LEN;
            Some(Expiry::new(idle, absolute).with_cookie(cookie))
        };

        let principal = if flags & HAS_PRINCIPAL == 0 {
            None
        } else {
            let len = read_u32(bytes, at).ok_or(Corrupt("truncated"))?;
            let len = usize::try_from(len).map_err(|_| Corrupt("principal too long"))?;
            at += 4;
            let end = at.checked_add(len).ok_or(Corrupt("principal too long"))?;
            let text = bytes.get(at..end).ok_or(Corrupt("truncated principal"))?;
            at = end;
            Some(std::str::from_utf8(text).map_err(|_| Corrupt("principal not UTF-8"))?)
        };

        let data = bytes.get(at..).ok_or(Corrupt("truncated"))?;
        let data = std::str::from_utf8(data).map_err(|_| Corrupt("data not UTF-8"))?;

        Ok(View {
            version,
            created_at,
            expires_at,
            deadline,
            expiry,
            principal,
            data,
        })
    }

    /// The record filed under `key`.
    pub(crate) fn decode(&self, key: StorageKey) -> Result<Record, DecodeError> {
        let view = self.view()?;
        let data = Data::parse(view.data)?;
        Ok(Record {
            key,
            data,
            version: view.version,
            created_at: view.created_at.time()?,
            expires_at: view.expires_at.time()?,
            deadline: view.deadline.time()?,
            principal: view.principal.map(str::to_owned),
            expiry: view.expiry,
        })
    }

    /// Bytes of the encoding, for tests that corrupt it.
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        Self(Arc::from(bytes))
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A stored record that no longer decodes.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// The header is wrong.
    Corrupt(Corrupt),
    /// The data is not a JSON object.
    Json(serde_json::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt(corrupt) => corrupt.fmt(f),
            Self::Json(error) => write!(f, "compact session record data: {error}"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Corrupt(corrupt) => Some(corrupt),
            Self::Json(error) => Some(error),
        }
    }
}

impl From<Corrupt> for DecodeError {
    fn from(corrupt: Corrupt) -> Self {
        Self::Corrupt(corrupt)
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(error: serde_json::Error) -> Self {
        Self::Json(error)
    }
}

fn put_duration(out: &mut Vec<u8>, duration: Duration) {
    out.extend_from_slice(&duration.whole_seconds().to_le_bytes());
    out.extend_from_slice(&duration.subsec_nanoseconds().to_le_bytes());
}

fn read_duration(bytes: &[u8], at: usize) -> Result<Duration, Corrupt> {
    let seconds = read_i64(bytes, at).ok_or(Corrupt("truncated expiry"))?;
    let nanos = read_u32(bytes, at + 8).ok_or(Corrupt("truncated expiry"))?;
    let nanos = i32::from_le_bytes(nanos.to_le_bytes());
    if nanos.unsigned_abs() >= 1_000_000_000 {
        return Err(Corrupt("bad expiry duration"));
    }
    Ok(Duration::new(seconds, nanos))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    read_u64(bytes, at).map(|value| i64::from_le_bytes(value.to_le_bytes()))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use session_core::time::Duration;
    use session_core::{from_unix_millis, to_unix_millis, Id};

    use super::*;

    fn record(data: serde_json::Value) -> Record {
        let now = from_unix_millis(1_764_000_000_123).expect("time");
        Record {
            key: Id::random().storage_key(),
            data: Data::try_from(data).expect("object"),
            version: 1,
            created_at: now,
            expires_at: now + Duration::milliseconds(3_600_001),
            deadline: now + Duration::days(30),
            principal: None,
            expiry: None,
        }
    }

    fn round_trip(record: &Record) -> Record {
        Packed::encode(record).decode(record.key).expect("decodes")
    }

    #[test]
    fn a_plain_record_round_trips() {
        let record = record(json!({"user": "alice", "cart": [1, 2.5, null, true]}));

        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn exact_milliseconds_and_extreme_versions_round_trip() {
        for version in [0, 1, u64::from(u32::MAX) + 1, u64::MAX - 1, u64::MAX] {
            let mut record = record(json!({}));
            record.version = version;
            record.created_at = from_unix_millis(1).expect("time");
            record.expires_at = from_unix_millis(-1).expect("time");
            record.deadline = from_unix_millis(253_402_300_799_999).expect("time");

            let back = round_trip(&record);

            assert_eq!(back, record);
            assert_eq!(to_unix_millis(back.deadline), 253_402_300_799_999);
        }
    }

    #[test]
    fn times_below_the_millisecond_round_trip_and_order() {
        let mut record = record(json!({}));
        let epoch = OffsetDateTime::UNIX_EPOCH;
        record.created_at = epoch - Duration::nanoseconds(1);
        record.expires_at = epoch + Duration::nanoseconds(999_999);
        record.deadline = epoch + Duration::new(1, 1);

        assert_eq!(round_trip(&record), record);
        let packed = Packed::encode(&record);
        assert!(!packed.is_expired(Stamp::of(epoch + Duration::nanoseconds(999_998))));
        assert!(packed.is_expired(Stamp::of(epoch + Duration::nanoseconds(999_999))));
        assert!(Stamp::of(record.created_at) < Stamp::of(epoch));
        assert_eq!(
            Stamp::of(epoch).nanos_since(Stamp::of(record.created_at)),
            1
        );
    }

    #[test]
    fn control_characters_and_unicode_round_trip() {
        let text: String = (0u8..0x20).map(char::from).collect::<String>() + "\"\\\u{7f}";
        let mut record = record(json!({
            "ctl": text,
            "ключ ✓": "值 🎉 e\u{301}",
            "\u{0}": "\u{ffff}",
        }));
        record.principal = Some("ünïcødé\u{0}\n👤".to_owned());

        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn principal_and_expiry_round_trip() {
        let mut record = record(json!({"n": 1}));
        record.principal = Some(String::new());
        record.expiry = Some(
            Expiry::new(
                Duration::new(90, 123_456_789),
                Duration::days(365) + Duration::nanoseconds(1),
            )
            .with_cookie(CookieLifetime::BrowserSession),
        );

        let back = round_trip(&record);

        assert_eq!(back, record);
        assert_eq!(Packed::encode(&back).principal(), Some(""));
    }

    #[test]
    fn a_mebibyte_of_data_round_trips() {
        let big = "x".repeat(1 << 20);
        let record = record(json!({"big": big, "after": "tail"}));

        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn touching_moves_only_the_expiry() {
        let mut record = record(json!({"user": "bob"}));
        record.principal = Some("bob".to_owned());
        let packed = Packed::encode(&record);

        let touched = packed.with_expires_at(Stamp::from_millis(42));

        assert_eq!(touched.expires_at(), Some(Stamp::from_millis(42)));
        let mut expected = record.clone();
        expected.expires_at = from_unix_millis(42).expect("time");
        assert_eq!(touched.decode(record.key).expect("decodes"), expected);
        assert_eq!(touched.bytes().len(), packed.bytes().len());
    }

    #[test]
    fn expiry_is_checked_to_the_millisecond() {
        let record = record(json!({}));
        let packed = Packed::encode(&record);
        let at = record.expires_at;
        let nano = Duration::nanoseconds(1);

        assert!(!packed.is_expired(Stamp::of(at - nano)));
        assert!(packed.is_expired(Stamp::of(at)));
        assert!(packed.is_expired(Stamp::of(at + nano)));
    }

    #[test]
    fn damaged_buffers_are_errors_not_panics() {
        let mut record = record(json!({"user": "carol"}));
        record.principal = Some("carol".to_owned());
        record.expiry = Some(Expiry::default());
        let good = Packed::encode(&record).bytes().to_vec();

        for len in 0..good.len() {
            let cut = Packed::from_bytes(&good[..len]);
            assert!(cut.decode(record.key).is_err(), "cut at {len}");
            let _ = (cut.principal(), cut.version(), cut.deadline());
        }
        for (at, byte) in [
            (0, 0xff),
            (FIXED_LEN + 24, 7),
            (FIXED_LEN + EXPIRY_LEN, 0xff),
        ] {
            let mut bad = good.clone();
            bad[at] = byte;
            assert!(
                Packed::from_bytes(&bad).decode(record.key).is_err(),
                "byte {at}"
            );
        }
        let mut not_utf8 = good.clone();
        let last = not_utf8.len() - 2;
        not_utf8[last] = 0xc3;
        assert!(Packed::from_bytes(&not_utf8).decode(record.key).is_err());

        let empty = Packed::from_bytes(&[]);
        assert!(empty.is_expired(Stamp::from_millis(i64::MIN)));
        assert_eq!(empty.expires_at(), None);
    }

    #[test]
    fn debug_shows_no_content() {
        let record = record(json!({"secret": "hunter2"}));

        let shown = format!("{:?}", Packed::encode(&record));

        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
