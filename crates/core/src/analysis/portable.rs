//! Analyses in a portable form: the protobuf messages a [`TraceAnalyses`]
//! (and a [`Summary`]) is written as so that another process — another
//! receiver of a Kafka consumer group, or `tracelens merge` — can merge it
//! exactly into its own. Names travel as text in one string table per
//! message ([`Names`]), never as the sender's interned symbols; histograms
//! travel as their HDR bucket counts, so merged percentiles are those of
//! one histogram that recorded every value.
//!
//! Decoding never trusts its input: every index, enum number and histogram
//! is checked, and a message that does not hold together is a
//! [`PortableError`] naming the field, never a panic.

use rustc_hash::FxHashMap;

use super::histogram::LatencyHistogram;
use super::{Summary, TraceAnalyses};
use crate::model::{Dictionary, SpanId, Sym, TraceId};

/// Why a portable message does not decode into analyses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortableError {
    /// Not a protobuf message of this shape.
    #[error("not a tracelens partial: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Written by a newer tracelens.
    #[error("partial format {found} is newer than this tracelens reads ({supported})")]
    Version {
        /// The version in the message.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// A field's value is out of range or inconsistent.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field, as a path (`graph.edges[3].client`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl PortableError {
    /// A field that does not hold together.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> PortableError {
        PortableError::Invalid { field: field.into(), problem: problem.into() }
    }
}

