//! The gRPC query service (`tracelens.query.v1.QueryService`, defined in
//! `proto/`): the JSON API's queries in protobuf, converted from the same
//! views by plain functions.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::status;
use crate::gate::{JudgeRequest, VerdictRequest};
use crate::query_proto as pb;
use crate::service::changes::ChangesRequest;
use crate::service::query::TraceOut;
use crate::service::{Filter, Service, ServiceError};
use tracelens_core::analysis::LatencySummary;
use tracelens_core::analysis::bottleneck::{BottleneckView, OperationBottleneck, Pattern};
use tracelens_core::analysis::graph::GraphView;
use tracelens_core::analysis::metrics::OperationView;
use tracelens_core::judge::diff::Direction;

/// The gRPC query service over the receiver's service layer.
pub struct QueryApi(pub Arc<Service>);

fn grpc(e: ServiceError) -> Status {
    status::grpc_status(&e)
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
pub fn trace(t: TraceOut) -> pb::Trace {
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
        let answer = self.0.graph(&filter(request.into_inner())).await.map_err(grpc)?;
        Ok(Response::new(pb::Graph { restoring: answer.restoring.unwrap_or_default(), ..graph(&answer.value) }))
    }

    async fn get_operations(&self, request: Request<pb::RangeQuery>) -> Result<Response<pb::Operations>, Status> {
        let answer = self.0.operations(&filter(request.into_inner())).await.map_err(grpc)?;
        let restoring = answer.restoring.unwrap_or_default();
        Ok(Response::new(pb::Operations { restoring, ..operations(&answer.value) }))
    }

    async fn get_bottlenecks(&self, request: Request<pb::RangeQuery>) -> Result<Response<pb::Bottlenecks>, Status> {
        let answer = self.0.bottlenecks(&filter(request.into_inner())).await.map_err(grpc)?;
        let restoring = answer.restoring.unwrap_or_default();
        Ok(Response::new(pb::Bottlenecks { restoring, ..bottlenecks(&answer.value) }))
    }

    async fn get_verdict(&self, request: Request<pb::VerdictQuery>) -> Result<Response<pb::VerdictReply>, Status> {
        let q = request.into_inner();
        let text = |s: String| Some(s).filter(|s| !s.is_empty());
        let request = VerdictRequest {
            service: text(q.service),
            baseline_version: text(q.baseline_version),
            candidate_version: text(q.candidate_version),
            deploy_time: text(q.deploy_time),
            warmup: text(q.warmup),
            ..VerdictRequest::default()
        };
        let mut request = self.0.parse_verdict_request(&request).map_err(grpc)?;
        request.canary_weight =
            q.canary_weight.map(JudgeRequest::canary_weight).transpose().map_err(|e| grpc(ServiceError::from(e)))?;
        let v = self.0.judge(request).await.map_err(grpc)?;
        Ok(Response::new(pb::VerdictReply {
            verdict: v.verdict.as_str().to_string(),
            rollback: v.rollback,
            score: v.score,
            reason: v.reason.clone(),
            verdict_json: serde_json::to_string(&v).map_err(|e| Status::internal(e.to_string()))?,
        }))
    }

    async fn get_changes(&self, request: Request<pb::ChangesQuery>) -> Result<Response<pb::ChangesReply>, Status> {
        let q = request.into_inner();
        let text = |s: String| Some(s).filter(|s| !s.is_empty());
        let request = ChangesRequest {
            window: text(q.window),
            until: text(q.until),
            baseline: text(q.baseline),
            baseline_since: text(q.baseline_since),
            baseline_until: text(q.baseline_until),
        };
        let answer = self.0.changes(&request).await.map_err(grpc)?;
        let regressed = answer.report.changes.iter().filter(|c| c.direction == Direction::Regressed).count();
        Ok(Response::new(pb::ChangesReply {
            status: answer.report.status.as_str().to_string(),
            reason: answer.report.reason.clone(),
            regressed: regressed as u32,
            changes_json: serde_json::to_string(&answer).map_err(|e| Status::internal(e.to_string()))?,
        }))
    }

    async fn get_trace(&self, request: Request<pb::TraceQuery>) -> Result<Response<pb::Trace>, Status> {
        let id = request.into_inner().trace_id;
        let t = tokio::task::block_in_place(|| self.0.trace(&id)).map_err(grpc)?;
        Ok(Response::new(trace(t)))
    }
}
