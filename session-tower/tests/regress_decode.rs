//! Stored sessions written in a format this version no longer reads, and
//! values whose shape changed between releases.
//!
//! `cases.rs` already shows that an undecodable record reads as no session
//! and that a write then starts a fresh one. These tests add what an
//! operator relies on after a format change: the skip is logged at `warn`
//! (never `error`, never with the id), it stays a 200 however often the old
//! cookie comes back, a live cookie beside the old one still wins, and a
//! value of a changed shape fails only the key that changed.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once, PoisonError};

use axum::routing::{get, post};
use axum::{Json, Router};
use common::{id_of, TestApp};
use serde_json::{json, Value};
use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, Commit, CookiePolicy, CreateOutcome, Data, Error, Id, Record, SaveOutcome,
    StorageKey, Store, StoreError, TouchOutcome,
};
use session_tower::{Session, SessionLayer};
use store_memory::MemoryStore;

/// Data as an older release stored it: an array, where this one wants an
/// object, so `Record::parse_data` refuses it.
const OLD_FORMAT: &str = r#"[["user","alice"],["visits",3]]"#;

/// A `MemoryStore` that also holds records in the old format.
///
/// Their stored text goes through the real decoder on every load, as a
/// database-backed store's would, and fails there.
#[derive(Debug, Clone, Default)]
struct MigratedStore {
    live: MemoryStore,
    old: Arc<Mutex<HashMap<StorageKey, String>>>,
    /// Deleting an old-format record fails, as a store that is down would.
    old_deletes_fail: Arc<std::sync::atomic::AtomicBool>,
    /// How many deletes of old-format records failed.
    old_deletes_failed: Arc<std::sync::atomic::AtomicUsize>,
}

impl MigratedStore {
    /// Files a session in the old format and returns its cookie pair.
    fn add_old(&self) -> String {
        let id = Id::random();
        let mut old = self.old.lock().unwrap_or_else(PoisonError::into_inner);
        old.insert(id.storage_key(), OLD_FORMAT.to_owned());
        format!("sid={}", id.encode())
    }

    fn old_text(&self, key: &StorageKey) -> Option<String> {
        let old = self.old.lock().unwrap_or_else(PoisonError::into_inner);
        old.get(key).cloned()
    }
}

#[async_trait]
impl Store for MigratedStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        if self.old_text(&record.key).is_some() {
            return Ok(CreateOutcome::Collision);
        }
        self.live.create(record, now).await
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let Some(text) = self.old_text(key) else {
            return self.live.load(key, now).await;
        };
        // The old text never decodes; a record it did decode to would be
        // a bug in this fixture.
        let error = Data::parse(&text).expect_err("old format must not decode");
        Err(StoreError::decode(error))
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        self.live.save(record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        self.live.touch(key, expires_at, now).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let fail = self
            .old_deletes_fail
            .load(std::sync::atomic::Ordering::SeqCst);
        if fail && self.old_text(key).is_some() {
            self.old_deletes_failed
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let down = std::io::Error::other("the store is down");
            return Err(StoreError::backend("delete", down));
        }
        self.old
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        self.live.delete(key).await
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.live.delete_expired(now).await
    }
}

/// What the app's log printed, for tests that read it.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    /// Sends this thread's `warn` and `error` events here until the guard
    /// drops. The tests run on one thread, server tasks included.
    ///
    /// Through one global subscriber that writes to the capturing thread's
    /// log: with a subscriber per thread (`set_default`), tracing's
    /// per-callsite cache is shared with the other tests' threads, and
    /// this test once saw none of its warnings on a busy machine.
    fn capture(&self) -> Capture {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::WARN)
                .with_ansi(false)
                .with_writer(|| ThreadSink)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        });
        SINK.with(|sink| *sink.borrow_mut() = Some(self.clone()));
        Capture
    }

    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

thread_local! {
    /// Where this thread's events go while a test captures them.
    static SINK: RefCell<Option<Log>> = const { RefCell::new(None) };
}

