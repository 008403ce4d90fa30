//! `tracelens serve`: OTLP/gRPC and OTLP/HTTP receivers, the write-ahead
//! log, the live analysis and the query API, wired together on tokio.
//!
//! Every accepted request is converted, appended to the log (and synced)
//! and only then acknowledged. Handlers are thin: sizes and encodings are
//! checked here, conversion is [`super::ingest`], analysis [`super::live`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::codec::CompressionEncoding;

use super::commit::{COMMIT_WAIT, CommitConfig, GroupCommit, IdleHook, LogFailure, LogStats};
use super::compact;
use super::gate::{self, DeploymentRequest, Deployments, FlaggerWebhook, VerdictRequest};
use super::ingest::{Accepted, BodyEncoding, accept_bytes};
use super::live::{Live, LiveConfig};
use super::metrics_endpoint;
use super::query::{self, Filter, QueryError};
use super::query_grpc::QueryApi;
use super::query_proto::query_service_server::{QueryServiceServer, SERVICE_NAME as QUERY_SERVICE_NAME};
use super::restore;
use super::tls::Incoming;
use super::wal::{SyncPolicy, Wal, WalConfig, WalError};
use crate::judge::{JudgeConfig, Verdict};

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// OTLP/gRPC listener.
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP listener.
    pub http_addr: SocketAddr,
    /// Query API listener.
    pub api_addr: SocketAddr,
    /// Write-ahead log directory.
    pub data_dir: PathBuf,
    /// Largest request accepted, after decompression.
    pub max_request_bytes: usize,
    /// Requests handled at once before new ones are told to retry.
    pub max_in_flight: usize,
    /// Live analysis.
    pub live: LiveConfig,
    /// Fsync policy of the log.
    pub sync: SyncPolicy,
    /// Start log segments from preallocated files, and keep compacted ones
    /// for reuse (see [`WalConfig::preallocate`]).
    pub preallocate: bool,
    /// Bearer token every ingest and API request must carry, if set.
    pub auth_token: Option<String>,
    /// Closed log segments older than this are deleted.
    pub retention: Duration,
    /// Export requests accepted per second, over both protocols (None: no limit).
    pub max_requests_per_second: Option<f64>,
    /// TLS on every listener, if set (see [`super::tls::server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Size at which a log segment is closed (and then compacted to Parquet).
    pub segment_bytes: u64,
    /// How often closed log segments are compacted to Parquet.
    pub compact_interval: Duration,
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The log could not be opened or replayed.
    #[error("write-ahead log")]
    Wal(#[from] WalError),
    /// A listener could not be bound or failed.
    #[error("{flag} {addr}")]
    Listen {
        /// The setting that gave the address (`--grpc-addr`, …).
        flag: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(String),
    /// A background thread could not be started.
    #[error("starting the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

struct Shared {
    live: Arc<Mutex<Live>>,
    /// The restore of what the data directory kept, running at start.
    restoring: Arc<restore::Progress>,
    deployments: Arc<Mutex<Deployments>>,
    looks: Mutex<gate::LookBook>,
    log: GroupCommit,
    in_flight: Semaphore,
    max_request_bytes: usize,
    auth_token: Option<String>,
    rate_limit: Option<RateLimit>,
    /// Trace look-ups past the recent traces.
    compacted: query::Compacted,
    retention: Duration,
}

/// Which listener a request came to, for the shape of an auth refusal.
#[derive(Clone, Copy)]
enum Surface {
    Grpc,
    Http,
    Api,
}

/// Rejects requests without the configured bearer token (constant-time compare).
async fn require_token(
    State((shared, surface)): State<(Arc<Shared>, Surface)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(expected) = &shared.auth_token else { return next.run(request).await };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .unwrap_or("");
    let matches = given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if matches {
        return next.run(request).await;
    }
    match surface {
        Surface::Grpc => {
            let status = tonic::Status::unauthenticated("missing or wrong bearer token");
            status.into_http::<axum::body::Body>()
        }
        Surface::Api if is_grpc(request.headers()) => {
            tonic::Status::unauthenticated("missing or wrong bearer token").into_http::<axum::body::Body>()
        }
        Surface::Http | Surface::Api => {
            http_error(StatusCode::UNAUTHORIZED, BodyEncoding::Json, 16, "missing or wrong bearer token")
        }
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/grpc"))
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Why a request was refused whole.
enum Refusal {
    Overloaded,
    RateLimited,
    Invalid(String),
    Storage(String),
}

/// A token bucket: `rate` requests per second, bursts up to one second's worth.
struct RateLimit {
    rate: f64,
    state: Mutex<(f64, std::time::Instant)>,
}

impl RateLimit {
    fn new(rate: f64) -> RateLimit {
        RateLimit { rate, state: Mutex::new((rate.max(1.0), std::time::Instant::now())) }
    }

    fn allow(&self) -> bool {
        let mut state = self.state.lock().expect("rate lock");
        let now = std::time::Instant::now();
        let burst = self.rate.max(1.0);
        state.0 = (state.0 + now.duration_since(state.1).as_secs_f64() * self.rate).min(burst);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Shared {
    /// Converts, logs (waiting for the group commit), then analyses one
    /// request; returns what to acknowledge.
    async fn ingest(
        &self,
        convert: impl FnOnce(&mut Live) -> Result<Accepted, String>,
        wal_record: impl FnOnce() -> LogRecord,
    ) -> Result<Accepted, Refusal> {
        if self.rate_limit.as_ref().is_some_and(|r| !r.allow()) {
            self.live.lock().expect("live lock").counters.requests_refused += 1;
            return Err(Refusal::RateLimited);
        }
        let Ok(_permit) = self.in_flight.try_acquire() else {
            self.live.lock().expect("live lock").counters.requests_refused += 1;
            return Err(Refusal::Overloaded);
        };
        let coming = self.log.coming();
        let mut accepted = {
            let mut live = self.live.lock().expect("live lock");
            match convert(&mut live) {
                Ok(a) => a,
                Err(msg) => {
                    live.counters.requests_refused += 1;
                    return Err(Refusal::Invalid(msg));
                }
            }
        };
        if !accepted.spans.is_empty() {
            let record = wal_record();
            if let Err(LogFailure(e)) = self.log.append(&record.parts(), coming).await {
                return Err(Refusal::Storage(e));
            }
        } else {
            drop(coming); // nothing to log
        }
        let mut live = self.live.lock().expect("live lock");
        live.counters.spans_rejected += accepted.rejected;
        let spans = std::mem::take(&mut accepted.spans);
        live.ingest(spans, now_ms());
        Ok(accepted)
    }
}

/// A log record: the body's encoding tag, then the body as it came.
struct LogRecord {
    tag: [u8; 1],
    body: Bytes,
}

impl LogRecord {
    fn parts(&self) -> [&[u8]; 2] {
        [&self.tag, &self.body]
    }
}

fn wal_record(encoding: BodyEncoding, body: &Bytes) -> LogRecord {
    LogRecord { tag: [encoding.wal_tag()], body: body.clone() }
}

/// The gRPC method path of OTLP trace export.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A gRPC codec that hands the request's wire bytes through undecoded, so
/// they go to the log as they came and are decoded once, straight into the
/// model; responses are encoded with prost.
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
struct ExportService(Arc<Shared>);

impl tonic::server::UnaryService<Bytes> for ExportService {
    type Response = ExportTraceServiceResponse;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status>> + Send,
        >,
    >;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let shared = self.0.clone();
        Box::pin(async move {
            let body = request.into_inner();
            let result = shared
                .ingest(
                    |live| {
                        let (dict, warnings) = live.convert_parts();
                        accept_bytes(&body, BodyEncoding::Protobuf, dict, warnings).map_err(|e| e.0)
                    },
                    || wal_record(BodyEncoding::Protobuf, &body),
                )
                .await;
            match result {
                Ok(a) => Ok(tonic::Response::new(ExportTraceServiceResponse {
                    partial_success: (a.rejected > 0).then(|| ExportTracePartialSuccess {
                        rejected_spans: a.rejected as i64,
                        error_message: a.message.unwrap_or_default(),
                    }),
                })),
                Err(Refusal::RateLimited) => {
                    let message = "request rate over --max-requests-per-second; retry later";
                    let details = retry_info_status_details(message, 1);
                    Err(tonic::Status::with_details(tonic::Code::Unavailable, message, details.into()))
                }
                Err(Refusal::Overloaded) => {
                    let message = "tracelens is at capacity; retry later";
                    // google.rpc.RetryInfo { retry_delay: 1s } in grpc-status-details-bin.
                    let details = retry_info_status_details(message, 1);
                    Err(tonic::Status::with_details(tonic::Code::Unavailable, message, details.into()))
                }
                Err(Refusal::Invalid(msg)) => Err(tonic::Status::invalid_argument(msg)),
                Err(Refusal::Storage(msg)) => Err(tonic::Status::unavailable(format!("write-ahead log: {msg}"))),
            }
        })
    }
}

/// Serves one gRPC Export call.
async fn grpc_export(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    let limit = shared.max_request_bytes;
    let mut grpc = tonic::server::Grpc::new(RawRequestCodec)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(4 << 20);
    grpc.unary(ExportService(shared), request).await.map(axum::body::Body::new)
}

/// Any other gRPC method: UNIMPLEMENTED.
async fn grpc_unimplemented() -> Response {
    tonic::Status::unimplemented("tracelens serves only opentelemetry.proto.collector.trace.v1.TraceService/Export")
        .into_http::<axum::body::Body>()
}

/// A `google.rpc.Status` carrying `google.rpc.RetryInfo{retry_delay: seconds}`,
/// encoded by hand (two tiny messages).
fn retry_info_status_details(message: &str, seconds: i64) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        prost::encoding::encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    // Duration { seconds = 1 }
    let mut duration = vec![0x08];
    prost::encoding::encode_varint(seconds as u64, &mut duration);
    let mut retry_info = Vec::new();
    field(&mut retry_info, 0x0a, &duration); // retry_delay = 1
    let mut any = Vec::new();
    field(&mut any, 0x0a, b"type.googleapis.com/google.rpc.RetryInfo"); // type_url = 1
    field(&mut any, 0x12, &retry_info); // value = 2
    let mut status = vec![0x08, 14]; // code = UNAVAILABLE
    field(&mut status, 0x12, message.as_bytes()); // message = 2
    field(&mut status, 0x1a, &any); // details = 3
    status
}

/// tonic answers an over-limit message with OUT_OF_RANGE, which OTLP
/// exporters retry forever; OTLP wants RESOURCE_EXHAUSTED without RetryInfo.
fn rewrite_out_of_range(mut response: Response) -> Response {
    if response.headers().get("grpc-status").is_some_and(|v| v == "11") {
        response.headers_mut().insert("grpc-status", axum::http::HeaderValue::from_static("8"));
    }
    response
}

fn status_body(encoding: BodyEncoding, code: i32, message: &str) -> (Vec<u8>, &'static str) {
    match encoding {
        BodyEncoding::Json => {
            (serde_json::json!({"code": code, "message": message}).to_string().into_bytes(), "application/json")
        }
        BodyEncoding::Protobuf => {
            let mut out = vec![0x08];
            prost::encoding::encode_varint(code as u64, &mut out);
            out.push(0x12);
            prost::encoding::encode_varint(message.len() as u64, &mut out);
            out.extend_from_slice(message.as_bytes());
            (out, "application/x-protobuf")
        }
    }
}

fn http_error(status: StatusCode, encoding: BodyEncoding, grpc_code: i32, message: &str) -> Response {
    let (body, content_type) = status_body(encoding, grpc_code, message);
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    }
    response
}

async fn http_export(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let encoding = match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => BodyEncoding::Protobuf,
        "application/json" => BodyEncoding::Json,
        other => {
            return http_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                BodyEncoding::Json,
                3,
                &format!("unsupported Content-Type {other:?}; send application/x-protobuf or application/json"),
            );
        }
    };
    let limit = shared.max_request_bytes;
    // Every error body is a google.rpc.Status, also when the body is over
    // the limit before decompression (axum's own rejection is plain text).
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return http_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                encoding,
                8,
                &format!("request over the {limit}-byte limit"),
            );
        }
        Err(rejection) => return http_error(StatusCode::BAD_REQUEST, encoding, 3, &rejection.body_text()),
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body: Bytes = if gzip {
        use std::io::Read;
        let mut out = Vec::new();
        let mut decoder = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
        if let Err(e) = decoder.read_to_end(&mut out) {
            return http_error(StatusCode::BAD_REQUEST, encoding, 3, &format!("invalid gzip body: {e}"));
        }
        Bytes::from(out)
    } else {
        body
    };
    if body.len() > limit {
        return http_error(StatusCode::PAYLOAD_TOO_LARGE, encoding, 8, &format!("request over the {limit}-byte limit"));
    }
    let result = shared
        .ingest(
            |live| {
                let (dict, warnings) = live.convert_parts();
                accept_bytes(&body, encoding, dict, warnings).map_err(|e| e.0)
            },
            || wal_record(encoding, &body),
        )
        .await;
    match result {
        Ok(a) => {
            let response = ExportTraceServiceResponse {
                partial_success: (a.rejected > 0).then(|| ExportTracePartialSuccess {
                    rejected_spans: a.rejected as i64,
                    error_message: a.message.clone().unwrap_or_default(),
                }),
            };
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
        Err(Refusal::Overloaded) => {
            http_error(StatusCode::SERVICE_UNAVAILABLE, encoding, 14, "tracelens is at capacity; retry later")
        }
        Err(Refusal::RateLimited) => http_error(
            StatusCode::TOO_MANY_REQUESTS,
            encoding,
            14,
            "request rate over --max-requests-per-second; retry later",
        ),
        Err(Refusal::Invalid(msg)) => http_error(StatusCode::BAD_REQUEST, encoding, 3, &msg),
        Err(Refusal::Storage(msg)) => {
            http_error(StatusCode::SERVICE_UNAVAILABLE, encoding, 14, &format!("write-ahead log: {msg}"))
        }
    }
}

