//! Trace search: [`TraceQuery`] (service, operation, minimum duration,
//! errors only, a time range) and [`TraceSummary`], the row a result list
//! shows. A trace is summarised span by span ([`SummaryBuilder`]), so the
//! same rule applies to assembled traces in memory and to rows read from
//! stored files.

use serde::Serialize;

use crate::model::{Dictionary, Trace};

/// What a search asks for; every given criterion must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// A span of this service...
    pub service: Option<String>,
    /// ...with this operation (both given: the same span has both).
    pub operation: Option<String>,
    /// From the earliest start to the latest end, at least this long, ns.
    pub min_duration_ns: u64,
    /// Only traces with a span with status ERROR.
    pub errors_only: bool,
    /// The trace starts at or after this, unix ns.
    pub since_ns: Option<u64>,
    /// The trace starts before this, unix ns.
    pub until_ns: Option<u64>,
}

/// One trace in a result list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    /// Trace id, hex.
    pub trace_id: String,
    /// Earliest span start, unix ns (text: it does not fit a JavaScript number).
    #[serde(serialize_with = "as_text")]
    pub start_unix_nano: u64,
    /// Earliest start to latest end, ns.
    pub duration_ns: u64,
    /// The earliest root span's service (empty when no span is a root).
    pub root_service: String,
    /// Its operation.
    pub root_operation: String,
    /// Spans.
    pub spans: u64,
    /// Spans with status ERROR.
    pub errors: u64,
}

fn as_text<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Summarises one trace span by span and notes whether a span matched
/// the query's service and operation.
#[derive(Clone, Debug)]
pub struct SummaryBuilder {
    summary: TraceSummary,
    end_ns: u64,
    root_start: Option<u64>,
    matched: bool,
}

impl SummaryBuilder {
    /// An empty summary of trace `trace_id` (hex).
    pub fn new(trace_id: String) -> SummaryBuilder {
        SummaryBuilder {
            summary: TraceSummary {
                trace_id,
                start_unix_nano: u64::MAX,
                duration_ns: 0,
                root_service: String::new(),
                root_operation: String::new(),
                spans: 0,
                errors: 0,
            },
            end_ns: 0,
            root_start: None,
            matched: false,
        }
    }

    /// Adds one span.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        query: &TraceQuery,
        service: &str,
        operation: &str,
        root: bool,
        error: bool,
        start_ns: u64,
        end_ns: u64,
    ) {
        let s = &mut self.summary;
        s.spans += 1;
        s.errors += u64::from(error);
        s.start_unix_nano = s.start_unix_nano.min(start_ns);
        self.end_ns = self.end_ns.max(end_ns.max(start_ns));
        if root && self.root_start.is_none_or(|t| start_ns < t) {
            self.root_start = Some(start_ns);
            s.root_service = service.to_string();
            s.root_operation = operation.to_string();
        }
        self.matched |= query.service.as_deref().is_none_or(|q| q == service)
            && query.operation.as_deref().is_none_or(|q| q == operation);
    }

    /// The summary, if the trace matches the query.
    pub fn finish(mut self, query: &TraceQuery) -> Option<TraceSummary> {
        if self.summary.spans == 0 {
            return None;
        }
        self.summary.duration_ns = self.end_ns.saturating_sub(self.summary.start_unix_nano);
        let s = &self.summary;
        let keep = self.matched
            && s.duration_ns >= query.min_duration_ns
            && (!query.errors_only || s.errors > 0)
            && query.since_ns.is_none_or(|t| s.start_unix_nano >= t)
            && query.until_ns.is_none_or(|t| s.start_unix_nano < t);
        keep.then_some(self.summary)
    }
}

impl TraceQuery {
    /// The summary of `trace`, if it matches.
    pub fn matches(&self, dict: &Dictionary, trace: &Trace) -> Option<TraceSummary> {
        let mut b = SummaryBuilder::new(trace.trace_id.to_hex());
        for (i, s) in trace.spans.iter().enumerate() {
            let root = trace.parent(i).is_none() && s.parent_id.is_none();
            b.add(self, dict.resolve(s.service), dict.resolve(s.name), root, s.is_error(), s.start_ns, s.end_ns);
        }
        b.finish(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(query: &TraceQuery, spans: &[(&str, &str, bool, bool, u64, u64)]) -> Option<TraceSummary> {
        let mut b = SummaryBuilder::new("ab".into());
        for &(service, op, root, error, start, end) in spans {
            b.add(query, service, op, root, error, start, end);
        }
        b.finish(query)
    }

    const TRACE: &[(&str, &str, bool, bool, u64, u64)] = &[
        ("api", "GET /", true, false, 100, 400),
        ("db", "SELECT", false, true, 150, 450),
        ("api", "auth", false, false, 90, 120),
    ];

    #[test]
    fn a_trace_is_summarised_from_its_spans() {
        let s = summary(&TraceQuery::default(), TRACE).unwrap();
        assert_eq!((s.start_unix_nano, s.duration_ns, s.spans, s.errors), (90, 360, 3, 1));
        assert_eq!((s.root_service.as_str(), s.root_operation.as_str()), ("api", "GET /"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["start_unix_nano"], "90");
    }

    #[test]
    fn every_criterion_must_hold() {
        let q = |f: &dyn Fn(&mut TraceQuery)| {
            let mut q = TraceQuery::default();
            f(&mut q);
            summary(&q, TRACE).is_some()
        };
        assert!(q(&|q| q.service = Some("db".into())));
        assert!(!q(&|q| q.service = Some("web".into())));
        assert!(q(&|q| {
            q.service = Some("api".into());
            q.operation = Some("auth".into());
        }));
        assert!(!q(&|q| {
            q.service = Some("db".into());
            q.operation = Some("auth".into());
        }));
        assert!(q(&|q| q.min_duration_ns = 360));
        assert!(!q(&|q| q.min_duration_ns = 361));
        assert!(q(&|q| q.errors_only = true));
        assert!(q(&|q| q.since_ns = Some(90)));
        assert!(!q(&|q| q.since_ns = Some(91)));
        assert!(!q(&|q| q.until_ns = Some(90)));
        assert!(q(&|q| q.until_ns = Some(91)));
        let ok = [("api", "GET /", true, false, 100, 400)];
        let errors = TraceQuery { errors_only: true, ..TraceQuery::default() };
        assert!(summary(&errors, &ok).is_none());
    }
}
