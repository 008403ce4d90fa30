//! The one table from failures to what each transport answers: a gRPC
//! code (with `google.rpc.RetryInfo` when the client should come back) and
//! an HTTP status (with `Retry-After`), and the `google.rpc.Status` body
//! OTLP/HTTP and the JSON API send. Every handler maps its errors here.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::gate::GateError;
use crate::ingest::BodyEncoding;
use crate::service::ServiceError;

/// How long a client told to retry waits.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The gRPC code.
    pub grpc: Code,
    /// The HTTP status.
    pub http: StatusCode,
    /// The gRPC answer carries RetryInfo (the HTTP answer has `Retry-After`
    /// whenever its status is 429 or 503).
    pub retry_info: bool,
}

const fn row(grpc: Code, http: StatusCode) -> Row {
    Row { grpc, http, retry_info: false }
}

const fn retry(grpc: Code, http: StatusCode) -> Row {
    Row { grpc, http, retry_info: true }
}

/// Refusals that come from the transport, before the service is asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No or a wrong bearer token.
    #[error("missing or wrong bearer token")]
    Unauthenticated,
    /// OTLP/HTTP with a body type other than protobuf or JSON.
    #[error("unsupported Content-Type {0:?}; send application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    /// OTLP/HTTP other than POST.
    #[error("use POST")]
    MethodNotAllowed,
    /// OTLP/HTTP with a `Content-Encoding` tracelens does not decode.
    #[error("unsupported Content-Encoding {0:?}; send one of {supported}", supported = super::content_encoding::SUPPORTED)]
    UnsupportedEncoding(String),
    /// A compressed body that does not decompress.
    #[error("invalid {encoding} body: {source}")]
    Decompress {
        /// The coding named in `Content-Encoding`.
        encoding: &'static str,
        /// What the decoder said.
        #[source]
        source: std::io::Error,
    },
    /// A body that could not be read.
    #[error("{}", .0.body_text())]
    Body(#[source] axum::extract::rejection::BytesRejection),
    /// A request other than gRPC on the OTLP/gRPC listener.
    #[error(
        "this is the OTLP/gRPC listener and the request is not gRPC (Content-Type application/grpc); \
         OTLP/HTTP has a listener of its own (--http-addr, port 4318 by default)"
    )]
    NotGrpc,
    /// A gRPC method other than OTLP trace export on the OTLP port.
    #[error("tracelens serves only opentelemetry.proto.collector.trace.v1.TraceService/Export")]
    UnknownMethod,
}

/// A failure a transport answers: its message and its row.
pub trait Failure: std::fmt::Display {
    /// Its row of the table.
    fn row(&self) -> Row;
}

