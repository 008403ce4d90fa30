//! Each kind of damage real dumps carry: the warning it raises, and that the
//! good spans around it survive. Plus errors that name where and what, and
//! decoders that never panic on garbage.

mod common;

use std::io::Write;

use common::{analyze, analyze_with, fixture};
use tracelens::model::{Dictionary, SpanQuality, WarningKind, Warnings};
use tracelens::read::{ReadOptions, read_spans};

/// `damaged.otlp.jsonl` has one instance of each kind (see testdata/README.md).
#[test]
fn damaged_jsonl_warns_per_kind_and_keeps_good_spans() {
    let f = analyze(&fixture("damaged.otlp.jsonl"));
    let expected = [
        (WarningKind::BadRecord, 1),
        (WarningKind::DuplicateSpan, 1),
        (WarningKind::DuplicateSpanId, 1),
        (WarningKind::MissingStartTime, 1),
        (WarningKind::ZeroDuration, 1),
        (WarningKind::NegativeDuration, 1),
        (WarningKind::NonHexId, 5),
        (WarningKind::InvalidTraceId, 1),
        (WarningKind::InvalidSpanId, 1),
        (WarningKind::OrphanParent, 1),
        (WarningKind::ParentCycle, 1),
    ];
    for (kind, n) in expected {
        assert_eq!(f.warning(kind), n, "{kind}");
    }
    assert_eq!(f.warnings.total(), expected.iter().map(|(_, n)| n).sum::<u64>(), "{:?}", f.warnings);
    // 14 spans in the 7 good lines; one exact duplicate dropped.
    assert_eq!(f.spans_read, 14);
    assert_eq!(f.summary.spans, 13);
    assert_eq!(f.summary.traces, 4);
    assert_eq!(f.services, vec!["api", "broken", "legacy", "loop", "worker"]);

    // The good root and child are intact and linked.
    let root = f.span("root");
    let child = f.span("child");
    assert_eq!(child.parent_id, Some(root.span_id));
    assert_eq!(root.duration_ns(), Some(100_000_000));
    assert!(root.quality.is_empty() && child.quality.is_empty());

    // Re-identified impostor keeps its parent and its original id text.
    let impostor = f.span("impostor");
    assert!(impostor.quality.contains(SpanQuality::DUPLICATE_ID));
    assert_ne!(impostor.span_id, child.span_id);
    assert_eq!(impostor.parent_id, Some(root.span_id));

    // Timing damage is flagged and excluded from latency.
    assert_eq!(f.span("no-start").duration_ns(), None);
    assert!(f.span("no-start").quality.contains(SpanQuality::MISSING_START));
    assert_eq!(f.span("instant").duration_ns(), Some(0));
    assert_eq!(f.span("backwards").duration_ns(), None);

    // Opaque ids: hashed, consistent (child still under its root), original text kept.
    let (a, b) = (f.span("opaque root"), f.span("opaque child"));
    assert_eq!(b.parent_id, Some(a.span_id));
    assert_eq!(a.trace_id, b.trace_id);
    let original = a.original_ids().unwrap();
    assert_eq!(original.trace_id.as_deref(), Some("not-a-hex-trace"));
    assert_eq!(original.span_id.as_deref(), Some("span-A"));

    // Invalid ids get synthetic ones; the span survives.
    assert!(f.span("no trace id").quality.contains(SpanQuality::INVALID_TRACE_ID));
    let zero = f.span("zero span id");
    assert!(zero.quality.contains(SpanQuality::INVALID_SPAN_ID));
    assert_eq!(zero.parent_id, Some(root.span_id));

    assert!(f.span("orphan").quality.contains(SpanQuality::ORPHAN));
    let cut = [f.span("ping"), f.span("pong")].iter().filter(|s| s.quality.contains(SpanQuality::CYCLE_CUT)).count();
    assert_eq!(cut, 1, "exactly one link of the cycle is cut");
}

