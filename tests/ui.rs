//! The pictures in a real browser: `tracelens report` files and the live
//! pages of `tracelens serve`, opened in Debian's headless Chromium through
//! Playwright (`tests/browser/ui.mjs`, installed by `scripts/test.sh`). The
//! expected numbers come from the text commands (`graph`, `bottlenecks`,
//! `critical-path`, `verdict` as JSON), so the pages must draw what the
//! analyses computed. Every request the pages make must stay on the
//! machine. Screenshots go to `$TRACELENS_SCREENSHOT_DIR` (the README's are
//! taken with `TRACELENS_SCREENSHOT_DIR=docs/screenshots`), else under the
//! target directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Proc, fixture, generate, get_json, stderr, stdout, tracelens};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Node.js, playwright-core and Chromium, as `scripts/test.sh` installs them.
fn require_browser() {
    let chromium = std::env::var("TRACELENS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is missing at {chromium}: scripts/test.sh installs Debian's chromium"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing in tests/browser/node_modules: scripts/test.sh runs npm ci there"
    );
}

fn screenshot_dir(case: &str) -> PathBuf {
    match std::env::var_os("TRACELENS_SCREENSHOT_DIR") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(case),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots").join(case),
    }
}

/// Runs `ui.mjs CASE URL EXPECT`; panics with its output unless every check held.
fn browse(case: &str, url: &str, expect: &Value, shots: &Path) -> String {
    require_browser();
    let dir = tempfile::tempdir().unwrap();
    let expect_path = dir.path().join("expect.json");
    std::fs::write(&expect_path, serde_json::to_vec_pretty(expect).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(browser_dir().join("ui.mjs"))
        .args([case, url, expect_path.to_str().unwrap()])
        .env("TRACELENS_SCREENSHOT_DIR", shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("node runs (scripts/test.sh needs Node.js)");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "browser checks failed ({case} {url}):\n{text}");
    text
}

fn json_of(args: &[&str]) -> Value {
    let out = tracelens(args, None);
    assert!(out.status.code().is_some_and(|c| c != 2), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

/// What the report of `input` must show, from the text commands.
fn expectations(input: &Path, select: &str) -> Value {
    let input = input.to_str().unwrap();
    let graph = json_of(&["graph", "--format", "json", input]);
    let nodes: Vec<String> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}:{}", s(&n["name"]), s(&n["type"])))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let edges = graph["edges"].as_array().unwrap();
    let mut edge_lines: Vec<String> = edges
        .iter()
        .map(|e| {
            format!(
                "{}->{} {}/{} p99={}",
                s(&e["client"]),
                s(&e["server"]),
                e["calls"],
                e["failed"],
                e["server_latency"]["p99_ns"]
            )
        })
        .collect();
    edge_lines.sort();
    let mut involved = std::collections::BTreeSet::from([select.to_string()]);
    for e in edges {
        if e["client"] == select || e["server"] == select {
            involved.insert(s(&e["client"]));
            involved.insert(s(&e["server"]));
        }
    }
    let faded: Vec<String> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| s(&n["name"]))
        .filter(|n| !involved.contains(n))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let bottlenecks = json_of(&["bottlenecks", "--format", "json", input]);
    let top: Vec<String> = bottlenecks["operations"].as_array().unwrap()[..3]
        .iter()
        .map(|o| format!("{}: {}", s(&o["service"]), s(&o["operation"])))
        .collect();
    // The slowest trace and its critical path, as offsets from its start.
    let cp = json_of(&["critical-path", "--format", "json", "--top", "1", input]);
    let slowest = &cp["traces"][0];
    let start = slowest["start_unix_nano"].as_u64().unwrap();
    let sections: Vec<Value> = slowest["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sec| {
            json!([
                format!("{}: {}", s(&sec["service"]), s(&sec["operation"])),
                sec["start_unix_nano"].as_u64().unwrap() - start,
                sec["end_unix_nano"].as_u64().unwrap() - start
            ])
        })
        .collect();
    json!({
        "nodes": nodes,
        "edges": edge_lines,
        "select": select,
        "faded_when_selected": faded,
        "bottlenecks_top": top,
        "slowest_trace": slowest["trace_id"],
        "critical_path": sections,
    })
}

