//! `tracelens generate`: every format reads back with the counts, services,
//! versions and injected change that were asked for; output is reproducible.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Facts, analyze, generate, stderr, tracelens};
use tracelens::model::SpanKind;

const SHOP_SERVICES: [&str; 9] =
    ["cart", "checkout", "currency", "email", "frontend", "payments", "product-catalog", "recommendation", "shipping"];
const FORMATS: [&str; 4] = ["otlp-json-lines", "otlp-protobuf-stream", "jaeger-json", "zipkin-json"];

fn version_of(f: &Facts, span: &tracelens::model::Span) -> String {
    f.dict.resolve(f.dict.resource_of(span.resource).version).to_string()
}

/// Self times (ns: duration less direct children's) and error counts of
/// `service`'s SERVER spans, by version. A deploy changes a service's own
/// work; its calls downstream take what they took before.
fn server_spans_by_version(f: &Facts, service: &str) -> BTreeMap<String, (Vec<u64>, u64)> {
    let mut out: BTreeMap<String, (Vec<u64>, u64)> = BTreeMap::new();
    for t in &f.traces {
        let mut children_ns = vec![0u64; t.len()];
        for i in 0..t.len() {
            if let Some(p) = t.parent(i)
                && t.spans[i].kind != SpanKind::Consumer
            {
                children_ns[p] += t.spans[i].duration_ns().unwrap();
            }
        }
        for (i, s) in t.spans.iter().enumerate() {
            if f.dict.resolve(s.service) == service && s.kind == SpanKind::Server {
                let e = out.entry(version_of(f, s)).or_default();
                e.0.push(s.duration_ns().unwrap() - children_ns[i]);
                e.1 += u64::from(s.is_error());
            }
        }
    }
    for (durations, _) in out.values_mut() {
        durations.sort_unstable();
    }
    out
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize] as f64
}

