//! Deploy gates on the receiver: deployment markers (recorded with `POST
//! /api/v1/deployments`, kept in `deployments.jsonl` under the data
//! directory), turning a verdict request — query parameters, or a Flagger
//! webhook's `metadata` — into the judge's cohorts, and the status codes
//! each gate expects: Argo Rollouts reads the verdict from a 200 body,
//! Flagger's gate wants 200 to go on and 403 to stop, and its rollback hook
//! is inverted (200 means roll back now).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use tracelens_core::judge::verdict::Outcome;
use tracelens_core::judge::{Cohorts, Verdict};

/// File of deployment markers, one JSON object per line.
pub const DEPLOYMENTS_FILE: &str = "deployments.jsonl";

/// A recorded deploy of one service version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The service.
    pub service: String,
    /// The version deployed.
    pub version: String,
    /// When, unix ns.
    pub time_unix_nano: u64,
}

/// Why a marker or a verdict request is refused.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// As many markers as are kept at most (within the retention period).
    #[error("{kept} deployment markers are kept, the most there may be; older ones expire after the retention period")]
    TooManyMarkers {
        /// Markers kept.
        kept: usize,
    },
    /// A marker without a service or a version.
    #[error("a deployment needs a service and a version")]
    MarkerIncomplete,
    /// A marker's time that is not one.
    #[error("deployment time {0} is neither RFC 3339 nor a unix time (s, ms)")]
    MarkerTime(serde_json::Value),
    /// A verdict request without a service.
    #[error("service is required")]
    NoService,
    /// A warm-up that is not a duration.
    #[error("warmup {0:?} is not a duration such as 2m or 90s")]
    Warmup(String),
    /// A canary weight, as given, that is not a share.
    #[error("canary_weight {0:?} must be a number between 0 and 1")]
    CanaryWeightText(String),
    /// A canary weight that is not a share.
    #[error("canary_weight {0} must be a number between 0 and 1")]
    CanaryWeight(f64),
    /// The same version on both sides.
    #[error("baseline_version and candidate_version are the same")]
    SameVersions,
    /// A deploy time that is not a time.
    #[error("deploy_time {0:?} is neither RFC 3339 nor a unix time (s, ms)")]
    DeployTime(String),
    /// A deploy time ahead of the receiver's clock.
    #[error("deploy_time {given:?} is in the future (now is {})", tracelens_core::model::time::rfc3339(*now_ns))]
    DeployTimeAhead {
        /// As given.
        given: String,
        /// The receiver's clock, unix ns.
        now_ns: u64,
    },
    /// Versions and a deploy time, or one version only.
    #[error("give both baseline_version and candidate_version, or deploy_time, not a mix")]
    MixedSplit,
    /// No split given and no deployment recorded to split at.
    #[error("give baseline_version and candidate_version, or deploy_time, or record a deployment of {0} first")]
    NoDeployment(String),
    /// Planned looks that are not a count.
    #[error("planned_looks {0:?} must be a whole number 1-1000")]
    PlannedLooks(String),
    /// Planned looks without an analysis to count them in.
    #[error("planned_looks needs an analysis_id")]
    LooksWithoutAnalysis,
    /// The markers file could not be written or read.
    #[error("deployments file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Markers kept at most (within the retention period): more are refused
/// until old ones expire.
pub const MAX_DEPLOYMENTS: usize = 10_000;

/// Deployment markers, persisted.
pub struct Deployments {
    path: PathBuf,
    list: Vec<Deployment>,
    cap: usize,
}

impl Deployments {
    /// Loads the markers under `data_dir` (none if the file is absent;
    /// unreadable lines are skipped and counted).
    pub fn open(data_dir: &Path) -> Result<(Deployments, usize), GateError> {
        let path = data_dir.join(DEPLOYMENTS_FILE);
        let mut list = Vec::new();
        let mut bad = 0;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    match serde_json::from_str::<Deployment>(line) {
                        Ok(d) => list.push(d),
                        Err(_) => bad += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(GateError::Io { path, source }),
        }
        Ok((Deployments { path, list, cap: MAX_DEPLOYMENTS }, bad))
    }

