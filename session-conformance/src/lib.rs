//! The conformance suite every session store must pass.
//!
//! A session store promises a lot in a few methods (see
//! [`session_core::Store`]): a `create` that never overwrites, a `load`
//! that never returns an expired record, versioned saves that lose
//! nothing and never bring a logged-out session back, a `touch` that moves
//! the expiry and nothing else. This crate checks every one of those
//! promises against a real store, one named case per promise, so that a
//! failing test names the promise that broke and what was seen instead:
//!
//! ```text
//! conformance case save_stale_version_conflicts failed: a save expecting
//! another version than the stored one reports Conflict; seen: Saved,
//! expected Conflict
//! ```
//!
//! Every store of this workspace runs it, and a store written elsewhere
//! runs it the same way.
//!
//! # Writing a new store
//!
//! 1. Implement [`session_core::Store`]. Take `now` from the arguments,
//!    never from a clock of your own: a record is gone once
//!    `expires_at <= now`, in every operation, whether or not your backend
//!    has removed it yet.
//! 2. Add this crate as a dev-dependency.
//! 3. Write a [`Harness`]: given a namespace name, it returns your store
//!    over an empty namespace of that name (a key prefix for a key-value
//!    store, a table or schema for a database). Each case asks for a fresh
//!    one, so cases never see each other's records; the isolation case asks
//!    for two on one server and checks they share nothing.
//! 4. In `tests/conformance.rs`, an async fn that builds the harness and
//!    one line, `session_conformance::suite!(that_fn);`, give one test per
//!    case. `cargo test --test conformance` runs them; `cargo test --test
//!    conformance touch_` runs the touch cases only.
//!
//! [`suite!`] runs every case on its own multi-threaded tokio runtime (two
//! workers) and calls your fn inside it. Open connections there or in
//! [`Harness::store`], not in a `static` shared between tests: a
//! connection made on one test's runtime dies with it. A server process
//! may be shared (a `static` holding the child process), and should be
//! found the usual way: a URL from the environment, else a throw-away
//! local server, else a panic that says how to provide one, never a
//! silent skip. [`run_all`] is the alternative for one test that runs
//! every case on a runtime of your choosing.
//!
//! The example is a complete toy store, and runs the whole suite:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Mutex, MutexGuard, PoisonError};
//!
//! use session_conformance::{async_trait, Harness};
//! use session_core::time::OffsetDateTime;
//! use session_core::{
//!     CreateOutcome, Record, SaveOutcome, StorageKey, Store, StoreError, TouchOutcome,
//! };
//!
//! /// Records in a map behind one lock, so every operation is atomic.
//! #[derive(Debug, Default)]
//! struct ToyStore {
//!     records: Mutex<HashMap<StorageKey, Record>>,
//! }
//!
//! type Records<'a> = MutexGuard<'a, HashMap<StorageKey, Record>>;
//!
//! impl ToyStore {
//!     fn records(&self) -> Records<'_> {
//!         self.records.lock().unwrap_or_else(PoisonError::into_inner)
//!     }
//! }
//!
//! /// The record under `key` if it is live at `now`: an expired one is
//! /// treated as absent, though it is still in the map.
//! fn live<'a>(
//!     records: &'a mut Records<'_>,
//!     key: &StorageKey,
//!     now: OffsetDateTime,
//! ) -> Option<&'a mut Record> {
//!     records.get_mut(key).filter(|record| !record.is_expired(now))
//! }
//!
//! #[async_trait]
//! impl Store for ToyStore {
//!     async fn create(
//!         &self,
//!         record: &Record,
//!         now: OffsetDateTime,
//!     ) -> Result<CreateOutcome, StoreError> {
//!         let mut records = self.records();
//!         if live(&mut records, &record.key, now).is_some() {
//!             return Ok(CreateOutcome::Collision);
//!         }
//!         records.insert(record.key, record.clone());
//!         Ok(CreateOutcome::Created)
//!     }
//!
//!     async fn load(
//!         &self,
//!         key: &StorageKey,
//!         now: OffsetDateTime,
//!     ) -> Result<Option<Record>, StoreError> {
//!         Ok(live(&mut self.records(), key, now).map(|record| record.clone()))
//!     }
//!
//!     async fn save(
//!         &self,
//!         record: &Record,
//!         expected_version: u64,
//!         now: OffsetDateTime,
//!     ) -> Result<SaveOutcome, StoreError> {
//!         let mut records = self.records();
//!         Ok(match live(&mut records, &record.key, now) {
//!             None => SaveOutcome::Missing,
//!             Some(old) if old.version != expected_version => SaveOutcome::Conflict,
//!             Some(old) => {
//!                 *old = record.clone();
//!                 SaveOutcome::Saved
//!             }
//!         })
//!     }
//!
//!     async fn touch(
//!         &self,
//!         key: &StorageKey,
//!         expires_at: OffsetDateTime,
//!         now: OffsetDateTime,
//!     ) -> Result<TouchOutcome, StoreError> {
//!         let mut records = self.records();
//!         Ok(match live(&mut records, key, now) {
//!             None => TouchOutcome::Missing,
//!             Some(record) => {
//!                 record.expires_at = expires_at.min(record.deadline);
//!                 TouchOutcome::Touched
//!             }
//!         })
//!     }
//!
//!     async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
//!         self.records().remove(key);
//!         Ok(())
//!     }
//!
//!     async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
//!         let mut records = self.records();
//!         let before = records.len();
//!         records.retain(|_, record| !record.is_expired(now));
//!         Ok((before - records.len()) as u64)
//!     }
//!
//!     // No principal index: the default methods answer `Unsupported`,
//!     // which the principal cases accept from a store that says so.
//! }
//!
//! /// In-process stores share nothing, so a fresh store is a fresh
//! /// namespace.
//! #[derive(Debug)]
//! struct Toy;
//!
//! #[async_trait]
//! impl Harness for Toy {
//!     type Store = ToyStore;
//!
//!     async fn store(&self, _namespace: &str) -> ToyStore {
//!         ToyStore::default()
//!     }
//! }
//!
//! async fn toy() -> Toy {
//!     Toy
//! }
//!
//! // In tests/conformance.rs this line is the whole suite: one test per case.
//! session_conformance::suite!(toy);
//!
//! // Here, in a doc test, every case runs once through `run_all` instead.
//! fn main() {
//!     let runtime = tokio::runtime::Builder::new_multi_thread()
//!         .worker_threads(2)
//!         .enable_all()
//!         .build()
//!         .expect("a runtime");
//!
//!     let results = runtime.block_on(session_conformance::run_all(&Toy));
//!
//!     for (case, outcome) in results {
//!         assert!(outcome.is_ok(), "{case}: {}", outcome.unwrap_err());
//!     }
//! }
//! ```
//!
//! # What the cases guarantee
//!
//! A store that passes gives its users all of the following. Each item is
//! one function in [`cases`] and one test of [`suite!`], under that name.
//!
//! Round trips:
//! - [`round_trip_edge_data`](cases::round_trip_edge_data): any JSON comes
//!   back as it went in: nesting, unicode, empty strings and keys,
//!   `i64::MIN`/`MAX`, `u64::MAX`, floats.
//! - [`round_trip_control_characters`](cases::round_trip_control_characters):
//!   NUL and other control characters in keys and values come back intact.
//! - [`round_trip_empty_data`](cases::round_trip_empty_data): a session
//!   with no values (`{}`) still exists.
//! - [`round_trip_expiry_and_principal`](cases::round_trip_expiry_and_principal):
//!   the logged-in user and the "remember me" expiry survive.
//! - [`timestamps_exact_millis`](cases::timestamps_exact_millis): times come
//!   back to the millisecond, in UTC.
//! - [`keys_kept_apart`](cases::keys_kept_apart): keys one byte apart are
//!   different sessions.
//! - [`size_one_mib`](cases::size_one_mib): a 1 MiB value is stored whole,
//!   or refused with `StoreError::TooLarge` and nothing written.
//!
//! Creating and loading:
//! - [`create_collision_keeps_existing`](cases::create_collision_keeps_existing):
//!   a colliding id never overwrites another visitor's session (C28).
//! - [`create_concurrent_one_winner`](cases::create_concurrent_one_winner):
//!   of 1,000 concurrent creates of one key exactly one wins.
//! - [`create_over_expired`](cases::create_over_expired): an expired
//!   session's leftovers never leak into a new one.
//! - [`load_never_returns_expired`](cases::load_never_returns_expired): a
//!   session is over at its expiry millisecond, removed or not (C17).
//!
//! Saving:
//! - [`save_bumps_version`](cases::save_bumps_version): a save writes the
//!   whole record and bumps the version.
//! - [`save_stale_version_conflicts`](cases::save_stale_version_conflicts):
//!   a save from an old copy is refused and writes nothing.
//! - [`save_deleted_stays_missing`](cases::save_deleted_stays_missing): a
//!   logout wins over a concurrent save.
//! - [`save_expired_stays_missing`](cases::save_expired_stays_missing): a
//!   save cannot revive an expired session.
//! - [`save_concurrent_writers`](cases::save_concurrent_writers): 64
//!   writers lose no write; versions count the saves exactly.
//!
//! Touching:
//! - [`touch_moves_expiry_only`](cases::touch_moves_expiry_only): a touch
//!   moves the expiry, and nothing else, not even the version.
//! - [`touch_keeps_concurrent_write`](cases::touch_keeps_concurrent_write):
//!   a slow request's touch never undoes a concurrent logout (C03).
//! - [`touch_missing_or_expired`](cases::touch_missing_or_expired): a touch
//!   never creates or revives a session.
//! - [`touch_capped_at_deadline`](cases::touch_capped_at_deadline): no
//!   session outlives its absolute lifetime.
//!
//! Deleting:
//! - [`delete_is_idempotent`](cases::delete_is_idempotent): logging out
//!   twice is harmless, and removes only that session.
//! - [`delete_expired_counts_only_expired`](cases::delete_expired_counts_only_expired):
//!   cleanup removes exactly the expired sessions and counts them truly.
//!
//! Principal index and namespaces:
//! - [`principal_list_and_delete`](cases::principal_list_and_delete): "log
//!   out everywhere" reaches every session of that user and no other; a
//!   store without an index says so with `StoreError::Unsupported`.
//! - [`principal_follows_changes`](cases::principal_follows_changes): the
//!   index forgets sessions that changed user, were deleted or expired.
//! - [`namespaces_isolated`](cases::namespaces_isolated): two namespaces
//!   on one server never see or change each other's sessions.
//!
//! # How the cases work, and their limits
//!
//! - Time moves through the `now` argument, never by sleeping: records
//!   are made relative to the current time (truncated to milliseconds)
//!   and live for at least an hour of real time, then expired by passing a
//!   later `now`. A backend with real-time expiry (Redis) still holds them,
//!   which is exactly what the expiry cases check it ignores.
//! - A store may return 0 from `delete_expired` if its backend expires
//!   records itself; it must then have removed nothing.
//! - The concurrency cases run their writers as tasks on the runtime's
//!   worker threads; they catch races with high probability, not with
//!   certainty. A case that runs longer than [`CASE_TIMEOUT`] fails as
//!   hanging.
//! - Malformed cookies (C30) never reach a store (the session layer
//!   refuses them before asking one), so they are tested there.
//!
//! This crate's own tests hold a deliberately broken store for every case
//! and check that the case reports it: a suite that cannot fail proves
//! nothing.

