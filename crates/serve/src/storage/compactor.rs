//! The compaction thread: once the restore at start has read the log
//! segments it would move, every interval it takes a checkpoint of live
//! analysis, compacts the closed segments the checkpoint holds into
//! Parquet, adds each new file's trace ids to the trace index, moves
//! damaged segments aside, and expires partitions past the retention. When
//! a checkpoint cannot be taken, the older ones are deleted and every
//! closed segment is compacted: the next start reads everything kept.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::checkpoint::{self, CheckpointError};
use super::commit::LogStats;
use super::compact;
use super::trace_index::TraceIndex;

/// What the compaction thread works on.
pub struct Compactor {
    /// The data directory.
    pub dir: PathBuf,
    /// Time between runs.
    pub interval: Duration,
    /// Partitions older than this are deleted.
    pub retention: Duration,
    /// Keep compacted segment files for reuse (preallocation).
    pub reuse: bool,
    /// The trace index new files are added to.
    pub index: Arc<RwLock<TraceIndex>>,
    /// Where damaged segments are counted.
    pub stats: Arc<LogStats>,
    /// Takes a checkpoint of live analysis, returning the log segment after
    /// it (None: no checkpoints, as for a member of a consumer group,
    /// whose live analysis also holds what other members sent).
    pub checkpoint: Option<Box<dyn Fn() -> Result<u64, CheckpointError> + Send>>,
}

impl Compactor {
    /// Runs until `stop` says so or its sender is dropped; starts when
    /// `restored`'s sender is dropped (the restore ended).
    pub fn run(self, restored: Receiver<()>, stop: Receiver<()>) {
        while restored.recv_timeout(Duration::from_millis(100)) == Err(RecvTimeoutError::Timeout) {
            if stop.try_recv() != Err(TryRecvError::Empty) {
                return;
            }
        }
        if stop.try_recv() != Err(TryRecvError::Empty) {
            return;
        }
        loop {
            self.compact_once();
            if stop.recv_timeout(self.interval) != Err(RecvTimeoutError::Timeout) {
                return;
            }
        }
    }

    /// One run: a checkpoint, compaction, then expiry. Failures are reported and retried
    /// at the next run.
    fn compact_once(&self) {
        let before = self.checkpoint.as_ref().and_then(|take| match take() {
            Ok(next) => Some(next),
            Err(e) => {
                eprintln!(
                    "tracelens: warning: checkpoint of live analysis: {e}; the log is compacted without one, and the next start reads everything kept"
                );
                if let Err(e) = checkpoint::remove_all(&self.dir) {
                    eprintln!("tracelens: warning: deleting the older checkpoints: {e}");
                }
                None
            }
        });
        match compact::compact(&self.dir, self.reuse, before) {
            Ok(run) => {
                let mut index = self.index.write().expect("index lock");
                for (file, ids) in run.files.iter().zip(&run.trace_ids) {
                    index.add(file.clone(), ids);
                }
                drop(index);
                if !run.files.is_empty() {
                    eprintln!("tracelens: compacted {} log segment(s) to Parquet", run.files.len());
                }
                for (moved, why) in &run.damaged {
                    eprintln!(
                        "tracelens: error: damaged log segment: {why}; its readable records were compacted and the segment moved to {}",
                        moved.display()
                    );
                    self.stats.damaged_segments.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => eprintln!("tracelens: warning: compacting the log: {e}"),
        }
        match compact::expire(&self.dir, self.retention) {
            Ok(0) => {}
            Ok(_) => self.index.write().expect("index lock").retain(&compact::parquet_files(&self.dir)),
            Err(e) => eprintln!("tracelens: warning: expiring Parquet partitions: {e}"),
        }
    }
}
