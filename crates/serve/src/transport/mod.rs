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

/// The bearer tokens a request may carry (several while one is rotated;
/// none: any request is taken).
#[derive(Clone, Debug)]
pub struct Auth(Arc<[Box<str>]>);

impl Auth {
    /// Requests must carry one of `tokens`; none at all admits every request.
    pub fn new(tokens: &[String]) -> Auth {
        Auth(tokens.iter().map(|t| t.as_str().into()).collect())
    }

    /// Whether the `Authorization` header carries one of the tokens (each
    /// compared in constant time, all of them always).
    fn admits(&self, headers: &HeaderMap) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .unwrap_or("");
        self.0.iter().fold(false, |found, expected| found | same(given.as_bytes(), expected.as_bytes()))
    }
}

/// `a == b` in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
