//! Critical path per trace, with the semantics of Jaeger's critical-path
//! view, and exclusive (self) time per span.
//!
//! 1. The trace's fragments hang under one reconstructed root: spans without
//!    a parent (and orphans whose parent is missing) are its children, and
//!    orphans naming the same missing parent are grouped under a
//!    reconstructed span for that parent. A trace with one root is walked
//!    exactly as that root.
//! 2. Build the blocking tree parents first; a CONSUMER child of a PRODUCER
//!    does not block its caller and is pruned with its subtree; spans
//!    without usable timing are pruned too.
//! 3. Sanitize children against their already-sanitized parent: drop those
//!    entirely outside, truncate those that end late, clamp those that start
//!    early (both ends when they cover the parent). Spans running past
//!    their parent (asynchronous work) are reported as outside the path.
//! 4. Order children by end descending, start ascending, span id ascending.
//! 5. Walk back from the end: at each span, the last-finishing child that
//!    ends at or before the cursor and starts before it is on the path (a
//!    child ending exactly when the next one starts blocked its parent);
//!    time not covered by such a child belongs to the span itself. Time on
//!    the path inside a reconstructed span (a missing parent, or a gap
//!    between fragments) is a gap: no known span owns it.
//!
//! Sections and gaps tile the trace's interval exactly once, so a path never
//! exceeds its trace; zero-length sections are not emitted. Everything is
//! iterative (deep traces cannot overflow the stack) and O(n log n).

use crate::model::{SpanId, SpanKind, SpanQuality, Trace};

/// Critical-path settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CriticalPathConfig {
    /// Siblings overlapping by less than this fraction of their parent's
    /// duration count as sequential (CRISP uses 0.01). Default 0.
    pub sibling_overlap_tolerance: f64,
    /// A child that ends exactly when the next span on the path starts
    /// blocked its parent and is on the path (default). `false` is Jaeger's
    /// strict rule, which charges that child's time to its parent.
    pub link_back_to_back: bool,
}

impl Default for CriticalPathConfig {
    fn default() -> Self {
        CriticalPathConfig { sibling_overlap_tolerance: 0.0, link_back_to_back: true }
    }
}

/// A stretch of time on the critical path charged to one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// Index of the span in [`Trace::spans`].
    pub span: usize,
    /// Start, unix ns.
    pub start_ns: u64,
    /// End, unix ns (> start).
    pub end_ns: u64,
}

impl Section {
    /// Length in ns.
    pub fn len_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }
}

/// A span that runs (partly) outside its parent: asynchronous work, or a
/// clock skewed against its parent's. The time outside is not on the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outside {
    /// Index of the span in [`Trace::spans`].
    pub span: usize,
    /// How long it runs outside its parent's (sanitized) interval, ns.
    pub outside_ns: u64,
}

/// The critical path of one trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CriticalPath {
    /// Indices of the fragments' top spans (roots and orphans), by start.
    pub roots: Vec<usize>,
    /// Fragments joined under the reconstructed root: roots, plus one per
    /// missing parent that orphans name (1 for a whole trace).
    pub fragments: usize,
    /// Sections in time order.
    pub sections: Vec<Section>,
    /// Start of the trace's interval, unix ns.
    pub start_ns: u64,
    /// The trace's interval: from the earliest fragment's start to the
    /// latest fragment's end (= the sections plus the gaps).
    pub duration_ns: u64,
    /// Time on the path that no span of the trace covers: the own time of
    /// missing parents and the gaps between fragments.
    pub gap_ns: u64,
    /// Spans running past their parent's end or before its start, by time
    /// outside, longest first. Their descendants are left out too.
    pub outside: Vec<Outside>,
}

impl CriticalPath {
    /// Critical-path time per span (sum of its sections), indexed like the trace's spans.
    pub fn time_per_span(&self, spans: usize) -> Vec<u64> {
        let mut out = vec![0u64; spans];
        for s in &self.sections {
            out[s.span] += s.len_ns();
        }
        out
    }
}

