//! `load`: an expired record is never returned (C17).

use session_core::time::Duration;
use session_core::Record;

use crate::fixture::{now, simple, LIFETIME, MS};
use crate::subject::Subject;
use crate::{Failure, Harness};

/// `load` returns a record up to the millisecond before its `expires_at`
/// and never from that millisecond on, whether or not the backend has
/// removed it yet; a record created already expired never loads (C17).
///
/// What users get: a session is over when its expiry says so, on every
/// store, to the millisecond.
///
/// # Errors
///
/// The broken promise, when an expired record loads or a live one does
/// not.
pub async fn load_never_returns_expired<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "load_never_returns_expired").await;
    let t0 = now();

    // A store may refuse or drop a record that is dead on arrival; either
    // way it must not load.
    let dead = Record {
        created_at: t0 - LIFETIME,
        expires_at: t0 - Duration::seconds(1),
        ..simple(t0, "dead on arrival")
    };
    s.create(&dead, t0).await?;
    s.expect_absent(
        &dead.key,
        t0,
        "a record whose expiry is in the past never loads",
    )
    .await?;

    let live = simple(t0, "alice");
    s.create_new(&live, t0).await?;
    let expires_at = live.expires_at;

    s.expect_record(
        &live.key,
        expires_at - MS,
        &live,
        "a record loads until 1 ms before its expiry",
    )
    .await?;

    s.expect_absent(
        &live.key,
        expires_at,
        "a record does not load at its expiry millisecond",
    )
    .await?;

    s.expect_absent(
        &live.key,
        expires_at + MS,
        "a record does not load 1 ms after its expiry",
    )
    .await?;

    s.expect_absent(
        &live.key,
        expires_at + Duration::days(365),
        "a record does not load long after its expiry",
    )
    .await
}