mod failure;
mod fixture;
mod subject;

pub mod cases;

use std::time::Duration;

pub use crate::failure::Failure;
/// Re-exported so that a harness can be written without naming the crate.
pub use session_core::async_trait;

/// How a store under test is set up: one per backend (and per
/// configuration worth checking).
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The store the cases run against.
    type Store: session_core::Store;

    /// A store over an empty, isolated namespace (key prefix, table name)
    /// named `namespace` on this harness's server. Each case asks for a
    /// fresh unique namespace; the isolation case asks for two on one server.
    ///
    /// Namespaces are `sc_` followed by 16 lower-case hex digits: usable as
    /// a key prefix and as an unquoted SQL identifier. A harness that cannot
    /// set one up panics, which fails the case's test with its message.
    async fn store(&self, namespace: &str) -> Self::Store;
}

/// How long one case may run before it is reported as hanging.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs every case in order and returns each one's name and outcome.
///
/// The [`suite!`] macro is the usual entry point (one test per case);
/// this is for a harness that wants one test, or its own report.
pub async fn run_all<H: Harness>(h: &H) -> Vec<(&'static str, Result<(), Failure>)> {
    let mut results = Vec::new();

    macro_rules! run_each {
        ([] $($case:ident)*) => {
            $(
                let name = stringify!($case);
                results.push((name, __private::guarded(name, cases::$case(h)).await));
            )*
        };
    }
    crate::__for_each_case! { [run_each] }

    results
}

