//! Change detection: what got worse (or better) in a window of time,
//! anywhere. Traces are split by start time into the window and a baseline
//! window before it; the judge's tests (median shift, tail ratio, error
//! rate) run for every service, each of its operations and each of its
//! downstream edges with enough data; one Benjamini–Hochberg adjustment
//! covers everything tested, so more services do not mean more false
//! alarms. Each change carries its impact: the critical-path time it adds
//! per second of the window (the change in that operation's own time on
//! the traces' critical paths, times the traffic), which ranks the cause of
//! a slowdown above the callers that only wait for it. Version changes
//! seen in the window's resources are listed beside the changes.
//!
//! [`History`] keeps, per service, the judge's digest of every trace and,
//! per minute, the traces' critical-path time per operation, so any number
//! of windows can be judged from one pass over the input. Pure functions
//! over traces: no I/O and no clock (the caller picks the windows).

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::diff::Direction;
use super::sample::{Arm, Cohorts, Digest, Digester, call_times, portable};
use super::stats;
use super::verdict::{Classification, Group, JudgeConfig, MetricResult, Signal, test_unadjusted};
use crate::analysis::critical_path::{CriticalPathConfig, critical_path};
use crate::analysis::portable::{PortableError, Syms};
use crate::model::{Dictionary, Sym, Trace};

/// Width of the time buckets critical-path time and versions are kept in.
const BUCKET_NS: u64 = 60_000_000_000;

/// A span of time, `[start, end)`, unix ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Range {
    /// Start, unix ns.
    pub start_unix_nano: u64,
    /// End (excluded), unix ns.
    pub end_unix_nano: u64,
}

impl Range {
    /// `[start, end)`.
    pub fn new(start_unix_nano: u64, end_unix_nano: u64) -> Range {
        Range { start_unix_nano, end_unix_nano }
    }

    fn contains(&self, t: u64) -> bool {
        (self.start_unix_nano..self.end_unix_nano).contains(&t)
    }

    fn seconds(&self) -> f64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano) as f64 / 1e9
    }
}

/// Which baseline a window is compared with when none is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineRule {
    /// The same window a day earlier when the data reaches back that far,
    /// else the hour before the window (cut at the data's start).
    Default,
    /// The hour before the window (cut at the data's start).
    PreviousHour,
    /// The same window a day earlier.
    PreviousDay,
}

/// The baseline `rule` gives for `window` over data starting at `data_start`
/// (unix ns); `None` when less than a window's width of data precedes it.
pub fn baseline_for(window: Range, rule: BaselineRule, data_start: u64) -> Option<Range> {
    const HOUR: u64 = 3_600_000_000_000;
    const DAY: u64 = 24 * HOUR;
    let width = window.end_unix_nano.saturating_sub(window.start_unix_nano);
    let day_before = window.start_unix_nano.checked_sub(DAY).map(|s| Range::new(s, s + width));
    let hour_before = {
        let start = window.start_unix_nano.saturating_sub(HOUR).max(data_start);
        Range::new(start, window.start_unix_nano)
    };
    let enough =
        |r: &Range| r.end_unix_nano.saturating_sub(r.start_unix_nano) >= width && r.start_unix_nano >= data_start;
    match rule {
        BaselineRule::PreviousDay => day_before.filter(enough),
        BaselineRule::PreviousHour => Some(hour_before).filter(enough),
        BaselineRule::Default => day_before.filter(enough).or(Some(hour_before).filter(enough)),
    }
}

/// Critical-path time and versions of the traces starting in one minute.
#[derive(Default)]
struct Bucket {
    traces: u64,
    /// Own critical-path ns per operation (index into `History::operations`).
    own_ns: FxHashMap<u32, u64>,
    /// Own critical-path ns of client and producer spans (the network,
    /// or a database, queue or peer that sends no spans), per (caller
    /// service, callee node). Each ns of a critical path is counted once:
    /// a callee's own time is its operations'.
    call_ns: FxHashMap<(Sym, String), u64>,
    /// (service, version) pairs seen.
    versions: BTreeSet<(Sym, Sym)>,
}

/// What a set of traces holds for change detection.
#[derive(Default)]
pub struct History {
    services: BTreeMap<String, (Digester, Vec<Digest>)>,
    buckets: BTreeMap<u64, Bucket>,
    operations: Vec<(Sym, Sym)>,
    operation_index: FxHashMap<(Sym, Sym), u32>,
    /// Earliest and latest trace start, unix ns.
    range: Option<(u64, u64)>,
}

