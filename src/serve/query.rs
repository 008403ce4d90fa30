//! The receiver's queries, shared by the JSON API and the gRPC query
//! service: which time buckets a query covers, merged off the async
//! workers, narrowed to a service, and one trace (from the log and the
//! compacted files) with its critical path. Each answers with the same view types the offline commands print.

use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use super::buckets::{Analyses, Range};
use super::ingest::{BodyEncoding, accept_bytes};
use super::live::Live;
use super::trace_index::TraceIndex;
use crate::analysis::bottleneck::BottleneckView;
use crate::analysis::critical_path::critical_path;
use crate::analysis::graph::GraphView;
use crate::analysis::metrics::OperationView;
use crate::model::{Span, TraceId};

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

/// A trace by id. With a data directory, every span of it the receiver
/// acknowledged and still keeps: the log's segments not yet compacted (the
/// one being written included) and the compacted files, so a trace is
/// readable from its acknowledgement on — while still open, after a crash
/// before it was restored, during and after compaction — whatever the
/// recent-trace cache holds. Without one, the recently completed traces.
pub fn trace(live: &Mutex<Live>, id: &str, stored: Option<&Compacted>) -> Result<TraceOut, QueryError> {
    let Some(trace_id) = TraceId::from_text(id).id() else {
        return Err(QueryError::BadRequest(format!("{id:?} is not a trace id")));
    };
    let Some(stored) = stored else {
        let live = live.lock().expect("live lock");
        return match live.trace(&trace_id) {
            Some(trace) => Ok(trace_out(&live.dict, trace)),
            None => Err(QueryError::NotFound(format!("trace {trace_id} is not among the recently completed traces"))),
        };
    };
    let mut dict = crate::model::Dictionary::default();
    // The log first: a segment compacted meanwhile is in a compacted file
    // by the time the files are listed.
    let mut spans = logged_spans(&stored.dir, &trace_id, &mut dict)?;
    let may_hold = |file: &std::path::Path| stored.index.read().expect("index lock").may_hold(file, &trace_id);
    spans.extend(
        super::compact::find_trace(&stored.dir, &trace_id, &mut dict, &may_hold)
            .map_err(|e| QueryError::Internal(e.to_string()))?,
    );
    // A span compacted while the log was read, or logged twice (a sender's
    // retry of a request that had succeeded), is one span.
    let mut seen = rustc_hash::FxHashSet::default();
    spans.retain(|s| seen.insert((s.span_id, s.parent_id, s.start_ns, s.end_ns, s.kind as u8)));
    match crate::assemble::assemble_all(spans).0.into_iter().next() {
        Some(trace) => Ok(trace_out(&dict, &trace)),
        None => Err(QueryError::NotFound(format!(
            "trace {trace_id} is not among the spans received (nothing with this id arrived, or it is older than the retention)"
        ))),
    }
}

/// The spans of `trace_id` in the log's segments present now: only records
/// that mention the id (its bytes, or its hex or base64 text) are decoded.
fn logged_spans(
    dir: &std::path::Path,
    trace_id: &TraceId,
    dict: &mut crate::model::Dictionary,
) -> Result<Vec<Span>, QueryError> {
    use base64::Engine as _;
    let raw = trace_id.0;
    let hex = trace_id.to_hex();
    let texts = [hex.clone(), hex.to_uppercase(), base64::engine::general_purpose::STANDARD.encode(raw)];
    let raw_finder = memchr::memmem::Finder::new(&raw);
    let text_finders: Vec<memchr::memmem::Finder<'_>> =
        texts.iter().map(|t| memchr::memmem::Finder::new(t.as_bytes())).collect();
    let mut warnings = crate::model::Warnings::default();
    let mut spans = Vec::new();
    super::wal::scan(dir, &mut |record| {
        let Some((&tag, body)) = record.split_first() else { return };
        let Some(encoding) = BodyEncoding::from_wal_tag(tag) else { return };
        let mentioned = match encoding {
            BodyEncoding::Protobuf => raw_finder.find(body).is_some(),
            BodyEncoding::Json => text_finders.iter().any(|f| f.find(body).is_some()),
        };
        if !mentioned {
            return;
        }
        // The record was accepted when it was logged; one that no longer
        // decodes was reported when the log was opened.
        if let Ok(accepted) = accept_bytes(body, encoding, dict, &mut warnings) {
            spans.extend(accepted.spans.into_iter().filter(|s| s.trace_id == *trace_id));
        }
    })
    .map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(spans)
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
