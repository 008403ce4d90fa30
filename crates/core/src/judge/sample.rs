//! What the judge keeps of each trace: which arm it belongs to (baseline or
//! candidate, by the judged service's version or by time around a deploy),
//! the judged service's samples (entry spans overall and per operation,
//! calls per downstream edge: duration and error), its critical-path time
//! per (service, operation), self and inclusive, and the error types and
//! edges seen. A digest is small, so a judge over millions of traces keeps
//! only what it needs.
//!
//! * [`portable`] — digests for every service of a trace at once, with
//!   names as text, that travel in partials and are judged elsewhere.

use rustc_hash::FxHashMap;

use crate::analysis::critical_path::{CriticalPath, CriticalPathConfig, critical_path};
use crate::model::{Dictionary, Span, SpanKind, Sym, Trace, Value};

pub mod portable;

/// Spans kept per (trace, metric): more come from loops and would let one
/// trace dominate (chosen by span-id hash, so the choice is stable).
pub const SPANS_PER_TRACE_AND_METRIC: usize = 10;

/// How traces are split into the two arms.
#[derive(Clone, Debug, PartialEq)]
pub enum Cohorts {
    /// Side by side: the judged service's `service.version`.
    Versions {
        /// The old version.
        baseline: String,
        /// The new version.
        candidate: String,
    },
    /// Before versus after a deploy: traces starting before `deploy_ns`
    /// are the baseline, those starting `warmup_ns` or more after it the
    /// candidate; the warm-up in between is skipped.
    DeployTime {
        /// The deploy, unix ns.
        deploy_ns: u64,
        /// Skipped after the deploy, ns.
        warmup_ns: u64,
    },
    /// Two sets of inputs: the caller names each trace's arm
    /// ([`crate::judge::Judge::add_trace_as`]).
    Inputs,
}

/// Which arm a trace is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arm {
    /// Before, or the old version.
    Baseline,
    /// After, or the new version.
    Candidate,
}

/// What a sample measures.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every entry span of the service.
    Service,
    /// Entry spans of one operation.
    Operation(String),
    /// The service's calls to one downstream node.
    Edge(String),
}

impl Scope {
    /// The name used in metric names.
    pub fn label(&self, service: &str) -> String {
        match self {
            Scope::Service => service.to_string(),
            Scope::Operation(op) => format!("{service} {op}"),
            Scope::Edge(to) => format!("{service} -> {to}"),
        }
    }
}

/// One trace, reduced to what the judge needs.
#[derive(Clone, Debug)]
pub struct Digest {
    /// Its arm.
    pub arm: Arm,
    /// Its earliest span start, unix ns.
    pub start_ns: u64,
    /// (scope index, duration ns, error), at most
    /// [`SPANS_PER_TRACE_AND_METRIC`] per scope.
    pub samples: Vec<(u32, u64, bool)>,
    /// Critical-path time per (service, operation) index: (self ns,
    /// inclusive ns: its own plus its callees' on the path).
    pub path: Vec<(u32, u64, u64)>,
    /// Critical-path length, ns.
    pub path_ns: u64,
    /// Error types seen (index into the digester's table).
    pub error_types: Vec<u32>,
    /// Requests: entry spans of the service with no caller in the service.
    pub requests: u32,
    /// The judged service's hosts (index into the digester's table).
    pub hosts: Vec<u32>,
}

/// Turns traces into digests for one judged service, interning scopes,
/// operations and error types.
pub struct Digester {
    service: String,
    cohorts: Cohorts,
    /// Scopes by index.
    pub scopes: Vec<Scope>,
    scope_index: FxHashMap<Scope, u32>,
    /// (service, operation) names by index.
    pub operations: Vec<(String, String)>,
    operation_index: FxHashMap<(Sym, Sym), u32>,
    /// Error types by index: (service, operation, type).
    pub error_types: Vec<(String, String, String)>,
    error_index: FxHashMap<(String, String, String), u32>,
    /// Host names by index.
    pub hosts: Vec<String>,
    host_index: FxHashMap<Sym, u32>,
}

