//! `tracelens analyze`: reads trace dumps and prints a summary of what is in
//! them — inputs and detected formats, spans, traces, services, time range,
//! and every kind of damage that was repaired.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use tracelens::analysis::bottleneck::BottleneckView;
use tracelens::analysis::clock_skew::SkewReport;
use tracelens::analysis::graph::GraphView;
use tracelens::analysis::metrics::{DEFAULT_MAX_OPERATIONS_PER_SERVICE, OperationView};
use tracelens::analysis::recommend::{Recommendation, recommendations};
use tracelens::analysis::{Summary, TraceAnalyses};
use tracelens::model::{Dictionary, Warnings};
use tracelens::read::Input;
use tracelens::render;

use super::UsageError;
use super::critical_path::{PathArgs, print_skew};
use super::input::{self, InputArgs};

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
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    path: PathArgs,
    #[command(flatten)]
    report: ReportArgs,
    /// Also write what was analysed to FILE as a partial that `tracelens merge` combines exactly with
    /// others (each trace must lie within one command's inputs).
    #[arg(long, value_name = "FILE")]
    partial: Option<std::path::PathBuf>,
}

/// The report's flags, shared by `analyze` and `merge`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub(super) format: OutputFormat,
    /// Distinct operation names kept per service; spans with further names go to one "(overflow)" operation.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_OPERATIONS_PER_SERVICE)]
    pub(super) max_operations: usize,
    /// Operations listed in the table's slowest and most-failing sections.
    #[arg(long, value_name = "N", default_value_t = super::DEFAULT_TOP)]
    pub(super) top: usize,
}

impl ReportArgs {
    /// The operation cap, checked.
    pub(super) fn max_operations(&self) -> anyhow::Result<usize> {
        if self.max_operations == 0 {
            return Err(UsageError("--max-operations must be at least 1".to_string()).into());
        }
        Ok(self.max_operations)
    }
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let max_operations = args.report.max_operations()?;
    let inputs = args.input.validate()?.analysis_only();
    let settings = args.path.validate()?;
    let mut summary = Summary::default();
    let mut analyses = TraceAnalyses::new(&Dictionary::default(), max_operations);
    let mut skew = SkewReport::default();
    let report = inputs.run(&mut |dict, mut trace| {
        summary.add_trace(&trace);
        let cp = settings.path(dict, &mut trace, &mut skew);
        analyses.add_trace_with_path(&trace, &cp);
    })?;
    if let Some(path) = &args.partial {
        let partial = super::merge::partial(&report.dict, &analyses, &summary, report.spans_read(), &report.warnings);
        super::merge::write_partials(path, &[partial])?;
    }
    analyses.finish();
    let inputs = report
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
        .collect();
    let skipped = report
        .skipped
        .iter()
        .map(|(input, reason)| SkippedLine { path: input.name(), reason: reason.clone() })
        .collect();
    let out =
        AnalyzeReport::new(inputs, skipped, report.spans_read(), &summary, &report.warnings, &report.dict, &analyses);
    print_report(&out, args.report.format, args.report.top)?;
    print_overflow(&report.dict, &analyses, max_operations);
    print_skew(&settings, &skew);
    input::print_notes(&report);
    Ok(())
}

/// What `analyze` (and `merge`) report.
#[derive(Serialize)]
pub(super) struct AnalyzeReport {
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
    /// The service dependency graph.
    graph: GraphView,
    /// Span metrics per service, operation and kind.
    operations: Vec<OperationView>,
    /// Critical-path aggregates.
    bottlenecks: BottleneckView,
    /// Advice from the bottleneck patterns, most time saved first.
    recommendations: Vec<Recommendation>,
}

#[derive(Serialize)]
pub(super) struct SkippedLine {
    path: String,
    reason: String,
}

/// One input in a report.
#[derive(Serialize)]
pub(super) struct InputLine {
    pub(super) path: String,
    pub(super) format: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) compression: Vec<&'static str>,
    pub(super) spans: u64,
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
    /// The report over what was read: finished `analyses` and the
    /// `summary`, with names from `dict`.
    pub(super) fn new(
        inputs: Vec<InputLine>,
        skipped: Vec<SkippedLine>,
        spans_read: u64,
        summary: &Summary,
        warnings: &Warnings,
        dict: &Dictionary,
        analyses: &TraceAnalyses,
    ) -> Self {
        let time_range = match (summary.first_start_ns, summary.last_end_ns) {
            (Some(start), Some(end)) => Some(TimeRange {
                start: tracelens::model::time::rfc3339(start),
                end: tracelens::model::time::rfc3339(end),
                start_unix_nano: start,
                end_unix_nano: end,
                duration_ns: end.saturating_sub(start),
            }),
            _ => None,
        };
        let bottlenecks = analyses.bottlenecks.view(dict);
        AnalyzeReport {
            recommendations: recommendations(&bottlenecks),
            inputs,
            spans: spans_read,
            spans_analyzed: summary.spans,
            traces: summary.traces,
            services: summary.service_names(dict),
            error_spans: summary.error_spans,
            root_spans: summary.root_spans,
            time_range,
            warnings: warnings.iter().map(|(k, n)| (k.as_str(), n)).collect(),
            skipped,
            graph: analyses.graph.view(dict),
            operations: analyses.metrics.views(dict),
            bottlenecks,
        }
    }
}

