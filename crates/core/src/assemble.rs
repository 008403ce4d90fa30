//! Trace assembly: groups a stream of spans into [`Trace`]s and repairs what
//! real dumps get wrong, so every analysis sees a clean forest.
//!
//! A trace is closed when no span for it has arrived within
//! [`AssemblerConfig::idle_spans`] spans (so memory stays bounded by the
//! traces still open, not by file length) or at the end of input. On
//! closing, the trace is repaired in this order:
//!
//! 1. Zipkin shared SERVER halves (same id as their CLIENT) get a
//!    deterministic new id with the CLIENT as parent, and the server's own
//!    children in the server's service move under it.
//! 2. Exact duplicate spans are dropped; different spans sharing an id get
//!    deterministic new ids.
//! 3. Parent ids that name no span are flagged as orphans.
//! 4. Parent cycles are cut.

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::model::{
    NO_PARENT, OriginalIds, Span, SpanId, SpanKind, SpanQuality, Sym, Trace, TraceId, WarningKind, Warnings,
};

/// Assembly settings.
#[derive(Clone, Copy, Debug)]
pub struct AssemblerConfig {
    /// A trace is closed once this many spans of other traces arrived since
    /// its last span.
    pub idle_spans: u64,
}

impl Default for AssemblerConfig {
    fn default() -> Self {
        AssemblerConfig { idle_spans: 200_000 }
    }
}

/// A step back of the caller's clock larger than this is taken for a wall
/// clock set back (see [`Assembler::push_at`]).
pub const CLOCK_STEP_BACK_MS: u64 = 1_000;

struct OpenTrace {
    spans: Vec<Span>,
    first_seq: u64,
    last_seq: u64,
    /// Caller's clock (ms) at the last span, for live idle timeouts.
    last_ms: u64,
}

/// Groups spans by trace id and emits repaired traces.
pub struct Assembler {
    config: AssemblerConfig,
    open: FxHashMap<TraceId, OpenTrace>,
    /// Live data only ([`Self::push_at`]): (time, trace) each time a trace
    /// received spans at a new time, oldest first, so [`Self::close_idle`]
    /// visits the traces that may be idle instead of every open one. An
    /// entry is current while its trace is open with that `last_ms`.
    activity: VecDeque<(u64, TraceId)>,
    /// The caller's clock as the assembler keeps it (see [`Self::advance`]):
    /// it never goes back, so `activity` stays in order.
    clock_ms: u64,
    /// The caller's clock as last given.
    given_ms: u64,
    /// Spans in `open`, kept as they come and go.
    open_spans: usize,
    closed: FxHashSet<TraceId>,
    seq: u64,
    next_sweep: u64,
    warnings: Warnings,
}

impl Assembler {
    /// A new assembler.
    pub fn new(config: AssemblerConfig) -> Assembler {
        let idle = config.idle_spans.max(1);
        Assembler {
            config: AssemblerConfig { idle_spans: idle },
            open: FxHashMap::default(),
            activity: VecDeque::new(),
            clock_ms: 0,
            given_ms: 0,
            open_spans: 0,
            closed: FxHashSet::default(),
            seq: 0,
            next_sweep: idle,
            warnings: Warnings::default(),
        }
    }

    /// Adds a span; traces that became idle are passed to `out`.
    pub fn push(&mut self, span: Span, out: &mut impl FnMut(Trace)) {
        self.add(span, None, out);
    }

    /// [`Self::push`] for live data: `now_ms` is the caller's clock, which
    /// [`Self::close_idle`] compares against.
    pub fn push_at(&mut self, span: Span, now_ms: u64, out: &mut impl FnMut(Trace)) {
        let now = self.advance(now_ms);
        self.add(span, Some(now), out);
    }

