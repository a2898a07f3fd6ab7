//! When a session dies: idle timeout, absolute lifetime, cookie lifetime.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// How the browser keeps the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieLifetime {
    /// The cookie carries `Max-Age` equal to the session's remaining life.
    Persistent,
    /// No `Max-Age`: the browser drops the cookie when it closes. The
    /// server-side expiry applies all the same.
    BrowserSession,
}

/// A session's expiry policy.
///
/// A session expires at `min(last activity + idle, created + absolute)`.
/// The defaults are a 24 hour idle timeout, a 30 day absolute lifetime and
/// a persistent cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "StoredExpiry", into = "StoredExpiry")]
pub struct Expiry {
    idle: Duration,
    absolute: Duration,
    cookie: CookieLifetime,
}

impl Default for Expiry {
    fn default() -> Self {
        Self {
            idle: Duration::hours(24),
            absolute: Duration::days(30),
            cookie: CookieLifetime::Persistent,
        }
    }
}

impl Expiry {
    /// A policy with the given idle timeout and absolute lifetime, and a
    /// persistent cookie.
    ///
    /// Durations under one millisecond are raised to one millisecond.
    #[must_use]
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self {
            idle: at_least_a_milli(idle),
            absolute: at_least_a_milli(absolute),
            cookie: CookieLifetime::Persistent,
        }
    }

    /// Sets the idle timeout (default 24 hours).
    #[must_use]
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = at_least_a_milli(idle);
        self
    }

    /// Sets the absolute lifetime (default 30 days).
    #[must_use]
    pub fn with_absolute(mut self, absolute: Duration) -> Self {
        self.absolute = at_least_a_milli(absolute);
        self
    }

    /// Sets how the browser keeps the cookie (default persistent).
    #[must_use]
    pub fn with_cookie(mut self, cookie: CookieLifetime) -> Self {
        self.cookie = cookie;
        self
    }

    /// The idle timeout.
    #[must_use]
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// The absolute lifetime.
    #[must_use]
    pub fn absolute(&self) -> Duration {
        self.absolute
    }

    /// How the browser keeps the cookie.
    #[must_use]
    pub fn cookie(&self) -> CookieLifetime {
        self.cookie
    }

    /// The moment a session created at `created_at` dies however busy.
    #[must_use]
    pub fn deadline(&self, created_at: OffsetDateTime) -> OffsetDateTime {
        created_at.saturating_add(self.absolute)
    }

    /// When a session is to expire if it is active at `now`.
    #[must_use]
    pub fn expires_at(&self, created_at: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        now.saturating_add(self.idle).min(self.deadline(created_at))
    }
}

fn at_least_a_milli(duration: Duration) -> Duration {
    duration.max(Duration::milliseconds(1))
}

/// The stored form of an [`Expiry`]: whole milliseconds, stable field names.
#[derive(Serialize, Deserialize)]
struct StoredExpiry {
    idle_ms: i64,
    absolute_ms: i64,
    cookie: CookieLifetime,
}

impl From<Expiry> for StoredExpiry {
    fn from(expiry: Expiry) -> Self {
        Self {
            idle_ms: millis(expiry.idle),
            absolute_ms: millis(expiry.absolute),
            cookie: expiry.cookie,
        }
    }
}

impl TryFrom<StoredExpiry> for Expiry {
    type Error = &'static str;

    fn try_from(stored: StoredExpiry) -> Result<Self, Self::Error> {
        if stored.idle_ms <= 0 || stored.absolute_ms <= 0 {
            return Err("expiry durations must be positive");
        }

        let expiry = Self::new(
            Duration::milliseconds(stored.idle_ms),
            Duration::milliseconds(stored.absolute_ms),
        );
        Ok(expiry.with_cookie(stored.cookie))
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.whole_milliseconds()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_the_earlier_of_idle_and_absolute() {
        let expiry = Expiry::new(Duration::minutes(10), Duration::hours(1));
        let created = OffsetDateTime::UNIX_EPOCH;

        let early = expiry.expires_at(created, created + Duration::minutes(5));
        let late = expiry.expires_at(created, created + Duration::minutes(55));

        assert_eq!(early, created + Duration::minutes(15));
        assert_eq!(late, created + Duration::hours(1));
    }

    #[test]
    fn stored_form_round_trips_and_rejects_nonsense() {
        let expiry = Expiry::default().with_cookie(CookieLifetime::BrowserSession);

        let json = serde_json::to_string(&expiry).expect("serializes");
        let back: Expiry = serde_json::from_str(&json).expect("deserializes");

        assert_eq!(back, expiry);
        let bad = r#"{"idle_ms":0,"absolute_ms":5,"cookie":"persistent"}"#;
        assert!(serde_json::from_str::<Expiry>(bad).is_err());
    }
}
