//! Workload topologies: the file form (TOML or YAML, see
//! `presets/shop.toml`), the built-in presets, a seeded random topology
//! with a given size, depth and fan-out, and validation of all of them into
//! the checked [`Model`] the generator runs.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::model::SpanKind;

use super::rng::{LogNormal, Rng};

/// Errors in a topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A YAML file could not be parsed.
    #[error("{0}")]
    Yaml(#[source] serde_norway::Error),
    /// A TOML file could not be parsed.
    #[error("{0}")]
    Toml(#[source] toml::de::Error),
    /// The topology is parsed but inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// A topology as written in a TOML or YAML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// A name for reports.
    #[serde(default)]
    pub name: Option<String>,
    /// The service deploy scenarios change when none is named.
    #[serde(default)]
    pub default_target: Option<String>,
    /// The services.
    pub services: Vec<ServiceDef>,
}

/// A service in a topology file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// `service.name`
    pub name: String,
    /// `service.version` (the baseline version in deploy scenarios).
    #[serde(default = "default_version")]
    pub version: String,
    /// Number of instances (hosts).
    #[serde(default = "one")]
    pub instances: u32,
    /// Operations the service serves.
    #[serde(default)]
    pub operations: Vec<OperationDef>,
}

fn default_version() -> String {
    "1.0.0".to_string()
}

fn one() -> u32 {
    1
}

/// How an operation is invoked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Called over RPC/HTTP: a SERVER span.
    #[default]
    Server,
    /// Fed from a message queue: a CONSUMER span.
    Consumer,
}

/// An operation in a topology file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationDef {
    /// Operation (span) name.
    pub name: String,
    /// Server or consumer.
    #[serde(default)]
    pub kind: OpKind,
    /// The operation's own work.
    pub latency: LatencyDef,
    /// Probability that the operation fails.
    #[serde(default)]
    pub error_rate: f64,
    /// Relative share of incoming traffic; 0 means not an entry point.
    #[serde(default)]
    pub entry_weight: f64,
    /// Downstream work, in order.
    #[serde(default)]
    pub calls: Vec<CallDef>,
}

/// A latency distribution: log-normal by median and p99, in milliseconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyDef {
    /// Median, ms.
    pub median_ms: f64,
    /// 99th percentile, ms (≥ median; the ratio sets how heavy the tail is).
    pub p99_ms: f64,
}

/// One downstream call. Exactly one of: `service`+`operation` (RPC),
/// `topic`+`service`+`operation` (messaging), `db`+`query` (database),
/// `internal` (in-process work).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallDef {
    /// Called service (RPC or messaging consumer).
    #[serde(default)]
    pub service: Option<String>,
    /// Called operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// Message topic (messaging).
    #[serde(default)]
    pub topic: Option<String>,
    /// Messaging system (default `kafka`).
    #[serde(default)]
    pub system: Option<String>,
    /// Database system, e.g. `postgresql` (database call).
    #[serde(default)]
    pub db: Option<String>,
    /// Database name (becomes `peer.service`).
    #[serde(default)]
    pub name: Option<String>,
    /// Database statement (span name).
    #[serde(default)]
    pub query: Option<String>,
    /// In-process span name.
    #[serde(default)]
    pub internal: Option<String>,
    /// Latency of a database or internal call.
    #[serde(default)]
    pub latency: Option<LatencyDef>,
    /// Failure probability of a database or internal call.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Probability that the call happens at all (default 1).
    #[serde(default)]
    pub probability: Option<f64>,
    /// How many times it happens: `[min, max]` (default `[1, 1]`).
    #[serde(default)]
    pub repeat: Option<[u32; 2]>,
}

/// The built-in presets.
pub const PRESETS: [&str; 3] = ["shop", "rich", "random"];

/// The built-in shop topology as TOML: a template for topology files.
pub const SHOP_TOML: &str = include_str!("presets/shop.toml");

