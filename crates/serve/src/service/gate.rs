//! Verdicts for deploy gates over the recently completed traces, with
//! planned looks (each look tested at α/K, the last one's verdict frozen),
//! and the deployment markers that give a verdict its default deploy time.

use super::{RequestError, Service, ServiceError};
use crate::gate::{Deployment, DeploymentRequest, JudgeRequest, VerdictRequest};
use tracelens_core::judge::verdict::Looks;
use tracelens_core::judge::{Judge, JudgeConfig, Presence, Verdict};

impl Service {
    /// Parses a gate's request against this receiver's clock.
    pub fn parse_verdict_request(&self, request: &VerdictRequest) -> Result<JudgeRequest, ServiceError> {
        Ok(request.parse(self.clock.now_ns())?)
    }

    /// The verdict a gate asks for (see [`Service::judge`]).
    pub async fn verdict(&self, request: &VerdictRequest) -> Result<Verdict, ServiceError> {
        let request = self.parse_verdict_request(request)?;
        self.judge(request).await
    }

    /// Judges `request` over the recent traces. With an analysis id and
    /// planned looks, each look is tested at α/K and the last one's verdict
    /// is frozen (and answered from then on). While stored spans are being
    /// restored the verdict is withheld, and no look is taken.
    pub async fn judge(&self, request: JudgeRequest) -> Result<Verdict, ServiceError> {
        let cohorts = request.cohorts(&self.deployments.lock().expect("deployments lock"))?;
        let mut config = JudgeConfig { canary_weight: request.canary_weight, ..JudgeConfig::default() };
        let mut this_look = None;
        if let Some((id, planned)) = &request.looks {
            let mut book = self.looks.lock().expect("looks lock");
            if let Some(frozen) = book.frozen(id) {
                return Ok(frozen);
            }
            if self.restoring().is_none() {
                this_look = Some(book.next(id));
            }
            config = config.for_looks(*planned);
        }
        let complete = self.restoring().is_none();
        let mut verdict = self.judge_recent(request.service, cohorts, config, complete).await?;
        if let Some(restoring) = self.restoring() {
            // Traces from before the start are still coming in: no verdict,
            // and no look taken, until they are.
            verdict.withhold(&restoring);
            return Ok(verdict);
        }
        if let (Some((id, planned)), Some(look)) = (request.looks, this_look) {
            let frozen = look >= planned;
            verdict.looks = Some(Looks { analysis_id: id.clone(), look, planned, frozen });
            if frozen {
                self.looks.lock().expect("looks lock").freeze(&id, verdict.clone());
            }
        }
        Ok(verdict)
    }

    /// The judge's verdict over the recently completed traces (`--keep-traces`
    /// of them; in a consumer group, the digests of the group's): traces and
    /// names are taken under the lock, judged after it off the async workers. A service or versions never seen is a mistake
    /// in the request unless the data is incomplete (`complete` false).
    async fn judge_recent(
        &self,
        service: String,
        cohorts: tracelens_core::judge::Cohorts,
        config: JudgeConfig,
        complete: bool,
    ) -> Result<Verdict, ServiceError> {
        let digests = self.live.lock().expect("live lock").digest_snapshot();
        if let Some(digests) = digests {
            // A consumer group's receiver: the digests its partials carried.
            return tokio::task::spawn_blocking(move || {
                let verdict = digests.judge(&service, cohorts, &config, complete).map_err(ServiceError::Partial)?;
                verdict.map_err(|e| RequestError::from(e).into())
            })
            .await
            .map_err(ServiceError::Task)?;
        }
        let (traces, dict) = {
            let live = self.live.lock().expect("live lock");
            (live.recent_traces(), live.dict.clone())
        };
        tokio::task::spawn_blocking(move || {
            let mut judge = Judge::new(&service, cohorts);
            for trace in &traces {
                judge.add_trace(&dict, trace);
            }
            if complete {
                judge.check(Presence::Live).map_err(RequestError::from)?;
            }
            Ok(judge.verdict(&config))
        })
        .await
        .map_err(ServiceError::Task)?
    }

    /// Records a deployment marker (persisted), expiring markers older than
    /// the data they would judge (each service's latest stays). Blocking:
    /// it writes the markers file.
    pub fn record_deployment(&self, request: DeploymentRequest) -> Result<Deployment, ServiceError> {
        let deployment = request.validate(self.clock.now_ns())?;
        let mut markers = self.deployments.lock().expect("deployments lock");
        // Expired ones first: they make room under the cap.
        if let Err(e) = markers.expire(self.marker_horizon()) {
            eprintln!("tracelens: warning: expiring deployment markers: {e}");
        }
        markers.record(deployment.clone())?;
        if let Some(group) = &self.group {
            // Every member of the group judges by it.
            group.outbox.lock().expect("outbox lock").push(deployment.clone());
        }
        Ok(deployment)
    }

    /// Records a marker another member of the group published (once:
    /// the member that recorded it has it already).
    pub fn apply_group_deployment(&self, deployment: Deployment) -> Result<(), ServiceError> {
        let mut markers = self.deployments.lock().expect("deployments lock");
        if !markers.all().contains(&deployment) {
            markers.record(deployment)?;
        }
        Ok(())
    }

    /// Every deployment marker kept.
    pub fn deployments(&self) -> Vec<Deployment> {
        self.deployments.lock().expect("deployments lock").all().to_vec()
    }
}
