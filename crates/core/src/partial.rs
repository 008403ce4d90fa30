//! Partials: what one process learned from some traces, in a form another
//! process merges exactly — analyses per time bucket
//! ([`crate::analysis::portable`]), the judge's trace digests
//! ([`crate::judge::sample::portable`]), a summary and warnings, with the
//! one string table their names index. `tracelens analyze --partial`
//! writes them to files (a magic line, then length-delimited messages),
//! `tracelens merge` reads them.

use rustc_hash::FxHashMap;

use crate::analysis::portable::PortableError;
use crate::model::{TraceId, WarningKind, Warnings};

/// The newest partial format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The protobuf messages (field numbers are the format: only ever added to).
pub mod pb {
    /// What one process learned: analyses per time bucket, with the
    /// string table their names index.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Partial {
        /// The format version ([`super::FORMAT_VERSION`]).
        #[prost(uint32, tag = "1")]
        pub format: u32,
        /// Every name the rest refers to, by index.
        #[prost(string, repeated, tag = "2")]
        pub strings: Vec<String>,
        /// Analyses per time bucket.
        #[prost(message, repeated, tag = "3")]
        pub buckets: Vec<Bucket>,
        /// Spans, traces, services and time range (offline partials).
        #[prost(message, optional, tag = "4")]
        pub summary: Option<crate::analysis::portable::pb::Summary>,
        /// Spans read, before exact duplicates were dropped.
        #[prost(uint64, tag = "5")]
        pub spans_read: u64,
        /// Repairs and oddities counted while reading and assembling.
        #[prost(message, repeated, tag = "6")]
        pub warnings: Vec<WarningCount>,
        /// For a receiver reading a Kafka topic: the partition the traces
        /// came from, and what the partial covers of it.
        #[prost(message, optional, tag = "7")]
        pub source: Option<Source>,
        /// Deployment markers recorded on one receiver of a group, for
        /// every receiver's verdicts.
        #[prost(message, repeated, tag = "8")]
        pub deployments: Vec<DeploymentMarker>,
    }

    /// A deploy of one service version.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DeploymentMarker {
        /// The service.
        #[prost(string, tag = "1")]
        pub service: String,
        /// The version deployed.
        #[prost(string, tag = "2")]
        pub version: String,
        /// When, unix ns.
        #[prost(uint64, tag = "3")]
        pub time_unix_nano: u64,
    }

    /// What a receiver's partial covers of one topic partition.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Source {
        /// The topic read.
        #[prost(string, tag = "1")]
        pub topic: String,
        /// Its partition.
        #[prost(uint32, tag = "2")]
        pub partition: u32,
        /// The claim the partial was published under: who owns the
        /// partition since when.
        #[prost(string, tag = "3")]
        pub claim: String,
        /// A claim marker, not data: from here on only partials of this
        /// claim count for the partition.
        #[prost(bool, tag = "4")]
        pub is_claim: bool,
        /// Claim: the offset consumption resumes at (the group's committed
        /// offset).
        #[prost(uint64, tag = "5")]
        pub resume_offset: u64,
        /// Data: the offset committed once this partial is published; every
        /// span before it is in an accepted partial.
        #[prost(uint64, tag = "6")]
        pub commit_offset: u64,
        /// Data: the trace fragments completed, with the offsets of their
        /// first and last records.
        #[prost(message, repeated, tag = "7")]
        pub fragments: Vec<Fragment>,
        /// Data: records read since the previous partial.
        #[prost(uint64, tag = "8")]
        pub records: u64,
        /// Data: records among those that did not decode (skipped).
        #[prost(uint64, tag = "9")]
        pub undecodable: u64,
        /// Data: spans analysed in this partial.
        #[prost(uint64, tag = "10")]
        pub spans: u64,
    }

    /// A trace fragment and the offsets of its first and last records.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Fragment {
        /// The trace id (16 bytes).
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// Offset of its first record.
        #[prost(uint64, tag = "2")]
        pub first_offset: u64,
        /// Offset of its last record.
        #[prost(uint64, tag = "3")]
        pub last_offset: u64,
        /// Its spans.
        #[prost(uint64, tag = "4")]
        pub spans: u64,
    }

    /// The analyses of the traces that started in one time bucket.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Bucket {
        /// Bucket start, unix ms (0 with a width of 0: no time bucket).
        #[prost(uint64, tag = "1")]
        pub start_ms: u64,
        /// Bucket width, ms.
        #[prost(uint64, tag = "2")]
        pub width_ms: u64,
        /// The analyses.
        #[prost(message, optional, tag = "3")]
        pub analyses: Option<crate::analysis::portable::pb::Analyses>,
        /// Digests of its traces for the judge.
        #[prost(message, repeated, tag = "4")]
        pub digests: Vec<crate::judge::sample::portable::pb::TraceDigest>,
        /// Traces whose own start lay outside the receiver's kept window,
        /// put in the bucket of their arrival instead.
        #[prost(uint64, tag = "5")]
        pub out_of_window: u64,
    }

    /// How often one kind of warning occurred.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WarningCount {
        /// The kind, as reports name it (`duplicate_span`).
        #[prost(string, tag = "1")]
        pub kind: String,
        /// Occurrences.
        #[prost(uint64, tag = "2")]
        pub count: u64,
    }
}

