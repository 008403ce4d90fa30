//! [`LatencyHistogram`]: an HDR histogram of nanosecond latencies with three
//! significant digits, growing to fit, mergeable exactly. Count, sum (so the
//! mean), minimum and maximum are kept exactly beside it, and percentiles
//! never lie outside the exact range.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Nanosecond latencies, 3 significant digits.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            histogram: Histogram::new(3).expect("3 significant digits is a valid precision"),
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

/// The figures reports show for a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Recorded values.
    pub count: u64,
    /// Mean, ns (rounded).
    pub mean_ns: u64,
    /// Smallest, ns.
    pub min_ns: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 90th percentile, ns.
    pub p90_ns: u64,
    /// 95th percentile, ns.
    pub p95_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Largest, ns.
    pub max_ns: u64,
}

impl LatencyHistogram {
    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        // Grows to fit; only values beyond what any histogram can track
        // (more than 2^63 ns) are clamped to its top.
        if self.histogram.record(ns).is_err() {
            self.histogram.saturating_record(ns);
        }
        self.sum += ns as u128;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.histogram.add(&other.histogram).expect("auto-resizing histograms of equal precision always merge");
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values at most `ns` (for cumulative `le` buckets; within the
    /// histogram's precision at the boundary).
    pub fn count_at_most(&self, ns: u64) -> u64 {
        if self.histogram.is_empty() || ns < self.min {
            return 0;
        }
        if ns >= self.max {
            return self.count();
        }
        self.histogram.count_between(0, ns)
    }

    /// Exact sum of the values, ns.
    pub fn sum_ns(&self) -> u128 {
        self.sum
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value at quantile `q` (0..=1), ns: within 0.1% of the exact
    /// order statistic and never outside the recorded range.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.histogram.is_empty() {
            return 0;
        }
        self.histogram.value_at_quantile(q).clamp(self.min, self.max)
    }

    /// Count, mean and percentiles.
    pub fn summary(&self) -> LatencySummary {
        let count = self.count();
        if count == 0 {
            return LatencySummary::default();
        }
        LatencySummary {
            count,
            mean_ns: ((self.sum + count as u128 / 2) / count as u128) as u64,
            min_ns: self.min,
            p50_ns: self.quantile(0.5),
            p90_ns: self.quantile(0.9),
            p95_ns: self.quantile(0.95),
            p99_ns: self.quantile(0.99),
            p999_ns: self.quantile(0.999),
            max_ns: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_three_digits() {
        let mut h = LatencyHistogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1_000);
        }
        let s = h.summary();
        assert_eq!(s.count, 100_000);
        for (got, exact) in [(s.p50_ns, 50_000_000), (s.p99_ns, 99_000_000), (s.p999_ns, 99_900_000)] {
            let err = (got as f64 - exact as f64).abs() / exact as f64;
            assert!(err <= 0.001, "{got} vs {exact}");
        }
        assert_eq!((s.min_ns, s.max_ns, s.mean_ns), (1_000, 100_000_000, 50_000_500), "exact");
        let mut one = LatencyHistogram::default();
        one.record(46_000_000);
        assert_eq!(one.summary().p99_ns, 46_000_000, "a lone value reads back exactly");
    }

    #[test]
    fn merging_equals_recording_together() {
        let (mut a, mut b, mut all) =
            (LatencyHistogram::default(), LatencyHistogram::default(), LatencyHistogram::default());
        for v in [0u64, 5, 1_000, 3_000_000, 7_000_000_000] {
            a.record(v);
            all.record(v);
        }
        for v in [12u64, 40_000, 9_000_000_000_000] {
            b.record(v);
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a.summary(), all.summary());
        assert_eq!(LatencyHistogram::default().summary(), LatencySummary::default());
    }
}