impl Failure for ServiceError {
    fn row(&self) -> Row {
        match self {
            ServiceError::Overloaded => retry(Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            ServiceError::RateLimited => retry(Code::Unavailable, StatusCode::TOO_MANY_REQUESTS),
            ServiceError::OverMemory { .. } => retry(Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            ServiceError::TooLarge { .. } => row(Code::ResourceExhausted, StatusCode::PAYLOAD_TOO_LARGE),
            ServiceError::Gate(GateError::TooManyMarkers { .. }) => {
                row(Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS)
            }
            ServiceError::Gate(GateError::Io { .. })
            | ServiceError::Lookup(_)
            | ServiceError::Task(_)
            | ServiceError::Partial(_) => row(Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
            ServiceError::Undecodable(_) | ServiceError::BadRequest(_) | ServiceError::Gate(_) => {
                row(Code::InvalidArgument, StatusCode::BAD_REQUEST)
            }
            ServiceError::Log(_) => row(Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            ServiceError::TraceNotFound(_) | ServiceError::TraceNotRecent(_) => {
                row(Code::NotFound, StatusCode::NOT_FOUND)
            }
        }
    }
}

impl Failure for TransportError {
    fn row(&self) -> Row {
        match self {
            TransportError::Unauthenticated => row(Code::Unauthenticated, StatusCode::UNAUTHORIZED),
            TransportError::UnsupportedMediaType(_)
            | TransportError::UnsupportedEncoding(_)
            | TransportError::NotGrpc => row(Code::InvalidArgument, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            TransportError::MethodNotAllowed => row(Code::Unimplemented, StatusCode::METHOD_NOT_ALLOWED),
            TransportError::Decompress { .. } | TransportError::Body(_) => {
                row(Code::InvalidArgument, StatusCode::BAD_REQUEST)
            }
            TransportError::UnknownMethod => row(Code::Unimplemented, StatusCode::NOT_FOUND),
        }
    }
}

/// The gRPC status of `failure`.
pub fn grpc_status(failure: &dyn Failure) -> tonic::Status {
    let row = failure.row();
    let message = failure.to_string();
    if row.retry_info {
        tonic::Status::with_error_details(row.grpc, message, ErrorDetails::with_retry_info(Some(RETRY_DELAY)))
    } else {
        tonic::Status::new(row.grpc, message)
    }
}

/// The gRPC status of `failure` as an HTTP response (for answers given
/// outside tonic's service machinery, such as the bearer-token check).
pub fn grpc_response(failure: &dyn Failure) -> Response {
    grpc_status(failure).into_http::<axum::body::Body>()
}

/// The HTTP response of `failure`: its status and a `google.rpc.Status`
/// body in `encoding`, with `Retry-After` on 429 and 503.
pub fn http_response(failure: &dyn Failure, encoding: BodyEncoding) -> Response {
    let row = failure.row();
    let (code, message) = (row.grpc as i32, failure.to_string());
    let (body, content_type) = match encoding {
        BodyEncoding::Json => {
            (serde_json::json!({"code": code, "message": message}).to_string().into_bytes(), "application/json")
        }
        BodyEncoding::Protobuf => {
            let status = tonic_types::pb::Status { code, message, details: Vec::new() };
            (status.encode_to_vec(), "application/x-protobuf")
        }
    };
    let mut response = (row.http, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if row.http == StatusCode::SERVICE_UNAVAILABLE || row.http == StatusCode::TOO_MANY_REQUESTS {
        let seconds = HeaderValue::from(RETRY_DELAY.as_secs());
        response.headers_mut().insert(header::RETRY_AFTER, seconds);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `google.rpc.Status{code: 14, message, details: [Any(RetryInfo{retry_delay: 1s})]}`
    /// written field by field from the protobuf definitions.
    fn expected_retry_status(message: &str) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
            out.push(tag);
            prost::encoding::encode_varint(bytes.len() as u64, out);
            out.extend_from_slice(bytes);
        }
        let mut retry_info = Vec::new();
        field(&mut retry_info, 0x0a, &[0x08, 1]);
        let mut any = Vec::new();
        field(&mut any, 0x0a, b"type.googleapis.com/google.rpc.RetryInfo");
        field(&mut any, 0x12, &retry_info);
        let mut status = vec![0x08, 14];
        field(&mut status, 0x12, message.as_bytes());
        field(&mut status, 0x1a, &any);
        status
    }

    #[test]
    fn refusals_to_retry_carry_retry_info() {
        for e in [ServiceError::Overloaded, ServiceError::RateLimited] {
            let status = grpc_status(&e);
            assert_eq!(status.code(), Code::Unavailable);
            assert_eq!(status.details(), expected_retry_status(&e.to_string()), "{e}");
        }
        let status = grpc_status(&ServiceError::TooLarge { limit: 10 });
        assert_eq!((status.code(), status.message()), (Code::ResourceExhausted, "request over the 10-byte limit"));
        assert!(status.details().is_empty(), "no RetryInfo: OTLP clients do not retry RESOURCE_EXHAUSTED without it");
    }

    #[test]
    fn http_errors_are_google_rpc_statuses_in_the_request_encoding() {
        let response = http_response(&ServiceError::Overloaded, BodyEncoding::Protobuf);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/x-protobuf");
        let response = http_response(&TransportError::MethodNotAllowed, BodyEncoding::Json);
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let status = tonic_types::pb::Status { code: 14, message: "m".into(), details: Vec::new() };
        let mut hand = vec![0x08, 14, 0x12, 1];
        hand.push(b'm');
        assert_eq!(status.encode_to_vec(), hand);
    }

    #[test]
    fn missing_traces_are_not_found_and_failures_of_tracelens_internal() {
        let id = tracelens_core::model::TraceId([7; 16]);
        let row = ServiceError::TraceNotFound(id).row();
        assert_eq!((row.grpc, row.http), (Code::NotFound, StatusCode::NOT_FOUND));
        let io = GateError::Io { path: "deployments.jsonl".into(), source: std::io::Error::other("disk full") };
        let row = ServiceError::Gate(io).row();
        assert_eq!((row.grpc, row.http), (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR));
        let bad = GateError::NoService;
        assert_eq!(ServiceError::Gate(bad).row().http, StatusCode::BAD_REQUEST);
    }
}
