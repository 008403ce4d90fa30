//! Live analysis: spans from the receiver are assembled into traces (a
//! trace is complete after an idle timeout) and fed, per time bucket
//! ([`buckets`]), to the same service graph, span metrics and
//! bottleneck code the offline commands use. Memory is bounded: past a cap
//! on open spans the oldest traces are closed early and counted; closed
//! buckets are compacted and dropped after the retention period; the last
//! completed traces are kept for look-up up to a cap.
//!
//! * [`buckets`] — time buckets, sealed, rolled up and merged for queries.
//! * [`cluster`] — the partials of a Kafka consumer group merged in.
//! * [`prometheus`] — live analysis as Prometheus text, named as Tempo's
//!   metrics-generator names it.

use serde::Serialize;

pub mod buckets;
pub mod cluster;
pub mod prometheus;
pub mod samples;

use self::buckets::{BucketConfig, BucketCounters, BucketState, Range, Selection, TimeBuckets};
use std::collections::VecDeque;
use std::sync::Arc;
use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::assemble::{Assembler, AssemblerConfig};

use rustc_hash::FxHashMap;

use tracelens_core::model::{Dictionary, Span, Trace, TraceId, Warnings};

/// Live-analysis settings.
#[derive(Clone, Copy, Debug)]
pub struct LiveConfig {
    /// A trace is complete once no span arrived for this long.
    pub idle_ms: u64,
    /// Open spans above which traces are closed early.
    pub max_open_spans: usize,
    /// Distinct operation names kept per service.
    pub max_operations: usize,
    /// Label sets with series of their own in `/metrics`, per family
    /// (edges; service, operation and kind): the rest are summed into
    /// overflow ones (see [`prometheus::LabelSets`]).
    pub max_metric_label_sets: usize,
    /// Completed traces kept for look-up by id (oldest dropped first).
    pub keep_traces: usize,
    /// Width of an analysis time bucket, ms.
    pub bucket_ms: u64,
    /// How long buckets are kept, ms.
    pub retention_ms: u64,
    /// Trace digests kept per minute of trace start for change detection
    /// (see [`samples`]; 0: none, change detection reads the recent
    /// traces).
    pub change_samples_per_minute: usize,
}

impl LiveConfig {
    /// The time buckets these settings keep.
    pub fn bucket_config(&self) -> BucketConfig {
        BucketConfig {
            bucket_ms: self.bucket_ms,
            retention_ms: self.retention_ms,
            // Traces of a bucket complete an idle timeout after their last
            // span; leave room for slow traces and batching senders.
            seal_after_ms: self.idle_ms.saturating_mul(2).saturating_add(10_000),
            fine_ms: 3_600_000,
            coarse_ms: 3_600_000,
            max_operations: self.max_operations,
        }
    }
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            idle_ms: 10_000,
            max_open_spans: 1_000_000,
            max_operations: 1_000,
            max_metric_label_sets: 10_000,
            keep_traces: 10_000,
            bucket_ms: 60_000,
            retention_ms: 24 * 3_600_000,
            change_samples_per_minute: 100,
        }
    }
}

/// The most recent completed traces, by id, bounded (shared, so the judge
/// can read a snapshot outside the lock). Traces restored from storage
/// are older than every trace received since the start, whenever the
/// restore reaches them: they are kept apart, before those, and let go
/// first.
#[derive(Default)]
struct Recent {
    restored: VecDeque<TraceId>,
    order: VecDeque<TraceId>,
    traces: FxHashMap<TraceId, Arc<Trace>>,
}

impl Recent {
    fn keep(&mut self, trace: Trace, cap: usize) {
        if cap == 0 {
            return;
        }
        let id = trace.trace_id;
        if self.traces.insert(id, Arc::new(trace)).is_none() {
            self.order.push_back(id);
        }
        self.trim(cap);
    }

    /// Keeps a restored trace (not one with the id of a trace kept since).
    fn keep_restored(&mut self, trace: Trace, cap: usize) {
        if self.order.len() >= cap || self.traces.contains_key(&trace.trace_id) {
            return;
        }
        self.restored.push_back(trace.trace_id);
        self.traces.insert(trace.trace_id, Arc::new(trace));
        self.trim(cap);
    }

    fn trim(&mut self, cap: usize) {
        while self.restored.len() + self.order.len() > cap {
            if let Some(old) = self.restored.pop_front().or_else(|| self.order.pop_front()) {
                self.traces.remove(&old);
            }
        }
    }

    /// Kept ids, oldest first.
    fn ids(&self) -> impl Iterator<Item = &TraceId> {
        self.restored.iter().chain(&self.order)
    }
}

