//! PostgreSQL goes away in the middle of a run and comes back.
//!
//! Requests go through `session_core::Session`, as the middleware sends
//! them, with a short store timeout. While the server is down every
//! request that uses the session fails with a store error within the
//! timeout (no panic, no hang), a request that never touches its session
//! is not affected, and once the server is back on the same port the same
//! store and pool serve again without being rebuilt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::postgres;
use session_core::time::Duration as TimeDuration;
use session_core::{Commit, Error, Id, Session, SessionConfig, Store};
use store_postgres::PostgresStore;

/// The per-call timeout the sessions get.
const STORE_TIMEOUT: Duration = Duration::from_millis(1_500);

/// How late past the timeout a failure may come (scheduling, one retry).
const SLACK: Duration = Duration::from_millis(1_000);

/// What one request saw.
#[derive(Debug)]
struct Visit {
    ok: bool,
    timed_out: bool,
    elapsed: Duration,
}

/// One request: load the session, count a visit, commit.
async fn visit(store: &Arc<dyn Store>, config: &Arc<SessionConfig>, id: Id) -> Visit {
    let started = Instant::now();
    let session = Session::new(Arc::clone(store), Arc::clone(config), vec![id]);

    let outcome = async {
        session
            .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await?;
        session.commit().await
    }
    .await;

    let elapsed = started.elapsed();
    match outcome {
        Ok(_) => Visit {
            ok: true,
            timed_out: false,
            elapsed,
        },
        Err(error) => {
            assert!(error.is_store(), "a store failure, not {error:?}");
            let timed_out = matches!(&error, Error::Store(e) if e.is_timeout());
            Visit {
                ok: false,
                timed_out,
                elapsed,
            }
        }
    }
}

/// Waits, at most `limit`, until `done` holds for the visits so far.
async fn until(visits: &Mutex<Vec<Visit>>, limit: Duration, done: impl Fn(&[Visit]) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if done(&visits.lock().expect("not poisoned")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the visits did not get there in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_cleanly_while_postgres_is_down_and_recover_after() {
    let server = postgres::dedicated().await;
    let db = server.fresh_database().await;
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.expect("migrate");
    let store: Arc<dyn Store> = Arc::new(store);
    let timeout = TimeDuration::try_from(STORE_TIMEOUT).expect("fits");
    let config = Arc::new(SessionConfig::new().with_store_timeout(timeout));

    let first = Session::new(Arc::clone(&store), Arc::clone(&config), Vec::new());
    first.insert("visits", 0u64).await.expect("insert");
    let Ok(Commit::Set { id, .. }) = first.commit().await else {
        panic!("the first session is stored");
    };

    // Requests keep coming, one after the other, the whole time.
    let visits = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (store, config) = (Arc::clone(&store), Arc::clone(&config));
        let (visits, stop) = (Arc::clone(&visits), Arc::clone(&stop));
        tokio::spawn(async move {
            for _ in 0..2_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seen = visit(&store, &config, id).await;
                visits.lock().expect("not poisoned").push(seen);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let minute = Duration::from_secs(60);
    until(&visits, minute, |v| v.iter().filter(|v| v.ok).count() >= 5).await;
    server.stop().await.expect("pg_ctl stop -m fast");
    let stopped_at = visits.lock().expect("not poisoned").len();

    until(&visits, minute, |v| {
        v[stopped_at..].iter().filter(|v| !v.ok).count() >= 3
    })
    .await;
    // A request that never reads its session sends nothing to the store.
    let idle = Session::new(Arc::clone(&store), Arc::clone(&config), vec![id]);
    assert!(matches!(idle.commit().await, Ok(Commit::Unchanged)));

    server
        .start()
        .await
        .expect("the server comes back on its port");
    let restarted_at = visits.lock().expect("not poisoned").len();
    until(&visits, minute, |v| {
        v[restarted_at..].iter().filter(|v| v.ok).count() >= 5
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    worker.await.expect("the requests never panicked");

    let visits = std::mem::take(&mut *visits.lock().expect("not poisoned"));
    let down: Vec<&Visit> = visits[stopped_at..restarted_at].iter().collect();
    let failures: Vec<&&Visit> = down.iter().filter(|v| !v.ok).collect();
    let slowest = visits.iter().map(|v| v.elapsed).max().unwrap_or_default();
    let succeeded = visits.iter().filter(|v| v.ok).count();
    eprintln!(
        "fault test: {} requests; {} while down, {} failed ({} timed out, {} refused); \
         slowest {slowest:?}; {succeeded} succeeded",
        visits.len(),
        down.len(),
        failures.len(),
        failures.iter().filter(|v| v.timed_out).count(),
        failures.iter().filter(|v| !v.timed_out).count(),
    );

    assert!(!failures.is_empty());
    assert!(
        slowest <= STORE_TIMEOUT * 2 + SLACK,
        "a request hung: {slowest:?}"
    );
    let after_restart = visits[restarted_at..].iter().filter(|v| v.ok).count();
    assert!(after_restart >= 5, "the same pool serves again");

    // Committed visits are all there; one cut off mid-commit may be too.
    let check = Session::new(Arc::clone(&store), Arc::clone(&config), vec![id]);
    let counted: u64 = check.get("visits").await.expect("load").expect("present");
    let counted = usize::try_from(counted).expect("small");
    assert!(
        counted >= succeeded && counted <= visits.len(),
        "{counted} of {succeeded}"
    );
}
