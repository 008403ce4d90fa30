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
