//! Groups: `generate` — the shop workload written in each format to memory
//! (spans/s).
//!
//! Run: `cargo bench --bench generate`

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};

const SPANS: u64 = 200_000;

fn generate_formats(c: &mut Criterion) {
    let topology = TopologyFile::shop();
    let config = GeneratorConfig::default();
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    for (name, format) in common::FORMATS {
        let (_, produced) = generate::to_vec(&topology, &config, Amount::Spans(SPANS), format).unwrap();
        group.throughput(Throughput::Elements(produced.spans));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| generate::to_vec(&topology, &config, Amount::Spans(SPANS), format).unwrap().1)
        });
    }
    group.finish();
}

criterion_group!(benches, generate_formats);
criterion_main!(benches);
