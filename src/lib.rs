//! # tracelens
//!
//! tracelens turns distributed traces into answers. This library holds
//! everything the `tracelens` binary does, split so that the data flow is
//! visible from the module tree:
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
//! * [`assemble`] — groups spans into traces and repairs what real dumps get
//!   wrong (duplicate ids, Zipkin shared spans, orphans, parent cycles).
//! * [`analysis`] — analyses over assembled traces; each produces a
//!   mergeable summary.
//!
//! Domain code (`model`, `assemble`, `analysis`) knows nothing of files,
//! async runtimes or the command line; those live at the edges (`read`, the
//! binary).

pub mod analysis;
pub mod assemble;
pub mod model;
pub mod pipeline;
pub mod read;
pub mod render;
