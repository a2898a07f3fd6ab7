//! How a [`Record`] is laid out in Redis: one string per record.
//!
//! The string is a one-line header, then the principal, the expiry
//! policy and the data, back to back:
//!
//! ```text
//! s1 <version> <writer> <expires> <deadline> <principal length> <created> <expiry length>\n
//! <principal><expiry JSON><data JSON>
//! ```
//!
//! Numbers are decimal text; times are Unix milliseconds; `writer` is
//! the token of the last create or save. The principal's length is `-1`
//! when the record has none, the expiry's `0` when it has none. The
//! first five numbers have fixed widths (20 characters each, the
//! principal's length 10, zero-padded after any sign), so the scripts
//! find what they compare at fixed offsets instead of matching a
//! pattern, which costs Redis more than the `GET` itself. The key itself
//! is the storage key, so it is not repeated inside.
//!
//! The scripts never look past the principal, so a read-and-write is
//! one `GET` and one `SET`.
//! Records written by earlier versions, one hash per record, are still
//! read (see [`legacy`]); the next save or create rewrites them.

use std::fmt;
use std::io::Write as _;

use redis::{RedisWrite, ToRedisArgs};
use session_core::time::OffsetDateTime;
use session_core::{from_unix_millis, to_unix_millis, Data, Expiry, Record, StorageKey};

use crate::error::Error;

pub(crate) mod legacy;

/// What every record in this layout starts with.
const TAG: &[u8] = b"s1 ";

/// What decoding a stored record gives.
pub(super) type Decoded<T> = Result<T, Error>;

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

/// A record as it is stored, written straight into a command as one
/// argument.
pub(crate) struct Encoded<'a> {
    pub(crate) record: &'a Record,
    /// The token naming this one write (see `create.lua`).
    pub(crate) writer: u64,
}

impl ToRedisArgs for Encoded<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let record = self.record;
        // The policy is a few dozen bytes, and its length comes first.
        let expiry = record
            .expiry
            .as_ref()
            .map(|expiry| serde_json::to_vec(expiry).unwrap_or_default())
            .unwrap_or_default();
        let principal = record.principal.as_deref();
        let principal_len = principal.map_or(-1, |text| i64::try_from(text.len()).unwrap_or(-1));

        // Writing into the command's own buffer cannot fail.
        let mut arg = out.writer_for_next_arg();
        let _ = writeln!(
            arg,
            "s1 {} {} {} {} {principal_len:0PRINCIPAL$} {} {}",
            Padded(record.version),
            Padded(self.writer),
            Padded(to_unix_millis(record.expires_at)),
            Padded(to_unix_millis(record.deadline)),
            to_unix_millis(record.created_at),
            expiry.len(),
        );
        let _ = arg.write_all(principal.unwrap_or_default().as_bytes());
        let _ = arg.write_all(&expiry);
        let _ = arg.write_all(record.data.as_str().as_bytes());
    }
}

/// The width of each fixed-width number in the header.
pub(super) const WIDTH: usize = 20;

/// The width of the principal's length in the header.
const PRINCIPAL: usize = 10;

/// A version, token or time as the header and the scripts take it:
/// zero-padded to [`WIDTH`] characters after any sign.
pub(crate) struct Padded<T>(pub(crate) T);

impl<T: fmt::Display> fmt::Display for Padded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0WIDTH$}", self.0)
    }
}

impl<T: fmt::Display> ToRedisArgs for Padded<T> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = write!(arg, "{self}");
    }
}

