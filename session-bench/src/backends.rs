//! Each store with its raw client, ready to compare.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use session_core::Store;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use store_memory::MemoryStore;
use store_postgres::PostgresStore;
use store_redis::RedisStore;
use store_sqlite::SqliteStore;

use crate::targets::{RawMemory, RawPostgres, RawRedis, RawSqlite, StoreTarget, Target, RAW_TABLE};

/// A store and the raw client doing the same work on the same server.
pub struct Pair {
    /// The store, through the `Store` trait.
    pub store: Arc<dyn Target>,
    /// The raw client.
    pub raw: Arc<dyn Target>,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pair")
    }
}

fn pair(store: impl Store, raw: impl Target) -> Pair {
    Pair {
        store: Arc::new(StoreTarget(Arc::new(store))),
        raw: Arc::new(raw),
    }
}

/// Whether a pool checks each idle connection with a ping before handing
/// it out. sqlx does by default, at the cost of one more round trip per
/// operation; the stores' `connect` functions keep the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// sqlx's default: ping before every acquire.
    Default,
    /// `test_before_acquire(false)`.
    Off,
}

/// The memory store and a bare moka cache.
#[must_use]
pub fn memory() -> Pair {
    pair(MemoryStore::new(), RawMemory::new())
}

/// The SQLite store on a file in `dir`, and prepared statements on a
/// second table of the same file, through the store's pool.
///
/// With [`Ping::Default`] the store opens its own pool, as
/// `SqliteStore::connect` does for users; with [`Ping::Off`] the pool is
/// built here with the same settings and no ping.
///
/// # Errors
///
/// When the database cannot be opened or migrated.
pub async fn sqlite(dir: &Path, ping: Ping) -> Result<Pair, String> {
    let file = dir.join(match ping {
        Ping::Default => "sessions.db",
        Ping::Off => "sessions-no-ping.db",
    });
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let failed = |error: store_sqlite::SqliteStoreError| error.to_string();

    let store = match ping {
        Ping::Default => SqliteStore::connect(&url).await.map_err(failed)?,
        Ping::Off => {
            let options = SqliteConnectOptions::from_str(&url)
                .map_err(|error| error.to_string())?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(3));
            let pool = SqlitePoolOptions::new()
                .max_connections(store_sqlite::PoolConfig::new().max_connections())
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .map_err(|error| error.to_string())?;
            SqliteStore::new(pool)
        }
    };
    store.migrate().await.map_err(failed)?;

    let pool = store.pool().clone();
    let raw_table = SqliteStore::new(pool.clone())
        .with_table_name(RAW_TABLE)
        .map_err(failed)?;
    raw_table.migrate().await.map_err(failed)?;

    Ok(pair(store, RawSqlite::new(pool)))
}

/// The PostgreSQL store and prepared statements on a second table, both
/// through one pool with sqlx's default settings (as
/// `PostgresStore::connect` makes), ping or not.
///
/// # Errors
///
/// When the server cannot be reached or the tables cannot be created.
pub async fn postgres(options: PgConnectOptions, ping: Ping) -> Result<Pair, String> {
    let pool = PgPoolOptions::new()
        .test_before_acquire(ping == Ping::Default)
        .connect_with(options)
        .await
        .map_err(|error| error.to_string())?;
    let failed = |error: store_postgres::Error| error.to_string();

    let store = PostgresStore::new(pool.clone());
    store.migrate().await.map_err(failed)?;
    let raw_table = PostgresStore::builder(pool.clone())
        .with_table(RAW_TABLE)
        .build()
        .map_err(failed)?;
    raw_table.migrate().await.map_err(failed)?;

    Ok(pair(store, RawPostgres::new(pool)))
}

/// The Redis store and plain commands, each on its own multiplexed
/// connection to the server `info` names.
///
/// # Errors
///
/// When the server cannot be reached.
pub async fn redis(info: redis::ConnectionInfo) -> Result<Pair, String> {
    let failed = |error: redis::RedisError| error.to_string();
    let client = redis::Client::open(info).map_err(failed)?;

    let store_connection = ConnectionManager::new(client.clone())
        .await
        .map_err(failed)?;
    let raw_connection = ConnectionManager::new(client).await.map_err(failed)?;
    let store = RedisStore::builder().build_with(store_connection);

    Ok(pair(store, RawRedis::new(raw_connection)))
}

/// The connection details of a Redis URL, pointed at `addr` instead.
///
/// # Errors
///
/// When the URL is not a Redis URL.
pub fn redis_info_at(
    url: &str,
    addr: std::net::SocketAddr,
) -> Result<redis::ConnectionInfo, String> {
    let client = redis::Client::open(url).map_err(|error| error.to_string())?;
    let address = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port());
    Ok(client.get_connection_info().clone().set_addr(address))
}

/// Calls and total microseconds per command since the server started,
/// from `INFO commandstats`.
///
/// # Errors
///
/// When the server cannot be reached.
pub async fn redis_command_stats(
    info: redis::ConnectionInfo,
) -> Result<HashMap<String, (u64, u64)>, String> {
    let failed = |error: redis::RedisError| error.to_string();
    let client = redis::Client::open(info).map_err(failed)?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(failed)?;
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .map_err(failed)?;

    // Lines read `cmdstat_get:calls=10,usec=25,usec_per_call=2.50,...`.
    let stats = text
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |wanted: &str| {
                fields
                    .split(',')
                    .find_map(|pair| pair.strip_prefix(wanted)?.strip_prefix('='))
                    .and_then(|value| value.parse().ok())
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect();
    Ok(stats)
}