#[test]
fn every_format_reads_back_the_same_workload() {
    let dir = tempfile::tempdir().unwrap();
    let mut baseline: Option<(u64, u64, Vec<String>)> = None;
    for format in FORMATS {
        for compress in ["none", "gzip", "zstd"] {
            let name = format!("{format}.{compress}");
            let path = generate(dir.path(), &name, &["--traces", "300", "--format", format, "--compress", compress]);
            let f = analyze(&path);
            let expected_format = match compress {
                "none" => format.to_string(),
                c => format!("{format}+{c}"),
            };
            assert_eq!(f.formats, vec![expected_format]);
            assert_eq!(f.summary.traces, 300, "{name}");
            assert_eq!(f.services, SHOP_SERVICES, "{name}");
            assert_eq!(f.warnings.total(), 0, "{name}: {:?}", f.warnings);
            assert_eq!(f.summary.root_spans, 300, "{name}");
            let facts = (f.summary.spans, f.summary.error_spans, f.services.clone());
            match &baseline {
                None => baseline = Some(facts),
                Some(b) => assert_eq!(&facts, b, "{name} differs from the first format"),
            }
            // Resources carry version, host and environment in every format.
            let span = f.traces[0].spans.iter().find(|s| f.dict.resolve(s.service) == "frontend").unwrap();
            let r = f.dict.resource_of(span.resource);
            assert_eq!(f.dict.resolve(r.version), "2.4.1", "{name}");
            assert!(f.dict.resolve(r.host).starts_with("frontend-"), "{name}");
            assert_eq!(f.dict.resolve(r.environment), "production", "{name}");
        }
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for format in FORMATS {
        for compress in ["none", "gzip", "zstd"] {
            let args =
                ["--traces", "50", "--format", format, "--compress", compress, "--seed", "7", "--clock-skew", "3"];
            let a = std::fs::read(generate(dir.path(), "a", &args)).unwrap();
            let b = std::fs::read(generate(dir.path(), "b", &args)).unwrap();
            assert!(a == b, "{format}/{compress}: same seed gave different bytes");
            let mut other = args.to_vec();
            other[7] = "8";
            let c = std::fs::read(generate(dir.path(), "c", &other)).unwrap();
            assert!(a != c, "{format}/{compress}: another seed gave the same bytes");
        }
    }
}

#[test]
fn spans_amount_and_standard_output() {
    let out = tracelens(&["generate", "--spans", "5000", "--format", "otlp-protobuf-stream"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = tracelens(&["analyze", "--format", "json", "-"], Some(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let spans = v["spans"].as_u64().unwrap();
    assert!((5000..5000 + 200).contains(&spans), "{spans}");
    assert!(stderr(&out).contains(&format!("{spans} spans to standard output")), "{}", stderr(&out));
}

#[test]
fn canary_latency_shift_shows_in_the_median_self_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(
        dir.path(),
        "canary.jsonl",
        &[
            "--traces",
            "6000",
            "--scenario",
            "canary",
            "--change",
            "latency",
            "--target",
            "payments",
            "--magnitude",
            "2",
        ],
    );
    let f = analyze(&path);
    let by_version = server_spans_by_version(&f, "payments");
    assert_eq!(by_version.keys().collect::<Vec<_>>(), ["0.7.5", "0.8.0"]);
    let (old, new) = (&by_version["0.7.5"].0, &by_version["0.8.0"].0);
    // Both versions take about half of the traffic.
    let share = new.len() as f64 / (old.len() + new.len()) as f64;
    assert!((0.45..0.55).contains(&share), "canary share {share}");
    let ratio = quantile(new, 0.5) / quantile(old, 0.5);
    assert!((1.7..2.3).contains(&ratio), "median ratio {ratio}");
    // Canary instances are their own hosts.
    let hosts: BTreeSet<String> = f
        .traces
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| version_of(&f, s) == "0.8.0")
        .map(|s| f.dict.resolve(f.dict.resource_of(s.resource).host).to_string())
        .collect();
    assert_eq!(hosts, BTreeSet::from(["payments-canary-0".to_string(), "payments-canary-1".to_string()]));
    // Other services are untouched.
    let frontend = server_spans_by_version(&f, "frontend");
    assert_eq!(frontend.keys().collect::<Vec<_>>(), ["2.4.1"]);
}

#[test]
fn tail_shift_moves_p99_not_the_median() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(
        dir.path(),
        "tail.pb",
        &[
            "--traces",
            "8000",
            "--format",
            "otlp-protobuf-stream",
            "--scenario",
            "canary",
            "--change",
            "tail",
            "--target",
            "cart",
        ],
    );
    let f = analyze(&path);
    let v = server_spans_by_version(&f, "cart");
    let (old, new) = (&v["3.0.2"].0, &v["3.1.0"].0);
    let median = quantile(new, 0.5) / quantile(old, 0.5);
    let p99 = quantile(new, 0.99) / quantile(old, 0.99);
    assert!((0.85..1.2).contains(&median), "median ratio {median}");
    assert!(p99 > 5.0, "p99 ratio {p99}");
}

#[test]
fn error_rate_change_and_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let errors = generate(
        dir.path(),
        "errors.json",
        &[
            "--traces",
            "6000",
            "--format",
            "zipkin-json",
            "--scenario",
            "canary",
            "--change",
            "errors",
            "--magnitude",
            "0.1",
        ],
    );
    let f = analyze(&errors);
    let v = server_spans_by_version(&f, "checkout");
    let rate = |(d, e): &(Vec<u64>, u64)| *e as f64 / d.len() as f64;
    let (old, new) = (rate(&v["1.9.0"]), rate(&v["1.10.0"]));
    assert!(old < 0.02, "baseline error rate {old}");
    assert!((0.08..0.14).contains(&(new - old)), "error rate rise {}", new - old);

    let none = generate(dir.path(), "none.jsonl", &["--traces", "6000", "--scenario", "canary", "--change", "none"]);
    let f = analyze(&none);
    let v = server_spans_by_version(&f, "checkout");
    let (old, new) = (&v["1.9.0"], &v["1.10.0"]);
    let ratio = quantile(&new.0, 0.5) / quantile(&old.0, 0.5);
    assert!((0.85..1.15).contains(&ratio), "no-change median ratio {ratio}");
    assert!((rate(new) - rate(old)).abs() < 0.02);
}

#[test]
fn new_downstream_call_only_from_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(
        dir.path(),
        "new-call.json",
        &[
            "--traces",
            "2000",
            "--format",
            "jaeger-json",
            "--scenario",
            "canary",
            "--change",
            "new-call",
            "--new-service",
            "fraud-check",
        ],
    );
    let f = analyze(&path);
    assert!(f.services.contains(&"fraud-check".to_string()));
    let mut calls = 0;
    for t in &f.traces {
        for (i, s) in t.spans.iter().enumerate() {
            if f.dict.resolve(s.service) != "fraud-check" {
                continue;
            }
            calls += 1;
            // fraud-check's server span <- checkout client span <- checkout server span of the new version
            let client = &t.spans[t.parent(i).unwrap()];
            assert_eq!(f.dict.resolve(client.service), "checkout");
            assert_eq!(version_of(&f, client), "1.10.0");
        }
    }
    assert!(calls > 100, "{calls}");
}