/// Rebuilds the record stored under `key` from its string.
pub(crate) fn decode(key: StorageKey, stored: &[u8]) -> Decoded<Record> {
    let rest = stored
        .strip_prefix(TAG)
        .ok_or_else(|| Error::Malformed { field: "layout" })?;

    // The scripts read the first five at fixed offsets: a record they
    // would misread is no record.
    let mut header = Header { rest };
    let version = unsigned(header.field("version", Some(WIDTH), b' ')?, "version")?;
    // The writer token matters only to the scripts.
    unsigned(header.field("writer", Some(WIDTH), b' ')?, "writer")?;
    let expires_at = time(header.field("expires", Some(WIDTH), b' ')?, "expires")?;
    let deadline = time(header.field("deadline", Some(WIDTH), b' ')?, "deadline")?;
    let principal_len = signed(
        header.field("principal", Some(PRINCIPAL), b' ')?,
        "principal",
    )?;
    let created_at = time(header.field("created", None, b' ')?, "created")?;
    let expiry_len = unsigned(header.field("expiry", None, b'\n')?, "expiry")?;
    let expiry_len =
        usize::try_from(expiry_len).map_err(|_| Error::Malformed { field: "expiry" })?;
    let body = header.rest;

    let (principal, body) = match usize::try_from(principal_len) {
        Ok(len) => {
            let (text, body) = split(body, len, "principal")?;
            let text =
                std::str::from_utf8(text).map_err(|_| Error::Malformed { field: "principal" })?;
            (Some(text.to_owned()), body)
        }
        Err(_) if principal_len == -1 => (None, body),
        Err(_) => return Err(Error::Malformed { field: "principal" }),
    };
    let (expiry, data) = split(body, expiry_len, "expiry")?;
    let expiry = (!expiry.is_empty())
        .then(|| parse_expiry(expiry))
        .transpose()?;

    Ok(Record {
        key,
        data: parse_data(data)?,
        version,
        created_at,
        expires_at,
        deadline,
        principal,
        expiry,
    })
}

/// A session's own expiry policy from its stored JSON.
pub(super) fn parse_expiry(text: &[u8]) -> Decoded<Expiry> {
    serde_json::from_slice(text).map_err(|source| Error::Json {
        field: "expiry",
        source,
    })
}

/// The session's values from their stored JSON text.
pub(super) fn parse_data(text: &[u8]) -> Decoded<Data> {
    let text = std::str::from_utf8(text).map_err(|_| Error::Malformed { field: "data" })?;
    Data::parse(text).map_err(|source| Error::Json {
        field: "data",
        source,
    })
}

/// The first `len` bytes of `body` and the rest.
fn split<'a>(body: &'a [u8], len: usize, field: &'static str) -> Decoded<(&'a [u8], &'a [u8])> {
    if len > body.len() {
        return Err(Error::Malformed { field });
    }
    Ok(body.split_at(len))
}

/// The header still to read.
struct Header<'a> {
    rest: &'a [u8],
}

impl<'a> Header<'a> {
    /// The next field: `width` bytes when it has a fixed width, and then
    /// `end` (a space, or the newline after the last field).
    fn field(&mut self, field: &'static str, width: Option<usize>, end: u8) -> Decoded<&'a [u8]> {
        let len = match width {
            Some(width) => width,
            None => self
                .rest
                .iter()
                .position(|&byte| byte == b' ' || byte == b'\n')
                .ok_or_else(|| Error::Malformed { field })?,
        };
        if self.rest.get(len) != Some(&end) {
            return Err(Error::Malformed { field });
        }
        let text = &self.rest[..len];
        self.rest = &self.rest[len + 1..];
        Ok(text)
    }
}

/// Decimal digits, zero-padded or not, as a `u64`.
pub(super) fn unsigned(text: &[u8], field: &'static str) -> Decoded<u64> {
    let malformed = || Error::Malformed { field };
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }

    // Nineteen digits always fit in a u64, so only a twentieth needs a
    // check: one test per number, not two per digit. Every header holds
    // five of them.
    let start = text
        .iter()
        .position(|&byte| byte != b'0')
        .unwrap_or(text.len());
    let digits = &text[start..];
    let (high, low) = digits.split_at(digits.len().saturating_sub(19));
    let low = low.iter().fold(0_u64, |value, &byte| {
        value.wrapping_mul(10).wrapping_add(u64::from(byte - b'0'))
    });
    match high {
        [] => Ok(low),
        [digit] => u64::from(digit - b'0')
            .checked_mul(10_u64.pow(19))
            .and_then(|high| high.checked_add(low))
            .ok_or_else(malformed),
        _ => Err(malformed()),
    }
}

/// Decimal digits after an optional `-`, as an `i64`.
pub(super) fn signed(text: &[u8], field: &'static str) -> Decoded<i64> {
    let malformed = || Error::Malformed { field };
    match text.strip_prefix(b"-") {
        Some(digits) => 0_i64
            .checked_sub_unsigned(unsigned(digits, field)?)
            .ok_or_else(malformed),
        None => i64::try_from(unsigned(text, field)?).map_err(|_| malformed()),
    }
}

