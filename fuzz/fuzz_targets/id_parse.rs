//! `Id::parse` and `StorageKey::from_hex` on arbitrary text: whatever they
//! accept must be the one canonical spelling of what they return.

#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Id, StorageKey, ID_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(id) = Id::parse(text) {
            assert_eq!(text.len(), ID_LEN);
            assert_eq!(id.encode(), text, "two spellings of one id");
        }
        if let Some(key) = StorageKey::from_hex(text) {
            assert_eq!(key.to_hex(), text.to_ascii_lowercase(), "lenient hex");
        }
    }

    // Every 16 bytes are an id whose encoding parses back to itself.
    if let Some(bytes) = data.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()) {
        let id = Id::from_bytes(bytes);
        assert_eq!(Id::parse(&id.encode()), Some(id));
    }
});