#[test]
fn rollout_switches_version_part_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(
        dir.path(),
        "rollout.jsonl",
        &[
            "--traces",
            "2000",
            "--scenario",
            "rollout",
            "--deploy-at",
            "0.25",
            "--target",
            "cart",
            "--new-version",
            "4.0.0",
        ],
    );
    let f = analyze(&path);
    let mut switch: Option<u64> = None;
    let mut roots: Vec<(u64, bool)> = Vec::new();
    for t in &f.traces {
        let root = t.roots().next().map(|i| t.spans[i].start_ns).unwrap();
        let uses_new = t.spans.iter().any(|s| version_of(&f, s) == "4.0.0");
        let uses_cart = t.spans.iter().any(|s| f.dict.resolve(s.service) == "cart");
        if uses_cart {
            roots.push((root, uses_new));
        }
    }
    roots.sort_unstable();
    for (start, new) in &roots {
        if *new {
            switch.get_or_insert(*start);
        } else {
            assert!(switch.is_none(), "old version after the switch at {start}");
        }
    }
    let switch = switch.expect("new version used");
    let first = roots[0].0;
    let last = roots[roots.len() - 1].0;
    let at = (switch - first) as f64 / (last - first) as f64;
    assert!((0.2..0.3).contains(&at), "switch at {at}");
}

#[test]
fn clock_skew_moves_hosts_not_durations() {
    let dir = tempfile::tempdir().unwrap();
    let plain = analyze(&generate(dir.path(), "plain.jsonl", &["--traces", "100"]));
    let skewed = analyze(&generate(dir.path(), "skewed.jsonl", &["--traces", "100", "--clock-skew", "20"]));
    let mut moved = 0;
    for (a, b) in plain.traces.iter().zip(&skewed.traces) {
        for (x, y) in a.spans.iter().zip(&b.spans) {
            assert_eq!(x.span_id, y.span_id);
            assert_eq!(x.duration_ns(), y.duration_ns());
            let shift = y.start_ns as i64 - x.start_ns as i64;
            assert!(shift.abs() <= 20_000_000, "{shift}");
            moved += usize::from(shift != 0);
        }
    }
    assert!(moved > 100, "{moved}");
}