fn text(attrs: &[crate::model::Attr], key: Sym) -> Option<String> {
    attrs.iter().find(|a| a.key == key).and_then(|a| match &a.value {
        Value::Str(s) if !s.is_empty() => Some(s.to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    })
}

fn hash_id(span: &Span) -> u64 {
    u64::from_le_bytes(span.span_id.0).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Digester {
    /// A digester of `service`'s traces split by `cohorts`.
    pub fn new(service: &str, cohorts: Cohorts) -> Digester {
        Digester {
            service: service.to_string(),
            cohorts,
            scopes: Vec::new(),
            scope_index: FxHashMap::default(),
            operations: Vec::new(),
            operation_index: FxHashMap::default(),
            error_types: Vec::new(),
            error_index: FxHashMap::default(),
            hosts: Vec::new(),
            host_index: FxHashMap::default(),
        }
    }

    /// The judged service.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// How traces are split.
    pub fn cohorts(&self) -> &Cohorts {
        &self.cohorts
    }

    fn scope(&mut self, scope: Scope) -> u32 {
        if let Some(&i) = self.scope_index.get(&scope) {
            return i;
        }
        let i = self.scopes.len() as u32;
        self.scopes.push(scope.clone());
        self.scope_index.insert(scope, i);
        i
    }

    fn operation(&mut self, dict: &Dictionary, service: Sym, name: Sym) -> u32 {
        if let Some(&i) = self.operation_index.get(&(service, name)) {
            return i;
        }
        let i = self.operations.len() as u32;
        self.operations.push((dict.resolve(service).to_string(), dict.resolve(name).to_string()));
        self.operation_index.insert((service, name), i);
        i
    }

    fn error_type(&mut self, key: (String, String, String)) -> u32 {
        if let Some(&i) = self.error_index.get(&key) {
            return i;
        }
        let i = self.error_types.len() as u32;
        self.error_types.push(key.clone());
        self.error_index.insert(key, i);
        i
    }

    fn host(&mut self, dict: &Dictionary, host: Sym) -> u32 {
        if let Some(&i) = self.host_index.get(&host) {
            return i;
        }
        let i = self.hosts.len() as u32;
        self.hosts.push(dict.resolve(host).to_string());
        self.host_index.insert(host, i);
        i
    }

    /// The trace's arm, if it is one of the judged service's traces and in
    /// either arm.
    fn arm(&self, dict: &Dictionary, trace: &Trace, service: Sym, start_ns: u64) -> Option<Arm> {
        let first = trace.spans.iter().find(|s| s.service == service)?;
        match &self.cohorts {
            Cohorts::Versions { baseline, candidate } => {
                let version = dict.resolve(dict.resource_of(first.resource).version);
                if version == baseline {
                    Some(Arm::Baseline)
                } else if version == candidate {
                    Some(Arm::Candidate)
                } else {
                    None
                }
            }
            Cohorts::DeployTime { deploy_ns, warmup_ns } => {
                if start_ns < *deploy_ns {
                    Some(Arm::Baseline)
                } else if start_ns >= deploy_ns.saturating_add(*warmup_ns) {
                    Some(Arm::Candidate)
                } else {
                    None
                }
            }
            Cohorts::Inputs => None,
        }
    }

    /// The digest of one trace, or `None` when the judged service is not
    /// in it or it falls in neither arm.
    pub fn digest(&mut self, dict: &Dictionary, trace: &Trace) -> Option<Digest> {
        self.digest_as(dict, trace, None, true)
    }

    /// The digest of one trace in `arm` (or the arm its cohorts give),
    /// with or without its critical-path attribution.
    pub fn digest_as(&mut self, dict: &Dictionary, trace: &Trace, arm: Option<Arm>, with_path: bool) -> Option<Digest> {
        let service = dict.get(&self.service)?;
        let start_ns = trace.spans.iter().filter(|s| s.has_timing()).map(|s| s.start_ns).min().unwrap_or(0);
        let arm = match arm {
            Some(arm) => {
                trace.spans.iter().find(|s| s.service == service)?;
                arm
            }
            None => self.arm(dict, trace, service, start_ns)?,
        };
        let spans = &trace.spans;
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        for i in 0..spans.len() {
            if let Some(p) = trace.parent(i) {
                children[p].push(i);
            }
        }
        // (scope, hash, duration, error) before the per-trace cap.
        let mut raw: Vec<(u32, u64, u64, bool)> = Vec::new();
        let mut requests = 0u32;
        let mut error_types = Vec::new();
        let mut hosts = Vec::new();
        for (i, span) in spans.iter().enumerate() {
            if span.is_error() {
                let key = (
                    dict.resolve(span.service).to_string(),
                    dict.resolve(span.name).to_string(),
                    error_kind(dict, span),
                );
                let t = self.error_type(key);
                if !error_types.contains(&t) {
                    error_types.push(t);
                }
            }
            if span.service != service {
                continue;
            }
            let host = dict.resource_of(span.resource).host;
            if host != Sym::EMPTY {
                let h = self.host(dict, host);
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
            let Some(duration) = span.duration_ns() else { continue };
            let parent_service = trace.parent(i).map(|p| spans[p].service);
            let entry = parent_service != Some(service);
            if entry {
                requests += 1;
                let s = self.scope(Scope::Service);
                raw.push((s, hash_id(span), duration, span.is_error()));
                let op = self.scope(Scope::Operation(dict.resolve(span.name).to_string()));
                raw.push((op, hash_id(span), duration, span.is_error()));
            }
            // A call out: a child in another service, or a client-ish span
            // naming its peer.
            let callee = children[i].iter().map(|&c| spans[c].service).find(|&s| s != service);
            if let Some(target) = call_target(dict, span, callee) {
                let e = self.scope(Scope::Edge(target));
                raw.push((e, hash_id(span), duration, span.is_error()));
            }
        }
        let samples = cap_per_scope(raw);
        if !with_path {
            return Some(Digest { arm, start_ns, samples, path: Vec::new(), path_ns: 0, error_types, requests, hosts });
        }
        let cp = critical_path(trace, &CriticalPathConfig::default());
        let (path, path_ns) = self.path_times(dict, trace, &cp);
        Some(Digest { arm, start_ns, samples, path, path_ns, error_types, requests, hosts })
    }

    /// Critical-path time per operation: self, and inclusive for every
    /// ancestor on the span's chain (each key once per section); and the
    /// path's length.
    fn path_times(&mut self, dict: &Dictionary, trace: &Trace, cp: &CriticalPath) -> (Vec<(u32, u64, u64)>, u64) {
        let spans = &trace.spans;
        let mut path: FxHashMap<u32, (u64, u64)> = FxHashMap::default();
        let mut seen: Vec<u32> = Vec::new();
        for section in &cp.sections {
            let d = section.end_ns.saturating_sub(section.start_ns);
            let s = &spans[section.span];
            let own = self.operation(dict, s.service, s.name);
            path.entry(own).or_default().0 += d;
            seen.clear();
            let mut cursor = Some(section.span);
            while let Some(i) = cursor {
                let k = self.operation(dict, spans[i].service, spans[i].name);
                if !seen.contains(&k) {
                    seen.push(k);
                    path.entry(k).or_default().1 += d;
                }
                cursor = trace.parent(i);
            }
        }
        let mut path: Vec<(u32, u64, u64)> = path.into_iter().map(|(k, (s, i))| (k, s, i)).collect();
        path.sort_unstable();
        (path, cp.duration_ns)
    }
}

/// What kind of error a failed span shows: its exception type, else its
/// status message (first 120 characters), else `ERROR`.
fn error_kind(dict: &Dictionary, span: &Span) -> String {
    span.events()
        .iter()
        .find_map(|e| e.attributes.iter().find(|a| dict.resolve(a.key) == "exception.type"))
        .and_then(|a| match &a.value {
            Value::Str(s) => Some(s.to_string()),
            _ => None,
        })
        .or_else(|| span.status_message().map(|m| m.chars().take(120).collect()))
        .unwrap_or_else(|| "ERROR".to_string())
}

/// Whom a span calls: the service of a child in another service, or the
/// peer a client-ish span names.
pub(crate) fn call_target(dict: &Dictionary, span: &Span, callee: Option<Sym>) -> Option<String> {
    let keys = dict.keys();
    match callee {
        Some(s) => Some(dict.resolve(s).to_string()),
        None if matches!(span.kind, SpanKind::Client | SpanKind::Producer) => [
            keys.peer_service,
            keys.db_name,
            keys.db_namespace,
            keys.messaging_destination_name,
            keys.server_address,
            keys.db_system,
            keys.db_system_name,
            keys.messaging_system,
        ]
        .iter()
        .find_map(|&k| text(&span.attributes, k)),
        None => None,
    }
}

/// Own critical-path time of client and producer spans per (caller
/// service, callee node) — the network, or a callee that sends no spans —
/// over `cp`, the critical path of `trace`. With each operation's own
/// time, every ns of the path is counted once.
pub(crate) fn call_times(dict: &Dictionary, trace: &Trace, cp: &CriticalPath) -> Vec<(Sym, String, u64)> {
    let spans = &trace.spans;
    let mut callee: Vec<Option<Sym>> = vec![None; spans.len()];
    for i in 0..spans.len() {
        if let Some(p) = trace.parent(i)
            && spans[p].service != spans[i].service
            && callee[p].is_none()
        {
            callee[p] = Some(spans[i].service);
        }
    }
    let mut calls: Vec<(Sym, String, u64)> = Vec::new();
    for section in &cp.sections {
        let span = &spans[section.span];
        if !matches!(span.kind, SpanKind::Client | SpanKind::Producer) {
            continue;
        }
        let Some(node) = call_target(dict, span, callee[section.span]) else { continue };
        match calls.iter_mut().find(|c| c.0 == span.service && c.1 == node) {
            Some(c) => c.2 += section.len_ns(),
            None => calls.push((span.service, node, section.len_ns())),
        }
    }
    calls
}

/// At most [`SPANS_PER_TRACE_AND_METRIC`] samples per scope, by smallest
/// hash; `raw` is (scope, hash, duration, error).
fn cap_per_scope(mut raw: Vec<(u32, u64, u64, bool)>) -> Vec<(u32, u64, bool)> {
    raw.sort_unstable_by_key(|&(s, h, _, _)| (s, h));
    let mut samples = Vec::with_capacity(raw.len());
    let mut run = (u32::MAX, 0usize);
    for (s, _, d, e) in raw {
        if run.0 != s {
            run = (s, 0);
        }
        if run.1 < SPANS_PER_TRACE_AND_METRIC {
            samples.push((s, d, e));
        }
        run.1 += 1;
    }
    samples
}
