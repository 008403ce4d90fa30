//! The receiver's queries, shared by the JSON API and the gRPC query
//! service: which time buckets a query covers, merged off the async
//! workers, narrowed to a service; one trace (from the log and the
//! compacted files) with its critical path; trace search over the recent
//! and the compacted traces; the web UI's report data. Each answers with
//! the view types the offline commands print.

use serde::Serialize;

use super::{RequestError, Service, ServiceError};
use crate::live::buckets::Range;
use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::bottleneck::BottleneckView;
use tracelens_core::analysis::critical_path::critical_path;
use tracelens_core::analysis::graph::GraphView;
use tracelens_core::analysis::metrics::OperationView;
use tracelens_core::model::{Dictionary, Trace, TraceId};
use tracelens_core::search::{TraceQuery, TraceSummary};
use tracelens_ui::data::Source;
use tracelens_ui::{KeeperConfig, ReportData, Timeline, TraceKeeper};

/// A query's filters, as text from the caller (empty or absent: none).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Filter {
    /// Only this service.
    pub service: Option<String>,
    /// From (see [`Range::parse`]).
    pub since: Option<String>,
    /// To, exclusive.
    pub until: Option<String>,
}

impl Filter {
    fn service(&self) -> Option<&str> {
        self.service.as_deref().filter(|s| !s.is_empty())
    }

    /// The time range, checked.
    fn range(&self, now_ms: u64) -> Result<Range, RequestError> {
        let text = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
        Ok(Range::parse(text(&self.since).as_deref(), text(&self.until).as_deref(), now_ms)?)
    }
}

/// An answer over live analysis, with how far the restore of stored
/// spans got while it is still running (the answer is then partial).
#[derive(Clone, Debug)]
pub struct Partial<T> {
    /// The answer.
    pub value: T,
    /// While restoring: how far it got.
    pub restoring: Option<String>,
}

impl Service {
    fn partial<T>(&self, value: T) -> Partial<T> {
        Partial { value, restoring: self.restoring() }
    }

    /// The buckets the filter's range covers, merged outside the live lock.
    async fn analyses(&self, filter: &Filter) -> Result<TraceAnalyses, ServiceError> {
        self.analyses_in(filter.range(self.clock.now_ms())?).await
    }

    /// The buckets `range` covers, merged outside the live lock.
    async fn analyses_in(&self, range: Range) -> Result<TraceAnalyses, ServiceError> {
        let selection = self.live.lock().expect("live lock").select(range);
        tokio::task::spawn_blocking(move || selection.merge()).await.map_err(ServiceError::Task)
    }

    /// The service graph.
    pub async fn graph(&self, filter: &Filter) -> Result<Partial<GraphView>, ServiceError> {
        let analyses = self.analyses(filter).await?;
        let mut view = analyses.graph.view(&self.live.lock().expect("live lock").dict);
        if let Some(service) = filter.service() {
            view.only_service(service);
        }
        Ok(self.partial(view))
    }

    /// Span metrics.
    pub async fn operations(&self, filter: &Filter) -> Result<Partial<Vec<OperationView>>, ServiceError> {
        let analyses = self.analyses(filter).await?;
        let mut ops = analyses.metrics.views(&self.live.lock().expect("live lock").dict);
        if let Some(service) = filter.service() {
            ops.retain(|o| o.service == service);
        }
        Ok(self.partial(ops))
    }

    /// Bottlenecks.
    pub async fn bottlenecks(&self, filter: &Filter) -> Result<Partial<BottleneckView>, ServiceError> {
        let analyses = self.analyses(filter).await?;
        let mut view = analyses.bottlenecks.view(&self.live.lock().expect("live lock").dict);
        if let Some(service) = filter.service() {
            view.operations.retain(|o| o.service == service);
            view.call_paths.retain(|o| o.service == service);
            view.patterns.retain(|p| p.service == service);
        }
        Ok(self.partial(view))
    }

    /// A trace by id (`id` as the caller wrote it: hex, or base64). With a
    /// data directory, every span of it the receiver acknowledged and
    /// still keeps (see [`crate::storage::lookup`]), whatever the
    /// recent-trace cache holds; without one, the recently completed
    /// traces. Blocking: it reads files.
    pub fn trace(&self, id: &str) -> Result<TraceOut, ServiceError> {
        self.with_trace(id, trace_out)
    }

    /// A trace by id as the web UI's waterfall draws it (see [`Service::trace`]).
    pub fn trace_timeline(&self, id: &str) -> Result<Timeline, ServiceError> {
        self.with_trace(id, |dict, trace| Timeline::new(dict, trace, &critical_path(trace, &Default::default())))
    }

