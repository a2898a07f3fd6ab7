//! [`PostgresStore`] and its builder.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError, TouchOutcome,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};

use crate::error::Error;
use crate::migrate::{self, BOOKKEEPING_TABLE};
use crate::name::{qualified, Ident};
use crate::row;
use crate::sql::Statements;

const DEFAULT_SCHEMA: &str = "public";
const DEFAULT_TABLE: &str = "sessions";
const DEFAULT_BATCH_SIZE: u32 = 1_000;

/// SQLSTATE `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";

/// Sessions in a PostgreSQL table, shared by every instance that uses it.
///
/// Cheap to clone; clones share the pool. See the [crate docs](crate) for
/// the table, the migrations and what each operation costs.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    inner: Arc<Inner>,
}

struct Inner {
    schema: Ident,
    table: Ident,
    sql: Statements,
    batch_size: i64,
}

/// Live and expired sessions in the table at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Rows live at the instant asked about.
    pub live: u64,
    /// Rows expired then but not yet removed.
    pub expired: u64,
}

/// Builds a [`PostgresStore`] with a schema and table of your choice.
#[must_use]
#[derive(Debug)]
pub struct PostgresStoreBuilder {
    pool: PgPool,
    schema: String,
    table: String,
    batch_size: u32,
}

impl PostgresStoreBuilder {
    /// The schema holding the table (default `public`).
    ///
    /// It must exist: the store never creates a schema, so a role with
    /// USAGE and CREATE on this one schema is enough. The name is used
    /// verbatim and always quoted: `App` and `app.v2` are those schemas.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The table name (default `sessions`), used verbatim and quoted.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How many expired rows one cleanup statement removes at most
    /// (default 1,000; at least 1). Smaller batches hold fewer row locks
    /// for less time.
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Checks the names and builds the store. Nothing is sent to the
    /// database; call [`PostgresStore::migrate`] to create the table.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for an empty name, a name with a NUL, a name
    /// longer than Postgres keeps (63 bytes), or a table named like the
    /// store's bookkeeping table.
    pub fn build(self) -> Result<PostgresStore, Error> {
        let schema = Ident::new("schema", &self.schema)?;
        let table = Ident::new("table", &self.table)?;
        if table.as_str() == BOOKKEEPING_TABLE {
            return Err(Error::InvalidName {
                what: "table",
                name: self.table,
                reason: "it is the store's migration bookkeeping table",
            });
        }

        Ok(PostgresStore::from_parts(
            self.pool,
            schema,
            table,
            self.batch_size,
        ))
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .field("table", &self.inner.table)
            .field("batch_size", &self.inner.batch_size)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects a pool to `url` and uses table `public.sessions`.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when the URL is malformed or the server cannot
    /// be reached.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .connect(url)
            .await
            .map_err(|source| Error::Connect { source })?;
        Ok(Self::new(pool))
    }

