//! `tracelens merge`: partials written by separate `analyze --partial`
//! runs combine into the report one `analyze` over every input prints.

mod common;

use std::path::{Path, PathBuf};

use common::{public, stderr, stdout, tracelens};

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn text(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Analyses `inputs` one by one into partials, merges them, and checks the
/// merged report against one analysis of them all: everything but the
/// list of inputs is the same.
fn merged_equals_whole(dir: &Path, inputs: &[PathBuf]) -> serde_json::Value {
    let mut partials = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let partial = dir.join(format!("{i}.tlp"));
        let out = tracelens(&["analyze", "--format", "json", "--partial", text(&partial), text(input)], None);
        assert!(out.status.success(), "{}", stderr(&out));
        partials.push(partial);
    }
    let mut args: Vec<&str> = vec!["analyze", "--format", "json"];
    args.extend(inputs.iter().map(|p| text(p)));
    let mut whole = json(&tracelens(&args, None));
    let mut args: Vec<&str> = vec!["merge", "--format", "json"];
    args.extend(partials.iter().map(|p| text(p)));
    let mut merged = json(&tracelens(&args, None));
    for (i, line) in merged["inputs"].as_array().unwrap().iter().enumerate() {
        assert_eq!(line["path"], text(&partials[i]));
        assert_eq!(line["format"], "tracelens-partial");
        assert_eq!(line["spans"], whole["inputs"][i]["spans"]);
    }
    whole["inputs"] = serde_json::Value::Null;
    merged["inputs"] = serde_json::Value::Null;
    assert_eq!(merged, whole);
    whole
}

#[test]
fn partials_of_every_public_dump_merge_into_one_analysis_of_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: Vec<PathBuf> = ["jaeger", "otlp", "tempo", "zipkin"]
        .iter()
        .flat_map(|d| std::fs::read_dir(public(d)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    inputs.sort();
    let whole = merged_equals_whole(dir.path(), &inputs);
    assert_eq!(whole["spans"], 282);
}

#[test]
fn generated_workloads_with_messaging_merge_exactly_and_merges_nest() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for seed in ["1", "2", "3"] {
        let path = dir.path().join(format!("dump-{seed}.otlp.jsonl"));
        let out = tracelens(&["generate", "--traces", "400", "--seed", seed, "-o", text(&path)], None);
        assert!(out.status.success(), "{}", stderr(&out));
        inputs.push(path);
    }
    let whole = merged_equals_whole(dir.path(), &inputs);
    assert_eq!(whole["traces"], 1_200);
    let edges = whole["graph"]["edges"].as_array().unwrap();
    assert!(edges.iter().any(|e| e["connection_type"] == "messaging_system"), "messaging pairs across traces");
    // A merge written as a partial merges again: 0+1, then with 2.
    let (first, second) = (dir.path().join("0.tlp"), dir.path().join("1.tlp"));
    let nested = dir.path().join("nested.tlp");
    let out = tracelens(&["merge", "--partial", text(&nested), text(&first), text(&second)], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut again =
        json(&tracelens(&["merge", "--format", "json", text(&nested), text(&dir.path().join("2.tlp"))], None));
    again["inputs"] = serde_json::Value::Null;
    assert_eq!(again, whole);
}

#[test]
fn what_is_not_a_partial_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let dump = public("zipkin/skew.json");
    let out = tracelens(&["merge", text(&dump)], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("skew.json: file: does not start as a tracelens partials file"), "{}", stderr(&out));
    let partial = dir.path().join("p.tlp");
    assert!(tracelens(&["analyze", "--partial", text(&partial), text(&dump)], None).status.success());
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes.truncate(bytes.len() - 7);
    std::fs::write(&partial, &bytes).unwrap();
    let out = tracelens(&["merge", text(&partial)], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("p.tlp: partial 1: "), "{}", stderr(&out));
    let out = tracelens(&["merge"], None);
    assert_eq!(out.status.code(), Some(2), "no partial given is a usage error");
}
