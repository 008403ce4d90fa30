//! `tracelens serve` as an OTLP backend: real OpenTelemetry SDK exporters
//! (Python, gRPC and HTTP) send a known topology that reads back through the
//! API and /metrics; protocol conformance over gRPC and HTTP; and a crash
//! (kill -9) after which every acknowledged span is still there.

mod common;

use common::{Server, edge_calls, get_json, http, start_until};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Starts a server and returns once it listens and has restored what the
/// data directory kept.
fn start(data_dir: &Path, extra: &[&str]) -> Server {
    start_until(data_dir, extra, |line| line.starts_with("tracelens: replayed "))
}

fn metrics(addr: SocketAddr) -> String {
    String::from_utf8(http(addr, "GET", "/metrics", &[], b"").2).unwrap()
}

/// Polls the graph until `done` holds (traces complete after the idle timeout).
fn wait_for_graph(api: SocketAddr, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let g = get_json(api, "/api/v1/graph");
        if done(&g) || Instant::now() > deadline {
            return g;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls the graph until `edges` edges exist.
fn wait_for_edges(api: SocketAddr, edges: usize) -> serde_json::Value {
    wait_for_graph(api, |g| g["edges"].as_array().unwrap().len() >= edges)
}

/// An OTLP gRPC client of the server at `addr`.
async fn grpc_client(
    addr: SocketAddr,
) -> opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient<tonic::transport::Channel>
{
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::new(channel)
}

fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run ./scripts/test.sh, which installs the OpenTelemetry SDK exporters",
        p.display()
    );
    p
}

/// A Parquet file as pyarrow reads it: rows, column types, and every
/// column's values as text.
fn read_with_pyarrow(path: &Path) -> serde_json::Value {
    let script = "import json, sys, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1])\n\
        text = lambda v: None if v is None else str(v)\n\
        print(json.dumps({'rows': t.num_rows, 'types': {f.name: str(f.type) for f in t.schema},\n\
            'columns': {n: [text(v) for v in t.column(n).to_pylist()] for n in t.column_names}}))";
    let out = Command::new(python()).arg("-c").arg(script).arg(path).output().unwrap();
    assert!(out.status.success(), "pyarrow: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn send(protocol: &str, endpoint: &str, traces: u32, compression: &str) {
    send_with(protocol, endpoint, traces, compression, None)
}

/// Sends the interop topology with the Python SDK's exporter;
/// `compression` is none, gzip or deflate.
fn send_with(protocol: &str, endpoint: &str, traces: u32, compression: &str, ca_file: Option<&Path>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/send_topology.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).args(["--protocol", protocol, "--endpoint", endpoint, "--traces", &traces.to_string()]);
    cmd.args(["--compression", compression]);
    if let Some(ca) = ca_file {
        // requests lets these variables override the exporter's own CA file.
        cmd.arg("--ca-file").arg(ca).env_remove("REQUESTS_CA_BUNDLE").env_remove("CURL_CA_BUNDLE");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{protocol} export failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn edge<'a>(g: &'a serde_json::Value, client: &str, server: &str) -> &'a serde_json::Value {
    g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["client"] == client && e["server"] == server)
        .unwrap_or_else(|| panic!("no edge {client} -> {server}: {g}"))
}

fn assert_topology(g: &serde_json::Value, n: u64) {
    assert_eq!(g["edges"].as_array().unwrap().len(), 4, "{g}");
    let e = edge(g, "user", "web");
    assert_eq!((e["calls"].as_u64(), e["connection_type"].as_str()), (Some(n), Some("virtual_node")));
    let e = edge(g, "web", "orders");
    assert_eq!(
        (e["calls"].as_u64(), e["failed"].as_u64(), e["connection_type"].as_str()),
        (Some(n), Some(n / 5), Some(""))
    );
    let e = edge(g, "orders", "pg-orders");
    assert_eq!((e["calls"].as_u64(), e["connection_type"].as_str()), (Some(n), Some("database")));
    let e = edge(g, "orders", "billing");
    assert_eq!((e["calls"].as_u64(), e["connection_type"].as_str()), (Some(n), Some("messaging_system")));
}

#[test]
fn python_sdk_exporters_over_grpc_and_http() {
    for (protocol, compression) in [
        ("grpc", "none"),
        ("grpc", "gzip"),
        ("grpc", "deflate"),
        ("http", "none"),
        ("http", "gzip"),
        ("http", "deflate"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        // The SDK's batch processors send each service's spans on their own
        // schedule (billing's only at the final flush), so traces must stay
        // open longer than the whole run.
        let server = start(dir.path(), &["--trace-idle", "5s"]);
        let endpoint = match protocol {
            "grpc" => format!("http://{}", server.grpc),
            _ => format!("http://{}", server.http),
        };
        send(protocol, &endpoint, 25, compression);
        let g = wait_for_graph(server.api, |g| {
            g["edges"].as_array().unwrap().iter().filter(|e| e["calls"] == 25).count() >= 4
        });
        assert_topology(&g, 25);
        let m = metrics(server.api);
        assert!(
            m.contains("traces_service_graph_request_total{client=\"web\",server=\"orders\",connection_type=\"\"} 25"),
            "{m}"
        );
        assert!(
            m.contains(
                "traces_service_graph_request_failed_total{client=\"web\",server=\"orders\",connection_type=\"\"} 5"
            ),
            "{m}"
        );
        assert!(m.contains("traces_service_graph_request_server_seconds_count{client=\"web\",server=\"orders\",connection_type=\"\"} 25"), "{m}");
        assert!(m.contains("traces_spanmetrics_calls_total{service=\"orders\",span_name=\"POST /orders\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_ERROR\"} 5"), "{m}");
        assert!(m.contains("tracelens_spans_accepted_total 150"), "{protocol} {compression}: {m}");
        let ops = get_json(server.api, "/api/v1/operations");
        let op = ops["operations"].as_array().unwrap().iter().find(|o| o["service"] == "billing").unwrap();
        assert_eq!(op["calls"], 25);
        let b = get_json(server.api, "/api/v1/bottlenecks");
        assert_eq!(b["traces_analyzed"], 25, "{protocol}");
    }
}

#[test]
fn otlp_http_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--max-request-bytes", "100000"]);
    let shop_pb = std::fs::read(common::fixture("shop.otlp.pb")).unwrap();
    let shop_json = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    let post = |ct: &str, extra: &[(&str, &str)], body: &[u8]| {
        let mut headers = vec![("Content-Type", ct)];
        headers.extend_from_slice(extra);
        http(server.http, "POST", "/v1/traces", &headers, body)
    };
    // Protobuf and JSON (charset stripped) succeed; the response uses the request's encoding.
    let (s, head, body) = post("application/x-protobuf", &[], &shop_pb);
    assert_eq!(s, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: application/x-protobuf"), "{head}");
    assert!(body.is_empty(), "full success leaves partial_success unset");
    let (s, _, body) = post("application/json; charset=utf-8", &[], &shop_json);
    assert_eq!((s, body.as_slice()), (200, &b"{}"[..]));
    // Empty requests succeed.
    assert_eq!(post("application/json", &[], b"{}").0, 200);
    assert_eq!(post("application/x-protobuf", &[], b"").0, 200);
    // gzip bodies.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&shop_pb).unwrap();
    assert_eq!(post("application/x-protobuf", &[("Content-Encoding", "gzip")], &gz.finish().unwrap()).0, 200);
    // The other codings the Collector's confighttp sends (deflate comes from the Python SDK test).
    let zstd = zstd::encode_all(shop_pb.as_slice(), 3).unwrap();
    assert_eq!(post("application/x-protobuf", &[("Content-Encoding", "zstd")], &zstd).0, 200);
    let snappy = snap::raw::Encoder::new().compress_vec(&shop_json).unwrap();
    assert_eq!(post("application/json", &[("Content-Encoding", "snappy")], &snappy).0, 200);
    let mut lz4 = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
    lz4.write_all(&shop_pb).unwrap();
    assert_eq!(post("application/x-protobuf", &[("Content-Encoding", "lz4")], &lz4.finish().0).0, 200);
    // Any other coding is refused with what is accepted, never read as identity.
    let (s, _, body) = post("application/json", &[("Content-Encoding", "br")], &shop_json);
    assert_eq!(s, 415);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("gzip, zstd, deflate"), "{v}");
    // A body that does not inflate: 400 naming the coding.
    let (s, _, body) = post("application/x-protobuf", &[("Content-Encoding", "zstd")], b"not zstd");
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("invalid zstd body"));
    // Partial success: one span without ids, one without service.name.
    let partial = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeSpans":[{"spans":[
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"ok","startTimeUnixNano":"1","endTimeUnixNano":"2"},
        {"traceId":"","spanId":"eee19b7ec3c1b175","name":"bad","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
    let (s, _, body) = post("application/json", &[], partial);
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1");
    assert!(v["partialSuccess"]["errorMessage"].as_str().unwrap().contains("empty, all-zero or malformed"));
    // Garbage: 400 with a google.rpc.Status body; never retried.
    let (s, _, body) = post("application/json", &[], b"{not json");
    assert_eq!(s, 400);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert_eq!(post("application/x-protobuf", &[], b"\x0a\xff\xff\xff").0, 400);
    // Over the limit, plain and gzip-compressed: 413 with a google.rpc.Status body.
    let big = vec![b' '; 100_001];
    assert_eq!(post("application/json", &[], &big).0, 413);
    let (s, _, body) = post("application/json", &[], &vec![b' '; 300_000]);
    assert_eq!(s, 413);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 8);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&big).unwrap();
    assert_eq!(post("application/json", &[("Content-Encoding", "gzip")], &gz.finish().unwrap()).0, 413);
    // Wrong content type and method.
    assert_eq!(post("text/plain", &[], b"x").0, 415);
    assert_eq!(http(server.http, "GET", "/v1/traces", &[], b"").0, 405);
    // Health.
    assert_eq!(http(server.api, "GET", "/healthz", &[], b"").0, 200);
    assert_eq!(http(server.api, "GET", "/readyz", &[], b"").0, 200);
}

