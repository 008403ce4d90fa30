//! `tracelens generate`: synthetic traces from a seeded random model of a
//! microservice system, for tests, benchmarks and demos.
//!
//! A [`topology`] (built-in preset, random, or a TOML/YAML file) says which
//! services exist, what each operation calls, how long its own work takes
//! (log-normal, heavy-tailed) and how often it fails. A [`scenario`] may
//! deploy a new version of one service — as a canary beside the baseline, or
//! as a rollout part-way through — with an injected change. The
//! [`Generator`] turns that into traces one at a time, and the writers in
//! [`mod@write`] encode them in every format tracelens reads, streaming: generating ten
//! million spans holds one batch in memory, not the output.
//!
//! The same seed and settings give byte-identical output.
//!
//! * [`topology`] — the system model: files, presets, random topologies.
//! * [`scenario`] — deploys of a new version, with one injected change.
//! * [`trace`] — one trace built from the model.
//! * [`rng`] — the seeded generator and its distributions.
//! * [`write`](mod@write) — one writer per format.

pub mod rng;
pub mod scenario;
pub mod topology;
pub mod trace;
pub mod write;

use std::io;

pub use scenario::{Change, Deploy, Scenario};
pub use topology::{Catalog, TopologyError, TopologyFile};
pub use trace::GenSpan;

use rng::Rng;
use topology::Model;

/// Settings of one generation run.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Start of the first trace, unix ns.
    pub start_ns: u64,
    /// Traces started per second of simulated time.
    pub traces_per_second: f64,
    /// Maximum clock offset of a host, ns (0: clocks agree).
    pub clock_skew_ns: u64,
    /// `deployment.environment.name` of every resource.
    pub environment: String,
    /// A deploy to simulate, if any.
    pub deploy: Option<Deploy>,
    /// Every span carries the attributes real instrumentation writes and
    /// its instrumentation's scope ([`Catalog::enrich`]).
    pub rich_attributes: bool,
}

/// Spans an interleaving writer holds to send them in end order
/// ([`write::writer_interleaved`]) for the rich preset: about 30 traces'.
pub const RICH_INTERLEAVE_WINDOW: usize = 1000;

/// How much to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Exactly this many traces.
    Traces(u64),
    /// Whole traces until at least this many spans.
    Spans(u64),
}

/// Produces traces from a checked model.
pub struct Generator {
    catalog: Catalog,
    baseline: Model,
    new_version: Option<Model>,
    scenario: Scenario,
    rng: Rng,
    start_ns: u64,
    interval_ns: f64,
    traces: u64,
}

impl Generator {
    /// Checks the topology and the deploy and prepares a generator.
    pub fn new(topology: &TopologyFile, config: &GeneratorConfig) -> Result<Generator, TopologyError> {
        if !(config.traces_per_second > 0.0 && config.traces_per_second.is_finite()) {
            return Err(TopologyError::Invalid("the trace rate must be a positive number".to_string()));
        }
        let mut catalog = Catalog::default();
        let mut baseline = topology::build_model(topology, &mut catalog, &config.environment)?;
        let (new_version, scenario) = match &config.deploy {
            None => (None, Scenario::Steady),
            Some(deploy) => {
                match deploy.scenario {
                    Scenario::Canary { weight } if !(weight > 0.0 && weight < 1.0) => {
                        return Err(TopologyError::Invalid(format!(
                            "the canary weight must be in (0, 1), got {weight}"
                        )));
                    }
                    Scenario::Rollout { at } if !(at > 0.0 && at < 1.0) => {
                        return Err(TopologyError::Invalid(format!("the rollout point must be in (0, 1), got {at}")));
                    }
                    Scenario::Steady if deploy.change != Change::None => {
                        return Err(TopologyError::Invalid(
                            "a change needs a deploy scenario (canary or rollout) to happen in".to_string(),
                        ));
                    }
                    _ => {}
                }
                let model = scenario::new_version_model(&mut baseline, &mut catalog, deploy, &config.environment)?;
                (Some(model), deploy.scenario)
            }
        };
        if config.rich_attributes {
            catalog.enrich();
        }
        if config.clock_skew_ns > 0 {
            let mut skew_rng = Rng::new(config.seed ^ 0x736b_6577);
            let max = config.clock_skew_ns as i64;
            for r in &mut catalog.resources {
                let us = skew_rng.range(0, 2 * (max as u64 / 1000)) as i64 - max / 1000;
                r.skew_ns = us * 1000;
            }
        }
        Ok(Generator {
            catalog,
            baseline,
            new_version,
            scenario,
            rng: Rng::new(config.seed),
            start_ns: config.start_ns / 1000 * 1000,
            interval_ns: 1e9 / config.traces_per_second,
            traces: 0,
        })
    }