/// The built-in rich topology as TOML (about 30 spans per trace).
pub const RICH_TOML: &str = include_str!("presets/rich.toml");

impl TopologyFile {
    /// Parses TOML, or YAML when `yaml` is set.
    pub fn parse(text: &str, yaml: bool) -> Result<TopologyFile, TopologyError> {
        if yaml {
            serde_norway::from_str(text).map_err(TopologyError::Yaml)
        } else {
            toml::from_str(text).map_err(TopologyError::Toml)
        }
    }

    /// The built-in shop: frontend, checkout, cart, payments and more, with
    /// PostgreSQL and Redis calls and a Kafka topic.
    pub fn shop() -> TopologyFile {
        Self::parse(SHOP_TOML, false).expect("built-in preset parses")
    }

    /// The built-in rich shop: wider requests (about 30 spans per trace),
    /// an N+1 query loop, repeated pricing calls.
    pub fn rich() -> TopologyFile {
        Self::parse(RICH_TOML, false).expect("built-in preset parses")
    }

    /// A seeded random topology: `services` services in `depth` layers, each
    /// operation calling up to `fan_out` operations of deeper layers; the
    /// deepest layer talks to databases.
    pub fn random(seed: u64, services: u32, depth: u32, fan_out: u32) -> TopologyFile {
        let services = services.max(1);
        let depth = depth.clamp(1, services);
        let mut rng = Rng::new(seed ^ 0x746f_706f_6c6f_6779);
        let layer_of = |i: u32| if i == 0 { 0 } else { 1 + (i - 1) * (depth - 1).max(1) / (services - 1).max(1) };
        let mut defs: Vec<ServiceDef> = (0..services)
            .map(|i| ServiceDef {
                name: format!("svc-{i:02}"),
                version: format!("1.{}.0", rng.range(0, 9)),
                instances: rng.range(1, 3) as u32,
                operations: (0..rng.range(1, 3))
                    .map(|k| {
                        let median = 0.2 + rng.unit() * 5.0;
                        OperationDef {
                            name: format!("op-{i:02}-{k}"),
                            kind: OpKind::Server,
                            latency: LatencyDef { median_ms: median, p99_ms: median * (3.0 + rng.unit() * 12.0) },
                            error_rate: rng.unit() * 0.01,
                            entry_weight: if i == 0 { 1.0 } else { 0.0 },
                            calls: Vec::new(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let targets: Vec<(u32, u32, String, String)> = defs
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                s.operations.iter().map(move |o| (i as u32, layer_of(i as u32), s.name.clone(), o.name.clone()))
            })
            .collect();
        for i in 0..services {
            let layer = layer_of(i);
            let deeper: Vec<&(u32, u32, String, String)> = targets.iter().filter(|t| t.1 == layer + 1).collect();
            for op in &mut defs[i as usize].operations {
                if deeper.is_empty() {
                    op.calls.push(CallDef {
                        db: Some(if rng.chance(0.5) { "postgresql" } else { "redis" }.to_string()),
                        query: Some("SELECT".to_string()),
                        latency: Some(LatencyDef { median_ms: 0.5, p99_ms: 5.0 }),
                        ..CallDef::default()
                    });
                    continue;
                }
                for _ in 0..rng.range(1, fan_out.max(1) as u64) {
                    let t = deeper[rng.range(0, deeper.len() as u64 - 1) as usize];
                    op.calls.push(CallDef {
                        service: Some(t.2.clone()),
                        operation: Some(t.3.clone()),
                        probability: Some(0.6 + rng.unit() * 0.4),
                        ..CallDef::default()
                    });
                }
            }
        }
        TopologyFile {
            name: Some("random".to_string()),
            default_target: defs.get(1).map(|s| s.name.clone()),
            services: defs,
        }
    }
}

/// An attribute value in generated spans.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrVal {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
}

/// One emitting process of the generated system.
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    /// Index into [`Catalog::services`].
    pub service: usize,
    /// `service.version`
    pub version: String,
    /// `host.name`
    pub host: String,
    /// `deployment.environment.name`
    pub environment: String,
    /// Clock offset of this host, ns.
    pub skew_ns: i64,
}

/// Every string, attribute set and resource a generated span refers to by
/// index, so generated spans are small `Copy` values. Name 0 is the empty
/// string and attribute set 0 is empty.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Service names.
    pub services: Vec<String>,
    /// Span names and status messages.
    pub names: Vec<String>,
    name_ids: HashMap<String, u32>,
    /// Span attribute sets.
    pub attr_sets: Vec<Vec<(String, AttrVal)>>,
    /// The instrumentation scope (index into [`Catalog::scopes`]) of the
    /// spans of each attribute set, when not the first.
    pub attr_scopes: Vec<u32>,
    /// Instrumentation scopes: (name, version); the first is tracelens's own.
    pub scopes: Vec<(String, String)>,
    /// Resources (service × version × instance).
    pub resources: Vec<ResourceSpec>,
}

impl Default for Catalog {
    fn default() -> Self {
        let mut catalog = Catalog {
            services: Vec::new(),
            names: Vec::new(),
            name_ids: HashMap::new(),
            attr_sets: vec![Vec::new()],
            attr_scopes: Vec::new(),
            scopes: vec![("tracelens-generate".to_string(), env!("CARGO_PKG_VERSION").to_string())],
            resources: Vec::new(),
        };
        catalog.name("");
        catalog
    }
}

impl Catalog {
    /// Index of a name, added if new.
    pub(crate) fn name(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(text) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(text.to_string());
        self.name_ids.insert(text.to_string(), id);
        id
    }