macro_rules! case_names {
    ([] $($case:ident)*) => {
        /// The names of all cases, in the order [`run_all`] runs them.
        pub const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}
crate::__for_each_case! { [case_names] }

/// Expands to one test per case, each running on its own multi-threaded
/// tokio runtime (two workers) and panicking with the case's [`Failure`].
///
/// `$make` names an async fn returning a [`Harness`]; every test calls it.
#[macro_export]
macro_rules! suite {
    ($make:path) => {
        $crate::__for_each_case! { [$crate::__suite_tests] $make }
    };
}

/// Calls `$callback!` with its arguments and the name of every case; the
/// one list the tests, [`run_all`] and [`CASES`] are all made from.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_case {
    ([$($callback:tt)*] $($args:tt)*) => {
        $($callback)*! { [$($args)*]
            round_trip_edge_data
            round_trip_control_characters
            round_trip_empty_data
            round_trip_expiry_and_principal
            timestamps_exact_millis
            keys_kept_apart
            size_one_mib
            create_collision_keeps_existing
            create_concurrent_one_winner
            create_over_expired
            load_never_returns_expired
            save_bumps_version
            save_stale_version_conflicts
            save_deleted_stays_missing
            save_expired_stays_missing
            save_concurrent_writers
            touch_moves_expiry_only
            touch_keeps_concurrent_write
            touch_missing_or_expired
            touch_capped_at_deadline
            delete_is_idempotent
            delete_expired_counts_only_expired
            principal_list_and_delete
            principal_follows_changes
            namespaces_isolated
        }
    };
}

