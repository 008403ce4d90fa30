//! `tracelens serve` wired together on tokio: binds the listeners, opens
//! the data directory, starts the storage threads (group commit,
//! compaction, the restore), builds the [`Service`] and mounts the
//! transports on it.
//!
//! Every accepted request is converted, appended to the log (and synced)
//! and only then acknowledged: see [`super::service::export`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::clock::{Clock, SystemClock};
use super::cluster::{GroupStatus, PartialConfig};
use super::gate::{Deployments, GateError};
use super::live::{Live, LiveConfig};
use super::query_proto::query_service_server::{QueryServiceServer, SERVICE_NAME as QUERY_SERVICE_NAME};
use super::service::{Limits, Parts, Service};
use super::storage::checkpoint::CheckpointError;
use super::storage::commit::{COMMIT_WAIT, CommitConfig, GroupCommit, IdleHook, LogFailure, LogStats};
use super::storage::compact;
use super::storage::compactor::Compactor;
use super::storage::lookup::Stored;
use super::storage::restore::{self, Plan, Progress};
use super::storage::wal::{SyncPolicy, Wal, WalConfig, WalError};
use super::transport::kafka::{self, KafkaConfig, KafkaError};
use super::transport::tls::Incoming;
use super::transport::{Auth, api_http, otlp_grpc, otlp_http, query_grpc};

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// OTLP/gRPC listener.
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP listener.
    pub http_addr: SocketAddr,
    /// Query API listener.
    pub api_addr: SocketAddr,
    /// Write-ahead log directory.
    pub data_dir: PathBuf,
    /// Largest request accepted, after decompression.
    pub max_request_bytes: usize,
    /// Requests handled at once before new ones are told to retry.
    pub max_in_flight: usize,
    /// Live analysis.
    pub live: LiveConfig,
    /// Fsync policy of the log.
    pub sync: SyncPolicy,
    /// Start log segments from preallocated files, and keep compacted ones
    /// for reuse (see [`WalConfig::preallocate`]).
    pub preallocate: bool,
    /// Bearer tokens every ingest and API request must carry one of (none:
    /// requests need no token).
    pub auth_tokens: Vec<String>,
    /// Closed log segments older than this are deleted.
    pub retention: Duration,
    /// Export requests accepted per second, over both protocols (None: no limit).
    pub max_requests_per_second: Option<f64>,
    /// The memory budget, bytes (see [`crate::service::memory`]; None: none).
    pub max_memory: Option<u64>,
    /// TLS on every listener, if set (see [`super::transport::tls::server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Size at which a log segment is closed (and then compacted to Parquet).
    pub segment_bytes: u64,
    /// How often closed log segments are compacted to Parquet.
    pub compact_interval: Duration,
    /// How often change detection runs for `/metrics` (None: never).
    pub changes_interval: Option<Duration>,
    /// As a member of a Kafka consumer group: the group's settings.
    pub kafka: Option<KafkaConfig>,
    /// Whether the OTLP gRPC and HTTP listeners are on.
    pub otlp: bool,
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The log could not be opened or replayed.
    #[error("write-ahead log")]
    Wal(#[from] WalError),
    /// A listener could not be bound or failed.
    #[error("{flag} {addr}")]
    Listen {
        /// The setting that gave the address (`--grpc-addr`, …).
        flag: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The deployment markers could not be read.
    #[error("deployment markers")]
    Deployments(#[from] GateError),
    /// A listener's server failed.
    #[error("serving {flag}")]
    Serve {
        /// The listener's setting.
        flag: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A listener's task panicked or was cancelled.
    #[error("serving {flag}")]
    Task {
        /// The listener's setting.
        flag: &'static str,
        /// The error.
        source: tokio::task::JoinError,
    },
    /// A background thread could not be started.
    #[error("starting the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
    /// The Kafka transport stopped.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// What opening the log at start found, and what is left to restore.
#[derive(Clone, Debug, Default)]
pub struct Startup {
    /// The checkpoint to restore first: the log segment after it.
    pub checkpoint: Option<u64>,
    /// Compacted Parquet files to restore, in the background.
    pub parquet_files: u64,
    /// Log segments of earlier runs to replay, in the background.
    pub log_segments: u64,
    /// A torn last record cut off.
    pub torn: Option<String>,
    /// Corrupt records reported.
    pub corrupt: Vec<String>,
}

/// Opens the log (closing the previous run's last segment) and lists what
/// the data directory keeps, for [`restore::run`] to read.
fn recover(config: &ServeConfig) -> Result<(Live, Wal, Startup, Plan), ServeError> {
    // Partitions past the retention period are not read.
    if let Err(e) = compact::expire(&config.data_dir, config.retention) {
        eprintln!("tracelens: warning: expiring Parquet partitions: {e}");
    }
    let (wal, opened) = Wal::open(WalConfig {
        sync: config.sync,
        segment_bytes: config.segment_bytes,
        preallocate: config.preallocate,
        ..WalConfig::new(&config.data_dir)
    })?;
    let plan = Plan::new(&config.data_dir)?;
    let checkpoint = plan.checkpoint.as_ref().map(|(next, _)| *next);
    let (files, segments) = plan.reads(checkpoint);
    let startup = Startup {
        checkpoint,
        parquet_files: files.len() as u64,
        log_segments: segments.len() as u64,
        torn: opened.torn.map(|d| format!("{} at byte {}: {}", d.segment.display(), d.offset, d.reason)),
        corrupt: opened
            .corrupt
            .iter()
            .map(|d| format!("{} at byte {}: {}", d.segment.display(), d.offset, d.reason))
            .collect(),
    };
    Ok((Live::new(config.live), wal, startup, plan))
}

/// The listeners, bound: OTLP gRPC and HTTP (unless switched off) and the
/// API.
struct Listeners {
    bound: Vec<(&'static str, TcpListener, SocketAddr)>,
}

/// The settings that name each listener.
const FLAGS: [&str; 3] = ["--grpc-addr", "--http-addr", "--api-addr"];

impl Listeners {
    /// Binds every listener; a port in use names its flag.
    async fn bind(config: &ServeConfig) -> Result<Listeners, ServeError> {
        let wanted = [config.grpc_addr, config.http_addr, config.api_addr];
        let mut bound = Vec::with_capacity(3);
        for (flag, addr) in FLAGS.into_iter().zip(wanted) {
            if !config.otlp && flag != "--api-addr" {
                continue;
            }
            let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Listen { flag, addr, source })?;
            let local = listener.local_addr().map_err(|source| ServeError::Listen { flag, addr, source })?;
            bound.push((flag, listener, local));
        }
        Ok(Listeners { bound })
    }

    /// The bound addresses: OTLP gRPC, OTLP HTTP (None when switched off), API.
    fn addrs(&self) -> [Option<SocketAddr>; 3] {
        FLAGS.map(|flag| self.bound.iter().find(|(f, _, _)| *f == flag).map(|(_, _, a)| *a))
    }

    /// Serves the transports on the listeners until `stop` turns true.
    fn serve(
        self,
        service: &Arc<Service>,
        config: &ServeConfig,
        stop: &watch::Receiver<bool>,
    ) -> Result<Vec<(&'static str, ServeTask)>, ServeError> {
        let auth = Auth::new(&config.auth_tokens);
        let mut tasks = Vec::with_capacity(3);
        for (flag, listener, addr) in self.bound {
            let router = match flag {
                "--grpc-addr" => otlp_grpc::router(service.clone(), auth.clone()),
                "--http-addr" => otlp_http::router(service.clone(), auth.clone()),
                _ => {
                    let query = QueryServiceServer::new(query_grpc::QueryApi(service.clone()));
                    api_http::router(
                        service.clone(),
                        auth.clone(),
                        &format!("/{QUERY_SERVICE_NAME}/{{*method}}"),
                        query,
                    )
                }
            };
            let incoming = Incoming::new(listener, config.tls.clone()).map_err(|source| ServeError::Listen {
                flag,
                addr,
                source,
            })?;
            let mut stop = stop.clone();
            let stopped = async move {
                let _ = stop.wait_for(|v| *v).await;
            };
            let server = axum::serve(incoming, router.into_make_service()).with_graceful_shutdown(stopped);
            tasks.push((flag, tokio::spawn(server.into_future())));
        }
        Ok(tasks)
    }
}

/// A listener's server.
type ServeTask = JoinHandle<std::io::Result<()>>;

/// Opens the deployment markers, expiring those past the retention.
fn open_deployments(config: &ServeConfig, clock: &dyn Clock) -> Result<Deployments, ServeError> {
    let (mut deployments, _) = Deployments::open(&config.data_dir)?;
    let horizon = clock.now_ns().saturating_sub(config.retention.as_nanos().min(u64::MAX as u128) as u64);
    if let Err(e) = deployments.expire(horizon) {
        eprintln!("tracelens: warning: expiring deployment markers: {e}");
    }
    Ok(deployments)
}

/// The Kafka transport's future, with the live settings it publishes by.
fn spawn_kafka(
    kafka: KafkaConfig,
    config: &ServeConfig,
    service: Arc<Service>,
    live: Arc<Mutex<Live>>,
    clock: Arc<dyn Clock>,
    group: Arc<GroupStatus>,
    stop: watch::Receiver<bool>,
) -> impl std::future::Future<Output = Result<(), KafkaError>> + Send + 'static {
    let partials = PartialConfig {
        buckets: config.live.bucket_config(),
        max_operations: config.live.max_operations,
        max_open_spans: config.live.max_open_spans,
    };
    let parts = kafka::Parts { service, live, partials, idle_ms: config.live.idle_ms, clock, status: group };
    kafka::run(kafka, parts, stop)
}

/// Completes idle traces every 100 ms, and samples resident memory for
/// the memory budget every 25 ms if there is one, until `stop` turns true.
fn spawn_ticker(service: Arc<Service>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(25));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if service.has_memory_budget()
                        && let Some(resident) = resident_bytes()
                    {
                        service.observe_memory(resident);
                    }
                    ticks += 1;
                    if ticks % 4 == 0 {
                        service.tick();
                    }
                }
                _ = stop.wait_for(|v| *v) => break,
            }
        }
    })
}

