//! Groups: `decode` — each input format read into spans (no assembly), as
//! bytes/s; spans/s = bytes/s ÷ the bytes per span printed at start; and
//! `decode/receiver-request`: the same protobuf stream taken request by
//! request as `serve` decodes a 100-span export (only the attributes live
//! analysis reads, partial-success filtering).
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
    let (bytes, spans) = common::dataset(tracelens::generate::write::OutputFormat::OtlpProtobufStream, SPANS);
    let requests = common::length_prefixed(&bytes);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("receiver-request", |b| {
        b.iter(|| {
            use tracelens::serve::ingest::{BodyEncoding, IdRule, accept_bytes};
            let mut dict = tracelens::model::Dictionary::default();
            let mut warnings = tracelens::model::Warnings::default();
            let mut n = 0;
            for r in &requests {
                n += accept_bytes(r, BodyEncoding::Protobuf, IdRule::Exact, &mut dict, &mut warnings)
                    .unwrap()
                    .spans
                    .len() as u64;
            }
            assert_eq!(n, spans)
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