    /// Moves the assembler's clock as the caller's moved since it was last
    /// given. A step back of more than [`CLOCK_STEP_BACK_MS`] (a wall
    /// clock set back) is absorbed: the assembler's clock goes on from
    /// where it was, so open traces still complete after their idle time
    /// instead of after the step. A smaller step back (callers reading the
    /// clock before taking their turn) is ignored.
    fn advance(&mut self, now_ms: u64) -> u64 {
        if now_ms >= self.given_ms {
            self.clock_ms += now_ms - self.given_ms;
            self.given_ms = now_ms;
        } else if self.given_ms - now_ms > CLOCK_STEP_BACK_MS {
            self.given_ms = now_ms;
        }
        self.clock_ms
    }

    fn add(&mut self, span: Span, now_ms: Option<u64>, out: &mut impl FnMut(Trace)) {
        self.seq += 1;
        let seq = self.seq;
        let trace_id = span.trace_id;
        let mut new = false;
        let entry = self.open.entry(trace_id).or_insert_with(|| {
            new = true;
            OpenTrace { spans: Vec::new(), first_seq: seq, last_seq: seq, last_ms: 0 }
        });
        if let Some(now) = now_ms {
            if new || entry.last_ms != now {
                self.activity.push_back((now, trace_id));
            }
            entry.last_ms = now;
        }
        if entry.spans.is_empty() && self.closed.contains(&trace_id) {
            self.warnings.add(WarningKind::SplitTrace);
        }
        entry.spans.push(span);
        entry.last_seq = seq;
        self.open_spans += 1;
        if seq >= self.next_sweep {
            self.sweep(out);
            self.next_sweep = seq + (self.config.idle_spans / 4).max(1);
        }
    }

    fn sweep(&mut self, out: &mut impl FnMut(Trace)) {
        let horizon = self.seq.saturating_sub(self.config.idle_spans);
        let mut idle: Vec<(u64, TraceId)> =
            self.open.iter().filter(|(_, t)| t.last_seq <= horizon).map(|(id, t)| (t.first_seq, *id)).collect();
        idle.sort_unstable();
        for (_, id) in idle {
            let open = self.open.remove(&id).expect("idle trace is open");
            self.open_spans -= open.spans.len();
            self.closed.insert(id);
            out(repair(id, open.spans, &mut self.warnings));
        }
    }

    /// Closes traces that received no span in the last `idle_ms` of the
    /// caller's clock, in order of first appearance. Only traces fed by
    /// [`Self::push_at`] are considered; the cost is that of the traces
    /// that were active `idle_ms` ago, not of every open trace.
    pub fn close_idle(&mut self, now_ms: u64, idle_ms: u64, out: &mut impl FnMut(Trace)) {
        let now_ms = self.advance(now_ms);
        let mut idle: Vec<(u64, TraceId)> = Vec::new();
        while let Some(&(ms, id)) = self.activity.front() {
            if ms.saturating_add(idle_ms) > now_ms {
                break;
            }
            self.activity.pop_front();
            // Stale when the trace has closed since or received spans later
            // (a newer entry stands for it).
            if let Some(t) = self.open.get(&id).filter(|t| t.last_ms == ms) {
                idle.push((t.first_seq, id));
            }
        }
        idle.sort_unstable();
        // A trace reopened and closed again within one time can have two
        // current entries.
        idle.dedup();
        for (_, id) in idle {
            let open = self.open.remove(&id).expect("idle trace is open");
            self.open_spans -= open.spans.len();
            self.closed.insert(id);
            out(repair(id, open.spans, &mut self.warnings));
        }
    }

    /// Forgets which traces were closed once more than `limit` are
    /// remembered (bounds memory in a long-running receiver; a trace closed
    /// before that and continued later is then not counted as split).
    pub fn forget_closed_over(&mut self, limit: usize) {
        if self.closed.len() > limit {
            self.closed.clear();
        }
    }

    /// Spans in open traces.
    pub fn open_spans(&self) -> usize {
        self.open_spans
    }

