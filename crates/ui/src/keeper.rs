//! [`TraceKeeper`]: which whole traces a report carries, chosen while the
//! traces stream past — the slowest, the slowest failing, and for the
//! comparison a typical trace of the slowest one's endpoint — within a
//! budget of spans, so memory and the report's size stay bounded whatever
//! the input's size.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use tracelens_core::analysis::critical_path::CriticalPath;
use tracelens_core::model::{Dictionary, Trace, stable_hash64};

use crate::timeline::Timeline;

/// What to keep.
#[derive(Clone, Copy, Debug)]
pub struct KeeperConfig {
    /// Slowest traces kept.
    pub slowest: usize,
    /// Slowest failing traces kept.
    pub failing: usize,
    /// Spans of the slowest and failing traces together (each trace
    /// counted once); a trace that would not fit is left out (and
    /// counted). Traces sampled for the comparison are held within the
    /// same number again, each at most a twentieth of it.
    pub max_spans: usize,
}

impl Default for KeeperConfig {
    fn default() -> Self {
        KeeperConfig { slowest: 10, failing: 10, max_spans: 150_000 }
    }
}

/// Traces sampled per endpoint for the comparison's typical trace.
const SAMPLE_PER_ENDPOINT: usize = 7;
/// Endpoints sampled (the first seen; later ones are not compared).
const MAX_ENDPOINTS: usize = 2_000;
/// A sampled trace has at most this share of the budget's spans.
const SAMPLED_TRACE_SHARE: usize = 20;

type Rank = (u64, std::cmp::Reverse<[u8; 16]>);

/// A kept trace: its timeline, with what ranks it.
#[derive(Clone, Debug)]
struct Kept {
    duration_ns: u64,
    /// Ties broken by trace id, so the choice does not depend on order.
    tie: [u8; 16],
    /// Shared by every list that keeps the trace.
    timeline: Arc<Timeline>,
}

impl Kept {
    fn rank(&self) -> Rank {
        (self.duration_ns, std::cmp::Reverse(self.tie))
    }

    fn len(&self) -> usize {
        self.timeline.len()
    }
}

/// Keeps the `n` highest-ranked entries.
#[derive(Debug)]
struct Top {
    n: usize,
    /// Highest rank first.
    kept: Vec<Kept>,
}

impl Top {
    fn new(n: usize) -> Top {
        Top { n, kept: Vec::new() }
    }

    fn would_keep(&self, rank: Rank) -> bool {
        self.n > 0 && (self.kept.len() < self.n || self.kept.last().is_some_and(|k| k.rank() < rank))
    }

    /// The (id, spans) of the entries kept if `new` came in.
    fn after(&self, new: Option<(Rank, [u8; 16], usize)>) -> impl Iterator<Item = ([u8; 16], usize)> + '_ {
        let mut out = self.kept.len().min(self.n);
        if let Some((rank, _, _)) = new
            && self.kept.len() >= self.n
            && self.kept.last().is_some_and(|k| k.rank() < rank)
        {
            out -= 1; // the lowest is pushed out
        }
        self.kept[..out].iter().map(|k| (k.tie, k.len())).chain(new.map(|(_, id, len)| (id, len)))
    }

    fn push(&mut self, kept: Kept) {
        self.kept.push(kept);
        self.kept.sort_by_key(|k| std::cmp::Reverse(k.rank()));
        self.kept.truncate(self.n);
    }
}

/// An endpoint's sample: the traces with the smallest id hashes, a
/// uniform sample that does not depend on arrival order.
#[derive(Debug, Default)]
struct Sample {
    /// Smallest hash first.
    kept: Vec<(u64, Kept)>,
}

/// Chooses the traces a report shows.
#[derive(Debug)]
pub struct TraceKeeper {
    config: KeeperConfig,
    slowest: Top,
    failing: Top,
    samples: FxHashMap<String, Sample>,
    /// Spans held in samples.
    sample_spans: usize,
    /// Traces that ranked but did not fit the span budget.
    left_out: u64,
}