    /// Index of an attribute set, added if new.
    pub(crate) fn attrs(&mut self, attrs: Vec<(&str, AttrVal)>) -> u32 {
        let attrs: Vec<(String, AttrVal)> = attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Some(i) = self.attr_sets.iter().position(|a| *a == attrs) {
            return i as u32;
        }
        self.attr_sets.push(attrs);
        (self.attr_sets.len() - 1) as u32
    }

    /// The scope of spans carrying attribute set `attrs`.
    pub fn scope_of(&self, attrs: u32) -> u32 {
        self.attr_scopes.get(attrs as usize).copied().unwrap_or(0)
    }

    /// Gives every attribute set the attributes real instrumentation
    /// writes beside the ones the model needs (8 or more per span: long
    /// SQL statements and URLs, addresses, threads, code locations), and
    /// each kind of span its instrumentation scope. The attributes the
    /// analyses read are kept as they were.
    pub fn enrich(&mut self) {
        let mut scopes: Vec<(String, String)> = self.scopes.clone();
        let mut scope = |name: &str, version: &str| -> u32 {
            match scopes.iter().position(|(n, v)| n == name && v == version) {
                Some(i) => i as u32,
                None => {
                    scopes.push((name.to_string(), version.to_string()));
                    (scopes.len() - 1) as u32
                }
            }
        };
        let mut attr_scopes = Vec::with_capacity(self.attr_sets.len());
        for (i, set) in self.attr_sets.iter_mut().enumerate() {
            let text = |key: &str| {
                set.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
                    AttrVal::Str(s) => Some(s.clone()),
                    AttrVal::Int(_) => None,
                })
            };
            let s = |v: &str| AttrVal::Str(v.to_string());
            let thread = [
                ("thread.id".to_string(), AttrVal::Int(40 + i as i64 % 24)),
                ("thread.name".to_string(), s(&format!("exec-{}", i % 24))),
            ];
            let (extra, scope_index): (Vec<(String, AttrVal)>, u32) = if let Some(system) = text("db.system") {
                let namespace = text("db.namespace").unwrap_or_default();
                let query = text("db.query.text").unwrap_or_default();
                let (verb, table) = query.split_once(' ').unwrap_or((query.as_str(), "data"));
                let statement = if system == "redis" {
                    format!("{verb} {namespace}:{table}:7f3a9c")
                } else {
                    format!(
                        "{verb} id, status, total, created_at FROM {table} WHERE tenant_id = $1 AND id = ANY($2) \
                         ORDER BY created_at DESC LIMIT 50"
                    )
                };
                set.retain(|(k, _)| k != "db.query.text");
                let extra = vec![
                    ("db.query.text".to_string(), s(&statement)),
                    ("db.operation.name".to_string(), s(verb)),
                    ("db.collection.name".to_string(), s(table)),
                    ("server.address".to_string(), s(&format!("{namespace}.db"))),
                    ("server.port".to_string(), AttrVal::Int(if system == "redis" { 6379 } else { 5432 })),
                ];
                let instrumentation =
                    if system == "redis" { "io.opentelemetry.lettuce-5.1" } else { "io.opentelemetry.jdbc" };
                (extra, scope(instrumentation, "2.10.0-alpha"))
            } else if let Some(topic) = text("messaging.destination.name") {
                let extra = vec![
                    ("server.address".to_string(), s("kafka-0.kafka")),
                    ("server.port".to_string(), AttrVal::Int(9092)),
                    ("messaging.client.id".to_string(), s(&format!("producer-{topic}-1"))),
                    ("messaging.destination.partition.id".to_string(), s(&(i % 12).to_string())),
                ];
                (extra, scope("io.opentelemetry.kafka-clients-2.6", "2.10.0-alpha"))
            } else if let Some(peer) = text("peer.service") {
                let extra = vec![
                    ("rpc.service".to_string(), s(&format!("{peer}.v1.Api"))),
                    ("server.address".to_string(), s(&format!("{peer}.svc"))),
                    ("server.port".to_string(), AttrVal::Int(8080)),
                    ("url.full".to_string(), s(&format!("http://{peer}.svc:8080/{peer}.v1.Api/Call?tenant=7f3a9c"))),
                    ("rpc.grpc.status_code".to_string(), AttrVal::Int(0)),
                ];
                (extra, scope("io.opentelemetry.grpc-1.6", "2.10.0-alpha"))
            } else if set.is_empty() {
                let extra = vec![
                    ("code.function".to_string(), s(&format!("handle{i}"))),
                    ("code.namespace".to_string(), s("shop.Pipeline")),
                    ("code.filepath".to_string(), s("src/shop/pipeline.rs")),
                    ("code.lineno".to_string(), AttrVal::Int(120 + i as i64)),
                    ("app.tenant.id".to_string(), s("7f3a9c")),
                    ("app.region".to_string(), s("eu-west-1")),
                ];
                (extra, scope("com.example.shop", "5.2.0"))
            } else {
                // Servers and consumers: the incoming request.
                let extra = vec![
                    ("http.request.method".to_string(), s("POST")),
                    ("http.response.status_code".to_string(), AttrVal::Int(200)),
                    ("url.scheme".to_string(), s("https")),
                    ("user_agent.original".to_string(), s("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")),
                    ("client.address".to_string(), s("203.0.113.57")),
                    ("network.peer.port".to_string(), AttrVal::Int(51234)),
                ];
                (extra, scope("io.opentelemetry.armeria-grpc-1.14", "2.10.0-alpha"))
            };
            set.extend(extra);
            set.extend(thread);
            attr_scopes.push(scope_index);
        }
        self.scopes = scopes;
        self.attr_scopes = attr_scopes;
    }
}

