//! Migrations: idempotent, safe to run from several processes, apart from
//! the application's sqlx history, usable by other tooling, and for any
//! table name.

mod common;

use serde_json::json;
use session_core::time::Duration;
use session_core::{CreateOutcome, Record, SaveOutcome, Store, TouchOutcome};
use sqlx::migrate::Migrator;
use sqlx::{Executor as _, SqlitePool};
use store_sqlite::{migrations, SqliteStore, SqliteStoreError};
use tokio::task::JoinSet;

use common::{now, record, TempDir};

/// Every schema object in the database, as SQLite records it.
async fn schema(pool: &SqlitePool) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::connect(&dir.db_url("app.db")).await.unwrap()
}

#[tokio::test]
async fn second_migrate_is_a_no_op() {
    let dir = TempDir::new();
    let store = open(&dir).await;

    let first = store.migrate().await.unwrap();
    let after_first = schema(store.pool()).await;
    let second = store.migrate().await.unwrap();
    let reopened = open(&dir).await.migrate().await.unwrap();

    assert_eq!(first, migrations().len());
    assert_eq!((second, reopened), (0, 0));
    assert_eq!(schema(store.pool()).await, after_first);
    assert!(store.pending_migrations().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_apply_each_once() {
    let dir = TempDir::new();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(open(&dir).await);
    }

    let mut tasks = JoinSet::new();
    for store in &stores {
        let store = store.clone();
        tasks.spawn(async move { store.migrate().await });
    }
    let applied: usize = tasks.join_all().await.into_iter().map(Result::unwrap).sum();

    assert_eq!(applied, migrations().len());
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM _store_sqlite_migrations")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(recorded, i64::try_from(migrations().len()).unwrap());
}

#[tokio::test]
async fn application_sqlx_history_is_left_alone() {
    let dir = TempDir::new();
    let app_migrations = dir.path().join("app_migrations");
    std::fs::create_dir(&app_migrations).unwrap();
    std::fs::write(
        app_migrations.join("20240101000000_create_orders.sql"),
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);",
    )
    .unwrap();
    let store = open(&dir).await;
    let app = Migrator::new(app_migrations.as_path()).await.unwrap();
    app.run(store.pool()).await.unwrap();
    let history = sqlx_history(store.pool()).await;

    store.migrate().await.unwrap();

    assert_eq!(sqlx_history(store.pool()).await, history);
    // sqlx refuses to run when the database records a version it does
    // not know, so this also shows nothing was added to its history.
    app.run(store.pool()).await.unwrap();
    store.check_schema().await.unwrap();
}

