//! C25: concurrent creates and saves on a WAL database file never meet
//! "database is locked", and none overwrites another.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::Instant;

use serde_json::json;
use session_core::{CreateOutcome, Record, SaveOutcome, Store};
use store_sqlite::{PoolConfig, SqliteStore};
use tokio::task::JoinSet;

use common::{now, record, TempDir};

const CREATES: usize = 200;
const SAVES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_and_saves_all_succeed() {
    let dir = TempDir::new();
    let config = PoolConfig::new().with_max_connections(8);
    let store = common::file_store(&dir, &config).await;
    let t0 = now();

    let existing = seed(&store, SAVES).await;
    let fresh: Vec<Record> = (0..CREATES)
        .map(|i| record(t0, json!({ "created": i })))
        .collect();

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for created in &fresh {
        let (store, created) = (store.clone(), created.clone());
        tasks.spawn(async move { Op::Create(store.create(&created, t0).await) });
    }
    for (i, old) in existing.iter().enumerate() {
        let store = store.clone();
        let next = Record {
            data: common::data(json!({ "saved": i })),
            version: 2,
            ..old.clone()
        };
        tasks.spawn(async move { Op::Save(store.save(&next, 1, t0).await) });
    }
    let outcomes = tasks.join_all().await;
    let elapsed = started.elapsed();

    assert_eq!(outcomes.len(), CREATES + SAVES);
    for outcome in outcomes {
        match outcome {
            Op::Create(result) => assert_eq!(result.unwrap(), CreateOutcome::Created),
            Op::Save(result) => assert_eq!(result.unwrap(), SaveOutcome::Saved),
        }
    }
    let keys: HashSet<_> = fresh.iter().map(|r| r.key).collect();
    assert_eq!(keys.len(), CREATES, "ids are unique");
    for created in &fresh {
        let loaded = store.load(&created.key, t0).await.unwrap();
        assert_eq!(loaded.as_ref(), Some(created), "a create was overwritten");
    }
    for (i, old) in existing.iter().enumerate() {
        let loaded = store.load(&old.key, t0).await.unwrap().unwrap();
        assert_eq!(loaded.version, 2);
        assert_eq!(loaded.data, common::data(json!({ "saved": i })));
    }
    eprintln!(
        "C25: {CREATES} creates + {SAVES} saves on 8 connections in {} ms",
        elapsed.as_millis()
    );
}

/// Two stores on one file (as two processes would have) writing at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_on_one_file_do_not_lock_each_other_out() {
    let dir = TempDir::new();
    let config = PoolConfig::new().with_max_connections(4);
    let first = common::file_store(&dir, &config).await;
    let second = SqliteStore::connect_with(&dir.db_url("sessions.db"), &config)
        .await
        .unwrap();
    let t0 = now();

    let mut tasks = JoinSet::new();
    for i in 0..200 {
        let store = if i % 2 == 0 { &first } else { &second }.clone();
        let created = record(t0, json!({ "i": i }));
        tasks.spawn(async move { store.create(&created, t0).await });
    }
    let outcomes = tasks.join_all().await;

    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), CreateOutcome::Created);
    }
    let counts = first.stats(t0).await.unwrap();
    assert_eq!(counts.live, 200);
}

enum Op {
    Create(Result<CreateOutcome, session_core::StoreError>),
    Save(Result<SaveOutcome, session_core::StoreError>),
}

/// Creates `n` sessions to save over.
async fn seed(store: &SqliteStore, n: usize) -> Vec<Record> {
    let t0 = now();
    let mut records = Vec::with_capacity(n);

    for i in 0..n {
        let existing = record(t0, json!({ "seeded": i }));
        assert_eq!(
            store.create(&existing, t0).await.unwrap(),
            CreateOutcome::Created
        );
        records.push(existing);
    }
    records
}

time_zone_tests!(concurrency_holds_in_other_time_zones);
