//! `SqliteStore`: the session contract on one SQLite table.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, from_unix_millis, to_unix_millis, Clock, CreateOutcome, Data, Record, SaveOutcome,
    StorageKey, Store, StoreError, SystemClock, TouchOutcome,
};
use sqlx::error::ErrorKind;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};
use sqlx::{Row as _, SqlitePool};

use crate::cleanup::CleanupHandle;
use crate::connect::{open_pool, PoolConfig};
use crate::error::{backend, SqliteStoreError};
use crate::migrate;
use crate::queries::Queries;
use crate::table::TableName;

/// Default number of rows one cleanup statement deletes.
const DEFAULT_BATCH: u32 = 1_000;

/// Sessions in one table of a SQLite database, file or in memory.
///
/// Cheap to clone; clones share the pool. Every operation is a single
/// statement, so concurrent requests never meet "database is locked":
/// writers queue on SQLite's write lock for up to the busy timeout.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    table: TableName,
    sql: Arc<Queries>,
    batch_size: u32,
    clock: Arc<dyn Clock>,
}

/// Live and expired row counts, from [`SqliteStore::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCounts {
    /// Rows whose session is still live.
    pub live: u64,
    /// Rows whose session has expired but that are not removed yet.
    pub expired: u64,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.table.as_str())
            .field("connections", &self.pool.size())
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `url` with the default [`PoolConfig`].
    ///
    /// Examples: `sqlite://sessions.db?mode=rwc` (a file, created when
    /// missing), `sqlite://sessions.db` (a file that must exist),
    /// `sqlite::memory:` (a database that lives as long as the store).
    /// The schema is not created: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    ///
    /// [`SqliteStoreError::InvalidUrl`] for a URL sqlx cannot parse;
    /// [`SqliteStoreError::Connect`] when the database cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, SqliteStoreError> {
        Self::connect_with(url, &PoolConfig::default()).await
    }

    /// Opens the database at `url` with the given pool settings.
    ///
    /// File databases are put in WAL mode with `synchronous=NORMAL` and
    /// the busy timeout; an in-memory database gets a single connection
    /// that stays open as long as the pool.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, config: &PoolConfig) -> Result<Self, SqliteStoreError> {
        let pool = open_pool(url, config).await?;
        Ok(Self::new(pool))
    }

    /// A store on a pool the application opened itself.
    ///
    /// The pool should use WAL and a busy timeout; for an in-memory
    /// database all its connections must see one database (one
    /// connection, or a shared cache kept open).
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        let table = TableName::default();
        Self {
            pool,
            sql: Arc::new(Queries::new(&table)),
            table,
            batch_size: DEFAULT_BATCH,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses the table `name` (default `sessions`).
    ///
    /// The name is always quoted, so spaces, dots, reserved words and
    /// mixed case are all kept as they are; `"app.sessions"` is one table
    /// with a dot in its name, not table `sessions` of schema `app`.
    ///
    /// # Errors
    ///
    /// [`SqliteStoreError::InvalidTableName`] for an empty name, one over
    /// 128 bytes, with control characters or surrounding whitespace, or
    /// starting with `sqlite_`.
    pub fn with_table_name(mut self, name: &str) -> Result<Self, SqliteStoreError> {
        self.table = TableName::new(name)?;
        self.sql = Arc::new(Queries::new(&self.table));
        Ok(self)
    }

    /// Rows removed per statement by [`delete_expired`](Store::delete_expired)
    /// and the cleanup task (default 1,000, at least 1).
    ///
    /// Each batch holds the write lock while it runs; smaller batches keep
    /// the wait of concurrent requests shorter.
    #[must_use]
    pub fn with_cleanup_batch_size(mut self, rows: u32) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// The clock the cleanup task reads (default: the system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The table name.
    #[must_use]
    pub fn table_name(&self) -> &str {
        self.table.as_str()
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or updates the table and its indexes; returns how many
    /// migrations ran (0 when the schema is current).
    ///
    /// Safe to call on every start, from several processes at once. The
    /// migrations are recorded per table name in `_store_sqlite_migrations`;
    /// sqlx's own `_sqlx_migrations` table is never read or written.
    ///
    /// # Errors
    ///
    /// [`SqliteStoreError::Migrate`] when a migration fails (it is rolled
    /// back); [`SqliteStoreError::MigrationChanged`] when the database
    /// records a migration with other SQL than this version ships.
    pub async fn migrate(&self) -> Result<usize, SqliteStoreError> {
        migrate::migrate(&self.pool, &self.table).await
    }

    /// The versions of the shipped migrations not yet recorded as applied
    /// to this table.
    ///
    /// A schema created with other tooling has no records here; check it
    /// with [`check_schema`](Self::check_schema) instead.
    ///
    /// # Errors
    ///
    /// [`SqliteStoreError::Query`] when the database cannot be read.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, SqliteStoreError> {
        migrate::pending(&self.pool, &self.table).await
    }

    /// Checks that the session table exists, for tools that should report
    /// a missing schema clearly rather than fail on their first query.
    ///
    /// # Errors
    ///
    /// [`SqliteStoreError::SchemaMissing`] when it does not;
    /// [`SqliteStoreError::Query`] when the database cannot be read.
    pub async fn check_schema(&self) -> Result<(), SqliteStoreError> {
        if migrate::table_exists(&self.pool, self.table.as_str()).await? {
            return Ok(());
        }
        Err(SqliteStoreError::SchemaMissing {
            table: self.table.as_str().to_owned(),
        })
    }

    /// Counts live and expired rows at `now`.
    ///
    /// # Errors
    ///
    /// [`SqliteStoreError::Query`] when the query fails (for example
    /// because the table does not exist).
    pub async fn stats(&self, now: OffsetDateTime) -> Result<SessionCounts, SqliteStoreError> {
        let (live, expired): (i64, i64) = sqlx::query_as(&self.sql.stats)
            .bind(to_unix_millis(now))
            .fetch_one(&self.pool)
            .await
            .map_err(SqliteStoreError::query("stats"))?;

        // Counts are never negative; 0 would only hide an impossible value.
        Ok(SessionCounts {
            live: u64::try_from(live).unwrap_or(0),
            expired: u64::try_from(expired).unwrap_or(0),
        })
    }

    /// Starts a task that removes expired rows now and then every
    /// `interval` (at least 1 ms), in batches, by the store's clock.
    ///
    /// Failures are logged at `warn` and retried at the next tick. Stop it
    /// with [`CleanupHandle::shutdown`].
    ///
    /// # Panics
    ///
    /// Panics when called outside a Tokio runtime.
    #[must_use = "dropping the handle stops the task"]
    pub fn spawn_cleanup(&self, interval: Duration) -> CleanupHandle {
        CleanupHandle::spawn(self.clone(), interval)
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Deletes expired rows batch by batch until a batch comes back short
    /// or `should_stop` says so; returns how many went.
    pub(crate) async fn purge(
        &self,
        now: OffsetDateTime,
        should_stop: impl Fn() -> bool,
    ) -> Result<u64, StoreError> {
        let now = to_unix_millis(now);
        let mut removed = 0;

        while !should_stop() {
            let batch = sqlx::query(&self.sql.delete_expired)
                .bind(now)
                .bind(i64::from(self.batch_size))
                .execute(&self.pool)
                .await
                .map_err(backend("delete_expired"))?
                .rows_affected();

            removed += batch;
            if batch < u64::from(self.batch_size) {
                break;
            }
        }
        Ok(removed)
    }

    async fn create_row(&self, record: &Record, now: OffsetDateTime) -> Result<u64, StoreError> {
        let op = "create";

        let result = bind_record(sqlx::query(&self.sql.create), op, record, now)?
            .execute(&self.pool)
            .await
            .map_err(backend(op))?;
        Ok(result.rows_affected())
    }

    async fn save_row(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let op = "save";

        let result = bind_record(sqlx::query(&self.sql.save), op, record, now)?
            .bind(version_param(op, expected_version)?)
            .execute(&self.pool)
            .await;

        // See `Queries::save`: the NOT NULL refusal is the version check.
        match result {
            Ok(done) if done.rows_affected() == 0 => Ok(SaveOutcome::Missing),
            Ok(_) => Ok(SaveOutcome::Saved),
            Err(error) if is_not_null_violation(&error) => Ok(SaveOutcome::Conflict),
            Err(error) => Err(backend(op)(error)),
        }
    }

    async fn fetch_records(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(&self.sql.list_by_principal)
            .bind(principal)
            .bind(to_unix_millis(now))
            .fetch_all(&self.pool)
            .await
            .map_err(backend("list_by_principal"))?;

        // One undecodable row must not hide the user's other sessions.
        let records = rows
            .iter()
            .filter_map(|row| match decode_row(row) {
                Ok(record) => Some(record),
                Err(error) => {
                    tracing::warn!(%error, "skipping a stored session that does not decode");
                    None
                }
            })
            .collect();
        Ok(records)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let written = timed("create", self.create_row(record, now)).await?;

        Ok(if written == 0 {
            CreateOutcome::Collision
        } else {
            CreateOutcome::Created
        })
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let fetch = sqlx::query(&self.sql.load)
            .bind(&key.as_bytes()[..])
            .bind(to_unix_millis(now))
            .fetch_optional(&self.pool);

        let row = timed("load", async { fetch.await.map_err(backend("load")) }).await?;
        row.as_ref().map(decode_row).transpose()
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        timed("save", self.save_row(record, expected_version, now)).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let execute = sqlx::query(&self.sql.touch)
            .bind(&key.as_bytes()[..])
            .bind(to_unix_millis(expires_at))
            .bind(to_unix_millis(now))
            .execute(&self.pool);

        let done = timed("touch", async { execute.await.map_err(backend("touch")) }).await?;
        Ok(if done.rows_affected() == 0 {
            TouchOutcome::Missing
        } else {
            TouchOutcome::Touched
        })
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let execute = sqlx::query(&self.sql.delete)
            .bind(&key.as_bytes()[..])
            .execute(&self.pool);

        timed("delete", async { execute.await.map_err(backend("delete")) }).await?;
        Ok(())
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        timed("delete_expired", self.purge(now, || false)).await
    }

    fn supports_principal_index(&self) -> bool {
        true
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        timed("list_by_principal", self.fetch_records(principal, now)).await
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let fetch = sqlx::query_scalar::<_, bool>(&self.sql.delete_by_principal)
            .bind(principal)
            .bind(to_unix_millis(now))
            .fetch_all(&self.pool);

        let op = "delete_by_principal";
        let deleted = timed(op, async { fetch.await.map_err(backend(op)) }).await?;
        let live = deleted.into_iter().filter(|&live| live).count();
        Ok(u64::try_from(live).unwrap_or(u64::MAX))
    }
}

/// Runs one store call, logging its operation and duration (never a key).
async fn timed<T>(
    op: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();

    let result = call.await;

    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match &result {
        Ok(_) => tracing::debug!(op, elapsed_us, "sqlite session store call"),
        Err(error) => {
            tracing::debug!(op, elapsed_us, %error, "sqlite session store call failed");
        }
    }
    result
}

/// Binds `record` as ?1 to ?8 in column order, and `now` as ?9.
fn bind_record<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    op: &'static str,
    record: &'q Record,
    now: OffsetDateTime,
) -> Result<Query<'q, Sqlite, SqliteArguments<'q>>, StoreError> {
    Ok(query
        .bind(&record.key.as_bytes()[..])
        .bind(record.data.as_str())
        .bind(version_param(op, record.version)?)
        .bind(to_unix_millis(record.created_at))
        .bind(to_unix_millis(record.expires_at))
        .bind(to_unix_millis(record.deadline))
        .bind(record.principal.as_deref())
        .bind(record.expiry_json())
        .bind(to_unix_millis(now)))
}

