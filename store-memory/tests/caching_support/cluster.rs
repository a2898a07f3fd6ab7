//! Two application instances over one durable store, driven through
//! real `Session`s.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use session_core::time::Duration;
use session_core::{Clock, Commit, Id, Session, SessionConfig, Store};
use store_memory::{CachingStore, MemoryStore};
use tokio::task::JoinSet;

/// Two application instances, each a `CachingStore` with a cache of its
/// own over its own connection to one durable store, and the session
/// settings they share.
pub struct Cluster {
    pub a: Arc<dyn Store>,
    pub b: Arc<dyn Store>,
    /// The durable store as a third party sees it, without a cache.
    pub durable: Arc<dyn Store>,
    pub config: Arc<SessionConfig>,
}

impl Cluster {
    /// Instances on `a` and `b`, which reach one database; `plain` is a
    /// third way in, for looking at what is stored.
    pub fn new<D: Store>(
        clock: impl Clock + Clone,
        ttl: StdDuration,
        [a, b, plain]: [D; 3],
    ) -> Self {
        let instance = |durable: D| {
            let cache = MemoryStore::builder().clock(clock.clone()).build();
            let store = CachingStore::new(cache, durable)
                .with_ttl(ttl)
                .with_clock(clock.clone());
            Arc::new(store) as Arc<dyn Store>
        };
        let (a, b) = (instance(a), instance(b));

        // Requests on two instances retry against each other: give them
        // room, so that only a lost write could fail the test.
        let config = SessionConfig::new()
            .with_clock(clock)
            .with_max_save_attempts(64)
            .with_touch_after(Duration::seconds(1));
        Self {
            a,
            b,
            durable: Arc::new(plain),
            config: Arc::new(config),
        }
    }

    /// A request on `store` carrying the cookie for `id`, if any.
    pub fn request(&self, store: &Arc<dyn Store>, id: Option<Id>) -> Session {
        let cookies = id.into_iter().collect();
        Session::new(Arc::clone(store), Arc::clone(&self.config), cookies)
    }

    /// Starts a session on instance A holding `key: value`.
    pub async fn login(&self, key: &str, value: &str) -> Id {
        let session = self.request(&self.a, None);
        session.insert(key, value).await.expect("insert");

        match session.commit().await.expect("commit") {
            Commit::Set { id, .. } => id,
            other => panic!("a new session is stored, got {other:?}"),
        }
    }

    /// What a read-only request on `store` sees under `key`.
    pub async fn read(&self, store: &Arc<dyn Store>, id: Id, key: &str) -> Option<String> {
        let session = self.request(store, Some(id));
        let value = session.get(key).await.expect("get");
        session.commit().await.expect("commit");
        value
    }

    /// Whether the durable store still holds the session.
    pub async fn stored(&self, id: Id) -> bool {
        let now = self.config.clock().now();
        let loaded = self.durable.load(&id.storage_key(), now).await;
        loaded.expect("load").is_some()
    }
}

/// One request: bump the shared counter and add a key of its own.
pub async fn bump(session: Session, own_key: String) {
    session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await
        .expect("update");
    session.insert(&own_key, true).await.expect("insert");

    // A save that does not move the expiry sends no cookie, so the
    // commit says Unchanged; what was saved is checked in the store.
    let committed = session.commit().await.expect("commit");
    assert!(
        !matches!(committed, Commit::Removed),
        "the session is kept, got {committed:?}"
    );
}

/// `lanes` concurrent requests per instance, each making `turns` updates
/// in a row, all on one session: the counter ends at the number of
/// updates and every request's own key is there.
///
/// The cluster's clock should stand still: copies then never go stale by
/// time, so every reload after a conflict must come from an eviction.
pub async fn updates_on_two_instances(cluster: Cluster, lanes: usize, turns: usize) {
    let cluster = Arc::new(cluster);
    let id = cluster.login("user", "alice").await;
    let user = cluster.read(&cluster.b, id, "user").await;
    assert_eq!(user.as_deref(), Some("alice"));

    let mut requests = JoinSet::new();
    for (name, store) in [("a", &cluster.a), ("b", &cluster.b)] {
        for lane in 0..lanes {
            let (cluster, store) = (Arc::clone(&cluster), Arc::clone(store));
            requests.spawn(async move {
                for turn in 0..turns {
                    let session = cluster.request(&store, Some(id));
                    bump(session, format!("{name}-{lane}-{turn}")).await;
                }
            });
        }
    }
    while let Some(joined) = requests.join_next().await {
        joined.expect("a request panicked");
    }

    // Read from the durable store itself: B's copy may lag A's last
    // write, and with the clock standing still it would not catch up.
    let now = cluster.config.clock().now();
    let stored = cluster.durable.load(&id.storage_key(), now).await;
    let data = stored
        .expect("load")
        .expect("the session is stored")
        .data
        .to_map();
    let total = 2 * lanes * turns;
    let counter = data.get("counter").and_then(serde_json::Value::as_u64);
    assert_eq!(counter, Some(total as u64), "every update counted once");
    for name in ["a", "b"] {
        for lane in 0..lanes {
            for turn in 0..turns {
                let key = format!("{name}-{lane}-{turn}");
                assert!(data.contains_key(&key), "{key} was lost");
            }
        }
    }
}
