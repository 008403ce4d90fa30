//! The receiver's service layer: what `tracelens serve` does, whatever
//! transport a request came by. It owns the shared state — live analysis,
//! the log, deployment markers, planned looks, the restore's progress —
//! and answers with model and analysis types or a [`ServiceError`]; it
//! knows nothing of tonic, axum or hyper. The adapters in
//! `transport` decode a request, call one method here and encode
//! the answer, mapping errors to statuses in one table
//! (`transport::status`).
//!
//! * [`export`] — OTLP export: admission (rate, in-flight), conversion
//!   with partial success, the log, live analysis.
//! * [`query`] — graph, operations, bottlenecks, one trace, trace search
//!   and the web UI's report.
//! * [`gate`] — verdicts (with planned looks), Flagger's hooks, deployment
//!   markers.
//! * [`memory`] — the memory budget (`--max-memory`).
//! * [`metrics`] — the Prometheus text of `/metrics`.
//! * [`status`] — `/api/v1/status`: counters, and a consumer group's state.
//!
//! Its unit tests (`tests.rs`) drive it without a listener, on a clock set
//! by hand.

pub mod changes;
pub mod export;
pub mod gate;
pub mod memory;
pub mod metrics;
pub mod query;
pub mod status;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::clock::Clock;
use super::gate::{Deployments, GateError, LookBook};
use super::ingest::DecodeError;
use super::live::Live;
use super::storage::checkpoint::{self, CheckpointError};
use super::storage::commit::{GroupCommit, LogFailure};
use super::storage::lookup::{LookupError, Stored};
use super::storage::restore::Progress;

pub use export::RateLimit;
pub use query::{Filter, Partial, SearchAnswer, SearchRequest};

