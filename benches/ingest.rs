//! Group: `ingest` — `tracelens serve` (the release binary, its own process)
//! receiving 100-span OTLP/gRPC requests over loopback from 4 concurrent
//! clients: spans/s of wall time, and the server's CPU time per span (from
//! /proc, so the clients' work is not counted) until every trace has been
//! completed and analysed live (graph, span metrics, critical path,
//! bottlenecks; traces complete after a 1 s idle timeout). Run once with
//! the default fsync-per-request log and once with --no-fsync, to show what
//! durability costs on this disk.
//!
//! Run: `cargo bench --bench ingest` (Linux; not a criterion bench: one
//! measured run of 1,000,000 spans per mode after a warm-up).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};

const SPANS: u64 = 1_000_000;
const CLIENTS: usize = 4;

/// 100-span requests from the generator's length-prefixed stream.
fn requests() -> Vec<ExportTraceServiceRequest> {
    let (bytes, _) = generate::to_vec(
        &TopologyFile::shop(),
        &GeneratorConfig::default(),
        Amount::Spans(SPANS),
        OutputFormat::OtlpProtobufStream,
    )
    .unwrap();
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        out.push(ExportTraceServiceRequest::decode(&rest[4..4 + len]).unwrap());
        rest = &rest[4 + len..];
    }
    out
}

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path, no_fsync: bool) -> (Proc, SocketAddr, SocketAddr) {
    let mut args =
        vec!["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"];
    args.extend(["--data-dir", data.to_str().unwrap(), "--max-in-flight", "1024", "--trace-idle-ms", "1000"]);
    if no_fsync {
        args.push("--no-fsync");
    }
    let mut proc =
        Proc(Command::new(env!("CARGO_BIN_EXE_tracelens")).args(&args).stderr(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(proc.0.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line.strip_prefix("tracelens: listening: otlp-grpc ") {
            let addr = rest.split(',').next().unwrap().parse().unwrap();
            let api = rest.rsplit("api ").next().unwrap().trim().parse().unwrap();
            std::thread::spawn(move || for _ in lines {});
            return (proc, addr, api);
        }
    }
}

async fn send_all(addr: SocketAddr, requests: &[ExportTraceServiceRequest]) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = TraceServiceClient::new(channel.clone());
        let mine: Vec<ExportTraceServiceRequest> = requests.iter().skip(c).step_by(CLIENTS).cloned().collect();
        tasks.push(tokio::spawn(async move {
            for r in mine {
                let response = client.export(r).await.expect("export accepted");
                assert!(response.into_inner().partial_success.is_none());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// `tracelens_traces_completed_total` from the server's /metrics.
fn traces_completed(api: SocketAddr) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(api).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines().find_map(|l| l.strip_prefix("tracelens_traces_completed_total ")).unwrap().trim().parse().unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / `--list`: nothing to run here.
    }
    let requests = requests();
    let spans: usize =
        requests.iter().flat_map(|r| &r.resource_spans).flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("ingest: {} requests, {spans} spans, {CLIENTS} concurrent gRPC clients over loopback", requests.len());
    let traces = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.trace_id.as_slice())
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    for no_fsync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (proc, addr, api) = start(dir.path(), no_fsync);
        // Warm-up with other trace ids' worth of work: the first tenth,
        // then wait for it to be analysed.
        let warm = &requests[..requests.len() / 10];
        rt.block_on(send_all(addr, warm));
        while traces_completed(api) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let done0 = traces_completed(api);
        let cpu0 = cpu_seconds(proc.0.id());
        let t0 = Instant::now();
        rt.block_on(send_all(addr, &requests));
        let wall = t0.elapsed().as_secs_f64();
        // Same trace ids again: they arrive as new traces once the warm-up's
        // are closed, so the count to wait for is every trace once more.
        // Traces complete a second after their last span; poll rarely, as
        // rendering /metrics costs the server CPU too.
        std::thread::sleep(std::time::Duration::from_millis(1200));
        while traces_completed(api) < done0 + traces {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let cpu = cpu_seconds(proc.0.id()) - cpu0;
        println!(
            "ingest/{}: {:.0} spans/s wall, server CPU {:.2} µs/span ({:.0} spans per CPU-second)",
            if no_fsync { "no-fsync" } else { "fsync-per-request" },
            spans as f64 / wall,
            cpu * 1e6 / spans as f64,
            spans as f64 / cpu.max(1e-9),
        );
    }
}