/// Children of every span, as index lists (CSR).
struct Children {
    offsets: Vec<usize>,
    items: Vec<usize>,
}

impl Children {
    fn of(trace: &Trace) -> Children {
        let n = trace.len();
        let mut counts = vec![0usize; n + 1];
        for i in 0..n {
            if let Some(p) = trace.parent(i) {
                counts[p + 1] += 1;
            }
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let mut fill = counts.clone();
        let mut items = vec![0usize; counts[n]];
        for i in 0..n {
            if let Some(p) = trace.parent(i) {
                items[fill[p]] = i;
                fill[p] += 1;
            }
        }
        Children { offsets: counts, items }
    }

    fn get(&self, i: usize) -> &[usize] {
        &self.items[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// The working state of one critical path: the trace's spans (nodes
/// `0..n`) and the reconstructed nodes (node `n` the root every fragment
/// hangs under, nodes `n+1..` one per missing parent id that orphans
/// name), their sanitized times, and the blocking tree.
struct Nodes<'a> {
    trace: &'a Trace,
    n: usize,
    children: Children,
    /// Sanitized start and end of every node (reconstructed nodes get the
    /// hull of their children).
    start: Vec<u64>,
    end: Vec<u64>,
    /// Each reconstructed node's children, latest end first.
    virtual_kids: Vec<Vec<usize>>,
    /// (root, the reconstructed node it hangs under), sorted.
    root_parent: Vec<(usize, usize)>,
    /// Each span's blocking children, in its slot of `children` (a subset),
    /// latest end first.
    kids: Vec<usize>,
    kid_count: Vec<usize>,
}

impl<'a> Nodes<'a> {
    /// The reconstructed nodes over `roots` (sorted by start), and working
    /// copies of the times.
    fn new(trace: &'a Trace, roots: &[usize]) -> Nodes<'a> {
        let spans = &trace.spans;
        let n = spans.len();
        // The missing parent an orphan names (roots and spans whose parent
        // link was cut hang under the reconstructed root itself).
        let missing_parent = |r: usize| spans[r].parent_id.filter(|_| spans[r].quality.contains(SpanQuality::ORPHAN));
        let mut missing: Vec<(SpanId, usize)> =
            roots.iter().filter_map(|&r| missing_parent(r).map(|p| (p, r))).collect();
        missing.sort_unstable();
        // Each reconstructed node's id, for tie-breaks.
        let mut virtual_ids: Vec<SpanId> = vec![SpanId([0; 8])];
        let mut virtual_kids: Vec<Vec<usize>> =
            vec![roots.iter().copied().filter(|&r| missing_parent(r).is_none()).collect()];
        for group in missing.chunk_by(|a, b| a.0 == b.0) {
            let node = n + virtual_kids.len();
            virtual_kids[0].push(node);
            virtual_ids.push(group[0].0);
            virtual_kids.push(group.iter().map(|&(_, r)| r).collect());
        }
        let nodes = n + virtual_kids.len();
        let mut start: Vec<u64> = Vec::with_capacity(nodes);
        let mut end: Vec<u64> = Vec::with_capacity(nodes);
        start.extend(spans.iter().map(|s| s.start_ns));
        end.extend(spans.iter().map(|s| s.end_ns));
        start.resize(nodes, u64::MAX);
        end.resize(nodes, 0);
        let mut root_parent: Vec<(usize, usize)> = Vec::new();
        for (v, kids) in virtual_kids.iter().enumerate().skip(1) {
            for &r in kids {
                root_parent.push((r, n + v));
                start[n + v] = start[n + v].min(start[r]);
                end[n + v] = end[n + v].max(end[r]);
            }
        }
        root_parent.sort_unstable();
        for &k in &virtual_kids[0] {
            start[n] = start[n].min(start[k]);
            end[n] = end[n].max(end[k]);
        }
        let id = |i: usize| if i < n { spans[i].span_id } else { virtual_ids[i - n] };
        for kids in &mut virtual_kids {
            kids.sort_by(|&a, &b| end[b].cmp(&end[a]).then(start[a].cmp(&start[b])).then(id(a).cmp(&id(b))));
        }
        let children = Children::of(trace);
        Nodes {
            trace,
            n,
            kids: vec![0usize; children.items.len()],
            kid_count: vec![0usize; n],
            children,
            start,
            end,
            virtual_kids,
            root_parent,
        }
    }

    /// A node's parent: a span's trace parent, a root's reconstructed node.
    fn up(&self, i: usize) -> usize {
        let top = self.n;
        if i >= self.n {
            return top;
        }
        self.trace.parent(i).unwrap_or_else(|| match self.root_parent.binary_search_by_key(&i, |&(r, _)| r) {
            Ok(k) => self.root_parent[k].1,
            Err(_) => top,
        })
    }

    /// A node's blocking children, latest end first.
    fn blocking(&self, s: usize) -> &[usize] {
        if s < self.n {
            let from = self.children.offsets[s];
            &self.kids[from..from + self.kid_count[s]]
        } else {
            &self.virtual_kids[s - self.n]
        }
    }

    /// Steps 2-4: the blocking tree, sanitized parents first (explicit
    /// stack): a child is cut to its parent's interval, or dropped with its
    /// subtree when entirely outside it. Spans outside their parent go to
    /// `outside`, a dropped one measured by its whole subtree.
    fn build_blocking_tree(&mut self, roots: &[usize], outside: &mut Vec<Outside>) {
        let spans = &self.trace.spans;
        let mut stack: Vec<usize> = roots.to_vec();
        // (entry of `outside`, parent) of each dropped span.
        let mut subtree_pending: Vec<(usize, usize)> = Vec::new();
        while let Some(p) = stack.pop() {
            let (ps, pe) = (self.start[p], self.end[p]);
            for &c in self.children.get(p) {
                let child = &spans[c];
                if !child.has_timing() || (spans[p].kind == SpanKind::Producer && child.kind == SpanKind::Consumer) {
                    continue;
                }
                let (cs, ce) = (self.start[c], self.end[c]);
                let dropped = cs >= pe || (cs < ps && ce <= ps);
                // Measured against the parent's own interval: a child is not
                // outside only because its parent was truncated.
                let (os, oe) = (spans[p].start_ns, spans[p].end_ns);
                let (rs, re) = (child.start_ns, child.end_ns);
                if re > oe || rs < os {
                    if dropped {
                        subtree_pending.push((outside.len(), p));
                    }
                    outside.push(Outside { span: c, outside_ns: outside_of((os, oe), (rs, re)) });
                }
                if dropped {
                    continue; // entirely outside the parent: dropped with its subtree
                }
                self.start[c] = cs.max(ps);
                self.end[c] = ce.min(pe);
                self.kids[self.children.offsets[p] + self.kid_count[p]] = c;
                self.kid_count[p] += 1;
                stack.push(c);
            }
            let range = self.children.offsets[p]..self.children.offsets[p] + self.kid_count[p];
            let (start, end) = (&self.start, &self.end);
            self.kids[range].sort_by(|&a, &b| {
                end[b].cmp(&end[a]).then(start[a].cmp(&start[b])).then(spans[a].span_id.cmp(&spans[b].span_id))
            });
        }
        // A dropped span's time outside is its whole subtree's: asynchronous
        // work hangs off a span that may itself be short.
        for &(o, p) in &subtree_pending {
            let c = outside[o].span;
            let mut hull = (spans[c].start_ns, spans[c].end_ns);
            stack.push(c);
            while let Some(i) = stack.pop() {
                for &d in self.children.get(i) {
                    if spans[d].has_timing() {
                        hull = (hull.0.min(spans[d].start_ns), hull.1.max(spans[d].end_ns));
                        stack.push(d);
                    }
                }
            }
            outside[o].outside_ns = outside_of((spans[p].start_ns, spans[p].end_ns), hull);
        }
        outside.sort_by(|a, b| b.outside_ns.cmp(&a.outside_ns).then(a.span.cmp(&b.span)));
    }

    /// Step 5: walk back from the end; sections come out newest first.
    /// `upper` is the cursor; `entered` means we just stepped into `s`,
    /// where any child ending by `upper` qualifies; after returning from a
    /// child, the overlap tolerance applies too. Time in a reconstructed
    /// node is a gap.
    fn walk_back(&self, config: &CriticalPathConfig, out: &mut CriticalPath) {
        let (n, top) = (self.n, self.n);
        let (start, end) = (&self.start, &self.end);
        let mut next = vec![0usize; start.len()];
        let mut s = top;
        let mut upper = end[top];
        let mut entered = true;
        loop {
            let list = self.blocking(s);
            // With a tolerance, a sibling ending a little after the cursor
            // still counts as having finished before it (CRISP's allowance).
            let tolerance = (config.sibling_overlap_tolerance * (end[s] - start[s]) as f64) as u64;
            let limit = upper.saturating_add(tolerance);
            let mut k = next[s];
            // The cursor only moves back, so a skipped child stays skipped.
            while k < list.len() {
                let c = list[k];
                let ends_in_time = if entered {
                    end[c] <= upper
                } else if config.link_back_to_back {
                    end[c] <= upper || end[c] < limit
                } else {
                    end[c] < limit
                };
                if ends_in_time && start[c] < upper && start[c] < end[c] {
                    break;
                }
                k += 1;
            }
            let own = |from: u64, to: u64, out: &mut CriticalPath| {
                if from < to {
                    if s < n {
                        out.sections.push(Section { span: s, start_ns: from, end_ns: to });
                    } else {
                        out.gap_ns += to - from;
                    }
                }
            };
            if let Some(&c) = list.get(k) {
                let child_end = end[c].min(upper);
                own(child_end, upper, out);
                next[s] = k + 1;
                s = c;
                upper = child_end;
                entered = true;
            } else {
                next[s] = k;
                own(start[s], upper, out);
                if s == top {
                    break;
                }
                upper = start[s];
                entered = false;
                s = self.up(s);
            }
        }
    }
}

/// Computes the critical path of `trace`.
pub fn critical_path(trace: &Trace, config: &CriticalPathConfig) -> CriticalPath {
    let spans = &trace.spans;
    let mut out = CriticalPath::default();
    let mut roots: Vec<usize> = trace.roots().filter(|&i| spans[i].has_timing()).collect();
    if roots.is_empty() {
        return out;
    }
    roots.sort_by_key(|&i| (spans[i].start_ns, spans[i].span_id));
    let mut nodes = Nodes::new(trace, &roots);
    nodes.build_blocking_tree(&roots, &mut out.outside);
    nodes.walk_back(config, &mut out);
    let top = nodes.n;
    out.sections.reverse();
    out.start_ns = nodes.start[top];
    out.duration_ns = nodes.end[top] - nodes.start[top];
    out.fragments = nodes.virtual_kids[0].len();
    out.roots = roots;
    out
}

/// How long `[s, e]` runs outside `[ps, pe]`: after its end plus before its start.
fn outside_of((ps, pe): (u64, u64), (s, e): (u64, u64)) -> u64 {
    e.saturating_sub(pe.max(s)) + ps.min(e).saturating_sub(s)
}

/// Exclusive (self) time per span: its duration minus the union of its
/// children's intervals clipped to it, never below zero. Spans without
/// usable timing get 0.
pub fn self_times(trace: &Trace) -> Vec<u64> {
    let children = Children::of(trace);
    let mut intervals = Vec::new();
    (0..trace.len()).map(|i| self_time_among(trace, i, children.get(i).iter().copied(), &mut intervals)).collect()
}

/// The self time of span `i` alone (as [`self_times`] gives it), finding
/// its children by a pass over the trace: for the few spans a caller needs
/// it for. `intervals` is working space.
pub fn self_time(trace: &Trace, i: usize, intervals: &mut Vec<(u64, u64)>) -> u64 {
    let children = (0..trace.len()).filter(|&c| trace.parent(c) == Some(i));
    self_time_among(trace, i, children, intervals)
}

fn self_time_among(
    trace: &Trace,
    i: usize,
    children: impl Iterator<Item = usize>,
    intervals: &mut Vec<(u64, u64)>,
) -> u64 {
    let spans = &trace.spans;
    let s = &spans[i];
    let Some(duration) = s.duration_ns() else { return 0 };
    intervals.clear();
    intervals.extend(
        children
            .map(|c| &spans[c])
            .filter(|c| c.has_timing())
            .map(|c| (c.start_ns.max(s.start_ns), c.end_ns.min(s.end_ns)))
            .filter(|(a, b)| a < b),
    );
    intervals.sort_unstable();
    let mut covered = 0;
    let mut current: Option<(u64, u64)> = None;
    for &(a, b) in intervals.iter() {
        match &mut current {
            Some((_, ce)) if a <= *ce => *ce = (*ce).max(b),
            _ => {
                if let Some((cs, ce)) = current {
                    covered += ce - cs;
                }
                current = Some((a, b));
            }
        }
    }
    if let Some((cs, ce)) = current {
        covered += ce - cs;
    }
    duration.saturating_sub(covered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::assemble_all;
    use crate::model::{Span, SpanId, TraceId};

    /// (id, parent, start, end, kind); times in µs-like units.
    type Row = (u8, u8, u64, u64, SpanKind);

    fn build(rows: &[Row]) -> Trace {
        let spans = rows.iter().map(|&(id, parent, start, end, kind)| {
            let mut s = Span::new(TraceId([1; 16]), SpanId([0, 0, 0, 0, 0, 0, 0, id]));
            s.parent_id = (parent != 0).then_some(SpanId([0, 0, 0, 0, 0, 0, 0, parent]));
            s.start_ns = start;
            s.end_ns = end;
            s.kind = kind;
            s
        });
        let (mut traces, _) = assemble_all(spans.collect::<Vec<_>>());
        traces.remove(0)
    }

    /// Sections as (span id byte, start, end).
    fn path_of(t: &Trace, tolerance: f64) -> Vec<(u8, u64, u64)> {
        let config = CriticalPathConfig { sibling_overlap_tolerance: tolerance, ..CriticalPathConfig::default() };
        let cp = critical_path(t, &config);
        let covered: u64 = cp.sections.iter().map(Section::len_ns).sum();
        assert_eq!(covered + cp.gap_ns, cp.duration_ns, "sections and gaps tile the trace");
        cp.sections.iter().map(|s| (t.spans[s.span].span_id.0[7], s.start_ns, s.end_ns)).collect()
    }

    fn path(rows: &[Row]) -> Vec<(u8, u64, u64)> {
        path_of(&build(rows), 0.0)
    }

    const S: SpanKind = SpanKind::Server;

    #[test]
    fn jaeger_sequential_children() {
        // test1: C 1..101, D 20..40, E 50..60
        assert_eq!(
            path(&[(3, 0, 1, 101, S), (4, 3, 20, 40, S), (5, 3, 50, 60, S)]),
            vec![(3, 1, 20), (4, 20, 40), (3, 40, 50), (5, 50, 60), (3, 60, 101)]
        );
    }

    #[test]
    fn jaeger_overlapping_children() {
        // test2: X 1..101, A 10..50, C 20..60 — A still runs when C starts.
        assert_eq!(
            path(&[(9, 0, 1, 101, S), (1, 9, 10, 50, S), (3, 9, 20, 60, S)]),
            vec![(9, 1, 20), (3, 20, 60), (9, 60, 101)]
        );
    }

    #[test]
    fn children_outliving_preceding_or_outside_their_parent() {
        // outlives: truncated to the parent's end
        assert_eq!(path(&[(1, 0, 0, 100, S), (2, 1, 50, 150, S)]), vec![(1, 0, 50), (2, 50, 100)]);
        // starts before: clamped to the parent's start
        assert_eq!(path(&[(1, 0, 10, 100, S), (2, 1, 0, 50, S)]), vec![(2, 10, 50), (1, 50, 100)]);
        // covers the parent: clamped at both ends
        assert_eq!(path(&[(1, 0, 10, 100, S), (2, 1, 0, 150, S)]), vec![(2, 10, 100)]);
        // entirely after, and entirely before (each with a child): dropped with the subtree
        assert_eq!(
            path(&[
                (1, 0, 100, 200, S),
                (2, 1, 250, 300, S),
                (3, 2, 260, 270, S),
                (4, 1, 10, 50, S),
                (5, 4, 20, 30, S)
            ]),
            vec![(1, 100, 200)]
        );
        // a grandchild is checked against its parent's truncated interval
        assert_eq!(
            path(&[(1, 0, 0, 100, S), (2, 1, 50, 150, S), (3, 2, 90, 140, S)]),
            vec![(1, 0, 50), (2, 50, 90), (3, 90, 100)]
        );
    }

    #[test]
    fn consumers_of_producers_do_not_block() {
        let rows =
            [(1, 0, 0, 20, S), (2, 1, 1, 10, SpanKind::Producer), (3, 2, 5, 100, SpanKind::Consumer), (4, 3, 6, 90, S)];
        assert_eq!(path(&rows), vec![(1, 0, 1), (2, 1, 10), (1, 10, 20)]);
    }

    #[test]
    fn back_to_back_siblings_and_equal_ends() {
        // A ends exactly when B starts: A blocked P, so it is on the path.
        let rows = [(1, 0, 0, 100, S), (2, 1, 10, 50, S), (3, 1, 50, 90, S)];
        assert_eq!(path(&rows), vec![(1, 0, 10), (2, 10, 50), (3, 50, 90), (1, 90, 100)]);
        // Jaeger's strict rule charges A's time to P.
        let strict = CriticalPathConfig { link_back_to_back: false, ..CriticalPathConfig::default() };
        let cp = critical_path(&build(&rows), &strict);
        let got: Vec<(u64, u64)> = cp.sections.iter().map(|s| (s.start_ns, s.end_ns)).collect();
        assert_eq!(got, vec![(0, 50), (50, 90), (90, 100)]);
        // A chain of back-to-back calls, each starting when the last ended.
        assert_eq!(
            path(&[(1, 0, 0, 40, S), (2, 1, 0, 10, S), (3, 1, 10, 20, S), (4, 1, 20, 30, S), (5, 1, 30, 40, S)]),
            vec![(2, 0, 10), (3, 10, 20), (4, 20, 30), (5, 30, 40)]
        );
        // Equal ends: the earliest start wins, then the smaller id.
        assert_eq!(
            path(&[(1, 0, 0, 100, S), (3, 1, 20, 80, S), (2, 1, 10, 80, S)]),
            vec![(1, 0, 10), (2, 10, 80), (1, 80, 100)]
        );
        assert_eq!(
            path(&[(1, 0, 0, 100, S), (3, 1, 10, 80, S), (2, 1, 10, 80, S)]),
            vec![(1, 0, 10), (2, 10, 80), (1, 80, 100)]
        );
    }

    #[test]
    fn zero_duration_and_same_instant_children() {
        // A zero-length child never splits its parent's section, wherever it sits.
        assert_eq!(
            path(&[(1, 0, 0, 100, S), (2, 1, 30, 30, S), (3, 1, 50, 50, S), (4, 1, 100, 100, S), (5, 1, 0, 0, S)]),
            vec![(1, 0, 100)]
        );
        // Between two back-to-back siblings, at their common instant.
        assert_eq!(
            path(&[(1, 0, 0, 100, S), (2, 1, 10, 50, S), (3, 1, 50, 50, S), (4, 1, 50, 90, S)]),
            vec![(1, 0, 10), (2, 10, 50), (4, 50, 90), (1, 90, 100)]
        );
        // Siblings starting at the same instant: the one ending last is on the path.
        assert_eq!(
            path(&[(1, 0, 0, 100, S), (2, 1, 20, 60, S), (3, 1, 20, 70, S), (4, 1, 20, 40, S)]),
            vec![(1, 0, 20), (3, 20, 70), (1, 70, 100)]
        );
        // A zero-length root: an empty path, no panic.
        let cp = critical_path(&build(&[(1, 0, 5, 5, S), (2, 1, 5, 5, S)]), &CriticalPathConfig::default());
        assert_eq!((cp.sections.len(), cp.duration_ns, cp.gap_ns), (0, 0, 0));
    }

    #[test]
    fn overlap_tolerance_treats_slight_overlaps_as_sequential() {
        let t = build(&[(1, 0, 0, 100, S), (2, 1, 10, 51, S), (3, 1, 50, 90, S)]);
        assert_eq!(path_of(&t, 0.0), vec![(1, 0, 50), (3, 50, 90), (1, 90, 100)]);
        assert_eq!(path_of(&t, 0.02), vec![(1, 0, 10), (2, 10, 50), (3, 50, 90), (1, 90, 100)]);
    }

    #[test]
    fn several_roots_orphans_and_cycles() {
        // Two roots, an orphan (parent 9 missing) and a two-span cycle, joined
        // under one reconstructed root: 0..60 (the cycle is cut at 5, whose
        // child 4 is clamped to it), the gaps in no span.
        let t = build(&[(1, 0, 0, 10, S), (2, 0, 5, 20, S), (3, 9, 30, 40, S), (4, 5, 50, 70, S), (5, 4, 55, 60, S)]);
        let cp = critical_path(&t, &CriticalPathConfig::default());
        assert_eq!(cp.roots.len(), 4);
        assert_eq!((cp.start_ns, cp.duration_ns), (0, 60));
        // Root 1 overlaps root 2, which ends later: only 2 is on the path.
        assert_eq!(path_of(&t, 0.0), vec![(2, 5, 20), (3, 30, 40), (4, 55, 60)]);
        assert_eq!(cp.gap_ns, 5 + 10 + 15);
    }

    #[test]
    fn orphans_of_one_missing_parent_share_a_reconstructed_parent() {
        // The root 0..30 and, under missing parent 9, sequential orphans
        // 40..60, 60..90 and an overlapped one 45..55: one timeline, 0..90.
        let t = build(&[(1, 0, 0, 30, S), (2, 9, 40, 60, S), (3, 9, 60, 90, S), (4, 9, 45, 55, S)]);
        let cp = critical_path(&t, &CriticalPathConfig::default());
        assert_eq!((cp.fragments, cp.duration_ns, cp.gap_ns), (2, 90, 10));
        assert_eq!(path_of(&t, 0.0), vec![(1, 0, 30), (2, 40, 60), (3, 60, 90)]);
        // Sections never overlap and never exceed the trace.
        assert!(cp.sections.windows(2).all(|w| w[0].end_ns <= w[1].start_ns));
    }

    #[test]
    fn spans_outside_their_parent_are_reported() {
        // Root 0..10; child 2 starts after it ended (async), with a child of
        // its own until 500; child 3 outlives the root by 5; child 4 inside.
        let t = build(&[(1, 0, 0, 10, S), (2, 1, 20, 20, S), (5, 2, 30, 500, S), (3, 1, 8, 15, S), (4, 1, 2, 4, S)]);
        let cp = critical_path(&t, &CriticalPathConfig::default());
        let outside: Vec<(u8, u64)> = cp.outside.iter().map(|o| (t.spans[o.span].span_id.0[7], o.outside_ns)).collect();
        assert_eq!(outside, vec![(2, 480), (3, 5)]);
        assert_eq!(cp.duration_ns, 10);
        // A child outside a truncated parent but inside the parent's own interval is not named.
        let t = build(&[(1, 0, 0, 10, S), (2, 1, 5, 30, S), (3, 2, 20, 25, S)]);
        let cp = critical_path(&t, &CriticalPathConfig::default());
        assert_eq!(cp.outside.iter().map(|o| t.spans[o.span].span_id.0[7]).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn input_order_does_not_matter() {
        let rows = [(1, 0, 0, 100, S), (2, 1, 10, 60, S), (3, 1, 20, 60, S), (4, 3, 25, 40, S), (5, 1, 70, 80, S)];
        let expected = path(&rows);
        let mut reversed = rows;
        reversed.reverse();
        assert_eq!(path(&reversed), expected);
        let mut rotated = rows;
        rotated.rotate_left(2);
        assert_eq!(path(&rotated), expected);
    }

    #[test]
    fn deep_and_wide_traces() {
        // 10,000 nested spans, each 1 unit shorter at both ends.
        let depth = 10_000u64;
        let deep: Vec<Span> = (0..depth)
            .map(|i| {
                let mut s = Span::new(TraceId([2; 16]), SpanId((i + 1).to_be_bytes()));
                s.parent_id = (i > 0).then_some(SpanId(i.to_be_bytes()));
                s.start_ns = 1_000_000 + i;
                s.end_ns = 1_000_000 + 3 * depth - i;
                s
            })
            .collect();
        let (traces, _) = assemble_all(deep);
        let cp = critical_path(&traces[0], &CriticalPathConfig::default());
        assert_eq!(cp.sections.len(), 2 * depth as usize - 1);
        assert_eq!(cp.duration_ns, 3 * depth);
        // 100,000 sequential children of one root.
        let width = 100_000u64;
        let mut wide = vec![{
            let mut r = Span::new(TraceId([3; 16]), SpanId(u64::MAX.to_be_bytes()));
            r.start_ns = 1;
            r.end_ns = 1 + 3 * width;
            r
        }];
        for i in 0..width {
            let mut s = Span::new(TraceId([3; 16]), SpanId((i + 1).to_be_bytes()));
            s.parent_id = Some(SpanId(u64::MAX.to_be_bytes()));
            s.start_ns = 2 + 3 * i;
            s.end_ns = 3 + 3 * i;
            wide.push(s);
        }
        let (traces, _) = assemble_all(wide);
        let cp = critical_path(&traces[0], &CriticalPathConfig::default());
        assert_eq!(cp.sections.iter().filter(|s| traces[0].spans[s.span].parent_id.is_some()).count(), width as usize);
        assert_eq!(cp.sections.iter().map(Section::len_ns).sum::<u64>(), 3 * width);
    }

    #[test]
    fn self_time_subtracts_the_union_of_children() {
        let t = build(&[(1, 0, 0, 100, S), (2, 1, 10, 50, S), (3, 1, 40, 90, S), (4, 1, 95, 120, S)]);
        let st = self_times(&t);
        let of = |id: u8| st[t.spans.iter().position(|s| s.span_id.0[7] == id).unwrap()];
        // children cover 10..90 and 95..100
        assert_eq!(of(1), 100 - 80 - 5);
        assert_eq!(of(2), 40);
        let mut intervals = Vec::new();
        for (i, &own) in st.iter().enumerate() {
            assert_eq!(self_time(&t, i, &mut intervals), own, "span {i} alone");
        }
    }
}