/// Why the service refused or failed a request. Each variant maps to one
/// gRPC code and one HTTP status (`transport::status`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// More requests in flight than allowed; retry after a second.
    #[error("tracelens is at capacity; retry later")]
    Overloaded,
    /// Over `--max-requests-per-second`; retry after a second.
    #[error("request rate over --max-requests-per-second; retry later")]
    RateLimited,
    /// Resident memory is near `--max-memory`; retry after a second.
    #[error("tracelens is near its memory limit ({resident} of {limit} bytes resident); retry later")]
    OverMemory {
        /// Resident memory at the last sample, bytes.
        resident: u64,
        /// `--max-memory`, bytes.
        limit: u64,
    },
    /// The request body is larger than allowed.
    #[error("request over the {limit}-byte limit")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The request body does not decode as OTLP.
    #[error(transparent)]
    Undecodable(#[from] DecodeError),
    /// The log could not take the request (nothing was acknowledged).
    #[error("write-ahead log: {0}")]
    Log(#[source] LogFailure),
    /// A query or gate request is wrong.
    #[error(transparent)]
    BadRequest(#[from] RequestError),
    /// A verdict request or deployment marker is wrong, or the markers file
    /// failed.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// No such trace.
    #[error(
        "trace {0} is not among the spans received (nothing with this id arrived, or it is older than the retention)"
    )]
    TraceNotFound(tracelens_core::model::TraceId),
    /// No such trace among the recent ones (no data directory to read).
    #[error("trace {0} is not among the recently completed traces")]
    TraceNotRecent(tracelens_core::model::TraceId),
    /// Reading stored spans failed.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A background task of the service failed.
    #[error("{0}")]
    Task(#[source] tokio::task::JoinError),
    /// A partial merged from the group's results topic does not hold
    /// together.
    #[error("a partial of the results topic: {0}")]
    Partial(#[source] tracelens_core::analysis::portable::PortableError),
}

/// What is wrong with a query or gate request, in the caller's terms.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `since`/`until` do not parse, or are out of order.
    #[error("{0}")]
    Range(#[from] super::live::buckets::RangeError),
    /// The path's trace id is not one.
    #[error("{0:?} is not a trace id")]
    TraceId(String),
    /// The judge cannot answer this request over what was received (an
    /// unknown service or version).
    #[error(transparent)]
    Judge(#[from] tracelens_core::judge::NotInInput),
    /// A Flagger webhook body that does not parse.
    #[error("not a Flagger webhook payload: {0}")]
    Flagger(#[source] serde_json::Error),
    /// A deployment body that does not parse.
    #[error("a deployment is {{\"service\", \"version\", \"time\"}}: {0}")]
    Deployment(#[source] serde_json::Error),
    /// A trace search's parameter does not parse.
    #[error("{0}")]
    Search(String),
    /// The query string does not parse (a parameter given twice, say).
    #[error("query string: {0}")]
    Query(String),
    /// A change-detection request's window or baseline is wrong.
    #[error("{0}")]
    Changes(String),
}

/// What the service is built from (see [`Service::new`]).
pub struct Parts {
    /// Live analysis.
    pub live: Arc<Mutex<Live>>,
    /// The restore of what the data directory kept (done if nothing).
    pub restoring: Arc<Progress>,
    /// Deployment markers.
    pub deployments: Deployments,
    /// The log every accepted request goes to.
    pub log: GroupCommit,
    /// The data directory trace look-ups read (None: recent traces only).
    pub stored: Option<Stored>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Limits and retention.
    pub limits: Limits,
    /// As a member of a Kafka consumer group, its status.
    pub group: Option<Arc<crate::cluster::GroupStatus>>,
}

/// Admission limits and retention.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request accepted, after decompression.
    pub max_request_bytes: usize,
    /// Requests handled at once before new ones are told to retry.
    pub max_in_flight: usize,
    /// Export requests accepted per second (None: no limit).
    pub max_requests_per_second: Option<f64>,
    /// How long what was received is kept (deployment markers older than
    /// it expire).
    pub retention: Duration,
    /// The memory budget, bytes (see [`memory`]; None: none).
    pub max_memory: Option<u64>,
}

/// What the last checkpoint was, for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
struct Checkpointed {
    /// The log's position it was taken at.
    position: Option<(u64, u64)>,
    /// Checkpoints written since the start.
    written: u64,
    /// Its size.
    bytes: u64,
    /// How long taking, encoding and writing it took.
    seconds: f64,
    /// How long exports were held between the log and live analysis.
    paused_seconds: f64,
}

/// The receiver's service: cheap to share behind an [`Arc`].
pub struct Service {
    live: Arc<Mutex<Live>>,
    /// Held (shared) by an export from before its record is appended to the
    /// log until its spans are in live analysis; a checkpoint holds it
    /// alone, so that the log and live analysis agree (see
    /// [`Service::checkpoint`]).
    checkpoint_gate: tokio::sync::RwLock<()>,
    /// The last checkpoint written.
    checkpointed: Mutex<Checkpointed>,
    /// The last background change detection (for `/metrics`).
    detected: Mutex<changes::Detected>,
    restoring: Arc<Progress>,
    deployments: Mutex<Deployments>,
    looks: Mutex<LookBook>,
    log: GroupCommit,
    in_flight: Semaphore,
    rate_limit: Option<RateLimit>,
    memory: Option<memory::MemoryBudget>,
    stored: Option<Stored>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    group: Option<Arc<crate::cluster::GroupStatus>>,
}

impl Service {
    /// The service over `parts`.
    pub fn new(parts: Parts) -> Service {
        Service {
            in_flight: Semaphore::new(parts.limits.max_in_flight.max(1)),
            rate_limit: parts.limits.max_requests_per_second.map(RateLimit::new),
            memory: parts.limits.max_memory.map(memory::MemoryBudget::new),
            live: parts.live,
            checkpoint_gate: tokio::sync::RwLock::new(()),
            checkpointed: Mutex::new(Checkpointed::default()),
            detected: Mutex::new(changes::Detected::default()),
            restoring: parts.restoring,
            deployments: Mutex::new(parts.deployments),
            looks: Mutex::new(LookBook::default()),
            log: parts.log,
            stored: parts.stored,
            clock: parts.clock,
            limits: parts.limits,
            group: parts.group,
        }
    }

    /// Writes a checkpoint of live analysis (see
    /// [`crate::storage::checkpoint`]) under `data_dir`; returns the log
    /// segment being written when it was taken (every older segment is
    /// wholly in it). Exports wait between the log and live analysis while
    /// the log's position and the live state are taken (a clone of shared
    /// buckets and of the open spans); the file is encoded and written
    /// after. When nothing was logged since the last one, that one stands
    /// (what a restore would make of either is the same). Call from a
    /// thread outside the runtime.
    pub fn checkpoint(&self, data_dir: &std::path::Path) -> Result<u64, CheckpointError> {
        let mut checkpointed = self.checkpointed.lock().expect("checkpoint lock");
        if let Some(position) = checkpointed.position
            && self.log.position()? == position
        {
            return Ok(position.0);
        }
        let started = std::time::Instant::now();
        let (position, snapshot, config, paused) = {
            let _alone = self.checkpoint_gate.blocking_write();
            let paused = std::time::Instant::now();
            let position = self.log.position()?;
            let live = self.live.lock().expect("live lock");
            (position, live.snapshot(), *live.bucket_config(), paused)
        };
        let paused = paused.elapsed();
        let bytes = checkpoint::encode(&snapshot, &config, position)?;
        checkpoint::write(data_dir, position.0, &bytes)?;
        *checkpointed = Checkpointed {
            position: Some(position),
            written: checkpointed.written + 1,
            bytes: bytes.len() as u64,
            seconds: started.elapsed().as_secs_f64(),
            paused_seconds: paused.as_secs_f64(),
        };
        Ok(position.0)
    }

    /// The largest request accepted, after decompression.
    pub fn max_request_bytes(&self) -> usize {
        self.limits.max_request_bytes
    }

    /// Takes a sample of the process's resident memory (bytes), when there
    /// is a memory budget: near it, live analysis sheds what it holds.
    pub fn observe_memory(&self, resident: u64) {
        if let Some(budget) = &self.memory
            && budget.observe(resident)
        {
            self.live.lock().expect("live lock").shed(self.clock.now_ms());
        }
    }

    /// Whether there is a memory budget to sample for.
    pub fn has_memory_budget(&self) -> bool {
        self.memory.is_some()
    }

    /// While stored spans are being restored: how far it got, in words
    /// (answers meanwhile are partial).
    pub fn restoring(&self) -> Option<String> {
        self.restoring.describe()
    }

    /// The readiness answer (`Err`: not ready, and why): ready as soon as
    /// it listens, with notes on what is still partial or left out (stored
    /// spans being restored, unreadable compacted files, a failed write to
    /// the log); not ready while a member of a consumer group has not read
    /// the group's results topic up to its end as of the start, near the
    /// memory budget (see [`memory`]), and for
    /// [`LOG_FAILURE_NOT_READY`] after a write to the log failed (a full
    /// disk, a failed sync) with none working since, so that a load
    /// balancer sends requests elsewhere meanwhile.
    pub fn readiness(&self) -> Result<String, String> {
        if let Some(group) = &self.group
            && !group.caught_up.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err("not ready: reading the group's results topic".to_string());
        }
        if let Some(budget) = self.memory.as_ref().filter(|b| b.is_pressed()) {
            return Err(format!(
                "not ready: near the memory limit, {} of {} bytes resident",
                budget.resident(),
                budget.limit()
            ));
        }
        let log_failure = self.log.stats().last_failure();
        if let Some((ago, why)) = &log_failure
            && *ago < LOG_FAILURE_NOT_READY
        {
            return Err(format!("not ready: the log could not be written {} s ago: {why}", ago.as_secs()));
        }
        let log_note = log_failure.map(|(ago, why)| {
            format!("the last write to the log, {} s ago, failed and none was tried since: {why}", ago.as_secs())
        });
        let mut ready = "ready".to_string();
        for note in [self.restoring(), self.stored.as_ref().and_then(|s| s.describe_unreadable()), log_note]
            .into_iter()
            .flatten()
        {
            ready.push_str("; ");
            ready.push_str(&note);
        }
        Ok(ready)
    }

    /// Completes traces idle for the configured time (call every 100 ms).
    pub fn tick(&self) {
        let now = self.clock.now_ms();
        self.live.lock().expect("live lock").tick(now);
    }

    /// Markers recorded before this (unix ns) are older than the retention.
    fn marker_horizon(&self) -> u64 {
        self.clock.now_ns().saturating_sub(self.limits.retention.as_nanos().min(u64::MAX as u128) as u64)
    }
}

/// How long after a failed write to the log `/readyz` says not ready.
pub const LOG_FAILURE_NOT_READY: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests;