    /// Records a marker durably (appended and fsynced); refused when
    /// [`MAX_DEPLOYMENTS`] are kept.
    pub fn record(&mut self, d: Deployment) -> Result<(), GateError> {
        if self.list.len() >= self.cap {
            return Err(GateError::TooManyMarkers { kept: self.list.len() });
        }
        let io = |source| GateError::Io { path: self.path.clone(), source };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
        let mut line = serde_json::to_vec(&d).expect("a deployment serializes");
        line.push(b'\n');
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.list.push(d);
        Ok(())
    }

    /// Drops the markers older than `horizon_ns` (unix ns) except each
    /// service's latest (the default deploy of its verdicts), rewriting the
    /// file (to a temporary name, synced, renamed); returns how many went.
    pub fn expire(&mut self, horizon_ns: u64) -> Result<usize, GateError> {
        let mut latest = BTreeMap::<&str, u64>::new();
        for d in &self.list {
            let t = latest.entry(&d.service).or_insert(d.time_unix_nano);
            *t = (*t).max(d.time_unix_nano);
        }
        let keep: Vec<bool> = self
            .list
            .iter()
            .map(|d| d.time_unix_nano >= horizon_ns || d.time_unix_nano == latest[&*d.service])
            .collect();
        let gone = keep.iter().filter(|&&k| !k).count();
        if gone == 0 {
            return Ok(0);
        }
        let kept: Vec<Deployment> = self.list.iter().zip(&keep).filter(|(_, k)| **k).map(|(d, _)| d.clone()).collect();
        let temp = self.path.with_extension("jsonl.tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GateError::Io { path, source }
        };
        let mut text = Vec::new();
        for d in &kept {
            text.extend(serde_json::to_vec(d).expect("a deployment serializes"));
            text.push(b'\n');
        }
        let mut file = std::fs::File::create(&temp).map_err(io(&temp))?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(io(&temp))?;
        std::fs::rename(&temp, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        }
        self.list = kept;
        Ok(gone)
    }

    /// Every marker, in recording order.
    pub fn all(&self) -> &[Deployment] {
        &self.list
    }

    /// The latest marker of `service` by time.
    pub fn latest(&self, service: &str) -> Option<&Deployment> {
        self.list.iter().filter(|d| d.service == service).max_by_key(|d| d.time_unix_nano)
    }
}

/// A marker as posted: `time` is RFC 3339 or unix seconds, default now.
#[derive(Clone, Debug, Deserialize)]
pub struct DeploymentRequest {
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// When.
    pub time: Option<serde_json::Value>,
}

impl DeploymentRequest {
    /// Checks the marker; `now_ns` when no time is given.
    pub fn validate(self, now_ns: u64) -> Result<Deployment, GateError> {
        if self.service.trim().is_empty() || self.version.trim().is_empty() {
            return Err(GateError::MarkerIncomplete);
        }
        let time_unix_nano = match &self.time {
            None | Some(serde_json::Value::Null) => now_ns,
            Some(v) => time_ns(v).ok_or_else(|| GateError::MarkerTime(v.clone()))?,
        };
        Ok(Deployment { service: self.service, version: self.version, time_unix_nano })
    }
}

fn time_ns(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::String(s) => tracelens_core::model::time::parse_time(s),
        serde_json::Value::Number(n) => tracelens_core::model::time::parse_time(&n.to_string()),
        _ => None,
    }
}

/// What a gate asks: the service and how to split its traces.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct VerdictRequest {
    /// The service to judge.
    pub service: Option<String>,
    /// Old version (side by side).
    pub baseline_version: Option<String>,
    /// New version.
    pub candidate_version: Option<String>,
    /// The deploy (RFC 3339 or unix seconds); default: the service's latest marker.
    pub deploy_time: Option<String>,
    /// Skipped after the deploy (default 2m).
    pub warmup: Option<String>,
    /// Expected share of requests on the candidate.
    pub canary_weight: Option<String>,
    /// Names an analysis a gate polls repeatedly (with `planned_looks`).
    pub analysis_id: Option<String>,
    /// Looks the gate will take at this analysis (each tested at α/K; the
    /// verdict of the last one is frozen).
    pub planned_looks: Option<String>,
}

