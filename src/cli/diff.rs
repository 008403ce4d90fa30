//! `tracelens diff`: every operation and edge whose latency or error rate
//! changed between two inputs, with the judge's tests.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use tracelens::judge::Arm;
use tracelens::judge::diff::{Diff, DiffReport, Direction};
use tracelens::render;

use super::input;
use super::verdict::{JudgeArgs, JudgeFormat};

/// Flags of `tracelens diff`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens diff before.jsonl after.jsonl\n  tracelens diff --format json yesterday/ today/\n\nEach service's latency median, p99 and error rate, overall, per operation and per downstream edge,\nare tested as `verdict` tests them; regressions are listed first, then improvements (only rows whose\nwhole interval lies on the better side of no change).\n\nExit code: 1 when anything regressed, 0 otherwise, 2 usage or input error."
)]
pub struct DiffArgs {
    /// The baseline input (file, directory or -).
    #[arg(value_name = "BASELINE_INPUT")]
    baseline: PathBuf,
    /// The candidate input.
    #[arg(value_name = "CANDIDATE_INPUT")]
    candidate: PathBuf,
    /// Fail on the first malformed record of a stream instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = JudgeFormat::Table)]
    format: JudgeFormat,
    #[command(flatten)]
    judge: JudgeArgs,
}

/// Runs the diff; the exit code is 1 when anything regressed, 0 otherwise.
pub fn run(args: DiffArgs) -> anyhow::Result<u8> {
    let config = args.judge.validate()?;
    let mut diff = Diff::new();
    for (path, arm) in [(&args.baseline, Arm::Baseline), (&args.candidate, Arm::Candidate)] {
        let inputs = input::inputs_for(std::slice::from_ref(path), args.strict)?.analysis_only();
        let report = inputs.run(&mut |dict, trace| diff.add_trace(dict, &trace, arm))?;
        input::print_notes(&report);
    }
    let report = diff.report(&config);
    super::write_answer(|out| match args.format {
        JudgeFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)
        }
        JudgeFormat::Table => write_table(out, &report),
    })?;
    Ok(u8::from(report.changes.iter().any(|c| c.direction == Direction::Regressed)))
}

fn write_table(w: &mut dyn Write, r: &DiffReport) -> io::Result<()> {
    let regressed = r.changes.iter().filter(|c| c.direction == Direction::Regressed).count() as u64;
    writeln!(
        w,
        "{} tested: {} regressed, {} improved",
        render::count(r.tested, "metric"),
        regressed,
        r.changes.len() as u64 - regressed
    )?;
    if !r.changes.is_empty() {
        let mut t = render::TextTable::new(&[
            ("CHANGE", render::Align::Left),
            ("BASELINE", render::Align::Right),
            ("CANDIDATE", render::Align::Right),
            ("RATIO", render::Align::Right),
            ("CI", render::Align::Right),
            ("P", render::Align::Right),
            ("METRIC", render::Align::Left),
        ]);
        for c in &r.changes {
            let m = &c.metric;
            let value = |v: f64| super::verdict::value(m.signal, v);
            t.row(vec![
                c.direction.as_str().to_string(),
                value(m.baseline_value),
                value(m.candidate_value),
                format!("{:.3}", m.estimate),
                format!("{:.3}-{:.3}", m.ci[0], m.ci[1]),
                render::p_value(m.p_adjusted.unwrap_or(m.p_value)),
                m.name.clone(),
            ]);
        }
        t.write(w)?;
    }
    for a in &r.appeared {
        writeln!(w, "appeared: {a}")?;
    }
    for d in &r.disappeared {
        writeln!(w, "disappeared: {d}")?;
    }
    Ok(())
}
