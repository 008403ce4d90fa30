//! Live analysis: spans from the receiver are assembled into traces (a
//! trace is complete after an idle timeout) and fed to the same service
//! graph, span metrics and bottleneck code the offline commands use. Memory
//! is bounded: past a cap on open spans the oldest traces are closed early
//! and counted; bottleneck percentiles keep a reservoir sample per key;
//! cross-trace messaging partners are waited for a minute or two; the last
//! completed traces are kept for look-up up to a cap.

use serde::Serialize;

use crate::analysis::bottleneck::BottleneckView;
use crate::analysis::critical_path::{CriticalPathConfig, critical_path};
use crate::analysis::graph::GraphView;
use crate::analysis::metrics::OperationView;
use crate::analysis::{Bottlenecks, ServiceGraph, SpanMetrics};
use crate::assemble::{Assembler, AssemblerConfig};
use std::collections::VecDeque;

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
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig { idle_ms: 10_000, max_open_spans: 1_000_000, max_operations: 1_000, keep_traces: 10_000 }
    }
}

/// The most recent completed traces, by id, bounded.
#[derive(Default)]
struct Recent {
    order: VecDeque<TraceId>,
    traces: FxHashMap<TraceId, Trace>,
}

impl Recent {
    fn keep(&mut self, trace: Trace, cap: usize) {
        if cap == 0 {
            return;
        }
        let id = trace.trace_id;
        if self.traces.insert(id, trace).is_none() {
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
    graph: ServiceGraph,
    metrics: SpanMetrics,
    bottlenecks: Bottlenecks,
    recent: Recent,
    last_resolve_ms: u64,
    /// Counters.
    pub counters: LiveCounters,
}

/// Per-trace values kept per bottleneck key for live percentiles.
const BOTTLENECK_VALUES_PER_KEY: usize = 10_000;
/// How often producers still waiting for a consumer in another trace are
/// given up on (and shown as calls to a messaging node).
const RESOLVE_WAITING_MS: u64 = 60_000;
/// Closed trace ids remembered to detect traces that continue later.
const CLOSED_IDS_REMEMBERED: usize = 1_000_000;

impl Live {
    /// Empty live state.
    pub fn new(config: LiveConfig) -> Live {
        let dict = Dictionary::default();
        Live {
            graph: ServiceGraph::new(&dict),
            dict,
            warnings: Warnings::default(),
            assembler: Assembler::new(AssemblerConfig { idle_spans: u64::MAX }),
            metrics: SpanMetrics::new(config.max_operations),
            bottlenecks: Bottlenecks::default().with_value_cap(BOTTLENECK_VALUES_PER_KEY),
            recent: Recent::default(),
            last_resolve_ms: 0,
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
        self.complete(done);
        if self.assembler.open_spans() > self.config.max_open_spans {
            self.counters.forced_closes += 1;
            self.close(now_ms, 0);
        }
    }

    fn close(&mut self, now_ms: u64, idle_ms: u64) {
        let mut done = Vec::new();
        self.assembler.close_idle(now_ms, idle_ms, &mut |t| done.push(t));
        self.complete(done);
    }

    /// Analyses completed traces and keeps them for look-up.
    fn complete(&mut self, traces: Vec<Trace>) {
        for trace in traces {
            self.counters.traces_completed += 1;
            self.graph.add_trace(&trace);
            self.metrics.add_trace(&trace);
            self.bottlenecks.add_trace(&trace, &critical_path(&trace, &CriticalPathConfig::default()));
            self.recent.keep(trace, self.config.keep_traces);
        }
    }

    /// A recently completed trace.
    pub fn trace(&self, id: &TraceId) -> Option<&Trace> {
        self.recent.traces.get(id)
    }

    /// Completes traces idle for the configured time; once a minute,
    /// resolves producers and consumers still waiting for a partner in
    /// another trace and trims the memory of closed trace ids.
    pub fn tick(&mut self, now_ms: u64) {
        self.close(now_ms, self.config.idle_ms);
        if self.last_resolve_ms == 0 {
            self.last_resolve_ms = now_ms;
        }
        if now_ms.saturating_sub(self.last_resolve_ms) >= RESOLVE_WAITING_MS {
            self.last_resolve_ms = now_ms;
            self.graph.finish();
            self.assembler.forget_closed_over(CLOSED_IDS_REMEMBERED);
        }
    }

    /// Spans waiting in open traces.
    pub fn open_spans(&self) -> usize {
        self.assembler.open_spans()
    }

    /// The service graph so far.
    pub fn graph(&self) -> GraphView {
        let mut g = self.graph.clone();
        g.finish();
        g.view(&self.dict)
    }

    /// Span metrics so far.
    pub fn operations(&self) -> Vec<OperationView> {
        self.metrics.views(&self.dict)
    }

    /// Bottlenecks so far.
    pub fn bottlenecks(&self) -> BottleneckView {
        self.bottlenecks.view(&self.dict)
    }

    /// The live service graph (unfinished: producers may still be answered).
    pub fn graph_state(&self) -> ServiceGraph {
        self.graph.clone()
    }

    /// The live span metrics.
    pub fn metrics_state(&self) -> &SpanMetrics {
        &self.metrics
    }

    /// Warnings counted while converting and assembling.
    pub fn warnings(&self) -> Warnings {
        let mut w = self.warnings.clone();
        w.merge(self.assembler.warnings());
        w
    }
}