impl VerdictRequest {
    /// From a Flagger webhook: `metadata` carries the same keys; the
    /// service defaults to the canary's name.
    pub fn from_flagger(hook: &FlaggerWebhook) -> VerdictRequest {
        let get = |k: &str| hook.metadata.get(k).filter(|v| !v.is_empty()).cloned();
        VerdictRequest {
            service: get("service").or_else(|| Some(hook.name.clone())),
            baseline_version: get("baseline_version"),
            candidate_version: get("candidate_version"),
            deploy_time: get("deploy_time"),
            warmup: get("warmup"),
            canary_weight: get("canary_weight"),
            // A new revision (checksum) starts a new analysis.
            analysis_id: get("analysis_id").or_else(|| {
                get("planned_looks").map(|_| format!("{}/{}/{}", hook.namespace, hook.name, hook.checksum))
            }),
            planned_looks: get("planned_looks"),
        }
    }

    /// The analysis and its planned looks, when the request names both.
    pub fn looks(&self) -> Result<Option<(String, u32)>, GateError> {
        let id = self.analysis_id.clone().filter(|s| !s.is_empty());
        let planned = match self.planned_looks.as_deref() {
            None | Some("") => None,
            Some(k) => match k.parse::<u32>() {
                Ok(k) if (1..=1000).contains(&k) => Some(k),
                _ => return Err(GateError::PlannedLooks(k.to_string())),
            },
        };
        match (id, planned) {
            (Some(id), Some(k)) => Ok(Some((id, k))),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(GateError::LooksWithoutAnalysis),
            (Some(id), None) => Ok(Some((id, 10))),
        }
    }

    /// The request parsed and checked once, whatever transport it came by;
    /// `now_ns` is the receiver's clock (a deploy time may not lie ahead of it).
    pub fn parse(&self, now_ns: u64) -> Result<JudgeRequest, GateError> {
        let service = self.service.clone().filter(|s| !s.is_empty()).ok_or(GateError::NoService)?;
        let warmup_ns = match self.warmup.as_deref() {
            None | Some("") => DEFAULT_WARMUP_NS,
            Some(w) => {
                tracelens_core::model::time::parse_duration(w).ok_or_else(|| GateError::Warmup(w.to_string()))?
            }
        };
        let canary_weight = match self.canary_weight.as_deref() {
            None | Some("") => None,
            Some(w) => Some(
                w.parse::<f64>()
                    .map_err(|_| ())
                    .and_then(|w| JudgeRequest::canary_weight(w).map_err(|_| ()))
                    .map_err(|()| GateError::CanaryWeightText(w.to_string()))?,
            ),
        };
        let split = match (&self.baseline_version, &self.candidate_version, &self.deploy_time) {
            (Some(b), Some(c), None) if b != c => {
                Split::Given(Cohorts::Versions { baseline: b.clone(), candidate: c.clone() })
            }
            (Some(_), Some(_), None) => return Err(GateError::SameVersions),
            (None, None, Some(t)) => {
                let deploy_ns =
                    time_ns(&serde_json::Value::String(t.clone())).ok_or_else(|| GateError::DeployTime(t.clone()))?;
                if deploy_ns > now_ns.saturating_add(FUTURE_DEPLOY_GRACE_NS) {
                    return Err(GateError::DeployTimeAhead { given: t.clone(), now_ns });
                }
                Split::Given(Cohorts::DeployTime { deploy_ns, warmup_ns })
            }
            (None, None, None) => Split::LatestDeployment { warmup_ns },
            _ => return Err(GateError::MixedSplit),
        };
        Ok(JudgeRequest { service, split, canary_weight, looks: self.looks()? })
    }
}

/// Warm-up skipped after a deploy unless the request says otherwise.
const DEFAULT_WARMUP_NS: u64 = 120_000_000_000;

