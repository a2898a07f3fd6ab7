//! Tests of the stores against real servers, and what they need to get one.
//!
//! The tests live in `tests/`; this library finds or starts the servers
//! they run against, in the order DESIGN.md gives: a URL from the
//! environment, else a container when a Docker engine answers, else a
//! throw-away server from the local binaries, else a failure that says how
//! to provide one. Never a silent skip.
//!
//! - [`server`]: what any backend's throw-away server needs (a free
//!   loopback port, a scratch directory cleaned up however the process
//!   ends, an unprivileged user when running as root, a Docker check).
//! - [`postgres`]: the PostgreSQL server and a fresh database per test.
//! - [`redis`]: a Redis node (which a test may stop and start) and a
//!   three-master Redis Cluster.
//!
//! # Example
//!
//! ```no_run
//! use integration_tests::postgres;
//! use store_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), store_postgres::Error> {
//! let db = postgres::shared().fresh_database().await;
//! let store = PostgresStore::new(db.pool().await);
//! store.migrate().await?;
//! # Ok(())
//! # }
//! ```

pub mod postgres;
pub mod redis;
pub mod server;
