//! `tracelens critical-path`: the critical path of every trace (or one),
//! section by section, and the settings the path commands share.

use std::io::{self, Write};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use tracelens::analysis::clock_skew::{self, SkewReport};
use tracelens::analysis::critical_path::{CriticalPath, CriticalPathConfig, critical_path, self_times};
use tracelens::model::{Dictionary, ParsedId, Trace, TraceId};
use tracelens::render;

use super::UsageError;
use super::input::{self, InputArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PathFormat {
    /// Aligned text.
    Table,
    /// JSON.
    Json,
}

/// Settings shared by `critical-path`, `bottlenecks` and `analyze`.
#[derive(Debug, Clone, Args)]
pub struct PathArgs {
    /// Siblings overlapping by less than this fraction of their parent's duration count as
    /// sequential (CRISP uses 0.01).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    sibling_overlap_tolerance: f64,
    /// Apply Jaeger's clock-skew adjuster (by host) before the analysis.
    #[arg(long)]
    adjust_clock_skew: bool,
    /// With --adjust-clock-skew: largest shift applied, in milliseconds (larger ones are only counted).
    #[arg(long, value_name = "MS", default_value_t = 1000.0)]
    max_clock_skew: f64,
}

/// Validated path settings.
#[derive(Clone, Copy, Debug)]
pub struct PathSettings {
    pub config: CriticalPathConfig,
    max_skew_ns: Option<u64>,
}

impl PathArgs {
    pub fn validate(&self) -> anyhow::Result<PathSettings> {
        if !(0.0..1.0).contains(&self.sibling_overlap_tolerance) {
            return Err(UsageError("--sibling-overlap-tolerance must be in [0, 1)".to_string()).into());
        }
        if !(self.max_clock_skew >= 0.0 && self.max_clock_skew.is_finite()) {
            return Err(UsageError("--max-clock-skew must be zero or more milliseconds".to_string()).into());
        }
        Ok(PathSettings {
            config: CriticalPathConfig { sibling_overlap_tolerance: self.sibling_overlap_tolerance },
            max_skew_ns: self.adjust_clock_skew.then_some((self.max_clock_skew * 1e6) as u64),
        })
    }
}

impl PathSettings {
    /// Adjusts clock skew if asked, then computes the critical path.
    pub fn path(&self, dict: &Dictionary, trace: &mut Trace, skew: &mut SkewReport) -> CriticalPath {
        if let Some(max) = self.max_skew_ns {
            let hosts: Vec<String> = trace.spans.iter().map(|s| clock_skew::host_key(dict, s)).collect();
            skew.merge(&clock_skew::adjust(trace, &|i| hosts[i].clone(), max));
        }
        critical_path(trace, &self.config)
    }
}

/// Prints the clock-skew counts, when adjustment ran.
pub fn print_skew(settings: &PathSettings, skew: &SkewReport) {
    if settings.max_skew_ns.is_some() {
        eprintln!(
            "tracelens: note: clock skew: {} spans shifted, {} shifts over --max-clock-skew not applied",
            skew.adjusted, skew.over_limit
        );
    }
}

/// Flags of `tracelens critical-path`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens critical-path dump.jsonl --trace-id 0af7651916cd43dd8448eb211c80319c\n  tracelens critical-path --format json --adjust-clock-skew traces/\n\nThe critical path is the chain of work that decided the trace's duration: walking back from the\nroot's end, the last child to finish before the current point is on the path; time no child\ncovers belongs to the span itself (Jaeger's semantics). Consumers of producers do not block."
)]
pub struct CriticalPathArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    path: PathArgs,
    /// Only this trace (32 hex digits).
    #[arg(long, value_name = "ID")]
    trace_id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PathFormat::Table)]
    format: PathFormat,
}