/// A checked operation.
#[derive(Debug, Clone)]
pub struct Op {
    /// Index into [`Catalog::services`].
    pub service: usize,
    /// Span name.
    pub name: u32,
    /// SERVER or CONSUMER.
    pub kind: SpanKind,
    /// Own work.
    pub latency: LogNormal,
    /// Failure probability.
    pub error_rate: f64,
    /// Status message on failure.
    pub error_message: u32,
    /// Attributes of the operation's span.
    pub attrs: u32,
    /// Downstream calls.
    pub calls: Vec<Call>,
}

/// A checked call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Probability the call happens.
    pub probability: f64,
    /// Repeat range.
    pub repeat: (u32, u32),
    /// What is called.
    pub what: CallKind,
}

/// What a call does.
#[derive(Debug, Clone)]
pub enum CallKind {
    /// CLIENT span, then the callee's SERVER span.
    Rpc {
        /// Callee operation (index into [`Model::ops`]).
        op: usize,
        /// Client span attributes.
        attrs: u32,
    },
    /// PRODUCER span, then (asynchronously) the callee's CONSUMER span.
    Messaging {
        /// Consumer operation.
        op: usize,
        /// Producer span name.
        name: u32,
        /// Producer span attributes.
        attrs: u32,
    },
    /// A CLIENT span to a database.
    Database {
        /// Statement (span name).
        name: u32,
        /// Latency.
        latency: LogNormal,
        /// Failure probability.
        error_rate: f64,
        /// Attributes (`db.system`, `peer.service`, …).
        attrs: u32,
    },
    /// An INTERNAL span.
    Internal {
        /// Span name.
        name: u32,
        /// Latency.
        latency: LogNormal,
        /// Failure probability.
        error_rate: f64,
    },
}

