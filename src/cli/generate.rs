//! `tracelens generate`: writes synthetic traces from a seeded model of a
//! microservice system, optionally with a deploy of a new version.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use tracelens::generate::scenario::next_version;
use tracelens::generate::write::{self, Output, OutputCompression, OutputFormat};
use tracelens::generate::{self, Amount, Change, Deploy, Generator, GeneratorConfig, Scenario, TopologyFile};
use tracelens::render;

use super::UsageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// A web shop: frontend, checkout, cart, payments, catalog, … with PostgreSQL, Redis and Kafka.
    Shop,
    /// A wider shop as production dumps look: about 30 spans per trace, 8 or more attributes per span
    /// (long SQL and URLs), several instrumentation scopes, traces interleaved across requests in the
    /// order their spans ended.
    Rich,
    /// A seeded random system (see --services, --depth, --fan-out).
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// OTLP/JSON lines (the Collector file exporter's JSON).
    OtlpJsonLines,
    /// Length-prefixed OTLP protobuf (the Collector file exporter's proto).
    OtlpProtobufStream,
    /// One OTLP/JSON request with every span (what POST /v1/traces accepts; held in memory).
    OtlpJson,
    /// One OTLP protobuf ExportTraceServiceRequest with every span (held in memory).
    OtlpProtobuf,
    /// Jaeger query API JSON.
    JaegerJson,
    /// Zipkin v2 JSON.
    ZipkinJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressArg {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScenarioArg {
    /// One version of everything.
    Steady,
    /// The target's new version runs beside the old one (see --canary-weight).
    Canary,
    /// The target's new version replaces the old one part-way (see --deploy-at).
    Rollout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ChangeArg {
    /// Only the version differs (for false-positive tests).
    None,
    /// Median latency shift: the target's own work slower by --magnitude (default 1.5x).
    Latency,
    /// Tail-only shift: on 3% of requests the target's own work takes --magnitude x its old p99 (default 8).
    Tail,
    /// Error rate up by --magnitude (default 0.05).
    Errors,
    /// Every operation of the target calls a new service (--new-service).
    NewCall,
}

/// Flags of `tracelens generate`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens generate --traces 1000 -o shop.jsonl\n  tracelens generate --spans 1000000 --format otlp-protobuf-stream -o 1m.pb\n  tracelens generate --scenario canary --change latency --target checkout \\\n      --magnitude 1.3 -o canary.jsonl\n  tracelens generate --scenario rollout --change errors --format zipkin-json \\\n      --compress zstd -o rollout.json.zst\n  tracelens generate --preset random --services 30 --depth 6 --fan-out 3 \\\n      --traces 100\n  tracelens generate --topology my-system.yaml --traces 500\n\nThe same --seed and flags give byte-identical output. The built-in shop topology, a template for\n--topology files (TOML or YAML), is printed by --print-topology."
)]
pub struct GenerateArgs {
    /// Built-in topology.
    #[arg(long, value_enum, default_value_t = Preset::Shop, conflicts_with = "topology")]
    preset: Preset,
    /// A topology file (TOML, or YAML when named .yaml/.yml).
    #[arg(long, value_name = "FILE")]
    topology: Option<PathBuf>,
    /// Print the shop topology as TOML and exit.
    #[arg(long)]
    print_topology: bool,
    /// Random preset: number of services.
    #[arg(long, default_value_t = 12)]
    services: u32,
    /// Random preset: layers of calls.
    #[arg(long, default_value_t = 4)]
    depth: u32,
    /// Random preset: most calls an operation makes.
    #[arg(long, default_value_t = 3)]
    fan_out: u32,
    /// Number of traces to generate [default: 1000].
    #[arg(long, conflicts_with = "spans")]
    traces: Option<u64>,
    /// Generate whole traces until at least this many spans.
    #[arg(long)]
    spans: Option<u64>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::OtlpJsonLines)]
    format: FormatArg,
    /// Compress the whole output.
    #[arg(long, value_enum, default_value_t = CompressArg::None)]
    compress: CompressArg,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Spans per OTLP request (whole traces are kept together).
    #[arg(long, default_value_t = 100, value_name = "SPANS")]
    batch_spans: usize,
    /// Start of the first trace (RFC 3339).
    #[arg(long, default_value = "2026-11-01T00:00:00Z", value_name = "TIME")]
    start: String,
    /// Traces started per second of simulated time.
    #[arg(long, default_value_t = 100.0, value_name = "TRACES_PER_S")]
    rate: f64,
    /// Hosts' clocks disagree by up to this much (a bare number is milliseconds).
    #[arg(long, default_value = "0ms", value_name = "DURATION", value_parser = super::duration_or_ms_arg)]
    clock_skew: std::time::Duration,
    /// deployment.environment.name of every service.
    #[arg(long, default_value = "production")]
    environment: String,
    /// Deploy scenario for the target service.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Steady)]
    scenario: ScenarioArg,
    /// What the new version changes.
    #[arg(long, value_enum, default_value_t = ChangeArg::None)]
    change: ChangeArg,
    /// Service that gets the new version [default: the topology's default target].
    #[arg(long)]
    target: Option<String>,
    /// Size of the change: a factor for latency/tail, an added rate for errors.
    #[arg(long)]
    magnitude: Option<f64>,
    /// Canary: share of traces through the new version.
    #[arg(long, default_value_t = 0.5)]
    canary_weight: f64,
    /// Rollout: fraction of the run after which the new version serves.
    #[arg(long, default_value_t = 0.5)]
    deploy_at: f64,
    /// Version string of the new version [default: next minor version].
    #[arg(long)]
    new_version: Option<String>,
    /// new-call: name of the new downstream service.
    #[arg(long, default_value = "fraud-check")]
    new_service: String,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.print_topology {
        match args.preset {
            Preset::Rich => print!("{}", tracelens::generate::topology::RICH_TOML),
            Preset::Shop | Preset::Random => print!("{}", tracelens::generate::topology::SHOP_TOML),
        }
        return Ok(());
    }
    let topology = match &args.topology {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| UsageError(format!("reading {}: {e}", path.display())))?;
            let yaml = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
            TopologyFile::parse(&text, yaml).map_err(|e| UsageError(format!("{}: {e}", path.display())))?
        }
        None => match args.preset {
            Preset::Shop => TopologyFile::shop(),
            Preset::Rich => TopologyFile::rich(),
            Preset::Random => TopologyFile::random(args.seed, args.services, args.depth, args.fan_out),
        },
    };
    let rich = args.topology.is_none() && args.preset == Preset::Rich;
    let start_ns = tracelens::model::time::parse_rfc3339(&args.start).ok_or_else(|| {
        UsageError(format!("--start {:?} is not an RFC 3339 time such as 2026-11-01T00:00:00Z", args.start))
    })?;
    let change = match args.change {
        ChangeArg::None => Change::None,
        ChangeArg::Latency => Change::Latency,
        ChangeArg::Tail => Change::Tail,
        ChangeArg::Errors => Change::Errors,
        ChangeArg::NewCall => Change::NewCall,
    };
    let scenario = match args.scenario {
        ScenarioArg::Steady => Scenario::Steady,
        ScenarioArg::Canary => Scenario::Canary { weight: args.canary_weight },
        ScenarioArg::Rollout => Scenario::Rollout { at: args.deploy_at },
    };
    let deploy = if scenario == Scenario::Steady && change == Change::None {
        None
    } else {
        let target = args.target.clone().or_else(|| topology.default_target.clone()).ok_or_else(|| {
            UsageError("this topology names no default_target: say which service is deployed with --target".to_string())
        })?;
        let old_version =
            topology.services.iter().find(|s| s.name == target).map(|s| s.version.clone()).unwrap_or_default();
        Some(Deploy {
            scenario,
            change,
            magnitude: args.magnitude.unwrap_or(change.default_magnitude()),
            new_version: args.new_version.clone().unwrap_or_else(|| next_version(&old_version)),
            new_service: args.new_service.clone(),
            target,
        })
    };
    let config = GeneratorConfig {
        seed: args.seed,
        start_ns,
        traces_per_second: args.rate,
        clock_skew_ns: args.clock_skew.as_nanos().min(u64::MAX as u128) as u64,
        environment: args.environment.clone(),
        deploy,
        rich_attributes: rich,
    };
    let mut generator = Generator::new(&topology, &config).map_err(|e| UsageError(e.to_string()))?;
    let amount = match (args.traces, args.spans) {
        (_, Some(n)) => Amount::Spans(n),
        (Some(n), None) => Amount::Traces(n),
        (None, None) => Amount::Traces(1000),
    };
    let sink: Box<dyn io::Write> = match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(io::stdout()),
    };
    let compression = match args.compress {
        CompressArg::None => OutputCompression::None,
        CompressArg::Gzip => OutputCompression::Gzip,
        CompressArg::Zstd => OutputCompression::Zstd,
    };
    let format = match args.format {
        FormatArg::OtlpJsonLines => OutputFormat::OtlpJsonLines,
        FormatArg::OtlpProtobufStream => OutputFormat::OtlpProtobufStream,
        FormatArg::OtlpJson => OutputFormat::OtlpJson,
        FormatArg::OtlpProtobuf => OutputFormat::OtlpProtobuf,
        FormatArg::JaegerJson => OutputFormat::JaegerJson,
        FormatArg::ZipkinJson => OutputFormat::ZipkinJson,
    };
    let window = if rich { generate::RICH_INTERLEAVE_WINDOW } else { 0 };
    let mut writer = write::writer_interleaved(format, Output::new(sink, compression)?, args.batch_spans, window);
    let produced = generate::run(&mut generator, amount, writer.as_mut()).context("writing generated traces")?;
    let destination = args.output.as_ref().map_or("standard output".to_string(), |p| p.display().to_string());
    eprintln!(
        "tracelens: generated {}, {} to {destination}",
        render::count(produced.traces, "trace"),
        render::count(produced.spans, "span")
    );
    Ok(())
}