#[test]
fn topology_files_and_preset_errors() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("system.yaml");
    std::fs::write(
        &yaml,
        "default_target: api\nservices:\n  - name: gateway\n    operations:\n      - name: GET /\n        entry_weight: 1\n        latency: { median_ms: 1, p99_ms: 4 }\n        calls: [{ service: api, operation: Query }]\n  - name: api\n    version: 5.0.0\n    operations:\n      - name: Query\n        latency: { median_ms: 2, p99_ms: 9 }\n        calls: [{ db: mysql, query: SELECT 1 }]\n",
    )
    .unwrap();
    let out = generate(
        dir.path(),
        "y.jsonl",
        &["--topology", yaml.to_str().unwrap(), "--traces", "10", "--scenario", "canary"],
    );
    let f = analyze(&out);
    assert_eq!(f.services, vec!["api", "gateway"]);
    assert_eq!(f.summary.spans, 40, "gateway server, api client + server, db client per trace");
    let versions: BTreeSet<String> = f.traces.iter().flat_map(|t| &t.spans).map(|s| version_of(&f, s)).collect();
    assert!(versions.contains("5.1.0"), "{versions:?}");

    let printed = tracelens(&["generate", "--print-topology"], None);
    let toml_path = dir.path().join("shop.toml");
    std::fs::write(&toml_path, &printed.stdout).unwrap();
    let a =
        std::fs::read(generate(dir.path(), "a.jsonl", &["--topology", toml_path.to_str().unwrap(), "--traces", "20"]))
            .unwrap();
    let b = std::fs::read(generate(dir.path(), "b.jsonl", &["--traces", "20"])).unwrap();
    assert!(a == b, "the printed preset is the preset");

    for (args, expected) in [
        (&["generate", "--target", "nope", "--scenario", "canary"][..], "deploy target \"nope\""),
        (&["generate", "--change", "latency"], "a change needs a deploy scenario"),
        (&["generate", "--scenario", "canary", "--change", "latency", "--magnitude", "0.5"], "factor >= 1"),
        (&["generate", "--start", "soon"], "--start \"soon\""),
        (&["generate", "--topology", "/no/such.toml"], "/no/such.toml"),
    ] {
        let out = tracelens(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn random_preset_has_the_asked_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = generate(
        dir.path(),
        "r.pb",
        &[
            "--preset",
            "random",
            "--services",
            "20",
            "--depth",
            "5",
            "--fan-out",
            "3",
            "--traces",
            "400",
            "--format",
            "otlp-protobuf-stream",
        ],
    );
    let f = analyze(&path);
    assert_eq!(f.summary.traces, 400);
    assert!(f.services.len() > 10 && f.services.len() <= 20, "{:?}", f.services);
    let depth = f
        .traces
        .iter()
        .map(|t| {
            (0..t.len())
                .map(|mut i| {
                    let mut d = 1;
                    while let Some(p) = t.parent(i) {
                        i = p;
                        d += 1;
                    }
                    d
                })
                .max()
                .unwrap()
        })
        .max()
        .unwrap();
    assert!(depth >= 5, "deepest trace {depth}");
}

/// Every scenario and change in every format: the versions and the new
/// dependency read back as asked (the size of each change is checked above).
#[test]
fn every_scenario_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for format in FORMATS {
        for scenario in ["canary", "rollout"] {
            for change in ["none", "latency", "tail", "errors", "new-call"] {
                let name = format!("{format}-{scenario}-{change}");
                let path = generate(
                    dir.path(),
                    &name,
                    &["--traces", "150", "--format", format, "--scenario", scenario, "--change", change],
                );
                let f = analyze(&path);
                assert_eq!(f.summary.traces, 150, "{name}");
                assert_eq!(f.warnings.total(), 0, "{name}");
                let versions: BTreeSet<String> = f
                    .traces
                    .iter()
                    .flat_map(|t| &t.spans)
                    .filter(|s| f.dict.resolve(s.service) == "checkout")
                    .map(|s| version_of(&f, s))
                    .collect();
                assert_eq!(versions, BTreeSet::from(["1.9.0".to_string(), "1.10.0".to_string()]), "{name}");
                assert_eq!(f.services.contains(&"fraud-check".to_string()), change == "new-call", "{name}");
            }
        }
    }
}

#[test]
fn rich_preset_spans_look_like_production_dumps() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let path = common::generate(
        dir.path(),
        "rich.pb",
        &["--preset", "rich", "--spans", "30000", "--format", "otlp-protobuf-stream"],
    );
    let bytes = std::fs::read(path).unwrap();
    let (mut spans, mut requests, mut multi_scope_requests) = (0usize, 0usize, 0usize);
    let mut attributes = Vec::new();
    let mut requests_of_trace: BTreeMap<Vec<u8>, std::collections::BTreeSet<usize>> = BTreeMap::new();
    let mut long_values = 0;
    let mut rest = &bytes[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let request = ExportTraceServiceRequest::decode(&rest[4..4 + len]).unwrap();
        rest = &rest[4 + len..];
        let scopes: usize = request.resource_spans.iter().map(|rs| rs.scope_spans.len()).sum();
        multi_scope_requests += usize::from(scopes > request.resource_spans.len());
        for span in request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans) {
            spans += 1;
            attributes.push(span.attributes.len());
            requests_of_trace.entry(span.trace_id.clone()).or_default().insert(requests);
            long_values += usize::from(span.attributes.iter().any(|a| {
                matches!(&a.value, Some(v) if matches!(&v.value,
                    Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) if s.len() >= 50))
            }));
        }
        requests += 1;
    }
    assert!(spans >= 30_000, "{spans}");
    let per_trace = spans as f64 / requests_of_trace.len() as f64;
    assert!((25.0..=40.0).contains(&per_trace), "{per_trace} spans per trace");
    assert!(attributes.iter().all(|&n| n >= 8), "a span with fewer than 8 attributes");
    assert!(long_values * 4 >= spans, "{long_values} of {spans} spans carry a long SQL statement or URL");
    // Requests mix instrumentation scopes, and traces spread over requests.
    assert!(multi_scope_requests * 2 >= requests, "{multi_scope_requests} of {requests}");
    let spread = requests_of_trace.values().filter(|r| r.len() >= 2).count();
    assert!(spread * 2 >= requests_of_trace.len(), "{spread} of {} traces span two requests", requests_of_trace.len());
}
