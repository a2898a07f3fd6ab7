//! Two application instances, each with a cache of its own, over one
//! SQLite file, driven through real `Session`s: no write is lost, a logout
//! on one is never undone by the other, and a change on one is read on
//! the other within the TTL.

mod caching_support;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use session_core::time::Duration;
use session_core::{Clock, Commit, Id, ManualClock, Session, SessionConfig, Store, SystemClock};
use store_memory::{CachingStore, MemoryStore};
use store_sqlite::SqliteStore;
use tokio::task::JoinSet;

use caching_support::DbFile;

const TTL: StdDuration = StdDuration::from_secs(2);

/// Concurrent requests per instance, and updates each makes in turn.
const REQUESTS: usize = 4;
const UPDATES: usize = 25;

/// Two instances' stores, each on its own connection pool to one file,
/// and the session settings they share.
struct Cluster {
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
    /// The file as a third party sees it, without a cache.
    durable: SqliteStore,
    config: Arc<SessionConfig>,
    _file: DbFile,
}

impl Cluster {
    async fn start(clock: impl Clock + Clone, ttl: StdDuration) -> Self {
        let file = DbFile::new();
        let instance = |durable: SqliteStore| {
            let cache = MemoryStore::builder().clock(clock.clone()).build();
            let store = CachingStore::new(cache, durable)
                .with_ttl(ttl)
                .with_clock(clock.clone());
            Arc::new(store) as Arc<dyn Store>
        };
        let a = instance(file.open().await);
        let b = instance(file.open().await);

        // Requests on two instances retry against each other: give them
        // room, so that only a lost write could fail the test.
        let config = SessionConfig::new()
            .with_clock(clock)
            .with_max_save_attempts(64)
            .with_touch_after(Duration::seconds(1));
        Self {
            a,
            b,
            durable: file.open().await,
            config: Arc::new(config),
            _file: file,
        }
    }

    /// A request on `store` carrying the cookie for `id`, if any.
    fn request(&self, store: &Arc<dyn Store>, id: Option<Id>) -> Session {
        let cookies = id.into_iter().collect();
        Session::new(Arc::clone(store), Arc::clone(&self.config), cookies)
    }

    /// Starts a session on instance A holding `key: value`.
    async fn login(&self, key: &str, value: &str) -> Id {
        let session = self.request(&self.a, None);
        session.insert(key, value).await.expect("insert");

        match session.commit().await.expect("commit") {
            Commit::Set { id, .. } => id,
            other => panic!("a new session is stored, got {other:?}"),
        }
    }

    /// What a read-only request on `store` sees under `key`.
    async fn read(&self, store: &Arc<dyn Store>, id: Id, key: &str) -> Option<String> {
        let session = self.request(store, Some(id));
        let value = session.get(key).await.expect("get");
        session.commit().await.expect("commit");
        value
    }

    /// Whether the shared file still holds the session.
    async fn stored(&self, id: Id) -> bool {
        let now = self.config.clock().now();
        let loaded = self.durable.load(&id.storage_key(), now).await;
        loaded.expect("load").is_some()
    }
}

/// One request: bump the shared counter and add a key of its own.
async fn bump(session: Session, own_key: String) {
    session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await
        .expect("update");
    session.insert(&own_key, true).await.expect("insert");

    let committed = session.commit().await.expect("commit");
    assert!(
        matches!(committed, Commit::Set { .. }),
        "the session is saved, got {committed:?}"
    );
}