/// Stops this thread's capture when dropped.
struct Capture;

impl Drop for Capture {
    fn drop(&mut self) {
        SINK.with(|sink| sink.borrow_mut().take());
    }
}

/// The global subscriber's writer: the capturing thread's log, if any.
struct ThreadSink;

impl std::io::Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| match sink.borrow_mut().as_mut() {
            Some(log) => log.write(buf),
            None => Ok(buf.len()),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads `cart` as the list this release expects, and reports how that
/// went instead of failing the request.
async fn cart_report(session: Session) -> Json<Value> {
    let cart = match session.get::<Vec<u32>>("cart").await {
        Ok(cart) => json!({ "cart": cart }),
        Err(Error::Deserialize { key, .. }) => json!({ "cart_error": key }),
        Err(other) => json!({ "other_error": other.to_string() }),
    };
    let user: Option<String> = session.get("user").await.ok().flatten();
    let raw = session.get_value("cart").await.ok().flatten();

    Json(json!({ "typed": cart, "user": user, "raw": raw }))
}

/// Reads `cart` with `?`: the request fails when the shape changed.
async fn strict_cart(session: Session) -> Result<Json<Vec<u32>>, session_tower::Error> {
    let cart = session.get::<Vec<u32>>("cart").await?;
    Ok(Json(cart.unwrap_or_default()))
}

/// Counts an item in the cart with `update`, which must read it typed.
async fn add_item(session: Session) -> Result<Json<usize>, session_tower::Error> {
    let cart = session
        .update("cart", |cart: Option<Vec<u32>>| {
            let mut cart = cart.unwrap_or_default();
            cart.push(7);
            cart
        })
        .await?;
    Ok(Json(cart.len()))
}

/// Replaces `cart` with a value of the new shape.
async fn reset_cart(session: Session) -> Result<&'static str, session_tower::Error> {
    session.insert("cart", vec![1u32, 2]).await?;
    Ok("ok")
}

async fn serve(store: MigratedStore) -> TestApp {
    let policy = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    let layer = SessionLayer::new(store).with_cookie(policy.clone());
    let app = common::router(layer.clone()).merge(
        Router::new()
            .route("/cart-report", get(cart_report))
            .route("/strict-cart", get(strict_cart))
            .route("/add-item", post(add_item))
            .route("/reset-cart", post(reset_cart))
            .layer(layer),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    TestApp {
        address,
        client: reqwest::Client::new(),
        policy,
    }
}

#[tokio::test]
async fn an_old_format_record_is_no_session_with_a_warn_every_time() {
    let log = Log::default();
    let _guard = log.capture();
    let store = MigratedStore::default();
    let app = serve(store.clone()).await;
    let old = store.add_old();

    for _ in 0..3 {
        let read = app.get("/get/user", Some(&old)).await;

        assert_eq!(read.status, 200, "{read:?}");
        assert_eq!(read.json(), Value::Null);
        assert!(read.set_cookies.is_empty(), "{read:?}");
    }

    let text = log.text();
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("does not decode"))
        .count();
    assert_eq!(warnings, 3, "{text}");
    assert!(!text.contains("ERROR"), "{text}");
    let value = old.split_once('=').map(|(_, v)| v).unwrap_or_default();
    assert!(
        !text.contains(value),
        "the log holds the cookie value: {text}"
    );
}

#[tokio::test]
async fn a_write_over_an_old_format_record_starts_a_fresh_session() {
    let store = MigratedStore::default();
    let app = serve(store.clone()).await;
    let old = store.add_old();

    let write = app.set("user", json!("bob"), Some(&old)).await;

    assert_eq!(write.status, 200, "{write:?}");
    let fresh = write.new_cookie().expect("a fresh session cookie");
    assert_ne!(id_of(&fresh), id_of(&old));
    assert_eq!(
        app.get("/get/user", Some(&fresh)).await.json(),
        json!("bob")
    );
    // The old record is untouched: nothing wrote over what it could not read.
    assert!(store.old_text(&id_of(&old).storage_key()).is_some());
}

