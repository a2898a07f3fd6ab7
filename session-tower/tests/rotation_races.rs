//! Races around id rotation and late responses, first found by a tester
//! who did not write the code. Each test states what must hold.

use std::time::Duration;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use session_core::time::OffsetDateTime;
use session_core::{CookiePolicy, Id, Store};
use session_tower::{Session, SessionLayer};
use store_memory::MemoryStore;

async fn serve(store: MemoryStore) -> String {
    let cookie = CookiePolicy::builder().secure(false).build().unwrap();
    let layer = SessionLayer::new(store).with_cookie(cookie);
    let app = Router::new()
        .route(
            "/login/{user}",
            post(|s: Session, Path(user): Path<String>| async move {
                s.set_principal(&user).await?;
                s.insert("user", &user).await?;
                Ok::<_, session_tower::Error>("ok")
            }),
        )
        // A slow handler whose only session call is cycle_id (e.g. a
        // privilege step-up that verifies a password first).
        .route(
            "/slow-cycle",
            post(|s: Session| async move {
                s.cycle_id().await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, session_tower::Error>("ok")
            }),
        )
        // The same, but re-logging in the user that is already logged in
        // (what the demo's /login does on a double submit).
        .route(
            "/slow-relogin/{user}",
            post(|s: Session, Path(user): Path<String>| async move {
                s.set_principal(&user).await?;
                s.insert("user", &user).await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, session_tower::Error>("ok")
            }),
        )
        .route(
            "/slow-incr",
            get(|s: Session| async move {
                let n = s
                    .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
                    .await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, session_tower::Error>(Json(n))
            }),
        )
        .route(
            "/logout",
            post(|s: Session| async move {
                s.delete().await?;
                Ok::<_, session_tower::Error>("ok")
            }),
        )
        .route(
            "/set/{key}",
            post(|s: Session, Path(key): Path<String>| async move {
                s.insert(&key, true).await?;
                Ok::<_, session_tower::Error>("ok")
            }),
        )
        .route(
            "/all",
            get(|s: Session| async move {
                let all: Option<Value> = s.get_all().await?;
                Ok::<_, session_tower::Error>(Json(all.unwrap_or(Value::Null)))
            }),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn send(base: &str, path: &str, cookie: Option<&str>) -> (u16, Option<String>) {
    let client = reqwest::Client::new();
    let mut req = client.post(format!("{base}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let set = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_owned())
        .next();
    (status, set)
}

async fn record_of(store: &MemoryStore, pair: &str) -> Option<session_core::Record> {
    let id = Id::parse(pair.trim_start_matches("sid=")).unwrap();
    store
        .load(&id.storage_key(), OffsetDateTime::now_utc())
        .await
        .unwrap()
}

/// A logout that completes while a cycle_id-only request is in flight must
/// not be undone by that request writing its stale copy under a new id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_id_only_request_never_undoes_a_concurrent_logout() {
    let store = MemoryStore::new();
    let base = serve(store.clone()).await;
    let (_, alice) = send(&base, "/login/alice", None).await;
    let alice = alice.unwrap();

    let slow = send(&base, "/slow-cycle", Some(&alice));
    let logout = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&base, "/logout", Some(&alice)).await
    };
    let ((_, cycled), (_, removal)) = tokio::join!(slow, logout);
    assert_eq!(
        removal.as_deref(),
        Some("sid="),
        "logout sent a removal cookie"
    );

    // The slow request found the session gone: it sets no cookie at all,
    // or one whose session does not exist.
    let Some(cycled) = cycled else {
        return;
    };
    let revived = record_of(&store, &cycled).await;
    assert!(
        revived.is_none(),
        "logout undone: the new id holds {:?} (principal {:?})",
        revived.as_ref().map(|r| &r.data),
        revived.as_ref().and_then(|r| r.principal.clone()),
    );
}

/// Same through a re-login of the already logged-in user (no data change,
/// so the same code path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_user_relogin_never_undoes_a_concurrent_logout() {
    let store = MemoryStore::new();
    let base = serve(store.clone()).await;
    let (_, alice) = send(&base, "/login/alice", None).await;
    let alice = alice.unwrap();

    let slow = send(&base, "/slow-relogin/alice", Some(&alice));
    let logout = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&base, "/logout", Some(&alice)).await
    };
    let ((_, cycled), _) = tokio::join!(slow, logout);

    let Some(cycled) = cycled else {
        return;
    };
    assert!(
        cycled == "sid=" || record_of(&store, &cycled).await.is_none(),
        "logout undone by a re-login that began before it"
    );
}

/// A write that was acknowledged (200, same cookie) while a cycle_id-only
/// request was in flight must survive into the rotated session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_id_only_request_keeps_a_concurrent_acknowledged_write() {
    let store = MemoryStore::new();
    let base = serve(store.clone()).await;
    let (_, alice) = send(&base, "/login/alice", None).await;
    let alice = alice.unwrap();

    let slow = send(&base, "/slow-cycle", Some(&alice));
    let write = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&base, "/set/cart", Some(&alice)).await
    };
    let ((_, cycled), (status, set)) = tokio::join!(slow, write);
    assert_eq!(status, 200);
    // No new cookie (or the same one again): the write landed on the old id.
    assert!(
        set.is_none() || set.as_deref() == Some(alice.as_str()),
        "write was acknowledged on the old id"
    );

    let cycled = cycled.expect("a cookie");
    let record = record_of(&store, &cycled)
        .await
        .expect("rotated session alive");
    assert!(
        record.data.contains_key("cart"),
        "acknowledged write lost by rotation: {:?}",
        record.data
    );
}

/// When the slow request also changes data, the save sees the logout, the
/// session is not revived, and no cookie goes out (the logout sent its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relogin_as_another_user_respects_a_concurrent_logout() {
    let store = MemoryStore::new();
    let base = serve(store.clone()).await;
    let (_, alice) = send(&base, "/login/alice", None).await;
    let alice = alice.unwrap();

    let slow = send(&base, "/slow-relogin/bob", Some(&alice));
    let logout = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&base, "/logout", Some(&alice)).await
    };
    let ((_, cycled), _) = tokio::join!(slow, logout);
    assert_eq!(cycled, None, "a late response set a cookie");
    assert!(record_of(&store, &alice).await.is_none());
}

/// An in-flight request that started before a login finishes after it: its
/// response must not delete the cookie the login just set (a browser applies
/// Set-Cookie in arrival order, so `sid=; Max-Age=0` logs the user out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_response_never_removes_a_fresh_login_cookie() {
    let store = MemoryStore::new();
    let base = serve(store.clone()).await;
    let client = reqwest::Client::new();
    // An anonymous session (as the demo's GET /me makes).
    let (_, anon) = send(&base, "/set/seen", None).await;
    let anon = anon.unwrap();

    let slow = async {
        let r = client
            .get(format!("{base}/slow-incr"))
            .header("cookie", &anon)
            .send()
            .await
            .unwrap();
        r.headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let login = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&base, "/login/alice", Some(&anon)).await
    };
    let (slow_cookie, (_, login_cookie)) = tokio::join!(slow, login);
    let login_cookie = login_cookie.unwrap();
    assert!(
        record_of(&store, &login_cookie).await.is_some(),
        "login worked"
    );
    // The slow response arrives last; it must not remove the session cookie.
    assert!(
        !slow_cookie.as_deref().unwrap_or("").contains("Max-Age=0"),
        "late response clobbers the login cookie: {slow_cookie:?}"
    );
}
