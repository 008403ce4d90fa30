//! [`Timeline`]: one trace as the waterfall draws it — columns of span
//! indices into a name table, times as offsets from the trace's start, self
//! times and the critical path's sections — compact enough that a
//! 100,000-span trace stays a few megabytes of JSON.

use serde::Serialize;

use tracelens_core::analysis::critical_path::{CriticalPath, self_times};
use tracelens_core::model::{Dictionary, NO_PARENT, Trace};

/// A trace for the waterfall. Span `i` is described by the `i`-th entry
/// of every per-span column.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// Trace id, hex.
    pub id: String,
    /// The first root span's service and operation (`service op`).
    pub endpoint: String,
    /// The trace's start, unix ns, as text (it does not fit a JSON number
    /// that JavaScript reads exactly).
    pub start_unix_nano: String,
    /// From the earliest start to the latest end, ns.
    pub duration_ns: u64,
    /// Spans with status ERROR.
    pub errors: u64,
    /// Service and operation names the columns index.
    pub names: Vec<String>,
    /// Service (index into `names`) per span.
    pub service: Vec<u32>,
    /// Operation (index into `names`) per span.
    pub operation: Vec<u32>,
    /// Kind per span: 0 unspecified, 1 internal, 2 server, 3 client,
    /// 4 producer, 5 consumer.
    pub kind: Vec<u8>,
    /// Parent span index, or -1 (roots and orphans).
    pub parent: Vec<i64>,
    /// Start, ns after the trace's start.
    pub start: Vec<u64>,
    /// Duration, ns.
    pub duration: Vec<u64>,
    /// Time not covered by its children, ns.
    pub self_ns: Vec<u64>,
    /// Indices of spans with status ERROR.
    pub error_spans: Vec<u32>,
    /// Critical path: (span index, start, end) triples flattened, times ns
    /// after the trace's start, in time order.
    pub critical_path: Vec<u64>,
}

struct Names<'a> {
    dict: &'a Dictionary,
    index: rustc_hash::FxHashMap<tracelens_core::model::Sym, u32>,
    names: Vec<String>,
}

impl Names<'_> {
    fn of(&mut self, sym: tracelens_core::model::Sym) -> u32 {
        let names = &mut self.names;
        let dict = self.dict;
        *self.index.entry(sym).or_insert_with(|| {
            names.push(dict.resolve(sym).to_string());
            (names.len() - 1) as u32
        })
    }
}

impl Timeline {
    /// The timeline of `trace` with its critical path `cp`.
    pub fn new(dict: &Dictionary, trace: &Trace, cp: &CriticalPath) -> Timeline {
        let spans = &trace.spans;
        let start_ns = spans.iter().map(|s| s.start_ns).min().unwrap_or(0).min(cp.start_ns);
        let end_ns = spans.iter().map(|s| s.end_ns.max(s.start_ns)).max().unwrap_or(0);
        let mut names = Names { dict, index: Default::default(), names: Vec::new() };
        let (mut service, mut operation) = (Vec::with_capacity(spans.len()), Vec::with_capacity(spans.len()));
        for s in spans {
            service.push(names.of(s.service));
            operation.push(names.of(s.name));
        }
        let endpoint = trace
            .roots()
            .min_by_key(|&i| (spans[i].start_ns, i))
            .map(|i| format!("{} {}", dict.resolve(spans[i].service), dict.resolve(spans[i].name)))
            .unwrap_or_default();
        let critical_path = cp
            .sections
            .iter()
            .flat_map(|sec| {
                [sec.span as u64, sec.start_ns.saturating_sub(start_ns), sec.end_ns.saturating_sub(start_ns)]
            })
            .collect();
        Timeline {
            id: trace.trace_id.to_hex(),
            endpoint,
            start_unix_nano: start_ns.to_string(),
            duration_ns: end_ns.saturating_sub(start_ns),
            errors: spans.iter().filter(|s| s.is_error()).count() as u64,
            names: names.names,
            service,
            operation,
            kind: spans.iter().map(|s| s.kind as u8).collect(),
            parent: trace.parents.iter().map(|&p| if p == NO_PARENT { -1 } else { i64::from(p) }).collect(),
            start: spans.iter().map(|s| s.start_ns.saturating_sub(start_ns)).collect(),
            duration: spans.iter().map(|s| s.end_ns.saturating_sub(s.start_ns)).collect(),
            self_ns: self_times(trace),
            error_spans: spans.iter().enumerate().filter(|(_, s)| s.is_error()).map(|(i, _)| i as u32).collect(),
            critical_path,
        }
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.service.len()
    }

    /// Whether it has no spans.
    pub fn is_empty(&self) -> bool {
        self.service.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::analysis::critical_path::critical_path;
    use tracelens_core::model::Warnings;
    use tracelens_core::read::{ReadOptions, read_spans};

    #[test]
    fn a_timeline_holds_offsets_self_times_and_the_critical_path() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json");
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        let file = std::fs::File::open(path).unwrap();
        read_spans(path, file, &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s)).unwrap();
        let traces = tracelens_core::assemble::assemble_all(spans).0;
        let trace = traces.iter().find(|t| t.len() == 11).unwrap();
        let cp = critical_path(trace, &Default::default());
        let t = Timeline::new(&dict, trace, &cp);
        assert_eq!(t.len(), 11);
        assert_eq!(t.endpoint, "frontend GET /checkout");
        assert_eq!(t.start_unix_nano, "1793527200000000000");
        assert_eq!(t.duration_ns, 130_000_000);
        let root = t.parent.iter().position(|&p| p == -1).unwrap();
        assert_eq!((t.start[root], t.duration[root]), (0, 120_000_000));
        assert_eq!(t.self_ns[root], 25_000_000);
        // The failed payment: the client span in checkout and the server span in payments.
        assert_eq!(t.errors, 2);
        let failed: Vec<String> = t
            .error_spans
            .iter()
            .map(|&i| {
                format!("{} {}", t.names[t.service[i as usize] as usize], t.names[t.operation[i as usize] as usize])
            })
            .collect();
        assert_eq!(failed, ["checkout Charge", "payments Charge"]);
        // 19 sections, contiguous from 0 to 120 ms.
        assert_eq!(t.critical_path.len(), 19 * 3);
        assert_eq!((t.critical_path[1], t.critical_path[t.critical_path.len() - 1]), (0, 120_000_000));
        for w in t.critical_path.chunks(3).collect::<Vec<_>>().windows(2) {
            assert_eq!(w[0][2], w[1][1]);
        }
        // Every parent index points at a span of the trace.
        assert!(t.parent.iter().all(|&p| p >= -1 && p < t.len() as i64));
    }
}
