//! Replaying spans to an OTLP backend (`tracelens send`): spans of any
//! dump turned back into OTLP export requests ([`encode`]), sent over
//! OTLP/gRPC or OTLP/HTTP the way an SDK exporter sends them — retrying
//! what the backend says to retry, after the delay it asks for ([`export`]);
//! or written to a Kafka topic as the Collector's `kafka` exporter writes
//! them ([`kafka`]).

pub mod encode;
pub mod export;
pub mod kafka;

pub use encode::Batcher;
pub use export::{ExportError, Exporter, Protocol, Sent};
