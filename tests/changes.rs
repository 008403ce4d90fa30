//! Change detection on workloads simulated by `tracelens generate`: a
//! slowdown injected into one service at a known time is reported in the
//! window it starts in, that service's operation first, and in no window
//! before; 200 no-change runs report a change in at most 2% of their
//! windows; thin data is "not enough data", never a change.

mod common;

use std::path::Path;

use tracelens::assemble::assemble_all;
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};
use tracelens::judge::JudgeConfig;
use tracelens::judge::changes::{BaselineRule, ChangeStatus, History, Range, baseline_for};
use tracelens::model::time::parse_time;
use tracelens::model::{Dictionary, Warnings};
use tracelens::read::{ReadOptions, read_spans};

const MINUTE: u64 = 60_000_000_000;

/// `changes --format json` on a generated dump, with its exit code.
fn changes(input: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["changes", input.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = common::tracelens(&args, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{}", common::stderr(&out)));
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn an_injected_slowdown_is_reported_in_its_window_with_its_service_first() {
    // An hour of shop traffic at 2 traces/s; at 00:40 currency (one
    // operation, Convert) does its own work twice as slowly.
    let dir = tempfile::tempdir().unwrap();
    let dump = common::currency_slowdown(dir.path(), "rollout.pb", "2026-11-01T00:00:00Z");
    let (code, v) = changes(&dump, &["--window", "10m", "--until", "2026-11-01T01:00:00Z"]);
    assert_eq!(code, 1, "a regression: {v:#}");
    let windows = v["windows"].as_array().unwrap();
    // The first trace starts a moment after midnight: before 00:20 no
    // window has a baseline of its own width.
    assert_eq!(windows.len(), 4, "{v:#}");
    let start = |w: &serde_json::Value| w["window"]["start_unix_nano"].as_u64().unwrap();
    let midnight = parse_time("2026-11-01T00:00:00Z").unwrap();
    for w in &windows[..2] {
        assert_eq!(w["status"], "unchanged", "before the deploy: {w:#}");
    }
    let at = &windows[2];
    assert_eq!(start(at), midnight + 40 * MINUTE);
    assert_eq!(at["status"], "changed", "{at:#}");
    let first = &at["changes"][0];
    assert_eq!(first["direction"], "regressed", "{at:#}");
    assert_eq!(first["name"], "currency Convert latency_p50", "{at:#}");
    assert!(first["impact"]["path_ns_per_second"].as_i64().unwrap() > 0, "{first:#}");
    let estimate = first["estimate"].as_f64().unwrap();
    assert!((1.6..2.4).contains(&estimate), "own work twice as slow: {first:#}");
    // The version change is listed beside it.
    let versions = at["version_changes"].as_array().unwrap();
    assert!(versions.iter().any(|c| c["service"] == "currency"), "{at:#}");
    assert_eq!(first["new_version"].as_str().map(|v| !v.is_empty()), Some(true), "{first:#}");
}

#[test]
fn thin_data_is_not_enough_data_never_a_change() {
    // 40 traces over 20 minutes: no service has 50 spans in a window.
    let dir = tempfile::tempdir().unwrap();
    let dump = common::generate(
        dir.path(),
        "thin.pb",
        &[
            "--format",
            "otlp-protobuf-stream",
            "--traces",
            "40",
            "--rate",
            "0.0333",
            "--scenario",
            "rollout",
            "--change",
            "latency",
            "--target",
            "currency",
            "--magnitude",
            "5",
        ],
    );
    let (code, v) = changes(&dump, &["--window", "5m"]);
    assert_eq!(code, 0, "{v:#}");
    let windows = v["windows"].as_array().unwrap();
    assert!(!windows.is_empty());
    for w in windows {
        assert_eq!(w["status"], "not_enough_data", "{w:#}");
        assert!(w["reason"].as_str().unwrap().starts_with("not enough data"), "{w:#}");
        assert_eq!(w["changes"].as_array().map(Vec::len), Some(0));
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let dump = common::generate(dir.path(), "short.pb", &["--format", "otlp-protobuf-stream", "--traces", "100"]);
    for (args, expected) in [
        (vec!["--window", "0s"], "--window must be at least 1s"),
        (vec!["--until", "yesterday"], "--until \"yesterday\" is not a time"),
        (vec!["--window", "1h"], "no window of 1h00m has a baseline of its width before it"),
    ] {
        let mut all = vec!["changes", dump.to_str().unwrap()];
        all.extend_from_slice(&args);
        let out = common::tracelens(&all, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(common::stderr(&out).contains(expected), "{args:?}: {}", common::stderr(&out));
    }
}

/// The windows of one no-change run that report any change, of those
/// judged: 40 minutes of shop traffic at one trace a second, 10-minute
/// windows.
fn null_run(seed: u64, config: &JudgeConfig) -> (usize, usize, Vec<String>) {
    let generator = GeneratorConfig { seed, traces_per_second: 1.0, ..GeneratorConfig::default() };
    let (bytes, _) =
        generate::to_vec(&TopologyFile::shop(), &generator, Amount::Traces(2_400), OutputFormat::OtlpProtobufStream)
            .unwrap();
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut spans = Vec::new();
    read_spans("null", &bytes[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut |_: &Dictionary, s| {
        spans.push(s)
    })
    .unwrap();
    let (traces, _) = assemble_all(spans);
    let mut history = History::new();
    for t in &traces {
        history.add_trace(&dict, t);
    }
    let (first, _) = history.range().unwrap();
    let (mut judged, mut changed, mut what) = (0, 0, Vec::new());
    for k in 1..4 {
        let window = Range::new(first + k * 10 * MINUTE, first + (k + 1) * 10 * MINUTE);
        let baseline = baseline_for(window, BaselineRule::Default, first).unwrap();
        let report = history.changes(&dict, window, baseline, config);
        assert_ne!(report.status, ChangeStatus::NotEnoughData, "{}", report.reason);
        judged += 1;
        if !report.changes.is_empty() {
            changed += 1;
            what.extend(report.changes.iter().map(|c| format!("seed {seed}: {}", c.metric.name)));
        }
    }
    (judged, changed, what)
}

#[test]
fn no_change_reports_a_change_in_at_most_2_percent_of_windows() {
    // Fewer bootstrap rounds than the default keep the debug build's run
    // short; the p99 intervals get wider and noisier, which only makes
    // false changes likelier.
    let config = JudgeConfig { bootstrap_rounds: 200, ..JudgeConfig::default() };
    let seeds: Vec<u64> = (1..=200).collect();
    let results: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = seeds
            .chunks(100)
            .map(|chunk| {
                let config = &config;
                s.spawn(move || chunk.iter().map(|&seed| null_run(seed, config)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let judged: usize = results.iter().map(|r| r.0).sum();
    let changed: usize = results.iter().map(|r| r.1).sum();
    let what: Vec<&String> = results.iter().flat_map(|r| &r.2).collect();
    eprintln!("no change over 200 seeds: {changed} of {judged} windows reported a change: {what:?}");
    assert_eq!(judged, 600);
    assert!(changed * 50 <= judged, "{changed} of {judged} windows reported a change: {what:?}");
}
