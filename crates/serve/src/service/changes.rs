//! What got worse, anywhere, in a recent window of time: change detection
//! ([`tracelens_core::judge::changes`]) over the trace digests sampled per
//! minute of the retention ([`crate::live::samples`]; with none kept, the
//! recently completed traces), or in a consumer group the digests its
//! partials carried — with the deployment markers that fall in the window
//! listed beside the changes. A background run every
//! `--changes-interval` keeps the last answer for the `tracelens_change_*`
//! series of `/metrics`, so an alert can fire on a change.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{RequestError, Service, ServiceError};
use crate::gate::Deployment;
use std::sync::Arc;

use crate::live::buckets::query_time;
use crate::live::cluster::DigestSnapshot;
use crate::live::prometheus::escape;
use crate::live::samples::SampleSnapshot;
use tracelens_core::analysis::portable::{PortableError, Syms};
use tracelens_core::judge::JudgeConfig;
use tracelens_core::judge::changes::{
    BaselineRule, ChangeReport, ChangeStatus, History, Range, baseline_for, scope_of,
};
use tracelens_core::judge::verdict::Group;
use tracelens_core::model::time::parse_duration;
use tracelens_core::model::{Dictionary, Trace};

/// Default width of the window.
const DEFAULT_WINDOW_NS: u64 = 15 * 60 * 1_000_000_000;

/// Changes with series of their own in `/metrics` (the highest ranked);
/// the rest are counted in `tracelens_changes_folded`.
pub const MAX_CHANGE_SERIES: usize = 100;

/// What the background change detection found last.
#[derive(Default)]
pub struct Detected {
    /// Runs done.
    runs: u64,
    /// Runs that failed (the last answer stays).
    failures: u64,
    /// Clock time of the last answer, unix ns, and the answer.
    last: Option<(u64, ChangesAnswer)>,
}

/// A change-detection request (query parameters).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChangesRequest {
    /// Width of the window (default 15m).
    pub window: Option<String>,
    /// End of the window (the API's time forms: RFC 3339, unix time, `now`
    /// or an age such as `15m`; default now).
    pub until: Option<String>,
    /// `auto` (default: a day earlier when kept, else the hour before),
    /// `previous-hour` or `previous-day`.
    pub baseline: Option<String>,
    /// An explicit baseline's start (with `baseline_until`).
    pub baseline_since: Option<String>,
    /// An explicit baseline's end.
    pub baseline_until: Option<String>,
}

/// The window and baseline a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parsed {
    window: Range,
    baseline: Baseline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Baseline {
    Rule(BaselineRule),
    Given(Range),
}

/// What change detection reads, taken under the live lock.
enum Source {
    /// A consumer group's digests.
    Group(DigestSnapshot),
    /// The per-minute samples of the window's and the baseline's minutes,
    /// with the baseline they were taken for.
    Samples(SampleSnapshot, Option<Range>),
    /// The recently completed traces.
    Recent(Vec<Arc<Trace>>, Dictionary),
}

impl Parsed {
    /// The baseline: the one given, or the rule's over data starting at
    /// `first` (unix ns).
    fn baseline_given(&self, first: Option<u64>) -> Option<Range> {
        match self.baseline {
            Baseline::Given(range) => Some(range),
            Baseline::Rule(rule) => first.and_then(|first| baseline_for(self.window, rule, first)),
        }
    }
}