impl History {
    /// Nothing yet.
    pub fn new() -> History {
        History::default()
    }

    /// Earliest and latest trace start seen, unix ns.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.range
    }

    /// Adds one trace.
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        let Some(start_ns) = trace.spans.iter().filter(|s| s.has_timing()).map(|s| s.start_ns).min() else {
            return;
        };
        let mut names: Vec<Sym> = trace.spans.iter().map(|s| s.service).collect();
        names.sort_unstable();
        names.dedup();
        for &name in &names {
            let (digester, digests) = self.service(dict.resolve(name));
            // The arm is set per window when judged.
            if let Some(d) = digester.digest_as(dict, trace, Some(Arm::Baseline), false) {
                digests.push(d);
            }
        }
        let spans = &trace.spans;
        let cp = critical_path(trace, &CriticalPathConfig::default());
        let own: Vec<(u32, u64)> = cp
            .sections
            .iter()
            .map(|s| (self.operation(spans[s.span].service, spans[s.span].name), s.len_ns()))
            .collect();
        let calls = call_times(dict, trace, &cp);
        let mut versions = Vec::new();
        let mut last = None;
        for span in spans {
            if last != Some(span.resource) {
                last = Some(span.resource);
                versions.push((span.service, dict.resource_of(span.resource).version));
            }
        }
        self.add_path(start_ns, own, calls, versions);
    }

    /// Adds one trace's travelling digest (a consumer group's partials
    /// carry them), its names interned in `dict` through `syms`.
    pub fn add_portable(
        &mut self,
        dict: &Dictionary,
        syms: &Syms<'_>,
        digest: &portable::pb::TraceDigest,
    ) -> Result<(), PortableError> {
        if digest.end_ns.is_none() {
            return Ok(());
        }
        for (i, s) in digest.services.iter().enumerate() {
            let name = syms.text(s.service, || format!("digest.services[{i}].service"))?;
            let (digester, digests) = self.service(name);
            if let Some(d) = digester.digest_portable_as(dict, syms, digest, Some(Arm::Baseline))? {
                digests.push(d);
            }
        }
        let mut own = Vec::with_capacity(digest.path.len());
        for (i, p) in digest.path.iter().enumerate() {
            let field = |f: &str| format!("digest.path[{i}].{f}");
            let key = (syms.sym(p.service, || field("service"))?, syms.sym(p.operation, || field("operation"))?);
            own.push((self.operation(key.0, key.1), p.own_ns));
        }
        let mut calls = Vec::with_capacity(digest.calls.len());
        for (i, c) in digest.calls.iter().enumerate() {
            let field = |f: &str| format!("digest.calls[{i}].{f}");
            calls.push((
                syms.sym(c.service, || field("service"))?,
                syms.text(c.node, || field("node"))?.to_string(),
                c.own_ns,
            ));
        }
        let mut versions = Vec::with_capacity(digest.versions.len());
        for (i, v) in digest.versions.iter().enumerate() {
            let field = |f: &str| format!("digest.versions[{i}].{f}");
            versions.push((syms.sym(v.service, || field("service"))?, syms.sym(v.version, || field("version"))?));
        }
        self.add_path(digest.start_ns, own, calls, versions);
        Ok(())
    }

    fn service(&mut self, name: &str) -> &mut (Digester, Vec<Digest>) {
        if !self.services.contains_key(name) {
            self.services.insert(name.to_string(), (Digester::new(name, Cohorts::Inputs), Vec::new()));
        }
        self.services.get_mut(name).expect("inserted")
    }

    fn operation(&mut self, service: Sym, name: Sym) -> u32 {
        let next = self.operations.len() as u32;
        let op = *self.operation_index.entry((service, name)).or_insert(next);
        if op == next {
            self.operations.push((service, name));
        }
        op
    }

    /// A trace's critical-path time and versions, in its start's minute.
    fn add_path(
        &mut self,
        start_ns: u64,
        own: Vec<(u32, u64)>,
        calls: Vec<(Sym, String, u64)>,
        versions: Vec<(Sym, Sym)>,
    ) {
        self.range = Some(self.range.map_or((start_ns, start_ns), |(a, b)| (a.min(start_ns), b.max(start_ns))));
        let bucket = self.buckets.entry(start_ns / BUCKET_NS).or_default();
        bucket.traces += 1;
        for (op, ns) in own {
            *bucket.own_ns.entry(op).or_default() += ns;
        }
        for (service, node, ns) in calls {
            *bucket.call_ns.entry((service, node)).or_default() += ns;
        }
        bucket.versions.extend(versions);
    }

    /// Judges `window` against `baseline`.
    pub fn changes(&self, dict: &Dictionary, window: Range, baseline: Range, config: &JudgeConfig) -> ChangeReport {
        let path = PathDelta::between(self, baseline, window);
        let mut metrics: Vec<(String, MetricResult)> = Vec::new();
        let mut appeared = Vec::new();
        let mut disappeared = Vec::new();
        for (name, (digester, digests)) in &self.services {
            let split: Vec<Digest> = digests
                .iter()
                .filter_map(|d| {
                    let arm = if window.contains(d.start_ns) {
                        Arm::Candidate
                    } else if baseline.contains(d.start_ns) {
                        Arm::Baseline
                    } else {
                        return None;
                    };
                    Some(Digest { arm, ..d.clone() })
                })
                .collect();
            if split.is_empty() {
                continue;
            }
            let (m, a, d) = test_unadjusted(digester, &split, config);
            metrics.extend(m.into_iter().map(|m| (name.clone(), m)));
            appeared.extend(a);
            disappeared.extend(d);
        }
        // One adjustment over every metric tested, of every service.
        let tested: Vec<usize> =
            (0..metrics.len()).filter(|&i| metrics[i].1.classification != Classification::Nodata).collect();
        let adjusted = stats::benjamini_hochberg(&tested.iter().map(|&i| metrics[i].1.p_value).collect::<Vec<_>>());
        for (k, &i) in tested.iter().enumerate() {
            let m = &mut metrics[i].1;
            m.p_adjusted = Some(adjusted[k]);
            if matches!(m.classification, Classification::High | Classification::Low) && adjusted[k] > config.fdr {
                m.classification = Classification::Pass;
            }
        }
        // Error rates are tested on thin data once the window has errors;
        // "unchanged" needs at least one latency test.
        let latency_tested = tested.iter().any(|&i| metrics[i].1.signal != Signal::ErrorRate);
        let versions = self.version_changes(dict, baseline, window);
        let mut changes: Vec<DetectedChange> = metrics
            .into_iter()
            .filter_map(|(service, metric)| {
                let direction = match metric.classification {
                    Classification::High => Direction::Regressed,
                    Classification::Low => Direction::Improved,
                    _ => return None,
                };
                let impact = path.impact(dict, &service, &metric, window.seconds());
                let new_version = versions.iter().find(|v| v.service == service).map(|v| v.window.join(", "));
                Some(DetectedChange { service, direction, impact, new_version, metric })
            })
            .collect();
        changes.sort_by(|a, b| {
            (a.direction != Direction::Regressed)
                .cmp(&(b.direction != Direction::Regressed))
                .then_with(|| (a.metric.signal != Signal::ErrorRate).cmp(&(b.metric.signal != Signal::ErrorRate)))
                .then_with(|| b.impact.rank().total_cmp(&a.impact.rank()))
                .then_with(|| b.metric.estimate.total_cmp(&a.metric.estimate))
                .then_with(|| a.metric.name.cmp(&b.metric.name))
        });
        let status = if !changes.is_empty() {
            ChangeStatus::Changed
        } else if !latency_tested {
            ChangeStatus::NotEnoughData
        } else {
            ChangeStatus::Unchanged
        };
        let reason = match status {
            ChangeStatus::NotEnoughData => format!(
                "not enough data: no service has {} spans in both the window ({}) and the baseline ({}) for a latency test",
                config.min_latency_samples,
                crate::render::count(path.traces[1], "trace"),
                crate::render::count(path.traces[0], "trace"),
            ),
            ChangeStatus::Unchanged => {
                format!("no change in {} tested", crate::render::count(tested.len() as u64, "metric"))
            }
            ChangeStatus::Changed => {
                let regressed = changes.iter().filter(|c| c.direction == Direction::Regressed).count();
                format!(
                    "{} regressed and {} improved of {} tested",
                    regressed,
                    changes.len() - regressed,
                    crate::render::count(tested.len() as u64, "metric")
                )
            }
        };
        ChangeReport {
            status,
            reason,
            window: Side { range: window, traces: path.traces[1] },
            baseline: Side { range: baseline, traces: path.traces[0] },
            tested: tested.len() as u64,
            changes,
            appeared,
            disappeared,
            version_changes: versions,
        }
        .finish()
    }

    /// Services whose versions in the window differ from the baseline's.
    fn version_changes(&self, dict: &Dictionary, baseline: Range, window: Range) -> Vec<VersionChange> {
        let mut seen: [BTreeMap<String, BTreeSet<String>>; 2] = Default::default();
        for (arm, range) in [baseline, window].into_iter().enumerate() {
            for bucket in self.buckets_in(range) {
                for &(service, version) in &bucket.versions {
                    let v = dict.resolve(version);
                    if !v.is_empty() {
                        seen[arm].entry(dict.resolve(service).to_string()).or_default().insert(v.to_string());
                    }
                }
            }
        }
        let [before, after] = seen;
        after
            .into_iter()
            .filter_map(|(service, now)| {
                let was = before.get(&service).cloned().unwrap_or_default();
                (!was.is_empty() && was != now).then(|| VersionChange {
                    service,
                    baseline: was.into_iter().collect(),
                    window: now.into_iter().collect(),
                })
            })
            .collect()
    }

    fn buckets_in(&self, range: Range) -> impl Iterator<Item = &Bucket> {
        let (first, last) = (range.start_unix_nano / BUCKET_NS, range.end_unix_nano.saturating_sub(1) / BUCKET_NS);
        self.buckets.range(first..=last).map(|(_, b)| b)
    }
}

