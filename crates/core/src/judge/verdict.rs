//! The verdict: every metric of the judged service (overall, per operation,
//! per downstream edge — latency median shift, p99 ratio, error rate)
//! classified Kayenta-style (`Pass`, `High`, `Low`, `Nodata`), scored by
//! group, and turned into pass / fail / inconclusive with the reason, plus
//! the attribution of the change in critical-path time to the operations
//! that explain it. The rules and defaults are the spec's (`judge.md`).

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::sample::{Arm, Cohorts, Digest, Digester, Scope};
use super::stats;

/// Thresholds and minimums; the defaults are the spec's.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeConfig {
    /// Two-sided confidence level of every interval.
    pub level: f64,
    /// `High` when the lower bound of the median ratio is above this.
    pub latency_margin: f64,
    /// The tail quantile judged.
    pub tail_quantile: f64,
    /// `High` when the lower bound of the tail ratio is above this.
    pub tail_margin: f64,
    /// Bootstrap resamples.
    pub bootstrap_rounds: usize,
    /// Fisher test level for error rates.
    pub error_alpha: f64,
    /// Error-rate increase needed, absolute (0.001 = 0.1 points).
    pub error_absolute_floor: f64,
    /// Error-rate ratio needed.
    pub error_relative_floor: f64,
    /// A critical error-rate metric fails the verdict alone at this ratio.
    pub error_critical_ratio: f64,
    /// Spans per arm below which latency shifts are `Nodata`.
    pub min_latency_samples: usize,
    /// Tail values per arm above the quantile needed (n·(1−q)).
    pub min_tail_exceedances: f64,
    /// Spans per arm for error rates (unless the candidate has errors).
    pub min_error_samples: usize,
    /// Operations and edges under this share of the service's baseline
    /// requests are not tested.
    pub min_operation_share: f64,
    /// Benjamini–Hochberg level over the non-critical metrics.
    pub fdr: f64,
    /// Score at or above which the verdict is pass.
    pub pass_score: f64,
    /// Score at or above which (below pass) the verdict is inconclusive.
    pub marginal_score: f64,
    /// Group weights: the service overall, its operations, its edges.
    pub weights: [f64; 3],
    /// Expected share of requests on the candidate (side-by-side only).
    pub canary_weight: Option<f64>,
    /// Level of the traffic-split test.
    pub split_alpha: f64,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            level: 0.98,
            latency_margin: 1.10,
            tail_quantile: 0.99,
            tail_margin: 1.20,
            bootstrap_rounds: 2_000,
            error_alpha: 0.02,
            error_absolute_floor: 0.001,
            error_relative_floor: 1.5,
            error_critical_ratio: 5.0,
            min_latency_samples: 50,
            min_tail_exceedances: 10.0,
            min_error_samples: 200,
            min_operation_share: 0.01,
            fdr: 0.05,
            pass_score: 90.0,
            marginal_score: 75.0,
            weights: [70.0, 15.0, 15.0],
            canary_weight: None,
            split_alpha: 0.001,
            seed: 0x7472_6163_656c_656e,
        }
    }
}

/// What a verdict answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Go on.
    Pass,
    /// Roll back.
    Fail,
    /// Not enough data, a traffic split that is off, or a marginal score.
    Inconclusive,
}

impl Outcome {
    /// `pass`, `fail` or `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kayenta's classification of a whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RunClass {
    /// A pass.
    Pass,
    /// Inconclusive.
    Marginal,
    /// A fail.
    Fail,
}

/// How one metric compares, candidate against baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Classification {
    /// Within the margins.
    Pass,
    /// Worse beyond the margin (a regression).
    High,
    /// Better beyond the margin (an improvement).
    Low,
    /// Too few spans to test.
    Nodata,
}

impl Classification {
    /// `Pass`, `High`, `Low` or `Nodata`.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Pass => "Pass",
            Classification::High => "High",
            Classification::Low => "Low",
            Classification::Nodata => "Nodata",
        }
    }
}

impl std::fmt::Display for Classification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a metric measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The median, as a Hodges–Lehmann shift of log latency.
    LatencyP50,
    /// The p99 ratio.
    LatencyP99,
    /// Another tail quantile's ratio (`JudgeConfig::tail_quantile`).
    LatencyTail,
    /// The error rate.
    ErrorRate,
}

