//! Group: `ingest` — `tracelens serve` (the release binary, its own process)
//! receiving 100-span OTLP/gRPC requests over loopback from 4 concurrent
//! clients: spans/s of wall time, and the server's CPU time per span (from
//! /proc, so the clients' work is not counted). Run once with the default
//! fsync-per-request log and once with --no-fsync, to show what durability
//! costs on this disk.
//!
//! Run: `cargo bench --bench ingest` (Linux; not a criterion bench: one
//! measured run of 200,000 spans per mode after a warm-up).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};

const SPANS: u64 = 200_000;
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

fn start(data: &std::path::Path, no_fsync: bool) -> (Proc, SocketAddr) {
    let mut args =
        vec!["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"];
    args.extend(["--data-dir", data.to_str().unwrap(), "--max-in-flight", "1024"]);
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
            std::thread::spawn(move || for _ in lines {});
            return (proc, addr);
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

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / `--list`: nothing to run here.
    }
    let requests = requests();
    let spans: usize =
        requests.iter().flat_map(|r| &r.resource_spans).flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("ingest: {} requests, {spans} spans, {CLIENTS} concurrent gRPC clients over loopback", requests.len());
    for no_fsync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (proc, addr) = start(dir.path(), no_fsync);
        rt.block_on(send_all(addr, &requests[..requests.len() / 10])); // warm-up
        let cpu0 = cpu_seconds(proc.0.id());
        let t0 = Instant::now();
        rt.block_on(send_all(addr, &requests));
        let wall = t0.elapsed().as_secs_f64();
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
