//! Adversarial tests of the sharded `MemoryStore`.
//!
//! Concurrency invariants (multi-thread runtime), capacity bounds,
//! expiry boundaries, principal index consistency and odd timestamps.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde_json::json;
use session_core::time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use session_core::{CreateOutcome, Data, Id, Record, SaveOutcome, StorageKey, Store, TouchOutcome};
use store_memory::MemoryStore;

fn record_at(
    key: StorageKey,
    now: OffsetDateTime,
    ttl: Duration,
    principal: Option<&str>,
) -> Record {
    Record {
        key,
        data: Data::try_from(json!({"n": 0})).unwrap_or_default(),
        version: 1,
        created_at: now,
        expires_at: now + ttl,
        deadline: now + Duration::days(1),
        principal: principal.map(str::to_owned),
        expiry: None,
    }
}

fn fresh(now: OffsetDateTime) -> Record {
    record_at(Id::random().storage_key(), now, Duration::hours(1), None)
}

/// Everything the store holds is swept by a far-future sweep, and then it
/// is empty: the expiry index covers the map exactly. Bounded in time, so
/// a stale index entry (which would make the sweep spin) fails the test
/// instead of hanging it.
async fn assert_sweep_empties(store: &MemoryStore) {
    let before = store.entry_count();
    let far = OffsetDateTime::now_utc() + Duration::days(365 * 100);
    let removed = tokio::time::timeout(StdDuration::from_secs(20), store.delete_expired(far))
        .await
        .expect("a full sweep finishes")
        .expect("sweep");
    assert_eq!(
        removed, before,
        "a full sweep removes exactly what the map held"
    );
    assert_eq!(store.entry_count(), 0, "nothing is left after a full sweep");
}

// ---------------------------------------------------------------------
// Capacity
// ---------------------------------------------------------------------

#[tokio::test]
async fn max_capacity_zero_never_holds_a_session() {
    let store = MemoryStore::builder().max_capacity(0).build();
    let now = OffsetDateTime::now_utc();
    for _ in 0..3 {
        store.create(&fresh(now), now).await.expect("create");
        assert!(
            store.entry_count() == 0,
            "max_capacity(0) holds {} sessions",
            store.entry_count()
        );
    }
}

#[tokio::test]
async fn max_capacity_one_keeps_exactly_the_newest_session() {
    let store = MemoryStore::builder().max_capacity(1).build();
    let now = OffsetDateTime::now_utc();
    let mut last = None;
    for n in 0..50 {
        // Newer sessions expire sooner than the one they evict, too.
        let record = record_at(
            Id::random().storage_key(),
            now,
            Duration::seconds(1000 - n),
            None,
        );
        assert_eq!(
            store.create(&record, now).await.expect("create"),
            CreateOutcome::Created
        );
        assert!(store.entry_count() <= 1);
        assert!(
            store.load(&record.key, now).await.expect("load").is_some(),
            "the session just created is there"
        );
        if let Some(old) = last.replace(record.key) {
            assert!(store.load(&old, now).await.expect("load").is_none());
        }
    }
    assert_sweep_empties(&store).await;
}