#[test]
fn otlp_grpc_conformance() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--max-request-bytes", "100000"]);
    let shop =
        ExportTraceServiceRequest::decode(std::fs::read(common::fixture("shop.otlp.pb")).unwrap().as_slice()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut client = grpc_client(server.grpc).await.max_encoding_message_size(1 << 30);
        // Full success: partial_success unset.
        let r = client.export(shop.clone()).await.unwrap().into_inner();
        assert!(r.partial_success.is_none());
        // gzip, and zstd, which the Collector's gRPC exporter can also send.
        let mut gz = client.clone().send_compressed(tonic::codec::CompressionEncoding::Gzip);
        assert!(gz.export(shop.clone()).await.is_ok());
        let mut zstd = client.clone().send_compressed(tonic::codec::CompressionEncoding::Zstd);
        assert!(zstd.export(shop.clone()).await.is_ok());
        // Partial success.
        let mut bad = shop.clone();
        bad.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![0; 16];
        let r = client.export(bad).await.unwrap().into_inner();
        assert_eq!(r.partial_success.unwrap().rejected_spans, 1);
        // Empty request.
        assert!(client.export(ExportTraceServiceRequest::default()).await.is_ok());
        // Oversize: RESOURCE_EXHAUSTED (not tonic's retryable OUT_OF_RANGE), plain and compressed.
        let mut big = shop.clone();
        big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(200_000);
        let err = client.export(big.clone()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        let err = gz.export(big.clone()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        let err = zstd.export(big).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    });
    let m = metrics(server.api);
    assert!(m.contains("tracelens_spans_rejected_total 1"), "{m}");
    // An OTLP/HTTP request sent to the gRPC port is refused (415), not
    // answered with gRPC's 200 that an HTTP exporter takes for success.
    let pb = std::fs::read(common::fixture("shop.otlp.pb")).unwrap();
    let (s, _, body) = http(server.grpc, "POST", "/v1/traces", &[("Content-Type", "application/json")], &pb);
    assert_eq!(s, 415);
    assert!(String::from_utf8_lossy(&body).contains("OTLP/gRPC listener"));
    assert_eq!(http(server.grpc, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &pb).0, 415);
    let m = metrics(server.api);
    assert!(m.contains("tracelens_spans_rejected_total 1"), "{m}");
}

#[test]
fn backpressure_answers_unavailable_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    // One request at a time, and every append waits for fsync: concurrent senders must be told to retry.
    let server = start(dir.path(), &["--max-in-flight", "1"]);
    // One large request (a few thousand spans) keeps the single slot busy for a while.
    let big = dir.path().join("big.jsonl");
    let out = common::tracelens(
        &["generate", "--spans", "3000", "--batch-spans", "100000", "-o", big.to_str().unwrap()],
        None,
    );
    assert!(out.status.success());
    let body = std::fs::read(&big).unwrap();
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 1, "one request body");
    let addr = server.http;
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| http(addr, "POST", "/v1/traces", &[("Content-Type", "application/json")], &body))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let responses: Vec<(u16, String, Vec<u8>)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert!(responses.iter().all(|(s, _, _)| *s == 200 || *s == 503), "only success or retry");
    let busy: Vec<_> = responses.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "80 concurrent large requests against one slot: some must be refused");
    assert!(responses.iter().any(|(s, _, _)| *s == 200), "and some accepted");
    for (_, head, body) in busy {
        assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["code"], 14);
    }
}

#[test]
fn every_acknowledged_span_survives_kill_9() {
    // Small segments, compacted as they close: under load the log rotates
    // into segments the preparer zero-filled or took back from compaction
    // (their earlier records still in them), and each crash leaves one half
    // written.
    let flags = ["--wal-segment-bytes", "16384", "--compact-interval", "200ms"];
    let dir = tempfile::tempdir().unwrap();
    // One span per request, one trace each: the span metrics count every
    // span restored (from the checkpoint, the Parquet files or the log) once
    // its trace completes.
    let counted = |server: &Server| -> u64 {
        metrics(server.api)
            .lines()
            .filter(|l| l.starts_with("traces_spanmetrics_calls_total{service=\"load\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let mut acked_total = 0;
    let mut server = start(dir.path(), &flags);
    for round in 0..2u64 {
        let addr = server.http;
        // A sender that counts acknowledged spans, one trace per request, until the server dies.
        let sender = std::thread::spawn(move || {
            let mut acked = 0u64;
            for i in 0..100_000u64 {
                let id = round * 1_000_000 + i + 1;
                let body = format!(
                    r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"load"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{id:032x}","spanId":"{id:016x}","name":"op","startTimeUnixNano":"1000","endTimeUnixNano":"2000"}}]}}]}}]}}"#
                );
                let result = std::panic::catch_unwind(|| {
                    http(addr, "POST", "/v1/traces", &[("Content-Type", "application/json")], body.as_bytes()).0
                });
                match result {
                    Ok(200) => acked += 1,
                    _ => break,
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(1500));
        server.proc.0.kill().unwrap(); // SIGKILL
        server.proc.0.wait().unwrap();
        let acked = sender.join().unwrap();
        assert!(acked > 20, "the sender got acknowledgements before the kill: {acked}");
        acked_total += acked;

        server = start(dir.path(), &flags);
        let deadline = Instant::now() + Duration::from_secs(30);
        while counted(&server) < acked_total {
            let counted = counted(&server);
            assert!(Instant::now() < deadline, "round {round}: {counted} spans recovered, {acked_total} acknowledged");
            std::thread::sleep(Duration::from_millis(100));
        }
        let m = metrics(server.api);
        let accepted: u64 = m
            .lines()
            .find_map(|l| l.strip_prefix("tracelens_spans_accepted_total ").and_then(|n| n.parse().ok()))
            .unwrap();
        assert!(accepted >= acked_total, "round {round}: {accepted} spans after restart, {acked_total} acknowledged");
        assert!(server.log.iter().all(|l| !l.contains("corrupt")), "{:?}", server.log);
    }
    let segments = std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        let kept = name.ends_with(".wal") || name.ends_with(".free");
        name.starts_with("wal-") && kept && e.metadata().unwrap().len() == 16384
    });
    assert!(segments.count() > 2, "segments were preallocated");
}

/// A request's body and the (trace id, spans) of each trace in it.
type RequestTraces = (Vec<u8>, Vec<(String, usize)>);

/// The requests of a generated length-prefixed OTLP protobuf stream.
fn requests_and_traces(stream: &[u8]) -> Vec<RequestTraces> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let mut out = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let body = rest[4..4 + len].to_vec();
        let request = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        let mut traces: Vec<(String, usize)> = Vec::new();
        for span in request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
            let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
            match traces.iter_mut().find(|(t, _)| *t == id) {
                Some((_, n)) => *n += 1,
                None => traces.push((id, 1)),
            }
        }
        out.push((body, traces));
        rest = &rest[4 + len..];
    }
    out
}

/// The spans `/api/v1/traces/{id}` answers with, or the status and message.
fn trace_spans(api: SocketAddr, id: &str) -> Result<usize, String> {
    let (status, _, body) = http(api, "GET", &format!("/api/v1/traces/{id}"), &[], b"");
    if status != 200 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    Ok(v["spans"].as_array().unwrap().len())
}

#[test]
fn acknowledged_traces_are_readable_at_every_moment() {
    // Traces stay open for the whole cycle (a long idle timeout), the
    // recent-trace cache holds 10 of them, the log rotates every 64 KiB and
    // is compacted as it goes; each cycle ends in kill -9 right after the
    // last acknowledgement, and the next start is read from at once, while
    // the restore runs.
    let flags =
        ["--wal-segment-bytes", "65536", "--compact-interval", "300ms", "--keep-traces", "10", "--trace-idle", "1m"];
    let dir = tempfile::tempdir().unwrap();
    let listening = |line: &str| line.starts_with("tracelens: listening: ");
    let mut acknowledged: Vec<(String, usize)> = Vec::new();
    let mut server = start_until(dir.path(), &flags, listening);
    for cycle in 0..5u64 {
        let dump = dir.path().join(format!("cycle-{cycle}.pb"));
        let seed = (cycle + 1).to_string();
        let out = common::tracelens(
            &[
                "generate",
                "--traces",
                "150",
                "--seed",
                &seed,
                "--format",
                "otlp-protobuf-stream",
                "-o",
                dump.to_str().unwrap(),
            ],
            None,
        );
        assert!(out.status.success());
        for (body, traces) in requests_and_traces(&std::fs::read(&dump).unwrap()) {
            let (status, _, reply) =
                http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &body);
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
            // Readable at once, while the trace is still open.
            let (id, spans) = &traces[0];
            assert_eq!(trace_spans(server.api, id), Ok(*spans), "cycle {cycle}: {id} right after its acknowledgement");
            acknowledged.extend(traces);
        }
        server.proc.0.kill().unwrap(); // SIGKILL, right after the last acknowledgement
        server.proc.0.wait().unwrap();
        server = start_until(dir.path(), &flags, listening);
        let mut misses = Vec::new();
        for (id, spans) in &acknowledged {
            match trace_spans(server.api, id) {
                Ok(n) if n == *spans => {}
                other => misses.push(format!("{id}: {other:?}, {spans} spans acknowledged")),
            }
        }
        assert!(
            misses.is_empty(),
            "cycle {cycle}: {} of {} acknowledged traces not readable right after the restart:\n{}",
            misses.len(),
            acknowledged.len(),
            misses.join("\n")
        );
    }
    // Compaction ran: some traces were read from compacted files.
    let parquet = files_under(&dir.path().join("parquet"), "parquet");
    assert!(!parquet.is_empty(), "compacted files were written");
}

fn accepted_spans(api: SocketAddr) -> u64 {
    metrics(api)
        .lines()
        .find_map(|l| l.strip_prefix("tracelens_spans_accepted_total ").and_then(|n| n.parse().ok()))
        .unwrap()
}

