//! The gRPC query service (`tracelens.query.v1.QueryService`, defined in
//! `proto/`): the JSON API's queries in protobuf, converted from the same
//! views by plain functions.

use std::sync::{Arc, Mutex};

use tonic::{Request, Response, Status};

use super::gate::{Deployments, JudgeRequest, VerdictRequest};
use super::live::Live;
use super::query::{self, Filter, QueryError};
use super::query_proto as pb;
use crate::analysis::LatencySummary;
use crate::analysis::bottleneck::{BottleneckView, OperationBottleneck, Pattern};
use crate::analysis::graph::GraphView;
use crate::analysis::metrics::OperationView;

/// The service over the receiver's live state.
pub struct QueryApi {
    live: Arc<Mutex<Live>>,
    deployments: Arc<Mutex<Deployments>>,
    compacted: Option<query::Compacted>,
    restoring: Option<Arc<super::restore::Progress>>,
    now_ms: fn() -> u64,
}

impl QueryApi {
    /// Answers from `live` (and the deployment markers), with `now_ms` as
    /// the clock for relative times.
    pub fn new(live: Arc<Mutex<Live>>, deployments: Arc<Mutex<Deployments>>, now_ms: fn() -> u64) -> QueryApi {
        QueryApi { live, deployments, compacted: None, restoring: None, now_ms }
    }

    /// Withholds verdicts while `progress` says stored spans are still
    /// being restored.
    pub fn with_restore(mut self, progress: Arc<super::restore::Progress>) -> QueryApi {
        self.restoring = Some(progress);
        self
    }

    /// How far a restore running got, or empty.
    fn restoring(&self) -> String {
        self.restoring.as_ref().and_then(|p| p.describe()).unwrap_or_default()
    }

    /// Also looks up traces in the compacted files.
    pub fn with_compacted(mut self, compacted: query::Compacted) -> QueryApi {
        self.compacted = Some(compacted);
        self
    }
}

fn status(e: QueryError) -> Status {
    match e {
        QueryError::BadRequest(m) => Status::invalid_argument(m),
        QueryError::NotFound(m) => Status::not_found(m),
        QueryError::Internal(m) => Status::internal(m),
    }
}

fn filter(q: pb::RangeQuery) -> Filter {
    Filter { service: Some(q.service), since: Some(q.since), until: Some(q.until) }
}

/// A latency summary as a message.
pub fn latency(s: &LatencySummary) -> pb::LatencySummary {
    pb::LatencySummary {
        count: s.count,
        mean_ns: s.mean_ns,
        min_ns: s.min_ns,
        p50_ns: s.p50_ns,
        p90_ns: s.p90_ns,
        p95_ns: s.p95_ns,
        p99_ns: s.p99_ns,
        p999_ns: s.p999_ns,
        max_ns: s.max_ns,
    }
}

