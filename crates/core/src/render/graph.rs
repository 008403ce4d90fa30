//! The service graph as a table, Graphviz DOT (renders with `dot` as is) and
//! Mermaid (renders on GitHub as is).

use std::fmt::Write as _;

use crate::analysis::graph::{EdgeView, GraphView, NodeKind};

use super::{Align, TextTable, count, duration};

fn edge_label(e: &EdgeView) -> String {
    let mut label = count(e.calls, "call");
    if e.failed > 0 {
        let _ = write!(label, ", {} failed ({:.1}%)", e.failed, 100.0 * e.failed as f64 / e.calls as f64);
    }
    if e.server_latency.count > 0 {
        let _ = write!(label, ", p99 {}", duration(e.server_latency.p99_ns));
    }
    label
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT.
pub fn dot(view: &GraphView) -> String {
    let mut out = String::from(
        "digraph tracelens {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    for (i, n) in view.nodes.iter().enumerate() {
        let shape = match n.kind {
            NodeKind::Service => "shape=box, style=rounded",
            NodeKind::Database => "shape=cylinder",
            NodeKind::MessagingSystem => "shape=cds",
            NodeKind::Virtual => "shape=ellipse, style=dashed",
        };
        let _ = writeln!(out, "  n{i} [label=\"{}\", {shape}];", dot_escape(&n.name));
    }
    for e in &view.edges {
        let (a, b) = (e.client_node, e.server_node);
        let mut attrs = format!("label=\"{}\"", dot_escape(&edge_label(e)));
        if e.failed > 0 {
            attrs.push_str(", color=red");
        }
        if e.inferred == e.calls && e.calls > 0 {
            attrs.push_str(", style=dashed");
        }
        let _ = writeln!(out, "  n{a} -> n{b} [{attrs}];");
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Mermaid flowchart.
pub fn mermaid(view: &GraphView) -> String {
    let mut out = String::from("flowchart LR\n");
    for (i, n) in view.nodes.iter().enumerate() {
        let name = mermaid_escape(&n.name);
        let node = match n.kind {
            NodeKind::Service => format!("n{i}[\"{name}\"]"),
            NodeKind::Database => format!("n{i}[(\"{name}\")]"),
            NodeKind::MessagingSystem => format!("n{i}>\"{name}\"]"),
            NodeKind::Virtual => format!("n{i}((\"{name}\"))"),
        };
        let _ = writeln!(out, "  {node}");
    }
    for e in &view.edges {
        let (a, b) = (e.client_node, e.server_node);
        let arrow = if e.inferred == e.calls && e.calls > 0 { "-.->" } else { "-->" };
        let _ = writeln!(out, "  n{a} {arrow}|\"{}\"| n{b}", mermaid_escape(&edge_label(e)));
    }
    out
}

/// An aligned text table.
pub fn table(view: &GraphView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Service graph: {}, {}",
        count(view.nodes.len() as u64, "node"),
        count(view.edges.len() as u64, "edge")
    );
    // "client -> server" in one column, the arrows aligned.
    let cw = view.edges.iter().map(|e| e.client.chars().count()).max().unwrap_or(0).max("CLIENT".len());
    let mut t = TextTable::new(&[
        (&format!("{:<cw$}    SERVER", "CLIENT"), Align::Left),
        ("TYPE", Align::Left),
        ("CALLS", Align::Right),
        ("FAILED", Align::Right),
        ("P50", Align::Right),
        ("P99", Align::Right),
        ("MAX", Align::Right),
    ])
    .indent(2);
    for e in &view.edges {
        let ty = match (e.connection_type, e.inferred > 0) {
            ("", true) => "inferred",
            ("", false) => "-",
            (t, _) => t,
        };
        let l = &e.server_latency;
        let (p50, p99, max) = if l.count > 0 {
            (duration(l.p50_ns), duration(l.p99_ns), duration(l.max_ns))
        } else {
            ("-".to_string(), "-".to_string(), "-".to_string())
        };
        t.row(vec![
            format!("{:<cw$} -> {}", e.client, e.server),
            ty.to_string(),
            e.calls.to_string(),
            e.failed.to_string(),
            p50,
            p99,
            max,
        ]);
    }
    let mut text = Vec::new();
    let _ = t.write(&mut text);
    out.push_str(&String::from_utf8_lossy(&text));
    let untimed: u64 = view.edges.iter().map(|e| e.without_duration).sum();
    if untimed > 0 {
        let _ = writeln!(
            out,
            "  {} without a usable duration: counted in CALLS, left out of the latencies",
            count(untimed, "call")
        );
    }
    let u = &view.unpaired;
    if *u != Default::default() {
        let _ = writeln!(
            out,
            "  unpaired spans: {} client, {} producer, {} orphan server, {} orphan consumer, {} extra server",
            u.client, u.producer, u.orphan_server, u.orphan_consumer, u.extra_server
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::LatencySummary;
    use crate::analysis::graph::{NodeView, Unpaired};

    fn view() -> GraphView {
        GraphView {
            nodes: vec![
                NodeView { name: "we\"ird\\svc".to_string(), kind: NodeKind::Service },
                NodeView { name: "db \"main\"".to_string(), kind: NodeKind::Database },
            ],
            edges: vec![EdgeView {
                client: "we\"ird\\svc".to_string(),
                server: "db \"main\"".to_string(),
                client_node: 0,
                server_node: 1,
                connection_type: "database",
                calls: 3,
                failed: 1,
                inferred: 0,
                server_latency: LatencySummary { count: 3, p99_ns: 2_500_000, ..Default::default() },
                client_latency: None,
                without_duration: 0,
            }],
            unpaired: Unpaired::default(),
        }
    }

    #[test]
    fn dot_escapes_names_and_marks_failures() {
        let dot = dot(&view());
        assert!(dot.contains(r#"n0 [label="we\"ird\\svc", shape=box, style=rounded];"#), "{dot}");
        assert!(dot.contains(r#"n1 [label="db \"main\"", shape=cylinder];"#), "{dot}");
        assert!(dot.contains(r#"n0 -> n1 [label="3 calls, 1 failed (33.3%), p99 2.50ms", color=red];"#), "{dot}");
    }

    #[test]
    fn mermaid_escapes_quotes() {
        let m = mermaid(&view());
        assert!(m.contains("n1[(\"db #quot;main#quot;\")]"), "{m}");
        assert!(m.contains("n0 -->|\"3 calls, 1 failed (33.3%), p99 2.50ms\"| n1"), "{m}");
    }
}