#[test]
fn send_replays_dumps_and_generate_writes_single_requests() {
    let dir = tempfile::tempdir().unwrap();
    // Two requests a second: the rest are told to retry (429 / UNAVAILABLE with a delay).
    let server = start(&dir.path().join("data"), &["--max-requests-per-second", "2"]);
    let dump = common::generate(dir.path(), "dump.jsonl", &["--traces", "200"]);
    let spans = common::analyze(&dump).spans_read;
    for (protocol, endpoint) in
        [("http", format!("http://{}", server.http)), ("grpc", format!("http://{}", server.grpc))]
    {
        let before = accepted_spans(server.api);
        let out = common::tracelens(
            &["send", dump.to_str().unwrap(), "--endpoint", &endpoint, "--protocol", protocol, "--batch-spans", "300"],
            None,
        );
        let err = common::stderr(&out);
        assert!(out.status.success(), "{protocol}: {err}");
        assert!(err.contains(&format!("tracelens: sent {spans} spans in ")), "{err}");
        assert!(!err.contains("(0 retries)"), "the rate limit was met and its hint honoured: {err}");
        assert_eq!(accepted_spans(server.api) - before, spans, "{protocol}: every span delivered once");
    }
    // generate writes what one POST /v1/traces takes, in JSON and protobuf.
    for (format, content_type) in [("otlp-json", "application/json"), ("otlp-protobuf", "application/x-protobuf")] {
        let one = common::generate(dir.path(), &format!("one.{format}"), &["--traces", "20", "--format", format]);
        let expected = common::analyze(&one).spans_read;
        std::thread::sleep(Duration::from_secs(1)); // a fresh rate-limit second
        let before = accepted_spans(server.api);
        let (status, _, body) =
            http(server.http, "POST", "/v1/traces", &[("Content-Type", content_type)], &std::fs::read(&one).unwrap());
        assert_eq!(status, 200, "{format}: {}", String::from_utf8_lossy(&body));
        assert_eq!(accepted_spans(server.api) - before, expected, "{format}");
    }
    // Nothing listening: retried, then given up, exit 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = common::tracelens(
        &["send", dump.to_str().unwrap(), "--endpoint", &format!("http://{closed}"), "--max-retry-time", "2s"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("still refused a request of"), "{}", common::stderr(&out));
    // A request refused for good (400) is not retried.
    let out = common::tracelens(
        &["send", dump.to_str().unwrap(), "--endpoint", &format!("http://{}/v1/metrics", server.http)],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
}

#[test]
fn a_bearer_token_guards_ingest_and_api() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    // Two tokens while one is rotated: either is admitted.
    std::fs::write(&token, "# rotated on 2026-12-01\ns3cret\n\n  n3wer  \n").unwrap();
    let server = start(&dir.path().join("data"), &["--auth-token-file", token.to_str().unwrap()]);
    let body = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    let json = ("Content-Type", "application/json");
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json], &body).0, 401);
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json, ("Authorization", "Bearer nope!")], &body).0, 401);
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json, ("Authorization", "Bearer s3cret")], &body).0, 200);
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json, ("Authorization", "Bearer n3wer")], &body).0, 200);
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json, ("Authorization", "Bearer s3cretn3wer")], &body).0, 401);
    assert_eq!(http(server.api, "GET", "/api/v1/graph", &[], b"").0, 401);
    assert_eq!(http(server.api, "GET", "/api/v1/graph", &[("Authorization", "Bearer s3cret")], b"").0, 200);
    assert_eq!(http(server.api, "GET", "/healthz", &[], b"").0, 200, "health checks need no token");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut client = grpc_client(server.grpc).await;
        let err = client.export(ExportTraceServiceRequest::default()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let mut request = tonic::Request::new(ExportTraceServiceRequest::default());
        request.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(client.export(request).await.is_ok());

        let mut query = query_client(server.api).await;
        let err = query.get_graph(pb::RangeQuery::default()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "the gRPC query API is guarded too");
        let mut request = tonic::Request::new(pb::RangeQuery::default());
        request.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(query.get_graph(request).await.is_ok());
    });
    drop(server);

    // A token file no client could match is refused at start, naming the line.
    for (text, says) in [
        ("s3cret n3wer\n", "line 1: a token is one word"),
        ("# only a comment\n\n", "holds no token"),
        ("ok\nt\u{e9}st\n", "line 2: a token is one word"),
    ] {
        std::fs::write(&token, text).unwrap();
        let out = common::tracelens(&["serve", "--auth-token-file", token.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(2), "{text:?}");
        assert!(common::stderr(&out).contains(says), "{text:?}: {}", common::stderr(&out));
    }
}

use tracelens::serve::query_proto as pb;

async fn query_client(addr: SocketAddr) -> pb::query_service_client::QueryServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    pb::query_service_client::QueryServiceClient::new(channel)
}

#[test]
fn the_grpc_query_service_answers_like_the_json_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let body = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    assert_eq!(http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], &body).0, 200);
    let json_graph = wait_for_edges(server.api, 7);
    let json_cart = get_json(server.api, "/api/v1/graph?service=cart");
    let json_ops = get_json(server.api, "/api/v1/operations?service=payments");
    let json_bottlenecks = get_json(server.api, "/api/v1/bottlenecks");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut q = query_client(server.api).await;
        let all = q.get_graph(pb::RangeQuery { since: "1d".into(), ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(all.edges.len(), json_graph["edges"].as_array().unwrap().len());
        assert_eq!(all.nodes.len(), json_graph["nodes"].as_array().unwrap().len());
        for (e, j) in all.edges.iter().zip(json_graph["edges"].as_array().unwrap()) {
            assert_eq!(
                (e.client.as_str(), e.server.as_str()),
                (j["client"].as_str().unwrap(), j["server"].as_str().unwrap())
            );
            assert_eq!(e.calls, j["calls"].as_u64().unwrap());
            assert_eq!(e.server_latency.as_ref().unwrap().p99_ns, j["server_latency"]["p99_ns"].as_u64().unwrap());
            assert_eq!(e.client_latency.is_some(), !j["client_latency"].is_null());
        }
        let cart =
            q.get_graph(pb::RangeQuery { service: "cart".into(), ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(cart.edges.len(), json_cart["edges"].as_array().unwrap().len());
        assert!(cart.nodes.iter().any(|n| n.name == "carts" && n.r#type == "database"), "{:?}", cart.nodes);

        let ops = q.get_operations(pb::RangeQuery { service: "payments".into(), ..Default::default() }).await.unwrap();
        let ops = ops.into_inner().operations;
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].operation, json_ops["operations"][0]["operation"].as_str().unwrap());
        assert_eq!(
            ops[0].latency.as_ref().unwrap().count,
            json_ops["operations"][0]["latency"]["count"].as_u64().unwrap()
        );

        let b = q.get_bottlenecks(pb::RangeQuery::default()).await.unwrap().into_inner();
        assert_eq!(b.traces_analyzed, json_bottlenecks["traces_analyzed"].as_u64().unwrap());
        assert_eq!(b.operations[0].operation, json_bottlenecks["operations"][0]["operation"].as_str().unwrap());

        let t = q.get_trace(pb::TraceQuery { trace_id: "0af7651916cd43dd8448eb211c80319c".into() }).await.unwrap();
        let t = t.into_inner();
        assert_eq!((t.spans.len(), t.duration_ns, t.critical_path.len()), (11, 120_000_000, 19));

        let err = q.get_graph(pb::RangeQuery { since: "soon".into(), ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("\"soon\" is not a time"), "{err:?}");
        let err =
            q.get_trace(pb::TraceQuery { trace_id: "ffffffffffffffffffffffffffffffff".into() }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
    });
}

#[test]
fn api_filters_by_service_and_returns_recent_traces() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let body = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    assert_eq!(http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], &body).0, 200);
    let all = wait_for_edges(server.api, 7);
    assert_eq!(all["edges"].as_array().unwrap().len(), 7);
    let cart = get_json(server.api, "/api/v1/graph?service=cart");
    let pairs: Vec<(String, String)> = cart["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["client"].as_str().unwrap().to_string(), e["server"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    assert!(pairs.iter().all(|(c, s)| c == "cart" || s == "cart"));
    assert_eq!(cart["nodes"].as_array().unwrap().len(), 4, "cart, carts, checkout, frontend");
    let ops = get_json(server.api, "/api/v1/operations?service=payments");
    assert_eq!(ops["operations"].as_array().unwrap().len(), 1);
    let b = get_json(server.api, "/api/v1/bottlenecks?service=payments");
    assert!(b["operations"].as_array().unwrap().iter().all(|o| o["service"] == "payments"));

    let t = get_json(server.api, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t["spans"].as_array().unwrap().len(), 11);
    assert_eq!(t["duration_ns"], 120_000_000);
    assert_eq!(t["critical_path"].as_array().unwrap().len(), 19);
    assert_eq!(http(server.api, "GET", "/api/v1/traces/ffffffffffffffffffffffffffffffff", &[], b"").0, 404);
    assert_eq!(http(server.api, "GET", "/api/v1/traces/nothex", &[], b"").0, 404, "unknown opaque ids are not found");
}

#[test]
fn settings_from_a_config_file_with_flags_winning() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "from-file").unwrap();
    let config = dir.path().join("tracelens.toml");
    std::fs::write(
        &config,
        format!("api_addr = \"127.0.0.1:0\"\nauth_token_file = \"{}\"\ntrace_idle_ms = 5000\n", token.display()),
    )
    .unwrap();
    // The flag's port 0 for gRPC/HTTP come from the command line; the token from the file.
    let server = start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    assert_eq!(http(server.api, "GET", "/api/v1/graph", &[], b"").0, 401);
    assert_eq!(http(server.api, "GET", "/api/v1/graph", &[("Authorization", "Bearer from-file")], b"").0, 200);

    drop(server);

    std::fs::write(&config, "grpc_adr = \"127.0.0.1:1\"\n").unwrap();
    let out = common::tracelens(&["serve", "--config", config.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("unknown field `grpc_adr`"), "{}", common::stderr(&out));
    std::fs::write(&config, "trace_idle = \"10 seconds\"\n").unwrap();
    let out = common::tracelens(&["serve", "--config", config.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("trace_idle: \"10 seconds\" is not a duration"), "{}", common::stderr(&out));
    let out = common::tracelens(&["serve", "--retention", "24"], None);
    assert_eq!(out.status.code(), Some(2), "a duration needs its unit");
    let out = common::tracelens(&["serve", "--max-metric-label-sets", "0"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("--max-metric-label-sets must be at least 1"), "{}", common::stderr(&out));

    // The printed example is a valid configuration, comments and all.
    let out = common::tracelens(&["serve", "--print-config"], None);
    assert!(out.status.success());
    let example = common::stdout(&out);
    for key in ["grpc_addr", "trace_idle = \"10s\"", "retention = \"1d\"", "bucket_width = \"1m\"", "compact_interval"]
    {
        assert!(example.contains(key), "{key}: {example}");
    }
    std::fs::write(&config, &example).unwrap();
    let server = start(&dir.path().join("data2"), &["--config", config.to_str().unwrap()]);
    assert_eq!(http(server.api, "GET", "/readyz", &[], b"").0, 200);
}

#[test]
fn log_segments_are_zero_filled_unless_turned_off() {
    let body = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    let json = ("Content-Type", "application/json");
    let ready = |dir: &Path| dir.join("wal-next.ready").exists();
    // Default: the next segment is prepared in the background.
    let on = tempfile::tempdir().unwrap();
    let server = start(on.path(), &[]);
    // 64 MiB zero-filled and synced: slow when other tests load the disk.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !ready(on.path()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ready(on.path()), "a prepared segment");
    drop(server);
    // Off, from the config file: segments hold their records only.
    let off = tempfile::tempdir().unwrap();
    let config = off.path().join("tracelens.toml");
    std::fs::write(&config, "wal_preallocate = false\n").unwrap();
    let data = off.path().join("data");
    let server = start(&data, &["--config", config.to_str().unwrap(), "--wal-segment-bytes", "4096"]);
    for _ in 0..3 {
        assert_eq!(http(server.http, "POST", "/v1/traces", &[json], &body).0, 200);
    }
    drop(server);
    let sizes: Vec<u64> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("wal-"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert!(!ready(&data), "nothing prepared: {sizes:?}");
    // A segment per request (16-byte header, tag byte, body), the two
    // closed ones with their closing marks.
    let mut sizes = sizes;
    sizes.sort();
    let record = body.len() as u64 + 17;
    assert_eq!(sizes, [record, record + 16, record + 16]);
}

#[test]
fn sigterm_stops_gracefully_and_metrics_count_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &[]);
    let body = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    assert_eq!(http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], &body).0, 200);
    let m = metrics(server.api);
    let wal_bytes: u64 =
        m.lines().find_map(|l| l.strip_prefix("tracelens_wal_bytes_total ").and_then(|n| n.parse().ok())).unwrap();
    assert_eq!(wal_bytes, body.len() as u64 + 1, "the request and its encoding tag");
    assert!(m.contains("tracelens_wal_commits_total 1"), "{m}");
    let pid = server.proc.0.id();
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let status = server.proc.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn without_fsync_requests_are_logged_inline_and_survive_kill_9() {
    // --no-fsync appends on the request's own thread (no group commit):
    // nothing is synced, but the records are in the kernel's page cache
    // before the acknowledgement, so a killed process loses nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &["--no-fsync"]);
    let body = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    for _ in 0..3 {
        assert_eq!(http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], &body).0, 200);
    }
    let m = metrics(server.api);
    let counter = |name: &str| -> u64 {
        m.lines().find_map(|l| l.strip_prefix(name).and_then(|n| n.trim().parse().ok())).unwrap()
    };
    assert_eq!(counter("tracelens_wal_bytes_total "), 3 * (body.len() as u64 + 1));
    assert_eq!(counter("tracelens_wal_commits_total "), 0, "no fsync, no commits");
    server.proc.0.kill().unwrap();
    server.proc.0.wait().unwrap();
    let restarted = start(dir.path(), &[]);
    // All three are replayed, or those after a checkpoint the compactor
    // took meanwhile (it runs once the start's restore is done).
    let number = |prefix: &str, after: &str| -> Option<u64> {
        let line = restarted.log.iter().find(|l| l.starts_with(prefix))?;
        line.split(after).nth(1)?.split([' ', ',']).next()?.parse().ok()
    };
    let replayed = number("tracelens: replayed ", "replayed ").unwrap();
    let checkpointed = number("tracelens: restored the checkpoint", ", record ").unwrap_or(0);
    assert_eq!(checkpointed + replayed, 3, "{:?}", restarted.log);
    let m = metrics(restarted.api);
    let accepted: u64 =
        m.lines().find_map(|l| l.strip_prefix("tracelens_spans_accepted_total ").and_then(|n| n.parse().ok())).unwrap();
    assert_eq!(accepted, 3 * 14, "the shop fixture's 14 spans, three times");
}