async fn method_not_allowed() -> Response {
    http_error(StatusCode::METHOD_NOT_ALLOWED, BodyEncoding::Json, 12, "use POST")
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(value).unwrap_or_default())
        .into_response()
}

fn query_error(e: QueryError) -> Response {
    let (status, code) = match &e {
        QueryError::BadRequest(_) => (StatusCode::BAD_REQUEST, 3),
        QueryError::NotFound(_) => (StatusCode::NOT_FOUND, 5),
        QueryError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 13),
    };
    http_error(status, BodyEncoding::Json, code, &e.to_string())
}

/// An analysis answer; while stored spans are still being restored it
/// says so in a `restoring` field (absent otherwise), since what it shows
/// is partial.
fn analysis_json<T: serde::Serialize>(shared: &Shared, value: &T) -> Response {
    let Some(restoring) = shared.restoring.describe() else { return json(value) };
    let mut value = serde_json::to_value(value).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("restoring".into(), restoring.into());
    }
    json(&value)
}

async fn api_graph(State(shared): State<Arc<Shared>>, Query(filter): Query<Filter>) -> Response {
    query::graph(&shared.live, &filter, now_ms()).await.map_or_else(query_error, |v| analysis_json(&shared, &v))
}

async fn api_operations(State(shared): State<Arc<Shared>>, Query(filter): Query<Filter>) -> Response {
    query::operations(&shared.live, &filter, now_ms())
        .await
        .map_or_else(query_error, |ops| analysis_json(&shared, &serde_json::json!({ "operations": ops })))
}

