//! Restoring live analysis at start from what the data directory keeps:
//! the newest checkpoint ([`super::checkpoint`]) and the log segments
//! closed after it, or, without a usable checkpoint, the compacted Parquet
//! files and then every log segment an earlier run closed, read in the
//! order their spans were received. The trace index gets each compacted
//! file's filter from its sidecar (read from the file when there is none). It runs on a
//! thread of its own while the receiver already listens, so senders are
//! not refused for as long as reading a day of spans takes (minutes, at
//! hundreds of millions of spans). The live lock is taken for a slice of
//! rows or one logged request at a time, never for a file: a row group is
//! decoded outside it. Spans go through [`Live::load`], whose span window
//! bounds memory. Compaction waits until the restore is done, since it
//! would move the segments being read.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use super::checkpoint;
use super::compact::{file_sequence, filter_path, parquet_files, write_filter};
use super::trace_index::TraceIndex;
use super::wal::{WalError, closed_segments, read_closed_segment};
use crate::clock::Clock;
use crate::ingest::{BodyEncoding, LIVE_ATTRIBUTES, accept_bytes};
use crate::live::{Live, Loader};
use tracelens_core::model::{Span, TraceId, Warnings};
use tracelens_core::read::{Emitter, ReadErrorKind};
use tracelens_table::parquet::{ParquetSpans, check_footer};

/// Rows turned into spans per hold of the live lock.
const ROWS_PER_LOCK: usize = 4_096;

/// What a restore reads: listed once at start, before anything new is
/// written (segments the running receiver closes later are not in it).
#[derive(Debug, Default)]
pub struct Plan {
    /// The data directory.
    pub dir: PathBuf,
    /// The newest checkpoint, as (the segment after it, file).
    pub checkpoint: Option<(u64, PathBuf)>,
    /// Compacted Parquet files, oldest first.
    pub files: Vec<PathBuf>,
    /// Log segments closed before this run, oldest first.
    pub segments: Vec<(u64, PathBuf)>,
}

impl Plan {
    /// The checkpoint, files and closed segments under `data_dir`; call
    /// after the log is opened (which closes the previous run's last
    /// segment).
    pub fn new(data_dir: &Path) -> Result<Plan, WalError> {
        Ok(Plan {
            dir: data_dir.to_path_buf(),
            checkpoint: checkpoint::latest(data_dir),
            files: parquet_files(data_dir),
            segments: closed_segments(data_dir)?,
        })
    }

    /// The files and segments read with the checkpoint of the segments
    /// before `next` (None: without one).
    pub fn reads(&self, next: Option<u64>) -> (&[PathBuf], &[(u64, PathBuf)]) {
        match next {
            None => (&self.files, &self.segments),
            Some(n) => (&[], &self.segments[self.segments.partition_point(|(s, _)| *s < n)..]),
        }
    }
}

/// How far a restore got, readable from any thread.
#[derive(Debug, Default)]
pub struct Progress {
    files: AtomicU64,
    files_read: AtomicU64,
    segments: AtomicU64,
    segments_read: AtomicU64,
    spans: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    /// A restore of `plan` about to start (with its checkpoint, if any).
    pub fn of(plan: &Plan) -> Progress {
        let progress = Progress::default();
        progress.plan(plan, plan.checkpoint.as_ref().map(|(t, _)| *t));
        progress
    }

    /// What is to be read, with the checkpoint of the segments before
    /// `next` (None: without one).
    fn plan(&self, plan: &Plan, next: Option<u64>) {
        let (files, segments) = plan.reads(next);
        self.files.store(files.len() as u64, Ordering::Relaxed);
        self.segments.store(segments.len() as u64, Ordering::Relaxed);
    }

    /// A restore with nothing to do: done from the start.
    pub fn finished() -> Progress {
        let progress = Progress::default();
        progress.done.store(true, Ordering::Release);
        progress
    }

