//! The demo app: a login form, `/login`, `/logout` and `/me`.

use std::sync::Arc;

use axum::extract::Form;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use session_core::{CookiePolicy, CookiePolicyError, SessionConfig, Store};
use session_tower::{Session, SessionLayer};
use tower_http::cors::CorsLayer;

/// Longest user name the demo accepts.
const MAX_USER_LEN: usize = 64;

/// How the demo is set up.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Send the cookie with `Secure` (needs HTTPS, or a browser that treats
    /// localhost as secure). Off by default: the demo serves plain HTTP.
    pub secure: bool,
    /// Session settings (expiry, clock); the defaults when `None`.
    pub config: Option<SessionConfig>,
    /// Use the cross-site cookie preset (`SameSite=None`, `Secure`,
    /// `Partitioned`), for a front end on another site.
    pub cross_site: bool,
    /// Allow credentialed requests from exactly this origin (CORS), such
    /// as `http://localhost:5173`.
    pub cors_origin: Option<String>,
}

/// Why the demo could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The cookie options make a cookie browsers reject.
    #[error("invalid cookie options")]
    Cookie(#[from] CookiePolicyError),

    /// The CORS origin is not a valid header value.
    #[error("invalid CORS origin {0:?}")]
    Origin(String),
}

/// The demo's router over `store`.
///
/// # Errors
///
/// [`DemoError::Cookie`] if the options make a cookie browsers reject;
/// [`DemoError::Origin`] for a malformed CORS origin.
pub fn app(store: Arc<dyn Store>, options: &DemoOptions) -> Result<Router, DemoError> {
    let cookie = if options.cross_site {
        CookiePolicy::cross_site().partitioned(true).build()?
    } else {
        CookiePolicy::builder().secure(options.secure).build()?
    };
    let config = options.config.clone().unwrap_or_default();
    let layer = SessionLayer::from_arc(store)
        .with_cookie(cookie)
        .with_config(config);

    let router = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .layer(layer);

    let Some(origin) = &options.cors_origin else {
        return Ok(router);
    };
    let allowed: HeaderValue = origin
        .parse()
        .map_err(|_| DemoError::Origin(origin.clone()))?;
    let cors = CorsLayer::new()
        .allow_origin(allowed)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    Ok(router.layer(cors))
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
}

async fn index(session: Session) -> Result<Html<String>, session_tower::Error> {
    let user: Option<String> = session.get("user").await?;

    let status = match user {
        Some(user) => format!("<p>Logged in as <b>{}</b>.</p>", escape(&user)),
        None => "<p>Not logged in.</p>".to_owned(),
    };
    Ok(Html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Session demo</title>\
         </head><body>\n<h1>Session demo</h1>\n{status}\n\
         <form method=\"post\" action=\"/login\">\
         <label>User <input name=\"user\" required maxlength=\"{MAX_USER_LEN}\"></label> \
         <button>Log in</button></form>\n\
         <form method=\"post\" action=\"/logout\"><button>Log out</button></form>\n\
         <p><a href=\"/me\">/me</a> shows the session as JSON.</p>\n</body></html>\n"
    )))
}

async fn login(
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, session_tower::Error> {
    let user = form.user.trim();
    if user.is_empty() || user.chars().count() > MAX_USER_LEN {
        let message = format!("user must be 1 to {MAX_USER_LEN} characters");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, message).into_response());
    }

    // Setting the principal also gives the session a new id.
    session.set_principal(user).await?;
    session.insert("user", user).await?;
    Ok(done(&headers, json!({ "user": user })))
}

async fn logout(session: Session, headers: HeaderMap) -> Result<Response, session_tower::Error> {
    session.delete().await?;
    Ok(done(&headers, json!({ "user": null })))
}

async fn me(session: Session) -> Result<Json<serde_json::Value>, session_tower::Error> {
    let visits = session
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    let user: Option<String> = session.get("user").await?;

    Ok(Json(json!({ "user": user, "visits": visits })))
}

/// Browsers posting the form go back to the page; scripts get JSON.
fn done(headers: &HeaderMap, body: serde_json::Value) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));

    if wants_html {
        Redirect::to("/").into_response()
    } else {
        Json(body).into_response()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
