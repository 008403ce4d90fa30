//! Trace digests that travel: what the judge needs of one trace for any
//! request — every service's samples, requests and hosts with its version,
//! the critical-path time per operation, the error types and the versions
//! seen — with names as text. A receiver publishes them with its partials
//! ([`crate::partial`]) and any receiver of the group judges the merged
//! digests exactly as it would have judged the traces.

use rustc_hash::FxHashMap;

use super::{Arm, Cohorts, Digest, Digester, Scope, call_times};
use crate::analysis::critical_path::{CriticalPathConfig, critical_path};
use crate::analysis::portable::{Names, PortableError, Syms, trace_id};
use crate::model::{Dictionary, Sym, Trace};

/// The protobuf messages (field numbers are the format).
pub mod pb {
    /// One trace, reduced to what the judge needs for any request.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TraceDigest {
        /// The trace id (16 bytes).
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// Earliest start over spans with usable timing, unix ns (0: none).
        #[prost(uint64, tag = "2")]
        pub start_ns: u64,
        /// Latest end over those spans, unix ns (absent: none has timing).
        #[prost(uint64, optional, tag = "3")]
        pub end_ns: Option<u64>,
        /// Every (service, version) the trace's resources name.
        #[prost(message, repeated, tag = "4")]
        pub versions: Vec<Version>,
        /// Critical-path time per (service, operation).
        #[prost(message, repeated, tag = "5")]
        pub path: Vec<PathTime>,
        /// Critical-path length, ns.
        #[prost(uint64, tag = "6")]
        pub path_ns: u64,
        /// Error types seen.
        #[prost(message, repeated, tag = "7")]
        pub error_types: Vec<ErrorType>,
        /// Per service in the trace.
        #[prost(message, repeated, tag = "8")]
        pub services: Vec<ServiceDigest>,
        /// Critical-path time of client and producer spans, per (caller
        /// service, callee node): the network, or a callee that sends no
        /// spans (absent from digests of older writers).
        #[prost(message, repeated, tag = "9")]
        pub calls: Vec<CallTime>,
    }

    /// Own critical-path time of one service's calls to one node.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CallTime {
        /// The calling service.
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// The node called.
        #[prost(uint32, tag = "2")]
        pub node: u32,
        /// Own time of the calls on the path, ns.
        #[prost(uint64, tag = "3")]
        pub own_ns: u64,
    }

    /// A service and a version (string table indexes; "" for none).
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Version {
        /// Service.
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Version.
        #[prost(uint32, tag = "2")]
        pub version: u32,
    }

    /// Critical-path time of one operation.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct PathTime {
        /// Service.
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Operation.
        #[prost(uint32, tag = "2")]
        pub operation: u32,
        /// Its own time on the path, ns.
        #[prost(uint64, tag = "3")]
        pub own_ns: u64,
        /// Its own and its callees' time on the path, ns.
        #[prost(uint64, tag = "4")]
        pub inclusive_ns: u64,
    }

    /// A kind of error of one operation.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct ErrorType {
        /// Service.
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// Operation.
        #[prost(uint32, tag = "2")]
        pub operation: u32,
        /// Exception type, status message or `ERROR`.
        #[prost(uint32, tag = "3")]
        pub kind: u32,
    }

    /// What the judge takes of one service of the trace.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServiceDigest {
        /// The service.
        #[prost(uint32, tag = "1")]
        pub service: u32,
        /// The version of its first span (its arm, side by side).
        #[prost(uint32, tag = "2")]
        pub version: u32,
        /// Entry spans with no caller in the service.
        #[prost(uint32, tag = "3")]
        pub requests: u32,
        /// Its hosts.
        #[prost(uint32, repeated, tag = "4")]
        pub hosts: Vec<u32>,
        /// Samples, grouped by scope.
        #[prost(message, repeated, tag = "5")]
        pub samples: Vec<Sample>,
    }

    /// One duration sample.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        /// 0 the service, 1 an operation, 2 an edge.
        #[prost(uint32, tag = "1")]
        pub scope: u32,
        /// The operation or callee (string table index; 0 for the service).
        #[prost(uint32, tag = "2")]
        pub name: u32,
        /// Duration, ns.
        #[prost(uint64, tag = "3")]
        pub duration_ns: u64,
        /// Status ERROR.
        #[prost(bool, tag = "4")]
        pub error: bool,
    }
}