/// A store and app with a live session of alice and an old-format one,
/// and their cookie pairs.
async fn live_and_old() -> (MigratedStore, TestApp, String, String) {
    let store = MigratedStore::default();
    let app = serve(store.clone()).await;
    let live = app.start("user", json!("alice")).await;
    let old = store.add_old();
    (store, app, live, old)
}

#[tokio::test]
async fn a_live_cookie_beside_an_old_format_one_still_wins() {
    let (_store, app, live, old) = live_and_old().await;

    for header in [format!("{old}; {live}"), format!("{live}; {old}")] {
        let read = app.get("/get/user", Some(&header)).await;

        assert_eq!(read.status, 200, "{header}: {read:?}");
        assert_eq!(read.json(), json!("alice"), "{header}");
        assert!(read.new_cookie().is_none(), "{header}: a new session");
    }
}

#[tokio::test]
async fn a_value_whose_shape_changed_fails_for_that_key_only() {
    let store = MigratedStore::default();
    let app = serve(store.clone()).await;
    // An older release kept the cart as one comma-separated string.
    let cookie = app.start("cart", json!("1,2,3")).await;
    app.set("user", json!("alice"), Some(&cookie)).await;

    let report = app.get("/cart-report", Some(&cookie)).await;
    let strict = app.get("/strict-cart", Some(&cookie)).await;
    let update = app.post("/add-item", Some(&cookie)).await;

    assert_eq!(report.status, 200, "{report:?}");
    assert_eq!(
        report.json(),
        json!({
            "typed": { "cart_error": "cart" },
            "user": "alice",
            "raw": "1,2,3",
        })
    );
    assert_eq!(strict.status, 500, "{strict:?}");
    assert_eq!(update.status, 500, "{update:?}");
    // Failing to read one key lost nothing: the session and both values
    // are as they were, and other routes read them.
    assert!(strict.set_cookies.is_empty() && update.set_cookies.is_empty());
    assert_eq!(
        app.get("/get/user", Some(&cookie)).await.json(),
        json!("alice")
    );
    assert_eq!(
        app.get("/get/cart", Some(&cookie)).await.json(),
        json!("1,2,3")
    );

    // Writing the new shape repairs the key for good.
    let reset = app.post("/reset-cart", Some(&cookie)).await;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert_eq!(app.post("/add-item", Some(&cookie)).await.json(), json!(3));
    assert_eq!(
        app.get("/strict-cart", Some(&cookie)).await.json(),
        json!([1, 2, 7])
    );
}

/// A live record at `version` with `{"user": "alice"}`, under a new id.
async fn stored_at(store: &MemoryStore, version: u64, now: OffsetDateTime) -> (Id, Record) {
    let id = Id::random();
    let record = Record {
        key: id.storage_key(),
        data: Data::try_from(json!({ "user": "alice" })).expect("an object"),
        version,
        created_at: now,
        expires_at: now + session_core::time::Duration::hours(1),
        deadline: now + session_core::time::Duration::days(1),
        principal: None,
        expiry: None,
    };
    let created = store.create(&record, now).await.expect("create");
    assert_eq!(created, CreateOutcome::Created);
    (id, record)
}

fn session_of(store: &MemoryStore, id: Id) -> session_core::Session {
    let config = Arc::new(session_core::SessionConfig::default());
    session_core::Session::new(Arc::new(store.clone()), config, vec![id])
}