/// A verdict request, parsed once at the edge: what the query string, a
/// Flagger hook's metadata and the gRPC query all become.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeRequest {
    /// The service to judge.
    pub service: String,
    /// How to split its traces.
    pub split: Split,
    /// Expected share of requests on the candidate.
    pub canary_weight: Option<f64>,
    /// (analysis id, planned looks) of a gate that polls.
    pub looks: Option<(String, u32)>,
}

/// How a request splits the traces.
#[derive(Clone, Debug, PartialEq)]
pub enum Split {
    /// As the request says.
    Given(Cohorts),
    /// Around the service's latest recorded deployment.
    LatestDeployment {
        /// Skipped after it, ns.
        warmup_ns: u64,
    },
}

impl JudgeRequest {
    /// A canary weight, checked: strictly between 0 and 1.
    pub fn canary_weight(w: f64) -> Result<f64, GateError> {
        if w > 0.0 && w < 1.0 { Ok(w) } else { Err(GateError::CanaryWeight(w)) }
    }

    /// The judge's cohorts, the latest marker standing in for a deploy
    /// time the request did not give.
    pub fn cohorts(&self, deployments: &Deployments) -> Result<Cohorts, GateError> {
        Ok(match &self.split {
            Split::Given(cohorts) => cohorts.clone(),
            Split::LatestDeployment { warmup_ns } => match deployments.latest(&self.service) {
                Some(d) => Cohorts::DeployTime { deploy_ns: d.time_unix_nano, warmup_ns: *warmup_ns },
                None => return Err(GateError::NoDeployment(self.service.clone())),
            },
        })
    }
}

/// How far past the receiver's clock a deploy time may lie (clocks differ).
const FUTURE_DEPLOY_GRACE_NS: u64 = 60_000_000_000;

/// Flagger's webhook payload (`pkg/controller/webhook.go`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FlaggerWebhook {
    /// The canary's name.
    pub name: String,
    /// Its namespace.
    #[serde(default)]
    pub namespace: String,
    /// The analysis phase.
    #[serde(default)]
    pub phase: String,
    /// The revision's checksum.
    #[serde(default)]
    pub checksum: String,
    /// The webhook's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Analyses remembered at once; past this the least recently started is
/// forgotten (a gate polling it again starts counting anew).
const ANALYSES_REMEMBERED: usize = 1_000;

/// Looks taken per analysis, and the verdict frozen at the last one;
/// bounded to the 1,000 most recently started analyses.
#[derive(Default)]
pub struct LookBook {
    analyses: std::collections::HashMap<String, (u32, Option<Verdict>)>,
    order: std::collections::VecDeque<String>,
}

impl LookBook {
    /// The frozen verdict of `id`, if its planned looks are used up.
    pub fn frozen(&self, id: &str) -> Option<Verdict> {
        self.analyses.get(id).and_then(|(_, v)| v.clone())
    }

    /// Counts a look at `id` and returns its number.
    pub fn next(&mut self, id: &str) -> u32 {
        if !self.analyses.contains_key(id) {
            self.order.push_back(id.to_string());
            while self.order.len() > ANALYSES_REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.analyses.remove(&old);
                }
            }
        }
        let entry = self.analyses.entry(id.to_string()).or_default();
        entry.0 += 1;
        entry.0
    }

    /// Freezes `id`'s verdict.
    pub fn freeze(&mut self, id: &str, verdict: Verdict) {
        self.analyses.entry(id.to_string()).or_default().1 = Some(verdict);
    }
}

/// Flagger gate: 200 lets the rollout go on, 403 stops it (its body shows
/// in Flagger's events). Inconclusive goes on only when the hook's
/// metadata says `on_inconclusive: pass`.
pub fn gate_status(verdict: &Verdict, hook: &FlaggerWebhook) -> u16 {
    match verdict.verdict {
        Outcome::Pass => 200,
        Outcome::Fail => 403,
        Outcome::Inconclusive if hook.metadata.get("on_inconclusive").is_some_and(|v| v == "pass") => 200,
        Outcome::Inconclusive => 403,
    }
}

