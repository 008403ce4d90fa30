//! Live analysis fed by a Kafka consumer group's partials: every partial
//! read from the results topic goes through the [`Ledger`], and what counts
//! is merged into the time buckets — the same buckets, queries and
//! `/metrics` as spans received directly — and its trace digests are kept
//! for the judge (the most recent `keep_traces` of them).

use std::collections::VecDeque;
use std::sync::Arc;

use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::portable::{PortableError, Syms};
use tracelens_core::judge::changes::History;
use tracelens_core::judge::sample::portable::pb::TraceDigest;
use tracelens_core::judge::{Judge, JudgeConfig, NotInInput, Presence, Verdict};
use tracelens_core::model::Dictionary;
use tracelens_core::partial::{Admission, Ledger, LedgerCounters, pb};

use super::Live;

/// What a receiver of a group learned from the results topic.
#[derive(Default)]
pub struct ClusterState {
    ledger: Ledger,
    /// Recent digests, each with the string table it indexes (oldest first).
    digests: VecDeque<(Arc<[String]>, TraceDigest)>,
    /// Counters.
    pub counters: ClusterCounters,
}

/// Counters of the partials merged.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterCounters {
    /// Records of the spans topic read by the group.
    pub records: u64,
    /// Records among those that did not decode (skipped).
    pub undecodable: u64,
    /// The ledger's counters (partials counted and stale, claims, spans of
    /// split traces).
    pub ledger: LedgerCounters,
}

/// Digests of the judged traces, taken out of the live lock.
pub struct DigestSnapshot {
    digests: Vec<(Arc<[String]>, TraceDigest)>,
    dict: Dictionary,
}

impl DigestSnapshot {
    /// The digests as change detection reads them, with the dictionary
    /// their names are interned in and how many there are.
    pub fn history(mut self) -> Result<(History, Dictionary, u64), PortableError> {
        let mut history = History::new();
        let mut i = 0;
        while i < self.digests.len() {
            let strings = self.digests[i].0.clone();
            let syms = Syms::intern(&strings, &mut self.dict);
            while i < self.digests.len() && Arc::ptr_eq(&self.digests[i].0, &strings) {
                history.add_portable(&self.dict, &syms, &self.digests[i].1)?;
                i += 1;
            }
        }
        Ok((history, self.dict, self.digests.len() as u64))
    }

    /// The verdict over the digests (see [`Judge::add_portable`]); `complete`
    /// as for traces.
    pub fn judge(
        mut self,
        service: &str,
        cohorts: tracelens_core::judge::Cohorts,
        config: &JudgeConfig,
        complete: bool,
    ) -> Result<Result<Verdict, NotInInput>, PortableError> {
        let mut judge = Judge::new(service, cohorts);
        let mut i = 0;
        while i < self.digests.len() {
            let strings = self.digests[i].0.clone();
            let syms = Syms::intern(&strings, &mut self.dict);
            while i < self.digests.len() && Arc::ptr_eq(&self.digests[i].0, &strings) {
                judge.add_portable(&self.dict, &syms, &self.digests[i].1)?;
                i += 1;
            }
        }
        if complete && let Err(e) = judge.check(Presence::Live) {
            return Ok(Err(e));
        }
        Ok(Ok(judge.verdict(config)))
    }
}

impl Live {
    /// Reads one partial of the results topic at clock time `now_ms`:
    /// merged when the ledger counts it.
    pub fn apply_partial(&mut self, partial: &pb::Partial) -> Result<Admission, PortableError> {
        tracelens_core::partial::check_version(partial)?;
        let cluster = self.cluster.get_or_insert_with(Default::default);
        let admission = cluster.ledger.admit(partial.source.as_ref())?;
        cluster.counters.ledger = cluster.ledger.counters;
        if admission != Admission::Count {
            return Ok(admission);
        }
        let syms = Syms::intern(&partial.strings, &mut self.dict);
        let like = TraceAnalyses::new(&self.dict, self.config.max_operations);
        let mut merged = Vec::with_capacity(partial.buckets.len());
        for (i, bucket) in partial.buckets.iter().enumerate() {
            let Some(analyses) = &bucket.analyses else { continue };
            let analyses = TraceAnalyses::from_portable(analyses, &syms, &self.dict, &like)
                .map_err(|e| PortableError::invalid(format!("buckets[{i}]"), e.to_string()))?;
            merged.push((bucket.start_ms, analyses, bucket.out_of_window));
        }
        for (start_ms, analyses, out_of_window) in merged {
            self.counters.traces_completed += analyses.traces;
            self.buckets.add_analyses(start_ms, &analyses, out_of_window);
        }
        let cluster = self.cluster.get_or_insert_with(Default::default);
        if let Some(source) = &partial.source {
            self.counters.spans_accepted += source.spans;
            cluster.counters.records += source.records;
            cluster.counters.undecodable += source.undecodable;
        }
        let strings: Arc<[String]> = partial.strings.clone().into();
        for bucket in &partial.buckets {
            for d in &bucket.digests {
                cluster.digests.push_back((strings.clone(), d.clone()));
            }
        }
        while cluster.digests.len() > self.config.keep_traces {
            cluster.digests.pop_front();
        }
        Ok(admission)
    }

    /// From now on, answers come from a group's partials (and the judge
    /// reads their digests).
    pub fn start_cluster(&mut self) {
        self.cluster.get_or_insert_with(Default::default);
    }

    /// Whether this receiver answers from a group's partials.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The ledger, to build a new owner's skip set.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.cluster.as_ref().map(|c| &c.ledger)
    }

    /// The group's counters.
    pub fn cluster_counters(&self) -> Option<ClusterCounters> {
        self.cluster.as_ref().map(|c| c.counters)
    }

    /// The recent digests and the names, to judge outside the lock.
    pub fn digest_snapshot(&self) -> Option<DigestSnapshot> {
        let cluster = self.cluster.as_ref()?;
        Some(DigestSnapshot { digests: cluster.digests.iter().cloned().collect(), dict: self.dict.clone() })
    }
}