impl Signal {
    /// `latency_p50`, `latency_p99`, `latency_tail` or `error_rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::LatencyP50 => "latency_p50",
            Signal::LatencyP99 => "latency_p99",
            Signal::LatencyTail => "latency_tail",
            Signal::ErrorRate => "error_rate",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The groups metrics are scored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// The service's entry spans.
    Service,
    /// Each of its operations.
    Operations,
    /// Each of its downstream edges.
    Edges,
}

impl Group {
    /// Every group, in scoring order.
    pub const ALL: [Group; 3] = [Group::Service, Group::Operations, Group::Edges];
}

/// How the arms were split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// By the service's version, side by side.
    Versions,
    /// Before and after a deploy time.
    DeployTime,
    /// Two sets of inputs.
    Inputs,
}

/// One judged metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricResult {
    /// `<scope> <signal>`, e.g. `checkout PlaceOrder latency_p50`.
    pub name: String,
    /// The group it is scored in.
    pub group: Group,
    /// What it measures.
    pub signal: Signal,
    /// How the candidate compares.
    pub classification: Classification,
    /// Fails the verdict alone.
    pub critical: bool,
    /// Candidate / baseline ratio (median shift, quantile or rate ratio).
    pub estimate: f64,
    /// Its confidence interval.
    pub ci: [f64; 2],
    /// Level of `ci`.
    pub ci_level: f64,
    /// The ratio the lower bound must exceed for `High`.
    pub allowed: f64,
    /// Test p-value (two-sided Mann–Whitney, bootstrap, or one-sided Fisher).
    pub p_value: f64,
    /// Benjamini–Hochberg adjusted p-value (non-critical metrics).
    pub p_adjusted: Option<f64>,
    /// Baseline spans.
    pub n_baseline: u64,
    /// Candidate spans.
    pub n_candidate: u64,
    /// Baseline figure: median or quantile in ns, or error rate.
    pub baseline_value: f64,
    /// Candidate figure.
    pub candidate_value: f64,
}

/// One operation's share of the change in critical-path time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribution {
    /// Service.
    pub service: String,
    /// Operation.
    pub operation: String,
    /// Change in its own critical-path time per trace, ns (candidate − baseline means).
    pub delta_ns: i64,
    /// Change in time its callees spent on the path below it, ns.
    pub callee_delta_ns: i64,
    /// `delta_ns` over the sum of every operation's increase.
    pub share: f64,
    /// Its own critical-path time per baseline trace, ns.
    pub baseline_ns: u64,
    /// The same per candidate trace.
    pub candidate_ns: u64,
}

/// An error type seen only in the candidate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewError {
    /// Service of the failing span.
    pub service: String,
    /// Its operation.
    pub operation: String,
    /// `exception.type`, else the status message.
    pub error: String,
    /// Candidate traces with it.
    pub traces: u64,
}

/// One arm's data.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ArmSummary {
    /// The version (side by side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Traces of the judged service.
    pub traces: u64,
    /// Requests (entry spans of the service).
    pub requests: u64,
    /// Hosts of the judged service.
    pub hosts: u64,
    /// Earliest trace start, unix ns.
    pub start_unix_nano: u64,
    /// Latest trace start, unix ns.
    pub end_unix_nano: u64,
}

/// The traffic-split check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficSplit {
    /// Expected candidate share.
    pub expected: f64,
    /// Observed candidate share of requests.
    pub observed: f64,
    /// Binomial p-value.
    pub p_value: f64,
    /// Whether it is off.
    pub mismatch: bool,
}

