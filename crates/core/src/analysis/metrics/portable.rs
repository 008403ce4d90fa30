//! Span metrics to and from their portable message
//! ([`crate::analysis::portable`]).

use super::{Operation, OperationStats, SpanMetrics};
use crate::analysis::portable::{Names, PortableError, Syms, histogram_in, histogram_out, pb};
use crate::model::{Dictionary, SpanKind};

impl SpanMetrics {
    /// The metrics as a portable message, names added to `names`.
    pub fn to_portable(&self, dict: &Dictionary, names: &mut Names) -> pb::Metrics {
        let mut operations: Vec<pb::Operation> = self
            .stats
            .iter()
            .map(|(&(service, op, kind), s)| pb::Operation {
                service: names.sym(dict, service),
                name: match op {
                    Operation::Name(n) => Some(names.sym(dict, n)),
                    Operation::Overflow => None,
                },
                kind: kind as u32,
                calls: s.calls,
                errors: s.errors,
                oks: s.oks,
                latency: histogram_out(&s.latency),
                error_latency: s.error_latency.as_deref().and_then(histogram_out),
                ok_latency: s.ok_latency.as_deref().and_then(histogram_out),
            })
            .collect();
        operations.sort_by_key(|o| (o.service, o.name, o.kind));
        let mut service_names: Vec<pb::ServiceNames> = self
            .names
            .iter()
            .map(|(&service, set)| {
                let mut list: Vec<u32> = set.iter().map(|&n| names.sym(dict, n)).collect();
                list.sort_unstable();
                pb::ServiceNames { service: names.sym(dict, service), names: list }
            })
            .collect();
        service_names.sort_by_key(|n| n.service);
        let mut overflowed: Vec<pb::Overflowed> = self
            .overflowed
            .iter()
            .map(|(&service, &spans)| pb::Overflowed { service: names.sym(dict, service), spans })
            .collect();
        overflowed.sort_by_key(|o| o.service);
        pb::Metrics { operations, names: service_names, overflowed }
    }

    /// Adds the metrics of a portable message.
    pub fn read_portable(&mut self, message: &pb::Metrics, syms: &Syms<'_>) -> Result<(), PortableError> {
        let mut other = SpanMetrics::new(self.max_operations);
        for (i, o) in message.operations.iter().enumerate() {
            let field = |f: &str| format!("metrics.operations[{i}].{f}");
            let service = syms.sym(o.service, || field("service"))?;
            let op = match o.name {
                Some(n) => Operation::Name(syms.sym(n, || field("name"))?),
                None => Operation::Overflow,
            };
            if o.kind > SpanKind::Consumer as u32 {
                return Err(PortableError::invalid(field("kind"), format!("no span kind {}", o.kind)));
            }
            let kind = SpanKind::from_i32(o.kind as i32);
            let optional = |h: Option<&pb::Histogram>, f: &str| {
                h.map(|h| histogram_in(Some(h), || field(f)).map(Box::new)).transpose()
            };
            let stats = OperationStats {
                calls: o.calls,
                errors: o.errors,
                oks: o.oks,
                latency: histogram_in(o.latency.as_ref(), || field("latency"))?,
                error_latency: optional(o.error_latency.as_ref(), "error_latency")?,
                ok_latency: optional(o.ok_latency.as_ref(), "ok_latency")?,
            };
            if other.stats.insert((service, op, kind), stats).is_some() {
                return Err(PortableError::invalid(field("name"), "the operation is listed twice"));
            }
        }
        for (i, n) in message.names.iter().enumerate() {
            let service = syms.sym(n.service, || format!("metrics.names[{i}].service"))?;
            let set = other.names.entry(service).or_default();
            for &name in &n.names {
                set.insert(syms.sym(name, || format!("metrics.names[{i}].names"))?);
            }
        }
        for (i, o) in message.overflowed.iter().enumerate() {
            let service = syms.sym(o.service, || format!("metrics.overflowed[{i}].service"))?;
            *other.overflowed.entry(service).or_default() += o.spans;
        }
        self.merge(&other);
        Ok(())
    }
}
