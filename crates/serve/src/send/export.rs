//! Sending export requests to an OTLP endpoint, over gRPC (tonic) or HTTP
//! (hyper, `application/x-protobuf`), with the OTLP exporter's retry rules:
//! gRPC UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
//! DATA_LOSS and RESOURCE_EXHAUSTED (the last only with a `RetryInfo`), HTTP
//! 429, 502, 503 and 504 are retried after the delay the server asks for
//! (`google.rpc.RetryInfo`, `Retry-After`), else with exponential backoff,
//! for up to a total time; everything else is an error naming the answer.
//! Partial successes are counted.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;

/// The transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
}

/// Why sending stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The endpoint is not a URL this exporter can send to.
    #[error("endpoint {0:?}: {1}")]
    Endpoint(String, String),
    /// The endpoint refused the request for good.
    #[error("{endpoint} refused a request of {spans} spans: {answer}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// Spans in the request.
        spans: usize,
        /// What it answered.
        answer: String,
    },
    /// Retrying did not get the request through in the time allowed.
    #[error(
        "{endpoint} still refused a request of {spans} spans after {} over {seconds:.0} s: {answer}",
        tracelens_core::render::count(*retries, "retry")
    )]
    GaveUp {
        /// The endpoint.
        endpoint: String,
        /// Spans in the request.
        spans: usize,
        /// Retries made.
        retries: u64,
        /// Time spent on the request.
        seconds: f64,
        /// The last answer.
        answer: String,
    },
}

/// What was sent so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Requests acknowledged.
    pub requests: u64,
    /// Spans in them.
    pub spans: u64,
    /// Spans the endpoint said it rejected (partial success).
    pub rejected: u64,
    /// The first partial-success message.
    pub rejected_message: Option<String>,
    /// Retries made.
    pub retries: u64,
}

/// One failed attempt: retry after `delay` (the server's, if it gave one), or not.
struct Attempt {
    retry: Option<Option<Duration>>,
    answer: String,
}

/// Sends requests to one endpoint.
#[derive(Debug)]
pub struct Exporter {
    protocol: Protocol,
    endpoint: String,
    grpc: Option<TraceServiceClient<tonic::transport::Channel>>,
    http: Option<(String, u16, String)>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    max_elapsed: Duration,
    /// Totals so far.
    pub sent: Sent,
}

