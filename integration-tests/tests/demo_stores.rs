//! The demo's login flow over loopback HTTP with every store URL that
//! `sessionctl demo --store` accepts, and what a request sees while its
//! store is down.

use std::time::Duration;

use integration_tests::{postgres, redis};
use serde_json::{json, Value};
use session_core::time::Duration as TimeDuration;
use session_core::SessionConfig;
use sessionctl::demo::{app, DemoOptions};
use sessionctl::stores::AnyStore;

/// Serves the demo on `url`'s store (migrated, as the CLI does) and
/// returns its base URL.
async fn serve(url: &str, config: SessionConfig) -> String {
    let store = AnyStore::open(url).await.expect("open the store");
    store.migrate().await.expect("migrate");

    let options = DemoOptions {
        config: Some(config),
        ..DemoOptions::default()
    };
    let router = app(store.shared(), &options).expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn me(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = client.get(format!("{base}/me")).send().await.expect("me");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn login(client: &reqwest::Client, base: &str, user: &str) -> u16 {
    let response = client
        .post(format!("{base}/login"))
        .form(&[("user", user)])
        .send()
        .await
        .expect("login");
    response.status().as_u16()
}

/// `/me` answers 5xx, and within the store timeout, while the store is down.
async fn assert_fails_in_time(client: &reqwest::Client, base: &str) {
    let started = std::time::Instant::now();

    let (status, _) = me(client, base).await;

    assert!(
        (500..600).contains(&status),
        "got {status} with the store down"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "hung {elapsed:?}");
}

/// Polls `/me` until it answers 200 again (ten seconds at most).
async fn me_once_back(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let mut last = (0, Value::Null);
    for _ in 0..50 {
        last = me(client, base).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// Login, three visits, logout, as the README shows with curl.
async fn login_flow(url: &str) {
    let base = serve(url, SessionConfig::default()).await;
    let client = browser();

    assert_eq!(login(&client, &base, "alice").await, 200, "{url}");
    for visits in 1..=3 {
        let expected = json!({"user": "alice", "visits": visits});
        assert_eq!(me(&client, &base).await, (200, expected), "{url}");
    }

    let logout = client
        .post(format!("{base}/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 200);
    let after = me(&client, &base).await;
    assert_eq!(after, (200, json!({"user": null, "visits": 1})), "{url}");
}

#[tokio::test]
async fn the_demo_login_flow_works_on_memory_and_sqlite() {
    login_flow("memory").await;

    let dir = tempfile::tempdir().expect("temp dir");
    login_flow(&format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test]
async fn the_demo_login_flow_works_on_postgres() {
    let db = postgres::shared().fresh_database().await;

    login_flow(&db.url()).await;
}

#[tokio::test]
async fn the_demo_login_flow_works_on_redis() {
    login_flow(redis::shared().url()).await;
}

#[tokio::test]
async fn the_demo_login_flow_works_on_a_redis_cluster() {
    let nodes: Vec<&str> = redis::shared_cluster()
        .urls()
        .iter()
        .map(|url| url.trim_start_matches("redis://").trim_end_matches('/'))
        .collect();

    login_flow(&format!("redis+cluster://{}", nodes.join(","))).await;
}

/// C23 over HTTP: Redis stopped gives a controlled 5xx within the store
/// timeout and the process keeps serving; Redis back, requests succeed
/// without a restart of the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c23_redis_down_gives_5xx_then_the_app_recovers_without_restart() {
    let node = redis::dedicated().await;
    let config = SessionConfig::default().with_store_timeout(TimeDuration::seconds(2));
    let base = serve(node.url(), config).await;
    let client = browser();
    assert_eq!(login(&client, &base, "alice").await, 200);

    node.stop().await.expect("stop redis");
    assert_fails_in_time(&client, &base).await;
    let page = client
        .get(format!("{base}/nothing"))
        .send()
        .await
        .expect("up");
    assert_eq!(page.status(), 404, "the process stopped serving");

    node.start().await.expect("start redis");
    let last = me_once_back(&client, &base).await;
    // The node kept no data across the restart, so the session is new.
    assert_eq!(last.0, 200, "no recovery: {last:?}");
    assert_eq!(login(&client, &base, "alice").await, 200);
    assert_eq!(me(&client, &base).await.1["user"], json!("alice"));
}

/// The same with PostgreSQL, whose data survives the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_gives_5xx_then_the_session_is_back() {
    let server = postgres::dedicated().await;
    let db = server.fresh_database().await;
    let config = SessionConfig::default().with_store_timeout(TimeDuration::seconds(2));
    let base = serve(&db.url(), config).await;
    let client = browser();
    assert_eq!(login(&client, &base, "alice").await, 200);

    server.stop().await.expect("stop postgres");
    assert_fails_in_time(&client, &base).await;

    server.start().await.expect("start postgres");
    let last = me_once_back(&client, &base).await;
    assert_eq!(last.0, 200, "no recovery: {last:?}");
    assert_eq!(
        last.1["user"],
        json!("alice"),
        "the session did not survive"
    );
}
