//! Bottlenecks: critical-path time aggregated over many traces, CRISP-style,
//! per (service, operation) and per call path (root operation > … >
//! operation), with exact per-trace quantiles (or, past a value cap,
//! quantiles from a 3-digit histogram) and example traces; plus
//! patterns worth a look: N+1 sequential calls, a span whose own time
//! dominates its trace, sequential calls to different services that could
//! overlap, calls retried after an error, the operations errors start in
//! (and where they surface), and wide fan-outs.

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::critical_path::{CriticalPath, self_time};
use super::histogram::LatencyHistogram;
use crate::model::{Dictionary, SpanId, Sym, Trace, TraceId};

mod portable;

/// Pattern thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BottleneckConfig {
    /// Sequential calls from one parent to the same operation that make an
    /// N+1 pattern.
    pub n_plus_one_min: usize,
    /// Share of a trace's critical path a single span's own time must exceed
    /// to be flagged as dominant.
    pub dominant_share: f64,
    /// Children of one span that make a wide fan-out.
    pub fan_out_min: usize,
}

impl Default for BottleneckConfig {
    fn default() -> Self {
        BottleneckConfig { n_plus_one_min: 3, dominant_share: 0.5, fan_out_min: 10 }
    }
}

/// Sequential calls from one span to different services or nodes, none
/// overlapping another: candidates to run concurrently.
pub const SEQUENTIAL_CALLS: &str = "sequential_calls";
/// A call repeated after the same call failed, under one parent.
pub const RETRY: &str = "retry";
/// A failed span none of whose children failed: where errors start.
pub const ERROR_ORIGIN: &str = "error_origin";
/// A span with many children.
pub const FAN_OUT: &str = "fan_out";

/// The kinds of [`Bottlenecks`]' findings besides N+1 and dominant spans.
pub const FINDING_KINDS: [&str; 4] = [SEQUENTIAL_CALLS, RETRY, ERROR_ORIGIN, FAN_OUT];