    fn with_trace<T>(&self, id: &str, view: impl FnOnce(&Dictionary, &Trace) -> T) -> Result<T, ServiceError> {
        let Some(trace_id) = TraceId::from_text(id).id() else {
            return Err(RequestError::TraceId(id.to_string()).into());
        };
        let Some(stored) = &self.stored else {
            let live = self.live.lock().expect("live lock");
            return match live.trace(&trace_id) {
                Some(trace) => Ok(view(&live.dict, trace)),
                None => Err(ServiceError::TraceNotRecent(trace_id)),
            };
        };
        let mut dict = Dictionary::default();
        let spans = stored.trace_spans(&trace_id, &mut dict)?;
        match tracelens_core::assemble::assemble_all(spans).0.into_iter().next() {
            Some(trace) => Ok(view(&dict, &trace)),
            None => Err(ServiceError::TraceNotFound(trace_id)),
        }
    }

    /// Traces matching a search, most recent first: the recently completed
    /// ones and, with a data directory, the compacted files. Blocking: it
    /// reads files.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchAnswer, ServiceError> {
        let (query, limit) = request.query(self.clock.now_ms())?;
        let mut found: rustc_hash::FxHashMap<String, TraceSummary> = rustc_hash::FxHashMap::default();
        let (recent, dict) = {
            let live = self.live.lock().expect("live lock");
            (live.recent_traces(), live.dict.clone())
        };
        for trace in &recent {
            if let Some(s) = query.matches(&dict, trace) {
                found.insert(s.trace_id.clone(), s);
            }
        }
        let mut searched = vec![format!("{} recent traces", recent.len())];
        if let Some(stored) = &self.stored {
            let skip = |file: &std::path::Path| stored.index.read().expect("index lock").is_unreadable(file);
            let (compacted, files) =
                crate::storage::search::search(&stored.dir, &query, &skip, &mut |file, e| stored.unreadable(file, &e));
            for s in compacted {
                // A trace still recent is complete there; the files may
                // hold only the part compacted so far.
                found.entry(s.trace_id.clone()).or_insert(s);
            }
            searched.push(format!("{files} compacted files"));
        }
        let mut traces: Vec<TraceSummary> = found.into_values().collect();
        traces.sort_by(|a, b| b.start_unix_nano.cmp(&a.start_unix_nano).then_with(|| a.trace_id.cmp(&b.trace_id)));
        let truncated = traces.len() > limit;
        traces.truncate(limit);
        Ok(SearchAnswer { traces, truncated, searched })
    }

    /// Everything the web UI draws over the filter's range: the merged
    /// analyses and the slowest and failing of the recent traces in it.
    pub async fn report(&self, filter: &Filter) -> Result<Partial<ReportData>, ServiceError> {
        let range = filter.range(self.clock.now_ms())?;
        let analyses = self.analyses_in(range).await?;
        let (recent, dict) = {
            let live = self.live.lock().expect("live lock");
            (live.recent_traces(), live.dict.clone())
        };
        let service = filter.service().map(str::to_string);
        let data = tokio::task::spawn_blocking(move || {
            let in_range = |t: &Trace| {
                let start_ms = t.spans.iter().map(|s| s.start_ns).min().unwrap_or(0) / 1_000_000;
                range.since_ms.is_none_or(|s| start_ms >= s) && range.until_ms.is_none_or(|u| start_ms < u)
            };
            let wanted = service.as_deref().map(|name| dict.get(name));
            let mut keeper = TraceKeeper::new(KeeperConfig::default());
            for trace in recent.iter().filter(|t| in_range(t)) {
                if let Some(sym) = wanted
                    && !sym.is_some_and(|sym| trace.spans.iter().any(|s| s.service == sym))
                {
                    continue;
                }
                keeper.add(&dict, trace, &critical_path(trace, &Default::default()));
            }
            let spans = analyses.metrics.iter().map(|(_, s)| s.calls).sum();
            let source =
                Source { inputs: vec!["live".to_string()], spans, traces: analyses.traces, ..Source::default() };
            let mut data = ReportData::new("tracelens live", source, &dict, &analyses);
            data.live = true;
            data.traces = Some(keeper.finish());
            if let Some(service) = &service {
                data.only_service(service);
            }
            data
        })
        .await
        .map_err(ServiceError::Task)?;
        Ok(self.partial(data))
    }
}

/// A trace search, as text from the caller (empty or absent: any).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct SearchRequest {
    /// A span of this service.
    pub service: Option<String>,
    /// A span with this operation (of the service, if given).
    pub operation: Option<String>,
    /// At least this long (`250ms`, `2s`).
    pub min_duration: Option<String>,
    /// `true`: only traces with an error span.
    pub errors: Option<String>,
    /// Started at or after (see [`Range::parse`]).
    pub since: Option<String>,
    /// Started before.
    pub until: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<String>,
}

/// Results of a trace search.
#[derive(Clone, Debug, Serialize)]
pub struct SearchAnswer {
    /// Matching traces, most recent first.
    pub traces: Vec<TraceSummary>,
    /// More matched than the limit.
    pub truncated: bool,
    /// What was searched.
    pub searched: Vec<String>,
}

/// Results a search returns unless `limit` says otherwise.
const DEFAULT_SEARCH_LIMIT: usize = 100;
/// The most a search returns.
const MAX_SEARCH_LIMIT: usize = 1000;

