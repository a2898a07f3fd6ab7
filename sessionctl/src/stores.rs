//! Opening a store from a URL, and the operations `sessionctl` runs on it.

use std::sync::Arc;

use session_core::time::OffsetDateTime;
use session_core::{BoxError, Store, StoreError};
use store_memory::MemoryStore;
use store_postgres::PostgresStore;
use store_redis::RedisStore;
use store_sqlite::SqliteStore;

/// Why a store could not be opened or operated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlError {
    /// The URL's scheme names no store this build knows.
    #[error(
        "unknown store URL {0:?}: use memory, sqlite://PATH, postgres://..., \
         redis://... or redis+cluster://HOST:PORT,HOST:PORT"
    )]
    UnknownScheme(String),

    /// The store could not be reached or opened.
    #[error("cannot open the store at {url}")]
    Open {
        /// The URL, without its password.
        url: String,
        /// The store's error.
        #[source]
        source: BoxError,
    },

    /// The session schema is not there: run `sessionctl migrate URL`.
    #[error("the session schema is missing at {url}; run `sessionctl migrate {url}` first")]
    SchemaMissing {
        /// The URL, without its password.
        url: String,
    },

    /// An operation on the store failed.
    #[error("{op} failed")]
    Operation {
        /// The operation.
        op: &'static str,
        /// The store's error.
        #[source]
        source: BoxError,
    },

    /// The operation makes no sense for this store.
    #[error("{op} is not available for the {store} store: {why}")]
    NotApplicable {
        /// The operation.
        op: &'static str,
        /// The store kind.
        store: &'static str,
        /// Why not.
        why: &'static str,
    },
}

/// Live and expired session counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Sessions that would load now.
    pub live: u64,
    /// Sessions past their expiry that are still stored.
    pub expired: u64,
}

/// A store opened from a URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyStore {
    /// `memory`: this process only.
    Memory(MemoryStore),
    /// `sqlite://PATH` or `sqlite::memory:`.
    Sqlite(SqliteStore),
    /// `postgres://` or `postgresql://`.
    Postgres(PostgresStore),
    /// `redis://`, `rediss://`, or `redis+cluster://HOST:PORT,HOST:PORT`.
    Redis {
        /// The store.
        store: RedisStore,
        /// The node URL (`None` for a cluster), for counting keys.
        node: Option<String>,
    },
}

impl AnyStore {
    /// Opens the store a URL names, without touching its schema.
    ///
    /// # Errors
    ///
    /// [`StoreUrlError::UnknownScheme`] for an unknown URL;
    /// [`StoreUrlError::Open`] when the server is unreachable.
    pub async fn open(url: &str) -> Result<Self, StoreUrlError> {
        Self::open_with(url, true).await
    }

