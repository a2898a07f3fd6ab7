//! Latency samples and the figures drawn from them.

use std::time::Duration;

/// Latencies of one kind of operation, and the wall time they took.
///
/// Samples from several tasks or rounds are merged; the throughput is the
/// number of operations over the summed wall time of the phases that ran
/// them, so concurrent tasks count once, not once per task.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    nanos: Vec<u64>,
    wall: Duration,
    failures: u64,
    first_failure: Option<String>,
}

/// What a set of [`Samples`] comes to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Operations that completed as expected.
    pub count: usize,
    /// Operations that failed or had an unexpected outcome.
    pub failures: u64,
    /// Operations per second of wall time.
    pub per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Mean latency.
    pub mean: Duration,
}

impl Samples {
    /// No samples yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one operation's latency.
    pub fn record(&mut self, latency: Duration) {
        self.nanos
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records an operation that failed; the first reason is kept.
    pub fn fail(&mut self, reason: impl FnOnce() -> String) {
        self.failures += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(reason());
        }
    }

    /// Adds the wall time of a phase whose operations were recorded here.
    pub fn add_wall(&mut self, wall: Duration) {
        self.wall += wall;
    }

    /// Takes in the samples of another task or round.
    pub fn merge(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
        self.wall += other.wall;
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    /// How many operations completed as expected.
    #[must_use]
    pub fn count(&self) -> usize {
        self.nanos.len()
    }

    /// Why the first failed operation failed, if one did.
    #[must_use]
    pub fn first_failure(&self) -> Option<&str> {
        self.first_failure.as_deref()
    }

    /// The throughput and latency figures.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut sorted = self.nanos.clone();
        sorted.sort_unstable();

        let total: u128 = sorted.iter().map(|&n| u128::from(n)).sum();
        let mean = match u128::try_from(sorted.len()) {
            Ok(len) if len > 0 => total / len,
            _ => 0,
        };
        let wall = self.wall.as_secs_f64();
        let per_second = if wall > 0.0 {
            sorted.len() as f64 / wall
        } else {
            0.0
        };

        Summary {
            count: sorted.len(),
            failures: self.failures,
            per_second,
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            mean: Duration::from_nanos(u64::try_from(mean).unwrap_or(u64::MAX)),
        }
    }
}

/// The nearest-rank percentile of sorted nanoseconds; zero when empty.
#[must_use]
pub fn percentile(sorted: &[u64], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank: the smallest value with at least pct% at or below it.
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Duration::from_nanos(sorted[index])
}

/// The median of some values; zero when there are none.
#[must_use]
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);

    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).collect();

        assert_eq!(percentile(&sorted, 50.0), Duration::from_nanos(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_nanos(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_nanos(100));
        assert_eq!(percentile(&[7], 99.0), Duration::from_nanos(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn throughput_counts_wall_time_once() {
        let mut a = Samples::new();
        let mut b = Samples::new();
        for _ in 0..50 {
            a.record(Duration::from_millis(1));
            b.record(Duration::from_millis(3));
        }
        a.add_wall(Duration::from_millis(500));

        a.merge(b);
        let summary = a.summary();

        assert_eq!(summary.count, 100);
        assert!((summary.per_second - 200.0).abs() < 1e-9);
        assert_eq!(summary.mean, Duration::from_millis(2));
        assert_eq!(summary.p50, Duration::from_millis(1));
        assert_eq!(summary.p99, Duration::from_millis(3));
    }

    #[test]
    fn failures_keep_the_first_reason() {
        let mut samples = Samples::new();

        samples.fail(|| "first".to_owned());
        samples.fail(|| "second".to_owned());

        assert_eq!(samples.summary().failures, 2);
        assert_eq!(samples.first_failure(), Some("first"));
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
