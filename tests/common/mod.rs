//! Helpers shared by the integration tests: fixture paths and a one-call
//! analysis that returns the facts tests assert.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tracelens::analysis::Summary;
use tracelens::model::{Dictionary, Trace, WarningKind, Warnings};
use tracelens::pipeline::{self, PipelineConfig};
use tracelens::read::{Input, ReadError, ReadOptions, expand_inputs};

/// The project's own fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// The real public traces in `../shared/testdata` (see its README).
pub fn public(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata").join(name);
    assert!(
        path.exists(),
        "public test data missing: {} (the shared/ folder must sit beside the project)",
        path.display()
    );
    path
}

/// What an analysis of some inputs found.
pub struct Facts {
    pub formats: Vec<String>,
    pub spans_read: u64,
    pub summary: Summary,
    pub services: Vec<String>,
    pub warnings: Warnings,
    pub traces: Vec<Trace>,
    pub dict: Dictionary,
}

impl Facts {
    pub fn warning(&self, kind: WarningKind) -> u64 {
        self.warnings.get(kind)
    }

    /// The only trace, for single-trace inputs.
    pub fn trace(&self) -> &Trace {
        assert_eq!(self.traces.len(), 1, "expected one trace");
        &self.traces[0]
    }

    /// The span named `name` (unique within the facts).
    pub fn span(&self, name: &str) -> &tracelens::model::Span {
        let found: Vec<_> =
            self.traces.iter().flat_map(|t| &t.spans).filter(|s| self.dict.resolve(s.name) == name).collect();
        assert_eq!(found.len(), 1, "expected one span named {name:?}, found {}", found.len());
        found[0]
    }
}

pub fn analyze_with(paths: &[PathBuf], read: ReadOptions) -> Result<Facts, ReadError> {
    let inputs: Vec<Input> = expand_inputs(paths)?;
    let mut summary = Summary::default();
    let mut traces = Vec::new();
    let config = PipelineConfig { read, ..Default::default() };
    let report = pipeline::run(&inputs, &config, &mut |_, s| s, &mut |_, t| {
        summary.add_trace(&t);
        traces.push(t);
    })?;
    Ok(Facts {
        formats: report.inputs.iter().map(|(_, r)| r.format.to_string()).collect(),
        spans_read: report.spans_read(),
        services: summary.service_names(&report.dict),
        summary,
        warnings: report.warnings,
        traces,
        dict: report.dict,
    })
}

pub fn analyze(path: &Path) -> Facts {
    analyze_with(&[path.to_path_buf()], tracelens::table::read_options(false)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the binary with `args`, feeding `stdin`.
pub fn tracelens(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracelens"));
    cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run tracelens");
    if let Some(data) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs `tracelens generate -o <dir>/<name> <args>` and returns the path.
pub fn generate(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut all = vec!["generate", "-o", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = tracelens(&all, None);
    assert!(out.status.success(), "generate {args:?}: {}", stderr(&out));
    path
}

/// An hour of shop traffic (7,200 traces, 2 a second, from `start`: RFC
/// 3339) as an OTLP protobuf stream, whose currency service does its own
/// work twice as slowly from two thirds of the way in (minute 40).
pub fn currency_slowdown(dir: &Path, name: &str, start: &str) -> PathBuf {
    let args = [
        "--start",
        start,
        "--format",
        "otlp-protobuf-stream",
        "--traces",
        "7200",
        "--rate",
        "2",
        "--scenario",
        "rollout",
        "--deploy-at",
        "0.66666",
        "--change",
        "latency",
        "--target",
        "currency",
        "--magnitude",
        "2",
    ];
    generate(dir, name, &args)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A child process killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.1 exchange: (status, headers, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    try_http(addr, method, path, headers, body).unwrap()
}

/// [`http`], with the connection's failures returned.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no complete answer"));
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let Some(status) = head.split(' ').nth(1).and_then(|s| s.parse().ok()) else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("no status in {head:?}")));
    };
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, head, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[line_end + 2..line_end + 2 + size]);
        b = &b[line_end + 2 + size + 2..];
    }
}

/// Calls on the service-graph edge `client` -> `server` of a graph answer
/// (0 when there is no such edge).
pub fn edge_calls(graph: &serde_json::Value, client: &str, server: &str) -> u64 {
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["client"] == client && e["server"] == server)
        .map_or(0, |e| e["calls"].as_u64().unwrap())
}

pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, _, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(status, 200, "{path}");
    serde_json::from_slice(&body).unwrap()
}

/// A running `tracelens serve`, killed when dropped.
pub struct Server {
    pub proc: Proc,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub api: SocketAddr,
    /// Its stderr up to the line `start_until` waited for.
    pub log: Vec<String>,
    /// Its stderr after that line, so far.
    pub later: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts a server and returns once it listens and has printed a line
/// `until` accepts (the listening line itself, at the earliest).
pub fn start_until(data_dir: &Path, extra: &[&str], until: fn(&str) -> bool) -> Server {
    start_with_env(data_dir, extra, until, &[])
}

/// [`start_until`] with these environment variables set for the server.
pub fn start_with_env(data_dir: &Path, extra: &[&str], until: fn(&str) -> bool, env: &[(&str, &str)]) -> Server {
    let mut args = vec![
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--api-addr",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    if !extra.contains(&"--trace-idle-ms") && !extra.contains(&"--trace-idle") {
        args.extend_from_slice(&["--trace-idle", "200ms"]);
    }
    args.extend_from_slice(extra);
    let mut proc = Proc(
        Command::new(env!("CARGO_BIN_EXE_tracelens"))
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tracelens serve"),
    );
    let mut lines = BufReader::new(proc.0.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let mut addrs = None;
    loop {
        let line = lines.next().expect("serve printed its addresses").unwrap();
        log.push(line.clone());
        if let Some(rest) = line.strip_prefix("tracelens: listening: ") {
            let addr = |label: &str| -> SocketAddr {
                let part = rest.split(", ").find_map(|p| p.strip_prefix(label)).unwrap();
                part.trim_end_matches(" (TLS)").trim().parse().unwrap()
            };
            addrs = Some((addr("otlp-grpc "), addr("otlp-http "), addr("api ")));
        }
        if let Some((grpc, http, api)) = addrs.filter(|_| until(&line)) {
            // Keep draining stderr so the server never blocks on a full pipe.
            let later = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = later.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
            return Server { grpc, http, api, proc, log, later };
        }
    }
}
