//! [`TraceKeeper`]: which whole traces a report carries, chosen while the
//! traces stream past — the slowest, the slowest failing, and for the
//! comparison a typical trace of the slowest one's endpoint — within a
//! budget of spans, so memory and the report's size stay bounded whatever
//! the input's size.

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
    /// Spans over all kept traces; a trace that would not fit is left out
    /// (and counted).
    pub max_spans: usize,
}

impl Default for KeeperConfig {
    fn default() -> Self {
        KeeperConfig { slowest: 10, failing: 10, max_spans: 200_000 }
    }
}

/// Traces sampled per endpoint for the comparison's typical trace.
const SAMPLE_PER_ENDPOINT: usize = 7;
/// Endpoints sampled (the first seen; later ones are not compared).
const MAX_ENDPOINTS: usize = 2_000;

/// A kept trace: its timeline, with what ranks it.
#[derive(Clone, Debug)]
struct Kept {
    duration_ns: u64,
    /// Ties broken by trace id, so the choice does not depend on order.
    tie: [u8; 16],
    timeline: Timeline,
}

impl Kept {
    fn rank(&self) -> (u64, std::cmp::Reverse<[u8; 16]>) {
        (self.duration_ns, std::cmp::Reverse(self.tie))
    }
}

/// Keeps the `n` highest-ranked entries.
#[derive(Debug, Default)]
struct Top {
    n: usize,
    kept: Vec<Kept>,
}

impl Top {
    fn would_keep(&self, rank: (u64, std::cmp::Reverse<[u8; 16]>)) -> bool {
        self.kept.len() < self.n || self.kept.iter().any(|k| k.rank() < rank)
    }

    /// Adds `kept`; the spans of what was pushed out.
    fn push(&mut self, kept: Kept) -> usize {
        self.kept.push(kept);
        self.kept.sort_by_key(|k| std::cmp::Reverse(k.rank()));
        self.kept.drain(self.n.min(self.kept.len())..).map(|k| k.timeline.len()).sum()
    }
}

/// An endpoint's sample: the traces with the smallest id hashes, a
/// uniform sample that does not depend on arrival order.
#[derive(Debug, Default)]
struct Sample {
    kept: Vec<(u64, Kept)>,
}

/// Chooses the traces a report shows.
#[derive(Debug)]
pub struct TraceKeeper {
    config: KeeperConfig,
    slowest: Top,
    failing: Top,
    samples: FxHashMap<String, Sample>,
    /// Traces that ranked but did not fit the span budget.
    left_out: u64,
    /// Spans held over all lists and samples.
    spans: usize,
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
            slowest: Top { n: config.slowest, kept: Vec::new() },
            failing: Top { n: config.failing, kept: Vec::new() },
            config,
            samples: FxHashMap::default(),
            left_out: 0,
            spans: 0,
        }
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
        let failing = trace.spans.iter().any(|s| s.is_error());
        let to_slowest = self.slowest.would_keep(rank);
        let to_failing = failing && self.failing.would_keep(rank);
        let hash = stable_hash64(&trace.trace_id.0, 0);
        let endpoint = trace
            .roots()
            .min_by_key(|&i| (trace.spans[i].start_ns, i))
            .map(|i| (trace.spans[i].service, trace.spans[i].name));
        let endpoint = endpoint.map(|(s, n)| format!("{} {}", dict.resolve(s), dict.resolve(n)));
        let to_sample = endpoint.as_ref().is_some_and(|e| match self.samples.get(e) {
            Some(s) => s.kept.len() < SAMPLE_PER_ENDPOINT || s.kept.iter().any(|(h, _)| *h > hash),
            None => self.samples.len() < MAX_ENDPOINTS,
        });
        if !(to_slowest || to_failing || to_sample) {
            return;
        }
        // A trace that would not fit is left out rather than evicting
        // others: the budget bounds memory while traces stream past.
        let copies = usize::from(to_slowest) + usize::from(to_failing) + usize::from(to_sample);
        if self.spans + copies * trace.len() > self.config.max_spans {
            if to_slowest || to_failing {
                self.left_out += 1;
            }
            return;
        }
        let kept = Kept { duration_ns, tie: trace.trace_id.0, timeline: Timeline::new(dict, trace, cp) };
        self.spans += copies * trace.len();
        if to_slowest {
            self.spans -= self.slowest.push(kept.clone());
        }
        if to_failing {
            self.spans -= self.failing.push(kept.clone());
        }
        if let (true, Some(endpoint)) = (to_sample, endpoint) {
            let sample = self.samples.entry(endpoint).or_default();
            sample.kept.push((hash, kept));
            sample.kept.sort_by_key(|(h, k)| (*h, k.tie));
            let cut = SAMPLE_PER_ENDPOINT.min(sample.kept.len());
            self.spans -= sample.kept.drain(cut..).map(|(_, k)| k.timeline.len()).sum::<usize>();
        }
    }

    /// The traces chosen.
    pub fn finish(self) -> KeptTraces {
        let mut traces: Vec<Timeline> = Vec::new();
        let mut index = |timeline: &Timeline| -> usize {
            if let Some(i) = traces.iter().position(|t| t.id == timeline.id) {
                return i;
            }
            traces.push(timeline.clone());
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