/// Digests traces for every service at once (one [`Digester`] per service,
/// kept between traces).
#[derive(Default)]
pub struct TraceDigester {
    digesters: FxHashMap<Sym, Digester>,
}

fn scope_out(names: &mut Names, scope: &Scope) -> (u32, u32) {
    match scope {
        Scope::Service => (0, 0),
        Scope::Operation(op) => (1, names.text(op)),
        Scope::Edge(to) => (2, names.text(to)),
    }
}

impl TraceDigester {
    /// The digest of `trace`, names added to `names`.
    pub fn digest(&mut self, dict: &Dictionary, trace: &Trace, names: &mut Names) -> pb::TraceDigest {
        let mut out = pb::TraceDigest { trace_id: trace.trace_id.0.to_vec(), ..Default::default() };
        let timed = trace.spans.iter().filter(|s| s.has_timing());
        out.start_ns = timed.clone().map(|s| s.start_ns).min().unwrap_or(0);
        out.end_ns = timed.map(|s| s.end_ns).max();
        let mut services: Vec<Sym> = Vec::new();
        let mut last = None;
        for span in &trace.spans {
            if !services.contains(&span.service) {
                services.push(span.service);
            }
            if last != Some(span.resource) {
                last = Some(span.resource);
                let version = dict.resource_of(span.resource).version;
                let v = pb::Version { service: names.sym(dict, span.service), version: names.sym(dict, version) };
                if !out.versions.contains(&v) {
                    out.versions.push(v);
                }
            }
        }
        let mut path_done = false;
        for &service in &services {
            let name = dict.resolve(service);
            let digester = self
                .digesters
                .entry(service)
                .or_insert_with(|| Digester::new(name, Cohorts::DeployTime { deploy_ns: 0, warmup_ns: 0 }));
            let Some(d) = digester.digest_as(dict, trace, Some(Arm::Baseline), false) else { continue };
            if !path_done {
                path_done = true;
                let cp = critical_path(trace, &CriticalPathConfig::default());
                let (path, path_ns) = digester.path_times(dict, trace, &cp);
                out.calls = call_times(dict, trace, &cp)
                    .into_iter()
                    .map(|(service, node, own_ns)| pb::CallTime {
                        service: names.sym(dict, service),
                        node: names.text(&node),
                        own_ns,
                    })
                    .collect();
                out.path_ns = path_ns;
                out.path = path
                    .iter()
                    .map(|&(op, own_ns, inclusive_ns)| {
                        let (s, o) = &digester.operations[op as usize];
                        pb::PathTime { service: names.text(s), operation: names.text(o), own_ns, inclusive_ns }
                    })
                    .collect();
                out.error_types = d
                    .error_types
                    .iter()
                    .map(|&t| {
                        let (s, o, k) = &digester.error_types[t as usize];
                        pb::ErrorType { service: names.text(s), operation: names.text(o), kind: names.text(k) }
                    })
                    .collect();
            }
            let first = trace.spans.iter().find(|s| s.service == service).expect("the service is in the trace");
            out.services.push(pb::ServiceDigest {
                service: names.sym(dict, service),
                version: names.sym(dict, dict.resource_of(first.resource).version),
                requests: d.requests,
                hosts: d.hosts.iter().map(|&h| names.text(&digester.hosts[h as usize])).collect(),
                samples: d
                    .samples
                    .iter()
                    .map(|&(scope, duration_ns, error)| {
                        let (scope, name) = scope_out(names, &digester.scopes[scope as usize]);
                        pb::Sample { scope, name, duration_ns, error }
                    })
                    .collect(),
            });
        }
        out
    }
}

impl Digester {
    /// The digest of a travelling trace digest for this digester's service
    /// and cohorts, as [`Digester::digest`] gives it for the trace itself;
    /// `None` when the service is not in it or it falls in neither arm.
    pub fn digest_portable(
        &mut self,
        dict: &Dictionary,
        syms: &Syms<'_>,
        message: &pb::TraceDigest,
    ) -> Result<Option<Digest>, PortableError> {
        self.digest_portable_as(dict, syms, message, None)
    }