    /// A store on `pool` with the default schema and table.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        let schema = Ident::known(DEFAULT_SCHEMA);
        let table = Ident::known(DEFAULT_TABLE);
        Self::from_parts(pool, schema, table, DEFAULT_BATCH_SIZE)
    }

    fn from_parts(pool: PgPool, schema: Ident, table: Ident, batch_size: u32) -> Self {
        let sql = Statements::new(&schema, &table);
        let inner = Inner {
            schema,
            table,
            sql,
            batch_size: i64::from(batch_size),
        };
        Self {
            pool,
            inner: Arc::new(inner),
        }
    }

    /// A builder on `pool`, to choose the schema, the table and the
    /// cleanup batch size.
    pub fn builder(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            pool,
            schema: DEFAULT_SCHEMA.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema name, unquoted.
    #[must_use]
    pub fn schema(&self) -> &str {
        self.inner.schema.as_str()
    }

    /// The table name, unquoted.
    #[must_use]
    pub fn table(&self) -> &str {
        self.inner.table.as_str()
    }

    /// `"schema"."table"`, quoted, for operators' own SQL.
    #[must_use]
    pub fn qualified_table(&self) -> String {
        qualified(&self.inner.schema, &self.inner.table)
    }

    pub(crate) fn ident_schema(&self) -> &Ident {
        &self.inner.schema
    }

    pub(crate) fn ident_table(&self) -> &Ident {
        &self.inner.table
    }

    /// Creates or upgrades the table with the migrations this crate ships.
    ///
    /// Safe to call from every instance at start-up: the instances queue
    /// on an advisory lock, each migration runs in one transaction, and
    /// what is applied is recorded in the schema's own
    /// `session_store_migrations` table, so the application's
    /// `_sqlx_migrations` history is never touched.
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a statement fails (the migration is rolled
    /// back), [`Error::MigrationChanged`] when an applied file was edited
    /// since, [`Error::UnknownMigration`] when a newer build migrated the
    /// table.
    pub async fn migrate(&self) -> Result<(), Error> {
        let started = Instant::now();
        let result = migrate::run(&self.pool, &self.inner.schema, &self.inner.table).await;
        tracing::debug!(
            op = "migrate",
            elapsed_us = micros(started),
            "session store call"
        );
        result
    }

    /// Every migration as one SQL script with this store's names filled
    /// in, for psql or sqlx-cli.
    ///
    /// The script takes the same advisory lock and records each version
    /// in the same bookkeeping table as [`migrate`](Self::migrate), so the
    /// two can be mixed. It is for a table that does not exist yet; run
    /// it in one transaction (`psql -1`; sqlx-cli does that itself).
    #[must_use]
    pub fn migration_script(&self) -> String {
        migrate::script(&self.inner.schema, &self.inner.table)
    }

    /// Counts live and expired rows at `now`, for operators.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the database fails.
    pub async fn stats(&self, now: OffsetDateTime) -> Result<Stats, Error> {
        let (live, expired): (i64, i64) = timed("stats", async {
            sqlx::query_as(&self.inner.sql.stats)
                .bind(now)
                .fetch_one(&self.pool)
                .await
        })
        .await
        .map_err(|source| Error::Query {
            op: "stats",
            source,
        })?;

        Ok(Stats {
            live: count(live),
            expired: count(expired),
        })
    }

    /// One bounded batch of expired rows removed; how many.
    pub(crate) async fn delete_expired_batch(
        &self,
        conn: &mut PgConnection,
        now: OffsetDateTime,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(&self.inner.sql.delete_expired)
            .bind(now)
            .bind(self.inner.batch_size)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected())
    }

    /// Whether a batch that removed `removed` rows was the last one.
    pub(crate) fn was_last_batch(&self, removed: u64) -> bool {
        i64::try_from(removed).is_ok_and(|n| n < self.inner.batch_size)
    }
}

/// Runs one database call, logging its operation and duration (never a
/// key or a value).
async fn timed<T>(
    op: &'static str,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let started = Instant::now();
    let result = call.await;

    let elapsed_us = micros(started);
    match &result {
        Ok(_) => tracing::debug!(op, elapsed_us, "session store call"),
        Err(error) => tracing::debug!(op, elapsed_us, %error, "session store call failed"),
    }
    result
}

pub(crate) fn micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A version as Postgres's `bigint`.
fn version(op: &'static str, version: u64) -> Result<i64, StoreError> {
    i64::try_from(version)
        .map_err(|_| StoreError::backend(op, Error::VersionOutOfRange { version }))
}