/// The protobuf messages. Field numbers are the format: they are only
/// ever added to.
pub mod pb {
    /// Analyses of some traces, with the names they refer to.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Analyses {
        /// Traces analysed.
        #[prost(uint64, tag = "1")]
        pub traces: u64,
        /// The service graph.
        #[prost(message, optional, tag = "2")]
        pub graph: Option<Graph>,
        /// Span metrics.
        #[prost(message, optional, tag = "3")]
        pub metrics: Option<Metrics>,
        /// Critical-path aggregates.
        #[prost(message, optional, tag = "4")]
        pub bottlenecks: Option<Bottlenecks>,
    }

    /// An unsigned 128-bit sum as two halves.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct U128 {
        /// Low 64 bits.
        #[prost(uint64, tag = "1")]
        pub low: u64,
        /// High 64 bits.
        #[prost(uint64, tag = "2")]
        pub high: u64,
    }

    /// An HDR latency histogram (3 significant digits, nanoseconds).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        /// Values recorded.
        #[prost(uint64, tag = "1")]
        pub count: u64,
        /// Their exact sum, ns.
        #[prost(message, optional, tag = "2")]
        pub sum: Option<U128>,
        /// Smallest, ns.
        #[prost(uint64, tag = "3")]
        pub min: u64,
        /// Largest, ns.
        #[prost(uint64, tag = "4")]
        pub max: u64,
        /// Occupied buckets: LEB128 pairs (bucket value minus the previous
        /// one, count), in increasing order; a bucket value is the highest
        /// value equivalent to the bucket.
        #[prost(bytes = "vec", tag = "5")]
        pub buckets: Vec<u8>,
    }

    /// The service graph.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        /// Nodes.
        #[prost(message, repeated, tag = "1")]
        pub nodes: Vec<Node>,
        /// Edges between them.
        #[prost(message, repeated, tag = "2")]
        pub edges: Vec<Edge>,
        /// Spans in no edge, by why.
        #[prost(message, optional, tag = "3")]
        pub unpaired: Option<Unpaired>,
        /// Producers waiting for consumers in other traces.
        #[prost(message, repeated, tag = "4")]
        pub producers: Vec<Producer>,
        /// Root consumers waiting for their producers.
        #[prost(message, repeated, tag = "5")]
        pub consumers: Vec<Consumer>,
    }

    /// A graph node.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        /// Name (string table index).
        #[prost(uint32, tag = "1")]
        pub name: u32,
        /// 0 service, 1 database, 2 messaging system, 3 virtual.
        #[prost(uint32, tag = "2")]
        pub kind: u32,
    }

    /// A graph edge.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Edge {
        /// Calling node (index into `nodes`).
        #[prost(uint32, tag = "1")]
        pub client: u32,
        /// Called node.
        #[prost(uint32, tag = "2")]
        pub server: u32,
        /// 0 direct, 1 messaging system, 2 database, 3 virtual node.
        #[prost(uint32, tag = "3")]
        pub connection: u32,
        /// Calls.
        #[prost(uint64, tag = "4")]
        pub calls: u64,
        /// Failed calls.
        #[prost(uint64, tag = "5")]
        pub failed: u64,
        /// Calls found by the service-change rule.
        #[prost(uint64, tag = "6")]
        pub inferred: u64,
        /// Server-side durations.
        #[prost(message, optional, tag = "7")]
        pub server_latency: Option<Histogram>,
        /// Client-side durations.
        #[prost(message, optional, tag = "8")]
        pub client_latency: Option<Histogram>,
    }

    /// Spans in no edge.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Unpaired {
        /// Clients.
        #[prost(uint64, tag = "1")]
        pub client: u64,
        /// Producers.
        #[prost(uint64, tag = "2")]
        pub producer: u64,
        /// Orphan servers.
        #[prost(uint64, tag = "3")]
        pub orphan_server: u64,
        /// Orphan consumers.
        #[prost(uint64, tag = "4")]
        pub orphan_consumer: u64,
        /// Extra servers under one client.
        #[prost(uint64, tag = "5")]
        pub extra_server: u64,
    }

    /// One side of a call.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Side {
        /// Service (string table index).
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Duration, ns, when the span has usable timing.
        #[prost(uint64, optional, tag = "2")]
        pub duration: Option<u64>,
        /// Status ERROR.
        #[prost(bool, tag = "3")]
        pub error: bool,
    }

    /// A producer waiting for a consumer.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Producer {
        /// Its trace id (16 bytes).
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// Its span id (8 bytes).
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        /// The producing side.
        #[prost(message, optional, tag = "3")]
        pub side: Option<Side>,
        /// The broker it names (string table index).
        #[prost(uint32, optional, tag = "4")]
        pub peer: Option<u32>,
        /// A consumer answered it already.
        #[prost(bool, tag = "5")]
        pub answered: bool,
    }

    /// A root consumer waiting for its producer.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Consumer {
        /// Linked (trace id ++ span id), 24 bytes each.
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub links: Vec<Vec<u8>>,
        /// The consuming side.
        #[prost(message, optional, tag = "2")]
        pub side: Option<Side>,
        /// The broker it names (string table index).
        #[prost(uint32, optional, tag = "3")]
        pub peer: Option<u32>,
    }

    /// Span metrics.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metrics {
        /// Per (service, operation, kind).
        #[prost(message, repeated, tag = "1")]
        pub operations: Vec<Operation>,
        /// Operation names counted per service (up to the cap).
        #[prost(message, repeated, tag = "2")]
        pub names: Vec<ServiceNames>,
        /// Spans past the cap per service.
        #[prost(message, repeated, tag = "3")]
        pub overflowed: Vec<Overflowed>,
    }

    /// Figures of one (service, operation, kind).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Operation {
        /// Service (string table index).
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Operation name (string table index); absent for the overflow.
        #[prost(uint32, optional, tag = "2")]
        pub name: Option<u32>,
        /// Span kind, OTLP's number.
        #[prost(uint32, tag = "3")]
        pub kind: u32,
        /// Spans.
        #[prost(uint64, tag = "4")]
        pub calls: u64,
        /// Spans with status ERROR.
        #[prost(uint64, tag = "5")]
        pub errors: u64,
        /// Spans with status OK.
        #[prost(uint64, tag = "6")]
        pub oks: u64,
        /// Durations.
        #[prost(message, optional, tag = "7")]
        pub latency: Option<Histogram>,
        /// Durations of ERROR spans.
        #[prost(message, optional, tag = "8")]
        pub error_latency: Option<Histogram>,
        /// Durations of OK spans.
        #[prost(message, optional, tag = "9")]
        pub ok_latency: Option<Histogram>,
    }

    /// The operation names of one service.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServiceNames {
        /// Service (string table index).
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Names (string table indexes).
        #[prost(uint32, repeated, tag = "2")]
        pub names: Vec<u32>,
    }

    /// Spans of one service past the operation cap.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Overflowed {
        /// Service (string table index).
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Spans.
        #[prost(uint64, tag = "2")]
        pub spans: u64,
    }

    /// Critical-path aggregates.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Bottlenecks {
        /// Traces aggregated.
        #[prost(uint64, tag = "1")]
        pub traces: u64,
        /// Sum of critical-path lengths, ns.
        #[prost(message, optional, tag = "2")]
        pub total_duration: Option<U128>,
        /// Path time in no known span, ns.
        #[prost(message, optional, tag = "3")]
        pub gap: Option<U128>,
        /// Traces in more than one fragment.
        #[prost(uint64, tag = "4")]
        pub fragmented: u64,
        /// Traces with spans outside their parent.
        #[prost(uint64, tag = "5")]
        pub asynchronous: u64,
        /// Per (service, operation).
        #[prost(message, repeated, tag = "6")]
        pub operations: Vec<Aggregate>,
        /// The call-path trie.
        #[prost(message, repeated, tag = "7")]
        pub path_nodes: Vec<PathNode>,
        /// Per call path (`key` indexes `path_nodes`).
        #[prost(message, repeated, tag = "8")]
        pub paths: Vec<Aggregate>,
        /// N+1 patterns (parent, repeated callee).
        #[prost(message, repeated, tag = "9")]
        pub n_plus_one: Vec<Pattern>,
        /// Dominant spans.
        #[prost(message, repeated, tag = "10")]
        pub dominant: Vec<Pattern>,
        /// The other patterns (sequential calls, retries, error origins,
        /// fan-outs), each with its `kind`.
        #[prost(message, repeated, tag = "11")]
        pub findings: Vec<Pattern>,
    }

    /// A (service, operation) pair of string table indexes.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Key {
        /// Service.
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Operation.
        #[prost(uint32, tag = "2")]
        pub operation: u32,
    }

    /// A node of the call-path trie.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct PathNode {
        /// Parent node (index into `path_nodes`, earlier); absent at a root.
        #[prost(uint32, optional, tag = "1")]
        pub parent: Option<u32>,
        /// The operation.
        #[prost(message, optional, tag = "2")]
        pub key: Option<Key>,
    }

    /// Critical-path time of one operation or call path.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Aggregate {
        /// The operation (for `operations`).
        #[prost(message, optional, tag = "1")]
        pub key: Option<Key>,
        /// The call path (for `paths`).
        #[prost(uint32, tag = "2")]
        pub path: u32,
        /// Total, ns.
        #[prost(message, optional, tag = "3")]
        pub total: Option<U128>,
        /// Traces with a non-zero time.
        #[prost(uint64, tag = "4")]
        pub traces: u64,
        /// Exact per-trace values, while they are kept.
        #[prost(uint64, repeated, tag = "5")]
        pub per_trace: Vec<u64>,
        /// Past the value cap: every value.
        #[prost(message, optional, tag = "6")]
        pub histogram: Option<Histogram>,
        /// The largest per-trace value and its trace.
        #[prost(message, optional, tag = "7")]
        pub example: Option<Example>,
    }

    /// A value and the trace it came from.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Example {
        /// The value.
        #[prost(uint64, tag = "1")]
        pub value: u64,
        /// The trace id (16 bytes).
        #[prost(bytes = "vec", tag = "2")]
        pub trace_id: Vec<u8>,
    }

    /// An N+1 or dominant-span pattern.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Pattern {
        /// The operation (N+1: the parent).
        #[prost(message, optional, tag = "1")]
        pub key: Option<Key>,
        /// N+1: the operation called over and over.
        #[prost(message, optional, tag = "2")]
        pub callee: Option<Key>,
        /// Traces showing it.
        #[prost(uint64, tag = "3")]
        pub traces: u64,
        /// Occurrences.
        #[prost(uint64, tag = "4")]
        pub occurrences: u64,
        /// Largest count in one occurrence.
        #[prost(uint64, tag = "5")]
        pub max_count: u64,
        /// Time concurrency could have saved, ns.
        #[prost(message, optional, tag = "6")]
        pub savings: Option<U128>,
        /// The largest saving and its trace.
        #[prost(message, optional, tag = "7")]
        pub example: Option<Example>,
        /// The kind, in `findings` (`sequential_calls`, `retry`,
        /// `error_origin`, `fan_out`).
        #[prost(string, tag = "8")]
        pub kind: String,
    }

    /// What `tracelens analyze` reports besides the analyses.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        /// Spans.
        #[prost(uint64, tag = "1")]
        pub spans: u64,
        /// Traces.
        #[prost(uint64, tag = "2")]
        pub traces: u64,
        /// Spans with status ERROR.
        #[prost(uint64, tag = "3")]
        pub error_spans: u64,
        /// Root spans.
        #[prost(uint64, tag = "4")]
        pub root_spans: u64,
        /// Services (string table indexes).
        #[prost(uint32, repeated, tag = "5")]
        pub services: Vec<u32>,
        /// Earliest start, unix ns.
        #[prost(uint64, optional, tag = "6")]
        pub first_start_ns: Option<u64>,
        /// Latest end, unix ns.
        #[prost(uint64, optional, tag = "7")]
        pub last_end_ns: Option<u64>,
    }
}