/// Runs change detection over the kept traces every `every` (the default
/// window against its default baseline) for `/metrics`, until `stop`.
fn spawn_change_detection(service: Arc<Service>, every: Duration, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopped = tokio::select! {
                _ = interval.tick() => false,
                _ = stop.wait_for(|v| *v) => true,
            };
            if stopped {
                break;
            }
            service.detect_changes().await;
        }
    })
}

/// The process's resident memory (`VmRSS` of `/proc/self/status`), bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

fn spawn_thread(
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    std::thread::Builder::new().name(format!("tracelens-{name}")).spawn(f).map_err(|e| ServeError::Thread(name, e))
}

/// Runs the server until `shutdown` resolves. `idle` is the runtime's park
/// hook, if it was built with one (see [`IdleHook`]). `on_ready` is called
/// with the bound addresses (OTLP gRPC, OTLP HTTP — None when switched off —
/// and the API) and what opening the log found once everything listens;
/// `on_restored`, on the restore's thread, once what the data
/// directory kept is restored into live analysis (or the restore stopped).
pub async fn run(
    config: ServeConfig,
    idle: Option<IdleHook>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce([Option<SocketAddr>; 3], &Startup),
    on_restored: impl FnOnce(&restore::Restored) + Send + 'static,
) -> Result<(), ServeError> {
    // Listeners first: a port in use is reported before anything is
    // created on disk.
    let listeners = Listeners::bind(&config).await?;
    let addrs = listeners.addrs();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (live, wal, startup, plan) = tokio::task::block_in_place(|| recover(&config))?;
    let restoring = Arc::new(Progress::of(&plan));
    let live = Arc::new(Mutex::new(live));
    let deployments = open_deployments(&config, &*clock)?;
    let log_stats = Arc::new(LogStats::default());
    let commit = CommitConfig { retention: config.retention, commit_wait: COMMIT_WAIT };
    let (log, syncer) = GroupCommit::start(wal, commit, log_stats.clone(), idle.as_ref())
        .map_err(|e| ServeError::Thread("log sync", e))?;
    let stored = Stored { dir: config.data_dir.clone(), index: Arc::default() };
    // Compaction starts once the restore has read the segments it would move.
    let (restored_tx, restored_rx) = std::sync::mpsc::channel::<()>();
    let (compact_stop, compact_rx) = std::sync::mpsc::channel::<()>();
    let limits = Limits {
        max_request_bytes: config.max_request_bytes,
        max_in_flight: config.max_in_flight,
        max_requests_per_second: config.max_requests_per_second,
        retention: config.retention,
        max_memory: config.max_memory,
    };
    let group = config.kafka.as_ref().map(|_| Arc::new(GroupStatus::default()));
    let parts = Parts {
        live: live.clone(),
        restoring: restoring.clone(),
        deployments,
        log,
        stored: Some(stored.clone()),
        clock: clock.clone(),
        limits,
        group: group.clone(),
    };
    let service = Arc::new(Service::new(parts));
    // A member of a consumer group takes no checkpoints: its live analysis
    // also holds what the other members sent.
    let checkpoint: Option<Box<dyn Fn() -> _ + Send>> = config.kafka.is_none().then(|| {
        let (service, dir) = (Arc::downgrade(&service), config.data_dir.clone());
        Box::new(move || match service.upgrade() {
            Some(service) => service.checkpoint(&dir),
            None => Err(CheckpointError::Log(LogFailure::Stopped)),
        }) as Box<dyn Fn() -> _ + Send>
    });
    let compactor = Compactor {
        dir: config.data_dir.clone(),
        interval: config.compact_interval,
        retention: config.retention,
        reuse: config.preallocate,
        index: stored.index.clone(),
        stats: log_stats,
        checkpoint,
    };
    let compactor = spawn_thread("compact", move || compactor.run(restored_rx, compact_rx))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let ticker = spawn_ticker(service.clone(), stop_rx.clone());
    let detector = config.changes_interval.map(|every| spawn_change_detection(service.clone(), every, stop_rx.clone()));
    let tasks = listeners.serve(&service, &config, &stop_rx)?;
    let kafka = match (&config.kafka, group) {
        (Some(kafka), Some(group)) => Some(tokio::spawn(spawn_kafka(
            kafka.clone(),
            &config,
            service.clone(),
            live.clone(),
            clock.clone(),
            group,
            stop_rx.clone(),
        ))),
        _ => None,
    };
    on_ready(addrs, &startup);
    // Restores live analysis while requests are already taken.
    let stop_restore = Arc::new(AtomicBool::new(false));
    let restorer = {
        let stop = stop_restore.clone();
        spawn_thread("restore", move || {
            let restored = restore::run(&plan, &live, &stored.index, &*clock, &restoring, &stop);
            drop(live);
            on_restored(&restored);
            drop(restored_tx);
        })?
    };
    shutdown.await;
    stop_restore.store(true, Ordering::Relaxed);
    drop(compact_stop);
    let _ = stop_tx.send(true);
    for (flag, task) in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(ServeError::Serve { flag, source }),
            Err(source) => return Err(ServeError::Task { flag, source }),
        }
    }
    let _ = ticker.await;
    if let Some(detector) = detector {
        let _ = detector.await;
    }
    if let Some(kafka) = kafka {
        match kafka.await {
            Ok(result) => result?,
            Err(source) => return Err(ServeError::Task { flag: "--kafka-brokers", source }),
        }
    }
    // Every handler is done: sync what waits, close the log.
    drop(service);
    let _ = tokio::task::spawn_blocking(move || syncer.stop()).await;
    let _ = tokio::task::spawn_blocking(move || {
        let _ = restorer.join();
        compactor.join()
    })
    .await;
    Ok(())
}
