//! The regression judge: did a new version (or a deploy) make a service
//! worse, and should it be rolled back? Traces are split into a baseline
//! and a candidate arm ([`sample`]), the service's latency median, tail and
//! error rate are tested overall, per operation and per downstream edge
//! ([`stats`]), and the results become a Kayenta-style verdict with the
//! operations that explain the change in critical-path time ([`verdict`]).
//! [`diff`] runs the same tests over every service of two inputs, and
//! [`changes`] over every service of a window of time against a baseline.
//!
//! Pure functions over traces and numbers: no I/O, no clocks (the CLI and
//! the receiver supply both).

pub mod changes;
pub mod diff;
pub mod sample;
pub mod stats;
pub mod verdict;

pub use sample::{Arm, Cohorts, Digest, Digester, Scope};
pub use verdict::{JudgeConfig, Verdict, judge};

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashSet;

use crate::analysis::histogram::LatencyHistogram;
use crate::model::{Dictionary, Sym, Trace};

/// Collects digests of one service's traces, then judges them.
pub struct Judge {
    digester: Digester,
    digests: Vec<Digest>,
    census: Census,
}

/// What the input holds, to tell a request for something absent (a typo in
/// a service or version, a deploy time outside the data) from a judgement.
#[derive(Default)]
struct Census {
    seen: FxHashSet<(Sym, Sym)>,
    /// Versions per service (`""`: spans without `service.version`).
    versions: BTreeMap<String, BTreeSet<String>>,
    /// (earliest start, latest end) of the traces, unix ns.
    range: Option<(u64, u64)>,
}

impl Census {
    fn see(&mut self, dict: &Dictionary, service: Sym, version: Sym) {
        if self.seen.insert((service, version)) {
            let versions = self.versions.entry(dict.resolve(service).to_string()).or_default();
            versions.insert(dict.resolve(version).to_string());
        }
    }

    fn add(&mut self, dict: &Dictionary, trace: &Trace) {
        let mut last = None;
        for span in &trace.spans {
            if last != Some(span.resource) {
                last = Some(span.resource);
                self.see(dict, span.service, dict.resource_of(span.resource).version);
            }
            if span.has_timing() {
                let (s, e) = self.range.unwrap_or((span.start_ns, span.end_ns));
                self.range = Some((s.min(span.start_ns), e.max(span.end_ns)));
            }
        }
    }
}

/// A verdict request for something the input does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotInInput {
    /// The service sent no span.
    #[error("service {service:?} is not in the input; services present: {}", list(present))]
    Service {
        /// The service asked for.
        service: String,
        /// The services present.
        present: Vec<String>,
    },
    /// A version of the service sent no span.
    #[error("{service} version {} not in the input; versions of {service} present: {}", quoted(missing), list(present))]
    Version {
        /// The service.
        service: String,
        /// The versions asked for and absent.
        missing: Vec<String>,
        /// Its versions present (`(none)` for spans without `service.version`).
        present: Vec<String>,
    },
    /// The deploy time lies outside the input's time range.
    #[error(
        "deploy time {} is outside the input, which runs from {} to {}",
        crate::model::time::rfc3339(*deploy_ns),
        crate::model::time::rfc3339(*start_ns),
        crate::model::time::rfc3339(*end_ns)
    )]
    DeployTime {
        /// The deploy, unix ns.
        deploy_ns: u64,
        /// The input's earliest span start, unix ns.
        start_ns: u64,
        /// Its latest span end, unix ns.
        end_ns: u64,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "none".to_string() } else { names.join(", ") }
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("{} {}", quoted.join(" and "), if names.len() == 1 { "is" } else { "are" })
}

/// How strictly [`Judge::check`] reads absence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// A finished dump: whatever is absent was asked for by mistake.
    Offline,
    /// A receiver's recent traces: a candidate may not have sent spans
    /// yet, so only a service never seen, or both versions unseen, is a
    /// mistake; deploy times are the caller's to check against its clock.
    Live,
}

impl Judge {
    /// A judge of `service` with traces split by `cohorts`.
    pub fn new(service: &str, cohorts: Cohorts) -> Judge {
        Judge { digester: Digester::new(service, cohorts), digests: Vec::new(), census: Census::default() }
    }

