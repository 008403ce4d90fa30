//! `GET /api/v1/status`: what the receiver holds and, as a member of a
//! Kafka consumer group, how the group's consumption stands.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::Service;
use crate::live::LiveCounters;

/// The receiver's status.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// Live analysis counters.
    pub live: LiveCounters,
    /// Spans waiting in open traces.
    pub open_spans: usize,
    /// While stored spans are being restored: how far it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restoring: Option<String>,
    /// As a member of a Kafka consumer group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<GroupView>,
}

/// A consumer-group member's view of the group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    /// The results topic has been read up to its end as of the start.
    pub caught_up: bool,
    /// Rebalances this member went through.
    pub rebalances: u64,
    /// Records not yet read per assigned partition.
    pub lag: BTreeMap<i32, i64>,
    /// Partials this member published.
    pub partials_published: u64,
    /// Offset commits that failed (retried).
    pub commit_failures: u64,
    /// Records of the spans topic the group read.
    pub records: u64,
    /// Records that did not decode (skipped, logged with partition and offset).
    pub records_undecodable: u64,
    /// Partials counted.
    pub partials_counted: u64,
    /// Partials published under a claim no longer current (not counted).
    pub partials_stale: u64,
    /// Spans of traces seen in more than one partition.
    pub split_trace_spans: u64,
    /// What to do about split traces, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_traces: Option<&'static str>,
}

/// What to do when traces arrive split over partitions.
pub const SPLIT_TRACES_REMEDY: &str = "spans of one trace arrived in more than one partition, so those traces are analysed in parts: set partition_traces_by_id: true on the Collector's kafka exporter (records keyed by trace id)";

impl Service {
    /// The receiver's status.
    pub fn status(&self) -> Status {
        let live = self.live.lock().expect("live lock");
        let kafka = self.group.as_ref().map(|g| {
            let cluster = live.cluster_counters().unwrap_or_default();
            GroupView {
                caught_up: g.caught_up.load(Ordering::Relaxed),
                rebalances: g.rebalances.load(Ordering::Relaxed),
                lag: g.lag.lock().expect("lag lock").clone(),
                partials_published: g.published.load(Ordering::Relaxed),
                commit_failures: g.commit_failures.load(Ordering::Relaxed),
                records: cluster.records,
                records_undecodable: cluster.undecodable,
                partials_counted: cluster.ledger.accepted,
                partials_stale: cluster.ledger.stale,
                split_trace_spans: cluster.ledger.split_spans,
                split_traces: (cluster.ledger.split_spans > 0).then_some(SPLIT_TRACES_REMEDY),
            }
        });
        Status { live: live.counters, open_spans: live.open_spans(), restoring: self.restoring(), kafka }
    }
}
