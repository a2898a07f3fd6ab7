//! Tower middleware that gives each request a session, with an axum
//! extractor.
//!
//! [`SessionLayer`] reads the session cookie, puts a
//! [`session_core::Session`] in the request extensions, runs your service,
//! then writes the session back and sets or removes the cookie. It works
//! with any tower stack (axum, hyper, tonic); with the `axum` feature (on by
//! default) handlers take a [`Session`] argument.
//!
//! ```
//! use axum::{routing::get, Router};
//! use session_tower::{Session, SessionLayer};
//! use store_memory::MemoryStore;
//!
//! async fn visits(session: Session) -> Result<String, session_tower::Error> {
//!     let n = session
//!         .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
//!         .await?;
//!     Ok(format!("visit number {n}"))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::new(MemoryStore::new()));
//! ```
//!
//! # What happens at the end of a request
//!
//! - A handler that never used the session: no store call, no cookie.
//! - A new session that holds nothing: nothing is written.
//! - Changed data: a versioned save (replayed on conflict), then the cookie.
//! - Read only: a touch once enough of the idle window has passed.
//! - Deleted: the record goes, and a removal cookie with the same `Domain`,
//!   `Path`, `Secure` and `SameSite` as the original goes out.
//! - A failed save: the response becomes an empty 500 and the error is
//!   logged; it is never dropped silently.
//!
//! At most one session `Set-Cookie` is sent per response. When a request
//! carries several cookies of the session's name (an old one with other
//! attributes survived), the first that names a live session wins;
//! malformed ones are ignored.
//!
//! # Features
//!
//! - `axum` (default): the [`Session`] extractor and `IntoResponse` for
//!   [`Error`].
//!
//! # Limits
//!
//! Several requests that arrive at once without a cookie each start their
//! own session; only the last cookie survives in the browser. The server
//! cannot merge them. After changing the cookie's `Domain` or `Path`, the
//! browser may keep the cookie under the old attributes until it expires;
//! it is ignored once its session is gone, but this crate does not send a
//! removal for the old attributes.

mod error;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod layer;
mod service;

pub use crate::error::Error;
#[cfg(feature = "axum")]
pub use crate::extract::Session;
pub use crate::future::ResponseFuture;
pub use crate::layer::SessionLayer;
pub use crate::service::SessionService;