/// A checked, runnable topology: operations by index, entry points, and
/// the instances (resources) each service runs on.
#[derive(Debug, Clone)]
pub struct Model {
    /// Operations.
    pub ops: Vec<Op>,
    /// Entry operations with cumulative weights.
    pub entries: Vec<(usize, f64)>,
    /// Per service, the resources serving it.
    pub instances: Vec<Vec<u32>>,
}

impl Model {
    /// Index of the operation `op` of service `service`.
    pub fn find_op(&self, catalog: &Catalog, service: &str, op: &str) -> Option<usize> {
        self.ops.iter().position(|o| catalog.services[o.service] == service && catalog.names[o.name as usize] == op)
    }
}

fn latency(def: &LatencyDef, what: &str) -> Result<LogNormal, TopologyError> {
    if !(def.median_ms > 0.0 && def.median_ms.is_finite() && def.p99_ms.is_finite()) {
        return Err(TopologyError::Invalid(format!("{what}: latency median_ms must be a positive number")));
    }
    if def.p99_ms < def.median_ms {
        return Err(TopologyError::Invalid(format!(
            "{what}: latency p99_ms ({}) is below median_ms ({})",
            def.p99_ms, def.median_ms
        )));
    }
    Ok(LogNormal::from_median_p99(def.median_ms * 1e6, def.p99_ms * 1e6))
}

fn probability(p: f64, what: &str) -> Result<f64, TopologyError> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(TopologyError::Invalid(format!("{what} must be between 0 and 1, got {p}")))
    }
}