#[test]
fn a_rate_limit_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--max-requests-per-second", "5"]);
    let statuses: Vec<(u16, String)> = (0..20)
        .map(|_| {
            let (s, head, _) = http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], b"{}");
            (s, head)
        })
        .collect();
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<&String> = statuses.iter().filter(|(s, _)| *s == 429).map(|(_, h)| h).collect();
    assert!((5..20).contains(&ok), "a burst of 5 passes, then the limit bites: {ok} accepted");
    assert_eq!(ok + limited.len(), 20);
    assert!(limited.iter().all(|h| h.to_ascii_lowercase().contains("retry-after: 1")));
}

/// One web -> db call per trace: (minutes ago, server ms, server status code).
fn timed_calls(calls: &[(u64, u64, u8)]) -> Vec<u8> {
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut web = Vec::new();
    let mut db = Vec::new();
    for (i, &(ago_min, server_ms, status)) in calls.iter().enumerate() {
        let trace = format!("{:032x}", 0xabc000 + i);
        let start = now_ns - ago_min * 60_000_000_000;
        let span = |id: u64, parent: Option<u64>, kind: u8, ms: u64, status: u8| {
            serde_json::json!({
                "traceId": trace, "spanId": format!("{id:016x}"),
                "parentSpanId": parent.map(|p| format!("{p:016x}")).unwrap_or_default(),
                "name": "query", "kind": kind,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + ms * 1_000_000).to_string(),
                "status": { "code": status }
            })
        };
        let base = (i as u64 + 1) * 10;
        web.push(span(base + 1, None, 3, server_ms + 1, 0));
        db.push(span(base + 2, Some(base + 1), 2, server_ms, status));
    }
    let resource = |service: &str, spans: Vec<serde_json::Value>| {
        serde_json::json!({
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] },
            "scopeSpans": [{ "spans": spans }]
        })
    };
    serde_json::to_vec(&serde_json::json!({ "resourceSpans": [resource("web", web), resource("db", db)] })).unwrap()
}

#[test]
fn since_and_until_pick_time_buckets_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // 50, 20 and 2 minutes ago; the db answers in 10, 20 and 30 ms.
    let body = timed_calls(&[(50, 10, 1), (20, 20, 2), (2, 30, 0)]);
    let calls_between = |api: SocketAddr, query: &str| -> (u64, u64) {
        let g = get_json(api, &format!("/api/v1/graph{query}"));
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["client"] == "web" && e["server"] == "db")
            .map(|e| (e["calls"].as_u64().unwrap(), e["server_latency"]["max_ns"].as_u64().unwrap()))
            .unwrap_or_default()
    };
    for restart in [false, true] {
        let server = start(dir.path(), &["--bucket-width", "1m"]);
        if !restart {
            assert_eq!(http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], &body).0, 200);
        }
        wait_for_graph(server.api, |g| g["edges"].as_array().unwrap().iter().any(|e| e["calls"] == 3));
        assert_eq!(calls_between(server.api, ""), (3, 30_000_000), "restart: {restart}");
        assert_eq!(calls_between(server.api, "?since=30m"), (2, 30_000_000));
        assert_eq!(calls_between(server.api, "?since=now-30m&until=now-10m"), (1, 20_000_000));
        assert_eq!(calls_between(server.api, "?until=40m"), (1, 10_000_000));
        assert_eq!(calls_between(server.api, "?since=1m"), (0, 0));
        let ops = get_json(server.api, "/api/v1/operations?service=db&since=30m&until=10m");
        assert_eq!(ops["operations"][0]["calls"], 1);
        assert_eq!(ops["operations"][0]["errors"], 1);
        let (status, _, err) = http(server.api, "GET", "/api/v1/bottlenecks?since=yesterday", &[], b"");
        assert_eq!(status, 400);
        let err: serde_json::Value = serde_json::from_slice(&err).unwrap();
        assert_eq!(err["code"], 3);
        assert!(err["message"].as_str().unwrap().starts_with("since: \"yesterday\" is not a time"), "{err}");

        // /metrics counts everything, with Tempo's status_code label on both series.
        let m = metrics(server.api);
        let label = "service=\"db\",span_name=\"query\",span_kind=\"SPAN_KIND_SERVER\"";
        for status in ["UNSET", "OK", "ERROR"] {
            let calls = format!("traces_spanmetrics_calls_total{{{label},status_code=\"STATUS_CODE_{status}\"}} 1");
            let count = format!("traces_spanmetrics_latency_count{{{label},status_code=\"STATUS_CODE_{status}\"}} 1");
            assert!(m.contains(&calls) && m.contains(&count), "{status}:\n{m}");
        }
        assert!(m.contains(&format!(
            "traces_spanmetrics_latency_bucket{{{label},status_code=\"STATUS_CODE_OK\",le=\"0.016\"}} 1"
        )));
        assert!(m.contains("tracelens_time_buckets 3"), "{m}");
    }
}

/// A GET over TLS trusting only `ca`: (status, body).
fn https_get(addr: SocketAddr, ca: &rcgen::Certificate, path: &str) -> Result<(u16, Vec<u8>), String> {
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no response: {text}"))?;
    let body = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(Vec::new(), |i| response[i + 4..].to_vec());
    Ok((status, body))
}