/// A finding's key: (kind, the operation, another operation: the retried
/// call, or where an error surfaced).
type FindingKey = (&'static str, Key, Option<Key>);

type Key = (Sym, Sym);

#[derive(Clone, Debug, Default)]
struct Agg {
    total: u128,
    /// Traces with a non-zero time.
    traces: u64,
    /// Non-zero per-trace critical-path times, exact, while there are no
    /// more than the cap.
    per_trace: Vec<u64>,
    /// Past the cap: every value in a 3-digit histogram instead.
    histogram: Option<LatencyHistogram>,
    /// Largest per-trace value and its trace (ties: smaller trace id).
    example: Option<(u64, TraceId)>,
}

impl Agg {
    fn add(&mut self, value: u64, trace: TraceId, cap: Option<usize>) {
        if value == 0 {
            return;
        }
        self.total += value as u128;
        self.traces += 1;
        match &mut self.histogram {
            Some(h) => h.record(value),
            None => {
                self.per_trace.push(value);
                self.spill_over(cap);
            }
        }
        if self.example.is_none_or(|(v, t)| value > v || (value == v && trace < t)) {
            self.example = Some((value, trace));
        }
    }

    /// Moves the exact values into a histogram once there are more than `cap`.
    fn spill_over(&mut self, cap: Option<usize>) {
        if cap.is_some_and(|cap| self.per_trace.len() > cap) {
            let h = self.histogram.get_or_insert_with(LatencyHistogram::default);
            for &v in &self.per_trace {
                h.record(v);
            }
            self.per_trace = Vec::new();
        }
    }

    fn merge(&mut self, o: &Agg, cap: Option<usize>) {
        self.total += o.total;
        self.traces += o.traces;
        if let Some(oh) = &o.histogram {
            let h = self.histogram.get_or_insert_with(LatencyHistogram::default);
            h.merge(oh);
        }
        match &mut self.histogram {
            Some(h) => {
                for &v in self.per_trace.iter().chain(&o.per_trace) {
                    h.record(v);
                }
                self.per_trace = Vec::new();
            }
            None => {
                self.per_trace.extend_from_slice(&o.per_trace);
                self.spill_over(cap);
            }
        }
        if let Some((v, t)) = o.example
            && self.example.is_none_or(|(mv, mt)| v > mv || (v == mv && t < mt))
        {
            self.example = Some((v, t));
        }
    }

    /// Per-trace quantile: exact (type 7) or from the histogram.
    fn quantiles(&self, qs: [f64; 3]) -> [u64; 3] {
        match &self.histogram {
            Some(h) => h.quantiles(qs),
            None => {
                let mut values = self.per_trace.clone();
                values.sort_unstable();
                qs.map(|q| quantile(&values, q))
            }
        }
    }

    fn compact(&mut self) {
        self.per_trace.shrink_to_fit();
        if let Some(h) = &mut self.histogram {
            h.compact();
        }
    }
}

#[derive(Clone, Debug, Default)]
struct PatternAgg {
    traces: u64,
    occurrences: u64,
    max_count: u64,
    /// Time running the calls concurrently could have saved, ns.
    savings: u128,
    example: Option<(u64, TraceId)>,
}

impl PatternAgg {
    fn add(&mut self, count: u64, savings: u64, trace: TraceId, new_trace: bool) {
        self.traces += u64::from(new_trace);
        self.occurrences += 1;
        self.max_count = self.max_count.max(count);
        self.savings += savings as u128;
        if self.example.is_none_or(|(v, t)| savings > v || (savings == v && trace < t)) {
            self.example = Some((savings, trace));
        }
    }

    fn merge(&mut self, o: &PatternAgg) {
        self.traces += o.traces;
        self.occurrences += o.occurrences;
        self.max_count = self.max_count.max(o.max_count);
        self.savings += o.savings;
        if let Some((v, t)) = o.example
            && self.example.is_none_or(|(mv, mt)| v > mv || (v == mv && t < mt))
        {
            self.example = Some((v, t));
        }
    }
}

/// Critical-path aggregates over any number of traces; merging is exact.
#[derive(Clone, Debug, Default)]
pub struct Bottlenecks {
    config: BottleneckConfig,
    /// Per-key cap on the values kept for percentiles (None: keep all, exact).
    value_cap: Option<usize>,
    traces: u64,
    total_duration: u128,
    /// Path time in no known span (missing parents, gaps between fragments).
    gap: u128,
    /// Traces in more than one fragment.
    fragmented: u64,
    /// Traces with spans running outside their parent.
    asynchronous: u64,
    operations: FxHashMap<Key, Agg>,
    /// Call-path trie: node -> (parent node or u32::MAX, key).
    path_nodes: Vec<(u32, Key)>,
    path_index: FxHashMap<(u32, Key), u32>,
    paths: FxHashMap<u32, Agg>,
    n_plus_one: FxHashMap<(Key, Key), PatternAgg>,
    dominant: FxHashMap<Key, PatternAgg>,
    findings: FxHashMap<FindingKey, PatternAgg>,
    scratch: Scratch,
}

/// Working space for one trace, kept between traces so adding one
/// allocates nothing once the buffers have grown.
#[derive(Debug, Default)]
struct Scratch {
    /// (operation, critical-path time) per span on the path.
    per_key: Vec<(Key, u64)>,
    path_id: Vec<u32>,
    /// (call path, critical-path time) per span on the path.
    per_path: Vec<(u32, u64)>,
    chain: Vec<usize>,
    /// (parent, service, operation, start, span id, span) per timed child.
    children: Vec<(usize, Sym, Sym, u64, SpanId, usize)>,
    seen: Vec<(Key, Key)>,
    flagged: Vec<Key>,
    found: Vec<FindingKey>,
    /// Calls out of one parent (spans), and which spans have a failed child.
    calls: Vec<usize>,
    failed_child: Vec<bool>,
    intervals: Vec<(u64, u64)>,
}

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::default() // nothing in it outlives a call
    }
}

/// Sums the times of equal keys (sorting `pairs`), calling `add` once per key.
fn sum_by_key<K: Ord + Copy>(pairs: &mut [(K, u64)], mut add: impl FnMut(K, u64)) {
    pairs.sort_unstable_by_key(|&(k, _)| k);
    let mut i = 0;
    while i < pairs.len() {
        let key = pairs[i].0;
        let mut total = 0;
        while i < pairs.len() && pairs[i].0 == key {
            total += pairs[i].1;
            i += 1;
        }
        add(key, total);
    }
}

const NO_PATH: u32 = u32::MAX;

impl Bottlenecks {
    /// Empty aggregates with pattern thresholds.
    pub fn new(config: BottleneckConfig) -> Bottlenecks {
        Bottlenecks { config, ..Bottlenecks::default() }
    }

    /// Keeps at most `cap` exact per-trace values per key; past that, a
    /// key's percentiles come from a 3-digit histogram of all its values
    /// (within 0.1%; totals, shares and trace counts stay exact): bounded
    /// memory for a receiver that runs for months.
    pub fn with_value_cap(mut self, cap: usize) -> Bottlenecks {
        self.value_cap = Some(cap.max(1));
        self
    }

    fn path_node(&mut self, parent: u32, key: Key) -> u32 {
        if let Some(&id) = self.path_index.get(&(parent, key)) {
            return id;
        }
        let id = self.path_nodes.len() as u32;
        self.path_nodes.push((parent, key));
        self.path_index.insert((parent, key), id);
        id
    }

