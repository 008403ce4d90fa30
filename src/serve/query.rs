//! The receiver's queries, shared by the JSON API and the gRPC query
//! service: which time buckets a query covers, merged off the async
//! workers, narrowed to a service, and one recent trace with its critical
//! path. Each answers with the same view types the offline commands print.

use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use super::buckets::{Analyses, Range};
use super::live::Live;
use super::trace_index::TraceIndex;
use crate::analysis::bottleneck::BottleneckView;
use crate::analysis::critical_path::critical_path;
use crate::analysis::graph::GraphView;
use crate::analysis::metrics::OperationView;
use crate::model::TraceId;

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

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The caller's input is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing matches.
    #[error("{0}")]
    NotFound(String),
    /// tracelens failed.
    #[error("{0}")]
    Internal(String),
}

/// The buckets the filter's range covers, merged outside the live lock.
async fn analyses(live: &Mutex<Live>, filter: &Filter, now_ms: u64) -> Result<Analyses, QueryError> {
    let text = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
    let range = Range::parse(text(&filter.since).as_deref(), text(&filter.until).as_deref(), now_ms)
        .map_err(QueryError::BadRequest)?;
    let selection = live.lock().expect("live lock").select(range);
    tokio::task::spawn_blocking(move || selection.merge()).await.map_err(|e| QueryError::Internal(e.to_string()))
}

/// The service graph.
pub async fn graph(live: &Mutex<Live>, filter: &Filter, now_ms: u64) -> Result<GraphView, QueryError> {
    let analyses = analyses(live, filter, now_ms).await?;
    let mut view = analyses.graph.view(&live.lock().expect("live lock").dict);
    if let Some(service) = filter.service() {
        view.only_service(service);
    }
    Ok(view)
}

/// Span metrics.
pub async fn operations(live: &Mutex<Live>, filter: &Filter, now_ms: u64) -> Result<Vec<OperationView>, QueryError> {
    let analyses = analyses(live, filter, now_ms).await?;
    let mut ops = analyses.metrics.views(&live.lock().expect("live lock").dict);
    if let Some(service) = filter.service() {
        ops.retain(|o| o.service == service);
    }
    Ok(ops)
}

/// Bottlenecks.
pub async fn bottlenecks(live: &Mutex<Live>, filter: &Filter, now_ms: u64) -> Result<BottleneckView, QueryError> {
    let analyses = analyses(live, filter, now_ms).await?;
    let mut view = analyses.bottlenecks.view(&live.lock().expect("live lock").dict);
    if let Some(service) = filter.service() {
        view.operations.retain(|o| o.service == service);
        view.call_paths.retain(|o| o.service == service);
        view.patterns.retain(|p| p.service == service);
    }
    Ok(view)
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

/// The compacted Parquet files trace look-ups fall back to, with the index
/// of which files may hold a trace.
#[derive(Clone, Debug)]
pub struct Compacted {
    /// The data directory.
    pub dir: std::path::PathBuf,
    /// Filled by compaction and the restore.
    pub index: Arc<RwLock<TraceIndex>>,
}

/// A recently completed trace by id, else one in the compacted files.
pub fn trace(live: &Mutex<Live>, id: &str, compacted: Option<&Compacted>) -> Result<TraceOut, QueryError> {
    let Some(trace_id) = TraceId::from_text(id).id() else {
        return Err(QueryError::BadRequest(format!("{id:?} is not a trace id")));
    };
    {
        let live = live.lock().expect("live lock");
        if let Some(trace) = live.trace(&trace_id) {
            return Ok(trace_out(&live.dict, trace));
        }
    }
    if let Some(compacted) = compacted {
        let mut dict = crate::model::Dictionary::default();
        let may_hold = |file: &std::path::Path| compacted.index.read().expect("index lock").may_hold(file, &trace_id);
        let spans = super::compact::find_trace(&compacted.dir, &trace_id, &mut dict, &may_hold)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        if let Some(trace) = crate::assemble::assemble_all(spans).0.into_iter().next() {
            return Ok(trace_out(&dict, &trace));
        }
    }
    Err(QueryError::NotFound(format!(
        "trace {trace_id} is neither among the recently completed traces (it may still be open) nor in the compacted files"
    )))
}

fn trace_out(dict: &crate::model::Dictionary, trace: &crate::model::Trace) -> TraceOut {
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

/// The judge's verdict over the recently completed traces (`--keep-traces`
/// of them): traces and names are taken under the lock, judged after it.
pub async fn verdict(
    live: &Mutex<Live>,
    service: String,
    cohorts: crate::judge::Cohorts,
    config: crate::judge::JudgeConfig,
    complete: bool,
) -> Result<crate::judge::Verdict, QueryError> {
    let (traces, dict) = {
        let live = live.lock().expect("live lock");
        (live.recent_traces(), live.dict.clone())
    };
    tokio::task::spawn_blocking(move || {
        let mut judge = crate::judge::Judge::new(&service, cohorts);
        for trace in &traces {
            judge.add_trace(&dict, trace);
        }
        // A service or versions never seen is a mistake in the request,
        // unless stored traces are still being restored.
        if complete {
            judge.check(crate::judge::Presence::Live).map_err(|e| QueryError::BadRequest(e.to_string()))?;
        }
        Ok(judge.verdict(&config))
    })
    .await
    .map_err(|e| QueryError::Internal(e.to_string()))?
}
