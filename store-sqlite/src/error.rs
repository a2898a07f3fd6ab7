//! The crate's one error type.

use session_core::StoreError;

/// What went wrong outside the [`Store`](session_core::Store) methods:
/// opening the database, migrating it, reading statistics.
///
/// The [`Store`](session_core::Store) methods report
/// [`StoreError`]s; when the cause is SQLite, the `sqlx::Error` is
/// the source of that error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteStoreError {
    /// The database URL could not be parsed.
    #[error("invalid sqlite database url")]
    InvalidUrl {
        /// sqlx's parse error.
        #[source]
        source: sqlx::Error,
    },

    /// The database could not be opened.
    #[error("could not open the sqlite database")]
    Connect {
        /// sqlx's error (a missing file without `mode=rwc`, no permission).
        #[source]
        source: sqlx::Error,
    },

    /// The table name cannot be used.
    #[error("invalid session table name {name:?}: {reason}")]
    InvalidTableName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The session table does not exist: run [`migrate`] first.
    ///
    /// [`migrate`]: crate::SqliteStore::migrate
    #[error("session table {table:?} does not exist; run the migrations first")]
    SchemaMissing {
        /// The table that was looked for.
        table: String,
    },

    /// A migration recorded as applied differs from the one shipped.
    #[error("migration {version} was applied with different SQL than this version ships")]
    MigrationChanged {
        /// The migration's version.
        version: i64,
    },

    /// A migration failed; its transaction was rolled back.
    #[error("migration {version} failed")]
    Migrate {
        /// The migration's version (0 for the bookkeeping table).
        version: i64,
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },

    /// A record's version does not fit in SQLite's 64-bit signed integer.
    #[error("session version {version} is out of range for sqlite")]
    VersionOutOfRange {
        /// The version given.
        version: u64,
    },

    /// A stored row does not hold a valid record; the source of a
    /// [`StoreError::Decode`].
    #[error("stored session column {column} {reason}")]
    Corrupt {
        /// The column at fault.
        column: &'static str,
        /// What is wrong with it.
        reason: &'static str,
        /// sqlx's error, when sqlx could not read the value at all.
        #[source]
        source: Option<sqlx::Error>,
    },

    /// A query failed.
    #[error("sqlite session store query failed during {op}")]
    Query {
        /// The operation that failed.
        op: &'static str,
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
}

impl SqliteStoreError {
    /// Whether the session table has not been created.
    #[must_use]
    pub fn is_schema_missing(&self) -> bool {
        matches!(self, Self::SchemaMissing { .. })
    }

    /// Whether the database could not be reached or opened.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    pub(crate) fn query(op: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Query { op, source }
    }
}

/// Turns an sqlx failure during `op` into the contract's error, keeping it
/// as the source.
pub(crate) fn backend(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::backend(op, source)
}
