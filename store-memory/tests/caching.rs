//! `CachingStore` behaviour the conformance suite cannot see: what is
//! served from the cache and for how long, and that every way the durable
//! store says "your copy is wrong" drops the copy.
//!
//! "Another instance" is played by writing to the durable store directly.

mod caching_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde_json::json;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{Clock, CreateOutcome, ManualClock, Record, SaveOutcome, Store, TouchOutcome};
use store_memory::{CachingStore, MemoryStore, DEFAULT_CACHE_TTL};
use store_sqlite::SqliteStore;
use tokio::task::JoinSet;

use caching_support::{memory_db, next, record, DbFile, Unindexed};

const TTL: StdDuration = StdDuration::from_secs(10);

type Cached = CachingStore<MemoryStore, SqliteStore>;

/// A caching store on a fresh in-memory database, timed by `clock`.
async fn cached(clock: &ManualClock) -> Cached {
    let cache = MemoryStore::builder().clock(clock.clone()).build();
    CachingStore::new(cache, memory_db().await)
        .with_ttl(TTL)
        .with_clock(clock.clone())
}

/// A caching store holding (and caching) one record created at the
/// clock's time.
async fn with_one(clock: &ManualClock, value: serde_json::Value) -> (Cached, Record) {
    let store = cached(clock).await;
    let first = record(clock.now(), value);
    store.create(&first, clock.now()).await.expect("create");
    (store, first)
}

/// Fails unless `first` is gone from the caching store and the file.
async fn assert_gone(store: &Cached, first: &Record, now: OffsetDateTime) {
    assert_eq!(load(store, first, now).await, None);
    assert_eq!(load(store.durable(), first, now).await, None);
}

fn ttl() -> Duration {
    Duration::try_from(TTL).unwrap_or(Duration::ZERO)
}

async fn load(store: &impl Store, first: &Record, now: OffsetDateTime) -> Option<Record> {
    store.load(&first.key, now).await.expect("load")
}

#[tokio::test]
async fn loads_are_served_from_the_cache_until_the_ttl_has_passed() {
    let clock = ManualClock::starting_now();
    let t0 = clock.now();
    let (store, first) = with_one(&clock, json!({ "theme": "light" })).await;

    let elsewhere = next(&first, json!({ "theme": "dark" }));
    let outcome = store.durable().save(&elsewhere, 1, t0).await;
    assert_eq!(outcome.expect("save"), SaveOutcome::Saved);

    clock.advance(ttl() - Duration::milliseconds(1));
    let now = clock.now();
    assert_eq!(load(&store, &first, now).await, Some(first.clone()));

    clock.advance(Duration::milliseconds(1));
    let now = clock.now();
    assert_eq!(load(&store, &first, now).await, Some(elsewhere));
}

#[tokio::test]
async fn a_conflict_drops_the_stale_copy_so_the_reload_reads_the_durable_store() {
    let clock = ManualClock::starting_now();
    let t0 = clock.now();
    let (store, first) = with_one(&clock, json!({ "n": 1 })).await;
    let elsewhere = next(&first, json!({ "n": 2 }));
    store.durable().save(&elsewhere, 1, t0).await.expect("save");

    let stale = next(&first, json!({ "n": 99 }));
    let outcome = store.save(&stale, 1, t0).await.expect("save");
    assert_eq!(outcome, SaveOutcome::Conflict);

    // The clock has not moved: only the eviction explains a fresh read.
    let reloaded = load(&store, &first, t0).await;
    assert_eq!(reloaded.as_ref(), Some(&elsewhere));
    let replayed = next(&elsewhere, json!({ "n": 3 }));
    let outcome = store.save(&replayed, 2, t0).await.expect("save");
    assert_eq!(outcome, SaveOutcome::Saved);
    assert_eq!(load(&store, &first, t0).await, Some(replayed));
}

#[tokio::test]
async fn a_save_after_a_logout_elsewhere_is_missing_and_drops_the_copy() {
    let clock = ManualClock::starting_now();
    let t0 = clock.now();
    let (store, first) = with_one(&clock, json!({ "user": "alice" })).await;
    store.durable().delete(&first.key).await.expect("delete");

    // Within the TTL the copy is still read: the documented bound.
    assert_eq!(load(&store, &first, t0).await, Some(first.clone()));

    let late = next(&first, json!({ "user": "alice", "cart": [1] }));
    let outcome = store.save(&late, 1, t0).await.expect("save");
    assert_eq!(outcome, SaveOutcome::Missing);
    assert_gone(&store, &first, t0).await;
}