/// Per-trace critical-path time of each operation and call in the two
/// ranges.
struct PathDelta {
    traces: [u64; 2],
    /// Per operation: (service, name, baseline ns, window ns) summed.
    own: Vec<(Sym, Sym, [u64; 2])>,
    calls: FxHashMap<(Sym, String), [u64; 2]>,
}

impl PathDelta {
    fn between(history: &History, baseline: Range, window: Range) -> PathDelta {
        let mut d = PathDelta { traces: [0; 2], own: Vec::new(), calls: FxHashMap::default() };
        let mut own: FxHashMap<u32, [u64; 2]> = FxHashMap::default();
        // Buckets are a minute wide: a range that does not start or end on
        // a minute takes the minutes it overlaps (the judge's own split is
        // exact, by trace start).
        for (arm, range) in [baseline, window].into_iter().enumerate() {
            for bucket in history.buckets_in(range) {
                d.traces[arm] += bucket.traces;
                for (&op, &ns) in &bucket.own_ns {
                    own.entry(op).or_default()[arm] += ns;
                }
                for (key, &ns) in &bucket.call_ns {
                    d.calls.entry(key.clone()).or_default()[arm] += ns;
                }
            }
        }
        d.own = own
            .into_iter()
            .map(|(op, ns)| {
                let (service, name) = history.operations[op as usize];
                (service, name, ns)
            })
            .collect();
        d
    }

