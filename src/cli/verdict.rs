//! `tracelens verdict`: should the new version of a service be rolled back?
//! Baseline and candidate by version (side by side) or around a deploy
//! time; the verdict as a table or the JSON deploy gates read, and as the
//! exit code (0 pass, 1 fail, 3 inconclusive, 2 usage or input error).

use std::io::{self, Write};

use clap::{Args, ValueEnum};

use tracelens::judge::verdict::Signal;
use tracelens::judge::{Cohorts, Judge, JudgeConfig, Presence, Verdict};
use tracelens::render;

use super::UsageError;
use super::input::{self, InputArgs};

/// Output of `verdict` and `diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum JudgeFormat {
    /// Aligned text.
    Table,
    /// JSON.
    Json,
}

/// Judge settings shared by `verdict` and `diff`.
#[derive(Debug, Clone, Args)]
pub struct JudgeArgs {
    /// Two-sided confidence level of every interval.
    #[arg(long, value_name = "LEVEL", default_value_t = JudgeConfig::default().level)]
    confidence: f64,
    /// A median regresses when its ratio's lower bound is above this.
    #[arg(long, value_name = "RATIO", default_value_t = JudgeConfig::default().latency_margin)]
    latency_margin: f64,
    /// A p99 regresses when its ratio's lower bound is above this.
    #[arg(long, value_name = "RATIO", default_value_t = JudgeConfig::default().tail_margin)]
    tail_margin: f64,
    /// Score (0-100) at or above which the verdict is pass.
    #[arg(long, value_name = "SCORE", default_value_t = JudgeConfig::default().pass_score)]
    pass_score: f64,
    /// Score at or above which (below --pass-score) the verdict is inconclusive.
    #[arg(long, value_name = "SCORE", default_value_t = JudgeConfig::default().marginal_score)]
    marginal_score: f64,
    /// Seed of the bootstrap (the same seed and input give the same verdict).
    #[arg(long, value_name = "N", default_value_t = JudgeConfig::default().seed)]
    seed: u64,
}

impl JudgeArgs {
    /// Checks the settings.
    pub fn validate(&self) -> anyhow::Result<JudgeConfig> {
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return Err(UsageError("--confidence must be between 0.5 and 1".to_string()).into());
        }
        if !(self.latency_margin >= 1.0 && self.tail_margin >= 1.0) {
            return Err(UsageError("--latency-margin and --tail-margin must be at least 1".to_string()).into());
        }
        if !(0.0..=100.0).contains(&self.marginal_score) || !(self.marginal_score..=100.0).contains(&self.pass_score) {
            return Err(UsageError("need 0 <= --marginal-score <= --pass-score <= 100".to_string()).into());
        }
        Ok(JudgeConfig {
            level: self.confidence,
            latency_margin: self.latency_margin,
            tail_margin: self.tail_margin,
            pass_score: self.pass_score,
            marginal_score: self.marginal_score,
            seed: self.seed,
            ..JudgeConfig::default()
        })
    }
}

/// Flags of `tracelens verdict`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens verdict canary.jsonl --service checkout \\\n      --baseline-version 1.9.0 --candidate-version 1.10.0\n  tracelens verdict dumps/ --service checkout \\\n      --deploy-time 2026-11-28T10:00:00Z --warmup 2m --format json\n\nExit code: 0 pass, 1 fail (roll back), 3 inconclusive (not enough data, traffic split off, or a\nmarginal score), 2 usage or input error. Metrics: the median shift (Hodges-Lehmann on log\nlatency), the p99 ratio (bootstrap over whole traces) and the error rate (Fisher's exact test) of\nthe service, of each operation and of each downstream edge."
)]
pub struct VerdictArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The service to judge.
    #[arg(long, value_name = "NAME")]
    service: String,
    /// The old version (service.version) running beside the new one.
    #[arg(long, value_name = "V", requires = "candidate_version", conflicts_with = "deploy_time")]
    baseline_version: Option<String>,
    /// The new version.
    #[arg(long, value_name = "V", requires = "baseline_version")]
    candidate_version: Option<String>,
    /// The deploy: traces before it are the baseline, after it (and the warm-up) the candidate.
    /// RFC 3339, or a unix time in seconds or milliseconds (as the receiver's API takes it).
    #[arg(long, value_name = "TIME", required_unless_present = "baseline_version")]
    deploy_time: Option<String>,
    /// Time skipped after --deploy-time.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = super::duration_arg)]
    warmup: std::time::Duration,
    /// Expected share of requests on the candidate (side by side); a mismatch makes the run inconclusive.
    #[arg(long, value_name = "SHARE")]
    canary_weight: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = JudgeFormat::Table)]
    format: JudgeFormat,
    #[command(flatten)]
    judge: JudgeArgs,
}

/// The cohorts the flags describe.
pub(super) fn cohorts(
    baseline: Option<&str>,
    candidate: Option<&str>,
    deploy_time: Option<&str>,
    warmup: std::time::Duration,
) -> Result<Cohorts, UsageError> {
    match (baseline, candidate, deploy_time) {
        (Some(b), Some(c), None) if b != c => {
            Ok(Cohorts::Versions { baseline: b.to_string(), candidate: c.to_string() })
        }
        (Some(_), Some(_), None) => Err(UsageError("the baseline and candidate versions are the same".to_string())),
        (None, None, Some(t)) => {
            let deploy_ns = tracelens::model::time::parse_time(t).ok_or_else(|| {
                UsageError(format!(
                    "deploy time {t:?} is neither RFC 3339 (2026-11-28T10:00:00Z) nor a unix time (seconds or milliseconds)"
                ))
            })?;
            let warmup_ns = warmup.as_nanos().min(u64::MAX as u128) as u64;
            Ok(Cohorts::DeployTime { deploy_ns, warmup_ns })
        }
        _ => Err(UsageError("give either a baseline and a candidate version, or a deploy time".to_string())),
    }
}