/// The first bytes of a partials file: then length-delimited
/// [`pb::Partial`] messages, one after another.
pub const FILE_MAGIC: &[u8] = b"tracelens-partials\n";

/// A partials file holding `partials`.
pub fn encode_file(partials: &[pb::Partial]) -> Vec<u8> {
    use prost::Message as _;
    let mut out = FILE_MAGIC.to_vec();
    for p in partials {
        p.encode_length_delimited(&mut out).expect("a Vec grows to fit");
    }
    out
}

/// The partials of a partials file, checked for their format version.
pub fn decode_file(bytes: &[u8]) -> Result<Vec<pb::Partial>, PortableError> {
    use prost::Message as _;
    let mut rest = bytes.strip_prefix(FILE_MAGIC).ok_or_else(|| {
        PortableError::invalid("file", "does not start as a tracelens partials file (written by analyze --partial)")
    })?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let partial = pb::Partial::decode_length_delimited(&mut rest)
            .map_err(|e| PortableError::invalid(format!("partial {}", out.len() + 1), e.to_string()))?;
        check_version(&partial)?;
        out.push(partial);
    }
    Ok(out)
}

/// A partial this build can read.
pub fn check_version(partial: &pb::Partial) -> Result<(), PortableError> {
    if partial.format == 0 || partial.format > FORMAT_VERSION {
        return Err(PortableError::Version { found: partial.format, supported: FORMAT_VERSION });
    }
    Ok(())
}

/// Warning counts out, in report order.
pub fn warnings_out(warnings: &Warnings) -> Vec<pb::WarningCount> {
    warnings.iter().map(|(kind, count)| pb::WarningCount { kind: kind.as_str().to_string(), count }).collect()
}

/// Warning counts in, added to `into`.
pub fn warnings_in(message: &[pb::WarningCount], into: &mut Warnings) -> Result<(), PortableError> {
    for (i, w) in message.iter().enumerate() {
        let kind = WarningKind::ALL.iter().find(|k| k.as_str() == w.kind).ok_or_else(|| {
            PortableError::invalid(format!("warnings[{i}].kind"), format!("no warning kind {:?}", w.kind))
        })?;
        into.add_n(*kind, w.count);
    }
    Ok(())
}

/// Which partials of a results topic count, decided the same way by every
/// reader of it (the topic's order is the same for all): per source
/// partition, the latest claim wins, and a data partial counts only under
/// the claim current when it is read. A receiver that lost its partition
/// (a zombie, a rebalance it missed) can publish nothing that counts once
/// the new owner's claim is in; and the new owner, which claims before it
/// reads the topic up to its claim, skips exactly the spans of the trace
/// fragments counted since the offset it resumes at ([`SkipSet`]). So
/// every span of the topic is counted once, across rebalances, crashes and
/// restarts.
#[derive(Debug, Default)]
pub struct Ledger {
    partitions: FxHashMap<(String, u32), PartitionLedger>,
    /// Trace ids seen recently: the partition they came from first.
    seen: FxHashMap<TraceId, Seen>,
    seen_order: std::collections::VecDeque<TraceId>,
    /// Counters.
    pub counters: LedgerCounters,
}

/// Counters of a [`Ledger`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerCounters {
    /// Data partials counted.
    pub accepted: u64,
    /// Data partials not counted: published under a claim no longer current.
    pub stale: u64,
    /// Claims read.
    pub claims: u64,
    /// Spans of traces seen in more than one partition (all their spans).
    pub split_spans: u64,
}

