//! What goes wrong outside the [`Store`](session_core::Store) calls.

/// Errors of setting up, migrating and running a [`PostgresStore`].
///
/// The [`Store`](session_core::Store) methods report
/// [`StoreError`](session_core::StoreError) as the contract requires; when
/// the cause is specific to this crate it is one of these, kept as the
/// `source`.
///
/// [`PostgresStore`]: crate::PostgresStore
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A schema or table name Postgres cannot keep as given.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// "schema" or "table".
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The database could not be reached.
    #[error("could not connect to the session database")]
    Connect {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A migration failed; its transaction was rolled back.
    #[error("session store migration {version} failed")]
    Migrate {
        /// The migration that failed (0 while taking the lock or reading
        /// the bookkeeping table).
        version: i64,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// An applied migration differs from the file this build ships.
    #[error("session store migration {version} was changed after it was applied")]
    MigrationChanged {
        /// The migration whose checksum differs.
        version: i64,
    },

    /// The database has a migration this build does not know: it was
    /// migrated by a newer version of this crate.
    #[error("session table has migration {version}, which this build does not know")]
    UnknownMigration {
        /// The highest unknown version found.
        version: i64,
    },

    /// A stored row does not hold a valid session; the store reports it as
    /// [`StoreError::Decode`](session_core::StoreError::Decode).
    #[error("stored session row has an invalid {column}")]
    InvalidRow {
        /// The column at fault.
        column: &'static str,
        /// The decoding error, when there is one.
        #[source]
        source: Option<session_core::BoxError>,
    },

    /// A query outside the store contract (statistics) failed.
    #[error("session store query {op} failed")]
    Query {
        /// The operation.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A session version does not fit Postgres's `bigint`.
    #[error("session version {version} does not fit a bigint")]
    VersionOutOfRange {
        /// The version given.
        version: u64,
    },

    /// The background cleanup task ended abnormally.
    #[error("the session cleanup task failed")]
    CleanupTask {
        /// Why the task ended.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// Whether a schema or table name was refused.
    #[must_use]
    pub fn is_invalid_name(&self) -> bool {
        matches!(self, Self::InvalidName { .. })
    }

    /// Whether the migrations could not be applied as they stand
    /// (changed, unknown or failed).
    #[must_use]
    pub fn is_migration(&self) -> bool {
        matches!(
            self,
            Self::Migrate { .. } | Self::MigrationChanged { .. } | Self::UnknownMigration { .. }
        )
    }

    /// Whether the database could not be reached or a query failed.
    #[must_use]
    pub fn is_backend(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::Query { .. })
    }
}
