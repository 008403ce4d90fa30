//! Checkpoints of live analysis, so that a restart restores what is not
//! yet compacted instead of re-reading every span kept.
//!
//! A checkpoint is taken before each compaction run, while no request is
//! between the log and live analysis (the service holds them back for a
//! moment, see [`crate::service::Service::checkpoint`]), at the log's
//! position then: segment `N` being written, `K` records appended to it.
//! Every record of the segments before `N` and the first `K` of `N` are in
//! live analysis (or were refused, never acknowledged), none after. The
//! time buckets and the spans of the traces still open are written to
//! `<data-dir>/checkpoint/live-<N>.ckpt` (synced, renamed into place, the
//! older ones deleted). Compaction then moves only segments before `N` into
//! Parquet, so segment `N` and later are always still in the log.
//!
//! On start, the restore reads the newest checkpoint and replays only the
//! log from there: segment `N` past its first `K` records, and the later
//! segments. A checkpoint is not used (the restore reads
//! every Parquet file and segment, as without one) when it does not read
//! back, when it was written with other bucket settings, or when a
//! compacted file comes from segment `N` or later (written by a run that
//! could not checkpoint, or by an older tracelens): the analyses would
//! miss those spans.
//!
//! The file: `TLCKPT01`, the CRC-32 of the rest, then a zstd frame of the
//! [`pb::Checkpoint`] message. Analyses travel in their portable form
//! (the one Kafka partials use: names as text, histograms as HDR counts);
//! the open spans as a Parquet file of the spans table.

use std::fs;
use std::path::{Path, PathBuf};

use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::portable::{Names, PortableError, Syms, pb::Analyses as PortableAnalyses};
use tracelens_core::model::{Dictionary, Span, Warnings};
use tracelens_core::read::{AttributesJson, Emitter};
use tracelens_table::TableError;
use tracelens_table::parquet::ParquetSpans;
use tracelens_table::spans_parquet::SpansParquetWriter;

use super::compact::{file_sequence, parquet_files};
use crate::ingest::LIVE_ATTRIBUTES;
use crate::live::buckets::{BucketConfig, BucketState, CoarseBucket, FineBucket};
use crate::live::{LiveCounters, Snapshot};

/// Directory of the checkpoints under the data directory.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The start of a checkpoint file: a name and the format.
const MAGIC: &[u8; 8] = b"TLCKPT01";
/// zstd level of the message: fast, checkpoints are written often.
const ZSTD_LEVEL: i32 = 1;
/// A checkpoint larger than this is not read (the buckets of a busy day
/// take tens of megabytes).
const MAX_BYTES: u64 = 4 << 30;

/// The messages. Field numbers are the format: only ever added to.
pub mod pb {
    use tracelens_core::analysis::portable::pb::Analyses;

