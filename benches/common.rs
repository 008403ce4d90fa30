//! Shared by the benches: seeded datasets generated in memory, and the
//! binary's allocator so figures match what users run.

#![allow(dead_code)]

use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};

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