/// Spans restored from the data directory at start (see
/// `storage::restore`), in the order they were received: the compacted
/// files, then the log written after them. Their traces complete once as
/// many spans as live analysis may hold open ([`LiveConfig::max_open_spans`])
/// arrived after their last, so memory is bounded by that cap and not by
/// the data kept; a trace still open at the end continues in the live
/// assembler. Each trace goes to the time bucket of its start, as when it
/// was received live (or to the current bucket, for a start outside the
/// retention period or in the future); while the restore runs, buckets it
/// has not passed yet stay unsealed. Restored traces are kept for look-up
/// behind those received since the start.
pub struct Loader {
    assembler: Assembler,
    now_ms: u64,
    spans: u64,
}

/// The live state a checkpoint keeps (see [`Live::snapshot`]).
pub struct Snapshot {
    /// The names the buckets and spans refer to.
    pub dict: Dictionary,
    /// The time buckets.
    pub buckets: BucketState,
    /// The spans of the traces not yet complete.
    pub open: Vec<Span>,
    /// The counters.
    pub counters: LiveCounters,
}

/// Counters reported on `/metrics` and the API.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LiveCounters {
    /// Spans accepted into analysis.
    pub spans_accepted: u64,
    /// Spans rejected through partial success.
    pub spans_rejected: u64,
    /// Requests refused whole (undecodable, oversize, overload).
    pub requests_refused: u64,
    /// Traces completed and analysed.
    pub traces_completed: u64,
    /// Times the open-span cap forced traces closed early.
    pub forced_closes: u64,
}

/// The live state: dictionary, open traces and the analyses.
pub struct Live {
    config: LiveConfig,
    /// Names and resources of everything received.
    pub dict: Dictionary,
    warnings: Warnings,
    assembler: Assembler,
    buckets: TimeBuckets,
    recent: Recent,
    last_trim_ms: u64,
    /// Counters.
    pub counters: LiveCounters,
    /// Fed by a consumer group's partials (see [`cluster`]).
    cluster: Option<cluster::ClusterState>,
    /// Which label sets `/metrics` shows.
    label_sets: prometheus::LabelSets,
    /// Digests sampled per minute, for change detection.
    samples: samples::Samples,
}

/// How often the memory of closed trace ids is trimmed.
const TRIM_CLOSED_IDS_MS: u64 = 60_000;
/// Closed trace ids remembered to detect traces that continue later.
const CLOSED_IDS_REMEMBERED: usize = 1_000_000;

impl Live {
    /// Empty live state.
    pub fn new(config: LiveConfig) -> Live {
        let dict = Dictionary::default();
        Live {
            buckets: TimeBuckets::new(config.bucket_config(), &dict),
            dict,
            warnings: Warnings::default(),
            assembler: Assembler::new(AssemblerConfig { idle_spans: u64::MAX }),
            recent: Recent::default(),
            last_trim_ms: 0,
            counters: LiveCounters::default(),
            cluster: None,
            label_sets: prometheus::LabelSets::new(config.max_metric_label_sets),
            // Kept an hour past the retention: a day-earlier baseline of
            // the last hour's windows stays within reach.
            samples: samples::Samples::new(
                config.change_samples_per_minute,
                config.retention_ms.saturating_add(3_600_000),
            ),
            config,
        }
    }

    /// Dictionary and warnings, for converting a request.
    pub fn convert_parts(&mut self) -> (&mut Dictionary, &mut Warnings) {
        (&mut self.dict, &mut self.warnings)
    }

    /// Adds accepted spans at `now_ms`.
    pub fn ingest(&mut self, spans: Vec<Span>, now_ms: u64) {
        self.counters.spans_accepted += spans.len() as u64;
        let mut done = Vec::new();
        for span in spans {
            self.assembler.push_at(span, now_ms, &mut |t| done.push(t));
        }
        self.complete(done, now_ms);
        if self.assembler.open_spans() > self.config.max_open_spans {
            self.counters.forced_closes += 1;
            self.close(now_ms, 0);
        }
    }

    fn close(&mut self, now_ms: u64, idle_ms: u64) {
        let mut done = Vec::new();
        self.assembler.close_idle(now_ms, idle_ms, &mut |t| done.push(t));
        self.complete(done, now_ms);
    }

    /// Analyses completed traces and keeps them for look-up.
    fn complete(&mut self, traces: Vec<Trace>, now_ms: u64) {
        for trace in traces {
            self.complete_one(trace, now_ms);
        }
    }

    fn complete_one(&mut self, trace: Trace, now_ms: u64) {
        self.counters.traces_completed += 1;
        self.buckets.add_trace(&trace, now_ms);
        self.samples.offer(&self.dict, &trace);
        self.recent.keep(trace, self.config.keep_traces);
    }

