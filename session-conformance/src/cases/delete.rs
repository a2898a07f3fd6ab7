//! `delete` and `delete_expired`.

use serde_json::json;
use session_core::time::OffsetDateTime;
use session_core::Record;

use crate::fixture::{data, fresh_key, now, record, simple, LIFETIME, MS};
use crate::subject::Subject;
use crate::{Failure, Harness};

/// `delete` removes one record and nothing else; deleting a missing key,
/// or the same key twice, is not an error; a deleted key can be created
/// again.
///
/// What users get: logging out twice, or from two tabs at once, is
/// harmless.
///
/// # Errors
///
/// The broken promise, when a delete fails, misses its record or removes
/// another.
pub async fn delete_is_idempotent<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "delete_is_idempotent").await;
    let t0 = now();
    s.delete(&fresh_key()).await?;

    let gone = simple(t0, "alice");
    let kept = simple(t0, "bob");
    s.create_new(&gone, t0).await?;
    s.create_new(&kept, t0).await?;

    s.delete(&gone.key).await?;
    s.expect_absent(&gone.key, t0, "a deleted record no longer loads")
        .await?;
    s.expect_record(&kept.key, t0, &kept, "a delete removes only its own record")
        .await?;
    s.delete(&gone.key).await?;

    let again = record(gone.key, t0 + MS, data(json!({ "user": "carol" })));
    s.create_new(&again, t0 + MS).await?;
    s.expect_record(
        &gone.key,
        t0 + MS,
        &again,
        "a deleted key can be created again",
    )
    .await
}

/// `delete_expired(now)` removes exactly the records expired at `now`
/// (`expires_at <= now`) and returns their number, or, for a store whose
/// backend expires records itself, removes nothing and returns 0. Live
/// records are left as they were.
///
/// What users get: cleanup jobs never log anyone out early, and their
/// count can be trusted.
///
/// # Errors
///
/// The broken promise, when a live record is removed, the count is not
/// the number removed, or an expired record still loads.
pub async fn delete_expired_counts_only_expired<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "delete_expired_counts_only_expired").await;
    let t0 = now();
    let sweep = t0 + LIFETIME * 2;
    let expiring = |expires_at: OffsetDateTime| Record {
        expires_at,
        ..simple(t0, "someone")
    };
    let expired = [
        expiring(t0 + LIFETIME),
        expiring(sweep - MS),
        expiring(sweep),
    ];
    let live = [expiring(sweep + MS), expiring(sweep + LIFETIME)];
    for each in expired.iter().chain(&live) {
        s.create_new(each, t0).await?;
    }

    let removed = s.delete_expired(sweep).await?;
    s.check(
        removed == 3 || removed == 0,
        "delete_expired returns how many it removed",
        || format!("{removed} for 3 expired records and 2 live ones"),
    )?;

    for each in &live {
        s.expect_record(
            &each.key,
            sweep,
            each,
            "delete_expired leaves live records as they were",
        )
        .await?;
    }
    for each in &expired {
        // Loaded at `t0`, when it was live, it shows whether the count
        // told the truth. This comes before any load at `sweep`, since a
        // store may drop an expired record when it meets one.
        let before = s.load(&each.key, t0).await?;
        if removed == 3 {
            s.check_absent(before, "the records delete_expired counted are gone")?;
        } else {
            s.check_record(
                before,
                each,
                "a delete_expired that returns 0 removed nothing",
            )?;
        }

        s.expect_absent(&each.key, sweep, "an expired record never loads")
            .await?;
    }

    let again = s.delete_expired(sweep).await?;
    s.check(
        again == 0,
        "a second delete_expired finds nothing more to count",
        || format!("{again} more"),
    )
}
