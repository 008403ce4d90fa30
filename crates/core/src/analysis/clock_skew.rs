//! Jaeger's clock-skew adjuster: shifts a span (and its events and
//! descendants on the same host) so that it sits inside its parent when its
//! host's clock evidently disagrees with the parent's. Off unless asked for;
//! roots are never moved; shifts beyond a limit are only reported.

use crate::model::{Dictionary, Span, Trace, Value};

/// What an adjustment pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkewReport {
    /// Spans whose timestamps were shifted.
    pub adjusted: u64,
    /// Spans whose computed shift exceeded the limit and was not applied.
    pub over_limit: u64,
}

impl SkewReport {
    /// Adds another report's counts.
    pub fn merge(&mut self, other: &SkewReport) {
        self.adjusted += other.adjusted;
        self.over_limit += other.over_limit;
    }
}

/// The host key of a span's resource, as Jaeger picks it: `host.id`, else
/// `host.ip` (first element of an array), else `host.name`, else empty.
pub fn host_key(dict: &Dictionary, span: &Span) -> String {
    let resource = dict.resource_of(span.resource);
    for key in ["host.id", "host.ip"] {
        let Some(sym) = dict.strings.get(key) else { continue };
        if let Some(attr) = resource.attributes.iter().find(|a| a.key == sym) {
            let text = match &attr.value {
                Value::Array(items) => items.first().map(Value::to_text).unwrap_or_default(),
                v => v.to_text(),
            };
            if !text.is_empty() {
                return text;
            }
        }
    }
    dict.resolve(resource.host).to_string()
}

fn delta(child: (u64, u64), parent: (u64, u64)) -> i64 {
    let (cs, ce) = (child.0 as i64, child.1 as i64);
    let (ps, pe) = (parent.0 as i64, parent.1 as i64);
    let (cd, pd) = (ce - cs, pe - ps);
    if cd > pd {
        return if cs < ps { ps - cs } else { 0 };
    }
    if cs >= ps && ce <= pe {
        return 0;
    }
    let latency = (pd - cd) / 2;
    ps + latency - cs
}

fn shift(v: u64, d: i64) -> u64 {
    v.saturating_add_signed(d)
}

