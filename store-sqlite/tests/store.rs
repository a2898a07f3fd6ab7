//! What the conformance suite does not cover: SQLite specifics (files,
//! WAL, the in-memory database, the stored form), rows that do not decode,
//! batched cleanup, the cleanup task and statistics.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde_json::json;
use session_core::time::Duration;
use session_core::{
    to_unix_millis, Clock, CreateOutcome, Id, ManualClock, Record, Session, SessionConfig, Store,
    StoreError,
};
use store_sqlite::{PoolConfig, SessionCounts, SqliteStore, SqliteStoreError};
use tokio::task::JoinSet;

use common::{now, record, TempDir};

#[tokio::test]
async fn file_sessions_survive_reopening() {
    let dir = TempDir::new();
    let t0 = now();
    let mut saved = record(t0, json!({ "user": "alice", "cart": [1, 2] }));
    saved.principal = Some("alice".to_owned());
    saved.expiry = Some(session_core::Expiry::new(
        Duration::hours(2),
        Duration::days(7),
    ));

    let first = common::file_store(&dir, &PoolConfig::default()).await;
    first.create(&saved, t0).await.unwrap();
    first.pool().close().await;
    let second = common::file_store(&dir, &PoolConfig::default()).await;

    assert_eq!(second.load(&saved.key, t0).await.unwrap(), Some(saved));
}