pub fn run(args: VerdictArgs) -> anyhow::Result<u8> {
    let mut config = args.judge.validate()?;
    if let Some(w) = args.canary_weight {
        if !(w > 0.0 && w < 1.0) {
            return Err(UsageError("--canary-weight must be between 0 and 1".to_string()).into());
        }
        config.canary_weight = Some(w);
    }
    let cohorts = cohorts(
        args.baseline_version.as_deref(),
        args.candidate_version.as_deref(),
        args.deploy_time.as_deref(),
        args.warmup,
    )?;
    let inputs = args.input.validate()?.analysis_only();
    let mut judge = Judge::new(&args.service, cohorts);
    let report = inputs.run(&mut |dict, trace| judge.add_trace(dict, &trace))?;
    judge.check(Presence::Offline).map_err(|e| UsageError(e.to_string()))?;
    let verdict = judge.verdict(&config);
    super::write_answer(|out| match args.format {
        JudgeFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &verdict)?;
            writeln!(out)
        }
        JudgeFormat::Table => write_table(out, &verdict),
    })?;
    input::print_notes(&report);
    Ok(verdict.exit_code() as u8)
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "-".to_string()
    } else if v.is_infinite() {
        "inf".to_string()
    } else {
        format!("{v:.3}")
    }
}

/// A metric's figure as text: a duration, or a rate in percent.
pub(super) fn value(signal: Signal, v: f64) -> String {
    if v.is_nan() {
        "-".to_string()
    } else if signal == Signal::ErrorRate {
        format!("{:.2}%", v * 100.0)
    } else {
        render::duration(v.round().max(0.0) as u64)
    }
}

/// The verdict as text.
pub fn write_table(w: &mut dyn Write, v: &Verdict) -> io::Result<()> {
    writeln!(
        w,
        "verdict: {} (score {:.1}; pass >= {}, marginal >= {})",
        v.verdict.as_str().to_uppercase(),
        v.score,
        v.thresholds[0],
        v.thresholds[1]
    )?;
    writeln!(w, "reason:  {}", v.reason)?;
    let arm = |a: &tracelens::judge::verdict::ArmSummary| {
        format!(
            "{}{}, {}, {}",
            a.version.as_ref().map(|v| format!("{v}: ")).unwrap_or_default(),
            render::count(a.traces, "trace"),
            render::count(a.requests, "request"),
            render::count(a.hosts, "host")
        )
    };
    writeln!(w, "service: {}   baseline {}   candidate {}", v.service, arm(&v.baseline), arm(&v.candidate))?;
    if let Some(s) = &v.traffic_split {
        writeln!(
            w,
            "traffic: candidate {:.1}% of requests, {:.1}% expected (p = {})",
            s.observed * 100.0,
            s.expected * 100.0,
            render::p_value(s.p_value)
        )?;
    }
    writeln!(w)?;
    let mut t = render::TextTable::new(&[
        ("CLASS", render::Align::Left),
        ("BASELINE", render::Align::Right),
        ("CANDIDATE", render::Align::Right),
        ("RATIO", render::Align::Right),
        ("CI", render::Align::Right),
        ("P", render::Align::Right),
        ("N BASE", render::Align::Right),
        ("N CAND", render::Align::Right),
        ("METRIC", render::Align::Left),
    ]);
    for m in &v.metrics {
        t.row(vec![
            m.classification.to_string(),
            value(m.signal, m.baseline_value),
            value(m.signal, m.candidate_value),
            number(m.estimate),
            format!("{}-{}", number(m.ci[0]), number(m.ci[1])),
            render::p_value(m.p_value),
            m.n_baseline.to_string(),
            m.n_candidate.to_string(),
            format!("{}{}", m.name, if m.critical { " (critical)" } else { "" }),
        ]);
    }
    t.write(w)?;
    if !v.attribution.is_empty() {
        writeln!(w)?;
        writeln!(w, "critical-path time per trace, by operation (own time; callees beside):")?;
        let mut t = render::TextTable::new(&[
            ("DELTA", render::Align::Right),
            ("CALLEES", render::Align::Right),
            ("SHARE", render::Align::Right),
            ("BASELINE", render::Align::Right),
            ("CANDIDATE", render::Align::Right),
            ("OPERATION", render::Align::Left),
        ])
        .indent(2);
        let signed = |ns: i64| format!("{}{}", if ns < 0 { "-" } else { "+" }, render::duration(ns.unsigned_abs()));
        for a in &v.attribution {
            t.row(vec![
                signed(a.delta_ns),
                signed(a.callee_delta_ns),
                format!("{:.1}%", a.share * 100.0),
                render::duration(a.baseline_ns),
                render::duration(a.candidate_ns),
                format!("{} {}", a.service, a.operation),
            ]);
        }
        t.write(w)?;
    }
    for e in &v.new_error_types {
        writeln!(w, "new error: {} {}: {} ({})", e.service, e.operation, e.error, render::count(e.traces, "trace"))?;
    }
    for a in &v.appeared {
        writeln!(w, "appeared: {a}")?;
    }
    for d in &v.disappeared {
        writeln!(w, "disappeared: {d}")?;
    }
    for note in &v.warnings {
        writeln!(w, "warning: {note}")?;
    }
    Ok(())
}
