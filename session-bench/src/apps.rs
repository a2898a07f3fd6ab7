//! The web apps the middleware benchmarks send requests to.
//!
//! Every app has the same route, `GET /`, which reads a counter from the
//! session and writes it back incremented; a visitor's first request also
//! stores about 100 bytes of profile data, so every session is the size
//! the store benchmarks use. The plain app answers the same route without
//! sessions; the difference between them is what sessions cost.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::Value;
use session_core::{SessionConfig, Store};
use session_tower::SessionLayer;

use crate::workload::session_data;

/// The app without sessions.
pub fn plain() -> Router {
    Router::new().route("/", get(|| async { "1" }))
}

/// The app with this workspace's sessions over `store`.
///
/// Besides `/` it has `/read` (reads the counter only) and `/none` (never
/// touches the session), for counting store calls per kind of request.
pub fn ours(store: Arc<dyn Store>, config: SessionConfig) -> Router {
    Router::new()
        .route("/", get(ours_visit))
        .route("/read", get(ours_read))
        .route("/none", get(|| async { "1" }))
        .layer(SessionLayer::from_arc(store).with_config(config))
}

async fn ours_visit(session: session_tower::Session) -> Result<String, session_tower::Error> {
    let n: Option<u64> = session.get("n").await?;
    if n.is_none() {
        session.insert("profile", profile()).await?;
    }

    let n = n.unwrap_or(0) + 1;
    session.insert("n", n).await?;
    Ok(n.to_string())
}

async fn ours_read(session: session_tower::Session) -> Result<String, session_tower::Error> {
    let n: Option<u64> = session.get("n").await?;
    Ok(n.unwrap_or(0).to_string())
}

/// The app with tower-sessions 0.14 and its own memory store, with the
/// same cookie lifetime as ours (a persistent cookie renewed by use).
pub fn theirs() -> Router {
    let expiry = tower_sessions::Expiry::OnInactivity(time::Duration::hours(24));
    let layer = tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
        .with_expiry(expiry);
    Router::new().route("/", get(theirs_visit)).layer(layer)
}

async fn theirs_visit(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let failed = |_| StatusCode::INTERNAL_SERVER_ERROR;

    let n: Option<u64> = session.get("n").await.map_err(failed)?;
    if n.is_none() {
        session.insert("profile", profile()).await.map_err(failed)?;
    }

    let n = n.unwrap_or(0) + 1;
    session.insert("n", n).await.map_err(failed)?;
    Ok(n.to_string())
}

/// The data a first visit stores: about 100 bytes of JSON.
fn profile() -> Value {
    Value::Object(session_data(7, 0).to_map())
}

/// The cookie a response sets, as the `name=value` pair to send back.
#[must_use]
pub fn cookie_to_return(headers: &http::HeaderMap) -> Option<http::HeaderValue> {
    let set_cookie = headers.get(http::header::SET_COOKIE)?.to_str().ok()?;
    http::HeaderValue::from_str(cookie_pair(set_cookie)?).ok()
}

/// The `name=value` pair of a `Set-Cookie` header, to send back.
#[must_use]
pub fn cookie_pair(set_cookie: &str) -> Option<&str> {
    let pair = set_cookie.split(';').next()?.trim();
    pair.contains('=').then_some(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_pair_drops_the_attributes() {
        let header = "sid=abc; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=86400";

        assert_eq!(cookie_pair(header), Some("sid=abc"));
        assert_eq!(cookie_pair("garbage"), None);
    }
}