    /// Adds one trace and its critical path.
    pub fn add_trace(&mut self, trace: &Trace, path: &CriticalPath) {
        if path.duration_ns == 0 {
            return;
        }
        let spans = &trace.spans;
        let id = trace.trace_id;
        self.traces += 1;
        self.total_duration += path.duration_ns as u128;
        self.gap += path.gap_ns as u128;
        self.fragmented += u64::from(path.fragments > 1);
        self.asynchronous += u64::from(!path.outside.is_empty());
        let per_span = path.time_per_span(spans.len());

        // Per operation: a trace's time for a key is the sum over its spans.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.per_key.clear();
        for (i, &t) in per_span.iter().enumerate() {
            if t > 0 {
                scratch.per_key.push(((spans[i].service, spans[i].name), t));
            }
        }
        let (operations, cap) = (&mut self.operations, self.value_cap);
        sum_by_key(&mut scratch.per_key, |key, t| operations.entry(key).or_default().add(t, id, cap));

        // Per call path: parents' path ids first (iterative; traces may be deep).
        scratch.path_id.clear();
        scratch.path_id.resize(spans.len(), NO_PATH);
        scratch.per_path.clear();
        for (i, &t) in per_span.iter().enumerate() {
            if t == 0 {
                continue;
            }
            let mut j = i;
            while scratch.path_id[j] == NO_PATH {
                scratch.chain.push(j);
                match trace.parent(j) {
                    Some(p) => j = p,
                    None => break,
                }
            }
            while let Some(k) = scratch.chain.pop() {
                let parent = trace.parent(k).map_or(NO_PATH, |p| scratch.path_id[p]);
                scratch.path_id[k] = self.path_node(parent, (spans[k].service, spans[k].name));
            }
            scratch.per_path.push((scratch.path_id[i], t));
        }
        let paths = &mut self.paths;
        sum_by_key(&mut scratch.per_path, |p, t| paths.entry(p).or_default().add(t, id, cap));

        // Patterns.
        self.find_n_plus_one(trace, &mut scratch);
        self.find_call_patterns(trace, &mut scratch);
        // A span dominates when its own time on the path is over the share:
        // only spans with that much path time can, so only theirs is computed.
        let threshold = self.config.dominant_share * path.duration_ns as f64;
        scratch.flagged.clear();
        for (i, &t) in per_span.iter().enumerate() {
            if t == 0 || t as f64 <= threshold {
                continue;
            }
            let own = self_time(trace, i, &mut scratch.intervals).min(t);
            if own as f64 > threshold {
                let s = &spans[i];
                let key = (s.service, s.name);
                let new = !scratch.flagged.contains(&key);
                scratch.flagged.push(key);
                self.dominant.entry(key).or_default().add(1, own, id, new);
            }
        }
        self.scratch = scratch;
    }

    /// Sequential calls to different nodes, retries and fan-outs per
    /// parent (over `scratch.children`, sorted by [`Self::find_n_plus_one`]),
    /// and where errors start.
    fn find_call_patterns(&mut self, trace: &Trace, scratch: &mut Scratch) {
        let spans = &trace.spans;
        let id = trace.trace_id;
        scratch.found.clear();
        let mut add = |found: &mut Vec<FindingKey>, key: FindingKey, count: u64, savings: u64| {
            let new = !found.contains(&key);
            found.push(key);
            self.findings.entry(key).or_default().add(count, savings, id, new);
        };
        let children = &scratch.children;
        let mut start = 0;
        let calls = &mut scratch.calls;
        while start < children.len() {
            let parent = children[start].0;
            let mut end = start;
            while end < children.len() && children[end].0 == parent {
                end += 1;
            }
            let kids = &children[start..end];
            start = end;
            let pkey = (spans[parent].service, spans[parent].name);
            if kids.len() >= self.config.fan_out_min {
                add(&mut scratch.found, (FAN_OUT, pkey, None), kids.len() as u64, 0);
            }
            // Calls out: children in another service, or client and producer
            // spans of the parent's own service.
            calls.clear();
            calls.extend(kids.iter().map(|c| c.5).filter(|&c| {
                spans[c].service != spans[parent].service
                    || matches!(spans[c].kind, crate::model::SpanKind::Client | crate::model::SpanKind::Producer)
            }));
            calls.sort_unstable_by_key(|&c| (spans[c].start_ns, spans[c].span_id));
            // Each to a different operation, one after the other.
            let sequential = calls.len() >= 2 && calls.windows(2).all(|w| spans[w[1]].start_ns >= spans[w[0]].end_ns);
            // (Quadratic, but only over calls already found sequential.)
            let distinct = sequential
                && calls.iter().enumerate().all(|(k, &c)| {
                    calls[..k].iter().all(|&d| (spans[d].service, spans[d].name) != (spans[c].service, spans[c].name))
                });
            if distinct {
                let durations = calls.iter().filter_map(|&c| spans[c].duration_ns());
                let (total, longest) = durations.fold((0u64, 0u64), |(sum, max), d| (sum + d, max.max(d)));
                add(&mut scratch.found, (SEQUENTIAL_CALLS, pkey, None), calls.len() as u64, total - longest);
            }
            // Retries: the last call of a run to one operation (children
            // are sorted by operation, then start) after earlier ones of
            // the run that failed; counted once, at that last attempt.
            let mut run = 0;
            while run < kids.len() {
                let (service, name) = (kids[run].1, kids[run].2);
                let mut end = run;
                while end < kids.len() && (kids[end].1, kids[end].2) == (service, name) {
                    end += 1;
                }
                let last = &spans[kids[end - 1].5];
                let (mut failed, mut wasted) = (0u64, 0u64);
                for d in &kids[run..end - 1] {
                    let attempt = &spans[d.5];
                    if attempt.is_error() && attempt.end_ns <= last.start_ns {
                        failed += 1;
                        wasted += attempt.duration_ns().unwrap_or(0);
                    }
                }
                if failed > 0 {
                    add(&mut scratch.found, (RETRY, pkey, Some((service, name))), failed, wasted);
                }
                run = end;
            }
        }
        // Error origins: a failed span without a failed child, and the
        // highest failed ancestor of another service it surfaced in.
        let failed_child = &mut scratch.failed_child;
        failed_child.clear();
        failed_child.resize(spans.len(), false);
        for (i, span) in spans.iter().enumerate() {
            if span.is_error()
                && let Some(p) = trace.parent(i)
            {
                failed_child[p] = true;
            }
        }
        for i in 0..spans.len() {
            if !spans[i].is_error() || failed_child[i] {
                continue;
            }
            let (mut depth, mut surfaced, mut cursor) = (0u64, None, trace.parent(i));
            while let Some(p) = cursor {
                if !spans[p].is_error() {
                    break;
                }
                depth += 1;
                if spans[p].service != spans[i].service {
                    surfaced = Some((spans[p].service, spans[p].name));
                }
                cursor = trace.parent(p);
            }
            add(&mut scratch.found, (ERROR_ORIGIN, (spans[i].service, spans[i].name), surfaced), depth, 0);
        }
    }