    /// Opens the store a URL names, never creating a database file.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_existing(url: &str) -> Result<Self, StoreUrlError> {
        Self::open_with(url, false).await
    }

    async fn open_with(url: &str, create: bool) -> Result<Self, StoreUrlError> {
        let shown = redact(url);
        let open = |source: BoxError| StoreUrlError::Open {
            url: shown.clone(),
            source,
        };

        if url == "memory" || url == "memory://" {
            return Ok(Self::Memory(MemoryStore::new()));
        }
        if url.starts_with("sqlite:") {
            let store = SqliteStore::connect(&sqlite_url(url, create))
                .await
                .map_err(|e| open(e.into()))?;
            return Ok(Self::Sqlite(store));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = PostgresStore::connect(url)
                .await
                .map_err(|e| open(e.into()))?;
            return Ok(Self::Postgres(store));
        }
        let redis = ["redis://", "rediss://", "redis+cluster://"];
        if redis.iter().any(|scheme| url.starts_with(scheme)) {
            // The store reads both forms itself, credentials included.
            let store = RedisStore::connect(url).await.map_err(|e| open(e.into()))?;
            let node = (!store.is_cluster()).then(|| url.to_owned());
            return Ok(Self::Redis { store, node });
        }
        Err(StoreUrlError::UnknownScheme(shown))
    }

    /// The store as the session layer takes it.
    #[must_use]
    pub fn shared(&self) -> Arc<dyn Store> {
        match self {
            Self::Memory(store) => Arc::new(store.clone()),
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
            Self::Redis { store, .. } => Arc::new(store.clone()),
        }
    }

    /// A short name of the store kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::Redis { .. } => "redis",
        }
    }

    /// Applies the store's migrations; returns how many ran, when the
    /// store says.
    ///
    /// # Errors
    ///
    /// [`StoreUrlError::Operation`] when a migration fails.
    pub async fn migrate(&self) -> Result<Option<usize>, StoreUrlError> {
        let failed = |source: BoxError| StoreUrlError::Operation {
            op: "migrate",
            source,
        };

        match self {
            // Redis needs no schema; memory lives in the process.
            Self::Memory(_) | Self::Redis { .. } => Ok(None),
            Self::Sqlite(store) => {
                let ran = store.migrate().await.map_err(|e| failed(e.into()))?;
                Ok(Some(ran))
            }
            Self::Postgres(store) => {
                store.migrate().await.map_err(|e| failed(e.into()))?;
                Ok(None)
            }
        }
    }

    /// Checks that the schema exists, so operations fail with a clear
    /// message instead of on their first query.
    ///
    /// # Errors
    ///
    /// [`StoreUrlError::SchemaMissing`], or [`StoreUrlError::Operation`]
    /// when the check itself fails.
    pub async fn check_schema(&self, url: &str) -> Result<(), StoreUrlError> {
        match self {
            Self::Memory(_) | Self::Redis { .. } => Ok(()),
            Self::Postgres(store) => match store.stats(OffsetDateTime::now_utc()).await {
                Ok(_) => Ok(()),
                Err(e) if is_missing_relation(&e) => {
                    Err(StoreUrlError::SchemaMissing { url: redact(url) })
                }
                Err(e) => Err(StoreUrlError::Operation {
                    op: "schema check",
                    source: e.into(),
                }),
            },
            Self::Sqlite(store) => match store.check_schema().await {
                Ok(()) => Ok(()),
                Err(e) if e.is_schema_missing() => {
                    Err(StoreUrlError::SchemaMissing { url: redact(url) })
                }
                Err(e) => Err(StoreUrlError::Operation {
                    op: "schema check",
                    source: e.into(),
                }),
            },
        }
    }

    /// Live and expired counts at `now`.
    ///
    /// # Errors
    ///
    /// [`StoreUrlError::Operation`] when the store fails.
    pub async fn stats(&self, now: OffsetDateTime) -> Result<Counts, StoreUrlError> {
        let failed = |source: BoxError| StoreUrlError::Operation {
            op: "stats",
            source,
        };

        match self {
            Self::Memory(_) => Err(self.in_process("stats")),
            Self::Redis { node: None, .. } => Err(StoreUrlError::NotApplicable {
                op: "stats",
                store: "redis cluster",
                why: "counting needs a scan of every master; run it per node",
            }),
            Self::Redis {
                store,
                node: Some(node),
            } => {
                let live = count_redis_records(node, store.key_prefix())
                    .await
                    .map_err(|e| failed(e.into()))?;
                // Redis removes expired keys itself.
                Ok(Counts { live, expired: 0 })
            }
            Self::Postgres(store) => {
                let counts = store.stats(now).await.map_err(|e| failed(e.into()))?;
                Ok(Counts {
                    live: counts.live,
                    expired: counts.expired,
                })
            }
            Self::Sqlite(store) => {
                let counts = store.stats(now).await.map_err(|e| failed(e.into()))?;
                Ok(Counts {
                    live: counts.live,
                    expired: counts.expired,
                })
            }
        }
    }

    /// Deletes expired sessions; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreUrlError::Operation`] when the store fails.
    pub async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreUrlError> {
        if let Self::Memory(_) = self {
            return Err(self.in_process("purge-expired"));
        }
        self.shared()
            .delete_expired(now)
            .await
            .map_err(|e| operation("purge-expired", e))
    }

    /// Deletes every session of `principal`; returns how many were live.
    ///
    /// # Errors
    ///
    /// [`StoreUrlError::Operation`] when the store fails or has no
    /// principal index.
    pub async fn revoke(&self, principal: &str, now: OffsetDateTime) -> Result<u64, StoreUrlError> {
        if let Self::Memory(_) = self {
            return Err(self.in_process("revoke"));
        }
        self.shared()
            .delete_by_principal(principal, now)
            .await
            .map_err(|e| operation("revoke", e))
    }

    fn in_process(&self, op: &'static str) -> StoreUrlError {
        StoreUrlError::NotApplicable {
            op,
            store: self.kind(),
            why: "its sessions live inside the process that serves them",
        }
    }
}

/// Counts record keys under `prefix` with SCAN (never KEYS, so a large
/// database is not blocked).
async fn count_redis_records(url: &str, prefix: &str) -> Result<u64, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;

    // Record keys are the prefix and 64 hex digits; principal sets differ.
    let pattern = format!("{}{}", glob_escape(prefix), "[0-9a-f]".repeat(64));
    let mut cursor: u64 = 0;
    let mut count = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut connection)
            .await?;
        count += keys.len() as u64;
        if next == 0 {
            return Ok(count);
        }
        cursor = next;
    }
}

fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Whether Postgres said the schema or table does not exist (SQLSTATE
/// 42P01 undefined table, 3F000 invalid schema name).
fn is_missing_relation(error: &store_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(sqlx::Error::Database(db)) = cause.downcast_ref::<sqlx::Error>() {
            return matches!(db.code().as_deref(), Some("42P01" | "3F000"));
        }
        source = cause.source();
    }
    false
}

fn operation(op: &'static str, error: StoreError) -> StoreUrlError {
    StoreUrlError::Operation {
        op,
        source: error.into(),
    }
}

/// `sqlite://PATH` creates the file when it is missing, as a user of the
/// demo expects; an explicit `mode=` is kept as given.
fn sqlite_url(url: &str, create: bool) -> String {
    if !create || url.contains(":memory:") || url.contains("mode=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
