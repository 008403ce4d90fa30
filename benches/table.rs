//! Group: `table` — the columnar tables on 1,000,000 spans of the shop
//! workload: building the spans table and writing it as Parquet (export
//! throughput), a SQL aggregation over it, reading the Parquet back, and the
//! Parquet size per span next to the length-prefixed OTLP protobuf's.
//!
//! Run: `cargo bench --bench table` (not a criterion bench: one timed run
//! of each step after generating the data).

mod common;

use std::time::Instant;

use polars::prelude::*;
use polars::sql::SQLContext;
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};
use tracelens::model::{Dictionary, Warnings};
use tracelens::read::{ReadOptions, read_spans};
use tracelens::table::{Table, Tables};

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let (bytes, produced) = generate::to_vec(
        &TopologyFile::shop(),
        &GeneratorConfig::default(),
        Amount::Spans(1_000_000),
        OutputFormat::OtlpProtobufStream,
    )
    .unwrap();
    let (dict, traces) = common::traces(&bytes);
    let n = produced.spans as f64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.parquet");

    let t0 = Instant::now();
    let mut tables = Tables::new(&[Table::Spans]);
    for t in &traces {
        tables.add_trace(&dict, t);
    }
    let mut df = tables.finish().unwrap().remove(0).1;
    let built = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .unwrap();
    let written = t1.elapsed().as_secs_f64();
    let parquet_bytes = std::fs::metadata(&path).unwrap().len() as f64;
    println!(
        "table/export: {} spans: spans table built in {:.2} s ({:.2} M spans/s), Parquet (zstd) written in {:.2} s; together {:.2} M spans/s",
        produced.spans,
        built,
        n / built / 1e6,
        written,
        n / (built + written) / 1e6
    );
    println!(
        "table/size: Parquet {:.1} bytes/span, OTLP protobuf stream {:.1} bytes/span ({:.1}x smaller)",
        parquet_bytes / n,
        bytes.len() as f64 / n,
        bytes.len() as f64 / parquet_bytes
    );

    // The codec trade-off for compaction and export: zstd levels.
    for level in [1, 3, 6] {
        let other = dir.path().join(format!("spans-{level}.parquet"));
        let t = Instant::now();
        ParquetWriter::new(std::fs::File::create(&other).unwrap())
            .with_compression(ParquetCompression::Zstd(Some(
                polars::polars_utils::compression::ZstdLevel::try_new(level).unwrap(),
            )))
            .finish(&mut df)
            .unwrap();
        let seconds = t.elapsed().as_secs_f64();
        println!(
            "table/zstd-level-{level}: written in {seconds:.2} s, {:.1} bytes/span",
            std::fs::metadata(&other).unwrap().len() as f64 / n
        );
    }

    let t2 = Instant::now();
    let mut ctx = SQLContext::new();
    ctx.register("spans", df.clone().lazy());
    let result = ctx
        .execute(
            "SELECT service, operation, count(*) AS calls, avg(duration_ns) AS mean_ns, \
             sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS errors \
             FROM spans GROUP BY service, operation ORDER BY calls DESC",
        )
        .unwrap()
        .collect()
        .unwrap();
    let queried = t2.elapsed().as_secs_f64();
    println!(
        "table/sql: group by service, operation over {} spans ({} groups) in {:.3} s ({:.1} M spans/s)",
        produced.spans,
        result.height(),
        queried,
        n / queried / 1e6
    );

    let t3 = Instant::now();
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut count = 0u64;
    let file = std::fs::File::open(&path).unwrap();
    read_spans("spans.parquet", file, &ReadOptions::default(), &mut dict, &mut warnings, &mut |_: &Dictionary, _| {
        count += 1
    })
    .unwrap();
    let read = t3.elapsed().as_secs_f64();
    println!("table/read: {count} spans read back from Parquet in {:.2} s ({:.2} M spans/s)", read, n / read / 1e6);
}
