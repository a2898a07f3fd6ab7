//! C23: the Redis store survives connection loss. An idle connection the
//! server closed recovers on the next call; with Redis down, calls fail
//! with a store error within the timeout and nothing panics; once Redis
//! is back, the same store works again without being rebuilt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::redis as servers;
use session_core::{Commit, Id, Session, SessionConfig, Store};
use store_redis::RedisStore;

/// The store's per-operation timeout in these tests.
const TIMEOUT: Duration = Duration::from_secs(1);

/// How long Redis may take to be usable again after a restart.
const RECOVERY: Duration = Duration::from_secs(20);

/// One request that logs in: a new session with a user and a principal.
async fn log_in(store: &Arc<dyn Store>, config: &Arc<SessionConfig>) -> Result<Id, String> {
    let session = Session::new(Arc::clone(store), Arc::clone(config), Vec::new());

    session
        .insert("user", "alice")
        .await
        .map_err(|e| e.to_string())?;
    session
        .set_principal("alice")
        .await
        .map_err(|e| e.to_string())?;
    match session.commit().await {
        Ok(Commit::Set { id, .. }) => Ok(id),
        Ok(other) => Err(format!("a login committed as {other:?}")),
        Err(error) => Err(error.to_string()),
    }
}

/// One request that reads the user back.
async fn read_user(
    store: &Arc<dyn Store>,
    config: &Arc<SessionConfig>,
    id: Id,
) -> Result<Option<String>, session_core::Error> {
    let session = Session::new(Arc::clone(store), Arc::clone(config), vec![id]);
    session.get("user").await
}

/// A store on `node` with the short timeout, and the default settings.
async fn session_setup(node: &servers::RedisNode) -> (Arc<dyn Store>, Arc<SessionConfig>) {
    let store = RedisStore::builder()
        .timeout(TIMEOUT)
        .connect(node.url())
        .await
        .expect("connect");
    (Arc::new(store), Arc::new(SessionConfig::default()))
}