    /// Sequential calls from one parent to the same operation.
    fn find_n_plus_one(&mut self, trace: &Trace, scratch: &mut Scratch) {
        let spans = &trace.spans;
        // Timed children by parent, then operation, start and id.
        let children = &mut scratch.children;
        children.clear();
        for (i, span) in spans.iter().enumerate() {
            if let Some(p) = trace.parent(i)
                && span.has_timing()
            {
                children.push((p, span.service, span.name, span.start_ns, span.span_id, i));
            }
        }
        children.sort_unstable();
        scratch.seen.clear();
        let mut run_start = 0;
        while run_start < children.len() {
            let (parent, service, name, ..) = children[run_start];
            let mut run_end = run_start;
            while run_end < children.len()
                && children[run_end].0 == parent
                && (children[run_end].1, children[run_end].2) == (service, name)
            {
                run_end += 1;
            }
            let same = &children[run_start..run_end];
            run_start = run_end;
            // Sequential: each starts after the previous one ended.
            let sequential = same.windows(2).all(|w| spans[w[1].5].start_ns >= spans[w[0].5].end_ns);
            if !sequential || same.len() < self.config.n_plus_one_min {
                continue;
            }
            let durations = same.iter().filter_map(|c| spans[c.5].duration_ns());
            let (total, longest) = durations.fold((0u64, 0u64), |(sum, max), d| (sum + d, max.max(d)));
            let key = (service, name);
            let pkey = (spans[parent].service, spans[parent].name);
            let new = !scratch.seen.contains(&(pkey, key));
            scratch.seen.push((pkey, key));
            self.n_plus_one.entry((pkey, key)).or_default().add(
                same.len() as u64,
                total - longest,
                trace.trace_id,
                new,
            );
        }
    }

    /// Adds everything in `other` (built with the same dictionary).
    pub fn merge(&mut self, other: &Bottlenecks) {
        self.traces += other.traces;
        self.total_duration += other.total_duration;
        self.gap += other.gap;
        self.fragmented += other.fragmented;
        self.asynchronous += other.asynchronous;
        for (k, a) in &other.operations {
            self.operations.entry(*k).or_default().merge(a, self.value_cap);
        }
        // Re-intern the other's call paths into this trie.
        let mut map = vec![NO_PATH; other.path_nodes.len()];
        for (i, &(parent, key)) in other.path_nodes.iter().enumerate() {
            let p = if parent == NO_PATH { NO_PATH } else { map[parent as usize] };
            map[i] = self.path_node(p, key);
        }
        for (p, a) in &other.paths {
            self.paths.entry(map[*p as usize]).or_default().merge(a, self.value_cap);
        }
        for (k, a) in &other.n_plus_one {
            self.n_plus_one.entry(*k).or_default().merge(a);
        }
        for (k, a) in &other.dominant {
            self.dominant.entry(*k).or_default().merge(a);
        }
        for (k, a) in &other.findings {
            self.findings.entry(*k).or_default().merge(a);
        }
    }

