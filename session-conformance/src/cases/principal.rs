//! The principal index: "log out everywhere".

use std::fmt::Debug;

use serde_json::json;
use session_core::time::Duration;
use session_core::{Record, Store, StoreError};

use crate::fixture::{data, next, now, simple};
use crate::subject::{cut, Subject};
use crate::{Failure, Harness};

/// `list_by_principal` returns exactly the live records of one principal
/// (no prefix or pattern matches: `alice` is not `alice2` nor `ali*`), and
/// `delete_by_principal` deletes them all, returns their number, and
/// touches no other principal's records. A store without an index says
/// so: [`Store::supports_principal_index`] is false and both operations
/// return [`StoreError::Unsupported`].
///
/// What users get: "log out everywhere" logs out every session of that
/// user and of no one else.
///
/// # Errors
///
/// The broken promise, when a list is wrong, a delete misses or over-
/// reaches, or an unsupported store answers otherwise.
pub async fn principal_list_and_delete<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "principal_list_and_delete").await;
    if !s.supports_principal_index() {
        return check_unsupported(&s).await;
    }
    let t0 = now();
    let of = |principal: Option<&str>| Record {
        principal: principal.map(str::to_owned),
        ..simple(t0, principal.unwrap_or("anonymous"))
    };
    let alice = [of(Some("alice")), of(Some("alice"))];
    let others = [of(Some("alice2")), of(Some("ali*")), of(None)];
    for each in alice.iter().chain(&others) {
        s.create_new(each, t0).await?;
    }

    let listed = s.list_by_principal("alice", t0).await?;
    check_listed(
        &s,
        listed,
        &alice,
        "list_by_principal returns exactly that principal's",
    )?;
    let listed = s.list_by_principal("ali*", t0).await?;
    check_listed(
        &s,
        listed,
        &others[1..2],
        "a principal is matched whole, never as a pattern",
    )?;
    let listed = s.list_by_principal("nobody", t0).await?;
    check_listed(&s, listed, &[], "an unknown principal has no records")?;

    let removed = s.delete_by_principal("alice", t0).await?;
    s.check_eq(
        removed,
        2,
        "delete_by_principal returns how many live records it deleted",
    )?;
    for each in &alice {
        s.expect_absent(
            &each.key,
            t0,
            "delete_by_principal deletes every record of the principal",
        )
        .await?;
    }
    for each in &others {
        s.expect_record(
            &each.key,
            t0,
            each,
            "delete_by_principal leaves other principals' records",
        )
        .await?;
    }

    let listed = s.list_by_principal("alice", t0).await?;
    check_listed(
        &s,
        listed,
        &[],
        "a principal has no records after delete_by_principal",
    )?;
    let removed = s.delete_by_principal("alice", t0).await?;
    s.check_eq(removed, 0, "a second delete_by_principal finds nothing")
}

/// The principal index stays right as sessions change: a record that
/// moves to another principal (or to none) through `save`, a deleted
/// record and an expired record are no longer listed under the old
/// principal, and `delete_by_principal` counts only live records.
///
/// What users get: "log out everywhere" and "list my sessions" see
/// exactly the user's live sessions, never a stale entry.
///
/// # Errors
///
/// The broken promise, when a list or count includes a stale record.
pub async fn principal_follows_changes<H: Harness>(h: &H) -> Result<(), Failure> {
    let s = Subject::open(h, "principal_follows_changes").await;
    if !s.supports_principal_index() {
        return check_unsupported(&s).await;
    }
    let t0 = now();
    let alices = || Record {
        principal: Some("alice".to_owned()),
        ..simple(t0, "alice")
    };
    let stays = alices();
    let moves = alices();
    let leaves = alices();
    let deleted = alices();
    let expires = Record {
        expires_at: t0 + Duration::minutes(30),
        ..alices()
    };
    for each in [&stays, &moves, &leaves, &deleted, &expires] {
        s.create_new(each, t0).await?;
    }

    let moved = Record {
        principal: Some("bob".to_owned()),
        ..next(&moves, data(json!({ "user": "bob" })))
    };
    let left = Record {
        principal: None,
        ..next(&leaves, data(json!({})))
    };
    for each in [&moved, &left] {
        s.save_ok(each, 1, t0).await?;
    }
    s.delete(&deleted.key).await?;

    let at = t0 + Duration::minutes(45);
    let listed = s.list_by_principal("alice", at).await?;
    check_listed(
        &s,
        listed,
        std::slice::from_ref(&stays),
        "a record that changed principal, was deleted or expired is not listed under the old one",
    )?;
    let listed = s.list_by_principal("bob", at).await?;
    check_listed(
        &s,
        listed,
        std::slice::from_ref(&moved),
        "a record is listed under its new principal",
    )?;

    let removed = s.delete_by_principal("alice", at).await?;
    s.check_eq(
        removed,
        1,
        "delete_by_principal counts only live records of the principal",
    )?;
    s.expect_record(
        &moved.key,
        at,
        &moved,
        "delete_by_principal spares a record that left the principal",
    )
    .await?;
    s.expect_record(
        &left.key,
        at,
        &left,
        "delete_by_principal spares a record that left the principal",
    )
    .await
}

/// A failure unless `listed` holds exactly `want`, in any order.
fn check_listed<S: Store>(
    s: &Subject<S>,
    mut listed: Vec<Record>,
    want: &[Record],
    promise: &str,
) -> Result<(), Failure> {
    let mut want = want.to_vec();
    listed.sort_by_key(|record| record.key);
    want.sort_by_key(|record| record.key);

    s.check(listed == want, promise, || {
        let found: Vec<_> = listed.iter().map(describe).collect();
        let wanted: Vec<_> = want.iter().map(describe).collect();
        format!(
            "{} records [{}], expected [{}]",
            listed.len(),
            found.join(", "),
            wanted.join(", ")
        )
    })
}

/// A listed record in a failure message: its principal and data.
fn describe(record: &Record) -> String {
    format!("{} {}", cut(&record.principal), cut(&record.data))
}

/// A store without a principal index must say so from both operations.
async fn check_unsupported<S: Store>(s: &Subject<S>) -> Result<(), Failure> {
    let t0 = now();
    let listed = s.raw().list_by_principal("alice", t0).await;
    unsupported(s, listed, "list_by_principal")?;
    let deleted = s.raw().delete_by_principal("alice", t0).await;
    unsupported(s, deleted, "delete_by_principal")
}

fn unsupported<S: Store, T: Debug>(
    s: &Subject<S>,
    answer: Result<T, StoreError>,
    op: &str,
) -> Result<(), Failure> {
    let promise = format!(
        "a store whose supports_principal_index() is false answers {op} with \
         StoreError::Unsupported"
    );
    match answer {
        Err(error) if error.is_unsupported() => Ok(()),
        Err(error) => Err(s.fail(&promise, format!("error: {error}"))),
        Ok(value) => Err(s.fail(&promise, format!("Ok({})", cut(&value)))),
    }
}