fn time(text: &[u8], field: &'static str) -> Decoded<OffsetDateTime> {
    from_unix_millis(signed(text, field)?).ok_or_else(|| Error::Malformed { field })
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;
    use session_core::time::Duration;
    use session_core::{truncate_to_millis, Expiry, Id};

    use super::*;

    pub(crate) fn record() -> Record {
        let now = truncate_to_millis(OffsetDateTime::now_utc());
        let data = Data::try_from(json!({ "user": "alice", "n": 1.5 })).expect("an object");

        Record {
            key: Id::random().storage_key(),
            data,
            version: u64::MAX,
            created_at: now,
            expires_at: now + Duration::hours(1),
            deadline: now + Duration::days(30),
            principal: Some("user 7 {x}\nand a line".to_owned()),
            expiry: Some(Expiry::new(Duration::minutes(5), Duration::days(30))),
        }
    }

    /// The stored string of `record`.
    fn encoded(record: &Record) -> Vec<u8> {
        let mut args = Encoded { record, writer: 7 }.to_redis_args();
        assert_eq!(args.len(), 1, "one argument");
        args.remove(0)
    }

    #[test]
    fn record_round_trips_through_its_string() {
        let record = record();

        let back = decode(record.key, &encoded(&record)).expect("decodes");

        assert_eq!(back, record);
    }

    #[test]
    fn optional_parts_may_be_absent_or_empty() {
        for principal in [None, Some(String::new())] {
            let record = Record {
                principal,
                expiry: None,
                ..record()
            };

            let back = decode(record.key, &encoded(&record)).expect("decodes");

            assert_eq!(back, record);
        }
    }

    #[test]
    fn the_header_is_what_the_scripts_match() {
        let record = Record {
            principal: Some("bob".to_owned()),
            expiry: None,
            version: 3,
            ..record()
        };

        let stored = String::from_utf8(encoded(&record)).expect("text");

        let header = format!(
            "s1 {:020} {:020} {:020} {:020} {:010} {} 0\nbob{{",
            3,
            7,
            to_unix_millis(record.expires_at),
            to_unix_millis(record.deadline),
            3,
            to_unix_millis(record.created_at),
        );
        assert!(stored.starts_with(&header), "{stored}");
    }

    /// `read.lua` takes the fixed-width numbers at these offsets, for any
    /// values, the extremes included.
    #[test]
    fn the_scripts_find_the_numbers_at_fixed_offsets() {
        let early = from_unix_millis(-5).expect("a time");
        for (version, writer, expires_at, principal) in [
            (u64::MAX, u64::MAX, early, None),
            (0, 0, record().expires_at, Some("p".repeat(300))),
        ] {
            let record = Record {
                version,
                expires_at,
                principal: principal.clone(),
                ..record()
            };
            let mut args = Encoded {
                record: &record,
                writer,
            }
            .to_redis_args();
            let stored = String::from_utf8(args.remove(0)).expect("text");

            // Lua's 1-based, inclusive ranges, as in `read.lua`.
            let at = |from: usize, to: usize| &stored[from - 1..to];
            assert_eq!(at(1, 3), "s1 ");
            assert_eq!(at(4, 23).parse::<u64>().ok(), Some(version));
            assert_eq!(at(25, 44).parse::<u64>().ok(), Some(writer));
            let expires = to_unix_millis(expires_at);
            assert_eq!(at(46, 65).parse::<i64>().ok(), Some(expires));
            let deadline = to_unix_millis(record.deadline);
            assert_eq!(at(67, 86).parse::<i64>().ok(), Some(deadline));
            let length = principal.as_ref().map_or(-1, |text| text.len() as i64);
            assert_eq!(at(88, 97).parse::<i64>().ok(), Some(length));
            assert_eq!(at(98, 98), " ");
            assert_eq!(decode(record.key, stored.as_bytes()).ok(), Some(record));
        }
    }

    #[test]
    fn numbers_parse_as_the_standard_library_parses_plain_digits() {
        let mut cases: Vec<String> = [
            "",
            "0",
            "-",
            "-0",
            "+1",
            " 1",
            "1 ",
            "00000000000000000000",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "000000000018446744073709551615",
            "100000000000000000000",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "-00000000000000000001",
            "1x",
            "\u{0660}",
        ]
        .map(str::to_owned)
        .into();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            // xorshift: lengths up to 24, mostly digits, some zeros first.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = usize::try_from(x % 25).expect("small");
            let case: String = (0..len)
                .map(|n| {
                    let pick = (x >> (n % 60)) % 23;
                    match pick {
                        20 => '-',
                        21 => '/',
                        22 => ':',
                        _ if n < 4 && x & 1 == 0 => '0',
                        digit => char::from(b'0' + u8::try_from(digit % 10).expect("digit")),
                    }
                })
                .collect();
            cases.push(case);
        }

        for case in cases {
            let digits = !case.is_empty() && case.bytes().all(|byte| byte.is_ascii_digit());
            let want = digits.then(|| case.parse::<u64>().ok()).flatten();
            assert_eq!(unsigned(case.as_bytes(), "n").ok(), want, "{case:?}");

            let rest = case.strip_prefix('-').unwrap_or(&case);
            let digits = !rest.is_empty() && rest.bytes().all(|byte| byte.is_ascii_digit());
            let want = digits.then(|| case.parse::<i64>().ok()).flatten();
            assert_eq!(signed(case.as_bytes(), "n").ok(), want, "{case:?}");
        }
    }

    #[test]
    fn damaged_records_are_decode_errors() {
        let record = record();
        let good = String::from_utf8(encoded(&record)).expect("text");
        let (header, body) = good.split_once('\n').expect("a header");
        let mut cases = vec![
            String::new(),
            "s1 ".to_owned(),
            format!("s2{}", &good[2..]),
            header.to_owned(),
            good.replacen("s1 18446744073709551615", "s1 -0000000000000000001", 1),
            good.replacen("s1 18446744073709551615", "s1 99999999999999999999", 1),
            // Unpadded: the scripts would read other bytes.
            good.replacen("s1 18446744073709551615", "s1 1844674407370955161", 1),
            format!("{header} 1\n{body}"),
            format!("{}\n{body}", header.rsplitn(3, ' ').nth(2).expect("fields")),
            format!("{header}\n{}", &body[..body.len() - 1]),
            format!("{header}\n"),
        ];
        let fields: Vec<&str> = header.split(' ').collect();
        for principal_len in ["9999", "-2", "x"] {
            let mut damaged = fields.clone();
            damaged[5] = principal_len;
            cases.push(format!("{}\n{body}", damaged.join(" ")));
        }

        for case in cases {
            let error = decode(record.key, case.as_bytes()).expect_err(&case);

            assert!(error.is_malformed_record(), "{case:?}: {error}");
        }

        let mut not_text = good.into_bytes();
        let at = not_text.len() - 3;
        not_text[at] = 0xff;
        assert!(decode(record.key, &not_text).is_err());
    }

    /// Mutated records (bytes flipped, cut, inserted) never panic the
    /// decoder, and whatever it accepts has the header the encoder
    /// writes for the record it returns, so the scripts read at their
    /// fixed offsets what a load returns. (The expiry policy is parsed
    /// JSON, so its spacing may differ.)
    #[test]
    fn mutated_records_decode_to_what_encodes_back_or_fail() {
        let original = record();
        let base = encoded(&original);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"s1 -0123456789\n{}\":,";

        for _ in 0..50_000 {
            let mut stored = base.clone();
            for _ in 0..=next() % 3 {
                let at = usize::try_from(next()).unwrap_or(0) % (stored.len() + 1);
                let byte = alphabet[usize::try_from(next()).unwrap_or(0) % alphabet.len()];
                match next() % 4 {
                    0 if at < stored.len() => stored[at] = byte,
                    1 => stored.insert(at, byte),
                    2 if at < stored.len() => {
                        stored.remove(at);
                    }
                    _ => stored.truncate(at),
                }
            }

            let Ok(decoded) = decode(original.key, &stored) else {
                continue;
            };
            // The writer token is not part of the record: take it from
            // the input, where the header says it is.
            let writer = std::str::from_utf8(&stored[24..44])
                .ok()
                .and_then(|text| text.parse().ok())
                .expect("an accepted header has its writer at the fixed offset");
            let mut args = Encoded {
                record: &decoded,
                writer,
            }
            .to_redis_args();
            let again = args.remove(0);
            let what = String::from_utf8_lossy(&stored);
            assert_eq!(again[..98], stored[..98], "{what:?}");
            assert_eq!(decode(original.key, &again).ok(), Some(decoded), "{what:?}");
        }
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