    /// Shrinks the aggregates of a time bucket that is closed: histograms
    /// to their compact form, spare capacity released.
    pub fn compact(&mut self) {
        for a in self.operations.values_mut().chain(self.paths.values_mut()) {
            a.compact();
        }
        self.operations.shrink_to_fit();
        self.paths.shrink_to_fit();
        self.path_nodes.shrink_to_fit();
        self.path_index.shrink_to_fit();
    }

    /// Traces aggregated.
    pub fn traces(&self) -> u64 {
        self.traces
    }

    fn op_view(
        &self,
        dict: &Dictionary,
        service: Sym,
        operation: Sym,
        call_path: Option<String>,
        a: &Agg,
    ) -> OperationBottleneck {
        let [p50_ns, p95_ns, p99_ns] = a.quantiles([0.5, 0.95, 0.99]);
        OperationBottleneck {
            service: dict.resolve(service).to_string(),
            operation: dict.resolve(operation).to_string(),
            call_path,
            critical_path_ns_total: a.total.min(u64::MAX as u128) as u64,
            share: if self.total_duration == 0 { 0.0 } else { a.total as f64 / self.total_duration as f64 },
            traces_on_path: a.traces,
            p50_ns,
            p95_ns,
            p99_ns,
            example_trace_id: a.example.map(|(_, t)| t.to_hex()).unwrap_or_default(),
        }
    }

    /// The report: operations and call paths by total critical-path time,
    /// and patterns.
    pub fn view(&self, dict: &Dictionary) -> BottleneckView {
        let rank = |v: &mut Vec<OperationBottleneck>| {
            v.sort_by(|a, b| {
                b.critical_path_ns_total.cmp(&a.critical_path_ns_total).then_with(|| {
                    (&a.service, &a.operation, &a.call_path).cmp(&(&b.service, &b.operation, &b.call_path))
                })
            })
        };
        let mut operations: Vec<OperationBottleneck> =
            self.operations.iter().map(|(&(s, o), a)| self.op_view(dict, s, o, None, a)).collect();
        rank(&mut operations);
        let mut call_paths: Vec<OperationBottleneck> = self
            .paths
            .iter()
            .map(|(&p, a)| {
                let (_, (s, o)) = self.path_nodes[p as usize];
                self.op_view(dict, s, o, Some(self.path_display(dict, p)), a)
            })
            .collect();
        rank(&mut call_paths);
        let key_text = |(s, o): Key| format!("{} {}", dict.resolve(s), dict.resolve(o));
        let mut patterns: Vec<Pattern> = self
            .n_plus_one
            .iter()
            .map(|(&(parent, child), p)| Pattern {
                kind: "n_plus_one",
                description: format!(
                    "{} calls {} sequentially up to {} times per span; running them concurrently would save {} in total",
                    key_text(parent),
                    key_text(child),
                    p.max_count,
                    crate::render::duration(p.savings.min(u64::MAX as u128) as u64)
                ),
                service: dict.resolve(child.0).to_string(),
                operation: dict.resolve(child.1).to_string(),
                caller: Some(key_text(parent)),
                surfaces_in: None,
                traces: p.traces,
                occurrences: p.occurrences,
                max_count: p.max_count,
                potential_savings_ns: p.savings.min(u64::MAX as u128) as u64,
                example_trace_id: p.example.map(|(_, t)| t.to_hex()).unwrap_or_default(),
            })
            .chain(self.dominant.iter().map(|(&key, p)| Pattern {
                kind: "dominant_self_time",
                description: format!(
                    "{}'s own work is over {:.0}% of the critical path in {}",
                    key_text(key),
                    100.0 * self.config.dominant_share,
                    crate::render::count(p.traces, "trace")
                ),
                service: dict.resolve(key.0).to_string(),
                operation: dict.resolve(key.1).to_string(),
                caller: None,
                surfaces_in: None,
                traces: p.traces,
                occurrences: p.occurrences,
                max_count: p.max_count,
                potential_savings_ns: 0,
                example_trace_id: p.example.map(|(_, t)| t.to_hex()).unwrap_or_default(),
            }))
            .chain(self.findings.iter().map(|(&(kind, key, other), p)| {
                let savings = p.savings.min(u64::MAX as u128) as u64;
                let in_traces = crate::render::count(p.traces, "trace");
                let description = match kind {
                    SEQUENTIAL_CALLS => format!(
                        "{} calls up to {} different operations one after another; overlapping them would save up to {} in total",
                        key_text(key),
                        p.max_count,
                        crate::render::duration(savings)
                    ),
                    RETRY => format!(
                        "{} calls {} again after it failed ({} in {in_traces}); the failed attempts took {} in total",
                        key_text(key),
                        other.map(key_text).unwrap_or_default(),
                        crate::render::count(p.occurrences, "retry"),
                        crate::render::duration(savings)
                    ),
                    ERROR_ORIGIN => match other {
                        Some(up) => format!("errors start in {} in {in_traces} and surface in {}", key_text(key), key_text(up)),
                        None => format!("errors start in {} in {in_traces}", key_text(key)),
                    },
                    _ => format!("{} calls up to {} operations from one span", key_text(key), p.max_count),
                };
                let (service, operation, caller, surfaces_in) = match kind {
                    RETRY => {
                        let callee = other.unwrap_or(key);
                        (callee.0, callee.1, Some(key_text(key)), None)
                    }
                    ERROR_ORIGIN => (key.0, key.1, None, other.map(key_text)),
                    _ => (key.0, key.1, None, None),
                };
                Pattern {
                    kind,
                    description,
                    service: dict.resolve(service).to_string(),
                    operation: dict.resolve(operation).to_string(),
                    caller,
                    surfaces_in,
                    traces: p.traces,
                    occurrences: p.occurrences,
                    max_count: p.max_count,
                    potential_savings_ns: savings,
                    example_trace_id: p.example.map(|(_, t)| t.to_hex()).unwrap_or_default(),
                }
            }))
            .collect();
        // A total order (one operation can be several patterns of a kind:
        // under other callers, surfacing elsewhere), so every process that
        // merges the same aggregates lists them alike.
        patterns.sort_by(|a, b| {
            (b.potential_savings_ns, b.traces, &a.kind, &a.service, &a.operation)
                .cmp(&(a.potential_savings_ns, a.traces, &b.kind, &b.service, &b.operation))
                .then_with(|| {
                    (&a.caller, &a.surfaces_in, &a.description).cmp(&(&b.caller, &b.surfaces_in, &b.description))
                })
        });
        BottleneckView {
            traces_analyzed: self.traces,
            total_duration_ns: self.total_duration.min(u64::MAX as u128) as u64,
            gap_ns: self.gap.min(u64::MAX as u128) as u64,
            traces_fragmented: self.fragmented,
            traces_with_spans_outside_parent: self.asynchronous,
            operations,
            call_paths,
            patterns,
        }
    }

