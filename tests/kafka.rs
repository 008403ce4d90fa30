//! Scale-out on Kafka against a real Kafka-protocol broker (Tansu, started
//! here on loopback; `scripts/test.sh` installs it): records written
//! exactly as the OpenTelemetry Collector's kafka exporter writes them
//! (key = the trace id in 32 lowercase hex, value = OTLP `TracesData`),
//! read by three `tracelens serve` instances of one consumer group. Every
//! instance answers graph, span metrics, bottlenecks and a verdict equal
//! to one offline analysis of the same spans — after a member is killed
//! with kill -9 mid-stream and replaced under its identity, and after a
//! broker restart.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, get_json, stderr};

/// The Tansu broker binary: `TRACELENS_TEST_TANSU`, else where
/// `scripts/test.sh` installs it.
fn tansu() -> PathBuf {
    let path = std::env::var_os("TRACELENS_TEST_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/tansu-0.6.0-libsql/bin/tansu"));
    assert!(
        path.exists(),
        "the Tansu Kafka broker is missing at {}: scripts/test.sh installs it (cargo install tansu --features libsql)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A broker on loopback keeping its data in a SQLite file.
struct Broker {
    proc: Option<Proc>,
    dir: PathBuf,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let mut broker = Broker { proc: None, dir: dir.to_path_buf(), port: free_port() };
        broker.run();
        broker
    }

    fn run(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            // The file is relative to the broker's working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.proc = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kill -9, then start again on the same data.
    fn restart(&mut self) {
        self.proc = None;
        std::thread::sleep(Duration::from_millis(300));
        self.run();
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args(["topic", "create", "--broker", &format!("tcp://{}", self.address())])
            .args(["--partitions", &partitions.to_string(), name])
            .output()
            .unwrap();
        assert!(out.status.success(), "creating {name}: {}", stderr(&out));
    }
}

/// A `tracelens serve` member of the group.
struct Member {
    _proc: Proc,
    api: SocketAddr,
    /// Its standard error.
    log: PathBuf,
}

/// A member under the stable identity `id` (Kafka static membership, as a
/// StatefulSet names its pods).
fn member(dir: &Path, broker: &Broker, topic: &str, group: &str, id: &str, extra: &[&str]) -> Member {
    let data = tempfile::tempdir_in(dir).unwrap().keep();
    let log_path = data.join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_tracelens"))
        .args(["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
        .args(["--data-dir", data.to_str().unwrap(), "--trace-idle", "1s"])
        .args(["--kafka-brokers", &broker.address(), "--kafka-topic", topic, "--kafka-group", group])
        .args(["--kafka-results-topic", &format!("{group}_partials"), "--kafka-publish-interval", "200ms"])
        .args(["--kafka-instance-id", id])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start tracelens serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let api = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let listening = log.lines().find_map(|l| l.strip_prefix("tracelens: listening: "));
        if let Some(rest) = listening {
            let api = rest.split(", ").find_map(|p| p.strip_prefix("api ")).unwrap();
            break api.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "serve did not start: {log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    Member { _proc: Proc(child), api, log: log_path }
}

fn tracelens(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tracelens")).args(args).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "tracelens {args:?}: {}", stderr(&out));
    out
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A canary of checkout 1.10.0 (its own work 1.5 times slower) beside 1.9.0.
fn generate(dir: &Path, seed: u32, traces: u32) -> PathBuf {
    let path = dir.join(format!("canary-{seed}.pb"));
    let (seed, traces) = (seed.to_string(), traces.to_string());
    let out = tracelens(&[
        "generate",
        "--scenario",
        "canary",
        "--change",
        "latency",
        "--seed",
        &seed,
        "--traces",
        &traces,
        "--format",
        "otlp-protobuf-stream",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    path
}

fn send(broker: &Broker, topic: &str, dump: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tracelens"))
        .args(["send", "--kafka-brokers", &broker.address(), "--kafka-topic", topic])
        .args(extra)
        .arg(dump)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The offline answer: `analyze` and `verdict` over the dumps.
struct Offline {
    spans: u64,
    traces: u64,
    analysis: serde_json::Value,
    bottlenecks: serde_json::Value,
    verdict: serde_json::Value,
}

const VERDICT_FLAGS: [&str; 6] =
    ["--service", "checkout", "--baseline-version", "1.9.0", "--candidate-version", "1.10.0"];

fn offline(dumps: &[PathBuf]) -> Offline {
    let paths: Vec<&str> = dumps.iter().map(|d| d.to_str().unwrap()).collect();
    let mut args = vec!["analyze", "--format", "json"];
    args.extend(&paths);
    let analysis = json(&tracelens(&args));
    let mut args = vec!["verdict", "--format", "json"];
    args.extend(VERDICT_FLAGS);
    args.extend(&paths);
    let verdict = json(&tracelens(&args));
    Offline {
        spans: analysis["spans"].as_u64().unwrap(),
        traces: analysis["traces"].as_u64().unwrap(),
        analysis,
        bottlenecks: receiver_bottlenecks(dumps),
        verdict,
    }
}

/// Waits until a member has counted `spans` spans in `traces` traces.
fn wait_for(member: &Member, spans: u64, traces: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = get_json(member.api, "/api/v1/status");
        let live = &status["live"];
        let (s, t) = (live["spans_accepted"].as_u64().unwrap(), live["traces_completed"].as_u64().unwrap());
        if (s, t) == (spans, traces) {
            return;
        }
        assert!(s <= spans, "{} counted {s} spans, more than the {spans} sent: {status:#}", member.api);
        assert!(
            Instant::now() < deadline,
            "{} counted {s} of {spans} spans, {t} of {traces} traces: {status:#}\n{}",
            member.api,
            std::fs::read_to_string(&member.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The bottlenecks one receiver computes over the dumps' traces: the
/// offline analysis, keeping (as each time bucket does) 64 exact values per
/// key before its percentiles come from a 3-digit histogram.
fn receiver_bottlenecks(dumps: &[PathBuf]) -> serde_json::Value {
    use tracelens::analysis::TraceAnalyses;
    use tracelens::pipeline::{PipelineConfig, run};
    use tracelens::read::Input;
    use tracelens::serve::live::buckets::BOTTLENECK_VALUES_PER_KEY;
    let inputs: Vec<Input> = dumps.iter().map(|d| Input::Path(d.clone())).collect();
    let mut analyses = TraceAnalyses::new(&tracelens::model::Dictionary::default(), 1_000)
        .with_bottleneck_value_cap(BOTTLENECK_VALUES_PER_KEY);
    let report = run(&inputs, &PipelineConfig::default(), &mut |_, s| s, &mut |_, t| analyses.add_trace(&t)).unwrap();
    serde_json::to_value(analyses.bottlenecks.view(&report.dict)).unwrap()
}

/// Where two JSON values first differ, as a path with both values.
fn difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| difference(&x[k], y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}")))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (p, q))| difference(p, q, &format!("{path}[{i}]")))
        }
        // JSON text parsed back may be one unit in the last place off.
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            ((x - y).abs() > 1e-12 * x.abs().max(y.abs())).then(|| format!("{path}: {x} vs {y}"))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

fn assert_same(live: &serde_json::Value, offline: &serde_json::Value, what: &str) {
    if let Some(d) = difference(live, offline, what) {
        panic!("the receiver's answer differs from the offline one at {d}");
    }
}

fn assert_answers_like(member: &Member, expected: &Offline) {
    wait_for(member, expected.spans, expected.traces);
    let graph = get_json(member.api, "/api/v1/graph");
    assert_same(&graph["edges"], &expected.analysis["graph"]["edges"], "graph.edges");
    assert_same(&graph["nodes"], &expected.analysis["graph"]["nodes"], "graph.nodes");
    let operations = get_json(member.api, "/api/v1/operations");
    assert_same(&operations["operations"], &expected.analysis["operations"], "operations");
    let mut bottlenecks = get_json(member.api, "/api/v1/bottlenecks");
    bottlenecks.as_object_mut().unwrap().remove("restoring");
    assert_same(&bottlenecks, &expected.bottlenecks, "bottlenecks");
    assert_eq!(bottlenecks["total_duration_ns"], expected.analysis["bottlenecks"]["total_duration_ns"]);
    let query = "/api/v1/verdict?service=checkout&baseline_version=1.9.0&candidate_version=1.10.0";
    let verdict = get_json(member.api, query);
    for key in ["verdict", "score", "baseline", "candidate", "metrics", "attribution", "new_error_types"] {
        assert_same(&verdict[key], &expected.verdict[key], &format!("verdict.{key}"));
    }
}

#[test]
fn three_members_answer_like_one_offline_analysis_through_kill_9_and_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    broker.create_topic("otlp_spans", 6);
    let mut dumps = vec![generate(dir.path(), 1, 1_500)];
    assert!(send(&broker, "otlp_spans", &dumps[0], &[]).wait().unwrap().success());
    let mut members: Vec<Member> =
        (0..3).map(|i| member(dir.path(), &broker, "otlp_spans", "g", &format!("tracelens-{i}"), &[])).collect();
    let expected = offline(&dumps);
    assert!(expected.verdict["metrics"].as_array().is_some_and(|m| !m.is_empty()));
    for m in &members {
        assert_answers_like(m, &expected);
    }

    // A deployment marker recorded on one member is every member's: a
    // verdict at its time reads the same on a member that never saw it.
    let marker = br#"{"service": "checkout", "version": "1.10.0", "time": "2026-11-01T00:00:07Z"}"#;
    let (status, _, body) = common::http(members[0].api, "POST", "/api/v1/deployments", &[], marker);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let deadline = Instant::now() + Duration::from_secs(30);
    for m in &members {
        while get_json(m.api, "/api/v1/deployments")["deployments"].as_array().map(Vec::len) != Some(1) {
            assert!(Instant::now() < deadline, "the marker did not reach {} once", m.api);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let by_marker = |m: &Member| get_json(m.api, "/api/v1/verdict?service=checkout");
    let (here, there) = (by_marker(&members[0]), by_marker(&members[2]));
    assert_eq!(here["mode"], "deploy_time", "{here:#}");
    assert_same(&there, &here, "verdict by the marker");

    // Mid-stream, one member is killed with kill -9 and a new process takes
    // its place under its identity, as a StatefulSet restarts a pod.
    dumps.push(generate(dir.path(), 2, 1_500));
    let mut sending = send(&broker, "otlp_spans", &dumps[1], &["--rate", "6000"]);
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(sending.try_wait().unwrap().is_none(), "still sending when the member is killed");
    drop(members.remove(1));
    members.push(member(dir.path(), &broker, "otlp_spans", "g", "tracelens-1", &[]));
    assert!(sending.wait().unwrap().success());
    let expected = offline(&dumps);
    for m in &members {
        assert_answers_like(m, &expected);
    }

    // The broker goes down hard and comes back on its data.
    broker.restart();
    dumps.push(generate(dir.path(), 3, 1_000));
    assert!(send(&broker, "otlp_spans", &dumps[2], &[]).wait().unwrap().success());
    let expected = offline(&dumps);
    for m in &members {
        assert_answers_like(m, &expected);
    }
    let status = get_json(members[0].api, "/api/v1/status");
    assert_eq!(status["kafka"]["split_trace_spans"], 0, "{status:#}");
    assert_eq!(status["kafka"]["caught_up"], true);
    assert!(status["kafka"]["partials_counted"].as_u64().unwrap() > 0);
}

#[test]
fn a_topic_of_unkeyed_mixed_records_is_analysed_with_split_traces_counted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    broker.create_topic("mixed", 4);
    let dump = generate(dir.path(), 9, 600);
    let flags = ["--kafka-partition-traces-by-id", "false", "--batch-spans", "50"];
    assert!(send(&broker, "mixed", &dump, &flags).wait().unwrap().success());
    // A member that takes spans from Kafka only.
    let m = member(dir.path(), &broker, "mixed", "mixed-group", "tracelens-0", &["--otlp", "false"]);
    let log = std::fs::read_to_string(&m.log).unwrap();
    assert!(log.contains("listening: otlp-grpc off, otlp-http off, api 127.0.0.1:"), "{log}");
    let expected = offline(std::slice::from_ref(&dump));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = get_json(m.api, "/api/v1/status");
        if status["live"]["spans_accepted"].as_u64() == Some(expected.spans) {
            break status;
        }
        assert!(Instant::now() < deadline, "{status:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Records of several services of one trace land in different
    // partitions: those traces are analysed in parts, and counted.
    let split = status["kafka"]["split_trace_spans"].as_u64().unwrap();
    assert!(split > 0 && status["live"]["traces_completed"].as_u64() > Some(expected.traces), "{status:#}");
    assert!(status["kafka"]["split_traces"].as_str().unwrap().contains("partition_traces_by_id: true"));
    let metrics = String::from_utf8(common::http(m.api, "GET", "/metrics", &[], b"").2).unwrap();
    assert!(metrics.contains(&format!("tracelens_kafka_split_trace_spans_total {split}\n")), "{metrics}");
    assert!(metrics.contains("tracelens_kafka_records_undecodable_total 0\n"));
}