/// One group's score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupScore {
    /// The group.
    pub name: Group,
    /// 0–100.
    pub score: f64,
    /// Weight.
    pub weight: f64,
    /// Metrics tested (not `Nodata`).
    pub tested: u64,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The answer.
    pub verdict: Outcome,
    /// `verdict == fail`.
    pub rollback: bool,
    /// Kayenta's classification of the run.
    pub classification: RunClass,
    /// 0–100.
    pub score: f64,
    /// Score thresholds.
    pub thresholds: [f64; 2],
    /// Why, in a sentence.
    pub reason: String,
    /// The judged service.
    pub service: String,
    /// How the arms were split.
    pub mode: Mode,
    /// Baseline arm.
    pub baseline: ArmSummary,
    /// Candidate arm.
    pub candidate: ArmSummary,
    /// Traffic-split check (side by side with a canary weight).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_split: Option<TrafficSplit>,
    /// Group scores.
    pub groups: Vec<GroupScore>,
    /// Every metric.
    pub metrics: Vec<MetricResult>,
    /// Operations by their own change in critical-path time, largest first.
    pub attribution: Vec<Attribution>,
    /// Error types only the candidate has.
    pub new_error_types: Vec<NewError>,
    /// Operations and edges only the candidate has.
    pub appeared: Vec<String>,
    /// Operations and edges only the baseline has.
    pub disappeared: Vec<String>,
    /// Things to know (one canary host, ...).
    pub warnings: Vec<String>,
    /// For a gate that polls: which look of how many this answer is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub looks: Option<Looks>,
}

/// Repeated looks at one analysis (a gate re-testing a growing window).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Looks {
    /// The analysis.
    pub analysis_id: String,
    /// This look (1-based; stays at `planned` once the verdict is frozen).
    pub look: u32,
    /// Looks planned; each is tested at α/planned.
    pub planned: u32,
    /// Whether this is the verdict frozen at the last planned look.
    pub frozen: bool,
}

impl JudgeConfig {
    /// The settings for one of `planned` looks at a growing window: every
    /// level split K ways (Bonferroni over looks), so that polling K times
    /// keeps the chance of a false failure at the single-look level.
    pub fn for_looks(&self, planned: u32) -> JudgeConfig {
        let k = f64::from(planned.max(1));
        JudgeConfig {
            level: 1.0 - (1.0 - self.level) / k,
            error_alpha: self.error_alpha / k,
            fdr: self.fdr / k,
            split_alpha: self.split_alpha / k,
            ..self.clone()
        }
    }
}

impl Verdict {
    /// The CLI exit code: 0 pass, 1 fail (roll back), 3 inconclusive.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Inconclusive => 3,
        }
    }

    /// Makes the verdict inconclusive because of `why` (the data is known
    /// to be incomplete), keeping the statistics and saying what they alone
    /// would have said.
    pub fn withhold(&mut self, why: &str) {
        self.reason = format!("{why}; withheld until then (the data so far: {}, {})", self.verdict, self.reason);
        self.verdict = Outcome::Inconclusive;
        self.rollback = false;
        self.classification = RunClass::Marginal;
    }
}

/// Per scope and arm: per-trace values, spans and errors.
#[derive(Default)]
struct ScopeData {
    clusters: [Vec<Vec<f64>>; 2],
    n: [u64; 2],
    errors: [u64; 2],
}

fn arm_index(arm: Arm) -> usize {
    match arm {
        Arm::Baseline => 0,
        Arm::Candidate => 1,
    }
}

fn group_of(scope: &Scope) -> Group {
    match scope {
        Scope::Service => Group::Service,
        Scope::Operation(_) => Group::Operations,
        Scope::Edge(_) => Group::Edges,
    }
}

/// What the digests of both arms add up to, per arm: traces, requests and
/// hosts; samples per scope, clustered by trace; critical-path time per
/// operation; error types seen.
struct Tally {
    data: Vec<ScopeData>,
    arms: [ArmSummary; 2],
    path_sum: [FxHashMap<u32, (u64, u64)>; 2],
    errors_seen: [FxHashMap<u32, u64>; 2],
}