    fn path_display(&self, dict: &Dictionary, mut node: u32) -> String {
        let mut parts = Vec::new();
        while node != NO_PATH {
            let (parent, (s, o)) = self.path_nodes[node as usize];
            parts.push(format!("[{}] {}", dict.resolve(s), dict.resolve(o)));
            node = parent;
        }
        parts.reverse();
        parts.join(" > ")
    }
}

/// Hyndman–Fan type 7 quantile of sorted exact values (linear interpolation
/// between closest ranks), rounded to the nearest ns.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    match sorted.len() {
        0 => 0,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = h - lo as f64;
            (sorted[lo] as f64 + frac * (sorted[hi] as f64 - sorted[lo] as f64)).round() as u64
        }
    }
}

/// One key's figures in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationBottleneck {
    /// Service.
    pub service: String,
    /// Operation.
    pub operation: String,
    /// Root-to-operation call path (call-path view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_path: Option<String>,
    /// Total critical-path time, ns.
    pub critical_path_ns_total: u64,
    /// Share of all analysed trace time.
    pub share: f64,
    /// Traces where it is on the critical path.
    pub traces_on_path: u64,
    /// Median of its per-trace critical-path time (traces where it is on the path).
    pub p50_ns: u64,
    /// 95th percentile of the same.
    pub p95_ns: u64,
    /// 99th percentile of the same.
    pub p99_ns: u64,
    /// The trace where it took the most critical-path time.
    pub example_trace_id: String,
}

/// A pattern worth a look.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pattern {
    /// `n_plus_one`, `dominant_self_time`, `sequential_calls`, `retry`,
    /// `error_origin` or `fan_out`.
    pub kind: &'static str,
    /// What was found, in a sentence.
    pub description: String,
    /// Service of the operation concerned.
    pub service: String,
    /// The operation concerned (the repeated callee, or the dominant span).
    pub operation: String,
    /// For N+1 and retries: the calling operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// For an error origin: the highest failed operation of another service
    /// above it, where the error surfaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surfaces_in: Option<String>,
    /// Traces where it occurs.
    pub traces: u64,
    /// Occurrences (parent spans, or dominant spans).
    pub occurrences: u64,
    /// The most calls under one parent span (N+1, sequential calls), failed
    /// attempts before a retry, children (fan-out), or failed ancestors
    /// (error origin).
    pub max_count: u64,
    /// Time concurrent calls would have saved (N+1, sequential calls), or
    /// the failed attempts took (retries), in total, ns.
    pub potential_savings_ns: u64,
    /// An example trace.
    pub example_trace_id: String,
}