    /// Gives back memory near the memory budget: every open trace is
    /// completed now (spans of it that come later make a second fragment,
    /// counted as a split trace), and the recent-trace cache is halved.
    pub fn shed(&mut self, now_ms: u64) {
        self.counters.forced_closes += 1;
        self.close(now_ms, 0);
        let half = self.recent.traces.len() / 2;
        self.recent.trim(half);
    }

    /// A recently completed trace.
    pub fn trace(&self, id: &TraceId) -> Option<&Trace> {
        self.recent.traces.get(id).map(|t| &**t)
    }

    /// The digests sampled for change detection, when any are kept.
    pub fn samples(&self) -> Option<&samples::Samples> {
        (self.config.change_samples_per_minute > 0).then_some(&self.samples)
    }

    /// Every recently completed trace, oldest first, shared.
    pub fn recent_traces(&self) -> Vec<Arc<Trace>> {
        self.recent.ids().filter_map(|id| self.recent.traces.get(id).cloned()).collect()
    }

    /// Completes traces idle for the configured time, seals and expires
    /// time buckets, and once a minute trims the memory of closed trace ids.
    pub fn tick(&mut self, now_ms: u64) {
        self.close(now_ms, self.config.idle_ms);
        self.buckets.tick(now_ms);
        self.samples.expire(now_ms);
        // abs_diff: a clock set back does not put the trim off until it
        // catches up.
        if now_ms.abs_diff(self.last_trim_ms) >= TRIM_CLOSED_IDS_MS {
            self.last_trim_ms = now_ms;
            self.assembler.forget_closed_over(CLOSED_IDS_REMEMBERED);
        }
    }

    /// Spans waiting in open traces.
    pub fn open_spans(&self) -> usize {
        self.assembler.open_spans()
    }

    /// The time buckets overlapping `range`, to merge outside any lock.
    pub fn select(&self, range: Range) -> Selection {
        self.buckets.select(range)
    }

    /// Everything since start (expired buckets included), for counters.
    pub fn cumulative(&self) -> TraceAnalyses {
        self.buckets.cumulative()
    }

    /// Counters of the time buckets.
    pub fn bucket_counters(&self) -> BucketCounters {
        self.buckets.counters
    }

    /// Time buckets held: (all, sealed, rolled up).
    pub fn buckets_held(&self) -> (usize, usize, usize) {
        self.buckets.len()
    }

    /// Starts a restore of spans the data directory kept (see [`Loader`]);
    /// its traces are analysed at clock time `now_ms`.
    pub fn loader(&mut self, now_ms: u64) -> Loader {
        self.buckets.begin_restore();
        Loader {
            assembler: Assembler::new(AssemblerConfig { idle_spans: self.config.max_open_spans.max(1) as u64 }),
            now_ms,
            spans: 0,
        }
    }

    /// Adds a restored span (see [`Loader`]).
    pub fn load(&mut self, loader: &mut Loader, span: Span) {
        loader.spans += 1;
        if loader.spans % CLOSED_IDS_REMEMBERED as u64 == 0 {
            loader.assembler.forget_closed_over(CLOSED_IDS_REMEMBERED);
        }
        self.counters.spans_accepted += 1;
        let now_ms = loader.now_ms;
        loader.assembler.push(span, &mut |trace| {
            self.counters.traces_completed += 1;
            self.buckets.add_restored(&trace, now_ms);
            self.samples.offer(&self.dict, &trace);
            self.recent.keep_restored(trace, self.config.keep_traces);
        });
    }

