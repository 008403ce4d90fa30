//! `tracelens critical-path`: the critical path of every trace (or one),
//! section by section, and the settings the path commands share.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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
    /// Jaeger's strict rule: a child that ends exactly when the next span on the path starts is not
    /// on the path (its time goes to its parent). By default it is: it blocked its parent.
    #[arg(long)]
    strict_sibling_order: bool,
    /// Apply Jaeger's clock-skew adjuster (by host) before the analysis.
    #[arg(long)]
    adjust_clock_skew: bool,
    /// With --adjust-clock-skew: largest shift applied (larger ones are only counted); a bare
    /// number is milliseconds.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = super::duration_or_ms_arg)]
    max_clock_skew: std::time::Duration,
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
        Ok(PathSettings {
            config: CriticalPathConfig {
                sibling_overlap_tolerance: self.sibling_overlap_tolerance,
                link_back_to_back: !self.strict_sibling_order,
            },
            max_skew_ns: self.adjust_clock_skew.then_some(self.max_clock_skew.as_nanos().min(u64::MAX as u128) as u64),
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
            "tracelens: note: clock skew: {} shifted, {} over --max-clock-skew not applied",
            render::count(skew.adjusted, "span"),
            render::count(skew.over_limit, "shift")
        );
    }
}

/// Flags of `tracelens critical-path`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens critical-path dump.jsonl\n  tracelens critical-path dump.jsonl --trace-id 0af7651916cd43dd8448eb211c80319c\n  tracelens critical-path --format json --top 50 --adjust-clock-skew traces/\n\nThe critical path is the chain of work that decided the trace's duration: walking back from the\nend, the last child to finish at or before the current point (and to start before it) is on the\npath; time no child covers belongs to the span itself (Jaeger's semantics, with back-to-back\nchildren on the path). Consumers of producers do not block. A trace in several fragments (orphans\nwhose parent is missing) gets one path over a reconstructed root: time in no known span is a gap.\nSpans running past their parent (asynchronous work) are named in a warning."
)]
pub struct CriticalPathArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    path: PathArgs,
    /// Only this trace (32 hex digits).
    #[arg(long, value_name = "ID", conflicts_with_all = ["top", "all"])]
    trace_id: Option<String>,
    /// How many traces to print: the slowest first.
    #[arg(long, value_name = "N", default_value_t = super::DEFAULT_TOP)]
    top: usize,
    /// Print every trace, in input order.
    #[arg(long, conflicts_with = "top")]
    all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PathFormat::Table)]
    format: PathFormat,
}

#[derive(Serialize)]
struct SectionView {
    span_id: String,
    service: String,
    operation: String,
    start_unix_nano: u64,
    end_unix_nano: u64,
    duration_ns: u64,
    /// The span's exclusive (self) time: its duration less its children's union.
    self_time_ns: u64,
    /// The span's critical-path time over all its sections in this trace.
    span_critical_path_ns: u64,
}

#[derive(Serialize)]
struct OutsideView {
    span_id: String,
    service: String,
    operation: String,
    /// How long the span runs outside its parent.
    outside_ns: u64,
}

#[derive(Serialize)]
struct TraceView {
    trace_id: String,
    /// Start of the interval the path covers.
    start_unix_nano: u64,
    /// The interval the path covers: from the earliest fragment's start to the latest fragment's end.
    duration_ns: u64,
    /// Fragments joined under one reconstructed root: spans without a parent, plus one per missing
    /// parent that orphans name (1 for a whole trace).
    fragments: usize,
    /// Time on the path in no known span (missing parents, gaps between fragments).
    gap_ns: u64,
    critical_path: Vec<SectionView>,
    /// Spans running past their parent's end or before its start (asynchronous work or clock
    /// skew), longest outside first; their time outside is not on the path.
    outside_parent: Vec<OutsideView>,
}

fn view(dict: &Dictionary, trace: &Trace, cp: &CriticalPath) -> TraceView {
    let own = self_times(trace);
    let on_path = cp.time_per_span(trace.len());
    let name = |i: usize| {
        let span = &trace.spans[i];
        (span.span_id.to_hex(), dict.resolve(span.service).to_string(), dict.resolve(span.name).to_string())
    };
    TraceView {
        trace_id: trace.trace_id.to_hex(),
        duration_ns: cp.duration_ns,
        start_unix_nano: cp.start_ns,
        fragments: cp.fragments,
        gap_ns: cp.gap_ns,
        critical_path: cp
            .sections
            .iter()
            .map(|s| {
                let (span_id, service, operation) = name(s.span);
                SectionView {
                    span_id,
                    service,
                    operation,
                    start_unix_nano: s.start_ns,
                    end_unix_nano: s.end_ns,
                    duration_ns: s.len_ns(),
                    self_time_ns: own[s.span],
                    span_critical_path_ns: on_path[s.span],
                }
            })
            .collect(),
        outside_parent: cp
            .outside
            .iter()
            .map(|o| {
                let (span_id, service, operation) = name(o.span);
                OutsideView { span_id, service, operation, outside_ns: o.outside_ns }
            })
            .collect(),
    }
}

/// A trace kept among the slowest, ordered by (duration, reversed id).
struct Slow {
    key: (u64, Reverse<TraceId>),
    view: TraceView,
}

