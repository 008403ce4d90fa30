//! `tracelens analyze`: reads trace dumps and prints a summary of what is in
//! them — inputs and detected formats, spans, traces, services, time range,
//! and every kind of damage that was repaired.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use tracelens::analysis::Summary;
use tracelens::assemble::AssemblerConfig;
use tracelens::pipeline::{self, PipelineConfig, RunReport};
use tracelens::read::{Input, ReadOptions, expand_inputs};
use tracelens::render;

use super::progress;

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object for programs.
    Json,
}

/// Flags of `tracelens analyze`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens analyze testdata/shop.otlp.json\n  tracelens analyze --format json dump.jsonl.zst traces/\n  kubectl exec collector -- cat /data/traces.pb | tracelens analyze -\n\nFormats are detected from content, not file names: OTLP JSON (document or JSON lines, Tempo and\nJaeger api_v3 wrappers), OTLP protobuf (bare or the Collector file exporter's length-prefixed\nstream), Jaeger JSON and Zipkin v2 JSON, each optionally gzip or zstd compressed."
)]
pub struct AnalyzeArgs {
    /// Trace dumps: files, directories (every file inside), or - for standard input.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Fail on the first malformed record of a JSON-lines or length-prefixed stream instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Close a trace once this many spans of other traces have been read since its last span
    /// (bounds memory on huge dumps; later spans of a closed trace are counted as split_trace).
    #[arg(long, value_name = "SPANS", default_value_t = AssemblerConfig::default().idle_spans)]
    trace_window: u64,
}

/// Validated configuration of one `analyze` run.
struct AnalyzeConfig {
    inputs: Vec<Input>,
    format: OutputFormat,
    pipeline: PipelineConfig,
}

impl AnalyzeConfig {
    fn from_args(args: AnalyzeArgs) -> anyhow::Result<Self> {
        if args.trace_window == 0 {
            return Err(super::UsageError("--trace-window must be at least 1".to_string()).into());
        }
        let inputs = expand_inputs(&args.inputs)?;
        if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
            return Err(super::UsageError("standard input (-) can be named only once".to_string()).into());
        }
        Ok(AnalyzeConfig {
            inputs,
            format: args.format,
            pipeline: PipelineConfig {
                read: ReadOptions { strict: args.strict },
                assemble: AssemblerConfig { idle_spans: args.trace_window },
            },
        })
    }
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let config = AnalyzeConfig::from_args(args)?;
    let bar = progress::bar_for(&config.inputs);
    let mut summary = Summary::default();
    let report = pipeline::run(
        &config.inputs,
        &config.pipeline,
        &mut |input, source| progress::wrap(&bar, input, source),
        &mut |trace| summary.add_trace(&trace),
    )?;
    bar.finish_and_clear();
    let out = AnalyzeReport::new(&report, &summary);
    let mut stdout = io::stdout().lock();
    match config.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut stdout, &out).context("writing the report")?;
            writeln!(stdout)?;
        }
        OutputFormat::Table => write_table(&mut stdout, &out)?,
    }
    stdout.flush()?;
    for (input, reason) in &report.skipped {
        eprintln!("tracelens: note: skipped {}: {reason}", input.name());
    }
    for (input, r) in &report.inputs {
        for message in &r.bad_records {
            eprintln!("tracelens: warning: {}: skipped {message}", input.name());
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct AnalyzeReport {
    inputs: Vec<InputLine>,
    /// Spans read, over all inputs.
    spans: u64,
    /// Spans after exact duplicates were dropped.
    spans_analyzed: u64,
    traces: u64,
    services: Vec<String>,
    error_spans: u64,
    root_spans: u64,
    time_range: Option<TimeRange>,
    warnings: BTreeMap<&'static str, u64>,
    /// Files found in directories that held no trace data.
    skipped: Vec<SkippedLine>,
}

#[derive(Serialize)]
struct SkippedLine {
    path: String,
    reason: String,
}

#[derive(Serialize)]
struct InputLine {
    path: String,
    format: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compression: Vec<&'static str>,
    spans: u64,
}

#[derive(Serialize)]
struct TimeRange {
    start: String,
    end: String,
    start_unix_nano: u64,
    end_unix_nano: u64,
    duration_ns: u64,
}

impl AnalyzeReport {
    fn new(report: &RunReport, summary: &Summary) -> Self {
        let time_range = match (summary.first_start_ns, summary.last_end_ns) {
            (Some(start), Some(end)) => Some(TimeRange {
                start: render::rfc3339(start),
                end: render::rfc3339(end),
                start_unix_nano: start,
                end_unix_nano: end,
                duration_ns: end.saturating_sub(start),
            }),
            _ => None,
        };
        AnalyzeReport {
            inputs: report
                .inputs
                .iter()
                .map(|(input, r)| InputLine {
                    path: match input {
                        Input::Stdin => "-".to_string(),
                        Input::Path(_) | Input::Found(_) => input.name(),
                    },
                    format: r.format.name().to_string(),
                    compression: r.format.compressions().map(|c| c.as_str()).collect(),
                    spans: r.spans,
                })
                .collect(),
            spans: report.spans_read(),
            spans_analyzed: summary.spans,
            traces: summary.traces,
            services: summary.service_names(&report.dict),
            error_spans: summary.error_spans,
            root_spans: summary.root_spans,
            time_range,
            warnings: report.warnings.iter().map(|(k, n)| (k.as_str(), n)).collect(),
            skipped: report
                .skipped
                .iter()
                .map(|(input, reason)| SkippedLine { path: input.name(), reason: reason.clone() })
                .collect(),
        }
    }
}

fn write_table(w: &mut impl Write, r: &AnalyzeReport) -> io::Result<()> {
    writeln!(w, "Inputs")?;
    let width = r.inputs.iter().map(|i| i.path.chars().count()).max().unwrap_or(0);
    for i in &r.inputs {
        let mut format = i.format.clone();
        for c in &i.compression {
            format.push('+');
            format.push_str(c);
        }
        writeln!(w, "  {:<width$}  {:<24} {:>10} spans", i.path, format, i.spans)?;
    }
    if !r.skipped.is_empty() {
        writeln!(w, "Skipped (no trace data)")?;
        for s in &r.skipped {
            writeln!(w, "  {}", s.path)?;
        }
    }
    writeln!(w)?;
    let dups = r.spans - r.spans_analyzed;
    if dups > 0 {
        let plural = if dups == 1 { "" } else { "s" };
        writeln!(w, "Spans       {} ({} analysed, {dups} exact duplicate{plural} dropped)", r.spans, r.spans_analyzed)?;
    } else {
        writeln!(w, "Spans       {}", r.spans)?;
    }
    writeln!(w, "Traces      {}", r.traces)?;
    writeln!(w, "Services    {}: {}", r.services.len(), r.services.join(", "))?;
    writeln!(w, "Errors      {} spans with status ERROR", r.error_spans)?;
    match &r.time_range {
        Some(t) => writeln!(w, "Time range  {} .. {} ({})", t.start, t.end, render::duration(t.duration_ns))?,
        None => writeln!(w, "Time range  none (no span has a usable timestamp)")?,
    }
    if r.warnings.is_empty() {
        writeln!(w, "Warnings    none")?;
    } else {
        writeln!(w, "Warnings")?;
        for kind in tracelens::model::WarningKind::ALL {
            if let Some(n) = r.warnings.get(kind.as_str()) {
                writeln!(w, "  {:<20} {:>8}  {}", kind.as_str(), n, kind.description())?;
            }
        }
    }
    Ok(())
}
