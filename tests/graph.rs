//! The service dependency graph and latency histograms: every edge of known
//! topologies, each way an edge forms, the public traces, and the DOT and
//! Mermaid renderings.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{analyze, fixture, public, stderr, stdout, tracelens};
use tracelens::analysis::ServiceGraph;
use tracelens::analysis::graph::{EdgeView, GraphView, NodeKind};
use tracelens::model::SpanKind;

fn graph_of(path: &Path) -> GraphView {
    let f = analyze(path);
    let mut g = ServiceGraph::new(&f.dict);
    for t in &f.traces {
        g.add_trace(t);
    }
    g.finish();
    g.view(&f.dict)
}

/// (client, server, connection type)
type EdgeKey = (String, String, String);

/// (client, server, connection type) -> (calls, failed)
fn edge_set(view: &GraphView) -> BTreeMap<EdgeKey, (u64, u64)> {
    view.edges
        .iter()
        .map(|e| ((e.client.clone(), e.server.clone(), e.connection_type.to_string()), (e.calls, e.failed)))
        .collect()
}

fn key(c: &str, s: &str, t: &str) -> EdgeKey {
    (c.to_string(), s.to_string(), t.to_string())
}

fn edge<'a>(view: &'a GraphView, client: &str, server: &str) -> &'a EdgeView {
    view.edge(client, server).unwrap_or_else(|| panic!("no edge {client} -> {server}: {:?}", edge_set(view)))
}

#[test]
fn shop_fixture_edges_in_every_format() {
    let expected: BTreeMap<_, _> = [
        (key("user", "frontend", "virtual_node"), (2, 0)),
        (key("frontend", "checkout", ""), (1, 0)),
        (key("frontend", "cart", ""), (1, 0)),
        (key("checkout", "cart", ""), (1, 0)),
        (key("checkout", "payments", ""), (1, 1)),
        (key("checkout", "shipping", "messaging_system"), (1, 0)),
        (key("cart", "carts", "database"), (1, 0)),
    ]
    .into_iter()
    .collect();
    for file in ["shop.otlp.json", "shop.otlp.pb", "shop.otlp-stream-zstd.bin", "shop.jaeger.json", "shop.zipkin.json"]
    {
        let view = graph_of(&fixture(file));
        assert_eq!(edge_set(&view), expected, "{file}");
        assert_eq!(view.unpaired, Default::default(), "{file}");
        let kinds: BTreeMap<&str, NodeKind> = view.nodes.iter().map(|n| (n.name.as_str(), n.kind)).collect();
        assert_eq!(kinds["carts"], NodeKind::Database, "{file}");
        assert_eq!(kinds["user"], NodeKind::Virtual, "{file}");
        assert_eq!(kinds["checkout"], NodeKind::Service, "{file}");
        // Latencies: server side is the callee's span, client side the caller's.
        let pay = edge(&view, "checkout", "payments");
        assert_eq!((pay.server_latency.p50_ns, pay.server_latency.max_ns), (46_000_000, 46_000_000), "{file}");
        assert_eq!(pay.client_latency.unwrap().p50_ns, 49_000_000, "{file}");
        let mq = edge(&view, "checkout", "shipping");
        assert_eq!((mq.client_latency.unwrap().p50_ns, mq.server_latency.p50_ns), (2_000_000, 40_000_000), "{file}");
        let user = edge(&view, "user", "frontend");
        assert_eq!((user.server_latency.min_ns, user.server_latency.max_ns), (30_000_000, 120_000_000), "{file}");
        assert_eq!(user.server_latency.mean_ns, 75_000_000, "{file}");
        assert!(user.client_latency.is_none(), "{file}");
    }
}

/// Exact order statistics of `values` bracket an HDR quantile within 0.1%.
fn assert_quantile(values: &mut [u64], q: f64, got: u64, what: &str) {
    values.sort_unstable();
    let rank = (q * values.len() as f64).ceil().max(1.0) as usize - 1;
    let lo = values[rank.saturating_sub(1)] as f64 * 0.999;
    let hi = values[(rank + 1).min(values.len() - 1)] as f64 * 1.001;
    assert!((lo..=hi).contains(&(got as f64)), "{what}: q{q} = {got}, exact neighbourhood {lo}..{hi}");
}

