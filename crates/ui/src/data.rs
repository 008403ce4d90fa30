//! [`ReportData`]: everything the pictures draw, as one JSON document —
//! the service graph with a latency histogram per edge, every operation
//! with its histogram, the bottlenecks and the advice drawn from them, the
//! kept traces and, for a deploy,
//! the verdict with each judged scope's histograms per arm. The offline
//! report inlines it; the live UI fetches it from `/api/v1/report`.

use serde::Serialize;

use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::bottleneck::BottleneckView;
use tracelens_core::analysis::histogram::LatencyHistogram;
use tracelens_core::analysis::recommend::{self, Recommendation};
use tracelens_core::judge::Verdict;
use tracelens_core::model::Dictionary;

use crate::keeper::KeptTraces;

/// Histogram bins per power of ten.
pub const BINS_PER_DECADE: u32 = 10;

/// Bottleneck rows (operations, call paths, patterns: each) the pictures
/// carry, the largest first; the rest are counted in a note.
pub const BOTTLENECK_ROWS: usize = 200;

/// A latency histogram for plots: `[bin, count, bin, count, ...]` over
/// non-empty bins (see [`LatencyHistogram::log_bins`]).
pub type Bins = Vec<u64>;

fn bins(h: &LatencyHistogram) -> Bins {
    h.log_bins(BINS_PER_DECADE).into_iter().flat_map(|(b, c)| [u64::from(b), c]).collect()
}

/// Latency percentiles, ns.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
}

fn percentiles(h: &LatencyHistogram) -> Percentiles {
    let [p50, p95, p99] = h.quantiles([0.5, 0.95, 0.99]);
    Percentiles { p50, p95, p99 }
}

/// A node of the graph.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// Name.
    pub name: String,
    /// `service`, `database`, `messaging_system` or `virtual`.
    pub kind: &'static str,
}

/// An edge of the graph.
#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    /// Calling node (index into the nodes).
    pub from: usize,
    /// Called node.
    pub to: usize,
    /// `""`, `database`, `messaging_system` or `virtual_node`.
    pub connection_type: &'static str,
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failed: u64,
    /// Server-side latency percentiles.
    pub latency: Percentiles,
    /// Server-side latency histogram.
    pub histogram: Bins,
}

/// The service graph.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Graph {
    /// Nodes, by name.
    pub nodes: Vec<Node>,
    /// Edges, by client, server and connection type.
    pub edges: Vec<Edge>,
}

/// One operation's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Operation {
    /// Service.
    pub service: String,
    /// Operation.
    pub operation: String,
    /// Span kind, lower case.
    pub kind: &'static str,
    /// Spans.
    pub calls: u64,
    /// Spans with status ERROR.
    pub errors: u64,
    /// Latency percentiles.
    pub latency: Percentiles,
    /// Latency histogram.
    pub histogram: Bins,
}

/// What the data was made from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Source {
    /// Inputs (files), or the receiver's address.
    pub inputs: Vec<String>,
    /// Spans analysed.
    pub spans: u64,
    /// Traces analysed.
    pub traces: u64,
    /// Earliest span start, unix ns as text.
    pub start_unix_nano: Option<String>,
    /// Latest span end, unix ns as text.
    pub end_unix_nano: Option<String>,
}

/// One judged scope's latency per arm.
#[derive(Clone, Debug, Serialize)]
pub struct ArmHistograms {
    /// The scope, as the verdict's metric names start.
    pub label: String,
    /// Baseline latency.
    pub baseline: Bins,
    /// Candidate latency.
    pub candidate: Bins,
}

/// A verdict with what its plots need.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictData {
    /// The verdict as `tracelens verdict --format json` prints it.
    pub verdict: Verdict,
    /// Latency per judged scope and arm.
    pub histograms: Vec<ArmHistograms>,
}

