//! `GET /metrics`: the live service graph and span metrics in Prometheus
//! text format, named as Tempo's metrics-generator names them (so Grafana's
//! service-graph and span-metrics views work unchanged), plus tracelens's
//! own counters.

use std::fmt::Write as _;

use super::Live;
use tracelens_core::analysis::LatencyHistogram;
use tracelens_core::analysis::metrics::{OVERFLOW_OPERATION, Operation};
use tracelens_core::model::SpanKind;

/// Tempo's service-graph buckets, seconds.
const GRAPH_BUCKETS: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];

fn escape(v: &str) -> String {
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
pub fn render(live: &Live) -> String {
    let mut out = String::new();
    let cumulative = live.cumulative();
    let graph = &cumulative.graph;
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
    let mut ops: Vec<_> = cumulative.metrics.iter().collect();
    ops.sort_by_key(|(k, _)| **k);
    let op_label = |k: &(tracelens_core::model::Sym, Operation, SpanKind)| {
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
        "# HELP tracelens_time_buckets Live-analysis time buckets held.\n# TYPE tracelens_time_buckets gauge\ntracelens_time_buckets {}",
        live.buckets_held().0
    );
    out
}
