//! Shared by the benches: seeded datasets generated in memory, and the
//! binary's allocator so figures match what users run.

#![allow(dead_code)]

use tracelens::assemble::assemble_all;
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};
use tracelens::model::{Dictionary, Trace, Warnings};
use tracelens::read::{ReadOptions, read_spans};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A shop workload of about `spans` spans in `format`: (bytes, spans).
pub fn dataset(format: OutputFormat, spans: u64) -> (Vec<u8>, u64) {
    let (bytes, produced) =
        generate::to_vec(&TopologyFile::shop(), &GeneratorConfig::default(), Amount::Spans(spans), format)
            .expect("the shop preset is valid");
    (bytes, produced.spans)
}

pub const FORMATS: [(&str, OutputFormat); 4] = [
    ("otlp-protobuf-stream", OutputFormat::OtlpProtobufStream),
    ("otlp-json-lines", OutputFormat::OtlpJsonLines),
    ("jaeger-json", OutputFormat::JaegerJson),
    ("zipkin-json", OutputFormat::ZipkinJson),
];

/// The records of the generator's length-prefixed protobuf stream (each a
/// 100-span export request), borrowed.
pub fn length_prefixed(stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    out
}

/// Decodes `bytes` into spans that are only counted: the bare decode cost.
pub fn decode_count(bytes: &[u8]) -> u64 {
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut n = 0u64;
    let mut sink = |_: &Dictionary, _| n += 1;
    read_spans("bench", bytes, &ReadOptions::default(), &mut dict, &mut warnings, &mut sink).unwrap();
    n
}

/// Reads `bytes` (any format) and assembles the traces.
pub fn traces(bytes: &[u8]) -> (Dictionary, Vec<Trace>) {
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut spans = Vec::new();
    read_spans("bench", bytes, &ReadOptions::default(), &mut dict, &mut warnings, &mut |_: &Dictionary, s| {
        spans.push(s)
    })
    .unwrap();
    (dict, assemble_all(spans).0)
}

/// utime + stime of a process, seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(&format!("/proc/{pid}/stat")).1
}

/// (thread or process name, utime + stime seconds) from a `stat` file.
pub fn stat_seconds(path: &str) -> (String, f64) {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let name = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).map_or("", |(n, _)| n).to_string();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (name, (ticks(11) + ticks(12)) as f64 / 100.0)
}
