//! The receiver's queries, shared by the JSON API and the gRPC query
//! service: which time buckets a query covers, merged off the async
//! workers, narrowed to a service; one trace (from the log and the
//! compacted files) with its critical path; the judge over the recent
//! traces. Each answers with the view types the offline commands print.

use serde::Serialize;

use super::{RequestError, Service, ServiceError};
use crate::live::buckets::Range;
use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::bottleneck::BottleneckView;
use tracelens_core::analysis::critical_path::critical_path;
use tracelens_core::analysis::graph::GraphView;
use tracelens_core::analysis::metrics::OperationView;
use tracelens_core::model::{Dictionary, Trace, TraceId};

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
        let text = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
        let range = Range::parse(text(&filter.since).as_deref(), text(&filter.until).as_deref(), self.clock.now_ms())
            .map_err(RequestError::from)?;
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
        let Some(trace_id) = TraceId::from_text(id).id() else {
            return Err(RequestError::TraceId(id.to_string()).into());
        };
        let Some(stored) = &self.stored else {
            let live = self.live.lock().expect("live lock");
            return match live.trace(&trace_id) {
                Some(trace) => Ok(trace_out(&live.dict, trace)),
                None => Err(ServiceError::TraceNotRecent(trace_id)),
            };
        };
        let mut dict = Dictionary::default();
        let spans = stored.trace_spans(&trace_id, &mut dict)?;
        match tracelens_core::assemble::assemble_all(spans).0.into_iter().next() {
            Some(trace) => Ok(trace_out(&dict, &trace)),
            None => Err(ServiceError::TraceNotFound(trace_id)),
        }
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
    /// Spans in assembly order.
    pub spans: Vec<SpanOut>,
    /// Critical-path sections, in time order.
    pub critical_path: Vec<SectionOut>,
}

fn trace_out(dict: &Dictionary, trace: &Trace) -> TraceOut {
    let cp = critical_path(trace, &Default::default());
    let spans = trace
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
    TraceOut { trace_id: trace.trace_id.to_hex(), duration_ns: cp.duration_ns, spans, critical_path }
}