async fn connected_clients(node: &servers::RedisNode) -> u64 {
    let mut raw = node.connection().await;
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut raw)
        .await
        .expect("info");
    info.lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("INFO clients has connected_clients")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c23_idle_close_outage_and_restart() {
    let node = servers::dedicated().await;
    let (store, config) = session_setup(&node).await;
    let id = log_in(&store, &config).await.expect("log in");

    // 1. The server drops connections idle for 2 s, the store's included.
    let mut raw = node.connection().await;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg("2")
        .query_async::<()>(&mut raw)
        .await
        .expect("config set timeout");
    drop(raw);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        connected_clients(&node).await,
        1,
        "only this check is connected"
    );

    let user = read_user(&store, &config, id).await;
    assert_eq!(
        user.expect("the first request after the close"),
        Some("alice".to_owned())
    );

    // 2. Redis is down: requests that use the session fail, in time.
    node.stop().await.expect("stop");
    let started = Instant::now();
    let read = read_user(&store, &config, id).await;
    let error = read.expect_err("a read with Redis down fails");
    assert!(error.is_store(), "{error}");
    let login = log_in(&store, &config).await;
    assert!(login.is_err(), "a login with Redis down fails");
    assert!(
        started.elapsed() < 2 * TIMEOUT + Duration::from_secs(2),
        "two failed requests took {:?}",
        started.elapsed()
    );

    // 3. Redis is back (empty: it keeps nothing on disk). The same store
    // recovers once its connection manager has reconnected.
    node.start().await.expect("start");
    let back = Instant::now();
    let id = loop {
        match log_in(&store, &config).await {
            Ok(id) => break id,
            Err(error) if back.elapsed() < RECOVERY => {
                eprintln!("not yet: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("no recovery within {RECOVERY:?}: {error}"),
        }
    };
    let user = read_user(&store, &config, id).await;
    assert_eq!(
        user.expect("a read after recovery"),
        Some("alice".to_owned())
    );
}

/// C23, step 4: Redis goes down and comes back while requests are
/// running. Each of them succeeds or fails cleanly; none panics or hangs,
/// and requests succeed again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c23_restart_during_requests() {
    let node = servers::dedicated().await;
    let (store, config) = session_setup(&node).await;

    let mut requests = Vec::new();
    for _ in 0..4 {
        let (store, config) = (Arc::clone(&store), Arc::clone(&config));
        requests.push(tokio::spawn(async move {
            let mut outcomes = (0_u32, 0_u32);
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let started = Instant::now();
                match log_in(&store, &config).await {
                    Ok(_) => outcomes.0 += 1,
                    Err(_) => outcomes.1 += 1,
                }
                assert!(started.elapsed() < 3 * TIMEOUT, "a request hung");
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.stop().await.expect("stop");
    // Down for longer than the timeout, so that requests meet it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    node.start().await.expect("start");

    let (mut succeeded, mut failed) = (0, 0);
    for request in requests {
        let (ok, errors) = request.await.expect("no request panicked");
        succeeded += ok;
        failed += errors;
    }
    assert!(
        succeeded > 0 && failed > 0,
        "{succeeded} succeeded, {failed} failed"
    );
    let back = Instant::now();
    while log_in(&store, &config).await.is_err() {
        assert!(back.elapsed() < RECOVERY, "no recovery after the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What `connect` says when the first connection fails: the cause when
/// there is one, which the connection manager's retries used to hide
/// behind a timeout, and a timeout when the server never answers.
#[tokio::test]
async fn connect_errors_name_their_cause() {
    let connect_timeout = Duration::from_millis(500);
    let connect = |url: String| async move {
        let started = Instant::now();
        let result = RedisStore::builder()
            .connect_timeout(connect_timeout)
            .connect(&url)
            .await;
        (result.err(), started.elapsed())
    };
    let cause = |error: &store_redis::Error| {
        std::error::Error::source(error).map_or_else(String::new, ToString::to_string)
    };

    // Nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let (error, took) = connect(format!("redis://127.0.0.1:{port}")).await;
    let error = error.expect("nothing listens");
    assert!(
        matches!(error, store_redis::Error::Connect { .. }),
        "{error:?}"
    );
    assert!(cause(&error).contains("refused"), "{}", cause(&error));
    assert!(took < connect_timeout + Duration::from_secs(2), "{took:?}");

    // A password the server does not take.
    let node = servers::shared();
    let wrong = node.url().replacen("redis://", "redis://nobody:wrong@", 1);
    let (error, _) = connect(wrong).await;
    let error = error.expect("the login fails");
    assert!(
        matches!(error, store_redis::Error::Connect { .. }),
        "{error:?}"
    );
    assert!(!cause(&error).is_empty(), "{error:?}");

    // A server that wants a password the URL does not give: it takes the
    // connection, then answers NOAUTH to every command.
    let guarded = servers::dedicated().await;
    let mut admin = guarded.connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query_async(&mut admin)
        .await
        .expect("config set");
    let (error, _) = connect(guarded.url().to_owned()).await;
    let error = error.expect("no password given");
    assert!(
        matches!(error, store_redis::Error::Connect { .. }),
        "{error:?}"
    );
    assert!(cause(&error).contains("NOAUTH"), "{}", cause(&error));
    let given = guarded.url().replacen("redis://", "redis://:s3cret@", 1);
    let (error, _) = connect(given).await;
    assert!(error.is_none(), "{error:?}");
    guarded.stop().await.expect("stop");

    // A port that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("address").port();
    let (error, took) = connect(format!("redis://127.0.0.1:{port}")).await;
    let error = error.expect("no answer");
    assert!(
        matches!(error, store_redis::Error::ConnectTimeout { .. }),
        "{error:?}"
    );
    assert!(took < connect_timeout + Duration::from_secs(2), "{took:?}");
    drop(silent);
}
