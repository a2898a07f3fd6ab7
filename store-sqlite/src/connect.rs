//! Opening a database: connection settings and the pool.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePoolOptions};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection as _, SqlitePool};

use crate::error::SqliteStoreError;

/// How [`SqliteStore::connect_with`](crate::SqliteStore::connect_with)
/// opens the database.
///
/// Built with consuming `with_*` setters; each states its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct PoolConfig {
    max_connections: u32,
    acquire_timeout: Duration,
    busy_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            busy_timeout: Duration::from_secs(3),
        }
    }
}

impl PoolConfig {
    /// The defaults: see each setter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Most connections open at once to a database file (default 8, at
    /// least 1). SQLite runs one writer at a time whatever this is; more
    /// connections let reads go on beside it.
    ///
    /// An in-memory database always gets exactly one connection, so that
    /// every operation sees the same database and it lives as long as the
    /// store.
    pub fn with_max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }

    /// How long an operation waits for a free connection before it fails
    /// (default 3 s, under the session layer's default 5 s call timeout so
    /// that the error names the pool).
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long a statement waits for another connection's write to
    /// finish before it fails with `SQLITE_BUSY` (default 3 s).
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The connection limit.
    #[must_use]
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The acquire timeout.
    #[must_use]
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// The busy timeout.
    #[must_use]
    pub fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }
}

/// Opens a pool for `url` with WAL, the busy timeout and, for a database
/// that lives in memory, a single connection kept open for good.
pub(crate) async fn open_pool(
    url: &str,
    config: &PoolConfig,
) -> Result<SqlitePool, SqliteStoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| SqliteStoreError::InvalidUrl { source })?
        // WAL lets readers go on while one connection writes. An in-memory
        // database ignores the setting.
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL cannot corrupt the database; a power cut may
        // lose the last commits, which for sessions means a few logins.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(config.busy_timeout);
    let connect_failed = |source| SqliteStoreError::Connect { source };

    // Ask SQLite what the URL opened rather than guessing from its text:
    // an in-memory or temporary database has no file name.
    let mut probe = SqliteConnection::connect_with(&options)
        .await
        .map_err(connect_failed)?;
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&mut probe)
            .await
            .map_err(connect_failed)?;

    let pool_options = SqlitePoolOptions::new()
        .acquire_timeout(config.acquire_timeout)
        // A connection to a local database does not go stale the way a
        // network one does; pinging it on every acquire is a wasted trip
        // to its worker thread.
        .test_before_acquire(false);
    let pool_options = if file.is_empty() {
        // Each connection to a private in-memory or temporary database
        // would see its own; a shared in-memory one is dropped with its
        // last connection. One connection that never closes avoids both.
        pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        pool_options.max_connections(config.max_connections)
    };

    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(connect_failed)?;

    // Closed only now, so a shared in-memory database outlives the probe.
    probe.close().await.map_err(connect_failed)?;
    Ok(pool)
}