/// Flagger's inverted rollback hook: 200 only when the verdict is fail.
pub fn rollback_status(verdict: &Verdict) -> u16 {
    if verdict.verdict == Outcome::Fail { 200 } else { 403 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_book_is_bounded() {
        let mut book = LookBook::default();
        assert_eq!((book.next("a0"), book.next("a0")), (1, 2));
        for i in 1..=ANALYSES_REMEMBERED {
            book.next(&format!("a{i}"));
        }
        assert_eq!(book.analyses.len(), ANALYSES_REMEMBERED);
        assert_eq!(book.next("a0"), 1, "the oldest analysis was forgotten");
    }

    #[test]
    fn markers_are_kept_up_to_a_cap_and_expiry_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let (mut d, _) = Deployments::open(dir.path()).unwrap();
        d.cap = 2;
        let marker = |version: &str, time_unix_nano| Deployment {
            service: "api".into(),
            version: version.into(),
            time_unix_nano,
        };
        d.record(marker("1", 10)).unwrap();
        d.record(marker("2", 20)).unwrap();
        let e = d.record(marker("3", 30)).unwrap_err();
        assert!(matches!(e, GateError::TooManyMarkers { kept: 2 }), "{e}");
        assert_eq!(d.all().len(), 2, "nothing was written");
        // The older marker expires (the service's latest stays): room again.
        assert_eq!(d.expire(15).unwrap(), 1);
        d.record(marker("3", 30)).unwrap();
        assert_eq!(Deployments::open(dir.path()).unwrap().0.all().len(), 2);
    }

    #[test]
    fn markers_persist_and_the_latest_is_the_default_deploy() {
        let dir = tempfile::tempdir().unwrap();
        let (mut d, bad) = Deployments::open(dir.path()).unwrap();
        assert_eq!((d.all().len(), bad), (0, 0));
        let req =
            |t: serde_json::Value| DeploymentRequest { service: "api".into(), version: "2".into(), time: Some(t) };
        d.record(req(serde_json::json!("2026-11-28T10:00:00Z")).validate(0).unwrap()).unwrap();
        d.record(req(serde_json::json!(1_795_860_000.5)).validate(0).unwrap()).unwrap();
        assert!(req(serde_json::json!("soon")).validate(0).is_err());
        let (d, _) = Deployments::open(dir.path()).unwrap();
        assert_eq!(d.all().len(), 2);
        assert_eq!(d.latest("api").unwrap().time_unix_nano, 1_795_860_000_500_000_000);
        let r = VerdictRequest { service: Some("api".into()), ..Default::default() };
        let cohorts = r.parse(10_000_000_000_000).unwrap().cohorts(&d).unwrap();
        assert_eq!(cohorts, Cohorts::DeployTime { deploy_ns: 1_795_860_000_500_000_000, warmup_ns: 120_000_000_000 });
        let r = VerdictRequest { service: Some("other".into()), ..Default::default() };
        let err = r.parse(10_000_000_000_000).unwrap().cohorts(&d).unwrap_err();
        assert!(err.to_string().contains("record a deployment of other"));
    }

    #[test]
    fn old_markers_expire_but_each_services_latest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (mut d, _) = Deployments::open(dir.path()).unwrap();
        for (service, time) in [("api", 10), ("api", 20), ("db", 5), ("api", 40), ("web", 50)] {
            let version = time.to_string();
            d.record(Deployment { service: service.into(), version, time_unix_nano: time }).unwrap();
        }
        assert_eq!(d.expire(0).unwrap(), 0, "nothing before the horizon");
        // Before 30: api's 10 and 20 go; db's 5 is its latest and stays.
        assert_eq!(d.expire(30).unwrap(), 2);
        let times = |d: &Deployments| d.all().iter().map(|m| (m.service.clone(), m.time_unix_nano)).collect::<Vec<_>>();
        let want = vec![("db".to_string(), 5), ("api".to_string(), 40), ("web".to_string(), 50)];
        assert_eq!(times(&d), want);
        // The file says the same, and reads back whole.
        let (again, bad) = Deployments::open(dir.path()).unwrap();
        assert_eq!((times(&again), bad), (want, 0));
        assert!(!dir.path().join("deployments.jsonl.tmp").exists());
        assert_eq!(d.expire(u64::MAX).unwrap(), 0, "the latest of each service always stays");
    }
}
