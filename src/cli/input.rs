//! Flags every offline command shares: inputs, strictness and the assembler
//! window, validated into a pipeline run with a progress bar.

use std::path::PathBuf;

use clap::Args;

use tracelens::assemble::AssemblerConfig;
use tracelens::model::{Dictionary, Trace};
use tracelens::pipeline::{self, PipelineConfig, RunReport};
use tracelens::read::{Encoding, Input, expand_inputs};

use super::{UsageError, progress};

/// Input flags shared by `analyze`, `graph`, ….
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Trace dumps: files, directories (every file inside), or - for standard input.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Fail on the first malformed record of a JSON-lines or length-prefixed stream instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Close a trace once this many spans of other traces have been read since its last span
    /// (bounds memory on huge dumps; later spans of a closed trace are counted as split_trace).
    #[arg(long, value_name = "SPANS", default_value_t = AssemblerConfig::default().idle_spans)]
    trace_window: u64,
}

/// Validated inputs and pipeline settings.
pub struct Inputs {
    /// The inputs as given (files, directories, -).
    given: Vec<PathBuf>,
    inputs: Vec<Input>,
    config: PipelineConfig,
}

impl InputArgs {
    /// Checks the flags and expands directories.
    pub fn validate(&self) -> anyhow::Result<Inputs> {
        if self.trace_window == 0 {
            return Err(UsageError("--trace-window must be at least 1".to_string()).into());
        }
        inputs_with(&self.inputs, self.strict, self.trace_window)
    }
}

/// Inputs from paths with the default assembler window.
pub fn inputs_for(paths: &[PathBuf], strict: bool) -> anyhow::Result<Inputs> {
    inputs_with(paths, strict, AssemblerConfig::default().idle_spans)
}

fn inputs_with(paths: &[PathBuf], strict: bool, trace_window: u64) -> anyhow::Result<Inputs> {
    let inputs = expand_inputs(paths)?;
    if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
        return Err(UsageError("standard input (-) can be named only once".to_string()).into());
    }
    Ok(Inputs {
        given: paths.to_vec(),
        inputs,
        config: PipelineConfig {
            read: tracelens::table::read_options(strict),
            assemble: AssemblerConfig { idle_spans: trace_window },
        },
    })
}

impl Inputs {
    /// Reads every input, passing each assembled trace to `on_trace`, with a
    /// progress bar on a terminal; then prints skipped files and records.
    pub fn run(&self, on_trace: &mut dyn FnMut(&Dictionary, Trace)) -> anyhow::Result<RunReport> {
        let bar = progress::bar_for(&self.inputs);
        let report = pipeline::run(
            &self.inputs,
            &self.config,
            &mut |input, source| progress::wrap(&bar, input, source),
            on_trace,
        )?;
        bar.finish_and_clear();
        no_spans_check(&self.given, &report)?;
        Ok(report)
    }
}

/// An input named on the command line that held no span (an empty file,
/// empty standard input, a document without spans, only bad records), or
/// inputs that held none at all, is an error naming them: an answer over
/// nothing would read as "all is well".
fn no_spans_check(given: &[PathBuf], report: &RunReport) -> Result<(), UsageError> {
    let why = |r: &tracelens::read::InputReport| match (&r.format.encoding, r.bad_records.first()) {
        (Encoding::Empty, _) => "it is empty".to_string(),
        (_, Some(first)) => format!("no span in it could be read (first bad record: {first})"),
        _ => format!("it holds no spans ({})", r.format.name()),
    };
    let mut empty: Vec<String> = report
        .inputs
        .iter()
        .filter(|(input, r)| r.spans == 0 && !matches!(input, Input::Found(_)))
        .map(|(input, r)| format!("{}: {}", input.name(), why(r)))
        .collect();
    if empty.is_empty() && report.spans_read() == 0 {
        let names: Vec<String> = given.iter().map(|p| p.display().to_string()).collect();
        let found = report.inputs.len() + report.skipped.len();
        empty.push(format!(
            "{}: no spans in {}",
            names.join(", "),
            if found == 0 { "it (no files)".to_string() } else { format!("any of its {found} files") }
        ));
    }
    if empty.is_empty() { Ok(()) } else { Err(UsageError(format!("no spans to analyse: {}", empty.join("; ")))) }
}

/// Notes on stderr for what a run passed over.
pub fn print_notes(report: &RunReport) {
    for (input, reason) in &report.skipped {
        eprintln!("tracelens: note: skipped {}: {reason}", input.name());
    }
    for (input, r) in &report.inputs {
        for message in &r.bad_records {
            eprintln!("tracelens: warning: {}: skipped {message}", input.name());
        }
    }
}
