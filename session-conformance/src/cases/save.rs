//! `save`: versioned writes that never resurrect a session.

use serde_json::{json, Value};
use session_core::time::Duration;
use session_core::{Record, SaveOutcome};

use crate::fixture::{data, fresh_key, next, now, record, simple, LIFETIME, MS};
use crate::subject::Subject;
use crate::{Failure, Harness};

/// How many writers race on one record.
const WRITERS: usize = 64;

/// How many successful saves each writer makes.
const SAVES_EACH: u64 = 2;

/// How many attempts a writer gets before the case calls it starved.
const ATTEMPTS: u64 = 20_000;

/// A save with the right version reports [`SaveOutcome::Saved`] and
/// writes the whole record: data (removed keys stay removed), the bumped
/// version, expiry, principal and expiry override.
///
/// What users get: what the handler wrote is what the next request reads.
///
/// # Errors
///
/// The broken promise, when the save is refused or reads back otherwise.
pub async fn save_bumps_version<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "save_bumps_version").await;
    let t0 = now();
    let first = record(
        fresh_key(),
        t0,
        data(json!({ "user": "alice", "cart": [1, 2] })),
    );
    s.create_new(&first, t0).await?;

    let at = t0 + Duration::seconds(1);
    let second = Record {
        expires_at: at + LIFETIME,
        principal: Some("alice".to_owned()),
        ..next(&first, data(json!({ "user": "alice", "theme": "dark" })))
    };
    s.save_ok(&second, 1, at).await?;
    s.expect_record(
        &first.key,
        at,
        &second,
        "a save writes the whole record: data with removed keys gone, version, expiry, principal",
    )
    .await?;

    let third = next(&second, data(json!({ "user": "bob" })));
    let outcome = s.save(&third, 2, at + MS).await?;
    s.check_eq(
        outcome,
        SaveOutcome::Saved,
        "a second save with the bumped version reports Saved",
    )?;
    s.expect_record(
        &first.key,
        at + MS,
        &third,
        "the second save is read back in full",
    )
    .await
}

/// A save whose expected version is not the stored one, older or newer,
/// reports [`SaveOutcome::Conflict`] and writes nothing.
///
/// What users get: a request working from an old copy cannot overwrite a
/// newer one; the session handle reloads and replays its changes instead.
///
/// # Errors
///
/// The broken promise, when a stale save is accepted or changes anything.
pub async fn save_stale_version_conflicts<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "save_stale_version_conflicts").await;
    let t0 = now();
    let first = simple(t0, "alice");
    s.create_new(&first, t0).await?;
    let second = next(&first, data(json!({ "user": "alice", "step": 2 })));
    s.save_ok(&second, 1, t0).await?;

    let stale = next(&first, data(json!({ "user": "mallory" })));
    let ahead = Record {
        version: 6,
        ..stale.clone()
    };
    for (attempt, expected) in [(&stale, 1), (&ahead, 5)] {
        let outcome = s.save(attempt, expected, t0).await?;
        s.check_eq(
            outcome,
            SaveOutcome::Conflict,
            "a save expecting another version than the stored one reports Conflict",
        )?;

        s.expect_record(&first.key, t0, &second, "a conflicting save writes nothing")
            .await?;
    }
    Ok(())
}

/// A save of a record that was never created, or was deleted, reports
/// [`SaveOutcome::Missing`] and does not bring it back.
///
/// What users get: a logout (delete) wins over a request that is still
/// saving the session it loaded before.
///
/// # Errors
///
/// The broken promise, when such a save is accepted or the record loads
/// afterwards.
pub async fn save_deleted_stays_missing<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "save_deleted_stays_missing").await;
    let t0 = now();

    let never = simple(t0, "nobody");
    let outcome = s.save(&next(&never, never.data.clone()), 1, t0).await?;
    s.check_eq(
        outcome,
        SaveOutcome::Missing,
        "a save of a never-created record reports Missing",
    )?;
    s.expect_absent(&never.key, t0, "a save never creates a record")
        .await?;

    let gone = simple(t0, "alice");
    s.create_new(&gone, t0).await?;
    s.delete(&gone.key).await?;
    let late = next(&gone, data(json!({ "user": "alice", "late": true })));
    let outcome = s.save(&late, 1, t0 + MS).await?;
    s.check_eq(
        outcome,
        SaveOutcome::Missing,
        "a save of a deleted record reports Missing",
    )?;
    s.expect_absent(
        &gone.key,
        t0 + MS,
        "a save never brings a deleted record back",
    )
    .await
}

