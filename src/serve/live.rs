//! Live analysis: spans from the receiver are assembled into traces (a
//! trace is complete after an idle timeout) and fed, per time bucket
//! ([`super::buckets`]), to the same service graph, span metrics and
//! bottleneck code the offline commands use. Memory is bounded: past a cap
//! on open spans the oldest traces are closed early and counted; closed
//! buckets are compacted and dropped after the retention period; the last
//! completed traces are kept for look-up up to a cap.

use serde::Serialize;

use super::buckets::{Analyses, BucketConfig, BucketCounters, Range, Selection, TimeBuckets};
use crate::assemble::{Assembler, AssemblerConfig};
use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{Dictionary, Span, Trace, TraceId, Warnings};

/// Live-analysis settings.
#[derive(Clone, Copy, Debug)]
pub struct LiveConfig {
    /// A trace is complete once no span arrived for this long.
    pub idle_ms: u64,
    /// Open spans above which traces are closed early.
    pub max_open_spans: usize,
    /// Distinct operation names kept per service.
    pub max_operations: usize,
    /// Completed traces kept for look-up by id (oldest dropped first).
    pub keep_traces: usize,
    /// Width of an analysis time bucket, ms.
    pub bucket_ms: u64,
    /// How long buckets are kept, ms.
    pub retention_ms: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            idle_ms: 10_000,
            max_open_spans: 1_000_000,
            max_operations: 1_000,
            keep_traces: 10_000,
            bucket_ms: 60_000,
            retention_ms: 24 * 3_600_000,
        }
    }
}

/// The most recent completed traces, by id, bounded (shared, so the judge
/// can read a snapshot outside the lock).
#[derive(Default)]
struct Recent {
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
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.traces.remove(&old);
            }
        }
    }
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
}

/// How often the memory of closed trace ids is trimmed.
const TRIM_CLOSED_IDS_MS: u64 = 60_000;
/// Closed trace ids remembered to detect traces that continue later.
const CLOSED_IDS_REMEMBERED: usize = 1_000_000;

impl Live {
    /// Empty live state.
    pub fn new(config: LiveConfig) -> Live {
        let dict = Dictionary::default();
        let buckets = BucketConfig {
            bucket_ms: config.bucket_ms,
            retention_ms: config.retention_ms,
            // Traces of a bucket complete an idle timeout after their last
            // span; leave room for slow traces and batching senders.
            seal_after_ms: config.idle_ms.saturating_mul(2).saturating_add(10_000),
            fine_ms: 3_600_000,
            coarse_ms: 3_600_000,
            max_operations: config.max_operations,
        };
        Live {
            buckets: TimeBuckets::new(buckets, &dict),
            dict,
            warnings: Warnings::default(),
            assembler: Assembler::new(AssemblerConfig { idle_spans: u64::MAX }),
            recent: Recent::default(),
            last_trim_ms: 0,
            counters: LiveCounters::default(),
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
            self.counters.traces_completed += 1;
            self.buckets.add_trace(&trace, now_ms);
            self.recent.keep(trace, self.config.keep_traces);
        }
    }

    /// A recently completed trace.
    pub fn trace(&self, id: &TraceId) -> Option<&Trace> {
        self.recent.traces.get(id).map(|t| &**t)
    }

    /// Every recently completed trace, oldest first, shared.
    pub fn recent_traces(&self) -> Vec<Arc<Trace>> {
        self.recent.order.iter().filter_map(|id| self.recent.traces.get(id).cloned()).collect()
    }

    /// Completes traces idle for the configured time, seals and expires
    /// time buckets, and once a minute trims the memory of closed trace ids.
    pub fn tick(&mut self, now_ms: u64) {
        self.close(now_ms, self.config.idle_ms);
        self.buckets.tick(now_ms);
        if now_ms.saturating_sub(self.last_trim_ms) >= TRIM_CLOSED_IDS_MS {
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
    pub fn cumulative(&self) -> Analyses {
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

    /// Warnings counted while converting and assembling.
    pub fn warnings(&self) -> Warnings {
        let mut w = self.warnings.clone();
        w.merge(self.assembler.warnings());
        w
    }
}
