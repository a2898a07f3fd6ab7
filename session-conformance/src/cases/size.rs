//! Big records: stored in full or refused, never cut.

use serde_json::json;
use session_core::{CreateOutcome, Record, SaveOutcome, Store as _, StoreError};

use crate::fixture::{data, fresh_key, next, now, record, simple};
use crate::subject::{cut, Subject};
use crate::{Failure, Harness};

/// The size of the big value: 1 MiB.
const MIB: usize = 1 << 20;

/// A record holding a 1 MiB value is either stored in full and reads back
/// byte for byte, or refused with [`StoreError::TooLarge`] with nothing
/// written: through `create` (the key stays free) and through `save` (the
/// previous record stays).
///
/// What users get: a session is never silently cut or lost because it
/// grew; a too-large write is a typed error the application can handle.
///
/// # Errors
///
/// The broken promise, when a big value reads back different, or a
/// refused write left something behind.
pub async fn size_one_mib<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "size_one_mib").await;
    let t0 = now();
    let big = record(
        fresh_key(),
        t0,
        data(json!({ "blob": blob(), "after": "blob" })),
    );

    match s.raw().create(&big, t0).await {
        Ok(CreateOutcome::Created) => {
            s.expect_record(
                &big.key,
                t0,
                &big,
                "a created 1 MiB value reads back byte for byte",
            )
            .await?;
        }
        Err(StoreError::TooLarge { .. }) => {
            s.expect_absent(&big.key, t0, "a create refused as TooLarge stores nothing")
                .await?;
            let small = Record {
                key: big.key,
                ..simple(t0, "small")
            };
            s.create_new(&small, t0).await?;
        }
        Ok(CreateOutcome::Collision) => {
            let promise = "a create under an unused key reports Created or TooLarge";
            return Err(s.fail(promise, "Collision"));
        }
        Err(error) => return Err(s.store_failure("create", error)),
    }

    let small = simple(t0, "alice");
    s.create_new(&small, t0).await?;
    let grown = next(&small, big.data.clone());
    match s.raw().save(&grown, 1, t0).await {
        Ok(SaveOutcome::Saved) => {
            s.expect_record(
                &small.key,
                t0,
                &grown,
                "a saved 1 MiB value reads back byte for byte",
            )
            .await
        }
        Err(StoreError::TooLarge { .. }) => {
            s.expect_record(
                &small.key,
                t0,
                &small,
                "a save refused as TooLarge writes nothing",
            )
            .await
        }
        Ok(other) => {
            let promise = "a save with the stored version reports Saved or TooLarge";
            Err(s.fail(promise, cut(&other)))
        }
        Err(error) => Err(s.store_failure("save", error)),
    }
}

/// 1 MiB of text whose every position is checked: no run repeats at a
/// period a store could compress or cut on without it showing.
fn blob() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    let mut state: u32 = 0x9e37_79b9;
    let mut text: String = (0..MIB - 3)
        .map(|_| {
            // xorshift: cheap, deterministic, and not periodic in 1 MiB.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from(ALPHABET[state as usize % ALPHABET.len()])
        })
        .collect();
    text.push_str("END");
    text
}