async fn api_bottlenecks(State(shared): State<Arc<Shared>>, Query(filter): Query<Filter>) -> Response {
    query::bottlenecks(&shared.live, &filter, now_ms()).await.map_or_else(query_error, |v| analysis_json(&shared, &v))
}

async fn api_trace(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let found = tokio::task::block_in_place(|| query::trace(&shared.live, &id, Some(&shared.compacted)));
    found.map_or_else(query_error, |v| json(&v))
}

/// Judges `request` over the recent traces; with an analysis id and
/// planned looks, each look is tested at α/K and the last one's verdict is
/// frozen.
async fn judge(shared: &Shared, request: &VerdictRequest) -> Result<Verdict, Response> {
    let bad = |e: gate::GateError| http_error(StatusCode::BAD_REQUEST, BodyEncoding::Json, 3, &e.to_string());
    let request = request.parse(now_ms().saturating_mul(1_000_000)).map_err(bad)?;
    let cohorts = request.cohorts(&shared.deployments.lock().expect("deployments lock")).map_err(bad)?;
    let (service, looks) = (request.service, request.looks);
    let mut config = JudgeConfig { canary_weight: request.canary_weight, ..JudgeConfig::default() };
    let mut this_look = None;
    if let Some((id, planned)) = &looks {
        let mut book = shared.looks.lock().expect("looks lock");
        if let Some(frozen) = book.frozen(id) {
            return Ok(frozen);
        }
        if shared.restoring.describe().is_none() {
            this_look = Some(book.next(id));
        }
        config = config.for_looks(*planned);
    }
    let complete = shared.restoring.describe().is_none();
    let mut verdict = query::verdict(&shared.live, service, cohorts, config, complete).await.map_err(query_error)?;
    if let Some(restoring) = shared.restoring.describe() {
        // Traces from before the start are still coming in: no verdict,
        // and no look taken, until they are.
        verdict.withhold(&restoring);
        return Ok(verdict);
    }
    if let (Some((id, planned)), Some(look)) = (looks, this_look) {
        let frozen = look >= planned;
        verdict.looks = Some(crate::judge::verdict::Looks { analysis_id: id.clone(), look, planned, frozen });
        if frozen {
            shared.looks.lock().expect("looks lock").freeze(&id, verdict.clone());
        }
    }
    Ok(verdict)
}

