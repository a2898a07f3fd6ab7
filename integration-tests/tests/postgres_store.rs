//! `PostgresStore` behaviour beyond the conformance suite: migrations under
//! concurrency and with other tools, a restricted role (C26), time zones,
//! rows that no longer decode, batched and locked cleanup.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use integration_tests::postgres::{self, TestDatabase};
use integration_tests::server::{find_program, output_of};
use serde_json::json;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    CreateOutcome, Data, Id, ManualClock, Record, SaveOutcome, Session, SessionConfig, StorageKey,
    Store, TouchOutcome,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, Executor as _, PgPool};
use store_postgres::PostgresStore;

fn record(byte: u8, now: OffsetDateTime) -> Record {
    let data = json!({ "user": "alice", "n": 1 });
    Record {
        key: StorageKey::from_bytes([byte; 32]),
        data: Data::try_from(data).unwrap_or_default(),
        version: 1,
        created_at: now,
        expires_at: now + Duration::hours(1),
        deadline: now + Duration::days(1),
        principal: None,
        expiry: None,
    }
}

async fn regclass_exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("to_regclass answers")
}

/// An application migration of its own, applied with sqlx's migrator, so
/// that `_sqlx_migrations` has history to keep.
async fn app_migrations(pool: &PgPool, dir: &Path) {
    std::fs::create_dir_all(dir).expect("migration dir");
    let file = dir.join("20240101000000_app.sql");
    std::fs::write(file, "CREATE TABLE app_users (id bigint PRIMARY KEY);").expect("write");

    let migrator = sqlx::migrate::Migrator::new(dir).await.expect("migrator");
    migrator
        .run(pool)
        .await
        .expect("the app's migrations apply");
}

async fn sqlx_history(pool: &PgPool) -> Vec<(i64, Vec<u8>)> {
    sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .expect("the app's history reads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_migrate_at_once_on_an_empty_database() {
    let db = postgres::shared().fresh_database().await;
    let admin = db.pool().await;
    let app_dir = std::env::temp_dir().join(format!("app-migrations-{}", db.name()));
    app_migrations(&admin, &app_dir).await;
    let history = sqlx_history(&admin).await;

    // Three instances, each with a pool of its own, start together.
    let start = Arc::new(tokio::sync::Barrier::new(3));
    let mut instances = Vec::new();
    for _ in 0..3 {
        let store = PostgresStore::new(db.pool().await);
        let start = Arc::clone(&start);
        instances.push(tokio::spawn(async move {
            start.wait().await;
            store.migrate().await
        }));
    }

    for instance in instances {
        instance
            .await
            .expect("no panic")
            .expect("every instance comes up");
    }
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_store_migrations WHERE table_name = 'sessions'",
    )
    .fetch_one(&admin)
    .await
    .expect("bookkeeping reads");
    assert_eq!(recorded, 1, "each migration recorded once");
    assert!(regclass_exists(&admin, "public.sessions").await);
    assert_eq!(
        sqlx_history(&admin).await,
        history,
        "the app's history is untouched"
    );
    let _ = std::fs::remove_dir_all(app_dir);
}

#[tokio::test]
async fn migrate_twice_is_a_no_op_and_edited_or_newer_history_is_refused() {
    let db = postgres::shared().fresh_database().await;
    let pool = db.pool().await;
    let store = PostgresStore::new(pool.clone());

    store.migrate().await.expect("first run");
    store.migrate().await.expect("second run changes nothing");

    sqlx::query("UPDATE session_store_migrations SET checksum = '\\x00'")
        .execute(&pool)
        .await
        .expect("tamper");
    let changed = store
        .migrate()
        .await
        .expect_err("an edited migration is refused");
    assert!(matches!(
        changed,
        store_postgres::Error::MigrationChanged { version: 1 }
    ));

    sqlx::query(
        "INSERT INTO session_store_migrations (table_name, version, description, checksum) \
         VALUES ('other', 99, 'from the future', '\\x00')",
    )
    .execute(&pool)
    .await
    .expect("a newer build's row for another table");
    let other = PostgresStore::builder(pool)
        .with_table("other")
        .build()
        .expect("valid name");
    let newer = other
        .migrate()
        .await
        .expect_err("a newer history is refused");
    assert!(matches!(
        newer,
        store_postgres::Error::UnknownMigration { version: 99 }
    ));
    assert!(newer.is_migration());
}