#[derive(Debug, Default)]
struct PartitionLedger {
    claim: Option<String>,
    /// Fragments counted that a resume may read again, by trace.
    fragments: FxHashMap<TraceId, Vec<(u64, u64)>>,
    /// Commit offsets of the last two partials counted (older first).
    commits: [u64; 2],
}

/// A trace seen recently.
#[derive(Debug)]
struct Seen {
    partition: u32,
    spans: u64,
    split: bool,
}

/// What a [`Ledger`] made of a partial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Data to count.
    Count,
    /// A claim, recorded.
    Claim,
    /// Data published under a claim no longer current: not counted.
    Stale,
}

/// Trace ids remembered to tell split traces.
const SEEN_REMEMBERED: usize = 1_000_000;

impl Ledger {
    /// Reads one partial's source, deciding whether its data counts.
    /// Partials without a source (offline ones) always count.
    pub fn admit(&mut self, source: Option<&pb::Source>) -> Result<Admission, PortableError> {
        let Some(source) = source else {
            self.counters.accepted += 1;
            return Ok(Admission::Count);
        };
        let ledger = self.partitions.entry((source.topic.clone(), source.partition)).or_default();
        if source.is_claim {
            self.counters.claims += 1;
            ledger.claim = Some(source.claim.clone());
            return Ok(Admission::Claim);
        }
        if ledger.claim.as_ref().is_some_and(|c| *c != source.claim) {
            self.counters.stale += 1;
            return Ok(Admission::Stale);
        }
        let mut fragments = Vec::with_capacity(source.fragments.len());
        for (i, f) in source.fragments.iter().enumerate() {
            let id = crate::analysis::portable::trace_id(&f.trace_id, || format!("source.fragments[{i}].trace_id"))?;
            if f.first_offset > f.last_offset {
                return Err(PortableError::invalid(format!("source.fragments[{i}]"), "first offset after last"));
            }
            fragments.push((id, f.first_offset, f.last_offset, f.spans));
        }
        ledger.commits = [ledger.commits[1], source.commit_offset];
        let keep_from = ledger.commits[0];
        ledger.fragments.retain(|_, v| {
            v.retain(|&(_, last)| last >= keep_from);
            !v.is_empty()
        });
        for &(id, first, last, _) in &fragments {
            if last >= keep_from {
                ledger.fragments.entry(id).or_default().push((first, last));
            }
        }
        for (id, _, _, spans) in fragments {
            self.see(id, source.partition, spans);
        }
        self.counters.accepted += 1;
        Ok(Admission::Count)
    }

    fn see(&mut self, id: TraceId, partition: u32, spans: u64) {
        match self.seen.get_mut(&id) {
            Some(seen) => {
                if !seen.split && seen.partition != partition {
                    // The trace's earlier spans count as split too.
                    seen.split = true;
                    self.counters.split_spans += seen.spans;
                }
                seen.spans += spans;
                if seen.split {
                    self.counters.split_spans += spans;
                }
            }
            None => {
                self.seen.insert(id, Seen { partition, spans, split: false });
                self.seen_order.push_back(id);
                if self.seen_order.len() > SEEN_REMEMBERED
                    && let Some(old) = self.seen_order.pop_front()
                {
                    self.seen.remove(&old);
                }
            }
        }
    }

    /// The current claim of a partition.
    pub fn claim(&self, topic: &str, partition: u32) -> Option<&str> {
        self.partitions.get(&(topic.to_string(), partition)).and_then(|l| l.claim.as_deref())
    }

    /// The spans a new owner resuming `partition` at `resume_offset` must
    /// skip: those of fragments already counted.
    pub fn skip_set(&self, topic: &str, partition: u32, resume_offset: u64) -> SkipSet {
        let mut by_trace: FxHashMap<TraceId, Vec<(u64, u64)>> = FxHashMap::default();
        if let Some(ledger) = self.partitions.get(&(topic.to_string(), partition)) {
            for (id, ranges) in &ledger.fragments {
                let kept: Vec<(u64, u64)> = ranges.iter().copied().filter(|&(_, last)| last >= resume_offset).collect();
                if !kept.is_empty() {
                    by_trace.insert(*id, kept);
                }
            }
        }
        SkipSet { by_trace }
    }
}

/// Trace fragments already counted, which a resumed partition reads again.
#[derive(Clone, Debug, Default)]
pub struct SkipSet {
    by_trace: FxHashMap<TraceId, Vec<(u64, u64)>>,
}

impl SkipSet {
    /// Whether a span of `trace` in the record at `offset` was counted.
    pub fn skips(&self, trace: &TraceId, offset: u64) -> bool {
        self.by_trace.get(trace).is_some_and(|r| r.iter().any(|&(first, last)| (first..=last).contains(&offset)))
    }

