//! Analyses over assembled traces. Each consumes [`crate::model::Trace`]s
//! through `add_trace` and produces a summary that merges exactly, so a
//! file, a time bucket or a whole run are the same type.
//!
//! * [`summary`] — spans, traces, services, time range, errors.
//! * [`graph`] — the service dependency graph.
//! * [`metrics`] — span metrics: calls, errors, latency per operation.
//! * [`histogram`] — HDR latency histograms, mergeable exactly.
//! * [`critical_path`] — the critical path of one trace.
//! * [`clock_skew`] — Jaeger's clock-skew adjustment, before the path.
//! * [`bottleneck`] — critical-path time over many traces, and patterns.
//! * [`recommend`] — the patterns as advice, with evidence and savings.
//! * [`per_trace`] — [`TraceAnalyses`], the set run on every trace by
//!   `analyze` and by each live bucket.
//! * [`portable`] — analyses as protobuf messages with their names, to
//!   merge in another process (Kafka instances, `tracelens merge`).

pub mod bottleneck;
pub mod clock_skew;
pub mod critical_path;
pub mod graph;
pub mod histogram;
pub mod metrics;
pub mod per_trace;
pub mod portable;
pub mod recommend;
pub mod summary;

pub use bottleneck::Bottlenecks;

/// The span, event and link attribute keys the analyses read: the service
/// graph's peer, database and messaging keys and the judge's exception
/// type and message (a span's status, kind, names and its resource's
/// service and version are fields, not attributes). A reader told to keep
/// only these ([`crate::read::ReadOptions::keep_attributes`]) gives every
/// analysis the same answer without allocating the rest.
pub const ATTRIBUTES_READ: [&str; 12] = [
    "peer.service",
    "server.address",
    "network.peer.address",
    "network.peer.port",
    "db.namespace",
    "db.name",
    "db.system",
    "db.system.name",
    "messaging.system",
    "messaging.destination.name",
    "exception.type",
    "exception.message",
];
pub use graph::ServiceGraph;
pub use histogram::{LatencyHistogram, LatencySummary};
pub use metrics::SpanMetrics;
pub use per_trace::TraceAnalyses;
pub use summary::Summary;
