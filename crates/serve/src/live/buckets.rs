//! Time buckets of live analysis: the service graph, span metrics and
//! bottlenecks of the traces that started in each bucket (default one
//! minute), kept for the retention period and merged into any requested
//! range. Buckets whose traces are done arriving are sealed: their
//! histograms are compacted to a few bytes per occupied bucket, and they are
//! added once to a running total (which `/metrics` exposes as counters, so
//! it never goes down when old buckets expire).
//!
//! Buckets older than an hour are rolled up into hour buckets (a query that
//! reaches back further is answered to the hour there): a sealed minute of
//! a busy system takes about a megabyte, an hour of them rolled up not much
//! more, since the histograms of a steady service fill the same buckets.
//!
//! A trace belongs to the bucket of its earliest span's start time. A trace
//! whose time lies outside the kept window (older than the retention, or
//! more than one bucket ahead of this machine's clock) goes to the bucket
//! of its arrival instead and is counted as out of window.
//!
//! Producers and consumers of messages are paired across traces within a
//! bucket (and, in a query, across the buckets it merges until the oldest
//! is sealed); a consumer whose producer lies in a sealed earlier bucket is
//! shown calling from a messaging node.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracelens_core::analysis::TraceAnalyses as Analyses;
use tracelens_core::model::{Dictionary, Trace};

/// Exact per-trace values kept per bottleneck key and bucket before its
/// percentiles move to a histogram.
pub const BOTTLENECK_VALUES_PER_KEY: usize = 64;

/// Seals a bucket's analyses: producers and consumers still unpaired are
/// shown with their messaging nodes, histograms shrink.
fn seal(analyses: &mut Analyses) {
    analyses.finish();
    analyses.compact();
}

/// Bucket settings.
#[derive(Clone, Copy, Debug)]
pub struct BucketConfig {
    /// Bucket width, ms.
    pub bucket_ms: u64,
    /// Buckets ending longer ago than this are dropped, ms.
    pub retention_ms: u64,
    /// A bucket is sealed this long after its end (traces still arriving
    /// and waiting for their idle timeout), ms.
    pub seal_after_ms: u64,
    /// Sealed buckets ending longer ago than this are rolled up into
    /// buckets of `coarse_ms`, ms.
    pub fine_ms: u64,
    /// Width of the rolled-up buckets (a multiple of `bucket_ms`), ms.
    pub coarse_ms: u64,
    /// Distinct operation names kept per service.
    pub max_operations: usize,
}

impl BucketConfig {
    /// The bucket of a trace starting at `start_ms`, at clock time
    /// `now_ms`, and whether that start lies in the kept window (if not,
    /// the trace goes to the bucket of `now_ms`).
    pub fn bucket_of(&self, start_ms: u64, now_ms: u64) -> (u64, bool) {
        let width = self.bucket_ms.max(1);
        let oldest = now_ms.saturating_sub(self.retention_ms);
        let in_window = start_ms >= oldest && start_ms <= now_ms.saturating_add(width);
        let time = if in_window { start_ms } else { now_ms };
        (time - time % width, in_window)
    }
}

/// A trace's start: its earliest span's, unix ms.
pub fn trace_start_ms(trace: &Trace) -> u64 {
    trace.spans.iter().map(|s| s.start_ns).min().unwrap_or(0) / 1_000_000
}

struct Bucket {
    /// Shared with queries in flight, which merge outside the live lock.
    analyses: Arc<Analyses>,
    sealed: bool,
    /// Traces that arrived after the bucket was sealed, folded in (and
    /// into the total) on the next tick.
    late: Option<Arc<Analyses>>,
}

/// A closed-open time range in unix milliseconds; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// From (inclusive).
    pub since_ms: Option<u64>,
    /// To (exclusive).
    pub until_ms: Option<u64>,
}

/// Why a query's time range does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// `since` or `until` is not a time.
    #[error(
        "{bound}: {text:?} is not a time: give RFC 3339 (2026-11-28T10:00:00Z), a unix time (seconds or milliseconds), now, or an age such as 15m, now-2h or 1d"
    )]
    NotATime {
        /// `since` or `until`.
        bound: &'static str,
        /// What was given.
        text: String,
    },
    /// `since` is not before `until`.
    #[error("since ({since_ms} ms) is not before until ({until_ms} ms)")]
    Empty {
        /// From, unix ms.
        since_ms: u64,
        /// To, unix ms.
        until_ms: u64,
    },
}