    /// Change in critical-path ns per trace, window minus baseline.
    fn per_trace(&self, ns: [u64; 2]) -> f64 {
        let per = |arm: usize| if self.traces[arm] == 0 { 0.0 } else { ns[arm] as f64 / self.traces[arm] as f64 };
        per(1) - per(0)
    }

    /// What a changed metric of `service` costs, per second of the window.
    fn impact(&self, dict: &Dictionary, service: &str, metric: &MetricResult, window_s: f64) -> Impact {
        let rate = if window_s > 0.0 { self.traces[1] as f64 / window_s } else { 0.0 };
        let scope = scope_of(service, metric);
        let of_service = |s: Sym| dict.resolve(s) == service;
        // The scope's own time on the path: an operation's, a service's
        // operations', an edge's calls (the callee's own time is the
        // callee's, so a slow service ranks above its callers).
        let delta: f64 = match metric.group {
            Group::Service => self.own.iter().filter(|o| of_service(o.0)).map(|o| self.per_trace(o.2)).sum(),
            Group::Operations => self
                .own
                .iter()
                .filter(|o| of_service(o.0) && dict.resolve(o.1) == scope)
                .map(|o| self.per_trace(o.2))
                .sum(),
            Group::Edges => self
                .calls
                .iter()
                .filter(|((s, node), _)| of_service(*s) && node == scope)
                .map(|(_, &ns)| self.per_trace(ns))
                .sum(),
        };
        let added_errors = if metric.signal == Signal::ErrorRate {
            let spans_per_s = if window_s > 0.0 { metric.n_candidate as f64 / window_s } else { 0.0 };
            Some((metric.candidate_value - metric.baseline_value) * spans_per_s)
        } else {
            None
        };
        Impact {
            path_ns_per_trace: delta.round() as i64,
            path_ns_per_second: (delta * rate).round() as i64,
            added_errors_per_second: added_errors,
        }
    }
}