    /// Whether the restore is over (finished or stopped).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Spans restored so far.
    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }

    /// While restoring: how far it got, in words.
    pub fn describe(&self) -> Option<String> {
        (!self.is_done()).then(|| {
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            format!(
                "restoring stored spans: {} of {} Parquet files and {} of {} log segments read, {} spans so far",
                load(&self.files_read),
                load(&self.files),
                load(&self.segments_read),
                load(&self.segments),
                load(&self.spans)
            )
        })
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Restored {
    /// The checkpoint read: the log segment after it.
    pub checkpoint: Option<u64>,
    /// Why the newest checkpoint was not used (everything kept was read).
    pub checkpoint_unused: Option<String>,
    /// Records at the start of the checkpoint's segment that it holds
    /// (the replay of that segment starts after them).
    pub checkpoint_records: u64,
    /// Spans of open traces the checkpoint held.
    pub checkpoint_spans: u64,
    /// Compacted Parquet files read.
    pub parquet_files: u64,
    /// Spans read from them.
    pub parquet_spans: u64,
    /// Logged requests replayed.
    pub replayed_requests: u64,
    /// Files or records that could not be read (the rest was).
    pub errors: Vec<String>,
    /// Stopped early by a shutdown.
    pub stopped: bool,
    /// Seconds it took.
    pub seconds: f64,
}

/// Reads `plan` into `live`, updating `progress`, until done or `stop` is
/// set; restored traces are analysed at `clock`'s time when the restore
/// starts, and the load ends at its time when it ends. A file that
/// cannot be read is reported, listed as unreadable in `index` and skipped; a segment's damage was reported
/// when the log was opened, so only its readable records count here.
pub fn run(
    plan: &Plan,
    live: &Mutex<Live>,
    index: &RwLock<TraceIndex>,
    clock: &dyn Clock,
    progress: &Progress,
    stop: &AtomicBool,
) -> Restored {
    let started = Instant::now();
    let mut restored = Restored::default();
    let mut loader = live.lock().expect("live lock").loader(clock.now_ms());
    // Records at the start of the checkpoint's segment that it holds.
    let mut skip = 0;
    if let Some((next, path)) = &plan.checkpoint {
        let mut live = live.lock().expect("live lock");
        let (config, like) = (*live.bucket_config(), live.empty_analyses().clone());
        match checkpoint::read(&plan.dir, (*next, path), &config, &like, &mut live.dict) {
            Ok(loaded) => {
                live.set_buckets(loaded.buckets);
                live.counters = loaded.counters;
                skip = loaded.skip;
                restored.checkpoint = Some(*next);
                restored.checkpoint_records = skip;
                restored.checkpoint_spans = loaded.open.len() as u64;
                progress.spans.fetch_add(loaded.open.len() as u64, Ordering::Relaxed);
                // The open spans were counted when they came.
                let accepted = live.counters.spans_accepted;
                for span in loaded.open {
                    live.load(&mut loader, span);
                }
                live.counters.spans_accepted = accepted;
            }
            Err(e) => {
                restored.checkpoint_unused = Some(e.to_string());
                progress.plan(plan, None);
            }
        }
    }
    let (files, segments) = plan.reads(restored.checkpoint);
    if restored.checkpoint.is_some() {
        index_files(&plan.dir, &plan.files, index, stop);
    }
    let mut batch: Vec<Span> = Vec::with_capacity(ROWS_PER_LOCK);
    for path in files {
        if stop.load(Ordering::Relaxed) {
            restored.stopped = true;
            break;
        }
        let mut spans = 0;
        let mut ids = Vec::new();
        let read = restore_file(path, live, &mut loader, &mut batch, (&mut spans, &mut ids), progress, stop);
        restored.parquet_spans += spans;
        match read {
            Ok(()) => {
                restored.parquet_files += 1;
                if !stop.load(Ordering::Relaxed) {
                    index.write().expect("index lock").add(path.clone(), &ids);
                    write_filter_of(&plan.dir, path, &ids);
                }
            }
            Err(e) => {
                // Left out of look-ups and searches from now on, and named
                // in /readyz.
                let why = format!("{}: {e}", path.display());
                index.write().expect("index lock").mark_unreadable(path.clone(), why.clone());
                restored.errors.push(why);
            }
        }
        progress.files_read.fetch_add(1, Ordering::Relaxed);
    }
    for (sequence, path) in segments {
        if restored.stopped || stop.load(Ordering::Relaxed) {
            restored.stopped = true;
            break;
        }
        let mut first_error = None;
        // The checkpoint's segment: its first records are in the checkpoint.
        let mut skip = if restored.checkpoint == Some(*sequence) { skip } else { 0 };
        let read = read_closed_segment(*sequence, path, &mut |record| {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if skip > 0 {
                skip -= 1;
                return;
            }
            let Some((&tag, body)) = record.split_first() else { return };
            let Some((encoding, ids)) = BodyEncoding::from_wal_tag(tag) else {
                first_error.get_or_insert_with(|| format!("a record with unknown tag {tag}"));
                return;
            };
            let mut live = live.lock().expect("live lock");
            let (dict, warnings) = live.convert_parts();
            match accept_bytes(body, encoding, ids, dict, warnings) {
                Ok(accepted) => {
                    restored.replayed_requests += 1;
                    progress.spans.fetch_add(accepted.spans.len() as u64, Ordering::Relaxed);
                    for span in accepted.spans {
                        live.load(&mut loader, span);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e.to_string());
                }
            }
        });
        match read {
            // Damage was reported when the log was opened.
            Ok(_) | Err(WalError::Corrupt(_)) => {}
            Err(e) => restored.errors.push(e.to_string()),
        }
        if let Some(e) = first_error {
            restored.errors.push(format!("{}: {e}", path.display()));
        }
        progress.segments_read.fetch_add(1, Ordering::Relaxed);
    }
    live.lock().expect("live lock").end_load(loader, clock.now_ms());
    restored.seconds = started.elapsed().as_secs_f64();
    progress.done.store(true, Ordering::Release);
    restored
}

/// Gives the trace index the filter of every file in `files` from its
/// sidecar; a file without one (compacted by an older tracelens, or its
/// filter lost in a crash) is read for its trace ids and gets one. Each
/// file's footer is read: one that is cut short or not Parquet is listed
/// as unreadable, as the restore that reads files whole finds it.
fn index_files(dir: &Path, files: &[PathBuf], index: &RwLock<TraceIndex>, stop: &AtomicBool) {
    for file in files {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let footer = std::fs::File::open(file).map_err(ReadErrorKind::from).and_then(|mut f| check_footer(&mut f));
        match footer {
            Err(ReadErrorKind::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue, // expired
            Err(e) => {
                let why = format!("{}: {e}", file.display());
                eprintln!("tracelens: error: restoring: {why}");
                index.write().expect("index lock").mark_unreadable(file.clone(), why);
                continue;
            }
            Ok(_) => {}
        }
        let Some(sequence) = file_sequence(file) else { continue };
        let sidecar = filter_path(dir, sequence);
        if let Ok(bytes) = std::fs::read(&sidecar)
            && index.write().expect("index lock").add_encoded(file.clone(), &bytes).is_ok()
        {
            continue;
        }
        match trace_ids_of(file) {
            Ok(ids) => {
                index.write().expect("index lock").add(file.clone(), &ids);
                write_filter_of(dir, file, &ids);
            }
            Err(e) => {
                let why = format!("{}: {e}", file.display());
                eprintln!("tracelens: error: restoring: {why}");
                index.write().expect("index lock").mark_unreadable(file.clone(), why);
            }
        }
    }
}

/// The trace ids of a compacted file's spans (a file expired meanwhile
/// has none).
fn trace_ids_of(file: &Path) -> Result<Vec<TraceId>, ReadErrorKind> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let parquet = ParquetSpans::open(bytes)?;
    let (mut dict, mut warnings, mut ids) = (Default::default(), Warnings::default(), Vec::new());
    let mut sink = |_: &tracelens_core::model::Dictionary, span: Span| {
        if ids.last() != Some(&span.trace_id) {
            ids.push(span.trace_id);
        }
    };
    let mut e =
        Emitter::new(&file.display().to_string(), &mut dict, &mut warnings, &mut sink).keep_only_attributes(&[]);
    for index in 0..parquet.row_groups() {
        let group = parquet.row_group(index)?;
        group.emit(0..group.rows(), &mut e)?;
    }
    drop(e);
    Ok(ids)
}

/// Writes the filter sidecar of a compacted file whose trace ids were read
/// (best effort: without one, the next start reads the file again).
fn write_filter_of(dir: &Path, file: &Path, ids: &[TraceId]) {
    if let Some(sequence) = file_sequence(file)
        && let Err(e) = write_filter(dir, sequence, ids)
    {
        eprintln!("tracelens: warning: the trace-id filter of {}: {e}", file.display());
    }
}

/// Restores one compacted file, a slice of rows per hold of the live lock,
/// counting its spans into `spans` and `progress` and its traces into `ids`
/// as they go; stops between slices when `stop` is set. A file expired
/// since the plan was made is skipped.
fn restore_file(
    path: &Path,
    live: &Mutex<Live>,
    loader: &mut Loader,
    batch: &mut Vec<Span>,
    (spans, ids): (&mut u64, &mut Vec<TraceId>),
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<(), ReadErrorKind> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let name = path.display().to_string();
    let file = ParquetSpans::open(bytes)?;
    for index in 0..file.row_groups() {
        let group = file.row_group(index)?;
        for start in (0..group.rows()).step_by(ROWS_PER_LOCK) {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let mut live = live.lock().expect("live lock");
            let emitted = {
                let (dict, warnings) = live.convert_parts();
                let mut e = Emitter::collecting(&name, dict, warnings, batch).keep_only_attributes(&LIVE_ATTRIBUTES);
                group.emit(start..start + ROWS_PER_LOCK, &mut e)
            };
            *spans += batch.len() as u64;
            // A trace's spans mostly come together: one id per run of them.
            for span in batch.iter() {
                if ids.last() != Some(&span.trace_id) {
                    ids.push(span.trace_id);
                }
            }
            progress.spans.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for span in batch.drain(..) {
                live.load(loader, span);
            }
            emitted?;
        }
    }
    Ok(())
}
