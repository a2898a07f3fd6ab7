//! The middleware over real loopback HTTP, case by case (see
//! shared/cases/CASES.md for each case id).

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use common::{config, id_of, serve, stored, CountingStore};
use futures::future::join_all;
use serde_json::{json, Value};
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    Clock, CookiePolicy, Data, Expiry, Id, ManualClock, Record, SessionConfig, Store,
};
use session_tower::SessionLayer;
use store_memory::MemoryStore;

fn layer(store: impl Store) -> SessionLayer {
    let cookie = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    SessionLayer::new(store)
        .with_cookie(cookie)
        .with_config(config())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c01_overlapping_requests_keep_every_write() {
    let store = CountingStore::new(MemoryStore::new()).with_save_delay(StdDuration::from_millis(5));
    let app = serve(layer(store.clone())).await;
    let cookie = app.start("untouched", json!("still here")).await;

    let writes = (0..50).map(|i| {
        let (app, cookie) = (&app, cookie.clone());
        async move { app.set(&format!("k_{i}"), json!(i), Some(&cookie)).await }
    });
    let replies = join_all(writes).await;

    for reply in &replies {
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let record = stored(&store, &cookie).await.expect("session alive");
    for i in 0..50 {
        assert_eq!(
            record.data.get(&format!("k_{i}")),
            Some(json!(i)),
            "k_{i} lost"
        );
    }
    assert_eq!(record.data.get("untouched"), Some(json!("still here")));
    assert!(
        store.counts.save.load(Ordering::SeqCst) > 50,
        "saves never conflicted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c02_parallel_first_requests_each_get_one_session() {
    let store = CountingStore::new(MemoryStore::new());
    let app = serve(layer(store.clone())).await;

    let firsts = (0..5).map(|i| {
        let app = &app;
        async move { app.set(&format!("item_{i}"), json!(i), None).await }
    });
    let replies = join_all(firsts).await;

    let mut ids = HashSet::new();
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.set_cookies.len(), 1, "{reply:?}");
        let cookie = reply.new_cookie().expect("cookie");
        ids.insert(cookie.clone());
        let record = stored(&store, &cookie).await.expect("stored");
        let keys = record.data.keys();
        assert_eq!(keys, vec![format!("item_{i}")], "sessions shared a record");
    }
    assert_eq!(ids.len(), 5);

    // With a cookie, the same burst lands in the one session.
    let cookie = app.start("first", json!(true)).await;
    let burst = (0..5).map(|i| {
        let (app, cookie) = (&app, cookie.clone());
        async move { app.set(&format!("item_{i}"), json!(i), Some(&cookie)).await }
    });
    join_all(burst).await;
    let record = stored(&store, &cookie).await.expect("stored");
    assert_eq!(record.data.len(), 6, "{:?}", record.data);

    // A cookieless request that only reads leaves nothing behind.
    let creates = store.counts.create.load(Ordering::SeqCst);
    let reply = app.get("/get/anything", None).await;
    assert!(reply.set_cookies.is_empty());
    assert_eq!(store.counts.create.load(Ordering::SeqCst), creates);
}

#[tokio::test]
async fn c04_cycle_id_rotates_whatever_the_order_of_changes() {
    for steps in [
        "cycle,set:user=alice",
        "set:user=alice,cycle",
        "cycle,remove:role,set:user=alice",
        "cycle,cycle,set:user=alice",
    ] {
        let store = MemoryStore::new();
        let app = serve(layer(store.clone())).await;
        let old = app.start("role", json!("anon")).await;

        let reply = app
            .post(&format!("/script?steps={steps}"), Some(&old))
            .await;

        assert_eq!(reply.status, 200);
        assert_eq!(reply.set_cookies.len(), 1, "{steps}: {reply:?}");
        let new = reply.new_cookie().expect("new cookie");
        assert_ne!(new, old, "{steps}: id not rotated");
        let record = stored(&store, &new).await.expect("new id stored");
        assert_eq!(record.data.get("user"), Some(json!("alice")), "{steps}");
        let role_kept = !steps.contains("remove:role");
        assert_eq!(record.data.contains_key("role"), role_kept, "{steps}");
        assert!(
            stored(&store, &old).await.is_none(),
            "{steps}: old id still loads"
        );
    }
}

#[tokio::test]
async fn c07_clear_delete_or_remove_as_the_first_call_takes_effect() {
    let store = MemoryStore::new();
    let app = serve(layer(store.clone())).await;

    let cookie = app.start("user", json!("alice")).await;
    app.post("/clear", Some(&cookie)).await;
    assert_eq!(
        app.get("/get/user", Some(&cookie)).await.json(),
        Value::Null
    );

    let cookie = app.start("user", json!("alice")).await;
    app.post("/remove/user", Some(&cookie)).await;
    assert_eq!(
        app.get("/get/user", Some(&cookie)).await.json(),
        Value::Null
    );

    let cookie = app.start("user", json!("alice")).await;
    let reply = app.post("/delete", Some(&cookie)).await;
    assert!(reply.removes_cookie(), "{reply:?}");
    assert!(stored(&store, &cookie).await.is_none());

    // Deleting with a dead cookie still removes it from the browser.
    let reply = app.post("/delete", Some(&cookie)).await;
    assert!(reply.removes_cookie(), "{reply:?}");
    assert_eq!(
        app.get("/get/user", Some(&cookie)).await.json(),
        Value::Null
    );
}

#[tokio::test]
async fn c08_delete_then_insert_starts_a_new_session() {
    let store = MemoryStore::new();
    let app = serve(layer(store.clone())).await;
    let old = app.start("a", json!(1)).await;

    let reply = app.post("/script?steps=delete,set:b=2", Some(&old)).await;

    assert_eq!(reply.set_cookies.len(), 1, "{reply:?}");
    let new = reply.new_cookie().expect("a new session");
    assert_ne!(new, old);
    let record = stored(&store, &new).await.expect("new session stored");
    assert_eq!(record.data.len(), 1);
    assert_eq!(record.data.get("b"), Some(json!("2")));
    assert!(
        stored(&store, &old).await.is_none(),
        "old session came back"
    );
}

#[tokio::test]
async fn c09_nested_values_round_trip_and_copies_are_not_saved() {
    let store = CountingStore::new(MemoryStore::new());
    let app = serve(layer(store.clone())).await;
    let cart = json!({"items": [], "meta": {"coupon": null, "kind": {"Gift": [1, 2]}}});
    let cookie = app.start("cart", cart).await;

    let mut cart = app.get("/get/cart", Some(&cookie)).await.json();
    cart["items"]
        .as_array_mut()
        .expect("items")
        .push(json!({"sku": "A1", "n": 2}));
    cart["meta"]["coupon"] = json!("SAVE10");
    app.set("cart", cart.clone(), Some(&cookie)).await;

    assert_eq!(app.get("/get/cart", Some(&cookie)).await.json(), cart);

    // Reading and changing a copy without inserting it writes nothing, and
    // inserting an equal value writes nothing either.
    let writes = store.counts.writes();
    let _copy = app.get("/get/cart", Some(&cookie)).await.json();
    app.set("cart", cart.clone(), Some(&cookie)).await;
    assert_eq!(store.counts.writes(), writes);
}

/// An app over a memory store on a manual clock, with sessions that die
/// after ten idle seconds.
async fn ten_second_idle_app() -> (ManualClock, MemoryStore, common::TestApp) {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let expiry = Expiry::new(Duration::seconds(10), Duration::days(1));
    let config = SessionConfig::default()
        .with_expiry(expiry)
        .with_clock(clock.clone());
    let cookie_policy = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    let layer = SessionLayer::new(store.clone())
        .with_cookie(cookie_policy)
        .with_config(config);
    (clock, store, serve(layer).await)
}

#[tokio::test]
async fn c11_read_only_activity_extends_idle_expiry() {
    let (clock, store, app) = ten_second_idle_app().await;
    let cookie = app.start("user", json!("alice")).await;

    let mut last_expiry = stored(&store, &cookie).await.expect("stored").expires_at;
    let mut refreshed = 0;
    for _ in 0..10 {
        clock.advance(Duration::seconds(3));

        let reply = app.get("/get/user", Some(&cookie)).await;

        assert_eq!(reply.json(), json!("alice"), "logged out while active");
        let record = store
            .load(&id_of(&cookie).storage_key(), clock.now())
            .await
            .expect("load")
            .expect("alive");
        if record.expires_at > last_expiry {
            refreshed += 1;
            let max_age = reply
                .set_cookies
                .first()
                .expect("cookie refreshed")
                .to_lowercase();
            assert!(max_age.contains("max-age=10"), "{max_age}");
        }
        last_expiry = record.expires_at;
    }
    assert!(refreshed >= 5, "expiry refreshed only {refreshed} times");

    clock.advance(Duration::seconds(11));
    assert_eq!(
        app.get("/get/user", Some(&cookie)).await.json(),
        Value::Null
    );
}

/// Writes move the expiry in the same steps as reads do: a save that
/// would move it by less than the touch threshold keeps it, and sends no
/// cookie; once it moves, the cookie comes with the new Max-Age. The
/// browser's cookie therefore never dies before the stored session.
#[tokio::test]
async fn c11_writes_move_the_expiry_and_the_cookie_together() {
    let (clock, store, app) = ten_second_idle_app().await;
    let cookie = app.start("n", json!(0)).await;
    let mut cookie_dies = clock.now() + Duration::seconds(10);

    let (mut sent, mut kept) = (0, 0);
    for i in 1..=20 {
        clock.advance(Duration::seconds(1));
        let before = stored(&store, &cookie).await.expect("alive").expires_at;

        let reply = app.set("n", json!(i), Some(&cookie)).await;

        assert_eq!(reply.status, 200, "{reply:?}");
        let after = stored(&store, &cookie).await.expect("alive");
        assert_eq!(after.data.get("n"), Some(json!(i)), "write {i} lost");
        if after.expires_at == before {
            assert!(reply.set_cookies.is_empty(), "{reply:?}");
            kept += 1;
        } else {
            let header = reply.set_cookies.first().expect("cookie").to_lowercase();
            assert!(header.contains("max-age=10"), "{header}");
            cookie_dies = clock.now() + Duration::seconds(10);
            sent += 1;
        }
        assert!(cookie_dies >= after.expires_at, "the cookie dies first");
    }
    assert!(sent >= 5 && kept >= 5, "sent {sent}, kept {kept}");
}

#[tokio::test]
async fn c13_removal_cookie_matches_and_empties_an_rfc6265_jar() {
    use reqwest::cookie::{CookieStore, Jar};

    let policy = CookiePolicy::builder()
        .domain(".example.test")
        .path("/app")
        .build()
        .expect("policy");
    let store = MemoryStore::new();
    let layer = SessionLayer::new(store)
        .with_cookie(policy)
        .with_config(config());
    let app = serve(layer).await;

    let login = app.set("user", json!("alice"), None).await;
    let cookie = login.new_cookie().expect("cookie");
    let logout = app.post("/delete", Some(&cookie)).await;

    let removal = logout.set_cookies.first().expect("removal").to_lowercase();
    for wanted in [
        "domain=example.test",
        "path=/app",
        "secure",
        "httponly",
        "samesite=lax",
    ] {
        assert!(removal.contains(wanted), "{removal} lacks {wanted}");
    }
    let jar = Jar::default();
    let login_url = "https://auth.example.test/app/login".parse().expect("url");
    let logout_url = "https://auth.example.test/app/account/logout"
        .parse()
        .expect("url");
    jar.add_cookie_str(&login.set_cookies[0], &login_url);
    assert!(
        jar.cookies(&logout_url).is_some(),
        "jar did not take the cookie"
    );
    jar.add_cookie_str(&logout.set_cookies[0], &logout_url);
    assert!(
        jar.cookies(&logout_url).is_none(),
        "jar still holds the cookie"
    );
}

#[tokio::test]
async fn c16_the_live_cookie_wins_over_a_dead_one_in_either_order() {
    let store = CountingStore::new(MemoryStore::new());
    let app = serve(layer(store.clone())).await;
    let live = app.start("user", json!("alice")).await;
    let dead = format!("sid={}", Id::random().encode());

    for header in [format!("{dead}; {live}"), format!("{live}; {dead}")] {
        let reply = app.get("/get/user", Some(&header)).await;

        assert_eq!(reply.status, 200);
        assert_eq!(reply.json(), json!("alice"), "{header}");
        assert!(reply.set_cookies.len() <= 1);
        assert!(reply.new_cookie().is_none(), "issued a new session");
    }
}

#[tokio::test]
async fn c30_hostile_cookie_values_mean_no_session_and_never_reach_the_store() {
    let store = CountingStore::new(MemoryStore::new());
    let app = serve(layer(store.clone())).await;
    let long = "A".repeat(10 * 1024);
    let wrong_alphabet = "*".repeat(22);
    let values = [
        "",
        long.as_str(),
        "%C3%A9l%C3%A8ve",
        "../../etc/passwd",
        "%00%01",
        "not base64 at all!",
        wrong_alphabet.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAB",
    ];

    for value in values {
        let reply = app.get("/get/user", Some(&format!("sid={value}"))).await;

        assert_eq!(reply.status, 200, "{value:?}");
        assert_eq!(reply.json(), Value::Null);
    }
    // Raw bytes a browser would never send, straight over TCP.
    for raw in [&b"sid=\xff\xfe\x01\x7f; other=1"[..], "sid=élan".as_bytes()] {
        let reply = raw_get(&app, raw).await;
        let fine = reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 400");
        assert!(fine, "{reply}");
    }
    assert_eq!(store.counts.load.load(Ordering::SeqCst), 0);

    // Well-formed but unknown: looked up by its hash, then no session.
    let unknown = format!("sid={}", Id::random().encode());
    let reply = app.get("/get/user", Some(&unknown)).await;
    assert_eq!(reply.json(), Value::Null);
    assert!(reply.set_cookies.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_keys_all_land_and_a_concurrent_logout_is_never_undone() {
    let store = CountingStore::new(MemoryStore::new()).with_save_delay(StdDuration::from_millis(3));
    let app = serve(layer(store.clone())).await;
    let cookie = app.start("user", json!("alice")).await;

    let writers = (0..50).map(|i| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            if i == 25 {
                app.post("/delete", Some(&cookie)).await
            } else {
                app.set(&format!("k_{i}"), json!(i), Some(&cookie)).await
            }
        }
    });
    let replies = join_all(writers).await;

    for reply in &replies {
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert!(
        stored(&store, &cookie).await.is_none(),
        "the logout was undone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_counting_to_3200_lose_no_increment() {
    let store = CountingStore::new(MemoryStore::new()).with_save_delay(StdDuration::from_millis(1));
    let app = serve(layer(store.clone())).await;
    let cookie = app.start("counter", json!(0)).await;

    let tasks = (0..64).map(|_| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            for _ in 0..50 {
                let reply = app.post("/incr/counter", Some(&cookie)).await;
                assert_eq!(reply.status, 200, "{reply:?}");
            }
        }
    });
    join_all(tasks).await;

    let record = stored(&store, &cookie).await.expect("alive");
    assert_eq!(record.data.get("counter"), Some(json!(3200)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c03_a_slow_read_only_request_never_undoes_a_logout_or_removal() {
    let store = CountingStore::new(MemoryStore::new());
    let config = config().with_touch_after(Duration::ZERO);
    let cookie_policy = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    let layer = SessionLayer::new(store.clone())
        .with_cookie(cookie_policy)
        .with_config(config);
    let app = serve(layer).await;

    let cookie = app.start("user", json!("alice")).await;
    let slow = app.get("/slow-get/user", Some(&cookie));
    let remove = async {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        app.post("/remove/user", Some(&cookie)).await
    };
    let (slow, _) = tokio::join!(slow, remove);
    assert_eq!(slow.json(), json!("alice"));
    assert!(
        store.counts.touch.load(Ordering::SeqCst) >= 1,
        "no touch happened"
    );
    let record = stored(&store, &cookie).await.expect("alive");
    assert!(!record.data.contains_key("user"), "the removal was undone");

    let cookie = app.start("user", json!("bob")).await;
    let slow = app.get("/slow-get/user", Some(&cookie));
    let logout = async {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        app.post("/delete", Some(&cookie)).await
    };
    let (slow, _) = tokio::join!(slow, logout);
    // The logout sent the removal; the late response sends nothing, so it
    // cannot wipe a cookie a newer login set.
    assert!(slow.set_cookies.is_empty(), "{slow:?}");
    assert!(
        stored(&store, &cookie).await.is_none(),
        "the logout was undone"
    );
}

#[tokio::test]
async fn c28_a_colliding_fresh_id_never_overwrites_a_live_session() {
    let store = MemoryStore::new();
    let (taken, free, free_too) = (Id::random(), Id::random(), Id::random());
    let now = OffsetDateTime::now_utc();
    let alice = Record {
        key: taken.storage_key(),
        data: Data::try_from(json!({"user": "alice"})).expect("object"),
        version: 1,
        created_at: now,
        expires_at: now + Duration::hours(1),
        deadline: now + Duration::hours(1),
        principal: None,
        expiry: None,
    };
    store.create(&alice, now).await.expect("create");
    let queue = Arc::new(Mutex::new(vec![free_too, taken, free, taken]));
    let next = Arc::clone(&queue);
    let config = config().with_id_source(move || {
        let mut queue = next.lock().expect("queue");
        queue.pop().unwrap_or_else(Id::random)
    });
    let cookie_policy = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    let layer = SessionLayer::new(store.clone())
        .with_cookie(cookie_policy)
        .with_config(config);
    let app = serve(layer).await;

    // A new session: the first id collides, the second is used.
    let reply = app.set("user", json!("mallory"), None).await;
    assert_eq!(id_of(&reply.new_cookie().expect("cookie")), free);

    // cycle_id: again the collision is skipped.
    let cookie = reply.new_cookie().expect("cookie");
    let reply = app.post("/script?steps=cycle", Some(&cookie)).await;
    assert_eq!(id_of(&reply.new_cookie().expect("cookie")), free_too);

    let kept = store.load(&taken.storage_key(), now).await.expect("load");
    assert_eq!(kept, Some(alice));
}

#[tokio::test]
async fn an_unused_session_costs_no_store_call_and_reads_write_nothing() {
    let store = CountingStore::new(MemoryStore::new());
    let app = serve(layer(store.clone())).await;
    let cookie = app.start("user", json!("alice")).await;
    let before = store.counts.total();

    let reply = app.get("/noop", Some(&cookie)).await;
    assert!(reply.set_cookies.is_empty());
    assert_eq!(store.counts.total(), before);

    let writes = store.counts.writes();
    for _ in 0..100 {
        app.get("/get/user", Some(&cookie)).await;
    }
    assert_eq!(store.counts.writes(), writes);
}

#[tokio::test]
async fn a_failing_store_fails_only_the_handlers_that_use_it() {
    let app = serve(layer(BrokenStore)).await;
    let cookie = format!("sid={}", Id::random().encode());

    assert_eq!(app.get("/noop", Some(&cookie)).await.status, 200);
    assert_eq!(app.get("/get/user", Some(&cookie)).await.status, 500);
    assert_eq!(app.set("user", json!("x"), None).await.status, 500);
}

#[tokio::test]
async fn a_record_that_no_longer_decodes_is_no_session() {
    let app = serve(layer(UndecodableStore(MemoryStore::new()))).await;
    let cookie = format!("sid={}", Id::random().encode());

    let read = app.get("/get/user", Some(&cookie)).await;
    let write = app.set("user", json!("alice"), Some(&cookie)).await;

    assert_eq!(read.status, 200);
    assert_eq!(read.json(), Value::Null);
    assert_eq!(write.status, 200);
    assert!(write.new_cookie().is_some(), "no fresh session was issued");
}

#[tokio::test]
async fn set_get_all_and_delete_are_the_three_calls() {
    let store = MemoryStore::new();
    let app = serve(layer(store.clone())).await;

    let cookie = app.start("a", json!(1)).await;
    assert_eq!(app.get("/all", Some(&cookie)).await.json(), json!({"a": 1}));
    assert_eq!(app.get("/all", None).await.json(), Value::Null);
    app.post("/delete", Some(&cookie)).await;
    assert_eq!(app.get("/all", Some(&cookie)).await.json(), Value::Null);
}

async fn raw_get(app: &common::TestApp, cookie: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    let mut request =
        b"GET /get/user HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: ".to_vec();
    request.extend_from_slice(cookie);
    request.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&request).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

/// A store whose backend is down.
#[derive(Debug)]
struct BrokenStore;

fn down() -> session_core::StoreError {
    session_core::StoreError::backend("test", std::io::Error::other("connection refused"))
}

#[session_core::async_trait]
impl Store for BrokenStore {
    async fn create(
        &self,
        _: &Record,
        _: OffsetDateTime,
    ) -> Result<session_core::CreateOutcome, session_core::StoreError> {
        Err(down())
    }
    async fn load(
        &self,
        _: &session_core::StorageKey,
        _: OffsetDateTime,
    ) -> Result<Option<Record>, session_core::StoreError> {
        Err(down())
    }
    async fn save(
        &self,
        _: &Record,
        _: u64,
        _: OffsetDateTime,
    ) -> Result<session_core::SaveOutcome, session_core::StoreError> {
        Err(down())
    }
    async fn touch(
        &self,
        _: &session_core::StorageKey,
        _: OffsetDateTime,
        _: OffsetDateTime,
    ) -> Result<session_core::TouchOutcome, session_core::StoreError> {
        Err(down())
    }
    async fn delete(&self, _: &session_core::StorageKey) -> Result<(), session_core::StoreError> {
        Err(down())
    }
    async fn delete_expired(&self, _: OffsetDateTime) -> Result<u64, session_core::StoreError> {
        Err(down())
    }
}

/// A store whose every stored record fails to decode.
#[derive(Debug)]
struct UndecodableStore(MemoryStore);

#[session_core::async_trait]
impl Store for UndecodableStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<session_core::CreateOutcome, session_core::StoreError> {
        self.0.create(record, now).await
    }
    async fn load(
        &self,
        key: &session_core::StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, session_core::StoreError> {
        match self.0.load(key, now).await? {
            Some(record) => Ok(Some(record)),
            None => Err(session_core::StoreError::decode(std::io::Error::other(
                "format v0",
            ))),
        }
    }
    async fn save(
        &self,
        record: &Record,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<session_core::SaveOutcome, session_core::StoreError> {
        self.0.save(record, expected, now).await
    }
    async fn touch(
        &self,
        key: &session_core::StorageKey,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<session_core::TouchOutcome, session_core::StoreError> {
        self.0.touch(key, at, now).await
    }
    async fn delete(&self, key: &session_core::StorageKey) -> Result<(), session_core::StoreError> {
        self.0.delete(key).await
    }
    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, session_core::StoreError> {
        self.0.delete_expired(now).await
    }
}