async fn sqlx_history(pool: &SqlitePool) -> Vec<(i64, String, Vec<u8>, bool)> {
    sqlx::query_as(
        "SELECT version, description, checksum, success FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn shipped_sql_runs_with_other_tooling() {
    let dir = TempDir::new();
    let store = open(&dir).await;
    let renamed = store.clone().with_table_name("Web Sessions").unwrap();

    // What someone else's migration tool would do with the files.
    for migration in migrations() {
        store.pool().execute(migration.sql()).await.unwrap();
        let sql = migration.sql_for_table("Web Sessions").unwrap();
        store.pool().execute(sql.as_str()).await.unwrap();
    }

    store.check_schema().await.unwrap();
    renamed.check_schema().await.unwrap();
    exercise(&store).await;
    exercise(&renamed).await;
    // Not recorded by this crate, and adopting the tables later is safe.
    assert_eq!(store.pending_migrations().await.unwrap(), vec![1]);
    assert_eq!(store.migrate().await.unwrap(), 1);
    assert_eq!(store.stats(now()).await.unwrap().live, 1);
    // The same tables and indexes as migrate() makes, by name and SQL.
    let reference = SqliteStore::connect(&dir.db_url("reference.db"))
        .await
        .unwrap();
    reference.migrate().await.unwrap();
    let reference_renamed = reference.with_table_name("Web Sessions").unwrap();
    reference_renamed.migrate().await.unwrap();
    assert_eq!(
        session_schema(store.pool()).await,
        session_schema(reference_renamed.pool()).await
    );
}

/// The schema objects of the session tables, without the bookkeeping.
async fn session_schema(pool: &SqlitePool) -> Vec<(String, String, Option<String>)> {
    let mut objects = schema(pool).await;
    objects.retain(|(_, name, _)| !name.starts_with('_'));
    objects
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    let dir = TempDir::new();
    let store = open(&dir).await;
    store.migrate().await.unwrap();
    sqlx::query("UPDATE _store_sqlite_migrations SET checksum = x'00'")
        .execute(store.pool())
        .await
        .unwrap();

    let error = store.migrate().await.unwrap_err();

    assert!(
        matches!(error, SqliteStoreError::MigrationChanged { version: 1 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn names_that_need_quoting_are_kept_apart() {
    let dir = TempDir::new();
    let base = open(&dir).await;
    let names = [
        "Web Sessions",
        "order",
        "MixedCase",
        "app.sessions",
        "quote\"d",
        "sessions",
    ];

    for name in names {
        let store = base.clone().with_table_name(name).unwrap();
        assert_eq!(store.migrate().await.unwrap(), 1, "{name}");
        exercise(&store).await;
    }

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(base.pool())
    .await
    .unwrap();
    let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(tables, expected);
    for name in names {
        let store = base.clone().with_table_name(name).unwrap();
        assert_eq!(store.stats(now()).await.unwrap().live, 1, "{name}");
    }
}

#[tokio::test]
async fn table_names_differing_in_case_are_one_table() {
    let dir = TempDir::new();
    let upper = open(&dir).await.with_table_name("Sessions").unwrap();
    let lower = upper.clone().with_table_name("sessions").unwrap();
    let t0 = now();

    upper.migrate().await.unwrap();
    let applied = lower.migrate().await.unwrap();
    upper.create(&record(t0, json!({})), t0).await.unwrap();

    assert_eq!(applied, 0);
    assert_eq!(lower.stats(t0).await.unwrap().live, 1);
}

#[tokio::test]
async fn a_missing_schema_is_reported() {
    let dir = TempDir::new();
    let store = open(&dir).await;
    let t0 = now();

    let missing = store.check_schema().await.unwrap_err();
    let pending = store.pending_migrations().await.unwrap();
    let load = store.load(&record(t0, json!({})).key, t0).await;

    assert!(missing.is_schema_missing(), "{missing:?}");
    assert_eq!(pending, vec![1]);
    assert!(matches!(
        load,
        Err(session_core::StoreError::Backend { .. })
    ));
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();
}

/// Every operation once, leaving one live session behind.
async fn exercise(store: &SqliteStore) {
    let t0 = now();
    let mut kept = record(t0, json!({ "user": "alice" }));
    kept.principal = Some("alice".to_owned());
    let gone = record(t0, json!({}));

    assert_eq!(
        store.create(&kept, t0).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create(&gone, t0).await.unwrap(),
        CreateOutcome::Created
    );
    let saved = Record {
        data: common::data(json!({ "user": "alice", "n": 2 })),
        version: 2,
        ..kept.clone()
    };
    assert_eq!(store.save(&saved, 1, t0).await.unwrap(), SaveOutcome::Saved);
    let later = t0 + Duration::minutes(90);
    assert_eq!(
        store.touch(&saved.key, later, t0).await.unwrap(),
        TouchOutcome::Touched
    );
    assert_eq!(store.list_by_principal("alice", t0).await.unwrap().len(), 1);
    assert_eq!(store.delete_by_principal("nobody", t0).await.unwrap(), 0);
    store.delete(&gone.key).await.unwrap();
    let removed = store
        .delete_expired(t0 + Duration::minutes(80))
        .await
        .unwrap();
    assert_eq!(removed, 0);

    let loaded = store.load(&saved.key, t0).await.unwrap().unwrap();
    assert_eq!(loaded.expires_at, later);
    assert_eq!(loaded.data, saved.data);
}