impl VerdictData {
    /// A verdict with the judge's per-arm latencies
    /// ([`tracelens_core::judge::Judge::arm_latencies`]).
    pub fn new(verdict: Verdict, arms: &[(String, LatencyHistogram, LatencyHistogram)]) -> VerdictData {
        let histograms = arms
            .iter()
            .filter(|(_, b, c)| b.count() + c.count() > 0)
            .map(|(label, b, c)| ArmHistograms { label: label.clone(), baseline: bins(b), candidate: bins(c) })
            .collect();
        VerdictData { verdict, histograms }
    }
}

/// Everything the report and the live UI draw.
#[derive(Clone, Debug, Serialize)]
pub struct ReportData {
    /// Title.
    pub title: String,
    /// `tracelens VERSION`.
    pub generator: String,
    /// Live data (from a receiver) or a report of files.
    pub live: bool,
    /// What it was made from.
    pub source: Source,
    /// Histogram bins per power of ten.
    pub bins_per_decade: u32,
    /// The service graph.
    pub graph: Graph,
    /// Every operation.
    pub operations: Vec<Operation>,
    /// Critical-path aggregates.
    pub bottlenecks: BottleneckView,
    /// Advice from the bottleneck patterns, most time saved first.
    pub recommendations: Vec<Recommendation>,
    /// Whole traces to draw.
    pub traces: Option<KeptTraces>,
    /// A deploy's verdict.
    pub verdict: Option<VerdictData>,
    /// Things to know about the data.
    pub notes: Vec<String>,
}

impl ReportData {
    /// The data of finished `analyses` over names in `dict`.
    pub fn new(title: &str, source: Source, dict: &Dictionary, analyses: &TraceAnalyses) -> ReportData {
        let mut bottlenecks = analyses.bottlenecks.view(dict);
        let mut recommendations = recommend::recommendations(&bottlenecks);
        recommendations.truncate(BOTTLENECK_ROWS);
        let mut notes = Vec::new();
        let cut = [
            ("operations", bottlenecks.operations.len()),
            ("call paths", bottlenecks.call_paths.len()),
            ("patterns", bottlenecks.patterns.len()),
        ];
        bottlenecks.operations.truncate(BOTTLENECK_ROWS);
        bottlenecks.call_paths.truncate(BOTTLENECK_ROWS);
        bottlenecks.patterns.truncate(BOTTLENECK_ROWS);
        for (what, n) in cut {
            if n > BOTTLENECK_ROWS {
                notes.push(format!("Bottlenecks: the first {BOTTLENECK_ROWS} of {n} {what}."));
            }
        }
        ReportData {
            title: title.to_string(),
            generator: format!("tracelens {}", env!("CARGO_PKG_VERSION")),
            live: false,
            source,
            bins_per_decade: BINS_PER_DECADE,
            graph: graph(dict, analyses),
            operations: operations(dict, analyses),
            bottlenecks,
            recommendations,
            traces: None,
            verdict: None,
            notes,
        }
    }

    /// Keeps only what concerns `service`: its edges and their nodes, its
    /// operations and bottlenecks.
    pub fn only_service(&mut self, service: &str) {
        let graph = &mut self.graph;
        let touches = |e: &Edge| graph.nodes[e.from].name == service || graph.nodes[e.to].name == service;
        let edges: Vec<Edge> = graph.edges.iter().filter(|e| touches(e)).cloned().collect();
        let mut keep: Vec<usize> = edges.iter().flat_map(|e| [e.from, e.to]).collect();
        if let Some(i) = graph.nodes.iter().position(|n| n.name == service) {
            keep.push(i);
        }
        keep.sort_unstable();
        keep.dedup();
        let mut position = vec![usize::MAX; graph.nodes.len()];
        for (new, &old) in keep.iter().enumerate() {
            position[old] = new;
        }
        graph.nodes = keep.iter().map(|&i| graph.nodes[i].clone()).collect();
        graph.edges = edges.into_iter().map(|e| Edge { from: position[e.from], to: position[e.to], ..e }).collect();
        self.operations.retain(|o| o.service == service);
        let b = &mut self.bottlenecks;
        b.operations.retain(|o| o.service == service);
        b.call_paths.retain(|o| o.service == service);
        b.patterns.retain(|p| p.service == service);
        self.recommendations.retain(|r| r.service == service);
    }
}