/// The tests [`suite!`] expands to.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ([$make:path] $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::__private::run_test(stringify!($case), async {
                    let harness = $make().await;
                    $crate::__private::guarded(
                        stringify!($case),
                        $crate::cases::$case(&harness),
                    )
                    .await
                });
            }
        )*
    };
}

/// Support for the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    use std::time::Instant;

    use crate::{Failure, CASE_TIMEOUT};

    /// Runs `case`, turning a hang into a failure and logging its duration.
    pub async fn guarded(
        name: &'static str,
        case: impl Future<Output = Result<(), Failure>>,
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(CASE_TIMEOUT, case).await;
        let elapsed_ms = started.elapsed().as_millis();

        tracing::debug!(
            case = name,
            elapsed_ms,
            ok = matches!(outcome, Ok(Ok(()))),
            "conformance case"
        );
        outcome.unwrap_or_else(|_| {
            Err(Failure::new(
                name,
                format!("the case finishes within {} s", CASE_TIMEOUT.as_secs()),
                "it was still running (a deadlock or a hung backend call)",
            ))
        })
    }

    /// Runs one case's test body on a fresh two-worker runtime, as
    /// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` would,
    /// without asking the store crate to name tokio's macros.
    ///
    /// # Panics
    ///
    /// Panics with the failure's message when the case fails, or when no
    /// runtime can be started.
    pub fn run_test(name: &str, body: impl Future<Output = Result<(), Failure>>) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("{name}: cannot start a tokio runtime: {error}"));

        if let Err(failure) = runtime.block_on(body) {
            panic!("{failure}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Failure, CASES};

    #[test]
    #[should_panic(expected = "conformance case some_case failed: a promise; seen: this")]
    fn a_suite_test_panics_with_the_failure() {
        let failing = async { Err(Failure::new("some_case", "a promise", "this")) };

        crate::__private::run_test("some_case", failing);
    }

    #[test]
    fn a_suite_test_passes_when_its_case_does() {
        crate::__private::run_test("some_case", async { Ok(()) });
    }

    #[test]
    fn every_case_is_in_the_crate_docs() {
        let docs = include_str!("lib.rs");

        for case in CASES {
            let link = format!("[`{case}`](cases::{case})");
            assert!(docs.contains(&link), "{case} is missing from the case list");
        }
    }
}