/// The bottleneck report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BottleneckView {
    /// Traces with a critical path.
    pub traces_analyzed: u64,
    /// Sum of their durations, ns.
    pub total_duration_ns: u64,
    /// Critical-path time in no known span (missing parents, gaps between
    /// a trace's fragments), ns: not in any operation's share.
    pub gap_ns: u64,
    /// Traces in several fragments (orphans whose parent is missing, or
    /// several roots), each walked under one reconstructed root.
    pub traces_fragmented: u64,
    /// Traces with spans running outside their parent (asynchronous work
    /// or clock skew): their time outside is on no critical path.
    pub traces_with_spans_outside_parent: u64,
    /// Per (service, operation), by total critical-path time.
    pub operations: Vec<OperationBottleneck>,
    /// Per call path, by total critical-path time.
    pub call_paths: Vec<OperationBottleneck>,
    /// Patterns, by potential savings then traces.
    pub patterns: Vec<Pattern>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_cap_keeps_totals_exact_and_memory_bounded() {
        let (mut a, mut b) = (Agg::default(), Agg::default());
        for v in 1..=10_000u64 {
            a.add(v * 1_000, TraceId([1; 16]), Some(100));
        }
        for v in 1..=50u64 {
            b.add(v, TraceId([2; 16]), Some(100));
        }
        assert_eq!(a.traces, 10_000);
        assert_eq!(a.total, 1_000 * 10_000 * 10_001 / 2);
        assert!(a.per_trace.is_empty() && a.histogram.is_some());
        let [p50, _, p99] = a.quantiles([0.5, 0.95, 0.99]);
        assert!((p50 as f64 / 5_000_000.0 - 1.0).abs() < 0.001, "{p50}");
        assert!((p99 as f64 / 9_900_000.0 - 1.0).abs() < 0.001, "{p99}");
        assert_eq!(a.example.unwrap().0, 10_000_000, "the worst trace is still exact");
        assert_eq!(b.quantiles([0.5, 0.0, 1.0]), [26, 1, 50], "under the cap: exact type 7 (25.5 rounds up)");
        b.merge(&a, Some(100));
        assert_eq!(b.traces, 10_050);
        assert_eq!(b.quantiles([0.0, 0.0, 0.0])[0], 1, "exact values join the histogram");
        a.compact();
        assert_eq!(a.quantiles([0.5, 0.95, 0.99])[0], p50);
    }

    use crate::analysis::critical_path::{CriticalPathConfig, critical_path};
    use crate::assemble::assemble_all;
    use crate::model::{SpanKind, StatusCode};

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_800_000_000_000_000_000;

    /// A span of trace `t`: id, parent, service, name, kind, start and end
    /// in ms, failed or not.
    #[allow(clippy::too_many_arguments)]
    fn span(
        dict: &mut Dictionary,
        t: u8,
        id: u8,
        parent: Option<u8>,
        service: &str,
        name: &str,
        kind: SpanKind,
        ms: (u64, u64),
        error: bool,
    ) -> crate::model::Span {
        let mut s = crate::model::Span::new(TraceId([t; 16]), SpanId([id; 8]));
        s.parent_id = parent.map(|p| SpanId([p; 8]));
        s.service = dict.intern(service);
        s.name = dict.intern(name);
        s.resource = dict.resource(Vec::new());
        s.kind = kind;
        s.start_ns = T0 + ms.0 * MS;
        s.end_ns = T0 + ms.1 * MS;
        if error {
            s.status = StatusCode::Error;
        }
        s
    }

    /// One trace per pattern, and one with none of them.
    fn traces(dict: &mut Dictionary, clean_only: bool) -> Vec<Trace> {
        use SpanKind::{Client, Server};
        // Trace 4: web calls a and b at the same time, nothing fails.
        let mut spans = vec![
            span(dict, 4, 1, None, "web", "GET /", Server, (0, 100), false),
            span(dict, 4, 2, Some(1), "web", "call a", Client, (0, 20), false),
            span(dict, 4, 3, Some(2), "a", "Do", Server, (1, 19), false),
            span(dict, 4, 4, Some(1), "web", "call b", Client, (0, 30), false),
            span(dict, 4, 5, Some(4), "b", "Do", Server, (1, 29), false),
        ];
        if !clean_only {
            // Trace 1: web calls a, then b, one after the other.
            spans.push(span(dict, 1, 1, None, "web", "GET /", Server, (0, 100), false));
            spans.push(span(dict, 1, 2, Some(1), "web", "call a", Client, (0, 20), false));
            spans.push(span(dict, 1, 3, Some(2), "a", "Do", Server, (1, 19), false));
            spans.push(span(dict, 1, 4, Some(1), "web", "call b", Client, (20, 50), false));
            spans.push(span(dict, 1, 5, Some(4), "b", "Do", Server, (21, 49), false));
            // Trace 2: web's call to c fails in c, then web calls again.
            spans.push(span(dict, 2, 1, None, "web", "GET /", Server, (0, 100), false));
            spans.push(span(dict, 2, 2, Some(1), "web", "call c", Client, (0, 10), true));
            spans.push(span(dict, 2, 3, Some(2), "c", "Do", Server, (1, 9), true));
            spans.push(span(dict, 2, 4, Some(1), "web", "call c", Client, (10, 30), false));
            spans.push(span(dict, 2, 5, Some(4), "c", "Do", Server, (11, 29), false));
            // Trace 5: api's call to c fails in c too.
            spans.push(span(dict, 5, 1, None, "api", "GET /x", Server, (0, 100), false));
            spans.push(span(dict, 5, 2, Some(1), "api", "call c", Client, (0, 10), true));
            spans.push(span(dict, 5, 3, Some(2), "c", "Do", Server, (1, 9), true));
            // Trace 3: web fans out to twelve calls to d at once.
            spans.push(span(dict, 3, 1, None, "web", "GET /", Server, (0, 100), false));
            for k in 0..12 {
                spans.push(span(dict, 3, 10 + k, Some(1), "d", "Get", Server, (1, 50), false));
            }
        }
        let mut traces = assemble_all(spans).0;
        traces.sort_by_key(|t| t.trace_id);
        traces
    }

    fn bottlenecks(traces: &[Trace]) -> Bottlenecks {
        let mut b = Bottlenecks::new(BottleneckConfig::default());
        for t in traces {
            b.add_trace(t, &critical_path(t, &CriticalPathConfig::default()));
        }
        b
    }

    #[test]
    fn sequential_calls_retries_error_origins_and_fan_outs_are_found() {
        let mut dict = Dictionary::default();
        let traces = traces(&mut dict, false);
        let view = bottlenecks(&traces).view(&dict);
        let find = |kind: &str| -> Vec<&Pattern> { view.patterns.iter().filter(|p| p.kind == kind).collect() };
        let sequential = find(SEQUENTIAL_CALLS);
        assert_eq!(sequential.len(), 1, "{:#?}", view.patterns);
        let s = sequential[0];
        assert_eq!((s.service.as_str(), s.operation.as_str(), s.traces, s.max_count), ("web", "GET /", 1, 2));
        assert_eq!(s.potential_savings_ns, 20 * MS, "overlapped, the two take 30 ms, not 50");
        assert_eq!(s.example_trace_id, TraceId([1; 16]).to_hex());
        let retry = find(RETRY);
        assert_eq!(retry.len(), 1, "{:#?}", view.patterns);
        assert_eq!((retry[0].operation.as_str(), retry[0].caller.as_deref()), ("call c", Some("web GET /")));
        assert_eq!((retry[0].potential_savings_ns, retry[0].max_count), (10 * MS, 1));
        let origin = find(ERROR_ORIGIN);
        assert_eq!(origin.len(), 2, "{:#?}", view.patterns);
        assert_eq!((origin[0].service.as_str(), origin[0].surfaces_in.as_deref()), ("c", Some("api call c")));
        assert_eq!((origin[1].service.as_str(), origin[1].surfaces_in.as_deref()), ("c", Some("web call c")));
        // The same aggregates list them alike, whatever order they came in.
        let reversed: Vec<Trace> = traces.iter().rev().cloned().collect();
        assert_eq!(bottlenecks(&reversed).view(&dict).patterns, view.patterns);
        let fan = find(FAN_OUT);
        assert_eq!(fan.len(), 1);
        assert_eq!((fan[0].max_count, fan[0].example_trace_id.clone()), (12, TraceId([3; 16]).to_hex()));
        assert!(find("n_plus_one").is_empty(), "the twelve calls overlap");
    }

    #[test]
    fn traces_without_the_patterns_show_none() {
        let mut dict = Dictionary::default();
        let traces = traces(&mut dict, true);
        let view = bottlenecks(&traces).view(&dict);
        assert!(view.patterns.iter().all(|p| p.kind == "dominant_self_time"), "{:#?}", view.patterns);
    }

    #[test]
    fn findings_survive_the_portable_form_and_merge_exactly() {
        use crate::analysis::portable::{Names, Syms};
        let mut dict = Dictionary::default();
        let traces = traces(&mut dict, false);
        let whole = bottlenecks(&traces).view(&dict);
        let (first, second) = traces.split_at(2);
        let mut merged = Bottlenecks::new(BottleneckConfig::default());
        for part in [first, second] {
            let mut names = Names::default();
            let message = bottlenecks(part).to_portable(&dict, &mut names);
            let strings = names.into_strings();
            let syms = Syms::intern(&strings, &mut dict);
            merged.read_portable(&message, &syms).unwrap();
        }
        assert_eq!(merged.view(&dict).patterns, whole.patterns);
    }

    #[test]
    fn type_7_quantiles() {
        let v = [10, 20, 30, 40];
        assert_eq!(quantile(&v, 0.5), 25);
        assert_eq!(quantile(&v, 0.0), 10);
        assert_eq!(quantile(&v, 1.0), 40);
        assert_eq!(quantile(&v, 0.95), 39); // 30 + 0.85 * 10 = 38.5 -> 39
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
