//! The demo app over loopback HTTP, with a cookie jar that follows RFC 6265.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use serde_json::{json, Value};
use sessionctl::demo::{app, DemoOptions};
use sessionctl::stores::AnyStore;

async fn serve(store: &AnyStore) -> String {
    let router = app(store.shared(), &DemoOptions::default()).expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://{address}")
}

#[tokio::test]
async fn login_me_logout_with_a_browser_like_jar() {
    let store = AnyStore::open("memory").await.expect("store");
    let base = serve(&store).await;
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(Arc::clone(&jar))
        .build()
        .expect("client");
    let me = || async {
        let response = client.get(format!("{base}/me")).send().await.expect("me");
        response.json::<Value>().await.expect("json")
    };

    let page = client.get(&base).send().await.expect("index");
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("<form method=\"post\" action=\"/login\">"));

    let login = client
        .post(format!("{base}/login"))
        .form(&[("user", "alice")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    assert_eq!(me().await, json!({"user": "alice", "visits": 1}));
    assert_eq!(me().await, json!({"user": "alice", "visits": 2}));
    assert_eq!(me().await, json!({"user": "alice", "visits": 3}));

    let logout = client
        .post(format!("{base}/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 200);
    let url = base.parse().expect("url");
    assert!(
        jar.cookies(&url).is_none(),
        "the jar still holds a session cookie"
    );
    assert_eq!(me().await, json!({"user": null, "visits": 1}));
}

#[tokio::test]
async fn login_from_a_browser_form_redirects_and_rejects_bad_names() {
    let store = AnyStore::open("memory").await.expect("store");
    let base = serve(&store).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let html = client
        .post(format!("{base}/login"))
        .header("accept", "text/html")
        .form(&[("user", "bob")])
        .send()
        .await
        .expect("login");
    assert_eq!(html.status(), 303);
    assert_eq!(html.headers()["location"], "/");

    let long = "x".repeat(65);
    for bad in ["", "   ", long.as_str()] {
        let reply = client
            .post(format!("{base}/login"))
            .form(&[("user", bad)])
            .send()
            .await
            .expect("login");
        assert_eq!(reply.status(), 422, "{bad:?}");
        assert!(reply.headers().get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn the_page_escapes_the_user_name() {
    let store = AnyStore::open("memory").await.expect("store");
    let base = serve(&store).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");

    client
        .post(format!("{base}/login"))
        .form(&[("user", "<script>x</script>")])
        .send()
        .await
        .expect("login");
    let page = client
        .get(&base)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");

    assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(!page.contains("<script>x"));
}

#[tokio::test]
async fn unknown_store_urls_are_refused_clearly() {
    let error = AnyStore::open("mongodb://user:secret@host/db")
        .await
        .expect_err("refused");

    let message = error.to_string();
    assert!(message.contains("unknown store URL"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}