/// Checks a topology and builds its model. Resources for every service's
/// instances are added to `catalog` with `environment`.
pub fn build_model(file: &TopologyFile, catalog: &mut Catalog, environment: &str) -> Result<Model, TopologyError> {
    if file.services.is_empty() {
        return Err(TopologyError::Invalid("the topology has no services".to_string()));
    }
    let mut seen = HashSet::new();
    for s in &file.services {
        if s.name.trim().is_empty() {
            return Err(TopologyError::Invalid("a service has an empty name".to_string()));
        }
        if !seen.insert(s.name.as_str()) {
            return Err(TopologyError::Invalid(format!("service {:?} is defined twice", s.name)));
        }
        if s.instances == 0 || s.instances > 1000 {
            return Err(TopologyError::Invalid(format!("service {:?}: instances must be 1 to 1000", s.name)));
        }
    }
    // Operation indices first, so calls can refer forward.
    let mut op_index: HashMap<(&str, &str), usize> = HashMap::new();
    for s in &file.services {
        for o in &s.operations {
            let next = op_index.len();
            if op_index.insert((s.name.as_str(), o.name.as_str()), next).is_some() {
                return Err(TopologyError::Invalid(format!(
                    "service {:?}: operation {:?} is defined twice",
                    s.name, o.name
                )));
            }
        }
    }
    let mut instances = Vec::new();
    for s in &file.services {
        let service = catalog.services.len();
        catalog.services.push(s.name.clone());
        instances.push(add_instances(catalog, service, &s.version, s.instances, environment, ""));
    }
    let mut ops = Vec::with_capacity(op_index.len());
    let mut entries = Vec::new();
    let mut total_weight = 0.0;
    for (si, s) in file.services.iter().enumerate() {
        let service = catalog.services.len() - file.services.len() + si;
        for o in &s.operations {
            let what = format!("{}/{}", s.name, o.name);
            let kind = match o.kind {
                OpKind::Server => SpanKind::Server,
                OpKind::Consumer => SpanKind::Consumer,
            };
            let attrs = match kind {
                SpanKind::Consumer => catalog.attrs(vec![("messaging.operation.type", AttrVal::Str("process".into()))]),
                _ => catalog.attrs(vec![("rpc.system", AttrVal::Str("grpc".into()))]),
            };
            let mut calls = Vec::with_capacity(o.calls.len());
            for (ci, c) in o.calls.iter().enumerate() {
                calls.push(build_call(c, &format!("{what} call {}", ci + 1), &op_index, catalog)?);
            }
            if !(o.entry_weight >= 0.0 && o.entry_weight.is_finite()) {
                return Err(TopologyError::Invalid(format!("{what}: entry_weight must be zero or positive")));
            }
            if o.entry_weight > 0.0 {
                total_weight += o.entry_weight;
                entries.push((ops.len(), total_weight));
            }
            ops.push(Op {
                service,
                name: catalog.name(&o.name),
                kind,
                latency: latency(&o.latency, &what)?,
                error_rate: probability(o.error_rate, &format!("{what}: error_rate"))?,
                error_message: catalog.name(&format!("{} failed", o.name)),
                attrs,
                calls,
            });
        }
    }
    if entries.is_empty() {
        return Err(TopologyError::Invalid(
            "no operation has an entry_weight above 0: nothing receives traffic".to_string(),
        ));
    }
    let model = Model { ops, entries, instances };
    check_acyclic(&model, catalog)?;
    Ok(model)
}

/// Adds `count` resources for a service version; host names get `suffix`.
pub(crate) fn add_instances(
    catalog: &mut Catalog,
    service: usize,
    version: &str,
    count: u32,
    environment: &str,
    suffix: &str,
) -> Vec<u32> {
    (0..count)
        .map(|i| {
            catalog.resources.push(ResourceSpec {
                service,
                version: version.to_string(),
                host: format!("{}{suffix}-{i}", catalog.services[service]),
                environment: environment.to_string(),
                skew_ns: 0,
            });
            (catalog.resources.len() - 1) as u32
        })
        .collect()
}

