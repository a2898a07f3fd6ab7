//! Review on real Redis and PostgreSQL servers: records at the last
//! version, hostile cookies, and logouts with several session cookies.
//!
//! For the logouts, two layers, on `/` and on `/admin`, share one store
//! and the cookie name `sid`; a browser holding both sends the admin
//! cookie (longer path) first.
//!
//! A logout deletes its own record and the unreadable ones its cookies
//! name, leaves a live session of the other cookie alone (and every write
//! made to it), and stands when the store fails during those extra
//! deletes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use integration_tests::{postgres, redis as servers};
use serde_json::{json, Value};
use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, CookiePolicy, CreateOutcome, Id, Record, SaveOutcome, SessionConfig, StorageKey,
    Store, StoreError, TouchOutcome,
};
use session_tower::{Session, SessionLayer};
use store_postgres::PostgresStore;
use store_redis::RedisStore;

type Stop = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A real store that runs `stop` (stopping its server) right after the
/// first `delete` once armed: the logout's own delete lands, and the
/// extra ones meet a server that is gone.
#[derive(Clone)]
struct StopAfterDelete {
    inner: Arc<dyn Store>,
    armed: Arc<AtomicBool>,
    stop: Stop,
}

impl std::fmt::Debug for StopAfterDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopAfterDelete")
    }
}

#[async_trait]
impl Store for StopAfterDelete {
    async fn create(&self, r: &Record, now: OffsetDateTime) -> Result<CreateOutcome, StoreError> {
        self.inner.create(r, now).await
    }
    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.inner.load(key, now).await
    }
    async fn save(
        &self,
        r: &Record,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        self.inner.save(r, expected, now).await
    }
    async fn touch(
        &self,
        key: &StorageKey,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        self.inner.touch(key, at, now).await
    }
    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let result = self.inner.delete(key).await;
        if self.armed.swap(false, Ordering::SeqCst) {
            (self.stop)().await;
        }
        result
    }
    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.delete_expired(now).await
    }
}

fn routes() -> Router {
    Router::new()
        .route(
            "/set/{key}",
            post(
                |s: Session, Path(key): Path<String>, Json(v): Json<Value>| async move {
                    s.insert(&key, v).await?;
                    Ok::<_, session_tower::Error>("ok")
                },
            ),
        )
        .route(
            "/get/{key}",
            get(|s: Session, Path(key): Path<String>| async move {
                let v = s.get_value(&key).await?;
                Ok::<_, session_tower::Error>(Json(v.unwrap_or(Value::Null)))
            }),
        )
        .route(
            "/incr",
            post(|s: Session| async move {
                let n = s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
                Ok::<_, session_tower::Error>(Json(n))
            }),
        )
        .route(
            "/delete",
            post(|s: Session| async move {
                s.delete().await?;
                Ok::<_, session_tower::Error>("ok")
            }),
        )
}

/// Serves the site on `/` and the admin area on `/admin` over `store`.
async fn serve(store: Arc<dyn Store>, config: SessionConfig) -> String {
    let policy = |path: &str| {
        CookiePolicy::builder()
            .secure(false)
            .path(path)
            .build()
            .expect("policy")
    };
    let site = SessionLayer::from_arc(Arc::clone(&store))
        .with_config(config.clone())
        .with_cookie(policy("/"));
    let admin = SessionLayer::from_arc(store)
        .with_config(config)
        .with_cookie(policy("/admin"));
    let app = Router::new()
        .nest("/admin", routes().layer(admin))
        .merge(routes().layer(site));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{address}")
}

#[derive(Debug)]
struct Reply {
    status: u16,
    set_cookies: Vec<String>,
    body: String,
}

impl Reply {
    /// The `sid=...` pair of a cookie this reply set (not a removal).
    fn new_cookie(&self) -> Option<String> {
        self.set_cookies.iter().find_map(|c| {
            let pair = c.split(';').next()?.trim();
            (pair.len() > 4 && !c.contains("Max-Age=0")).then(|| pair.to_owned())
        })
    }