/// The string table of a message being written: each name once.
#[derive(Debug, Default)]
pub struct Names {
    strings: Vec<String>,
    by_sym: FxHashMap<Sym, u32>,
    by_text: FxHashMap<Box<str>, u32>,
}

impl Names {
    /// The index of an interned name.
    pub fn sym(&mut self, dict: &Dictionary, sym: Sym) -> u32 {
        if let Some(&i) = self.by_sym.get(&sym) {
            return i;
        }
        let i = self.text(dict.resolve(sym));
        self.by_sym.insert(sym, i);
        i
    }

    /// The index of a name given as text.
    pub fn text(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.by_text.get(text) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(text.to_string());
        self.by_text.insert(text.into(), i);
        i
    }

    /// The table so far.
    pub fn strings(&self) -> &[String] {
        &self.strings
    }

    /// The table, to write beside the message.
    pub fn into_strings(self) -> Vec<String> {
        self.strings
    }
}

/// A received string table, interned into the local dictionary.
#[derive(Debug)]
pub struct Syms<'a> {
    strings: &'a [String],
    syms: Vec<Sym>,
}

impl<'a> Syms<'a> {
    /// Interns every string of `strings` into `dict`.
    pub fn intern(strings: &'a [String], dict: &mut Dictionary) -> Syms<'a> {
        Syms { strings, syms: strings.iter().map(|s| dict.intern(s)).collect() }
    }

    /// The symbol at `index`, or an error naming `field`.
    pub fn sym(&self, index: u32, field: impl FnOnce() -> String) -> Result<Sym, PortableError> {
        self.syms.get(index as usize).copied().ok_or_else(|| self.out_of_range(index, field))
    }

    /// The text at `index`, or an error naming `field`.
    pub fn text(&self, index: u32, field: impl FnOnce() -> String) -> Result<&'a str, PortableError> {
        self.strings.get(index as usize).map(String::as_str).ok_or_else(|| self.out_of_range(index, field))
    }