/// The shop fixture: a known topology with a database, a messaging system
/// and a virtual caller.
#[test]
fn report_of_the_shop_draws_its_topology_numbers_and_critical_path() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("shop.html");
    let out = tracelens(&["report", fixture("shop.otlp.json").to_str().unwrap(), "-o", html.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut expect = expectations(&fixture("shop.otlp.json"), "checkout");
    // Known values of the fixture (testdata/README.md).
    assert_eq!(expect["edges"].as_array().unwrap().len(), 7);
    assert!(expect["edges"].as_array().unwrap().contains(&json!("checkout->payments 1/1 p99=46000000")));
    assert_eq!(expect["faded_when_selected"], json!(["carts", "user"]));
    let extra = json!({
        "edge_labels": { "checkout->payments": "p99 46.0ms · 100.0% err", "cart->carts": "p99 9.00ms" },
        "hover_edge": "checkout->payments",
        "hover_text": ["checkout → payments", "calls 1, failed 1 (100.0%)", "p99 46.0ms"],
        "histogram": {
            "name": "operation:payments: Charge (server)",
            "marks": [["p50", 46000000], ["p95", 46000000], ["p99", 46000000]],
            "mark_text": ["p50 46.0ms", "p95 46.0ms", "p99 46.0ms"],
        },
    });
    for (k, v) in extra.as_object().unwrap() {
        expect[k] = v.clone();
    }
    let url = format!("file://{}", html.display());
    let log = browse("report", &url, &expect, &screenshot_dir("shop"));
    assert!(log.contains("ok   no request leaves the machine"), "{log}");
}

/// A canary with a slower checkout: the verdict, its attribution, the
/// per-arm histograms and a comparison of two traces of one endpoint.
#[test]
fn report_of_a_canary_shows_the_verdict_attribution_and_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(
        dir.path(),
        "canary.jsonl",
        &["--traces", "20000", "--scenario", "canary", "--change", "latency", "--magnitude", "2.8"],
    );
    let versions = ["--service", "checkout", "--baseline-version", "1.9.0", "--candidate-version", "1.10.0"];
    let html = dir.path().join("canary.html");
    let title = "checkout 1.9.0 -> 1.10.0 canary (generated)";
    let mut args = vec!["report", input.to_str().unwrap(), "-o", html.to_str().unwrap(), "--title", title];
    args.extend(versions);
    let out = tracelens(&args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 2_000_000, "report of 20,000 traces is {size} bytes");
    let mut verdict_args = vec!["verdict", "--format", "json", input.to_str().unwrap()];
    verdict_args.extend(versions);
    let verdict = json_of(&verdict_args);
    assert_eq!(verdict["verdict"], "fail");
    let attribution: Vec<Value> = verdict["attribution"].as_array().unwrap()[..2]
        .iter()
        .map(|a| json!([format!("{}: {}", s(&a["service"]), s(&a["operation"])), a["delta_ns"]]))
        .collect();
    let mut expect = expectations(&input, "checkout");
    expect["histogram"] = {
        let ops = json_of(&["analyze", "--format", "json", input.to_str().unwrap()]);
        let op = ops["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["service"] == "checkout" && o["kind"] == "server")
            .unwrap()
            .clone();
        let l = &op["latency"];
        json!({
            "name": format!("operation:checkout: {} (server)", s(&op["operation"])),
            "marks": [["p50", l["p50_ns"]], ["p95", l["p95_ns"]], ["p99", l["p99_ns"]]],
            "mark_text": null,
        })
    };
    expect["compare"] = json!({ "min_rows": 10, "min_matched": 10 });
    expect["verdict"] =
        json!({ "verdict": verdict["verdict"], "reason": verdict["reason"], "attribution": attribution });
    let url = format!("file://{}", html.display());
    let log = browse("report", &url, &expect, &screenshot_dir("canary"));
    assert!(log.contains("ok   verdict: \"fail\""), "{log}");
}

/// Service and operation names that are markup are drawn as text, never run.
#[test]
fn report_names_that_are_markup_stay_text() {
    let dir = tempfile::tempdir().unwrap();
    let evil = r#"</script><img src=x onerror="window.pwned=1">"#;
    let other = r#"<svg onload="window.pwned=2">"#;
    let span = |id: &str, parent: Option<&str>, name: &str, kind: u8, start: u64, end: u64| {
        let mut s = json!({
            "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": id, "name": name, "kind": kind,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
        });
        if let Some(p) = parent {
            s["parentSpanId"] = json!(p);
        }
        s
    };
    let resource = |service: &str, spans: Vec<Value>| {
        json!({ "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] },
                "scopeSpans": [{ "scope": {}, "spans": spans }] })
    };
    let t = 1_793_527_200_000_000_000u64;
    let request = json!({ "resourceSpans": [
        resource(evil, vec![span("0000000000000001", None, "<b>op</b>", 2, t, t + 9_000_000),
                            span("0000000000000002", Some("0000000000000001"), "call", 3, t + 1_000_000, t + 8_000_000)]),
        resource(other, vec![span("0000000000000003", Some("0000000000000002"), "&amp;", 2, t + 2_000_000, t + 7_000_000)]),
    ]});
    let input = dir.path().join("evil.otlp.json");
    std::fs::write(&input, serde_json::to_vec(&request).unwrap()).unwrap();
    let html = dir.path().join("evil.html");
    let title = "<script>window.pwned=3</script>";
    let out = tracelens(&["report", input.to_str().unwrap(), "-o", html.to_str().unwrap(), "--title", title], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut nodes = vec![evil.to_string(), other.to_string(), "user".to_string()];
    nodes.sort();
    let expect = json!({ "nodes": nodes, "title": title });
    browse("hostile", &format!("file://{}", html.display()), &expect, &screenshot_dir("hostile"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The live pages of a receiver holding the shop traces: the graph over
/// `/api/v1/report` with its filters, the search, and a trace page.
#[test]
fn live_pages_show_the_graph_search_and_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (otlp, api) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_tracelens"))
        .args(["serve", "--grpc-addr", "127.0.0.1:0"])
        .args(["--http-addr", &format!("127.0.0.1:{otlp}"), "--api-addr", &format!("127.0.0.1:{api}")])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap(), "--trace-idle", "200ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _serve = Proc(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{api}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = tracelens(
        &[
            "send",
            "--endpoint",
            &format!("http://127.0.0.1:{otlp}"),
            "--protocol",
            "http",
            fixture("shop.otlp.json").to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Both traces complete (idle) and are analysed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let graph = get_json(addr, "/api/v1/graph?since=1000d");
        if graph["edges"].as_array().is_some_and(|e| e.len() == 7) {
            break;
        }
        assert!(Instant::now() < deadline, "the shop traces were not analysed: {graph}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let graph = json_of(&["graph", "--format", "json", fixture("shop.otlp.json").to_str().unwrap()]);
    let nodes: Vec<String> = graph["nodes"].as_array().unwrap().iter().map(|n| s(&n["name"])).collect();
    let mut edges: Vec<String> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}->{} {}", s(&e["client"]), s(&e["server"]), e["calls"]))
        .collect();
    edges.sort();
    let slow = "0af7651916cd43dd8448eb211c80319c";
    let cp = json_of(&[
        "critical-path",
        "--format",
        "json",
        "--trace-id",
        slow,
        fixture("shop.otlp.json").to_str().unwrap(),
    ]);
    let sections: Vec<String> = cp["traces"][0]["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sec| format!("{}: {}", s(&sec["service"]), s(&sec["operation"])))
        .collect();
    let expect = json!({
        "nodes": nodes,
        "edges": edges,
        "select": "payments",
        // Traces through payments over 40ms: only the checkout trace.
        "search": { "service": "payments", "min_duration": "40ms", "errors": true, "found": [slow] },
        "trace": { "id": slow, "critical_path": sections },
        // The shop's payments has no version 1.0.0 or 2.0.0: the receiver says so.
        "verdict": { "service": "payments", "says": "version \"1.0.0\" and \"2.0.0\" are not in the input" },
    });
    browse("live", &format!("http://127.0.0.1:{api}"), &expect, &screenshot_dir("live"));
}
