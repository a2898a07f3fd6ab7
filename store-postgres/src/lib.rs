//! PostgreSQL session storage for `session-core`.
//!
//! [`PostgresStore`] keeps sessions in one table that every instance of a
//! service shares. Pick it when the service already runs on Postgres and
//! several instances must see the same sessions.
//!
//! # Example
//!
//! ```no_run
//! use session_core::{time::OffsetDateTime, Store};
//! use sqlx::PgPool;
//! use store_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = PgPool::connect("postgres://app@localhost/app").await?;
//! let store = PostgresStore::builder(pool)
//!     .with_schema("app")
//!     .with_table("web_sessions")
//!     .build()?;
//!
//! // Every instance may call this at start-up; they take turns.
//! store.migrate().await?;
//!
//! let removed = store.delete_expired(OffsetDateTime::now_utc()).await?;
//! println!("removed {removed} expired sessions");
//! # Ok(())
//! # }
//! ```
//!
//! # The table
//!
//! One row per session: `key bytea` (SHA-256 of the session id, never the
//! id), `data json` (kept as written, so values read back exactly),
//! `version bigint`, `created_at`, `expires_at` and `deadline` as
//! `timestamptz`, and nullable `principal` and `expiry` text. There are
//! indexes on `expires_at` and on `principal`.
//!
//! The schema (default `public`) and the table (default `sessions`) are
//! configurable and always double-quoted, so `Web Sessions`, `MixedCase`,
//! a reserved word like `select` or a name with a dot are each one name;
//! `a.b` is never read as schema `a`, table `b`. The store never creates a
//! schema: a role with USAGE and CREATE on one existing schema, and no
//! CREATE on the database, can migrate and use it.
//!
//! # Migrations
//!
//! The files in this crate's `migrations/` folder are versioned and
//! embedded. [`PostgresStore::migrate`] applies the missing ones:
//!
//! - under a transaction-level advisory lock, so instances that start at
//!   once take turns and all succeed;
//! - each in one transaction, so a failure leaves nothing half-done;
//! - recorded, with a checksum, in `session_store_migrations` in the
//!   configured schema, one row per table and version. The application's
//!   own `_sqlx_migrations` history is left alone.
//!
//! To apply them with other tools instead:
//!
//! - psql: the files use psql's quoted variables `:"schema"` and
//!   `:"table"`, so `psql -1 -v schema=app -v table=web_sessions -f
//!   migrations/0001_sessions.sql` runs one as it stands. That does not
//!   record it for [`migrate`](PostgresStore::migrate), so use one way or
//!   the other for a given table.
//! - sqlx-cli or any runner: save [`PostgresStore::migration_script`] as a
//!   migration file of your application (it is the same files with the
//!   names filled in, plus the lock and the bookkeeping rows), and a later
//!   `migrate()` finds the versions applied. By hand the substitution is
//!   `sed -e 's/:"schema"/"app"/g' -e 's/:"table"/"web_sessions"/g'`.
//!
//! # Operations
//!
//! Each [`Store`](session_core::Store) operation is one statement and one
//! round trip:
//!
//! - `create` inserts; a live row under the same key is a collision (the
//!   unique violation is recognised by its SQLSTATE, 23505), and an expired
//!   one is replaced by the same statement.
//! - `load` is a primary-key select that skips expired rows.
//! - `save` is an update guarded by the expected version; the same
//!   statement tells a version conflict from a missing row.
//! - `touch` moves `expires_at` to `LEAST(new, deadline)` and nothing else.
//!
//! Every expiry comparison uses the caller's `now`, bound as a parameter:
//! neither the database's clock nor its session time zone is involved.
//! A row that no longer decodes is reported as
//! [`StoreError::Decode`](session_core::StoreError::Decode).
//!
//! # Cleanup
//!
//! Postgres does not expire rows by itself. `delete_expired` removes them
//! in bounded batches; [`PostgresStore::spawn_cleanup`] runs that in the
//! background, and every instance may run it: a session-level advisory
//! lock lets one sweep at a time while the others skip their turn.
//! [`Cleanup::shutdown`] stops it between batches.

mod cleanup;
mod error;
mod migrate;
mod name;
mod row;
mod sql;
mod store;

pub use crate::cleanup::Cleanup;
pub use crate::error::Error;
pub use crate::store::{PostgresStore, PostgresStoreBuilder, Stats};

/// Re-exported so that users name the same `sqlx` (pool, options).
pub use sqlx;
