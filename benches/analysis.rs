//! Groups:
//! - `graph_metrics` — the service graph and span metrics (every edge and
//!   operation histogram) built over 1 million assembled spans (spans/s);
//! - `histogram` — recording one latency into an HDR histogram (values/s);
//! - `critical_path` — the critical path of every trace of 1 million spans,
//!   and `bottlenecks` — the path plus CRISP-style aggregation and patterns
//!   over the same traces (spans/s).
//!
//! Run: `cargo bench --bench analysis`

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tracelens::analysis::critical_path::{CriticalPathConfig, critical_path};
use tracelens::analysis::{Bottlenecks, LatencyHistogram, ServiceGraph, SpanMetrics};
use tracelens::generate::write::OutputFormat;
use tracelens::model::{Dictionary, Trace};
use tracelens::pipeline::{self, PipelineConfig};
use tracelens::read::Input;

fn assembled(spans: u64) -> (Vec<Trace>, Dictionary, u64) {
    let (bytes, n) = common::dataset(OutputFormat::OtlpProtobufStream, spans);
    let dir = std::env::temp_dir().join(format!("tracelens-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dataset.pb");
    std::fs::write(&path, bytes).unwrap();
    let mut traces = Vec::new();
    let report =
        pipeline::run(&[Input::Path(path)], &PipelineConfig::default(), &mut |_, s| s, &mut |_, t| traces.push(t))
            .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (traces, report.dict, n)
}

fn graph_metrics(c: &mut Criterion) {
    let (traces, dict, spans) = assembled(1_000_000);
    let mut group = c.benchmark_group("graph_metrics");
    group.sample_size(10);
    group.throughput(Throughput::Elements(spans));
    group.bench_function("graph/1M", |b| {
        b.iter(|| {
            let mut g = ServiceGraph::new(&dict);
            for t in &traces {
                g.add_trace(t);
            }
            g.finish();
            g
        })
    });
    group.bench_function("span_metrics/1M", |b| {
        b.iter(|| {
            let mut m = SpanMetrics::default();
            for t in &traces {
                m.add_trace(t);
            }
            m
        })
    });
    group.bench_function("both/1M", |b| {
        b.iter(|| {
            let (mut g, mut m) = (ServiceGraph::new(&dict), SpanMetrics::default());
            for t in &traces {
                g.add_trace(t);
                m.add_trace(t);
            }
            g.finish();
            (g, m)
        })
    });
    group.finish();
}

fn histogram(c: &mut Criterion) {
    let values: Vec<u64> = (0..100_000u64).map(|i| (i * 7_919 % 100_000 + 1) * 1_000).collect();
    let mut group = c.benchmark_group("histogram");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("record", |b| {
        b.iter(|| {
            let mut h = LatencyHistogram::default();
            for &v in &values {
                h.record(v);
            }
            h
        })
    });
    group.finish();
}

fn paths(c: &mut Criterion) {
    let (traces, _dict, spans) = assembled(1_000_000);
    let config = CriticalPathConfig::default();
    let mut group = c.benchmark_group("critical_path");
    group.sample_size(10);
    group.throughput(Throughput::Elements(spans));
    group.bench_function("1M", |b| {
        b.iter(|| traces.iter().map(|t| critical_path(t, &config).sections.len()).sum::<usize>())
    });
    group.finish();
    let mut group = c.benchmark_group("bottlenecks");
    group.sample_size(10);
    group.throughput(Throughput::Elements(spans));
    group.bench_function("1M", |b| {
        b.iter(|| {
            let mut agg = Bottlenecks::default();
            for t in &traces {
                agg.add_trace(t, &critical_path(t, &config));
            }
            agg
        })
    });
    group.finish();
}

criterion_group!(benches, graph_metrics, histogram, paths);
criterion_main!(benches);
