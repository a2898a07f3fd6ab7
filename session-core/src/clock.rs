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
    // In 64 bits while the nanoseconds fit (some 292 years around 1970):
    // the 128-bit division is slower than everything else a store does
    // to encode a record.
    let nanos = at
        .unix_timestamp()
        .checked_mul(1_000_000_000)
        .and_then(|nanos| nanos.checked_add(i64::from(at.nanosecond())));
    if let Some(nanos) = nanos {
        return nanos / 1_000_000;
    }

    let millis = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// The time `millis` milliseconds after the Unix epoch, if representable.
#[must_use]
pub fn from_unix_millis(millis: i64) -> Option<OffsetDateTime> {
    // Whole seconds, then the rest: no 128-bit arithmetic (see above).
    let whole = OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000)).ok()?;
    let rest = u32::try_from(millis.rem_euclid(1000)).ok()? * 1_000_000;
    whole.replace_nanosecond(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_millis_agree_with_the_nanosecond_formulas() {
        let mut samples = vec![i64::MIN, i64::MAX, -1, 0, 1, 999, 1000, -999, -1000, -1001];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            // xorshift: spread over every magnitude.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x >> (x & 63).unsigned_abs());
        }

        for millis in samples {
            let slow = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000);
            assert_eq!(from_unix_millis(millis), slow.ok(), "{millis}");

            let Some(at) = from_unix_millis(millis) else {
                continue;
            };
            for extra in [0, 1, 499_999, 999_999] {
                let at = at + Duration::nanoseconds(extra);
                let exact = at.unix_timestamp_nanos() / 1_000_000;
                assert_eq!(i128::from(to_unix_millis(at)), exact, "{at}");
            }
        }
    }

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
