//! Hashes of the earlier layout whose numbers are in forms the scripts
//! would read differently from the Rust decoder (`+3`, a version wider
//! than 20 digits, `+<ms>`): found by a new user, who saw a session that
//! loaded as live and then conflicted on every save (a 500 on every
//! write) or vanished on the next one. Such a hash now loads as a decode
//! error, so the middleware starts a new session instead.
//!
//! A second reviewer found the same for a `writer` wider than 20 digits,
//! which the decoder did not read at all: the session loaded as alice's
//! while the scripts, their offsets shifted, saw no expiry and no
//! principal, so a save answered missing and a "log out everywhere" left
//! it logged in.

use std::sync::Arc;

use serde_json::json;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{Data, Id, Record, SaveOutcome, Session, SessionConfig, Store, TouchOutcome};

#[macro_use]
mod redis_target;

use redis_target::{legacy_fields, ms, now, on_cluster, on_node, write_hash, Target};

on_node_and_cluster!(
    legacy_version_with_plus_sign_saves,
    legacy_version_with_plus_sign_does_not_fail_every_write,
    legacy_wide_version_saves,
    legacy_expires_with_plus_sign_saves,
    legacy_wide_writer_saves,
    legacy_wide_writer_is_no_session_everywhere,
);

/// A live record of alice, and the id whose storage key it is under.
fn alice(now: OffsetDateTime) -> (Id, Record) {
    let id = Id::random();
    let record = Record {
        key: id.storage_key(),
        data: Data::try_from(json!({ "user": "alice", "visits": 10 })).expect("an object"),
        version: 3,
        created_at: now,
        expires_at: now + Duration::hours(1),
        deadline: now + Duration::days(30),
        principal: Some("alice".to_owned()),
        expiry: None,
    };
    (id, record)
}

/// Writes the hash an earlier version would have written for `record`,
/// with `overrides` replacing fields.
async fn write_with(t: &mut Target, record: &Record, overrides: &[(&str, String)]) {
    let mut fields = legacy_fields(record);
    for (name, value) in overrides {
        for field in &mut fields {
            if field.0 == *name {
                field.1 = value.clone().into_bytes();
            }
        }
    }
    write_hash(t, record, &fields, None, 3_600_000).await;
}

/// Loads the hash, then saves the next version over what was loaded: the
/// store must either refuse to load it (decode error = no session), or
/// accept the save of what it returned.
async fn load_then_save(t: &mut Target, overrides: &[(&str, String)]) {
    let now = now();
    let (_, record) = alice(now);
    write_with(t, &record, overrides).await;

    let loaded = match t.store.load(&record.key, now).await {
        Err(error) if error.is_decode() => return, // no session: fine
        Ok(None) => return,
        Ok(Some(loaded)) => loaded,
        Err(error) => panic!("load failed: {error}"),
    };
    assert_eq!(loaded.version, 3, "{overrides:?}");

    let next = Record {
        version: loaded.version + 1,
        data: Data::try_from(json!({ "user": "alice", "visits": 11 })).expect("an object"),
        ..loaded.clone()
    };
    let saved = t
        .store
        .save(&next, loaded.version, now)
        .await
        .expect("save");
    assert_eq!(
        saved,
        SaveOutcome::Saved,
        "{overrides:?}: load returned a live session at version {}, but a save of it \
         at that version answered {saved:?}",
        loaded.version
    );
    assert_eq!(
        t.store.load(&record.key, now).await.expect("load"),
        Some(next)
    );
}

async fn legacy_version_with_plus_sign_saves(mut t: Target) {
    load_then_save(&mut t, &[("version", "+3".to_owned())]).await;
}

async fn legacy_wide_version_saves(mut t: Target) {
    load_then_save(&mut t, &[("version", format!("{:023}", 3))]).await;
}

async fn legacy_expires_with_plus_sign_saves(mut t: Target) {
    let expires = ms(now() + Duration::hours(1));
    load_then_save(&mut t, &[("expires", format!("+{expires}"))]).await;
}

async fn legacy_wide_writer_saves(mut t: Target) {
    load_then_save(&mut t, &[("writer", format!("1{:020}", 0))]).await;
}

/// Neither a load, a listing, a touch nor a revoke takes the hash for
/// alice's live session.
async fn legacy_wide_writer_is_no_session_everywhere(mut t: Target) {
    let now = now();
    let (_, record) = alice(now);
    let wide = [("writer", format!("1{:020}", 0))];
    write_with(&mut t, &record, &wide).await;

    let loaded = t.store.load(&record.key, now).await;
    assert!(
        loaded.as_ref().is_err_and(|error| error.is_decode()),
        "{loaded:?}"
    );
    let listed = t.store.list_by_principal("alice", now).await.expect("list");
    assert!(listed.is_empty(), "{listed:?}");

    let touched = t
        .store
        .touch(&record.key, now + Duration::hours(2), now)
        .await
        .expect("touch");
    assert_eq!(touched, TouchOutcome::Missing);

    write_with(&mut t, &record, &wide).await;
    t.store
        .delete_by_principal("alice", now)
        .await
        .expect("revoke");
    let after = t.store.load(&record.key, now).await;
    assert!(!matches!(after, Ok(Some(_))), "{after:?}");
}

/// What the middleware does for `GET /me` in the demo, with the session
/// cookie of the hash: update a counter and commit. It answers 500 when
/// the commit fails, and it fails on every request.
async fn legacy_version_with_plus_sign_does_not_fail_every_write(mut t: Target) {
    let now = now();
    let (id, record) = alice(now);
    write_with(&mut t, &record, &[("version", "+3".to_owned())]).await;
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let config = Arc::new(SessionConfig::default());

    for request in 1..=3 {
        let session = Session::new(Arc::clone(&store), Arc::clone(&config), vec![id]);
        let visits = session
            .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .expect("update");
        let committed = session.commit().await;
        assert!(
            committed.is_ok(),
            "request {request} (visits {visits}): commit failed, the middleware answers 500: {:?}",
            committed.err().map(|error| error.to_string())
        );
    }
}