/// Adjusts `trace` in place. `host(i)` is the host key of span `i` (its
/// resource's `host.id`, `host.ip` or `host.name`, empty when unknown);
/// shifts larger than `max_delta_ns` in size are not applied.
pub fn adjust(trace: &mut Trace, host: &dyn Fn(usize) -> String, max_delta_ns: u64) -> SkewReport {
    let n = trace.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        if let Some(p) = trace.parent(i) {
            children[p].push(i);
        }
    }
    let hosts: Vec<String> = (0..n).map(host).collect();
    let mut report = SkewReport::default();
    // (span, inherited host, inherited delta)
    let mut stack: Vec<(usize, usize, i64)> = Vec::new();
    for root in trace.roots().collect::<Vec<_>>() {
        if !trace.spans[root].has_timing() {
            continue;
        }
        for &c in &children[root] {
            stack.push((c, root, 0));
        }
        while let Some((i, inherited_host, inherited_delta)) = stack.pop() {
            let p = trace.parent(i).expect("non-roots have parents");
            if !trace.spans[i].has_timing() || !trace.spans[p].has_timing() {
                continue;
            }
            let (host_from, d) = if hosts[i] != hosts[inherited_host] || hosts[i].is_empty() {
                let parent = (trace.spans[p].start_ns, trace.spans[p].end_ns);
                (i, delta((trace.spans[i].start_ns, trace.spans[i].end_ns), parent))
            } else {
                (inherited_host, inherited_delta)
            };
            if d != 0 {
                if d.unsigned_abs() > max_delta_ns {
                    report.over_limit += 1;
                } else {
                    let span = &mut trace.spans[i];
                    span.start_ns = shift(span.start_ns, d);
                    span.end_ns = shift(span.end_ns, d);
                    if let Some(extra) = span.extra_if_any_mut() {
                        for e in &mut extra.events {
                            e.time_ns = shift(e.time_ns, d);
                        }
                    }
                    report.adjusted += 1;
                }
            }
            for &c in &children[i] {
                stack.push((c, host_from, d));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::assemble_all;
    use crate::model::{Event, Span, SpanId, Sym, TraceId};

    const MS: u64 = 1_000_000;

    /// (id, parent id or 0, host, start ms, duration ms)
    type Row = (u8, u8, &'static str, u64, u64);

    /// (id, parent, host, start ms, duration ms) with an epoch offset so
    /// nothing underflows.
    fn trace(spans: &[Row]) -> (Trace, Vec<&'static str>) {
        let built: Vec<Span> = spans
            .iter()
            .map(|&(id, parent, _, start, dur)| {
                let mut s = Span::new(TraceId([1; 16]), SpanId([0, 0, 0, 0, 0, 0, 0, id]));
                s.parent_id = (parent != 0).then_some(SpanId([0, 0, 0, 0, 0, 0, 0, parent]));
                s.start_ns = 1_000 * MS + start * MS;
                s.end_ns = s.start_ns + dur * MS;
                s.service = Sym::default();
                s
            })
            .collect();
        let (mut traces, _) = assemble_all(built);
        let t = traces.remove(0);
        let hosts = t
            .spans
            .iter()
            .map(|s| spans.iter().find(|x| SpanId([0, 0, 0, 0, 0, 0, 0, x.0]) == s.span_id).unwrap().2)
            .collect();
        (t, hosts)
    }

    fn run(spans: &[Row], max_ms: u64) -> (Vec<u64>, SkewReport) {
        let (mut t, hosts) = trace(spans);
        let report = adjust(&mut t, &|i| hosts[i].to_string(), max_ms * MS);
        let starts = spans
            .iter()
            .map(|x| {
                let s = t.spans.iter().find(|s| s.span_id == SpanId([0, 0, 0, 0, 0, 0, 0, x.0])).unwrap();
                (s.start_ns - 1_000 * MS) / MS
            })
            .collect();
        (starts, report)
    }

    #[test]
    fn jaeger_test_vector() {
        // (parent, child, max) -> child start after
        let cases: [(&[Row], u64, u64, SkewReport); 8] = [
            (&[(1, 0, "a", 0, 100), (2, 1, "a", 10, 50)], 0, 10, SkewReport::default()),
            (&[(1, 0, "a", 10, 100), (2, 1, "a", 0, 50)], 1000, 0, SkewReport::default()),
            (&[(1, 0, "a", 10, 100), (2, 1, "b", 20, 50)], 1000, 20, SkewReport::default()),
            (&[(1, 0, "a", 10, 100), (2, 1, "b", 20, 150)], 1000, 20, SkewReport::default()),
            (&[(1, 0, "a", 10, 100), (2, 1, "b", 0, 50)], 1000, 35, SkewReport { adjusted: 1, over_limit: 0 }),
            (&[(1, 0, "a", 10, 100), (2, 1, "b", 0, 150)], 1000, 10, SkewReport { adjusted: 1, over_limit: 0 }),
            (&[(1, 0, "a", 10, 100), (2, 1, "b", 0, 50)], 10, 0, SkewReport { adjusted: 0, over_limit: 1 }),
            (&[(1, 0, "a", 10, 100), (2, 1, "b", 80, 50)], 10, 80, SkewReport { adjusted: 0, over_limit: 1 }),
        ];
        for (spans, max, want, report) in cases {
            let (starts, got) = run(spans, max);
            assert_eq!(starts[1], want, "{spans:?}");
            assert_eq!(got, report, "{spans:?}");
        }
        // Grandchild on the child's host inherits the child's shift.
        let (starts, _) = run(&[(1, 0, "a", 10, 100), (2, 1, "b", 50, 70), (3, 2, "b", 60, 20)], 1000);
        assert_eq!(starts, vec![10, 25, 35]);
    }

    #[test]
    fn events_move_and_siblings_do_not_leak() {
        let (mut t, hosts) = trace(&[
            (1, 0, "a", 10, 100),
            (2, 1, "b", 0, 50),
            (3, 2, "c", 0, 10),
            (4, 2, "b", 5, 10),
            (5, 2, "b", 10, 10),
        ]);
        let b = t.spans.iter().position(|s| s.span_id.0[7] == 2).unwrap();
        let at = t.spans[b].start_ns + 5 * MS;
        t.spans[b].extra_mut().events.push(Event { time_ns: at, name: Sym::default(), attributes: vec![] });
        adjust(&mut t, &|i| hosts[i].to_string(), 1000 * MS);
        let start = |id: u8| (t.spans.iter().find(|s| s.span_id.0[7] == id).unwrap().start_ns - 1_000 * MS) / MS;
        assert_eq!([start(2), start(3), start(4), start(5)], [35, 55, 40, 45]);
        assert_eq!(t.spans[b].events()[0].time_ns, 1_000 * MS + 40 * MS);
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let mut spans: Vec<Span> = Vec::new();
        for i in 0..10_000u64 {
            let mut s = Span::new(TraceId([1; 16]), SpanId((i + 1).to_be_bytes()));
            s.parent_id = (i > 0).then_some(SpanId(i.to_be_bytes()));
            s.start_ns = 1_000 * MS + 10 * MS;
            s.end_ns = s.start_ns + 100 * MS;
            spans.push(s);
        }
        spans.last_mut().unwrap().start_ns = 1_000 * MS;
        spans.last_mut().unwrap().end_ns = 1_000 * MS + 50 * MS;
        let (mut traces, _) = assemble_all(spans);
        let t = &mut traces[0];
        let leaf = t.spans.iter().position(|s| s.span_id == SpanId(10_000u64.to_be_bytes())).unwrap();
        let report = adjust(t, &|i| if i == leaf { "b".into() } else { "a".into() }, 1000 * MS);
        assert_eq!(report.adjusted, 1);
        assert_eq!((t.spans[leaf].start_ns - 1_000 * MS) / MS, 35);
    }
}
