//! Deploy scenarios: a new version of one service, either side by side with
//! the old one (baseline and canary) or replacing it part-way through the
//! time range (rollout), with one injected change — or none, for
//! false-positive tests.

use super::rng::LogNormal;
use super::topology::{AttrVal, Call, CallKind, Catalog, Model, Op, TopologyError, add_instances};
use crate::model::SpanKind;

/// How the new version runs next to the old one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scenario {
    /// One version only.
    Steady,
    /// Baseline and canary side by side; `weight` of traces go to the canary.
    Canary {
        /// Share of traces routed through the canary (0..1).
        weight: f64,
    },
    /// The new version replaces the old at `at` (a fraction of the run).
    Rollout {
        /// Fraction of the generated amount after which the new version serves.
        at: f64,
    },
}

/// What the new version changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing but the version (false-positive tests).
    None,
    /// The target's own work (not its downstream calls) takes `magnitude`
    /// times as long: a median shift, as a code regression causes.
    Latency,
    /// On a few requests (3%) the target's own work takes about `magnitude`
    /// times its old p99: a p99 shift with the median unchanged.
    Tail,
    /// The error rate rises.
    Errors,
    /// Every operation makes a new downstream call.
    NewCall,
}

impl Change {
    /// The magnitude used when none is given.
    pub fn default_magnitude(self) -> f64 {
        match self {
            Change::None => 0.0,
            Change::Latency => 1.5,
            Change::Tail => 8.0,
            Change::Errors => 0.05,
            Change::NewCall => 0.0,
        }
    }
}

/// Share of requests hit by a tail change.
pub const TAIL_PROBABILITY: f64 = 0.03;

/// A deploy: scenario, change, target service and its size.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    /// Scenario.
    pub scenario: Scenario,
    /// Change.
    pub change: Change,
    /// Service that gets the new version.
    pub target: String,
    /// Size of the change (factor for latency and tail, added error rate).
    pub magnitude: f64,
    /// Version string of the new version.
    pub new_version: String,
    /// Name of the service the new downstream call goes to.
    pub new_service: String,
}

/// The next minor version of a semver-like string (`1.9.0` → `1.10.0`),
/// or the string with `-next` appended.
pub fn next_version(version: &str) -> String {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() == 3
        && let (Ok(major), Ok(minor)) = (parts[0].parse::<u64>(), parts[1].parse::<u64>())
    {
        return format!("{major}.{}.0", minor + 1);
    }
    format!("{version}-next")
}

/// Builds the new version's model from the baseline, per `deploy`.
pub(crate) fn new_version_model(
    baseline: &mut Model,
    catalog: &mut Catalog,
    deploy: &Deploy,
    environment: &str,
) -> Result<Model, TopologyError> {
    let Some(target) = catalog.services.iter().position(|s| *s == deploy.target) else {
        return Err(TopologyError::Invalid(format!(
            "deploy target {:?} is not a service of the topology (services: {})",
            deploy.target,
            catalog.services.join(", ")
        )));
    };
    if !baseline.ops.iter().any(|o| o.service == target) {
        return Err(TopologyError::Invalid(format!("deploy target {:?} serves no operation", deploy.target)));
    }
    let m = deploy.magnitude;
    match deploy.change {
        Change::Latency | Change::Tail if !(m >= 1.0 && m.is_finite()) => {
            return Err(TopologyError::Invalid(format!(
                "--magnitude for a latency or tail change is a factor >= 1, got {m}"
            )));
        }
        Change::Errors if !(m > 0.0 && m <= 1.0) => {
            return Err(TopologyError::Invalid(format!(
                "--magnitude for an error change is an added rate in (0, 1], got {m}"
            )));
        }
        _ => {}
    }
    if deploy.change == Change::NewCall {
        if catalog.services.contains(&deploy.new_service) {
            return Err(TopologyError::Invalid(format!("the new dependency {:?} already exists", deploy.new_service)));
        }
        // The new service exists in both versions' models (so operation
        // indices agree); only the new version calls it.
        let service = catalog.services.len();
        catalog.services.push(deploy.new_service.clone());
        let instances = add_instances(catalog, service, "1.0.0", 1, environment, "");
        baseline.instances.push(instances);
        let attrs = catalog.attrs(vec![("rpc.system", AttrVal::Str("grpc".into()))]);
        let name = catalog.name("Check");
        let error_message = catalog.name("Check failed");
        baseline.ops.push(Op {
            service,
            name,
            kind: SpanKind::Server,
            latency: LogNormal::from_median_p99(3e6, 20e6),
            error_rate: 0.0,
            error_message,
            attrs,
            calls: Vec::new(),
        });
    }
    let mut model = baseline.clone();
    let old_version = catalog.resources[model.instances[target][0] as usize].version.clone();
    if deploy.new_version == old_version {
        return Err(TopologyError::Invalid(format!("the new version must differ from the old one ({old_version})")));
    }
    let count = model.instances[target].len() as u32;
    let suffix = match deploy.scenario {
        Scenario::Canary { .. } => "-canary".to_string(),
        _ => format!("-{}", deploy.new_version),
    };
    model.instances[target] = add_instances(catalog, target, &deploy.new_version, count, environment, &suffix);
    let new_op = model.ops.len() - 1;
    let client_attrs = if deploy.change == Change::NewCall {
        Some(catalog.attrs(vec![
            ("rpc.system", AttrVal::Str("grpc".into())),
            ("peer.service", AttrVal::Str(deploy.new_service.clone())),
        ]))
    } else {
        None
    };
    for op in model.ops.iter_mut().filter(|o| o.service == target) {
        match deploy.change {
            Change::None => {}
            Change::Latency => op.latency = op.latency.scaled(m),
            Change::Tail => {
                // A tail event turns a typical request into one `m` times
                // slower than the old p99, so the p99 moves by about `m`.
                op.latency.tail_probability = TAIL_PROBABILITY;
                op.latency.tail_factor = m * op.latency.p99_ns() / op.latency.median_ns();
            }
            Change::Errors => op.error_rate = (op.error_rate + m).min(1.0),
            Change::NewCall => op.calls.push(Call {
                probability: 1.0,
                repeat: (1, 1),
                what: CallKind::Rpc { op: new_op, attrs: client_attrs.expect("set for NewCall") },
            }),
        }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_versions() {
        assert_eq!(next_version("1.9.0"), "1.10.0");
        assert_eq!(next_version("v2"), "v2-next");
    }
}