impl Tally {
    fn of(digester: &Digester, digests: &[Digest]) -> Tally {
        let mut t = Tally {
            data: (0..digester.scopes.len()).map(|_| ScopeData::default()).collect(),
            arms: [ArmSummary::default(), ArmSummary::default()],
            path_sum: [FxHashMap::default(), FxHashMap::default()],
            errors_seen: [FxHashMap::default(), FxHashMap::default()],
        };
        let mut hosts: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        for d in digests {
            let a = arm_index(d.arm);
            let arm = &mut t.arms[a];
            if arm.traces == 0 || d.start_ns < arm.start_unix_nano {
                arm.start_unix_nano = d.start_ns;
            }
            arm.end_unix_nano = arm.end_unix_nano.max(d.start_ns);
            arm.traces += 1;
            arm.requests += u64::from(d.requests);
            for &h in &d.hosts {
                if !hosts[a].contains(&h) {
                    hosts[a].push(h);
                }
            }
            t.add_samples(a, d);
            for &(op, own, inclusive) in &d.path {
                let e = t.path_sum[a].entry(op).or_default();
                e.0 += own;
                e.1 += inclusive;
            }
            for &ty in &d.error_types {
                *t.errors_seen[a].entry(ty).or_default() += 1;
            }
        }
        // Clusters in a canonical order, so the bootstrap (which draws
        // clusters by position) sees the same sample whatever order the
        // traces came in: one receiver or many merged, a dump or its parts.
        for data in &mut t.data {
            for arm in &mut data.clusters {
                for cluster in arm.iter_mut() {
                    cluster.sort_by(f64::total_cmp);
                }
                arm.sort_by(|x, y| {
                    x.iter().zip(y).map(|(a, b)| a.total_cmp(b)).find(|o| o.is_ne()).unwrap_or(x.len().cmp(&y.len()))
                });
            }
        }
        for (a, h) in hosts.iter().enumerate() {
            t.arms[a].hosts = h.len() as u64;
        }
        if let Cohorts::Versions { baseline, candidate } = digester.cohorts() {
            t.arms[0].version = Some(baseline.clone());
            t.arms[1].version = Some(candidate.clone());
        }
        t
    }

    /// Groups one trace's samples per scope into one cluster each.
    fn add_samples(&mut self, a: usize, d: &Digest) {
        let mut i = 0;
        while i < d.samples.len() {
            let scope = d.samples[i].0;
            let data = &mut self.data[scope as usize];
            let mut cluster = Vec::new();
            while i < d.samples.len() && d.samples[i].0 == scope {
                let (_, ns, err) = d.samples[i];
                cluster.push((ns.max(1) as f64).ln());
                data.n[a] += 1;
                data.errors[a] += u64::from(err);
                i += 1;
            }
            data.clusters[a].push(cluster);
        }
    }
}

/// The metrics tested, and the operations and edges only one arm has.
struct Tested {
    metrics: Vec<MetricResult>,
    appeared: Vec<String>,
    disappeared: Vec<String>,
}

/// Tests every scope with enough data, in a stable order (the service,
/// operations, edges, by name), then adjusts the non-critical tests for
/// the false discovery rate (Benjamini–Hochberg).
fn test_scopes(digester: &Digester, data: &[ScopeData], service: &str, config: &JudgeConfig) -> Tested {
    let mut tested = test_scopes_unadjusted(digester, data, service, config);
    adjust_for_false_discoveries(&mut tested.metrics, config);
    tested
}

/// Every metric of the digested service's scopes with their raw p-values
/// (no false-discovery adjustment: [`super::changes`] adjusts once over
/// every service), and the operations and edges that appeared or
/// disappeared.
pub(crate) fn test_unadjusted(
    digester: &Digester,
    digests: &[Digest],
    config: &JudgeConfig,
) -> (Vec<MetricResult>, Vec<String>, Vec<String>) {
    let tally = Tally::of(digester, digests);
    let tested = test_scopes_unadjusted(digester, &tally.data, digester.service(), config);
    (tested.metrics, tested.appeared, tested.disappeared)
}