    /// Warnings counted so far.
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }

    /// Closes every open trace, passing each to `out` in order of first
    /// appearance, and returns the warnings assembly counted.
    pub fn finish(mut self, out: &mut impl FnMut(Trace)) -> Warnings {
        let mut rest: Vec<(u64, TraceId, OpenTrace)> = self.open.drain().map(|(id, t)| (t.first_seq, id, t)).collect();
        rest.sort_unstable_by_key(|(first, _, _)| *first);
        for (_, id, open) in rest {
            out(repair(id, open.spans, &mut self.warnings));
        }
        self.warnings
    }

    /// Ends assembly without closing anything: the spans of the traces
    /// still open (trace by trace, in order of first appearance), to be
    /// continued by another assembler, and the warnings counted.
    pub fn into_open(mut self) -> (Vec<Span>, Warnings) {
        let mut rest: Vec<(u64, OpenTrace)> = self.open.drain().map(|(_, t)| (t.first_seq, t)).collect();
        rest.sort_unstable_by_key(|(first, _)| *first);
        (rest.into_iter().flat_map(|(_, t)| t.spans).collect(), self.warnings)
    }

    /// A copy of the spans of the traces open now (trace by trace, in order
    /// of first appearance), leaving them open: what a checkpoint keeps.
    pub fn open_span_copies(&self) -> Vec<Span> {
        let mut open: Vec<&OpenTrace> = self.open.values().collect();
        open.sort_unstable_by_key(|t| t.first_seq);
        open.into_iter().flat_map(|t| t.spans.iter().cloned()).collect()
    }

    /// Number of traces currently open.
    pub fn open_traces(&self) -> usize {
        self.open.len()
    }
}

/// Assembles all of `spans` (which may hold many traces) at once; a
/// convenience for tests and small inputs.
pub fn assemble_all(spans: impl IntoIterator<Item = Span>) -> (Vec<Trace>, Warnings) {
    let mut assembler = Assembler::new(AssemblerConfig { idle_spans: u64::MAX });
    let mut traces = Vec::new();
    for span in spans {
        assembler.push(span, &mut |t| traces.push(t));
    }
    let warnings = assembler.finish(&mut |t| traces.push(t));
    (traces, warnings)
}

/// Repairs one trace's spans and resolves parents to indices.
pub fn repair(trace_id: TraceId, mut spans: Vec<Span>, warnings: &mut Warnings) -> Trace {
    split_shared_spans(&mut spans, warnings);
    let index = dedup_span_ids(&mut spans, warnings);
    let parents = link_parents(&mut spans, index, warnings);
    Trace { trace_id, spans, parents }
}

/// Zipkin B3 single-span RPCs: the SERVER half carries the CLIENT's id.
fn split_shared_spans(spans: &mut [Span], warnings: &mut Warnings) {
    let is_shared_server = |s: &Span| s.quality.contains(SpanQuality::ZIPKIN_SHARED) && s.kind == SpanKind::Server;
    if !spans.iter().any(is_shared_server) {
        return;
    }
    let partner_ids: FxHashSet<SpanId> = spans.iter().filter(|s| !is_shared_server(s)).map(|s| s.span_id).collect();
    // (original id, server service) -> new server id
    let mut moved: FxHashMap<(SpanId, Sym), SpanId> = FxHashMap::default();
    for span in spans.iter_mut() {
        if !is_shared_server(span) || !partner_ids.contains(&span.span_id) {
            continue;
        }
        let original = span.span_id;
        let new_id = original.derived(b"server");
        span.original_ids_mut().span_id.get_or_insert_with(|| original.to_hex().into());
        span.span_id = new_id;
        span.parent_id = Some(original);
        span.quality.insert(SpanQuality::SHARED_SPLIT);
        warnings.add(WarningKind::SharedSpanSplit);
        moved.insert((original, span.service), new_id);
    }
    if moved.is_empty() {
        return;
    }
    for span in spans.iter_mut() {
        if span.quality.contains(SpanQuality::SHARED_SPLIT) {
            continue;
        }
        if let Some(parent) = span.parent_id
            && let Some(&new_parent) = moved.get(&(parent, span.service))
        {
            span.parent_id = Some(new_parent);
        }
    }
}

/// Span ids -> index in the trace.
type SpanIndex = FxHashMap<SpanId, u32>;