/// The service graph as a message.
pub fn graph(v: &GraphView) -> pb::Graph {
    let u = v.unpaired;
    pb::Graph {
        restoring: String::new(),
        nodes: v.nodes.iter().map(|n| pb::Node { name: n.name.clone(), r#type: n.kind.as_str().to_string() }).collect(),
        edges: v
            .edges
            .iter()
            .map(|e| pb::Edge {
                client: e.client.clone(),
                server: e.server.clone(),
                connection_type: e.connection_type.to_string(),
                calls: e.calls,
                failed: e.failed,
                inferred: e.inferred,
                server_latency: Some(latency(&e.server_latency)),
                client_latency: e.client_latency.as_ref().map(latency),
            })
            .collect(),
        unpaired: Some(pb::Unpaired {
            client: u.client,
            producer: u.producer,
            orphan_server: u.orphan_server,
            orphan_consumer: u.orphan_consumer,
            extra_server: u.extra_server,
        }),
    }
}

/// Span metrics as a message.
pub fn operations(ops: &[OperationView]) -> pb::Operations {
    pb::Operations {
        restoring: String::new(),
        operations: ops
            .iter()
            .map(|o| pb::Operation {
                service: o.service.clone(),
                operation: o.operation.clone(),
                kind: o.kind.to_string(),
                calls: o.calls,
                errors: o.errors,
                error_rate: o.error_rate,
                latency: Some(latency(&o.latency)),
            })
            .collect(),
    }
}

fn operation_bottleneck(o: &OperationBottleneck) -> pb::OperationBottleneck {
    pb::OperationBottleneck {
        service: o.service.clone(),
        operation: o.operation.clone(),
        call_path: o.call_path.clone(),
        critical_path_ns_total: o.critical_path_ns_total,
        share: o.share,
        traces_on_path: o.traces_on_path,
        p50_ns: o.p50_ns,
        p95_ns: o.p95_ns,
        p99_ns: o.p99_ns,
        example_trace_id: o.example_trace_id.clone(),
    }
}

fn pattern(p: &Pattern) -> pb::Pattern {
    pb::Pattern {
        kind: p.kind.to_string(),
        description: p.description.clone(),
        service: p.service.clone(),
        operation: p.operation.clone(),
        caller: p.caller.clone(),
        traces: p.traces,
        occurrences: p.occurrences,
        max_count: p.max_count,
        potential_savings_ns: p.potential_savings_ns,
        example_trace_id: p.example_trace_id.clone(),
    }
}

/// Bottlenecks as a message.
pub fn bottlenecks(v: &BottleneckView) -> pb::Bottlenecks {
    pb::Bottlenecks {
        restoring: String::new(),
        traces_analyzed: v.traces_analyzed,
        total_duration_ns: v.total_duration_ns,
        operations: v.operations.iter().map(operation_bottleneck).collect(),
        call_paths: v.call_paths.iter().map(operation_bottleneck).collect(),
        patterns: v.patterns.iter().map(pattern).collect(),
    }
}

/// A trace as a message.
pub fn trace(t: query::TraceOut) -> pb::Trace {
    pb::Trace {
        trace_id: t.trace_id,
        duration_ns: t.duration_ns,
        spans: t
            .spans
            .into_iter()
            .map(|s| pb::Span {
                span_id: s.span_id,
                parent_span_id: s.parent_span_id,
                service: s.service,
                operation: s.operation,
                kind: s.kind.to_string(),
                start_unix_nano: s.start_unix_nano,
                end_unix_nano: s.end_unix_nano,
                error: s.error,
            })
            .collect(),
        critical_path: t
            .critical_path
            .into_iter()
            .map(|s| pb::CriticalPathSection {
                span_id: s.span_id,
                service: s.service,
                operation: s.operation,
                start_unix_nano: s.start_unix_nano,
                end_unix_nano: s.end_unix_nano,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::query_service_server::QueryService for QueryApi {
    async fn get_graph(&self, request: Request<pb::RangeQuery>) -> Result<Response<pb::Graph>, Status> {
        let view = query::graph(&self.live, &filter(request.into_inner()), (self.now_ms)()).await.map_err(status)?;
        Ok(Response::new(pb::Graph { restoring: self.restoring(), ..graph(&view) }))
    }

    async fn get_operations(&self, request: Request<pb::RangeQuery>) -> Result<Response<pb::Operations>, Status> {
        let ops =
            query::operations(&self.live, &filter(request.into_inner()), (self.now_ms)()).await.map_err(status)?;
        Ok(Response::new(pb::Operations { restoring: self.restoring(), ..operations(&ops) }))
    }

    async fn get_bottlenecks(&self, request: Request<pb::RangeQuery>) -> Result<Response<pb::Bottlenecks>, Status> {
        let view =
            query::bottlenecks(&self.live, &filter(request.into_inner()), (self.now_ms)()).await.map_err(status)?;
        Ok(Response::new(pb::Bottlenecks { restoring: self.restoring(), ..bottlenecks(&view) }))
    }

    async fn get_verdict(&self, request: Request<pb::VerdictQuery>) -> Result<Response<pb::VerdictReply>, Status> {
        let q = request.into_inner();
        let text = |s: String| Some(s).filter(|s| !s.is_empty());
        let invalid = |e: super::gate::GateError| Status::invalid_argument(e.to_string());
        let req = VerdictRequest {
            service: text(q.service),
            baseline_version: text(q.baseline_version),
            candidate_version: text(q.candidate_version),
            deploy_time: text(q.deploy_time),
            warmup: text(q.warmup),
            ..VerdictRequest::default()
        };
        let now_ns = (self.now_ms)().saturating_mul(1_000_000);
        let mut req = req.parse(now_ns).map_err(invalid)?;
        req.canary_weight = q.canary_weight.map(JudgeRequest::canary_weight).transpose().map_err(invalid)?;
        let cohorts = req.cohorts(&self.deployments.lock().expect("deployments lock")).map_err(invalid)?;
        let config = crate::judge::JudgeConfig { canary_weight: req.canary_weight, ..Default::default() };
        let service = req.service;
        let restoring = self.restoring.as_ref().and_then(|p| p.describe());
        let mut v = query::verdict(&self.live, service, cohorts, config, restoring.is_none()).await.map_err(status)?;
        if let Some(restoring) = restoring {
            v.withhold(&restoring);
        }
        Ok(Response::new(pb::VerdictReply {
            verdict: v.verdict.as_str().to_string(),
            rollback: v.rollback,
            score: v.score,
            reason: v.reason.clone(),
            verdict_json: serde_json::to_string(&v).map_err(|e| Status::internal(e.to_string()))?,
        }))
    }

    async fn get_trace(&self, request: Request<pb::TraceQuery>) -> Result<Response<pb::Trace>, Status> {
        let id = request.into_inner().trace_id;
        let t =
            tokio::task::block_in_place(|| query::trace(&self.live, &id, self.compacted.as_ref())).map_err(status)?;
        Ok(Response::new(trace(t)))
    }
}
