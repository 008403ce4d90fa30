//! Scale-out on Kafka, without the network: what one receiver of a
//! consumer group does with the partitions it is assigned, and how every
//! receiver merges what all of them published.
//!
//! A [`PartitionWork`] assembles the traces of one partition (records in
//! offset order; a trace completes after an idle timeout, as live traces
//! do, on a clock its caller stops while the partition is not being read),
//! remembers the offsets of each trace's first and last record, and
//! turns the traces completed since it last published into a partial
//! ([`tracelens_core::partial`]): per time bucket the same analyses the
//! receiver runs live, and the judge's trace digests, with the fragments
//! (trace id, first and last offset) they cover. The offset it may commit
//! after publishing is that of the first record of its oldest open trace:
//! a replacement resuming there reads those traces whole again and skips
//! the spans of fragments already counted ([`tracelens_core::partial::SkipSet`]).
//!
//! Which partials count is the [`Ledger`]'s to decide, the same way in
//! every receiver, so all of them answer from the same merged state.

use rustc_hash::FxHashMap;

use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::portable::Names;
use tracelens_core::assemble::{Assembler, AssemblerConfig};
use tracelens_core::judge::sample::portable::TraceDigester;
use tracelens_core::model::{Dictionary, Span, Trace, TraceId};
use tracelens_core::partial::{self, SkipSet, pb};

use crate::live::buckets::{BucketConfig, trace_start_ms};

pub use tracelens_core::partial::{Admission, Ledger};

/// Closed trace ids remembered per partition to count split traces.
const CLOSED_IDS_REMEMBERED: usize = 200_000;

/// What a consumer-group member reports on `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct GroupStatus {
    /// The results topic has been read up to its end as of the start.
    pub caught_up: std::sync::atomic::AtomicBool,
    /// Rebalances this member went through.
    pub rebalances: std::sync::atomic::AtomicU64,
    /// Records of assigned partitions not yet read, per partition.
    pub lag: std::sync::Mutex<std::collections::BTreeMap<i32, i64>>,
    /// Partials published by this member.
    pub published: std::sync::atomic::AtomicU64,
    /// Offset commits that failed (retried before the next publish).
    pub commit_failures: std::sync::atomic::AtomicU64,
    /// Deployment markers recorded here, to publish to the group.
    pub outbox: std::sync::Mutex<Vec<crate::gate::Deployment>>,
}

/// Offsets of the first and last records of one open trace, and its spans.
#[derive(Clone, Copy, Debug)]
struct Extent {
    first: u64,
    last: u64,
    spans: u64,
}

/// A completed trace and its extent.
struct Done {
    trace: Trace,
    extent: Extent,
}

/// One assigned partition: assembly, offsets, and the partial to publish.
pub struct PartitionWork {
    topic: String,
    partition: u32,
    claim: String,
    assembler: Assembler,
    open: FxHashMap<TraceId, Extent>,
    skip: SkipSet,
    /// The offset after the last record read.
    next_offset: u64,
    done: Vec<Done>,
    records: u64,
    undecodable: u64,
    /// Spans skipped as already counted, since the claim.
    pub skipped_spans: u64,
    /// Times the open-span cap closed traces early.
    pub forced_closes: u64,
}

/// What a partial is built with.
#[derive(Clone, Copy, Debug)]
pub struct PartialConfig {
    /// Buckets (width, retention) as live analysis keeps them.
    pub buckets: BucketConfig,
    /// Distinct operation names kept per service.
    pub max_operations: usize,
    /// Spans held in a partition's open traces before they are all closed
    /// early (bounded memory per partition; counted as forced closes).
    pub max_open_spans: usize,
}

impl PartitionWork {
    /// Work on `partition` of `topic` under `claim`, resuming at
    /// `resume_offset` and skipping the spans of fragments in `skip`.
    pub fn new(topic: &str, partition: u32, claim: &str, resume_offset: u64, skip: SkipSet) -> PartitionWork {
        PartitionWork {
            topic: topic.to_string(),
            partition,
            claim: claim.to_string(),
            assembler: Assembler::new(AssemblerConfig { idle_spans: u64::MAX }),
            open: FxHashMap::default(),
            skip,
            next_offset: resume_offset,
            done: Vec::new(),
            records: 0,
            undecodable: 0,
            skipped_spans: 0,
            forced_closes: 0,
        }
    }

