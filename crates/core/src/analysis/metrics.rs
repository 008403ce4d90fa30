//! Span metrics: calls, errors and a latency histogram per service,
//! operation and span kind (Tempo's and the Collector's spanmetrics), with a
//! cap on distinct operation names per service so ids embedded in span
//! names cannot exhaust memory.

use rustc_hash::{FxHashMap, FxHashSet};

use serde::Serialize;

use super::histogram::{LatencyHistogram, LatencySummary};
use crate::model::{Dictionary, SpanKind, StatusCode, Sym, Trace};

mod portable;

/// How the overflow bucket is named in reports.
pub const OVERFLOW_OPERATION: &str = "(overflow)";

/// Default cap on distinct operation names per service.
pub const DEFAULT_MAX_OPERATIONS_PER_SERVICE: usize = 1_000;

/// An operation name, or the bucket for names past the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// A span name.
    Name(Sym),
    /// Every name of the service past the cap.
    Overflow,
}

/// Figures for one (service, operation, kind).
#[derive(Clone, Debug, Default)]
pub struct OperationStats {
    /// Spans.
    pub calls: u64,
    /// Spans with status ERROR.
    pub errors: u64,
    /// Spans with status OK.
    pub oks: u64,
    /// Durations of spans with usable timing.
    pub latency: LatencyHistogram,
    /// The part of `latency` from spans with status ERROR (none until one).
    pub error_latency: Option<Box<LatencyHistogram>>,
    /// The part of `latency` from spans with status OK (none until one).
    pub ok_latency: Option<Box<LatencyHistogram>>,
}

impl OperationStats {
    /// errors / calls.
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 { 0.0 } else { self.errors as f64 / self.calls as f64 }
    }

    /// Adds `other`'s figures.
    pub fn merge(&mut self, other: &OperationStats) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.oks += other.oks;
        self.latency.merge(&other.latency);
        for (mine, theirs) in
            [(&mut self.error_latency, &other.error_latency), (&mut self.ok_latency, &other.ok_latency)]
        {
            if let Some(theirs) = theirs {
                mine.get_or_insert_with(Default::default).merge(theirs);
            }
        }
    }

    fn compact(&mut self) {
        self.latency.compact();
        for h in [&mut self.error_latency, &mut self.ok_latency].into_iter().flatten() {
            h.compact();
        }
    }
}

/// Span metrics over any number of traces; merging two is exact (as long as
/// neither hit the operation cap).
#[derive(Clone, Debug)]
pub struct SpanMetrics {
    max_operations: usize,
    stats: FxHashMap<(Sym, Operation, SpanKind), OperationStats>,
    /// Distinct names seen per service (up to the cap).
    names: FxHashMap<Sym, FxHashSet<Sym>>,
    /// Per service, spans whose name went to the overflow bucket.
    overflowed: FxHashMap<Sym, u64>,
}

impl Default for SpanMetrics {
    fn default() -> Self {
        SpanMetrics::new(DEFAULT_MAX_OPERATIONS_PER_SERVICE)
    }
}

impl SpanMetrics {
    /// Span metrics keeping at most `max_operations` names per service.
    pub fn new(max_operations: usize) -> SpanMetrics {
        SpanMetrics {
            max_operations,
            stats: FxHashMap::default(),
            names: FxHashMap::default(),
            overflowed: FxHashMap::default(),
        }
    }

    /// Counts every span of a trace.
    pub fn add_trace(&mut self, trace: &Trace) {
        for span in &trace.spans {
            let names = self.names.entry(span.service).or_default();
            let op = if names.contains(&span.name) {
                Operation::Name(span.name)
            } else if names.len() < self.max_operations {
                names.insert(span.name);
                Operation::Name(span.name)
            } else {
                *self.overflowed.entry(span.service).or_default() += 1;
                Operation::Overflow
            };
            let stats = self.stats.entry((span.service, op, span.kind)).or_default();
            stats.calls += 1;
            let by_status = match span.status {
                StatusCode::Error => {
                    stats.errors += 1;
                    Some(&mut stats.error_latency)
                }
                StatusCode::Ok => {
                    stats.oks += 1;
                    Some(&mut stats.ok_latency)
                }
                StatusCode::Unset => None,
            };
            if let Some(d) = span.duration_ns() {
                stats.latency.record(d);
                if let Some(h) = by_status {
                    h.get_or_insert_with(Default::default).record(d);
                }
            }
        }
    }

    /// Adds everything in `other`.
    pub fn merge(&mut self, other: &SpanMetrics) {
        for (key, stats) in &other.stats {
            self.stats.entry(*key).or_default().merge(stats);
        }
        for (service, names) in &other.names {
            let mine = self.names.entry(*service).or_default();
            for name in names {
                if mine.len() < self.max_operations {
                    mine.insert(*name);
                }
            }
        }
        for (service, n) in &other.overflowed {
            *self.overflowed.entry(*service).or_default() += n;
        }
    }

