//! The JSON query API and deploy gates: graph, operations, bottlenecks,
//! traces and trace search, the web UI's report data, verdicts (Argo
//! Rollouts' `web` provider and other pollers), Flagger's gate and
//! rollback hooks, deployment markers, `/metrics` and the health checks;
//! and the web UI's pages (`/`, `/search`, `/trace/{id}`). The gRPC query
//! service is mounted on the same listener by the server.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use super::status::{self, Failure};
use super::{Auth, Surface, require_token};
use crate::gate::{self, DeploymentRequest, FlaggerWebhook, VerdictRequest};
use crate::ingest::BodyEncoding;
use crate::service::changes::ChangesRequest;
use crate::service::query::{TRACE_PAGE_MAX_SPANS, TRACE_PAGE_SPANS};
use crate::service::{Filter, Partial, RequestError, SearchRequest, Service, ServiceError};
use tracelens_core::judge::Verdict;
use tracelens_ui::page::LiveView;

/// The OpenAPI 3.1 description of every route below, kept in the repo
/// (`crates/serve/api/openapi.json`) and served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// The routes behind the token: (path, handlers).
fn api_routes() -> Vec<(&'static str, MethodRouter<Arc<Service>>)> {
    vec![
        ("/api/v1/graph", get(graph)),
        ("/api/v1/operations", get(operations)),
        ("/api/v1/bottlenecks", get(bottlenecks)),
        ("/api/v1/traces", get(search)),
        ("/api/v1/traces/{trace_id}", get(trace)),
        ("/api/v1/report", get(report)),
        ("/api/v1/verdict", get(verdict)),
        ("/api/v1/changes", get(changes)),
        ("/api/v1/flagger/gate", post(flagger_gate)),
        ("/api/v1/flagger/rollback", post(flagger_rollback)),
        ("/api/v1/deployments", post(record_deployment).get(deployments)),
        ("/api/v1/status", get(status)),
        ("/metrics", get(metrics)),
    ]
}

/// The routes served without a token: the web UI's pages (they hold no
/// data; they read the API above), this description and the health checks.
fn open_routes() -> Vec<(&'static str, MethodRouter<Arc<Service>>)> {
    vec![
        ("/", get(|| async { page(&LiveView::Overview) })),
        ("/search", get(|| async { page(&LiveView::Search) })),
        ("/trace/{trace_id}", get(|Path(id): Path<String>| async move { page(&LiveView::Trace(id)) })),
        ("/api/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) })),
        ("/healthz", get(|| async { "ok" })),
        ("/readyz", get(readyz)),
    ]
}

/// The API listener's routes; `grpc` (the gRPC query service) is mounted
/// at `grpc_path`.
pub fn router<S>(service: Arc<Service>, auth: Auth, grpc_path: &str, grpc: S) -> Router
where
    S: tower::Service<axum::extract::Request, Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    let mut router = Router::new().route_service(grpc_path, grpc);
    for (path, handlers) in api_routes() {
        router = router.route(path, handlers);
    }
    router = router.layer(axum::middleware::from_fn_with_state((auth, Surface::Api), require_token));
    for (path, handlers) in open_routes() {
        router = router.route(path, handlers);
    }
    router.with_state(service)
}

/// A query string, refused in the API's own error format (a JSON status
/// body and 400) when it does not parse, like every other bad request.
struct ApiQuery<T>(T);

impl<T, St> FromRequestParts<St> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    St: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &St) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(e) => Err(error(&ServiceError::from(RequestError::Query(e.body_text())))),
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(value).unwrap_or_default())
        .into_response()
}

fn error(e: &dyn Failure) -> Response {
    status::http_response(e, BodyEncoding::Json)
}

/// An analysis answer; while stored spans are still being restored it
/// says so in a `restoring` field (absent otherwise), since what it shows
/// is partial.
fn partial<T: serde::Serialize>(answer: Result<Partial<T>, ServiceError>) -> Response {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return error(&e),
    };
    let Some(restoring) = answer.restoring else { return json(&answer.value) };
    let mut value = serde_json::to_value(&answer.value).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("restoring".into(), restoring.into());
    }
    json(&value)
}

async fn status(State(service): State<Arc<Service>>) -> Response {
    json(&service.status())
}

async fn graph(State(service): State<Arc<Service>>, ApiQuery(filter): ApiQuery<Filter>) -> Response {
    partial(service.graph(&filter).await)
}

async fn operations(State(service): State<Arc<Service>>, ApiQuery(filter): ApiQuery<Filter>) -> Response {
    let answer = service.operations(&filter).await;
    partial(answer.map(|p| Partial { value: serde_json::json!({ "operations": p.value }), restoring: p.restoring }))
}

async fn bottlenecks(State(service): State<Arc<Service>>, ApiQuery(filter): ApiQuery<Filter>) -> Response {
    partial(service.bottlenecks(&filter).await)
}