fn build_call(
    c: &CallDef,
    what: &str,
    op_index: &HashMap<(&str, &str), usize>,
    catalog: &mut Catalog,
) -> Result<Call, TopologyError> {
    let kinds = [c.topic.is_some(), c.db.is_some() || c.query.is_some(), c.internal.is_some()];
    let rpc = c.service.is_some() && !kinds[0];
    if kinds.iter().filter(|k| **k).count() + usize::from(rpc) != 1 {
        return Err(TopologyError::Invalid(format!(
            "{what}: give exactly one of service+operation (RPC), topic+service+operation (messaging), db+query (database) or internal"
        )));
    }
    let target = || -> Result<usize, TopologyError> {
        let (Some(s), Some(o)) = (&c.service, &c.operation) else {
            return Err(TopologyError::Invalid(format!("{what}: needs both service and operation")));
        };
        op_index
            .get(&(s.as_str(), o.as_str()))
            .copied()
            .ok_or_else(|| TopologyError::Invalid(format!("{what}: no operation {o:?} in service {s:?}")))
    };
    let own_latency = |default_ms: f64| -> Result<LogNormal, TopologyError> {
        match &c.latency {
            Some(l) => latency(l, what),
            None => Ok(LogNormal::from_median_p99(default_ms * 1e6, default_ms * 5e6)),
        }
    };
    let error_rate = probability(c.error_rate.unwrap_or(0.0), &format!("{what}: error_rate"))?;
    let what_kind = if let Some(topic) = &c.topic {
        let op = target()?;
        let system = c.system.clone().unwrap_or_else(|| "kafka".to_string());
        CallKind::Messaging {
            op,
            name: catalog.name(&format!("{topic} publish")),
            attrs: catalog.attrs(vec![
                ("messaging.system", AttrVal::Str(system)),
                ("messaging.destination.name", AttrVal::Str(topic.clone())),
                ("messaging.operation.type", AttrVal::Str("publish".into())),
            ]),
        }
    } else if c.db.is_some() || c.query.is_some() {
        let (Some(db), Some(query)) = (&c.db, &c.query) else {
            return Err(TopologyError::Invalid(format!("{what}: a database call needs both db and query")));
        };
        let peer = c.name.clone().unwrap_or_else(|| db.clone());
        CallKind::Database {
            name: catalog.name(query),
            latency: own_latency(1.0)?,
            error_rate,
            attrs: catalog.attrs(vec![
                ("db.system", AttrVal::Str(db.clone())),
                ("db.namespace", AttrVal::Str(peer.clone())),
                ("db.query.text", AttrVal::Str(query.clone())),
                ("peer.service", AttrVal::Str(peer)),
            ]),
        }
    } else if let Some(name) = &c.internal {
        CallKind::Internal { name: catalog.name(name), latency: own_latency(0.5)?, error_rate }
    } else {
        let op = target()?;
        let service = c.service.clone().unwrap_or_default();
        CallKind::Rpc {
            op,
            attrs: catalog
                .attrs(vec![("rpc.system", AttrVal::Str("grpc".into())), ("peer.service", AttrVal::Str(service))]),
        }
    };
    let probability = probability(c.probability.unwrap_or(1.0), &format!("{what}: probability"))?;
    let [lo, hi] = c.repeat.unwrap_or([1, 1]);
    if lo > hi || hi > 100 {
        return Err(TopologyError::Invalid(format!("{what}: repeat must be [min, max] with min <= max <= 100")));
    }
    Ok(Call { probability, repeat: (lo, hi), what: what_kind })
}

