//! `tracelens report`: one self-contained HTML file of pictures — the
//! service graph, latency histograms, bottlenecks, the slowest and failing
//! traces as waterfalls, a trace comparison and, for a deploy, the verdict
//! with its attribution. Scripts, styles and data are inline; it opens from
//! disk with no network.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use tracelens::analysis::clock_skew::SkewReport;
use tracelens::analysis::metrics::DEFAULT_MAX_OPERATIONS_PER_SERVICE;
use tracelens::analysis::{Summary, TraceAnalyses};
use tracelens::judge::{Arm, Cohorts, Judge, Presence};
use tracelens::model::Dictionary;
use tracelens_ui::data::{Source, VerdictData};
use tracelens_ui::{KeeperConfig, ReportData, TraceKeeper};

use super::UsageError;
use super::critical_path::{PathArgs, print_skew};
use super::input::{self, InputArgs};
use super::verdict::JudgeArgs;

/// Flags of `tracelens report`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens report testdata/shop.otlp.json -o shop.html\n  tracelens report canary.jsonl -o canary.html --service checkout \\\n      --baseline-version 1.9.0 --candidate-version 1.10.0\n  tracelens report after.jsonl -o deploy.html --service checkout \\\n      --baseline-input before.jsonl\n\nThe file holds everything (no network needed to open it): the service graph, latency histograms\nper edge and operation, the bottleneck table, the slowest and failing traces as waterfalls with\ntheir critical paths, a comparison of two traces of one endpoint and, with a service and two\nversions, a deploy time or the baseline's own dumps (--baseline-input), the verdict.\n\nExit code: 0 once the file is written, whatever the verdict (gate with `tracelens verdict`); 2 on\nany failure."
)]
pub struct ReportArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    path: PathArgs,
    /// Write the report here.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Title (default: the inputs' names).
    #[arg(long, value_name = "TEXT")]
    title: Option<String>,
    /// Slowest traces shown as waterfalls.
    #[arg(long, value_name = "N", default_value_t = KeeperConfig::default().slowest)]
    slowest: usize,
    /// Slowest failing traces shown as waterfalls.
    #[arg(long, value_name = "N", default_value_t = KeeperConfig::default().failing)]
    failing: usize,
    /// Spans of the slowest and failing traces the report carries (bounds its size and memory); a trace that does
    /// not fit is left out and counted.
    #[arg(long, value_name = "N", default_value_t = KeeperConfig::default().max_spans)]
    max_trace_spans: usize,
    /// Distinct operation names kept per service; spans with further names go to one "(overflow)" operation.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_OPERATIONS_PER_SERVICE)]
    max_operations: usize,
    /// Judge this service's deploy (with --baseline-version/--candidate-version, --deploy-time or --baseline-input).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// The baseline's dumps (repeatable): the verdict compares them with the INPUTs, which are the candidate (the
    /// pictures show the INPUTs).
    #[arg(long, value_name = "PATH", requires = "service", conflicts_with_all = ["baseline_version", "deploy_time"])]
    baseline_input: Vec<PathBuf>,
    /// The old version (service.version) running beside the new one.
    #[arg(long, value_name = "V", requires_all = ["candidate_version", "service"], conflicts_with = "deploy_time")]
    baseline_version: Option<String>,
    /// The new version.
    #[arg(long, value_name = "V", requires = "baseline_version")]
    candidate_version: Option<String>,
    /// The deploy: traces before it are the baseline, after it (and the warm-up) the candidate.
    #[arg(long, value_name = "TIME", requires = "service")]
    deploy_time: Option<String>,
    /// Time skipped after --deploy-time.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = super::duration_arg)]
    warmup: std::time::Duration,
    #[command(flatten)]
    judge: JudgeArgs,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    if args.max_operations == 0 {
        return Err(UsageError("--max-operations must be at least 1".to_string()).into());
    }
    let judge_config = args.judge.validate()?;
    let by_input = !args.baseline_input.is_empty();
    let mut judge = match (&args.service, &args.baseline_version, &args.deploy_time) {
        (Some(service), _, _) if by_input => Some(Judge::new(service, Cohorts::Inputs)),
        (Some(service), Some(_), _) | (Some(service), _, Some(_)) => {
            let cohorts = super::verdict::cohorts(
                args.baseline_version.as_deref(),
                args.candidate_version.as_deref(),
                args.deploy_time.as_deref(),
                args.warmup,
            )?;
            Some(Judge::new(service, cohorts))
        }
        (Some(_), None, None) => {
            return Err(UsageError(
                "--service judges a deploy: give --baseline-version and --candidate-version, --deploy-time or --baseline-input"
                    .to_string(),
            )
            .into());
        }
        _ => None,
    };
    let inputs = args.input.validate()?.analysis_only();
    let settings = args.path.validate()?;
    if let (Some(judge), true) = (&mut judge, by_input) {
        let baseline = input::inputs_for(&args.baseline_input, false)?.analysis_only();
        let report = baseline.run(&mut |dict, trace| judge.add_trace_as(dict, &trace, Arm::Baseline))?;
        input::print_notes(&report);
    }
    let mut summary = Summary::default();
    let mut analyses = TraceAnalyses::new(&Dictionary::default(), args.max_operations);
    let mut keeper = TraceKeeper::new(KeeperConfig {
        slowest: args.slowest,
        failing: args.failing,
        max_spans: args.max_trace_spans,
    });
    let mut skew = SkewReport::default();
    let report = inputs.run(&mut |dict, mut trace| {
        summary.add_trace(&trace);
        let cp = settings.path(dict, &mut trace, &mut skew);
        analyses.add_trace_with_path(&trace, &cp);
        keeper.add(dict, &trace, &cp);
        match &mut judge {
            Some(judge) if by_input => judge.add_trace_as(dict, &trace, Arm::Candidate),
            Some(judge) => judge.add_trace(dict, &trace),
            None => {}
        }
    })?;
    analyses.finish();
    let names: Vec<String> = report.inputs.iter().map(|(input, _)| input.name()).collect();
    let title = args.title.clone().unwrap_or_else(|| format!("tracelens report: {}", names.join(", ")));
    let source = Source {
        inputs: names,
        spans: summary.spans,
        traces: summary.traces,
        start_unix_nano: summary.first_start_ns.map(|t| t.to_string()),
        end_unix_nano: summary.last_end_ns.map(|t| t.to_string()),
    };
    let mut data = ReportData::new(&title, source, &report.dict, &analyses);
    data.traces = Some(keeper.finish());
    if let Some(judge) = &judge {
        judge.check(Presence::Offline).map_err(|e| UsageError(e.to_string()))?;
        data.verdict = Some(VerdictData::new(judge.verdict(&judge_config), &judge.arm_latencies()));
    }
    for (kind, n) in report.warnings.iter() {
        data.notes.push(format!("{n} × {}.", kind.description()));
    }
    let html = tracelens_ui::page::report(&data);
    write_file(&args.output, html.as_bytes())?;
    eprintln!(
        "wrote {} ({} bytes): {} services, {} edges, {} traces drawn",
        args.output.display(),
        html.len(),
        data.graph.nodes.len(),
        data.graph.edges.len(),
        data.traces.as_ref().map_or(0, |t| t.traces.len())
    );
    print_skew(&settings, &skew);
    input::print_notes(&report);
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all (a temporary file beside it, renamed).
fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming {} to {}", tmp.display(), path.display())
    })?;
    Ok(())
}