#[tokio::test]
async fn a_record_at_the_last_version_is_no_session_and_a_write_starts_afresh() {
    let store = MemoryStore::default();
    let now = OffsetDateTime::now_utc();

    // Written by hand: u64::MAX once made the next save's version
    // overflow (a panic in debug builds).
    for version in [Record::LAST_VERSION, u64::MAX] {
        let (id, record) = stored_at(&store, version, now).await;
        let session = session_of(&store, id);

        let user: Option<String> = session.get("user").await.expect("no error");
        assert_eq!(user, None, "version {version}");
        session.insert("user", "bob").await.expect("insert");
        let commit = session.commit().await.expect("commit");

        let Commit::Set { id: fresh, .. } = commit else {
            panic!("version {version}: {commit:?}");
        };
        assert_ne!(fresh, id);
        let left = store.load(&record.key, now).await.expect("load");
        assert_eq!(left, Some(record), "the stored record is left as it was");
    }
}

#[tokio::test]
async fn a_conflict_with_a_save_at_the_last_version_ends_the_session() {
    let store = MemoryStore::default();
    let now = OffsetDateTime::now_utc();
    let (id, record) = stored_at(&store, 5, now).await;
    let session = session_of(&store, id);
    session.insert("user", "bob").await.expect("insert");

    // Someone else saves in between, at the last version.
    let theirs = Record {
        version: Record::LAST_VERSION,
        ..record.clone()
    };
    let saved = store.save(&theirs, 5, now).await.expect("save");
    assert_eq!(saved, SaveOutcome::Saved);

    let commit = session.commit().await.expect("no panic, no error");

    // As when a logout wins over a save: this request's write is dropped,
    // and the next request finds no session to continue.
    assert_eq!(commit, Commit::Unchanged);
    let left = store.load(&record.key, now).await.expect("load");
    assert_eq!(left, Some(theirs), "their record is left as it was");
}

#[tokio::test]
async fn a_logout_deletes_the_record_that_did_not_decode() {
    let store = MigratedStore::default();
    let app = serve(store.clone()).await;
    let old = store.add_old();

    // Reads leave it alone: another version may read it.
    app.get("/get/user", Some(&old)).await;
    assert!(store.old_text(&id_of(&old).storage_key()).is_some());

    let logout = app.post("/delete", Some(&old)).await;

    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.removes_cookie(), "{logout:?}");
    assert!(store.old_text(&id_of(&old).storage_key()).is_none());
}

#[tokio::test]
async fn a_logout_deletes_an_unreadable_record_named_after_the_live_one() {
    let (store, app, live, old) = live_and_old().await;

    // As a browser sends them when the live cookie has the longer path.
    let logout = app.post("/delete", Some(&format!("{live}; {old}"))).await;

    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.removes_cookie(), "{logout:?}");
    assert!(common::stored(&store.live, &live).await.is_none());
    assert!(store.old_text(&id_of(&old).storage_key()).is_none());
}

#[tokio::test]
async fn a_logout_deletes_an_unreadable_record_past_the_64th_cookie() {
    let store = MigratedStore::default();
    let now = OffsetDateTime::now_utc();
    let (live, _) = stored_at(&store.live, 1, now).await;
    let old = id_of(&store.add_old());

    // Loading keeps a bit per candidate for the first 64 only; the
    // unreadable one comes after 65 that name nothing, then the live one.
    let mut candidates: Vec<Id> = (0..65).map(|_| Id::random()).collect();
    candidates.extend([old, live]);
    let config = Arc::new(session_core::SessionConfig::default());
    let session = session_core::Session::new(Arc::new(store.clone()), config, candidates);

    let user: Option<String> = session.get("user").await.expect("get");
    assert_eq!(user.as_deref(), Some("alice"));
    session.delete().await.expect("delete");
    session.commit().await.expect("commit");

    assert!(store.old_text(&old.storage_key()).is_none());
    assert_eq!(
        store
            .live
            .load(&live.storage_key(), now)
            .await
            .expect("load"),
        None
    );
}