    /// Fragments in the set.
    pub fn len(&self) -> usize {
        self.by_trace.values().map(Vec::len).sum()
    }

    /// No fragment to skip.
    pub fn is_empty(&self) -> bool {
        self.by_trace.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(partition: u32, claim: &str, commit_offset: u64, fragments: &[(u8, u64, u64)]) -> pb::Source {
        pb::Source {
            topic: "spans".to_string(),
            partition,
            claim: claim.to_string(),
            commit_offset,
            fragments: fragments
                .iter()
                .map(|&(t, first, last)| pb::Fragment {
                    trace_id: vec![t; 16],
                    first_offset: first,
                    last_offset: last,
                    spans: 3,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn claim(partition: u32, claim: &str, resume_offset: u64) -> pb::Source {
        pb::Source {
            topic: "spans".to_string(),
            partition,
            claim: claim.to_string(),
            is_claim: true,
            resume_offset,
            ..Default::default()
        }
    }

    #[test]
    fn only_the_current_claim_counts_and_offline_partials_always_do() {
        let mut ledger = Ledger::default();
        assert_eq!(ledger.admit(None).unwrap(), Admission::Count);
        assert_eq!(ledger.admit(Some(&claim(0, "a", 0))).unwrap(), Admission::Claim);
        assert_eq!(ledger.admit(Some(&data(0, "a", 5, &[(1, 0, 4)]))).unwrap(), Admission::Count);
        assert_eq!(ledger.admit(Some(&claim(0, "b", 5))).unwrap(), Admission::Claim);
        assert_eq!(ledger.admit(Some(&data(0, "a", 9, &[(2, 5, 8)]))).unwrap(), Admission::Stale);
        assert_eq!(ledger.admit(Some(&data(1, "a", 9, &[(2, 5, 8)]))).unwrap(), Admission::Count, "another partition");
        assert_eq!(ledger.admit(Some(&data(0, "b", 9, &[(3, 5, 8)]))).unwrap(), Admission::Count);
        assert_eq!(ledger.claim("spans", 0), Some("b"));
        let c = ledger.counters;
        assert_eq!((c.accepted, c.stale, c.claims), (4, 1, 2));
    }

    #[test]
    fn a_skip_set_holds_the_fragments_a_resume_reads_again() {
        let mut ledger = Ledger::default();
        ledger.admit(Some(&data(0, "a", 3, &[(1, 0, 2), (2, 1, 6)]))).unwrap();
        ledger.admit(Some(&data(0, "a", 7, &[(3, 4, 9)]))).unwrap();
        let skip = ledger.skip_set("spans", 0, 3);
        assert!(!skip.skips(&TraceId([1; 16]), 2), "fragment 1 ends before the resume offset");
        assert!(skip.skips(&TraceId([2; 16]), 6) && !skip.skips(&TraceId([2; 16]), 7));
        assert!(skip.skips(&TraceId([3; 16]), 4) && skip.skips(&TraceId([3; 16]), 9));
        assert!(!skip.skips(&TraceId([9; 16]), 5), "an uncounted trace");
        assert_eq!(skip.len(), 2);
        // Fragments ending before the older of the last two commits go.
        ledger.admit(Some(&data(0, "a", 12, &[]))).unwrap();
        assert_eq!(ledger.skip_set("spans", 0, 0).len(), 1, "only the fragment ending at 9 >= 7 is kept");
    }

    #[test]
    fn damaged_sources_are_errors_and_split_traces_count_all_their_spans() {
        let mut ledger = Ledger::default();
        let mut bad = data(0, "a", 1, &[(1, 5, 4)]);
        assert!(ledger.admit(Some(&bad)).unwrap_err().to_string().contains("first offset after last"));
        bad.fragments[0].trace_id = vec![1; 3];
        assert!(ledger.admit(Some(&bad)).unwrap_err().to_string().contains("16 bytes"));
        ledger.admit(Some(&data(0, "a", 1, &[(7, 0, 0)]))).unwrap();
        ledger.admit(Some(&data(1, "b", 1, &[(7, 0, 0)]))).unwrap();
        ledger.admit(Some(&data(2, "c", 1, &[(7, 0, 0), (8, 0, 0)]))).unwrap();
        assert_eq!(ledger.counters.split_spans, 9, "three parts of 3 spans; trace 8 is whole");
    }
}
