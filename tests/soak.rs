//! Crash cycles: senders at full speed over OTLP/HTTP and OTLP/gRPC, the
//! receiver killed with SIGKILL at a random moment (while it compacts, and
//! while it restores what the last cycle left), restarted, and read from at
//! once. The promises checked: every acknowledged trace is readable right
//! after the restart with exactly its spans; at the end every trace the
//! receiver kept (all acknowledged ones, and those in flight at a kill that
//! made it to the log) is counted exactly once in the service graph; the
//! data directory stays bounded.
//!
//! `TRACELENS_SOAK_CYCLES` sets the number of cycles (5 in the test
//! command; `scripts/soak.sh` runs 100 on a release build).
//!
//! Overload: four senders at full speed (twice or more what the receiver
//! takes) against a `--max-memory` budget, with traces held open long
//! enough to pile up; checked: requests are refused with a retry hint, the
//! peak resident memory stays under the budget, every acknowledged trace
//! is counted exactly once. `TRACELENS_OVERLOAD_SECONDS` sets how long (10
//! in the test command, 60 in `scripts/soak.sh`).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Server, edge_calls, get_json, http, start_until, try_http};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// Spans per trace (see [`request`]).
const SPANS_PER_TRACE: usize = 4;

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_string())) }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// One request holding one whole trace: web serves `GET /checkout` and
/// calls api (`POST /pay`), which queries PostgreSQL. Its graph edges:
/// user → web, web → api, api → postgresql, one call each.
fn request(trace_id: [u8; 16]) -> ExportTraceServiceRequest {
    let start = now_ns();
    let span_id = |n: u8| {
        let mut id = [0u8; 8];
        id[..7].copy_from_slice(&trace_id[9..16]);
        id[7] = n;
        id.to_vec()
    };
    let span = |n: u8, parent: Option<u8>, name: &str, kind: SpanKind, from: u64, to: u64| Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id(n),
        parent_span_id: parent.map(span_id).unwrap_or_default(),
        name: name.to_string(),
        kind: kind as i32,
        start_time_unix_nano: start + from,
        end_time_unix_nano: start + to,
        ..Default::default()
    };
    let resource = |service: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(Resource { attributes: vec![attr("service.name", service)], ..Default::default() }),
        scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
        ..Default::default()
    };
    let mut db = span(4, Some(3), "SELECT payments", SpanKind::Client, 2_000_000, 3_000_000);
    db.attributes = vec![attr("db.system", "postgresql")];
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource(
                "web",
                vec![
                    span(1, None, "GET /checkout", SpanKind::Server, 0, 5_000_000),
                    span(2, Some(1), "POST /pay", SpanKind::Client, 1_000_000, 4_000_000),
                ],
            ),
            resource("api", vec![span(3, Some(2), "POST /pay", SpanKind::Server, 1_500_000, 3_500_000), db]),
        ],
    }
}

fn trace_id(cycle: u32, sender: u32, n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&(cycle + 1).to_be_bytes());
    id[4..8].copy_from_slice(&sender.to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one sender saw: the traces acknowledged, and those whose answer
/// never came or said to come back (kept or not: the log decides).
#[derive(Default)]
struct Sent {
    acknowledged: Vec<[u8; 16]>,
    uncertain: Vec<[u8; 16]>,
}

/// Sends one trace per request over OTLP/HTTP until the server is gone.
fn http_sender(addr: SocketAddr, cycle: u32) -> Sent {
    let mut sent = Sent::default();
    for n in 0u64.. {
        let id = trace_id(cycle, 0, n);
        let body = request(id).encode_to_vec();
        match try_http(addr, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &body) {
            Ok((200, ..)) => sent.acknowledged.push(id),
            Ok((429 | 503, ..)) => {
                sent.uncertain.push(id);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok((status, _, reply)) => panic!("HTTP {status}: {}", String::from_utf8_lossy(&reply)),
            Err(_) => {
                sent.uncertain.push(id);
                break;
            }
        }
    }
    sent
}

/// Sends one trace per request over OTLP/gRPC until the server is gone.
fn grpc_sender(addr: SocketAddr, cycle: u32) -> Sent {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut sent = Sent::default();
        let Ok(mut client) = TraceServiceClient::connect(format!("http://{addr}")).await else { return sent };
        for n in 0u64.. {
            let id = trace_id(cycle, 1, n);
            match client.export(request(id)).await {
                Ok(_) => sent.acknowledged.push(id),
                Err(status) if status.code() == tonic::Code::Unavailable && status.message().contains("retry") => {
                    sent.uncertain.push(id);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    sent.uncertain.push(id);
                    break;
                }
            }
        }
        sent
    })
}