impl PartialEq for Slow {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Slow {}

impl PartialOrd for Slow {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Slow {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// Spans named in the table's warning about spans outside their parent.
const OUTSIDE_NAMED: usize = 5;

fn write_table(w: &mut dyn Write, v: &TraceView) -> io::Result<()> {
    writeln!(
        w,
        "Trace {}  critical path {} in {}",
        v.trace_id,
        render::duration(v.duration_ns),
        render::count(v.critical_path.len() as u64, "section")
    )?;
    if v.fragments > 1 {
        writeln!(
            w,
            "  note: {} (several roots, or orphans whose parent is missing) joined under one \
             reconstructed root; {} of the path is in no known span",
            render::count(v.fragments as u64, "fragment"),
            render::duration(v.gap_ns)
        )?;
    }
    if !v.outside_parent.is_empty() {
        let named: Vec<String> = v
            .outside_parent
            .iter()
            .take(OUTSIDE_NAMED)
            .map(|o| {
                format!("{} {} [{}] {} outside", o.service, o.operation, o.span_id, render::duration(o.outside_ns))
            })
            .collect();
        let more = v.outside_parent.len().saturating_sub(OUTSIDE_NAMED);
        writeln!(
            w,
            "  warning: {} {} outside {} parent (asynchronous work or clock skew), not on the path: {}{}",
            v.outside_parent.len(),
            if v.outside_parent.len() == 1 { "span runs" } else { "spans run" },
            if v.outside_parent.len() == 1 { "its" } else { "their" },
            named.join(", "),
            if more > 0 { format!(", and {more} more") } else { String::new() }
        )?;
    }
    let origin = v.start_unix_nano;
    let mut table = render::TextTable::new(&[
        ("AT", render::Align::Right),
        ("DURATION", render::Align::Right),
        ("SHARE", render::Align::Right),
        ("SERVICE", render::Align::Left),
        ("OPERATION", render::Align::Left),
    ])
    .indent(2);
    for s in &v.critical_path {
        table.row(vec![
            format!("+{}", render::duration(s.start_unix_nano - origin)),
            render::duration(s.duration_ns),
            format!("{:.1}%", 100.0 * s.duration_ns as f64 / v.duration_ns.max(1) as f64),
            s.service.clone(),
            s.operation.clone(),
        ]);
    }
    table.write(w)?;
    writeln!(w)
}

fn write_one(out: &mut dyn Write, format: PathFormat, v: &TraceView, first: bool) -> io::Result<()> {
    match format {
        PathFormat::Json => {
            // The opening comes with the first trace, so that a run that
            // fails before any trace writes nothing.
            out.write_all(if first { b"{\"traces\":[" as &[u8] } else { b"," })?;
            out.write_all(b"\n")?;
            serde_json::to_writer(&mut *out, v).map_err(io::Error::other)
        }
        PathFormat::Table => write_table(out, v),
    }
}

pub fn run(args: CriticalPathArgs) -> anyhow::Result<()> {
    let inputs = args.input.validate()?.analysis_only();
    let settings = args.path.validate()?;
    if args.top == 0 {
        return Err(UsageError("--top must be at least 1".to_string()).into());
    }
    let wanted = match &args.trace_id {
        None => None,
        Some(text) => match TraceId::from_text(text) {
            ParsedId::Valid(id) | ParsedId::Opaque(id) => Some(id),
            _ => return Err(UsageError(format!("--trace-id {text:?} is not a trace id")).into()),
        },
    };
    // Every trace in input order (--all, --trace-id), or the slowest kept
    // aside in a min-heap, the least slow (ties: the larger id) on top.
    let stream = args.all || wanted.is_some();
    let mut slowest: BinaryHeap<Reverse<Slow>> = BinaryHeap::with_capacity(args.top.min(1 << 16) + 1);
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut written = 0u64;
    let mut traces = 0u64;
    let mut skew = SkewReport::default();
    let mut failure: Option<io::Error> = None;
    let report = inputs.run(&mut |dict, mut trace| {
        if failure.is_some() || wanted.is_some_and(|id| id != trace.trace_id) {
            return;
        }
        traces += 1;
        let cp = settings.path(dict, &mut trace, &mut skew);
        if stream {
            if let Err(e) = write_one(&mut out, args.format, &view(dict, &trace, &cp), written == 0) {
                failure = Some(e);
            }
            written += 1;
            return;
        }
        let key = (cp.duration_ns, Reverse(trace.trace_id));
        if slowest.len() == args.top && slowest.peek().is_some_and(|least| key <= least.0.key) {
            return;
        }
        slowest.push(Reverse(Slow { key, view: view(dict, &trace, &cp) }));
        if slowest.len() > args.top {
            slowest.pop();
        }
    })?;
    if let Some(e) = failure {
        return Err(e).context("writing the critical paths");
    }
    for Reverse(slow) in slowest.into_sorted_vec() {
        write_one(&mut out, args.format, &slow.view, written == 0).context("writing the critical paths")?;
        written += 1;
    }
    if args.format == PathFormat::Json {
        if written == 0 {
            out.write_all(b"{\"traces\":[")?;
        }
        write!(out, "\n],\"traces_in_input\":{traces}}}\n")?;
    } else if !stream && traces > written {
        writeln!(
            out,
            "The {} slowest of {} (--top N for more, --all for every trace).",
            written,
            render::count(traces, "trace")
        )?;
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
