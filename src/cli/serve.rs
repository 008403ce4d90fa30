//! `tracelens serve`: the OTLP receiver with live analysis and the query API.
//!
//! Settings come from, in order of precedence: flags, `TRACELENS_…`
//! environment variables, a TOML `--config` file (keys are the flag names
//! with `_` for `-`), built-in defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use tracelens::serve::live::LiveConfig;
use tracelens::serve::server::{self, ServeConfig};
use tracelens::serve::storage::commit::IdleHook;
use tracelens::serve::storage::restore;
use tracelens::serve::storage::wal::SyncPolicy;
use tracelens::serve::transport::kafka::KafkaConfig;

use super::UsageError;

/// Flags of `tracelens serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens serve\n  tracelens serve --grpc-addr 0.0.0.0:4317 --http-addr 0.0.0.0:4318 \\\n      --data-dir /var/lib/tracelens\n  tracelens serve --config /etc/tracelens.toml\n  curl -s localhost:7070/api/v1/graph | jq .edges\n\nPoint an OpenTelemetry Collector's otlp exporter (or an SDK) at the gRPC or HTTP address. Every\naccepted request is written to the write-ahead log and synced before it is acknowledged; on start\nit listens at once and restores what the data directory kept in the background (/readyz says\nhow far). Query API: /api/v1/graph, /api/v1/operations, /api/v1/bottlenecks (each with\n?service=NAME), /api/v1/traces/{trace_id}, /metrics (Tempo's metric names), /healthz, /readyz.\n\nSettings: flags, then TRACELENS_* environment variables, then the --config TOML file (keys are the\nflag names with underscores, e.g. grpc_addr = \"0.0.0.0:4317\"), then the defaults shown;\n--print-config prints a commented example. Durations: 500ms, 90s, 15m, 2h, 1d."
)]
pub struct ServeArgs {
    /// TOML file with any of the settings below.
    #[arg(long, env = "TRACELENS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long, env = "TRACELENS_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listen address, POST /v1/traces [default: 127.0.0.1:4318].
    #[arg(long, env = "TRACELENS_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// Query API listen address [default: 127.0.0.1:7070].
    #[arg(long, env = "TRACELENS_API_ADDR")]
    api_addr: Option<SocketAddr>,
    /// Directory of the write-ahead log [default: ./tracelens-data].
    #[arg(long, env = "TRACELENS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Largest request accepted, in bytes after decompression [default: 67108864].
    #[arg(long, env = "TRACELENS_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// Requests handled at once; more are told to retry (UNAVAILABLE / 503) [default: 64].
    #[arg(long, env = "TRACELENS_MAX_IN_FLIGHT")]
    max_in_flight: Option<usize>,
    /// A trace is complete once no span arrived for this long [default: 10s].
    #[arg(long, env = "TRACELENS_TRACE_IDLE", value_name = "DURATION", value_parser = super::duration_arg)]
    trace_idle: Option<Duration>,
    /// Old spelling of --trace-idle, in milliseconds.
    #[arg(long, env = "TRACELENS_TRACE_IDLE_MS", hide = true, conflicts_with = "trace_idle")]
    trace_idle_ms: Option<u64>,
    /// Spans held in incomplete traces before the oldest are closed early; on
    /// start, restored spans complete their traces once this many later spans
    /// were restored [default: 1000000].
    #[arg(long, env = "TRACELENS_MAX_OPEN_SPANS")]
    max_open_spans: Option<usize>,
    /// Label sets with series of their own in /metrics, per family (service-graph
    /// edges; span-metrics service, operation and kind): past it, new ones are
    /// summed into "(overflow)" label sets and counted in
    /// tracelens_metric_label_sets_folded [default: 10000].
    #[arg(long, env = "TRACELENS_MAX_METRIC_LABEL_SETS", value_name = "N")]
    max_metric_label_sets: Option<usize>,
    /// File holding the bearer token every ingest and API request must carry
    /// (`Authorization: Bearer <token>`; health checks are exempt); one token per
    /// line, any of them admitted, so a token can be rotated.
    #[arg(long, env = "TRACELENS_AUTH_TOKEN_FILE", value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// Width of a live-analysis time bucket; queries with since/until merge whole buckets
    /// [default: 1m].
    #[arg(long, env = "TRACELENS_BUCKET_WIDTH", value_name = "DURATION", value_parser = super::duration_arg)]
    bucket_width: Option<Duration>,
    /// Old spelling of --bucket-width, in seconds.
    #[arg(long, env = "TRACELENS_BUCKET_SECONDS", hide = true, conflicts_with = "bucket_width")]
    bucket_seconds: Option<u64>,
    /// PEM certificate chain (leaf first): every listener then speaks TLS only.
    /// Needs --tls-key-file.
    #[arg(long, env = "TRACELENS_TLS_CERT_FILE", value_name = "FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TRACELENS_TLS_KEY_FILE", value_name = "FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// Closed write-ahead-log segments, compacted files and live-analysis time buckets
    /// older than this are deleted [default: 1d].
    #[arg(long, env = "TRACELENS_RETENTION", value_name = "DURATION", value_parser = super::duration_arg)]
    retention: Option<Duration>,
    /// Old spelling of --retention, in hours.
    #[arg(long, env = "TRACELENS_RETENTION_HOURS", hide = true, conflicts_with = "retention")]
    retention_hours: Option<f64>,
    /// Completed traces kept in memory for verdicts [default: 10000].
    #[arg(long, env = "TRACELENS_KEEP_TRACES")]
    keep_traces: Option<usize>,
    /// Trace digests kept per minute of trace start, over the retention, for change detection
    /// (a uniform sample of the minute's traces; a few hundred bytes each); 0 judges the kept
    /// traces instead [default: 100].
    #[arg(long, env = "TRACELENS_CHANGE_SAMPLES_PER_MINUTE", value_name = "N")]
    change_samples_per_minute: Option<usize>,
    /// Export requests accepted per second over both protocols; more get 429 / UNAVAILABLE
    /// with a retry hint [default: no limit].
    #[arg(long, env = "TRACELENS_MAX_REQUESTS_PER_SECOND")]
    max_requests_per_second: Option<f64>,
    /// Memory budget (512MiB, 2GiB, or bytes): resident memory is sampled every 25 ms; from
    /// 60% of it open traces are completed early and the recent-trace cache halved, from 80%
    /// exports get UNAVAILABLE / 503 with a retry hint as well [default: no budget].
    #[arg(long, env = "TRACELENS_MAX_MEMORY", value_name = "SIZE", value_parser = super::bytes_arg)]
    max_memory: Option<u64>,
    /// Size in bytes at which a write-ahead-log segment is closed; closed segments are
    /// compacted into Parquet under DATA_DIR/parquet [default: 67108864].
    #[arg(long, env = "TRACELENS_WAL_SEGMENT_BYTES")]
    wal_segment_bytes: Option<u64>,
    /// Start log segments from files whose blocks are already written: compacted
    /// segments reused (as many kept as the last compaction run retired: at least
    /// 8, more up to 4 GiB), else files zero-filled ahead of time by a background
    /// thread. Cheaper fsyncs, at the price of holding each segment's full size on
    /// disk [default: true].
    #[arg(long, env = "TRACELENS_WAL_PREALLOCATE")]
    wal_preallocate: Option<bool>,
    /// How often closed log segments are compacted into Parquet [default: 30s].
    #[arg(long, env = "TRACELENS_COMPACT_INTERVAL", value_name = "DURATION", value_parser = super::duration_arg)]
    compact_interval: Option<Duration>,
    /// Old spelling of --compact-interval, in seconds.
    #[arg(long, env = "TRACELENS_COMPACT_INTERVAL_SECONDS", hide = true, conflicts_with = "compact_interval")]
    compact_interval_seconds: Option<f64>,
    /// How often change detection runs over the kept traces (the last 15 minutes against their
    /// baseline) for the tracelens_change_* series of /metrics; 0s turns it off [default: 1m].
    #[arg(long, env = "TRACELENS_CHANGES_INTERVAL", value_name = "DURATION", value_parser = super::duration_arg)]
    changes_interval: Option<Duration>,
    /// Join a Kafka consumer group reading spans from these brokers (host:port[,host:port…]), as the
    /// OpenTelemetry Collector's kafka exporter writes them; every member answers for the whole group.
    #[arg(long, env = "TRACELENS_KAFKA_BROKERS", value_name = "HOSTS")]
    kafka_brokers: Option<String>,
    /// The topic spans are read from [default: otlp_spans].
    #[arg(long, env = "TRACELENS_KAFKA_TOPIC", value_name = "TOPIC")]
    kafka_topic: Option<String>,
    /// The consumer group [default: tracelens].
    #[arg(long, env = "TRACELENS_KAFKA_GROUP", value_name = "GROUP")]
    kafka_group: Option<String>,
    /// The topic members publish their partial results to, and read the group's from
    /// [default: tracelens_partials].
    #[arg(long, env = "TRACELENS_KAFKA_RESULTS_TOPIC", value_name = "TOPIC")]
    kafka_results_topic: Option<String>,
    /// A stable identity in the group (Kafka static membership, group.instance.id; e.g. a StatefulSet
    /// pod's name): restarted under it, a member takes its partitions back without a rebalance.
    #[arg(long, env = "TRACELENS_KAFKA_INSTANCE_ID", value_name = "ID")]
    kafka_instance_id: Option<String>,
    /// Whether the OTLP gRPC and HTTP listeners are on (false: a consumer-group member that takes spans
    /// from Kafka only) [default: true].
    #[arg(long, env = "TRACELENS_OTLP", value_name = "BOOL")]
    otlp: Option<bool>,
    /// How often each partition's completed traces are published [default: 1s].
    #[arg(long, env = "TRACELENS_KAFKA_PUBLISH_INTERVAL", value_name = "DURATION", value_parser = super::duration_arg)]
    kafka_publish_interval: Option<Duration>,
    /// Print a commented example --config file (every setting with its default) and exit.
    #[arg(long)]
    print_config: bool,
    /// Do not fsync the log before acknowledging (benchmarks only: a crash loses data).
    #[arg(long, hide = true)]
    no_fsync: bool,
}

