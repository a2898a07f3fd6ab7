//! Benchmarks of the session stores and middleware that report ratios
//! measured in one run, on one machine, against the same servers.
//!
//! Run everything with
//!
//! ```text
//! cargo run --release -p session-bench -- all
//! ```
//!
//! and one part with `stores`, `in-process`, `http` or `memory` instead
//! of `all` (`--help` lists the knobs). The run prints Markdown tables;
//! `BENCHMARKS.md` at the repository root keeps the latest ones.
//!
//! # What is measured
//!
//! - [`stores`]: each store's create, load, save, touch and delete, with
//!   one task and with 64, next to the raw client doing the same work on
//!   the same server ([`targets`]), and the ratio store/raw; and the
//!   round trips each operation makes, counted by a loopback [`proxy`].
//! - [`inprocess`]: the middleware through `tower::ServiceExt::oneshot`:
//!   the time a session adds to one request against tower-sessions 0.14
//!   on the same route, throughput with 1 and 64 tasks, store calls per
//!   kind of request and the writes the touch throttle lets through,
//!   counted by a [`counting::CountingStore`].
//! - [`http`]: the same route over loopback HTTP, server and load
//!   generator in separate processes, with and without sessions.
//! - [`memory`]: the memory store's resident memory for many sessions,
//!   in a process of its own.
//!
//! # Servers
//!
//! Redis and PostgreSQL come from `SESSION_TEST_REDIS_URL` and
//! `SESSION_TEST_POSTGRES_URL` when set, else are started from the local
//! binaries on free loopback ports and removed afterwards ([`servers`]).
//! A store whose server cannot be had is reported as not measured; the
//! rest still run. All load goes to 127.0.0.1 and every loop is bounded
//! in count and in time.
//!
//! # Reading the figures
//!
//! The machine is shared with whatever else runs on it, so absolute
//! figures move from run to run; the ratios hold better, because both
//! sides of each ratio run back to back, in alternating order, in the
//! same process. The benchmarks are not tests: `cargo test` runs only the
//! harness's own unit tests, and CI only builds this crate.

pub mod apps;
pub mod backends;
pub mod counting;
pub mod http;
pub mod inprocess;
pub mod mapstore;
pub mod memory;
pub mod proxy;
pub mod report;
pub mod servers;
pub mod stats;
pub mod stores;
pub mod suite;
pub mod targets;
pub mod workload;
