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
//! * [`compactor`] — the thread that compacts and expires, every interval.
//! * [`restore`] — at start, the compacted files and the earlier runs'
//!   segments are read back into live analysis.
//! * [`trace_index`] — a Bloom filter per compacted file of its trace ids.
//! * [`lookup`] — every stored span of one trace: the log's segments and
//!   the compacted files.
//! * [`search`] — trace search over the compacted files.

pub mod commit;
pub mod compact;
pub mod compactor;
pub mod lookup;
pub mod restore;
pub mod search;
pub mod trace_index;
pub mod wal;
