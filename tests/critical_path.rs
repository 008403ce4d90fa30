//! `critical-path` and `bottlenecks` as users run them: the shop fixture's
//! path, bottlenecks that find an injected slowdown on generated workloads,
//! patterns, and the clock-skew setting.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, public, stderr, stdout, tracelens};

fn json(args: &[&str]) -> serde_json::Value {
    let out = tracelens(args, None);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

#[test]
fn shop_trace_critical_path() {
    let input = fixture("shop.otlp.json");
    let v = json(&[
        "critical-path",
        "--format",
        "json",
        "--trace-id",
        "0af7651916cd43dd8448eb211c80319c",
        input.to_str().unwrap(),
    ]);
    let traces = v["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1);
    let t = &traces[0];
    assert_eq!(t["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t["duration_ns"], 120_000_000);
    let sections = t["critical_path"].as_array().unwrap();
    let ms = |x: &serde_json::Value| (x.as_u64().unwrap() - 1_793_527_200_000_000_000) / 1_000_000;
    let got: Vec<(String, u64, u64)> = sections
        .iter()
        .map(|s| {
            (
                format!("{} {}", s["service"].as_str().unwrap(), s["operation"].as_str().unwrap()),
                ms(&s["start_unix_nano"]),
                ms(&s["end_unix_nano"]),
            )
        })
        .collect();
    // Tiles 0..120 ms in time order; the payments call is the longest stretch;
    // the Kafka consumer (shipping) never blocks checkout.
    assert_eq!(got.first().unwrap(), &("frontend GET /checkout".to_string(), 0, 5));
    assert_eq!(got.last().unwrap(), &("frontend GET /checkout".to_string(), 100, 120));
    assert!(got.windows(2).all(|w| w[0].2 == w[1].1), "contiguous: {got:?}");
    assert!(got.contains(&("payments Charge".to_string(), 33, 79)), "{got:?}");
    assert!(got.contains(&("cart SELECT cart_items".to_string(), 18, 27)), "{got:?}");
    assert!(got.contains(&("checkout validate order".to_string(), 10, 15)), "{got:?}");
    assert!(!got.iter().any(|g| g.0.starts_with("shipping")), "{got:?}");
    for s in sections {
        assert_eq!(s["span_id"].as_str().unwrap().len(), 16);
    }
    // checkout's server span: 90 ms, children cover 5+14+49+2 ms, so 20 ms own; all of it on the path.
    let checkout =
        sections.iter().find(|s| s["service"] == "checkout" && s["operation"] == "POST /cart/checkout").unwrap();
    assert_eq!(checkout["self_time_ns"], 20_000_000);
    assert_eq!(checkout["span_critical_path_ns"], 20_000_000);

    let all = json(&["critical-path", "--format", "json", input.to_str().unwrap()]);
    assert_eq!(all["traces"].as_array().unwrap().len(), 2);
    let table = stdout(&tracelens(&["critical-path", input.to_str().unwrap()], None));
    assert!(table.contains("critical path 120.00ms in 19 sections"), "{table}");

    let missing =
        tracelens(&["critical-path", "--trace-id", "ffffffffffffffffffffffffffffffff", input.to_str().unwrap()], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("is not in the input"));
}

/// A three-tier system with constant latencies (median = p99), so the
/// critical path is known: gateway 2 ms own work -> api `api_ms` -> db 4 ms.
fn three_tier(dir: &Path, name: &str, api_ms: f64, repeat: u32) -> PathBuf {
    let topology = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &topology,
        format!(
            "services:\n  - name: gateway\n    operations:\n      - name: GET /\n        entry_weight: 1\n        latency: {{ median_ms: 2, p99_ms: 2 }}\n        calls: [{{ service: api, operation: Query }}]\n  - name: api\n    operations:\n      - name: Query\n        latency: {{ median_ms: {api_ms}, p99_ms: {api_ms} }}\n        calls: [{{ db: postgresql, query: SELECT, latency: {{ median_ms: 4, p99_ms: 4 }}, repeat: [{repeat}, {repeat}] }}]\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{name}.pb"));
    let r = tracelens(
        &[
            "generate",
            "--topology",
            topology.to_str().unwrap(),
            "--traces",
            "500",
            "--format",
            "otlp-protobuf-stream",
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(r.status.success(), "{}", stderr(&r));
    out
}

fn op<'a>(v: &'a serde_json::Value, service: &str, operation: &str) -> &'a serde_json::Value {
    v["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["service"] == service && o["operation"] == operation)
        .unwrap_or_else(|| panic!("no {service} {operation}"))
}

#[test]
fn bottlenecks_find_an_injected_slowdown() {
    let dir = tempfile::tempdir().unwrap();
    let before = json(&["bottlenecks", "--format", "json", three_tier(dir.path(), "before", 3.0, 1).to_str().unwrap()]);
    let after = json(&["bottlenecks", "--format", "json", three_tier(dir.path(), "after", 23.0, 1).to_str().unwrap()]);
    for v in [&before, &after] {
        assert_eq!(v["traces_analyzed"], 500);
        let shares: f64 = v["operations"].as_array().unwrap().iter().map(|o| o["share"].as_f64().unwrap()).sum();
        assert!((shares - 1.0).abs() < 1e-9, "shares add up to the whole: {shares}");
    }
    // The raised operation tops the list after, not before.
    assert_eq!(after["operations"][0]["service"], "api");
    assert_eq!(after["operations"][0]["operation"], "Query");
    assert_ne!(before["operations"][0]["operation"], "Query");

    // Its critical-path time per trace rose by the injected 20 ms (within 2%).
    let per_trace = |v: &serde_json::Value| {
        let o = op(v, "api", "Query");
        o["critical_path_ns_total"].as_f64().unwrap() / o["traces_on_path"].as_f64().unwrap()
    };
    let rise = per_trace(&after) - per_trace(&before);
    assert!((rise / 20e6 - 1.0).abs() < 0.02, "rise {rise} ns");
    // And its share is what that rise predicts from the old figures (within 2 points).
    let traces = 500.0;
    let mean_before = before["total_duration_ns"].as_f64().unwrap() / traces;
    let share_before = op(&before, "api", "Query")["share"].as_f64().unwrap();
    let predicted = (share_before * mean_before + 20e6) / (mean_before + 20e6);
    let share_after = op(&after, "api", "Query")["share"].as_f64().unwrap();
    assert!((share_after - predicted).abs() < 0.02, "share {share_after} vs predicted {predicted}");
    // Constant latency: every percentile is the same.
    let o = op(&after, "api", "Query");
    let p50 = o["p50_ns"].as_f64().unwrap();
    assert!((o["p99_ns"].as_f64().unwrap() - p50).abs() / p50 < 0.01);

    // Dominant own work is flagged after the slowdown.
    let dominant: Vec<&serde_json::Value> =
        after["patterns"].as_array().unwrap().iter().filter(|p| p["kind"] == "dominant_self_time").collect();
    assert!(dominant.iter().any(|p| p["service"] == "api" && p["traces"] == 500), "{dominant:?}");
    // Call paths place it in the tree.
    let path = after["call_paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["operation"] == "Query" && p["service"] == "api")
        .unwrap();
    assert_eq!(path["call_path"], "[gateway] GET / > [gateway] Query > [api] Query");
}

#[test]
fn sequential_repeated_calls_are_an_n_plus_one() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(&["bottlenecks", "--format", "json", three_tier(dir.path(), "n1", 3.0, 5).to_str().unwrap()]);
    let p = v["patterns"].as_array().unwrap().iter().find(|p| p["kind"] == "n_plus_one").expect("N+1 found");
    assert_eq!(p["service"], "api");
    assert_eq!(p["operation"], "SELECT");
    assert_eq!(p["caller"], "api Query");
    assert_eq!(p["max_count"], 5);
    assert_eq!(p["traces"], 500);
    // Four of the five 4 ms calls could have overlapped, in every trace.
    let savings = p["potential_savings_ns"].as_f64().unwrap();
    assert!((savings / (500.0 * 16e6) - 1.0).abs() < 0.01, "{savings}");

    let text = stdout(&tracelens(&["bottlenecks", dir.path().join("n1.pb").to_str().unwrap()], None));
    assert!(text.contains("n_plus_one"), "{text}");
    assert!(text.contains("By call path"), "{text}");
}

#[test]
fn overlap_tolerance_and_clock_skew_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skewed.jsonl");
    let out = tracelens(&["generate", "--traces", "300", "--clock-skew", "30", "-o", path.to_str().unwrap()], None);
    assert!(out.status.success());
    let plain = json(&["bottlenecks", "--format", "json", path.to_str().unwrap()]);
    let adjusted = tracelens(&["bottlenecks", "--format", "json", "--adjust-clock-skew", path.to_str().unwrap()], None);
    assert!(adjusted.status.success(), "{}", stderr(&adjusted));
    let note = stderr(&adjusted);
    let shifted: u64 = note
        .split("clock skew: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no clock-skew note: {note}"));
    assert!(shifted > 100, "{note}");
    let adjusted: serde_json::Value = serde_json::from_slice(&adjusted.stdout).unwrap();
    assert_ne!(plain["operations"], adjusted["operations"], "adjustment changes the paths");

    let tolerant =
        json(&["bottlenecks", "--format", "json", "--sibling-overlap-tolerance", "0.01", path.to_str().unwrap()]);
    assert_eq!(tolerant["traces_analyzed"], 300);
    let bad = tracelens(&["bottlenecks", "--sibling-overlap-tolerance", "2", path.to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn analyze_includes_the_top_bottlenecks() {
    let v = json(&["analyze", "--format", "json", fixture("shop.otlp.json").to_str().unwrap()]);
    let b = &v["bottlenecks"];
    assert_eq!(b["traces_analyzed"], 2);
    assert_eq!(b["operations"][0]["service"], "payments");
    assert_eq!(b["operations"][0]["critical_path_ns_total"], 46_000_000);
    let text = stdout(&tracelens(&["analyze", fixture("shop.otlp.json").to_str().unwrap()], None));
    assert!(text.contains("Bottlenecks over 2 traces"), "{text}");
}

#[test]
fn real_dumps_paths_never_exceed_their_trace() {
    // messaging2: a root and two groups of orphans (their parents are not in
    // the file), 3.50 s from first start to last end.
    let v = json(&["critical-path", "--format", "json", public("zipkin/messaging2.json").to_str().unwrap()]);
    let t = &v["traces"][0];
    assert_eq!(t["duration_ns"], 3_501_696_000u64);
    assert_eq!(t["fragments"], 3);
    let sections = t["critical_path"].as_array().unwrap();
    let total: u64 = sections.iter().map(|s| s["duration_ns"].as_u64().unwrap()).sum();
    assert_eq!(total + t["gap_ns"].as_u64().unwrap(), 3_501_696_000);
    assert!(
        sections.windows(2).all(|w| w[0]["end_unix_nano"].as_u64() <= w[1]["start_unix_nano"].as_u64()),
        "sections overlap: {sections:?}"
    );
    assert_eq!(sections.last().unwrap()["operation"], "send-confirm-transfer");

    // Every public dump: path time never exceeds the trace's interval.
    for file in ["zipkin/", "jaeger/", "otlp/", "tempo/"] {
        let v = json(&["critical-path", "--all", "--format", "json", public(file).to_str().unwrap()]);
        for t in v["traces"].as_array().unwrap() {
            let total: u64 =
                t["critical_path"].as_array().unwrap().iter().map(|s| s["duration_ns"].as_u64().unwrap()).sum();
            assert!(total <= t["duration_ns"].as_u64().unwrap(), "{file} {}", t["trace_id"]);
        }
    }
}

#[test]
fn asynchronous_spans_are_named_in_a_warning() {
    // smartthings-oauth: a 1.43 ms root whose redirect child starts after it
    // ended and carries the rest of the 1m40s flow.
    let input = public("zipkin/smartthings-oauth-authorization.json");
    let v = json(&["critical-path", "--format", "json", input.to_str().unwrap()]);
    let t = &v["traces"][0];
    assert_eq!(t["duration_ns"], 1_429_000);
    let outside = t["outside_parent"].as_array().unwrap();
    assert_eq!(outside[0]["span_id"], "d70bbce77a790a35");
    assert_eq!(outside[0]["operation"], "redirect");
    assert!(outside[0]["outside_ns"].as_u64().unwrap() > 100_000_000_000, "{outside:?}");
    let table = stdout(&tracelens(&["critical-path", input.to_str().unwrap()], None));
    assert!(
        table.contains("warning: 1 span runs outside its parent (asynchronous work or clock skew), not on the path: datamgmt redirect [d70bbce77a790a35] 1m40s outside"),
        "{table}"
    );
}

#[test]
fn critical_path_lists_the_slowest_traces_unless_asked_for_all() {
    let dir = tempfile::tempdir().unwrap();
    let input = three_tier(dir.path(), "many", 3.0, 1);
    let top = json(&["critical-path", "--format", "json", input.to_str().unwrap()]);
    let traces = top["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 10);
    assert_eq!(top["traces_in_input"], 500);
    let durations: Vec<u64> = traces.iter().map(|t| t["duration_ns"].as_u64().unwrap()).collect();
    assert!(durations.windows(2).all(|w| w[0] >= w[1]), "slowest first: {durations:?}");
    let all = json(&["critical-path", "--format", "json", "--all", input.to_str().unwrap()]);
    let every: Vec<u64> =
        all["traces"].as_array().unwrap().iter().map(|t| t["duration_ns"].as_u64().unwrap()).collect();
    assert_eq!(every.len(), 500);
    let mut sorted = every.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(durations, sorted[..10]);
    let three = json(&["critical-path", "--format", "json", "--top", "3", input.to_str().unwrap()]);
    assert_eq!(three["traces"].as_array().unwrap().len(), 3);
    let table = stdout(&tracelens(&["critical-path", input.to_str().unwrap()], None));
    assert!(table.contains("The 10 slowest of 500 traces (--top N for more, --all for every trace)."), "{table}");
}