#[tokio::test]
async fn the_migration_script_works_in_one_transaction_and_migrate_agrees() {
    let db = postgres::shared().fresh_database().await;
    let pool = db.pool().await;
    let store = PostgresStore::builder(pool.clone())
        .with_table("Scripted Sessions")
        .build()
        .expect("valid name");

    // What sqlx-cli or `psql -1` does with a migration file.
    let mut conn = pool.acquire().await.expect("connection");
    let mut tx = conn.begin().await.expect("begin");
    tx.execute(store.migration_script().as_str())
        .await
        .expect("the script runs");
    tx.commit().await.expect("commit");
    drop(conn);

    store
        .migrate()
        .await
        .expect("migrate sees the versions applied");
    let now = OffsetDateTime::now_utc();
    let created = store.create(&record(1, now), now).await.expect("create");
    assert_eq!(created, CreateOutcome::Created);
}

#[tokio::test]
async fn the_migration_files_apply_with_psql_variables() {
    let db = postgres::shared().fresh_database().await;
    let pool = db.pool().await;
    sqlx::query("CREATE SCHEMA \"Psql App\"")
        .execute(&pool)
        .await
        .expect("schema");
    let psql = find_program("psql", &psql_dirs()).expect(
        "this test runs the shipped files through psql: install the PostgreSQL client \
         (Debian/Ubuntu: apt-get install postgresql-client)",
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store-postgres/migrations");
    for file in std::fs::read_dir(&dir).expect("the migrations folder") {
        let file = file.expect("entry").path();
        let mut run = Command::new(&psql);
        run.args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1"])
            .args(["-v", "schema=Psql App", "-v", "table=select"])
            .arg("-f")
            .arg(&file)
            .arg(db.url());
        output_of(&mut run).expect("psql applies the file");
    }

    // The table psql made is the one the store uses.
    let store = PostgresStore::builder(pool.clone())
        .with_schema("Psql App")
        .with_table("select")
        .build()
        .expect("valid names");
    let now = session_core::truncate_to_millis(OffsetDateTime::now_utc());
    store.create(&record(2, now), now).await.expect("create");
    let loaded = store.load(&record(2, now).key, now).await.expect("load");
    assert_eq!(loaded, Some(record(2, now)));
}

fn psql_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.reverse();
    dirs
}

/// C26: a role with USAGE and CREATE on one schema only, and names that
/// need quoting.
#[tokio::test]
async fn a_role_limited_to_one_schema_can_migrate_and_use_the_store() {
    let db = postgres::shared().fresh_database().await;
    let admin = db.pool().await;
    let role = format!("c26_{}", db.name());
    let password = format!("pw-{}", Id::random().encode());
    for statement in [
        "CREATE SCHEMA app".to_owned(),
        format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"),
        format!("REVOKE ALL ON DATABASE \"{}\" FROM PUBLIC", db.name()),
        format!("GRANT CONNECT ON DATABASE \"{}\" TO \"{role}\"", db.name()),
        "REVOKE ALL ON SCHEMA public FROM PUBLIC".to_owned(),
        format!("GRANT USAGE, CREATE ON SCHEMA app TO \"{role}\""),
    ] {
        admin.execute(statement.as_str()).await.expect(&statement);
    }
    let limited = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(db.options().username(&role).password(&password))
        .await
        .expect("the role connects");

    let outcome = exercise_limited_role(&limited, &admin, &role).await;

    limited.close().await;
    drop_role(db, &role).await;
    outcome.unwrap_or_else(|message| panic!("{message}"));
}

