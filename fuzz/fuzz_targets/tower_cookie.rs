//! Arbitrary `Cookie` headers through the real middleware over a
//! `MemoryStore` holding one live session: every request is answered 200
//! (never a 500 or a panic), sees that session or none, and a request that
//! writes gets exactly one cookie that reads back.

#![no_main]

use std::convert::Infallible;
use std::sync::OnceLock;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{CookiePolicy, Id, Record, Session, Store};
use session_fuzz::pair;
use session_tower::SessionLayer;
use store_memory::MemoryStore;
use tower::{Layer as _, ServiceExt as _};

/// The session every run may find: its id is fixed so seeds can name it.
const ALICE: [u8; 16] = *b"alice's session!";

struct World {
    runtime: tokio::runtime::Runtime,
    store: MemoryStore,
    layer: SessionLayer,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = session_fuzz::runtime();
        let store = MemoryStore::new();

        let now = OffsetDateTime::now_utc();
        let data = [("user".to_owned(), "alice".into())].into_iter().collect();
        let alice = Record {
            key: Id::from_bytes(ALICE).storage_key(),
            data,
            version: 1,
            created_at: now,
            expires_at: now + Duration::days(365),
            deadline: now + Duration::days(365),
            principal: None,
            expiry: None,
        };
        runtime
            .block_on(store.create(&alice, now))
            .expect("seed session");

        let cookie = CookiePolicy::builder().build().expect("policy");
        let layer = SessionLayer::new(store.clone()).with_cookie(cookie);
        World {
            runtime,
            store,
            layer,
        }
    })
}

/// Reads `user` and, when asked, counts a hit; answers with what it read.
async fn handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let session = request
        .extensions()
        .get::<Session>()
        .cloned()
        .expect("the layer adds a session");
    let write = request.body() == "write";

    let user: Option<String> = match session.get("user").await {
        Ok(user) => user,
        Err(error) => panic!("reading the session failed: {error}"),
    };
    if write {
        session
            .update("hits", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .expect("counting a hit");
    }
    Ok(Response::new(user.unwrap_or_default()))
}

fuzz_target!(|input: &[u8]| {
    let world = world();
    // Input layout: one flag byte (odd: the handler writes), then Cookie
    // headers separated by newlines.
    let Some((&flags, headers)) = input.split_first() else {
        return;
    };
    let write = flags % 2 == 1;

    let body = if write { "write" } else { "" };
    let mut request = Request::new(body.to_owned());
    for header in headers.split(|&b| b == b'\n') {
        // hyper refuses what HeaderValue refuses; such requests never
        // reach the middleware.
        if let Ok(value) = HeaderValue::from_bytes(header) {
            request.headers_mut().append(COOKIE, value);
        }
    }

    let service = world.layer.layer(tower::service_fn(handler));
    let response = world
        .runtime
        .block_on(service.oneshot(request))
        .expect("infallible");

    assert_eq!(response.status(), StatusCode::OK);
    let user = response.body().as_str();
    assert!(user.is_empty() || user == "alice", "read {user:?}");
    let cookies: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(cookies.len() <= 1, "{cookies:?}");
    if !write {
        return;
    }

    // A write to the existing session sends a cookie only when its expiry
    // moves; a write that starts a session always sends one.
    if cookies.is_empty() {
        assert_eq!(user, "alice", "a new session set no cookie");
        return;
    }
    let policy = world.layer.cookie();
    let ids = policy.session_ids([pair(cookies[0])]);
    assert_eq!(ids.len(), 1, "the cookie does not read back");
    // Drop sessions the run created, or the store grows without bound.
    if ids[0] != Id::from_bytes(ALICE) {
        let key = ids[0].storage_key();
        world
            .runtime
            .block_on(world.store.delete(&key))
            .expect("delete");
    }
    assert_eq!(user.is_empty(), ids[0] != Id::from_bytes(ALICE));
});
