//! `GET /metrics`: the live service graph and span metrics in Prometheus
//! text format, named as Tempo's metrics-generator names them (so Grafana's
//! service-graph and span-metrics views work unchanged), plus tracelens's
//! own counters.

use std::fmt::Write as _;

use super::live::Live;
use crate::analysis::LatencyHistogram;
use crate::analysis::metrics::{OVERFLOW_OPERATION, Operation};
use crate::model::SpanKind;

/// Tempo's service-graph buckets, seconds.
const GRAPH_BUCKETS: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &LatencyHistogram, buckets: &[f64]) {
    for le in buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {}", h.count_at_most((le * 1e9) as u64));
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_ns() as f64 / 1e9);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count());
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
pub fn render(live: &Live) -> String {
    let mut out = String::new();
    let mut graph = live.graph_state();
    graph.finish();
    let edges = graph.edges(&live.dict);
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
    let mut ops: Vec<_> = live.metrics_state().iter().collect();
    ops.sort_by_key(|(k, _)| **k);
    let op_label = |k: &(crate::model::Sym, Operation, SpanKind)| {
        let name = match k.1 {
            Operation::Name(n) => live.dict.resolve(n).to_string(),
            Operation::Overflow => OVERFLOW_OPERATION.to_string(),
        };
        format!(
            "service=\"{}\",span_name=\"{}\",span_kind=\"{}\"",
            escape(live.dict.resolve(k.0)),
            escape(&name),
            kind_label(k.2)
        )
    };
    out.push_str("# HELP traces_spanmetrics_calls_total Spans by service, operation, kind and status.\n");
    out.push_str("# TYPE traces_spanmetrics_calls_total counter\n");
    for (k, s) in &ops {
        let l = op_label(k);
        if s.calls > s.errors {
            let _ = writeln!(
                out,
                "traces_spanmetrics_calls_total{{{l},status_code=\"STATUS_CODE_UNSET\"}} {}",
                s.calls - s.errors
            );
        }
        if s.errors > 0 {
            let _ =
                writeln!(out, "traces_spanmetrics_calls_total{{{l},status_code=\"STATUS_CODE_ERROR\"}} {}", s.errors);
        }
    }
    out.push_str("# HELP traces_spanmetrics_latency Span duration by service, operation and kind, seconds.\n");
    out.push_str("# TYPE traces_spanmetrics_latency histogram\n");
    for (k, s) in &ops {
        if s.latency.count() > 0 {
            histogram(&mut out, "traces_spanmetrics_latency", &op_label(k), &s.latency, &span_buckets);
        }
    }

    let c = live.counters;
    for (name, help, value) in [
        ("tracelens_spans_accepted_total", "Spans accepted into analysis.", c.spans_accepted),
        ("tracelens_spans_rejected_total", "Spans rejected through partial success.", c.spans_rejected),
        (
            "tracelens_requests_refused_total",
            "Requests refused whole (undecodable, oversize, overload).",
            c.requests_refused,
        ),
        ("tracelens_traces_completed_total", "Traces completed and analysed.", c.traces_completed),
        ("tracelens_forced_trace_closes_total", "Times the open-span cap closed traces early.", c.forced_closes),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    let _ = writeln!(
        out,
        "# HELP tracelens_open_spans Spans in traces not yet complete.\n# TYPE tracelens_open_spans gauge\ntracelens_open_spans {}",
        live.open_spans()
    );
    out
}