    /// [`Digester::digest_portable`] in `arm` when one is given (the
    /// caller splits the traces), else in the arm the cohorts give.
    pub fn digest_portable_as(
        &mut self,
        dict: &Dictionary,
        syms: &Syms<'_>,
        message: &pb::TraceDigest,
        arm: Option<Arm>,
    ) -> Result<Option<Digest>, PortableError> {
        let mut mine = None;
        for (i, s) in message.services.iter().enumerate() {
            if syms.text(s.service, || format!("digest.services[{i}].service"))? == self.service {
                mine = Some(s);
                break;
            }
        }
        let Some(service) = mine else { return Ok(None) };
        let arm = match (arm, &self.cohorts) {
            (Some(arm), _) => arm,
            (None, cohorts) => match cohorts {
                Cohorts::Versions { baseline, candidate } => {
                    let version = syms.text(service.version, || "digest.services.version".to_string())?;
                    if version == baseline {
                        Arm::Baseline
                    } else if version == candidate {
                        Arm::Candidate
                    } else {
                        return Ok(None);
                    }
                }
                Cohorts::DeployTime { deploy_ns, warmup_ns } => {
                    if message.start_ns < *deploy_ns {
                        Arm::Baseline
                    } else if message.start_ns >= deploy_ns.saturating_add(*warmup_ns) {
                        Arm::Candidate
                    } else {
                        return Ok(None);
                    }
                }
                // A digest does not say which input it came from.
                Cohorts::Inputs => return Ok(None),
            },
        };
        let mut samples = Vec::with_capacity(service.samples.len());
        for (i, s) in service.samples.iter().enumerate() {
            let name = || syms.text(s.name, || format!("digest.services.samples[{i}].name")).map(str::to_string);
            let scope = match s.scope {
                0 => Scope::Service,
                1 => Scope::Operation(name()?),
                2 => Scope::Edge(name()?),
                n => {
                    return Err(PortableError::invalid(
                        format!("digest.services.samples[{i}].scope"),
                        format!("no scope {n}"),
                    ));
                }
            };
            samples.push((self.scope(scope), s.duration_ns, s.error));
        }
        let mut path = Vec::with_capacity(message.path.len());
        for (i, p) in message.path.iter().enumerate() {
            let field = |f: &str| format!("digest.path[{i}].{f}");
            let (s, o) = (syms.sym(p.service, || field("service"))?, syms.sym(p.operation, || field("operation"))?);
            path.push((self.operation(dict, s, o), p.own_ns, p.inclusive_ns));
        }
        path.sort_unstable();
        let mut error_types = Vec::with_capacity(message.error_types.len());
        for (i, e) in message.error_types.iter().enumerate() {
            let field = |f: &str| format!("digest.error_types[{i}].{f}");
            let key = (
                syms.text(e.service, || field("service"))?.to_string(),
                syms.text(e.operation, || field("operation"))?.to_string(),
                syms.text(e.kind, || field("kind"))?.to_string(),
            );
            error_types.push(self.error_type(key));
        }
        let mut hosts = Vec::with_capacity(service.hosts.len());
        for &h in &service.hosts {
            hosts.push(self.host(dict, syms.sym(h, || "digest.services.hosts".to_string())?));
        }
        trace_id(&message.trace_id, || "digest.trace_id".to_string())?;
        Ok(Some(Digest {
            arm,
            start_ns: message.start_ns,
            samples,
            path,
            path_ns: message.path_ns,
            error_types,
            requests: service.requests,
            hosts,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::assemble_all;
    use crate::generate::scenario::{Change, Deploy, Scenario};
    use crate::generate::write::OutputFormat;
    use crate::generate::{Amount, GeneratorConfig, TopologyFile, to_vec};
    use crate::judge::{Judge, JudgeConfig, Presence};
    use crate::model::Warnings;
    use crate::read::{ReadOptions, read_spans};

    /// A canary of checkout 2.5.0 beside 1.9.0, with `change`.
    fn canary(change: Change) -> (Dictionary, Vec<Trace>) {
        let deploy = Deploy {
            scenario: Scenario::Canary { weight: 0.5 },
            change,
            target: "checkout".to_string(),
            magnitude: change.default_magnitude(),
            new_version: "2.5.0".to_string(),
            new_service: String::new(),
        };
        let config = GeneratorConfig { seed: 7, deploy: Some(deploy), ..GeneratorConfig::default() };
        let (bytes, _) =
            to_vec(&TopologyFile::shop(), &config, Amount::Traces(12_000), OutputFormat::OtlpProtobufStream).unwrap();
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        read_spans("canary", &bytes[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s))
            .unwrap();
        (dict, assemble_all(spans).0)
    }

    fn versions() -> Cohorts {
        Cohorts::Versions { baseline: "1.9.0".to_string(), candidate: "2.5.0".to_string() }
    }

    #[test]
    fn a_judge_of_travelling_digests_in_any_order_equals_one_of_the_traces() {
        for change in [Change::Latency, Change::Errors] {
            let (dict, traces) = canary(change);
            let config = JudgeConfig::default();
            let mut direct = Judge::new("checkout", versions());
            for t in &traces {
                direct.add_trace(&dict, t);
            }
            let expected = serde_json::to_string_pretty(&direct.verdict(&config)).unwrap();
            // Two senders with their own tables; the receiver takes them
            // last first, into a dictionary of its own.
            let (mut first, mut second) = ((Names::default(), Vec::new()), (Names::default(), Vec::new()));
            let mut digester = TraceDigester::default();
            for (i, t) in traces.iter().enumerate() {
                let (names, out) =
                    if i % 3 == 0 { (&mut first.0, &mut first.1) } else { (&mut second.0, &mut second.1) };
                out.push(digester.digest(&dict, t, names));
            }
            let mut local = Dictionary::default();
            let mut judge = Judge::new("checkout", versions());
            for (names, digests) in [second, first] {
                let strings = names.into_strings();
                let syms = Syms::intern(&strings, &mut local);
                for d in digests.iter().rev() {
                    judge.add_portable(&local, &syms, d).unwrap();
                }
            }
            assert_eq!(judge.traces(), direct.traces());
            assert!(judge.check(Presence::Offline).is_ok());
            let got = serde_json::to_string_pretty(&judge.verdict(&config)).unwrap();
            assert_eq!(got, expected, "{change:?}");
            let (baseline, candidate) = judge.traces();
            assert!(baseline > 500 && candidate > 500, "{change:?}: {baseline} and {candidate} traces");
            assert!(expected.contains("\"operation\": \"PlaceOrder\""), "{change:?}: attributed");
        }
    }

    #[test]
    fn a_version_never_seen_is_named_from_digests_too() {
        let (dict, traces) = canary(Change::None);
        let mut names = Names::default();
        let mut digester = TraceDigester::default();
        let digests: Vec<_> = traces.iter().map(|t| digester.digest(&dict, t, &mut names)).collect();
        let strings = names.into_strings();
        let mut local = Dictionary::default();
        let syms = Syms::intern(&strings, &mut local);
        let cohorts = Cohorts::Versions { baseline: "1.9.0".to_string(), candidate: "9.9.9".to_string() };
        let mut judge = Judge::new("checkout", cohorts);
        for d in &digests {
            judge.add_portable(&local, &syms, d).unwrap();
        }
        let err = judge.check(Presence::Offline).unwrap_err().to_string();
        assert!(err.contains("\"9.9.9\" is not in the input"), "{err}");
        // Damaged digests are errors naming the field.
        let service = strings[digests[0].services[0].service as usize].clone();
        let everything = || Judge::new(&service, Cohorts::DeployTime { deploy_ns: 0, warmup_ns: 0 });
        let mut bad = digests[0].clone();
        bad.services[0].samples[0].scope = 7;
        let err = everything().add_portable(&local, &syms, &bad).unwrap_err();
        assert_eq!(err.to_string(), "digest.services.samples[0].scope: no scope 7");
        let mut bad_name = digests[0].clone();
        bad_name.path[0].operation = 1 << 30;
        let err = everything().add_portable(&local, &syms, &bad_name).unwrap_err();
        assert!(
            err.to_string().starts_with("digest.path[0].operation: string 1073741824 is not in the table"),
            "{err}"
        );
    }
}