fn test_scopes_unadjusted(digester: &Digester, data: &[ScopeData], service: &str, config: &JudgeConfig) -> Tested {
    let mut order: Vec<usize> = (0..digester.scopes.len()).collect();
    order.sort_by(|&a, &b| digester.scopes[a].cmp(&digester.scopes[b]));
    let service_requests = digester.scopes.iter().position(|s| *s == Scope::Service).map_or(0, |i| data[i].n[0]);
    let mut tested = Tested { metrics: Vec::new(), appeared: Vec::new(), disappeared: Vec::new() };
    for &si in &order {
        let scope = &digester.scopes[si];
        let d = &data[si];
        let label = scope.label(service);
        let kind = match scope {
            Scope::Service => "",
            Scope::Operation(_) => "operation ",
            Scope::Edge(_) => "edge ",
        };
        if *scope != Scope::Service {
            if d.n[0] == 0 && d.n[1] > 0 {
                tested.appeared.push(format!("{kind}{label}"));
                continue;
            }
            if d.n[1] == 0 && d.n[0] > 0 {
                tested.disappeared.push(format!("{kind}{label}"));
                continue;
            }
            if (d.n[0] as f64) < config.min_operation_share * service_requests as f64 {
                continue;
            }
        }
        // The bootstrap's salt comes from the scope's name, not from the
        // order scopes were first seen in.
        let salt = crate::model::stable_hash64(label.as_bytes(), group_of(scope) as u64);
        tested.metrics.extend(evaluate(scope, d, &label, group_of(scope), config, salt));
    }
    tested
}

/// Benjamini–Hochberg over the tested non-critical metrics: a High whose
/// adjusted p-value is over the FDR passes.
fn adjust_for_false_discoveries(metrics: &mut [MetricResult], config: &JudgeConfig) {
    let tested: Vec<usize> = (0..metrics.len())
        .filter(|&i| !metrics[i].critical && metrics[i].classification != Classification::Nodata)
        .collect();
    let adjusted = stats::benjamini_hochberg(&tested.iter().map(|&i| metrics[i].p_value).collect::<Vec<_>>());
    for (k, &i) in tested.iter().enumerate() {
        let m = &mut metrics[i];
        m.p_adjusted = Some(adjusted[k]);
        if m.classification == Classification::High && adjusted[k] > config.fdr {
            m.classification = Classification::Pass;
        }
    }
}

/// Each group's share of metrics that are not High, and their weighted
/// mean (the score, to two decimals).
fn group_scores(metrics: &[MetricResult], config: &JudgeConfig) -> (Vec<GroupScore>, f64) {
    let mut groups = Vec::new();
    let (mut weighted, mut weights) = (0.0, 0.0);
    for (gi, name) in Group::ALL.into_iter().enumerate() {
        let in_group: Vec<&MetricResult> =
            metrics.iter().filter(|m| m.group == name && m.classification != Classification::Nodata).collect();
        if in_group.is_empty() {
            continue;
        }
        let good = in_group.iter().filter(|m| m.classification != Classification::High).count();
        let score = 100.0 * good as f64 / in_group.len() as f64;
        weighted += score * config.weights[gi];
        weights += config.weights[gi];
        groups.push(GroupScore { name, score, weight: config.weights[gi], tested: in_group.len() as u64 });
    }
    let score = if weights > 0.0 { (weighted / weights * 100.0).round() / 100.0 } else { 0.0 };
    (groups, score)
}

