//! `tracelens send`: replays any dump to any OTLP backend (tracelens
//! included), over gRPC or HTTP, whole traces per request, at an optional
//! rate, honouring the backend's retry hints.

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use tracelens::render;
use tracelens::send::kafka::KafkaSender;
use tracelens::send::{Batcher, Exporter, Protocol};

use super::UsageError;
use super::input::{self, InputArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318; /v1/traces unless the URL has a path).
    Http,
}

/// Flags of `tracelens send`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens send dump.jsonl --endpoint http://localhost:4318\n  tracelens send traces/ --endpoint http://collector:4317 --protocol grpc \\\n      --rate 5000\n  tracelens send dump.pb --endpoint http://tempo:4318 \\\n      --header 'X-Scope-OrgID=team-a'\n\nSpans are sent as they were read (after the repairs `analyze` reports), whole traces per request.\nA request the backend asks to retry (gRPC UNAVAILABLE, RESOURCE_EXHAUSTED with RetryInfo, ...;\nHTTP 429, 502, 503, 504) is retried after the delay it names (RetryInfo, Retry-After), else with\nexponential backoff, for up to --max-retry-time. Exit code: 0 every span accepted, 2 otherwise\n(a refused request, spans the backend rejected, unreadable input)."
)]
pub struct SendArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The OTLP endpoint: http://host:port (TLS endpoints are not supported).
    #[arg(long, value_name = "URL", required_unless_present = "kafka_brokers", conflicts_with = "kafka_brokers")]
    endpoint: Option<String>,
    /// Write to a Kafka topic on these brokers (host:port[,host:port…]) instead, as the OpenTelemetry
    /// Collector's kafka exporter writes (encoding otlp_proto, a record per service and trace).
    #[arg(long, value_name = "HOSTS")]
    kafka_brokers: Option<String>,
    /// The Kafka topic.
    #[arg(long, value_name = "TOPIC", default_value = "otlp_spans", requires = "kafka_brokers")]
    kafka_topic: String,
    /// Key each record by its trace id (the exporter's partition_traces_by_id); false writes unkeyed
    /// records mixing the traces of one service, --batch-spans at a time.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, requires = "kafka_brokers")]
    kafka_partition_traces_by_id: bool,
    /// Transport.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Http)]
    protocol: ProtocolArg,
    /// Spans sent per second at most (default: as fast as the backend takes them).
    #[arg(long, value_name = "SPANS_PER_S")]
    rate: Option<f64>,
    /// Spans per request (whole traces are kept together).
    #[arg(long, value_name = "SPANS", default_value_t = 512)]
    batch_spans: usize,
    /// Extra HTTP request header, as NAME=VALUE; repeatable.
    #[arg(long, value_name = "NAME=VALUE")]
    header: Vec<String>,
    /// Time a request may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = super::duration_arg)]
    timeout: Duration,
    /// How long one request is retried before sending gives up.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::duration_arg)]
    max_retry_time: Duration,
}

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(UsageError("--rate must be above 0".to_string()).into());
    }
    if args.batch_spans == 0 {
        return Err(UsageError("--batch-spans must be at least 1".to_string()).into());
    }
    let headers = args
        .header
        .iter()
        .map(|h| match h.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_ascii_lowercase(), v.trim().to_string())),
            _ => Err(UsageError(format!("--header {h:?} is not NAME=VALUE"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let protocol = match args.protocol {
        ProtocolArg::Grpc => Protocol::Grpc,
        ProtocolArg::Http => Protocol::Http,
    };
    if protocol == Protocol::Grpc && !headers.is_empty() {
        return Err(UsageError("--header is for --protocol http".to_string()).into());
    }
    let inputs = args.input.validate()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let Some(endpoint) = &args.endpoint else {
        let brokers = args.kafka_brokers.as_deref().expect("clap requires --endpoint or --kafka-brokers");
        return to_kafka(&args, brokers, inputs, &runtime);
    };
    let mut exporter = {
        let _guard = runtime.enter();
        Exporter::new(protocol, endpoint, headers, args.timeout, args.max_retry_time)
            .map_err(|e| UsageError(e.to_string()))?
    };
    let mut batcher = Batcher::new(args.batch_spans);
    let started = Instant::now();
    let mut failure = None;
    let send = |exporter: &mut Exporter, request, spans: usize| -> Result<(), tracelens::send::ExportError> {
        if let Some(rate) = args.rate {
            // Paced: the spans sent so far, plus these, at `rate`.
            let due = Duration::from_secs_f64((exporter.sent.spans + spans as u64) as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        runtime.block_on(exporter.export(&request, spans))
    };
    let report = inputs.run(&mut |dict, trace| {
        if failure.is_some() {
            return;
        }
        if let Some((request, spans)) = batcher.add(dict, &trace.spans)
            && let Err(e) = send(&mut exporter, request, spans)
        {
            failure = Some(e);
        }
    })?;
    if failure.is_none()
        && let Some((request, spans)) = batcher.finish()
        && let Err(e) = send(&mut exporter, request, spans)
    {
        failure = Some(e);
    }
    input::print_notes(&report);
    let sent = &exporter.sent;
    eprintln!(
        "tracelens: sent {} in {} to {} in {:.1} s ({})",
        render::count(sent.spans, "span"),
        render::count(sent.requests, "request"),
        exporter.endpoint(),
        started.elapsed().as_secs_f64(),
        render::count(sent.retries, "retry")
    );
    if let Some(e) = failure {
        return Err(e.into());
    }
    if sent.rejected > 0 {
        return Err(anyhow::anyhow!(
            "the endpoint rejected {} (partial success): {}",
            render::count(sent.rejected, "span"),
            sent.rejected_message.clone().unwrap_or_default()
        ));
    }
    Ok(())
}

/// `send --kafka-brokers`: every trace of the inputs to the topic.
fn to_kafka(
    args: &SendArgs,
    brokers: &str,
    inputs: input::Inputs,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut sender = {
        let _guard = runtime.enter();
        KafkaSender::new(brokers, &args.kafka_topic, args.kafka_partition_traces_by_id, args.batch_spans)?
    };
    let mut failure = None;
    let report = inputs.run(&mut |dict, trace| {
        if failure.is_some() {
            return;
        }
        if let Some(rate) = args.rate {
            let due = Duration::from_secs_f64(sender.queued_spans as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if let Err(e) = runtime.block_on(sender.send_trace(dict, &trace.spans)) {
            failure = Some(e);
        }
    })?;
    if failure.is_none()
        && let Err(e) = runtime.block_on(sender.finish())
    {
        failure = Some(e);
    }
    input::print_notes(&report);
    eprintln!(
        "tracelens: wrote {} in {} to kafka topic {} in {:.1} s",
        render::count(sender.written.spans, "span"),
        render::count(sender.written.records, "record"),
        args.kafka_topic,
        started.elapsed().as_secs_f64()
    );
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