    fn removes_cookie(&self) -> bool {
        self.set_cookies.iter().any(|c| c.contains("Max-Age=0"))
    }
}

async fn send(base: &str, path: &str, cookie: Option<&str>, body: Option<Value>) -> Reply {
    let client = reqwest::Client::new();
    let mut request = match body {
        Some(body) => client.post(format!("{base}{path}")).json(&body),
        None if path.ends_with("/delete") || path.ends_with("/incr") => {
            client.post(format!("{base}{path}"))
        }
        None => client.get(format!("{base}{path}")),
    };
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    let body = response.text().await.expect("body");
    Reply {
        status,
        set_cookies,
        body,
    }
}

/// Starts a session at `path` holding `key: value`; returns its cookie.
async fn start(base: &str, prefix: &str, key: &str, value: Value) -> String {
    let reply = send(base, &format!("{prefix}/set/{key}"), None, Some(value)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.new_cookie().expect("a new session cookie")
}

fn key_of(cookie: &str) -> StorageKey {
    let value = cookie.strip_prefix("sid=").expect("sid cookie");
    Id::parse(value).expect("an id").storage_key()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// How a test writes a record that does not decode under a key.
type Damage = Box<dyn Fn(StorageKey) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

async fn redis_store(node: &servers::RedisNode) -> (Arc<dyn Store>, Damage) {
    let store = RedisStore::builder()
        .timeout(Duration::from_secs(1))
        .connect(node.url())
        .await
        .expect("connect");
    let raw = node.connection().await;
    let prefixed = store.clone();
    let damage: Damage = Box::new(move |key| {
        let mut raw = raw.clone();
        let name = prefixed.record_key(&key);
        Box::pin(async move {
            redis::cmd("SET")
                .arg(name)
                .arg("not a session")
                .arg("EX")
                .arg(600)
                .query_async::<()>(&mut raw)
                .await
                .expect("set");
        })
    });
    (Arc::new(store), damage)
}

async fn postgres_store(db: &postgres::TestDatabase) -> (Arc<dyn Store>, Damage) {
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.expect("migrate");
    let pool = store.pool().clone();
    let writer: Arc<dyn Store> = Arc::new(store.clone());
    let damage: Damage = Box::new(move |key| {
        let pool = pool.clone();
        let writer = Arc::clone(&writer);
        Box::pin(async move {
            let t0 = now();
            let record = Record {
                key,
                data: session_core::Data::new(),
                version: 1,
                created_at: t0,
                expires_at: t0 + session_core::time::Duration::hours(1),
                deadline: t0 + session_core::time::Duration::days(1),
                principal: None,
                expiry: None,
            };
            writer.create(&record, t0).await.expect("create");
            // Data that is no JSON object: the row no longer decodes.
            sqlx::query("UPDATE public.sessions SET data = '[1]' WHERE key = $1")
                .bind(key.as_bytes().as_slice())
                .execute(&pool)
                .await
                .expect("damage the row");
        })
    });
    (Arc::new(store), damage)
}

/// The admin logout with the admin cookie, an unreadable record and the
/// site's cookie: the admin session and the unreadable record go, the
/// site's session stays and keeps working.
async fn logout_of_one_path(store: Arc<dyn Store>, damage: Damage) {
    let base = serve(Arc::clone(&store), SessionConfig::default()).await;
    let shop = start(&base, "", "user", json!("alice")).await;
    let staff = start(&base, "/admin", "user", json!("root")).await;
    let broken = format!("sid={}", Id::random().encode());
    damage(key_of(&broken)).await;
    let dead = format!("sid={}", Id::random().encode());

    // Reads leave the unreadable record alone; nothing is a 500.
    let read = send(
        &base,
        "/admin/get/user",
        Some(&format!("{broken}; {staff}")),
        None,
    )
    .await;
    assert_eq!(
        (read.status, read.body.as_str()),
        (200, "\"root\""),
        "{read:?}"
    );

    let cookies = format!("{dead}; {staff}; {broken}; {shop}");
    let logout = send(&base, "/admin/delete", Some(&cookies), None).await;

    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.removes_cookie(), "{logout:?}");
    assert_eq!(
        store.load(&key_of(&staff), now()).await.expect("load"),
        None
    );
    let left = store.load(&key_of(&broken), now()).await;
    assert!(
        matches!(left, Ok(None)),
        "the unreadable record is left: {left:?}"
    );
    let site = send(&base, "/get/user", Some(&shop), None).await;
    assert_eq!(site.body, "\"alice\"", "the site's session: {site:?}");
}

#[tokio::test]
async fn redis_a_logout_of_one_path_leaves_the_other() {
    let (store, damage) = redis_store(servers::shared()).await;
    logout_of_one_path(store, damage).await;
}

#[tokio::test]
async fn postgres_a_logout_of_one_path_leaves_the_other() {
    let db = postgres::shared().fresh_database().await;
    let (store, damage) = postgres_store(&db).await;
    logout_of_one_path(store, damage).await;
}

/// The admin logout races writes to the site's session made through the
/// same browser's other cookie: every acknowledged write stays.
async fn logout_racing_writes(store: Arc<dyn Store>) {
    let base = serve(Arc::clone(&store), SessionConfig::default()).await;
    let shop = start(&base, "", "n", json!(0)).await;

    for _ in 0..3 {
        let staff = start(&base, "/admin", "user", json!("root")).await;
        let cookies = format!("{staff}; {shop}");
        let mut writes = Vec::new();
        for _ in 0..8 {
            let (base, shop) = (base.clone(), shop.clone());
            writes.push(tokio::spawn(async move {
                send(&base, "/incr", Some(&shop), None).await
            }));
        }
        // Writes to the session being logged out race the logout too.
        let mut own = Vec::new();
        for _ in 0..4 {
            let (base, staff) = (base.clone(), staff.clone());
            own.push(tokio::spawn(async move {
                send(&base, "/admin/incr", Some(&staff), None).await
            }));
        }
        let logout = send(&base, "/admin/delete", Some(&cookies), None).await;
        assert_eq!(logout.status, 200, "{logout:?}");
        assert!(logout.removes_cookie(), "{logout:?}");
        for write in writes.into_iter().chain(own) {
            let reply = write.await.expect("join");
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        assert_eq!(
            store.load(&key_of(&staff), now()).await.expect("load"),
            None
        );
    }

    let n = send(&base, "/get/n", Some(&shop), None).await;
    assert_eq!(n.body, "24", "writes to the other session were lost: {n:?}");
}

#[tokio::test]
async fn redis_a_logout_racing_writes_of_the_other_cookie_loses_none() {
    let (store, _) = redis_store(servers::shared()).await;
    logout_racing_writes(store).await;
}

#[tokio::test]
async fn postgres_a_logout_racing_writes_of_the_other_cookie_loses_none() {
    let db = postgres::shared().fresh_database().await;
    let (store, _) = postgres_store(&db).await;
    logout_racing_writes(store).await;
}

/// Log lines at warn and above, as text.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The store's server stops right after the logout's own delete: the
/// extra loads and deletes fail, the logout stands, in bounded time,
/// and no warn line names a session id or a storage key.
async fn logout_while_the_server_stops(inner: Arc<dyn Store>, damage: Damage, stop: Stop) {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let armed = Arc::new(AtomicBool::new(false));
    let store: Arc<dyn Store> = Arc::new(StopAfterDelete {
        inner,
        armed: Arc::clone(&armed),
        stop,
    });
    let timeout = session_core::time::Duration::seconds(1);
    let config = SessionConfig::default().with_store_timeout(timeout);
    let base = serve(Arc::clone(&store), config).await;
    let shop = start(&base, "", "user", json!("alice")).await;
    let staff = start(&base, "/admin", "user", json!("root")).await;
    let broken = format!("sid={}", Id::random().encode());
    damage(key_of(&broken)).await;
    let other = start(&base, "", "user", json!("bob")).await;

    armed.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let cookies = format!("{staff}; {broken}; {shop}; {other}");
    let logout = send(&base, "/admin/delete", Some(&cookies), None).await;
    let took = started.elapsed();

    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(logout.removes_cookie(), "{logout:?}");
    let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
    for cookie in [&staff, &broken, &shop, &other] {
        let id = cookie.strip_prefix("sid=").expect("sid");
        let hex = key_of(cookie).to_hex();
        assert!(!text.contains(id) && !text.contains(&hex), "{text}");
    }
    assert!(
        took < Duration::from_secs(8),
        "the logout took {took:?}; logs: {text}"
    );
}

// One thread: the log subscriber set for this test sees the server's
// tasks too.
#[tokio::test]
async fn redis_a_logout_stands_when_the_server_stops_during_its_extra_deletes() {
    let node = Arc::new(servers::dedicated().await);
    let (store, damage) = redis_store(&node).await;
    let stopper = Arc::clone(&node);
    let stop: Stop = Arc::new(move || {
        let node = Arc::clone(&stopper);
        Box::pin(async move { node.stop().await.expect("stop") })
    });
    logout_while_the_server_stops(store, damage, stop).await;
}

#[tokio::test]
async fn postgres_a_logout_stands_when_the_server_stops_during_its_extra_deletes() {
    let server = Arc::new(postgres::dedicated().await);
    let db = server.fresh_database().await;
    let (store, damage) = postgres_store(&db).await;
    let stopper = Arc::clone(&server);
    let stop: Stop = Arc::new(move || {
        let server = Arc::clone(&stopper);
        Box::pin(async move { server.stop().await.expect("stop") })
    });
    logout_while_the_server_stops(store, damage, stop).await;
    server.start().await.expect("start again");
    drop(db);
}

/// Moves the record under `cookie` to `version` through the store's own
/// versioned save, as a record written by another program would be.
async fn put_version(store: &Arc<dyn Store>, cookie: &str, version: u64) -> Record {
    let key = key_of(cookie);
    let current = store.load(&key, now()).await.expect("load").expect("live");
    let moved = Record {
        version,
        ..current.clone()
    };
    let saved = store
        .save(&moved, current.version, now())
        .await
        .expect("save");
    assert_eq!(saved, SaveOutcome::Saved, "version {version}");
    moved
}

/// A session at the last version (or past it, where the store holds
/// that) is no session and a write starts afresh; a write that takes one
/// there moves it to a new id at version 1. Never a 500.
async fn last_version_through_the_app(store: Arc<dyn Store>, past: &[u64]) {
    let base = serve(Arc::clone(&store), SessionConfig::default()).await;

    let cookie = start(&base, "", "user", json!("alice")).await;
    put_version(&store, &cookie, Record::LAST_VERSION - 1).await;
    let write = send(&base, "/set/cart", Some(&cookie), Some(json!([1, 2]))).await;
    assert_eq!(write.status, 200, "{write:?}");
    let fresh = write.new_cookie().expect("a new id");
    assert_ne!(fresh, cookie);
    assert_eq!(
        store.load(&key_of(&cookie), now()).await.expect("load"),
        None
    );
    let moved = store.load(&key_of(&fresh), now()).await.expect("load");
    assert_eq!(moved.map(|r| r.version), Some(1));
    let all = [
        send(&base, "/get/user", Some(&fresh), None).await.body,
        send(&base, "/get/cart", Some(&fresh), None).await.body,
    ];
    assert_eq!(all, ["\"alice\"", "[1,2]"]);

    for &version in [Record::LAST_VERSION].iter().chain(past) {
        let cookie = start(&base, "", "user", json!("alice")).await;
        let top = put_version(&store, &cookie, version).await;
        let read = send(&base, "/get/user", Some(&cookie), None).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (200, "null"),
            "{version}"
        );
        let write = send(&base, "/set/user", Some(&cookie), Some(json!("bob"))).await;
        assert_eq!(write.status, 200, "{version}: {write:?}");
        let fresh = write.new_cookie().expect("a new session");
        assert_ne!(fresh, cookie);
        let left = store.load(&key_of(&cookie), now()).await.expect("load");
        assert_eq!(left, Some(top), "{version}: the record is left as it was");
        // A logout over both deletes the new session and the stuck one.
        let cookies = format!("{fresh}; {cookie}");
        let logout = send(&base, "/delete", Some(&cookies), None).await;
        assert_eq!(logout.status, 200, "{logout:?}");
        for gone in [&fresh, &cookie] {
            assert_eq!(store.load(&key_of(gone), now()).await.expect("load"), None);
        }
    }
}

#[tokio::test]
async fn redis_the_last_version_through_the_app() {
    let (store, _) = redis_store(servers::shared()).await;
    last_version_through_the_app(store, &[Record::LAST_VERSION + 1, u64::MAX]).await;
}

#[tokio::test]
async fn postgres_the_last_version_through_the_app() {
    let db = postgres::shared().fresh_database().await;
    let (store, _) = postgres_store(&db).await;
    last_version_through_the_app(Arc::clone(&store), &[]).await;

    // Past it, a bigint cannot hold the version: an error, no panic.
    let cookie = {
        let base = serve(Arc::clone(&store), SessionConfig::default()).await;
        start(&base, "", "user", json!("alice")).await
    };
    let current = store.load(&key_of(&cookie), now()).await.expect("load");
    let current = current.expect("live");
    let past = Record {
        version: Record::LAST_VERSION + 1,
        ..current.clone()
    };
    let saved = store.save(&past, current.version, now()).await;
    assert!(saved.is_err(), "{saved:?}");
}

/// Cookies a hostile client sends, on real stores: never a 500, never
/// another session than the one the request's own cookie names.
async fn hostile_cookies(store: Arc<dyn Store>) {
    let base = serve(Arc::clone(&store), SessionConfig::default()).await;
    let live = start(&base, "", "user", json!("alice")).await;
    let id = live.strip_prefix("sid=").expect("sid").to_owned();
    let hex = key_of(&live).to_hex();
    let randoms = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| format!("sid={}", Id::random().encode()))
            .collect()
    };

    let mut many_then_live = randoms(99);
    many_then_live.push(live.clone());
    let mut live_then_many = vec![live.clone()];
    live_then_many.extend(randoms(99));
    let cases = [
        (format!("{live}; {live}"), "\"alice\""),
        (format!("sid={hex}"), "null"),
        (format!("sid={id}{id}"), "null"),
        (format!("sid={}", "A".repeat(6000)), "null"),
        // RFC 6265 lets a cookie value be quoted: the same id.
        (format!("sid=\"{id}\""), "\"alice\""),
        (format!("sid={id}="), "null"),
        (format!("sid={}", id.to_uppercase()), "null"),
        (many_then_live.join("; "), "null"),
        (live_then_many.join("; "), "\"alice\""),
    ];
    for (cookie, expected) in &cases {
        let reply = send(&base, "/get/user", Some(cookie), None).await;
        let shown = &cookie[..cookie.len().min(80)];
        assert_eq!(reply.status, 200, "{shown}: {reply:?}");
        assert_eq!(&reply.body, expected, "{shown}");
        let write = send(&base, "/incr", Some(cookie), None).await;
        assert_eq!(write.status, 200, "{shown}: {write:?}");
    }
}

#[tokio::test]
async fn redis_hostile_cookies() {
    let (store, _) = redis_store(servers::shared()).await;
    hostile_cookies(store).await;
}

#[tokio::test]
async fn postgres_hostile_cookies() {
    let db = postgres::shared().fresh_database().await;
    let (store, _) = postgres_store(&db).await;
    hostile_cookies(store).await;
}