async fn exercise_limited_role(limited: &PgPool, admin: &PgPool, role: &str) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    let tables = [
        "web_sessions",
        "Web Sessions",
        "MixedCase",
        "select",
        "app.sessions",
    ];

    for (i, table) in tables.into_iter().enumerate() {
        let store = PostgresStore::builder(limited.clone())
            .with_schema("app")
            .with_table(table)
            .build()
            .map_err(|e| format!("{table}: {e}"))?;
        store
            .migrate()
            .await
            .map_err(|e| format!("{table}: migrate: {e:?}"))?;

        let byte = u8::try_from(i).unwrap_or(0);
        let mut rec = record(byte, now);
        let created = store.create(&rec, now).await.map_err(|e| e.to_string())?;
        let loaded = store.load(&rec.key, now).await.map_err(|e| e.to_string())?;
        rec.version = 2;
        let saved = store.save(&rec, 1, now).await.map_err(|e| e.to_string())?;
        store.delete(&rec.key).await.map_err(|e| e.to_string())?;
        let gone = store.load(&rec.key, now).await.map_err(|e| e.to_string())?;

        let ok = created == CreateOutcome::Created
            && loaded.is_some()
            && saved == SaveOutcome::Saved
            && gone.is_none();
        if !ok {
            return Err(format!(
                "{table}: {created:?} {loaded:?} {saved:?} {gone:?}"
            ));
        }
    }

    // Every table is in `app` under its exact name; nothing elsewhere.
    let owned: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relowner = $1::regrole AND c.relkind = 'r' ORDER BY 2",
    )
    .bind(format!("\"{role}\""))
    .fetch_all(admin)
    .await
    .map_err(|e| e.to_string())?;
    let mut expected: Vec<(String, String)> = tables
        .iter()
        .chain(&["session_store_migrations"])
        .map(|t| ("app".to_owned(), (*t).to_owned()))
        .collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    if owned != expected {
        return Err(format!(
            "objects owned by the role: {owned:?}, expected {expected:?}"
        ));
    }

    // Outside its schema the role is refused with a clear migration error.
    let public = PostgresStore::new(limited.clone());
    match public.migrate().await {
        Err(store_postgres::Error::Migrate { .. }) => Ok(()),
        other => Err(format!("migrating in public should fail, got {other:?}")),
    }
}

async fn drop_role(db: TestDatabase, role: &str) {
    let admin_options: PgConnectOptions = postgres::shared().admin_options();
    drop(db);

    let mut conn = sqlx::PgConnection::connect_with(&admin_options)
        .await
        .expect("admin connects");
    conn.execute(format!("DROP ROLE IF EXISTS \"{role}\"").as_str())
        .await
        .expect("the role is dropped with its database gone");
}

#[tokio::test]
async fn the_callers_clock_decides_never_the_database_time_zone_or_clock() {
    let db = postgres::shared().fresh_database().await;
    let pool = PgPoolOptions::new()
        .connect_with(db.options().options([("timezone", "Pacific/Kiritimati")]))
        .await
        .expect("pool in UTC+14");
    let store = PostgresStore::new(pool);
    store.migrate().await.expect("migrate");

    // Years in the past by the server's clock, live by the caller's.
    let then = OffsetDateTime::from_unix_timestamp(981_173_106).expect("a 2001 date")
        + Duration::milliseconds(789);
    let rec = record(7, then);
    store.create(&rec, then).await.expect("create");

    let loaded = store.load(&rec.key, then).await.expect("load");
    assert_eq!(
        loaded,
        Some(rec.clone()),
        "read back exactly, to the millisecond"
    );
    let after = rec.expires_at;
    assert_eq!(store.load(&rec.key, after).await.expect("load"), None);
    let touched = store
        .touch(&rec.key, then + Duration::days(5), then)
        .await
        .expect("touch");
    assert_eq!(touched, TouchOutcome::Touched);
    let capped = store.load(&rec.key, then).await.expect("load");
    assert_eq!(capped.map(|r| r.expires_at), Some(rec.deadline));
}