/// The same settings from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    api_addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    max_request_bytes: Option<usize>,
    max_in_flight: Option<usize>,
    trace_idle: Option<String>,
    trace_idle_ms: Option<u64>,
    max_open_spans: Option<usize>,
    max_metric_label_sets: Option<usize>,
    bucket_width: Option<String>,
    bucket_seconds: Option<u64>,
    auth_token_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    wal_segment_bytes: Option<u64>,
    wal_preallocate: Option<bool>,
    compact_interval: Option<String>,
    compact_interval_seconds: Option<f64>,
    changes_interval: Option<String>,
    retention: Option<String>,
    retention_hours: Option<f64>,
    keep_traces: Option<usize>,
    change_samples_per_minute: Option<usize>,
    max_requests_per_second: Option<f64>,
    max_memory: Option<String>,
    kafka_brokers: Option<String>,
    kafka_topic: Option<String>,
    kafka_group: Option<String>,
    kafka_results_topic: Option<String>,
    kafka_publish_interval: Option<String>,
    kafka_instance_id: Option<String>,
    otlp: Option<bool>,
}

impl FileSettings {
    /// A duration setting: `key = "15m"`, or the old key in `unit`s.
    fn duration(
        &self,
        key: &str,
        text: &Option<String>,
        old: Option<f64>,
        unit: f64,
    ) -> anyhow::Result<Option<Duration>> {
        match (text, old) {
            (Some(_), Some(_)) => {
                Err(UsageError(format!("--config: give {key} only, not also its old spelling")).into())
            }
            (Some(t), None) => {
                super::duration_arg(t).map(Some).map_err(|e| UsageError(format!("--config: {key}: {e}")).into())
            }
            (None, Some(v)) => {
                seconds(v * unit).map(Some).ok_or_else(|| UsageError(format!("--config: {key} must be above 0")).into())
            }
            (None, None) => Ok(None),
        }
    }
}