    /// Live analysis of the log's segments before one.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Checkpoint {
        /// The segment being written when it was taken: every record of
        /// the segments before it is in it, and the first
        /// `segment_records` of this one.
        #[prost(uint64, tag = "1")]
        pub next_segment: u64,
        /// Bucket width, ms.
        #[prost(uint64, tag = "2")]
        pub bucket_ms: u64,
        /// Rolled-up bucket width, ms.
        #[prost(uint64, tag = "3")]
        pub coarse_ms: u64,
        /// Operation names kept per service.
        #[prost(uint64, tag = "4")]
        pub max_operations: u64,
        /// The names the analyses refer to.
        #[prost(string, repeated, tag = "5")]
        pub names: Vec<String>,
        /// The time buckets, oldest first.
        #[prost(message, repeated, tag = "6")]
        pub fine: Vec<Fine>,
        /// The rolled-up buckets, oldest first.
        #[prost(message, repeated, tag = "7")]
        pub coarse: Vec<Coarse>,
        /// Every sealed bucket ever, merged.
        #[prost(message, optional, tag = "8")]
        pub sealed_total: Option<Analyses>,
        /// Traces put in their arrival bucket, out of the kept window.
        #[prost(uint64, tag = "9")]
        pub out_of_window: u64,
        /// Traces that came for a sealed bucket.
        #[prost(uint64, tag = "10")]
        pub late: u64,
        /// Buckets dropped by retention.
        #[prost(uint64, tag = "11")]
        pub expired: u64,
        /// The spans of the traces not yet complete: a Parquet file of the
        /// spans table (empty when there are none).
        #[prost(bytes = "vec", tag = "12")]
        pub open_spans: Vec<u8>,
        /// Records of `next_segment` in it.
        #[prost(uint64, tag = "13")]
        pub segment_records: u64,
        /// Live analysis's counters.
        #[prost(message, optional, tag = "14")]
        pub counters: Option<Counters>,
    }

    /// Live analysis's counters (see `LiveCounters`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Counters {
        /// Spans accepted into analysis.
        #[prost(uint64, tag = "1")]
        pub spans_accepted: u64,
        /// Spans rejected through partial success.
        #[prost(uint64, tag = "2")]
        pub spans_rejected: u64,
        /// Requests refused whole.
        #[prost(uint64, tag = "3")]
        pub requests_refused: u64,
        /// Traces completed and analysed.
        #[prost(uint64, tag = "4")]
        pub traces_completed: u64,
        /// Times traces were closed early.
        #[prost(uint64, tag = "5")]
        pub forced_closes: u64,
    }

    /// A time bucket.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Fine {
        /// Start, unix ms.
        #[prost(uint64, tag = "1")]
        pub start_ms: u64,
        /// Its traces are done arriving.
        #[prost(bool, tag = "2")]
        pub sealed: bool,
        /// Its analyses.
        #[prost(message, optional, tag = "3")]
        pub analyses: Option<Analyses>,
        /// Traces that came after it was sealed, not folded in yet.
        #[prost(message, optional, tag = "4")]
        pub late: Option<Analyses>,
    }

    /// A rolled-up bucket.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Coarse {
        /// Start, unix ms.
        #[prost(uint64, tag = "1")]
        pub start_ms: u64,
        /// Its analyses.
        #[prost(message, optional, tag = "2")]
        pub analyses: Option<Analyses>,
        /// End of the last fine bucket rolled in, unix ms.
        #[prost(uint64, tag = "3")]
        pub end_ms: u64,
    }
}

