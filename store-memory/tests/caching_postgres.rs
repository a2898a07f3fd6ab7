//! `CachingStore` against the conformance suite over PostgreSQL, the
//! server several instances would share, found or started by
//! `integration-tests` (a URL in `SESSION_TEST_POSTGRES_URL`, a container,
//! or the local binaries).
//!
//! Each namespace is a table of its own in a fresh database, with a cache
//! of its own in front of it.

mod caching_support;

use std::time::Duration;

use integration_tests::postgres::{self, TestDatabase};
use session_conformance::{async_trait, Harness};
use session_core::ManualClock;
use sqlx::PgPool;
use store_memory::{CachingStore, MemoryStore};
use store_postgres::PostgresStore;

use caching_support::cluster::{updates_on_two_instances, Cluster};

/// One fresh database per test.
struct Postgres {
    pool: PgPool,
    // Dropped last: the database goes away with the test.
    _db: TestDatabase,
}

#[async_trait]
impl Harness for Postgres {
    type Store = CachingStore<MemoryStore, PostgresStore>;

    async fn store(&self, namespace: &str) -> Self::Store {
        let durable = PostgresStore::builder(self.pool.clone())
            .with_table(namespace)
            .build()
            .expect("the suite's namespaces are valid table names");
        durable.migrate().await.expect("migrations apply");

        CachingStore::new(MemoryStore::new(), durable)
    }
}

async fn harness() -> Postgres {
    let db = postgres::shared().fresh_database().await;
    Postgres {
        pool: db.pool().await,
        _db: db,
    }
}

session_conformance::suite!(harness);

/// Two instances with caches of their own, each on its own pool to one
/// database, updating one session concurrently: nothing is lost.
#[test]
fn concurrent_requests_on_two_instances_lose_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("start a tokio runtime");

    runtime.block_on(async {
        let db = postgres::shared().fresh_database().await;
        let mut pools = Vec::new();
        for _ in 0..3 {
            let store = PostgresStore::new(db.pool().await);
            store.migrate().await.expect("migrations apply");
            pools.push(store);
        }
        let pools: [PostgresStore; 3] = pools.try_into().expect("three pools");

        let clock = ManualClock::starting_now();
        let cluster = Cluster::new(clock, Duration::from_secs(2), pools);
        updates_on_two_instances(cluster, 4, 25).await;
    });
}