/// Argo Rollouts' `web` provider and other pollers: every verdict is a 200
/// with the verdict JSON (any other status counts as a measurement error).
async fn api_verdict(State(shared): State<Arc<Shared>>, Query(request): Query<VerdictRequest>) -> Response {
    match judge(&shared, &request).await {
        Ok(v) => json(&v),
        Err(response) => response,
    }
}

/// The webhook body, or what is wrong with it.
fn flagger_hook(body: &[u8]) -> Result<FlaggerWebhook, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a Flagger webhook payload: {e}"))
}

fn with_status(status: u16, v: &Verdict) -> Response {
    let mut response = json(v);
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    response
}

/// Flagger's gate hooks (`pre-rollout`, `rollout`, `confirm-*`): 200 go on, 403 stop.
async fn api_flagger_gate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let hook = match flagger_hook(&body) {
        Ok(h) => h,
        Err(e) => return http_error(StatusCode::BAD_REQUEST, BodyEncoding::Json, 3, &e),
    };
    match judge(&shared, &VerdictRequest::from_flagger(&hook)).await {
        Ok(v) => with_status(gate::gate_status(&v, &hook), &v),
        Err(response) => response,
    }
}

/// Flagger's inverted `rollback` hook: 200 means roll back now.
async fn api_flagger_rollback(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let hook = match flagger_hook(&body) {
        Ok(h) => h,
        Err(e) => return http_error(StatusCode::BAD_REQUEST, BodyEncoding::Json, 3, &e),
    };
    match judge(&shared, &VerdictRequest::from_flagger(&hook)).await {
        Ok(v) => with_status(gate::rollback_status(&v), &v),
        Err(response) => response,
    }
}

