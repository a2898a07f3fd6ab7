//! Settings shared by every session of one layer.

use std::fmt;
use std::sync::Arc;

use time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::expiry::Expiry;
use crate::id::Id;

/// Where new session ids come from.
pub type IdSource = Arc<dyn Fn() -> Id + Send + Sync>;

/// Settings for the sessions of one application.
///
/// Built with consuming `with_*` setters; each setter states its default.
#[derive(Clone)]
#[must_use]
pub struct SessionConfig {
    expiry: Expiry,
    touch_after: Option<Duration>,
    clock: Arc<dyn Clock>,
    id_source: IdSource,
    max_save_attempts: u32,
    store_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            expiry: Expiry::default(),
            touch_after: None,
            clock: Arc::new(SystemClock),
            id_source: Arc::new(Id::random),
            max_save_attempts: 16,
            store_timeout: Duration::seconds(5),
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("expiry", &self.expiry)
            .field("touch_after", &self.touch_after())
            .field("clock", &self.clock)
            .field("max_save_attempts", &self.max_save_attempts)
            .field("store_timeout", &self.store_timeout)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// The defaults: see each setter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the expiry policy (default: [`Expiry::default`]).
    pub fn with_expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// How far a read-only request must be able to push the expiry before
    /// it writes a touch (default: a quarter of the idle timeout).
    ///
    /// A larger value means fewer store writes and a session that may end
    /// up to this much earlier than a full idle timeout after its last use.
    pub fn with_touch_after(mut self, touch_after: Duration) -> Self {
        self.touch_after = Some(touch_after.max(Duration::ZERO));
        self
    }

    /// Sets the clock (default: the system clock). Tests use
    /// [`ManualClock`](crate::ManualClock).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets where new ids come from (default: [`Id::random`]).
    ///
    /// # Warning
    ///
    /// Anything but the OS random source makes ids guessable; this exists
    /// for tests of collision handling.
    pub fn with_id_source(mut self, source: impl Fn() -> Id + Send + Sync + 'static) -> Self {
        self.id_source = Arc::new(source);
        self
    }

    /// How many times one request tries to save when concurrent requests
    /// keep saving in between (default 16).
    pub fn with_max_save_attempts(mut self, attempts: u32) -> Self {
        self.max_save_attempts = attempts.max(1);
        self
    }

    /// Time allowed for each store call before it fails (default 5 s).
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout.max(Duration::milliseconds(1));
        self
    }

    /// The expiry policy.
    #[must_use]
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// The touch threshold, for a session with `expiry` as its policy.
    #[must_use]
    pub fn touch_after_for(&self, expiry: &Expiry) -> Duration {
        self.touch_after.unwrap_or(expiry.idle() / 4)
    }

    /// The touch threshold of the default policy.
    #[must_use]
    pub fn touch_after(&self) -> Duration {
        self.touch_after_for(&self.expiry)
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// A new session id from the configured source.
    #[must_use]
    pub fn new_id(&self) -> Id {
        (self.id_source)()
    }

    /// The save attempt limit.
    #[must_use]
    pub fn max_save_attempts(&self) -> u32 {
        self.max_save_attempts
    }

    /// The per-call store timeout.
    #[must_use]
    pub fn store_timeout(&self) -> Duration {
        self.store_timeout
    }
}
