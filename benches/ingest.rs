//! Group: `ingest` — `tracelens serve` (the release binary, its own process)
//! receiving 100-span OTLP/gRPC requests over loopback from 4 concurrent
//! clients (`INGEST_CLIENTS` sets another number; a Collector's exporter
//! sends from 10 by default): spans/s of wall time, and the server's CPU time per span (from
//! /proc, so the clients' work is not counted) until every trace has been
//! completed and analysed live (graph, span metrics, critical path,
//! bottlenecks; traces complete after a 1 s idle timeout, `INGEST_IDLE_MS`
//! sets another). Run once with
//! the default fsync-per-request log and once with --no-fsync, to show what
//! durability costs on this disk.
//!
//! Run: `cargo bench --bench ingest` (Linux; not a criterion bench: one
//! measured run of 1,000,000 spans per mode after a warm-up).

mod common;

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
/// Concurrent clients: `INGEST_CLIENTS`, else 4.
fn clients() -> usize {
    std::env::var("INGEST_CLIENTS").ok().and_then(|n| n.parse().ok()).filter(|&n| n > 0).unwrap_or(4)
}

/// 100-span requests from the generator's length-prefixed stream.
fn requests() -> Vec<ExportTraceServiceRequest> {
    let (bytes, _) = generate::to_vec(
        &TopologyFile::shop(),
        &GeneratorConfig::default(),
        Amount::Spans(SPANS),
        OutputFormat::OtlpProtobufStream,
    )
    .unwrap();
    common::length_prefixed(&bytes).into_iter().map(|r| ExportTraceServiceRequest::decode(r).unwrap()).collect()
}

/// Minor page faults of a process.
fn minor_faults(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().unwrap_or("").split_whitespace().nth(7).and_then(|f| f.parse().ok()).unwrap_or(0)
}