/// How `/api/v1/traces/{id}` answers: a page of the spans (default) or,
/// with `view=timeline`, the web UI's waterfall data (every span).
#[derive(Debug, Default, serde::Deserialize)]
struct TraceView {
    view: Option<String>,
    /// The first span of the page (default 0).
    offset: Option<usize>,
    /// Spans in the page (default [`TRACE_PAGE_SPANS`], at most
    /// [`TRACE_PAGE_MAX_SPANS`]).
    limit: Option<usize>,
}

async fn trace(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    ApiQuery(v): ApiQuery<TraceView>,
) -> Response {
    let limit = v.limit.unwrap_or(TRACE_PAGE_SPANS);
    if !(1..=TRACE_PAGE_MAX_SPANS).contains(&limit) {
        let e = RequestError::Search(format!("limit: {limit} is not between 1 and {TRACE_PAGE_MAX_SPANS}"));
        return error(&ServiceError::from(e));
    }
    let offset = v.offset.unwrap_or(0);
    let answer = tokio::task::block_in_place(|| match v.view.as_deref() {
        None | Some("") | Some("spans") => service.trace(&id).map(|t| json(&t.page(offset, limit))),
        Some("timeline") => service.trace_timeline(&id).map(|t| json(&t)),
        Some(other) => {
            Err(ServiceError::from(RequestError::Search(format!("view: {other:?} is not spans or timeline"))))
        }
    });
    answer.unwrap_or_else(|e| error(&e))
}

async fn search(State(service): State<Arc<Service>>, ApiQuery(request): ApiQuery<SearchRequest>) -> Response {
    match tokio::task::block_in_place(|| service.search(&request)) {
        Ok(answer) => json(&answer),
        Err(e) => error(&e),
    }
}

async fn report(State(service): State<Arc<Service>>, ApiQuery(filter): ApiQuery<Filter>) -> Response {
    partial(service.report(&filter).await)
}

/// A web UI page.
fn page(view: &LiveView) -> Response {
    let html = tracelens_ui::page::live("tracelens", view);
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], html)
        .into_response()
}

/// Every verdict is a 200 with the verdict JSON (pollers count any other
/// status as a measurement error).
async fn verdict(State(service): State<Arc<Service>>, ApiQuery(request): ApiQuery<VerdictRequest>) -> Response {
    match service.verdict(&request).await {
        Ok(v) => json(&v),
        Err(e) => error(&e),
    }
}

/// What changed in a recent window, anywhere.
async fn changes(State(service): State<Arc<Service>>, ApiQuery(request): ApiQuery<ChangesRequest>) -> Response {
    match service.changes(&request).await {
        Ok(v) => json(&v),
        Err(e) => error(&e),
    }
}

fn with_status(status: u16, v: &Verdict) -> Response {
    let mut response = json(v);
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    response
}

/// A Flagger hook: the verdict its metadata asks for, answered with the
/// status `decide` gives it.
async fn flagger(service: &Service, body: &[u8], decide: impl FnOnce(&Verdict, &FlaggerWebhook) -> u16) -> Response {
    let hook: FlaggerWebhook = match serde_json::from_slice(body) {
        Ok(hook) => hook,
        Err(e) => return error(&ServiceError::from(RequestError::Flagger(e))),
    };
    match service.verdict(&VerdictRequest::from_flagger(&hook)).await {
        Ok(v) => with_status(decide(&v, &hook), &v),
        Err(e) => error(&e),
    }
}

/// Flagger's gate hooks (`pre-rollout`, `rollout`, `confirm-*`): 200 go on, 403 stop.
async fn flagger_gate(State(service): State<Arc<Service>>, body: Bytes) -> Response {
    flagger(&service, &body, gate::gate_status).await
}

/// Flagger's inverted `rollback` hook: 200 means roll back now.
async fn flagger_rollback(State(service): State<Arc<Service>>, body: Bytes) -> Response {
    flagger(&service, &body, |v, _| gate::rollback_status(v)).await
}

async fn record_deployment(State(service): State<Arc<Service>>, body: Bytes) -> Response {
    let request: DeploymentRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(&ServiceError::from(RequestError::Deployment(e))),
    };
    match tokio::task::block_in_place(|| service.record_deployment(request)) {
        Ok(deployment) => {
            let mut response = json(&deployment);
            *response.status_mut() = StatusCode::CREATED;
            response
        }
        Err(e) => error(&e),
    }
}

async fn deployments(State(service): State<Arc<Service>>) -> Response {
    json(&serde_json::json!({ "deployments": service.deployments() }))
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], service.metrics_text()).into_response()
}

/// Ready as soon as it listens: requests are taken while stored spans are
/// still being restored, which the body says.
async fn readyz(State(service): State<Arc<Service>>) -> (StatusCode, String) {
    match service.readiness() {
        Ok(ready) => (StatusCode::OK, ready),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_lists_every_route_and_only_those() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert_eq!(spec["openapi"], "3.1.0");
        let mut described: Vec<&str> = spec["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut served: Vec<&str> = api_routes().into_iter().chain(open_routes()).map(|(path, _)| path).collect();
        described.sort_unstable();
        served.sort_unstable();
        assert_eq!(described, served);
    }
}