    /// Every (service, operation, kind) with its figures, unordered.
    pub fn iter(&self) -> impl Iterator<Item = (&(Sym, Operation, SpanKind), &OperationStats)> {
        self.stats.iter()
    }

    /// Spans past the operation cap, per service.
    pub fn overflowed(&self) -> impl Iterator<Item = (Sym, u64)> + '_ {
        self.overflowed.iter().map(|(s, n)| (*s, *n))
    }

    /// Shrinks metrics that are not going to grow for a while (a closed
    /// time bucket): latency histograms to their compact form.
    pub fn compact(&mut self) {
        for stats in self.stats.values_mut() {
            stats.compact();
        }
    }

    /// The configured cap.
    pub fn max_operations(&self) -> usize {
        self.max_operations
    }

    /// Name-resolved figures, sorted by service, operation and kind.
    pub fn views(&self, dict: &Dictionary) -> Vec<OperationView> {
        let mut out: Vec<OperationView> = self
            .stats
            .iter()
            .map(|(&(service, op, kind), stats)| OperationView {
                service: dict.resolve(service).to_string(),
                operation: match op {
                    Operation::Name(name) => dict.resolve(name).to_string(),
                    Operation::Overflow => OVERFLOW_OPERATION.to_string(),
                },
                kind: kind.as_str(),
                calls: stats.calls,
                errors: stats.errors,
                error_rate: stats.error_rate(),
                latency: stats.latency.summary(),
                without_duration: stats.calls - stats.latency.count(),
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.operation, a.kind).cmp(&(&b.service, &b.operation, b.kind)));
        out
    }
}

/// One operation's figures in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationView {
    /// Service name.
    pub service: String,
    /// Operation (span) name.
    pub operation: String,
    /// Span kind, lower case.
    pub kind: &'static str,
    /// Spans.
    pub calls: u64,
    /// Spans with status ERROR.
    pub errors: u64,
    /// errors / calls.
    pub error_rate: f64,
    /// Latency of spans with usable timing.
    pub latency: LatencySummary,
    /// Spans without a duration (or with unusable timing): counted in
    /// `calls`, left out of `latency`.
    pub without_duration: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::assemble_all;
    use crate::model::{Dictionary, Span, SpanId, TraceId};

    fn span(d: &mut Dictionary, id: u8, service: &str, name: &str, dur_ms: u64, error: bool) -> Span {
        let mut s = Span::new(TraceId([1; 16]), SpanId([id; 8]));
        s.service = d.intern(service);
        s.name = d.intern(name);
        s.kind = SpanKind::Server;
        s.start_ns = 1_000_000_000;
        s.end_ns = s.start_ns + dur_ms * 1_000_000;
        if error {
            s.status = StatusCode::Error;
        }
        s
    }

    #[test]
    fn counts_calls_errors_and_latency_per_operation() {
        let mut d = Dictionary::default();
        let spans = (1..=10).map(|i| span(&mut d, i, "api", "GET /", i as u64, i % 5 == 0)).collect::<Vec<_>>();
        let (traces, _) = assemble_all(spans);
        let mut m = SpanMetrics::default();
        m.add_trace(&traces[0]);
        let key = (d.intern("api"), Operation::Name(d.intern("GET /")), SpanKind::Server);
        let stats = m.iter().find(|(k, _)| **k == key).unwrap().1;
        assert_eq!((stats.calls, stats.errors), (10, 2));
        assert!((stats.error_rate() - 0.2).abs() < 1e-9);
        let s = stats.latency.summary();
        assert_eq!(s.max_ns, 10_000_000);
        assert!(s.p50_ns >= 5_000_000 && s.p50_ns < 5_005_000);
    }

    #[test]
    fn names_past_the_cap_overflow() {
        let mut d = Dictionary::default();
        let spans = (1..=10).map(|i| span(&mut d, i, "api", &format!("GET /user/{i}"), 1, false)).collect::<Vec<_>>();
        let (traces, _) = assemble_all(spans);
        let mut m = SpanMetrics::new(3);
        m.add_trace(&traces[0]);
        assert_eq!(m.iter().count(), 4, "3 names and the overflow bucket");
        let overflow = m.iter().find(|(k, _)| k.1 == Operation::Overflow).unwrap().1;
        assert_eq!(overflow.calls, 7);
        assert_eq!(m.overflowed().collect::<Vec<_>>(), vec![(d.intern("api"), 7)]);
    }
}
