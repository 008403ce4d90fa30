//! `diff`: the judge's tests over every service of two inputs, listing each
//! operation and edge whose latency or error rate went up (regressed) or
//! down (improved).

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::sample::{Arm, Cohorts, Digest, Digester};
use super::verdict::{Classification, JudgeConfig, MetricResult, judge};
use crate::model::{Dictionary, Trace};

/// Which way a metric changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Worse beyond the margin.
    Regressed,
    /// Better beyond the margin (the whole interval).
    Improved,
}

impl Direction {
    /// `regressed` or `improved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Regressed => "regressed",
            Direction::Improved => "improved",
        }
    }
}

/// One changed metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// The service.
    pub service: String,
    /// Which way it changed.
    pub direction: Direction,
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
                if m.classification == Classification::Nodata {
                    continue;
                }
                report.tested += 1;
                let direction = match m.classification {
                    Classification::High => Direction::Regressed,
                    Classification::Low => Direction::Improved,
                    _ => continue,
                };
                report.changes.push(Change { service: name.clone(), direction, metric: m });
            }
        }
        report.changes.sort_by(|a, b| {
            (a.direction != Direction::Regressed)
                .cmp(&(b.direction != Direction::Regressed))
                .then_with(|| b.metric.estimate.total_cmp(&a.metric.estimate))
                .then_with(|| a.metric.name.cmp(&b.metric.name))
        });
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::assemble_all;
    use crate::model::{Span, SpanId, SpanKind, StatusCode, TraceId};

    /// `n` one-span traces of service `svc`, `errors` of them failed.
    fn traces(dict: &mut Dictionary, first: u32, n: u32, errors: u32) -> Vec<Trace> {
        let resource = dict.resource(Vec::new());
        let spans: Vec<Span> = (first..first + n)
            .map(|i| {
                let mut trace = [0u8; 16];
                trace[..4].copy_from_slice(&i.to_be_bytes());
                let mut s = Span::new(TraceId(trace), SpanId([1; 8]));
                s.resource = resource;
                s.service = dict.intern("svc");
                s.name = dict.intern("op");
                s.kind = SpanKind::Server;
                s.start_ns = 1_000_000_000 + u64::from(i) * 1_000_000;
                s.end_ns = s.start_ns + 5_000_000 + u64::from(i % 7) * 100_000;
                if i - first < errors {
                    s.status = StatusCode::Error;
                }
                s
            })
            .collect();
        assemble_all(spans).0
    }

    fn error_rate_change(baseline_errors: u32, candidate_errors: u32) -> Option<Direction> {
        let mut dict = Dictionary::default();
        let mut diff = Diff::new();
        for t in traces(&mut dict, 0, 100, baseline_errors) {
            diff.add_trace(&dict, &t, Arm::Baseline);
        }
        for t in traces(&mut dict, 1000, 100, candidate_errors) {
            diff.add_trace(&dict, &t, Arm::Candidate);
        }
        let report = diff.report(&JudgeConfig::default());
        report.changes.iter().find(|c| c.metric.name == "svc error_rate").map(|c| c.direction)
    }

    #[test]
    fn improved_only_when_the_whole_interval_is_better() {
        // 10% -> 2%: significant by Fisher, but the rate ratio's interval
        // reaches above 1, so it is not an improvement.
        assert_eq!(error_rate_change(10, 2), None);
        // 40% -> 2%: the whole interval is below 1.
        assert_eq!(error_rate_change(40, 2), Some(Direction::Improved));
        assert_eq!(error_rate_change(2, 40), Some(Direction::Regressed));
    }
}