#[test]
fn generated_shop_graph_matches_the_spans() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.pb");
    let out = tracelens(
        &["generate", "--traces", "3000", "--format", "otlp-protobuf-stream", "-o", path.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let f = analyze(&path);
    let mut g = ServiceGraph::new(&f.dict);
    for t in &f.traces {
        g.add_trace(t);
    }
    g.finish();
    let view = g.view(&f.dict);

    // Independently: every client->server pair and every database call, from raw spans.
    let mut calls: BTreeMap<EdgeKey, (u64, u64, Vec<u64>)> = BTreeMap::new();
    for t in &f.traces {
        for (i, s) in t.spans.iter().enumerate() {
            let svc = f.dict.resolve(s.service).to_string();
            let entry = match (s.kind, t.parent(i)) {
                (SpanKind::Server | SpanKind::Consumer, Some(p)) => {
                    let parent = &t.spans[p];
                    let ty = if s.kind == SpanKind::Consumer { "messaging_system" } else { "" };
                    let e = calls.entry(key(f.dict.resolve(parent.service), &svc, ty)).or_default();
                    e.1 += u64::from(s.is_error() || parent.is_error());
                    e
                }
                (SpanKind::Server, None) => {
                    let e = calls.entry(key("user", &svc, "virtual_node")).or_default();
                    e.1 += u64::from(s.is_error());
                    e
                }
                (SpanKind::Client, _) if !s.attributes.iter().any(|a| f.dict.resolve(a.key) == "rpc.system") => {
                    let peer = s.attributes.iter().find(|a| f.dict.resolve(a.key) == "peer.service").unwrap();
                    let e = calls.entry(key(&svc, peer.value.as_str().unwrap(), "database")).or_default();
                    e.1 += u64::from(s.is_error());
                    e
                }
                _ => continue,
            };
            entry.0 += 1;
            entry.2.push(s.duration_ns().unwrap());
        }
    }
    let got = edge_set(&view);
    let want: BTreeMap<_, _> = calls.iter().map(|(k, v)| (k.clone(), (v.0, v.1))).collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 16, "every call of the shop topology: {got:?}");
    for e in &view.edges {
        let mut durations = calls[&key(&e.client, &e.server, e.connection_type)].2.clone();
        let l = &e.server_latency;
        for (q, v) in [(0.5, l.p50_ns), (0.9, l.p90_ns), (0.99, l.p99_ns)] {
            assert_quantile(&mut durations, q, v, &format!("{} -> {}", e.client, e.server));
        }
        assert_eq!(l.max_ns, *durations.iter().max().unwrap());
        assert_eq!(l.count, durations.len() as u64);
    }
    assert_eq!(view.unpaired, Default::default());
}