/// Drops exact duplicates and gives the other spans of a taken id a fresh
/// one; returns the index of final ids when no span was dropped (the
/// common case: [`link_parents`] needs the same map).
fn dedup_span_ids(spans: &mut Vec<Span>, warnings: &mut Warnings) -> Option<SpanIndex> {
    // id -> index of the first span that has it (as its final id)
    let mut taken: SpanIndex = FxHashMap::with_capacity_and_hasher(spans.len(), Default::default());
    // original id -> every span kept under that id so far, when it collided
    let mut same_id: FxHashMap<SpanId, Vec<usize>> = FxHashMap::default();
    // Spans to drop, allocated at the first duplicate.
    let mut dropped: Vec<bool> = Vec::new();
    for i in 0..spans.len() {
        let id = spans[i].span_id;
        let Some(&first) = taken.get(&id) else {
            taken.insert(id, i as u32);
            continue;
        };
        let group = same_id.entry(id).or_insert_with(|| vec![first as usize]);
        if group.iter().any(|&j| spans[j] == spans[i] || same_but_id(&spans[j], &spans[i])) {
            dropped.resize(spans.len(), false);
            dropped[i] = true;
            warnings.add(WarningKind::DuplicateSpan);
            continue;
        }
        // A different span with a taken id: derive a fresh one.
        let mut n: u32 = 1;
        let new_id = loop {
            let mut salt = *b"dup\0\0\0\0";
            salt[3..].copy_from_slice(&n.to_be_bytes());
            let candidate = id.derived(&salt);
            if !taken.contains_key(&candidate) {
                break candidate;
            }
            n += 1;
        };
        let span = &mut spans[i];
        span.original_ids_mut().span_id.get_or_insert_with(|| id.to_hex().into());
        span.span_id = new_id;
        span.quality.insert(SpanQuality::DUPLICATE_ID);
        warnings.add(WarningKind::DuplicateSpanId);
        taken.insert(new_id, i as u32);
        group.push(i);
    }
    if dropped.is_empty() {
        return Some(taken);
    }
    let mut it = dropped.iter();
    spans.retain(|_| !*it.next().expect("one flag per span"));
    None
}

/// Whether `kept` (possibly re-identified) is the same span as `new` apart
/// from the id and the repair bookkeeping that re-identification added.
fn same_but_id(kept: &Span, new: &Span) -> bool {
    if !kept.quality.contains(SpanQuality::DUPLICATE_ID) {
        return false;
    }
    let mut probe = kept.clone();
    probe.span_id = new.span_id;
    probe.quality.remove(SpanQuality::DUPLICATE_ID);
    if let Some(extra) = probe.extra_if_any_mut()
        && let Some(original) = &mut extra.original_ids
    {
        original.span_id = new.original_ids().and_then(|o| o.span_id.clone());
        if *original == OriginalIds::default() {
            extra.original_ids = None;
        }
    }
    probe == *new
}

fn link_parents(spans: &mut [Span], index: Option<SpanIndex>, warnings: &mut Warnings) -> Vec<u32> {
    let index = index.unwrap_or_else(|| spans.iter().enumerate().map(|(i, s)| (s.span_id, i as u32)).collect());
    let mut parents = vec![NO_PARENT; spans.len()];
    for (i, span) in spans.iter_mut().enumerate() {
        let Some(parent) = span.parent_id else { continue };
        match index.get(&parent) {
            Some(&p) if p as usize == i => {
                span.parent_id = None;
                span.quality.insert(SpanQuality::CYCLE_CUT);
                warnings.add(WarningKind::ParentCycle);
            }
            Some(&p) => parents[i] = p,
            None => {
                span.quality.insert(SpanQuality::ORPHAN);
                warnings.add(WarningKind::OrphanParent);
            }
        }
    }
    cut_cycles(spans, &mut parents, warnings);
    parents
}

