//! The analyses run on every completed trace — service graph, span
//! metrics, bottlenecks (over the trace's critical path) — as one value
//! that merges exactly. `tracelens analyze` fills one over its inputs; the
//! receiver one per time bucket, merged for a query.

use super::critical_path::{CriticalPath, CriticalPathConfig, critical_path};
use super::{Bottlenecks, ServiceGraph, SpanMetrics};
use crate::model::{Dictionary, Trace};

/// The per-trace analyses over some set of traces.
#[derive(Clone, Debug)]
pub struct TraceAnalyses {
    /// Who calls whom.
    pub graph: ServiceGraph,
    /// Per-operation calls, errors and latency.
    pub metrics: SpanMetrics,
    /// Critical-path time per operation and call path.
    pub bottlenecks: Bottlenecks,
    /// Traces added.
    pub traces: u64,
}

impl TraceAnalyses {
    /// Empty analyses over names interned in `dict`, keeping at most
    /// `max_operations` operation names per service.
    pub fn new(dict: &Dictionary, max_operations: usize) -> TraceAnalyses {
        TraceAnalyses {
            graph: ServiceGraph::new(dict),
            metrics: SpanMetrics::new(max_operations),
            bottlenecks: Bottlenecks::default(),
            traces: 0,
        }
    }

    /// Keeps at most `cap` exact per-trace values per bottleneck key before
    /// its percentiles move to a histogram (see [`Bottlenecks::with_value_cap`]).
    pub fn with_bottleneck_value_cap(mut self, cap: usize) -> TraceAnalyses {
        self.bottlenecks = self.bottlenecks.with_value_cap(cap);
        self
    }

    /// Adds one completed trace, computing its critical path with the
    /// default settings.
    pub fn add_trace(&mut self, trace: &Trace) {
        self.add_trace_with_path(trace, &critical_path(trace, &CriticalPathConfig::default()));
    }

    /// Adds one completed trace whose critical path the caller computed.
    pub fn add_trace_with_path(&mut self, trace: &Trace, path: &CriticalPath) {
        self.traces += 1;
        self.graph.add_trace(trace);
        self.metrics.add_trace(trace);
        self.bottlenecks.add_trace(trace, path);
    }

    /// Adds everything in `other`.
    pub fn merge(&mut self, other: &TraceAnalyses) {
        self.traces += other.traces;
        self.graph.merge(&other.graph);
        self.metrics.merge(&other.metrics);
        self.bottlenecks.merge(&other.bottlenecks);
    }

    /// Pairs what can still be paired (producers and consumers waiting for
    /// each other) and shows the rest with their messaging nodes.
    pub fn finish(&mut self) {
        self.graph.finish();
    }

    /// Shrinks the histograms and values held, once no more traces come.
    pub fn compact(&mut self) {
        self.graph.compact();
        self.metrics.compact();
        self.bottlenecks.compact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Span, SpanId, SpanKind, TraceId};

    #[test]
    fn halves_merged_equal_the_whole() {
        let mut dict = Dictionary::default();
        let mut traces = Vec::new();
        for t in 1..=4u8 {
            let mut root = Span::new(TraceId([t; 16]), SpanId([1; 8]));
            root.service = dict.intern(if t % 2 == 0 { "a" } else { "b" });
            root.name = dict.intern("GET /");
            root.kind = SpanKind::Server;
            (root.start_ns, root.end_ns) = (1_000, 1_000 + u64::from(t) * 1_000);
            traces.push(crate::assemble::assemble_all(vec![root]).0.remove(0));
        }
        let mut whole = TraceAnalyses::new(&dict, 100);
        let (mut first, mut second) = (TraceAnalyses::new(&dict, 100), TraceAnalyses::new(&dict, 100));
        for (i, trace) in traces.iter().enumerate() {
            whole.add_trace(trace);
            if i < 2 { first.add_trace(trace) } else { second.add_trace(trace) }
        }
        first.merge(&second);
        assert_eq!((first.traces, whole.traces), (4, 4));
        let ops = |a: &TraceAnalyses| {
            a.metrics.views(&dict).into_iter().map(|o| (o.service, o.calls, o.latency.max_ns)).collect::<Vec<_>>()
        };
        assert_eq!(ops(&first), ops(&whole));
        assert_eq!(ops(&whole), [("a".to_string(), 2, 4_000), ("b".to_string(), 2, 3_000)]);
        let bottlenecks = |a: &TraceAnalyses| a.bottlenecks.view(&dict).total_duration_ns;
        assert_eq!(bottlenecks(&first), bottlenecks(&whole));
        assert_eq!(bottlenecks(&whole), 10_000);
    }
}
