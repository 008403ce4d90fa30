//! The service layer on its own: no listener, a clock set by hand, a log
//! in a temporary directory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::clock::ManualClock;
use crate::gate::{DeploymentRequest, Deployments, VerdictRequest};
use crate::ingest::BodyEncoding;
use crate::live::{Live, LiveConfig};
use crate::storage::commit::{COMMIT_WAIT, CommitConfig, GroupCommit, LogStats, Syncer};
use crate::storage::lookup::Stored;
use crate::storage::restore::Progress;
use crate::storage::wal::{SyncPolicy, Wal, WalConfig};

/// 2027-01-15T08:00:00Z.
const NOW_MS: u64 = 1_800_000_000_000;

struct Fixture {
    service: Service,
    clock: Arc<ManualClock>,
    _syncer: Syncer,
    _dir: tempfile::TempDir,
}

fn fixture(limits: Limits, restoring: Progress) -> Fixture {
    fixture_syncing(limits, restoring, SyncPolicy::Never)
}

/// [`fixture`] with the log's fsync policy given.
fn fixture_syncing(limits: Limits, restoring: Progress, sync: SyncPolicy) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(WalConfig { sync, ..WalConfig::new(dir.path()) }).unwrap();
    let commit = CommitConfig { retention: limits.retention, commit_wait: COMMIT_WAIT };
    let (log, syncer) = GroupCommit::start(wal, commit, Arc::new(LogStats::default()), None).unwrap();
    let clock = Arc::new(ManualClock::at(NOW_MS));
    let parts = Parts {
        live: Arc::new(Mutex::new(Live::new(LiveConfig { idle_ms: 1_000, ..LiveConfig::default() }))),
        restoring: Arc::new(restoring),
        deployments: Deployments::open(dir.path()).unwrap().0,
        log,
        stored: Some(Stored { dir: dir.path().to_path_buf(), index: Arc::default() }),
        clock: clock.clone(),
        limits,
        group: None,
    };
    Fixture { service: Service::new(parts), clock, _syncer: syncer, _dir: dir }
}

fn limits() -> Limits {
    Limits {
        max_request_bytes: 1 << 20,
        max_in_flight: 4,
        max_requests_per_second: None,
        retention: Duration::from_secs(86_400),
        max_memory: None,
    }
}

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

