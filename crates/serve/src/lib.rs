//! # tracelens-serve
//!
//! The live side of tracelens, `tracelens serve`: an OTLP receiver that
//! analyses what it receives and answers queries and deploy gates; and
//! [`send`], which replays spans to any OTLP endpoint.
//!
//! ```text
//! transport (gRPC, HTTP, API) ──► service ──► live (analysis)
//!                                    └──────► storage (log, compaction, restore, look-ups)
//! ```
//!
//! * [`server`] — wiring on tokio: listeners, storage threads, the service,
//!   the transports; [`server::ServeConfig`].
//! * [`service`] — the transport-free service layer: export, queries,
//!   verdicts, deployments, metrics; its errors are typed.
//! * [`transport`] — one thin adapter per protocol, and the one table from
//!   errors to gRPC codes and HTTP statuses.
//! * [`storage`] — the write-ahead log, group commit, compaction to
//!   Parquet, the restore at start, trace look-ups and their index.
//! * [`live`] — live analysis with the offline commands' code, in time
//!   buckets, and its Prometheus rendering.
//! * [`cluster`] — scale-out on Kafka without the network: a partition's
//!   traces into partials, and which partials count.
//! * [`ingest`] — an OTLP request body into spans, with partial success.
//! * [`gate`] — deployment markers, verdict requests, Flagger's hooks.
//! * [`clock`] — the receiver's clock.
//! * [`query_proto`] — the generated gRPC query service.
//! * [`send`] — `tracelens send`: OTLP export over gRPC or HTTP, honouring
//!   the receiver's retry hints.

pub mod clock;
pub mod cluster;
pub mod gate;
pub mod ingest;
pub mod live;
pub mod query_proto;
pub mod send;
pub mod server;
pub mod service;
pub mod storage;
pub mod transport;
