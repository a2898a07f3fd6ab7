//! The tower `Layer` that adds sessions to a service.

use std::sync::Arc;

use session_core::{CookiePolicy, Expiry, SessionConfig, Store};
use tower::Layer;

use crate::service::SessionService;

/// What every request of one layer shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Arc<SessionConfig>,
    pub(crate) cookie: CookiePolicy,
}

/// Adds a session to every request: reads the cookie, hands the handler a
/// [`Session`](session_core::Session) in the request extensions, and writes
/// the session and its cookie back when the handler is done.
///
/// The defaults are those of [`CookiePolicy::default`] and
/// [`SessionConfig::default`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl SessionLayer {
    /// A layer over `store` with the default cookie and expiry.
    pub fn new(store: impl Store) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A layer over a store that is already shared.
    pub fn from_arc(store: Arc<dyn Store>) -> Self {
        let shared = Shared {
            store,
            config: Arc::new(SessionConfig::default()),
            cookie: CookiePolicy::default(),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Sets the cookie policy (default: [`CookiePolicy::default`]).
    pub fn with_cookie(self, cookie: CookiePolicy) -> Self {
        self.rebuild(|shared| shared.cookie = cookie)
    }

    /// Sets the session settings (default: [`SessionConfig::default`]).
    pub fn with_config(self, config: SessionConfig) -> Self {
        self.rebuild(|shared| shared.config = Arc::new(config))
    }

    /// Sets just the expiry policy (default: [`Expiry::default`]).
    pub fn with_expiry(self, expiry: Expiry) -> Self {
        let config = SessionConfig::clone(&self.shared.config).with_expiry(expiry);
        self.with_config(config)
    }

    /// The cookie policy in force.
    #[must_use]
    pub fn cookie(&self) -> &CookiePolicy {
        &self.shared.cookie
    }

    fn rebuild(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            store: Arc::clone(&self.shared.store),
            config: Arc::clone(&self.shared.config),
            cookie: self.shared.cookie.clone(),
        };
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.shared))
    }
}