#[test]
fn messaging_database_virtual_and_orphan_edges() {
    let view = graph_of(&fixture("graph-edges.otlp.jsonl"));
    let expected: BTreeMap<_, _> = [
        (key("orders", "billing", "messaging_system"), (1, 0)),
        // Across traces through a span link, the consumer read first.
        (key("orders", "shipping", "messaging_system"), (1, 0)),
        (key("user", "orders", "virtual_node"), (2, 0)),
        (key("user", "inventory", "virtual_node"), (1, 0)),
        (key("inventory", "pg-main", "database"), (1, 0)),
        (key("inventory", "redis", "database"), (1, 0)),
        (key("inventory", "10.0.0.5:3306", "database"), (1, 1)),
        (key("inventory", "sql-proxy", "database"), (1, 0)),
        (key("edge-lb", "gateway", "virtual_node"), (1, 0)),
        (key("gateway", "payments-api", "virtual_node"), (1, 0)),
        (key("gateway", "rabbitmq", "virtual_node"), (1, 0)),
        (key("user", "api", "virtual_node"), (1, 0)),
        (key("api", "backend", ""), (1, 0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(edge_set(&view), expected);
    let u = view.unpaired;
    assert_eq!((u.client, u.producer, u.orphan_server, u.orphan_consumer, u.extra_server), (1, 0, 1, 0, 1));
    let kinds: BTreeMap<&str, NodeKind> = view.nodes.iter().map(|n| (n.name.as_str(), n.kind)).collect();
    assert_eq!(kinds["rabbitmq"], NodeKind::MessagingSystem);
    assert_eq!(kinds["pg-main"], NodeKind::Database);
    assert_eq!(kinds["payments-api"], NodeKind::Virtual);
    assert!(!kinds.contains_key("worker"), "an orphan server gets no user node: {kinds:?}");
    // Database edges measure the client span on both sides.
    let pg = edge(&view, "inventory", "pg-main");
    assert_eq!((pg.server_latency.p50_ns, pg.client_latency.unwrap().p50_ns), (4_000_000, 4_000_000));
}

#[test]
fn spans_without_kinds_fall_back_to_service_changes() {
    let view = graph_of(&fixture("graph-kindless.jaeger.json"));
    let expected: BTreeMap<_, _> = [
        (key("web", "api", ""), (1, 0)),
        (key("api", "metrics", ""), (1, 1)),
        (key("api", "cache", "virtual_node"), (1, 0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(edge_set(&view), expected);
    assert!(view.edges.iter().all(|e| e.inferred == e.calls), "all inferred");
    assert!(!view.edges.iter().any(|e| e.client == e.server), "never a self-edge");
    assert_eq!(edge(&view, "web", "api").server_latency.p50_ns, 40_000_000);
}

#[test]
fn public_traces_give_the_expected_graphs() {
    let yelp = graph_of(&public("zipkin/yelp.json"));
    let expected: BTreeMap<_, _> = [
        (key("user", "routing", "virtual_node"), (1, 0)),
        (key("routing", "unknown", ""), (1, 0)),
        (key("routing", "yelp-main", ""), (1, 0)),
        (key("unknown", "yelp-main", ""), (2, 0)),
        (key("unknown", "yelp_main/api_proxy", ""), (1, 0)),
        (key("yelp-main", "mobile_api", ""), (1, 0)),
        (key("yelp-main", "memcache", "virtual_node"), (3, 0)),
        (key("yelp-main", "mysql", "virtual_node"), (2, 0)),
        (key("mobile_api", "spectre", ""), (1, 0)),
        (key("mobile_api", "memcache", "virtual_node"), (2, 0)),
        (key("mobile_api", "blt", "virtual_node"), (1, 0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(edge_set(&yelp), expected);
    assert_eq!(yelp.edges.iter().filter(|e| e.inferred > 0).count(), 3);

    let kafka = graph_of(&public("zipkin/messaging-kafka.json"));
    let expected: BTreeMap<_, _> = [
        (key("kafka", "servicea", "virtual_node"), (1, 0)),
        (key("servicea", "kafka", "virtual_node"), (6, 0)),
        (key("servicea", "servicea", "messaging_system"), (1, 0)),
        (key("servicea", "serviceb", "messaging_system"), (2, 0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(edge_set(&kafka), expected);
    assert_eq!(kafka.unpaired.extra_server, 3);

    let bookinfo = graph_of(&public("tempo/responseTrace.json"));
    let expected: BTreeMap<_, _> = [
        (key("istio-ingressgateway.istio-system", "productpage.bookinfo", ""), (1, 0)),
        (key("productpage.bookinfo", "details.bookinfo", ""), (1, 0)),
        (key("productpage.bookinfo", "reviews.bookinfo", ""), (1, 0)),
        (key("reviews.bookinfo", "ratings.bookinfo", ""), (1, 0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(edge_set(&bookinfo), expected);
}

#[test]
fn merging_graphs_equals_building_one() {
    let f = analyze(&fixture("graph-edges.otlp.jsonl"));
    let mut whole = ServiceGraph::new(&f.dict);
    let (mut a, mut b) = (ServiceGraph::new(&f.dict), ServiceGraph::new(&f.dict));
    for (i, t) in f.traces.iter().enumerate() {
        whole.add_trace(t);
        if i % 2 == 0 { a.add_trace(t) } else { b.add_trace(t) }
    }
    a.merge(&b);
    whole.finish();
    a.finish();
    assert_eq!(a.view(&f.dict), whole.view(&f.dict));
}

#[test]
fn graph_command_formats() {
    let input = fixture("shop.otlp.json");
    let json = tracelens(&["graph", "--format", "json", input.to_str().unwrap()], None);
    assert!(json.status.success(), "{}", stderr(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let node = v["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "carts").unwrap();
    assert_eq!(node["type"], "database");
    let e =
        v["edges"].as_array().unwrap().iter().find(|e| e["client"] == "checkout" && e["server"] == "payments").unwrap();
    assert_eq!(e["connection_type"], "");
    assert_eq!((e["calls"].as_u64(), e["failed"].as_u64()), (Some(1), Some(1)));
    for field in ["count", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "max_ns"] {
        assert!(e["server_latency"][field].is_u64(), "{field}");
        assert!(e["client_latency"][field].is_u64(), "{field}");
    }

    let table = tracelens(&["graph", input.to_str().unwrap()], None);
    let text = stdout(&table);
    assert!(text.contains("Service graph: 7 nodes, 7 edges"), "{text}");
    assert!(text.contains("checkout -> payments"), "{text}");

    let mermaid = stdout(&tracelens(&["graph", "--format", "mermaid", input.to_str().unwrap()], None));
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("[(\"carts\")]"), "database shape: {mermaid}");
    assert_eq!(mermaid.lines().filter(|l| l.contains("-->|")).count(), 7, "{mermaid}");
}

#[test]
fn graphviz_accepts_the_dot_output() {
    let dot = which("dot").expect("Graphviz `dot` is needed: run ./scripts/test.sh, which installs it");
    for input in [fixture("shop.otlp.json"), fixture("graph-edges.otlp.jsonl"), public("zipkin/yelp.json")] {
        let out = tracelens(&["graph", "--format", "dot", input.to_str().unwrap()], None);
        assert!(out.status.success());
        let mut child = std::process::Command::new(&dot)
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let rendered = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&rendered.stderr);
        assert!(rendered.status.success() && err.trim().is_empty(), "{}: dot said {err}", input.display());
        let svg = String::from_utf8_lossy(&rendered.stdout);
        assert!(svg.contains("<svg") && svg.contains("user"), "{}: no SVG with the user node", input.display());
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

#[test]
fn analyze_reports_operations_and_the_graph() {
    let out = tracelens(&["analyze", "--format", "json", fixture("shop.otlp.json").to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops = v["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 13, "distinct (service, operation, kind) in the shop fixture");
    let charge = ops.iter().find(|o| o["service"] == "payments" && o["operation"] == "Charge").unwrap();
    assert_eq!(charge["kind"], "server");
    assert_eq!((charge["calls"].as_u64(), charge["errors"].as_u64()), (Some(1), Some(1)));
    assert_eq!(charge["latency"]["p50_ns"], 46_000_000);
    assert_eq!(v["graph"]["edges"].as_array().unwrap().len(), 7);

    let table = stdout(&tracelens(&["analyze", fixture("shop.otlp.json").to_str().unwrap()], None));
    assert!(table.contains("Slowest operations (by p99, top 10)"), "{table}");
    assert!(table.contains("Most failing operations (by error rate, top 10)"), "{table}");
    assert!(table.contains("payments Charge"), "{table}");

    // The operation-name cap folds the rest into one bucket and says so.
    let capped = tracelens(
        &["analyze", "--format", "json", "--max-operations", "1", fixture("shop.otlp.json").to_str().unwrap()],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&capped.stdout).unwrap();
    assert!(v["operations"].as_array().unwrap().iter().any(|o| o["operation"] == "(overflow)"));
    assert!(stderr(&capped).contains("had operation names past the first 1"), "{}", stderr(&capped));
}

#[test]
fn spans_without_a_duration_are_not_zero_latency_samples() {
    // smartthings-oauth: 19 spans have no duration (8 CLIENT, 11 shared
    // SERVER); none of them may pull a percentile towards 0.
    let input = public("zipkin/smartthings-oauth-authorization.json");
    let out = tracelens(&["analyze", "--format", "json", input.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"]["missing_duration"], 19);
    let ops = v["operations"].as_array().unwrap();
    let untimed: u64 = ops.iter().map(|o| o["without_duration"].as_u64().unwrap()).sum();
    assert_eq!(untimed, 19);
    for o in ops {
        let (calls, count) = (o["calls"].as_u64().unwrap(), o["latency"]["count"].as_u64().unwrap());
        assert_eq!(calls, count + o["without_duration"].as_u64().unwrap(), "{o}");
        if count > 0 {
            assert!(o["latency"]["min_ns"].as_u64().unwrap() > 0, "a 0 ns sample: {o}");
        }
    }
    // datamgmt's redirect CLIENT spans: 6 calls, none timed.
    let redirect = ops.iter().find(|o| o["service"] == "datamgmt" && o["operation"] == "redirect").unwrap();
    assert_eq!((redirect["calls"].as_u64(), redirect["latency"]["count"].as_u64()), (Some(6), Some(0)));
    for e in v["graph"]["edges"].as_array().unwrap() {
        if e["server_latency"]["count"].as_u64().unwrap() > 0 {
            assert!(e["server_latency"]["min_ns"].as_u64().unwrap() > 0, "a 0 ns sample: {e}");
        }
    }
    let table = stdout(&tracelens(&["analyze", input.to_str().unwrap()], None));
    assert!(table.contains("19 spans without a usable duration: counted in CALLS, left out of P50 and P99"), "{table}");
}