/// The kept traces, with which list each belongs to.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeptTraces {
    /// Every kept trace once.
    pub traces: Vec<Timeline>,
    /// Indices into `traces`, slowest first.
    pub slowest: Vec<usize>,
    /// Indices of failing traces, slowest first.
    pub failing: Vec<usize>,
    /// The comparison's pair: a typical trace of the slowest trace's
    /// endpoint, then the slowest.
    pub comparison: Option<[usize; 2]>,
    /// Traces that would have been shown but did not fit the span budget.
    pub left_out: u64,
}

impl TraceKeeper {
    /// A keeper with `config`.
    pub fn new(config: KeeperConfig) -> TraceKeeper {
        TraceKeeper {
            slowest: Top::new(config.slowest),
            failing: Top::new(config.failing),
            config,
            samples: FxHashMap::default(),
            sample_spans: 0,
            left_out: 0,
        }
    }

    /// The endpoint `trace` samples for, if it is to be sampled.
    fn sample_slot(&self, dict: &Dictionary, trace: &Trace, hash: u64) -> Option<String> {
        let len = trace.len();
        if len > self.config.max_spans / SAMPLED_TRACE_SHARE {
            return None;
        }
        let root = trace.roots().min_by_key(|&i| (trace.spans[i].start_ns, i))?;
        let endpoint = format!("{} {}", dict.resolve(trace.spans[root].service), dict.resolve(trace.spans[root].name));
        let (ranks, freed) = match self.samples.get(&endpoint) {
            Some(s) if s.kept.len() < SAMPLE_PER_ENDPOINT => (true, 0),
            Some(s) => (s.kept.last().is_some_and(|(h, _)| *h > hash), s.kept.last().map_or(0, |(_, k)| k.len())),
            None => (self.samples.len() < MAX_ENDPOINTS, 0),
        };
        (ranks && self.sample_spans - freed + len <= self.config.max_spans).then_some(endpoint)
    }

    /// Considers one trace with its critical path.
    pub fn add(&mut self, dict: &Dictionary, trace: &Trace, cp: &CriticalPath) {
        if trace.is_empty() {
            return;
        }
        // Ranked by what the waterfall shows: earliest start to latest end.
        let start = trace.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
        let end = trace.spans.iter().map(|s| s.end_ns.max(s.start_ns)).max().unwrap_or(0);
        let duration_ns = end - start;
        let rank = (duration_ns, std::cmp::Reverse(trace.trace_id.0));
        let len = trace.len();
        let ranks_slowest = self.slowest.would_keep(rank);
        let ranks_failing = trace.spans.iter().any(|s| s.is_error()) && self.failing.would_keep(rank);
        // The lists' traces (each once) must fit the budget with this one in.
        let fits = (ranks_slowest || ranks_failing) && {
            let new = Some((rank, trace.trace_id.0, len));
            let mut held: Vec<([u8; 16], usize)> = self
                .slowest
                .after(new.filter(|_| ranks_slowest))
                .chain(self.failing.after(new.filter(|_| ranks_failing)))
                .collect();
            held.sort_unstable();
            held.dedup_by_key(|(id, _)| *id);
            held.iter().map(|(_, n)| n).sum::<usize>() <= self.config.max_spans
        };
        let (to_slowest, to_failing) = (ranks_slowest && fits, ranks_failing && fits);
        if (ranks_slowest || ranks_failing) && !fits {
            self.left_out += 1;
        }
        let hash = stable_hash64(&trace.trace_id.0, 0);
        let to_sample = self.sample_slot(dict, trace, hash);
        if !(to_slowest || to_failing || to_sample.is_some()) {
            return;
        }
        let kept = Kept { duration_ns, tie: trace.trace_id.0, timeline: Arc::new(Timeline::new(dict, trace, cp)) };
        if to_failing {
            self.failing.push(kept.clone());
        }
        if to_slowest {
            self.slowest.push(kept.clone());
        }
        if let Some(endpoint) = to_sample {
            let sample = self.samples.entry(endpoint).or_default();
            self.sample_spans += len;
            sample.kept.push((hash, kept));
            sample.kept.sort_by_key(|(h, k)| (*h, k.tie));
            while sample.kept.len() > SAMPLE_PER_ENDPOINT {
                let (_, out) = sample.kept.pop().expect("over the sample size");
                self.sample_spans -= out.len();
            }
        }
    }

