//! [`LatencyHistogram`]: an HDR histogram of nanosecond latencies with three
//! significant digits, growing to fit, mergeable exactly. Count, sum (so the
//! mean), minimum and maximum are kept exactly beside it, and percentiles
//! never lie outside the exact range.
//!
//! Recording is batched: values wait in a short buffer and go into the
//! counts sorted, a batch at a time. A histogram's counts span hundreds of
//! cache lines and a receiver records into thousands of histograms, so one
//! value at a time is mostly a cache miss; a sorted batch walks the counts
//! in order instead. Readers see the buffered values too (nothing is
//! approximate).

use hdrhistogram::Histogram;
use serde::Serialize;

/// Nanosecond latencies, 3 significant digits.
///
/// A histogram that will not be recorded into for a while (a closed time
/// bucket of the receiver) can be [compacted](LatencyHistogram::compact) to
/// a few bytes per occupied bucket; it expands again, losslessly, when it is
/// recorded into or merged into.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    counts: Counts,
    /// Values recorded but not yet in `counts` (fewer than `BATCH`).
    pending: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

#[derive(Clone, Debug)]
enum Counts {
    Dense(Histogram<u64>),
    /// LEB128 pairs: (bucket value minus the previous one, count), in
    /// increasing bucket order. A bucket value is the highest value
    /// equivalent to the bucket, so recording it lands in the same bucket.
    Sparse(Box<[u8]>),
}

/// Values buffered before they go into the counts together.
const BATCH: usize = 256;

