//! Found by the `id_parse` fuzz target: `StorageKey::from_hex` read each
//! pair of digits with `u8::from_str_radix`, which takes a leading `+`,
//! so 64 characters that are not a hex key (`+7` for `07`) parsed as one.

use session_core::{Id, StorageKey};

#[test]
fn a_plus_sign_is_not_a_hex_digit() {
    let key = Id::from_bytes([9; 16]).storage_key();
    let hex = key.to_hex();
    // This key's first byte is 0x06, so "+6" spells it with a sign.
    assert!(hex.starts_with("06"), "{hex}");
    let signed = format!("+{}", &hex[1..]);

    assert_eq!(StorageKey::from_hex(&signed), None);
    assert_eq!(StorageKey::from_hex(&hex), Some(key));
    assert_eq!(StorageKey::from_hex(&hex.to_uppercase()), Some(key));
}

#[test]
fn only_64_hex_digits_are_a_key() {
    let bad = [
        String::new(),
        "0".repeat(63),
        "0".repeat(65),
        format!("{}g", "0".repeat(63)),
        format!("{}-1", "0".repeat(62)),
        format!("{} 1", "0".repeat(62)),
    ];

    for text in bad {
        assert_eq!(StorageKey::from_hex(&text), None, "{text:?}");
    }
}