impl Range {
    /// Reads `since` and `until` as query parameters give them: RFC 3339
    /// (`2026-11-28T10:00:00Z`), unix seconds (`1795860000`, fractions
    /// allowed), `now`, or a time before `now_ms` (`15m`, `now-15m`, `2h`,
    /// `1d`, `90s`, `500ms`).
    pub fn parse(since: Option<&str>, until: Option<&str>, now_ms: u64) -> Result<Range, RangeError> {
        let time = |bound, text: Option<&str>| {
            text.map(|t| query_time(t, now_ms).ok_or_else(|| RangeError::NotATime { bound, text: t.to_string() }))
                .transpose()
        };
        let range = Range { since_ms: time("since", since)?, until_ms: time("until", until)? };
        if let (Some(since_ms), Some(until_ms)) = (range.since_ms, range.until_ms)
            && since_ms >= until_ms
        {
            return Err(RangeError::Empty { since_ms, until_ms });
        }
        Ok(range)
    }
}

/// One time of [`Range::parse`] (the form every time parameter of the API
/// takes), unix ms.
pub(crate) fn query_time(text: &str, now_ms: u64) -> Option<u64> {
    let t = text.trim();
    if t == "now" {
        return Some(now_ms);
    }
    if let Some(ns) = tracelens_core::model::time::parse_time(t) {
        return Some(ns / 1_000_000);
    }
    let ago = t.strip_prefix("now-").unwrap_or(t);
    match tracelens_core::model::time::parse_duration(ago) {
        Some(ns) if !ago.is_empty() => Some(now_ms.saturating_sub(ns / 1_000_000)),
        _ => None,
    }
}

/// Buckets picked for a query.
pub struct Selection {
    empty: Arc<Analyses>,
    parts: Vec<Arc<Analyses>>,
}

impl Selection {
    /// The picked buckets merged, graph finished (producers and consumers
    /// paired across them, the rest shown with their messaging nodes).
    pub fn merge(self) -> Analyses {
        let mut out = Analyses::clone(&self.empty);
        for part in &self.parts {
            out.merge(part);
        }
        out.graph.finish();
        out
    }

    /// Buckets picked.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// No bucket picked.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Counters of the bucket store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketCounters {
    /// Traces put in their arrival bucket because their own time was
    /// outside the kept window.
    pub out_of_window: u64,
    /// Traces that arrived for a bucket already sealed.
    pub late: u64,
    /// Buckets dropped by retention.
    pub expired: u64,
}

/// One time bucket as a checkpoint keeps it.
#[derive(Clone, Debug)]
pub struct FineBucket {
    /// Start, unix ms.
    pub start_ms: u64,
    /// Whether its traces are done arriving.
    pub sealed: bool,
    /// Its traces' analyses.
    pub analyses: Arc<Analyses>,
    /// Traces that came after it was sealed, not folded in yet.
    pub late: Option<Arc<Analyses>>,
}

/// A rolled-up bucket as a checkpoint keeps it.
#[derive(Clone, Debug)]
pub struct CoarseBucket {
    /// Start, unix ms.
    pub start_ms: u64,
    /// Its analyses.
    pub analyses: Arc<Analyses>,
    /// The end of the last fine bucket rolled in, unix ms.
    pub end_ms: u64,
}

/// Everything the buckets hold, shared (cheap to take under the live
/// lock): what a checkpoint writes and reads back.
#[derive(Clone, Debug)]
pub struct BucketState {
    /// The buckets, oldest first.
    pub fine: Vec<FineBucket>,
    /// The rolled-up buckets, oldest first.
    pub coarse: Vec<CoarseBucket>,
    /// Every sealed bucket ever, merged.
    pub sealed_total: Analyses,
    /// Counters.
    pub counters: BucketCounters,
}

/// Per-bucket analyses over the retention period.
pub struct TimeBuckets {
    config: BucketConfig,
    empty: Arc<Analyses>,
    buckets: BTreeMap<u64, Bucket>,
    /// Rolled-up buckets, sealed, by start: the analyses and the end of
    /// the last fine bucket rolled in.
    coarse: BTreeMap<u64, (Arc<Analyses>, u64)>,
    /// Every sealed bucket ever, merged (expired ones included).
    sealed_total: Analyses,
    /// While traces are restored from storage: the latest start among them.
    restoring: Option<u64>,
    /// Counters.
    pub counters: BucketCounters,
}

