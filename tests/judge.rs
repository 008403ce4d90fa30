//! The regression judge on deploys simulated by `tracelens generate`: a
//! median shift, a tail-only shift, an error-rate rise and a slower
//! downstream dependency each fail with the right operation blamed; thin
//! data is inconclusive; 200 no-change (A/A) runs almost never fail; and
//! `diff` lists what changed.

mod common;

use std::path::{Path, PathBuf};

use tracelens::assemble::assemble_all;
use tracelens::generate::scenario::{Change, Deploy, Scenario};
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};
use tracelens::judge::{Cohorts, Judge, JudgeConfig};
use tracelens::model::{Dictionary, Warnings};
use tracelens::read::{ReadOptions, read_spans};

/// The binary's (exit code, stdout, stderr).
fn tracelens(args: &[&str]) -> (i32, String, String) {
    let out = common::tracelens(args, None);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A generated OTLP protobuf stream.
fn generate(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let mut all = vec!["--format", "otlp-protobuf-stream"];
    all.extend_from_slice(args);
    common::generate(dir, name, &all)
}

/// `verdict --format json` on a side-by-side canary of checkout 1.9.0 -> 1.10.0.
fn canary_verdict(input: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec![
        "verdict",
        input.to_str().unwrap(),
        "--service",
        "checkout",
        "--baseline-version",
        "1.9.0",
        "--candidate-version",
        "1.10.0",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = tracelens(&args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v)
}

fn metric<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["metrics"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no {name}: {v}"))
}

fn first_blamed(v: &serde_json::Value) -> (String, String) {
    let a = &v["attribution"][0];
    (a["service"].as_str().unwrap().to_string(), a["operation"].as_str().unwrap().to_string())
}

#[test]
fn a_twenty_percent_median_shift_fails_and_blames_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(
        dir.path(),
        "median.pb",
        &["--traces", "20000", "--scenario", "canary", "--change", "latency", "--magnitude", "2.8"],
    );
    let (code, v) = canary_verdict(&input, &[]);
    assert_eq!((code, v["verdict"].as_str(), v["rollback"].as_bool()), (1, Some("fail"), Some(true)), "{v:#}");
    let shift = metric(&v, "checkout latency_p50");
    assert_eq!(shift["classification"], "High");
    let estimate = shift["estimate"].as_f64().unwrap();
    assert!((1.15..1.27).contains(&estimate), "a ~20% median shift: {estimate}");
    assert!(shift["ci"][0].as_f64().unwrap() > 1.10);
    assert_eq!(metric(&v, "checkout latency_p99")["classification"], "Pass", "{v:#}");
    assert_eq!(first_blamed(&v), ("checkout".to_string(), "PlaceOrder".to_string()));
    assert!(v["attribution"][0]["share"].as_f64().unwrap() > 0.5, "{:#}", v["attribution"]);
    // The shape deploy gates read.
    for key in ["verdict", "rollback", "score", "reason", "service", "baseline", "candidate", "metrics", "attribution"]
    {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for key in ["name", "classification", "critical", "estimate", "ci", "p_value", "n_baseline", "n_candidate"] {
        assert!(shift.get(key).is_some(), "missing metrics[].{key}");
    }
    assert_eq!(v["baseline"]["version"], "1.9.0");
    assert!(v["score"].as_f64().unwrap() < 75.0);

    // The same data, judged twice, gives byte-identical JSON.
    let (_, again) = canary_verdict(&input, &[]);
    assert_eq!(v, again);
    // And the table says it in words, with the same exit code.
    let (code, table, _) = tracelens(&[
        "verdict",
        input.to_str().unwrap(),
        "--service",
        "checkout",
        "--baseline-version",
        "1.9.0",
        "--candidate-version",
        "1.10.0",
    ]);
    assert_eq!(code, 1);
    assert!(table.starts_with("verdict: FAIL"), "{table}");
    assert!(table.contains("High") && table.contains("checkout PlaceOrder"), "{table}");
}

#[test]
fn a_tail_only_shift_fails_on_p99_with_the_median_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "tail.pb", &["--traces", "30000", "--scenario", "canary", "--change", "tail"]);
    let (code, v) = canary_verdict(&input, &[]);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("fail")), "{v:#}");
    assert_eq!(metric(&v, "checkout latency_p99")["classification"], "High");
    assert!(metric(&v, "checkout latency_p99")["ci"][0].as_f64().unwrap() > 1.2);
    assert_eq!(metric(&v, "checkout latency_p50")["classification"], "Pass", "the median did not move");
    assert_eq!(first_blamed(&v), ("checkout".to_string(), "PlaceOrder".to_string()));
}