#[test]
fn strict_mode_fails_on_the_bad_record_with_its_line() {
    let err = analyze_with(&[fixture("damaged.otlp.jsonl")], tracelens::table::read_options(true))
        .err()
        .expect("strict fails");
    let msg = err.to_string();
    assert!(msg.contains("damaged.otlp.jsonl: line 2, column 48: EOF while parsing"), "{msg}");
}

/// Builds a length-prefixed stream from the shop fixture's records.
fn stream_records() -> Vec<Vec<u8>> {
    let data = std::fs::read(fixture("shop.otlp-stream.bin")).unwrap();
    let mut records = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        records.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    records
}

fn frame(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(r);
    }
    out
}

fn read_bytes(
    data: &[u8],
    strict: bool,
) -> (Result<tracelens::read::InputReport, tracelens::read::ReadError>, Warnings) {
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut sink = |_: &Dictionary, _| {};
    let r = read_spans("mem.bin", data, &tracelens::table::read_options(strict), &mut dict, &mut warnings, &mut sink);
    (r, warnings)
}

#[test]
fn length_prefixed_bad_and_truncated_records_are_skipped() {
    let records = stream_records();
    assert_eq!(records.len(), 7);
    let good_spans = 14u64;
    // A garbage record in the middle, JSON and zstd records mixed in, and a cut-off tail.
    let mut mixed = records.clone();
    mixed.insert(3, b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec());
    let json_record = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"extra"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"json-in-stream","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
    mixed.push(json_record.to_vec());
    mixed.push(zstd::bulk::compress(&records[0], 3).unwrap());
    let mut data = frame(&mixed);
    data.extend_from_slice(&[0, 0, 1, 0, 0x0a, 0x01]); // claims 256 bytes, has 2
    let (report, warnings) = read_bytes(&data, false);
    let report = report.expect("lenient read succeeds");
    let first_record_spans = 2; // frontend's spans of trace A
    assert_eq!(report.spans, good_spans + 1 + first_record_spans);
    assert_eq!(warnings.get(WarningKind::BadRecord), 2);
    assert_eq!(report.bad_records.len(), 2);
    assert!(report.bad_records[0].contains("record 4"), "{:?}", report.bad_records);
    assert!(report.bad_records[1].contains("cut short"), "{:?}", report.bad_records);

    let (strict, _) = read_bytes(&data, true);
    let msg = strict.unwrap_err().to_string();
    let offset: usize = records[..3].iter().map(|r| r.len() + 4).sum();
    assert!(msg.starts_with(&format!("mem.bin: byte offset {offset}: record 4: ")), "{msg}");
}

#[test]
fn damaged_compression_is_an_error_not_a_panic() {
    let gz = std::fs::read(fixture("shop.otlp.json.gz")).unwrap();
    let (r, _) = read_bytes(&gz[..gz.len() / 2], false);
    assert!(r.is_err(), "truncated gzip must fail");
    let zst = std::fs::read(fixture("shop.zipkin.json.zst")).unwrap();
    let (r, _) = read_bytes(&zst[..zst.len() - 10], false);
    assert!(r.is_err(), "truncated zstd must fail");
}

#[test]
fn errors_name_the_input_and_position() {
    let cases: [(&[u8], &str); 6] = [
        (b"{\"resourceSpans\": [\n{\"resource\": 5}\n]}", "mem.bin: line 2, column"),
        (b"[{\"traceId\": \"ab\", \"timestamp\": \"soon\"}]", "mem.bin: line 1, column"),
        (b"{\"hello\": \"world\"}", "no trace data"),
        (b"GIF89a....", "not a trace format"),
        (b"\x0a\x05\x0a\x03", "mem.bin: byte offset"),
        (b"\x0a\x7f\x0a", "cut short"),
    ];
    for (data, expected) in cases {
        let (r, _) = read_bytes(data, false);
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(expected), "{:?}: {msg}", String::from_utf8_lossy(data));
    }
}

