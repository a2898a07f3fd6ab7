//! `touch`: expiry moves, nothing else does (C03).

use serde_json::json;
use session_core::time::Duration;
use session_core::{Record, SaveOutcome, TouchOutcome};

use crate::fixture::{data, fresh_key, next, now, record, simple, LIFETIME, MS};
use crate::subject::Subject;
use crate::{Failure, Harness};

/// A touch sets `expires_at` to the requested time, later or earlier, and
/// changes nothing else: not the data, not the principal, not the version
/// (a save expecting the loaded version still succeeds afterwards).
///
/// What users get: refreshing a session on a read-only request is cheap
/// and cannot disturb anything a handler wrote.
///
/// # Errors
///
/// The broken promise, when the touch is refused or changes more than the
/// expiry.
pub async fn touch_moves_expiry_only<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "touch_moves_expiry_only").await;
    let t0 = now();
    let first = Record {
        principal: Some("alice".to_owned()),
        ..simple(t0, "alice")
    };
    s.create_new(&first, t0).await?;

    let at = t0 + Duration::minutes(10);
    for target in [at + LIFETIME, at + Duration::minutes(5)] {
        s.touch_ok(&first.key, target, at).await?;

        let want = Record {
            expires_at: target,
            ..first.clone()
        };
        s.expect_record(
            &first.key,
            at,
            &want,
            "a touch sets expires_at as asked and changes nothing else",
        )
        .await?;
    }

    let saved = next(&first, data(json!({ "user": "alice", "after": "touch" })));
    let outcome = s.save(&saved, 1, at).await?;
    s.check_eq(
        outcome,
        SaveOutcome::Saved,
        "a touch keeps the version: a save expecting the loaded version succeeds",
    )
}

/// A touch made after another writer saved or deleted the record keeps
/// that writer's work: the saved data stays (a removed key stays removed),
/// and a deleted record stays deleted (C03).
///
/// What users get: a slow read-only request never undoes a logout made by
/// a concurrent request.
///
/// # Errors
///
/// The broken promise, when the touch brings back older data or the
/// deleted record.
pub async fn touch_keeps_concurrent_write<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "touch_keeps_concurrent_write").await;
    let t0 = now();
    let first = record(
        fresh_key(),
        t0,
        data(json!({ "user": "alice", "cart": [1] })),
    );
    s.create_new(&first, t0).await?;

    // Request A loads and is slow; request B logs the user out meanwhile.
    let seen_by_a = s.load(&first.key, t0).await?;
    s.check_record(seen_by_a, &first, "a created record loads")?;
    let logged_out = next(&first, data(json!({ "cart": [1] })));
    s.save_ok(&logged_out, 1, t0 + MS).await?;

    // A finishes and refreshes the expiry of what it loaded.
    let at = t0 + Duration::seconds(2);
    s.touch_ok(&first.key, at + LIFETIME, at).await?;
    let want = Record {
        expires_at: at + LIFETIME,
        ..logged_out
    };
    s.expect_record(
        &first.key,
        at,
        &want,
        "a touch keeps what another writer saved since (a removed key stays removed)",
    )
    .await?;

    // Request C deletes the session; A's late touch must not revive it.
    s.delete(&first.key).await?;
    let outcome = s.touch(&first.key, at + LIFETIME, at + MS).await?;
    s.check_eq(
        outcome,
        TouchOutcome::Missing,
        "a touch of a deleted record reports Missing",
    )?;
    s.expect_absent(
        &first.key,
        at + MS,
        "a touch never brings a deleted record back",
    )
    .await
}

/// A touch of a key that was never created, or of a record expired at
/// `now`, reports [`TouchOutcome::Missing`] and creates nothing.
///
/// What users get: an expired session cannot be extended back to life.
///
/// # Errors
///
/// The broken promise, when such a touch reports `Touched` or a record
/// loads afterwards.
pub async fn touch_missing_or_expired<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "touch_missing_or_expired").await;
    let t0 = now();

    let never = fresh_key();
    let outcome = s.touch(&never, t0 + LIFETIME, t0).await?;
    s.check_eq(
        outcome,
        TouchOutcome::Missing,
        "a touch of a never-created key reports Missing",
    )?;
    s.expect_absent(&never, t0, "a touch never creates a record")
        .await?;

    let old = simple(t0, "alice");
    s.create_new(&old, t0).await?;
    let later = old.expires_at;
    let outcome = s.touch(&old.key, later + LIFETIME, later).await?;
    s.check_eq(
        outcome,
        TouchOutcome::Missing,
        "a touch of an expired record reports Missing",
    )?;
    for at in [later, later + Duration::minutes(1)] {
        s.expect_absent(
            &old.key,
            at,
            "a touch never extends an expired record back to life",
        )
        .await?;
    }
    Ok(())
}

/// A touch never moves `expires_at` past the record's `deadline` (the
/// absolute lifetime): asking for later sets it to the deadline.
///
/// What users get: however busy a session is, it ends at its absolute
/// lifetime.
///
/// # Errors
///
/// The broken promise, when the expiry ends up past the deadline or
/// anywhere but on it.
pub async fn touch_capped_at_deadline<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "touch_capped_at_deadline").await;
    let t0 = now();
    let first = Record {
        deadline: t0 + LIFETIME * 2,
        ..simple(t0, "alice")
    };
    s.create_new(&first, t0).await?;

    let at = t0 + Duration::minutes(30);
    let want = Record {
        expires_at: first.deadline,
        ..first.clone()
    };
    for asked in [at + Duration::days(1), first.deadline + MS] {
        s.touch_ok(&first.key, asked, at).await?;

        s.expect_record(
            &first.key,
            at,
            &want,
            "a touch past the deadline sets expires_at to the deadline",
        )
        .await?;
    }
    Ok(())
}