/// `lanes` concurrent requests per instance, each making `turns` updates
/// in a row, all on one session: the counter ends at the number of
/// updates and every request's own key is there.
async fn updates_on_two_instances(lanes: usize, turns: usize) {
    // The clock stands still: copies never go stale by time, so every
    // reload after a conflict must come from the eviction.
    let clock = ManualClock::starting_now();
    let cluster = Arc::new(Cluster::start(clock, TTL).await);
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

    // Read from the file itself: B's copy may lag A's last write, and
    // with the clock standing still it would not catch up.
    let now = cluster.config.clock().now();
    let stored = cluster.durable.load(&id.storage_key(), now).await;
    let data = stored.expect("load").expect("the session is stored").data;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_at_a_time_per_instance_loses_nothing() {
    updates_on_two_instances(1, 2 * UPDATES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_two_instances_lose_nothing() {
    updates_on_two_instances(REQUESTS, UPDATES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_on_one_instance_is_never_undone_by_the_other() {
    const ROUNDS: usize = 20;
    let clock = ManualClock::starting_now();
    let cluster = Arc::new(Cluster::start(clock, TTL).await);

    for _ in 0..ROUNDS {
        let id = cluster.login("user", "alice").await;
        assert!(cluster.read(&cluster.b, id, "user").await.is_some());

        // B keeps writing from its cached copy while A logs out.
        let writer = {
            let cluster = Arc::clone(&cluster);
            tokio::spawn(async move {
                for turn in 0..5 {
                    let session = cluster.request(&cluster.b, Some(id));
                    let _ = session.insert(&format!("late-{turn}"), turn).await;
                    session.commit().await.expect("commit");
                }
            })
        };
        let logout = cluster.request(&cluster.a, Some(id));
        logout.delete().await.expect("delete");
        assert_eq!(logout.commit().await.expect("commit"), Commit::Removed);
        writer.await.expect("the writer panicked");

        assert!(!cluster.stored(id).await, "the logout was undone");
        let session = cluster.request(&cluster.b, Some(id));
        session.insert("after", true).await.expect("insert");
        let committed = session.commit().await.expect("commit");
        assert!(
            !matches!(committed, Commit::Set { id: same, .. } if same == id),
            "B saved under the logged-out id"
        );
        assert!(!cluster.stored(id).await, "the logout was undone");
    }
}

#[tokio::test]
async fn a_read_only_request_on_the_other_instance_ends_at_its_touch() {
    let clock = ManualClock::starting_now();
    let cluster = Cluster::start(clock.clone(), TTL).await;
    let id = cluster.login("user", "alice").await;
    assert!(cluster.read(&cluster.b, id, "user").await.is_some());

    let logout = cluster.request(&cluster.a, Some(id));
    logout.delete().await.expect("delete");
    logout.commit().await.expect("commit");

    // Within the TTL B still reads its copy (the documented bound); once
    // the expiry is due for a refresh, the touch finds the session gone.
    clock.advance(Duration::milliseconds(1_500));
    let session = cluster.request(&cluster.b, Some(id));
    assert_eq!(
        session.get::<String>("user").await.expect("get").as_deref(),
        Some("alice")
    );
    let committed = session.commit().await.expect("commit");
    assert!(
        !matches!(committed, Commit::Set { .. }),
        "got {committed:?}"
    );

    // Still within the TTL: only the touch's eviction explains this.
    assert_eq!(cluster.read(&cluster.b, id, "user").await, None);
    assert!(!cluster.stored(id).await);
}

/// Fails unless a read-only request on `store` sees `want` under "theme".
async fn assert_theme(cluster: &Cluster, store: &Arc<dyn Store>, id: Id, want: &str) {
    let seen = cluster.read(store, id, "theme").await;
    assert_eq!(seen.as_deref(), Some(want));
}

/// A session that B has read as "light" and A has then made "dark".
async fn theme_changed_on_a(cluster: &Cluster) -> Id {
    let id = cluster.login("theme", "light").await;
    assert_theme(cluster, &cluster.b, id, "light").await;

    let session = cluster.request(&cluster.a, Some(id));
    session.insert("theme", "dark").await.expect("insert");
    session.commit().await.expect("commit");
    id
}

#[tokio::test]
async fn a_write_on_one_instance_is_read_on_the_other_within_the_ttl() {
    let clock = ManualClock::starting_now();
    let cluster = Cluster::start(clock.clone(), TTL).await;
    let id = theme_changed_on_a(&cluster).await;

    // A reads its own write at once; B may still answer from its copy...
    assert_theme(&cluster, &cluster.a, id, "dark").await;
    let ttl = Duration::try_from(TTL).expect("a small TTL");
    clock.advance(ttl - Duration::milliseconds(1));
    assert_theme(&cluster, &cluster.b, id, "light").await;

    // ...but never once the TTL has passed since the write.
    clock.advance(Duration::milliseconds(1));
    assert_theme(&cluster, &cluster.b, id, "dark").await;
}

/// The same promise on the system clock, as deployed: past the TTL, B
/// reads A's write.
#[tokio::test]
async fn on_the_system_clock_the_other_instance_catches_up_after_the_ttl() {
    let ttl = StdDuration::from_millis(200);
    let cluster = Cluster::start(SystemClock, ttl).await;
    let id = theme_changed_on_a(&cluster).await;

    tokio::time::sleep(ttl + StdDuration::from_millis(50)).await;

    assert_theme(&cluster, &cluster.b, id, "dark").await;
}
