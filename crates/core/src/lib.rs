//! # tracelens-core
//!
//! The core of tracelens: everything that turns trace dumps into answers
//! without an async runtime, a network or polars. The data flow is visible
//! from the module tree:
//!
//! ```text
//! read (dump readers) ──► model::Span ──► assemble::Assembler ──► analysis (summaries)
//! ```
//!
//! * [`model`] — the span model: fixed-size ids, interned names, resources,
//!   attributes, warnings. No I/O.
//! * [`read`] — format detection and one reader per dump format (OTLP JSON
//!   and protobuf, Jaeger JSON, Zipkin v2 JSON), with transparent gzip/zstd
//!   decompression. Readers stream: they emit spans as they decode them.
//!   Parquet is read by `tracelens-table`, plugged in through
//!   [`read::ReadOptions::parquet`].
//! * [`assemble`] — groups spans into traces and repairs what real dumps get
//!   wrong (duplicate ids, Zipkin shared spans, orphans, parent cycles).
//! * [`analysis`] — analyses over assembled traces; each produces a
//!   mergeable summary.
//! * [`judge`] — regression verdicts and diffs over two arms of traces.
//! * [`partial`] — what one process learned, as protobuf another merges
//!   exactly (`analyze --partial`, `merge`, Kafka instances).
//! * [`pipeline`] — the offline run every analysis command shares: read
//!   inputs, assemble across them, hand each trace to an analysis.
//! * [`generate`] — synthetic workloads from a seeded system model.
//! * [`render`] — text output: tables, durations, counts.
//! * [`search`] — trace search: the criteria and the summary row of a trace.
//!
//! Reading a dump and summarising it takes a reader, the assembler and an
//! analysis:
//!
//! ```
//! use tracelens_core::analysis::Summary;
//! use tracelens_core::assemble::assemble_all;
//! use tracelens_core::model::{Dictionary, Warnings};
//! use tracelens_core::read::{ReadOptions, read_spans};
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
//! # Ok::<(), tracelens_core::read::ReadError>(())
//! ```
//!
//! Domain code (`model`, `assemble`, `analysis`, `judge`) knows nothing of
//! files or the command line; files are opened at the edges (`read`,
//! `pipeline`). The crate depends on neither tokio, tonic, axum nor polars:
//! its tests build without them.

pub mod analysis;
pub mod assemble;
pub mod generate;
pub mod judge;
pub mod model;
pub mod partial;
pub mod pipeline;
pub mod read;
pub mod render;
pub mod search;
