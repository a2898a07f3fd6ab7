//! The suite can fail: a correct store passes every case, and for every
//! case a store that breaks its promise is reported by that case.

mod reference;

use session_conformance::{cases, run_all, Failure, CASES};

use crate::reference::{Fault, ReferenceHarness};

/// The correct reference store through the published entry point.
mod correct {
    async fn reference() -> crate::reference::ReferenceHarness {
        crate::reference::ReferenceHarness::correct()
    }

    session_conformance::suite!(reference);
}

fn assert_all_pass(results: Vec<(&'static str, Result<(), Failure>)>) {
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(_, outcome)| outcome.err().map(|failure| failure.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "a correct store failed:\n{}",
        failed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_principal_index_passes_by_saying_so() {
    let harness = ReferenceHarness::correct().without_principals();

    assert_all_pass(run_all(&harness).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_big_records_passes_by_saying_so() {
    let harness = ReferenceHarness::correct().with_limit(64 * 1024);

    assert_all_pass(run_all(&harness).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_runs_every_case_once_in_order() {
    let results = run_all(&ReferenceHarness::correct()).await;

    let names: Vec<&str> = results.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, CASES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_can_be_spawned() {
    let harness = ReferenceHarness::correct();

    // Spawning needs a `Send` future: a harness can run the suite on a
    // task of its own.
    let results = tokio::spawn(async move { run_all(&harness).await }).await;

    assert_all_pass(results.expect("the suite task completes"));
}

/// One test per broken store: `$case` must report it, naming itself.
macro_rules! caught {
    ($($test:ident: $fault:ident => $case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let harness = ReferenceHarness::broken(Fault::$fault);

                let outcome = cases::$case(&harness).await;

                let failure = outcome.expect_err(concat!(
                    stringify!($case), " did not catch ", stringify!($fault)
                ));
                assert_eq!(failure.case(), stringify!($case));
                assert!(!failure.promise().is_empty() && !failure.seen().is_empty());
                println!("{failure}");
            }
        )*

        /// The cases some broken store is shown to be caught by.
        const CAUGHT_BY: &[&str] = &[$(stringify!($case)),*];
    };
}

caught! {
    load_that_ignores_expiry: LoadIgnoresExpiry => load_never_returns_expired,
    create_that_overwrites: CreateOverwrites => create_collision_keeps_existing,
    create_that_checks_then_inserts: CreateRace => create_concurrent_one_winner,
    create_that_keeps_the_expired_record: CreateOverExpiredKeepsOld => create_over_expired,
    save_that_ignores_versions: SaveIgnoresVersion => save_stale_version_conflicts,
    save_that_merges_data: SaveMergesData => save_bumps_version,
    save_that_resurrects_deleted: SaveResurrectsDeleted => save_deleted_stays_missing,
    save_that_revives_expired: SaveIgnoresExpiry => save_expired_stays_missing,
    save_that_checks_then_writes: SaveRace => save_concurrent_writers,
    touch_that_bumps_the_version: TouchBumpsVersion => touch_moves_expiry_only,
    touch_that_rewrites_data: TouchRewritesData => touch_keeps_concurrent_write,
    touch_that_undoes_a_delete: TouchCreatesMissing => touch_keeps_concurrent_write,
    touch_that_revives_expired: TouchIgnoresExpiry => touch_missing_or_expired,
    touch_past_the_deadline: TouchPastDeadline => touch_capped_at_deadline,
    delete_that_fails_on_missing: DeleteErrorsOnMissing => delete_is_idempotent,
    delete_expired_deleting_live: DeleteExpiredDeletesLive => delete_expired_counts_only_expired,
    delete_expired_that_miscounts: DeleteExpiredMiscounts => delete_expired_counts_only_expired,
    delete_expired_only_counting: DeleteExpiredCountsWithoutDeleting
        => delete_expired_counts_only_expired,
    principal_matched_by_prefix: PrincipalPrefixMatch => principal_list_and_delete,
    principal_unsupported_but_answering: UnsupportedAnswersEmpty => principal_list_and_delete,
    principal_index_stale_after_delete: PrincipalStaleAfterDelete => principal_follows_changes,
    principal_index_stale_after_change: PrincipalStaleAfterChange => principal_follows_changes,
    principal_index_listing_expired: PrincipalListsExpired => principal_follows_changes,
    namespaces_that_share_records: NamespacesShared => namespaces_isolated,
    big_values_cut_silently: TruncatesLargeValues => size_one_mib,
    too_large_but_stored: TooLargeButStores => size_one_mib,
    times_kept_to_the_second: LosesMillis => timestamps_exact_millis,
    times_returned_off_utc: NonUtc => timestamps_exact_millis,
    integers_kept_as_floats: LosesBigIntegers => round_trip_edge_data,
    nul_characters_stripped: StripsNul => round_trip_control_characters,
    empty_data_taken_for_missing: EmptyDataAsMissing => round_trip_empty_data,
    expiry_override_dropped: DropsExpiryOverride => round_trip_expiry_and_principal,
    keys_collapsed: KeyCollapse => keys_kept_apart,
}

#[test]
fn every_case_catches_some_broken_store() {
    let uncovered: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|case| !CAUGHT_BY.contains(case))
        .collect();

    assert!(
        uncovered.is_empty(),
        "cases no broken store shows failing: {uncovered:?}"
    );
}