/// A positive, finite number of seconds as a duration.
fn seconds(s: f64) -> Option<Duration> {
    (s > 0.0 && s.is_finite() && s < 1e12).then(|| Duration::from_secs_f64(s))
}

/// The commented example configuration `--print-config` prints.
const EXAMPLE_CONFIG: &str = r#"# tracelens serve --config FILE: every setting, with its default.
# Flags and TRACELENS_* environment variables (the key in upper case, e.g.
# TRACELENS_GRPC_ADDR) take precedence over this file.

# OTLP/gRPC, OTLP/HTTP (POST /v1/traces) and query API listen addresses.
grpc_addr = "127.0.0.1:4317"
http_addr = "127.0.0.1:4318"
api_addr = "127.0.0.1:7070"

# Write-ahead log, compacted Parquet files and deployment markers.
data_dir = "./tracelens-data"
# Closed log segments, compacted files and time buckets older than this go.
retention = "1d"

# Largest request accepted, in bytes after decompression.
max_request_bytes = 67108864
# Requests handled at once; more are told to retry (UNAVAILABLE / 503).
max_in_flight = 64
# Export requests accepted per second over both protocols (no limit when absent).
# max_requests_per_second = 5000.0
# Memory budget: near it exports are refused (retryable) and open traces
# completed early (no budget when absent).
# max_memory = "2GiB"

