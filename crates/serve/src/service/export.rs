//! OTLP export: a request is admitted (rate limit, memory budget, requests
//! in flight),
//! converted with partial success, appended to the log — and only once
//! the log has it durably — analysed live and acknowledged.

use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;

use super::{Service, ServiceError};
use crate::ingest::{Accepted, BodyEncoding, IdRule, accept_bytes};

/// A token bucket: `rate` requests per second, bursts up to one second's worth.
pub struct RateLimit {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// A bucket full with one second's worth (at least one request).
    pub fn new(rate: f64) -> RateLimit {
        RateLimit { rate, state: Mutex::new((rate.max(1.0), Instant::now())) }
    }

    /// Takes a token if there is one.
    pub fn allow(&self) -> bool {
        let mut state = self.state.lock().expect("rate lock");
        let now = Instant::now();
        let burst = self.rate.max(1.0);
        state.0 = (state.0 + now.duration_since(state.1).as_secs_f64() * self.rate).min(burst);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Service {
    /// Takes one OTLP export request, `body` as it came (decompressed):
    /// returns what to acknowledge (the spans rejected by partial success,
    /// and why) once the request is durable in the log.
    pub async fn export(&self, body: Bytes, encoding: BodyEncoding) -> Result<Accepted, ServiceError> {
        let limit = self.limits.max_request_bytes;
        if body.len() > limit {
            return Err(ServiceError::TooLarge { limit });
        }
        let refuse = |e: ServiceError| {
            self.live.lock().expect("live lock").counters.requests_refused += 1;
            Err(e)
        };
        if self.rate_limit.as_ref().is_some_and(|r| !r.allow()) {
            return refuse(ServiceError::RateLimited);
        }
        if let Some(budget) = self.memory.as_ref().filter(|b| b.refuses()) {
            return refuse(ServiceError::OverMemory { resident: budget.resident(), limit: budget.limit() });
        }
        let Ok(_permit) = self.in_flight.try_acquire() else { return refuse(ServiceError::Overloaded) };
        // From the log to live analysis without a checkpoint in between.
        // Taken before the request is announced to the log: the sync thread
        // waits for announced requests, and one waiting here for a
        // checkpoint would hold syncs up.
        let _gate = self.checkpoint_gate.read().await;
        let coming = self.log.coming();
        let mut accepted = {
            let mut live = self.live.lock().expect("live lock");
            let (dict, warnings) = live.convert_parts();
            match accept_bytes(&body, encoding, IdRule::Exact, dict, warnings) {
                Ok(a) => a,
                Err(e) => {
                    live.counters.requests_refused += 1;
                    return Err(e.into());
                }
            }
        };
        if accepted.spans.is_empty() {
            drop(coming); // nothing to log
        } else {
            // A log record: the body's encoding tag, then the body as it came.
            let tag = [encoding.wal_tag()];
            self.log.append(&[&tag, &body], coming).await.map_err(ServiceError::Log)?;
        }
        let mut live = self.live.lock().expect("live lock");
        live.counters.spans_rejected += accepted.rejected;
        let spans = std::mem::take(&mut accepted.spans);
        live.ingest(spans, self.clock.now_ms());
        Ok(accepted)
    }
}
