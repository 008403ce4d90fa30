//! Group: `table` — the columnar tables on 1,000,000 spans of the shop
//! workload: writing the spans table as Parquet (export throughput, zstd
//! levels), building it as a DataFrame and a SQL aggregation over it,
//! reading the Parquet back, and the
//! Parquet size per span next to the length-prefixed OTLP protobuf's; and
//! the receiver's compaction of a write-ahead-log segment of 100-span OTLP
//! requests into Parquet (`table/compact`, CPU per span).
//!
//! Run: `cargo bench --bench table` (not a criterion bench: one timed run
//! of each step after generating the data; `TABLE_COMPACT_ONLY=1` stops
//! after compaction, for profiling it).

mod common;

use std::time::Instant;

use polars::prelude::*;
use polars::sql::SQLContext;
use std::io::Write as _;
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};
use tracelens::model::{Dictionary, Warnings};
use tracelens::read::read_spans;

use tracelens::model::attr_json as json;
use tracelens::table::spans_parquet::SpansParquetWriter;
use tracelens::table::{Table, Tables};

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    // `tracelens serve`, whose compaction this measures, keeps freed pages
    // for 30 s (src/main.rs); with mimalloc's default 10 ms, compaction
    // here faulted ~250,000 freshly zeroed pages in per run.
    // SAFETY: sets a process-wide allocator option (`mi_option_purge_delay`
    // is 15), as the binary does.
    unsafe { libmimalloc_sys::mi_option_set(15, 30_000) };
    let (bytes, produced) = generate::to_vec(
        &TopologyFile::shop(),
        &GeneratorConfig::default(),
        Amount::Spans(1_000_000),
        OutputFormat::OtlpProtobufStream,
    )
    .unwrap();
    compact_segment(&bytes, produced.spans);
    if std::env::var_os("TABLE_COMPACT_ONLY").is_some() {
        return; // for profiling compaction alone
    }
    let (dict, traces) = common::traces(&bytes);
    let n = produced.spans as f64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.parquet");

    // `tracelens export` to Parquet: spans straight to pages, zstd level 3.
    let export = |path: &std::path::Path, level: i32| {
        let t = Instant::now();
        let mut writer =
            SpansParquetWriter::new(std::io::BufWriter::new(std::fs::File::create(path).unwrap()), level).unwrap();
        let mut attributes = String::new();
        for trace in &traces {
            for s in &trace.spans {
                json::write_attributes(&mut attributes, &dict, &s.attributes);
                writer.add(&dict, s, &attributes).unwrap();
            }
            if writer.pending_rows() >= 512 * 512 {
                writer.write_row_group().unwrap();
            }
        }
        writer.finish().unwrap().flush().unwrap();
        (t.elapsed().as_secs_f64(), std::fs::metadata(path).unwrap().len() as f64 / n)
    };
    let (written, bytes_per_span) = export(&path, 3);
    println!(
        "table/export: {} spans to Parquet (zstd 3) in {:.2} s ({:.2} M spans/s)",
        produced.spans,
        written,
        n / written / 1e6
    );
    println!(
        "table/size: Parquet {:.1} bytes/span, OTLP protobuf stream {:.1} bytes/span ({:.1}x smaller)",
        bytes_per_span,
        bytes.len() as f64 / n,
        bytes.len() as f64 / n / bytes_per_span
    );
    // The codec trade-off for compaction and export: zstd levels.
    for level in [1, 3, 6] {
        let (seconds, size) = export(&dir.path().join(format!("spans-{level}.parquet")), level);
        println!("table/zstd-level-{level}: written in {seconds:.2} s, {size:.1} bytes/span");
    }

    // `tracelens sql` builds a DataFrame of text columns.
    let t1 = Instant::now();
    let mut plain = Tables::new(&[Table::Spans]);
    for t in &traces {
        plain.add_trace(&dict, t);
    }
    let plain = plain.finish().unwrap().remove(0).1;
    let built = t1.elapsed().as_secs_f64();
    println!("table/build: the spans table of {} spans built in {built:.2} s (for SQL)", produced.spans);
    let t2 = Instant::now();
    let mut ctx = SQLContext::new();
    ctx.register("spans", plain.lazy());
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
    read_spans(
        "spans.parquet",
        file,
        &tracelens::table::read_options(false),
        &mut dict,
        &mut warnings,
        &mut |_: &Dictionary, _| count += 1,
    )
    .unwrap();
    let read = t3.elapsed().as_secs_f64();
    println!("table/read: {count} spans read back from Parquet in {:.2} s ({:.2} M spans/s)", read, n / read / 1e6);
}

/// The receiver's compaction: the 100-span requests of `stream` (4-byte
/// big-endian length-prefixed OTLP protobuf) appended to a log segment as
/// `tracelens serve` logs them, then the closed segment written as Parquet,
/// CPU-timed over three runs on copies of the same segment (median).
fn compact_segment(stream: &[u8], spans: u64) {
    use tracelens::serve::storage::{compact, wal};
    let dir = tempfile::tempdir().unwrap();
    let mut config = wal::WalConfig::new(dir.path());
    config.segment_bytes = u64::MAX;
    config.sync = wal::SyncPolicy::Never;
    let (mut log, _) = wal::Wal::open(config.clone()).unwrap();
    for record in common::length_prefixed(stream) {
        log.append_parts_unsynced(&[&[0u8], record]).unwrap();
    }
    let segment = log.current_segment().to_path_buf();
    drop(log);
    let mut runs = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let run = tempfile::tempdir().unwrap();
        std::fs::copy(&segment, run.path().join(segment.file_name().unwrap())).unwrap();
        // A newer segment closes the copied one, as rotation does.
        let (_log, _) = wal::Wal::open(wal::WalConfig { dir: run.path().to_path_buf(), ..config.clone() }).unwrap();
        let cpu = common::cpu_seconds(std::process::id());
        let written = compact::compact(run.path(), false, None).unwrap().files;
        runs.push(common::cpu_seconds(std::process::id()) - cpu);
        assert_eq!(written.len(), 1);
        bytes = std::fs::metadata(&written[0]).unwrap().len();
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "table/compact: a log segment of {spans} spans ({:.0} MiB) to Parquet in {:.2} CPU s (all threads, median of 3): {:.2} µs/span, {:.2} M spans/s, {:.1} bytes/span",
        std::fs::metadata(&segment).unwrap().len() as f64 / 1048576.0,
        runs[1],
        runs[1] * 1e6 / spans as f64,
        spans as f64 / runs[1] / 1e6,
        bytes as f64 / spans as f64
    );
}