async fn api_record_deployment(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: DeploymentRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("a deployment is {{\"service\", \"version\", \"time\"}}: {e}");
            return http_error(StatusCode::BAD_REQUEST, BodyEncoding::Json, 3, &message);
        }
    };
    let deployment = match request.validate(now_ms().saturating_mul(1_000_000)) {
        Ok(d) => d,
        Err(e) => return http_error(StatusCode::BAD_REQUEST, BodyEncoding::Json, 3, &e.to_string()),
    };
    let recorded = tokio::task::block_in_place(|| {
        let mut markers = shared.deployments.lock().expect("deployments lock");
        markers.record(deployment.clone())?;
        // Markers older than the data they would judge go (each service's latest stays).
        if let Err(e) = markers.expire(marker_horizon(shared.retention)) {
            eprintln!("tracelens: warning: expiring deployment markers: {e}");
        }
        Ok::<(), gate::GateError>(())
    });
    match recorded {
        Ok(()) => {
            let mut response = json(&deployment);
            *response.status_mut() = StatusCode::CREATED;
            response
        }
        Err(e) => http_error(StatusCode::INTERNAL_SERVER_ERROR, BodyEncoding::Json, 13, &e.to_string()),
    }
}

/// Markers recorded before this (unix ns) are older than the retention.
fn marker_horizon(retention: Duration) -> u64 {
    now_ms().saturating_mul(1_000_000).saturating_sub(retention.as_nanos().min(u64::MAX as u128) as u64)
}

async fn api_deployments(State(shared): State<Arc<Shared>>) -> Response {
    let list = shared.deployments.lock().expect("deployments lock").all().to_vec();
    json(&serde_json::json!({ "deployments": list }))
}