    fn out_of_range(&self, index: u32, field: impl FnOnce() -> String) -> PortableError {
        PortableError::invalid(field(), format!("string {index} is not in the table of {}", self.strings.len()))
    }
}

/// A u128 as two halves.
pub fn u128_out(v: u128) -> Option<pb::U128> {
    Some(pb::U128 { low: v as u64, high: (v >> 64) as u64 })
}

/// Two halves as a u128 (absent: zero).
pub fn u128_in(v: Option<pb::U128>) -> u128 {
    v.map_or(0, |v| (u128::from(v.high) << 64) | u128::from(v.low))
}

/// A trace id from 16 bytes.
pub fn trace_id(bytes: &[u8], field: impl FnOnce() -> String) -> Result<TraceId, PortableError> {
    <[u8; 16]>::try_from(bytes)
        .map(TraceId)
        .map_err(|_| PortableError::invalid(field(), format!("a trace id is 16 bytes, not {}", bytes.len())))
}

/// A span id from 8 bytes.
pub fn span_id(bytes: &[u8], field: impl FnOnce() -> String) -> Result<SpanId, PortableError> {
    <[u8; 8]>::try_from(bytes)
        .map(SpanId)
        .map_err(|_| PortableError::invalid(field(), format!("a span id is 8 bytes, not {}", bytes.len())))
}

/// A histogram out.
pub fn histogram_out(h: &LatencyHistogram) -> Option<pb::Histogram> {
    Some(h.to_portable())
}

/// A histogram in (absent: empty).
pub fn histogram_in(
    h: Option<&pb::Histogram>,
    field: impl FnOnce() -> String,
) -> Result<LatencyHistogram, PortableError> {
    match h {
        None => Ok(LatencyHistogram::default()),
        Some(h) => LatencyHistogram::from_portable(h).map_err(|problem| PortableError::invalid(field(), problem)),
    }
}

impl TraceAnalyses {
    /// The analyses as a portable message, names added to `names`.
    pub fn to_portable(&self, dict: &Dictionary, names: &mut Names) -> pb::Analyses {
        pb::Analyses {
            traces: self.traces,
            graph: Some(self.graph.to_portable(dict, names)),
            metrics: Some(self.metrics.to_portable(dict, names)),
            bottlenecks: Some(self.bottlenecks.to_portable(dict, names)),
        }
    }