#[tokio::test]
async fn a_touch_after_a_logout_elsewhere_is_missing_and_drops_the_copy() {
    let clock = ManualClock::starting_now();
    let t0 = clock.now();
    let (store, first) = with_one(&clock, json!({ "user": "alice" })).await;
    store.durable().delete(&first.key).await.expect("delete");

    let later = first.expires_at + Duration::minutes(5);
    let outcome = store.touch(&first.key, later, t0).await.expect("touch");
    assert_eq!(outcome, TouchOutcome::Missing);
    assert_gone(&store, &first, t0).await;
}

#[tokio::test]
async fn a_touch_moves_the_cached_expiry_and_keeps_the_copy_as_fresh_as_it_was() {
    let clock = ManualClock::starting_now();
    let (store, first) = with_one(&clock, json!({ "user": "alice" })).await;

    clock.advance(ttl() / 2);
    let now = clock.now();
    let later = first.expires_at + Duration::minutes(5);
    let outcome = store.touch(&first.key, later, now).await.expect("touch");
    assert_eq!(outcome, TouchOutcome::Touched);
    let elsewhere = Record {
        expires_at: later,
        ..next(&first, json!({ "user": "bob" }))
    };
    store
        .durable()
        .save(&elsewhere, 1, now)
        .await
        .expect("save");

    // Still the cached copy, with the touched expiry...
    let touched = Record {
        expires_at: later,
        ..first.clone()
    };
    assert_eq!(load(&store, &first, now).await, Some(touched));

    // ...and no fresher than the create made it.
    clock.advance(ttl() / 2);
    let now = clock.now();
    assert_eq!(load(&store, &first, now).await, Some(elsewhere));
}

#[tokio::test]
async fn a_create_that_collides_reports_it_and_caches_nothing() {
    let clock = ManualClock::starting_now();
    let store = cached(&clock).await;
    let t0 = clock.now();
    let theirs = record(t0, json!({ "user": "alice" }));
    store.durable().create(&theirs, t0).await.expect("create");

    let ours = Record {
        data: caching_support::data(json!({ "user": "mallory" })),
        ..theirs.clone()
    };
    let outcome = store.create(&ours, t0).await.expect("create");
    assert_eq!(outcome, CreateOutcome::Collision);
    assert_eq!(load(&store, &theirs, t0).await, Some(theirs));
}

async fn check_log_out_everywhere<C: Store>(cache: C) {
    let clock = ManualClock::starting_now();
    let store = CachingStore::new(cache, memory_db().await)
        .with_ttl(TTL)
        .with_clock(clock.clone());
    let t0 = clock.now();
    let of = |principal: &str| Record {
        principal: Some(principal.to_owned()),
        ..record(t0, json!({ "user": principal }))
    };
    let alices = [of("alice"), of("alice")];
    let bob = of("bob");
    for each in alices.iter().chain([&bob]) {
        store.create(each, t0).await.expect("create");
        assert_eq!(load(&store, each, t0).await.as_ref(), Some(each));
    }

    let removed = store.delete_by_principal("alice", t0).await;
    assert_eq!(removed.expect("delete_by_principal"), 2);
    for each in &alices {
        assert_eq!(load(&store, each, t0).await, None);
    }
    assert_eq!(load(&store, &bob, t0).await, Some(bob));
}

#[tokio::test]
async fn log_out_everywhere_drops_the_principals_copies() {
    check_log_out_everywhere(MemoryStore::new()).await;
}

#[tokio::test]
async fn log_out_everywhere_drops_copies_from_a_cache_without_an_index() {
    check_log_out_everywhere(Unindexed::default()).await;
}

#[tokio::test]
async fn delete_expired_counts_the_durable_rows_and_purges_the_cache() {
    let clock = ManualClock::starting_now();
    let store = cached(&clock).await;
    let t0 = clock.now();
    let short = |value| Record {
        expires_at: t0 + Duration::minutes(1),
        ..record(t0, value)
    };
    let (gone, also_gone) = (short(json!({ "a": 1 })), short(json!({ "b": 2 })));
    let kept = record(t0, json!({ "c": 3 }));
    for each in [&gone, &also_gone, &kept] {
        store.create(each, t0).await.expect("create");
    }

    let sweep = t0 + Duration::minutes(2);
    let removed = store.delete_expired(sweep).await.expect("delete_expired");
    assert_eq!(removed, 2);

    store.cache().run_pending_tasks().await;
    assert_eq!(store.cache().entry_count(), 1);
    assert_eq!(load(&store, &kept, sweep).await, Some(kept));
}