/// Walks parent chains; a chain that returns to a span on the current walk
/// is a cycle, cut at the span whose parent link closes it.
fn cut_cycles(spans: &mut [Span], parents: &mut [u32], warnings: &mut Warnings) {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![UNSEEN; spans.len()];
    let mut path = Vec::new();
    for start in 0..spans.len() {
        if state[start] != UNSEEN {
            continue;
        }
        let mut node = start;
        loop {
            state[node] = ON_PATH;
            path.push(node);
            let p = parents[node];
            if p == NO_PARENT {
                break;
            }
            let p = p as usize;
            match state[p] {
                UNSEEN => node = p,
                ON_PATH => {
                    parents[node] = NO_PARENT;
                    spans[node].parent_id = None;
                    spans[node].quality.insert(SpanQuality::CYCLE_CUT);
                    warnings.add(WarningKind::ParentCycle);
                    break;
                }
                _ => break,
            }
        }
        for &n in &path {
            state[n] = DONE;
        }
        path.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dictionary, StatusCode};

    fn span(d: &mut Dictionary, trace: u8, id: u8, parent: Option<u8>, service: &str) -> Span {
        let mut s = Span::new(TraceId([trace; 16]), SpanId([0, 0, 0, 0, 0, 0, 0, id]));
        s.parent_id = parent.map(|p| SpanId([0, 0, 0, 0, 0, 0, 0, p]));
        s.service = d.intern(service);
        s.name = d.intern("op");
        s.start_ns = 1_000 + id as u64;
        s.end_ns = 2_000;
        s
    }

    #[test]
    fn open_spans_are_counted_as_traces_open_and_close() {
        let mut d = Dictionary::default();
        let mut a = Assembler::new(AssemblerConfig { idle_spans: 4 });
        let mut closed = Vec::new();
        for (trace, id) in [(1, 1), (1, 2), (2, 1), (3, 1), (3, 2)] {
            a.push_at(span(&mut d, trace, id, None, "svc"), 10, &mut |t| closed.push(t));
        }
        assert_eq!(a.open_spans(), 5 - closed.iter().map(|t| t.len()).sum::<usize>());
        a.close_idle(20, 5, &mut |t| closed.push(t));
        assert_eq!((a.open_spans(), a.open_traces()), (0, 0));
        assert_eq!(closed.iter().map(|t| t.len()).sum::<usize>(), 5);
    }

    #[test]
    fn open_traces_are_handed_over_unrepaired_in_order_of_first_appearance() {
        let mut d = Dictionary::default();
        let mut a = Assembler::new(AssemblerConfig { idle_spans: 3 });
        let mut closed = Vec::new();
        for (trace, id) in [(1, 1), (2, 1), (3, 1), (3, 2), (2, 2), (4, 1), (2, 2)] {
            a.push(span(&mut d, trace, id, None, "svc"), &mut |t| closed.push(t));
        }
        // Traces 1 and 3 went idle; 2's duplicate span is still there, unrepaired.
        assert_eq!(closed.iter().map(|t| t.trace_id.0[0]).collect::<Vec<_>>(), [1, 3]);
        let copies = a.open_span_copies();
        assert_eq!(a.open_spans(), 4, "copies leave them open");
        let (open, _) = a.into_open();
        let ids: Vec<(u8, u8)> = open.iter().map(|s| (s.trace_id.0[0], s.span_id.0[7])).collect();
        assert_eq!(ids, [(2, 1), (2, 2), (2, 2), (4, 1)]);
        assert_eq!(copies, open);
    }

    #[test]
    fn groups_by_trace_and_links_parents() {
        let mut d = Dictionary::default();
        let spans = vec![
            span(&mut d, 1, 2, Some(1), "b"),
            span(&mut d, 2, 1, None, "a"),
            span(&mut d, 1, 1, None, "a"),
            span(&mut d, 1, 3, Some(2), "c"),
        ];
        let (traces, w) = assemble_all(spans);
        assert_eq!(w.total(), 0);
        assert_eq!(traces.len(), 2);
        let t = &traces[0];
        assert_eq!(t.trace_id, TraceId([1; 16]));
        assert_eq!(t.len(), 3);
        assert_eq!(t.parents, vec![1, NO_PARENT, 0]);
        assert_eq!(t.roots().collect::<Vec<_>>(), vec![1]);
    }

    /// A root (id 1), a child (id 2) and a different span with the child's id.
    fn root_child_and_conflicting(d: &mut Dictionary) -> (Span, Span, Span) {
        let mut conflicting = span(d, 1, 2, Some(1), "b");
        conflicting.status = StatusCode::Error;
        (span(d, 1, 1, None, "a"), span(d, 1, 2, Some(1), "b"), conflicting)
    }

    #[test]
    fn exact_duplicates_dropped_and_conflicting_ids_renamed() {
        let (a, b, conflicting) = root_child_and_conflicting(&mut Dictionary::default());
        let (traces, w) = assemble_all(vec![a, b.clone(), b, conflicting]);
        assert_eq!(w.get(WarningKind::DuplicateSpan), 1);
        assert_eq!(w.get(WarningKind::DuplicateSpanId), 1);
        let t = &traces[0];
        assert_eq!(t.len(), 3);
        let renamed = &t.spans[2];
        assert!(renamed.quality.contains(SpanQuality::DUPLICATE_ID));
        assert_ne!(renamed.span_id, SpanId([0, 0, 0, 0, 0, 0, 0, 2]));
        assert_eq!(renamed.original_ids().unwrap().span_id.as_deref(), Some("0000000000000002"));
        // Both copies of id 2 still hang under span 1.
        assert_eq!(t.parents, vec![NO_PARENT, 0, 0]);
    }

    #[test]
    fn renamed_spans_without_drops_link_parents_by_final_ids() {
        let mut d = Dictionary::default();
        let (a, b, conflicting) = root_child_and_conflicting(&mut d);
        let c = span(&mut d, 1, 3, Some(2), "c");
        let (traces, w) = assemble_all(vec![a, b, conflicting, c]);
        assert_eq!((w.get(WarningKind::DuplicateSpan), w.get(WarningKind::DuplicateSpanId)), (0, 1));
        let t = &traces[0];
        assert_eq!(t.len(), 4);
        // Id 2's child hangs under the span that kept the id.
        assert_eq!(t.parents, vec![NO_PARENT, 0, 0, 1]);
        assert!(t.spans[2].quality.contains(SpanQuality::DUPLICATE_ID));
    }

    #[test]
    fn copies_of_a_renamed_span_are_still_duplicates() {
        let mut d = Dictionary::default();
        let a = span(&mut d, 1, 2, None, "a");
        let b = span(&mut d, 1, 2, None, "b");
        let (traces, w) = assemble_all(vec![a.clone(), b.clone(), b.clone(), a, b]);
        assert_eq!(w.get(WarningKind::DuplicateSpanId), 1);
        assert_eq!(w.get(WarningKind::DuplicateSpan), 3);
        assert_eq!(traces[0].len(), 2);
    }

    #[test]
    fn orphans_and_cycles() {
        let mut d = Dictionary::default();
        let spans = vec![
            span(&mut d, 1, 1, Some(9), "a"), // orphan
            span(&mut d, 1, 2, Some(3), "a"), // 2 -> 3 -> 4 -> 2 cycle
            span(&mut d, 1, 3, Some(4), "a"),
            span(&mut d, 1, 4, Some(2), "a"),
            span(&mut d, 1, 5, Some(5), "a"), // self parent
            span(&mut d, 1, 6, Some(2), "a"),
        ];
        let (traces, w) = assemble_all(spans);
        assert_eq!(w.get(WarningKind::OrphanParent), 1);
        assert_eq!(w.get(WarningKind::ParentCycle), 2);
        let t = &traces[0];
        assert!(t.spans[0].quality.contains(SpanQuality::ORPHAN));
        // The walk from span 2 (index 1) reaches index 3 whose parent closes the cycle.
        assert_eq!(t.parents, vec![NO_PARENT, 2, 3, NO_PARENT, NO_PARENT, 1]);
        assert!(t.spans[3].quality.contains(SpanQuality::CYCLE_CUT));
        assert!(t.spans[4].quality.contains(SpanQuality::CYCLE_CUT));
        assert_eq!(t.roots().count(), 3);
    }

    #[test]
    fn zipkin_shared_server_half_is_split() {
        let mut d = Dictionary::default();
        let root = span(&mut d, 1, 1, None, "frontend");
        let mut client = span(&mut d, 1, 2, Some(1), "frontend");
        client.kind = SpanKind::Client;
        let mut server = span(&mut d, 1, 2, Some(1), "backend");
        server.kind = SpanKind::Server;
        server.quality.insert(SpanQuality::ZIPKIN_SHARED);
        let child_of_server = span(&mut d, 1, 3, Some(2), "backend");
        let child_of_client = span(&mut d, 1, 4, Some(2), "frontend");
        let (traces, w) = assemble_all(vec![root, client, server, child_of_server, child_of_client]);
        assert_eq!(w.get(WarningKind::SharedSpanSplit), 1);
        assert_eq!(w.get(WarningKind::DuplicateSpanId), 0);
        let t = &traces[0];
        assert_eq!(t.parents, vec![NO_PARENT, 0, 1, 2, 1]);
        assert_eq!(t.spans[2].span_id, SpanId([0, 0, 0, 0, 0, 0, 0, 2]).derived(b"server"));
    }

    #[test]
    fn shared_server_without_client_keeps_its_id() {
        let mut d = Dictionary::default();
        let mut server = span(&mut d, 1, 2, None, "backend");
        server.kind = SpanKind::Server;
        server.quality.insert(SpanQuality::ZIPKIN_SHARED);
        let (traces, w) = assemble_all(vec![server]);
        assert_eq!(w.total(), 0);
        assert_eq!(traces[0].spans[0].span_id, SpanId([0, 0, 0, 0, 0, 0, 0, 2]));
    }

    #[test]
    fn live_traces_close_after_an_idle_time() {
        let mut d = Dictionary::default();
        let mut a = Assembler::new(AssemblerConfig { idle_spans: u64::MAX });
        let mut out = Vec::new();
        a.push_at(span(&mut d, 1, 1, None, "a"), 1_000, &mut |t| out.push(t));
        a.push_at(span(&mut d, 2, 1, None, "a"), 5_000, &mut |t| out.push(t));
        a.push_at(span(&mut d, 1, 2, Some(1), "a"), 6_000, &mut |t| out.push(t));
        a.close_idle(10_000, 4_500, &mut |t| out.push(t));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].trace_id, TraceId([2; 16]));
        a.close_idle(11_000, 4_500, &mut |t| out.push(t));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].len(), 2);
    }

    #[test]
    fn a_wall_clock_set_back_does_not_hold_open_traces() {
        let mut d = Dictionary::default();
        let mut a = Assembler::new(AssemblerConfig { idle_spans: u64::MAX });
        let mut out: Vec<Trace> = Vec::new();
        let ids = |out: &[Trace]| out.iter().map(|t| t.trace_id.0[0]).collect::<Vec<u8>>();
        let (hour, idle) = (3_600_000, 5_000);
        a.push_at(span(&mut d, 1, 1, None, "a"), 10 * hour, &mut |t| out.push(t));
        a.close_idle(10 * hour + 1_000, idle, &mut |t| out.push(t));
        assert!(out.is_empty());
        // The clock is set back an hour, 1 s after trace 1's span; trace 2
        // starts 1 s after that. Each closes after its idle time, not an
        // hour later.
        let back = 9 * hour + 1_000;
        a.push_at(span(&mut d, 2, 1, None, "a"), back + 1_000, &mut |t| out.push(t));
        a.close_idle(back + 4_999, idle, &mut |t| out.push(t));
        assert!(out.is_empty(), "4.999 s after trace 1's span");
        a.close_idle(back + 5_000, idle, &mut |t| out.push(t));
        assert_eq!(ids(&out), [1]);
        a.close_idle(back + 6_000, idle, &mut |t| out.push(t));
        assert_eq!(ids(&out), [1, 2]);
    }

    #[test]
    fn idle_closing_follows_each_traces_latest_span() {
        let mut d = Dictionary::default();
        let mut a = Assembler::new(AssemblerConfig { idle_spans: u64::MAX });
        let mut out: Vec<Trace> = Vec::new();
        let ids = |out: &[Trace]| out.iter().map(|t| t.trace_id.0[0]).collect::<Vec<u8>>();
        // Trace 1 is active at 0, 10, 20 and 30; 2 only at 10; 3 at 20.
        a.push_at(span(&mut d, 1, 1, None, "a"), 0, &mut |t| out.push(t));
        a.push_at(span(&mut d, 2, 1, None, "a"), 10, &mut |t| out.push(t));
        a.push_at(span(&mut d, 1, 2, Some(1), "a"), 10, &mut |t| out.push(t));
        a.push_at(span(&mut d, 3, 1, None, "a"), 20, &mut |t| out.push(t));
        a.push_at(span(&mut d, 1, 3, Some(1), "a"), 20, &mut |t| out.push(t));
        // A clock that steps back counts as the latest time seen (30).
        a.push_at(span(&mut d, 1, 4, Some(1), "a"), 30, &mut |t| out.push(t));
        a.push_at(span(&mut d, 3, 2, Some(1), "a"), 25, &mut |t| out.push(t));
        a.close_idle(34, 5, &mut |t| out.push(t));
        assert_eq!(ids(&out), [2]); // 1's and 3's older entries are stale
        a.close_idle(35, 5, &mut |t| out.push(t));
        assert_eq!(ids(&out), [2, 1, 3]); // in order of first appearance
        assert_eq!(out[1].len(), 4);
        assert_eq!(out[2].len(), 2);
        assert_eq!((a.open_spans(), a.open_traces()), (0, 0));
        // A trace that comes back after closing is a new open trace, closed
        // once more.
        a.push_at(span(&mut d, 2, 2, None, "a"), 40, &mut |t| out.push(t));
        a.close_idle(45, 5, &mut |t| out.push(t));
        assert_eq!(ids(&out), [2, 1, 3, 2]);
        a.close_idle(1_000, 5, &mut |t| out.push(t));
        assert_eq!(out.len(), 4);
        assert!(a.activity.is_empty());
    }

    #[test]
    fn a_trace_closed_by_span_count_and_reopened_at_the_same_time_closes_once() {
        let mut d = Dictionary::default();
        let mut a = Assembler::new(AssemblerConfig { idle_spans: 4 });
        let mut out: Vec<Trace> = Vec::new();
        a.push_at(span(&mut d, 1, 1, None, "a"), 7, &mut |t| out.push(t));
        for id in 1..=8u8 {
            a.push_at(span(&mut d, 2, id, None, "a"), 7, &mut |t| out.push(t));
        }
        assert_eq!(out.len(), 1, "trace 1 closed by the span-count sweep");
        a.push_at(span(&mut d, 1, 2, None, "a"), 7, &mut |t| out.push(t));
        a.close_idle(7, 0, &mut |t| out.push(t));
        assert_eq!(out.iter().map(|t| (t.trace_id.0[0], t.len())).collect::<Vec<_>>(), [(1, 1), (2, 8), (1, 1)]);
        assert_eq!((a.open_spans(), a.open_traces()), (0, 0));
    }

    #[test]
    fn idle_traces_close_and_late_spans_are_counted() {
        let mut d = Dictionary::default();
        let mut a = Assembler::new(AssemblerConfig { idle_spans: 4 });
        let mut out = Vec::new();
        a.push(span(&mut d, 1, 1, None, "a"), &mut |t| out.push(t));
        for i in 1..=8 {
            a.push(span(&mut d, 2, i, None, "a"), &mut |t| out.push(t));
        }
        assert_eq!(out.len(), 1, "trace 1 closed while trace 2 streams");
        assert_eq!(out[0].trace_id, TraceId([1; 16]));
        assert_eq!(a.open_traces(), 1);
        a.push(span(&mut d, 1, 2, None, "a"), &mut |t| out.push(t));
        let w = a.finish(&mut |t| out.push(t));
        assert_eq!(w.get(WarningKind::SplitTrace), 1);
        assert_eq!(out.len(), 3);
    }
}
