//! The receiver's transports: thin adapters that decode a request, call
//! one method of the [`super::service::Service`] and encode its answer,
//! one file each, with errors mapped to statuses in [`status`].
//!
//! * [`otlp_grpc`] — OTLP/gRPC `TraceService/Export`.
//! * [`otlp_http`] — OTLP/HTTP `POST /v1/traces` (protobuf and JSON).
//! * [`content_encoding`] — OTLP/HTTP body compressions.
//! * [`api_http`] — the JSON query API, deploy gates, `/metrics`, health.
//! * [`query_grpc`] — the gRPC query service (`tracelens.query.v1`).
//! * [`kafka`] — a Kafka consumer-group member: the spans topic in, partials
//!   out, the group's results topic read back into live analysis.
//! * [`status`] — failures to gRPC codes and HTTP statuses.
//! * [`tls`] — plain or TLS listeners.
//!
//! Every listener checks the bearer token, when one is set, here.

pub mod api_http;
pub mod content_encoding;
pub mod kafka;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod query_grpc;
pub mod status;
pub mod tls;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;

use self::status::TransportError;
use super::ingest::BodyEncoding;

/// Which listener a request came to, for the shape of an auth refusal.
#[derive(Clone, Copy, Debug)]
pub enum Surface {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
    /// The query API (JSON, and the gRPC query service).
    Api,
}

/// The bearer token requests must carry (None: any request is taken).
#[derive(Clone, Debug)]
pub struct Auth(pub Option<Arc<str>>);

impl Auth {
    /// Whether the `Authorization` header carries the token (compared in
    /// constant time).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.0 else { return true };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .unwrap_or("");
        given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Middleware: refuses requests without the configured bearer token, in
/// the shape of the listener's protocol.
pub async fn require_token(
    State((auth, surface)): State<(Auth, Surface)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if auth.admits(request.headers()) {
        return next.run(request).await;
    }
    let refusal = TransportError::Unauthenticated;
    match surface {
        Surface::Grpc => status::grpc_response(&refusal),
        Surface::Api if is_grpc(request.headers()) => status::grpc_response(&refusal),
        Surface::Http | Surface::Api => status::http_response(&refusal, BodyEncoding::Json),
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/grpc"))
}