/// Call chains must end: a cycle would make traces infinite.
fn check_acyclic(model: &Model, catalog: &Catalog) -> Result<(), TopologyError> {
    fn callees(op: &Op) -> impl Iterator<Item = usize> + '_ {
        op.calls.iter().filter_map(|c| match c.what {
            CallKind::Rpc { op, .. } | CallKind::Messaging { op, .. } => Some(op),
            _ => None,
        })
    }
    // 0 unseen, 1 on the current path, 2 done
    let mut state = vec![0u8; model.ops.len()];
    fn visit(
        i: usize,
        model: &Model,
        catalog: &Catalog,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Result<(), TopologyError> {
        state[i] = 1;
        path.push(i);
        for j in callees(&model.ops[i]) {
            if state[j] == 1 {
                let start = path.iter().position(|&p| p == j).unwrap_or(0);
                let names: Vec<String> = path[start..]
                    .iter()
                    .chain(std::iter::once(&j))
                    .map(|&k| {
                        let o = &model.ops[k];
                        format!("{}/{}", catalog.services[o.service], catalog.names[o.name as usize])
                    })
                    .collect();
                return Err(TopologyError::Invalid(format!("call cycle: {}", names.join(" -> "))));
            }
            if state[j] == 0 {
                visit(j, model, catalog, state, path)?;
            }
        }
        path.pop();
        state[i] = 2;
        Ok(())
    }
    let mut path = Vec::new();
    for i in 0..model.ops.len() {
        if state[i] == 0 {
            visit(i, model, catalog, &mut state, &mut path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_preset_builds() {
        let mut catalog = Catalog::default();
        let model = build_model(&TopologyFile::shop(), &mut catalog, "production").unwrap();
        assert_eq!(catalog.services.len(), 9);
        assert!(catalog.services.contains(&"payments".to_string()));
        assert_eq!(model.entries.len(), 3);
        let place = model.find_op(&catalog, "checkout", "PlaceOrder").unwrap();
        assert_eq!(model.ops[place].calls.len(), 7);
        assert_eq!(model.instances[0].len(), 3, "frontend instances");
        assert_eq!(catalog.resources[model.instances[0][2] as usize].host, "frontend-2");
    }

    #[test]
    fn yaml_and_toml_agree() {
        let toml_text = r#"
            [[services]]
            name = "a"
            [[services.operations]]
            name = "get"
            entry_weight = 1
            latency = { median_ms = 1, p99_ms = 5 }
            calls = [{ service = "b", operation = "put", repeat = [1, 2] }]
            [[services]]
            name = "b"
            [[services.operations]]
            name = "put"
            latency = { median_ms = 2, p99_ms = 4 }
        "#;
        let yaml_text = r#"
services:
  - name: a
    operations:
      - name: get
        entry_weight: 1
        latency: { median_ms: 1, p99_ms: 5 }
        calls: [{ service: b, operation: put, repeat: [1, 2] }]
  - name: b
    operations:
      - name: put
        latency: { median_ms: 2, p99_ms: 4 }
"#;
        for (text, yaml) in [(toml_text, false), (yaml_text, true)] {
            let file = TopologyFile::parse(text, yaml).unwrap();
            let mut catalog = Catalog::default();
            let model = build_model(&file, &mut catalog, "test").unwrap();
            assert_eq!(model.ops.len(), 2);
            assert!(matches!(model.ops[0].calls[0].what, CallKind::Rpc { op: 1, .. }));
            assert_eq!(model.ops[0].calls[0].repeat, (1, 2));
        }
    }

    #[test]
    fn bad_topologies_are_explained() {
        let cases = [
            (r#"services = []"#, "no services"),
            (
                r#"[[services]]
                name = "a"
                [[services.operations]]
                name = "x"
                latency = { median_ms = 1, p99_ms = 2 }"#,
                "no operation has an entry_weight",
            ),
            (
                r#"[[services]]
                name = "a"
                [[services.operations]]
                name = "x"
                entry_weight = 1
                latency = { median_ms = 1, p99_ms = 2 }
                calls = [{ service = "a", operation = "y" }]
                [[services.operations]]
                name = "y"
                latency = { median_ms = 1, p99_ms = 2 }
                calls = [{ service = "a", operation = "x" }]"#,
                "call cycle: a/x -> a/y -> a/x",
            ),
            (
                r#"[[services]]
                name = "a"
                [[services.operations]]
                name = "x"
                entry_weight = 1
                latency = { median_ms = 5, p99_ms = 2 }"#,
                "a/x: latency p99_ms (2) is below median_ms (5)",
            ),
            (
                r#"[[services]]
                name = "a"
                [[services.operations]]
                name = "x"
                entry_weight = 1
                latency = { median_ms = 1, p99_ms = 2 }
                calls = [{ service = "nope", operation = "y" }]"#,
                "a/x call 1: no operation \"y\" in service \"nope\"",
            ),
            (
                r#"[[services]]
                nme = "a""#,
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let err = TopologyFile::parse(text, false)
                .and_then(|f| build_model(&f, &mut Catalog::default(), "t"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn random_topology_is_seeded_and_valid() {
        let a = TopologyFile::random(5, 12, 4, 3);
        let b = TopologyFile::random(5, 12, 4, 3);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let mut catalog = Catalog::default();
        let model = build_model(&a, &mut catalog, "t").unwrap();
        assert_eq!(catalog.services.len(), 12);
        assert!(!model.entries.is_empty());
    }
}