# A trace is complete once no span arrived for this long.
trace_idle = "10s"
# Spans held in incomplete traces before the oldest are closed early.
max_open_spans = 1000000
# Label sets with series of their own in /metrics, per family; the rest are
# summed into "(overflow)" ones.
max_metric_label_sets = 10000
# Completed traces kept in memory for verdicts and change detection (trace
# look-ups read the data directory).
keep_traces = 10000
# How often change detection runs for the tracelens_change_* series of
# /metrics ("0s": off), and the trace digests it keeps per minute.
changes_interval = "1m"
change_samples_per_minute = 100
# Width of a live-analysis time bucket (since/until merge whole buckets).
bucket_width = "1m"

# Size at which a log segment is closed, and how often closed segments are
# compacted into Parquet.
wal_segment_bytes = 67108864
compact_interval = "30s"
# Start segments from reused or zero-filled files (cheaper fsyncs).
wal_preallocate = true

# A bearer token every ingest and API request must carry (health checks exempt).
# auth_token_file = "/etc/tracelens/token"
# TLS on every listener (PEM; chain leaf first; PKCS#8, PKCS#1 or SEC1 key).
# tls_cert_file = "/etc/tracelens/tls.crt"
# tls_key_file = "/etc/tracelens/tls.key"

# Scale-out: join a Kafka consumer group reading the topic the Collector's kafka
# exporter writes (see docs/scale-out.md); every member answers for the group.
# kafka_brokers = "kafka-0:9092,kafka-1:9092"
# kafka_topic = "otlp_spans"
# kafka_group = "tracelens"
# kafka_results_topic = "tracelens_partials"
# kafka_publish_interval = "1s"
# A stable identity in the group (static membership), e.g. the pod's name.
# kafka_instance_id = "tracelens-0"
# Whether the OTLP gRPC and HTTP listeners are on (a member may take spans from Kafka only).
# otlp = true
"#;

fn read_settings(path: &Path) -> anyhow::Result<FileSettings> {
    let text =
        std::fs::read_to_string(path).map_err(|e| UsageError(format!("reading --config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| UsageError(format!("--config {}: {e}", path.display())).into())
}

/// The bearer tokens in `path`: one per line (several while a token is
/// rotated), blank lines and `#` comments skipped. A line that is not one
/// word of visible ASCII, which no client could send, is refused here
/// rather than leaving every client unable to authenticate.
fn read_tokens(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("reading auth token file {}: {e}", path.display())))?;
    let mut tokens = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(c) = line.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(UsageError(format!(
                "auth token file {} line {}: a token is one word of visible ASCII characters, found {c:?}; \
                 put one token per line",
                path.display(),
                n + 1
            ))
            .into());
        }
        tokens.push(line.to_string());
    }
    if tokens.is_empty() {
        return Err(UsageError(format!("auth token file {} holds no token", path.display())).into());
    }
    Ok(tokens)
}