#[tokio::test]
async fn file_database_uses_wal() {
    let dir = TempDir::new();
    let store = common::file_store(&dir, &PoolConfig::default()).await;

    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();

    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_database_is_one_database_for_every_operation() {
    let store = common::memory_store().await;
    let t0 = now();
    let records: Vec<Record> = (0..50).map(|i| record(t0, json!({ "i": i }))).collect();

    let mut tasks = JoinSet::new();
    for created in &records {
        let (store, created) = (store.clone(), created.clone());
        tasks.spawn(async move { store.create(&created, t0).await });
    }
    let outcomes = tasks.join_all().await;

    assert!(outcomes
        .into_iter()
        .all(|outcome| outcome.unwrap() == CreateOutcome::Created));
    for created in &records {
        assert!(store.load(&created.key, t0).await.unwrap().is_some());
    }
    assert_eq!(store.pool().size(), 1);
}

#[tokio::test]
async fn rows_keep_the_key_hash_and_integer_milliseconds() {
    let store = common::memory_store().await;
    let id = Id::random();
    let t0 = now();
    let created = Record {
        key: id.storage_key(),
        ..record(t0, json!({}))
    };
    store.create(&created, t0).await.unwrap();

    let (key, kinds, expires_at): (Vec<u8>, String, i64) = sqlx::query_as(
        "SELECT \"key\", typeof(created_at) || typeof(expires_at) || typeof(deadline), \
         expires_at FROM sessions",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();

    assert_eq!(key, id.storage_key().as_bytes());
    assert_eq!(kinds, "integerintegerinteger");
    assert_eq!(expires_at, to_unix_millis(created.expires_at));
}

/// Column values that no valid record has, each written over a valid row.
const CORRUPTIONS: &[(&str, &str)] = &[
    ("data", "'not json'"),
    ("data", "'[1, 2]'"),
    ("data", "x'7b7d'"),
    ("version", "'two'"),
    ("created_at", "1.5"),
    ("expires_at", "9223372036854775807"),
    ("expiry", "'{\"idle_ms\": -1}'"),
];

#[tokio::test]
async fn rows_that_do_not_decode_are_decode_errors() {
    let store = common::memory_store().await;
    let t0 = now();

    for (column, value) in CORRUPTIONS {
        let broken = record(t0, json!({ "user": "mallory" }));
        store.create(&broken, t0).await.unwrap();
        corrupt(&store, &broken, column, value).await;

        let loaded = store.load(&broken.key, t0).await;

        assert!(
            matches!(loaded, Err(StoreError::Decode { .. })),
            "{column} = {value}: {loaded:?}"
        );
    }
}

#[tokio::test]
async fn a_row_that_does_not_decode_is_no_session() {
    let store = common::memory_store().await;
    let id = Id::random();
    let t0 = now();
    let broken = Record {
        key: id.storage_key(),
        ..record(t0, json!({ "user": "alice" }))
    };
    store.create(&broken, t0).await.unwrap();
    corrupt(&store, &broken, "data", "'{'").await;
    let session = Session::new(
        Arc::new(store.clone()),
        Arc::new(SessionConfig::default()),
        vec![id],
    );

    let user: Option<String> = session.get("user").await.unwrap();

    assert_eq!(user, None);
}

#[tokio::test]
async fn listing_a_principal_skips_rows_that_do_not_decode() {
    let store = common::memory_store().await;
    let t0 = now();
    let mut good = record(t0, json!({ "n": 1 }));
    good.principal = Some("alice".to_owned());
    let broken = Record {
        key: Id::random().storage_key(),
        ..good.clone()
    };
    store.create(&good, t0).await.unwrap();
    store.create(&broken, t0).await.unwrap();
    corrupt(&store, &broken, "data", "'nope'").await;

    let listed = store.list_by_principal("alice", t0).await.unwrap();
    let deleted = store.delete_by_principal("alice", t0).await.unwrap();

    assert_eq!(listed, vec![good]);
    assert_eq!(deleted, 2);
}

async fn corrupt(store: &SqliteStore, record: &Record, column: &str, value: &str) {
    let sql = format!("UPDATE sessions SET \"{column}\" = {value} WHERE \"key\" = ?1");
    let done = sqlx::query(&sql)
        .bind(&record.key.as_bytes()[..])
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

#[tokio::test]
async fn delete_expired_works_through_batches() {
    let dir = TempDir::new();
    let store = common::file_store(&dir, &PoolConfig::default())
        .await
        .with_cleanup_batch_size(7);
    let t0 = now();
    for i in 0..55 {
        let mut created = record(t0, json!({ "i": i }));
        if i < 50 {
            created.expires_at = t0 + Duration::milliseconds(i + 1);
        }
        store.create(&created, t0).await.unwrap();
    }
    let later = t0 + Duration::seconds(1);

    let removed = store.delete_expired(later).await.unwrap();

    assert_eq!(removed, 50);
    let counts = store.stats(later).await.unwrap();
    assert_eq!(
        counts,
        SessionCounts {
            live: 5,
            expired: 0
        }
    );
}

#[tokio::test]
async fn stats_count_live_and_expired_rows() {
    let store = common::memory_store().await;
    let t0 = now();
    for i in 0..5 {
        let mut created = record(t0, json!({}));
        created.expires_at = t0 + Duration::minutes(i);
        store
            .create(&created, t0 - Duration::minutes(1))
            .await
            .unwrap();
    }

    // expires_at equal to now counts as expired, as it does for load.
    let counts = store.stats(t0 + Duration::minutes(2)).await.unwrap();

    assert_eq!(
        counts,
        SessionCounts {
            live: 2,
            expired: 3
        }
    );
}

#[tokio::test]
async fn cleanup_task_removes_expired_rows_and_shuts_down() {
    let clock = ManualClock::starting_now();
    let store = common::memory_store().await.with_clock(clock.clone());
    let t0 = now();
    for _ in 0..30 {
        store.create(&record(t0, json!({})), t0).await.unwrap();
    }

    let cleanup = store.spawn_cleanup(StdDuration::from_millis(10));
    clock.advance(Duration::hours(2));
    let later = clock.now();
    wait_until(|| async { store.stats(later).await.unwrap().expired == 0 }).await;
    cleanup.shutdown().await;

    store.create(&record(t0, json!({})), t0).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert_eq!(store.stats(later).await.unwrap().expired, 1);
}

#[tokio::test]
async fn dropping_the_cleanup_handle_stops_the_task() {
    let clock = ManualClock::starting_now();
    let store = common::memory_store().await.with_clock(clock.clone());
    let t0 = now();
    let cleanup = store.spawn_cleanup(StdDuration::from_millis(10));
    tokio::time::sleep(StdDuration::from_millis(30)).await;
    assert!(!cleanup.is_finished());

    drop(cleanup);
    store.create(&record(t0, json!({})), t0).await.unwrap();
    clock.advance(Duration::hours(2));
    tokio::time::sleep(StdDuration::from_millis(100)).await;

    assert_eq!(store.stats(clock.now()).await.unwrap().expired, 1);
}

/// Polls `check` for up to 5 seconds.
async fn wait_until<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s");
}

#[tokio::test]
async fn bad_urls_and_unopenable_files_are_clear_errors() {
    let dir = TempDir::new();
    let missing = format!("sqlite://{}", dir.path().join("absent.db").display());
    let no_dir = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("no/such/dir.db").display()
    );

    let bad_mode = SqliteStore::connect("sqlite://x.db?mode=sideways").await;
    let absent = SqliteStore::connect(&missing).await;
    let unreachable = SqliteStore::connect(&no_dir).await;

    assert!(matches!(bad_mode, Err(SqliteStoreError::InvalidUrl { .. })));
    assert!(absent.unwrap_err().is_connect());
    assert!(unreachable.unwrap_err().is_connect());
}

/// Applications call these from spawned tasks and handlers, which need
/// their futures to be `Send`; this fails to compile otherwise.
#[tokio::test]
async fn inherent_methods_run_on_spawned_tasks() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();

    let task = tokio::spawn(async move {
        let applied = store.migrate().await.unwrap();
        store.check_schema().await.unwrap();
        let pending = store.pending_migrations().await.unwrap();
        let counts = store.stats(now()).await.unwrap();
        (applied, pending, counts)
    });
    let (applied, pending, counts) = task.await.unwrap();

    assert_eq!(applied, 1);
    assert!(pending.is_empty());
    assert_eq!(counts, SessionCounts::default());
}

time_zone_tests!(store_tests_pass_in_other_time_zones);