fn backend(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::backend(op, source)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let version = version("create", record.version)?;

        let inserted = timed("create", async {
            sqlx::query(&self.inner.sql.create)
                .bind(record.key.as_bytes().as_slice())
                .bind(record.data.as_str())
                .bind(version)
                .bind(record.created_at)
                .bind(record.expires_at)
                .bind(record.deadline)
                .bind(record.principal.as_deref())
                .bind(record.expiry_json())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
        })
        .await;

        match inserted {
            Ok(Some(_)) => Ok(CreateOutcome::Created),
            // The live row kept its place: the conflict clause matched
            // nothing.
            Ok(None) => Ok(CreateOutcome::Collision),
            Err(error) if is_unique_violation(&error) => Ok(CreateOutcome::Collision),
            Err(error) => Err(StoreError::backend("create", error)),
        }
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let row = timed("load", async {
            sqlx::query(&self.inner.sql.load)
                .bind(key.as_bytes().as_slice())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
        })
        .await
        .map_err(backend("load"))?;

        row.as_ref().map(row::decode).transpose()
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let new_version = version("save", record.version)?;
        let expected = version("save", expected_version)?;

        let saved = timed("save", async {
            sqlx::query(&self.inner.sql.save)
                .bind(record.key.as_bytes().as_slice())
                .bind(record.data.as_str())
                .bind(new_version)
                .bind(record.expires_at)
                .bind(record.deadline)
                .bind(record.principal.as_deref())
                .bind(record.expiry_json())
                .bind(expected)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
        })
        .await
        .map_err(backend("save"))?;
        if saved.is_some() {
            return Ok(SaveOutcome::Saved);
        }

        let live = timed("save", async {
            sqlx::query(&self.inner.sql.live)
                .bind(record.key.as_bytes().as_slice())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
        })
        .await
        .map_err(backend("save"))?;
        Ok(match live {
            Some(_) => SaveOutcome::Conflict,
            None => SaveOutcome::Missing,
        })
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        let done = timed("touch", async {
            sqlx::query(&self.inner.sql.touch)
                .bind(key.as_bytes().as_slice())
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await
        })
        .await
        .map_err(backend("touch"))?;

        Ok(if done.rows_affected() > 0 {
            TouchOutcome::Touched
        } else {
            TouchOutcome::Missing
        })
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        timed("delete", async {
            sqlx::query(&self.inner.sql.delete)
                .bind(key.as_bytes().as_slice())
                .execute(&self.pool)
                .await
        })
        .await
        .map_err(backend("delete"))?;
        Ok(())
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(backend("delete_expired"))?;
        let mut total = 0;

        // Batches keep each statement's locks and WAL small; a batch that
        // comes back short means nothing expired is left.
        loop {
            let removed = timed("delete_expired", self.delete_expired_batch(&mut conn, now))
                .await
                .map_err(backend("delete_expired"))?;
            total += removed;

            if self.was_last_batch(removed) {
                return Ok(total);
            }
        }
    }

    fn supports_principal_index(&self) -> bool {
        true
    }

    async fn list_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = timed("list_by_principal", async {
            sqlx::query(&self.inner.sql.list_by_principal)
                .bind(principal)
                .bind(now)
                .fetch_all(&self.pool)
                .await
        })
        .await
        .map_err(backend("list_by_principal"))?;

        rows.iter().map(row::decode).collect()
    }

    async fn delete_by_principal(
        &self,
        principal: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let live: i64 = timed("delete_by_principal", async {
            sqlx::query_scalar(&self.inner.sql.delete_by_principal)
                .bind(principal)
                .bind(now)
                .fetch_one(&self.pool)
                .await
        })
        .await
        .map_err(backend("delete_by_principal"))?;

        Ok(count(live))
    }
}

/// Whether the database refused a duplicate key, by SQLSTATE.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == UNIQUE_VIOLATION)
}

#[cfg(test)]
mod tests {
    use session_core::Store as _;

    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// Stores are used behind `async_trait`, which needs `Send` futures;
    /// sqlx's executors make that easy to lose, so check it here.
    #[tokio::test]
    async fn futures_are_send() {
        let pool = PgPool::connect_lazy("postgres://127.0.0.1:1/none").unwrap();
        let store = PostgresStore::new(pool);
        let now = OffsetDateTime::UNIX_EPOCH;

        assert_send(store.migrate());
        assert_send(store.stats(now));
        assert_send(store.sweep_expired(now));
        assert_send(store.delete_expired(now));
        assert_eq!(store.qualified_table(), "\"public\".\"sessions\"");
    }

    #[tokio::test]
    async fn a_malformed_url_is_a_connect_error() {
        let error = PostgresStore::connect("not a url").await.unwrap_err();

        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert!(error.is_backend());
    }

    #[tokio::test]
    async fn builder_refuses_the_bookkeeping_name() {
        let pool = PgPool::connect_lazy("postgres://127.0.0.1:1/none").unwrap();

        let built = PostgresStore::builder(pool)
            .with_table("session_store_migrations")
            .build();

        assert!(built.unwrap_err().is_invalid_name());
    }
}
