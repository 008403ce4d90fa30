//! The receiver's storage engine: what makes an acknowledged span durable
//! and what reads it back. Nothing here knows of transports or of the
//! service layer.
//!
//! * [`wal`] — the write-ahead log: segment files of length-prefixed,
//!   checksummed records (each an OTLP request as it came).
//! * [`commit`] — group commit: request handlers append, one thread syncs
//!   and answers every request a sync covers.
//! * [`compact`] — closed log segments become Parquet files of the spans
//!   table, partitioned by hour, expired after the retention period.
//! * [`checkpoint`] — live analysis of the log's segments before one,
//!   written before each compaction run, so a restart replays only the
//!   segments after it.
//! * [`compactor`] — the thread that checkpoints, compacts and expires,
//!   every interval.
//! * [`restore`] — at start, the newest checkpoint and the segments after
//!   it (without a usable checkpoint, the compacted files and every
//!   segment) are read back into live analysis.
//! * [`trace_index`] — a Bloom filter per compacted file of its trace ids.
//! * [`lookup`] — every stored span of one trace: the log's segments and
//!   the compacted files.
//! * [`search`] — trace search over the compacted files.

pub mod checkpoint;
pub mod commit;
pub mod compact;
pub mod compactor;
pub mod lookup;
pub mod restore;
pub mod search;
pub mod trace_index;
pub mod wal;