impl TimeBuckets {
    /// No buckets yet.
    pub fn new(config: BucketConfig, dict: &Dictionary) -> TimeBuckets {
        let bucket_ms = config.bucket_ms.max(1);
        let coarse_ms = config.coarse_ms.max(bucket_ms).div_ceil(bucket_ms) * bucket_ms;
        let config = BucketConfig { bucket_ms, coarse_ms, ..config };
        let empty = Analyses::new(dict, config.max_operations).with_bottleneck_value_cap(BOTTLENECK_VALUES_PER_KEY);
        TimeBuckets {
            config,
            sealed_total: empty.clone(),
            empty: Arc::new(empty),
            buckets: BTreeMap::new(),
            coarse: BTreeMap::new(),
            restoring: None,
            counters: Default::default(),
        }
    }

    /// The bucket width, ms.
    pub fn bucket_ms(&self) -> u64 {
        self.config.bucket_ms
    }

    /// The settings, as normalised.
    pub fn config(&self) -> &BucketConfig {
        &self.config
    }

    /// Empty analyses shaped as the buckets' are (operation and value caps).
    pub fn empty(&self) -> &Analyses {
        &self.empty
    }

    /// Everything held, for a checkpoint.
    pub fn state(&self) -> BucketState {
        BucketState {
            fine: self
                .buckets
                .iter()
                .map(|(&start_ms, b)| FineBucket {
                    start_ms,
                    sealed: b.sealed,
                    analyses: b.analyses.clone(),
                    late: b.late.clone(),
                })
                .collect(),
            coarse: self
                .coarse
                .iter()
                .map(|(&start_ms, (analyses, end_ms))| CoarseBucket {
                    start_ms,
                    analyses: analyses.clone(),
                    end_ms: *end_ms,
                })
                .collect(),
            sealed_total: self.sealed_total.clone(),
            counters: self.counters,
        }
    }

    /// Replaces everything held with `state` (read from a checkpoint).
    pub fn set_state(&mut self, state: BucketState) {
        self.buckets = state
            .fine
            .into_iter()
            .map(|b| (b.start_ms, Bucket { analyses: b.analyses, sealed: b.sealed, late: b.late }))
            .collect();
        self.coarse = state.coarse.into_iter().map(|b| (b.start_ms, (b.analyses, b.end_ms))).collect();
        self.sealed_total = state.sealed_total;
        self.counters = state.counters;
    }

    /// Adds a completed trace at clock time `now_ms`.
    pub fn add_trace(&mut self, trace: &Trace, now_ms: u64) {
        self.add(trace, now_ms, true);
    }

    /// Starts a restore of traces from storage: until [`Self::end_restore`]
    /// only the buckets the restored traces have passed are sealed, so that
    /// the restore's traces are not folded in as late ones, bucket by
    /// bucket and tick by tick.
    pub fn begin_restore(&mut self) {
        self.restoring = Some(0);
    }

    /// Ends a restore: buckets are sealed by the clock alone again.
    pub fn end_restore(&mut self) {
        self.restoring = None;
    }

    /// Adds a trace restored from storage at start: one whose bucket was
    /// sealed is folded in as late traces are, but not counted as late.
    pub fn add_restored(&mut self, trace: &Trace, now_ms: u64) {
        self.add(trace, now_ms, false);
    }

    fn add(&mut self, trace: &Trace, now_ms: u64, live: bool) {
        let start_ms = trace_start_ms(trace);
        let (key, in_window) = self.config.bucket_of(start_ms, now_ms);
        if !in_window {
            self.counters.out_of_window += 1;
        } else if let Some(restored_ms) = self.restoring.as_mut().filter(|_| !live) {
            *restored_ms = (*restored_ms).max(start_ms);
        }
        self.add_to_bucket(key, live, |a| a.add_trace(trace));
    }

    /// Adds analyses another process made of the traces of the bucket
    /// starting at `start_ms` (a partial of a receiver of the same group):
    /// as if those traces had been added here.
    pub fn add_analyses(&mut self, start_ms: u64, analyses: &Analyses, out_of_window: u64) {
        self.counters.out_of_window += out_of_window;
        let key = start_ms - start_ms % self.config.bucket_ms;
        self.add_to_bucket(key, true, |a| a.merge(analyses));
    }