impl ChangesRequest {
    fn parse(&self, now_ns: u64) -> Result<Parsed, RequestError> {
        let bad = |m: String| RequestError::Changes(m);
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|v| !v.is_empty())
        }
        let width = match given(&self.window) {
            None => DEFAULT_WINDOW_NS,
            Some(w) => parse_duration(w)
                .filter(|&ns| ns >= 1_000_000_000)
                .ok_or_else(|| bad(format!("window {w:?} is not a duration of at least 1s (such as 5m or 1h)")))?,
        };
        let time = |name: &str, v: &str| {
            query_time(v, now_ns / 1_000_000).map(|ms| ms * 1_000_000).ok_or_else(|| {
                bad(format!(
                    "{name} {v:?} is not a time: give RFC 3339, a unix time (seconds or milliseconds), now, or an age such as 15m or now-2h"
                ))
            })
        };
        let end = match given(&self.until) {
            None => now_ns,
            Some(t) => time("until", t)?,
        };
        let start = end.checked_sub(width).ok_or_else(|| bad("the window starts before 1970".to_string()))?;
        let baseline = match (given(&self.baseline), given(&self.baseline_since), given(&self.baseline_until)) {
            (None, Some(s), Some(u)) => {
                let (s, u) = (time("baseline_since", s)?, time("baseline_until", u)?);
                if s >= u || u > start {
                    return Err(bad(
                        "baseline_since must come before baseline_until, and the baseline must end by the window's start"
                            .to_string(),
                    ));
                }
                Baseline::Given(Range::new(s, u))
            }
            (_, Some(_), None) | (_, None, Some(_)) => {
                return Err(bad("baseline_since and baseline_until go together".to_string()));
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(bad(
                    "baseline names a rule; baseline_since and baseline_until a range: not both".to_string()
                ));
            }
            (None | Some("auto"), None, None) => Baseline::Rule(BaselineRule::Default),
            (Some("previous-hour"), None, None) => Baseline::Rule(BaselineRule::PreviousHour),
            (Some("previous-day"), None, None) => Baseline::Rule(BaselineRule::PreviousDay),
            (Some(other), None, None) => {
                return Err(bad(format!("baseline {other:?} is not auto, previous-hour or previous-day")));
            }
        };
        Ok(Parsed { window: Range::new(start, end), baseline })
    }
}

/// The answer: the window's changes, the deployment markers in it, and what
/// the judged traces cover.
#[derive(Clone, Debug, Serialize)]
pub struct ChangesAnswer {
    /// The changes.
    #[serde(flatten)]
    pub report: ChangeReport,
    /// Deployment markers recorded inside the window.
    pub deployments: Vec<Deployment>,
    /// The traces judged from: how many, and the first and last start.
    pub kept: Kept,
    /// While stored spans are being restored: the answer covers only part
    /// of what was received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restoring: Option<String>,
}

/// What the kept traces cover.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Kept {
    /// Traces (or their digests) judged from.
    pub traces: u64,
    /// With per-minute samples: the traces that started in the minutes
    /// the sample was drawn from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled_from: Option<u64>,
    /// Earliest start, unix ns (absent: none kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_unix_nano: Option<u64>,
    /// Latest start, unix ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_unix_nano: Option<u64>,
}