    /// Adds one trace (ignored unless it is one of the service's, in an arm).
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        self.census.add(dict, trace);
        if let Some(d) = self.digester.digest(dict, trace) {
            self.digests.push(d);
        }
    }

    /// Adds one trace in `arm` (for [`Cohorts::Inputs`], where the caller
    /// knows each trace's arm); ignored unless it is one of the service's.
    pub fn add_trace_as(&mut self, dict: &Dictionary, trace: &Trace, arm: Arm) {
        self.census.add(dict, trace);
        if let Some(d) = self.digester.digest_as(dict, trace, Some(arm), true) {
            self.digests.push(d);
        }
    }

    /// Adds one travelling trace digest (see [`sample::portable`]), names
    /// interned through `syms`: the same as adding the trace it was made of.
    pub fn add_portable(
        &mut self,
        dict: &Dictionary,
        syms: &crate::analysis::portable::Syms<'_>,
        digest: &sample::portable::pb::TraceDigest,
    ) -> Result<(), crate::analysis::portable::PortableError> {
        for (i, v) in digest.versions.iter().enumerate() {
            let field = |f: &str| format!("digest.versions[{i}].{f}");
            let (service, version) =
                (syms.sym(v.service, || field("service"))?, syms.sym(v.version, || field("version"))?);
            self.census.see(dict, service, version);
        }
        if let Some(end_ns) = digest.end_ns {
            let (s, e) = self.census.range.unwrap_or((digest.start_ns, end_ns));
            self.census.range = Some((s.min(digest.start_ns), e.max(end_ns)));
        }
        if let Some(d) = self.digester.digest_portable(dict, syms, digest)? {
            self.digests.push(d);
        }
        Ok(())
    }

    /// Whether the request names what the traces hold: the service, its
    /// versions, a deploy time inside their range.
    pub fn check(&self, presence: Presence) -> Result<(), NotInInput> {
        let census = &self.census;
        if census.versions.is_empty() && presence == Presence::Live {
            return Ok(()); // nothing received yet: nothing to compare with
        }
        let service = self.digester.service();
        let Some(versions) = census.versions.get(service) else {
            return Err(NotInInput::Service {
                service: service.to_string(),
                present: census.versions.keys().cloned().collect(),
            });
        };
        match self.digester.cohorts() {
            Cohorts::Versions { baseline, candidate } => {
                let missing: Vec<String> =
                    [baseline, candidate].into_iter().filter(|v| !versions.contains(*v)).cloned().collect();
                let mistaken = match presence {
                    Presence::Offline => !missing.is_empty(),
                    Presence::Live => missing.len() == 2,
                };
                if mistaken {
                    let present =
                        versions.iter().map(|v| if v.is_empty() { "(none)".to_string() } else { v.clone() }).collect();
                    return Err(NotInInput::Version { service: service.to_string(), missing, present });
                }
            }
            Cohorts::DeployTime { deploy_ns, .. } => {
                if let (Presence::Offline, Some((start_ns, end_ns))) = (presence, census.range)
                    && !(start_ns..=end_ns).contains(deploy_ns)
                {
                    return Err(NotInInput::DeployTime { deploy_ns: *deploy_ns, start_ns, end_ns });
                }
            }
            Cohorts::Inputs => {}
        }
        Ok(())
    }

    /// Traces kept per arm: (baseline, candidate).
    pub fn traces(&self) -> (u64, u64) {
        let candidate = self.digests.iter().filter(|d| d.arm == Arm::Candidate).count() as u64;
        (self.digests.len() as u64 - candidate, candidate)
    }

    /// Latency per judged scope and arm, for plots: (the scope's label as
    /// metric names start with it, baseline, candidate), in scope order.
    /// Only the samples the verdict's tests use (capped per trace) count.
    pub fn arm_latencies(&self) -> Vec<(String, LatencyHistogram, LatencyHistogram)> {
        let service = self.digester.service();
        let mut out: Vec<(String, LatencyHistogram, LatencyHistogram)> = self
            .digester
            .scopes
            .iter()
            .map(|s| (s.label(service), LatencyHistogram::default(), LatencyHistogram::default()))
            .collect();
        for d in &self.digests {
            for &(scope, ns, _) in &d.samples {
                if let Some((_, baseline, candidate)) = out.get_mut(scope as usize) {
                    match d.arm {
                        Arm::Baseline => baseline.record(ns),
                        Arm::Candidate => candidate.record(ns),
                    }
                }
            }
        }
        out
    }

    /// The verdict.
    pub fn verdict(&self, config: &JudgeConfig) -> Verdict {
        judge(&self.digester, &self.digests, config)
    }
}
