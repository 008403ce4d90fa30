//! The live side of tracelens, `tracelens serve`: OTLP/gRPC and OTLP/HTTP
//! receivers ([`server`]) over request conversion with partial success
//! ([`ingest`]), the write-ahead log that makes an acknowledged request
//! durable ([`wal`]) with group commit ([`commit`]), live analysis with the offline commands' code
//! ([`live`]) and the Prometheus endpoint ([`metrics_endpoint`]).

pub mod buckets;
pub mod commit;
pub mod compact;
pub mod gate;
pub mod ingest;
pub mod live;
pub mod metrics_endpoint;
pub mod query;
pub mod query_grpc;
pub mod query_proto;
pub mod restore;
pub mod server;
pub mod tls;
pub mod trace_index;
pub mod wal;
