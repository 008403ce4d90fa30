//! The offline commands answer the same whatever the number of decoding
//! threads and however the input is cut into chunks, and whether they
//! decode every attribute or only those the analyses read: byte for byte,
//! on every fixture, every public trace, and generated dumps with damage
//! (bad records, records cut short, spans without ids) across chunk
//! boundaries, and the rich preset's interleaved traces.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, generate, stderr, tracelens};

/// The commands whose output is compared.
const COMMANDS: [&[&str]; 5] = [
    &["analyze", "--format", "json"],
    &["analyze"],
    &["graph", "--format", "json"],
    &["critical-path", "--format", "json"],
    &["bottlenecks", "--format", "json"],
];

/// How the runs differ from the first (one thread, lazy attributes).
const VARIANTS: [&[&str]; 4] = [
    &["--threads", "2", "--chunk-bytes", "300"],
    &["--threads", "3", "--chunk-bytes", "5000"],
    &["--threads", "2"],
    &["--threads", "1", "--all-attributes"],
];

/// Exit code, standard output and standard error of one run.
fn run(command: &[&str], input: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args: Vec<&str> = command.to_vec();
    args.extend_from_slice(extra);
    args.push(input.to_str().unwrap());
    let out = tracelens(&args, None);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), stderr(&out))
}

/// Asserts every variant answers as one thread does; returns how many
/// runs succeeded.
fn assert_same(input: &Path, commands: &[&[&str]], base: &[&str]) -> usize {
    let mut succeeded = 0;
    for command in commands {
        let reference = run(command, input, &[&["--threads", "1"], base].concat());
        succeeded += usize::from(reference.0 == Some(0));
        for variant in VARIANTS {
            let got = run(command, input, &[variant, base].concat());
            assert!(
                got == reference,
                "{command:?} {variant:?} {base:?} on {} differs from one thread:\n--- one thread (exit {:?}):\n{}\n{}\n--- this (exit {:?}):\n{}\n{}",
                input.display(),
                reference.0,
                reference.1,
                reference.2,
                got.0,
                got.1,
                got.2
            );
        }
    }
    succeeded
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_below(&path, out);
        } else if !matches!(path.extension().and_then(|e| e.to_str()), Some("md" | "py")) {
            out.push(path);
        }
    }
}

#[test]
fn every_fixture_and_public_trace_answers_the_same_on_any_thread_count_and_attribute_path() {
    let mut files = Vec::new();
    files_below(&fixture(""), &mut files);
    let public = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata");
    assert!(public.exists(), "public test data missing: {}", public.display());
    files_below(&public, &mut files);
    assert!(files.len() >= 25, "{} files", files.len());
    let mut succeeded = 0;
    for file in &files {
        succeeded += assert_same(file, &COMMANDS, &[]);
    }
    // Nearly all are readable; the damaged Parquet files are refused alike.
    assert!(succeeded >= (files.len() - 2) * COMMANDS.len(), "{succeeded} runs succeeded");
}

/// OTLP JSON lines of shop traffic with damage every few lines: spans
/// without span ids (given synthetic ones in order), and bad records,
/// some after a span without id was already read from them.
fn damaged_json_lines(dir: &Path) -> (PathBuf, u64) {
    let clean = generate(dir, "clean.jsonl", &["--spans", "3000", "--format", "otlp-json-lines"]);
    let text = std::fs::read_to_string(&clean).unwrap();
    let mut out = String::new();
    let mut without_id = 0;
    for (i, line) in text.lines().enumerate() {
        let line = if i % 3 == 0 {
            // The first span's id removed.
            without_id += 1;
            let at = line.find("\"spanId\":\"").unwrap() + "\"spanId\":\"".len();
            format!("{}{}", &line[..at], &line[at + 16..])
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
        if i % 4 == 1 {
            // A record whose first span has no id, then broken JSON.
            out.push_str(
                "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\
                 \"spanId\":\"\",\"name\":\"lost\",\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"},{\"traceId\":\n",
            );
        }
        if i % 5 == 2 {
            out.push('\n');
        }
    }
    let path = dir.join("damaged.jsonl");
    std::fs::write(&path, out).unwrap();
    (path, without_id)
}

/// A length-prefixed protobuf stream with a garbage record in the middle
/// and its last record cut short.
fn damaged_stream(dir: &Path) -> PathBuf {
    let clean = generate(dir, "clean.pb", &["--spans", "3000", "--format", "otlp-protobuf-stream"]);
    let bytes = std::fs::read(clean).unwrap();
    let mut records = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        records.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    assert!(records.len() > 10, "{} records", records.len());
    let mut out = Vec::new();
    for (i, record) in records.iter().enumerate() {
        if i == records.len() / 2 {
            let garbage = [0xFFu8; 40];
            out.extend_from_slice(&(garbage.len() as u32).to_be_bytes());
            out.extend_from_slice(&garbage);
        }
        out.extend_from_slice(&(record.len() as u32).to_be_bytes());
        out.extend_from_slice(record);
    }
    out.truncate(out.len() - 10);
    let path = dir.join("damaged.pb");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn generated_and_damaged_dumps_answer_the_same_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let pb = generate(dir.path(), "shop.pb", &["--spans", "20000", "--format", "otlp-protobuf-stream"]);
    let jsonl = generate(dir.path(), "shop.jsonl", &["--spans", "20000", "--format", "otlp-json-lines"]);
    let rich = ["--preset", "rich", "--spans", "20000", "--format"];
    let rich_pb = generate(dir.path(), "rich.pb", &[&rich[..], &["otlp-protobuf-stream"]].concat());
    let rich_jsonl = generate(dir.path(), "rich.jsonl", &[&rich[..], &["otlp-json-lines"]].concat());
    for file in [&pb, &jsonl, &rich_pb, &rich_jsonl] {
        assert_eq!(assert_same(file, &COMMANDS, &[]), COMMANDS.len());
    }
    let (jsonl, without_id) = damaged_json_lines(dir.path());
    for file in [jsonl.clone(), damaged_stream(dir.path())] {
        assert_eq!(assert_same(&file, &COMMANDS[..2], &[]), 2);
        let (code, out, err) =
            run(&["analyze", "--format", "json"], &file, &["--threads", "2", "--chunk-bytes", "300"]);
        assert_eq!(code, Some(0), "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(report["warnings"]["bad_record"].as_u64().unwrap() > 0, "{out}");
        assert!(err.contains("skipped"), "{err}");
        // Strict: the same first bad record ends every run (exit 2).
        let strict = ["--strict"];
        assert_eq!(assert_same(&file, &COMMANDS[..1], &strict), 0);
        let (code, _, err) = run(&["analyze"], &file, &["--strict", "--threads", "2", "--chunk-bytes", "300"]);
        assert_eq!(code, Some(2), "{err}");
    }
    // Spans in records that failed are not counted: only the damaged lines'.
    let (_, out, _) = run(&["analyze", "--format", "json"], &jsonl, &["--threads", "3", "--chunk-bytes", "700"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["warnings"]["invalid_span_id"].as_u64(), Some(without_id), "{out}");
    assert!(without_id >= 5, "{without_id}");
}

#[test]
fn zero_threads_or_chunk_bytes_are_usage_errors() {
    let input = fixture("shop.otlp.json");
    for (flag, message) in
        [("--threads", "--threads must be at least 1"), ("--chunk-bytes", "--chunk-bytes must be at least 1")]
    {
        let (code, stdout, stderr) = run(&["analyze"], &input, &[flag, "0"]);
        assert_eq!(code, Some(2), "{flag} 0: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains(message), "{stderr}");
    }
}
