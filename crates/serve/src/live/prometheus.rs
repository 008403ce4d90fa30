//! `GET /metrics`: the live service graph and span metrics in Prometheus
//! text format, named as Tempo's metrics-generator names them (so Grafana's
//! service-graph and span-metrics views work unchanged), plus tracelens's
//! own counters.
//!
//! Label cardinality is capped ([`LabelSets`]): at most
//! [`LiveConfig::max_metric_label_sets`](super::LiveConfig::max_metric_label_sets)
//! edges and as many (service, operation, kind) keys get series of their
//! own; the rest are summed into overflow label sets (`(overflow)` for the
//! names), and `tracelens_metric_label_sets_folded` says how many.

use std::fmt::Write as _;
use std::hash::Hash;

use rustc_hash::FxHashSet;

use super::Live;
use tracelens_core::analysis::LatencyHistogram;
use tracelens_core::analysis::graph::{ConnectionType, EdgeStats};
use tracelens_core::analysis::metrics::{OVERFLOW_OPERATION, Operation, OperationStats};
use tracelens_core::model::{SpanKind, Sym};

/// The name and label value the overflow label sets carry.
pub const OVERFLOW: &str = OVERFLOW_OPERATION;

/// Which label sets get series of their own, kept from scrape to scrape so
/// a series does not move in and out of the overflow (a counter must only
/// grow): a key once admitted stays while it has figures; keys new at a
/// scrape are admitted, most calls first, while there is room.
#[derive(Debug)]
pub struct LabelSets {
    max: usize,
    edges: FxHashSet<(String, String, ConnectionType)>,
    operations: FxHashSet<(Sym, Operation, SpanKind)>,
    /// Keys folded into the overflow at the last scrape: edges, operations.
    folded: (usize, usize),
}

impl LabelSets {
    /// At most `max` label sets of each family.
    pub fn new(max: usize) -> LabelSets {
        LabelSets { max, edges: FxHashSet::default(), operations: FxHashSet::default(), folded: (0, 0) }
    }
}

/// The labels of a span-metrics series: service (None: the overflow of the
/// family cap), operation, kind.
type OpLabels = (Option<Sym>, Operation, SpanKind);

/// Updates `admitted` to the keys of `present` (with their calls) that keep
/// series of their own, at most `max`.
fn admit<K: Clone + Eq + Hash + Ord>(admitted: &mut FxHashSet<K>, present: &[(K, u64)], max: usize) {
    let here: FxHashSet<&K> = present.iter().map(|(k, _)| k).collect();
    admitted.retain(|k| here.contains(k));
    let mut new: Vec<&(K, u64)> = present.iter().filter(|(k, _)| !admitted.contains(k)).collect();
    new.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let room = max.saturating_sub(admitted.len());
    admitted.extend(new.into_iter().take(room).map(|(k, _)| k.clone()));
}

/// Tempo's service-graph buckets, seconds.
const GRAPH_BUCKETS: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];

pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &LatencyHistogram, buckets: &[f64]) {
    histogram_parts(out, name, labels, h, &[], buckets);
}

/// The series of `all` minus the values of `minus` (sub-histograms of it).
fn histogram_parts(
    out: &mut String,
    name: &str,
    labels: &str,
    all: &LatencyHistogram,
    minus: &[&LatencyHistogram],
    buckets: &[f64],
) {
    let at_most = |ns: u64| minus.iter().fold(all.count_at_most(ns), |n, h| n.saturating_sub(h.count_at_most(ns)));
    let count = minus.iter().fold(all.count(), |n, h| n.saturating_sub(h.count()));
    let sum = minus.iter().fold(all.sum_ns(), |n, h| n.saturating_sub(h.sum_ns()));
    for le in buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {}", at_most((le * 1e9) as u64).min(count));
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum as f64 / 1e9);
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