fn graph(dict: &Dictionary, analyses: &TraceAnalyses) -> Graph {
    let view = analyses.graph.view(dict);
    // Both are sorted by (client, server, connection type).
    let raw = analyses.graph.edges(dict);
    let nodes = view.nodes.iter().map(|n| Node { name: n.name.clone(), kind: n.kind.as_str() }).collect();
    let edges = view
        .edges
        .iter()
        .zip(raw)
        .map(|(e, (client, server, _, stats))| {
            debug_assert_eq!((&e.client, &e.server), (&client, &server), "view and raw edges in one order");
            Edge {
                from: e.client_node,
                to: e.server_node,
                connection_type: e.connection_type,
                calls: e.calls,
                failed: e.failed,
                latency: percentiles(&stats.server_latency),
                histogram: bins(&stats.server_latency),
            }
        })
        .collect();
    Graph { nodes, edges }
}

fn operations(dict: &Dictionary, analyses: &TraceAnalyses) -> Vec<Operation> {
    use tracelens_core::analysis::metrics::{OVERFLOW_OPERATION, Operation as Op};
    let mut out: Vec<Operation> = analyses
        .metrics
        .iter()
        .map(|(&(service, op, kind), stats)| Operation {
            service: dict.resolve(service).to_string(),
            operation: match op {
                Op::Name(n) => dict.resolve(n).to_string(),
                Op::Overflow => OVERFLOW_OPERATION.to_string(),
            },
            kind: kind.as_str(),
            calls: stats.calls,
            errors: stats.errors,
            latency: percentiles(&stats.latency),
            histogram: bins(&stats.latency),
        })
        .collect();
    out.sort_by(|a, b| (&a.service, &a.operation, a.kind).cmp(&(&b.service, &b.operation, b.kind)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::model::Warnings;
    use tracelens_core::read::{ReadOptions, read_spans};

    fn shop() -> ReportData {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json");
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        let file = std::fs::File::open(path).unwrap();
        read_spans(path, file, &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s)).unwrap();
        let mut analyses = TraceAnalyses::new(&dict, 100);
        for t in tracelens_core::assemble::assemble_all(spans).0 {
            analyses.add_trace(&t);
        }
        analyses.finish();
        ReportData::new("shop", Source::default(), &dict, &analyses)
    }

    fn edge<'a>(d: &'a ReportData, from: &str, to: &str) -> &'a Edge {
        d.graph.edges.iter().find(|e| d.graph.nodes[e.from].name == from && d.graph.nodes[e.to].name == to).unwrap()
    }

    #[test]
    fn each_edge_carries_its_own_histogram() {
        let d = shop();
        assert_eq!((d.graph.nodes.len(), d.graph.edges.len()), (7, 7));
        let e = edge(&d, "checkout", "payments");
        assert_eq!((e.calls, e.failed, e.latency.p99), (1, 1, 46_000_000));
        // 46 ms: log10(4.6e7) = 7.66, bin 76 at 10 per decade.
        assert_eq!(e.histogram, [76, 1]);
        let e = edge(&d, "user", "frontend");
        assert_eq!(e.calls, 2);
        assert_eq!(e.histogram.iter().skip(1).step_by(2).sum::<u64>(), 2);
        let charge = d.operations.iter().find(|o| o.service == "payments" && o.operation == "Charge").unwrap();
        assert_eq!((charge.kind, charge.errors, charge.histogram.as_slice()), ("server", 1, &[76, 1][..]));
    }

    #[test]
    fn one_service_keeps_its_edges_with_their_nodes_renumbered() {
        let mut d = shop();
        d.only_service("payments");
        let names: Vec<&str> = d.graph.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["checkout", "payments"]);
        assert_eq!(d.graph.edges.len(), 1);
        assert_eq!(edge(&d, "checkout", "payments").latency.p99, 46_000_000);
        assert!(d.operations.iter().all(|o| o.service == "payments"));
        assert!(d.bottlenecks.operations.iter().all(|o| o.service == "payments"));
    }
}