#[test]
fn an_error_rate_rise_fails_on_the_critical_metric() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "errors.pb", &["--traces", "20000", "--scenario", "canary", "--change", "errors"]);
    let (code, v) = canary_verdict(&input, &[]);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("fail")), "{v:#}");
    let errors = metric(&v, "checkout error_rate");
    assert_eq!((errors["classification"].as_str(), errors["critical"].as_bool()), (Some("High"), Some(true)));
    assert!(errors["estimate"].as_f64().unwrap() >= 5.0);
    assert!(errors["p_value"].as_f64().unwrap() < 1e-6);
    assert_eq!(v["score"], 0.0);
    assert!(v["reason"].as_str().unwrap().starts_with("critical metric High: checkout error_rate"), "{}", v["reason"]);
}

#[test]
fn a_slower_dependency_is_blamed_not_the_judged_service() {
    let dir = tempfile::tempdir().unwrap();
    // payments gets slower halfway through a 200 s run (at 00:01:40).
    let input = generate(
        dir.path(),
        "downstream.pb",
        &[
            "--traces",
            "20000",
            "--scenario",
            "rollout",
            "--change",
            "latency",
            "--target",
            "payments",
            "--magnitude",
            "2",
        ],
    );
    let (code, out, err) = tracelens(&[
        "verdict",
        input.to_str().unwrap(),
        "--service",
        "checkout",
        "--deploy-time",
        "2026-11-01T00:01:40Z",
        "--warmup",
        "5s",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!((code, v["verdict"].as_str()), (1, Some("fail")), "{v:#}");
    assert_eq!(v["mode"], "deploy_time");
    assert_eq!(metric(&v, "checkout -> payments latency_p50")["classification"], "High");
    assert_eq!(first_blamed(&v), ("payments".to_string(), "Charge".to_string()), "{:#}", v["attribution"]);
    let own = v["attribution"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["service"] == "checkout" && a["operation"] == "PlaceOrder")
        .unwrap();
    let (own_delta, callee_delta) = (own["delta_ns"].as_i64().unwrap(), own["callee_delta_ns"].as_i64().unwrap());
    assert!(own_delta.abs() * 10 < callee_delta, "checkout's own code did not change: {own}");
}

#[test]
fn twenty_spans_per_cohort_are_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    // About 11% of shop traces reach checkout: ~20 per arm.
    let input = generate(
        dir.path(),
        "thin.pb",
        &["--traces", "360", "--scenario", "canary", "--change", "latency", "--magnitude", "3"],
    );
    let (code, v) = canary_verdict(&input, &[]);
    assert_eq!((code, v["verdict"].as_str(), v["rollback"].as_bool()), (3, Some("inconclusive"), Some(false)), "{v:#}");
    let n = v["candidate"]["traces"].as_u64().unwrap();
    assert!((10..=35).contains(&n), "{n}");
    assert_eq!(metric(&v, "checkout latency_p50")["classification"], "Nodata");
    assert!(v["reason"].as_str().unwrap().contains("not enough data"), "{}", v["reason"]);
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = tracelens(&["verdict", "x.pb", "--service", "a"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tracelens(&["verdict", "x.pb", "--service", "a", "--deploy-time", "yesterday"]);
    assert_eq!(code, 2);
    assert!(err.contains("neither RFC 3339"), "{err}");
    let (code, _, _) =
        tracelens(&["verdict", "x.pb", "--service", "a", "--baseline-version", "1", "--candidate-version", "1"]);
    assert_eq!(code, 2);
}

#[test]
fn deploy_times_read_as_the_receiver_reads_them() {
    // RFC 3339, unix seconds and unix milliseconds (Spinnaker's buildInfo.timestamp) agree.
    let shop = common::fixture("shop.otlp.json");
    let run = |time: &str| {
        let (code, out, err) = tracelens(&[
            "verdict",
            shop.to_str().unwrap(),
            "--service",
            "checkout",
            "--deploy-time",
            time,
            "--warmup",
            "0s",
            "--format",
            "json",
        ]);
        assert_eq!(code, 3, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        (v["baseline"]["traces"].as_u64(), v["candidate"]["traces"].as_u64())
    };
    let rfc = run("2026-11-01T10:00:00.1Z");
    assert_eq!(run("1793527200.1"), rfc);
    assert_eq!(run("1793527200100"), rfc);
    assert_eq!(rfc, (Some(1), Some(0)));
}

#[test]
fn a_traffic_split_mismatch_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "split.pb", &["--traces", "20000", "--scenario", "canary", "--change", "none"]);
    let (code, v) = canary_verdict(&input, &["--canary-weight", "0.1"]);
    assert_eq!((code, v["verdict"].as_str()), (3, Some("inconclusive")), "{v:#}");
    assert!(v["reason"].as_str().unwrap().starts_with("traffic_split_mismatch"));
    let (code, v) = canary_verdict(&input, &["--canary-weight", "0.5"]);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("pass")), "{v:#}");
    assert_eq!(v["traffic_split"]["mismatch"], false);
}

