//! Review: sessions at and around `Record::LAST_VERSION` in a real SQLite
//! database, written by hand as a damaged or very old row would be.

mod common;

use std::sync::Arc;

use common::{memory_store, now, record};
use serde_json::json;
use session_core::{Commit, Id, Record, Session, SessionConfig, Store};
use store_sqlite::SqliteStore;

/// A live row under a fresh id, then its `version` column set by hand to
/// the SQL literal `version` (an integer, or a value SQLite keeps as
/// another type in an INTEGER column).
async fn stored_with(store: &SqliteStore, version: &str) -> (Id, Record) {
    let id = Id::random();
    let t0 = now();
    let record = Record {
        key: id.storage_key(),
        ..record(t0, json!({ "user": "alice" }))
    };
    store.create(&record, t0).await.expect("create");
    let sql = format!("UPDATE sessions SET version = {version} WHERE key = ?1");
    let done = sqlx::query(&sql)
        .bind(&record.key.as_bytes()[..])
        .execute(store.pool())
        .await
        .expect("set the version by hand");
    assert_eq!(done.rows_affected(), 1);
    (id, record)
}

fn session(store: &SqliteStore, id: Id) -> Session {
    let config = Arc::new(SessionConfig::default());
    Session::new(Arc::new(store.clone()), config, vec![id])
}

#[tokio::test]
async fn a_session_at_or_past_the_last_version_is_no_session() {
    let store = memory_store().await;

    // i64::MAX itself, then values an INTEGER column keeps as REAL or
    // TEXT: one past it, 2^64 - 1, and a version that is no number.
    for version in [
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "9.3e18",
        "'many'",
    ] {
        let (id, _) = stored_with(&store, version).await;
        let session = session(&store, id);

        let user: Option<String> = session
            .get("user")
            .await
            .unwrap_or_else(|error| panic!("version {version}: {error:?}"));
        assert_eq!(user, None, "version {version}");
        session.insert("user", "bob").await.expect("insert");
        let commit = session.commit().await.expect("commit");
        let Commit::Set { id: fresh, .. } = commit else {
            panic!("version {version}: {commit:?}");
        };
        assert_ne!(fresh, id, "version {version}");
    }
}

#[tokio::test]
async fn a_write_that_reaches_the_last_version_moves_to_a_new_id() {
    let store = memory_store().await;
    let (id, record) = stored_with(&store, "9223372036854775806").await;
    let session = session(&store, id);

    session.insert("cart", [1, 2]).await.expect("insert");
    let commit = session.commit().await.expect("commit");

    let Commit::Set { id: fresh, .. } = commit else {
        panic!("{commit:?}");
    };
    assert_ne!(fresh, id);
    assert_eq!(store.load(&record.key, now()).await.expect("load"), None);
    let moved = store.load(&fresh.storage_key(), now()).await.expect("load");
    let moved = moved.expect("the session, moved");
    assert_eq!(moved.version, 1);
    assert_eq!(moved.data.get("user"), Some(json!("alice")));
    assert_eq!(moved.data.get("cart"), Some(json!([1, 2])));
}