async fn api_metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = {
        let live = shared.live.lock().expect("live lock");
        let mut text = metrics_endpoint::render(&live);
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        text.push_str(&format!(
            "# HELP tracelens_wal_bytes_total Request bytes appended to the write-ahead log.\n# TYPE tracelens_wal_bytes_total counter\ntracelens_wal_bytes_total {}\n# HELP tracelens_wal_commits_total Group commits (fsyncs) of the write-ahead log.\n# TYPE tracelens_wal_commits_total counter\ntracelens_wal_commits_total {}\n# HELP tracelens_wal_segments_damaged_total Closed log segments with unreadable records, compacted as far as readable and moved to damaged/.\n# TYPE tracelens_wal_segments_damaged_total counter\ntracelens_wal_segments_damaged_total {}\n",
            load(&shared.log.stats().bytes),
            load(&shared.log.stats().commits),
            load(&shared.log.stats().damaged_segments)
        ));
        text.push_str(&format!(
            "# HELP tracelens_restore_in_progress 1 while the spans the data directory kept are being restored into live analysis at start.\n# TYPE tracelens_restore_in_progress gauge\ntracelens_restore_in_progress {}\n# HELP tracelens_restored_spans Spans restored from the data directory since the start.\n# TYPE tracelens_restored_spans gauge\ntracelens_restored_spans {}\n",
            u8::from(!shared.restoring.is_done()),
            shared.restoring.spans()
        ));
        let index = shared.compacted.index.read().expect("index lock");
        text.push_str(&format!(
            "# HELP tracelens_trace_index_files Compacted files with a filter of their trace ids (files without one are read by trace look-ups).\n# TYPE tracelens_trace_index_files gauge\ntracelens_trace_index_files {}\n# HELP tracelens_trace_index_bytes Memory of those filters.\n# TYPE tracelens_trace_index_bytes gauge\ntracelens_trace_index_bytes {}\n",
            index.len(),
            index.bytes()
        ));
        drop(index);
        text
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn bind(flag: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| ServeError::Listen { flag, addr, source })
}

/// What opening the log at start found, and what is left to restore.
#[derive(Clone, Debug, Default)]
pub struct Startup {
    /// Compacted Parquet files to restore, in the background.
    pub parquet_files: u64,
    /// Log segments of earlier runs to replay, in the background.
    pub log_segments: u64,
    /// A torn last record cut off.
    pub torn: Option<String>,
    /// Corrupt records reported.
    pub corrupt: Vec<String>,
}

/// Opens the log (closing the previous run's last segment) and lists what
/// the data directory keeps, for [`restore::run`] to read.
fn recover(config: &ServeConfig) -> Result<(Live, Wal, Startup, restore::Plan), ServeError> {
    // Partitions past the retention period are not read.
    if let Err(e) = compact::expire(&config.data_dir, config.retention) {
        eprintln!("tracelens: warning: expiring Parquet partitions: {e}");
    }
    let (wal, opened) = Wal::open(WalConfig {
        sync: config.sync,
        segment_bytes: config.segment_bytes,
        preallocate: config.preallocate,
        ..WalConfig::new(&config.data_dir)
    })?;
    let plan = restore::Plan::new(&config.data_dir)?;
    let startup = Startup {
        parquet_files: plan.files.len() as u64,
        log_segments: plan.segments.len() as u64,
        torn: opened.torn.map(|d| format!("{} at byte {}: {}", d.segment.display(), d.offset, d.reason)),
        corrupt: opened
            .corrupt
            .iter()
            .map(|d| format!("{} at byte {}: {}", d.segment.display(), d.offset, d.reason))
            .collect(),
    };
    Ok((Live::new(config.live), wal, startup, plan))
}