    /// The offset after the last record read.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The spans of the record at `offset`, read at `now_ms` on the
    /// partition's clock (which must not run while records wait unread);
    /// past `max_open_spans` open spans every open trace is closed early.
    pub fn record(&mut self, offset: u64, spans: Vec<Span>, now_ms: u64, max_open_spans: usize) {
        self.records += 1;
        self.next_offset = self.next_offset.max(offset + 1);
        let mut completed = Vec::new();
        for span in spans {
            if !self.skip.is_empty() && self.skip.skips(&span.trace_id, offset) {
                self.skipped_spans += 1;
                continue;
            }
            let extent = self.open.entry(span.trace_id).or_insert(Extent { first: offset, last: offset, spans: 0 });
            extent.last = extent.last.max(offset);
            extent.spans += 1;
            self.assembler.push_at(span, now_ms, &mut |t| completed.push(t));
        }
        self.complete(completed);
        if self.assembler.open_spans() > max_open_spans {
            self.forced_closes += 1;
            self.tick(now_ms, 0);
        }
        if self.open.is_empty() {
            // Nothing open reads a record before here again.
            self.assembler.forget_closed_over(CLOSED_IDS_REMEMBERED);
        }
    }

    /// A record at `offset` that did not decode: counted and passed over.
    pub fn undecodable(&mut self, offset: u64) {
        self.records += 1;
        self.undecodable += 1;
        self.next_offset = self.next_offset.max(offset + 1);
    }

    /// Completes traces idle for `idle_ms` at `now_ms` on the partition's
    /// clock.
    pub fn tick(&mut self, now_ms: u64, idle_ms: u64) {
        let mut completed = Vec::new();
        self.assembler.close_idle(now_ms, idle_ms, &mut |t| completed.push(t));
        self.complete(completed);
    }

    fn complete(&mut self, traces: Vec<Trace>) {
        for trace in traces {
            let extent = self.open.remove(&trace.trace_id).expect("a completed trace was open");
            self.done.push(Done { trace, extent });
        }
    }

    /// Spans waiting in open traces.
    pub fn open_spans(&self) -> usize {
        self.assembler.open_spans()
    }

    /// The offset that may be committed once everything completed so far
    /// is published: the first record of the oldest open trace, else the
    /// next record.
    pub fn commit_offset(&self) -> u64 {
        self.open.values().map(|e| e.first).min().unwrap_or(self.next_offset).min(self.next_offset)
    }

    /// Whether there is anything to publish.
    pub fn has_news(&self) -> bool {
        !self.done.is_empty() || self.records > 0
    }

    /// The partial of everything completed since the last one (analyses
    /// and digests per bucket of clock time `now_ms`, the fragments, the
    /// counts), with the offset to commit once it is published; `None`
    /// when there is nothing new.
    pub fn take_partial(
        &mut self,
        dict: &Dictionary,
        config: &PartialConfig,
        now_ms: u64,
    ) -> Option<(pb::Partial, u64)> {
        if !self.has_news() {
            return None;
        }
        let commit_offset = self.commit_offset();
        let mut names = Names::default();
        let mut digester = TraceDigester::default();
        let mut buckets: std::collections::BTreeMap<u64, (TraceAnalyses, Vec<_>, u64)> = Default::default();
        let mut fragments = Vec::with_capacity(self.done.len());
        let mut spans = 0;
        let mut summary = tracelens_core::analysis::Summary::default();
        for Done { trace, extent } in std::mem::take(&mut self.done) {
            summary.add_trace(&trace);
            let (key, in_window) = config.buckets.bucket_of(trace_start_ms(&trace), now_ms);
            let (analyses, digests, out_of_window) =
                buckets.entry(key).or_insert_with(|| (TraceAnalyses::new(dict, config.max_operations), Vec::new(), 0));
            analyses.add_trace(&trace);
            digests.push(digester.digest(dict, &trace, &mut names));
            *out_of_window += u64::from(!in_window);
            spans += extent.spans;
            fragments.push(pb::Fragment {
                trace_id: trace.trace_id.0.to_vec(),
                first_offset: extent.first,
                last_offset: extent.last,
                spans: extent.spans,
            });
        }
        let buckets = buckets
            .into_iter()
            .map(|(start_ms, (analyses, digests, out_of_window))| pb::Bucket {
                start_ms,
                width_ms: config.buckets.bucket_ms,
                analyses: Some(analyses.to_portable(dict, &mut names)),
                digests,
                out_of_window,
            })
            .collect();
        let source = pb::Source {
            topic: self.topic.clone(),
            partition: self.partition,
            claim: self.claim.clone(),
            is_claim: false,
            resume_offset: 0,
            commit_offset,
            fragments,
            records: std::mem::take(&mut self.records),
            undecodable: std::mem::take(&mut self.undecodable),
            spans,
        };
        let summary = Some(summary.to_portable(dict, &mut names));
        let partial = pb::Partial {
            format: partial::FORMAT_VERSION,
            spans_read: source.spans,
            summary,
            strings: names.into_strings(),
            buckets,
            source: Some(source),
            warnings: Vec::new(),
            deployments: Vec::new(),
        };
        Some((partial, commit_offset))
    }