/// The change in critical-path time per trace, by operation: its own time
/// and what its callees added; the ten largest increases first.
fn attribute(digester: &Digester, tally: &Tally) -> Vec<Attribution> {
    let traces = [tally.arms[0].traces.max(1) as f64, tally.arms[1].traces.max(1) as f64];
    let path_sum = &tally.path_sum;
    let mut attribution: Vec<Attribution> = Vec::new();
    let keys: std::collections::BTreeSet<u32> = path_sum[0].keys().chain(path_sum[1].keys()).copied().collect();
    for op in keys {
        let (b_own, b_inc) = path_sum[0].get(&op).copied().unwrap_or_default();
        let (c_own, c_inc) = path_sum[1].get(&op).copied().unwrap_or_default();
        let (b_own, b_inc) = (b_own as f64 / traces[0], b_inc as f64 / traces[0]);
        let (c_own, c_inc) = (c_own as f64 / traces[1], c_inc as f64 / traces[1]);
        let delta = c_own - b_own;
        let (service, operation) = digester.operations[op as usize].clone();
        attribution.push(Attribution {
            service,
            operation,
            delta_ns: delta.round() as i64,
            callee_delta_ns: ((c_inc - b_inc) - delta).round() as i64,
            share: 0.0,
            baseline_ns: b_own.round() as u64,
            candidate_ns: c_own.round() as u64,
        });
    }
    // Shares of the time added: each operation's own increase over the sum
    // of every increase (decreases get negative shares of the same sum).
    let added: i64 = attribution.iter().map(|a| a.delta_ns.max(0)).sum();
    for a in &mut attribution {
        a.share = if added > 0 { a.delta_ns as f64 / added as f64 } else { 0.0 };
    }
    attribution.sort_by(|a, b| {
        b.delta_ns.cmp(&a.delta_ns).then_with(|| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    attribution.truncate(10);
    attribution
}

/// Error types the candidate shows and the baseline never did, most
/// traces first (ties by error, service and operation).
fn new_errors(digester: &Digester, errors_seen: &[FxHashMap<u32, u64>; 2]) -> Vec<NewError> {
    let mut new_error_types: Vec<NewError> = errors_seen[1]
        .iter()
        .filter(|(t, _)| !errors_seen[0].contains_key(t))
        .map(|(&t, &n)| {
            let (service, operation, error) = digester.error_types[t as usize].clone();
            NewError { service, operation, error, traces: n }
        })
        .collect();
    new_error_types.sort_by(|a, b| {
        b.traces
            .cmp(&a.traces)
            .then_with(|| (&a.error, &a.service, &a.operation).cmp(&(&b.error, &b.service, &b.operation)))
    });
    new_error_types
}

/// The traffic split, side by side with a known weight.
fn traffic_split(digester: &Digester, arms: &[ArmSummary; 2], config: &JudgeConfig) -> Option<TrafficSplit> {
    let (Some(w), Cohorts::Versions { .. }) = (config.canary_weight, digester.cohorts()) else { return None };
    let total = arms[0].requests + arms[1].requests;
    let p_value = stats::binomial_two_sided(arms[1].requests, total, w);
    Some(TrafficSplit {
        expected: w,
        observed: if total == 0 { 0.0 } else { arms[1].requests as f64 / total as f64 },
        p_value,
        mismatch: total > 0 && p_value < config.split_alpha,
    })
}

/// The outcome and its reason, in the spec's order; a missing arm or a
/// failed critical metric scores 0.
fn decide(
    service: &str,
    arms: &[ArmSummary; 2],
    split: Option<&TrafficSplit>,
    metrics: &[MetricResult],
    score: &mut f64,
    config: &JudgeConfig,
) -> (Outcome, String) {
    let critical_fail = metrics
        .iter()
        .find(|m| m.critical && m.classification == Classification::High && m.estimate >= config.error_critical_ratio);
    let nodata = metrics.iter().filter(|m| m.classification == Classification::Nodata).count();
    let critical_nodata = metrics.iter().find(|m| m.critical && m.classification == Classification::Nodata);
    let highs: Vec<&MetricResult> = metrics.iter().filter(|m| m.classification == Classification::High).collect();
    let describe = |m: &MetricResult| {
        format!(
            "{} {} -> {} (x{:.2}, {:.0}% CI {:.2}-{:.2})",
            m.name,
            show(m.signal, m.baseline_value),
            show(m.signal, m.candidate_value),
            m.estimate,
            m.ci_level * 100.0,
            m.ci[0],
            m.ci[1]
        )
    };
    if arms[0].traces == 0 || arms[1].traces == 0 {
        *score = 0.0;
        let missing = if arms[1].traces == 0 { "candidate" } else { "baseline" };
        (Outcome::Inconclusive, format!("no {missing} traces of {service}"))
    } else if let Some(split) = split.filter(|s| s.mismatch) {
        (
            Outcome::Inconclusive,
            format!(
                "traffic_split_mismatch: the candidate got {:.1}% of requests, {:.1}% expected (p = {})",
                split.observed * 100.0,
                split.expected * 100.0,
                crate::render::p_value(split.p_value)
            ),
        )
    } else if let Some(m) = critical_fail {
        *score = 0.0;
        (Outcome::Fail, format!("critical metric High: {}", describe(m)))
    } else if let Some(m) = critical_nodata {
        (
            Outcome::Inconclusive,
            format!(
                "not enough data for the critical metric {} ({} and {} spans)",
                m.name, m.n_baseline, m.n_candidate
            ),
        )
    } else if metrics.is_empty() || nodata * 2 >= metrics.len() {
        (Outcome::Inconclusive, format!("not enough data: {nodata} of {} metrics without enough spans", metrics.len()))
    } else if *score >= config.pass_score {
        let tested = metrics.len() - nodata;
        (
            Outcome::Pass,
            format!("score {score:.1} >= {}: {tested} metrics tested, {} High", config.pass_score, highs.len()),
        )
    } else {
        let worst = highs.iter().map(|m| describe(m)).take(3).collect::<Vec<_>>().join("; ");
        let verdict = if *score >= config.marginal_score { Outcome::Inconclusive } else { Outcome::Fail };
        (verdict, format!("score {score:.1} (pass {}, marginal {}): {worst}", config.pass_score, config.marginal_score))
    }
}

/// Judges the digests of one service: tally both arms, test every scope,
/// score the groups, attribute the change in critical-path time, decide.
pub fn judge(digester: &Digester, digests: &[Digest], config: &JudgeConfig) -> Verdict {
    let service = digester.service().to_string();
    let tally = Tally::of(digester, digests);
    let mode = match digester.cohorts() {
        Cohorts::Versions { .. } => Mode::Versions,
        Cohorts::DeployTime { .. } => Mode::DeployTime,
        Cohorts::Inputs => Mode::Inputs,
    };
    let Tested { metrics, appeared, disappeared } = test_scopes(digester, &tally.data, &service, config);
    let (groups, mut score) = group_scores(&metrics, config);
    let attribution = attribute(digester, &tally);
    let new_error_types = new_errors(digester, &tally.errors_seen);
    let arms = &tally.arms;
    let mut warnings = Vec::new();
    if arms[1].hosts == 1 && arms[0].hosts > 1 {
        warnings.push(
            "the candidate runs on one host: a bad host looks like a bad build; confirm on more than one".to_string(),
        );
    }
    let traffic_split = traffic_split(digester, arms, config);
    let (verdict, reason) = decide(&service, arms, traffic_split.as_ref(), &metrics, &mut score, config);
    let classification = match verdict {
        Outcome::Pass => RunClass::Pass,
        Outcome::Fail => RunClass::Fail,
        Outcome::Inconclusive => RunClass::Marginal,
    };
    Verdict {
        verdict,
        rollback: verdict == Outcome::Fail,
        classification,
        score,
        thresholds: [config.pass_score, config.marginal_score],
        reason,
        service,
        mode,
        baseline: arms[0].clone(),
        candidate: arms[1].clone(),
        traffic_split,
        groups,
        metrics,
        attribution,
        new_error_types,
        appeared,
        disappeared,
        warnings,
        looks: None,
    }
}

fn show(signal: Signal, value: f64) -> String {
    if signal == Signal::ErrorRate {
        format!("{:.2}%", value * 100.0)
    } else {
        crate::render::duration(value.round().max(0.0) as u64)
    }
}

fn sorted_flat(clusters: &[Vec<f64>]) -> Vec<f64> {
    let mut v: Vec<f64> = clusters.iter().flatten().copied().collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The three metrics of one scope.
fn evaluate(scope: &Scope, d: &ScopeData, label: &str, group: Group, c: &JudgeConfig, salt: u64) -> Vec<MetricResult> {
    let mut out = Vec::new();
    let (nb, nc) = (d.n[0], d.n[1]);
    let metric = |signal: Signal, critical: bool, allowed: f64| MetricResult {
        name: format!("{label} {signal}"),
        group,
        signal,
        classification: Classification::Nodata,
        critical,
        estimate: f64::NAN,
        ci: [f64::NAN, f64::NAN],
        ci_level: c.level,
        allowed,
        p_value: f64::NAN,
        p_adjusted: None,
        n_baseline: nb,
        n_candidate: nc,
        baseline_value: f64::NAN,
        candidate_value: f64::NAN,
    };
    let (b, cc) = (sorted_flat(&d.clusters[0]), sorted_flat(&d.clusters[1]));

    // Median shift on log durations.
    let mut m = metric(Signal::LatencyP50, false, c.latency_margin);
    if !b.is_empty() && !cc.is_empty() {
        m.baseline_value = stats::quantile_sorted(&b, 0.5).exp();
        m.candidate_value = stats::quantile_sorted(&cc, 0.5).exp();
    }
    if b.len().min(cc.len()) >= c.min_latency_samples {
        let s = stats::hodges_lehmann(&b, &cc, c.level);
        m.estimate = s.estimate.exp();
        m.ci = [s.lo.exp(), s.hi.exp()];
        m.p_value = s.p_value;
        m.classification = if m.ci[0] > c.latency_margin {
            Classification::High
        } else if m.ci[1] < 1.0 / c.latency_margin {
            Classification::Low
        } else {
            Classification::Pass
        };
    }
    out.push(m);

    // Tail quantile ratio, bootstrapping whole traces.
    let q = c.tail_quantile;
    let signal = if (q - 0.99).abs() < 1e-9 { Signal::LatencyP99 } else { Signal::LatencyTail };
    let mut m = metric(signal, false, c.tail_margin);
    if !b.is_empty() && !cc.is_empty() {
        m.baseline_value = stats::quantile_sorted(&b, q).exp();
        m.candidate_value = stats::quantile_sorted(&cc, q).exp();
    }
    let needed = (c.min_tail_exceedances / (1.0 - q)).ceil() as usize;
    if b.len().min(cc.len()) >= needed {
        let exp_clusters =
            |arm: &[Vec<f64>]| -> Vec<Vec<f64>> { arm.iter().map(|t| t.iter().map(|v| v.exp()).collect()).collect() };
        let seed = c.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let r = stats::bootstrap_quantile_ratio(
            &exp_clusters(&d.clusters[0]),
            &exp_clusters(&d.clusters[1]),
            q,
            c.bootstrap_rounds,
            c.level,
            seed,
        );
        m.estimate = r.estimate;
        m.ci = [r.lo, r.hi];
        m.p_value = r.p_value;
        m.classification = if r.lo > c.tail_margin {
            Classification::High
        } else if r.hi < 1.0 / c.tail_margin {
            Classification::Low
        } else {
            Classification::Pass
        };
    }
    out.push(m);

    // Error rate: one-sided Fisher with floors; critical for the service.
    let critical = *scope == Scope::Service;
    let mut m = metric(Signal::ErrorRate, critical, c.error_relative_floor);
    let (eb, ec) = (d.errors[0], d.errors[1]);
    if nb > 0 && nc > 0 {
        let (pb, pc) = (eb as f64 / nb as f64, ec as f64 / nc as f64);
        m.baseline_value = pb;
        m.candidate_value = pc;
        let enough = nb.min(nc) >= c.min_error_samples as u64 || ec > 0;
        if enough {
            // Rate ratio with a half-count correction when either count is zero.
            let (hb, hc) = if eb == 0 || ec == 0 {
                ((eb as f64 + 0.5) / (nb as f64 + 0.5), (ec as f64 + 0.5) / (nc as f64 + 0.5))
            } else {
                (pb, pc)
            };
            m.estimate = if eb == 0 && ec == 0 { 1.0 } else { hc / hb };
            let (bl, bh) = stats::wilson(eb, nb, c.level);
            let (cl, ch) = stats::wilson(ec, nc, c.level);
            m.ci = [if bh > 0.0 { cl / bh } else { 0.0 }, if bl > 0.0 { ch / bl } else { f64::INFINITY }];
            m.p_value = stats::fisher_greater(eb, nb, ec, nc);
            let ratio_ok = eb == 0 || pc / pb >= c.error_relative_floor;
            m.classification = if m.p_value < c.error_alpha && pc - pb >= c.error_absolute_floor && ratio_ok && ec > 0 {
                Classification::High
            } else if pb > 0.0
                && m.ci[1] < 1.0
                && stats::fisher_greater(ec, nc, eb, nb) < c.error_alpha
                && pb - pc >= c.error_absolute_floor
            {
                Classification::Low
            } else {
                Classification::Pass
            };
        }
    }
    out.push(m);
    out
}