/// Why a checkpoint could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The open spans could not be written as Parquet.
    #[error("writing the open spans: {0}")]
    Table(#[from] TableError),
    /// The log's segment could not be closed.
    #[error("closing the log's segment: {0}")]
    Log(#[from] super::commit::LogFailure),
    /// The message could not be compressed.
    #[error("compressing: {0}")]
    Compress(std::io::Error),
    /// The file is not a checkpoint this build reads, or is damaged.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The checkpoint does not fit this receiver's data or settings.
    #[error("{path}: {problem}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        problem: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

/// The file of the checkpoint of the segments before `next`.
fn path_of(data_dir: &Path, next: u64) -> PathBuf {
    data_dir.join(CHECKPOINT_DIR).join(format!("live-{next:020}.ckpt"))
}

/// Every checkpoint file, as (next segment, path), oldest first.
fn checkpoints(data_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(data_dir.join(CHECKPOINT_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let next = name.to_str()?.strip_prefix("live-")?.strip_suffix(".ckpt")?.parse().ok()?;
            Some((next, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The newest checkpoint, as (next segment, path).
pub fn latest(data_dir: &Path) -> Option<(u64, PathBuf)> {
    checkpoints(data_dir).pop()
}

/// Encodes `snapshot`, taken at the log's position `(next, records)`
/// (see [`crate::storage::wal::Wal::position`]), with the bucket settings
/// `config`.
pub fn encode(
    snapshot: &Snapshot,
    config: &BucketConfig,
    (next, records): (u64, u64),
) -> Result<Vec<u8>, CheckpointError> {
    let dict = &snapshot.dict;
    let mut names = Names::default();
    let mut portable = |a: &TraceAnalyses| a.to_portable(dict, &mut names);
    let buckets = &snapshot.buckets;
    let fine = buckets
        .fine
        .iter()
        .map(|b| pb::Fine {
            start_ms: b.start_ms,
            sealed: b.sealed,
            analyses: Some(portable(&b.analyses)),
            late: b.late.as_deref().map(&mut portable),
        })
        .collect();
    let coarse = buckets
        .coarse
        .iter()
        .map(|b| pb::Coarse { start_ms: b.start_ms, analyses: Some(portable(&b.analyses)), end_ms: b.end_ms })
        .collect();
    let sealed_total = Some(portable(&buckets.sealed_total));
    let message = pb::Checkpoint {
        next_segment: next,
        segment_records: records,
        counters: Some(pb::Counters {
            spans_accepted: snapshot.counters.spans_accepted,
            spans_rejected: snapshot.counters.spans_rejected,
            requests_refused: snapshot.counters.requests_refused,
            traces_completed: snapshot.counters.traces_completed,
            forced_closes: snapshot.counters.forced_closes,
        }),
        bucket_ms: config.bucket_ms,
        coarse_ms: config.coarse_ms,
        max_operations: config.max_operations as u64,
        names: names.into_strings(),
        fine,
        coarse,
        sealed_total,
        out_of_window: buckets.counters.out_of_window,
        late: buckets.counters.late,
        expired: buckets.counters.expired,
        open_spans: open_spans_parquet(dict, &snapshot.open)?,
    };
    let body = zstd::bulk::compress(&prost::Message::encode_to_vec(&message), ZSTD_LEVEL)
        .map_err(CheckpointError::Compress)?;
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The spans as a Parquet file of the spans table (empty for none).
fn open_spans_parquet(dict: &Dictionary, spans: &[Span]) -> Result<Vec<u8>, CheckpointError> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let mut writer = SpansParquetWriter::new(Vec::new(), ZSTD_LEVEL)?;
    let mut json = AttributesJson::default();
    for span in spans {
        json.clear();
        json.push(dict, &span.attributes);
        writer.add(dict, span, json.get(0))?;
    }
    Ok(writer.finish()?)
}

/// Writes checkpoint `bytes` (from [`encode`]) of the segments before `next`:
/// to a temporary file, synced, renamed into place; then deletes the older
/// ones. Returns the file.
pub fn write(data_dir: &Path, next: u64, bytes: &[u8]) -> Result<PathBuf, CheckpointError> {
    let dir = data_dir.join(CHECKPOINT_DIR);
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = path_of(data_dir, next);
    let temp = path.with_extension("ckpt.tmp");
    {
        use std::io::Write as _;
        let mut file = fs::File::create(&temp).map_err(io_err(&temp))?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_err(&temp))?;
    }
    fs::rename(&temp, &path).map_err(io_err(&path))?;
    fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err(&dir))?;
    for (older, file) in checkpoints(data_dir) {
        if older < next {
            fs::remove_file(&file).map_err(io_err(&file))?;
        }
    }
    Ok(path)
}

/// Deletes every checkpoint (the log is about to be compacted past them),
/// so that the next start reads everything instead of a stale one.
pub fn remove_all(data_dir: &Path) -> Result<(), CheckpointError> {
    for (_, file) in checkpoints(data_dir) {
        fs::remove_file(&file).map_err(io_err(&file))?;
    }
    let dir = data_dir.join(CHECKPOINT_DIR);
    match fs::File::open(&dir) {
        Ok(d) => d.sync_all().map_err(io_err(&dir)),
        Err(_) => Ok(()),
    }
}

/// A checkpoint read back: the buckets, with names in the live dictionary,
/// and the open spans.
#[derive(Debug)]
pub struct Loaded {
    /// The segment being written when it was taken.
    pub next: u64,
    /// Records of segment `next` in it (to skip when it is replayed).
    pub skip: u64,
    /// Live analysis's counters.
    pub counters: LiveCounters,
    /// The time buckets.
    pub buckets: BucketState,
    /// The spans of the traces not yet complete, oldest trace first.
    pub open: Vec<Span>,
}

/// Reads the checkpoint at `path` (of the segments before `next`) for a live
/// state with bucket settings `config`: names are interned into `dict`,
/// analyses shaped like `like`. Checks that no compacted file under
/// `data_dir` comes from a segment after it.
pub fn read(
    data_dir: &Path,
    (next, path): (u64, &Path),
    config: &BucketConfig,
    like: &TraceAnalyses,
    dict: &mut Dictionary,
) -> Result<Loaded, CheckpointError> {
    let unusable = |problem: String| CheckpointError::Unusable { path: path.to_path_buf(), problem };
    if let Some(newer) = parquet_files(data_dir).into_iter().find(|f| file_sequence(f).is_some_and(|s| s >= next)) {
        return Err(unusable(format!(
            "{} was compacted from a log segment the checkpoint does not hold (it holds those before {next})",
            newer.display()
        )));
    }
    let invalid = |problem: String| CheckpointError::Invalid { path: path.to_path_buf(), problem };
    let size = fs::metadata(path).map_err(io_err(path))?.len();
    if size > MAX_BYTES {
        return Err(invalid(format!("{size} bytes is more than a checkpoint takes")));
    }
    let bytes = fs::read(path).map_err(io_err(path))?;
    let message = decode(&bytes).map_err(invalid)?;
    if message.next_segment != next {
        return Err(invalid(format!("it says it holds the segments before {}", message.next_segment)));
    }
    let settings = (message.bucket_ms, message.coarse_ms, message.max_operations);
    let ours = (config.bucket_ms, config.coarse_ms, config.max_operations as u64);
    if settings != ours {
        return Err(unusable(format!(
            "written with buckets of {} ms, rolled up to {} ms, {} operations per service; now {} ms, {} ms, {}",
            settings.0, settings.1, settings.2, ours.0, ours.1, ours.2
        )));
    }
    let syms = Syms::intern(&message.names, dict);
    let analyses = |a: &Option<PortableAnalyses>, field: &str| -> Result<TraceAnalyses, CheckpointError> {
        let Some(a) = a else { return Err(invalid(format!("{field}: missing"))) };
        TraceAnalyses::from_portable(a, &syms, dict, like).map_err(|e: PortableError| invalid(format!("{field}: {e}")))
    };
    let mut fine = Vec::with_capacity(message.fine.len());
    for (i, b) in message.fine.iter().enumerate() {
        let late = match &b.late {
            Some(_) => Some(std::sync::Arc::new(analyses(&b.late, &format!("fine[{i}].late"))?)),
            None => None,
        };
        let analyses = std::sync::Arc::new(analyses(&b.analyses, &format!("fine[{i}].analyses"))?);
        fine.push(FineBucket { start_ms: b.start_ms, sealed: b.sealed, analyses, late });
    }
    let mut coarse = Vec::with_capacity(message.coarse.len());
    for (i, b) in message.coarse.iter().enumerate() {
        let analyses = std::sync::Arc::new(analyses(&b.analyses, &format!("coarse[{i}].analyses"))?);
        coarse.push(CoarseBucket { start_ms: b.start_ms, analyses, end_ms: b.end_ms });
    }
    let sealed_total = analyses(&message.sealed_total, "sealed_total")?;
    let bucket_counters = crate::live::buckets::BucketCounters {
        out_of_window: message.out_of_window,
        late: message.late,
        expired: message.expired,
    };
    let mut open = Vec::new();
    if !message.open_spans.is_empty() {
        let name = path.display().to_string();
        let file = ParquetSpans::open(message.open_spans).map_err(|e| invalid(format!("open spans: {e}")))?;
        let mut warnings = Warnings::default();
        let mut e = Emitter::collecting(&name, dict, &mut warnings, &mut open).keep_only_attributes(&LIVE_ATTRIBUTES);
        for index in 0..file.row_groups() {
            let group = file.row_group(index).map_err(|e| invalid(format!("open spans: {e}")))?;
            group.emit(0..group.rows(), &mut e).map_err(|e| invalid(format!("open spans: {e}")))?;
        }
    }
    let c = message.counters.unwrap_or_default();
    let live_counters = LiveCounters {
        spans_accepted: c.spans_accepted,
        spans_rejected: c.spans_rejected,
        requests_refused: c.requests_refused,
        traces_completed: c.traces_completed,
        forced_closes: c.forced_closes,
    };
    Ok(Loaded {
        next,
        skip: message.segment_records,
        counters: live_counters,
        buckets: BucketState { fine, coarse, sealed_total, counters: bucket_counters },
        open,
    })
}

/// The message in a checkpoint file's bytes, or what is wrong with them.
fn decode(bytes: &[u8]) -> Result<pb::Checkpoint, String> {
    let Some(rest) = bytes.strip_prefix(MAGIC) else { return Err("not a tracelens checkpoint".to_string()) };
    let (Some(crc), Some(body)) = (rest.get(..4), rest.get(4..)) else { return Err("cut short".to_string()) };
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch".to_string());
    }
    let size = zstd::zstd_safe::get_frame_content_size(body)
        .ok()
        .flatten()
        .filter(|&n| n <= MAX_BYTES * 8)
        .ok_or("the compressed message does not say its size")?;
    let message = zstd::bulk::decompress(body, size as usize).map_err(|e| format!("decompressing: {e}"))?;
    prost::Message::decode(message.as_slice()).map_err(|e| format!("decoding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{Live, LiveConfig};
    use tracelens_core::model::{Attr, SpanId, SpanKind, TraceId, Value};

    const NOW: u64 = 1_800_000_000_000;

    /// Trace `t`: `client` calls `server`; with `whole` false only the
    /// client span came (the trace stays open).
    fn trace(live: &mut Live, t: u8, client: &str, server: &str, whole: bool, start_ms: u64) {
        let (dict, _) = live.convert_parts();
        let mut spans = Vec::new();
        for (id, service, parent) in [(1u8, client, None), (2, server, Some(1u8))] {
            if parent.is_some() && !whole {
                continue;
            }
            let mut s = Span::new(TraceId([t; 16]), SpanId([id; 8]));
            (s.service, s.name) = (dict.intern(service), dict.intern("GET /"));
            let key = dict.intern("service.name");
            s.resource = dict.resource(vec![Attr { key, value: Value::Str(service.into()) }]);
            s.parent_id = parent.map(|p| SpanId([p; 8]));
            s.kind = if parent.is_some() { SpanKind::Server } else { SpanKind::Client };
            s.start_ns = start_ms * 1_000_000 + u64::from(id);
            s.end_ns = s.start_ns + 1_000_000 * u64::from(t);
            spans.push(s);
        }
        live.ingest(spans, NOW);
    }

    fn graph(live: &Live) -> String {
        serde_json::to_string(&live.cumulative().graph.view(&live.dict)).unwrap()
    }

    #[test]
    fn live_analysis_reads_back_from_its_checkpoint() {
        let config = LiveConfig { idle_ms: 1_000, ..LiveConfig::default() };
        let mut live = Live::new(config);
        // Buckets an hour apart (one rolled up, one sealed, one open), and
        // two traces still open.
        for t in 1..=6 {
            trace(
                &mut live,
                t,
                "web",
                if t % 2 == 0 { "api" } else { "db" },
                true,
                NOW - 7_200_000 + u64::from(t) * 1_000,
            );
        }
        live.tick(NOW + 5_000);
        for t in 7..=9 {
            trace(&mut live, t, "web", "api", true, NOW - 120_000);
        }
        live.tick(NOW + 5_000);
        trace(&mut live, 10, "web", "api", true, NOW);
        trace(&mut live, 11, "web", "cache", false, NOW);
        trace(&mut live, 12, "api", "db", false, NOW);
        let snapshot = live.snapshot();
        assert_eq!(snapshot.open.len(), 4, "trace 10 (idle not yet) and the two halves");
        assert!(snapshot.buckets.fine.len() + snapshot.buckets.coarse.len() >= 2);
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode(&snapshot, live.bucket_config(), (7, 3)).unwrap();
        let path = write(dir.path(), 7, &bytes).unwrap();
        assert_eq!(latest(dir.path()), Some((7, path.clone())));

        let mut back = Live::new(config);
        let (config_b, like) = (*back.bucket_config(), back.empty_analyses().clone());
        let loaded = read(dir.path(), (7, &path), &config_b, &like, &mut back.dict).unwrap();
        assert_eq!((loaded.next, loaded.skip), (7, 3));
        assert_eq!(loaded.counters.spans_accepted, live.counters.spans_accepted);
        assert_eq!(loaded.counters.traces_completed, live.counters.traces_completed);
        back.set_buckets(loaded.buckets);
        assert_eq!(graph(&back), graph(&live), "the buckets read back");
        let mut loader = back.loader(NOW);
        let open = loaded.open;
        let seen = |d: &Dictionary, spans: &[Span]| -> Vec<(TraceId, SpanId, String, String, u64, u64)> {
            spans
                .iter()
                .map(|s| {
                    let service = d.resolve(d.resource_of(s.resource).service).to_string();
                    (s.trace_id, s.span_id, service, d.resolve(s.name).to_string(), s.start_ns, s.end_ns)
                })
                .collect()
        };
        assert_eq!(seen(&back.dict, &open), seen(&snapshot.dict, &snapshot.open));
        for span in open {
            back.load(&mut loader, span);
        }
        back.end_load(loader, NOW);
        // Both complete the open traces alike.
        live.tick(NOW + 60_000);
        back.tick(NOW + 60_000);
        assert_eq!(graph(&back), graph(&live), "open traces completed alike");
        let counts = |l: &Live| l.cumulative().graph.edges(&l.dict).iter().map(|e| e.3.calls).sum::<u64>();
        assert_eq!(counts(&back), 10, "every call once");

        // A newer checkpoint replaces it.
        write(dir.path(), 9, &bytes).unwrap();
        assert_eq!(checkpoints(dir.path()).len(), 1);
    }

    #[test]
    fn a_damaged_stale_or_differently_bucketed_checkpoint_is_not_used() {
        let config = LiveConfig { idle_ms: 1_000, ..LiveConfig::default() };
        let mut live = Live::new(config);
        trace(&mut live, 1, "web", "api", true, NOW);
        let bytes = encode(&live.snapshot(), live.bucket_config(), (3, 0)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 3, &bytes).unwrap();
        let mut back = Live::new(config);
        let like = back.empty_analyses().clone();
        let bucket_config = *back.bucket_config();
        let mut try_read = |path: &Path, config: &BucketConfig| {
            read(dir.path(), (3, path), config, &like, &mut back.dict).map(|_| ()).unwrap_err().to_string()
        };
        let mut damaged = bytes.clone();
        *damaged.last_mut().unwrap() ^= 1;
        fs::write(&path, &damaged).unwrap();
        assert!(try_read(&path, &bucket_config).ends_with("checksum mismatch"));
        fs::write(&path, &bytes[..6]).unwrap();
        assert!(try_read(&path, &bucket_config).ends_with("not a tracelens checkpoint"));
        fs::write(&path, &bytes).unwrap();
        let wider = BucketConfig { bucket_ms: 300_000, ..bucket_config };
        assert!(try_read(&path, &wider).contains("written with buckets of 60000 ms"), "{}", try_read(&path, &wider));
        // A file compacted from a later segment than the checkpoint's.
        let partition = dir.path().join("parquet/date=2027-01-15/hour=08");
        fs::create_dir_all(&partition).unwrap();
        fs::write(partition.join("wal-00000000000000000003.parquet"), b"").unwrap();
        let why = try_read(&path, &bucket_config);
        assert!(why.contains("the checkpoint does not hold (it holds those before 3)"), "{why}");
        remove_all(dir.path()).unwrap();
        assert_eq!(latest(dir.path()), None);
    }
}
