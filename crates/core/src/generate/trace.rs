//! Building one trace from the model: a walk down the call tree from an
//! entry operation, sampling each operation's latency and failures and
//! laying the spans out in time (calls in order, network gaps, messaging
//! consumers after a queue delay).

use crate::model::SpanKind;

use super::rng::{LogNormal, Rng};
use super::topology::{CallKind, Catalog, Model};

/// A generated span: plain data referring into the [`Catalog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GenSpan {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Parent id; all zero for the root.
    pub parent_id: [u8; 8],
    /// Index into [`Catalog::resources`].
    pub resource: u32,
    /// Index into [`Catalog::names`].
    pub name: u32,
    /// Kind.
    pub kind: SpanKind,
    /// Start, unix ns (a whole microsecond, so every format carries it exactly).
    pub start_ns: u64,
    /// End, unix ns (a whole microsecond).
    pub end_ns: u64,
    /// Failed?
    pub error: bool,
    /// Status message on failure (index into [`Catalog::names`]).
    pub message: u32,
    /// Index into [`Catalog::attr_sets`].
    pub attrs: u32,
}

impl GenSpan {
    /// Whether the span has a parent.
    pub fn has_parent(&self) -> bool {
        self.parent_id != [0; 8]
    }
}

/// Traces stop growing at this many spans (a guard against topologies
/// whose repeats multiply out of hand).
pub const MAX_TRACE_SPANS: usize = 10_000;

const US: u64 = 1_000;

fn round_us(ns: u64) -> u64 {
    (ns / US).max(1) * US
}

/// Appends one trace to `out`, starting at `start_ns`.
pub(crate) fn build_trace(model: &Model, catalog: &Catalog, rng: &mut Rng, start_ns: u64, out: &mut Vec<GenSpan>) {
    let total = model.entries.last().map_or(0.0, |e| e.1);
    let pick = rng.unit() * total;
    let entry = model.entries.iter().find(|(_, w)| pick < *w).unwrap_or(&model.entries[model.entries.len() - 1]).0;
    let mut b = Builder { model, catalog, rng, out, trace_id: [0; 16] };
    b.trace_id = b.rng.trace_id();
    let first = b.out.len();
    b.operation(entry, [0; 8], start_ns);
    // Clock skew: every span is stamped by its own host's clock.
    for span in &mut b.out[first..] {
        let skew = catalog.resources[span.resource as usize].skew_ns;
        span.start_ns = span.start_ns.saturating_add_signed(skew);
        span.end_ns = span.end_ns.saturating_add_signed(skew);
    }
}

struct Builder<'a> {
    model: &'a Model,
    catalog: &'a Catalog,
    rng: &'a mut Rng,
    out: &'a mut Vec<GenSpan>,
    trace_id: [u8; 16],
}

impl Builder<'_> {
    fn instance(&mut self, service: usize) -> u32 {
        let list = &self.model.instances[service];
        list[self.rng.range(0, list.len() as u64 - 1) as usize]
    }

    fn sample(&mut self, d: &LogNormal) -> u64 {
        round_us(d.sample(self.rng))
    }

    fn push(&mut self, parent: [u8; 8], resource: u32, name: u32, kind: SpanKind, attrs: u32, start: u64) -> usize {
        self.out.push(GenSpan {
            trace_id: self.trace_id,
            span_id: self.rng.span_id(),
            parent_id: parent,
            resource,
            name,
            kind,
            start_ns: start,
            end_ns: start,
            error: false,
            message: 0,
            attrs,
        });
        self.out.len() - 1
    }

    /// Runs operation `op` as a server/consumer span under `parent`; returns
    /// (end, failed).
    fn operation(&mut self, op_index: usize, parent: [u8; 8], start: u64) -> (u64, bool) {
        let model = self.model;
        let op = &model.ops[op_index];
        let resource = self.instance(op.service);
        let me = self.push(parent, resource, op.name, op.kind, op.attrs, start);
        let my_id = self.out[me].span_id;
        let own = self.sample(&op.latency);
        let before = round_us(own / 4);
        let mut cursor = start + before;
        for call in &op.calls {
            if !self.rng.chance(call.probability) {
                continue;
            }
            let times = self.rng.range(call.repeat.0 as u64, call.repeat.1 as u64);
            for _ in 0..times {
                if self.out.len() >= MAX_TRACE_SPANS {
                    break;
                }
                cursor = self.call(&call.what, my_id, resource, cursor) + round_us(self.rng.range(5_000, 50_000));
            }
        }
        let end = cursor + own.saturating_sub(before).max(US);
        let failed = self.rng.chance(op.error_rate);
        let span = &mut self.out[me];
        span.end_ns = end;
        if failed {
            span.error = true;
            span.message = op.error_message;
        }
        (end, failed)
    }

    /// Makes one call from a span of `resource`; returns when the caller
    /// may continue.
    fn call(&mut self, what: &CallKind, parent: [u8; 8], resource: u32, start: u64) -> u64 {
        match *what {
            CallKind::Rpc { op, attrs } => {
                let name = self.model.ops[op].name;
                let client = self.push(parent, resource, name, SpanKind::Client, attrs, start);
                let client_id = self.out[client].span_id;
                let send = round_us(self.rng.range(50_000, 400_000));
                let (server_end, failed) = self.operation(op, client_id, start + send);
                let end = server_end + round_us(self.rng.range(50_000, 400_000));
                let span = &mut self.out[client];
                span.end_ns = end;
                if failed {
                    span.error = true;
                    span.message = self.model.ops[op].error_message;
                }
                end
            }
            CallKind::Messaging { op, name, attrs } => {
                let producer = self.push(parent, resource, name, SpanKind::Producer, attrs, start);
                let producer_id = self.out[producer].span_id;
                let end = start + round_us(self.rng.range(100_000, 900_000));
                self.out[producer].end_ns = end;
                // The consumer runs later and does not hold the caller up.
                let queued = round_us(self.rng.range(1_000_000, 30_000_000));
                self.operation(op, producer_id, end + queued);
                end
            }
            CallKind::Database { name, latency, error_rate, attrs } => {
                self.leaf(parent, resource, name, SpanKind::Client, attrs, start, &latency, error_rate)
            }
            CallKind::Internal { name, latency, error_rate } => {
                self.leaf(parent, resource, name, SpanKind::Internal, 0, start, &latency, error_rate)
            }
        }
    }

    /// A span with no children (database or in-process work); a failure
    /// carries the span's own name as its message.
    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &mut self,
        parent: [u8; 8],
        resource: u32,
        name: u32,
        kind: SpanKind,
        attrs: u32,
        start: u64,
        latency: &LogNormal,
        error_rate: f64,
    ) -> u64 {
        debug_assert!((name as usize) < self.catalog.names.len());
        let span = self.push(parent, resource, name, kind, attrs, start);
        let end = start + self.sample(latency);
        let failed = self.rng.chance(error_rate);
        let s = &mut self.out[span];
        s.end_ns = end;
        s.error = failed;
        s.message = if failed { name } else { 0 };
        end
    }
}
