//! Signed and encrypted cookie values, damaged by the fuzzer: a value that
//! was changed may be refused or read as the id it carried, but never as
//! another id; an intact one always reads back, also after key rotation.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use session_core::Id;
use session_fuzz::{new_key, old_key, pair, private, signed};

#[derive(Debug, Arbitrary)]
struct Input {
    id: [u8; 16],
    encrypt: bool,
    /// Whether the cookie was written before the key rotation.
    by_old_key: bool,
    edits: Vec<Edit>,
}

#[derive(Debug, Arbitrary)]
enum Edit {
    Flip { at: u16, bits: u8 },
    Insert { at: u16, byte: u8 },
    Remove { at: u16 },
    Truncate { len: u16 },
    Splice { at: u16, bytes: Vec<u8> },
}

impl Edit {
    fn apply(&self, value: &mut Vec<u8>) {
        let len = value.len();
        let pos = |at: u16| usize::from(at) % (len + 1);
        match self {
            Self::Flip { at, bits } => {
                if let Some(byte) = value.get_mut(pos(*at)) {
                    *byte ^= bits;
                }
            }
            Self::Insert { at, byte } => value.insert(pos(*at), *byte),
            Self::Remove { at } => {
                let at = pos(*at);
                if at < value.len() {
                    value.remove(at);
                }
            }
            Self::Truncate { len } => value.truncate(usize::from(*len)),
            Self::Splice { at, bytes } => {
                let at = pos(*at);
                value.splice(at..at, bytes.iter().copied());
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let make = if input.encrypt { private } else { signed };
    let writer_keys = if input.by_old_key {
        vec![old_key()]
    } else {
        vec![new_key()]
    };
    let writer = make(writer_keys);
    let reader = make(vec![new_key(), old_key()]);
    let stranger = make(vec![session_core::Key::from(&[0x33; 64])]);
    let id = Id::from_bytes(input.id);

    let set_cookie = writer.set_cookie(&id, None);
    let intact = pair(&set_cookie).to_owned();
    assert_eq!(reader.session_ids([intact.as_str()]), vec![id]);

    let mut damaged = intact.clone().into_bytes();
    for edit in &input.edits {
        edit.apply(&mut damaged);
    }
    let damaged = String::from_utf8_lossy(&damaged);

    let read = reader.session_ids([&*damaged]);
    assert!(read.is_empty() || read == vec![id], "forged to another id");
    assert!(
        stranger.session_ids([&*damaged]).is_empty(),
        "wrong key"
    );
});
