//! Session ids and the storage keys derived from them.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::TryRngCore as _;
use sha2::{Digest as _, Sha256};

/// Length of an encoded [`Id`]: 128 bits in unpadded base64url.
pub const ID_LEN: usize = 22;

/// A session id: 128 random bits, the secret a cookie carries.
///
/// `Debug` prints `Id(..)`: an id is a bearer token and must never reach a
/// log line. Stores never see it either; they get its [`StorageKey`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id([u8; 16]);

impl Id {
    /// Draws a new id from the operating system's random source.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes, since
    /// handing out a predictable id would be worse than stopping.
    #[must_use]
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the OS random source failed");
        Self(bytes)
    }

    /// Builds an id from raw bytes (tests and id sources).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses a cookie value; exactly 22 characters of unpadded base64url.
    ///
    /// Anything else gives `None`: a malformed cookie means "no session".
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != ID_LEN {
            return None;
        }

        let mut bytes = [0u8; 16];
        let written = URL_SAFE_NO_PAD
            .decode_slice(value.as_bytes(), &mut bytes)
            .ok()?;

        // The decoder accepts non-canonical trailing bits; re-encoding and
        // comparing keeps one id to exactly one spelling.
        let mut canonical = [0u8; ID_LEN];
        let encoded = URL_SAFE_NO_PAD.encode_slice(bytes, &mut canonical).ok()?;
        let exact = written == 16 && encoded == ID_LEN && canonical.as_slice() == value.as_bytes();
        exact.then_some(Self(bytes))
    }

    /// The cookie form: 22 characters of unpadded base64url.
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Appends the cookie form to `out`, without a string of its own.
    pub(crate) fn encode_into(&self, out: &mut String) {
        URL_SAFE_NO_PAD.encode_string(self.0, out);
    }

    /// The key a store files this session under: SHA-256 of the id bytes.
    #[must_use]
    pub fn storage_key(&self) -> StorageKey {
        StorageKey(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Id(..)")
    }
}

/// What a store files a session under: SHA-256 of the session id.
///
/// A dump of the store therefore holds no token that logs anyone in.
/// `Debug` redacts it all the same, since it still names one session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey([u8; 32]);

impl StorageKey {
    /// Builds a key from its 32 bytes, as a store reads it back.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the key.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lower-case hex digits, for text-keyed stores.
    #[must_use]
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;

        let mut out = String::with_capacity(64);
        for byte in self.0 {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// Parses 64 hex digits back into a key.
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        // `from_str_radix` takes a leading sign, so check the digits
        // first: one key has exactly one spelling (either case).
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }

        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = text.get(2 * i..2 * i + 2)?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_round_trips() {
        let id = Id::random();

        let text = id.encode();

        assert_eq!(text.len(), ID_LEN);
        assert_eq!(Id::parse(&text), Some(id));
    }

    #[test]
    fn parse_rejects_everything_else() {
        let good = Id::random().encode();
        let mut long = good.clone();
        long.push('A');
        let padded = format!("{}==", &good[..20]);
        let bad_alphabet = format!("{}+/", &good[..20]);
        let non_ascii = format!("{}é", &good[..20]);

        for bad in [
            "",
            "../../etc/passwd",
            &long,
            &padded,
            &bad_alphabet,
            &non_ascii,
        ] {
            assert_eq!(Id::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Id::parse(&"\0".repeat(ID_LEN)), None);
        assert_eq!(Id::parse(&"A".repeat(10_000)), None);
    }

    #[test]
    fn parse_rejects_non_canonical_trailing_bits() {
        // The last character carries 2 data bits; 'B' sets a padding bit.
        let text = format!("{}B", "A".repeat(21));

        assert_eq!(Id::parse(&text), None);
        assert!(Id::parse(&format!("{}A", "A".repeat(21))).is_some());
    }

    #[test]
    fn debug_redacts() {
        let id = Id::random();

        assert_eq!(format!("{id:?}"), "Id(..)");
        assert_eq!(format!("{:?}", id.storage_key()), "StorageKey(..)");
    }

    #[test]
    fn storage_key_is_sha256_and_hex_round_trips() {
        let id = Id::from_bytes([0; 16]);

        let key = id.storage_key();

        // SHA-256 of sixteen zero bytes.
        assert!(key.to_hex().starts_with("374708fff7719dd5979ec875d56cd228"));
        assert_eq!(StorageKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(StorageKey::from_hex("zz"), None);
    }
}