/// First backoff delay, and the most it grows to (the Collector's defaults).
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Exporter {
    /// An exporter to `endpoint` (`http://host:port`; for HTTP a path other
    /// than `/` is used as is, else `/v1/traces`), with extra request
    /// headers, a per-request timeout and the longest a request is retried.
    pub fn new(
        protocol: Protocol,
        endpoint: &str,
        headers: Vec<(String, String)>,
        timeout: Duration,
        max_elapsed: Duration,
    ) -> Result<Exporter, ExportError> {
        let bad = |why: &str| ExportError::Endpoint(endpoint.to_string(), why.to_string());
        let uri: http::Uri = endpoint.parse().map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("TLS endpoints are not supported by send; use a plaintext endpoint")),
            _ => return Err(bad("give a URL such as http://localhost:4318")),
        }
        let host = uri.host().ok_or_else(|| bad("the URL has no host"))?.to_string();
        let mut exporter = Exporter {
            protocol,
            endpoint: endpoint.to_string(),
            grpc: None,
            http: None,
            headers,
            timeout,
            max_elapsed,
            sent: Sent::default(),
        };
        match protocol {
            Protocol::Grpc => {
                let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
                    .map_err(|e| bad(&e.to_string()))?
                    .timeout(timeout)
                    .connect_lazy();
                exporter.grpc = Some(TraceServiceClient::new(channel));
            }
            Protocol::Http => {
                let port = uri.port_u16().unwrap_or(80);
                let path = match uri.path() {
                    "" | "/" => "/v1/traces".to_string(),
                    p => p.to_string(),
                };
                exporter.endpoint = format!("http://{host}:{port}{path}");
                exporter.http = Some((host, port, path));
            }
        }
        Ok(exporter)
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one request of `spans` spans, retrying as the endpoint asks.
    pub async fn export(&mut self, request: &ExportTraceServiceRequest, spans: usize) -> Result<(), ExportError> {
        let started = Instant::now();
        let mut backoff = INITIAL_BACKOFF;
        let mut retries = 0;
        let body = Bytes::from(request.encode_to_vec());
        loop {
            let attempt = match self.protocol {
                Protocol::Grpc => self.grpc_attempt(request).await,
                Protocol::Http => self.http_attempt(body.clone()).await,
            };
            let failed = match attempt {
                Ok(response) => {
                    self.sent.requests += 1;
                    self.sent.spans += spans as u64;
                    self.sent.retries += retries;
                    if let Some(partial) = response.partial_success
                        && (partial.rejected_spans > 0 || !partial.error_message.is_empty())
                    {
                        self.sent.rejected += partial.rejected_spans.max(0) as u64;
                        self.sent.rejected_message.get_or_insert(partial.error_message);
                    }
                    return Ok(());
                }
                Err(failed) => failed,
            };
            let endpoint = self.endpoint.clone();
            let Some(asked) = failed.retry else {
                return Err(ExportError::Refused { endpoint, spans, answer: failed.answer });
            };
            let delay = asked.unwrap_or(backoff);
            if started.elapsed() + delay > self.max_elapsed {
                let seconds = started.elapsed().as_secs_f64();
                return Err(ExportError::GaveUp { endpoint, spans, retries, seconds, answer: failed.answer });
            }
            tokio::time::sleep(delay).await;
            retries += 1;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn grpc_attempt(
        &mut self,
        request: &ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, Attempt> {
        let client = self.grpc.as_mut().expect("a gRPC exporter has a client");
        match client.export(request.clone()).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => {
                use tonic::Code;
                let delay = retry_delay(status.details());
                let retryable = matches!(
                    status.code(),
                    Code::Unavailable
                        | Code::Cancelled
                        | Code::DeadlineExceeded
                        | Code::Aborted
                        | Code::OutOfRange
                        | Code::DataLoss
                ) || (status.code() == Code::ResourceExhausted && delay.is_some());
                let answer = format!("{:?}: {}", status.code(), status.message());
                Err(Attempt { retry: retryable.then_some(delay), answer })
            }
        }
    }

    async fn http_attempt(&mut self, body: Bytes) -> Result<ExportTraceServiceResponse, Attempt> {
        let (host, port, path) = self.http.clone().expect("an HTTP exporter has an address");
        let unreachable = |what: String| Attempt { retry: Some(None), answer: what };
        let exchange = async {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| unreachable(format!("connecting: {e}")))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| unreachable(format!("HTTP handshake: {e}")))?;
            tokio::spawn(connection);
            let mut builder = hyper::Request::post(path.as_str())
                .header(hyper::header::HOST, format!("{host}:{port}"))
                .header(hyper::header::CONTENT_TYPE, "application/x-protobuf");
            for (k, v) in &self.headers {
                builder = builder.header(k.as_str(), v.as_str());
            }
            let request = builder.body(Full::new(body)).map_err(|e| Attempt { retry: None, answer: e.to_string() })?;
            let response = sender.send_request(request).await.map_err(|e| unreachable(format!("sending: {e}")))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            if status.is_success() {
                return ExportTraceServiceResponse::decode(bytes)
                    .map_err(|e| Attempt { retry: None, answer: format!("{status} with an unreadable body: {e}") });
            }
            let message = RpcStatus::decode(bytes.clone())
                .map(|s| s.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            Err(Attempt { retry: retryable.then_some(retry_after), answer: format!("{status}: {message}") })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(unreachable(format!("no answer within {:?}", self.timeout))),
        }
    }
}

/// `google.rpc.Status`, as gRPC's `grpc-status-details-bin` and OTLP/HTTP
/// error bodies carry it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The delay a `google.rpc.Status`'s `RetryInfo` asks for, if any.
fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    let info = status.details.iter().find(|d| d.type_url.ends_with("google.rpc.RetryInfo"))?;
    let delay = RetryInfo::decode(&info.value[..]).ok()?.retry_delay?;
    Some(Duration::new(delay.seconds.max(0) as u64, delay.nanos.max(0) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_is_read_from_status_details() {
        let info = RetryInfo { retry_delay: Some(ProtoDuration { seconds: 2, nanos: 500_000_000 }) };
        let status = RpcStatus {
            code: 8,
            message: "slow down".into(),
            details: vec![ProtoAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: info.encode_to_vec(),
            }],
        };
        assert_eq!(retry_delay(&status.encode_to_vec()), Some(Duration::from_millis(2500)));
        assert_eq!(retry_delay(b""), None);
        assert_eq!(retry_delay(b"\xff\xff"), None);
    }

    #[test]
    fn endpoints_are_checked() {
        let new = |p, e: &str| Exporter::new(p, e, Vec::new(), Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(new(Protocol::Http, "http://localhost:4318").unwrap().endpoint(), "http://localhost:4318/v1/traces");
        assert_eq!(new(Protocol::Http, "http://h:1/otlp/v1/traces").unwrap().endpoint(), "http://h:1/otlp/v1/traces");
        assert!(new(Protocol::Http, "https://h:1").err().unwrap().to_string().contains("TLS"));
        assert!(new(Protocol::Http, "localhost:4318").is_err());
    }
}
