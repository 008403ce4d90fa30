//! `offline` — `tracelens analyze` (the release binary, on a file) against
//! bare decoders reading the same file in the same run, on the rich preset
//! (about 30 spans per trace, 8 or more attributes per span with SQL
//! statements and URLs, traces interleaved across 100-span requests):
//!
//! - OTLP protobuf stream: against a bare prost decode of every record into
//!   owned `ExportTraceServiceRequest` messages;
//! - OTLP JSON lines: against a bare serde_json decode of every line into
//!   typed OTLP structs (owned strings);
//! - a Jaeger JSON document of the same spans: against the JSON lines.
//!
//! The baselines run in this process with the binary's allocator
//! (mimalloc) and include reading the file (from the page cache, as the
//! binary does). Each figure is the best of `OFFLINE_RUNS` (3) runs;
//! `analyze` runs with `--threads 1` and with every core. Peak RSS comes
//! from `/usr/bin/time`.
//!
//! Run: `cargo bench --bench offline` (`OFFLINE_SPANS`, default 1000000;
//! needs about 2.5 GB of disk in the temp dir for the files).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::Deserialize;
use tracelens::generate::write::{self, Output, OutputCompression, OutputFormat};
use tracelens::generate::{self, Amount, Generator, GeneratorConfig, TopologyFile};

