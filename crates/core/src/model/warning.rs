//! Warnings: every kind of damage a reader or the assembler repaired, counted
//! by kind so reports can say exactly what was wrong with a dump.

use std::fmt;

/// A kind of damage found in input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarningKind {
    /// A malformed record in a JSON-lines or length-prefixed stream was skipped.
    BadRecord,
    /// A trace id was empty or all zero; a synthetic one was assigned.
    InvalidTraceId,
    /// A span id was empty or all zero; a synthetic one was assigned.
    InvalidSpanId,
    /// An id was neither hex nor base64; mapped to a stable hash.
    NonHexId,
    /// A span had no start timestamp.
    MissingStartTime,
    /// A span had no end time or duration.
    MissingDuration,
    /// A span ended exactly when it started.
    ZeroDuration,
    /// A span ended before it started.
    NegativeDuration,
    /// The same span (same id and content) appeared again and was dropped.
    DuplicateSpan,
    /// Different spans shared one id; later ones got new ids.
    DuplicateSpanId,
    /// A Zipkin shared SERVER half got its own id under its CLIENT half.
    SharedSpanSplit,
    /// A parent id pointed to no span in the trace.
    OrphanParent,
    /// Parent links formed a cycle; one link was cut.
    ParentCycle,
    /// Spans of a trace arrived after the trace had been closed; they were
    /// analysed as a separate fragment.
    SplitTrace,
    /// An attribute value longer than
    /// [`MAX_VALUE_BYTES`](crate::model::MAX_VALUE_BYTES) was cut to it.
    TruncatedValue,
}

impl WarningKind {
    /// Every kind, in report order.
    pub const ALL: [WarningKind; 15] = [
        WarningKind::BadRecord,
        WarningKind::InvalidTraceId,
        WarningKind::InvalidSpanId,
        WarningKind::NonHexId,
        WarningKind::MissingStartTime,
        WarningKind::MissingDuration,
        WarningKind::ZeroDuration,
        WarningKind::NegativeDuration,
        WarningKind::DuplicateSpan,
        WarningKind::DuplicateSpanId,
        WarningKind::SharedSpanSplit,
        WarningKind::OrphanParent,
        WarningKind::ParentCycle,
        WarningKind::SplitTrace,
        WarningKind::TruncatedValue,
    ];

    /// snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::BadRecord => "bad_record",
            WarningKind::InvalidTraceId => "invalid_trace_id",
            WarningKind::InvalidSpanId => "invalid_span_id",
            WarningKind::NonHexId => "non_hex_id",
            WarningKind::MissingStartTime => "missing_start_time",
            WarningKind::MissingDuration => "missing_duration",
            WarningKind::ZeroDuration => "zero_duration",
            WarningKind::NegativeDuration => "negative_duration",
            WarningKind::DuplicateSpan => "duplicate_span",
            WarningKind::DuplicateSpanId => "duplicate_span_id",
            WarningKind::SharedSpanSplit => "shared_span_split",
            WarningKind::OrphanParent => "orphan_parent",
            WarningKind::ParentCycle => "parent_cycle",
            WarningKind::SplitTrace => "split_trace",
            WarningKind::TruncatedValue => "truncated_value",
        }
    }

    /// One-line explanation for reports.
    pub fn description(self) -> &'static str {
        match self {
            WarningKind::BadRecord => "malformed records skipped",
            WarningKind::InvalidTraceId => "empty or all-zero trace ids (synthetic id assigned)",
            WarningKind::InvalidSpanId => "empty or all-zero span ids (synthetic id assigned)",
            WarningKind::NonHexId => "ids neither hex nor base64 (mapped to a stable hash)",
            WarningKind::MissingStartTime => "spans without a start time (excluded from latency)",
            WarningKind::MissingDuration => "spans without an end time or duration",
            WarningKind::ZeroDuration => "spans of zero duration",
            WarningKind::NegativeDuration => "spans ending before they start (excluded from latency)",
            WarningKind::DuplicateSpan => "exact duplicate spans dropped",
            WarningKind::DuplicateSpanId => "different spans sharing an id (re-identified)",
            WarningKind::SharedSpanSplit => "Zipkin shared server spans split from their client span",
            WarningKind::OrphanParent => "parent ids that name no span in the trace",
            WarningKind::ParentCycle => "parent cycles cut",
            WarningKind::SplitTrace => "traces whose spans arrived after the trace was closed",
            WarningKind::TruncatedValue => "attribute values over 1 MiB cut to 1 MiB",
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts per warning kind. Merging two is exact addition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings {
    counts: [u64; WarningKind::ALL.len()],
}

impl Warnings {
    /// Counts one occurrence.
    pub fn add(&mut self, kind: WarningKind) {
        self.add_n(kind, 1);
    }

    /// Counts `n` occurrences.
    pub fn add_n(&mut self, kind: WarningKind, n: u64) {
        self.counts[kind as usize] += n;
    }

    /// The count for one kind.
    pub fn get(&self, kind: WarningKind) -> u64 {
        self.counts[kind as usize]
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Warnings) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }

    /// Kinds with a non-zero count, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (WarningKind, u64)> + '_ {
        WarningKind::ALL.iter().map(|&k| (k, self.get(k))).filter(|&(_, n)| n > 0)
    }

    /// Total over all kinds.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed_in_order() {
        for (i, k) in WarningKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k}");
        }
    }

    #[test]
    fn counting_and_merging() {
        let mut a = Warnings::default();
        a.add(WarningKind::OrphanParent);
        a.add_n(WarningKind::BadRecord, 2);
        let mut b = Warnings::default();
        b.add(WarningKind::OrphanParent);
        a.merge(&b);
        assert_eq!(a.get(WarningKind::OrphanParent), 2);
        assert_eq!(a.total(), 4);
        let listed: Vec<_> = a.iter().collect();
        assert_eq!(listed, vec![(WarningKind::BadRecord, 2), (WarningKind::OrphanParent, 2)]);
    }
}
