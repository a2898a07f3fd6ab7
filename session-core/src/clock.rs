//! Where the session logic gets the time, so tests can move it.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

/// A source of the current time in UTC.
///
/// The layer and the stores' tests ask a clock instead of the system, so an
/// expiry test advances a [`ManualClock`] rather than sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time, UTC, truncated to milliseconds.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate_to_millis(OffsetDateTime::now_utc())
    }
}

/// A clock that moves only when told to; clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock standing at `start` (truncated to milliseconds).
    #[must_use]
    pub fn new(start: OffsetDateTime) -> Self {
        let start = truncate_to_millis(start);
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock standing at the current system time.
    #[must_use]
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = truncate_to_millis(*now + by);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = truncate_to_millis(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops sub-millisecond precision and moves the time to UTC.
///
/// Records keep millisecond precision so that every store, whatever its
/// native resolution, reads back exactly what was written.
#[must_use]
pub fn truncate_to_millis(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    let nanos = at.nanosecond();
    at - Duration::nanoseconds(i64::from(nanos % 1_000_000))
}

/// Milliseconds since the Unix epoch, the form most stores keep.
#[must_use]
pub fn to_unix_millis(at: OffsetDateTime) -> i64 {
    let millis = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// The time `millis` milliseconds after the Unix epoch, if representable.
#[must_use]
pub fn from_unix_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH);
        let shared = clock.clone();

        shared.advance(Duration::seconds(10));

        assert_eq!(
            clock.now(),
            OffsetDateTime::UNIX_EPOCH + Duration::seconds(10)
        );
    }

    #[test]
    fn millis_round_trip_and_truncate() {
        let at = OffsetDateTime::UNIX_EPOCH + Duration::nanoseconds(1_234_567_891);

        let truncated = truncate_to_millis(at);

        assert_eq!(to_unix_millis(truncated), 1_234);
        assert_eq!(from_unix_millis(1_234), Some(truncated));
        assert_eq!(from_unix_millis(i64::MAX), None);
    }
}
