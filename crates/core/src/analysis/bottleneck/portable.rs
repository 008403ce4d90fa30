//! Critical-path aggregates to and from their portable message
//! ([`crate::analysis::portable`]).

use super::{Agg, Bottlenecks, FINDING_KINDS, Key, NO_PATH, PatternAgg};
use crate::analysis::portable::{
    Names, PortableError, Syms, histogram_in, histogram_out, pb, trace_id, u128_in, u128_out,
};
use crate::model::{Dictionary, TraceId};

fn key_out(dict: &Dictionary, names: &mut Names, (service, operation): Key) -> Option<pb::Key> {
    Some(pb::Key { service: names.sym(dict, service), operation: names.sym(dict, operation) })
}

fn key_in(key: Option<pb::Key>, syms: &Syms<'_>, field: &str) -> Result<Key, PortableError> {
    let key = key.ok_or_else(|| PortableError::invalid(field, "missing"))?;
    Ok((
        syms.sym(key.service, || format!("{field}.service"))?,
        syms.sym(key.operation, || format!("{field}.operation"))?,
    ))
}

fn example_out(example: Option<(u64, TraceId)>) -> Option<pb::Example> {
    example.map(|(value, trace)| pb::Example { value, trace_id: trace.0.to_vec() })
}

fn example_in(example: Option<&pb::Example>, field: &str) -> Result<Option<(u64, TraceId)>, PortableError> {
    example.map(|e| Ok((e.value, trace_id(&e.trace_id, || format!("{field}.example"))?))).transpose()
}

fn agg_out(a: &Agg, key: Option<pb::Key>, path: u32) -> pb::Aggregate {
    pb::Aggregate {
        key,
        path,
        total: u128_out(a.total),
        traces: a.traces,
        per_trace: a.per_trace.clone(),
        histogram: a.histogram.as_ref().and_then(histogram_out),
        example: example_out(a.example),
    }
}

fn agg_in(a: &pb::Aggregate, field: &str) -> Result<Agg, PortableError> {
    let histogram = a.histogram.as_ref().map(|h| histogram_in(Some(h), || format!("{field}.histogram"))).transpose()?;
    if histogram.is_some() && !a.per_trace.is_empty() {
        return Err(PortableError::invalid(field, "both exact values and a histogram"));
    }
    Ok(Agg {
        total: u128_in(a.total),
        traces: a.traces,
        per_trace: a.per_trace.clone(),
        histogram,
        example: example_in(a.example.as_ref(), field)?,
    })
}

fn pattern_out(p: &PatternAgg, key: Option<pb::Key>, callee: Option<pb::Key>) -> pb::Pattern {
    pb::Pattern {
        kind: String::new(),
        key,
        callee,
        traces: p.traces,
        occurrences: p.occurrences,
        max_count: p.max_count,
        savings: u128_out(p.savings),
        example: example_out(p.example),
    }
}

fn pattern_in(p: &pb::Pattern, field: &str) -> Result<PatternAgg, PortableError> {
    Ok(PatternAgg {
        traces: p.traces,
        occurrences: p.occurrences,
        max_count: p.max_count,
        savings: u128_in(p.savings),
        example: example_in(p.example.as_ref(), field)?,
    })
}

impl Bottlenecks {
    /// The aggregates as a portable message, names added to `names`.
    pub fn to_portable(&self, dict: &Dictionary, names: &mut Names) -> pb::Bottlenecks {
        let mut operations: Vec<pb::Aggregate> =
            self.operations.iter().map(|(&k, a)| agg_out(a, key_out(dict, names, k), 0)).collect();
        operations.sort_by_key(|a| a.key.map(|k| (k.service, k.operation)));
        let path_nodes = self
            .path_nodes
            .iter()
            .map(|&(parent, key)| pb::PathNode {
                parent: (parent != NO_PATH).then_some(parent),
                key: key_out(dict, names, key),
            })
            .collect();
        let mut paths: Vec<pb::Aggregate> = self.paths.iter().map(|(&p, a)| agg_out(a, None, p)).collect();
        paths.sort_by_key(|a| a.path);
        let mut n_plus_one: Vec<pb::Pattern> = self
            .n_plus_one
            .iter()
            .map(|(&(parent, callee), p)| pattern_out(p, key_out(dict, names, parent), key_out(dict, names, callee)))
            .collect();
        n_plus_one
            .sort_by_key(|p| (p.key.map(|k| (k.service, k.operation)), p.callee.map(|k| (k.service, k.operation))));
        let mut dominant: Vec<pb::Pattern> =
            self.dominant.iter().map(|(&k, p)| pattern_out(p, key_out(dict, names, k), None)).collect();
        dominant.sort_by_key(|p| p.key.map(|k| (k.service, k.operation)));
        let mut findings: Vec<pb::Pattern> = self
            .findings
            .iter()
            .map(|(&(kind, key, other), p)| pb::Pattern {
                kind: kind.to_string(),
                ..pattern_out(p, key_out(dict, names, key), other.and_then(|o| key_out(dict, names, o)))
            })
            .collect();
        findings.sort_by(|a, b| {
            let order = |p: &pb::Pattern| {
                (p.kind.clone(), p.key.map(|k| (k.service, k.operation)), p.callee.map(|k| (k.service, k.operation)))
            };
            order(a).cmp(&order(b))
        });
        pb::Bottlenecks {
            traces: self.traces,
            total_duration: u128_out(self.total_duration),
            gap: u128_out(self.gap),
            fragmented: self.fragmented,
            asynchronous: self.asynchronous,
            operations,
            path_nodes,
            paths,
            n_plus_one,
            dominant,
            findings,
        }
    }