    /// The traces chosen.
    pub fn finish(self) -> KeptTraces {
        let mut traces: Vec<Timeline> = Vec::new();
        let mut index = |timeline: &Arc<Timeline>| -> usize {
            if let Some(i) = traces.iter().position(|t| t.id == timeline.id) {
                return i;
            }
            traces.push(Timeline::clone(timeline));
            traces.len() - 1
        };
        let slowest: Vec<usize> = self.slowest.kept.iter().map(|k| index(&k.timeline)).collect();
        let failing: Vec<usize> = self.failing.kept.iter().map(|k| index(&k.timeline)).collect();
        let comparison = self.slowest.kept.first().and_then(|slowest| {
            let sample = self.samples.get(&slowest.timeline.endpoint)?;
            let mut others: Vec<&Kept> =
                sample.kept.iter().map(|(_, k)| k).filter(|k| k.timeline.id != slowest.timeline.id).collect();
            others.sort_by_key(|k| k.rank());
            let typical = others.get(others.len().checked_sub(1)? / 2)?;
            Some([index(&typical.timeline), index(&slowest.timeline)])
        });
        KeptTraces { traces, slowest, failing, comparison, left_out: self.left_out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::analysis::critical_path::critical_path;
    use tracelens_core::model::Warnings;
    use tracelens_core::read::{ReadOptions, read_spans};

    /// The shop fixture's two traces: a 130 ms checkout with a failed
    /// payment (11 spans) and a 30 ms page view (3 spans).
    fn shop() -> (Dictionary, Vec<Trace>) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json");
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        let file = std::fs::File::open(path).unwrap();
        read_spans(path, file, &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s)).unwrap();
        let (traces, _) = tracelens_core::assemble::assemble_all(spans);
        (dict, traces)
    }

    fn keep(config: KeeperConfig) -> KeptTraces {
        let (dict, traces) = shop();
        let mut keeper = TraceKeeper::new(config);
        for t in &traces {
            keeper.add(&dict, t, &critical_path(t, &Default::default()));
        }
        keeper.finish()
    }

    #[test]
    fn the_slowest_and_failing_traces_are_kept_once_each() {
        let kept = keep(KeeperConfig::default());
        assert_eq!(kept.traces.len(), 2);
        let ids: Vec<&str> = kept.slowest.iter().map(|&i| kept.traces[i].id.as_str()).collect();
        assert_eq!(ids, ["0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"]);
        assert_eq!(kept.failing, [kept.slowest[0]]);
        assert_eq!(kept.traces[kept.slowest[0]].duration_ns, 130_000_000);
        // Two endpoints, one trace each: nothing to compare with.
        assert_eq!(kept.comparison, None);
        assert_eq!(kept.left_out, 0);
    }

    #[test]
    fn the_span_budget_leaves_out_what_does_not_fit() {
        // 10 spans: the 11-span trace does not fit; the 3-span one does.
        let kept = keep(KeeperConfig { max_spans: 10, ..KeeperConfig::default() });
        assert_eq!(kept.traces.len(), 1);
        assert_eq!(kept.traces[0].id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(kept.left_out, 1);
        // One slot and 11 spans: the slower trace takes it from the faster.
        let kept = keep(KeeperConfig { slowest: 1, failing: 0, max_spans: 11 });
        assert_eq!((kept.slowest.len(), kept.failing.len(), kept.left_out), (1, 0, 0));
        // A trace in both lists counts once: 11 + 3 spans fit 14.
        let kept = keep(KeeperConfig { slowest: 2, failing: 2, max_spans: 14 });
        assert_eq!((kept.traces.len(), kept.slowest.len(), kept.failing.len(), kept.left_out), (2, 2, 1, 0));
        assert_eq!(kept.traces[kept.slowest[0]].id, "0af7651916cd43dd8448eb211c80319c");
    }
}