#[derive(Serialize)]
struct SectionView<'a> {
    span_id: String,
    service: &'a str,
    operation: &'a str,
    start_unix_nano: u64,
    end_unix_nano: u64,
    duration_ns: u64,
    /// The span's exclusive (self) time: its duration less its children's union.
    self_time_ns: u64,
    /// The span's critical-path time over all its sections in this trace.
    span_critical_path_ns: u64,
}

#[derive(Serialize)]
struct TraceView<'a> {
    trace_id: String,
    duration_ns: u64,
    critical_path: Vec<SectionView<'a>>,
}

fn view<'a>(dict: &'a Dictionary, trace: &Trace, cp: &CriticalPath) -> TraceView<'a> {
    let own = self_times(trace);
    let on_path = cp.time_per_span(trace.len());
    TraceView {
        trace_id: trace.trace_id.to_hex(),
        duration_ns: cp.duration_ns,
        critical_path: cp
            .sections
            .iter()
            .map(|s| {
                let span = &trace.spans[s.span];
                SectionView {
                    span_id: span.span_id.to_hex(),
                    service: dict.resolve(span.service),
                    operation: dict.resolve(span.name),
                    start_unix_nano: s.start_ns,
                    end_unix_nano: s.end_ns,
                    duration_ns: s.len_ns(),
                    self_time_ns: own[s.span],
                    span_critical_path_ns: on_path[s.span],
                }
            })
            .collect(),
    }
}

fn write_table(w: &mut dyn Write, v: &TraceView<'_>) -> io::Result<()> {
    writeln!(
        w,
        "Trace {}  critical path {} in {} sections",
        v.trace_id,
        render::duration(v.duration_ns),
        v.critical_path.len()
    )?;
    let origin = v.critical_path.first().map_or(0, |s| s.start_unix_nano);
    let width = v.critical_path.iter().map(|s| s.service.chars().count()).max().unwrap_or(7).max(7);
    writeln!(w, "  {:>12} {:>10} {:>6}  {:<width$}  OPERATION", "AT", "DURATION", "SHARE", "SERVICE")?;
    for s in &v.critical_path {
        writeln!(
            w,
            "  {:>12} {:>10} {:>5.1}%  {:<width$}  {}",
            format!("+{}", render::duration(s.start_unix_nano - origin)),
            render::duration(s.duration_ns),
            100.0 * s.duration_ns as f64 / v.duration_ns.max(1) as f64,
            s.service,
            s.operation
        )?;
    }
    writeln!(w)
}

pub fn run(args: CriticalPathArgs) -> anyhow::Result<()> {
    let inputs = args.input.validate()?;
    let settings = args.path.validate()?;
    let wanted = match &args.trace_id {
        None => None,
        Some(text) => match TraceId::from_text(text) {
            ParsedId::Valid(id) | ParsedId::Opaque(id) => Some(id),
            _ => return Err(UsageError(format!("--trace-id {text:?} is not a trace id")).into()),
        },
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut written = 0u64;
    let mut skew = SkewReport::default();
    let mut failure: Option<io::Error> = None;
    if args.format == PathFormat::Json {
        out.write_all(b"{\"traces\":[")?;
    }
    let report = inputs.run(&mut |dict, mut trace| {
        if failure.is_some() || wanted.is_some_and(|id| id != trace.trace_id) {
            return;
        }
        let cp = settings.path(dict, &mut trace, &mut skew);
        let v = view(dict, &trace, &cp);
        let result = match args.format {
            PathFormat::Json => (|| {
                if written > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut out, &v).map_err(io::Error::other)
            })(),
            PathFormat::Table => write_table(&mut out, &v),
        };
        written += 1;
        if let Err(e) = result {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e).context("writing the critical paths");
    }
    if args.format == PathFormat::Json {
        out.write_all(b"\n]}\n")?;
    }
    out.flush()?;
    if let Some(id) = wanted
        && written == 0
    {
        return Err(UsageError(format!("trace {id} is not in the input")).into());
    }
    print_skew(&settings, &skew);
    input::print_notes(&report);
    Ok(())
}
