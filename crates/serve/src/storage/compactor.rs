//! The compaction thread: once the restore at start has read the log
//! segments it would move, compacts closed segments into Parquet every
//! interval, adds each new file's trace ids to the trace index, moves
//! damaged segments aside, and expires partitions past the retention.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

    /// One run: compaction, then expiry. Failures are reported and retried
    /// at the next run.
    fn compact_once(&self) {
        match compact::compact(&self.dir, self.reuse) {
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