/// Flags and environment first, then the file, then the defaults.
fn resolve(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    let file = match &args.config {
        Some(path) => read_settings(path)?,
        None => FileSettings::default(),
    };
    let addr = |s: &str| s.parse::<SocketAddr>().expect("valid default address");
    let max_request_bytes = args.max_request_bytes.or(file.max_request_bytes).unwrap_or(64 << 20);
    let max_in_flight = args.max_in_flight.or(file.max_in_flight).unwrap_or(64);
    let max_metric_label_sets = args.max_metric_label_sets.or(file.max_metric_label_sets).unwrap_or(10_000);
    if max_metric_label_sets == 0 {
        return Err(UsageError("--max-metric-label-sets must be at least 1".to_string()).into());
    }
    // Durations: the flag, its old spelling, the file's key or old key, the default.
    let old = |v: Option<f64>, unit: f64, flag: &str| -> anyhow::Result<Option<Duration>> {
        v.map(|v| seconds(v * unit).ok_or_else(|| UsageError(format!("{flag} must be above 0")).into())).transpose()
    };
    let trace_idle = match args.trace_idle.or(old(args.trace_idle_ms.map(|v| v as f64), 1e-3, "--trace-idle-ms")?) {
        Some(d) => d,
        None => file
            .duration("trace_idle", &file.trace_idle, file.trace_idle_ms.map(|v| v as f64), 1e-3)?
            .unwrap_or(Duration::from_secs(10)),
    };
    let bucket_width = match args.bucket_width.or(old(args.bucket_seconds.map(|v| v as f64), 1.0, "--bucket-seconds")?)
    {
        Some(d) => d,
        None => file
            .duration("bucket_width", &file.bucket_width, file.bucket_seconds.map(|v| v as f64), 1.0)?
            .unwrap_or(Duration::from_secs(60)),
    };
    let retention = match args.retention.or(old(args.retention_hours, 3600.0, "--retention-hours")?) {
        Some(d) => d,
        None => file
            .duration("retention", &file.retention, file.retention_hours, 3600.0)?
            .unwrap_or(Duration::from_secs(86_400)),
    };
    let compact_interval =
        match args.compact_interval.or(old(args.compact_interval_seconds, 1.0, "--compact-interval-seconds")?) {
            Some(d) => d,
            None => file
                .duration("compact_interval", &file.compact_interval, file.compact_interval_seconds, 1.0)?
                .unwrap_or(Duration::from_secs(30)),
        };
    let changes_interval = match args.changes_interval {
        Some(d) => d,
        None => {
            file.duration("changes_interval", &file.changes_interval, None, 1.0)?.unwrap_or(Duration::from_secs(60))
        }
    };
    let file_publish_interval = file.duration("kafka_publish_interval", &file.kafka_publish_interval, None, 1.0)?;
    if max_request_bytes == 0 || max_in_flight == 0 {
        return Err(UsageError("max-request-bytes and max-in-flight must be above 0".to_string()).into());
    }
    if trace_idle.as_millis() == 0
        || bucket_width.as_millis() < 1000
        || retention.is_zero()
        || compact_interval.is_zero()
    {
        return Err(UsageError(
            "--trace-idle must be at least 1ms, --bucket-width at least 1s, --retention and --compact-interval above 0"
                .to_string(),
        )
        .into());
    }
    let max_requests_per_second = args.max_requests_per_second.or(file.max_requests_per_second);
    if max_requests_per_second.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(UsageError("max-requests-per-second must be above 0".to_string()).into());
    }
    let max_memory = match (args.max_memory, &file.max_memory) {
        (Some(bytes), _) => Some(bytes),
        (None, Some(text)) => Some(super::bytes_arg(text).map_err(|e| UsageError(format!("max_memory: {e}")))?),
        (None, None) => None,
    };
    let auth_tokens = match args.auth_token_file.or(file.auth_token_file) {
        Some(path) => read_tokens(&path)?,
        None => Vec::new(),
    };
    let tls = match (args.tls_cert_file.or(file.tls_cert_file), args.tls_key_file.or(file.tls_key_file)) {
        (Some(cert), Some(key)) => {
            Some(tracelens::serve::transport::tls::server_config(&cert, &key).map_err(|e| UsageError(e.to_string()))?)
        }
        (None, None) => None,
        _ => return Err(UsageError("tls_cert_file and tls_key_file go together".to_string()).into()),
    };
    let segment_bytes = args.wal_segment_bytes.or(file.wal_segment_bytes).unwrap_or(64 << 20);
    if segment_bytes < 4096 {
        return Err(UsageError("wal-segment-bytes must be at least 4096".to_string()).into());
    }
    let kafka = match args.kafka_brokers.or(file.kafka_brokers.clone()) {
        Some(brokers) => {
            let publish_interval = match args.kafka_publish_interval {
                Some(d) => d,
                None => file_publish_interval.unwrap_or(Duration::from_secs(1)),
            };
            if publish_interval.is_zero() {
                return Err(UsageError("--kafka-publish-interval must be above 0".to_string()).into());
            }
            Some(KafkaConfig {
                brokers,
                topic: args.kafka_topic.or(file.kafka_topic.clone()).unwrap_or_else(|| "otlp_spans".to_string()),
                group: args.kafka_group.or(file.kafka_group.clone()).unwrap_or_else(|| "tracelens".to_string()),
                results_topic: args
                    .kafka_results_topic
                    .or(file.kafka_results_topic.clone())
                    .unwrap_or_else(|| "tracelens_partials".to_string()),
                publish_interval,
                instance_id: args.kafka_instance_id.or(file.kafka_instance_id.clone()),
            })
        }
        None => None,
    };
    let otlp = args.otlp.or(file.otlp).unwrap_or(true);
    if !otlp && kafka.is_none() {
        return Err(UsageError("--otlp false needs --kafka-brokers: spans must come from somewhere".to_string()).into());
    }
    Ok(ServeConfig {
        otlp,
        kafka,
        tls,
        segment_bytes,
        compact_interval,
        changes_interval: (!changes_interval.is_zero()).then_some(changes_interval),
        grpc_addr: args.grpc_addr.or(file.grpc_addr).unwrap_or_else(|| addr("127.0.0.1:4317")),
        http_addr: args.http_addr.or(file.http_addr).unwrap_or_else(|| addr("127.0.0.1:4318")),
        api_addr: args.api_addr.or(file.api_addr).unwrap_or_else(|| addr("127.0.0.1:7070")),
        data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./tracelens-data")),
        max_request_bytes,
        max_in_flight,
        live: LiveConfig {
            idle_ms: trace_idle.as_millis().min(u64::MAX as u128) as u64,
            max_open_spans: args.max_open_spans.or(file.max_open_spans).unwrap_or(1_000_000),
            max_metric_label_sets,
            keep_traces: args.keep_traces.or(file.keep_traces).unwrap_or(10_000),
            change_samples_per_minute: args.change_samples_per_minute.or(file.change_samples_per_minute).unwrap_or(100),
            bucket_ms: bucket_width.as_millis().min(u64::MAX as u128) as u64,
            retention_ms: retention.as_millis().min(u64::MAX as u128) as u64,
            ..LiveConfig::default()
        },
        sync: if args.no_fsync { SyncPolicy::Never } else { SyncPolicy::EveryAppend },
        preallocate: args.wal_preallocate.or(file.wal_preallocate).unwrap_or(true),
        auth_tokens,
        retention,
        max_requests_per_second,
        max_memory,
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.print_config {
        print!("{EXAMPLE_CONFIG}");
        return Ok(());
    }
    let config = resolve(args)?;
    // The log's group commit syncs when the request threads run out of work.
    let idle = IdleHook::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .on_thread_park({
            let idle = idle.clone();
            move || idle.idle()
        })
        .enable_all()
        .build()?;
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
        let security = if config.tls.is_some() { " (TLS)" } else { "" };
        let on_ready = move |[grpc, http, api]: [Option<SocketAddr>; 3], startup: &server::Startup| {
            let shown = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
            let (grpc, http, api) = (shown(grpc), shown(http), shown(api));
            if let Some(torn) = &startup.torn {
                eprintln!("tracelens: warning: dropped a torn last log record ({torn})");
            }
            for c in &startup.corrupt {
                eprintln!("tracelens: warning: corrupt log record: {c}");
            }
            eprintln!("tracelens: listening: otlp-grpc {grpc}, otlp-http {http}, api {api}{security}");
            if let Some(next) = startup.checkpoint {
                eprintln!(
                    "tracelens: restoring the checkpoint of live analysis (taken in log segment {next}) and replaying {} from there in the background",
                    tracelens::render::count(startup.log_segments, "log segment")
                );
            } else if startup.parquet_files + startup.log_segments > 0 {
                eprintln!(
                    "tracelens: restoring {} compacted Parquet files and {} log segments in the background",
                    startup.parquet_files, startup.log_segments
                );
            }
        };
        let on_restored = |restored: &restore::Restored| {
            for e in &restored.errors {
                eprintln!("tracelens: error: restoring: {e}");
            }
            if restored.stopped {
                eprintln!("tracelens: stopped restoring stored spans: the next start reads them again");
                return;
            }
            if let Some(why) = &restored.checkpoint_unused {
                eprintln!("tracelens: warning: the checkpoint was not used ({why}): everything kept was read instead");
            }
            if let Some(next) = restored.checkpoint {
                eprintln!(
                    "tracelens: restored the checkpoint of the log up to segment {next}, record {}, with {} of open traces",
                    restored.checkpoint_records,
                    tracelens::render::count(restored.checkpoint_spans, "span")
                );
            }
            if restored.parquet_files > 0 {
                eprintln!(
                    "tracelens: read {} from {}",
                    tracelens::render::count(restored.parquet_spans, "span"),
                    tracelens::render::count(restored.parquet_files, "compacted Parquet file")
                );
            }
            eprintln!(
                "tracelens: replayed {} from the write-ahead log (restored in {:.1} s)",
                tracelens::render::count(restored.replayed_requests, "request"),
                restored.seconds
            );
        };
        server::run(config, Some(idle), shutdown, on_ready, on_restored).await
    })?;
    eprintln!("tracelens: stopped");
    Ok(())
}
