//! Rows of the SQLite store's table as a damaged or hand-edited database
//! may hold them: any SQLite value in any column. `SqliteStore` must read
//! each as a record, as no session or as an error, never panic, and never
//! hand out a record that is expired or filed under another key.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use session_core::time::Duration;
use session_core::{from_unix_millis, StorageKey, Store};
use store_sqlite::{PoolConfig, SqliteStore};

/// The key every row is filed under and looked up by.
const KEY: [u8; 32] = [0x42; 32];

/// One SQLite value; the column's declared type does not restrict it.
#[derive(Debug, Arbitrary)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Row {
    data: Cell,
    version: Cell,
    created_at: Cell,
    expires_at: Cell,
    deadline: Cell,
    principal: Cell,
    expiry: Cell,
    now_ms: i64,
}

struct World {
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = session_fuzz::runtime();
        let store = runtime.block_on(async {
            let config = PoolConfig::new().with_max_connections(1);
            let store = SqliteStore::connect_with("sqlite::memory:", &config)
                .await
                .expect("in-memory database");
            store.migrate().await.expect("schema");
            store
        });
        World { runtime, store }
    })
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    cell: &'q Cell,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    match cell {
        Cell::Null => query.bind(None::<i64>),
        Cell::Int(n) => query.bind(*n),
        Cell::Real(x) => query.bind(*x),
        Cell::Text(text) => query.bind(text.as_str()),
        Cell::Blob(bytes) => query.bind(bytes.as_slice()),
    }
}

fuzz_target!(|row: Row| {
    let World { runtime, store } = world();
    let Some(now) = from_unix_millis(row.now_ms) else {
        return;
    };
    let key = StorageKey::from_bytes(KEY);

    runtime.block_on(async {
        let pool = store.pool();
        sqlx::query(r#"DELETE FROM "sessions""#)
            .execute(pool)
            .await
            .expect("delete");

        let insert = sqlx::query(
            r#"INSERT INTO "sessions" ("key", "data", "version", "created_at",
                "expires_at", "deadline", "principal", "expiry")
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"#,
        )
        .bind(&KEY[..]);
        let insert = [
            &row.data,
            &row.version,
            &row.created_at,
            &row.expires_at,
            &row.deadline,
            &row.principal,
            &row.expiry,
        ]
        .into_iter()
        .fold(insert, bind);
        // The table's own constraints refuse some rows; those never exist.
        if insert.execute(pool).await.is_err() {
            return;
        }

        if let Ok(Some(record)) = store.load(&key, now).await {
            assert_eq!(record.key, key, "a record filed under another key");
            assert!(record.version >= 1);
            assert!(!record.is_expired(now), "an expired record was loaded");
        }
        let _ = store
            .touch(&key, now.saturating_add(Duration::hours(1)), now)
            .await;
        let _ = store.delete_expired(now).await;
    });
});