    /// Runs `add` on the bucket at `key` (its late part, when sealed).
    fn add_to_bucket(&mut self, key: u64, live: bool, add: impl FnOnce(&mut Analyses)) {
        let bucket = self.buckets.entry(key).or_insert_with(|| Bucket {
            analyses: self.empty.clone(),
            sealed: false,
            late: None,
        });
        if bucket.sealed {
            self.counters.late += u64::from(live);
            let late = bucket.late.get_or_insert_with(|| self.empty.clone());
            add(Arc::make_mut(late));
        } else {
            add(Arc::make_mut(&mut bucket.analyses));
        }
    }

    /// Seals buckets that are done (during a restore, those it has passed),
    /// compacts late-touched ones and drops those past the retention.
    pub fn tick(&mut self, now_ms: u64) {
        let seal_ms = self.restoring.map_or(now_ms, |restored_ms| restored_ms.min(now_ms));
        let (width, seal_after) = (self.config.bucket_ms, self.config.seal_after_ms);
        for (&start, bucket) in self.buckets.iter_mut() {
            if !bucket.sealed && start.saturating_add(width).saturating_add(seal_after) <= seal_ms {
                seal(Arc::make_mut(&mut bucket.analyses));
                self.sealed_total.merge(&bucket.analyses);
                bucket.sealed = true;
            } else if let Some(mut late) = bucket.late.take() {
                let late = Arc::make_mut(&mut late);
                late.graph.finish();
                self.sealed_total.merge(late);
                let analyses = Arc::make_mut(&mut bucket.analyses);
                analyses.merge(late);
                seal(analyses);
            }
        }
        // Roll sealed buckets past the fine period up into coarse ones.
        let (coarse, fine_until) = (self.config.coarse_ms, now_ms.saturating_sub(self.config.fine_ms));
        if coarse > width {
            while let Some(entry) = self.buckets.first_entry() {
                let b = entry.get();
                if entry.key().saturating_add(width) > fine_until || !b.sealed || b.late.is_some() {
                    break;
                }
                let (start, bucket) = entry.remove_entry();
                let (target, end) =
                    self.coarse.entry(start - start % coarse).or_insert_with(|| (self.empty.clone(), 0));
                *end = (*end).max(start + width);
                let target = Arc::make_mut(target);
                target.merge(&bucket.analyses);
                seal(target);
            }
        }
        let oldest = now_ms.saturating_sub(self.config.retention_ms);
        while let Some(entry) = self.coarse.first_entry() {
            if entry.key().saturating_add(coarse) > oldest {
                break;
            }
            entry.remove();
            self.counters.expired += 1;
        }
        while let Some(entry) = self.buckets.first_entry() {
            if entry.key().saturating_add(width) > oldest || !entry.get().sealed || entry.get().late.is_some() {
                break;
            }
            entry.remove();
            self.counters.expired += 1;
        }
    }

    /// The buckets overlapping `range`, shared: cheap to take under a
    /// lock, merged after it is released with [`Selection::merge`].
    pub fn select(&self, range: Range) -> Selection {
        let below = |start: &u64| range.until_ms.is_none_or(|u| *start < u);
        let from = range.since_ms.map_or(0, |s| s - s % self.config.coarse_ms);
        let coarse = self
            .coarse
            .range(from..)
            .take_while(|(start, _)| below(start))
            .filter(|(_, (_, end))| range.since_ms.is_none_or(|s| *end > s))
            .map(|(_, (a, _))| a.clone());
        let from = range.since_ms.map_or(0, |s| s - s % self.config.bucket_ms);
        let fine = self
            .buckets
            .range(from..)
            .take_while(|(start, _)| below(start))
            .flat_map(|(_, b)| std::iter::once(b.analyses.clone()).chain(b.late.clone()));
        let parts = coarse.chain(fine).collect();
        Selection { empty: self.empty.clone(), parts }
    }

    /// The analyses of the buckets overlapping `range`, merged.
    pub fn range(&self, range: Range) -> Analyses {
        self.select(range).merge()
    }

    /// Everything since start: sealed buckets (expired ones included) and
    /// the open ones, for counters. The open buckets' messaging partners
    /// are left waiting, so edges only ever grow between calls.
    pub fn cumulative(&self) -> Analyses {
        let mut out = self.sealed_total.clone();
        for bucket in self.buckets.values() {
            if !bucket.sealed {
                out.merge(&bucket.analyses);
            }
            if let Some(late) = &bucket.late {
                out.merge(late);
            }
        }
        out
    }