/// The spans `/api/v1/traces/{id}` answers with (0: not found).
fn trace_spans(api: SocketAddr, id: &[u8; 16]) -> usize {
    let (status, _, body) = http(api, "GET", &format!("/api/v1/traces/{}", hex(id)), &[], b"");
    match status {
        200 => serde_json::from_slice::<serde_json::Value>(&body).unwrap()["spans"].as_array().unwrap().len(),
        404 => 0,
        _ => panic!("{status}: {}", String::from_utf8_lossy(&body)),
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A small xorshift generator: the kill moments and samples, from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The line a restart prints about what it restores, if anything (it comes
/// right after the listening line).
fn restore_line(server: &Server) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let line = server.later.lock().unwrap().iter().find(|l| l.starts_with("tracelens: restoring")).cloned();
        if line.is_some() || Instant::now() > deadline {
            return line;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn crash_cycles_lose_nothing_and_count_nothing_twice() {
    let cycles: u32 = std::env::var("TRACELENS_SOAK_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(5);
    const SEGMENT_BYTES: u64 = 262_144;
    let segment = SEGMENT_BYTES.to_string();
    // Small segments compacted every 200 ms, so kills land during
    // compaction; traces complete after 500 ms idle.
    let flags = ["--wal-segment-bytes", &segment, "--compact-interval", "200ms", "--trace-idle", "500ms"];
    let dir = tempfile::tempdir().unwrap();
    let listening = |line: &str| line.starts_with("tracelens: listening: ");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut acknowledged, mut uncertain) = (Vec::new(), Vec::new());
    let mut largest_dir = 0;
    let mut cycles_acknowledged = 0;
    // Restarts from a checkpoint, and the most log segments one replayed.
    let (mut from_checkpoint, mut most_segments) = (0, 0);
    let mut server = start_until(dir.path(), &flags, listening);
    for cycle in 0..cycles {
        // Senders start at once, while the restore of the last cycle runs.
        let (http_addr, grpc_addr) = (server.http, server.grpc);
        let senders = [
            std::thread::spawn(move || http_sender(http_addr, cycle)),
            std::thread::spawn(move || grpc_sender(grpc_addr, cycle)),
        ];
        std::thread::sleep(Duration::from_millis(50 + rng.below(1_500)));
        server.proc.0.kill().unwrap(); // SIGKILL
        server.proc.0.wait().unwrap();
        let mut this_cycle = Vec::new();
        for sender in senders {
            let sent = sender.join().unwrap();
            this_cycle.extend(sent.acknowledged);
            uncertain.extend(sent.uncertain);
        }
        // A kill within the first tens of milliseconds (while the restore
        // runs, on a busy machine) may come before any acknowledgement.
        cycles_acknowledged += u32::from(!this_cycle.is_empty());

        server = start_until(dir.path(), &flags, listening);
        // Once a checkpoint was taken, a restart reads it and the log
        // segments after it, never every compacted file again.
        if let Some(line) = restore_line(&server) {
            if line.contains("the checkpoint") {
                from_checkpoint += 1;
                let segments = line.split("replaying ").nth(1).and_then(|l| l.split(' ').next());
                most_segments = most_segments.max(segments.and_then(|n| n.parse::<u32>().ok()).unwrap());
            } else {
                assert_eq!(from_checkpoint, 0, "cycle {cycle}: a restart after a checkpoint read everything: {line}");
            }
        }
        // Readable at once, each with exactly its spans: some of this
        // cycle's traces and some of the earlier cycles'.
        let mut sample: Vec<[u8; 16]> = Vec::new();
        if !this_cycle.is_empty() {
            sample.extend((0..20).map(|_| this_cycle[rng.below(this_cycle.len() as u64) as usize]));
        }
        if !acknowledged.is_empty() {
            sample.extend((0..10).map(|_| acknowledged[rng.below(acknowledged.len() as u64) as usize]));
        }
        for id in &sample {
            assert_eq!(trace_spans(server.api, id), SPANS_PER_TRACE, "cycle {cycle}: trace {} after restart", hex(id));
        }
        acknowledged.extend(this_cycle);
        largest_dir = largest_dir.max(dir_bytes(dir.path()));
    }

    assert!(
        cycles_acknowledged * 4 >= cycles * 3,
        "only {cycles_acknowledged} of {cycles} cycles had an acknowledgement before the kill"
    );

    // The last start restores everything; then every kept trace counts once.
    let deadline = Instant::now() + Duration::from_secs(600);
    while http(server.api, "GET", "/readyz", &[], b"").2 != b"ready" {
        assert!(Instant::now() < deadline, "the last restore did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let kept_uncertain = uncertain.iter().filter(|id| trace_spans(server.api, id) == SPANS_PER_TRACE).count();
    let expected = (acknowledged.len() + kept_uncertain) as u64;
    let graph = loop {
        let graph = get_json(server.api, "/api/v1/graph");
        if edge_calls(&graph, "web", "api") >= expected || Instant::now() > deadline {
            break graph;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(1));
    let graph_after = get_json(server.api, "/api/v1/graph");
    for (client, server_name) in [("user", "web"), ("web", "api"), ("api", "postgresql")] {
        assert_eq!(
            (edge_calls(&graph, client, server_name), edge_calls(&graph_after, client, server_name)),
            (expected, expected),
            "{client} -> {server_name}: {} acknowledged and {kept_uncertain} of {} unanswered traces kept",
            acknowledged.len(),
            uncertain.len()
        );
    }
    // Bounded: the requests acknowledged, as log and as Parquet, and the
    // segments the log keeps ready.
    let request_bytes = request(trace_id(0, 0, 0)).encoded_len() as u64;
    let sent_bytes = expected * request_bytes;
    assert!(
        largest_dir <= 3 * sent_bytes + 40 * SEGMENT_BYTES,
        "data directory grew to {largest_dir} bytes for {sent_bytes} bytes of requests"
    );
    assert!(cycles < 3 || from_checkpoint > 0, "no restart found a checkpoint");
    let summary = format!(
        "{cycles} cycles ({cycles_acknowledged} with acknowledgements before the kill): {} traces acknowledged, {kept_uncertain} of {} unanswered kept, data directory at most {} KiB; {from_checkpoint} restarts from a checkpoint, replaying at most {most_segments} log segment(s)",
        acknowledged.len(),
        uncertain.len(),
        largest_dir / 1024
    );
    eprintln!("{summary}");
    if let Ok(path) = std::env::var("TRACELENS_SOAK_SUMMARY") {
        std::fs::write(path, summary + "\n").unwrap();
    }
    drop::<Server>(server);
}

/// Peak resident memory of process `pid` (`VmHWM`), bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Requests of `per_request` whole traces each, for one sender.
fn batch(sender: u32, first: u64, per_request: u64) -> (ExportTraceServiceRequest, Vec<[u8; 16]>) {
    let ids: Vec<[u8; 16]> = (first..first + per_request).map(|n| trace_id(1_000, sender, n)).collect();
    let mut request = ExportTraceServiceRequest::default();
    for id in &ids {
        request.resource_spans.extend(self::request(*id).resource_spans);
    }
    (request, ids)
}

/// Senders at full speed for `seconds`, retrying what they are told to
/// retry after a short pause; returns the traces acknowledged.
fn overload_sender(server: &Server, sender: u32, seconds: u64) -> Vec<[u8; 16]> {
    let (http_addr, grpc_addr) = (server.http, server.grpc);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut acknowledged = Vec::new();
    let mut next = 0;
    if sender % 2 == 0 {
        while Instant::now() < deadline {
            let (request, ids) = batch(sender, next, 20);
            let body = request.encode_to_vec();
            match try_http(http_addr, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &body) {
                Ok((200, ..)) => {
                    acknowledged.extend(ids);
                    next += 20;
                }
                Ok((503, head, _)) => {
                    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!("{other:?}"),
            }
        }
        return acknowledged;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut client = TraceServiceClient::connect(format!("http://{grpc_addr}")).await.unwrap();
        while Instant::now() < deadline {
            let (request, ids) = batch(sender, next, 20);
            match client.export(request).await {
                Ok(_) => {
                    acknowledged.extend(ids);
                    next += 20;
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(status) => panic!("{status:?}"),
            }
        }
        acknowledged
    })
}

#[test]
fn overload_stays_under_the_memory_budget_and_counts_every_acknowledged_trace_once() {
    let seconds: u64 = std::env::var("TRACELENS_OVERLOAD_SECONDS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
    const BUDGET: u64 = 128 << 20;
    let budget = BUDGET.to_string();
    // Traces stay open 10 s and the open-span cap is out of reach: only the
    // memory budget holds what piles up.
    let flags = ["--max-memory", &budget, "--trace-idle", "10s", "--max-open-spans", "100000000"];
    let dir = tempfile::tempdir().unwrap();
    let server = start_until(dir.path(), &flags, |l| l.starts_with("tracelens: replayed "));
    let acknowledged: Vec<[u8; 16]> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..4)
            .map(|s| {
                let server = &server;
                scope.spawn(move || overload_sender(server, s, seconds))
            })
            .collect();
        senders.into_iter().flat_map(|s| s.join().unwrap()).collect()
    });
    let expected = acknowledged.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let graph = loop {
        let graph = get_json(server.api, "/api/v1/graph");
        if edge_calls(&graph, "web", "api") >= expected || Instant::now() > deadline {
            break graph;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let metrics = String::from_utf8(http(server.api, "GET", "/metrics", &[], b"").2).unwrap();
    let metric = |name: &str| -> u64 {
        metrics.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap()
    };
    let peak = peak_rss(server.proc.0.id());
    let summary = format!(
        "overload for {seconds} s: {expected} traces acknowledged, memory shed {} times and {} export requests refused near the budget, peak RSS {} MiB of a {} MiB budget",
        metric("tracelens_memory_sheds_total "),
        metric("tracelens_memory_refusals_total "),
        peak >> 20,
        BUDGET >> 20
    );
    eprintln!("{summary}");
    assert!(metric("tracelens_memory_sheds_total ") > 0, "the budget was reached: {summary}");
    assert!(peak <= BUDGET, "{summary}");
    for (client, server_name) in [("user", "web"), ("web", "api"), ("api", "postgresql")] {
        assert_eq!(edge_calls(&graph, client, server_name), expected, "{client} -> {server_name}: {summary}");
    }
    if let Ok(path) = std::env::var("TRACELENS_OVERLOAD_SUMMARY") {
        std::fs::write(path, summary + "\n").unwrap();
    }
}