    /// Analyses read from a portable message, names interned through
    /// `syms`; empty analyses shaped like `like` (its operation cap and
    /// bottleneck value cap) receive them.
    pub fn from_portable(
        message: &pb::Analyses,
        syms: &Syms<'_>,
        dict: &Dictionary,
        like: &TraceAnalyses,
    ) -> Result<TraceAnalyses, PortableError> {
        let mut out = like.clone();
        out.traces = message.traces;
        if let Some(graph) = &message.graph {
            out.graph.read_portable(graph, syms, dict)?;
        }
        if let Some(metrics) = &message.metrics {
            out.metrics.read_portable(metrics, syms)?;
        }
        if let Some(bottlenecks) = &message.bottlenecks {
            out.bottlenecks.read_portable(bottlenecks, syms)?;
        }
        Ok(out)
    }
}

impl Summary {
    /// The summary as a portable message.
    pub fn to_portable(&self, dict: &Dictionary, names: &mut Names) -> pb::Summary {
        let mut services: Vec<u32> = self.services.iter().map(|&s| names.sym(dict, s)).collect();
        services.sort_unstable();
        pb::Summary {
            spans: self.spans,
            traces: self.traces,
            error_spans: self.error_spans,
            root_spans: self.root_spans,
            services,
            first_start_ns: self.first_start_ns,
            last_end_ns: self.last_end_ns,
        }
    }

