//! [`Summary`]: the overview `tracelens analyze` prints — spans, traces,
//! services, time range, errors — as a mergeable aggregate.

use rustc_hash::FxHashSet;

use crate::model::{Dictionary, Sym, Trace};

/// Counts over a set of traces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Spans after assembly (exact duplicates dropped).
    pub spans: u64,
    /// Traces (trace fragments, if a trace was split by the assembler window).
    pub traces: u64,
    /// Spans with status ERROR.
    pub error_spans: u64,
    /// Root spans (no parent id at all).
    pub root_spans: u64,
    /// Distinct emitting services.
    pub services: FxHashSet<Sym>,
    /// Earliest start over spans with usable timing, unix ns.
    pub first_start_ns: Option<u64>,
    /// Latest end over spans with usable timing, unix ns.
    pub last_end_ns: Option<u64>,
}

impl Summary {
    /// Adds one trace.
    pub fn add_trace(&mut self, trace: &Trace) {
        self.traces += 1;
        self.spans += trace.spans.len() as u64;
        for span in &trace.spans {
            self.services.insert(span.service);
            if span.is_error() {
                self.error_spans += 1;
            }
            if span.parent_id.is_none() {
                self.root_spans += 1;
            }
            if span.has_timing() {
                self.first_start_ns = Some(self.first_start_ns.map_or(span.start_ns, |s| s.min(span.start_ns)));
                self.last_end_ns = Some(self.last_end_ns.map_or(span.end_ns, |e| e.max(span.end_ns)));
            }
        }
    }

    /// Adds everything in `other` (built with the same dictionary).
    pub fn merge(&mut self, other: &Summary) {
        self.spans += other.spans;
        self.traces += other.traces;
        self.error_spans += other.error_spans;
        self.root_spans += other.root_spans;
        self.services.extend(other.services.iter().copied());
        self.first_start_ns = match (self.first_start_ns, other.first_start_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_end_ns = match (self.last_end_ns, other.last_end_ns) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Service names, sorted.
    pub fn service_names(&self, dict: &Dictionary) -> Vec<String> {
        let mut names: Vec<String> = self.services.iter().map(|&s| dict.resolve(s).to_string()).collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::assemble_all;
    use crate::model::{Span, SpanId, SpanQuality, StatusCode, TraceId};

    #[test]
    fn counts_and_merges() {
        let mut d = Dictionary::default();
        let mk = |d: &mut Dictionary, t: u8, s: u8, svc: &str, start: u64, end: u64| {
            let mut span = Span::new(TraceId([t; 16]), SpanId([s; 8]));
            span.service = d.intern(svc);
            span.start_ns = start;
            span.end_ns = end;
            span
        };
        let mut bad = mk(&mut d, 2, 2, "b", 0, 0);
        bad.quality.insert(SpanQuality::MISSING_START);
        let mut err = mk(&mut d, 1, 1, "a", 100, 500);
        err.status = StatusCode::Error;
        let (traces, _) = assemble_all(vec![err, mk(&mut d, 1, 2, "b", 200, 900), bad]);
        let mut one = Summary::default();
        one.add_trace(&traces[0]);
        let mut two = Summary::default();
        two.add_trace(&traces[1]);
        one.merge(&two);
        assert_eq!(one.spans, 3);
        assert_eq!(one.traces, 2);
        assert_eq!(one.error_spans, 1);
        assert_eq!(one.service_names(&d), vec!["a", "b"]);
        assert_eq!(one.first_start_ns, Some(100), "span without start time excluded");
        assert_eq!(one.last_end_ns, Some(900));
    }
}
