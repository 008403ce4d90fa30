//! The offline pipeline every analysis command shares: read each input with
//! its detected reader, assemble spans into traces across all inputs, and
//! hand each finished trace to the caller's analysis.

use std::io::Read;

use crate::assemble::{Assembler, AssemblerConfig};
use crate::model::{Dictionary, Trace, Warnings};
use crate::read::{Input, InputReport, ReadError, ReadErrorKind, ReadOptions, read_spans};

/// Pipeline settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipelineConfig {
    /// Reader options.
    pub read: ReadOptions,
    /// Assembler options.
    pub assemble: AssemblerConfig,
}

/// What a pipeline run read.
#[derive(Debug)]
pub struct RunReport {
    /// Per input read, in order.
    pub inputs: Vec<(Input, InputReport)>,
    /// Files found in directories that held no trace data, with the reason.
    pub skipped: Vec<(Input, String)>,
    /// Warnings from readers and assembly together.
    pub warnings: Warnings,
    /// Interned names and resources the traces refer to.
    pub dict: Dictionary,
}

impl RunReport {
    /// Spans read over all inputs (before duplicates were dropped).
    pub fn spans_read(&self) -> u64 {
        self.inputs.iter().map(|(_, r)| r.spans).sum()
    }
}

/// An opened input's byte stream.
pub type Source = Box<dyn Read + Send>;

/// Reads `inputs` in order and passes every assembled trace to `on_trace`
/// as soon as it is complete, so memory is bounded by the traces still open.
/// Each trace comes with the dictionary its names and resources refer into
/// (the same one the returned report carries). `wrap` may wrap each opened input (for
/// progress display).
pub fn run(
    inputs: &[Input],
    config: &PipelineConfig,
    wrap: &mut dyn FnMut(&Input, Source) -> Source,
    on_trace: &mut dyn FnMut(&Dictionary, Trace),
) -> Result<RunReport, ReadError> {
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut assembler = Assembler::new(config.assemble);
    let mut reports = Vec::with_capacity(inputs.len());
    let mut skipped = Vec::new();
    for input in inputs {
        let source = wrap(input, input.open()?);
        let report = {
            let mut sink = |dict: &Dictionary, span| assembler.push(span, &mut |t| on_trace(dict, t));
            read_spans(&input.name(), source, &config.read, &mut dict, &mut warnings, &mut sink)
        };
        let report = match report {
            Ok(report) => report,
            Err(ReadError { kind: ReadErrorKind::NotTraces(reason), .. }) if matches!(input, Input::Found(_)) => {
                skipped.push((input.clone(), reason));
                continue;
            }
            Err(err) => return Err(err),
        };
        reports.push((input.clone(), report));
    }
    let assembly_warnings = assembler.finish(&mut |t| on_trace(&dict, t));
    warnings.merge(&assembly_warnings);
    Ok(RunReport { inputs: reports, skipped, warnings, dict })
}