    /// A summary read from a portable message.
    pub fn from_portable(message: &pb::Summary, syms: &Syms<'_>) -> Result<Summary, PortableError> {
        let services = message
            .services
            .iter()
            .enumerate()
            .map(|(i, &s)| syms.sym(s, || format!("summary.services[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Summary {
            spans: message.spans,
            traces: message.traces,
            error_spans: message.error_spans,
            root_spans: message.root_spans,
            services,
            first_start_ns: message.first_start_ns,
            last_end_ns: message.last_end_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Trace;
    use crate::pipeline::{PipelineConfig, run};
    use crate::read::Input;
    use prost::Message as _;

    /// Traces of the project's fixtures (messaging, databases, virtual
    /// nodes, errors), with their dictionary; `keep` picks by position.
    fn traces(keep: impl Fn(usize) -> bool) -> (Dictionary, Vec<Trace>) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/");
        let inputs: Vec<Input> = ["shop.otlp.json", "graph-edges.otlp.jsonl"]
            .iter()
            .map(|f| Input::Path(format!("{dir}{f}").into()))
            .collect();
        let mut out = Vec::new();
        let mut n = 0;
        let report = run(&inputs, &PipelineConfig::default(), &mut |_, s| s, &mut |_, t| {
            if keep(n) {
                out.push(t);
            }
            n += 1;
        })
        .unwrap();
        (report.dict, out)
    }

    fn analyse(dict: &Dictionary, traces: &[Trace]) -> TraceAnalyses {
        let mut a = TraceAnalyses::new(dict, 1_000);
        for t in traces {
            a.add_trace(t);
        }
        a
    }

    /// Graph, operations and bottlenecks as reports print them.
    fn report(dict: &Dictionary, a: &TraceAnalyses) -> String {
        let mut a = a.clone();
        a.finish();
        serde_json::to_string_pretty(&(a.graph.view(dict), a.metrics.views(dict), a.bottlenecks.view(dict), a.traces))
            .unwrap()
    }

    fn send(dict: &Dictionary, a: &TraceAnalyses) -> Vec<u8> {
        let mut names = Names::default();
        let analyses = a.to_portable(dict, &mut names);
        let bucket =
            crate::partial::pb::Bucket { start_ms: 0, width_ms: 0, analyses: Some(analyses), ..Default::default() };
        let partial = crate::partial::pb::Partial {
            format: crate::partial::FORMAT_VERSION,
            strings: names.into_strings(),
            buckets: vec![bucket],
            ..Default::default()
        };
        crate::partial::encode_file(&[partial])
    }

    fn receive(bytes: &[u8], dict: &mut Dictionary, into: &mut TraceAnalyses) -> Result<(), PortableError> {
        for partial in crate::partial::decode_file(bytes)? {
            let syms = Syms::intern(&partial.strings, dict);
            for bucket in &partial.buckets {
                let empty = TraceAnalyses::new(dict, 1_000);
                let analyses = bucket.analyses.as_ref().ok_or_else(|| PortableError::invalid("bucket", "empty"))?;
                into.merge(&TraceAnalyses::from_portable(analyses, &syms, dict, &empty)?);
            }
        }
        Ok(())
    }

    #[test]
    fn halves_from_two_processes_merge_into_the_whole() {
        let (whole_dict, all) = traces(|_| true);
        let whole = report(&whole_dict, &analyse(&whole_dict, &all));
        let (even_dict, even) = traces(|i| i % 2 == 0);
        let (odd_dict, odd) = traces(|i| i % 2 == 1);
        assert!(!even.is_empty() && !odd.is_empty());
        let (a, b) = (send(&even_dict, &analyse(&even_dict, &even)), send(&odd_dict, &analyse(&odd_dict, &odd)));
        let mut dict = Dictionary::default();
        let mut merged = TraceAnalyses::new(&dict, 1_000);
        receive(&b, &mut dict, &mut merged).unwrap();
        receive(&a, &mut dict, &mut merged).unwrap();
        assert_eq!(report(&dict, &merged), whole);
        assert!(whole.contains("messaging_system") && whole.contains("database"), "the fixtures cover every edge type");
    }

    #[test]
    fn compacted_and_buffered_histograms_travel_whole() {
        let mut h = LatencyHistogram::default();
        for v in [0u64, 1, 999, 1_000_000, 7_000_000_000, u64::MAX] {
            h.record(v);
        }
        let back = LatencyHistogram::from_portable(&h.to_portable()).unwrap();
        assert_eq!(back.summary(), h.summary());
        h.compact();
        assert_eq!(LatencyHistogram::from_portable(&h.to_portable()).unwrap().summary(), back.summary());
        let empty = LatencyHistogram::default().to_portable();
        assert_eq!(LatencyHistogram::from_portable(&empty).unwrap().count(), 0);
    }

    #[test]
    fn inconsistent_histograms_are_refused() {
        let mut h = LatencyHistogram::default();
        h.record(5_000);
        h.record(9_000);
        let good = h.to_portable();
        let wrong_count = pb::Histogram { count: 3, ..good.clone() };
        assert!(LatencyHistogram::from_portable(&wrong_count).unwrap_err().contains("add up to 2, not the count 3"));
        let cut = pb::Histogram { buckets: good.buckets[..good.buckets.len() - 1].to_vec(), ..good.clone() };
        assert!(LatencyHistogram::from_portable(&cut).is_err());
        let above = pb::Histogram { max: 5_000, ..good.clone() };
        assert!(LatencyHistogram::from_portable(&above).unwrap_err().contains("above max"));
        let endless = pb::Histogram { buckets: vec![0xff; 11], ..good };
        assert!(LatencyHistogram::from_portable(&endless).is_err());
    }

    #[test]
    fn damaged_partials_are_errors_naming_the_field_never_panics() {
        let (dict, all) = traces(|_| true);
        let good = send(&dict, &analyse(&dict, &all));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..400 {
            let mut bytes = good.clone();
            for _ in 0..1 + round % 8 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let at = crate::partial::FILE_MAGIC.len()
                    + (x >> 33) as usize % (bytes.len() - crate::partial::FILE_MAGIC.len());
                bytes[at] ^= 1 << (x >> 29 & 7);
            }
            let mut into = TraceAnalyses::new(&Dictionary::default(), 1_000);
            let _ = receive(&bytes, &mut Dictionary::default(), &mut into);
        }
        let mut partial =
            crate::partial::pb::Partial::decode_length_delimited(&good[crate::partial::FILE_MAGIC.len()..]).unwrap();
        let graph = partial.buckets[0].analyses.as_mut().unwrap().graph.as_mut().unwrap();
        graph.edges[0].server = 10_000;
        let nodes = graph.nodes.len();
        let err = receive(
            &crate::partial::encode_file(&[partial.clone()]),
            &mut Dictionary::default(),
            &mut TraceAnalyses::new(&dict, 1),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), format!("graph.edges[0].server: node 10000 is not among the {nodes}"));
        partial.format = crate::partial::FORMAT_VERSION + 1;
        let err = crate::partial::decode_file(&crate::partial::encode_file(&[partial])).unwrap_err();
        assert_eq!(
            err,
            PortableError::Version {
                found: crate::partial::FORMAT_VERSION + 1,
                supported: crate::partial::FORMAT_VERSION
            }
        );
        assert!(
            crate::partial::decode_file(b"{\"resourceSpans\": []}")
                .unwrap_err()
                .to_string()
                .contains("does not start as")
        );
    }
}
