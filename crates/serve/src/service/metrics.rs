//! The Prometheus text of `GET /metrics`: live analysis
//! ([`crate::live::prometheus`]) and the receiver's own gauges and
//! counters — the log, the restore, the trace index.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Service;
use crate::live::prometheus;

impl Service {
    /// Every metric, in Prometheus text format 0.0.4.
    pub fn metrics_text(&self) -> String {
        let kafka = self.status().kafka;
        let mut live = self.live.lock().expect("live lock");
        let mut text = prometheus::render(&mut live);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let stats = self.log.stats();
        let _ = write!(
            text,
            "# HELP tracelens_wal_bytes_total Request bytes appended to the write-ahead log.\n# TYPE tracelens_wal_bytes_total counter\ntracelens_wal_bytes_total {}\n# HELP tracelens_wal_commits_total Group commits (fsyncs) of the write-ahead log.\n# TYPE tracelens_wal_commits_total counter\ntracelens_wal_commits_total {}\n# HELP tracelens_wal_segments_damaged_total Closed log segments with unreadable records, compacted as far as readable and moved to damaged/.\n# TYPE tracelens_wal_segments_damaged_total counter\ntracelens_wal_segments_damaged_total {}\n# HELP tracelens_wal_failures_total Appends and syncs of the write-ahead log that failed (a full disk, a failed fsync); the requests they held were refused.\n# TYPE tracelens_wal_failures_total counter\ntracelens_wal_failures_total {}\n",
            load(&stats.bytes),
            load(&stats.commits),
            load(&stats.damaged_segments),
            load(&stats.failures)
        );
        let _ = write!(
            text,
            "# HELP tracelens_restore_in_progress 1 while the spans the data directory kept are being restored into live analysis at start.\n# TYPE tracelens_restore_in_progress gauge\ntracelens_restore_in_progress {}\n# HELP tracelens_restored_spans Spans restored from the data directory since the start.\n# TYPE tracelens_restored_spans gauge\ntracelens_restored_spans {}\n",
            u8::from(!self.restoring.is_done()),
            self.restoring.spans()
        );
        let (files, bytes, unreadable) = self.stored.as_ref().map_or((0, 0, 0), |stored| {
            let index = stored.index.read().expect("index lock");
            (index.len(), index.bytes(), index.unreadable().count())
        });
        let (samples, sample_bytes) = live.samples().map_or((0, 0), |s| s.size());
        drop(live);
        let _ = write!(
            text,
            "# HELP tracelens_change_samples Trace digests kept for change detection (--change-samples-per-minute over the retention).\n# TYPE tracelens_change_samples gauge\ntracelens_change_samples {samples}\n# HELP tracelens_change_sample_bytes Their encoded size.\n# TYPE tracelens_change_sample_bytes gauge\ntracelens_change_sample_bytes {sample_bytes}\n"
        );
        if let Some(kafka) = kafka {
            kafka_metrics(&mut text, &kafka);
        }
        if let Some(budget) = &self.memory {
            let _ = write!(
                text,
                "# HELP tracelens_memory_limit_bytes The memory budget (--max-memory).\n# TYPE tracelens_memory_limit_bytes gauge\ntracelens_memory_limit_bytes {}\n# HELP tracelens_memory_resident_bytes Resident memory at the last sample (every 100 ms).\n# TYPE tracelens_memory_resident_bytes gauge\ntracelens_memory_resident_bytes {}\n# HELP tracelens_memory_refusals_total Export requests refused near the memory budget.\n# TYPE tracelens_memory_refusals_total counter\ntracelens_memory_refusals_total {}\n# HELP tracelens_memory_sheds_total Samples near the memory budget that made live analysis give back memory.\n# TYPE tracelens_memory_sheds_total counter\ntracelens_memory_sheds_total {}\n",
                budget.limit(),
                budget.resident(),
                budget.refusals(),
                budget.sheds()
            );
        }
        self.change_metrics(&mut text);
        let c = *self.checkpointed.lock().expect("checkpoint lock");
        let _ = write!(
            text,
            "# HELP tracelens_checkpoints_total Checkpoints of live analysis written.\n# TYPE tracelens_checkpoints_total counter\ntracelens_checkpoints_total {}\n# HELP tracelens_checkpoint_last_bytes Size of the last checkpoint.\n# TYPE tracelens_checkpoint_last_bytes gauge\ntracelens_checkpoint_last_bytes {}\n# HELP tracelens_checkpoint_last_seconds Time the last checkpoint took, taken, encoded and written.\n# TYPE tracelens_checkpoint_last_seconds gauge\ntracelens_checkpoint_last_seconds {}\n# HELP tracelens_checkpoint_last_pause_seconds Time exports were held between the log and live analysis for the last checkpoint.\n# TYPE tracelens_checkpoint_last_pause_seconds gauge\ntracelens_checkpoint_last_pause_seconds {}\n",
            c.written, c.bytes, c.seconds, c.paused_seconds
        );
        let _ = write!(
            text,
            "# HELP tracelens_trace_index_files Compacted files with a filter of their trace ids (files without one are read by trace look-ups).\n# TYPE tracelens_trace_index_files gauge\ntracelens_trace_index_files {files}\n# HELP tracelens_trace_index_bytes Memory of those filters.\n# TYPE tracelens_trace_index_bytes gauge\ntracelens_trace_index_bytes {bytes}\n# HELP tracelens_compacted_files_unreadable Compacted files that could not be read, left out of trace look-ups and searches (named in /readyz and the log).\n# TYPE tracelens_compacted_files_unreadable gauge\ntracelens_compacted_files_unreadable {unreadable}\n"
        );
        text
    }
}

/// A consumer-group member's series.
fn kafka_metrics(text: &mut String, k: &super::status::GroupView) {
    let counters = [
        ("rebalances_total", "Consumer-group rebalances this member went through.", k.rebalances),
        ("partials_published_total", "Partials this member published to the results topic.", k.partials_published),
        ("commit_failures_total", "Offset commits that failed (retried before the next publish).", k.commit_failures),
        ("records_total", "Records of the spans topic the group read.", k.records),
        ("records_undecodable_total", "Records that did not decode as OTLP traces (skipped).", k.records_undecodable),
        ("partials_counted_total", "Partials of the results topic counted.", k.partials_counted),
        ("partials_stale_total", "Partials published under a claim no longer current (not counted).", k.partials_stale),
        (
            "split_trace_spans_total",
            "Spans of traces seen in more than one partition (set partition_traces_by_id on the Collector's kafka exporter).",
            k.split_trace_spans,
        ),
    ];
    for (name, help, value) in counters {
        let _ = write!(
            text,
            "# HELP tracelens_kafka_{name} {help}\n# TYPE tracelens_kafka_{name} counter\ntracelens_kafka_{name} {value}\n"
        );
    }
    let _ = write!(
        text,
        "# HELP tracelens_kafka_caught_up 1 once the results topic was read up to its end as of the start.\n# TYPE tracelens_kafka_caught_up gauge\ntracelens_kafka_caught_up {}\n# HELP tracelens_kafka_consumer_lag Records of an assigned partition not yet read.\n# TYPE tracelens_kafka_consumer_lag gauge\n",
        u8::from(k.caught_up)
    );
    for (partition, lag) in &k.lag {
        let _ = writeln!(text, "tracelens_kafka_consumer_lag{{partition=\"{partition}\"}} {lag}");
    }
}
