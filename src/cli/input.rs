//! Flags every offline command shares: inputs, strictness and the assembler
//! window, validated into a pipeline run with a progress bar.

use std::path::PathBuf;

use clap::Args;

use tracelens::assemble::AssemblerConfig;
use tracelens::model::{Dictionary, Trace};
use tracelens::pipeline::{self, PipelineConfig, RunReport};
use tracelens::read::{Encoding, Input, ReadOptions, expand_inputs};

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
    /// Threads decoding length-prefixed protobuf streams, JSON lines and large JSON documents (default:
    /// every core; at most 8 are used; 1 decodes on the thread that analyses). The output is the same
    /// for any number.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Bytes of records each decoding thread takes at a time (for tests of the chunked decode).
    #[arg(long, value_name = "BYTES", hide = true)]
    chunk_bytes: Option<usize>,
    /// Decode every attribute, also where the command reads only a few (for tests of that shortcut).
    #[arg(long, hide = true)]
    all_attributes: bool,
}

/// Validated inputs and pipeline settings.
pub struct Inputs {
    /// The inputs as given (files, directories, -).
    given: Vec<PathBuf>,
    inputs: Vec<Input>,
    config: PipelineConfig,
    /// Never keep only the attributes analyses read.
    all_attributes: bool,
}

impl InputArgs {
    /// Checks the flags and expands directories.
    pub fn validate(&self) -> anyhow::Result<Inputs> {
        if self.trace_window == 0 {
            return Err(UsageError("--trace-window must be at least 1".to_string()).into());
        }
        if self.threads == Some(0) {
            return Err(UsageError("--threads must be at least 1".to_string()).into());
        }
        if self.chunk_bytes == Some(0) {
            return Err(UsageError("--chunk-bytes must be at least 1".to_string()).into());
        }
        let mut inputs = inputs_with(&self.inputs, self.strict, self.trace_window)?;
        if let Some(threads) = self.threads {
            inputs.config.read.threads = threads;
        }
        if let Some(bytes) = self.chunk_bytes {
            inputs.config.read.chunk_bytes = bytes;
        }
        inputs.all_attributes = self.all_attributes;
        Ok(inputs)
    }
}

/// Decoding threads when `--threads` is not given: one per core.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
            read: ReadOptions { threads: default_threads(), ..tracelens::table::read_options(strict) },
            assemble: AssemblerConfig { idle_spans: trace_window },
        },
        all_attributes: false,
    })
}

impl Inputs {
    /// Keeps only the attributes the analyses read
    /// ([`tracelens::analysis::ATTRIBUTES_READ`]): for commands that
    /// analyse and never show a span's other attributes.
    pub fn analysis_only(mut self) -> Inputs {
        if !self.all_attributes {
            self.config.read.keep_attributes = Some(&tracelens::analysis::ATTRIBUTES_READ);
        }
        self
    }

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
