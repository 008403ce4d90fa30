//! `tracelens serve`: the OTLP receiver with live analysis and the query API.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use tracelens::serve::live::LiveConfig;
use tracelens::serve::server::{self, ServeConfig};
use tracelens::serve::wal::SyncPolicy;

use super::UsageError;

/// Flags of `tracelens serve` (each also from a `TRACELENS_…` environment variable).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens serve\n  tracelens serve --grpc-addr 0.0.0.0:4317 --http-addr 0.0.0.0:4318 --data-dir /var/lib/tracelens\n  curl -s localhost:7070/api/v1/graph | jq .edges\n\nPoint an OpenTelemetry Collector's otlp exporter (or an SDK) at the gRPC or HTTP address. Every\naccepted request is written to the write-ahead log and synced before it is acknowledged; on start\nthe log is replayed. Query API: /api/v1/graph, /api/v1/operations, /api/v1/bottlenecks (each\nwith ?service=NAME), /api/v1/traces/{trace_id}, /metrics (Tempo's metric names), /healthz, /readyz."
)]
pub struct ServeArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, env = "TRACELENS_GRPC_ADDR", default_value = "127.0.0.1:4317")]
    grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address (POST /v1/traces).
    #[arg(long, env = "TRACELENS_HTTP_ADDR", default_value = "127.0.0.1:4318")]
    http_addr: SocketAddr,
    /// Query API listen address.
    #[arg(long, env = "TRACELENS_API_ADDR", default_value = "127.0.0.1:7070")]
    api_addr: SocketAddr,
    /// Directory of the write-ahead log.
    #[arg(long, env = "TRACELENS_DATA_DIR", default_value = "./tracelens-data")]
    data_dir: PathBuf,
    /// Largest request accepted, in bytes after decompression.
    #[arg(long, env = "TRACELENS_MAX_REQUEST_BYTES", default_value_t = 64 << 20)]
    max_request_bytes: usize,
    /// Requests handled at once; more are told to retry (UNAVAILABLE / 503).
    #[arg(long, env = "TRACELENS_MAX_IN_FLIGHT", default_value_t = 64)]
    max_in_flight: usize,
    /// A trace is complete once no span arrived for this many milliseconds.
    #[arg(long, env = "TRACELENS_TRACE_IDLE_MS", default_value_t = 10_000)]
    trace_idle_ms: u64,
    /// Spans held in incomplete traces before the oldest are closed early.
    #[arg(long, env = "TRACELENS_MAX_OPEN_SPANS", default_value_t = 1_000_000)]
    max_open_spans: usize,
    /// File holding a bearer token that every ingest and API request must carry
    /// (`Authorization: Bearer <token>`; health checks are exempt).
    #[arg(long, env = "TRACELENS_AUTH_TOKEN_FILE", value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// Closed write-ahead-log segments older than this many hours are deleted.
    #[arg(long, env = "TRACELENS_RETENTION_HOURS", default_value_t = 24.0)]
    retention_hours: f64,
    /// Completed traces kept for GET /api/v1/traces/{id}.
    #[arg(long, env = "TRACELENS_KEEP_TRACES", default_value_t = 10_000)]
    keep_traces: usize,
    /// Do not fsync the log before acknowledging (benchmarks only: a crash loses data).
    #[arg(long, hide = true)]
    no_fsync: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.max_request_bytes == 0 || args.max_in_flight == 0 || args.trace_idle_ms == 0 {
        return Err(
            UsageError("--max-request-bytes, --max-in-flight and --trace-idle-ms must be above 0".to_string()).into()
        );
    }
    if !(args.retention_hours > 0.0 && args.retention_hours.is_finite()) {
        return Err(UsageError("--retention-hours must be above 0".to_string()).into());
    }
    let auth_token = match &args.auth_token_file {
        None => None,
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("reading --auth-token-file {}: {e}", path.display())))?
                .trim()
                .to_string();
            if token.is_empty() {
                return Err(UsageError(format!("--auth-token-file {} is empty", path.display())).into());
            }
            Some(token)
        }
    };
    let config = ServeConfig {
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        api_addr: args.api_addr,
        data_dir: args.data_dir,
        max_request_bytes: args.max_request_bytes,
        max_in_flight: args.max_in_flight,
        live: LiveConfig {
            idle_ms: args.trace_idle_ms,
            max_open_spans: args.max_open_spans,
            keep_traces: args.keep_traces,
            ..LiveConfig::default()
        },
        sync: if args.no_fsync { SyncPolicy::Never } else { SyncPolicy::EveryAppend },
        auth_token,
        retention: std::time::Duration::from_secs_f64(args.retention_hours * 3600.0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler can be installed");
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            #[cfg(not(unix))]
            {
                let _ = ctrl_c.await;
            }
        };
        server::run(config, shutdown, |[grpc, http, api], startup| {
            eprintln!("tracelens: replayed {} requests from the write-ahead log", startup.replayed_requests);
            if let Some(torn) = &startup.torn {
                eprintln!("tracelens: warning: dropped a torn last log record ({torn})");
            }
            for c in &startup.corrupt {
                eprintln!("tracelens: warning: corrupt log record: {c}");
            }
            eprintln!("tracelens: listening: otlp-grpc {grpc}, otlp-http {http}, api {api}");
        })
        .await
    })?;
    eprintln!("tracelens: stopped");
    Ok(())
}