#[test]
fn tls_on_every_listener_with_real_sdk_exporters() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, leaf_key) = certificate_authority_and_leaf();
    let (ca_file, cert, key) = (dir.path().join("ca.pem"), dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let server = start(
        &dir.path().join("data"),
        &["--tls-cert-file", cert.to_str().unwrap(), "--tls-key-file", key.to_str().unwrap()],
    );
    assert!(server.log.iter().any(|l| l.ends_with("(TLS)")), "{:?}", server.log);

    send_with("grpc", &format!("https://127.0.0.1:{}", server.grpc.port()), 10, "none", Some(&ca_file));
    send_with("http", &format!("https://127.0.0.1:{}", server.http.port()), 10, "gzip", Some(&ca_file));
    let deadline = Instant::now() + Duration::from_secs(30);
    let graph = loop {
        let (status, body) = https_get(server.api, &ca, "/api/v1/graph").unwrap();
        assert_eq!(status, 200);
        let g: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if edge_calls(&g, "web", "orders") >= 20 || Instant::now() > deadline {
            break g;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_topology(&graph, 20);
    let (status, _) = https_get(server.api, &ca, "/metrics").unwrap();
    assert_eq!(status, 200);

    // No plaintext fallback: a plain HTTP request gets no HTTP answer.
    let mut plain = TcpStream::connect(server.api).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
    // A client that does not trust the certificate is refused.
    let (other_ca, _, _) = certificate_authority_and_leaf();
    assert!(https_get(server.api, &other_ca, "/healthz").is_err());
}

/// A CA and a server certificate it signed for localhost and 127.0.0.1.
fn certificate_authority_and_leaf() -> (rcgen::Certificate, rcgen::Certificate, rcgen::KeyPair) {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "tracelens test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params.signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key)).unwrap();
    (ca, leaf, leaf_key)
}

#[test]
fn a_port_in_use_names_its_flag_before_anything_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for flag in ["--grpc-addr", "--http-addr", "--api-addr"] {
        let mut args = vec!["serve", "--data-dir", data.to_str().unwrap()];
        for other in ["--grpc-addr", "--http-addr", "--api-addr"] {
            args.extend([other, if other == flag { port.as_str() } else { "127.0.0.1:0" }]);
        }
        let out = common::tracelens(&args, None);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = common::stderr(&out);
        assert!(err.contains(&format!("tracelens: error: {flag} {port}: Address already in use")), "{err}");
        assert_eq!(err.matches("Address already in use").count(), 1, "said once: {err}");
        assert!(!data.exists(), "nothing created on disk for {flag}");
    }
}

#[test]
fn bad_tls_settings_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tracelens"))
            .args(["serve", "--data-dir", dir.path().to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--tls-cert-file", "cert.pem"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tls-key-file"), "{err}");
    let missing = dir.path().join("missing.pem");
    let (code, err) = run(&["--tls-cert-file", missing.to_str().unwrap(), "--tls-key-file", "key.pem"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("TLS certificate") && err.contains("missing.pem"), "{err}");
}

/// POSTs every record of a length-prefixed OTLP protobuf stream.
fn post_stream(http_addr: SocketAddr, stream: &[u8]) {
    let mut rest = stream;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let (status, _, body) =
            http(http_addr, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &rest[4..4 + len]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        rest = &rest[4 + len..];
    }
}

#[test]
fn deploy_gates_get_the_answers_argo_and_flagger_expect() {
    let dir = tempfile::tempdir().unwrap();
    // checkout 1.10.0 is ~20% slower beside 1.9.0; everything else unchanged.
    let data = dir.path().join("canary.pb");
    let out = Command::new(env!("CARGO_BIN_EXE_tracelens"))
        .args(["generate", "--traces", "20000", "--scenario", "canary", "--change", "latency", "--magnitude", "2.8"])
        .args(["--format", "otlp-protobuf-stream", "-o", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let server = start(&dir.path().join("data"), &["--keep-traces", "30000"]);
    post_stream(server.http, &std::fs::read(&data).unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !metrics(server.api).contains("tracelens_traces_completed_total 20000") {
        assert!(Instant::now() < deadline, "traces did not complete");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Argo Rollouts' web provider: a GET whose 200 body it reads with jsonPath {$.verdict}.
    let argo = "/api/v1/verdict?service=checkout&baseline_version=1.9.0&candidate_version=1.10.0";
    let (status, headers, body) = http(server.api, "GET", argo, &[("Accept", "application/json")], b"");
    assert_eq!(status, 200, "a failing verdict still answers 200");
    assert!(headers.to_ascii_lowercase().contains("content-type: application/json"), "{headers}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((v["verdict"].as_str(), v["rollback"].as_bool()), (Some("fail"), Some(true)), "{v:#}");
    assert_eq!(v["attribution"][0]["operation"], "PlaceOrder");
    // A gate that polls: each of the planned looks is tested at α/K, the last one's verdict is kept.
    let polled = format!("{argo}&analysis_id=checkout/7d9f1c2a0e&planned_looks=2");
    let first = get_json(server.api, &polled);
    assert_eq!(first["looks"]["look"], 1);
    assert_eq!(first["looks"]["frozen"], false);
    assert!((first["metrics"][0]["ci_level"].as_f64().unwrap() - 0.99).abs() < 1e-12, "98% split over 2 looks");
    let second = get_json(server.api, &polled);
    assert_eq!((second["looks"]["look"].as_u64(), second["looks"]["frozen"].as_bool()), (Some(2), Some(true)));
    assert_eq!(get_json(server.api, &polled), second, "frozen after the planned looks");
    assert_eq!(second["verdict"], "fail");
    assert_eq!(http(server.api, "GET", &format!("{argo}&planned_looks=3"), &[], b"").0, 400);
    // A malformed request is a 400 (Argo counts it as a measurement error).
    assert_eq!(http(server.api, "GET", "/api/v1/verdict?service=checkout", &[], b"").0, 400);
    assert_eq!(http(server.api, "GET", "/api/v1/verdict?baseline_version=1", &[], b"").0, 400);
    // A service or versions the receiver never saw, a deploy time in the future: 400, saying what is there.
    let (status, _, body) =
        http(server.api, "GET", "/api/v1/verdict?service=chekout&baseline_version=1&candidate_version=2", &[], b"");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#"service \"chekout\" is not in the input; services present: "#), "{body}");
    assert!(body.contains("checkout"), "{body}");
    let (status, _, body) = http(
        server.api,
        "GET",
        "/api/v1/verdict?service=checkout&baseline_version=1.8&candidate_version=2.0",
        &[],
        b"",
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("versions of checkout present: 1.10.0, 1.9.0"), "{body}");
    let (status, _, body) =
        http(server.api, "GET", "/api/v1/verdict?service=checkout&deploy_time=2100-01-01T00:00:00Z", &[], b"");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("is in the future"));

    // Flagger: the payload its webhooks POST.
    let hook = |metadata: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({
            "name": "checkout", "namespace": "shop", "phase": "Progressing",
            "checksum": "6c54544bf9", "metadata": metadata
        }))
        .unwrap()
    };
    let json_type = ("Content-Type", "application/json");
    let versions = serde_json::json!({"baseline_version": "1.9.0", "candidate_version": "1.10.0"});
    let (status, _, body) = http(server.api, "POST", "/api/v1/flagger/gate", &[json_type], &hook(versions.clone()));
    assert_eq!(status, 403, "a failing canary is stopped");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["reason"].as_str().unwrap().contains("checkout latency_p50"), "{}", v["reason"]);
    let (status, _, _) = http(server.api, "POST", "/api/v1/flagger/rollback", &[json_type], &hook(versions));
    assert_eq!(status, 200, "the inverted rollback hook: roll back now");

    // An unchanged service, judged around a recorded deployment: pass.
    let marker = br#"{"service":"currency","version":"1.0.3","time":"2026-11-01T00:01:40Z"}"#;
    let (status, _, body) = http(server.api, "POST", "/api/v1/deployments", &[json_type], marker);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(get_json(server.api, "/api/v1/deployments")["deployments"][0]["service"], "currency");
    let meta = serde_json::json!({"service": "currency", "warmup": "0s"});
    let (status, _, body) = http(server.api, "POST", "/api/v1/flagger/gate", &[json_type], &hook(meta.clone()));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")), "{v:#}");
    assert_eq!(v["mode"], "deploy_time");
    assert_eq!(http(server.api, "POST", "/api/v1/flagger/rollback", &[json_type], &hook(meta)).0, 403);
    let v = get_json(server.api, "/api/v1/verdict?service=currency&warmup=0s");
    assert_eq!(v["verdict"], "pass");

    // Inconclusive (cart runs one version only): 403 unless the hook says otherwise.
    let cart = serde_json::json!({"service": "cart", "baseline_version": "3.0.2", "candidate_version": "3.1.0"});
    let (status, _, body) = http(server.api, "POST", "/api/v1/flagger/gate", &[json_type], &hook(cart.clone()));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, v["verdict"].as_str()), (403, Some("inconclusive")));
    let mut lenient = cart;
    lenient["on_inconclusive"] = "pass".into();
    assert_eq!(http(server.api, "POST", "/api/v1/flagger/gate", &[json_type], &hook(lenient)).0, 200);
    assert_eq!(http(server.api, "POST", "/api/v1/flagger/gate", &[json_type], b"{not json").0, 400);

    // The same verdict over gRPC.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut q = query_client(server.api).await;
        let request_for_checkout = || pb::VerdictQuery {
            service: "checkout".into(),
            baseline_version: "1.9.0".into(),
            candidate_version: "1.10.0".into(),
            ..Default::default()
        };
        let reply = q.get_verdict(request_for_checkout()).await.unwrap().into_inner();
        assert_eq!((reply.verdict.as_str(), reply.rollback), ("fail", true));
        let full: serde_json::Value = serde_json::from_str(&reply.verdict_json).unwrap();
        assert_eq!(full["service"], "checkout");
        let err = q.get_verdict(pb::VerdictQuery::default()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let typo = pb::VerdictQuery { service: "chekout".into(), ..request_for_checkout() };
        let err = q.get_verdict(typo).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("services present"), "{}", err.message());
    });

    // Last: the snippets of docs/deploy-gates.md, as pasted (one records a deployment marker).
    deploy_gate_docs_work_when_pasted(&server, dir.path());
}