    /// The claim marker this work publishes before reading its partition.
    pub fn claim_partial(topic: &str, partition: u32, claim: &str, resume_offset: u64) -> pb::Partial {
        pb::Partial {
            format: partial::FORMAT_VERSION,
            source: Some(pb::Source {
                topic: topic.to_string(),
                partition,
                claim: claim.to_string(),
                is_claim: true,
                resume_offset,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::analysis::portable::Syms;
    use tracelens_core::model::{SpanId, SpanKind};

    const NOW: u64 = 1_800_000_000_000;

    fn config() -> PartialConfig {
        let buckets = BucketConfig {
            bucket_ms: 60_000,
            retention_ms: 3_600_000,
            seal_after_ms: 30_000,
            fine_ms: 3_600_000,
            coarse_ms: 3_600_000,
            max_operations: 100,
        };
        PartialConfig { buckets, max_operations: 100, max_open_spans: usize::MAX }
    }

    /// Trace `t`'s span `i` (0 the root in "a", others children in "b").
    fn span(dict: &mut Dictionary, t: u8, i: u8) -> Span {
        let mut s = Span::new(TraceId([t; 16]), SpanId([i + 1; 8]));
        s.service = dict.intern(if i == 0 { "a" } else { "b" });
        s.name = dict.intern("op");
        s.resource = dict.resource(Vec::new());
        s.kind = if i == 0 { SpanKind::Client } else { SpanKind::Server };
        s.parent_id = (i > 0).then_some(SpanId([1; 8]));
        s.start_ns = (NOW - 30_000) * 1_000_000 + u64::from(t) * 1_000;
        s.end_ns = s.start_ns + 1_000_000 * u64::from(t);
        s
    }

    /// The records of a partition: trace t's two spans in records far
    /// enough apart that traces overlap (offset = position).
    fn records(dict: &mut Dictionary, traces: u8) -> Vec<Vec<Span>> {
        let mut out = Vec::new();
        for t in 1..=traces {
            out.push(vec![span(dict, t, 0)]);
            if t > 1 {
                out.push(vec![span(dict, t - 1, 1)]);
            }
        }
        out.push(vec![span(dict, traces, 1)]);
        out
    }

    /// Merges the partials a ledger counts, as every receiver does.
    fn merged(partials: &[pb::Partial], dict: &mut Dictionary) -> (TraceAnalyses, Ledger) {
        let mut ledger = Ledger::default();
        let mut all = TraceAnalyses::new(dict, 100);
        for p in partials {
            if ledger.admit(p.source.as_ref()).unwrap() != Admission::Count {
                continue;
            }
            let syms = Syms::intern(&p.strings, dict);
            let empty = TraceAnalyses::new(dict, 100);
            for b in &p.buckets {
                all.merge(&TraceAnalyses::from_portable(b.analyses.as_ref().unwrap(), &syms, dict, &empty).unwrap());
            }
        }
        (all, ledger)
    }

    fn edges(dict: &Dictionary, a: &TraceAnalyses) -> Vec<(String, String, u64)> {
        let mut a = a.clone();
        a.finish();
        a.graph.edges(dict).into_iter().map(|(from, to, _, e)| (from, to, e.calls)).collect()
    }

    #[test]
    fn a_replacement_resuming_at_the_commit_counts_every_span_once() {
        let mut dict = Dictionary::default();
        let records = records(&mut dict, 10);
        let mut log = Vec::new();
        // The first owner reads 12 records, publishing after each (its
        // commit offset trails: trace t's root and its child are a record
        // apart), then dies after publishing, before committing.
        log.push(PartitionWork::claim_partial("spans", 0, "first", 0));
        let mut first = PartitionWork::new("spans", 0, "first", 0, SkipSet::default());
        let mut committed = 0;
        // A record a second, a trace complete 3 s after its last span.
        let at = |offset: usize| NOW + offset as u64 * 1_000;
        for (offset, spans) in records.iter().enumerate().take(12) {
            first.record(offset as u64, spans.clone(), at(offset), usize::MAX);
            first.tick(at(offset), 3_000);
            if let Some((p, commit)) = first.take_partial(&dict, &config(), NOW) {
                log.push(p);
                if offset < 11 {
                    committed = commit;
                }
            }
        }
        assert!(committed > 0 && committed < 12, "{committed}");
        // The first owner, a zombie, reads on: its partial lands after the
        // new claim and must not count.
        first.record(12, records[12].clone(), at(12), usize::MAX);
        first.tick(at(16), 3_000);
        let late = first.take_partial(&dict, &config(), NOW);
        assert!(late.is_some());
        // The replacement claims, reads the log up to its claim, and
        // resumes at the committed offset, skipping what was counted.
        log.push(PartitionWork::claim_partial("spans", 0, "second", committed));
        let (_, ledger) = merged(&log, &mut dict);
        let skip = ledger.skip_set("spans", 0, committed);
        assert!(!skip.is_empty());
        log.push(late.unwrap().0);
        let mut second = PartitionWork::new("spans", 0, "second", committed, skip);
        for (offset, spans) in records.iter().enumerate().skip(committed as usize) {
            second.record(offset as u64, spans.clone(), at(offset), usize::MAX);
            second.tick(at(offset), 3_000);
        }
        second.tick(at(100), 3_000);
        log.push(second.take_partial(&dict, &config(), NOW).unwrap().0);
        assert!(second.skipped_spans > 0);
        let (all, ledger) = merged(&log, &mut dict);
        assert_eq!(all.traces, 10);
        assert_eq!(edges(&dict, &all), [("a".to_string(), "b".to_string(), 10)]);
        assert_eq!(ledger.counters.claims, 2);
        assert_eq!(ledger.counters.stale, 1, "the zombie's partial");
        assert_eq!(ledger.counters.split_spans, 0);
    }

    #[test]
    fn the_commit_offset_waits_for_the_oldest_open_trace() {
        let mut dict = Dictionary::default();
        let mut work = PartitionWork::new("spans", 3, "c", 100, SkipSet::default());
        assert_eq!(work.commit_offset(), 100);
        work.record(100, vec![span(&mut dict, 1, 0)], NOW, usize::MAX);
        work.record(101, vec![span(&mut dict, 2, 0)], NOW + 5_000, usize::MAX);
        assert_eq!(work.commit_offset(), 100);
        work.tick(NOW + 10_000, 10_000);
        assert_eq!(work.commit_offset(), 101, "trace 1 completed; trace 2 is still open");
        work.undecodable(102);
        let (p, commit) = work.take_partial(&dict, &config(), NOW).unwrap();
        assert_eq!(commit, 101);
        let source = p.source.unwrap();
        assert_eq!((source.records, source.undecodable, source.spans, source.fragments.len()), (3, 1, 1, 1));
        work.tick(NOW + 20_000, 10_000);
        assert_eq!(work.commit_offset(), 103);
        assert!(work.take_partial(&dict, &config(), NOW).is_some());
        assert!(work.take_partial(&dict, &config(), NOW).is_none(), "nothing new");
    }

    #[test]
    fn past_the_open_span_cap_open_traces_close_early() {
        let mut dict = Dictionary::default();
        let mut work = PartitionWork::new("spans", 0, "c", 0, SkipSet::default());
        work.record(0, vec![span(&mut dict, 1, 0)], NOW, 2);
        work.record(1, vec![span(&mut dict, 2, 0)], NOW, 2);
        assert_eq!((work.open_spans(), work.forced_closes), (2, 0));
        work.record(2, vec![span(&mut dict, 3, 0)], NOW, 2);
        assert_eq!((work.open_spans(), work.forced_closes), (0, 1));
        assert_eq!(work.commit_offset(), 3, "nothing open: the next record");
    }

    #[test]
    fn traces_seen_in_two_partitions_are_counted_as_split() {
        let mut dict = Dictionary::default();
        let mut log = Vec::new();
        for partition in [0, 1] {
            let mut work = PartitionWork::new("spans", partition, "c", 0, SkipSet::default());
            work.record(0, vec![span(&mut dict, 7, partition as u8)], NOW, usize::MAX);
            work.tick(NOW + 10_000, 10_000);
            log.push(work.take_partial(&dict, &config(), NOW).unwrap().0);
        }
        let (all, ledger) = merged(&log, &mut dict);
        assert_eq!(ledger.counters.split_spans, 2, "both parts");
        assert_eq!(all.traces, 2, "each partition's part is analysed as a trace of its own");
    }
}