#[tokio::test]
async fn a_session_just_created_in_a_full_store_is_loadable() {
    for capacity in [1_u64, 2, 3, 1023, 1024, 1025, 2048, 5000] {
        let store = MemoryStore::builder().max_capacity(capacity).build();
        let now = OffsetDateTime::now_utc();
        for n in 0..(capacity * 2 + 50) {
            // Expiries spread both ways around the existing ones.
            let ttl = Duration::seconds(i64::try_from((n * 7919) % 1000).unwrap_or(0) + 1);
            let record = record_at(Id::random().storage_key(), now, ttl, Some("p"));
            assert_eq!(
                store.create(&record, now).await.expect("create"),
                CreateOutcome::Created
            );
            assert!(store.entry_count() <= capacity, "capacity {capacity}");
            assert!(
                store.load(&record.key, now).await.expect("load").is_some(),
                "capacity {capacity}: created #{n} not loadable"
            );
        }
        // The principal index only lists what the map holds.
        let listed = store.list_by_principal("p", now).await.expect("list");
        assert_eq!(
            listed.len() as u64,
            store.entry_count(),
            "capacity {capacity}"
        );
        assert_sweep_empties(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_exceed_the_capacity() {
    for capacity in [1_u64, 7, 100, 3000] {
        let store = MemoryStore::builder().max_capacity(capacity).build();
        let now = OffsetDateTime::now_utc();
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(AtomicU64::new(0));

        let monitor = {
            let (store, stop, worst) = (store.clone(), stop.clone(), worst.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    worst.fetch_max(store.entry_count(), Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..2_000_i64 {
                    let ttl = Duration::seconds((n * 31 + t) % 500 + 1);
                    let principal = format!("p{}", n % 5);
                    let record = record_at(Id::random().storage_key(), now, ttl, Some(&principal));
                    let outcome = store.create(&record, now).await.expect("create");
                    assert_eq!(outcome, CreateOutcome::Created);
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        stop.store(true, Ordering::Relaxed);
        monitor.await.expect("monitor");

        assert!(
            worst.load(Ordering::Relaxed) <= capacity,
            "capacity {capacity}: saw {}",
            worst.load(Ordering::Relaxed)
        );
        assert!(store.entry_count() <= capacity);
        let listed: usize = futures_len(&store, now).await;
        assert_eq!(
            listed as u64,
            store.entry_count(),
            "principal index drifted"
        );
        assert_sweep_empties(&store).await;
    }
}

async fn futures_len(store: &MemoryStore, now: OffsetDateTime) -> usize {
    let mut total = 0;
    for p in 0..5 {
        total += store
            .list_by_principal(&format!("p{p}"), now)
            .await
            .expect("list")
            .len();
    }
    total
}

// ---------------------------------------------------------------------
// Same-key concurrency
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_key_have_one_winner() {
    let now = OffsetDateTime::now_utc();
    let store = MemoryStore::new();
    for _ in 0..200 {
        let key = Id::random().storage_key();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut record = record_at(key, now, Duration::hours(1), None);
                record.data = Data::try_from(json!({"winner": t})).unwrap_or_default();
                (t, store.create(&record, now).await.expect("create"))
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (t, outcome) = task.await.expect("task");
            if outcome == CreateOutcome::Created {
                winners.push(t);
            }
        }
        assert_eq!(winners.len(), 1, "winners {winners:?}");
        let loaded = store.load(&key, now).await.expect("load").expect("there");
        assert_eq!(loaded.data.get("winner"), Some(json!(winners[0])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versioned_saves_of_one_key_lose_no_write() {
    let now = OffsetDateTime::now_utc();
    let store = MemoryStore::new();
    let key = Id::random().storage_key();
    store
        .create(&record_at(key, now, Duration::hours(1), None), now)
        .await
        .expect("create");
    const TASKS: usize = 8;
    const ROUNDS: u64 = 300;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let field = format!("t{t}");
            let mut conflicts = 0_u64;
            for _ in 0..ROUNDS {
                loop {
                    let mut loaded = store.load(&key, now).await.expect("load").expect("live");
                    let n = loaded
                        .data
                        .get(&field)
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0);
                    let expected = loaded.version;
                    loaded.data.insert(field.clone(), json!(n + 1));
                    loaded.version += 1;
                    // Touches interleave: they must not bump or clobber.
                    let _ = store
                        .touch(&key, now + Duration::hours(2), now)
                        .await
                        .expect("touch");
                    match store.save(&loaded, expected, now).await.expect("save") {
                        SaveOutcome::Saved => break,
                        SaveOutcome::Conflict => conflicts += 1,
                        SaveOutcome::Missing => panic!("the session went missing"),
                    }
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let loaded = store.load(&key, now).await.expect("load").expect("live");
    for t in 0..TASKS {
        assert_eq!(
            loaded.data.get(&format!("t{t}")),
            Some(json!(ROUNDS)),
            "t{t}"
        );
    }
    assert_eq!(loaded.version, 1 + ROUNDS * TASKS as u64);
    assert_sweep_empties(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_session_never_comes_back_through_a_racing_save_or_touch() {
    let now = OffsetDateTime::now_utc();
    let store = MemoryStore::new();
    for _ in 0..300 {
        let key = Id::random().storage_key();
        let record = record_at(key, now, Duration::hours(1), Some("ann"));
        store.create(&record, now).await.expect("create");

        let saver = {
            let store = store.clone();
            let mut record = record.clone();
            tokio::spawn(async move {
                let mut expected = 1;
                loop {
                    record.version = expected + 1;
                    match store.save(&record, expected, now).await.expect("save") {
                        SaveOutcome::Saved => expected += 1,
                        SaveOutcome::Conflict => panic!("only one writer"),
                        SaveOutcome::Missing => break,
                    }
                    if store
                        .touch(&key, now + Duration::hours(3), now)
                        .await
                        .expect("touch")
                        == TouchOutcome::Missing
                    {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        tokio::task::yield_now().await;
        store.delete(&key).await.expect("delete");
        saver.await.expect("saver");
        assert!(store.load(&key, now).await.expect("load").is_none());
        assert!(store
            .list_by_principal("ann", now)
            .await
            .expect("list")
            .is_empty());
    }
    assert_eq!(store.entry_count(), 0);
}

// ---------------------------------------------------------------------
// Principal index under races
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_by_principal_only_returns_sessions_of_that_principal() {
    let now = OffsetDateTime::now_utc();
    let store = MemoryStore::new();
    let keys: Vec<StorageKey> = (0..256).map(|_| Id::random().storage_key()).collect();
    for key in &keys {
        store
            .create(&record_at(*key, now, Duration::hours(1), Some("P")), now)
            .await
            .expect("create");
    }
    let stop = Arc::new(AtomicBool::new(false));

    // Writers move sessions back and forth between P and Q.
    let mut writers = Vec::new();
    for chunk in keys.chunks(64) {
        let (store, stop, chunk) = (store.clone(), stop.clone(), chunk.to_vec());
        writers.push(tokio::spawn(async move {
            let mut flip = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                for key in &chunk {
                    let mut loaded = store.load(key, now).await.expect("load").expect("live");
                    let expected = loaded.version;
                    loaded.version += 1;
                    loaded.principal = Some(if flip % 2 == 0 { "Q" } else { "P" }.to_owned());
                    let _ = store.save(&loaded, expected, now).await.expect("save");
                }
                flip += 1;
                tokio::task::yield_now().await;
            }
        }));
    }

    let mut wrong = Vec::new();
    for _ in 0..400 {
        for record in store.list_by_principal("P", now).await.expect("list") {
            if record.principal.as_deref() != Some("P") {
                wrong.push(record.principal.clone());
            }
        }
        if wrong.len() > 5 {
            break;
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(
        wrong.is_empty(),
        "list_by_principal(\"P\") returned records of other principals: {wrong:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn principal_changes_racing_delete_by_principal_keep_the_index_true() {
    let now = OffsetDateTime::now_utc();
    let store = MemoryStore::new();
    let principals = ["ann", "bob", "cy"];
    let keys: Vec<StorageKey> = (0..300).map(|_| Id::random().storage_key()).collect();
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::new();
    for (t, chunk) in keys.chunks(50).enumerate() {
        let (store, stop, chunk) = (store.clone(), stop.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut n = t;
            while !stop.load(Ordering::Relaxed) {
                for key in &chunk {
                    n = n.wrapping_mul(31).wrapping_add(7);
                    let principal = principals[n % 3];
                    match store.load(key, now).await.expect("load") {
                        None => {
                            let record = record_at(*key, now, Duration::hours(1), Some(principal));
                            let _ = store.create(&record, now).await.expect("create");
                        }
                        Some(mut loaded) => {
                            let expected = loaded.version;
                            loaded.version += 1;
                            loaded.principal = (n % 4 != 0).then(|| principal.to_owned());
                            loaded.expires_at = now + Duration::seconds((n % 1000) as i64 + 1);
                            let _ = store.save(&loaded, expected, now).await.expect("save");
                        }
                    }
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let revoker = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut total = 0;
            for round in 0..300 {
                total += store
                    .delete_by_principal(principals[round % 3], now)
                    .await
                    .expect("revoke");
                tokio::task::yield_now().await;
            }
            stop.store(true, Ordering::Relaxed);
            total
        })
    };
    let revoked = revoker.await.expect("revoker");
    for task in tasks {
        task.await.expect("task");
    }
    assert!(revoked > 0, "the race was exercised");

    // Quiet now: the index must agree with what loads say.
    let mut by_principal: HashMap<String, HashSet<StorageKey>> = HashMap::new();
    let mut live = 0;
    for key in &keys {
        if let Some(record) = store.load(key, now).await.expect("load") {
            live += 1;
            if let Some(p) = record.principal {
                by_principal.entry(p).or_default().insert(*key);
            }
        }
    }
    assert_eq!(store.entry_count(), live);
    for p in principals {
        let listed: HashSet<StorageKey> = store
            .list_by_principal(p, now)
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(
            listed,
            by_principal.remove(p).unwrap_or_default(),
            "index of {p}"
        );
    }
    // Revoking one principal removes exactly its sessions.
    let before = store.entry_count();
    let ann = store
        .list_by_principal("ann", now)
        .await
        .expect("list")
        .len() as u64;
    assert_eq!(
        store.delete_by_principal("ann", now).await.expect("revoke"),
        ann
    );
    assert_eq!(store.entry_count(), before - ann);
    assert_sweep_empties(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_operations_on_few_keys_keep_the_indexes_true() {
    let now = OffsetDateTime::now_utc();
    let store = MemoryStore::builder().max_capacity(40).build();
    let keys: Arc<Vec<StorageKey>> =
        Arc::new((0..64).map(|_| Id::random().storage_key()).collect());
    let mut tasks = Vec::new();
    for t in 0..8_u64 {
        let (store, keys) = (store.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = t.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for _ in 0..5_000 {
                n ^= n << 13;
                n ^= n >> 7;
                n ^= n << 17;
                let key = keys[(n % 64) as usize];
                let at = now + Duration::milliseconds((n >> 8) as i64 % 2_000);
                let ttl = Duration::milliseconds((n >> 20) as i64 % 3_000 - 500);
                let principal = ["a", "b"][(n >> 30) as usize % 2];
                match (n >> 40) % 7 {
                    0 | 1 => {
                        let record = record_at(key, at, ttl, Some(principal));
                        let _ = store.create(&record, at).await.expect("create");
                    }
                    2 => {
                        if let Some(mut r) = store.load(&key, at).await.expect("load") {
                            let v = r.version;
                            r.version += 1;
                            r.expires_at = at + ttl;
                            r.principal = ((n >> 50) % 3 != 0).then(|| principal.to_owned());
                            let _ = store.save(&r, v, at).await.expect("save");
                        }
                    }
                    3 => {
                        let _ = store.touch(&key, at + ttl, at).await.expect("touch");
                    }
                    4 => store.delete(&key).await.expect("delete"),
                    5 => {
                        let _ = store
                            .delete_by_principal(principal, at)
                            .await
                            .expect("revoke");
                    }
                    _ => {
                        let _ = store.delete_expired(at).await.expect("sweep");
                    }
                }
                assert!(store.entry_count() <= 40);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    // Before the far sweep: the principal index lists exactly the live
    // sessions of each principal, as loads see them.
    let early = now - Duration::days(1);
    let mut want: HashMap<String, HashSet<StorageKey>> = HashMap::new();
    for key in keys.iter() {
        if let Some(r) = store.load(key, early).await.expect("load") {
            if let Some(p) = r.principal {
                want.entry(p).or_default().insert(*key);
            }
        }
    }
    for p in ["a", "b"] {
        let listed: HashSet<StorageKey> = store
            .list_by_principal(p, early)
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(listed, want.remove(p).unwrap_or_default(), "index of {p}");
    }
    assert_sweep_empties(&store).await;
}

// ---------------------------------------------------------------------
// Expiry boundaries and touch
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_session_is_dead_at_exactly_its_expiry_in_every_operation() {
    let store = MemoryStore::new();
    let now = OffsetDateTime::now_utc();
    let key = Id::random().storage_key();
    let record = record_at(key, now, Duration::seconds(10), Some("ann"));
    store.create(&record, now).await.expect("create");
    let at = record.expires_at;
    let before = at - Duration::nanoseconds(1);

    assert!(store.load(&key, before).await.expect("load").is_some());
    assert_eq!(
        store
            .list_by_principal("ann", before)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(store.load(&key, at).await.expect("load").is_none());
    assert!(store
        .list_by_principal("ann", at)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        store.delete_by_principal("ann", at).await.expect("revoke"),
        0
    );

    // A fresh copy for each write at the boundary.
    let store = MemoryStore::new();
    store.create(&record, now).await.expect("create");
    assert_eq!(
        store
            .touch(&key, at + Duration::hours(1), at)
            .await
            .expect("touch"),
        TouchOutcome::Missing
    );
    assert!(
        store.load(&key, before).await.expect("load").is_none(),
        "a missing touch removes it"
    );

    let store = MemoryStore::new();
    store.create(&record, now).await.expect("create");
    let mut next = record.clone();
    next.version = 2;
    next.expires_at = at + Duration::hours(1);
    assert_eq!(
        store.save(&next, 1, at).await.expect("save"),
        SaveOutcome::Missing
    );
    assert!(
        store.load(&key, before).await.expect("load").is_none(),
        "stays gone"
    );

    let store = MemoryStore::new();
    store.create(&record, now).await.expect("create");
    let mut other = record_at(key, at, Duration::seconds(5), Some("bob"));
    other.data = Data::try_from(json!({"second": true})).unwrap_or_default();
    assert_eq!(
        store.create(&other, at).await.expect("create"),
        CreateOutcome::Created
    );
    let loaded = store
        .load(&key, at)
        .await
        .expect("load")
        .expect("the new one");
    assert_eq!(loaded.principal.as_deref(), Some("bob"));
    assert!(store
        .list_by_principal("ann", before)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        store
            .delete_by_principal("ann", before)
            .await
            .expect("revoke"),
        0
    );
    assert!(store.load(&key, at).await.expect("load").is_some());

    let store = MemoryStore::new();
    store.create(&record, now).await.expect("create");
    assert_eq!(store.delete_expired(before).await.expect("sweep"), 0);
    assert_eq!(store.delete_expired(at).await.expect("sweep"), 1);
}

#[tokio::test]
async fn touch_never_moves_the_expiry_past_the_deadline() {
    let store = MemoryStore::new();
    let now = OffsetDateTime::now_utc();
    let key = Id::random().storage_key();
    let record = record_at(key, now, Duration::seconds(10), None);
    store.create(&record, now).await.expect("create");

    let far = record.deadline + Duration::days(365);
    assert_eq!(
        store.touch(&key, far, now).await.expect("touch"),
        TouchOutcome::Touched
    );
    let loaded = store.load(&key, now).await.expect("load").expect("live");
    assert_eq!(loaded.expires_at, record.deadline);
    assert_eq!(loaded.version, 1, "a touch does not bump the version");
    assert_eq!(loaded.data, record.data);
    assert!(store
        .load(&key, record.deadline)
        .await
        .expect("load")
        .is_none());
    assert_eq!(
        store.delete_expired(record.deadline).await.expect("sweep"),
        1
    );
    assert_eq!(store.entry_count(), 0);
}

// ---------------------------------------------------------------------
// Odd timestamps
// ---------------------------------------------------------------------

#[tokio::test]
async fn timestamps_at_the_ends_of_time_do_not_panic_or_drift() {
    let max = PrimitiveDateTime::MAX;
    let min = PrimitiveDateTime::MIN;
    let offsets = [
        UtcOffset::UTC,
        UtcOffset::from_hms(23, 59, 59).expect("offset"),
        UtcOffset::from_hms(-23, -59, -59).expect("offset"),
    ];
    let store = MemoryStore::builder().max_capacity(3).build();
    let now = OffsetDateTime::now_utc();
    let mut keys = Vec::new();
    for offset in offsets {
        for (created, expires, deadline) in [
            (min, max, max),
            (min, min, max),
            (max, max, min),
            (min, min, min),
        ] {
            let key = Id::random().storage_key();
            let record = Record {
                key,
                data: Data::new(),
                version: 1,
                created_at: created.assume_offset(offset),
                expires_at: expires.assume_offset(offset),
                deadline: deadline.assume_offset(offset),
                principal: Some("edge".to_owned()),
                expiry: None,
            };
            let _ = store.create(&record, now).await.expect("create");
            let _ = store.load(&key, now).await.expect("load");
            let _ = store
                .touch(&key, max.assume_offset(offset), now)
                .await
                .expect("touch");
            let _ = store
                .touch(&key, min.assume_offset(offset), now)
                .await
                .expect("touch");
            let _ = store.save(&record, 1, now).await.expect("save");
            let _ = store.list_by_principal("edge", now).await.expect("list");
            let _ = store
                .delete_expired(min.assume_offset(offset))
                .await
                .expect("sweep");
            keys.push(key);
            assert!(store.entry_count() <= 3);
        }
    }
    let _ = store
        .delete_by_principal("edge", max.assume_offset(offsets[2]))
        .await
        .expect("revoke");
    assert_sweep_empties(&store).await;
    let _ = format!("{store:?}");
}

#[tokio::test]
async fn the_same_instant_in_two_offsets_is_one_expiry() {
    // A save that keeps the instant but changes the offset must leave
    // one index entry, removed with the session.
    let store = MemoryStore::new();
    let now = OffsetDateTime::now_utc();
    let key = Id::random().storage_key();
    let record = record_at(key, now, Duration::seconds(10), None);
    store.create(&record, now).await.expect("create");
    let mut moved = record.clone();
    moved.version = 2;
    moved.expires_at = record
        .expires_at
        .to_offset(UtcOffset::from_hms(10, 0, 0).expect("offset"));
    assert_eq!(
        store.save(&moved, 1, now).await.expect("save"),
        SaveOutcome::Saved
    );
    assert_eq!(
        store
            .touch(
                &key,
                moved
                    .expires_at
                    .to_offset(UtcOffset::from_hms(-7, 0, 0).expect("offset")),
                now
            )
            .await
            .expect("touch"),
        TouchOutcome::Touched
    );
    assert_eq!(
        store
            .delete_expired(record.expires_at)
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(store.entry_count(), 0);
    assert_sweep_empties(&store).await;
}

#[tokio::test]
async fn creating_an_already_expired_record_does_not_evict_a_live_session() {
    // Questionable input (the session layer never creates a dead record),
    // but the store treats such a record as absent everywhere else; making
    // room for it logs a live user out for nothing.
    let store = MemoryStore::builder().max_capacity(1).build();
    let now = OffsetDateTime::now_utc();
    let live = fresh(now);
    store.create(&live, now).await.expect("create");
    let dead = record_at(Id::random().storage_key(), now, Duration::seconds(-1), None);
    let _ = store.create(&dead, now).await.expect("create");
    assert!(store.load(&dead.key, now).await.expect("load").is_none());
    assert!(
        store.load(&live.key, now).await.expect("load").is_some(),
        "the live session was evicted to make room for a dead one"
    );
}