    /// Buckets held: (all, sealed, rolled up).
    pub fn len(&self) -> (usize, usize, usize) {
        let sealed = self.buckets.values().filter(|b| b.sealed).count();
        (self.buckets.len() + self.coarse.len(), sealed + self.coarse.len(), self.coarse.len())
    }

    /// No buckets held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && self.coarse.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::model::{Span, SpanId, SpanKind, TraceId, Warnings};

    const MIN: u64 = 60_000;

    fn trace(dict: &mut Dictionary, id: u8, start_ms: u64, server_ms: u64) -> Trace {
        let front = dict.intern("front");
        let back = dict.intern("back");
        let op = dict.intern("GET /");
        let span = |service, kind, sid: u8, parent: Option<u8>, dur_ms: u64| {
            let mut s = Span::new(TraceId([id; 16]), SpanId([sid; 8]));
            (s.service, s.name) = (service, op);
            s.parent_id = parent.map(|p| SpanId([p; 8]));
            s.kind = kind;
            s.start_ns = start_ms * 1_000_000;
            s.end_ns = s.start_ns + dur_ms * 1_000_000;
            s
        };
        let spans = vec![
            span(front, SpanKind::Server, 1, None, server_ms + 2),
            span(front, SpanKind::Client, 2, Some(1), server_ms + 1),
            span(back, SpanKind::Server, 3, Some(2), server_ms),
        ];
        tracelens_core::assemble::repair(TraceId([id; 16]), spans, &mut Warnings::default())
    }

    fn config() -> BucketConfig {
        BucketConfig {
            bucket_ms: MIN,
            retention_ms: 60 * MIN,
            seal_after_ms: 20_000,
            fine_ms: 60 * MIN,
            coarse_ms: 60 * MIN,
            max_operations: 100,
        }
    }

    #[test]
    fn a_restore_seals_only_the_buckets_it_has_passed_and_counts_nothing_late() {
        let mut dict = Dictionary::default();
        let mut b = TimeBuckets::new(config(), &dict);
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % MIN;
        let now = t0 + 30 * MIN;
        // Restored traces of minute 0, then of minute 5, long sealable by
        // the clock; the restore has only reached the start of minute 5.
        b.begin_restore();
        b.add_restored(&trace(&mut dict, 1, t0 + 5, 10), now);
        b.add_restored(&trace(&mut dict, 2, t0 + 5 * MIN, 10), now);
        b.tick(now);
        assert_eq!(b.len(), (2, 1, 0), "minute 0 is behind the restore by more than seal_after");
        // More of minute 5 is restored: added, not late.
        b.add_restored(&trace(&mut dict, 3, t0 + 5 * MIN + 7, 10), now);
        b.end_restore();
        b.tick(now);
        assert_eq!(b.len(), (2, 2, 0));
        assert_eq!(b.counters.late, 0);
        assert_eq!(b.cumulative().traces, 3);
        // A straggler into a sealed bucket is folded in, still not late.
        b.add_restored(&trace(&mut dict, 4, t0 + 9, 10), now);
        b.tick(now);
        assert_eq!((b.counters.late, b.cumulative().traces), (0, 4));
    }

    #[test]
    fn ranges_merge_exactly_the_buckets_they_cover() {
        let mut dict = Dictionary::default();
        let mut b = TimeBuckets::new(BucketConfig { fine_ms: u64::MAX, ..config() }, &dict);
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % MIN;
        let now = t0 + 10 * MIN;
        for i in 0..10u8 {
            let t = trace(&mut dict, i + 1, t0 + u64::from(i) * MIN + 5, 10 * u64::from(i + 1));
            b.add_trace(&t, now);
        }
        b.tick(now);
        assert_eq!(b.len(), (10, 9, 0), "the last bucket is not sealed yet");
        let edge = |a: &Analyses| {
            let view = a.graph.view(&dict);
            view.edge("front", "back").map(|e| (e.calls, e.server_latency.max_ns)).unwrap_or_default()
        };
        assert_eq!(edge(&b.range(Range::default())), (10, 100_000_000));
        let mid = Range { since_ms: Some(t0 + 2 * MIN + 30_000), until_ms: Some(t0 + 5 * MIN) };
        assert_eq!(edge(&b.range(mid)), (3, 50_000_000), "buckets 2, 3 and 4");
        assert_eq!(b.range(mid).traces, 3);
        assert_eq!(edge(&b.range(Range { since_ms: Some(now), until_ms: None })), (0, 0));
        assert_eq!(edge(&b.cumulative()), (10, 100_000_000));

        // Retention drops old buckets, but the cumulative counters keep them.
        b.tick(now + 55 * MIN);
        assert_eq!(b.counters.expired, 5);
        assert_eq!(edge(&b.range(Range::default())), (5, 100_000_000));
        assert_eq!(edge(&b.cumulative()), (10, 100_000_000));
    }

