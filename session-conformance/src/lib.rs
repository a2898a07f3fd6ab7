//! The conformance suite every session store must pass.
//!
//! (Full documentation follows with the remaining cases.)

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
            $( results.push((stringify!($case), __private::guarded(stringify!($case), cases::$case(h)).await)); )*
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
