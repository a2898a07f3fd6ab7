//! Review: what a logout deletes besides the session it ends.

mod common;

use axum::Router;
use common::TestApp;
use serde_json::json;
use session_core::CookiePolicy;
use session_tower::SessionLayer;
use store_memory::MemoryStore;

/// One app, one store, two cookie paths: the site's session on `/` and
/// an admin area's own session on `/admin`, both named `sid` (the
/// default). A browser holding both sends the longer path's first.
async fn site_and_admin(store: &MemoryStore) -> (TestApp, TestApp) {
    let policy = |path: &str| {
        CookiePolicy::builder()
            .secure(false)
            .path(path)
            .build()
            .expect("policy")
    };
    let site = SessionLayer::new(store.clone()).with_cookie(policy("/"));
    let admin = SessionLayer::new(store.clone()).with_cookie(policy("/admin"));
    let app = Router::new()
        .nest("/admin", common::router(admin.clone()))
        .merge(common::router(site.clone()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let client = || TestApp {
        address,
        client: reqwest::Client::new(),
        policy: site.cookie().clone(),
    };
    (client(), client())
}

#[tokio::test]
async fn a_logout_leaves_the_live_session_of_another_cookie_it_never_read() {
    let store = MemoryStore::new();
    let (site, admin) = site_and_admin(&store).await;
    let shop = site.start("user", json!("alice")).await;
    let staff = admin
        .send("POST", "/admin/set/user", None, Some(json!("root")))
        .await
        .new_cookie()
        .expect("an admin session");

    // Logging out of the admin area: the browser sends both cookies, the
    // admin one (longer path) first. Only the admin session ends, and
    // only the admin cookie is removed.
    let logout = admin
        .post("/admin/delete", Some(&format!("{staff}; {shop}")))
        .await;
    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.removes_cookie(), "{logout:?}");
    assert!(common::stored(&store, &staff).await.is_none());

    // The site's cookie is still in the browser: its session must be too.
    assert!(
        common::stored(&store, &shop).await.is_some(),
        "the logout deleted a live session it never looked at"
    );
    assert_eq!(
        site.get("/get/user", Some(&shop)).await.json(),
        json!("alice")
    );
}