#[tokio::test]
async fn a_logout_stands_when_another_cookies_record_cannot_be_deleted() {
    let (store, app, live, old) = live_and_old().await;
    store
        .old_deletes_fail
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let logout = app.post("/delete", Some(&format!("{live}; {old}"))).await;

    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.removes_cookie(), "{logout:?}");
    assert!(common::stored(&store.live, &live).await.is_none());
    assert!(store.old_text(&id_of(&old).storage_key()).is_some());
}

#[tokio::test]
async fn a_logout_stops_its_cleanup_at_the_first_store_failure() {
    use std::sync::atomic::Ordering::SeqCst;
    let (store, app, live, old) = live_and_old().await;
    let others = [store.add_old(), store.add_old()];
    store.old_deletes_fail.store(true, SeqCst);

    // Three unreadable records before the live one: with the store down,
    // each would wait out a timeout of its own.
    let cookies = format!("{old}; {}; {}; {live}", others[0], others[1]);
    let logout = app.post("/delete", Some(&cookies)).await;

    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.removes_cookie(), "{logout:?}");
    assert!(common::stored(&store.live, &live).await.is_none());
    assert_eq!(store.old_deletes_failed.load(SeqCst), 1);
}

/// The middleware over a plain memory store.
async fn serve_memory(store: MemoryStore) -> TestApp {
    let policy = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    common::serve(SessionLayer::new(store).with_cookie(policy)).await
}

#[tokio::test]
async fn a_write_that_reaches_the_last_version_moves_the_session_to_a_new_id() {
    let store = MemoryStore::default();
    let now = OffsetDateTime::now_utc();
    let (id, record) = stored_at(&store, Record::LAST_VERSION - 1, now).await;
    let app = serve_memory(store.clone()).await;
    let cookie = format!("sid={}", id.encode());

    let write = app.set("cart", json!([1, 2, 3]), Some(&cookie)).await;

    assert_eq!(write.status, 200, "{write:?}");
    let fresh = write.new_cookie().expect("a new id");
    assert_ne!(id_of(&fresh), id);
    assert_eq!(
        app.get("/get/cart", Some(&fresh)).await.json(),
        json!([1, 2, 3])
    );
    assert_eq!(
        app.get("/get/user", Some(&fresh)).await.json(),
        json!("alice")
    );
    assert_eq!(store.load(&record.key, now).await.expect("load"), None);
    let moved = common::stored(&store, &fresh).await.expect("stored");
    assert_eq!(moved.version, 1);
}

/// The middleware over a store that counts its calls.
async fn serve_counting() -> (common::CountingStore, TestApp) {
    let store = common::CountingStore::new(MemoryStore::new());
    let policy = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    let app = common::serve(SessionLayer::new(store.clone()).with_cookie(policy)).await;
    (store, app)
}

#[tokio::test]
async fn a_logout_deletes_only_what_may_be_there_and_each_record_once() {
    use std::sync::atomic::Ordering::SeqCst;

    // Over a cookie whose record is gone: the load saw nothing to delete.
    let (store, app) = serve_counting().await;
    let dead = format!("sid={}", Id::random().encode());
    let logout = app.post("/delete", Some(&dead)).await;
    assert!(logout.removes_cookie(), "{logout:?}");
    assert_eq!(store.counts.load.load(SeqCst), 1);
    assert_eq!(store.counts.delete.load(SeqCst), 0);

    // A handler that logs out twice deletes the record once.
    let live = app.start("user", json!("alice")).await;
    let before = store.counts.delete.load(SeqCst);
    let twice = app.post("/script?steps=delete,delete", Some(&live)).await;
    assert!(twice.removes_cookie(), "{twice:?}");
    assert_eq!(store.counts.delete.load(SeqCst) - before, 1);

    // Dead, then live: the dead one was read as absent, so one delete.
    let live = app.start("user", json!("alice")).await;
    let before = store.counts.delete.load(SeqCst);
    let both = app.post("/delete", Some(&format!("{dead}; {live}"))).await;
    assert!(both.removes_cookie(), "{both:?}");
    assert_eq!(store.counts.delete.load(SeqCst) - before, 1);
}