/// One A/A run: frontend 2.4.1 beside an unchanged 2.5.0, half the traffic each.
fn aa_verdict(seed: u64, traces: u64) -> (&'static str, String) {
    let deploy = Deploy {
        scenario: Scenario::Canary { weight: 0.5 },
        change: Change::None,
        target: "frontend".to_string(),
        magnitude: 0.0,
        new_version: "2.5.0".to_string(),
        new_service: String::new(),
    };
    let config = GeneratorConfig { seed, deploy: Some(deploy), ..GeneratorConfig::default() };
    let (bytes, _) =
        generate::to_vec(&TopologyFile::shop(), &config, Amount::Traces(traces), OutputFormat::OtlpProtobufStream)
            .unwrap();
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut spans = Vec::new();
    read_spans("aa", &bytes[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut |_: &Dictionary, s| {
        spans.push(s)
    })
    .unwrap();
    let (traces, _) = assemble_all(spans);
    let mut judge =
        Judge::new("frontend", Cohorts::Versions { baseline: "2.4.1".to_string(), candidate: "2.5.0".to_string() });
    for t in &traces {
        judge.add_trace(&dict, t);
    }
    let v = judge.verdict(&JudgeConfig { canary_weight: Some(0.5), ..JudgeConfig::default() });
    (v.verdict.as_str(), v.reason)
}

#[test]
fn no_change_fails_at_most_two_of_200_seeds() {
    // 2,400 traces a run: ~1,200 requests per arm, enough for the p99 test.
    let seeds: Vec<u64> = (1..=200).collect();
    let results: Vec<(u64, &'static str, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = seeds
            .chunks(100)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|&seed| {
                            let (v, r) = aa_verdict(seed, 2_400);
                            (seed, v, r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let fails: Vec<_> = results.iter().filter(|(_, v, _)| *v == "fail").collect();
    let passes = results.iter().filter(|(_, v, _)| *v == "pass").count();
    eprintln!("A/A over 200 seeds: {} pass, {} fail, {} inconclusive", passes, fails.len(), 200 - passes - fails.len());
    assert!(fails.len() <= 2, "false failures: {fails:?}");
    assert!(passes >= 180, "no-change runs should pass: {passes} of 200");
}

#[test]
fn diff_lists_what_regressed() {
    let dir = tempfile::tempdir().unwrap();
    let before = generate(dir.path(), "before.pb", &["--traces", "8000", "--seed", "1"]);
    let after = generate(
        dir.path(),
        "after.pb",
        &[
            "--traces",
            "8000",
            "--seed",
            "2",
            "--scenario",
            "rollout",
            "--deploy-at",
            "0.01",
            "--change",
            "latency",
            "--magnitude",
            "3",
        ],
    );
    let (code, out, err) = tracelens(&["diff", before.to_str().unwrap(), after.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 1, "something regressed: {err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let regressed: Vec<&str> = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["direction"] == "regressed")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(regressed.contains(&"checkout PlaceOrder latency_p50"), "{regressed:?}");
    assert!(regressed.contains(&"frontend -> checkout latency_p50"), "{regressed:?}");
    assert!(
        regressed.iter().all(|n| n.starts_with("checkout") || n.contains("-> checkout") || n.starts_with("frontend")),
        "only checkout and its callers changed: {regressed:?}"
    );
    let (_, table, _) = tracelens(&["diff", before.to_str().unwrap(), after.to_str().unwrap()]);
    assert!(table.contains("regressed") && table.contains("checkout PlaceOrder latency_p50"), "{table}");
    // The other way round, only improvements: exit 0.
    let (code, out, err) = tracelens(&["diff", after.to_str().unwrap(), before.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(r["changes"].as_array().unwrap().iter().all(|c| c["direction"] == "improved"), "{r:#}");
    assert!(!r["changes"].as_array().unwrap().is_empty());
}

/// OTLP JSON lines of a canary of `a` (1.0 beside 2.0): a calls b and, in
/// parallel, c; b (version 7.0 in both arms) queries a database. In a's
/// 2.0 traces b's own work takes 1.6 times as long.
fn downstream_canary(dir: &Path) -> PathBuf {
    let mut text = String::new();
    let t0: u64 = 1_793_527_200_000_000_000;
    let mut rng: u64 = 7;
    let mut jitter = |scale: u64| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) % scale
    };
    for i in 0..2000u64 {
        let candidate = i % 2 == 1;
        let trace = format!("{:032x}", i + 1);
        let id = |k: u64| format!("{:016x}", 8 * i + k);
        let start = t0 + i * 10_000_000;
        let a_own = 3_000_000 + jitter(1_000_000);
        let b_own = (if candidate { 16_000_000 } else { 10_000_000 }) + jitter(2_000_000);
        let db = 4_000_000 + jitter(500_000);
        let (b_start, b_end) = (start + a_own + 200_000, start + a_own + 200_000 + b_own + db);
        let c_end = start + a_own + 8_000_000;
        let end = b_end.max(c_end) + 500_000;
        let span = |id: String, parent: Option<String>, name: &str, kind: u8, s: u64, e: u64| {
            let parent = parent.map(|p| format!(r#""parentSpanId":"{p}","#)).unwrap_or_default();
            format!(
                r#"{{"traceId":"{trace}","spanId":"{id}",{parent}"name":"{name}","kind":{kind},"startTimeUnixNano":"{s}","endTimeUnixNano":"{e}"}}"#
            )
        };
        let resource = |service: &str, version: &str, spans: Vec<String>| {
            format!(
                r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}},{{"key":"service.version","value":{{"stringValue":"{version}"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}"#,
                spans.join(",")
            )
        };
        let a = resource(
            "a",
            if candidate { "2.0" } else { "1.0" },
            vec![
                span(id(1), None, "GET /a", 2, start, end),
                span(id(2), Some(id(1)), "call b", 3, start + a_own, b_end + 100_000),
                span(id(3), Some(id(1)), "call c", 3, start + a_own, c_end),
            ],
        );
        let b = resource(
            "b",
            "7.0",
            vec![
                span(id(4), Some(id(2)), "GET /b", 2, b_start, b_end),
                span(id(5), Some(id(4)), "SELECT", 3, b_start + b_own / 2, b_start + b_own / 2 + db),
            ],
        );
        let c =
            resource("c", "3.1", vec![span(id(6), Some(id(3)), "GET /c", 2, start + a_own + 100_000, c_end - 100_000)]);
        text.push_str(&format!("{{\"resourceSpans\":[{a},{b},{c}]}}\n"));
    }
    let path = dir.join("downstream-canary.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_canary_whose_calls_get_slower_blames_the_callee() {
    let dir = tempfile::tempdir().unwrap();
    let input = downstream_canary(dir.path());
    let (code, out, err) = tracelens(&[
        "verdict",
        input.to_str().unwrap(),
        "--service",
        "a",
        "--baseline-version",
        "1.0",
        "--candidate-version",
        "2.0",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!((code, v["verdict"].as_str()), (1, Some("fail")), "{v:#}");
    assert_eq!(first_blamed(&v), ("b".to_string(), "GET /b".to_string()), "{:#}", v["attribution"]);
    let b = &v["attribution"][0];
    let delta = b["delta_ns"].as_i64().unwrap();
    assert!((5_500_000..6_500_000).contains(&delta), "b's own work grew by 6 ms: {b}");
    // a's own work and the database call did not change.
    for a in v["attribution"].as_array().unwrap().iter().skip(1) {
        assert!(a["delta_ns"].as_i64().unwrap().abs() < 300_000, "{a}");
    }
}

#[test]
fn the_readme_canary_example_detects_its_regression() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let generate = readme
        .lines()
        .find(|l| l.starts_with("tracelens generate --traces 20000 --scenario canary"))
        .expect("the README's canary example");
    let verdict = readme
        .lines()
        .find(|l| l.starts_with("tracelens verdict canary.jsonl "))
        .expect("the README's verdict example");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("canary.jsonl");
    let args = |line: &str| -> Vec<String> {
        line.split_whitespace()
            .skip(1)
            .map(|a| if a == "canary.jsonl" { dump.to_str().unwrap().to_string() } else { a.to_string() })
            .collect()
    };
    let generate = args(generate);
    let (code, _, err) = tracelens(&generate.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let verdict = args(verdict);
    let (code, out, err) = tracelens(&verdict.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1, "{out}{err}");
    let shown = readme.lines().find(|l| l.starts_with("reason:  ")).unwrap().trim_end_matches(" …");
    assert!(out.lines().nth(1).unwrap().starts_with(shown), "README shows {shown:?}, the run says {out}");
}

/// `report --baseline-input`: the baseline's own dumps against the
/// inputs, the same traces before and after a 2.8x slower checkout.
#[test]
fn report_judges_a_baseline_input_against_the_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let before = common::generate(dir.path(), "before.jsonl", &["--traces", "6000"]);
    let after = common::generate(
        dir.path(),
        "after.jsonl",
        &[
            "--traces",
            "6000",
            "--scenario",
            "rollout",
            "--deploy-at",
            "0.01",
            "--change",
            "latency",
            "--magnitude",
            "2.8",
        ],
    );
    let html = dir.path().join("deploy.html");
    let out = common::tracelens(
        &[
            "report",
            after.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
            "--service",
            "checkout",
            "--baseline-input",
            before.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    let start = page.find(r#"id="tracelens-data">"#).unwrap() + r#"id="tracelens-data">"#.len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    let v = &data["verdict"]["verdict"];
    assert_eq!((v["verdict"].as_str(), v["mode"].as_str()), (Some("fail"), Some("inputs")), "{v}");
    assert_eq!(v["baseline"]["traces"], v["candidate"]["traces"]);
    assert_eq!(
        (v["attribution"][0]["service"].as_str(), v["attribution"][0]["operation"].as_str()),
        (Some("checkout"), Some("PlaceOrder"))
    );
    let scopes: Vec<&str> =
        data["verdict"]["histograms"].as_array().unwrap().iter().map(|h| h["label"].as_str().unwrap()).collect();
    assert!(scopes.starts_with(&["checkout", "checkout PlaceOrder"]), "{scopes:?}");
    // A baseline by input and by version at once is a usage error.
    let both = common::tracelens(
        &["report", after.to_str().unwrap(), "-o", html.to_str().unwrap(), "--service", "checkout"]
            .into_iter()
            .chain(["--baseline-input", before.to_str().unwrap(), "--baseline-version", "1.9.0"])
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(both.status.code(), Some(2));
}