/// Prints a report in `format` to standard output.
pub(super) fn print_report(out: &AnalyzeReport, format: OutputFormat, top: usize) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut stdout, out).context("writing the report")?;
            writeln!(stdout)?;
        }
        OutputFormat::Table => write_table(&mut stdout, out, top)?,
    }
    stdout.flush()?;
    Ok(())
}

/// Notes the services whose operation names went past the cap.
pub(super) fn print_overflow(dict: &Dictionary, analyses: &TraceAnalyses, max_operations: usize) {
    for (service, n) in analyses.metrics.overflowed() {
        eprintln!(
            "tracelens: note: {}: {} had operation names past the first {} and are counted as {:?}",
            dict.resolve(service),
            render::count(n, "span"),
            max_operations,
            tracelens::analysis::metrics::OVERFLOW_OPERATION
        );
    }
}

fn write_table(w: &mut impl Write, r: &AnalyzeReport, top: usize) -> io::Result<()> {
    writeln!(w, "Inputs")?;
    let mut t = render::TextTable::new(&[
        ("PATH", render::Align::Left),
        ("FORMAT", render::Align::Left),
        ("SPANS", render::Align::Right),
    ])
    .indent(2);
    for i in &r.inputs {
        let mut format = i.format.clone();
        for c in &i.compression {
            format.push('+');
            format.push_str(c);
        }
        t.row(vec![i.path.clone(), format, i.spans.to_string()]);
    }
    t.write(w)?;
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
    writeln!(w, "Errors      {} with status ERROR", render::count(r.error_spans, "span"))?;
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
    writeln!(w)?;
    w.write_all(render::graph::table(&r.graph).as_bytes())?;
    write_operations(w, r, top)?;
    writeln!(w)?;
    super::bottlenecks::write_table(w, &r.bottlenecks, top)?;
    write_recommendations(w, &r.recommendations, top)
}

/// The first `top` recommendations, each with its confidence and evidence.
fn write_recommendations(w: &mut impl Write, recommendations: &[Recommendation], top: usize) -> io::Result<()> {
    writeln!(w)?;
    if recommendations.is_empty() {
        return writeln!(w, "Recommendations: none (no pattern worth a look)");
    }
    writeln!(w, "Recommendations")?;
    for (i, r) in recommendations.iter().take(top).enumerate() {
        writeln!(w, "{:>3}. {}", i + 1, r.advice)?;
        writeln!(
            w,
            "     {} confidence ({:.1}% of traces): {}; e.g. trace {}",
            r.confidence,
            100.0 * r.share,
            r.evidence,
            r.example_trace_id
        )?;
    }
    if recommendations.len() > top {
        writeln!(w, "     … and {} more (--top, or --format json)", recommendations.len() - top)?;
    }
    Ok(())
}

fn write_operations(w: &mut impl Write, r: &AnalyzeReport, top: usize) -> io::Result<()> {
    let section = |w: &mut dyn Write, title: &str, rows: &[&OperationView]| {
        writeln!(w)?;
        writeln!(w, "{title}")?;
        let mut t = render::TextTable::new(&[
            ("SERVICE", render::Align::Left),
            ("OPERATION", render::Align::Left),
            ("KIND", render::Align::Left),
            ("CALLS", render::Align::Right),
            ("ERRORS", render::Align::Right),
            ("RATE", render::Align::Right),
            ("P50", render::Align::Right),
            ("P99", render::Align::Right),
        ])
        .indent(2);
        for o in rows {
            let latency = |ns: u64| if o.latency.count > 0 { render::duration(ns) } else { "-".to_string() };
            t.row(vec![
                o.service.clone(),
                o.operation.clone(),
                o.kind.to_string(),
                o.calls.to_string(),
                o.errors.to_string(),
                format!("{:.2}%", 100.0 * o.error_rate),
                latency(o.latency.p50_ns),
                latency(o.latency.p99_ns),
            ]);
        }
        t.write(w)
    };
    let mut slowest: Vec<&OperationView> = r.operations.iter().filter(|o| o.latency.count > 0).collect();
    slowest.sort_by(|a, b| b.latency.p99_ns.cmp(&a.latency.p99_ns).then(b.calls.cmp(&a.calls)));
    slowest.truncate(top);
    section(w, &format!("Slowest operations (by p99, top {top})"), &slowest)?;
    let untimed: u64 = r.operations.iter().map(|o| o.without_duration).sum();
    if untimed > 0 {
        writeln!(
            w,
            "  {} without a usable duration: counted in CALLS, left out of P50 and P99",
            render::count(untimed, "span")
        )?;
    }
    let mut failing: Vec<&OperationView> = r.operations.iter().filter(|o| o.errors > 0).collect();
    failing.sort_by(|a, b| b.error_rate.total_cmp(&a.error_rate).then(b.errors.cmp(&a.errors)));
    if failing.is_empty() {
        writeln!(w)?;
        writeln!(w, "Most failing operations: none (no span has status ERROR)")?;
    } else {
        failing.truncate(top);
        section(w, &format!("Most failing operations (by error rate, top {top})"), &failing)?;
    }
    Ok(())
}
