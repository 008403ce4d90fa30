//! Compaction of the write-ahead log into Parquet: each closed log segment
//! becomes one file of the spans table (every attribute kept) under
//! `<data-dir>/parquet/date=YYYY-MM-DD/hour=HH/` (the hour the segment was
//! closed; Hive-style, so polars, DuckDB or Spark read the directory as a
//! dataset), written to a temporary name, synced and renamed before the
//! segment is deleted. A crash in between leaves both, and replaying both
//! only repeats spans the assembler drops as exact duplicates. Retention
//! deletes whole hour partitions. On start the receiver reads the Parquet
//! files back before the log; trace look-ups fall back to them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polars::prelude::*;

use super::ingest::BodyEncoding;
use super::wal::{WalError, closed_segments, read_closed_segment};
use crate::model::{Dictionary, Span, TraceId, Warnings};
use crate::read::{Emitter, ReadOptions, read_spans};
use crate::table::SpanRows;

/// Directory of the Parquet partitions under the data directory.
pub const PARQUET_DIR: &str = "parquet";

/// Why compaction failed.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The log could not be read.
    #[error("{0}")]
    Wal(#[from] WalError),
    /// A Parquet file could not be written or read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> CompactError {
    CompactError::File { path: path.to_path_buf(), message: e.to_string() }
}

/// The partition directory for a time.
fn partition(data_dir: &Path, time: SystemTime) -> PathBuf {
    let ns = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let stamp = crate::render::rfc3339(ns);
    data_dir.join(PARQUET_DIR).join(format!("date={}", &stamp[..10])).join(format!("hour={}", &stamp[11..13]))
}

/// Spans of one log segment, decoded with every attribute.
fn segment_spans(path: &Path) -> Result<(Dictionary, Vec<Span>), CompactError> {
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut spans = Vec::new();
    let mut bad = None;
    read_closed_segment(path, &mut |record| {
        let Some((&tag, body)) = record.split_first() else { return };
        let mut sink = |_: &Dictionary, s: Span| spans.push(s);
        let mut e = Emitter::new("segment", &mut dict, &mut warnings, &mut sink);
        let result = match BodyEncoding::from_wal_tag(tag) {
            Some(BodyEncoding::Protobuf) => crate::read::read_otlp_protobuf(body, &mut e).map_err(|e| e.to_string()),
            Some(BodyEncoding::Json) => crate::read::read_otlp_json_record(body, &mut e),
            None => Err(format!("record with unknown tag {tag}")),
        };
        if let Err(err) = result {
            bad.get_or_insert(err);
        }
    })?;
    if let Some(err) = bad {
        return Err(file_error(path, err));
    }
    Ok((dict, spans))
}

/// Compacts every closed segment of the log in `data_dir`; returns the
/// Parquet files written.
pub fn compact(data_dir: &Path) -> Result<Vec<PathBuf>, CompactError> {
    let mut written = Vec::new();
    for (sequence, segment) in closed_segments(data_dir)? {
        let closed_at = fs::metadata(&segment).and_then(|m| m.modified()).map_err(|e| file_error(&segment, e))?;
        let (dict, spans) = segment_spans(&segment)?;
        let dir = partition(data_dir, closed_at);
        fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
        let target = dir.join(format!("wal-{sequence:020}.parquet"));
        let temp = dir.join(format!(".wal-{sequence:020}.parquet.tmp"));
        let mut rows = SpanRows::default();
        rows.add_spans(&dict, &spans);
        let mut df = rows.finish().map_err(|e| file_error(&target, e))?;
        {
            let file = fs::File::create(&temp).map_err(|e| file_error(&temp, e))?;
            ParquetWriter::new(&file)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut df)
                .map_err(|e| file_error(&temp, e))?;
            file.sync_all().map_err(|e| file_error(&temp, e))?;
        }
        fs::rename(&temp, &target).map_err(|e| file_error(&target, e))?;
        fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| file_error(&dir, e))?;
        fs::remove_file(&segment).map_err(|e| file_error(&segment, e))?;
        written.push(target);
    }
    Ok(written)
}

/// Every compacted file, oldest partition first.
pub fn parquet_files(data_dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data_dir.join(PARQUET_DIR), &mut out);
    out.sort();
    out
}

/// Deletes hour partitions that ended longer than `retention` ago.
pub fn expire(data_dir: &Path, retention: Duration) -> Result<usize, CompactError> {
    let horizon = SystemTime::now().checked_sub(retention).unwrap_or(UNIX_EPOCH);
    let oldest_kept = partition(data_dir, horizon);
    let mut removed = 0;
    let root = data_dir.join(PARQUET_DIR);
    let Ok(days) = fs::read_dir(&root) else { return Ok(0) };
    for day in days.flatten() {
        let Ok(hours) = fs::read_dir(day.path()) else { continue };
        for hour in hours.flatten() {
            // Partition paths sort by time; an hour before the horizon's is over.
            if hour.path() < oldest_kept {
                fs::remove_dir_all(hour.path()).map_err(|e| file_error(&hour.path(), e))?;
                removed += 1;
            }
        }
        let _ = fs::remove_dir(day.path()); // only if now empty
    }
    Ok(removed)
}

/// Reads the spans of every compacted file into `dict`, passing them to
/// `sink` file by file.
pub fn read_all(
    data_dir: &Path,
    dict: &mut Dictionary,
    warnings: &mut Warnings,
    sink: &mut dyn FnMut(&Dictionary, Span),
) -> Result<u64, CompactError> {
    let mut files = 0;
    for path in parquet_files(data_dir) {
        let file = fs::File::open(&path).map_err(|e| file_error(&path, e))?;
        read_spans(&path.display().to_string(), file, &ReadOptions::default(), dict, warnings, sink)
            .map_err(|e| file_error(&path, e))?;
        files += 1;
    }
    Ok(files)
}

/// The spans of one trace in the compacted files (empty if none).
pub fn find_trace(data_dir: &Path, id: &TraceId, dict: &mut Dictionary) -> Result<Vec<Span>, CompactError> {
    let hex = id.to_hex();
    let mut found = Vec::new();
    let mut warnings = Warnings::default();
    for path in parquet_files(data_dir) {
        let file = fs::File::open(&path).map_err(|e| file_error(&path, e))?;
        let df = ParquetReader::new(file).finish().map_err(|e| file_error(&path, e))?;
        let mask =
            df.column("trace_id").and_then(|c| c.str().cloned()).map_err(|e| file_error(&path, e))?.equal(hex.as_str());
        let mut rows = df.filter(&mask).map_err(|e| file_error(&path, e))?;
        if rows.height() == 0 {
            continue;
        }
        let mut buffer = Vec::new();
        ParquetWriter::new(&mut buffer).finish(&mut rows).map_err(|e| file_error(&path, e))?;
        read_spans(&hex, &buffer[..], &ReadOptions::default(), dict, &mut warnings, &mut |_: &Dictionary, s| {
            found.push(s)
        })
        .map_err(|e| file_error(&path, e))?;
    }
    Ok(found)
}
