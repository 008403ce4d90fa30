//! # tracelens
//!
//! tracelens turns distributed traces into answers. This crate is the
//! `tracelens` binary and a facade over the workspace crates that do the
//! work, which enforce the layers by their dependencies:
//!
//! ```text
//! tracelens-core   model, read (all but Parquet), assemble, analysis, judge, generate, render, pipeline
//!      ▲      ▲
//!      │   tracelens-table   polars tables; Parquet written and read
//!      │      ▲
//! tracelens-serve   the OTLP receiver (service, transports, storage, live analysis) and the sender
//!      ▲
//! tracelens         the command line (this crate)
//! ```
//!
//! The core depends on neither tokio, tonic, axum nor polars; only the
//! receiver knows of the network, and only the table crate of polars.
//!
//! * [`model`], [`read`], [`assemble`], [`analysis`], [`judge`], [`partial`],
//!   [`generate`], [`render`], [`pipeline`] — from `tracelens-core`
//!   ([`read`] also holds the Parquet reader of `tracelens-table`).
//! * [`table`] — `tracelens-table`.
//! * [`serve`], [`send`] — `tracelens-serve`.
//!
//! Reading a dump and summarising it takes a reader, the assembler and an
//! analysis:
//!
//! ```
//! use tracelens::analysis::Summary;
//! use tracelens::assemble::assemble_all;
//! use tracelens::model::{Dictionary, Warnings};
//! use tracelens::read::{ReadOptions, read_spans};
//!
//! let zipkin = br#"[
//!   {"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c", "name": "get /api",
//!    "kind": "SERVER", "timestamp": 1472470996199000, "duration": 207000,
//!    "localEndpoint": {"serviceName": "backend"}},
//!   {"traceId": "5af7183fb1d4cf5f", "id": "352bff9a74ca9ad2", "parentId": "6b221d5bc9e6496c",
//!    "name": "query", "kind": "CLIENT", "timestamp": 1472470996238000, "duration": 50000,
//!    "localEndpoint": {"serviceName": "backend"}, "tags": {"error": "timeout"}}
//! ]"#;
//! let mut dict = Dictionary::default();
//! let mut warnings = Warnings::default();
//! let mut spans = Vec::new();
//! let report = read_spans("example.json", &zipkin[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s))?;
//! assert_eq!(report.format.name(), "zipkin-json");
//!
//! let (traces, _assembly_warnings) = assemble_all(spans);
//! let mut summary = Summary::default();
//! for trace in &traces {
//!     summary.add_trace(trace);
//! }
//! assert_eq!((summary.spans, summary.traces, summary.error_spans), (2, 1, 1));
//! assert_eq!(summary.service_names(&dict), ["backend"]);
//! assert_eq!(traces[0].parent(1), Some(0));
//! # Ok::<(), tracelens::read::ReadError>(())
//! ```
//!
pub use tracelens_core::{analysis, assemble, generate, judge, model, partial, pipeline, render};
pub use tracelens_serve::{self as serve, send};
pub use tracelens_table as table;

/// Reading trace dumps: [`tracelens_core::read`], with the Parquet reader
/// of [`tracelens_table::parquet`].
pub mod read {
    pub use tracelens_core::read::*;
    pub use tracelens_table::parquet::{ParquetSpans, RowGroup};
}