fn kind_label(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

/// The exposition text.
pub fn render(live: &mut Live) -> String {
    let mut out = String::new();
    let cumulative = live.cumulative();
    let graph = &cumulative.graph;
    let all_edges = graph.edges(&live.dict);
    let sets = &mut live.label_sets;
    let keys: Vec<_> = all_edges.iter().map(|(c, s, t, e)| ((c.clone(), s.clone(), *t), e.calls)).collect();
    admit(&mut sets.edges, &keys, sets.max);
    let mut edges: Vec<(String, String, ConnectionType, &EdgeStats)> = Vec::with_capacity(all_edges.len());
    let mut folded_edges: Vec<(ConnectionType, EdgeStats)> = Vec::new();
    let mut folded = 0;
    for (c, s, t, e) in all_edges {
        if sets.edges.contains(&(c.clone(), s.clone(), t)) {
            edges.push((c, s, t, e));
            continue;
        }
        folded += 1;
        match folded_edges.iter_mut().find(|(ft, _)| *ft == t) {
            Some((_, sum)) => sum.merge(e),
            None => folded_edges.push((t, e.clone())),
        }
    }
    folded_edges.sort_by_key(|(t, _)| *t);
    edges.extend(folded_edges.iter().map(|(t, e)| (OVERFLOW.to_string(), OVERFLOW.to_string(), *t, e)));
    sets.folded.0 = folded;
    out.push_str("# HELP traces_service_graph_request_total Total count of requests between two nodes.\n");
    out.push_str("# TYPE traces_service_graph_request_total counter\n");
    let label = |c: &str, s: &str, t: &str| {
        format!("client=\"{}\",server=\"{}\",connection_type=\"{}\"", escape(c), escape(s), t)
    };
    for (c, s, t, e) in &edges {
        let _ = writeln!(out, "traces_service_graph_request_total{{{}}} {}", label(c, s, t.as_str()), e.calls);
    }
    out.push_str(
        "# HELP traces_service_graph_request_failed_total Total count of failed requests between two nodes.\n",
    );
    out.push_str("# TYPE traces_service_graph_request_failed_total counter\n");
    for (c, s, t, e) in &edges {
        let _ = writeln!(out, "traces_service_graph_request_failed_total{{{}}} {}", label(c, s, t.as_str()), e.failed);
    }
    for (name, client_side) in
        [("traces_service_graph_request_server_seconds", false), ("traces_service_graph_request_client_seconds", true)]
    {
        let _ = writeln!(
            out,
            "# HELP {name} Time for a request between two nodes as seen from the {}.",
            if client_side { "client" } else { "server" }
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (c, s, t, e) in &edges {
            let h = if client_side { &e.client_latency } else { &e.server_latency };
            if h.count() > 0 {
                histogram(&mut out, name, &label(c, s, t.as_str()), h, &GRAPH_BUCKETS);
            }
        }
    }

    let span_buckets: Vec<f64> = (0..14).map(|n| 0.002 * f64::from(1u32 << n)).collect();
    let keys: Vec<_> = cumulative.metrics.iter().map(|(k, s)| (*k, s.calls)).collect();
    admit(&mut sets.operations, &keys, sets.max);
    let mut ops: Vec<(OpLabels, &OperationStats)> = Vec::with_capacity(keys.len());
    let mut folded_ops: Vec<(SpanKind, OperationStats)> = Vec::new();
    let mut folded = 0;
    for (k, stats) in cumulative.metrics.iter() {
        if sets.operations.contains(k) {
            ops.push(((Some(k.0), k.1, k.2), stats));
            continue;
        }
        folded += 1;
        match folded_ops.iter_mut().find(|(kind, _)| *kind == k.2) {
            Some((_, sum)) => sum.merge(stats),
            None => folded_ops.push((k.2, stats.clone())),
        }
    }
    sets.folded.1 = folded;
    let (cap, folded) = (sets.max, sets.folded);
    ops.extend(folded_ops.iter().map(|(kind, stats)| ((None, Operation::Overflow, *kind), stats)));
    let dict = &live.dict;
    let name_of = |k: &OpLabels| match k.1 {
        Operation::Name(n) => dict.resolve(n),
        Operation::Overflow => OVERFLOW_OPERATION,
    };
    let service_of = |k: &OpLabels| k.0.map_or(OVERFLOW, |s| dict.resolve(s));
    ops.sort_by(|(a, _), (b, _)| {
        (a.0.is_none(), service_of(a), name_of(a), a.2).cmp(&(b.0.is_none(), service_of(b), name_of(b), b.2))
    });
    let op_label = |k: &OpLabels| {
        format!(
            "service=\"{}\",span_name=\"{}\",span_kind=\"{}\"",
            escape(service_of(k)),
            escape(name_of(k)),
            kind_label(k.2)
        )
    };
    out.push_str("# HELP traces_spanmetrics_calls_total Spans by service, operation, kind and status.\n");
    out.push_str("# TYPE traces_spanmetrics_calls_total counter\n");
    for (k, s) in &ops {
        let l = op_label(k);
        for (status, n) in [
            ("STATUS_CODE_UNSET", s.calls - s.errors - s.oks),
            ("STATUS_CODE_OK", s.oks),
            ("STATUS_CODE_ERROR", s.errors),
        ] {
            if n > 0 {
                let _ = writeln!(out, "traces_spanmetrics_calls_total{{{l},status_code=\"{status}\"}} {n}");
            }
        }
    }
    out.push_str("# HELP traces_spanmetrics_latency Span durations by service, operation, kind and status.\n");
    out.push_str("# TYPE traces_spanmetrics_latency histogram\n");
    for (k, s) in &ops {
        let l = op_label(k);
        let (error, ok) = (s.error_latency.as_deref(), s.ok_latency.as_deref());
        let unset: Vec<&LatencyHistogram> = [error, ok].into_iter().flatten().collect();
        for (status, part, minus) in [
            ("STATUS_CODE_UNSET", Some(&s.latency), unset.as_slice()),
            ("STATUS_CODE_OK", ok, &[][..]),
            ("STATUS_CODE_ERROR", error, &[][..]),
        ] {
            let Some(part) = part else { continue };
            let count = minus.iter().fold(part.count(), |n, h| n.saturating_sub(h.count()));
            if count > 0 {
                let labels = format!("{l},status_code=\"{status}\"");
                histogram_parts(&mut out, "traces_spanmetrics_latency", &labels, part, minus, &span_buckets);
            }
        }
    }

    let (c, b) = (live.counters, live.bucket_counters());
    for (name, help, value) in [
        ("tracelens_spans_accepted_total", "Spans accepted into analysis.", c.spans_accepted),
        ("tracelens_spans_rejected_total", "Spans rejected through partial success.", c.spans_rejected),
        (
            "tracelens_requests_refused_total",
            "Requests refused whole (undecodable, oversize, overload).",
            c.requests_refused,
        ),
        ("tracelens_traces_completed_total", "Traces completed and analysed.", c.traces_completed),
        (
            "tracelens_forced_trace_closes_total",
            "Times the open-span cap or the memory budget closed traces early.",
            c.forced_closes,
        ),
        (
            "tracelens_traces_out_of_window_total",
            "Traces whose own time was outside the kept window, put in the bucket of their arrival.",
            b.out_of_window,
        ),
        ("tracelens_traces_late_total", "Traces that arrived for an already sealed time bucket.", b.late),
        ("tracelens_buckets_expired_total", "Time buckets dropped by retention.", b.expired),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    let _ = writeln!(
        out,
        "# HELP tracelens_open_spans Spans in traces not yet complete.\n# TYPE tracelens_open_spans gauge\ntracelens_open_spans {}",
        live.open_spans()
    );
    let _ = writeln!(
        out,
        "# HELP tracelens_metric_label_sets_folded Label sets past the cap of {} per family, summed into the (overflow) ones.\n# TYPE tracelens_metric_label_sets_folded gauge\ntracelens_metric_label_sets_folded{{family=\"service_graph\"}} {}\ntracelens_metric_label_sets_folded{{family=\"spanmetrics\"}} {}",
        cap, folded.0, folded.1
    );
    let _ = writeln!(
        out,
        "# HELP tracelens_time_buckets Live-analysis time buckets held.\n# TYPE tracelens_time_buckets gauge\ntracelens_time_buckets {}",
        live.buckets_held().0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveConfig;
    use tracelens_core::model::{Span, SpanId, TraceId};

    const NOW: u64 = 1_800_000_000_000;

    /// `calls` traces of `client` calling `server` (a client span and its
    /// server child), trace ids from `first`.
    fn calls(live: &mut Live, first: u8, calls: u8, client: &str, server: &str) {
        for t in first..first + calls {
            let (dict, _) = live.convert_parts();
            let mut spans = Vec::new();
            for (id, service, parent) in [(1u8, client, None), (2, server, Some(1u8))] {
                let mut s = Span::new(TraceId([t; 16]), SpanId([id; 8]));
                (s.service, s.name) = (dict.intern(service), dict.intern("op"));
                s.resource = dict.resource(Vec::new());
                s.parent_id = parent.map(|p| SpanId([p; 8]));
                s.kind = if parent.is_some() { SpanKind::Server } else { SpanKind::Client };
                s.start_ns = (NOW - 30_000) * 1_000_000;
                s.end_ns = s.start_ns + 1_000_000;
                spans.push(s);
            }
            live.ingest(spans, NOW);
        }
        live.tick(NOW + 60_000);
    }

    fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        let mut out: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
        out.sort();
        out
    }

    #[test]
    fn label_sets_past_the_cap_are_summed_into_overflow_ones_and_stay_put() {
        let mut live = Live::new(LiveConfig { max_metric_label_sets: 2, idle_ms: 1_000, ..LiveConfig::default() });
        calls(&mut live, 1, 3, "a", "b");
        calls(&mut live, 10, 2, "a", "c");
        calls(&mut live, 20, 1, "a", "d");
        let text = render(&mut live);
        assert_eq!(
            lines(&text, "traces_service_graph_request_total"),
            [
                r#"traces_service_graph_request_total{client="(overflow)",server="(overflow)",connection_type=""} 1"#,
                r#"traces_service_graph_request_total{client="a",server="b",connection_type=""} 3"#,
                r#"traces_service_graph_request_total{client="a",server="c",connection_type=""} 2"#,
            ]
        );
        // Operations: (a, op, CLIENT) 6 calls, then (b, op, SERVER) 3;
        // c's and d's server spans are summed.
        assert_eq!(
            lines(&text, "traces_spanmetrics_calls_total"),
            [
                r#"traces_spanmetrics_calls_total{service="(overflow)",span_name="(overflow)",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 3"#,
                r#"traces_spanmetrics_calls_total{service="a",span_name="op",span_kind="SPAN_KIND_CLIENT",status_code="STATUS_CODE_UNSET"} 6"#,
                r#"traces_spanmetrics_calls_total{service="b",span_name="op",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 3"#,
            ]
        );
        assert!(text.contains(r#"traces_spanmetrics_latency_count{service="(overflow)",span_name="(overflow)",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 3"#), "{text}");
        assert_eq!(
            lines(&text, "tracelens_metric_label_sets_folded{"),
            [
                r#"tracelens_metric_label_sets_folded{family="service_graph"} 1"#,
                r#"tracelens_metric_label_sets_folded{family="spanmetrics"} 2"#,
            ]
        );
        // A busier newcomer does not push an admitted label set out (its
        // counter would go back).
        calls(&mut live, 30, 5, "a", "e");
        let text = render(&mut live);
        assert_eq!(
            lines(&text, "traces_service_graph_request_total"),
            [
                r#"traces_service_graph_request_total{client="(overflow)",server="(overflow)",connection_type=""} 6"#,
                r#"traces_service_graph_request_total{client="a",server="b",connection_type=""} 3"#,
                r#"traces_service_graph_request_total{client="a",server="c",connection_type=""} 2"#,
            ]
        );
    }

    #[test]
    fn admitted_keys_without_figures_make_room() {
        let mut admitted: FxHashSet<&str> = ["gone", "kept"].into_iter().collect();
        admit(&mut admitted, &[("kept", 1), ("small", 1), ("big", 9), ("also", 9)], 3);
        let mut keys: Vec<_> = admitted.into_iter().collect();
        keys.sort();
        assert_eq!(keys, ["also", "big", "kept"], "most calls first, then by key");
    }
}