/// CPU seconds per thread name (threads of one name summed).
fn thread_seconds(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let (name, seconds) = common::stat_seconds(&format!("{}/stat", entry.path().display()));
        *out.entry(name).or_insert(0.0) += seconds;
    }
    out
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path, no_fsync: bool, pinned: bool) -> (Proc, SocketAddr, SocketAddr) {
    let mut args =
        vec!["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"];
    // INGEST_IDLE_MS sets the trace idle timeout (1 s by default, so passes
    // end soon after the last request; `serve`'s own default is 10 s).
    let idle = std::env::var("INGEST_IDLE_MS").unwrap_or_else(|_| "1000".into());
    args.extend(["--data-dir", data.to_str().unwrap(), "--max-in-flight", "1024", "--trace-idle-ms", &idle]);
    // Closed log segments are compacted into Parquet within a second, so
    // that work (the compactor and polars threads) is counted too
    // (INGEST_COMPACT_SECONDS sets another interval; `serve`'s default is 30).
    let compact = std::env::var("INGEST_COMPACT_SECONDS").unwrap_or_else(|_| "1".into());
    args.extend(["--compact-interval-seconds", &compact]);
    if no_fsync {
        args.push("--no-fsync");
    }
    // INGEST_SERVER_BIN=path measures another build (A/B comparisons).
    let binary = std::env::var("INGEST_SERVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tracelens").to_string());
    let mut command = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", &binary]);
        c
    } else {
        Command::new(&binary)
    };
    let mut proc = Proc(command.args(&args).stderr(Stdio::piped()).spawn().unwrap());
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
    let n = clients();
    for c in 0..n {
        let mut client = TraceServiceClient::new(channel.clone());
        let mine: Vec<ExportTraceServiceRequest> = requests.iter().skip(c).step_by(n).cloned().collect();
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

/// A counter from the server's /metrics.
fn counter(api: SocketAddr, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(api).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let prefix = format!("{name} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap().trim().parse().unwrap()
}

/// `tracelens_traces_completed_total` from the server's /metrics.
fn traces_completed(api: SocketAddr) -> u64 {
    counter(api, "tracelens_traces_completed_total")
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / `--list`: nothing to run here.
    }
    // The server on core 1 and this process (the clients) on core 0, so
    // neither perturbs the other's caches or steals its time slices; the
    // figure is then CPU per span on a core of the server's own.
    // INGEST_PIN=0 leaves scheduling to the kernel.
    let pinned = std::env::var("INGEST_PIN").map_or(true, |v| v != "0")
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset")
            .args(["-p", "-c", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let requests = requests();
    let spans: usize =
        requests.iter().flat_map(|r| &r.resource_spans).flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "ingest: {} requests, {spans} spans, {} concurrent gRPC clients over loopback{}",
        requests.len(),
        clients(),
        if pinned { "; server pinned to core 1, clients to core 0" } else { "" }
    );
    // A figure of the machine rather than of the receiver: the same
    // requests decoded in this process (one thread, best of 3). Machines of
    // this kind differ by a third in speed; this says which one ran the
    // figures below.
    let reference = {
        use tracelens::serve::ingest::{BodyEncoding, IdRule, accept_bytes};
        let bodies: Vec<Vec<u8>> = requests.iter().map(|r| r.encode_to_vec()).collect();
        (0..3)
            .map(|_| {
                let (mut dict, mut warnings) = (tracelens::model::Dictionary::default(), Default::default());
                let t = Instant::now();
                let decoded: usize = bodies
                    .iter()
                    .map(|b| {
                        accept_bytes(b, BodyEncoding::Protobuf, IdRule::Exact, &mut dict, &mut warnings)
                            .unwrap()
                            .spans
                            .len()
                    })
                    .sum();
                assert_eq!(decoded, spans);
                t.elapsed().as_secs_f64() * 1e6 / spans as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    println!("ingest: machine reference: these requests decoded in the bench's process, {reference:.3} µs/span");
    let traces = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.trace_id.as_slice())
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    let (mut cpu_per_span, mut rates) = (Vec::new(), Vec::new());
    let passes: usize = std::env::var("INGEST_PASSES").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    // INGEST_MODES=fsync or =no-fsync runs one mode only.
    let modes = std::env::var("INGEST_MODES").unwrap_or_default();
    for no_fsync in [false, true].into_iter().filter(|&n| modes.is_empty() || (modes == "no-fsync") == n) {
        let mode = if no_fsync { "no-fsync" } else { "fsync-per-request" };
        let dir = tempfile::tempdir().unwrap();
        let (proc, addr, api) = start(dir.path(), no_fsync, pinned);
        let pid = proc.0.id();
        // Warm-up: the whole load once, analysed, so the measured passes
        // see a receiver whose memory has reached its working set (the
        // first pass also pays the kernel for zeroing that memory).
        let mut done = 0;
        for pass in 0..=passes {
            let commits0 = counter(api, "tracelens_wal_commits_total");
            let threads0 = thread_seconds(pid);
            let cpu0 = common::cpu_seconds(pid);
            let faults0 = minor_faults(pid);
            let t0 = Instant::now();
            rt.block_on(send_all(addr, &requests));
            let wall = t0.elapsed().as_secs_f64();
            // The same trace ids every pass: they arrive as new traces once
            // the previous pass's are closed. Traces complete a second
            // after their last span; poll rarely, as rendering /metrics
            // costs the server CPU too.
            std::thread::sleep(std::time::Duration::from_millis(1200));
            while traces_completed(api) < done + traces {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            done += traces;
            let cpu = common::cpu_seconds(pid) - cpu0;
            let threads = thread_seconds(pid);
            let faults = minor_faults(pid) - faults0;
            let commits = counter(api, "tracelens_wal_commits_total") - commits0;
            let per_thread: Vec<String> = threads
                .iter()
                .map(|(name, s)| (name, s - threads0.get(name).copied().unwrap_or(0.0)))
                .filter(|(_, s)| *s > 0.0)
                .map(|(name, s)| format!("{name} {:.2}", s * 1e6 / spans as f64))
                .collect();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap_or("?").trim().to_string();
            println!(
                "ingest/{mode} {}: {:.0} spans/s wall, server CPU {:.2} µs/span (by thread, µs: {}); {commits} log commits, {faults} page faults, RSS {rss}",
                if pass == 0 { "warm-up".to_string() } else { format!("pass {pass}") },
                spans as f64 / wall,
                cpu * 1e6 / spans as f64,
                per_thread.join(", "),
            );
            if pass > 0 {
                cpu_per_span.push(cpu * 1e6 / spans as f64);
                rates.push(spans as f64 / wall);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        // Compaction runs when a 64 MiB segment closes, so a pass may carry
        // the previous one's: wait until every closed segment is compacted,
        // then divide the compaction threads' CPU over the whole run by the
        // spans in the Parquet files.
        let waited = Instant::now();
        while !tracelens::serve::storage::wal::closed_segments(dir.path()).unwrap_or_default().is_empty()
            && waited.elapsed().as_secs() < 120
        {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let compaction: f64 = thread_seconds(pid)
            .iter()
            .filter(|(n, _)| n.starts_with("tracelens-compa") || n.starts_with("polars"))
            .map(|(_, s)| s)
            .sum();
        let files = tracelens::serve::storage::compact::parquet_files(dir.path());
        let rows: usize = files
            .iter()
            .map(|f| {
                use polars::prelude::{ParquetReader, SerReader};
                ParquetReader::new(std::fs::File::open(f).unwrap()).num_rows().unwrap()
            })
            .sum();
        println!(
            "ingest/{mode}: compaction to Parquet {:.2} µs per span compacted ({rows} spans in {} files)",
            compaction * 1e6 / rows.max(1) as f64,
            files.len(),
        );
        let (rate, cpu) = (median(&mut rates), median(&mut cpu_per_span));
        println!(
            "ingest/{mode}: median of {passes} passes {rate:.0} spans/s wall, server CPU {cpu:.2} µs/span (best {:.2}, {:.0} spans per CPU-second)",
            cpu_per_span[0],
            1e6 / cpu,
        );
        cpu_per_span.clear();
        rates.clear();
    }
}
