//! `tracelens merge`: combines partials — what `analyze --partial` wrote,
//! or what receivers of a Kafka group published (each counted or not by
//! the rules every receiver applies: see `partial::Ledger`) — into one report, exactly as one
//! `analyze` over all their inputs would have printed it (when every
//! trace lies within one of them). A merged partial can be written again,
//! so merges nest.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use tracelens::analysis::portable::{Names, PortableError, Syms};
use tracelens::analysis::{Summary, TraceAnalyses};
use tracelens::model::{Dictionary, Warnings};
use tracelens::partial::{self, pb};

use super::analyze::{AnalyzeReport, InputLine, ReportArgs, print_overflow, print_report};

/// Flags of `tracelens merge`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens analyze --partial monday.tlp dumps/monday/ > /dev/null\n  tracelens analyze --partial tuesday.tlp dumps/tuesday/ > /dev/null\n  tracelens merge monday.tlp tuesday.tlp\n  tracelens merge --format json --partial week.tlp *.tlp"
)]
pub struct MergeArgs {
    /// Partials files (written by `analyze --partial` or `merge --partial`).
    #[arg(required = true, value_name = "PARTIAL")]
    partials: Vec<PathBuf>,
    #[command(flatten)]
    report: ReportArgs,
    /// Also write the merged result to FILE as one partial.
    #[arg(long, value_name = "FILE")]
    partial: Option<PathBuf>,
}

/// A partial of offline analyses: one bucket without time, the summary and
/// the warnings (the graph unfinished, so producers and consumers in other
/// partials still pair).
pub fn partial(
    dict: &Dictionary,
    analyses: &TraceAnalyses,
    summary: &Summary,
    spans_read: u64,
    warnings: &Warnings,
) -> pb::Partial {
    let mut names = Names::default();
    let analyses = Some(analyses.to_portable(dict, &mut names));
    let bucket = pb::Bucket { start_ms: 0, width_ms: 0, analyses, ..Default::default() };
    let summary = summary.to_portable(dict, &mut names);
    pb::Partial {
        format: partial::FORMAT_VERSION,
        strings: names.into_strings(),
        buckets: vec![bucket],
        summary: Some(summary),
        spans_read,
        warnings: partial::warnings_out(warnings),
        source: None,
        deployments: Vec::new(),
    }
}

/// Writes a partials file.
pub fn write_partials(path: &Path, partials: &[pb::Partial]) -> anyhow::Result<()> {
    std::fs::write(path, partial::encode_file(partials)).with_context(|| format!("writing {}", path.display()))
}

/// Everything merged so far.
struct Merged {
    /// Which partials of receivers count (claims, stale ones).
    ledger: partial::Ledger,
    dict: Dictionary,
    analyses: TraceAnalyses,
    summary: Summary,
    warnings: Warnings,
}

impl Merged {
    /// Adds one partial; returns its spans read.
    fn add(&mut self, p: &pb::Partial) -> Result<u64, PortableError> {
        if self.ledger.admit(p.source.as_ref())? != partial::Admission::Count {
            return Ok(0);
        }
        let syms = Syms::intern(&p.strings, &mut self.dict);
        let empty = TraceAnalyses::new(&self.dict, self.analyses.metrics.max_operations());
        for (i, bucket) in p.buckets.iter().enumerate() {
            let Some(message) = &bucket.analyses else { continue };
            let analyses = TraceAnalyses::from_portable(message, &syms, &self.dict, &empty)
                .map_err(|e| PortableError::invalid(format!("bucket {i}"), e.to_string()))?;
            self.analyses.merge(&analyses);
        }
        if let Some(summary) = &p.summary {
            self.summary.merge(&Summary::from_portable(summary, &syms)?);
        }
        partial::warnings_in(&p.warnings, &mut self.warnings)?;
        Ok(p.spans_read)
    }
}

pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let max_operations = args.report.max_operations()?;
    let dict = Dictionary::default();
    let mut merged = Merged {
        ledger: partial::Ledger::default(),
        analyses: TraceAnalyses::new(&dict, max_operations),
        dict,
        summary: Summary::default(),
        warnings: Warnings::default(),
    };
    let mut inputs = Vec::new();
    let mut spans_read = 0;
    for path in &args.partials {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let partials = partial::decode_file(&bytes).with_context(|| format!("{}", path.display()))?;
        let mut spans = 0;
        for (i, p) in partials.iter().enumerate() {
            spans += merged.add(p).with_context(|| format!("{}: partial {}", path.display(), i + 1))?;
        }
        spans_read += spans;
        let format = "tracelens-partial".to_string();
        inputs.push(InputLine { path: path.display().to_string(), format, compression: Vec::new(), spans });
    }
    if let Some(path) = &args.partial {
        let Merged { dict, analyses, summary, warnings, .. } = &merged;
        write_partials(path, &[partial(dict, analyses, summary, spans_read, warnings)])?;
    }
    merged.analyses.finish();
    let Merged { dict, analyses, summary, warnings, .. } = &merged;
    let out = AnalyzeReport::new(inputs, Vec::new(), spans_read, summary, warnings, dict, analyses);
    print_report(&out, args.report.format, args.report.top)?;
    print_overflow(dict, analyses, max_operations);
    Ok(())
}
