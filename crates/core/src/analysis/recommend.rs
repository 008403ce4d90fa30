//! Recommendations: the bottleneck patterns ([`super::bottleneck`]) turned
//! into plain-language advice, each with the evidence behind it (how many
//! traces show it, an example trace), the critical-path time it could save
//! per trace, and how sure tracelens is. Built from the merged aggregates
//! only, so a merge of partials recommends what one run over every input
//! does.

use serde::Serialize;

use super::bottleneck::{BottleneckView, ERROR_ORIGIN, FAN_OUT, Pattern, RETRY, SEQUENTIAL_CALLS};
use crate::render::{count, duration};

/// Traces that must show a pattern for `high` confidence (with
/// [`HIGH_SHARE`] of all traces).
const HIGH_TRACES: u64 = 20;
/// Share of the traces for `high` confidence.
const HIGH_SHARE: f64 = 0.05;
/// Traces for `medium` confidence.
const MEDIUM_TRACES: u64 = 5;

/// One piece of advice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// The pattern behind it (`n_plus_one`, `sequential_calls`, `retry`,
    /// `dominant_self_time`, `error_origin`, `fan_out`).
    pub kind: &'static str,
    /// What to do, in a sentence.
    pub advice: String,
    /// What was found, in a sentence.
    pub evidence: String,
    /// The service concerned.
    pub service: String,
    /// Its operation.
    pub operation: String,
    /// Critical-path time it could save, per trace analysed, ns (an upper
    /// bound: what overlapping the calls or avoiding the failed attempts
    /// would take off; 0 where the pattern says nothing of time).
    pub saving_ns_per_trace: u64,
    /// Traces showing it.
    pub traces: u64,
    /// Their share of the traces analysed.
    pub share: f64,
    /// `high`, `medium` or `low`: how many traces show it.
    pub confidence: &'static str,
    /// A trace that shows it.
    pub example_trace_id: String,
}

/// The recommendations of `view`, most time saved first (then most traces).
pub fn recommendations(view: &BottleneckView) -> Vec<Recommendation> {
    let total = view.traces_analyzed.max(1);
    let mut out: Vec<Recommendation> = view.patterns.iter().map(|p| recommend(p, total)).collect();
    // A total order, as the patterns' (see [`BottleneckView::patterns`]).
    out.sort_by(|a, b| {
        (b.saving_ns_per_trace, b.traces, a.kind, &a.service, &a.operation)
            .cmp(&(a.saving_ns_per_trace, a.traces, b.kind, &b.service, &b.operation))
            .then_with(|| (&a.advice, &a.evidence).cmp(&(&b.advice, &b.evidence)))
    });
    out
}

fn recommend(p: &Pattern, total: u64) -> Recommendation {
    let op = format!("{} {}", p.service, p.operation);
    let saving = p.potential_savings_ns / total;
    let per_trace = if saving > 0 { format!(" (up to {} per trace)", duration(saving)) } else { String::new() };
    let advice = match p.kind {
        "n_plus_one" => format!(
            "Batch {op}: {} calls it one at a time, up to {} times per request{per_trace}.",
            p.caller.as_deref().unwrap_or("its caller"),
            p.max_count
        ),
        SEQUENTIAL_CALLS => format!(
            "Run the calls {op} makes one after another concurrently, if they do not depend on each other{per_trace}."
        ),
        RETRY => format!(
            "Find why {op} fails before {} retries it: the failed attempts cost time{per_trace}.",
            p.caller.as_deref().unwrap_or("its caller")
        ),
        "dominant_self_time" => {
            format!("Speed up {op}'s own work: it is most of the critical path in {}.", count(p.traces, "trace"))
        }
        ERROR_ORIGIN => match &p.surfaces_in {
            Some(up) => format!("Fix the errors that start in {op}: they surface in {up}."),
            None => format!("Fix the errors that start in {op}."),
        },
        FAN_OUT => format!(
            "Check {op}'s fan-out of up to {} calls per request: each adds load and a chance to wait on the slowest.",
            p.max_count
        ),
        other => format!("Look at {op} ({other})."),
    };
    let share = p.traces as f64 / total as f64;
    let confidence = if p.traces >= HIGH_TRACES && share >= HIGH_SHARE {
        "high"
    } else if p.traces >= MEDIUM_TRACES {
        "medium"
    } else {
        "low"
    };
    Recommendation {
        kind: p.kind,
        advice,
        evidence: p.description.clone(),
        service: p.service.clone(),
        operation: p.operation.clone(),
        saving_ns_per_trace: saving,
        traces: p.traces,
        share,
        confidence,
        example_trace_id: p.example_trace_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(kind: &'static str, traces: u64, savings: u64) -> Pattern {
        Pattern {
            kind,
            description: format!("{kind} found"),
            service: "web".into(),
            operation: "GET /".into(),
            caller: Some("edge Route".into()),
            surfaces_in: None,
            traces,
            occurrences: traces,
            max_count: 4,
            potential_savings_ns: savings,
            example_trace_id: "00".repeat(16),
        }
    }

    fn view(patterns: Vec<Pattern>, traces: u64) -> BottleneckView {
        BottleneckView {
            traces_analyzed: traces,
            total_duration_ns: 0,
            gap_ns: 0,
            traces_fragmented: 0,
            traces_with_spans_outside_parent: 0,
            operations: Vec::new(),
            call_paths: Vec::new(),
            patterns,
        }
    }

    #[test]
    fn advice_is_ranked_by_time_saved_with_confidence_from_the_traces_showing_it() {
        let r = recommendations(&view(
            vec![pattern(FAN_OUT, 3, 0), pattern("n_plus_one", 40, 8_000_000), pattern(RETRY, 10, 20_000_000)],
            100,
        ));
        let kinds: Vec<&str> = r.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [RETRY, "n_plus_one", FAN_OUT]);
        assert_eq!(r[0].saving_ns_per_trace, 200_000, "20 ms over 100 traces");
        assert_eq!((r[0].confidence, r[1].confidence, r[2].confidence), ("medium", "high", "low"));
        assert_eq!(
            r[1].advice,
            "Batch web GET /: edge Route calls it one at a time, up to 4 times per request (up to 80.0µs per trace)."
        );
        assert_eq!(r[1].evidence, "n_plus_one found");
        assert!((r[1].share - 0.4).abs() < 1e-12);
    }

    #[test]
    fn no_patterns_no_advice() {
        assert!(recommendations(&view(Vec::new(), 100)).is_empty());
    }
}
