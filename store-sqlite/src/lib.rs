//! Session storage in SQLite, on [sqlx]: one file on one machine, or a
//! database in memory.
//!
//! [`SqliteStore`] implements [`session_core::Store`] on one table. Pick
//! it for a single server that should keep its sessions across restarts;
//! pick `store-redis` or `store-postgres` when several servers share them.
//!
//! # How it works
//!
//! - One row per session, keyed by the 32-byte storage key (SHA-256 of the
//!   session id), never the id. Data is JSON text; times are integer
//!   milliseconds since the Unix epoch, UTC, so expiry comparisons do not
//!   depend on the host time zone.
//! - Every operation is a single statement: create is an insert that
//!   replaces only an expired row, save is an update guarded by the
//!   version, touch moves only the expiry, never past the deadline. No
//!   operation reads and then upgrades to a write, so concurrent requests
//!   queue on SQLite's write lock (WAL mode, busy timeout) instead of
//!   failing with "database is locked".
//! - A row that does not decode is reported as
//!   [`StoreError::Decode`](session_core::StoreError::Decode), which the
//!   session layer treats as no session.
//! - Expired rows are never returned; they are removed by
//!   [`delete_expired`](session_core::Store::delete_expired) in batches,
//!   or by the task from [`SqliteStore::spawn_cleanup`].
//! - The principal index is a column with an index: list and delete all of
//!   a user's sessions ("log out everywhere").
//!
//! # Migrations
//!
//! The schema is created by the versioned SQL files in this crate's
//! `migrations/` folder, applied by [`SqliteStore::migrate`]: each at most
//! once, in its own `BEGIN IMMEDIATE` transaction, recorded per table name
//! in a table of its own, `_store_sqlite_migrations`, so an application's
//! `_sqlx_migrations` history is left alone. To run them with other
//! tooling, take [`migrations`] (or the files) and substitute the table
//! name as [`Migration`] describes.
//!
//! # Connections and errors
//!
//! [`SqliteStore::connect`] opens a pool (8 connections by default; see
//! [`PoolConfig`] for the size, the acquire timeout and SQLite's busy
//! timeout). [`SqliteStore::new`] takes a pool the application opened.
//! The [`Store`](session_core::Store) methods report failures as
//! [`StoreError::Backend`](session_core::StoreError::Backend) with the
//! `sqlx::Error` as its source; everything else reports a
//! [`SqliteStoreError`].
//!
//! # Limits
//!
//! SQLite allows one writer at a time: writes from many requests are
//! serialised, each waiting up to the busy timeout. An in-memory database
//! uses a single connection and disappears with the store. A session's
//! data is rewritten whole on every save.
//!
//! # Example
//!
//! ```
//! use session_core::time::OffsetDateTime;
//! use session_core::Store;
//! use store_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A file would be `sqlite://sessions.db?mode=rwc`.
//! let store = SqliteStore::connect("sqlite::memory:")
//!     .await?
//!     .with_table_name("web_sessions")?;
//! store.migrate().await?;
//!
//! // Remove expired rows every minute until shutdown.
//! let cleanup = store.spawn_cleanup(std::time::Duration::from_secs(60));
//!
//! let removed = store.delete_expired(OffsetDateTime::now_utc()).await?;
//! assert_eq!(removed, 0);
//!
//! cleanup.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! [sqlx]: https://docs.rs/sqlx

mod cleanup;
mod connect;
mod error;
mod migrate;
mod queries;
mod store;
mod table;

pub use crate::cleanup::CleanupHandle;
pub use crate::connect::PoolConfig;
pub use crate::error::SqliteStoreError;
pub use crate::migrate::{migrations, Migration};
pub use crate::store::{SessionCounts, SqliteStore};