impl Service {
    /// What changed in the window `request` names against its baseline,
    /// over the traces the judge keeps.
    pub async fn changes(&self, request: &ChangesRequest) -> Result<ChangesAnswer, ServiceError> {
        let parsed = request.parse(self.clock.now_ns())?;
        // Taken under the lock, judged after it off the async workers.
        let source = {
            let live = self.live.lock().expect("live lock");
            if let Some(digests) = live.digest_snapshot() {
                Source::Group(digests)
            } else if let Some(samples) = live.samples() {
                // Only the minutes the window and its baseline cover.
                let first = samples.first_ms().map(|ms| ms * 1_000_000);
                let baseline = parsed.baseline_given(first);
                let mut ranges = vec![(parsed.window.start_unix_nano, parsed.window.end_unix_nano)];
                ranges.extend(baseline.map(|b| (b.start_unix_nano, b.end_unix_nano)));
                Source::Samples(samples.snapshot(&ranges), baseline)
            } else {
                Source::Recent(live.recent_traces(), live.dict.clone())
            }
        };
        let (report, kept) = tokio::task::spawn_blocking(move || -> Result<(ChangeReport, Kept), ServiceError> {
            let (history, dict, count, seen, fixed) = match source {
                Source::Group(digests) => {
                    let (history, dict, count) = digests.history().map_err(ServiceError::Partial)?;
                    (history, dict, count, None, None)
                }
                Source::Samples(snapshot, baseline) => {
                    let mut dict = Dictionary::default();
                    let mut history = History::new();
                    for (names, digests) in snapshot.decoded() {
                        let syms = Syms::intern(names, &mut dict);
                        for digest in digests {
                            let digest = digest.map_err(|e| {
                                ServiceError::Partial(PortableError::invalid("sampled digest", e.to_string()))
                            })?;
                            history.add_portable(&dict, &syms, &digest).map_err(ServiceError::Partial)?;
                        }
                    }
                    let count = snapshot.len() as u64;
                    (history, dict, count, Some(snapshot.seen), Some(baseline))
                }
                Source::Recent(traces, dict) => {
                    let mut history = History::new();
                    for trace in &traces {
                        history.add_trace(&dict, trace);
                    }
                    (history, dict, traces.len() as u64, None, None)
                }
            };
            let range = history.range();
            let kept = Kept {
                traces: count,
                sampled_from: seen,
                since_unix_nano: range.map(|r| r.0),
                until_unix_nano: range.map(|r| r.1),
            };
            let baseline = match fixed {
                Some(baseline) => baseline,
                None => parsed.baseline_given(range.map(|r| r.0)),
            };
            let config = JudgeConfig::default();
            let report = match baseline {
                Some(baseline) => history.changes(&dict, parsed.window, baseline, &config),
                None if seen.is_some() => ChangeReport::without_baseline(
                    parsed.window,
                    "not enough data: the traces received do not reach back to a baseline of the window's width before it"
                        .to_string(),
                ),
                None => ChangeReport::without_baseline(
                    parsed.window,
                    format!(
                        "not enough data: the {} kept {} reach back to no baseline of the window's width before it (--keep-traces sets how many are kept)",
                        count,
                        if count == 1 { "trace" } else { "traces" },
                    ),
                ),
            };
            Ok((report, kept))
        })
        .await
        .map_err(ServiceError::Task)??;
        let window = parsed.window;
        let deployments = self
            .deployments()
            .into_iter()
            .filter(|d| (window.start_unix_nano..window.end_unix_nano).contains(&d.time_unix_nano))
            .collect();
        Ok(ChangesAnswer { report, deployments, kept, restoring: self.restoring() })
    }
}

impl Service {
    /// One background run: the default window (the last 15 minutes)
    /// against its default baseline, kept for `/metrics`.
    pub async fn detect_changes(&self) {
        let at = self.clock.now_ns();
        let answer = self.changes(&ChangesRequest::default()).await;
        let mut detected = self.detected.lock().expect("detected lock");
        detected.runs += 1;
        match answer {
            Ok(answer) => detected.last = Some((at, answer)),
            Err(e) => {
                detected.failures += 1;
                eprintln!("tracelens: warning: change detection: {e}");
            }
        }
    }