    #[test]
    fn query_times_parse_in_every_documented_form() {
        let now = 1_795_860_000_000;
        let p = |s: &str| Range::parse(Some(s), None, now).map(|r| r.since_ms.unwrap());
        assert_eq!(p("2026-11-28T08:00:00Z"), Ok(now - 7_200_000));
        assert_eq!(p("1795860000"), Ok(now));
        assert_eq!(p("1795859999.5"), Ok(now - 500));
        assert_eq!(p("now"), Ok(now));
        assert_eq!(p("15m"), Ok(now - 900_000));
        assert_eq!(p("now-2h"), Ok(now - 7_200_000));
        assert_eq!(p("1d"), Ok(now - 86_400_000));
        assert_eq!(p("500ms"), Ok(now - 500));
        for bad in ["yesterday", "15x", "-5", "now-", ""] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.starts_with("since: ") && e.contains("is not a time"), "{bad}: {e}");
        }
        let e = Range::parse(Some("5m"), Some("10m"), now).unwrap_err().to_string();
        assert!(e.contains("not before until"), "{e}");
        assert_eq!(Range::parse(None, None, now), Ok(Range::default()));
    }

    #[test]
    fn old_buckets_roll_up_into_hours() {
        let mut dict = Dictionary::default();
        let mut b = TimeBuckets::new(BucketConfig { fine_ms: 10 * MIN, retention_ms: 600 * MIN, ..config() }, &dict);
        let hour = 60 * MIN;
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % hour;
        let now = t0 + 2 * hour + 30 * MIN;
        // One trace a minute for two and a half hours.
        for i in 0..150u64 {
            let t = trace(&mut dict, (i % 250) as u8 + 1, t0 + i * MIN + 1, i + 1);
            b.add_trace(&t, now);
        }
        b.tick(now);
        let (all, sealed, rolled) = b.len();
        assert_eq!(rolled, 3, "hours 0, 1 and the first 20 minutes of hour 2");
        assert_eq!((all, sealed), (3 + 10, 3 + 9));
        let calls =
            |b: &TimeBuckets, r: Range| b.range(r).graph.view(&dict).edge("front", "back").map_or(0, |e| e.calls);
        assert_eq!(calls(&b, Range::default()), 150);
        assert_eq!(b.cumulative().traces, 150);
        // Within the fine period: to the minute; before it: to the hour.
        assert_eq!(calls(&b, Range { since_ms: Some(now - 5 * MIN), until_ms: None }), 5);
        assert_eq!(calls(&b, Range { since_ms: Some(t0 + 30 * MIN), until_ms: Some(t0 + 40 * MIN) }), 60);
        assert_eq!(calls(&b, Range { since_ms: Some(t0 + hour), until_ms: Some(t0 + 2 * hour) }), 60);
        b.tick(now + 9 * hour);
        assert_eq!(calls(&b, Range::default()), 150 - 60, "hour 0 expired");
    }

    #[test]
    fn late_and_out_of_window_traces_are_counted_not_lost() {
        let mut dict = Dictionary::default();
        let mut b = TimeBuckets::new(config(), &dict);
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % MIN;
        let first = trace(&mut dict, 1, t0, 10);
        b.add_trace(&first, t0 + 1_000);
        b.tick(t0 + 2 * MIN);
        assert_eq!(b.len(), (1, 1, 0));
        let late = trace(&mut dict, 2, t0 + 10, 20);
        b.add_trace(&late, t0 + 2 * MIN);
        let old = trace(&mut dict, 3, 1_000, 30);
        b.add_trace(&old, t0 + 2 * MIN);
        assert_eq!(b.counters, BucketCounters { out_of_window: 1, late: 1, expired: 0 });
        b.tick(t0 + 2 * MIN + 100);
        let all = b.range(Range::default());
        assert_eq!(all.traces, 3);
        assert_eq!(b.cumulative().traces, 3);
        let only_first = b.range(Range { since_ms: None, until_ms: Some(t0 + MIN) });
        assert_eq!(only_first.graph.view(&dict).edge("front", "back").map(|e| e.calls), Some(2));
    }
}
