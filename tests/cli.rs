//! The `tracelens` binary as a user runs it: reports, exit codes, standard
//! input, help with examples, completions.

mod common;

use common::{fixture, public, stderr, stdout, tracelens};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[test]
fn analyze_json_report_has_the_documented_shape() {
    let path = public("zipkin/smartthings-oauth-authorization.json");
    let out = tracelens(&["analyze", "--format", "json", path.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["inputs"][0]["path"], path.to_str().unwrap());
    assert_eq!(v["inputs"][0]["format"], "zipkin-json");
    assert_eq!(v["inputs"][0]["spans"], 175);
    assert_eq!(v["spans"], 175);
    assert_eq!(v["traces"], 1);
    assert_eq!(v["services"].as_array().unwrap().len(), 8);
    assert_eq!(v["warnings"]["shared_span_split"], 45);
    assert_eq!(v["warnings"]["missing_duration"], 19);
    assert!(v["time_range"]["start"].as_str().unwrap().starts_with("2018-11-27T"));
}

#[test]
fn analyze_table_report_reads_well() {
    let out = tracelens(&["analyze", fixture("shop.otlp.json").to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("otlp-json"), "{text}");
    assert!(text.contains("Spans       14\n"), "{text}");
    assert!(text.contains("Traces      2\n"), "{text}");
    assert!(text.contains("Services    5: cart, checkout, frontend, payments, shipping\n"), "{text}");
    assert!(
        text.contains("Time range  2026-11-01T10:00:00.000000Z .. 2026-11-01T10:00:00.230000Z (230.00ms)"),
        "{text}"
    );
    assert!(text.contains("Warnings    none"), "{text}");
    // The shop's checkout calls cart, payments and shipping one after
    // another, and payments' failure surfaces in checkout.
    assert!(
        text.contains("  1. Run the calls checkout POST /cart/checkout makes one after another concurrently, if they do not depend on each other (up to 8.00ms per trace).\n"),
        "{text}"
    );
    assert!(
        text.contains("  2. Fix the errors that start in payments Charge: they surface in checkout Charge.\n"),
        "{text}"
    );
}

#[test]
fn analyze_json_recommends_with_evidence_saving_and_confidence() {
    let out = tracelens(&["analyze", "--format", "json", fixture("shop.otlp.json").to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let r = v["recommendations"].as_array().unwrap();
    let kinds: Vec<&str> = r.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sequential_calls", "error_origin"], "{r:#?}");
    assert_eq!(r[0]["saving_ns_per_trace"], 8_000_000);
    assert_eq!((r[0]["traces"].as_u64(), r[0]["share"].as_f64()), (Some(1), Some(0.5)));
    assert_eq!(r[0]["confidence"], "low", "one trace of two");
    assert_eq!(r[0]["example_trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert!(r[1]["evidence"].as_str().unwrap().contains("surface in checkout Charge"), "{r:#?}");
}

#[test]
fn analyze_many_inputs_with_warnings() {
    let out = tracelens(
        &[
            "analyze",
            "--format",
            "json",
            fixture("shop.otlp.pb").to_str().unwrap(),
            fixture("shop.zipkin.json.zst").to_str().unwrap(),
            fixture("damaged.otlp.jsonl").to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let formats: Vec<&str> = v["inputs"].as_array().unwrap().iter().map(|i| i["format"].as_str().unwrap()).collect();
    assert_eq!(formats, vec!["otlp-protobuf", "zipkin-json", "otlp-json-lines"]);
    assert_eq!(v["inputs"][1]["compression"][0], "zstd");
    assert_eq!(v["spans"], 14 + 14 + 14);
    // The pb and zipkin copies of the shop traces differ (Zipkin names are lower-case),
    // so their 14 ids collide as differing spans: re-identified, not dropped; one more
    // comes from the damaged dump.
    assert_eq!(v["warnings"]["duplicate_span_id"], 14 + 1);
    assert_eq!(v["warnings"]["bad_record"], 1);
    assert!(stderr(&out).contains("damaged.otlp.jsonl: skipped line 2, column 48"), "{}", stderr(&out));
}

#[test]
fn reads_standard_input() {
    let data = std::fs::read(fixture("shop.otlp-stream-zstd.bin")).unwrap();
    let out = tracelens(&["analyze", "--format", "json", "-"], Some(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["inputs"][0]["path"], "-");
    assert_eq!(v["inputs"][0]["format"], "otlp-protobuf-stream");
    assert_eq!(v["spans"], 14);
}

#[test]
fn input_errors_exit_2_with_a_message_naming_the_file() {
    let missing = tracelens(&["analyze", "no/such/dump.json"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no/such/dump.json"), "{}", stderr(&missing));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"resourceSpans\": [\n  {\"scopeSpans\": [{\"spans\": [{\"startTimeUnixNano\": \"soon\"}]}]}\n]}",
    )
    .unwrap();
    let out = tracelens(&["analyze", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}: line 2, column", bad.display())), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let strict = tracelens(&["analyze", "--strict", fixture("damaged.otlp.jsonl").to_str().unwrap()], None);
    assert_eq!(strict.status.code(), Some(2));

    let usage = tracelens(&["analyze", "--format", "yaml", "x"], None);
    assert_eq!(usage.status.code(), Some(2));
    let no_inputs = tracelens(&["analyze"], None);
    assert_eq!(no_inputs.status.code(), Some(2));
}

#[test]
fn help_shows_examples_on_every_command() {
    for args in [
        &["--help"][..],
        &["analyze", "--help"],
        &["graph", "--help"],
        &["critical-path", "--help"],
        &["bottlenecks", "--help"],
        &["generate", "--help"],
        &["serve", "--help"],
        &["completions", "--help"],
    ] {
        let out = tracelens(args, None);
        assert!(out.status.success());
        assert!(stdout(&out).contains("Examples:"), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [("bash", "complete"), ("zsh", "#compdef tracelens"), ("fish", "complete -c tracelens")] {
        let out = tracelens(&["completions", shell], None);
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}");
        assert!(text.contains("analyze"), "{shell}");
    }
}

#[test]
fn directories_pass_over_files_without_trace_data_but_named_files_fail() {
    let out = tracelens(&["analyze", "--format", "json", fixture("").to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let skipped: Vec<&str> = v["skipped"].as_array().unwrap().iter().map(|s| s["path"].as_str().unwrap()).collect();
    // The text files, and the damaged Parquet files (kept as the fuzzer
    // found them).
    let not_traces = ["README.md", "damaged-page.parquet", "make_fixtures.py", "negative-page-values.parquet"];
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(skipped.iter().zip(not_traces).all(|(path, name)| path.ends_with(name)), "{skipped:?}");
    let trace_files = std::fs::read_dir(fixture(""))
        .unwrap()
        .filter(|e| !not_traces.iter().any(|n| e.as_ref().unwrap().file_name() == *n))
        .count();
    assert_eq!(v["inputs"].as_array().unwrap().len(), trace_files);
    assert!(stderr(&out).contains("skipped"), "{}", stderr(&out));

    let named = tracelens(&["analyze", fixture("README.md").to_str().unwrap()], None);
    assert_eq!(named.status.code(), Some(2));
    assert!(stderr(&named).contains("README.md: not a trace format"), "{}", stderr(&named));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("package.json"), r#"{"name": "not traces"}"#).unwrap();
    std::fs::copy(fixture("shop.zipkin.json"), dir.path().join("z.json")).unwrap();
    let out = tracelens(&["analyze", "--format", "json", dir.path().to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["spans"], 14);
    assert!(v["skipped"][0]["reason"].as_str().unwrap().contains("no trace data"), "{v}");
}

/// Runs the binary with standard output closed before it writes (as
/// `| head -0` does) and returns its exit code.
fn exit_code_with_stdout_closed(args: &[&str]) -> Option<i32> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tracelens"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait().unwrap().code()
}

/// Runs the binary with standard output on /dev/full (a full disk).
fn exit_code_with_stdout_full(args: &[&str]) -> (Option<i32>, String) {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tracelens"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (out.status.code(), stderr(&out))
}

#[test]
fn verdict_exit_codes_survive_a_closed_or_full_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let regressed = common::generate(
        dir.path(),
        "regressed.pb",
        &[
            "--format",
            "otlp-protobuf-stream",
            "--traces",
            "4000",
            "--scenario",
            "canary",
            "--change",
            "errors",
            "--magnitude",
            "0.3",
        ],
    );
    let thin = common::generate(
        dir.path(),
        "thin.pb",
        &["--format", "otlp-protobuf-stream", "--traces", "200", "--scenario", "canary", "--change", "none"],
    );
    let verdict = |input: &std::path::Path, format: &'static str| {
        vec![
            "verdict".to_string(),
            input.to_str().unwrap().to_string(),
            "--service".into(),
            "checkout".into(),
            "--baseline-version".into(),
            "1.9.0".into(),
            "--candidate-version".into(),
            "1.10.0".into(),
            "--format".into(),
            format.into(),
        ]
    };
    for format in ["table", "json"] {
        let fail = verdict(&regressed, format);
        let fail: Vec<&str> = fail.iter().map(String::as_str).collect();
        let inconclusive = verdict(&thin, format);
        let inconclusive: Vec<&str> = inconclusive.iter().map(String::as_str).collect();
        assert_eq!(tracelens(&fail, None).status.code(), Some(1), "{format}");
        assert_eq!(tracelens(&inconclusive, None).status.code(), Some(3), "{format}");
        assert_eq!(exit_code_with_stdout_closed(&fail), Some(1), "a closed stdout keeps fail: {format}");
        assert_eq!(exit_code_with_stdout_closed(&inconclusive), Some(3), "keeps inconclusive: {format}");
        let (code, err) = exit_code_with_stdout_full(&fail);
        assert_eq!(code, Some(2), "a write error is not an answer: {err}");
        assert!(err.contains("writing to standard output"), "{err}");
    }
    // diff: 1 when something regressed, also with stdout closed; 2 on a full disk.
    let base = common::generate(dir.path(), "base.pb", &["--format", "otlp-protobuf-stream", "--traces", "4000"]);
    let diff = ["diff", base.to_str().unwrap(), regressed.to_str().unwrap()];
    assert_eq!(tracelens(&diff, None).status.code(), Some(1));
    assert_eq!(exit_code_with_stdout_closed(&diff), Some(1));
    assert_eq!(exit_code_with_stdout_full(&diff).0, Some(2));
    // Other commands: a reader closing the pipe is not a failure; a full disk is.
    let analyze = ["analyze", base.to_str().unwrap()];
    assert_eq!(exit_code_with_stdout_closed(&analyze), Some(0));
    assert_eq!(exit_code_with_stdout_full(&analyze).0, Some(2));
}

#[test]
fn what_the_input_does_not_hold_is_a_usage_error_listing_what_it_does() {
    let shop = fixture("shop.otlp.json");
    let shop = shop.to_str().unwrap();
    let out = tracelens(&["verdict", shop, "--service", "chekout", "--deploy-time", "2026-11-01T10:00:00.1Z"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "service \"chekout\" is not in the input; services present: cart, checkout, frontend, payments, shipping"
        ),
        "{}",
        stderr(&out)
    );
    let out = tracelens(
        &["verdict", shop, "--service", "checkout", "--baseline-version", "1.8.0", "--candidate-version", "2.0.0"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "checkout version \"1.8.0\" and \"2.0.0\" are not in the input; versions of checkout present: 1.9.0"
        ),
        "{}",
        stderr(&out)
    );
    let out = tracelens(&["verdict", shop, "--service", "checkout", "--deploy-time", "2026-11-02T10:00:00Z"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "deploy time 2026-11-02T10:00:00.000000Z is outside the input, which runs from 2026-11-01T10:00:00.000000Z to 2026-11-01T10:00:00.230000Z"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_input_without_spans_is_an_error_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let no_spans = dir.path().join("no-spans.json");
    std::fs::write(&no_spans, r#"{"resourceSpans": []}"#).unwrap();
    let all_bad = dir.path().join("all-bad.jsonl");
    std::fs::write(&all_bad, "{\"resourceSpans\": []}\n{\"resourceSpans\": 7}\n{\"resourceSpans\": \"x\"}\n").unwrap();
    let out_file = dir.path().join("out.parquet");
    for (input, why) in [
        (empty.to_str().unwrap(), "it is empty"),
        (no_spans.to_str().unwrap(), "it holds no spans"),
        (all_bad.to_str().unwrap(), "no span in it could be read (first bad record: line 2"),
        ("-", "it is empty"),
    ] {
        for command in [
            &["analyze"][..],
            &["graph"],
            &["critical-path"],
            &["critical-path", "--format", "json"],
            &["bottlenecks"],
            &["export", "--output", out_file.to_str().unwrap()],
            &["sql", "SELECT count(*) FROM spans"],
            &["verdict", "--service", "a", "--deploy-time", "2026-11-01T10:00:00Z"],
        ] {
            let mut args = command.to_vec();
            args.push(input);
            let out = tracelens(&args, Some(b""));
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
            let err = stderr(&out);
            let name = if input == "-" { "<stdin>" } else { input };
            assert!(err.contains(&format!("no spans to analyse: {name}: {why}")), "{args:?}: {err}");
        }
        let out = tracelens(&["diff", input, fixture("shop.otlp.json").to_str().unwrap()], Some(b""));
        assert_eq!(out.status.code(), Some(2), "diff {input}");
        assert!(!out_file.exists(), "nothing written for {input}");
    }
}

#[test]
fn errors_have_one_prefix_and_never_echo_raw_contents() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("random.bin");
    // A PNG image: not a trace format.
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&binary, &bytes).unwrap();
    let out = tracelens(&["analyze", binary.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let preview = format!("{}…", bytes[..32].escape_ascii());
    assert!(err.contains(&format!("not a trace format tracelens reads (it starts \"{preview}\")")), "{err}");
    assert!(err.is_ascii() || err.chars().filter(|c| !c.is_ascii()).all(|c| c == '…'), "raw bytes: {err:?}");

    let long = dir.path().join("long.json");
    std::fs::write(&long, format!("{{\"resourceSpans\": \"{}\"}}", "x".repeat(10_000))).unwrap();
    let err = stderr(&tracelens(&["analyze", long.to_str().unwrap()], None));
    assert!(err.len() < 300, "{err}");
    assert!(err.contains(&format!("invalid type: string \"{}…\"", "x".repeat(32))), "{err}");

    // Flag errors carry the same prefix as every other error.
    let out = tracelens(&["analyze", "--format", "yaml", "x"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("tracelens: error: invalid value 'yaml'"), "{}", stderr(&out));
    for line in stderr(&tracelens(&["analyze", "no/such/file"], None)).lines() {
        assert!(line.starts_with("tracelens: "), "{line}");
    }
}

#[test]
fn man_pages_come_from_the_command_line_definition() {
    let out = tracelens(&["man"], None);
    assert!(out.status.success());
    let page = stdout(&out);
    assert!(page.contains(".TH tracelens 1"), "{page}");
    // roff writes a hyphen as \-.
    for command in ["analyze", "critical\\-path", "verdict", "send", "serve"] {
        assert!(page.contains(command), "{command} in the page");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = tracelens(&["man", "--out-dir", dir.path().to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let verdict = std::fs::read_to_string(dir.path().join("tracelens-verdict.1")).unwrap();
    assert!(verdict.contains(".TH tracelens-verdict 1") && verdict.contains("deploy\\-time"), "{verdict}");
    assert!(dir.path().join("tracelens.1").exists() && dir.path().join("tracelens-send.1").exists());

    // The licence the crate declares is the one in the repository.
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
}
