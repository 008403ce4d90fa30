//! The regression judge: did a new version (or a deploy) make a service
//! worse, and should it be rolled back? Traces are split into a baseline
//! and a candidate arm ([`sample`]), the service's latency median, tail and
//! error rate are tested overall, per operation and per downstream edge
//! ([`stats`]), and the results become a Kayenta-style verdict with the
//! operations that explain the change in critical-path time ([`verdict`]).
//! [`diff`] runs the same tests over every service of two inputs.
//!
//! Pure functions over traces and numbers: no I/O, no clocks (the CLI and
//! the receiver supply both).

pub mod diff;
pub mod sample;
pub mod stats;
pub mod verdict;

pub use sample::{Arm, Cohorts, Digest, Digester, Scope};
pub use verdict::{JudgeConfig, Verdict, judge};

use crate::model::{Dictionary, Trace};

/// Collects digests of one service's traces, then judges them.
pub struct Judge {
    digester: Digester,
    digests: Vec<Digest>,
}

impl Judge {
    /// A judge of `service` with traces split by `cohorts`.
    pub fn new(service: &str, cohorts: Cohorts) -> Judge {
        Judge { digester: Digester::new(service, cohorts), digests: Vec::new() }
    }

    /// Adds one trace (ignored unless it is one of the service's, in an arm).
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        if let Some(d) = self.digester.digest(dict, trace) {
            self.digests.push(d);
        }
    }

    /// Traces kept per arm: (baseline, candidate).
    pub fn traces(&self) -> (u64, u64) {
        let candidate = self.digests.iter().filter(|d| d.arm == Arm::Candidate).count() as u64;
        (self.digests.len() as u64 - candidate, candidate)
    }

    /// The verdict.
    pub fn verdict(&self, config: &JudgeConfig) -> Verdict {
        judge(&self.digester, &self.digests, config)
    }
}