/// A save of a record that has expired at `now` (even if the backend still
/// holds it) reports [`SaveOutcome::Missing`] and does not revive it, even
/// when the new record carries a later expiry.
///
/// What users get: an expired session stays over; a slow request cannot
/// extend it by saving.
///
/// # Errors
///
/// The broken promise, when the save is accepted or the record loads.
pub async fn save_expired_stays_missing<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "save_expired_stays_missing").await;
    let t0 = now();
    let old = simple(t0, "alice");
    s.create_new(&old, t0).await?;

    let later = old.expires_at;
    let revived = Record {
        expires_at: later + LIFETIME,
        ..next(&old, data(json!({ "user": "alice", "revived": true })))
    };
    let outcome = s.save(&revived, 1, later).await?;
    s.check_eq(
        outcome,
        SaveOutcome::Missing,
        "a save of an expired record reports Missing",
    )?;

    for at in [later, later + Duration::minutes(1)] {
        s.expect_absent(&old.key, at, "a save never brings an expired record back")
            .await?;
    }
    Ok(())
}

/// 64 writers load and save one record with versions, retrying on
/// conflicts, until each has saved twice: the final version is 1 plus the
/// number of [`SaveOutcome::Saved`] outcomes and every writer's last
/// write is in the data.
///
/// What users get: concurrent requests of one visitor lose no write.
///
/// # Errors
///
/// The broken promise, when versions and saves disagree, a write is lost,
/// or a writer is starved.
pub async fn save_concurrent_writers<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "save_concurrent_writers").await;
    let t0 = now();
    let first = record(fresh_key(), t0, data(json!({})));
    s.create_new(&first, t0).await?;

    let key = first.key;
    let saves = s
        .race(WRITERS, |writer, s| async move {
            write_until_saved(&s, key, format!("w{writer}"), t0).await
        })
        .await?;
    let saved: u64 = saves.into_iter().sum();

    let Some(last) = s.load(&first.key, t0).await? else {
        return Err(s.fail("the record outlives concurrent saves", "no record"));
    };
    s.check_eq(
        last.version,
        1 + saved,
        "the final version is 1 + the number of Saved outcomes",
    )?;
    for writer in 0..WRITERS {
        let name = format!("w{writer}");
        s.check_eq(
            last.data.get(&name),
            Some(Value::from(SAVES_EACH)),
            "no write is lost: every writer's last save is in the data",
        )?;
    }
    Ok(())
}

/// One writer: load, set its own key to its save count, save with the
/// loaded version; retry on conflict until it saved [`SAVES_EACH`] times.
async fn write_until_saved<S: session_core::Store>(
    s: &Subject<S>,
    key: session_core::StorageKey,
    name: String,
    now: session_core::time::OffsetDateTime,
) -> Result<u64, Failure> {
    let mut saved = 0;
    for _ in 0..ATTEMPTS {
        let Some(current) = s.load(&key, now).await? else {
            return Err(s.fail("the record outlives concurrent saves", "no record"));
        };

        let mut data = current.data.clone();
        data.insert(name.clone(), Value::from(saved + 1));
        match s.save(&next(&current, data), current.version, now).await? {
            SaveOutcome::Saved => saved += 1,
            SaveOutcome::Conflict => continue,
            SaveOutcome::Missing => {
                return Err(s.fail("a live record is never reported Missing", "Missing"));
            }
        }
        if saved == SAVES_EACH {
            return Ok(saved);
        }
    }
    Err(s.fail(
        "a writer saves within 20,000 attempts",
        format!("{name} saved {saved} times, conflicting on every other attempt"),
    ))
}