    /// What a checkpoint keeps: the buckets (shared, cheap to take) and a
    /// copy of the open traces' spans, with the names they refer to.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            dict: self.dict.clone(),
            buckets: self.buckets.state(),
            open: self.assembler.open_span_copies(),
            counters: self.counters,
        }
    }

    /// The time buckets' settings.
    pub fn bucket_config(&self) -> &BucketConfig {
        self.buckets.config()
    }

    /// Empty analyses shaped as the buckets' are.
    pub fn empty_analyses(&self) -> &TraceAnalyses {
        self.buckets.empty()
    }

    /// Replaces the time buckets with those of a checkpoint (at the start
    /// of a restore, before anything is loaded).
    pub fn set_buckets(&mut self, state: BucketState) {
        self.buckets.set_state(state);
    }

    /// Ends a restore at `now_ms`: the traces still open continue in the
    /// live assembler, where new spans may add to them before their idle
    /// timeout. Returns the spans loaded.
    pub fn end_load(&mut self, loader: Loader, now_ms: u64) -> u64 {
        self.buckets.end_restore();
        let (spans, warnings) = loader.assembler.into_open();
        self.warnings.merge(&warnings);
        let mut done = Vec::new();
        for span in spans {
            self.assembler.push_at(span, now_ms, &mut |t| done.push(t));
        }
        self.complete(done, now_ms);
        loader.spans
    }

    /// Warnings counted while converting and assembling.
    pub fn warnings(&self) -> Warnings {
        let mut w = self.warnings.clone();
        w.merge(self.assembler.warnings());
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::model::{SpanId, SpanKind};

    const NOW: u64 = 1_800_000_000_000;

    /// Span `id` of trace `trace`, a child of `parent`, from `service`.
    fn span(dict: &mut Dictionary, trace: u8, id: u8, parent: Option<u8>, service: &str) -> Span {
        let mut s = Span::new(TraceId([trace; 16]), SpanId([id; 8]));
        (s.service, s.name) = (dict.intern(service), dict.intern("op"));
        s.resource = dict.resource(Vec::new());
        s.parent_id = parent.map(|p| SpanId([p; 8]));
        s.kind = if parent.is_some() { SpanKind::Server } else { SpanKind::Client };
        s.start_ns = (NOW - 30_000) * 1_000_000 + u64::from(id);
        s.end_ns = s.start_ns + 1_000_000;
        s
    }

    fn edges(live: &Live) -> Vec<(String, String, u64)> {
        let graph = live.cumulative().graph;
        let mut out: Vec<_> = graph.edges(&live.dict).into_iter().map(|(from, to, _, e)| (from, to, e.calls)).collect();
        out.sort();
        out
    }

    #[test]
    fn restored_traces_are_kept_behind_live_ones_and_let_go_first() {
        let mut dict = Dictionary::default();
        let trace = |dict: &mut Dictionary, id: u8| {
            tracelens_core::assemble::repair(
                TraceId([id; 16]),
                vec![span(dict, id, 1, None, "a")],
                &mut Warnings::default(),
            )
        };
        let mut recent = Recent::default();
        recent.keep(trace(&mut dict, 1), 3);
        recent.keep_restored(trace(&mut dict, 10), 3);
        recent.keep(trace(&mut dict, 2), 3);
        recent.keep_restored(trace(&mut dict, 11), 3);
        let ids = |r: &Recent| r.ids().map(|t| t.0[0]).collect::<Vec<_>>();
        assert_eq!(ids(&recent), [11, 1, 2], "the older restored trace went first");
        recent.keep(trace(&mut dict, 3), 3);
        assert_eq!(ids(&recent), [1, 2, 3]);
        recent.keep_restored(trace(&mut dict, 12), 3);
        assert_eq!(ids(&recent), [1, 2, 3], "no room is made for restored traces");
        assert_eq!(recent.traces.len(), 3);
    }

    #[test]
    fn a_reload_holds_at_most_the_open_span_cap_and_hands_open_traces_on() {
        let config = LiveConfig { max_open_spans: 4, idle_ms: 1_000, ..LiveConfig::default() };
        let mut live = Live::new(config);
        let mut loader = live.loader(NOW);
        // Ten traces of a -> b, one after the other, then the first half
        // of an eleventh whose second half is in the log.
        let mut most_open = 0;
        for t in 1..=10 {
            let root = span(&mut live.dict, t, 1, None, "a");
            live.load(&mut loader, root);
            let child = span(&mut live.dict, t, 2, Some(1), "b");
            live.load(&mut loader, child);
            most_open = most_open.max(loader.assembler.open_spans());
        }
        let half = span(&mut live.dict, 11, 1, None, "a");
        live.load(&mut loader, half);
        assert!(most_open <= 5, "the loader held {most_open} spans open");
        // A trace closes once 4 spans came after its last.
        assert_eq!(live.counters.traces_completed, 8);
        assert_eq!(live.end_load(loader, NOW), 21);
        assert_eq!(live.open_spans(), 5, "traces 9, 10 and 11 continue live");
        let (dict, _) = live.convert_parts();
        let rest = span(dict, 11, 2, Some(1), "b");
        live.ingest(vec![rest], NOW);
        live.tick(NOW + 1_000);
        assert_eq!(live.open_spans(), 0);
        assert_eq!(live.counters.traces_completed, 11);
        assert_eq!(edges(&live), [("a".to_string(), "b".to_string(), 11)]);
        assert_eq!(live.counters.spans_accepted, 22);
        assert_eq!(live.warnings().get(tracelens_core::model::WarningKind::SplitTrace), 0);
    }
}
