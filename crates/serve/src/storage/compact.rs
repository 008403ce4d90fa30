//! Compaction of the write-ahead log into Parquet: each closed log segment
//! becomes one file of the spans table (the spans partial success accepted,
//! every attribute kept) under
//! `<data-dir>/parquet/date=YYYY-MM-DD/hour=HH/` (the hour the segment was
//! closed; Hive-style, so polars, DuckDB or Spark read the directory as a
//! dataset), written to a temporary name, synced and renamed before the
//! segment is deleted (or kept for the log to reuse). A crash in between
//! leaves both, and replaying both only repeats spans the assembler drops
//! as exact duplicates. Retention deletes whole hour partitions. On start
//! the receiver restores the Parquet files, then the log, into live
//! analysis ([`super::restore`]); trace look-ups fall back to them (reading
//! a file whole only if it holds the trace).
//!
//! A segment with records that cannot be read (a checksum failure, or a
//! record that does not decode) does not stop compaction: its readable
//! records are compacted, the segment is moved whole to
//! `<data-dir>/damaged/` (kept for inspection until the retention period
//! ends, never replayed), reported, and the later segments go on.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polars::prelude::*;

use super::wal::{
    WalError, closed_segments, free_segments_to_keep, read_closed_segment, retire_segment, trim_free_segments,
};
use crate::ingest::{BodyEncoding, usable};
use tracelens_core::model::{Dictionary, Span, TraceId, Warnings};
use tracelens_core::read::{AttributesJson, Emitter, ReadErrorKind, read_spans};
use tracelens_table::TableError;
use tracelens_table::spans_parquet::SpansParquetWriter;

/// Directory of the Parquet partitions under the data directory.
pub const PARQUET_DIR: &str = "parquet";

/// Why compaction failed.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The log could not be read.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// A Parquet file could not be written or read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub(crate) fn file_error(path: &Path, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CompactError {
    CompactError::File { path: path.to_path_buf(), source: e.into() }
}

/// Why a log record could not be decoded for compaction.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    /// Its body does not decode.
    #[error(transparent)]
    Decode(#[from] ReadErrorKind),
    /// Attributes came out for another number of spans than decoded.
    #[error("attributes written for {json} of {spans} spans")]
    Attributes {
        /// Spans with attributes written.
        json: usize,
        /// Spans decoded.
        spans: usize,
    },
    /// A tag no encoding has.
    #[error("record with unknown tag {0}")]
    UnknownTag(u8),
}

/// The partition directory for a time.
pub(crate) fn partition(data_dir: &Path, time: SystemTime) -> PathBuf {
    let ns = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let stamp = tracelens_core::model::time::rfc3339(ns);
    data_dir.join(PARQUET_DIR).join(format!("date={}", &stamp[..10])).join(format!("hour={}", &stamp[11..13]))
}

/// Spans per row group: compaction holds one row group's columns in
/// memory, not the whole segment (a 64 MiB segment of the shop load is
/// ~460,000 spans).
const CHUNK_SPANS: usize = 65_536;

/// zstd level 1: faster to write than the default level 3 for a few percent
/// more bytes (BENCHMARKS.md, `cargo bench --bench table`), and compaction
/// runs for every span received.
const ZSTD_LEVEL: i32 = 1;

/// One log record on its way into the Parquet writer: its spans (attribute
/// lists left empty) and their attributes as JSON text. Reused from record
/// to record, so the spans decoded are still in cache when their columns
/// are filled.
#[derive(Default)]
struct Record {
    spans: Vec<Span>,
    json: AttributesJson,
}

impl Record {
    /// Decodes one log record's spans (replacing the last record's).
    fn decode(&mut self, tag: u8, body: &[u8], dict: &mut Dictionary) -> Result<(), RecordError> {
        self.spans.clear();
        self.json.clear();
        let mut warnings = Warnings::default();
        let e = Emitter::collecting("segment", dict, &mut warnings, &mut self.spans);
        match BodyEncoding::from_wal_tag(tag) {
            Some((BodyEncoding::Protobuf, _)) => {
                let mut e = e.attributes_as_json(&mut self.json);
                tracelens_core::read::read_otlp_protobuf(body, &mut e)?;
                if self.json.len() != self.spans.len() {
                    return Err(RecordError::Attributes { json: self.json.len(), spans: self.spans.len() });
                }
            }
            Some((BodyEncoding::Json, ids)) => {
                let mut e = ids.apply(e);
                tracelens_core::read::read_otlp_json_record(body, &mut e)?;
                for span in &self.spans {
                    self.json.push(dict, &span.attributes);
                }
            }
            None => return Err(RecordError::UnknownTag(tag)),
        }
        Ok(())
    }