/// Whether SQLite refused to write NULL into a NOT NULL column.
fn is_not_null_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => error.kind() == ErrorKind::NotNullViolation,
        _ => false,
    }
}

/// A version as SQLite's signed 64-bit integer.
fn version_param(op: &'static str, version: u64) -> Result<i64, StoreError> {
    i64::try_from(version)
        .map_err(|_| StoreError::backend(op, SqliteStoreError::VersionOutOfRange { version }))
}

/// Reads a record back; anything that does not fit the contract is a
/// [`StoreError::Decode`], which the session layer treats as no session.
fn decode_row(row: &SqliteRow) -> Result<Record, StoreError> {
    let column = |name| move |source| StoreError::decode(corrupt(name, source));

    let key: Vec<u8> = row.try_get("key").map_err(column("key"))?;
    let data: String = row.try_get("data").map_err(column("data"))?;
    let version: i64 = row.try_get("version").map_err(column("version"))?;
    let created_at: i64 = row.try_get("created_at").map_err(column("created_at"))?;
    let expires_at: i64 = row.try_get("expires_at").map_err(column("expires_at"))?;
    let deadline: i64 = row.try_get("deadline").map_err(column("deadline"))?;
    let principal: Option<String> = row.try_get("principal").map_err(column("principal"))?;
    let expiry: Option<String> = row.try_get("expiry").map_err(column("expiry"))?;

    let invalid = |name, reason| StoreError::decode(invalid(name, reason));
    let key = <[u8; 32]>::try_from(key).map_err(|_| invalid("key", "not 32 bytes"))?;
    let version = u64::try_from(version)
        .ok()
        .filter(|&version| version >= 1)
        .ok_or_else(|| invalid("version", "not a positive integer"))?;

    Ok(Record {
        key: StorageKey::from_bytes(key),
        data: Data::parse(&data).map_err(StoreError::decode)?,
        version,
        created_at: time("created_at", created_at)?,
        expires_at: time("expires_at", expires_at)?,
        deadline: time("deadline", deadline)?,
        principal,
        expiry: Record::parse_expiry(expiry.as_deref()).map_err(StoreError::decode)?,
    })
}

/// A stored time as a timestamp, if it is in range.
fn time(column: &'static str, millis: i64) -> Result<OffsetDateTime, StoreError> {
    from_unix_millis(millis).ok_or_else(|| StoreError::decode(invalid(column, "out of range")))
}

fn corrupt(column: &'static str, source: sqlx::Error) -> SqliteStoreError {
    SqliteStoreError::Corrupt {
        column,
        reason: "has the wrong type",
        source: Some(source),
    }
}

fn invalid(column: &'static str, reason: &'static str) -> SqliteStoreError {
    SqliteStoreError::Corrupt {
        column,
        reason,
        source: None,
    }
}