#[tokio::test]
async fn a_row_that_no_longer_decodes_is_a_decode_error_and_no_session() {
    let db = postgres::shared().fresh_database().await;
    let pool = db.pool().await;
    let store = PostgresStore::new(pool.clone());
    store.migrate().await.expect("migrate");
    let now = session_core::truncate_to_millis(OffsetDateTime::now_utc());
    let id = Id::random();
    let mut rec = record(0, now);
    rec.key = id.storage_key();
    store.create(&rec, now).await.expect("create");

    for damage in [
        "UPDATE sessions SET data = '[1, 2]'",
        "UPDATE sessions SET data = '{}', expiry = 'not an expiry'",
        "UPDATE sessions SET expiry = NULL, created_at = 'infinity'",
        "UPDATE sessions SET created_at = now(), deadline = '20000-01-01 UTC'",
    ] {
        pool.execute(damage).await.expect(damage);

        let error = store.load(&rec.key, now).await.expect_err(damage);
        assert!(error.is_decode(), "{damage}: {error:?}");
    }

    // Through a session it is simply "no session".
    let config = Arc::new(SessionConfig::new().with_clock(ManualClock::new(now)));
    let session = Session::new(Arc::new(store), config, vec![id]);
    let user: Option<String> = session.get("user").await.expect("no error");
    assert_eq!(user, None);
}

#[tokio::test]
async fn expired_rows_go_in_bounded_batches_and_stats_count_them() {
    let db = postgres::shared().fresh_database().await;
    let store = PostgresStore::builder(db.pool().await)
        .with_batch_size(7)
        .build()
        .expect("valid");
    store.migrate().await.expect("migrate");
    let now = OffsetDateTime::now_utc();
    for byte in 0..55u8 {
        let created = now - Duration::hours(3);
        store
            .create(&record(byte, created), created)
            .await
            .expect("create");
    }
    for byte in 55..60u8 {
        store.create(&record(byte, now), now).await.expect("create");
    }

    let before = store.stats(now).await.expect("stats");
    let removed = store.delete_expired(now).await.expect("delete_expired");
    let after = store.stats(now).await.expect("stats");

    assert_eq!((before.live, before.expired), (5, 55));
    assert_eq!(removed, 55);
    assert_eq!((after.live, after.expired), (5, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_cleans_at_a_time_and_cleanup_shuts_down() {
    let db = postgres::shared().fresh_database().await;
    let first = PostgresStore::builder(db.pool().await)
        .with_batch_size(10)
        .build()
        .expect("valid");
    let second = PostgresStore::new(db.pool().await);
    first.migrate().await.expect("migrate");
    let now = OffsetDateTime::now_utc();
    let created = now - Duration::hours(2);
    for byte in 0..40u8 {
        first
            .create(&record(byte, created), created)
            .await
            .expect("create");
    }

    // Someone else holds the cleanup lock: this instance skips its turn.
    let mut holder = db.pool().await.acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(first.cleanup_lock_key())
        .execute(&mut *holder)
        .await
        .expect("lock");
    assert_eq!(first.sweep_expired(now).await.expect("sweep"), None);
    assert_eq!(first.stats(now).await.expect("stats").expired, 40);
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(first.cleanup_lock_key())
        .execute(&mut *holder)
        .await
        .expect("unlock");

    // Both instances run the task; every row is removed exactly once.
    let clock = ManualClock::new(now);
    let tasks = [
        first.spawn_cleanup(StdDuration::from_millis(20), clock.clone()),
        second.spawn_cleanup(StdDuration::from_millis(20), clock),
    ];
    for _ in 0..500 {
        if first.stats(now).await.expect("stats").expired == 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let mut total = 0;
    for task in tasks {
        total += task.shutdown().await.expect("clean shutdown");
    }

    assert_eq!(first.stats(now).await.expect("stats").expired, 0);
    assert_eq!(total, 40);
}
