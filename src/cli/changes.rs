//! `tracelens changes`: what got worse (or better) in each window of time
//! of a dump, anywhere, against a baseline before it.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use tracelens::judge::changes::{BaselineRule, ChangeReport, ChangeStatus, History, Range, baseline_for};
use tracelens::judge::diff::Direction;
use tracelens::model::time::rfc3339;
use tracelens::render;

use super::input;
use super::verdict::{JudgeArgs, JudgeFormat};
use super::{UsageError, duration_arg};

/// Most windows one run judges.
const MAX_WINDOWS: u64 = 1_000;

/// Which baseline each window is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BaselineArg {
    /// The same window a day earlier when the data reaches back that far, else the hour before.
    Auto,
    /// The hour before the window.
    PreviousHour,
    /// The same window a day earlier.
    PreviousDay,
}

/// Flags of `tracelens changes`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens changes dumps/\n  tracelens changes --window 5m --format json today.pb\n  tracelens changes --window 15m --until 2026-11-01T12:00:00Z --last 1 dumps/\n\nThe input's time range is cut into windows of --window, back from its last trace start (or --until).\nEach window is compared with its baseline: the same window a day earlier when the input reaches back\nthat far, else the hour before it (cut at the input's start; a window with less than its own width of\ndata before it is not judged). Every service's latency median, p99 and error rate, overall, per\noperation and per downstream edge, are tested as `verdict` tests them, with one false-discovery\nadjustment over everything tested; changes are ranked by the critical-path time they add per second.\n\nExit code: 1 when anything regressed in a window, 0 otherwise, 2 usage or input error."
)]
pub struct ChangesArgs {
    /// Trace dumps: files, directories, or - for standard input.
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
    /// Width of each window judged.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = duration_arg)]
    window: std::time::Duration,
    /// End of the last window (RFC 3339 or unix time); default: the last trace start.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Judge only the last N windows.
    #[arg(long, value_name = "N")]
    last: Option<u64>,
    /// The baseline of each window.
    #[arg(long, value_enum, default_value_t = BaselineArg::Auto)]
    baseline: BaselineArg,
    /// Fail on the first malformed record of a stream instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = JudgeFormat::Table)]
    format: JudgeFormat,
    #[command(flatten)]
    judge: JudgeArgs,
}

/// The answer: every window judged, oldest first.
#[derive(Serialize)]
struct Answer {
    windows: Vec<ChangeReport>,
}

/// Runs the detection; the exit code is 1 when anything regressed.
pub fn run(args: ChangesArgs) -> anyhow::Result<u8> {
    let config = args.judge.validate()?;
    let width = u64::try_from(args.window.as_nanos()).unwrap_or(u64::MAX);
    if width < 1_000_000_000 {
        return Err(UsageError("--window must be at least 1s".to_string()).into());
    }
    let until = match &args.until {
        Some(t) => Some(
            tracelens::model::time::parse_time(t)
                .ok_or_else(|| UsageError(format!("--until {t:?} is not a time (RFC 3339 or unix)")))?,
        ),
        None => None,
    };
    if args.last == Some(0) {
        return Err(UsageError("--last must be at least 1".to_string()).into());
    }
    let rule = match args.baseline {
        BaselineArg::Auto => BaselineRule::Default,
        BaselineArg::PreviousHour => BaselineRule::PreviousHour,
        BaselineArg::PreviousDay => BaselineRule::PreviousDay,
    };
    let mut history = History::new();
    let inputs = input::inputs_for(&args.inputs, args.strict)?.analysis_only();
    let report = inputs.run(&mut |dict, trace| history.add_trace(dict, &trace))?;
    input::print_notes(&report);
    // The run's one dictionary: names are resolved as the windows are judged.
    let dictionary = &report.dict;
    let Some((first, last)) = history.range() else {
        return Err(UsageError("the input holds no span with a start and end time".to_string()).into());
    };
    let end = until.unwrap_or(last + 1);
    let mut windows = Vec::new();
    let mut k = 1;
    while let Some(start) = end.checked_sub(k * width) {
        if args.last.is_some_and(|n| k > n) || start < first.saturating_sub(width) {
            break;
        }
        if k > MAX_WINDOWS {
            eprintln!(
                "tracelens: judged the last {MAX_WINDOWS} windows only; --until or a wider --window reaches the earlier ones"
            );
            break;
        }
        let window = Range::new(start, start + width);
        if let Some(baseline) = baseline_for(window, rule, first) {
            windows.push((window, baseline));
        }
        k += 1;
    }
    windows.reverse();
    if windows.is_empty() {
        let span = render::duration(last.saturating_sub(first));
        return Err(UsageError(format!(
            "the input's traces start over {span}: no window of {} has a baseline of its width before it; try a smaller --window",
            render::duration(width)
        ))
        .into());
    }
    let answer =
        Answer { windows: windows.into_iter().map(|(w, b)| history.changes(dictionary, w, b, &config)).collect() };
    super::write_answer(|out| match args.format {
        JudgeFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &answer)?;
            writeln!(out)
        }
        JudgeFormat::Table => write_table(out, &answer),
    })?;
    let regressed = answer.windows.iter().any(|w| w.changes.iter().any(|c| c.direction == Direction::Regressed));
    Ok(u8::from(regressed))
}

fn write_table(w: &mut dyn Write, answer: &Answer) -> io::Result<()> {
    for (i, r) in answer.windows.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        writeln!(
            w,
            "{} .. {} against {} .. {}: {} ({})",
            rfc3339(r.window.range.start_unix_nano),
            rfc3339(r.window.range.end_unix_nano),
            rfc3339(r.baseline.range.start_unix_nano),
            rfc3339(r.baseline.range.end_unix_nano),
            r.status.as_str(),
            r.reason
        )?;
        if r.status != ChangeStatus::Changed {
            continue;
        }
        let mut t = render::TextTable::new(&[
            ("CHANGE", render::Align::Left),
            ("BASELINE", render::Align::Right),
            ("WINDOW", render::Align::Right),
            ("RATIO", render::Align::Right),
            ("CI", render::Align::Right),
            ("P_ADJ", render::Align::Right),
            ("PATH/S", render::Align::Right),
            ("METRIC", render::Align::Left),
        ]);
        for c in &r.changes {
            let m = &c.metric;
            let value = |v: f64| super::verdict::value(m.signal, v);
            let path = c.impact.path_ns_per_second;
            let path = if path >= 0 {
                format!("+{}", render::duration(path as u64))
            } else {
                format!("-{}", render::duration(path.unsigned_abs()))
            };
            let version = c.new_version.as_ref().map(|v| format!(" (now {v})")).unwrap_or_default();
            t.row(vec![
                c.direction.as_str().to_string(),
                value(m.baseline_value),
                value(m.candidate_value),
                format!("{:.3}", m.estimate),
                format!("{:.3}-{:.3}", m.ci[0], m.ci[1]),
                render::p_value(m.p_adjusted.unwrap_or(m.p_value)),
                path,
                format!("{}{version}", m.name),
            ]);
        }
        t.write(w)?;
        for v in &r.version_changes {
            writeln!(w, "version: {} {} -> {}", v.service, v.baseline.join(", "), v.window.join(", "))?;
        }
        for a in &r.appeared {
            writeln!(w, "appeared: {a}")?;
        }
        for d in &r.disappeared {
            writeln!(w, "disappeared: {d}")?;
        }
    }
    Ok(())
}
