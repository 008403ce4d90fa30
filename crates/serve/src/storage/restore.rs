//! Restoring live analysis at start from what the data directory keeps:
//! the compacted Parquet files, then the log segments an earlier run
//! closed, read in the order their spans were received. It runs on a
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

use super::compact::parquet_files;
use super::trace_index::TraceIndex;
use super::wal::{WalError, closed_segments, read_closed_segment};
use crate::clock::Clock;
use crate::ingest::{BodyEncoding, LIVE_ATTRIBUTES, accept_bytes};
use crate::live::{Live, Loader};
use tracelens_core::model::{Span, TraceId};
use tracelens_core::read::{Emitter, ReadErrorKind};
use tracelens_table::parquet::ParquetSpans;

/// Rows turned into spans per hold of the live lock.
const ROWS_PER_LOCK: usize = 4_096;

/// What a restore reads: listed once at start, before anything new is
/// written (segments the running receiver closes later are not in it).
#[derive(Debug, Default)]
pub struct Plan {
    /// Compacted Parquet files, oldest first.
    pub files: Vec<PathBuf>,
    /// Log segments closed before this run, oldest first.
    pub segments: Vec<(u64, PathBuf)>,
}

impl Plan {
    /// The files and closed segments under `data_dir`; call after the log
    /// is opened (which closes the previous run's last segment).
    pub fn new(data_dir: &Path) -> Result<Plan, WalError> {
        Ok(Plan { files: parquet_files(data_dir), segments: closed_segments(data_dir)? })
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
    /// A restore of `plan` about to start.
    pub fn of(plan: &Plan) -> Progress {
        let progress = Progress::default();
        progress.files.store(plan.files.len() as u64, Ordering::Relaxed);
        progress.segments.store(plan.segments.len() as u64, Ordering::Relaxed);
        progress
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
    let mut batch: Vec<Span> = Vec::with_capacity(ROWS_PER_LOCK);
    for path in &plan.files {
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
    for (sequence, path) in &plan.segments {
        if restored.stopped || stop.load(Ordering::Relaxed) {
            restored.stopped = true;
            break;
        }
        let mut first_error = None;
        let read = read_closed_segment(*sequence, path, &mut |record| {
            if stop.load(Ordering::Relaxed) {
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
