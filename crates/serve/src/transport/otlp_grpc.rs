//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//! The request's wire bytes are handed through undecoded, so they go to
//! the log as they came and are decoded once, straight into the model;
//! responses are encoded with prost. Any other method is UNIMPLEMENTED.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use tonic::codec::CompressionEncoding;

use super::status::{self, TransportError};
use super::{Auth, Surface, require_token};
use crate::ingest::{Accepted, BodyEncoding};
use crate::service::Service;

/// The gRPC method path of OTLP trace export.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP/gRPC listener's routes.
pub fn router(service: Arc<Service>, auth: Auth) -> Router {
    Router::new()
        .route(EXPORT_PATH, post(export))
        .fallback(unknown_method)
        .layer(tower::util::MapResponseLayer::new(rewrite_out_of_range))
        .layer(axum::middleware::from_fn_with_state((auth, Surface::Grpc), require_token))
        .layer(axum::middleware::from_fn(require_grpc))
        .with_state(service)
}

/// Middleware: a request that is not gRPC (an OTLP/HTTP exporter pointed
/// at this port, say) gets 415 as the gRPC over HTTP/2 protocol asks, not
/// the `200 OK` every gRPC answer has, which such a client would take for
/// success while nothing was kept.
async fn require_grpc(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let content_type = request.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match content_type {
        Some(t) if t.starts_with("application/grpc") => next.run(request).await,
        other => {
            let encoding = match other {
                Some(t) if t.starts_with("application/x-protobuf") || t.starts_with("application/protobuf") => {
                    BodyEncoding::Protobuf
                }
                _ => BodyEncoding::Json,
            };
            status::http_response(&TransportError::NotGrpc, encoding)
        }
    }
}

/// The OTLP response to an accepted request (partial success when spans
/// were rejected).
pub fn export_response(accepted: &Accepted) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (accepted.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: accepted.rejected as i64,
            error_message: accepted.message.clone().unwrap_or_default(),
        }),
    }
}

/// A gRPC codec that hands the request's bytes through and encodes the
/// response with prost.
#[derive(Clone, Copy, Default)]
struct RawRequestCodec;

struct RawDecoder;

impl tonic::codec::Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

struct ResponseEncoder;

impl tonic::codec::Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn encode(&mut self, item: Self::Item, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        item.encode(dst).map_err(|e| tonic::Status::internal(format!("encoding the response: {e}")))
    }
}

impl tonic::codec::Codec for RawRequestCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// The Export method over raw request bytes.
#[derive(Clone)]
struct ExportService(Arc<Service>);

impl tonic::server::UnaryService<Bytes> for ExportService {
    type Response = ExportTraceServiceResponse;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status>> + Send,
        >,
    >;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            match service.export(request.into_inner(), BodyEncoding::Protobuf).await {
                Ok(accepted) => Ok(tonic::Response::new(export_response(&accepted))),
                Err(e) => Err(status::grpc_status(&e)),
            }
        })
    }
}

/// Serves one gRPC Export call.
async fn export(State(service): State<Arc<Service>>, request: axum::extract::Request) -> Response {
    let limit = service.max_request_bytes();
    let mut grpc = tonic::server::Grpc::new(RawRequestCodec)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Deflate)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Deflate)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(4 << 20);
    grpc.unary(ExportService(service), request).await.map(axum::body::Body::new)
}

/// Any other gRPC method: UNIMPLEMENTED.
async fn unknown_method() -> Response {
    status::grpc_response(&TransportError::UnknownMethod)
}

/// tonic answers an over-limit message with OUT_OF_RANGE, which OTLP
/// exporters retry forever; OTLP wants RESOURCE_EXHAUSTED without RetryInfo.
fn rewrite_out_of_range(mut response: Response) -> Response {
    if response.headers().get("grpc-status").is_some_and(|v| v == "11") {
        response.headers_mut().insert("grpc-status", axum::http::HeaderValue::from_static("8"));
    }
    response
}