#[test]
fn empty_inputs_are_empty_not_errors() {
    for data in [&b""[..], b"  \n\n", b"{}", b"[]", b"{\"resourceSpans\": []}", b"{\"data\": null}"] {
        let (r, w) = read_bytes(data, false);
        let report = r.unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(data)));
        assert_eq!(report.spans, 0);
        assert_eq!(w.total(), 0);
    }
}

/// Deterministic garbage, mutated fixtures and truncations: every decoder
/// must return (an error or spans) without panicking.
#[test]
fn decoders_never_panic_on_garbage() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for name in [
        "shop.otlp.json",
        "shop.otlp.jsonl",
        "shop.otlp.pb",
        "shop.otlp-stream.bin",
        "shop.otlp-stream-zstd.bin",
        "shop.jaeger.json",
        "shop.zipkin.json",
        "shop.otlp.json.gz",
        "shop.zipkin.json.zst",
        "shop.parquet",
    ] {
        seeds.push(std::fs::read(fixture(name)).unwrap());
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut runs = 0;
    for seed in &seeds {
        for round in 0..60 {
            let mut data = seed.clone();
            match round % 3 {
                0 => {
                    let n = 1 + (next() % 8) as usize;
                    for _ in 0..n {
                        let i = (next() as usize) % data.len();
                        data[i] = next() as u8;
                    }
                }
                1 => data.truncate((next() as usize) % data.len()),
                _ => {
                    let i = (next() as usize) % data.len();
                    let chunk: Vec<u8> = (0..(next() % 16)).map(|_| next() as u8).collect();
                    data.splice(i..i, chunk);
                }
            }
            let _ = read_bytes(&data, false);
            let _ = read_bytes(&data, true);
            runs += 1;
        }
    }
    for len in [1usize, 3, 4, 7, 64, 1000] {
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = read_bytes(&data, false);
        runs += 1;
    }
    assert_eq!(runs, seeds.len() * 60 + 6);
}

#[test]
fn records_split_over_inputs_join_into_one_trace() {
    let dir = tempfile::tempdir().unwrap();
    let lines = std::fs::read_to_string(fixture("shop.otlp.jsonl")).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    let (a, b) = lines.split_at(lines.len() / 2);
    for (name, part) in [("a.jsonl", a), ("b.jsonl", b)] {
        let mut f = std::fs::File::create(dir.path().join(name)).unwrap();
        for l in part {
            writeln!(f, "{l}").unwrap();
        }
    }
    let f = analyze_with(&[dir.path().to_path_buf()], ReadOptions::default()).unwrap();
    assert_eq!(f.summary.traces, 2);
    assert_eq!(f.summary.spans, 14);
    assert_eq!(f.warnings.total(), 0);
}

/// Found by the `parquet` fuzz target: a file with damaged pages that made
/// polars panic on one of its worker threads. The page check names the
/// first damaged page before polars decodes any; the read fails with a
/// clear error and nothing panics where the user sees it.
#[test]
fn a_parquet_file_polars_panics_on_is_an_invalid_file() {
    let path = fixture("damaged-page.parquet");
    let out = common::tracelens(&["analyze", path.to_str().unwrap()], None);
    let stderr = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "damaged-page.parquet: invalid Parquet file: row group 0, column opeyation, page 0: unreadable page header"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The `parquet` fuzz target's second finding, kept as it was: a data page
/// whose header claims -11 values. polars takes that count as about 2^64
/// and its allocation for the page's validity bitmap aborted the process;
/// the page headers are checked before polars decodes anything.
#[test]
fn a_parquet_page_claiming_negative_values_is_named_not_an_abort() {
    let path = fixture("negative-page-values.parquet");
    let out = common::tracelens(&["analyze", path.to_str().unwrap()], None);
    let stderr = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "negative-page-values.parquet: invalid Parquet file: row group 0, column scope_name, page 1: the header gives -11 values"
        ),
        "{stderr}"
    );
}