/// The operation (or, for an edge, the callee) a metric of `service`
/// measures: its name without the service and the signal ("" for the
/// service itself).
pub fn scope_of<'a>(service: &str, metric: &'a MetricResult) -> &'a str {
    let label = metric.name.strip_suffix(metric.signal.as_str()).unwrap_or(&metric.name).trim_end();
    let rest = label.strip_prefix(service).unwrap_or(label).trim_start();
    match metric.group {
        Group::Service => "",
        Group::Operations => rest,
        Group::Edges => rest.strip_prefix("->").map_or(rest, str::trim_start),
    }
}

/// What a change costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Impact {
    /// Change in the scope's own critical-path time per trace (for an
    /// edge, its calls' own time: the network, or a callee that sends no
    /// spans), ns: window minus baseline.
    pub path_ns_per_trace: i64,
    /// That, times the window's traces per second: critical-path time added
    /// (or saved) per second of traffic, ns.
    pub path_ns_per_second: i64,
    /// Error rate change times spans per second (error-rate changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_errors_per_second: Option<f64>,
}

impl Impact {
    /// The figure changes are ranked by within their kind.
    fn rank(&self) -> f64 {
        self.added_errors_per_second.unwrap_or(self.path_ns_per_second as f64).abs()
    }
}

/// One changed metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetectedChange {
    /// The service.
    pub service: String,
    /// Which way.
    pub direction: Direction,
    /// What it costs.
    pub impact: Impact,
    /// The service's versions in the window, when they differ from the
    /// baseline's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<String>,
    /// The metric, as the verdict shows it.
    #[serde(flatten)]
    pub metric: MetricResult,
}

/// A service whose versions changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionChange {
    /// The service.
    pub service: String,
    /// Versions in the baseline.
    pub baseline: Vec<String>,
    /// Versions in the window.
    pub window: Vec<String>,
}

/// The answer for one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Something changed.
    Changed,
    /// Metrics were tested, latency among them; none changed.
    Unchanged,
    /// No latency metric had enough data to test (and no error rate
    /// changed).
    NotEnoughData,
}

impl ChangeStatus {
    /// `changed`, `unchanged` or `not_enough_data`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Changed => "changed",
            ChangeStatus::Unchanged => "unchanged",
            ChangeStatus::NotEnoughData => "not_enough_data",
        }
    }
}

/// One side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Its time range.
    #[serde(flatten)]
    pub range: Range,
    /// Traces starting in it (by the minute).
    pub traces: u64,
}

/// What changed in a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangeReport {
    /// The answer.
    pub status: ChangeStatus,
    /// Why, in a sentence.
    pub reason: String,
    /// The window judged.
    pub window: Side,
    /// What it was compared with.
    pub baseline: Side,
    /// Metrics tested.
    pub tested: u64,
    /// Regressions first (error rates, then latency by critical-path time
    /// added per second), then improvements.
    pub changes: Vec<DetectedChange>,
    /// Operations and edges only the window has.
    pub appeared: Vec<String>,
    /// Operations and edges only the baseline has.
    pub disappeared: Vec<String>,
    /// Services whose versions changed.
    pub version_changes: Vec<VersionChange>,
}

impl ChangeReport {
    /// The answer for `window` when no baseline can be had: not enough
    /// data, for `reason`.
    pub fn without_baseline(window: Range, reason: String) -> ChangeReport {
        let none = Range::new(window.start_unix_nano, window.start_unix_nano);
        ChangeReport {
            status: ChangeStatus::NotEnoughData,
            reason,
            window: Side { range: window, traces: 0 },
            baseline: Side { range: none, traces: 0 },
            tested: 0,
            changes: Vec::new(),
            appeared: Vec::new(),
            disappeared: Vec::new(),
            version_changes: Vec::new(),
        }
    }