    /// Adds the record's spans to the writer, but for those partial success
    /// rejected (the log holds requests as they came); returns how many.
    fn write<W: Write>(&self, dict: &Dictionary, out: &mut SpansParquetWriter<W>) -> Result<u64, TableError> {
        let mut added = 0;
        for (i, span) in self.spans.iter().enumerate() {
            if usable(span, dict).is_ok() {
                out.add(dict, span, self.json.get(i))?;
                added += 1;
            }
        }
        Ok(added)
    }
}

/// What [`write_segment`] wrote.
struct Written {
    /// Spans in the file.
    spans: u64,
    /// Their trace ids (a trace in more than one row group more than once).
    trace_ids: Vec<TraceId>,
    /// The first record that could not be read (the segment is damaged).
    damage: Option<String>,
}

/// Writes one log segment's spans, decoded with every attribute, as a
/// Parquet file of the spans table at `temp` (synced), `chunk` spans per
/// row group. Span attributes go from the wire to JSON text without being
/// decoded into values. Records that cannot be read are left out and
/// reported.
fn write_segment(sequence: u64, segment: &Path, temp: &Path, chunk: usize) -> Result<Written, CompactError> {
    let file = fs::File::create(temp).map_err(|e| file_error(temp, e))?;
    let sink = std::io::BufWriter::with_capacity(1 << 20, &file);
    let mut writer = SpansParquetWriter::new(sink, ZSTD_LEVEL).map_err(|e| file_error(temp, e))?.keeping_trace_ids();
    let mut dict = Dictionary::default();
    let mut record = Record::default();
    let (mut failed, mut damage, mut index, mut spans) = (None, None, 0u64, 0u64);
    let read = read_closed_segment(sequence, segment, &mut |bytes| {
        index += 1;
        if failed.is_some() {
            return;
        }
        let Some((&tag, body)) = bytes.split_first() else { return };
        if let Err(err) = record.decode(tag, body, &mut dict) {
            damage.get_or_insert_with(|| format!("{}: record {index} cannot be decoded: {err}", segment.display()));
            return;
        }
        let mut written = record.write(&dict, &mut writer).map(|added| spans += added);
        if written.is_ok() && writer.pending_rows() >= chunk {
            written = writer.write_row_group();
        }
        failed = written.map_err(|e| file_error(temp, e)).err();
    });
    match read {
        Ok(_) => {}
        // Every good record before the bad one was read.
        Err(WalError::Corrupt(reason)) => {
            damage.get_or_insert(reason);
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(err) = failed {
        return Err(err);
    }
    writer.write_row_group().map_err(|e| file_error(temp, e))?;
    let trace_ids = writer.trace_ids().to_vec();
    let mut sink = writer.finish().map_err(|e| file_error(temp, e))?;
    sink.flush().map_err(|e| file_error(temp, e))?;
    drop(sink);
    file.sync_all().map_err(|e| file_error(temp, e))?;
    Ok(Written { spans, trace_ids, damage })
}

/// Directory under the data directory for the log segments compaction
/// could not read whole.
pub const DAMAGED_DIR: &str = "damaged";

/// What a compaction run did.
#[derive(Debug, Default)]
pub struct Compaction {
    /// Parquet files written, one per closed segment with spans (a
    /// segment without any, such as the one each restart closes, is
    /// retired without a file).
    pub files: Vec<PathBuf>,
    /// The trace ids in each of `files`, in the same order.
    pub trace_ids: Vec<Vec<TraceId>>,
    /// Segments with records that could not be read: where each was moved
    /// (under [`DAMAGED_DIR`], after its readable records were compacted)
    /// and what was wrong with it.
    pub damaged: Vec<(PathBuf, String)>,
}

/// Compacts every closed segment of the log in `data_dir`; compacted
/// segments are kept for the log to reuse when `reuse` is set (the log
/// preallocates), as many as this run compacted within bounds (see
/// [`free_segments_to_keep`]), else deleted. An error (a file
/// that cannot be written, a disk that is full) stops the run, leaving that
/// segment and the later ones for the next.
pub fn compact(data_dir: &Path, reuse: bool, before: Option<u64>) -> Result<Compaction, CompactError> {
    compact_in_chunks(data_dir, CHUNK_SPANS, reuse, before)
}

/// Moves a damaged segment to [`DAMAGED_DIR`]; returns its new path.
fn set_aside(data_dir: &Path, segment: &Path) -> Result<PathBuf, CompactError> {
    let dir = data_dir.join(DAMAGED_DIR);
    fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    let moved = dir.join(segment.file_name().unwrap_or_default());
    fs::rename(segment, &moved).map_err(|e| file_error(segment, e))?;
    for d in [&dir, data_dir] {
        fs::File::open(d).and_then(|d| d.sync_all()).map_err(|e| file_error(d, e))?;
    }
    Ok(moved)
}

fn compact_in_chunks(
    data_dir: &Path,
    chunk: usize,
    reuse: bool,
    before: Option<u64>,
) -> Result<Compaction, CompactError> {
    let mut done = Compaction::default();
    let mut closed = closed_segments(data_dir)?;
    closed.retain(|(sequence, _)| before.is_none_or(|b| *sequence < b));
    let keep = if reuse {
        // A preallocated segment has the log's segment size (one cut short
        // by a restart or a failed preparation, less).
        let mut bytes = 0;
        for (_, segment) in &closed {
            bytes = bytes.max(fs::metadata(segment).map_err(|e| file_error(segment, e))?.len());
        }
        free_segments_to_keep(closed.len(), bytes)
    } else {
        0
    };
    for (sequence, segment) in closed {
        let closed_at = fs::metadata(&segment).and_then(|m| m.modified()).map_err(|e| file_error(&segment, e))?;
        let dir = partition(data_dir, closed_at);
        fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
        let target = dir.join(format!("wal-{sequence:020}.parquet"));
        let temp = dir.join(format!(".wal-{sequence:020}.parquet.tmp"));
        let written = match write_segment(sequence, &segment, &temp, chunk) {
            Ok(written) => written,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        };
        if written.spans == 0 {
            fs::remove_file(&temp).map_err(|e| file_error(&temp, e))?;
            // Nor an empty partition (removed only if nothing else is in it).
            if fs::remove_dir(&dir).is_ok()
                && let Some(day) = dir.parent()
            {
                let _ = fs::remove_dir(day);
            }
        } else {
            fs::rename(&temp, &target).map_err(|e| file_error(&target, e))?;
            fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| file_error(&dir, e))?;
            // Not synced: a filter lost in a crash is rebuilt by reading the file.
            write_filter(data_dir, sequence, &written.trace_ids)?;
            done.files.push(target);
            done.trace_ids.push(written.trace_ids);
        }
        match written.damage {
            None => retire_segment(data_dir, &segment, keep)?,
            Some(reason) => done.damaged.push((set_aside(data_dir, &segment)?, reason)),
        }
    }
    if reuse {
        trim_free_segments(data_dir, keep)?;
    }
    Ok(done)
}

/// Directory of the compacted files' trace-id filters (see
/// [`super::trace_index`]), one per file, named by its segment's sequence.
pub const INDEX_DIR: &str = "index";

/// Where the trace-id filter of the file compacted from segment `sequence` is.
pub fn filter_path(data_dir: &Path, sequence: u64) -> PathBuf {
    data_dir.join(INDEX_DIR).join(format!("wal-{sequence:020}.bloom"))
}

/// The sequence of the segment a compacted file was written from, from its
/// name (`wal-<sequence>.parquet`).
pub fn file_sequence(file: &Path) -> Option<u64> {
    file.file_name()?.to_str()?.strip_prefix("wal-")?.strip_suffix(".parquet")?.parse().ok()
}

/// Writes the trace-id filter of the file compacted from `sequence`.
pub fn write_filter(data_dir: &Path, sequence: u64, ids: &[TraceId]) -> Result<(), CompactError> {
    let path = filter_path(data_dir, sequence);
    let dir = data_dir.join(INDEX_DIR);
    fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    let temp = path.with_extension("bloom.tmp");
    fs::write(&temp, super::trace_index::encode_filter(ids)).map_err(|e| file_error(&temp, e))?;
    fs::rename(&temp, &path).map_err(|e| file_error(&path, e))
}

/// Deletes the filters whose compacted file is gone (expired, or deleted
/// by hand).
fn expire_filters(data_dir: &Path) -> Result<(), CompactError> {
    let kept: std::collections::HashSet<u64> =
        parquet_files(data_dir).iter().filter_map(|f| file_sequence(f)).collect();
    for entry in fs::read_dir(data_dir.join(INDEX_DIR)).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let sequence = name.to_str().and_then(|n| n.strip_prefix("wal-")?.split('.').next()?.parse::<u64>().ok());
        if sequence.is_none_or(|s| !kept.contains(&s)) {
            fs::remove_file(entry.path()).map_err(|e| file_error(&entry.path(), e))?;
        }
    }
    Ok(())
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

/// Deletes hour partitions that ended, and damaged segments last written,
/// longer than `retention` ago; returns how many.
pub fn expire(data_dir: &Path, retention: Duration) -> Result<usize, CompactError> {
    let horizon = SystemTime::now().checked_sub(retention).unwrap_or(UNIX_EPOCH);
    let oldest_kept = partition(data_dir, horizon);
    let mut removed = 0;
    for entry in fs::read_dir(data_dir.join(DAMAGED_DIR)).into_iter().flatten().flatten() {
        if entry.metadata().and_then(|m| m.modified()).is_ok_and(|written| written < horizon) {
            fs::remove_file(entry.path()).map_err(|e| file_error(&entry.path(), e))?;
            removed += 1;
        }
    }
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
    expire_filters(data_dir)?;
    Ok(removed)
}

/// The spans of one trace in the compacted files (empty if none).
/// Files `may_hold` rules out are not read (see [`super::trace_index`]); a
/// file that cannot be read goes to `unreadable` and the others are read.
pub fn find_trace(
    data_dir: &Path,
    id: &TraceId,
    dict: &mut Dictionary,
    may_hold: &dyn Fn(&Path) -> bool,
    unreadable: &mut dyn FnMut(&Path, CompactError),
) -> Vec<Span> {
    let hex = id.to_hex();
    let mut found = Vec::new();
    let mut warnings = Warnings::default();
    for path in parquet_files(data_dir).into_iter().filter(|p| may_hold(p)) {
        if let Err(e) = find_in_file(&path, &hex, dict, &mut warnings, &mut found) {
            unreadable(&path, e);
        }
    }
    found
}

/// The spans of trace `hex` in the compacted file `path`, into `found`.
fn find_in_file(
    path: &Path,
    hex: &str,
    dict: &mut Dictionary,
    warnings: &mut Warnings,
    found: &mut Vec<Span>,
) -> Result<(), CompactError> {
    let open = || fs::File::open(path).map_err(|e| file_error(path, e));
    // The trace id column alone first: most files do not hold the trace.
    let ids = ParquetReader::new(open()?)
        .with_columns(Some(vec!["trace_id".to_string()]))
        .finish()
        .map_err(|e| file_error(path, e))?;
    // Text as compaction writes it; cast in case another writer made it categorical.
    let mask = ids
        .column("trace_id")
        .and_then(|c| c.cast(&DataType::String))
        .and_then(|c| c.str().cloned())
        .map_err(|e| file_error(path, e))?
        .equal(hex);
    if !mask.any() {
        return Ok(());
    }
    let df = ParquetReader::new(open()?).finish().map_err(|e| file_error(path, e))?;
    let mut rows = df.filter(&mask).map_err(|e| file_error(path, e))?;
    if rows.height() == 0 {
        return Ok(());
    }
    let mut buffer = Vec::new();
    ParquetWriter::new(&mut buffer).finish(&mut rows).map_err(|e| file_error(path, e))?;
    read_spans(hex, &buffer[..], &tracelens_table::read_options(false), dict, warnings, &mut |_: &Dictionary, s| {
        found.push(s)
    })
    .map_err(|e| file_error(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wal::{Wal, WalConfig};
    use tracelens_core::read::ReadOptions;
    use tracelens_table::SpanRows;

    /// Reads the spans of every compacted file into `dict`, passing them to
    /// `sink` file by file.
    fn read_all(
        data_dir: &Path,
        dict: &mut Dictionary,
        warnings: &mut Warnings,
        sink: &mut dyn FnMut(&Dictionary, Span),
    ) -> Result<u64, CompactError> {
        let mut files = 0;
        for path in parquet_files(data_dir) {
            let file = fs::File::open(&path).map_err(|e| file_error(&path, e))?;
            read_spans(&path.display().to_string(), file, &tracelens_table::read_options(false), dict, warnings, sink)
                .map_err(|e| file_error(&path, e))?;
            files += 1;
        }
        Ok(files)
    }

    /// Every span of the closed segments, as text, in file order.
    fn compacted(data_dir: &Path) -> Vec<String> {
        let (mut dict, mut warnings, mut out) = (Dictionary::default(), Warnings::default(), Vec::new());
        read_all(data_dir, &mut dict, &mut warnings, &mut |d, s| {
            let status = (s.status, s.status_message());
            out.push(format!("{} {} {} {status:?}", s.span_id.to_hex(), d.resolve(s.name), s.attributes.len()))
        })
        .unwrap();
        out
    }

    #[test]
    fn segments_compact_in_row_groups_to_the_same_table() {
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap();
        let mut results = Vec::new();
        for chunk in [5, 14, 1_000_000] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = WalConfig::new(dir.path());
            config.segment_bytes = 8 * (pb.len() as u64 + 16);
            let (mut wal, _) = Wal::open(config).unwrap();
            for i in 0..20 {
                let (tag, body) = if i % 3 == 0 { (1u8, &json) } else { (0u8, &pb) };
                wal.append_parts_unsynced(&[&[tag], body]).unwrap();
            }
            drop(wal);
            let files = compact_in_chunks(dir.path(), chunk, false, None).unwrap().files;
            assert!(files.len() >= 2, "several segments closed: {files:?}");
            assert!(closed_segments(dir.path()).unwrap().is_empty(), "compacted segments are deleted");
            let spans = compacted(dir.path());
            assert_eq!(spans.len() % 14, 0);
            results.push(spans);
        }
        assert!(!results[0].is_empty());
        assert_eq!(results[0], results[2], "row groups of 5 spans read back as one table");
        assert_eq!(results[1], results[2]);
    }

    /// A busy interval's segments are all kept for the log to reuse, and a
    /// quieter run gives the surplus back.
    #[test]
    fn compaction_keeps_as_many_segments_for_reuse_as_it_retired() {
        use super::super::wal::FREE_SEGMENTS_KEPT;
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let free = |dir: &Path| {
            fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "free")).count()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut config = WalConfig::new(dir.path());
        config.segment_bytes = pb.len() as u64 + 16;
        let (mut wal, _) = Wal::open(config).unwrap();
        let busy = FREE_SEGMENTS_KEPT + 4;
        for _ in 0..=busy {
            wal.append_parts_unsynced(&[&[0], &pb]).unwrap(); // one segment each
        }
        drop(wal);
        assert_eq!(closed_segments(dir.path()).unwrap().len(), busy, "the last one is still open");
        assert_eq!(compact(dir.path(), true, None).unwrap().files.len(), busy);
        assert_eq!(free(dir.path()), busy, "every retired segment kept");
        // A run with nothing to compact: the pool shrinks to the floor.
        assert!(compact(dir.path(), true, None).unwrap().files.is_empty());
        assert_eq!(free(dir.path()), FREE_SEGMENTS_KEPT);
    }

    /// The segment each start of the receiver opens and the next start
    /// closes may hold nothing: it goes without leaving an empty file.
    #[test]
    fn a_segment_without_spans_leaves_no_file() {
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        wal.append_parts_unsynced(&[&[0], &pb]).unwrap();
        drop(wal);
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        assert_eq!(closed_segments(dir.path()).unwrap().len(), 2, "an empty one, then one with spans");
        let run = compact(dir.path(), false, None).unwrap();
        assert_eq!(run.files.len(), 1, "{:?}", run.files);
        assert!(run.files[0].ends_with("wal-00000000000000000001.parquet"), "{:?}", run.files);
        assert_eq!(parquet_files(dir.path()), run.files);
        assert!(closed_segments(dir.path()).unwrap().is_empty(), "both deleted");
        assert_eq!(compacted(dir.path()).len(), 14);
        let temps = fs::read_dir(run.files[0].parent().unwrap()).unwrap().count();
        assert_eq!(temps, 1, "no temporary file left");
        // An empty segment alone leaves no partition directory either.
        let dir = tempfile::tempdir().unwrap();
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        assert!(compact(dir.path(), false, None).unwrap().files.is_empty());
        let left: Vec<_> = fs::read_dir(dir.path().join(PARQUET_DIR)).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn compaction_stops_at_the_checkpoint_and_leaves_a_filter_per_file_until_it_expires() {
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..3 {
            let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
            wal.append_parts_unsynced(&[&[0], &pb]).unwrap();
        }
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        let closed: Vec<u64> = closed_segments(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(closed, [0, 1, 2]);
        let run = compact(dir.path(), false, Some(2)).unwrap();
        assert_eq!(run.files.iter().filter_map(|f| file_sequence(f)).collect::<Vec<_>>(), [0, 1]);
        let left: Vec<u64> = closed_segments(dir.path()).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(left, [2], "a segment after the checkpoint stays in the log");
        // Each file's filter, beside the partitions, holds its traces.
        for (file, ids) in run.files.iter().zip(&run.trace_ids) {
            let bytes = fs::read(filter_path(dir.path(), file_sequence(file).unwrap())).unwrap();
            let mut index = super::super::trace_index::TraceIndex::default();
            index.add_encoded(file.clone(), &bytes).unwrap();
            assert!(ids.iter().all(|id| index.may_hold(file, id)));
            assert!(!index.may_hold(file, &TraceId([0x5a; 16])));
        }
        assert_eq!(compact(dir.path(), false, None).unwrap().files.len(), 1);
        assert_eq!(fs::read_dir(dir.path().join(INDEX_DIR)).unwrap().count(), 3);
        // Gone with their files.
        fs::remove_file(&run.files[0]).unwrap();
        expire(dir.path(), Duration::from_secs(3600)).unwrap();
        assert_eq!(fs::read_dir(dir.path().join(INDEX_DIR)).unwrap().count(), 2);
        assert!(!filter_path(dir.path(), 0).exists());
    }

    #[test]
    fn a_trace_is_found_in_the_files_that_hold_it() {
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let edges =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/graph-edges.otlp.jsonl")).unwrap();
        let line = edges.split(|&b| b == b'\n').next().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Two segments, two files: the shop request (protobuf), then one
        // JSON request of other traces.
        for (tag, body) in [(0u8, &pb[..]), (1, line)] {
            let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
            wal.append_parts_unsynced(&[&[tag], body]).unwrap();
        }
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        let run = compact(dir.path(), false, None).unwrap();
        assert_eq!(run.files.len(), 2);
        let (mut dict, mut warnings) = (Dictionary::default(), Warnings::default());
        let mut by_trace = std::collections::BTreeMap::<TraceId, usize>::new();
        read_all(dir.path(), &mut dict, &mut warnings, &mut |_, s| *by_trace.entry(s.trace_id).or_default() += 1)
            .unwrap();
        assert!(by_trace.len() >= 2, "{by_trace:?}");
        // Compaction names each file's traces, for the look-up index.
        let mut named: Vec<TraceId> = run.trace_ids.concat();
        named.sort();
        assert_eq!(named, by_trace.keys().copied().collect::<Vec<_>>());
        let mut index = super::super::trace_index::TraceIndex::default();
        for (file, ids) in run.files.iter().zip(&run.trace_ids) {
            index.add(file.clone(), ids);
        }
        // A file the index rules out is not read: here, one that is not Parquet.
        let garbage = run.files[0].with_file_name("garbage.parquet");
        std::fs::write(&garbage, b"not parquet").unwrap();
        let indexed = |file: &Path, id: &TraceId| file != garbage && index.may_hold(file, id);
        for (id, spans) in &by_trace {
            let found = find_trace(dir.path(), id, &mut dict, &|f| indexed(f, id), &mut |f, e| panic!("{f:?}: {e}"));
            assert_eq!(found.len(), *spans, "{}", id.to_hex());
            assert!(found.iter().all(|s| s.trace_id == *id));
        }
        let absent = TraceId::from_text("0123456789abcdef0123456789abcdef").id().unwrap();
        let fail = &mut |f: &Path, e: CompactError| panic!("{f:?}: {e}");
        assert!(find_trace(dir.path(), &absent, &mut dict, &|f| indexed(f, &absent), fail).is_empty());
        // Read anyway, it is reported and the other files still answer.
        let mut unreadable = Vec::new();
        let (id, spans) = by_trace.iter().next().unwrap();
        let found = find_trace(dir.path(), id, &mut dict, &|_| true, &mut |f, e| unreadable.push((f.to_owned(), e)));
        assert_eq!(found.len(), *spans);
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].0, garbage);
        assert!(unreadable[0].1.to_string().contains("garbage.parquet"), "{}", unreadable[0].1);
    }

    #[test]
    fn compacted_files_scan_together_as_text_columns() {
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = WalConfig::new(dir.path());
        // Three records (a 16-byte header, a tag byte, the request) and the closing mark.
        config.segment_bytes = 3 * (pb.len() as u64 + 17) + 16;
        let (mut wal, _) = Wal::open(config).unwrap();
        for _ in 0..10 {
            wal.append_parts_unsynced(&[&[0], &pb]).unwrap();
        }
        drop(wal);
        let files = compact(dir.path(), false, None).unwrap().files;
        assert!(files.len() >= 3, "{files:?}");
        // Beside them, the same table as polars writes it from a DataFrame
        // (files of builds before the page writer).
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        read_spans("shop.otlp.pb", &pb[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| {
            spans.push(s)
        })
        .unwrap();
        let mut rows = tracelens_table::SpanRows::default();
        rows.add_spans(&dict, &spans);
        let mut table = rows.finish().unwrap();
        let by_polars = files[0].with_file_name("by-polars.parquet");
        ParquetWriter::new(fs::File::create(&by_polars).unwrap()).finish(&mut table).unwrap();
        assert_eq!(compacted(dir.path()).len(), 14 * 10, "both kinds read back");
        // polars refuses to scan files whose categoricals differ; written
        // as text, every file has the same schema.
        let pattern = format!("{}/parquet/*/*/*.parquet", dir.path().display());
        // Hive partitions read as text (parsing dates needs a polars
        // feature tracelens does not build).
        let hive_options = HiveOptions { enabled: Some(true), try_parse_dates: false, ..HiveOptions::default() };
        let args = ScanArgsParquet { hive_options, ..ScanArgsParquet::default() };
        let df = LazyFrame::scan_parquet(PlRefPath::new(pattern.as_str()), args).unwrap().collect().unwrap();
        assert_eq!(df.height(), 14 * 10, "three closed segments of three requests, and the polars file");
        for name in ["trace_id", "service", "operation", "kind", "status_code", "resource_attributes"] {
            assert_eq!(df.column(name).unwrap().dtype(), &DataType::String, "{name}");
        }
        let services = df.column("service").unwrap().str().unwrap().n_unique().unwrap();
        assert!(services > 2, "{services}");
        assert!(df.column("date").is_ok() && df.column("hour").is_ok(), "Hive partition columns");
    }

    #[test]
    fn spans_partial_success_rejected_are_not_compacted() {
        // One usable span, one with an empty trace id, one without service.name.
        let request = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeSpans":[{"spans":[
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a","startTimeUnixNano":"1","endTimeUnixNano":"2"},
            {"traceId":"","spanId":"eee19b7ec3c1b175","name":"b","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]},
            {"resource":{"attributes":[]},"scopeSpans":[{"spans":[
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b176","name":"c","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        wal.append_parts_unsynced(&[&[1], request]).unwrap();
        drop(wal);
        Wal::open(WalConfig::new(dir.path())).unwrap(); // closes the first segment
        assert_eq!(compact(dir.path(), false, None).unwrap().files.len(), 1);
        assert_eq!(compacted(dir.path()), ["eee19b7ec3c1b174 a 0 (Unset, None)"]);
    }

    /// The rows of `column` as text.
    fn texts(df: &DataFrame, column: &str) -> Vec<Option<String>> {
        let c = df.column(column).unwrap().cast(&DataType::String).unwrap();
        c.str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn attributes_written_from_the_wire_are_those_export_writes() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan};
        use prost::Message;
        let kv =
            |k: &str, v: V| KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() };
        let span = |trace: u8, id: u8, attributes: Vec<KeyValue>| PSpan {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("op{id}"),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes,
            ..Default::default()
        };
        // Rejected spans (an empty trace id; no service.name) between kept
        // ones, every one with attributes of its own.
        let rejected_pb = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", V::StringValue("api".into()))],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![
                            span(0, 1, vec![kv("n", V::IntValue(1))]),
                            span(5, 2, vec![kv("n", V::IntValue(2)), kv("s", V::StringValue("\"two\"".into()))]),
                            span(5, 3, vec![]),
                        ],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(5, 4, vec![kv("n", V::IntValue(4))])],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
        .encode_to_vec();
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap();
        let records: [(u8, &[u8]); 4] = [(0, &rejected_pb), (1, &json), (0, &pb), (0, &rejected_pb)];
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        for (tag, body) in records {
            wal.append_parts_unsynced(&[&[tag], body]).unwrap();
        }
        drop(wal);
        Wal::open(WalConfig::new(dir.path())).unwrap(); // closes the segment
        let files = compact_in_chunks(dir.path(), 7, false, None).unwrap().files;
        let got = ParquetReader::new(fs::File::open(&files[0]).unwrap()).finish().unwrap();
        // The same records decoded into the model, tabled as SQL sees them.
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        for (tag, body) in records {
            let mut sink = |d: &Dictionary, s: Span| {
                if usable(&s, d).is_ok() {
                    spans.push(s)
                }
            };
            let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
            match tag {
                0 => tracelens_core::read::read_otlp_protobuf(body, &mut e).unwrap(),
                _ => tracelens_core::read::read_otlp_json_record(body, &mut e).unwrap(),
            }
        }
        let mut rows = SpanRows::default();
        rows.add_spans(&dict, &spans);
        let want = rows.finish().unwrap();
        assert_eq!(got.schema(), want.schema(), "the spans table's schema");
        assert_eq!(got.height(), want.height());
        assert_eq!(got.height(), 2 + 14 + 14 + 2);
        for column in want.get_column_names() {
            assert_eq!(texts(&got, column), texts(&want, column), "{column}");
        }
        let attributes = texts(&got, "span_attributes");
        assert_eq!(attributes[..2], [Some(r#"{"n":2,"s":"\"two\""}"#.to_string()), Some("{}".to_string())]);
        assert!(attributes[2].as_deref().is_some_and(|a| a.len() > 20), "{attributes:?}");
    }

    #[test]
    fn damaged_segments_are_set_aside_and_compaction_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        // Three segments (reopening the log closes one): a record that does
        // not decode between two good ones; a good record, one whose bytes
        // rot, a good one; two good ones.
        for records in [&[&pb[..], b"\x0a\xff\xff", &pb][..], &[&pb, &pb, &pb], &[&pb, &pb]] {
            let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
            for body in records {
                wal.append_parts_unsynced(&[&[0], body]).unwrap();
            }
        }
        Wal::open(WalConfig::new(dir.path())).unwrap();
        let segments = closed_segments(dir.path()).unwrap();
        assert_eq!(segments.len(), 3);
        let rotten = &segments[1].1;
        let mut bytes = fs::read(rotten).unwrap();
        bytes[(16 + 1 + pb.len()) + 16 + 10] ^= 0xff; // inside the second record's payload
        fs::write(rotten, &bytes).unwrap();
        let sizes: Vec<u64> = segments.iter().map(|(_, p)| fs::metadata(p).unwrap().len()).collect();

        let run = compact_in_chunks(dir.path(), 5, false, None).unwrap();
        assert_eq!(run.files.len(), 3, "every segment compacted: {run:?}");
        assert!(closed_segments(dir.path()).unwrap().is_empty());
        let damaged: Vec<(String, &str)> = run
            .damaged
            .iter()
            .map(|(p, why)| (p.strip_prefix(dir.path()).unwrap().display().to_string(), why.as_str()))
            .collect();
        assert_eq!(damaged.len(), 2, "{damaged:?}");
        assert_eq!(damaged[0].0, format!("damaged/{}", segments[0].1.file_name().unwrap().to_str().unwrap()));
        assert!(damaged[0].1.contains("record 2 cannot be decoded"), "{}", damaged[0].1);
        assert!(damaged[1].1.contains("checksum mismatch"), "{}", damaged[1].1);
        for ((moved, _), size) in run.damaged.iter().zip([sizes[0], sizes[1]]) {
            assert_eq!(fs::metadata(moved).unwrap().len(), size, "kept whole");
        }
        // The readable records: two of the first segment, the one before the
        // rotten record, both of the last; never a partial or temporary file.
        assert_eq!(compacted(dir.path()).len(), 14 * (2 + 1 + 2));
        let leftovers: Vec<_> = walkdir(dir.path().join(PARQUET_DIR));
        assert!(leftovers.iter().all(|p| !p.ends_with(".tmp")), "{leftovers:?}");

        // Damaged segments age out with the retention, like the partitions.
        expire(dir.path(), Duration::from_secs(3600)).unwrap();
        assert_eq!(fs::read_dir(dir.path().join(DAMAGED_DIR)).unwrap().count(), 2);
        expire(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(fs::read_dir(dir.path().join(DAMAGED_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_write_leaves_the_segment_and_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        wal.append_parts_unsynced(&[&[0], &pb]).unwrap();
        drop(wal);
        Wal::open(WalConfig::new(dir.path())).unwrap();
        // The partition cannot be created: a file stands where its parent goes.
        fs::write(dir.path().join(PARQUET_DIR), b"in the way").unwrap();
        let err = compact_in_chunks(dir.path(), 5, false, None).unwrap_err();
        assert!(err.to_string().contains(PARQUET_DIR), "{err}");
        assert_eq!(closed_segments(dir.path()).unwrap().len(), 1, "the segment stays for the next run");
        assert!(!dir.path().join(DAMAGED_DIR).exists());
    }

    fn walkdir(dir: PathBuf) -> Vec<String> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walkdir(path));
            } else {
                out.push(path.display().to_string());
            }
        }
        out
    }
}
