//! `create`: a live record is never overwritten (C28).

use serde_json::json;
use session_core::{CreateOutcome, Record};

use crate::fixture::{data, fresh_key, now, record, simple, LIFETIME, MS};
use crate::subject::Subject;
use crate::{Failure, Harness};

/// How many tasks race to create one key.
const RACERS: usize = 1_000;

/// A `create` under the key of a live record reports
/// [`CreateOutcome::Collision`] and leaves that record exactly as it was,
/// up to its last live millisecond (C28: `create` twice).
///
/// What users get: a session id that collides never overwrites, or merges
/// into, another visitor's session.
///
/// # Errors
///
/// The broken promise, when the second create reports `Created` or the
/// first record changed.
pub async fn create_collision_keeps_existing<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "create_collision_keeps_existing").await;
    let t0 = now();
    let first = simple(t0, "alice");
    s.create_new(&first, t0).await?;

    let intruder = Record {
        data: data(json!({ "user": "mallory" })),
        created_at: t0 + MS,
        expires_at: t0 + LIFETIME * 2,
        principal: Some("mallory".to_owned()),
        ..first.clone()
    };
    for at in [t0, t0 + LIFETIME - MS] {
        let outcome = s.create(&intruder, at).await?;
        s.check_eq(
            outcome,
            CreateOutcome::Collision,
            "a create under the key of a live record reports Collision",
        )?;

        s.expect_record(
            &first.key,
            at,
            &first,
            "a colliding create leaves the live record untouched",
        )
        .await?;
    }
    Ok(())
}

/// Of 1,000 concurrent creates of one key, exactly one reports
/// [`CreateOutcome::Created`], and the stored record is that one's.
///
/// What users get: two visitors can never end up sharing one session, even
/// when ids collide under load.
///
/// # Errors
///
/// The broken promise, when zero or several creates win, or the stored
/// record is not the winner's.
pub async fn create_concurrent_one_winner<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "create_concurrent_one_winner").await;
    let t0 = now();
    let key = fresh_key();

    let outcomes = s
        .race(RACERS, |racer, s| async move {
            let mine = record(key, t0, data(json!({ "racer": racer })));
            let outcome = s.create(&mine, t0).await?;
            Ok((outcome == CreateOutcome::Created).then_some(mine))
        })
        .await?;
    let winners: Vec<Record> = outcomes.into_iter().flatten().collect();

    s.check_eq(
        winners.len(),
        1,
        "exactly one of 1,000 concurrent creates of one key reports Created",
    )?;
    s.expect_record(
        &key,
        t0,
        &winners[0],
        "the stored record is the winning create's",
    )
    .await
}

/// A `create` over a record that has expired (but may still sit in the
/// backend) either replaces it, and the new record loads, or reports a
/// collision, and nothing loads; the expired record never comes back.
///
/// What users get: an expired session's leftovers never leak into a new
/// one.
///
/// # Errors
///
/// The broken promise, when a reported create does not load as written or
/// the expired record loads.
pub async fn create_over_expired<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "create_over_expired").await;
    let t0 = now();
    let old = simple(t0, "alice");
    s.create_new(&old, t0).await?;

    let later = old.expires_at;
    let fresh = record(old.key, later, data(json!({ "user": "bob" })));
    let outcome = s.create(&fresh, later).await?;

    let loaded = s.load(&old.key, later).await?;
    match outcome {
        CreateOutcome::Created => s.check_record(
            loaded,
            &fresh,
            "a create reported over an expired record stores the new record",
        ),
        CreateOutcome::Collision => s.check_absent(
            loaded,
            "an expired record is never loaded, even after a create collided with it",
        ),
    }
}
