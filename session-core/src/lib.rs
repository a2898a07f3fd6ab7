//! Sessions for HTTP services: the model, its expiry, its cookie policy and
//! the [`Store`] contract every backend implements.
//!
//! This crate knows no backend and no web framework. A store crate
//! (`store-memory`, `store-redis`, `store-postgres`, `store-sqlite`)
//! implements [`Store`]; the `session-tower` middleware reads the cookie,
//! hands each request a [`Session`] and writes it back.
//!
//! # How it works
//!
//! - An [`Id`] is 128 bits from the OS random source, sent as 22 characters
//!   of base64url. Stores only ever see its [`StorageKey`] (SHA-256), so a
//!   dump of the store holds no usable token.
//! - A [`Record`] carries the data (a JSON object), a version, its creation
//!   time, its expiry and its absolute deadline, and optionally the
//!   logged-in principal.
//! - A [`Session`] loads lazily, logs what the handler changes, and on
//!   [`Session::commit`] saves with a version check. When a concurrent
//!   request saved first it reloads and replays the changes, so writes to
//!   different keys and [`Session::update`]s are never lost, and a
//!   [`Session::delete`] always wins.
//! - Read-only requests refresh the expiry with a cheap touch, and only
//!   once enough of the idle window has passed.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use session_core::{Commit, Session, SessionConfig, Store};
//!
//! async fn count_visit(store: Arc<dyn Store>) -> Result<(), session_core::Error> {
//!     let config = Arc::new(SessionConfig::default());
//!
//!     // No cookie yet: the request starts without a session.
//!     let session = Session::new(store, config, Vec::new());
//!     let visits = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     assert_eq!(visits, 1);
//!
//!     // The middleware does this at the end of the request.
//!     match session.commit().await? {
//!         Commit::Set { id, .. } => println!("cookie: sid={}", id.encode()),
//!         Commit::Unchanged | Commit::Removed => {}
//!     }
//!     Ok(())
//! }
//! ```

mod changes;
mod clock;
mod config;
mod cookie_policy;
mod data;
mod error;
mod expiry;
mod id;
mod record;
mod scan;
mod session;
mod store;
mod value;

pub use crate::clock::{
    from_unix_millis, to_unix_millis, truncate_to_millis, Clock, ManualClock, SystemClock,
};
pub use crate::config::{IdSource, SessionConfig};
pub use crate::cookie_policy::{
    CookieKeys, CookiePolicy, CookiePolicyBuilder, CookiePolicyError, SameSite,
};
pub use crate::data::Data;
pub use crate::error::{BoxError, Error, StoreError};
pub use crate::expiry::{CookieLifetime, Expiry};
pub use crate::id::{Id, StorageKey, ID_LEN};
pub use crate::record::Record;
pub use crate::session::{Commit, Session};
pub use crate::store::{CreateOutcome, SaveOutcome, Store, TouchOutcome};
/// A key for signed or encrypted cookies.
pub use cookie::Key;

/// Re-exported so that store crates and users name one version of it.
pub use async_trait::async_trait;
/// Re-exported for [`Record`] timestamps.
pub use time;
