//! A test app served over loopback HTTP, and a store wrapper that counts
//! calls and can slow saves down so that requests really overlap.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use session_core::time::OffsetDateTime;
use session_core::{
    async_trait, CookiePolicy, CreateOutcome, Id, Record, SaveOutcome, SessionConfig, StorageKey,
    Store, StoreError, TouchOutcome,
};
use session_tower::{Session, SessionLayer};
use store_memory::MemoryStore;

/// Counts store calls and optionally delays `save` (and `load`).
#[derive(Debug, Clone)]
pub struct CountingStore {
    pub inner: MemoryStore,
    pub counts: Arc<Counts>,
    pub save_delay: Duration,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub create: AtomicU64,
    pub load: AtomicU64,
    pub save: AtomicU64,
    pub touch: AtomicU64,
    pub delete: AtomicU64,
}

impl Counts {
    pub fn writes(&self) -> u64 {
        self.create.load(Ordering::SeqCst)
            + self.save.load(Ordering::SeqCst)
            + self.touch.load(Ordering::SeqCst)
            + self.delete.load(Ordering::SeqCst)
    }

    pub fn total(&self) -> u64 {
        self.writes() + self.load.load(Ordering::SeqCst)
    }
}

impl CountingStore {
    pub fn new(inner: MemoryStore) -> Self {
        Self {
            inner,
            counts: Arc::default(),
            save_delay: Duration::ZERO,
        }
    }

    pub fn with_save_delay(mut self, delay: Duration) -> Self {
        self.save_delay = delay;
        self
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        self.counts.create.fetch_add(1, Ordering::SeqCst);
        self.inner.create(record, now).await
    }

    async fn load(
        &self,
        key: &StorageKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.counts.load.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key, now).await
    }

    async fn save(
        &self,
        record: &Record,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        self.counts.save.fetch_add(1, Ordering::SeqCst);
        // The delay sits before the version check, so that saves overlap.
        if !self.save_delay.is_zero() {
            tokio::time::sleep(self.save_delay).await;
        }
        self.inner.save(record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TouchOutcome, StoreError> {
        self.counts.touch.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(key, expires_at, now).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        self.counts.delete.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }

    async fn delete_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.delete_expired(now).await
    }
}

/// The routes the tests drive.
pub fn router(layer: SessionLayer) -> Router {
    Router::new()
        .route("/noop", get(|| async { "ok" }))
        .route("/get/{key}", get(get_key))
        .route("/set/{key}", post(set_key))
        .route("/remove/{key}", post(remove_key))
        .route("/incr/{key}", post(incr_key))
        .route("/clear", post(clear))
        .route("/delete", post(delete))
        .route("/all", get(all))
        .route("/script", post(script))
        .route("/slow-get/{key}", get(slow_get))
        .layer(layer)
}

async fn get_key(
    session: Session,
    Path(key): Path<String>,
) -> Result<Json<Value>, session_tower::Error> {
    let value: Option<Value> = session.get(&key).await?;
    Ok(Json(value.unwrap_or(Value::Null)))
}

async fn slow_get(
    session: Session,
    Path(key): Path<String>,
) -> Result<Json<Value>, session_tower::Error> {
    let value: Option<Value> = session.get(&key).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Json(value.unwrap_or(Value::Null)))
}

async fn set_key(
    session: Session,
    Path(key): Path<String>,
    Json(value): Json<Value>,
) -> Result<&'static str, session_tower::Error> {
    session.insert(&key, value).await?;
    Ok("ok")
}

async fn remove_key(
    session: Session,
    Path(key): Path<String>,
) -> Result<&'static str, session_tower::Error> {
    session.remove(&key).await?;
    Ok("ok")
}

async fn incr_key(
    session: Session,
    Path(key): Path<String>,
) -> Result<Json<u64>, session_tower::Error> {
    let n = session
        .update(&key, |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(Json(n))
}

async fn clear(session: Session) -> Result<&'static str, session_tower::Error> {
    session.clear().await?;
    Ok("ok")
}

async fn delete(session: Session) -> Result<&'static str, session_tower::Error> {
    session.delete().await?;
    Ok("ok")
}

async fn all(session: Session) -> Result<Json<Value>, session_tower::Error> {
    let all: Option<Value> = session.get_all().await?;
    Ok(Json(all.unwrap_or(Value::Null)))
}

/// Runs a list of steps, such as `cycle,set:user=alice,remove:role`.
async fn script(
    session: Session,
    Query(query): Query<HashMap<String, String>>,
) -> Result<&'static str, session_tower::Error> {
    let steps = query.get("steps").cloned().unwrap_or_default();

    for step in steps.split(',').filter(|s| !s.is_empty()) {
        let (verb, arg) = step.split_once(':').unwrap_or((step, ""));
        match verb {
            "cycle" => session.cycle_id().await?,
            "delete" => session.delete().await?,
            "clear" => session.clear().await?,
            "remove" => {
                session.remove(arg).await?;
            }
            "set" => {
                let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
                session.insert(key, value).await?;
            }
            "principal" => session.set_principal(arg).await?,
            other => panic!("unknown step {other}"),
        }
    }
    Ok("ok")
}

/// A served app and a client that manages the cookie by hand.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub policy: CookiePolicy,
}

pub fn config() -> SessionConfig {
    SessionConfig::default().with_max_save_attempts(200)
}

pub async fn serve(layer: SessionLayer) -> TestApp {
    let policy = layer.cookie().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");

    let app = router(layer);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    TestApp {
        address,
        client,
        policy,
    }
}

/// What came back: status, body and the session Set-Cookie headers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub set_cookies: Vec<String>,
}

impl Reply {
    /// The id the response set, if it set one.
    pub fn new_cookie(&self) -> Option<String> {
        self.set_cookies
            .iter()
            .filter(|c| !is_removal(c))
            .find_map(|c| c.split(';').next().map(str::to_owned))
    }

    pub fn removes_cookie(&self) -> bool {
        self.set_cookies.iter().any(|c| is_removal(c))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

fn is_removal(cookie: &str) -> bool {
    cookie.to_ascii_lowercase().contains("max-age=0")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Sends a request with an optional raw `Cookie` header.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }

        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let name = format!("{}=", self.policy.name());
        let set_cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.starts_with(&name))
            .map(str::to_owned)
            .collect();
        let body = response.text().await.expect("body");
        Reply {
            status,
            body,
            set_cookies,
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.send("GET", path, cookie, None).await
    }

    pub async fn post(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.send("POST", path, cookie, None).await
    }

    pub async fn set(&self, key: &str, value: Value, cookie: Option<&str>) -> Reply {
        self.send("POST", &format!("/set/{key}"), cookie, Some(value))
            .await
    }

    /// Starts a session holding `key = value` and returns its cookie pair.
    pub async fn start(&self, key: &str, value: Value) -> String {
        let reply = self.set(key, value, None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.new_cookie().expect("a session cookie")
    }
}

/// The id in a `sid=...` pair.
pub fn id_of(pair: &str) -> Id {
    let value = pair.split_once('=').map(|(_, v)| v).unwrap_or_default();
    Id::parse(value).expect("a well-formed id")
}

/// The store's view of the session a cookie pair names.
pub async fn stored(store: &impl Store, pair: &str) -> Option<Record> {
    let now = OffsetDateTime::now_utc();
    store
        .load(&id_of(pair).storage_key(), now)
        .await
        .expect("load")
}

pub fn memory() -> MemoryStore {
    MemoryStore::new()
}

pub fn value(v: Value) -> Value {
    json!(v)
}