fn new_dense() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: Counts::Dense(new_dense()),
            pending: Vec::new(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One LEB128 value at `pos` (None: cut short or longer than 64 bits).
fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes the pairs written by [`LatencyHistogram::compact`]; the bytes
/// never leave the process, so a malformed tail simply ends the walk.
fn sparse_pairs(bytes: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut pos = 0;
    let mut value = 0u64;
    let mut next = move || {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *bytes.get(pos)?;
            pos += 1;
            v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            shift += 7;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
    };
    std::iter::from_fn(move || {
        let delta = next()?;
        let count = next()?;
        value = value.wrapping_add(delta);
        Some((value, count))
    })
}

fn record_n(h: &mut Histogram<u64>, value: u64, count: u64) {
    if h.record_n(value, count).is_err() {
        h.saturating_record_n(value, count);
    }
}

/// Records sorted (or any) values, runs of equal ones as one count.
fn record_all(h: &mut Histogram<u64>, values: &[u64]) {
    let mut rest = values;
    while let Some(&v) = rest.first() {
        let run = rest.iter().take_while(|&&x| x == v).count();
        record_n(h, v, run as u64);
        rest = &rest[run..];
    }
}

fn expand(bytes: &[u8]) -> Histogram<u64> {
    let mut h = new_dense();
    for (value, count) in sparse_pairs(bytes) {
        record_n(&mut h, value, count);
    }
    h
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
    fn dense_mut(&mut self) -> &mut Histogram<u64> {
        if let Counts::Sparse(bytes) = &self.counts {
            self.counts = Counts::Dense(expand(bytes));
        }
        match &mut self.counts {
            Counts::Dense(h) => h,
            Counts::Sparse(_) => unreachable!("expanded above"),
        }
    }

    /// Runs `f` on the dense counts with every value in them (on a copy
    /// when values are buffered or the counts are compacted).
    fn with_dense<T>(&self, f: impl FnOnce(&Histogram<u64>) -> T) -> T {
        match &self.counts {
            Counts::Dense(h) if self.pending.is_empty() => f(h),
            Counts::Dense(h) => {
                let mut copy = h.clone();
                record_all(&mut copy, &self.pending);
                f(&copy)
            }
            Counts::Sparse(bytes) => {
                let mut copy = expand(bytes);
                record_all(&mut copy, &self.pending);
                f(&copy)
            }
        }
    }

    /// Moves the buffered values into the counts.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        record_all(self.dense_mut(), &pending);
        pending.clear();
        self.pending = pending;
    }

    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        // Grows to fit; only values beyond what any histogram can track
        // (more than 2^63 ns) are clamped to its top.
        self.pending.push(ns);
        if self.pending.len() >= BATCH {
            self.flush();
        }
        self.count += 1;
        self.sum += ns as u128;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.count == 0 {
            return;
        }
        self.flush();
        let dense = self.dense_mut();
        record_all(dense, &other.pending);
        match &other.counts {
            Counts::Dense(h) => {
                dense.add(h).expect("auto-resizing histograms of equal precision always merge");
            }
            Counts::Sparse(bytes) => {
                for (value, count) in sparse_pairs(bytes) {
                    record_n(dense, value, count);
                }
            }
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Shrinks the counts to a few bytes per occupied bucket. Nothing is
    /// lost: recording or merging into it expands it again, and every
    /// figure reads the same.
    pub fn compact(&mut self) {
        self.flush();
        self.pending = Vec::new();
        if let Counts::Dense(h) = &self.counts {
            let mut out = Vec::new();
            let mut previous = 0u64;
            for v in h.iter_recorded() {
                let value = v.value_iterated_to();
                put_varint(&mut out, value - previous);
                put_varint(&mut out, v.count_at_value());
                previous = value;
            }
            self.counts = Counts::Sparse(out.into_boxed_slice());
        }
    }

    /// The histogram as a portable message: its exact count, sum, minimum
    /// and maximum, and its bucket counts in the compact form.
    pub fn to_portable(&self) -> super::portable::pb::Histogram {
        let mut compact = self.clone();
        compact.compact();
        let buckets = match compact.counts {
            Counts::Sparse(bytes) => bytes.into_vec(),
            Counts::Dense(_) => unreachable!("compact() leaves sparse counts"),
        };
        super::portable::pb::Histogram {
            count: self.count,
            sum: super::portable::u128_out(self.sum),
            min: self.min,
            max: self.max,
            buckets,
        }
    }

    /// A histogram from a portable message, checked: the bucket pairs
    /// decode to the end, in increasing order, their counts add up to the
    /// count, and no bucket lies above the maximum.
    pub fn from_portable(message: &super::portable::pb::Histogram) -> Result<LatencyHistogram, String> {
        let bytes = &message.buckets;
        let (mut pos, mut value, mut total) = (0usize, 0u64, 0u64);
        // The bucket arithmetic of a dense histogram, made once per thread:
        // a new one per message zeroed its counts each time (restoring a
        // checkpoint decodes thousands of histograms).
        thread_local! {
            static PROBE: Histogram<u64> = new_dense();
        }
        while pos < bytes.len() {
            let delta = read_varint(bytes, &mut pos).ok_or("a bucket pair is cut short")?;
            let count = read_varint(bytes, &mut pos).ok_or("a bucket pair is cut short")?;
            value = value.checked_add(delta).ok_or("bucket values overflow")?;
            if count == 0 || (total > 0 && delta == 0) {
                return Err(format!("bucket {value} is empty or repeated"));
            }
            if PROBE.with(|probe| probe.lowest_equivalent(value)) > message.max {
                return Err(format!("bucket {value} lies above max {}", message.max));
            }
            total = total.checked_add(count).ok_or("bucket counts overflow")?;
        }
        if total != message.count {
            return Err(format!("bucket counts add up to {total}, not the count {}", message.count));
        }
        let sum = super::portable::u128_in(message.sum);
        if message.count == 0 {
            if sum != 0 {
                return Err("an empty histogram with a sum".to_string());
            }
            return Ok(LatencyHistogram::default());
        }
        if message.min > message.max {
            return Err(format!("min {} is above max {}", message.min, message.max));
        }
        Ok(LatencyHistogram {
            counts: Counts::Sparse(bytes.clone().into_boxed_slice()),
            pending: Vec::new(),
            count: message.count,
            sum,
            min: message.min,
            max: message.max,
        })
    }

    /// Bytes the counts take on the heap (approximately).
    pub fn heap_bytes(&self) -> usize {
        let pending = self.pending.capacity() * std::mem::size_of::<u64>();
        pending
            + match &self.counts {
                Counts::Dense(h) => h.distinct_values() * std::mem::size_of::<u64>(),
                Counts::Sparse(bytes) => bytes.len(),
            }
    }

    /// Values at most `ns` (for cumulative `le` buckets; within the
    /// histogram's precision at the boundary).
    pub fn count_at_most(&self, ns: u64) -> u64 {
        if self.count == 0 || ns < self.min {
            return 0;
        }
        if ns >= self.max {
            return self.count();
        }
        match &self.counts {
            // Buffered values without copying the counts: a value is at
            // most `ns` here when its bucket is at most `ns`'s bucket.
            Counts::Dense(h) if !self.pending.is_empty() => {
                let bucket = h.lowest_equivalent(ns);
                let buffered = self.pending.iter().filter(|&&v| h.lowest_equivalent(v) <= bucket).count();
                h.count_between(0, ns) + buffered as u64
            }
            _ => self.with_dense(|h| h.count_between(0, ns)),
        }
    }

    /// Exact sum of the values, ns.
    pub fn sum_ns(&self) -> u128 {
        self.sum
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0..=1), ns: within 0.1% of the exact
    /// order statistic and never outside the recorded range.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        self.quantiles([q])[0]
    }

    /// The values at several quantiles (one pass over buffered values).
    pub fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        if self.count == 0 {
            return [0; N];
        }
        self.with_dense(|h| qs.map(|q| h.value_at_quantile(q).clamp(self.min, self.max)))
    }

    /// The counts in logarithmic bins of `per_decade` bins per power of
    /// ten, for plots: `(bin, count)` for every non-empty bin, bin `b`
    /// holding values in `[10^(b/per_decade), 10^((b+1)/per_decade))` ns
    /// (0 ns counts in bin 0). Each 3-digit HDR bucket goes whole into the
    /// bin of its highest value, so a bin edge is off by at most 0.1%.
    pub fn log_bins(&self, per_decade: u32) -> Vec<(u32, u64)> {
        if self.count == 0 {
            return Vec::new();
        }
        let per_decade = f64::from(per_decade.max(1));
        self.with_dense(|h| {
            let mut bins: Vec<(u32, u64)> = Vec::new();
            for v in h.iter_recorded() {
                let value = h.highest_equivalent(v.value_iterated_to()).clamp(self.min, self.max).max(1);
                let bin = ((value as f64).log10() * per_decade + 1e-9).floor() as u32;
                match bins.last_mut() {
                    Some((b, c)) if *b == bin => *c += v.count_at_value(),
                    _ => bins.push((bin, v.count_at_value())),
                }
            }
            bins
        })
    }

    /// Count, mean and percentiles.
    pub fn summary(&self) -> LatencySummary {
        let count = self.count();
        if count == 0 {
            return LatencySummary::default();
        }
        let [p50_ns, p90_ns, p95_ns, p99_ns, p999_ns] = self.quantiles([0.5, 0.9, 0.95, 0.99, 0.999]);
        LatencySummary {
            count,
            mean_ns: ((self.sum + count as u128 / 2) / count as u128) as u64,
            min_ns: self.min,
            p50_ns,
            p90_ns,
            p95_ns,
            p99_ns,
            p999_ns,
            max_ns: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_bins_hold_every_value_in_its_decade() {
        let mut h = LatencyHistogram::default();
        for v in [1u64, 5, 10, 99, 100, 1_000, 1_000_000, 1_000_000, 3_500_000] {
            h.record(v);
        }
        let bins = h.log_bins(10);
        assert_eq!(bins.iter().map(|b| b.1).sum::<u64>(), 9);
        // 1 -> 0; 5 -> 6 (log10 5 = 0.699); 10 -> 10; 99 -> 19; 100 -> 20;
        // 1000 -> 30; 1e6 twice -> 60; 3.5e6 -> 65 (6.544).
        assert_eq!(bins, vec![(0, 1), (6, 1), (10, 1), (19, 1), (20, 1), (30, 1), (60, 2), (65, 1)]);
        assert!(LatencyHistogram::default().log_bins(10).is_empty());
    }

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

    #[test]
    fn buffered_values_read_as_if_recorded() {
        let mut x = 99u64;
        for n in [1usize, 7, BATCH - 1, BATCH, BATCH + 5, 10 * BATCH + 3] {
            let mut buffered = LatencyHistogram::default();
            for _ in 0..n {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                buffered.record(500 + (x >> 30) % 5_000_000_000);
            }
            let mut flushed = buffered.clone();
            flushed.flush();
            assert!(flushed.pending.is_empty() && (n % BATCH == 0 || !buffered.pending.is_empty()));
            assert_eq!(buffered.summary(), flushed.summary());
            for ns in [0, 499, 500, 1_000, 123_456, 1_000_000, 77_777_777, 999_999_999, 5_000_000_500, u64::MAX] {
                assert_eq!(buffered.count_at_most(ns), flushed.count_at_most(ns), "{n} values, at most {ns}");
            }
            let mut merged = LatencyHistogram::default();
            merged.merge(&buffered);
            merged.merge(&buffered);
            let mut twice = flushed.clone();
            twice.merge(&flushed);
            assert_eq!(merged.summary(), twice.summary());
        }
    }

    #[test]
    fn compacting_loses_nothing() {
        let mut h = LatencyHistogram::default();
        let mut x = 12_345u64;
        for _ in 0..50_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            h.record(1_000 + (x >> 33) % 2_000_000_000);
        }
        h.record(u64::MAX);
        let before = h.summary();
        let dense_bytes = h.heap_bytes();
        let (mut merged_dense, mut merged_sparse) = (LatencyHistogram::default(), LatencyHistogram::default());
        merged_dense.merge(&h);
        h.compact();
        assert!(h.heap_bytes() * 4 < dense_bytes, "{} vs {dense_bytes}", h.heap_bytes());
        assert_eq!(h.summary(), before);
        assert_eq!(h.count_at_most(1_000_000), merged_dense.count_at_most(1_000_000));
        merged_sparse.merge(&h);
        assert_eq!(merged_sparse.summary(), merged_dense.summary());
        h.record(5);
        assert_eq!(h.count(), before.count + 1);
        assert_eq!(h.summary().min_ns, 5);
        let mut empty = LatencyHistogram::default();
        empty.compact();
        assert_eq!(empty.summary(), LatencySummary::default());
        merged_sparse.merge(&empty);
        assert_eq!(merged_sparse.summary(), merged_dense.summary());
    }
}
