//! Namespaces (key prefixes, tables) on one server are kept apart.

use serde_json::json;
use session_core::{CreateOutcome, Record};

use crate::fixture::{data, next, now, LIFETIME, MS};
use crate::subject::Subject;
use crate::{Failure, Harness};

/// Two stores over different namespaces of one server share nothing: a
/// key used in one is unused in the other, and every operation of one,
/// `delete_expired` and the principal index included, leaves the other's
/// records as they were.
///
/// What users get: several applications, or a test and a production
/// deployment, can share one Redis or database without mixing sessions.
///
/// # Errors
///
/// The broken promise, when one namespace sees or changes the other's
/// records.
pub async fn namespaces_isolated<H: Harness>(h: &H) -> Result<(), Failure> {
    let a = Subject::open(h, "namespaces_isolated").await;
    let b = Subject::open(h, "namespaces_isolated").await;
    let t0 = now();
    let theirs = Record {
        principal: Some("alice".to_owned()),
        ..crate::fixture::simple(t0, "alice")
    };
    a.create_new(&theirs, t0).await?;

    b.expect_absent(
        &theirs.key,
        t0,
        "a store never sees another namespace's records",
    )
    .await?;
    let ours = Record {
        data: data(json!({ "user": "bob" })),
        principal: Some("bob".to_owned()),
        ..theirs.clone()
    };
    let outcome = b.create(&ours, t0).await?;
    b.check_eq(
        outcome,
        CreateOutcome::Created,
        "a key used in another namespace is unused in this one",
    )?;

    let ours2 = next(&ours, data(json!({ "user": "bob", "step": 2 })));
    b.save_ok(&ours2, 1, t0).await?;
    b.touch_ok(&ours.key, t0 + LIFETIME * 2, t0).await?;
    a.expect_record(
        &theirs.key,
        t0,
        &theirs,
        "a save or touch in one namespace leaves the other's",
    )
    .await?;

    if b.supports_principal_index() {
        let listed = b.list_by_principal("alice", t0).await?;
        b.check_eq(listed.len(), 0, "the principal index is per namespace")?;
        let removed = b.delete_by_principal("alice", t0).await?;
        b.check_eq(
            removed,
            0,
            "delete_by_principal reaches only its own namespace",
        )?;
    }
    b.delete(&ours.key).await?;

    // `theirs` is expired at `sweep`; b holds nothing, so it removes none.
    let sweep = theirs.expires_at + MS;
    let removed = b.delete_expired(sweep).await?;
    b.check_eq(removed, 0, "delete_expired counts only its own namespace")?;
    a.expect_record(
        &theirs.key,
        t0,
        &theirs,
        "deletes in one namespace leave the other's records",
    )
    .await
}