impl SearchRequest {
    /// The query, and the result limit.
    fn query(&self, now_ms: u64) -> Result<(TraceQuery, usize), RequestError> {
        let text = |t: &Option<String>| t.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
        let range = Range::parse(text(&self.since).as_deref(), text(&self.until).as_deref(), now_ms)?;
        let min_duration_ns = match text(&self.min_duration) {
            None => 0,
            Some(t) => tracelens_core::model::time::parse_duration(&t).ok_or_else(|| {
                RequestError::Search(format!("min_duration: {t:?} is not a duration such as 250ms, 2s or 1m"))
            })?,
        };
        let errors_only = match text(&self.errors).as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => return Err(RequestError::Search(format!("errors: {other:?} is not true or false"))),
        };
        let limit = match text(&self.limit) {
            None => DEFAULT_SEARCH_LIMIT,
            Some(t) => match t.parse::<usize>() {
                Ok(n) if (1..=MAX_SEARCH_LIMIT).contains(&n) => n,
                _ => {
                    return Err(RequestError::Search(format!(
                        "limit: {t:?} is not a number from 1 to {MAX_SEARCH_LIMIT}"
                    )));
                }
            },
        };
        let query = TraceQuery {
            service: text(&self.service),
            operation: text(&self.operation),
            min_duration_ns,
            errors_only,
            since_ns: range.since_ms.map(|t| t.saturating_mul(1_000_000)),
            until_ns: range.until_ms.map(|t| t.saturating_mul(1_000_000)),
        };
        Ok((query, limit))
    }
}

/// One span of a trace.
#[derive(Clone, Debug, Serialize)]
pub struct SpanOut {
    /// Span id, hex.
    pub span_id: String,
    /// Parent span id, hex.
    pub parent_span_id: Option<String>,
    /// Service.
    pub service: String,
    /// Operation.
    pub operation: String,
    /// Kind, lower case.
    pub kind: &'static str,
    /// Start, unix ns.
    pub start_unix_nano: u64,
    /// End, unix ns.
    pub end_unix_nano: u64,
    /// Status ERROR.
    pub error: bool,
}

/// One section of a critical path.
#[derive(Clone, Debug, Serialize)]
pub struct SectionOut {
    /// The span on the path.
    pub span_id: String,
    /// Its service.
    pub service: String,
    /// Its operation.
    pub operation: String,
    /// Section start, unix ns.
    pub start_unix_nano: u64,
    /// Section end, unix ns.
    pub end_unix_nano: u64,
}

/// A trace with its critical path.
#[derive(Clone, Debug, Serialize)]
pub struct TraceOut {
    /// Trace id, hex.
    pub trace_id: String,
    /// Duration of the critical path's trace, ns.
    pub duration_ns: u64,
    /// Spans in the trace.
    pub span_count: usize,
    /// Where in the trace's spans `spans` starts.
    pub offset: usize,
    /// Where the next page starts (None: `spans` reaches the end).
    pub next_offset: Option<usize>,
    /// Spans in assembly order: all, or one page (see [`TraceOut::page`]).
    pub spans: Vec<SpanOut>,
    /// Critical-path sections of the whole trace, in time order.
    pub critical_path: Vec<SectionOut>,
}

/// Spans a page of a trace holds unless asked otherwise.
pub const TRACE_PAGE_SPANS: usize = 10_000;
/// The most spans a page may hold.
pub const TRACE_PAGE_MAX_SPANS: usize = 100_000;

impl TraceOut {
    /// Only `limit` spans from `offset` (the critical path stays whole).
    pub fn page(mut self, offset: usize, limit: usize) -> TraceOut {
        let start = offset.min(self.spans.len());
        let end = start.saturating_add(limit).min(self.spans.len());
        self.next_offset = (end < self.spans.len()).then_some(end);
        self.spans.truncate(end);
        self.spans.drain(..start);
        self.offset = start;
        self
    }
}

fn trace_out(dict: &Dictionary, trace: &Trace) -> TraceOut {
    let cp = critical_path(trace, &Default::default());
    let spans: Vec<SpanOut> = trace
        .spans
        .iter()
        .map(|s| SpanOut {
            span_id: s.span_id.to_hex(),
            parent_span_id: s.parent_id.map(|p| p.to_hex()),
            service: dict.resolve(s.service).to_string(),
            operation: dict.resolve(s.name).to_string(),
            kind: s.kind.as_str(),
            start_unix_nano: s.start_ns,
            end_unix_nano: s.end_ns,
            error: s.is_error(),
        })
        .collect();
    let critical_path = cp
        .sections
        .iter()
        .map(|sec| {
            let s = &trace.spans[sec.span];
            SectionOut {
                span_id: s.span_id.to_hex(),
                service: dict.resolve(s.service).to_string(),
                operation: dict.resolve(s.name).to_string(),
                start_unix_nano: sec.start_ns,
                end_unix_nano: sec.end_ns,
            }
        })
        .collect();
    TraceOut {
        trace_id: trace.trace_id.to_hex(),
        duration_ns: cp.duration_ns,
        span_count: spans.len(),
        offset: 0,
        next_offset: None,
        spans,
        critical_path,
    }
}
