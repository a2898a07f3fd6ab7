//! Session values and keys full of JSON-hostile strings round-trip
//! through the middleware (and through the conflict replay of two
//! overlapping sessions), with the text-backed `Data`.

use std::sync::Arc;

use axum::body::Body;
use axum::routing::post;
use axum::{Json, Router};
use http::{header, Request, StatusCode};
use serde_json::{json, Map, Value};
use session_core::{Commit, CookiePolicy, Session as CoreSession, SessionConfig, Store};
use session_tower::{Session, SessionLayer};
use store_memory::MemoryStore;
use tower::ServiceExt;

fn hostile_strings() -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "\"",
        "\\",
        "\\\"",
        "\"\\",
        "a\"b",
        "a\\b",
        "}",
        "{\"x\":1}",
        "\"}",
        "\\\"}",
        "]",
        ",\"evil\":true",
        "\\u0041",
        "\\ud800",
        "/",
        "\u{0}",
        "\u{1}\u{1f}",
        "\n\r\t\u{8}\u{c}",
        "\u{7f}",
        "é",
        "\u{2028}\u{2029}",
        "😀",
        "\u{ffff}",
        "\u{10ffff}",
        " leading and trailing ",
        "a",
        "ab",
        "abc",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    out.push("\\".repeat(1001));
    out.push("\"".repeat(1001));
    out
}

async fn put(s: Session, Json(body): Json<Value>) -> Result<&'static str, session_tower::Error> {
    let key = body["key"].as_str().unwrap_or_default().to_owned();
    s.insert(&key, body["value"].clone()).await?;
    Ok("ok")
}

async fn get(s: Session, Json(body): Json<Value>) -> Result<Json<Value>, session_tower::Error> {
    let key = body["key"].as_str().unwrap_or_default();
    Ok(Json(
        s.get_value(key).await?.unwrap_or(json!({"$missing": true})),
    ))
}

async fn update(s: Session, Json(body): Json<Value>) -> Result<Json<Value>, session_tower::Error> {
    let key = body["key"].as_str().unwrap_or_default().to_owned();
    let value = body["value"].clone();
    let old = s
        .update(
            &key,
            move |old: Option<Value>| json!({"was": old, "now": value.clone()}),
        )
        .await?;
    Ok(Json(old))
}

async fn remove(s: Session, Json(body): Json<Value>) -> Result<Json<Value>, session_tower::Error> {
    let key = body["key"].as_str().unwrap_or_default();
    Ok(Json(s.remove(key).await?.unwrap_or(Value::Null)))
}

async fn all(s: Session) -> Result<Json<Value>, session_tower::Error> {
    Ok(Json(s.get_all::<Value>().await?.unwrap_or(Value::Null)))
}

fn app(store: MemoryStore) -> Router {
    let cookie = CookiePolicy::builder()
        .secure(false)
        .build()
        .expect("policy");
    Router::new()
        .route("/put", post(put))
        .route("/get", post(get))
        .route("/update", post(update))
        .route("/remove", post(remove))
        .route("/all", post(all))
        .layer(SessionLayer::new(store).with_cookie(cookie))
}

