//! Groups:
//! - `assemble` — grouping decoded spans into repaired traces (spans/s);
//! - `analyze_e2e` — on the same 1 million generated spans per input
//!   format: `decode` (read only) and `analyze` (what `tracelens analyze`
//!   computes: read, assemble, summary, service graph, span metrics, critical
//!   paths and bottlenecks), so the
//!   cost of the analysis itself shows (spans/s).
//!
//! Run: `cargo bench --bench pipeline`

mod common;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tracelens::analysis::critical_path::{CriticalPathConfig, critical_path};
use tracelens::analysis::{Bottlenecks, ServiceGraph, SpanMetrics, Summary};
use tracelens::assemble::{Assembler, AssemblerConfig};
use tracelens::generate::write::OutputFormat;
use tracelens::model::{Dictionary, Span, Warnings};
use tracelens::read::{ReadOptions, read_spans};

fn decoded(spans: u64) -> Vec<Span> {
    let (bytes, _) = common::dataset(OutputFormat::OtlpProtobufStream, spans);
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut out = Vec::new();
    let mut sink = |_: &Dictionary, s| out.push(s);
    read_spans("bench", &bytes[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut sink).unwrap();
    out
}

fn assemble(c: &mut Criterion) {
    let spans = decoded(100_000);
    let mut group = c.benchmark_group("assemble");
    group.sample_size(20);
    group.throughput(Throughput::Elements(spans.len() as u64));
    group.bench_function("shop-100k", |b| {
        b.iter_batched(
            || spans.clone(),
            |spans| {
                let mut assembler = Assembler::new(AssemblerConfig::default());
                let mut traces = 0u64;
                for span in spans {
                    assembler.push(span, &mut |_| traces += 1);
                }
                assembler.finish(&mut |_| traces += 1);
                traces
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Mirrors `tracelens analyze` minus printing: one input from memory.
fn analyze(bytes: &[u8]) -> Summary {
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut summary = Summary::default();
    let mut graph = ServiceGraph::new(&dict);
    let mut metrics = SpanMetrics::default();
    let mut bottlenecks = Bottlenecks::default();
    let config = CriticalPathConfig::default();
    let mut assembler = Assembler::new(AssemblerConfig::default());
    let mut on_trace = |t: tracelens::model::Trace| {
        summary.add_trace(&t);
        graph.add_trace(&t);
        metrics.add_trace(&t);
        bottlenecks.add_trace(&t, &critical_path(&t, &config));
    };
    {
        let mut sink = |_: &Dictionary, span| assembler.push(span, &mut on_trace);
        read_spans("bench", bytes, &ReadOptions::default(), &mut dict, &mut warnings, &mut sink).unwrap();
    }
    assembler.finish(&mut on_trace);
    graph.finish();
    std::hint::black_box((&graph, &metrics, &bottlenecks));
    summary
}

fn analyze_e2e(c: &mut Criterion) {
    let mut group = c.benchmark_group("analyze_e2e");
    group.sample_size(10);
    for (name, format) in
        [("otlp-protobuf-stream", OutputFormat::OtlpProtobufStream), ("otlp-json-lines", OutputFormat::OtlpJsonLines)]
    {
        let (bytes, spans) = common::dataset(format, 1_000_000);
        group.throughput(Throughput::Elements(spans));
        group.bench_with_input(BenchmarkId::new("decode", name), &bytes, |b, bytes| {
            b.iter(|| assert_eq!(common::decode_count(bytes), spans))
        });
        group.bench_with_input(BenchmarkId::new("analyze", name), &bytes, |b, bytes| {
            b.iter(|| assert_eq!(analyze(bytes).spans, spans))
        });
    }
    group.finish();
}

criterion_group!(benches, assemble, analyze_e2e);
criterion_main!(benches);
