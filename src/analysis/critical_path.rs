//! Critical path per trace, with the semantics of Jaeger's critical-path
//! view, and exclusive (self) time per span.
//!
//! Per root (spans without a parent in the trace, orphans included; ordered
//! by start, then span id):
//! 1. Build the blocking tree parents first; a CONSUMER child of a PRODUCER
//!    does not block its caller and is pruned with its subtree; spans
//!    without usable timing are pruned too.
//! 2. Sanitize children against their already-sanitized parent: drop those
//!    entirely outside, truncate those that end late, clamp those that start
//!    early (both ends when they cover the parent).
//! 3. Order children by end descending, start ascending, span id ascending.
//! 4. Walk back from the root's end: at each span, the last-finishing child
//!    that ends strictly before the cursor is on the path; time not covered
//!    by such a child belongs to the span itself.
//!
//! Sections tile each root's interval exactly once; zero-length sections
//! are not emitted. Everything is iterative (deep traces cannot overflow the
//! stack) and O(n log n).

use crate::model::{SpanKind, Trace};

/// Critical-path settings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CriticalPathConfig {
    /// Siblings overlapping by less than this fraction of their parent's
    /// duration count as sequential (CRISP uses 0.01). Default 0.
    pub sibling_overlap_tolerance: f64,
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

/// The critical path of one trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CriticalPath {
    /// Indices of the roots walked, in order.
    pub roots: Vec<usize>,
    /// Sections in time order, root after root.
    pub sections: Vec<Section>,
    /// Total length of the roots' intervals (= the sum of the sections).
    pub duration_ns: u64,
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

/// Computes the critical path of `trace`.
pub fn critical_path(trace: &Trace, config: &CriticalPathConfig) -> CriticalPath {
    let spans = &trace.spans;
    let n = spans.len();
    let children = Children::of(trace);
    let mut roots: Vec<usize> = trace.roots().filter(|&i| spans[i].has_timing()).collect();
    roots.sort_by_key(|&i| (spans[i].start_ns, spans[i].span_id));

    // Sanitized working copies of the times, and each span's blocking children.
    let mut start: Vec<u64> = spans.iter().map(|s| s.start_ns).collect();
    let mut end: Vec<u64> = spans.iter().map(|s| s.end_ns).collect();
    // Each span's blocking children, in its slot of `children` (a subset).
    let mut kids = vec![0usize; children.items.len()];
    let mut kid_count = vec![0usize; n];
    let kids_of = |p: usize, count: usize| children.offsets[p]..children.offsets[p] + count;
    let mut next = vec![0usize; n];
    let mut stack = Vec::new();
    let mut visited: Vec<usize> = Vec::new();
    let mut emitted: Vec<Section> = Vec::new();
    let mut out = CriticalPath::default();
    for &root in &roots {
        // 1-3: blocking tree, sanitized parents first (explicit stack).
        visited.clear();
        stack.push(root);
        while let Some(p) = stack.pop() {
            visited.push(p);
            let (ps, pe) = (start[p], end[p]);
            for &c in children.get(p) {
                let child = &spans[c];
                if !child.has_timing() || (spans[p].kind == SpanKind::Producer && child.kind == SpanKind::Consumer) {
                    continue;
                }
                let (cs, ce) = (start[c], end[c]);
                if cs >= pe || (cs < ps && ce <= ps) {
                    continue; // entirely outside the parent: dropped with its subtree
                }
                start[c] = cs.max(ps);
                end[c] = ce.min(pe);
                kids[children.offsets[p] + kid_count[p]] = c;
                kid_count[p] += 1;
                stack.push(c);
            }
            kids[kids_of(p, kid_count[p])].sort_by(|&a, &b| {
                end[b].cmp(&end[a]).then(start[a].cmp(&start[b])).then(spans[a].span_id.cmp(&spans[b].span_id))
            });
        }

        // 4: walk back from the root's end; sections come out newest first.
        // `upper` is the cursor; `entered` means we just stepped into `s`
        // (Jaeger's "no returning child"), where any child ending by `upper`
        // qualifies; after returning from a child, only children ending
        // strictly before that child's start do.
        emitted.clear();
        let mut s = root;
        let mut upper = end[root];
        let mut entered = true;
        loop {
            // With a tolerance, a sibling ending a little after the cursor
            // still counts as having finished before it (CRISP's allowance).
            let tolerance = (config.sibling_overlap_tolerance * (end[s] - start[s]) as f64) as u64;
            let limit = upper.saturating_add(tolerance);
            let list = &kids[kids_of(s, kid_count[s])];
            let mut k = next[s];
            // The cursor only moves back, so a skipped child stays skipped.
            while k < list.len() {
                let c = list[k];
                let ok = if entered { end[c] <= upper } else { end[c] < limit && start[c] < upper };
                if ok {
                    break;
                }
                k += 1;
            }
            if let Some(&c) = list.get(k) {
                let child_end = end[c].min(upper);
                if child_end < upper {
                    emitted.push(Section { span: s, start_ns: child_end, end_ns: upper });
                }
                next[s] = k + 1;
                s = c;
                upper = child_end;
                entered = true;
            } else {
                next[s] = k;
                if start[s] < upper {
                    emitted.push(Section { span: s, start_ns: start[s], end_ns: upper });
                }
                if s == root {
                    break;
                }
                upper = start[s];
                entered = false;
                s = trace.parent(s).expect("spans on the path below a root have a parent");
            }
        }
        out.duration_ns += end[root] - start[root];
        out.roots.push(root);
        out.sections.extend(emitted.drain(..).rev());
        for &v in &visited {
            kid_count[v] = 0;
            next[v] = 0;
        }
    }
    out
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
        let cp = critical_path(t, &CriticalPathConfig { sibling_overlap_tolerance: tolerance });
        let covered: u64 = cp.sections.iter().map(Section::len_ns).sum();
        assert_eq!(covered, cp.duration_ns, "sections tile the roots");
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
        // B ends 90; A ends exactly when B starts: not strictly before, so P owns 0..50.
        assert_eq!(
            path(&[(1, 0, 0, 100, S), (2, 1, 10, 50, S), (3, 1, 50, 90, S)]),
            vec![(1, 0, 50), (3, 50, 90), (1, 90, 100)]
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
    fn overlap_tolerance_treats_slight_overlaps_as_sequential() {
        let t = build(&[(1, 0, 0, 100, S), (2, 1, 10, 51, S), (3, 1, 50, 90, S)]);
        assert_eq!(path_of(&t, 0.0), vec![(1, 0, 50), (3, 50, 90), (1, 90, 100)]);
        assert_eq!(path_of(&t, 0.02), vec![(1, 0, 10), (2, 10, 50), (3, 50, 90), (1, 90, 100)]);
    }

    #[test]
    fn several_roots_orphans_and_cycles() {
        // Two roots, an orphan (parent 9 missing) and a two-span cycle.
        let t = build(&[(1, 0, 0, 10, S), (2, 0, 5, 20, S), (3, 9, 30, 40, S), (4, 5, 50, 70, S), (5, 4, 55, 60, S)]);
        let p = path_of(&t, 0.0);
        assert_eq!(p[0], (1, 0, 10));
        assert_eq!(p[1], (2, 5, 20));
        assert_eq!(p[2], (3, 30, 40));
        assert_eq!(critical_path(&t, &CriticalPathConfig::default()).roots.len(), 4);
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
