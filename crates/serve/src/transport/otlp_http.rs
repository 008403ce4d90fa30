//! OTLP/HTTP: `POST /v1/traces` with a protobuf or JSON body, optionally
//! compressed (see [`super::content_encoding`]); answers in the request's encoding, errors as
//! `google.rpc.Status` bodies (also when the body is over the limit before
//! decompression, where axum's own rejection is plain text).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;

use super::otlp_grpc::export_response;
use super::status::{self, TransportError};
use super::{Auth, Surface, content_encoding, require_token};
use crate::ingest::BodyEncoding;
use crate::service::{Service, ServiceError};

/// The OTLP/HTTP listener's routes.
pub fn router(service: Arc<Service>, auth: Auth) -> Router {
    let limit = service.max_request_bytes();
    Router::new()
        .route("/v1/traces", post(export).get(method_not_allowed).put(method_not_allowed))
        .layer(DefaultBodyLimit::max(limit.saturating_add(1)))
        .layer(axum::middleware::from_fn_with_state((auth, Surface::Http), require_token))
        .with_state(service)
}

async fn method_not_allowed() -> Response {
    status::http_response(&TransportError::MethodNotAllowed, BodyEncoding::Json)
}

/// The body's encoding, from its `Content-Type`.
fn encoding(headers: &HeaderMap) -> Result<BodyEncoding, TransportError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(BodyEncoding::Protobuf),
        "application/json" => Ok(BodyEncoding::Json),
        _ => Err(TransportError::UnsupportedMediaType(content_type)),
    }
}

/// The body as it came, or decompressed to at most one byte over the limit.
fn body(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<Bytes, Box<dyn status::Failure + Send>> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Box::new(ServiceError::TooLarge { limit }));
        }
        Err(rejection) => return Err(Box::new(TransportError::Body(rejection))),
    };
    content_encoding::decode(headers, body, limit).map_err(|e| Box::new(e) as Box<_>)
}

async fn export(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    request: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let encoding = match encoding(&headers) {
        Ok(encoding) => encoding,
        Err(e) => return status::http_response(&e, BodyEncoding::Json),
    };
    let body = match body(&headers, request, service.max_request_bytes()) {
        Ok(body) => body,
        Err(e) => return status::http_response(&*e, encoding),
    };
    let accepted = match service.export(body, encoding).await {
        Ok(accepted) => accepted,
        Err(e) => return status::http_response(&e, encoding),
    };
    let response = export_response(&accepted);
    match encoding {
        BodyEncoding::Protobuf => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], response.encode_to_vec())
                .into_response()
        }
        BodyEncoding::Json => {
            let body = match &response.partial_success {
                Some(p) => {
                    serde_json::json!({"partialSuccess": {"rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}})
                }
                None => serde_json::json!({}),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
    }
}