/// The fenced blocks of a Markdown file with the given info string.
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("```{lang}") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(body.join("\n") + "\n");
        }
    }
    blocks
}

/// The path and query of a documented URL, pointed at the test's receiver.
fn documented_path(url: &str) -> String {
    let rest = url.strip_prefix("http://tracelens.observability:7070").unwrap_or_else(|| panic!("{url}"));
    rest.to_string()
}

/// Runs each snippet of docs/deploy-gates.md against `server`, which holds
/// the checkout canary (1.10.0 slower than 1.9.0), as the gate would.
fn deploy_gate_docs_work_when_pasted(server: &Server, dir: &Path) {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy-gates.md")).unwrap();
    let yaml: Vec<serde_json::Value> = fenced_blocks(&doc, "yaml")
        .iter()
        .map(|b| serde_json::to_value(serde_norway::from_str::<serde_norway::Value>(b).unwrap()).unwrap())
        .collect();

    // Argo Rollouts: the AnalysisTemplate's URL with the Rollout's args; one planned look per measurement.
    let template = yaml.iter().find(|v| v["kind"] == "AnalysisTemplate").expect("an AnalysisTemplate");
    let metric = &template["spec"]["metrics"][0];
    let count = metric["count"].as_u64().unwrap();
    assert!(metric["inconclusiveLimit"].as_u64().unwrap() < count);
    let url = metric["provider"]["web"]["url"]
        .as_str()
        .unwrap()
        .replace("{{args.service}}", "checkout")
        .replace("{{args.stable-version}}", "1.9.0")
        .replace("{{args.canary-version}}", "1.10.0");
    assert!(url.contains(&format!("planned_looks={count}")), "{url}");
    // The documented Rollout sends 20% to the canary; the generated canary got half.
    assert!(url.contains("canary_weight=0.2"), "{url}");
    let url = url.replace("canary_weight=0.2", "canary_weight=0.5");
    let v = get_json(server.api, &documented_path(&url));
    assert_eq!(metric["successCondition"], "result == \"pass\"");
    assert_eq!(v["verdict"], "fail", "{v:#}");
    assert_eq!(v["looks"]["planned"], count);

    // Flagger: the Canary's hooks, POSTed the payload Flagger sends.
    let canary = yaml.iter().find(|v| v["kind"] == "Canary").expect("a Canary");
    let analysis = &canary["spec"]["analysis"];
    let iterations = analysis["maxWeight"].as_u64().unwrap() / analysis["stepWeight"].as_u64().unwrap();
    let hooks = analysis["webhooks"].as_array().unwrap();
    let post = |hook: &serde_json::Value, metadata: &serde_json::Value| {
        let payload = serde_json::json!({
            "name": canary["metadata"]["name"], "namespace": canary["metadata"]["namespace"],
            "phase": "Progressing", "checksum": "85c8cd77c8", "metadata": metadata
        });
        let path = documented_path(hook["url"].as_str().unwrap());
        http(server.api, "POST", &path, &[("Content-Type", "application/json")], &serde_json::to_vec(&payload).unwrap())
            .0
    };
    let mut types = Vec::new();
    for hook in hooks {
        let kind = hook["type"].as_str().unwrap();
        types.push(kind);
        let metadata = &hook["metadata"];
        if ["confirm-promotion", "rollout", "confirm-traffic-increase"].contains(&kind) {
            assert!(metadata.get("on_inconclusive").is_none(), "inconclusive must not promote: {hook}");
        }
        if let Some(looks) = metadata.get("planned_looks") {
            assert_eq!(looks.as_str().unwrap().parse::<u64>().unwrap(), iterations, "one look per iteration");
        }
        let status = post(hook, metadata);
        match kind {
            "rollback" => assert_eq!(status, 200, "the failing canary is rolled back"),
            "confirm-promotion" => assert_eq!(status, 403, "the failing canary is not promoted"),
            other => panic!("undocumented hook type {other}"),
        }
        // An inconclusive verdict (cart runs one version) neither promotes nor rolls back.
        let mut cart = metadata.clone();
        cart["service"] = "cart".into();
        cart["baseline_version"] = "3.0.2".into();
        cart["candidate_version"] = "3.1.0".into();
        assert_eq!(post(hook, &cart), 403, "{kind} on an inconclusive verdict");
    }
    assert_eq!(types, ["rollback", "confirm-promotion"]);

    // Spinnaker: the webhook stage, with buildInfo.timestamp in epoch milliseconds.
    let stage: serde_json::Value = fenced_blocks(&doc, "json")
        .iter()
        .find_map(|b| serde_json::from_str(b).ok().filter(|v: &serde_json::Value| v["type"] == "webhook"))
        .expect("a webhook stage");
    let url = stage["url"]
        .as_str()
        .unwrap()
        .replace("${trigger['buildInfo']['timestamp']}", "1793491300000")
        .replace("${trigger['buildInfo']['number']}", "42");
    let (status, _, body) = http(server.api, "GET", &documented_path(&url), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stage["statusJsonPath"], "$.verdict");
    let status = v["verdict"].as_str().unwrap().to_uppercase();
    assert!(["PASS", "FAIL", "INCONCLUSIVE"].contains(&status.as_str()), "{v:#}");
    assert_eq!(stage["successStatuses"], "PASS");
    assert_eq!(stage["terminalStatuses"], "FAIL");
    assert!(stage.get("canceledStatuses").is_none(), "an inconclusive poll must not cancel the stage");
    assert!(v["baseline"]["start_unix_nano"].as_u64().unwrap() < 1_793_491_300_000_000_000, "deploy time read as ms");

    // CI: each sh snippet under `bash -e`, as GitHub Actions and GitLab run them.
    let scripts = fenced_blocks(&doc, "sh");
    let bin = Path::new(env!("CARGO_BIN_EXE_tracelens")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let ci = dir.join("ci");
    std::fs::create_dir_all(&ci).unwrap();
    // A dump in which checkout's error rate rises after a deploy at 00:05:00.
    let out = Command::new(env!("CARGO_BIN_EXE_tracelens"))
        .args(["generate", "--traces", "6000", "--rate", "10", "--scenario", "rollout", "--change", "errors"])
        .args(["--magnitude", "0.3", "-o", ci.join("spans.jsonl").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(ci.join("rollback.sh"), "#!/bin/sh\ntouch rolled-back\n").unwrap();
    std::fs::set_permissions(ci.join("rollback.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let offline = scripts.iter().find(|s| s.contains("tracelens verdict spans.jsonl")).expect("the dump snippet");
    let out = Command::new("bash")
        .args(["-e", "-c", offline])
        .current_dir(&ci)
        .env("PATH", &path)
        .env("DEPLOYED_AT", "2026-11-01T00:05:00Z")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("regression: rolling back"), "{said}");
    assert!(ci.join("rolled-back").exists());
    let verdict: serde_json::Value = serde_json::from_slice(&std::fs::read(ci.join("verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["verdict"], "fail");

    let live = scripts.iter().find(|s| s.contains("/api/v1/deployments")).expect("the receiver snippet");
    let out = Command::new("bash")
        .args(["-e", "-c", live])
        .env("PATH", &path)
        .env("TRACELENS_URL", format!("http://{}", server.api))
        .env("VERSION", "1.10.0")
        .env("SETTLE_SECONDS", "0")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    // Deployed just now: no candidate traces yet, so not a pass, and the job stops.
    assert_eq!(out.status.code(), Some(1), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("verdict: inconclusive"), "{said}");
}

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p, ext));
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn compacted_parquet_answers_queries_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = ["--wal-segment-bytes", "4096", "--compact-interval", "200ms", "--keep-traces", "1"];
    let server = start(&data, &flags);
    let json = ("Content-Type", "application/json");
    let shop = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json], &shop).0, 200);
    // A second request starts a new segment, closing the first.
    let edges = std::fs::read(common::fixture("graph-edges.otlp.jsonl")).unwrap();
    let first_line = edges.split(|&b| b == b'\n').next().unwrap();
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json], first_line).0, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while files_under(&data.join("parquet"), "parquet").is_empty() {
        assert!(Instant::now() < deadline, "no segment was compacted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let parquet = files_under(&data.join("parquet"), "parquet");
    let partition = parquet[0].parent().unwrap().to_str().unwrap().to_string();
    assert!(partition.contains("/parquet/date=") && partition.contains("/hour="), "{partition}");
    // The shop's 7 calls and the other request's 2: both requests' traces
    // complete (waiting for 7 alone raced the second request's traces).
    let graph = wait_for_edges(server.api, 9);

    // Only one trace stays in memory: this one is answered from Parquet.
    let t = get_json(server.api, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t["spans"].as_array().unwrap().len(), 11, "{t}");
    // A page of it.
    let page = get_json(server.api, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c?offset=8&limit=4");
    assert_eq!((page["span_count"].as_u64(), page["offset"].as_u64()), (Some(11), Some(8)), "{page}");
    assert_eq!((page["spans"].as_array().unwrap().len(), &page["next_offset"]), (3, &serde_json::Value::Null));
    let page = get_json(server.api, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c?limit=4");
    assert_eq!(page["next_offset"], 4, "{page}");
    let (status, _, _) = http(server.api, "GET", "/api/v1/traces/0af7651916cd43dd8448eb211c80319c?limit=0", &[], b"");
    assert_eq!(status, 400);
    assert_eq!(t["duration_ns"], 120_000_000);
    assert_eq!(t["critical_path"].as_array().unwrap().len(), 19);

    // Another Parquet implementation (pyarrow) reads them as polars does.
    for file in &parquet {
        use polars::prelude::SerReader;
        let ours = polars::prelude::ParquetReader::new(std::fs::File::open(file).unwrap()).finish().unwrap();
        let theirs = read_with_pyarrow(file);
        assert_eq!(theirs["rows"].as_u64().unwrap() as usize, ours.height(), "{theirs}");
        assert!(ours.height() > 0);
        for (name, dtype) in ours.schema().iter() {
            // Text as Arrow string views, as the schema polars writes says.
            let want = if dtype.is_integer() { dtype.to_string().replace('u', "uint") } else { "string_view".into() };
            assert_eq!(theirs["types"][name.as_str()], want, "{name}");
            let column = ours.column(name).unwrap().cast(&polars::prelude::DataType::String).unwrap();
            let values: Vec<serde_json::Value> =
                column.str().unwrap().iter().map(|v| v.map_or(serde_json::Value::Null, Into::into)).collect();
            assert_eq!(theirs["columns"][name.as_str()], serde_json::Value::Array(values), "{name}");
        }
    }

    // The offline commands read the compacted files as they are.
    let out =
        Command::new(env!("CARGO_BIN_EXE_tracelens")).args(["analyze"]).arg(data.join("parquet")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("parquet"));

    // A restart reads the checkpoint taken before compaction, then the
    // rest of the log; the Parquet files are not read.
    drop(server);
    let server = start(&data, &flags);
    let restoring = |server: &Server, what: &str| {
        assert!(server.log.iter().any(|l| l.contains(what)), "{:?}", server.log);
    };
    restoring(&server, "restoring the checkpoint of live analysis");
    assert!(!server.log.iter().any(|l| l.contains("compacted Parquet file")), "{:?}", server.log);
    let calls = |g: &serde_json::Value| {
        let mut v: Vec<(String, String, u64)> = g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["client"].as_str().unwrap().into(),
                    e["server"].as_str().unwrap().into(),
                    e["calls"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let again = wait_for_edges(server.api, 9);
    assert_eq!(calls(&again), calls(&graph));
    let t = get_json(server.api, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t["spans"].as_array().unwrap().len(), 11);

    // Without the checkpoint, a restart reads the Parquet files back, then
    // the rest of the log, to the same answers.
    drop(server);
    std::fs::remove_dir_all(data.join("checkpoint")).unwrap();
    let server = start(&data, &flags);
    restoring(&server, "compacted Parquet files");
    let again = wait_for_edges(server.api, 9);
    assert_eq!(calls(&again), calls(&graph));
}

#[test]
fn a_truncated_compacted_file_is_named_and_the_others_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = ["--wal-segment-bytes", "4096", "--compact-interval", "200ms", "--wal-preallocate", "false"];
    let server = start(&data, &flags);
    let json = ("Content-Type", "application/json");
    // The shop (13 KB) fills a segment; the other fixture's lines fill
    // another and start a third: two are closed and compacted.
    let shop = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    let edges = std::fs::read(common::fixture("graph-edges.otlp.jsonl")).unwrap();
    assert_eq!(http(server.http, "POST", "/v1/traces", &[json], &shop).0, 200);
    for line in edges.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert_eq!(http(server.http, "POST", "/v1/traces", &[json], line).0, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while files_under(&data.join("parquet"), "parquet").len() < 2 {
        assert!(Instant::now() < deadline, "the segments were not compacted");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    // The shop's file loses its second half (its footer with it).
    let mut files = files_under(&data.join("parquet"), "parquet");
    files.sort();
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() / 2]).unwrap();

    let server = start(&data, &flags);
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(server.log.iter().any(|l| l.contains("error") && l.contains(name)), "{:?}", server.log);
    // Ready, saying which file is left out and why.
    let (status, _, body) = http(server.api, "GET", "/readyz", &[], b"");
    let ready = String::from_utf8_lossy(&body);
    assert_eq!(status, 200);
    assert!(ready.contains("1 compacted file(s) cannot be read") && ready.contains(name), "{ready}");
    assert!(metrics(server.api).contains("tracelens_compacted_files_unreadable 1"));
    // The other file still answers look-ups and searches; the lost trace is not found.
    assert_eq!(trace_spans(server.api, "e0000000000000000000000000000001"), Ok(3));
    let (status, _, body) = http(server.api, "GET", "/api/v1/traces/0af7651916cd43dd8448eb211c80319c", &[], b"");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let found = get_json(server.api, "/api/v1/traces?limit=10");
    let ids: Vec<&str> = found["traces"].as_array().unwrap().iter().map(|t| t["trace_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"e0000000000000000000000000000001"), "{found}");
}

#[test]
fn a_damaged_log_segment_is_set_aside_and_compaction_goes_on() {
    use tracelens::serve::storage::wal::{Wal, WalConfig, closed_segments};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A closed segment of two JSON records (tag 1) whose second rots on disk.
    let shop = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    let edges = std::fs::read(common::fixture("graph-edges.otlp.jsonl")).unwrap();
    let first_line = edges.split(|&b| b == b'\n').next().unwrap();
    {
        let (mut wal, _) = Wal::open(WalConfig::new(&data)).unwrap();
        wal.append_parts_unsynced(&[&[1], &shop]).unwrap();
        wal.append_parts_unsynced(&[&[1], first_line]).unwrap();
    }
    drop(Wal::open(WalConfig::new(&data)).unwrap()); // closes it
    let (_, segment) = closed_segments(&data).unwrap().remove(0);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[16 + 1 + shop.len() + 16 + 20] ^= 0xff; // 16-byte headers, a tag byte
    std::fs::write(&segment, &bytes).unwrap();

    // No 64 MiB segments prepared in the background: not needed here.
    let flags = ["--compact-interval", "200ms", "--wal-preallocate", "false"];
    let server = start(&data, &flags);
    assert!(server.log.iter().any(|l| l.contains("corrupt log record") && l.contains("checksum")), "{:?}", server.log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics(server.api).contains("tracelens_wal_segments_damaged_total 1") {
        assert!(Instant::now() < deadline, "the segment was not set aside");
        std::thread::sleep(Duration::from_millis(100));
    }
    let moved = data.join("damaged").join(segment.file_name().unwrap());
    assert_eq!(std::fs::read(&moved).unwrap(), bytes, "kept whole, as it was");
    assert!(!segment.exists());
    let compacted = files_under(&data.join("parquet"), "parquet");
    let stem = segment.file_stem().unwrap().to_str().unwrap();
    assert!(compacted.iter().any(|f| f.file_stem().unwrap().to_str() == Some(stem)), "{compacted:?}");
    let t = get_json(server.api, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t["spans"].as_array().unwrap().len(), 11, "{t}");

    // A restart reads the checkpoint taken before compaction; the damaged
    // segment is not replayed (no corruption reported again).
    drop(server);
    let server = start(&data, &flags);
    assert!(!server.log.iter().any(|l| l.contains("corrupt")), "{:?}", server.log);
    assert!(server.log.iter().any(|l| l.contains("restoring the checkpoint")), "{:?}", server.log);
    let t = get_json(server.api, "/api/v1/traces/0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t["spans"].as_array().unwrap().len(), 11, "{t}");
}

#[test]
fn requests_are_taken_while_stored_spans_are_restored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A compacted file of generated shop traffic, in this hour's partition
    // (so retention keeps it), big enough to take a while to restore.
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let stamp = tracelens::model::time::rfc3339(now_ns);
    let partition =
        data.join("parquet").join(format!("date={}", &stamp[..10])).join(format!("hour={}", &stamp[11..13]));
    std::fs::create_dir_all(&partition).unwrap();
    let dump = dir.path().join("shop.pb");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tracelens")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["generate", "--spans", "500000", "--format", "otlp-protobuf-stream", "-o", dump.to_str().unwrap()]);
    let file = partition.join("wal-00000000000000000001.parquet");
    run(&["export", dump.to_str().unwrap(), "--table", "spans", "--format", "parquet", "-o", file.to_str().unwrap()]);
    let stored = {
        use polars::prelude::SerReader;
        polars::prelude::ParquetReader::new(std::fs::File::open(&file).unwrap()).finish().unwrap().height() as u64
    };

    let server = start_until(&data, &[], |line| line.starts_with("tracelens: listening: "));
    let (status, _, body) = http(server.api, "GET", "/readyz", &[], b"");
    let ready = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "ready to take requests while restoring");
    assert!(ready.starts_with("ready; restoring stored spans: 0 of 1 Parquet files"), "{ready}");
    assert!(metrics(server.api).contains("\ntracelens_restore_in_progress 1\n"));
    // Answers say they are partial.
    for path in ["/api/v1/graph", "/api/v1/operations", "/api/v1/bottlenecks"] {
        let answer = get_json(server.api, path);
        assert!(answer["restoring"].as_str().unwrap().starts_with("restoring stored spans"), "{path}: {answer}");
    }
    // A sender is answered at once, not after the restore.
    let shop = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    assert_eq!(http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], &shop).0, 200);
    // A deploy gate gets no pass or fail from half the data.
    let v = get_json(server.api, "/api/v1/verdict?service=checkout&baseline_version=1.9.0&candidate_version=1.10.0");
    assert_eq!((v["verdict"].as_str(), v["rollback"].as_bool()), (Some("inconclusive"), Some(false)), "{v:#}");
    assert!(v["reason"].as_str().unwrap().starts_with("restoring stored spans"), "{v:#}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reply = rt.block_on(async {
        let request = pb::VerdictQuery {
            service: "checkout".into(),
            baseline_version: "1.9.0".into(),
            candidate_version: "1.10.0".into(),
            ..Default::default()
        };
        query_client(server.api).await.get_verdict(request).await.unwrap().into_inner()
    });
    assert_eq!((reply.verdict.as_str(), reply.rollback), ("inconclusive", false), "over gRPC too");
    let graph = rt.block_on(async {
        query_client(server.api).await.get_graph(pb::RangeQuery::default()).await.unwrap().into_inner()
    });
    assert!(graph.restoring.starts_with("restoring stored spans"), "gRPC answers say so too: {:?}", graph.restoring);
    assert!(reply.reason.starts_with("restoring stored spans"), "{}", reply.reason);

    let deadline = Instant::now() + Duration::from_secs(300);
    while http(server.api, "GET", "/readyz", &[], b"").2 != b"ready" {
        assert!(Instant::now() < deadline, "the restore did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = metrics(server.api);
    let counter = |name: &str| -> u64 {
        m.lines().find_map(|l| l.strip_prefix(name).and_then(|n| n.trim().parse().ok())).unwrap()
    };
    assert_eq!(counter("tracelens_restore_in_progress "), 0);
    assert!(get_json(server.api, "/api/v1/graph").get("restoring").is_none(), "complete: no flag");
    let graph = rt.block_on(async {
        query_client(server.api).await.get_graph(pb::RangeQuery::default()).await.unwrap().into_inner()
    });
    assert_eq!(graph.restoring, "");
    assert_eq!(counter("tracelens_restored_spans "), stored);
    assert_eq!(counter("tracelens_trace_index_files "), 1, "the restored file's traces are indexed");
    assert_eq!(counter("tracelens_spans_accepted_total "), stored + 14, "every stored span and the shop's 14");
    // The restored traffic is in the graph beside what came during the restore.
    let graph = wait_for_graph(server.api, |g| {
        let edges = g["edges"].as_array().unwrap();
        let calls = |client: &str, server: &str| {
            edges.iter().find(|e| e["client"] == client && e["server"] == server).map(|e| e["calls"].as_u64().unwrap())
        };
        calls("checkout", "payments").is_some_and(|n| n > 1_000) && calls("frontend", "checkout").is_some()
    });
    let edges = graph["edges"].as_array().unwrap();
    assert!(edges.len() > 9, "{graph:#}");
}

/// The served OpenAPI description matches the routes: every path and
/// method it lists answers (never 404 or 405), each documented status and
/// content type is what comes back, and methods it does not list are 405.
#[test]
fn the_api_behaves_as_its_openapi_description_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let (status, head, body) = http(server.api, "GET", "/api/v1/openapi.json", &[], b"");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let spec: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 18, "{}", paths.len());
    for (path, item) in paths {
        let concrete = path.replace("{trace_id}", "0af7651916cd43dd8448eb211c80319c");
        for method in ["get", "post", "put", "delete"] {
            let upper = method.to_uppercase();
            let (status, head, _) = http(server.api, &upper, &concrete, &[("content-type", "application/json")], b"{}");
            let Some(operation) = item.get(method) else {
                assert_eq!(status, 405, "{upper} {path} is not described, so not allowed");
                continue;
            };
            let documented = operation["responses"].as_object().unwrap();
            let response = documented
                .get(&status.to_string())
                .unwrap_or_else(|| panic!("{upper} {path} answered {status}, which its description does not list"));
            if let Some(content) = response["content"].as_object() {
                let wanted = content.keys().next().unwrap();
                let got = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
                    .unwrap_or_default();
                assert!(got.starts_with(wanted.as_str()), "{upper} {path}: content type {got:?}, described {wanted}");
            }
        }
    }
}

/// Schemathesis (from PyPI, in .venv) generates requests from the OpenAPI
/// description against a receiver holding the shop traces: no answer may
/// be a server error or stray from the documented statuses, content types
/// and schemas. (Its check that every schema-valid request is accepted is
/// left out: the description types `since`, durations and ids as strings,
/// and the receiver refuses the ones that are not times, durations or ids.)
#[test]
fn schemathesis_finds_no_server_error_or_undocumented_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let shop = std::fs::read(common::fixture("shop.otlp.json")).unwrap();
    let (status, _, _) = http(server.http, "POST", "/v1/traces", &[("content-type", "application/json")], &shop);
    assert_eq!(status, 200);
    let schemathesis = python().with_file_name("schemathesis");
    let base = format!("http://{}", server.api);
    // 25 examples per operation here; scripts/soak.sh asks for thousands
    // with a seed of its own.
    let examples = std::env::var("TRACELENS_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".to_string());
    let seed = std::env::var("TRACELENS_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".to_string());
    let out = Command::new(&schemathesis)
        .args(["run", &format!("{base}/api/v1/openapi.json"), "--url", &base])
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", &examples, "--seed", &seed, "--no-color"])
        // Its cache of crashes goes to the test's directory, not the clone.
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis (scripts/test.sh installs it into .venv)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    // "N generated, N passed": every generated case was checked and held.
    let cases = text.lines().find(|l| l.contains(" generated, ")).unwrap_or_else(|| panic!("no summary:\n{text}"));
    let counts: Vec<&str> = cases.split(',').map(|p| p.trim().split(' ').next().unwrap_or("")).collect();
    assert!(counts.len() == 2 && counts[0] == counts[1] && counts[0] != "0", "{cases}");
}

/// Sends `dump` over OTLP/HTTP and waits until `traces` traces completed.
fn send_until_completed(server: &Server, dump: &Path, traces: u64) {
    let out =
        common::tracelens(&["send", dump.to_str().unwrap(), "--endpoint", &format!("http://{}", server.http)], None);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_json(server.api, "/api/v1/status")["live"]["traces_completed"].as_u64() != Some(traces) {
        assert!(Instant::now() < deadline, "{:#}", get_json(server.api, "/api/v1/status"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `/api/v1/changes` over the per-minute samples: an hour of shop traffic
/// (120 traces a minute, 100 of each minute sampled) whose currency service
/// turns twice as slow at 00:40, as `tracelens changes` finds offline; and
/// the same over the recent traces when no samples are kept.
#[test]
fn changes_finds_a_slowdown_in_the_sampled_traces() {
    let dir = tempfile::tempdir().unwrap();
    // The hour before now, from a whole minute (samples are kept for the
    // retention, so the traffic must be recent).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let first = (now - 3_600) / 60 * 60;
    let at = |minutes: u64| tracelens::model::time::rfc3339((first + minutes * 60) * 1_000_000_000);
    let dump = common::currency_slowdown(dir.path(), "rollout-latency.pb", &at(0));
    let server = start(&dir.path().join("data"), &["--trace-idle", "1s"]);
    send_until_completed(&server, &dump, 7_200);
    let changes = |query: &str| get_json(server.api, &format!("/api/v1/changes?{query}"));
    let v = changes(&format!("window=10m&until={}", at(50)));
    assert_eq!(v["status"], "changed", "{v:#}");
    assert_eq!(v["changes"][0]["name"], "currency Convert latency_p50", "{v:#}");
    // The window's 10 minutes and the 40 before: 100 of each minute's 120.
    assert_eq!((v["kept"]["traces"].as_u64(), v["kept"]["sampled_from"].as_u64()), (Some(5_000), Some(6_000)), "{v:#}");
    assert!(v["version_changes"].as_array().unwrap().iter().any(|c| c["service"] == "currency"), "{v:#}");
    let before = changes(&format!("window=10m&until={}", at(40)));
    assert_eq!(before["status"], "unchanged", "{before:#}");
    // No baseline of an hour's width before 00:50: the traffic starts at 00:00.
    let wide = changes(&format!("window=1h&until={}", at(50)));
    assert_eq!(wide["status"], "not_enough_data", "{wide:#}");
    assert!(wide["reason"].as_str().unwrap().contains("do not reach back"), "{wide:#}");
    let (status, _, body) = http(server.api, "GET", "/api/v1/changes?window=0s", &[], b"");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("is not a duration of at least 1s"));
    // The gRPC query service answers the same.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut q = query_client(server.api).await;
        let query = pb::ChangesQuery { window: "10m".into(), until: at(50), ..Default::default() };
        let reply = q.get_changes(query).await.unwrap().into_inner();
        assert_eq!((reply.status.as_str(), reply.reason.as_str()), ("changed", v["reason"].as_str().unwrap()));
        assert_eq!(reply.regressed as usize, v["changes"].as_array().unwrap().len());
        let json: serde_json::Value = serde_json::from_str(&reply.changes_json).unwrap();
        assert_eq!(json["changes"], v["changes"]);
        let bad = q.get_changes(pb::ChangesQuery { window: "0s".into(), ..Default::default() }).await.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    });
    drop(server);

    // Without samples, the recently completed traces are judged.
    let server = start(&dir.path().join("data-recent"), &["--trace-idle", "1s", "--change-samples-per-minute", "0"]);
    send_until_completed(&server, &dump, 7_200);
    let v = get_json(server.api, &format!("/api/v1/changes?window=10m&until={}", at(50)));
    assert_eq!(v["changes"][0]["name"], "currency Convert latency_p50", "{v:#}");
    assert_eq!(v["kept"]["traces"], 7200);
    assert!(v["kept"].get("sampled_from").is_none(), "{v:#}");
    let wide = get_json(server.api, &format!("/api/v1/changes?window=1h&until={}", at(50)));
    assert!(wide["reason"].as_str().unwrap().contains("--keep-traces"), "{wide:#}");
}

/// The background change detection's `/metrics` series: an hour of shop
/// traffic ending now, whose currency service turned twice as slow 20
/// minutes ago, makes the last 15 minutes "changed" with a series for
/// currency's Convert that an alert can fire on.
#[test]
fn metrics_carry_the_changes_of_the_last_15_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let first = tracelens::model::time::rfc3339((now - 3600) * 1_000_000_000);
    let dump = common::currency_slowdown(dir.path(), "last-hour.pb", &first);
    let server = start(&dir.path().join("data"), &["--trace-idle", "1s", "--changes-interval", "1s"]);
    let out =
        common::tracelens(&["send", dump.to_str().unwrap(), "--endpoint", &format!("http://{}", server.http)], None);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let series = "tracelens_change_detected{service=\"currency\",kind=\"operation\",scope=\"Convert\",signal=\"latency_p50\",direction=\"regressed\"} 1\n";
    let deadline = Instant::now() + Duration::from_secs(90);
    let m = loop {
        let m = metrics(server.api);
        if m.contains(series) {
            break m;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(m.contains("tracelens_changes_status{status=\"changed\"} 1\n"), "{m}");
    assert!(m.contains("tracelens_changes_folded 0\n"), "{m}");
    assert!(m.contains("tracelens_change_ratio{service=\"currency\",kind=\"operation\",scope=\"Convert\""), "{m}");
    assert!(m.contains("tracelens_changes_failures_total 0\n"), "{m}");
    // At most 100 of each minute's 120 traces, over the hour's 61 minutes.
    let samples: u64 = m.lines().find_map(|l| l.strip_prefix("tracelens_change_samples ")?.parse().ok()).unwrap();
    assert!((1_000..=6_100).contains(&samples), "{samples}");
}