/// Runs the server until `shutdown` resolves. `idle` is the runtime's park
/// hook, if it was built with one (see [`IdleHook`]). `on_ready` is called
/// with the bound addresses and what opening the log found once everything
/// listens; `on_restored`, on the restore's thread, once what the data
/// directory kept is restored into live analysis (or the restore stopped).
pub async fn run(
    config: ServeConfig,
    idle: Option<IdleHook>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce([SocketAddr; 3], &Startup),
    on_restored: impl FnOnce(&restore::Restored) + Send + 'static,
) -> Result<(), ServeError> {
    // Listeners first: a port in use is reported before anything is
    // created on disk.
    let grpc_listener = bind("--grpc-addr", config.grpc_addr).await?;
    let http_listener = bind("--http-addr", config.http_addr).await?;
    let api_listener = bind("--api-addr", config.api_addr).await?;
    let local =
        |l: &TcpListener, flag, addr| l.local_addr().map_err(|source| ServeError::Listen { flag, addr, source });
    let addrs = [
        local(&grpc_listener, "--grpc-addr", config.grpc_addr)?,
        local(&http_listener, "--http-addr", config.http_addr)?,
        local(&api_listener, "--api-addr", config.api_addr)?,
    ];
    let (live, wal, startup, plan) = tokio::task::block_in_place(|| recover(&config))?;
    let restoring = Arc::new(restore::Progress::of(&plan));
    let stop_restore = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Mutex::new(live));
    // Compaction starts once the restore has read the segments it would move.
    let (restored_tx, restored_rx) = std::sync::mpsc::channel::<()>();
    let (mut deployments, _) = Deployments::open(&config.data_dir).map_err(|e| ServeError::Grpc(e.to_string()))?;
    let retention = config.retention;
    if let Err(e) = deployments.expire(marker_horizon(retention)) {
        eprintln!("tracelens: warning: expiring deployment markers: {e}");
    }
    let log_stats = Arc::new(LogStats::default());
    let (log, syncer) =
        GroupCommit::start(wal, CommitConfig { retention, commit_wait: COMMIT_WAIT }, log_stats.clone(), idle.as_ref())
            .map_err(|e| ServeError::Thread("log sync", e))?;
    let compacted = query::Compacted { dir: config.data_dir.clone(), index: Arc::default() };
    // Compacts closed log segments into Parquet and expires old partitions.
    let (compact_stop, compact_rx) = std::sync::mpsc::channel::<()>();
    let compactor = {
        let (dir, interval, stats) = (config.data_dir.clone(), config.compact_interval, log_stats.clone());
        let index = compacted.index.clone();
        let reuse = config.preallocate;
        std::thread::Builder::new()
            .name("tracelens-compact".into())
            .spawn(move || {
                // Until the restore ends (its sender dropped), or a shutdown.
                use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
                while restored_rx.recv_timeout(Duration::from_millis(100)) == Err(RecvTimeoutError::Timeout) {
                    if compact_rx.try_recv() != Err(TryRecvError::Empty) {
                        return;
                    }
                }
                if compact_rx.try_recv() != Err(TryRecvError::Empty) {
                    return;
                }
                loop {
                    match compact::compact(&dir, reuse) {
                        Ok(run) => {
                            let mut index = index.write().expect("index lock");
                            for (file, ids) in run.files.iter().zip(&run.trace_ids) {
                                index.add(file.clone(), ids);
                            }
                            drop(index);
                            if !run.files.is_empty() {
                                eprintln!("tracelens: compacted {} log segment(s) to Parquet", run.files.len());
                            }
                            for (moved, why) in &run.damaged {
                                eprintln!(
                                    "tracelens: error: damaged log segment: {why}; its readable records were compacted and the segment moved to {}",
                                    moved.display()
                                );
                                stats.damaged_segments.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        Err(e) => eprintln!("tracelens: warning: compacting the log: {e}"),
                    }
                    match compact::expire(&dir, retention) {
                        Ok(0) => {}
                        Ok(_) => index.write().expect("index lock").retain(&compact::parquet_files(&dir)),
                        Err(e) => eprintln!("tracelens: warning: expiring Parquet partitions: {e}"),
                    }
                    if compact_rx.recv_timeout(interval) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                        return;
                    }
                }
            })
            .map_err(|e| ServeError::Thread("compactor", e))?
    };
    let shared = Arc::new(Shared {
        live: live.clone(),
        restoring: restoring.clone(),
        deployments: Arc::new(Mutex::new(deployments)),
        looks: Mutex::new(gate::LookBook::default()),
        log,
        in_flight: Semaphore::new(config.max_in_flight.max(1)),
        max_request_bytes: config.max_request_bytes,
        auth_token: config.auth_token.clone(),
        rate_limit: config.max_requests_per_second.map(RateLimit::new),
        compacted: compacted.clone(),
        retention,
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    // Completes idle traces.
    let ticker = {
        let shared = shared.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = interval.tick() => shared.live.lock().expect("live lock").tick(now_ms()),
                    _ = rx.wait_for(|v| *v) => break,
                }
            }
        })
    };

    let grpc = Router::new()
        .route(EXPORT_PATH, post(grpc_export))
        .fallback(grpc_unimplemented)
        .layer(tower::util::MapResponseLayer::new(rewrite_out_of_range))
        .layer(axum::middleware::from_fn_with_state((shared.clone(), Surface::Grpc), require_token))
        .with_state(shared.clone());
    let incoming = |listener: TcpListener, flag: &'static str, addr: SocketAddr| {
        Incoming::new(listener, config.tls.clone()).map_err(|source| ServeError::Listen { flag, addr, source })
    };
    let (grpc_listener, http_listener, api_listener) = (
        incoming(grpc_listener, "--grpc-addr", addrs[0])?,
        incoming(http_listener, "--http-addr", addrs[1])?,
        incoming(api_listener, "--api-addr", addrs[2])?,
    );
    let grpc_task = tokio::spawn(
        axum::serve(grpc_listener, grpc.into_make_service())
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );

    let http = Router::new()
        .route("/v1/traces", post(http_export).get(method_not_allowed).put(method_not_allowed))
        .layer(DefaultBodyLimit::max(config.max_request_bytes.saturating_add(1)))
        .layer(axum::middleware::from_fn_with_state((shared.clone(), Surface::Http), require_token))
        .with_state(shared.clone());
    let http_task =
        tokio::spawn(axum::serve(http_listener, http).with_graceful_shutdown(stopped(stop_rx.clone())).into_future());

    let query_service = QueryServiceServer::new(
        QueryApi::new(shared.live.clone(), shared.deployments.clone(), now_ms)
            .with_compacted(shared.compacted.clone())
            .with_restore(restoring.clone()),
    );
    let api = Router::new()
        .route_service(&format!("/{}/{{*method}}", QUERY_SERVICE_NAME), query_service)
        .route("/api/v1/graph", get(api_graph))
        .route("/api/v1/operations", get(api_operations))
        .route("/api/v1/bottlenecks", get(api_bottlenecks))
        .route("/api/v1/traces/{trace_id}", get(api_trace))
        .route("/api/v1/verdict", get(api_verdict))
        .route("/api/v1/flagger/gate", post(api_flagger_gate))
        .route("/api/v1/flagger/rollback", post(api_flagger_rollback))
        .route("/api/v1/deployments", post(api_record_deployment).get(api_deployments))
        .route("/metrics", get(api_metrics))
        .layer(axum::middleware::from_fn_with_state((shared.clone(), Surface::Api), require_token))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(shared.clone());
    let api_task =
        tokio::spawn(axum::serve(api_listener, api).with_graceful_shutdown(stopped(stop_rx.clone())).into_future());

    on_ready(addrs, &startup);
    // Restores live analysis while requests are already taken.
    let restorer = {
        let (live, progress, stop) = (live.clone(), restoring.clone(), stop_restore.clone());
        let index = compacted.index.clone();
        std::thread::Builder::new()
            .name("tracelens-restore".into())
            .spawn(move || {
                let restored = restore::run(&plan, &live, &index, now_ms(), &progress, &stop);
                drop(live);
                on_restored(&restored);
                drop(restored_tx);
            })
            .map_err(|e| ServeError::Thread("restore", e))?
    };
    shutdown.await;
    stop_restore.store(true, Ordering::Relaxed);
    drop(compact_stop);
    let _ = stop_tx.send(true);
    for task in [grpc_task, http_task, api_task] {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ServeError::Grpc(e.to_string())),
            Err(e) => return Err(ServeError::Grpc(e.to_string())),
        }
    }
    let _ = ticker.await;
    // Every handler is done: sync what waits, close the log.
    drop(shared);
    let _ = tokio::task::spawn_blocking(move || syncer.stop()).await;
    let _ = tokio::task::spawn_blocking(move || {
        let _ = restorer.join();
        compactor.join()
    })
    .await;
    Ok(())
}

/// Ready as soon as it listens: requests are taken while stored spans are
/// still being restored, which the body says.
async fn readyz(State(shared): State<Arc<Shared>>) -> String {
    shared.restoring.describe().map_or_else(|| "ready".to_string(), |r| format!("ready; {r}"))
}