/// OTLP/JSON as typed structs: what a program decoding the JSON with
/// serde would declare (every field is decoded; the bench reads few).
#[allow(dead_code)]
mod otlp {
    use super::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TracesData {
        #[serde(default)]
        pub resource_spans: Vec<ResourceSpans>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceSpans {
        pub resource: Option<Resource>,
        #[serde(default)]
        pub scope_spans: Vec<ScopeSpans>,
        #[serde(default)]
        pub schema_url: String,
    }

    #[derive(Deserialize)]
    pub struct Resource {
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ScopeSpans {
        pub scope: Option<Scope>,
        #[serde(default)]
        pub spans: Vec<Span>,
    }

    #[derive(Deserialize)]
    pub struct Scope {
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub version: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Span {
        pub trace_id: String,
        pub span_id: String,
        #[serde(default)]
        pub parent_span_id: String,
        pub name: String,
        #[serde(default)]
        pub kind: i32,
        pub start_time_unix_nano: String,
        pub end_time_unix_nano: String,
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
        pub status: Option<Status>,
    }

    #[derive(Deserialize)]
    pub struct Status {
        #[serde(default)]
        pub code: i32,
        #[serde(default)]
        pub message: String,
    }

    #[derive(Deserialize)]
    pub struct KeyValue {
        pub key: String,
        pub value: AnyValue,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AnyValue {
        pub string_value: Option<String>,
        pub int_value: Option<String>,
        pub bool_value: Option<bool>,
        pub double_value: Option<f64>,
    }
}

/// Writes `spans` rich spans in `format` to `path`; returns the spans.
fn write_rich(path: &Path, spans: u64, format: OutputFormat) -> u64 {
    let config = GeneratorConfig { rich_attributes: true, ..GeneratorConfig::default() };
    let mut generator = Generator::new(&TopologyFile::rich(), &config).expect("the rich preset is valid");
    let file = std::fs::File::create(path).expect("create the bench file");
    let output = Output::new(Box::new(file), OutputCompression::None).expect("no compression");
    let mut writer = write::writer_interleaved(format, output, 100, generate::RICH_INTERLEAVE_WINDOW);
    generate::run(&mut generator, Amount::Spans(spans), writer.as_mut()).expect("write the bench file").spans
}

/// Bare prost: every record into an owned request; returns the spans.
fn prost_decode(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut spans = 0u64;
    for record in common::length_prefixed(&bytes) {
        let request = ExportTraceServiceRequest::decode(record).expect("valid protobuf");
        spans +=
            request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len() as u64).sum::<u64>();
    }
    spans
}

/// Bare serde_json: every line into typed structs; returns the spans.
fn serde_decode(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut spans = 0u64;
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let data: otlp::TracesData = serde_json::from_slice(line).expect("valid OTLP JSON");
        spans += data.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len() as u64).sum::<u64>();
    }
    spans
}

/// Best wall time of `runs` runs of `f`, which returns the spans it saw.
fn best(runs: usize, expected: u64, mut f: impl FnMut() -> u64) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(std::hint::black_box(f()), expected);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Best wall time and the peak RSS (MiB) of that run of
/// `tracelens analyze --format json --threads N FILE`.
fn analyze(runs: usize, path: &Path, threads: usize) -> (f64, f64) {
    let timing = path.with_extension("time");
    let mut best = (f64::INFINITY, 0.0);
    for _ in 0..runs {
        let status = Command::new("/usr/bin/time")
            .args(["-f", "%e %M", "-o"])
            .arg(&timing)
            .arg(env!("CARGO_BIN_EXE_tracelens"))
            .args(["analyze", "--format", "json", "--threads", &threads.to_string()])
            .arg(path)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run /usr/bin/time (Debian package time) and tracelens");
        assert!(status.success(), "tracelens analyze {} failed", path.display());
        let text = std::fs::read_to_string(&timing).unwrap();
        let mut fields = text.split_whitespace();
        let secs: f64 = fields.next().and_then(|f| f.parse().ok()).expect("elapsed seconds");
        let kb: f64 = fields.next().and_then(|f| f.parse().ok()).expect("peak RSS");
        if secs < best.0 {
            best = (secs, kb / 1024.0);
        }
    }
    best
}

fn main() {
    // `cargo bench` passes --bench (and filters); this suite has no filter.
    let spans: u64 = std::env::var("OFFLINE_SPANS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = std::env::var("OFFLINE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().expect("temp dir");
    println!("offline: the rich preset, {spans} spans, best of {runs} runs, {cores} cores");
    println!("{:<52} {:>8} {:>12} {:>10} {:>9}", "run", "seconds", "spans/s", "RSS MiB", "ratio");
    let line = |label: &str, secs: f64, n: u64, rss: Option<f64>, ratio: Option<f64>| {
        let rss = rss.map_or("-".to_string(), |r| format!("{r:.0}"));
        let ratio = ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
        println!("{label:<52} {secs:>8.2} {:>12.0} {rss:>10} {ratio:>9}", n as f64 / secs);
    };

    let pb = dir.path().join("rich.pb");
    let n = write_rich(&pb, spans, OutputFormat::OtlpProtobufStream);
    let base = best(runs, n, || prost_decode(&pb));
    line("protobuf: bare prost decode into owned messages", base, n, None, None);
    for threads in [1, cores] {
        let (secs, rss) = analyze(runs, &pb, threads);
        line(&format!("protobuf: tracelens analyze --threads {threads}"), secs, n, Some(rss), Some(base / secs));
    }
    std::fs::remove_file(&pb).ok();

    let jsonl = dir.path().join("rich.jsonl");
    let n = write_rich(&jsonl, spans, OutputFormat::OtlpJsonLines);
    let base = best(runs, n, || serde_decode(&jsonl));
    line("JSON lines: bare serde_json typed decode", base, n, None, None);
    let mut lines_secs = f64::INFINITY;
    for threads in [1, cores] {
        let (secs, rss) = analyze(runs, &jsonl, threads);
        lines_secs = lines_secs.min(secs);
        line(&format!("JSON lines: tracelens analyze --threads {threads}"), secs, n, Some(rss), Some(base / secs));
    }
    std::fs::remove_file(&jsonl).ok();

    let jaeger = dir.path().join("rich.jaeger.json");
    let n = write_rich(&jaeger, spans, OutputFormat::JaegerJson);
    let (secs, rss) = analyze(runs, &jaeger, cores);
    // The ratio here is time over the JSON lines' time (target: at most 1.25).
    line(
        &format!("Jaeger JSON document: analyze --threads {cores} (vs JSON lines)"),
        secs,
        n,
        Some(rss),
        Some(secs / lines_secs),
    );
}
