//! Parquet input: any bytes as a Parquet file of spans (tracelens's own
//! `spans` table or the ClickHouse exporter's layout), and ClickHouse-layout
//! files written by polars from arbitrary column values, so the fuzzer gets
//! past the file format into the columns. Nothing may panic; errors are fine.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use polars::prelude::*;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::Emitter;
use tracelens_table::parquet::read_parquet;

#[derive(Arbitrary, Debug)]
struct Row {
    timestamp: i64,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: String,
    service: String,
    duration: u64,
    status: String,
    resource: Vec<(String, String)>,
    attributes: Vec<(String, String)>,
}

fn read(bytes: Vec<u8>) -> usize {
    let (mut dict, mut warnings) = (Dictionary::default(), Warnings::default());
    let mut spans = 0;
    let mut sink = |_: &Dictionary, _| spans += 1;
    let mut e = Emitter::new("fuzz", &mut dict, &mut warnings, &mut sink);
    let _ = read_parquet(bytes, &mut e);
    drop(e);
    spans
}

/// A `Map(String, String)` column as the ClickHouse exporter writes it: a
/// list of `{key, value}` structs per row.
fn map_column(name: &str, rows: &[Vec<(String, String)>]) -> PolarsResult<Column> {
    let mut lists = Vec::with_capacity(rows.len());
    for kvs in rows {
        let keys = Series::new("key".into(), kvs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
        let values = Series::new("value".into(), kvs.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>());
        let s = StructChunked::from_series("kv".into(), keys.len(), [keys, values].iter())?.into_series();
        lists.push(s);
    }
    Ok(Series::new(name.into(), lists).into_column())
}

fn clickhouse(rows: Vec<Row>) -> PolarsResult<Vec<u8>> {
    let rows: Vec<Row> = rows.into_iter().take(32).collect();
    let col = |f: &dyn Fn(&Row) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let mut df = df!(
        "Timestamp" => rows.iter().map(|r| r.timestamp).collect::<Vec<i64>>(),
        "TraceId" => col(&|r| r.trace_id.clone()),
        "SpanId" => col(&|r| r.span_id.clone()),
        "ParentSpanId" => col(&|r| r.parent_span_id.clone()),
        "SpanName" => col(&|r| r.name.clone()),
        "SpanKind" => col(&|r| r.kind.clone()),
        "ServiceName" => col(&|r| r.service.clone()),
        "Duration" => rows.iter().map(|r| r.duration).collect::<Vec<u64>>(),
        "StatusCode" => col(&|r| r.status.clone()),
        "StatusMessage" => col(&|r| r.status.clone()),
    )?;
    df.with_column(df.column("Timestamp")?.cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))?)?;
    let resource: Vec<Vec<(String, String)>> = rows.iter().map(|r| r.resource.clone()).collect();
    let attributes: Vec<Vec<(String, String)>> = rows.iter().map(|r| r.attributes.clone()).collect();
    df.with_column(map_column("ResourceAttributes", &resource)?)?;
    df.with_column(map_column("SpanAttributes", &attributes)?)?;
    let mut out = Vec::new();
    ParquetWriter::new(&mut out).finish(&mut df)?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    // A leading 0xff byte asks for a ClickHouse-layout file from the rest;
    // anything else (a Parquet file starts with "PAR1") is read as it is.
    let Some(rest) = data.strip_prefix(&[0xff]) else {
        read(data.to_vec());
        return;
    };
    let Ok(rows) = Vec::<Row>::arbitrary_take_rest(Unstructured::new(rest)) else { return };
    let n = rows.len().min(32);
    if let Ok(bytes) = clickhouse(rows) {
        // Every row is a span (repaired if need be) or counted as a warning.
        assert!(read(bytes) <= n);
    }
});
