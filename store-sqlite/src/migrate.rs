//! Versioned schema migrations with their own bookkeeping table.

use sha2::{Digest as _, Sha256};
use sqlx::{Executor as _, SqlitePool};

use crate::error::SqliteStoreError;
use crate::table::{quote, TableName, DEFAULT_TABLE};

/// What the functions of this module return.
type Result<T, E = SqliteStoreError> = std::result::Result<T, E>;

/// The table that records which migrations ran for which session table.
///
/// It is not sqlx's `_sqlx_migrations`, so an application that runs its
/// own sqlx migrations on the same database keeps its history as it is.
pub(crate) const BOOKKEEPING_TABLE: &str = "_store_sqlite_migrations";

/// Every migration this version ships, oldest first.
static MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "create sessions",
    sql: include_str!("../migrations/0001_create_sessions.sql"),
}];

/// One versioned schema change, as shipped in the crate's `migrations/`
/// folder.
///
/// The SQL creates a table named `sessions`. Every identifier naming the
/// table or its indexes is double-quoted and starts with that name, so
/// [`sql_for_table`](Self::sql_for_table) (and anyone else's tooling) can
/// substitute another name textually: replace each `"sessions` with `"`
/// followed by the new name, with any `"` inside the name doubled.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// The migrations this version of the crate ships, oldest first.
#[must_use]
pub fn migrations() -> &'static [Migration] {
    MIGRATIONS
}

impl Migration {
    /// The version, 1 for the first migration.
    #[must_use]
    pub fn version(&self) -> i64 {
        self.version
    }

    /// A short description.
    #[must_use]
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The SQL as shipped, for the table name `sessions`.
    #[must_use]
    pub fn sql(&self) -> &'static str {
        self.sql
    }

    /// The SQL for a table called `table`.
    ///
    /// # Errors
    ///
    /// [`SqliteStoreError::InvalidTableName`] when `table` cannot be used.
    pub fn sql_for_table(&self, table: &str) -> Result<String, SqliteStoreError> {
        Ok(self.render(&TableName::new(table)?))
    }

    pub(crate) fn render(&self, table: &TableName) -> String {
        let from = format!("\"{DEFAULT_TABLE}");
        let to = format!("\"{}", table.escaped());
        self.sql.replace(&from, &to)
    }

    /// SHA-256 of the shipped SQL, line endings normalised so that a
    /// checkout with CRLF endings does not look like a changed migration.
    fn checksum(&self) -> Vec<u8> {
        let normalised = self.sql.replace('\r', "");
        Sha256::digest(normalised.as_bytes()).to_vec()
    }
}

fn bookkeeping_ddl() -> String {
    let table = quote(BOOKKEEPING_TABLE);

    // NOCASE because SQLite table names are case-insensitive: "Sessions"
    // and "sessions" are one table and share one history.
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            \"table_name\" TEXT NOT NULL COLLATE NOCASE,
            \"version\" INTEGER NOT NULL,
            \"description\" TEXT NOT NULL,
            \"checksum\" BLOB NOT NULL,
            \"applied_at\" INTEGER NOT NULL,
            PRIMARY KEY (\"table_name\", \"version\")
        )"
    )
}

/// Applies every migration not yet recorded for `table`; returns how many
/// ran.
///
/// Each migration runs in its own `BEGIN IMMEDIATE` transaction, which
/// takes SQLite's write lock before reading the bookkeeping row: two
/// processes migrating at once apply each migration exactly once.
pub(crate) async fn migrate(pool: &SqlitePool, table: &TableName) -> Result<usize> {
    let failed = |version| move |source| SqliteStoreError::Migrate { version, source };

    // Executor::execute rather than RawSql::execute: the latter's future
    // is not Send for every borrow, which async_trait callers need.
    let ddl = bookkeeping_ddl();
    pool.execute(sqlx::raw_sql(&ddl)).await.map_err(failed(0))?;

    let mut applied = 0;
    for migration in MIGRATIONS {
        if apply(pool, table, migration).await? {
            applied += 1;
        }
    }
    Ok(applied)
}

