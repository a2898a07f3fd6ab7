//! MemoryStore behaviour specific to an in-process store (C17, C19, C28).

use std::sync::Arc;

use serde_json::json;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    Clock, CreateOutcome, Data, Id, ManualClock, Record, Session, SessionConfig, Store,
};
use store_memory::MemoryStore;

fn record(id: &Id, now: OffsetDateTime, ttl: Duration) -> Record {
    Record {
        key: id.storage_key(),
        data: Data::try_from(json!({"user": "alice"})).unwrap_or_default(),
        version: 1,
        created_at: now,
        expires_at: now + ttl,
        deadline: now + Duration::days(1),
        principal: None,
        expiry: None,
    }
}

#[tokio::test]
async fn c17_expired_records_are_never_loaded() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let (soon, past) = (Id::random(), Id::random());
    let now = clock.now();
    store
        .create(&record(&soon, now, Duration::seconds(1)), now)
        .await
        .expect("create");
    store
        .create(&record(&past, now, Duration::seconds(-1)), now)
        .await
        .expect("create");

    assert!(store
        .load(&past.storage_key(), now)
        .await
        .expect("load")
        .is_none());
    assert!(store
        .load(&soon.storage_key(), now)
        .await
        .expect("load")
        .is_some());

    clock.advance(Duration::seconds(2));
    let later = clock.now();
    assert!(store
        .load(&soon.storage_key(), later)
        .await
        .expect("load")
        .is_none());

    // Through a session too: the request is treated as having none.
    let config = Arc::new(SessionConfig::default().with_clock(clock.clone()));
    let session = Session::new(Arc::new(store), config, vec![soon]);
    assert!(!session.exists().await.expect("exists"));
}

#[tokio::test]
async fn c19_abandoned_sessions_are_evicted_without_reads() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let now = clock.now();

    for _ in 0..10_000 {
        let record = record(&Id::random(), now, Duration::seconds(60));
        store.create(&record, now).await.expect("create");
    }
    store.run_pending_tasks().await;
    assert_eq!(store.entry_count(), 10_000);

    clock.advance(Duration::seconds(61));
    let removed = store.delete_expired(clock.now()).await.expect("sweep");
    store.run_pending_tasks().await;

    assert_eq!(removed, 10_000);
    assert_eq!(store.entry_count(), 0);
}

#[tokio::test]
async fn c19_writes_sweep_out_abandoned_sessions_on_their_own() {
    // No read, no sweep call: the creates of new sessions take the dead
    // ones out, a couple each, soonest expired first.
    let store = MemoryStore::new();
    let now = OffsetDateTime::now_utc();
    for _ in 0..1_000 {
        let record = record(&Id::random(), now, Duration::milliseconds(50));
        store.create(&record, now).await.expect("create");
    }

    // Three times as many, so that every shard, however unevenly the keys
    // fall, sees enough writes to empty it of the dead.
    let later = now + Duration::seconds(1);
    for _ in 0..3_000 {
        let record = record(&Id::random(), later, Duration::hours(1));
        store.create(&record, later).await.expect("create");
    }

    assert_eq!(store.entry_count(), 3_000);
}

#[tokio::test]
async fn c19_maintenance_sweeps_by_the_store_clock() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let now = clock.now();
    for _ in 0..1_000 {
        let record = record(&Id::random(), now, Duration::milliseconds(50));
        store.create(&record, now).await.expect("create");
    }

    store.run_pending_tasks().await;
    assert_eq!(store.entry_count(), 1_000);
    clock.advance(Duration::milliseconds(50));
    store.run_pending_tasks().await;

    assert_eq!(store.entry_count(), 0);
}

#[tokio::test]
async fn c19_capacity_bounds_the_entry_count() {
    let store = MemoryStore::builder().max_capacity(100).build();
    let now = OffsetDateTime::now_utc();

    // Each session expires a second after the one before, as sessions
    // used one after another do under sliding expiry.
    let ids: Vec<Id> = (0..1_000).map(|_| Id::random()).collect();
    for (n, id) in (0..).zip(&ids) {
        let record = record(id, now, Duration::hours(1) + Duration::seconds(n));
        store.create(&record, now).await.expect("create");
    }
    store.run_pending_tasks().await;

    assert_eq!(store.entry_count(), 100);
    // The ones that expire soonest went; the newest ones all stayed.
    for (n, id) in ids.iter().enumerate() {
        let kept = store.load(&id.storage_key(), now).await.expect("load");
        assert_eq!(kept.is_some(), n >= 900, "session {n}");
    }
}

#[tokio::test]
async fn c19_a_large_capacity_is_dealt_over_the_shards_exactly() {
    let store = MemoryStore::builder().max_capacity(100_003).build();
    let now = OffsetDateTime::now_utc();

    for _ in 0..120_000 {
        let record = record(&Id::random(), now, Duration::hours(1));
        store.create(&record, now).await.expect("create");
    }

    assert_eq!(store.entry_count(), 100_003);
}

#[tokio::test]
async fn c28_create_twice_collides_and_one_of_a_thousand_wins() {
    let store = MemoryStore::new();
    let id = Id::random();
    let now = OffsetDateTime::now_utc();
    let first = record(&id, now, Duration::hours(1));

    assert_eq!(
        store.create(&first, now).await.expect("create"),
        CreateOutcome::Created
    );
    let mut second = first.clone();
    second.data.insert("user", json!("mallory"));
    assert_eq!(
        store.create(&second, now).await.expect("create"),
        CreateOutcome::Collision
    );
    assert_eq!(
        store.load(&id.storage_key(), now).await.expect("load"),
        Some(first)
    );

    let shared = Id::random();
    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let store = store.clone();
            let mut record = record(&shared, now, Duration::hours(1));
            record.data.insert("writer", json!(i));
            tokio::spawn(async move { store.create(&record, now).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        if task.await.expect("join").expect("create") == CreateOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
}