/// `frontend` calls `checkout` (a CLIENT span and its SERVER child), plus
/// one span without ids (rejected by partial success).
fn request() -> Bytes {
    let start = (NOW_MS - 2_000) * 1_000_000;
    let span = |id: &str, parent: &str, name: &str, kind: u8, from_ms: u64, to_ms: u64| {
        format!(
            r#"{{"traceId":"{TRACE}","spanId":"{id}","parentSpanId":"{parent}","name":"{name}","kind":{kind},"startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}"#,
            start + from_ms * 1_000_000,
            start + to_ms * 1_000_000
        )
    };
    let resource = |service: &str, spans: String| {
        format!(
            r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{spans}]}}]}}"#
        )
    };
    let frontend = format!(
        "{},{}",
        span("eee19b7ec3c1b174", "", "GET /cart", 2, 0, 100),
        span("eee19b7ec3c1b175", "eee19b7ec3c1b174", "checkout", 3, 10, 90)
    );
    let checkout = span("eee19b7ec3c1b176", "eee19b7ec3c1b175", "PlaceOrder", 2, 20, 80);
    let bad = r#"{"traceId":"","spanId":"","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}"#;
    let body = format!(
        r#"{{"resourceSpans":[{},{},{}]}}"#,
        resource("frontend", frontend),
        resource("checkout", checkout),
        resource("checkout", bad.to_string())
    );
    Bytes::from(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_acknowledged_with_partial_success_and_analysed_once_idle() {
    let f = fixture(limits(), Progress::finished());
    let accepted = f.service.export(request(), BodyEncoding::Json).await.unwrap();
    assert_eq!((accepted.spans.len(), accepted.rejected), (0, 1), "kept spans went to live analysis");
    assert!(accepted.message.unwrap().contains("trace"), "the rejection says why");

    // Not idle yet: the graph is empty.
    let graph = f.service.graph(&Filter::default()).await.unwrap();
    assert!(graph.value.edges.is_empty());
    assert_eq!(graph.restoring, None);

    f.clock.set(NOW_MS + 1_500);
    f.service.tick();
    let graph = f.service.graph(&Filter::default()).await.unwrap().value;
    let edges: Vec<_> = graph.edges.iter().map(|e| (e.client.as_str(), e.server.as_str(), e.calls)).collect();
    assert_eq!(edges, [("frontend", "checkout", 1), ("user", "frontend", 1)]);
    let ops = f.service.operations(&Filter { service: Some("checkout".into()), ..Filter::default() }).await.unwrap();
    let names: Vec<_> = ops.value.iter().map(|o| o.operation.as_str()).collect();
    assert_eq!(names, ["PlaceOrder"]);
    let text = f.service.metrics_text();
    assert!(text.contains("tracelens_restore_in_progress 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_is_readable_from_the_log_as_soon_as_it_is_acknowledged() {
    let f = fixture(limits(), Progress::finished());
    f.service.export(request(), BodyEncoding::Json).await.unwrap();
    let trace = f.service.trace(TRACE).unwrap();
    assert_eq!(trace.spans.len(), 3);
    assert_eq!(trace.duration_ns, 100_000_000);
    // A page at a time: the critical path stays whole.
    let ids = |t: &query::TraceOut| t.spans.iter().map(|s| s.span_id.clone()).collect::<Vec<_>>();
    let all = ids(&trace);
    let first = trace.clone().page(0, 2);
    assert_eq!((first.span_count, first.offset, first.next_offset, ids(&first)), (3, 0, Some(2), all[..2].to_vec()));
    let last = trace.clone().page(2, 2);
    assert_eq!((last.offset, last.next_offset, ids(&last)), (2, None, all[2..].to_vec()));
    assert_eq!(last.critical_path.len(), trace.critical_path.len());
    let past = trace.page(7, 2);
    assert_eq!((past.offset, past.next_offset, past.spans.len()), (3, None, 0));
    let other = "00000000000000000000000000000001";
    assert!(matches!(f.service.trace(other), Err(ServiceError::TraceNotFound(_))));
    let zero = "00000000000000000000000000000000";
    let e = f.service.trace(zero).unwrap_err();
    assert!(matches!(e, ServiceError::BadRequest(RequestError::TraceId(_))), "{e}");
    assert_eq!(e.to_string(), format!("{zero:?} is not a trace id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_and_counted() {
    let f = fixture(
        Limits { max_requests_per_second: Some(1.0), max_request_bytes: 64 << 10, ..limits() },
        Progress::finished(),
    );
    let e = f.service.export(Bytes::from_static(b"{not json"), BodyEncoding::Json).await.unwrap_err();
    assert!(matches!(e, ServiceError::Undecodable(_)), "{e}");
    let e = f.service.export(Bytes::from_static(b"{}"), BodyEncoding::Json).await.unwrap_err();
    assert!(matches!(e, ServiceError::RateLimited), "one request a second: {e}");
    let e = f.service.export(Bytes::from(vec![b' '; 65 << 10]), BodyEncoding::Json).await.unwrap_err();
    assert_eq!(e.to_string(), "request over the 65536-byte limit");
    assert!(f.service.metrics_text().contains("tracelens_wal_bytes_total 0\n"), "nothing was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_memory_budget_exports_are_refused_and_open_traces_completed() {
    let f = fixture(Limits { max_memory: Some(1_000_000), ..limits() }, Progress::finished());
    let shop =
        Bytes::from(std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap());
    f.service.export(shop.clone(), BodyEncoding::Json).await.unwrap();
    assert!(f.service.live.lock().unwrap().open_spans() > 0, "the shop's traces are open (1 s idle)");
    f.service.observe_memory(800_000);
    assert_eq!(f.service.live.lock().unwrap().open_spans(), 0, "completed early");
    let e = f.service.export(shop.clone(), BodyEncoding::Json).await.unwrap_err();
    assert!(matches!(e, ServiceError::OverMemory { resident: 800_000, limit: 1_000_000 }), "{e}");
    assert!(f.service.readiness().unwrap_err().contains("near the memory limit"));
    let metrics = f.service.metrics_text();
    assert!(metrics.contains("tracelens_memory_refusals_total 1\n"), "{metrics}");
    assert!(metrics.contains("tracelens_memory_resident_bytes 800000\n"), "{metrics}");
    // Back under eight tenths: taken again.
    f.service.observe_memory(799_999);
    f.service.export(shop, BodyEncoding::Json).await.unwrap();
    assert_eq!(f.service.readiness().unwrap(), "ready");
    f.service.observe_memory(799_999);
    assert_eq!(f.service.live.lock().unwrap().open_spans(), 0, "still shedding over six tenths");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_restoring_answers_say_so_and_verdicts_are_withheld() {
    let f = fixture(limits(), Progress::default());
    let graph = f.service.graph(&Filter::default()).await.unwrap();
    assert!(graph.restoring.unwrap().starts_with("restoring stored spans"));
    assert!(f.service.readiness().unwrap().starts_with("ready; restoring"));
    let request = VerdictRequest {
        service: Some("checkout".into()),
        baseline_version: Some("1.0".into()),
        candidate_version: Some("1.1".into()),
        analysis_id: Some("a".into()),
        planned_looks: Some("2".into()),
        ..VerdictRequest::default()
    };
    let v = f.service.verdict(&request).await.unwrap();
    assert_eq!(v.verdict.as_str(), "inconclusive");
    assert!(v.reason.contains("restoring"), "{}", v.reason);
    assert!(v.looks.is_none(), "no look is taken while restoring");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_recorded_and_a_verdict_request_is_checked() {
    let f = fixture(limits(), Progress::finished());
    let marker =
        |time: &str| DeploymentRequest { service: "checkout".into(), version: "1.1".into(), time: Some(time.into()) };
    let recorded = f.service.record_deployment(marker("2027-01-15T07:50:00Z")).unwrap();
    assert_eq!(recorded.time_unix_nano, (NOW_MS - 600_000) * 1_000_000);
    assert_eq!(f.service.deployments(), std::slice::from_ref(&recorded));
    let nameless = DeploymentRequest { service: " ".into(), ..marker("2027-01-15T07:55:00Z") };
    let e = f.service.record_deployment(nameless).unwrap_err();
    assert!(matches!(e, ServiceError::Gate(_)), "{e}");
    assert_eq!(f.service.deployments().len(), 1);

    let e = f.service.verdict(&VerdictRequest::default()).await.unwrap_err();
    assert_eq!(e.to_string(), "service is required");
    // The latest marker splits the traces; none arrived, so nothing to judge yet.
    let request = VerdictRequest { service: Some("checkout".into()), ..VerdictRequest::default() };
    let v = f.service.verdict(&request).await.unwrap();
    assert_eq!(v.verdict.as_str(), "inconclusive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_holds_what_the_log_holds_up_to_its_position_and_is_not_rewritten_idle() {
    // With fsync, a request waits for its sync between the log and live
    // analysis: the moment a checkpoint must not fall into.
    let f = Arc::new(fixture_syncing(limits(), Progress::finished(), SyncPolicy::EveryAppend));
    let dir = f._dir.path().to_path_buf();
    // A checkpoint read back: (records of its segment, spans accepted).
    let read_back = |dir: &std::path::Path| {
        let mut live = Live::new(LiveConfig { idle_ms: 1_000, ..LiveConfig::default() });
        let (config, like) = (*live.bucket_config(), live.empty_analyses().clone());
        let (next, path) = crate::storage::checkpoint::latest(dir).unwrap();
        let loaded = crate::storage::checkpoint::read(dir, (next, &path), &config, &like, &mut live.dict).unwrap();
        (loaded.skip, loaded.counters.spans_accepted, loaded.open.len())
    };
    // Checkpoints taken (on another thread, as the compactor does) while
    // exports run: each waits for the exports between the log and live
    // analysis, so that every logged request is in it (three spans kept
    // of each) and no other.
    // Four senders (the in-flight limit), twelve requests each.
    let exports: Vec<_> = (0..4)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                for _ in 0..12 {
                    f.service.export(request(), BodyEncoding::Json).await.unwrap();
                }
            })
        })
        .collect();
    let checkpoints = {
        let (f, dir) = (f.clone(), dir.clone());
        tokio::task::spawn_blocking(move || {
            (0..20)
                .map(|_| {
                    f.service.checkpoint(&dir).unwrap();
                    let (records, accepted, _) = read_back(&dir);
                    assert_eq!(accepted, 3 * records, "{records} requests logged");
                    records
                })
                .collect::<Vec<u64>>()
        })
    };
    for sender in exports {
        sender.await.unwrap();
    }
    let seen = checkpoints.await.unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let (service, dir2) = (f.clone(), dir.clone());
    tokio::task::spawn_blocking(move || service.service.checkpoint(&dir2).unwrap()).await.unwrap();
    assert_eq!(read_back(&dir), (48, 144, 144), "every request, its spans open (the clock has not moved)");
    let written_total = |f: &Fixture| -> u64 {
        let metrics = f.service.metrics_text();
        metrics.lines().find_map(|l| l.strip_prefix("tracelens_checkpoints_total ")?.parse().ok()).unwrap()
    };
    let before = written_total(&f);
    assert!((1..=21).contains(&before), "{before}");
    // Nothing logged since: the checkpoint stands, not rewritten.
    let file = crate::storage::checkpoint::latest(&dir).unwrap().1;
    let written = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let (service, dir2) = (f.clone(), dir.clone());
    tokio::task::spawn_blocking(move || service.service.checkpoint(&dir2).unwrap()).await.unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), written);
    let metrics = f.service.metrics_text();
    let value = |name: &str| -> f64 {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap()
    };
    assert_eq!(written_total(&f), before, "not rewritten");
    assert_eq!(value("tracelens_checkpoint_last_bytes"), std::fs::metadata(&file).unwrap().len() as f64);
    assert!(value("tracelens_checkpoint_last_seconds") >= value("tracelens_checkpoint_last_pause_seconds"));
}