    /// Adds the aggregates of a portable message.
    pub fn read_portable(&mut self, message: &pb::Bottlenecks, syms: &Syms<'_>) -> Result<(), PortableError> {
        let mut other = Bottlenecks { config: self.config, value_cap: self.value_cap, ..Bottlenecks::default() };
        other.traces = message.traces;
        other.total_duration = u128_in(message.total_duration);
        other.gap = u128_in(message.gap);
        other.fragmented = message.fragmented;
        other.asynchronous = message.asynchronous;
        for (i, a) in message.operations.iter().enumerate() {
            let field = format!("bottlenecks.operations[{i}]");
            let key = key_in(a.key, syms, &format!("{field}.key"))?;
            if other.operations.insert(key, agg_in(a, &field)?).is_some() {
                return Err(PortableError::invalid(field, "the operation is listed twice"));
            }
        }
        for (i, n) in message.path_nodes.iter().enumerate() {
            let field = format!("bottlenecks.path_nodes[{i}]");
            let parent = match n.parent {
                Some(p) if (p as usize) < i => p,
                Some(p) => return Err(PortableError::invalid(field, format!("parent {p} does not come before it"))),
                None => NO_PATH,
            };
            let key = key_in(n.key, syms, &format!("{field}.key"))?;
            if other.path_node(parent, key) != i as u32 {
                return Err(PortableError::invalid(field, "the call path is listed twice"));
            }
        }
        for (i, a) in message.paths.iter().enumerate() {
            let field = format!("bottlenecks.paths[{i}]");
            if a.path as usize >= other.path_nodes.len() {
                return Err(PortableError::invalid(
                    format!("{field}.path"),
                    format!("call path {} is not among the {}", a.path, other.path_nodes.len()),
                ));
            }
            if other.paths.insert(a.path, agg_in(a, &field)?).is_some() {
                return Err(PortableError::invalid(field, "the call path is listed twice"));
            }
        }
        for (i, p) in message.n_plus_one.iter().enumerate() {
            let field = format!("bottlenecks.n_plus_one[{i}]");
            let key =
                (key_in(p.key, syms, &format!("{field}.key"))?, key_in(p.callee, syms, &format!("{field}.callee"))?);
            other.n_plus_one.entry(key).or_default().merge(&pattern_in(p, &field)?);
        }
        for (i, p) in message.dominant.iter().enumerate() {
            let field = format!("bottlenecks.dominant[{i}]");
            let key = key_in(p.key, syms, &format!("{field}.key"))?;
            other.dominant.entry(key).or_default().merge(&pattern_in(p, &field)?);
        }
        for (i, p) in message.findings.iter().enumerate() {
            let field = format!("bottlenecks.findings[{i}]");
            let Some(&kind) = FINDING_KINDS.iter().find(|&&k| k == p.kind) else {
                return Err(PortableError::invalid(format!("{field}.kind"), format!("no finding kind {:?}", p.kind)));
            };
            let other_key = p.callee.map(|c| key_in(Some(c), syms, &format!("{field}.callee"))).transpose()?;
            let key = (kind, key_in(p.key, syms, &format!("{field}.key"))?, other_key);
            other.findings.entry(key).or_default().merge(&pattern_in(p, &field)?);
        }
        self.merge(&other);
        Ok(())
    }
}
