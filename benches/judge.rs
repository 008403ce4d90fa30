//! Group: `judge` — the regression judge's speed (digesting traces, then
//! the verdict with its bootstrap) and its statistics as deploy gates
//! experience them: the false-failure rate over 200 no-change (A/A) runs,
//! and the detection power for a ~20% median shift, a tail-only p99 shift,
//! an error-rate rise and a slower downstream dependency, each over 40
//! seeds of `tracelens generate`'s shop.
//!
//! Run: `cargo bench --bench judge` (not a criterion bench: counts and
//! timings printed once).

mod common;

use std::time::Instant;

use tracelens::generate::scenario::{Change, Deploy, Scenario};
use tracelens::generate::write::OutputFormat;
use tracelens::generate::{self, Amount, GeneratorConfig, TopologyFile};
use tracelens::judge::verdict::Outcome;
use tracelens::judge::{Cohorts, Judge, JudgeConfig, Verdict};
use tracelens::model::{Dictionary, Trace};

fn traces(config: &GeneratorConfig, n: u64) -> (Dictionary, Vec<Trace>) {
    let (bytes, _) =
        generate::to_vec(&TopologyFile::shop(), config, Amount::Traces(n), OutputFormat::OtlpProtobufStream).unwrap();
    common::traces(&bytes)
}

fn deploy(scenario: Scenario, change: Change, target: &str, magnitude: f64, version: &str) -> Deploy {
    Deploy {
        scenario,
        change,
        target: target.to_string(),
        magnitude,
        new_version: version.to_string(),
        new_service: String::new(),
    }
}

fn verdict(dict: &Dictionary, traces: &[Trace], service: &str, cohorts: Cohorts, config: &JudgeConfig) -> Verdict {
    let mut judge = Judge::new(service, cohorts);
    for t in traces {
        judge.add_trace(dict, t);
    }
    judge.verdict(config)
}

fn versions(b: &str, c: &str) -> Cohorts {
    Cohorts::Versions { baseline: b.to_string(), candidate: c.to_string() }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    // Speed: one 20,000-trace canary of checkout.
    let config = GeneratorConfig {
        deploy: Some(deploy(Scenario::Canary { weight: 0.5 }, Change::Latency, "checkout", 2.8, "1.10.0")),
        ..GeneratorConfig::default()
    };
    let (dict, all) = traces(&config, 20_000);
    let spans: usize = all.iter().map(|t| t.spans.len()).sum();
    let t0 = Instant::now();
    let mut judge = Judge::new("checkout", versions("1.9.0", "1.10.0"));
    for t in &all {
        judge.add_trace(&dict, t);
    }
    let digest = t0.elapsed();
    let t1 = Instant::now();
    let v = judge.verdict(&JudgeConfig::default());
    let judged = t1.elapsed();
    println!(
        "judge/speed: {} traces ({spans} spans) digested in {:.1} ms ({:.0} traces/s; {:?} kept), verdict ({} metrics, 2,000 bootstrap rounds each where tested) in {:.1} ms: {}",
        all.len(),
        digest.as_secs_f64() * 1e3,
        all.len() as f64 / digest.as_secs_f64(),
        judge.traces(),
        v.metrics.len(),
        judged.as_secs_f64() * 1e3,
        v.verdict
    );

    // A/A: frontend 2.4.1 beside an unchanged 2.5.0, 2,400 traces a run.
    let mut counts = [0u32; 3];
    for seed in 1..=200u64 {
        let config = GeneratorConfig {
            seed,
            deploy: Some(deploy(Scenario::Canary { weight: 0.5 }, Change::None, "frontend", 0.0, "2.5.0")),
            ..GeneratorConfig::default()
        };
        let (dict, all) = traces(&config, 2_400);
        let cfg = JudgeConfig { canary_weight: Some(0.5), ..JudgeConfig::default() };
        let v = verdict(&dict, &all, "frontend", versions("2.4.1", "2.5.0"), &cfg);
        counts[match v.verdict {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Inconclusive => 2,
        }] += 1;
    }
    println!(
        "judge/aa: 200 no-change runs (frontend, 2,400 traces, half on each version): {} pass, {} fail, {} inconclusive",
        counts[0], counts[1], counts[2]
    );

    // Power: each regression over 40 seeds.
    let scenarios: [(&str, Deploy, &str, Cohorts, u64); 4] = [
        (
            "median +20% (checkout own work x2.8)",
            deploy(Scenario::Canary { weight: 0.5 }, Change::Latency, "checkout", 2.8, "1.10.0"),
            "checkout",
            versions("1.9.0", "1.10.0"),
            20_000,
        ),
        (
            "tail only (3% of checkout requests ~8x its old p99)",
            deploy(Scenario::Canary { weight: 0.5 }, Change::Tail, "checkout", 8.0, "1.10.0"),
            "checkout",
            versions("1.9.0", "1.10.0"),
            30_000,
        ),
        (
            "error rate +5 points",
            deploy(Scenario::Canary { weight: 0.5 }, Change::Errors, "checkout", 0.05, "1.10.0"),
            "checkout",
            versions("1.9.0", "1.10.0"),
            20_000,
        ),
        (
            "downstream payments x2 (rollout, judged on checkout)",
            deploy(Scenario::Rollout { at: 0.5 }, Change::Latency, "payments", 2.0, "0.8.0"),
            "checkout",
            // 20,000 traces at 100/s from 2026-11-01T00:00:00Z: the switch is at 100 s.
            Cohorts::DeployTime { deploy_ns: 1_793_491_300_000_000_000, warmup_ns: 5_000_000_000 },
            20_000,
        ),
    ];
    for (name, d, service, cohorts, n) in scenarios {
        let (mut fail, mut pass, mut blamed) = (0, 0, 0);
        let target = d.target.clone();
        for seed in 1..=40u64 {
            let config = GeneratorConfig { seed, deploy: Some(d.clone()), ..GeneratorConfig::default() };
            let (dict, all) = traces(&config, n);
            let v = verdict(&dict, &all, service, cohorts.clone(), &JudgeConfig::default());
            fail += u32::from(v.verdict == Outcome::Fail);
            pass += u32::from(v.verdict == Outcome::Pass);
            blamed += u32::from(v.attribution.first().is_some_and(|a| a.service == target));
        }
        println!(
            "judge/power: {name}: fail {fail}/40 (pass {pass}, inconclusive {}), first in attribution is {target} {blamed}/40",
            40 - fail - pass
        );
    }
}
