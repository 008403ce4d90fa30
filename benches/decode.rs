//! Groups: `decode` — each input format read into spans (no assembly), as
//! bytes/s; spans/s = bytes/s ÷ the bytes per span printed at start.
//!
//! Run: `cargo bench --bench decode`

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SPANS: u64 = 100_000;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.sample_size(20);
    for (name, format) in common::FORMATS {
        let (bytes, spans) = common::dataset(format, SPANS);
        eprintln!(
            "decode/{name}: {spans} spans, {} bytes, {:.1} bytes/span",
            bytes.len(),
            bytes.len() as f64 / spans as f64
        );
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| assert_eq!(common::decode_count(bytes), spans))
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