    /// Names, attributes and resources the generated spans refer to.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Appends the next trace to `out` (cleared first). `progress` is the
    /// fraction of the run done so far, which decides a rollout.
    pub fn next_trace(&mut self, progress: f64, out: &mut Vec<GenSpan>) {
        out.clear();
        let use_new = match (self.scenario, &self.new_version) {
            (_, None) | (Scenario::Steady, _) => false,
            (Scenario::Canary { weight }, Some(_)) => self.rng.chance(weight),
            (Scenario::Rollout { at }, Some(_)) => progress >= at,
        };
        let model = if use_new { self.new_version.as_ref().expect("checked") } else { &self.baseline };
        let jitter = self.rng.unit() * self.interval_ns;
        let offset = ((self.traces as f64 * self.interval_ns + jitter) as u64) / 1000 * 1000;
        trace::build_trace(model, &self.catalog, &mut self.rng, self.start_ns + offset, out);
        self.traces += 1;
    }
}

/// What a run produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Produced {
    /// Traces written.
    pub traces: u64,
    /// Spans written.
    pub spans: u64,
}

/// Generates `amount` in `format` into memory (for tests and benchmarks);
/// with [`GeneratorConfig::rich_attributes`], OTLP requests hold
/// interleaved traces' spans in end order, as the rich preset writes them.
pub fn to_vec(
    topology: &TopologyFile,
    config: &GeneratorConfig,
    amount: Amount,
    format: write::OutputFormat,
) -> Result<(Vec<u8>, Produced), TopologyError> {
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut generator = Generator::new(topology, config)?;
    let shared = Shared::default();
    let output = write::Output::new(Box::new(shared.clone()), write::OutputCompression::None)
        .expect("no compression cannot fail to start");
    let window = if config.rich_attributes { RICH_INTERLEAVE_WINDOW } else { 0 };
    let mut writer = write::writer_interleaved(format, output, 100, window);
    let produced = run(&mut generator, amount, writer.as_mut()).expect("writing to memory cannot fail");
    drop(writer);
    let bytes = std::mem::take(&mut *shared.0.borrow_mut());
    Ok((bytes, produced))
}

impl Default for GeneratorConfig {
    /// Seed 1, the shop's defaults: 2026-11-01T00:00:00Z, 100 traces/s, no skew, production.
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            start_ns: 1_793_491_200_000_000_000,
            traces_per_second: 100.0,
            clock_skew_ns: 0,
            environment: "production".to_string(),
            deploy: None,
            rich_attributes: false,
        }
    }
}

/// Generates `amount` and writes it with `writer`.
pub fn run(generator: &mut Generator, amount: Amount, writer: &mut dyn write::TraceWriter) -> io::Result<Produced> {
    let mut done = Produced::default();
    let mut spans = Vec::with_capacity(256);
    loop {
        let (progress, finished) = match amount {
            Amount::Traces(n) => (done.traces as f64 / n.max(1) as f64, done.traces >= n),
            Amount::Spans(n) => (done.spans as f64 / n.max(1) as f64, done.spans >= n),
        };
        if finished {
            break;
        }
        generator.next_trace(progress, &mut spans);
        writer.write_trace(&generator.catalog, &spans)?;
        done.traces += 1;
        done.spans += spans.len() as u64;
    }
    writer.finish(&generator.catalog)?;
    Ok(done)
}
