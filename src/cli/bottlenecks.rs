//! `tracelens bottlenecks`: critical-path time aggregated over every trace,
//! per operation and per call path, with patterns worth a look.

use std::io::{self, Write};

use clap::Args;

use tracelens::analysis::Bottlenecks;
use tracelens::analysis::bottleneck::{BottleneckConfig, BottleneckView, OperationBottleneck};
use tracelens::analysis::clock_skew::SkewReport;
use tracelens::render;

use super::UsageError;
use super::critical_path::{PathArgs, PathFormat, print_skew};
use super::input::{self, InputArgs};

/// Flags of `tracelens bottlenecks`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens bottlenecks dump.pb\n  tracelens bottlenecks --format json --top 20 traces/\n  tracelens bottlenecks --sibling-overlap-tolerance 0.01 dump.jsonl  # CRISP\n\nEach operation's share is its critical-path time over all traces' durations: the time that, made\nfaster, would make requests faster. Patterns: N+1 (sequential calls to one operation from one\nparent) and spans whose own work is most of their trace's critical path."
)]
pub struct BottlenecksArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    path: PathArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PathFormat::Table)]
    format: PathFormat,
    /// Rows per table section (JSON always has every row).
    #[arg(long, value_name = "N", default_value_t = super::DEFAULT_TOP)]
    top: usize,
    /// Sequential calls from one parent to one operation that make an N+1 pattern.
    #[arg(long, value_name = "N", default_value_t = BottleneckConfig::default().n_plus_one_min)]
    n_plus_one_min: usize,
}

pub fn run(args: BottlenecksArgs) -> anyhow::Result<()> {
    let inputs = args.input.validate()?.analysis_only();
    let settings = args.path.validate()?;
    if args.n_plus_one_min < 2 {
        return Err(UsageError("--n-plus-one-min must be at least 2".to_string()).into());
    }
    let mut bottlenecks =
        Bottlenecks::new(BottleneckConfig { n_plus_one_min: args.n_plus_one_min, ..Default::default() });
    let mut skew = SkewReport::default();
    let report = inputs.run(&mut |dict, mut trace| {
        let cp = settings.path(dict, &mut trace, &mut skew);
        bottlenecks.add_trace(&trace, &cp);
    })?;
    let view = bottlenecks.view(&report.dict);
    let mut out = io::stdout().lock();
    match args.format {
        PathFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &view)?;
            writeln!(out)?;
        }
        PathFormat::Table => write_table(&mut out, &view, args.top)?,
    }
    out.flush()?;
    print_skew(&settings, &skew);
    input::print_notes(&report);
    Ok(())
}

fn rows(w: &mut dyn Write, title: &str, items: &[OperationBottleneck], top: usize, path: bool) -> io::Result<()> {
    writeln!(w, "{title}")?;
    let mut t = render::TextTable::new(&[
        ("SHARE", render::Align::Right),
        ("CP TOTAL", render::Align::Right),
        ("TRACES", render::Align::Right),
        ("P50", render::Align::Right),
        ("P95", render::Align::Right),
        ("P99", render::Align::Right),
        (if path { "CALL PATH" } else { "OPERATION" }, render::Align::Left),
    ])
    .indent(2);
    for o in items.iter().take(top) {
        let name =
            if path { o.call_path.clone().unwrap_or_default() } else { format!("{} {}", o.service, o.operation) };
        t.row(vec![
            format!("{:.2}%", 100.0 * o.share),
            render::duration(o.critical_path_ns_total),
            o.traces_on_path.to_string(),
            render::duration(o.p50_ns),
            render::duration(o.p95_ns),
            render::duration(o.p99_ns),
            name,
        ]);
    }
    t.write(w)?;
    if items.len() > top {
        writeln!(w, "  … {} more (--top N)", items.len() - top)?;
    }
    Ok(())
}

/// The bottleneck tables, also used by `analyze`.
pub fn write_table(w: &mut dyn Write, v: &BottleneckView, top: usize) -> io::Result<()> {
    writeln!(
        w,
        "Bottlenecks over {} ({} of critical path)",
        render::count(v.traces_analyzed, "trace"),
        render::duration(v.total_duration_ns)
    )?;
    if v.traces_fragmented > 0 {
        writeln!(
            w,
            "  note: {} in several fragments (orphans whose parent is missing); {} of their paths is in no \
             known span",
            render::count(v.traces_fragmented, "trace"),
            render::duration(v.gap_ns)
        )?;
    }
    if v.traces_with_spans_outside_parent > 0 {
        writeln!(
            w,
            "  warning: {} with spans running outside their parent (asynchronous work or clock skew): that \
             time is on no critical path (`tracelens critical-path` names the spans)",
            render::count(v.traces_with_spans_outside_parent, "trace")
        )?;
    }
    rows(w, "By operation", &v.operations, top, false)?;
    writeln!(w)?;
    rows(w, "By call path", &v.call_paths, top, true)?;
    writeln!(w)?;
    if v.patterns.is_empty() {
        writeln!(w, "Patterns: none found")?;
    } else {
        writeln!(w, "Patterns")?;
        let mut t = render::TextTable::new(&[
            ("KIND", render::Align::Left),
            ("FINDING", render::Align::Left),
            ("EXAMPLE TRACE", render::Align::Left),
        ])
        .indent(2);
        for p in v.patterns.iter().take(top) {
            t.row(vec![p.kind.to_string(), p.description.clone(), p.example_trace_id.clone()]);
        }
        t.write(w)?;
        if v.patterns.len() > top {
            writeln!(w, "  … {} more (--top N)", v.patterns.len() - top)?;
        }
    }
    Ok(())
}
