//! `diff`: the judge's tests over every service of two inputs, listing each
//! operation and edge whose latency or error rate went up (regressed) or
//! down (improved).

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::sample::{Arm, Cohorts, Digest, Digester};
use super::verdict::{JudgeConfig, MetricResult, judge};
use crate::model::{Dictionary, Trace};

/// One changed metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// The service.
    pub service: String,
    /// `regressed` or `improved`.
    pub direction: &'static str,
    /// The metric, as the verdict shows it.
    #[serde(flatten)]
    pub metric: MetricResult,
}

/// The report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DiffReport {
    /// Regressions first (largest ratio first), then improvements.
    pub changes: Vec<Change>,
    /// Metrics tested, over all services.
    pub tested: u64,
    /// Operations and edges only in the candidate, per service.
    pub appeared: Vec<String>,
    /// Operations and edges only in the baseline.
    pub disappeared: Vec<String>,
}

/// Digests every service of the traces of two inputs.
#[derive(Default)]
pub struct Diff {
    services: FxHashMap<String, (Digester, Vec<Digest>)>,
}

impl Diff {
    /// Nothing yet.
    pub fn new() -> Diff {
        Diff::default()
    }

    /// Adds a trace of the baseline or candidate input.
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace, arm: Arm) {
        let mut names: Vec<&str> = trace.spans.iter().map(|s| dict.resolve(s.service)).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let entry = self.services.entry(name.to_string()).or_insert_with(|| {
                let cohorts = Cohorts::DeployTime { deploy_ns: 0, warmup_ns: 0 };
                (Digester::new(name, cohorts), Vec::new())
            });
            if let Some(d) = entry.0.digest_as(dict, trace, Some(arm), false) {
                entry.1.push(d);
            }
        }
    }

    /// Every changed metric.
    pub fn report(&self, config: &JudgeConfig) -> DiffReport {
        let mut services: Vec<&String> = self.services.keys().collect();
        services.sort();
        let mut report = DiffReport::default();
        for name in services {
            let (digester, digests) = &self.services[name];
            let v = judge(digester, digests, config);
            report.appeared.extend(v.appeared);
            report.disappeared.extend(v.disappeared);
            for m in v.metrics {
                if m.classification == "Nodata" {
                    continue;
                }
                report.tested += 1;
                let direction = match m.classification {
                    "High" => "regressed",
                    "Low" => "improved",
                    _ => continue,
                };
                report.changes.push(Change { service: name.clone(), direction, metric: m });
            }
        }
        report.changes.sort_by(|a, b| {
            (a.direction != "regressed")
                .cmp(&(b.direction != "regressed"))
                .then_with(|| b.metric.estimate.total_cmp(&a.metric.estimate))
                .then_with(|| a.metric.name.cmp(&b.metric.name))
        });
        report
    }
}