    /// The `tracelens_change*` series of `/metrics`, from the last
    /// background run.
    pub(crate) fn change_metrics(&self, out: &mut String) {
        let detected = self.detected.lock().expect("detected lock");
        let _ = write!(
            out,
            "# HELP tracelens_changes_runs_total Change-detection runs over the kept traces (every --changes-interval).\n# TYPE tracelens_changes_runs_total counter\ntracelens_changes_runs_total {}\n# HELP tracelens_changes_failures_total Change-detection runs that failed (the last answer stays).\n# TYPE tracelens_changes_failures_total counter\ntracelens_changes_failures_total {}\n",
            detected.runs, detected.failures
        );
        let Some((at, answer)) = &detected.last else { return };
        let report = &answer.report;
        let _ = write!(
            out,
            "# HELP tracelens_changes_last_run_timestamp_seconds When the last run judged its window (the 15 minutes before it).\n# TYPE tracelens_changes_last_run_timestamp_seconds gauge\ntracelens_changes_last_run_timestamp_seconds {}\n# HELP tracelens_changes_status The last run's answer: 1 on the status it gave.\n# TYPE tracelens_changes_status gauge\n",
            *at as f64 / 1e9
        );
        for status in [ChangeStatus::Changed, ChangeStatus::Unchanged, ChangeStatus::NotEnoughData] {
            let _ = writeln!(
                out,
                "tracelens_changes_status{{status=\"{}\"}} {}",
                status.as_str(),
                u8::from(report.status == status)
            );
        }
        let shown = &report.changes[..report.changes.len().min(MAX_CHANGE_SERIES)];
        let _ = write!(
            out,
            "# HELP tracelens_changes_folded Changes the last run found beyond the {MAX_CHANGE_SERIES} with series of their own (the lowest ranked).\n# TYPE tracelens_changes_folded gauge\ntracelens_changes_folded {}\n",
            report.changes.len() - shown.len()
        );
        if shown.is_empty() {
            return;
        }
        let labels: Vec<String> = shown
            .iter()
            .map(|c| {
                let kind = match c.metric.group {
                    Group::Service => "service",
                    Group::Operations => "operation",
                    Group::Edges => "edge",
                };
                format!(
                    "service=\"{}\",kind=\"{kind}\",scope=\"{}\",signal=\"{}\",direction=\"{}\"",
                    escape(&c.service),
                    escape(scope_of(&c.service, &c.metric)),
                    c.metric.signal.as_str(),
                    c.direction.as_str()
                )
            })
            .collect();
        out.push_str("# HELP tracelens_change_detected A change the last run found (1), by service, scope kind (service, operation or edge), scope (the operation or callee), signal and direction.\n# TYPE tracelens_change_detected gauge\n");
        for l in &labels {
            let _ = writeln!(out, "tracelens_change_detected{{{l}}} 1");
        }
        out.push_str("# HELP tracelens_change_ratio Window over baseline of that change (median shift, p99 or error-rate ratio).\n# TYPE tracelens_change_ratio gauge\n");
        for (l, c) in labels.iter().zip(shown) {
            let _ = writeln!(out, "tracelens_change_ratio{{{l}}} {}", number(c.metric.estimate));
        }
        out.push_str("# HELP tracelens_change_path_seconds_per_second Critical-path time that change adds (or saves, below 0) per second of traffic.\n# TYPE tracelens_change_path_seconds_per_second gauge\n");
        for (l, c) in labels.iter().zip(shown) {
            let _ = writeln!(
                out,
                "tracelens_change_path_seconds_per_second{{{l}}} {}",
                c.impact.path_ns_per_second as f64 / 1e9
            );
        }
    }
}

/// A sample value: Prometheus spells infinities and NaN its own way.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000_000_000;
    const MIN: u64 = 60_000_000_000;

    fn request(pairs: &[(&str, &str)]) -> ChangesRequest {
        let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        ChangesRequest {
            window: get("window"),
            until: get("until"),
            baseline: get("baseline"),
            baseline_since: get("baseline_since"),
            baseline_until: get("baseline_until"),
        }
    }

    #[test]
    fn windows_end_now_unless_told_and_baselines_follow_the_rule_or_the_range() {
        let p = request(&[]).parse(NOW).unwrap();
        assert_eq!(p.window, Range::new(NOW - 15 * MIN, NOW));
        assert_eq!(p.baseline, Baseline::Rule(BaselineRule::Default));
        let p = request(&[("window", "5m"), ("until", "1800000000"), ("baseline", "previous-day")]).parse(NOW).unwrap();
        assert_eq!(p.window, Range::new(NOW - 5 * MIN, NOW));
        assert_eq!(p.baseline, Baseline::Rule(BaselineRule::PreviousDay));
        let p = request(&[("baseline_since", "1799990000"), ("baseline_until", "1799999000")]).parse(NOW).unwrap();
        assert_eq!(p.baseline, Baseline::Given(Range::new(1_799_990_000_000_000_000, 1_799_999_000_000_000_000)));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (pairs, expected) in [
            (vec![("window", "0s")], "window \"0s\" is not a duration of at least 1s"),
            (vec![("until", "soon")], "until \"soon\" is not a time"),
            (vec![("baseline", "last-week")], "baseline \"last-week\" is not auto, previous-hour or previous-day"),
            (vec![("baseline_since", "1799990000")], "baseline_since and baseline_until go together"),
            (vec![("baseline_since", "1799999000"), ("baseline_until", "1799990000")], "must come before"),
        ] {
            let err = request(&pairs).parse(NOW).unwrap_err().to_string();
            assert!(err.contains(expected), "{pairs:?}: {err}");
        }
    }
}