/// Applies one migration unless it is recorded; says whether it ran.
async fn apply(pool: &SqlitePool, table: &TableName, migration: &Migration) -> Result<bool> {
    let version = migration.version;
    let failed = move |source| SqliteStoreError::Migrate { version, source };
    let bookkeeping = quote(BOOKKEEPING_TABLE);

    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(failed)?;

    let select = format!(
        "SELECT \"checksum\" FROM {bookkeeping} \
         WHERE \"table_name\" = ?1 AND \"version\" = ?2"
    );
    let recorded: Option<Vec<u8>> = sqlx::query_scalar(&select)
        .bind(table.as_str())
        .bind(version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed)?;

    // Dropping the transaction rolls it back; nothing was written yet.
    match recorded {
        Some(checksum) if checksum == migration.checksum() => return Ok(false),
        Some(_) => return Err(SqliteStoreError::MigrationChanged { version }),
        None => {}
    }

    let sql = migration.render(table);
    tx.execute(sqlx::raw_sql(&sql)).await.map_err(failed)?;

    let insert = format!(
        "INSERT INTO {bookkeeping} \
         (\"table_name\", \"version\", \"description\", \"checksum\", \"applied_at\") \
         VALUES (?1, ?2, ?3, ?4, ?5)"
    );
    let now = session_core::to_unix_millis(session_core::time::OffsetDateTime::now_utc());
    sqlx::query(&insert)
        .bind(table.as_str())
        .bind(version)
        .bind(migration.description)
        .bind(migration.checksum())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;

    tx.commit().await.map_err(failed)?;
    tracing::info!(version, "applied session table migration");
    Ok(true)
}

/// The shipped migrations not recorded as applied to `table`.
pub(crate) async fn pending(pool: &SqlitePool, table: &TableName) -> Result<Vec<i64>> {
    let query_failed = SqliteStoreError::query("pending_migrations");

    if !table_exists(pool, BOOKKEEPING_TABLE).await? {
        return Ok(MIGRATIONS.iter().map(|m| m.version).collect());
    }

    let select = format!(
        "SELECT \"version\" FROM {} WHERE \"table_name\" = ?1",
        quote(BOOKKEEPING_TABLE)
    );
    let applied: Vec<i64> = sqlx::query_scalar(&select)
        .bind(table.as_str())
        .fetch_all(pool)
        .await
        .map_err(query_failed)?;

    Ok(MIGRATIONS
        .iter()
        .map(|m| m.version)
        .filter(|version| !applied.contains(version))
        .collect())
}

/// Whether the main database has a table called `name` (in any case, as
/// SQLite compares names).
pub(crate) async fn table_exists(pool: &SqlitePool, name: &str) -> Result<bool> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM main.sqlite_master \
         WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .map_err(SqliteStoreError::query("check_schema"))?;

    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_renames_table_and_indexes_only() {
        let table = TableName::new("Web \"Sessions\"").unwrap();

        let sql = MIGRATIONS[0].render(&table);

        assert!(sql.contains("CREATE TABLE IF NOT EXISTS \"Web \"\"Sessions\"\"\" ("));
        assert!(sql.contains("\"Web \"\"Sessions\"\"_expires_at_idx\""));
        assert!(sql.contains("\"Web \"\"Sessions\"\"_principal_idx\""));
        assert!(!sql.contains("\"sessions"));
        assert!(sql.contains("\"key\" BLOB"));
    }

    #[test]
    fn versions_increase_and_checksums_ignore_line_endings() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let crlf = Migration {
            sql: Box::leak(MIGRATIONS[0].sql.replace('\n', "\r\n").into_boxed_str()),
            ..MIGRATIONS[0]
        };

        assert!(versions.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(versions.first(), Some(&1));
        assert_eq!(crlf.checksum(), MIGRATIONS[0].checksum());
    }

    #[test]
    fn migrate_future_is_send_for_any_borrow() {
        type Boxed<'a> =
            std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize>> + Send + 'a>>;

        // Fails to compile, not to run, if the future stops being Send.
        fn boxed<'a>(pool: &'a SqlitePool, table: &'a TableName) -> Boxed<'a> {
            Box::pin(migrate(pool, table))
        }
        let _ = boxed;
    }

    #[test]
    fn sql_for_table_validates_the_name() {
        assert!(MIGRATIONS[0].sql_for_table("").is_err());
        assert_eq!(
            MIGRATIONS[0].sql_for_table("sessions").unwrap(),
            MIGRATIONS[0].sql
        );
    }
}
