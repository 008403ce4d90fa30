//! Faults beyond kill -9, injected into `tracelens serve` with an
//! LD_PRELOAD shim (`tests/faults/shim.c`, built here with the system C
//! compiler): a full disk, a file system remounted read-only and a failed
//! fsync. The rule checked: never
//! acknowledge what is not durable, say what is wrong in `/readyz`, the log
//! and `/metrics`, and take requests again once the fault is gone; nothing
//! acknowledged is lost across a crash afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Server, http, start_until, start_with_env};

/// The shim, built once per test run.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tracelens-fault-shim.so");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("run cc (Debian package build-essential)");
        assert!(status.success(), "building {}", source.display());
        out
    })
}

/// A data directory, the directory of triggers the shim looks at, and a
/// server with the shim loaded.
struct Faulty {
    _dir: tempfile::TempDir,
    data: PathBuf,
    triggers: PathBuf,
}

/// Log segments grow as they are written (not preallocated), so that the
/// shim can tell what was written since a sync.
const FLAGS: [&str; 2] = ["--wal-preallocate", "false"];

impl Faulty {
    fn new() -> Faulty {
        let dir = tempfile::tempdir().unwrap();
        let (data, triggers) = (dir.path().join("data"), dir.path().join("triggers"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&triggers).unwrap();
        // The shim compares resolved paths.
        let data = data.canonicalize().unwrap();
        Faulty { _dir: dir, data, triggers }
    }

    fn start(&self) -> Server {
        let env = [
            ("LD_PRELOAD", shim().to_str().unwrap()),
            ("TRACELENS_FAULT_DIR", self.triggers.to_str().unwrap()),
            ("TRACELENS_FAULT_DATA_DIR", self.data.to_str().unwrap()),
        ];
        start_with_env(&self.data, &FLAGS, |l| l.starts_with("tracelens: replayed "), &env)
    }

    /// The same data directory, without the shim.
    fn restart_clean(&self) -> Server {
        start_until(&self.data, &FLAGS, |l| l.starts_with("tracelens: replayed "))
    }

    fn set(&self, trigger: &str) {
        std::fs::write(self.triggers.join(trigger), b"").unwrap();
    }

    fn clear(&self, trigger: &str) {
        let _ = std::fs::remove_file(self.triggers.join(trigger));
    }
}

/// One span of trace `n` as an OTLP/JSON request: the status it gets.
fn post(server: &Server, n: u32) -> (u16, String) {
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{n:032x}","spanId":"{n:016x}","name":"op","startTimeUnixNano":"1000","endTimeUnixNano":"2000"}}]}}]}}]}}"#
    );
    let (status, head, reply) =
        http(server.http, "POST", "/v1/traces", &[("Content-Type", "application/json")], body.as_bytes());
    (status, format!("{head}\n{}", String::from_utf8_lossy(&reply)))
}

fn found(server: &Server, n: u32) -> bool {
    http(server.api, "GET", &format!("/api/v1/traces/{n:032x}"), &[], b"").0 == 200
}

fn readyz(server: &Server) -> (u16, String) {
    let (status, _, body) = http(server.api, "GET", "/readyz", &[], b"");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn metric(server: &Server, name: &str) -> u64 {
    let (_, _, body) = http(server.api, "GET", "/metrics", &[], b"");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Waits until the server's log (after its start) has a line with `text`.
fn logged(server: &Server, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = server.later.lock().unwrap().iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        assert!(Instant::now() < deadline, "no log line with {text:?}: {:?}", server.later.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_or_a_read_only_file_system_refuses_requests_until_writable_again() {
    for (trigger, error) in [("enospc", "No space left on device"), ("erofs", "Read-only file system")] {
        let faulty = Faulty::new();
        let mut server = faulty.start();
        assert_eq!(post(&server, 1).0, 200);

        faulty.set(trigger);
        for n in 2..5 {
            let (status, answer) = post(&server, n);
            assert_eq!(status, 503, "{trigger}: nothing is acknowledged: {answer}");
            assert!(answer.to_ascii_lowercase().contains("retry-after"), "{answer}");
            assert!(answer.contains(error), "{answer}");
        }
        let (status, why) = readyz(&server);
        assert_eq!(status, 503, "{why}");
        assert!(why.contains("not ready: the log could not be written") && why.contains(error), "{why}");
        assert!(logged(&server, "error: writing the log").contains(error));
        assert_eq!(metric(&server, "tracelens_wal_failures_total"), 3);

        faulty.clear(trigger);
        assert_eq!(post(&server, 5).0, 200, "{trigger}: taken again once writable");
        assert_eq!(readyz(&server).0, 200);
        logged(&server, "the log is written again");

        // Every acknowledged trace survives a crash; the refused ones were
        // not written.
        server.proc.0.kill().unwrap();
        server.proc.0.wait().unwrap();
        let server = faulty.restart_clean();
        for n in [1, 5] {
            assert!(found(&server, n), "{trigger}: acknowledged trace {n} after the restart");
        }
        for n in 2..5 {
            assert!(!found(&server, n), "{trigger}: refused trace {n} was never written");
        }
    }
}

#[test]
fn after_a_failed_fsync_nothing_acknowledged_is_lost() {
    let faulty = Faulty::new();
    let mut server = faulty.start();
    assert_eq!(post(&server, 1).0, 200);

    // The next sync fails, and the shim drops what it was to make durable,
    // as a kernel does after failed writeback (then reports success again).
    faulty.set("fail-fsync");
    let (status, answer) = post(&server, 2);
    assert_eq!(status, 503, "a request whose sync failed is refused: {answer}");
    let (status, why) = readyz(&server);
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("the log could not be written"), "{why}");
    logged(&server, "error: writing the log");

    // Later requests are acknowledged, and must not sit behind the hole.
    for n in 3..6 {
        assert_eq!(post(&server, n).0, 200);
    }
    assert_eq!(readyz(&server).0, 200);
    assert_eq!(metric(&server, "tracelens_wal_failures_total"), 1);

    server.proc.0.kill().unwrap();
    server.proc.0.wait().unwrap();
    let server = faulty.restart_clean();
    for n in [1, 3, 4, 5] {
        assert!(found(&server, n), "acknowledged trace {n} lost after a failed fsync and a crash");
    }
}

#[test]
fn a_clock_set_back_an_hour_does_not_hold_traces_open() {
    let faulty = Faulty::new();
    let server = faulty.start();
    let completed = |server: &Server| metric(server, "tracelens_traces_completed_total ");
    let wait_for = |server: &Server, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while completed(server) < n {
            assert!(Instant::now() < deadline, "{} traces completed, {n} expected", completed(server));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(post(&server, 1).0, 200);
    wait_for(&server, 1);
    // The machine's clock is set back an hour: traces still complete after
    // their idle time (200 ms here), not an hour later.
    std::fs::write(faulty.triggers.join("clock-offset-ms"), b"-3600000").unwrap();
    for n in 2..4 {
        assert_eq!(post(&server, n).0, 200);
    }
    wait_for(&server, 3);
    // And forward again.
    std::fs::remove_file(faulty.triggers.join("clock-offset-ms")).unwrap();
    assert_eq!(post(&server, 4).0, 200);
    wait_for(&server, 4);
    assert!(found(&server, 3));
}