    fn finish(mut self) -> ChangeReport {
        self.appeared.sort();
        self.disappeared.sort();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000_000_000;
    const DAY: u64 = 24 * 60 * MIN;

    /// Shop traces whose currency service turns three times as slow two
    /// thirds of the way through 40 minutes at one trace a second.
    fn rollout(dict: &mut Dictionary) -> Vec<Trace> {
        use crate::generate::scenario::{Change, Deploy, Scenario};
        use crate::generate::{self, Amount, GeneratorConfig, TopologyFile, write::OutputFormat};
        let deploy = Deploy {
            scenario: Scenario::Rollout { at: 0.66666 },
            change: Change::Latency,
            target: "currency".to_string(),
            magnitude: 3.0,
            new_version: "2.0.0".to_string(),
            new_service: String::new(),
        };
        let config =
            GeneratorConfig { seed: 7, traces_per_second: 1.0, deploy: Some(deploy), ..GeneratorConfig::default() };
        let (bytes, _) =
            generate::to_vec(&TopologyFile::shop(), &config, Amount::Traces(2_400), OutputFormat::OtlpProtobufStream)
                .unwrap();
        let mut spans = Vec::new();
        let mut warnings = crate::model::Warnings::default();
        crate::read::read_spans("rollout", &bytes[..], &Default::default(), dict, &mut warnings, &mut |_, s| {
            spans.push(s)
        })
        .unwrap();
        crate::assemble::assemble_all(spans).0
    }

    #[test]
    fn travelling_digests_give_the_answer_the_traces_give() {
        let mut dict = Dictionary::default();
        let traces = rollout(&mut dict);
        let mut direct = History::new();
        let mut digester = portable::TraceDigester::default();
        let mut names = crate::analysis::portable::Names::default();
        let mut digests = Vec::new();
        for t in &traces {
            direct.add_trace(&dict, t);
            digests.push(digester.digest(&dict, t, &mut names));
        }
        // As a consumer group's member reads them: names by text.
        let strings = names.into_strings();
        let mut other = Dictionary::default();
        let syms = Syms::intern(&strings, &mut other);
        let mut travelled = History::new();
        for d in &digests {
            travelled.add_portable(&other, &syms, d).unwrap();
        }
        assert_eq!(direct.range(), travelled.range());
        let (first, _) = direct.range().unwrap();
        let window = Range::new(first + 30 * MIN, first + 40 * MIN);
        let baseline = baseline_for(window, BaselineRule::Default, first).unwrap();
        let config = JudgeConfig { bootstrap_rounds: 200, ..JudgeConfig::default() };
        let a = direct.changes(&dict, window, baseline, &config);
        let b = travelled.changes(&other, window, baseline, &config);
        assert_eq!(a.status, ChangeStatus::Changed, "{}", a.reason);
        assert_eq!(a.changes[0].metric.name, "currency Convert latency_p50");
        assert!(a.changes.iter().any(|c| c.metric.group == Group::Edges && c.impact.path_ns_per_trace != 0));
        assert_eq!(a, b);
    }

    #[test]
    fn baselines_are_a_day_earlier_when_the_data_reaches_back_else_the_hour_before() {
        let window = Range::new(2 * DAY, 2 * DAY + 15 * MIN);
        // Data from a day and a half back: the same window a day earlier.
        let data_start = DAY / 2;
        assert_eq!(baseline_for(window, BaselineRule::Default, data_start), Some(Range::new(DAY, DAY + 15 * MIN)));
        assert_eq!(
            baseline_for(window, BaselineRule::PreviousHour, data_start),
            Some(Range::new(2 * DAY - 60 * MIN, 2 * DAY))
        );
        // Data from 20 minutes back: the hour before, cut at the data's start.
        let data_start = 2 * DAY - 20 * MIN;
        assert_eq!(baseline_for(window, BaselineRule::Default, data_start), Some(Range::new(data_start, 2 * DAY)));
        assert_eq!(baseline_for(window, BaselineRule::PreviousDay, data_start), None);
        // Less than the window's width before it: none.
        assert_eq!(baseline_for(window, BaselineRule::Default, 2 * DAY - 10 * MIN), None);
    }
}