async fn call(app: &Router, cookie: &mut Option<String>, path: &str, body: Value) -> Value {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(cookie) = cookie.as_ref() {
        request = request.header(header::COOKIE, cookie.clone());
    }
    let request = request.body(Body::from(body.to_string())).expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK, "{path} {body}");
    if let Some(set) = response.headers().get(header::SET_COOKIE) {
        let pair = set
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .unwrap_or_default();
        *cookie = Some(pair.to_owned());
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[tokio::test]
async fn hostile_keys_and_values_round_trip_through_the_middleware() {
    let app = app(MemoryStore::new());
    let mut cookie = None;
    let strings = hostile_strings();
    let mut want = Map::new();

    for (n, key) in strings.iter().enumerate() {
        let value = json!({
            "s": strings[(n + 1) % strings.len()],
            "nested": [strings[(n + 2) % strings.len()], {key.clone(): key}],
            "n": 1.0000000000000002_f64,
            "big": u64::MAX,
            "neg": i64::MIN,
        });
        call(
            &app,
            &mut cookie,
            "/put",
            json!({"key": key, "value": value}),
        )
        .await;
        want.insert(key.clone(), value);
        // Every key so far reads back in a later request.
        for (k, v) in &want {
            let got = call(&app, &mut cookie, "/get", json!({"key": k})).await;
            assert_eq!(&got, v, "get {k:?} after putting {key:?}");
        }
    }
    assert!(cookie.is_some());
    assert_eq!(
        call(&app, &mut cookie, "/all", json!({})).await,
        Value::Object(want.clone())
    );

    // Prefix probes that are not keys read as missing.
    for probe in ["abcd", "\"a", "a\\", "\\\\", "\"\"", "😀😀"] {
        if !want.contains_key(probe) {
            let got = call(&app, &mut cookie, "/get", json!({"key": probe})).await;
            assert_eq!(got, json!({"$missing": true}), "probe {probe:?}");
        }
    }

    // update sees the stored value, and remove takes exactly one key.
    for key in strings.iter().step_by(3) {
        let got = call(
            &app,
            &mut cookie,
            "/update",
            json!({"key": key, "value": key}),
        )
        .await;
        let old = want.insert(key.clone(), json!({"was": want[key], "now": key}));
        assert_eq!(got, json!({"was": old, "now": key}), "update {key:?}");
    }
    for key in strings.iter().skip(1).step_by(4) {
        let got = call(&app, &mut cookie, "/remove", json!({"key": key})).await;
        assert_eq!(Some(&got), want.get(key), "remove {key:?}");
        want.remove(key);
    }
    assert_eq!(
        call(&app, &mut cookie, "/all", json!({})).await,
        Value::Object(want)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_sessions_replay_hostile_keys_onto_each_other() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::default());
    let first = CoreSession::new(store.clone(), config.clone(), vec![]);
    first.insert("base\"", "\\").await.expect("insert");
    let Commit::Set { id, .. } = first.commit().await.expect("commit") else {
        panic!("a new session sets its cookie");
    };

    let strings = hostile_strings();
    for (n, pair) in strings.chunks(2).enumerate() {
        let a = CoreSession::new(store.clone(), config.clone(), vec![id]);
        let b = CoreSession::new(store.clone(), config.clone(), vec![id]);
        // Both load the same version before either saves.
        assert!(a.exists().await.expect("exists"));
        assert!(b.exists().await.expect("exists"));
        a.insert(&pair[0], json!({"from": "a", "v": pair[0]}))
            .await
            .expect("a");
        let key_b = pair.get(1).cloned().unwrap_or_else(|| format!("{n}\"b"));
        b.insert(&key_b, json!({"from": "b", "v": key_b}))
            .await
            .expect("b");
        b.update("count\\", |c: Option<u64>| c.unwrap_or(0) + 1)
            .await
            .expect("update");
        a.commit().await.expect("commit a");
        b.commit().await.expect("commit b replays");

        let check = CoreSession::new(store.clone(), config.clone(), vec![id]);
        let got: Value = check
            .get_value(&pair[0])
            .await
            .expect("get")
            .expect("a's key");
        assert_eq!(got, json!({"from": "a", "v": pair[0]}));
        let got: Value = check
            .get_value(&key_b)
            .await
            .expect("get")
            .expect("b's key");
        assert_eq!(got, json!({"from": "b", "v": key_b}));
        assert_eq!(
            check.get::<u64>("count\\").await.expect("get"),
            Some(n as u64 + 1)
        );
        assert_eq!(
            check.get::<String>("base\"").await.expect("get").as_deref(),
            Some("\\")
        );
    }
}
