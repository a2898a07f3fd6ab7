//! Two application instances, each with a cache of its own, over one
//! SQLite file, driven through real `Session`s: no write is lost, a logout
//! on one is never undone by the other, and a change on one is read on
//! the other within the TTL.

mod caching_support;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use session_core::time::Duration;
use session_core::{Clock, Commit, Id, ManualClock, Store, SystemClock};

use caching_support::cluster::{updates_on_two_instances, Cluster};
use caching_support::DbFile;

const TTL: StdDuration = StdDuration::from_secs(2);

/// Concurrent requests per instance, and updates each makes in turn.
const REQUESTS: usize = 4;
const UPDATES: usize = 25;

/// Two instances on their own connection pools to one SQLite file, which
/// lives as long as the returned `DbFile`.
async fn sqlite_cluster(clock: impl Clock + Clone, ttl: StdDuration) -> (Cluster, DbFile) {
    let file = DbFile::new();
    let pools = [file.open().await, file.open().await, file.open().await];
    (Cluster::new(clock, ttl, pools), file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_at_a_time_per_instance_loses_nothing() {
    let (cluster, _file) = sqlite_cluster(ManualClock::starting_now(), TTL).await;
    updates_on_two_instances(cluster, 1, 2 * UPDATES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_two_instances_lose_nothing() {
    let (cluster, _file) = sqlite_cluster(ManualClock::starting_now(), TTL).await;
    updates_on_two_instances(cluster, REQUESTS, UPDATES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_on_one_instance_is_never_undone_by_the_other() {
    const ROUNDS: usize = 20;
    let clock = ManualClock::starting_now();
    let (cluster, _file) = sqlite_cluster(clock, TTL).await;
    let cluster = Arc::new(cluster);

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
    let (cluster, _file) = sqlite_cluster(clock.clone(), TTL).await;
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
    let (cluster, _file) = sqlite_cluster(clock.clone(), TTL).await;
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
    let (cluster, _file) = sqlite_cluster(SystemClock, ttl).await;
    let id = theme_changed_on_a(&cluster).await;

    tokio::time::sleep(ttl + StdDuration::from_millis(50)).await;

    assert_theme(&cluster, &cluster.b, id, "dark").await;
}