#[tokio::test]
async fn a_zero_ttl_asks_the_durable_store_every_time() {
    let clock = ManualClock::starting_now();
    let store = cached(&clock).await.with_ttl(StdDuration::ZERO);
    let t0 = clock.now();
    let first = record(t0, json!({ "n": 1 }));
    store.create(&first, t0).await.expect("create");
    assert_eq!(load(&store, &first, t0).await, Some(first.clone()));

    let elsewhere = next(&first, json!({ "n": 2 }));
    store.durable().save(&elsewhere, 1, t0).await.expect("save");

    assert_eq!(load(&store, &first, t0).await, Some(elsewhere));
}

#[tokio::test]
async fn the_default_ttl_is_short() {
    let store = CachingStore::new(MemoryStore::new(), MemoryStore::new());

    assert_eq!(store.ttl(), DEFAULT_CACHE_TTL);
    assert!(DEFAULT_CACHE_TTL <= StdDuration::from_secs(30));
}

/// A cache whose every call fails (an unmigrated database) costs round
/// trips, never a wrong answer or an error.
#[tokio::test]
async fn a_failing_cache_leaves_the_durable_store_answering() {
    let broken = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("open an in-memory database");
    let store = CachingStore::new(broken, memory_db().await);
    let t0 = session_core::SystemClock.now();
    let first = record(t0, json!({ "n": 1 }));

    let created = store.create(&first, t0).await.expect("create");
    assert_eq!(created, CreateOutcome::Created);
    assert_eq!(load(&store, &first, t0).await, Some(first.clone()));
    let second = next(&first, json!({ "n": 2 }));
    let saved = store.save(&second, 1, t0).await.expect("save");
    assert_eq!(saved, SaveOutcome::Saved);
    assert_eq!(load(&store, &first, t0).await, Some(second));
    let later = first.expires_at + Duration::minutes(1);
    let touched = store.touch(&first.key, later, t0).await.expect("touch");
    assert_eq!(touched, TouchOutcome::Touched);
    store.delete(&first.key).await.expect("delete");
    assert_eq!(load(&store, &first, t0).await, None);
    assert_eq!(store.delete_expired(t0).await.expect("delete_expired"), 0);
}

/// While readers keep refilling the cache from a database file, every
/// save is followed by a load that sees it: no fill that read the older
/// version before the save can land after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_save_is_never_followed_by_an_older_load_while_readers_refill() {
    const SAVES: u64 = 400;
    const READERS: usize = 6;

    let file = DbFile::new();
    // Each save unmarks the copy, so readers refill while it runs; the
    // long TTL makes the load after the save read whatever they left.
    let store = CachingStore::new(MemoryStore::new(), file.open().await)
        .with_ttl(StdDuration::from_secs(60));
    let store = Arc::new(store);
    let t0 = session_core::SystemClock.now();
    let mut current = record(t0, json!({ "n": 0 }));
    store.create(&current, t0).await.expect("create");

    let done = Arc::new(AtomicBool::new(false));
    let mut readers = JoinSet::new();
    for _ in 0..READERS {
        let (store, done, key) = (Arc::clone(&store), Arc::clone(&done), current.key);
        readers.spawn(async move {
            while !done.load(Ordering::Relaxed) {
                store.load(&key, t0).await.expect("load");
            }
        });
    }

    for n in 1..=SAVES {
        let saved = next(&current, json!({ "n": n }));
        let outcome = store.save(&saved, current.version, t0).await;
        assert_eq!(outcome.expect("save"), SaveOutcome::Saved);

        let seen = load(&*store, &current, t0).await.expect("the record loads");
        assert!(
            seen.version >= saved.version,
            "version {} read after saving {}",
            seen.version,
            saved.version
        );
        current = saved;
    }
    done.store(true, Ordering::Relaxed);
    while let Some(joined) = readers.join_next().await {
        joined.expect("a reader panicked");
    }
}
