//! `tracelens export`: spans, edges or critical-path sections of any input
//! as a Parquet, CSV or NDJSON table.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use polars::prelude::*;

use tracelens::table::spans_parquet::SpansParquetWriter;
use tracelens::table::{Table, TableError, Tables, json, write_parquet};

use super::UsageError;
use super::input::{self, InputArgs};

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableArg {
    /// One row per span.
    Spans,
    /// One row per call between two nodes.
    Edges,
    /// One row per critical-path section.
    CriticalPath,
}

impl From<TableArg> for Table {
    fn from(t: TableArg) -> Table {
        match t {
            TableArg::Spans => Table::Spans,
            TableArg::Edges => Table::Edges,
            TableArg::CriticalPath => Table::CriticalPath,
        }
    }
}

/// A file format for tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// Apache Parquet (zstd).
    Parquet,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// Flags of `tracelens export`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens export dump.pb --output spans.parquet\n  tracelens export traces/ --table edges --output edges.csv\n  tracelens export dump.jsonl --table critical-path --output - --format ndjson | head\n\nColumns of spans: trace_id, span_id, parent_span_id, service, operation, kind, status_code,\nstatus_message, start_unix_nano, end_unix_nano, duration_ns, service_version, environment, host,\nscope_name, scope_version, trace_state, flags, resource_attributes and span_attributes (JSON\nobjects), events and links (JSON arrays). Parquet written here is an input of every command."
)]
pub struct ExportArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The file to write (- for standard output, CSV and NDJSON only).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// Which table.
    #[arg(long, value_enum, default_value_t = TableArg::Spans)]
    table: TableArg,
    /// File format [default: from the output's extension: .parquet, .csv, .ndjson/.jsonl].
    #[arg(long, value_enum)]
    format: Option<FileFormat>,
}

fn format_of(path: &Path, given: Option<FileFormat>) -> Result<FileFormat, UsageError> {
    if let Some(f) = given {
        return Ok(f);
    }
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("parquet" | "pq") => Ok(FileFormat::Parquet),
        Some("csv") => Ok(FileFormat::Csv),
        Some("ndjson" | "jsonl") => Ok(FileFormat::Ndjson),
        _ => Err(UsageError(format!(
            "cannot tell the format of {}: name it .parquet, .csv or .ndjson, or give --format",
            path.display()
        ))),
    }
}

/// Writes `df` to `path` (or standard output) in `format`.
pub fn write(df: &mut DataFrame, path: &Path, format: FileFormat) -> anyhow::Result<()> {
    let stdout = path == Path::new("-");
    if stdout && format == FileFormat::Parquet {
        return Err(UsageError("Parquet needs a file, not standard output".to_string()).into());
    }
    let mut sink: Box<dyn std::io::Write> = if stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(path).map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?)
    };
    match format {
        FileFormat::Parquet => write_parquet(df, &mut sink, ParquetCompression::Zstd(None))?,
        FileFormat::Csv => CsvWriter::new(&mut sink).finish(df)?,
        FileFormat::Ndjson => JsonWriter::new(&mut sink).with_json_format(JsonFormat::JsonLines).finish(df)?,
    }
    sink.flush()?;
    Ok(())
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let format = format_of(&args.output, args.format)?;
    let inputs = args.input.validate()?;
    let table: Table = args.table.into();
    if (table, format) == (Table::Spans, FileFormat::Parquet) {
        return export_spans_parquet(&inputs, &args.output);
    }
    let mut tables = Tables::new(&[table]);
    let report = inputs.run(&mut |dict, trace| tables.add_trace(dict, &trace))?;
    let mut built = tables.finish()?;
    let (_, df) = &mut built[0];
    write(df, &args.output, format)?;
    if args.output != Path::new("-") {
        eprintln!("tracelens: wrote {} rows of {} to {}", df.height(), table.name(), args.output.display());
    }
    input::print_notes(&report);
    Ok(())
}

/// Spans per row group of an exported spans table (polars' default).
const ROW_GROUP_SPANS: usize = 512 * 512;

/// The spans table to Parquet as traces are read, a row group at a time
/// (never the whole table in memory), written page by page as the
/// receiver's compaction writes it; zstd level 3 (polars' default). A
/// failed export leaves no file.
fn export_spans_parquet(inputs: &input::Inputs, path: &Path) -> anyhow::Result<()> {
    if path == Path::new("-") {
        return Err(UsageError("Parquet needs a file, not standard output".to_string()).into());
    }
    let file = File::create(path).map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    let written = write_spans_parquet(inputs, file, path);
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    let (rows, report) = written?;
    eprintln!("tracelens: wrote {rows} rows of spans to {}", path.display());
    input::print_notes(&report);
    Ok(())
}

fn write_spans_parquet(
    inputs: &input::Inputs,
    file: File,
    path: &Path,
) -> anyhow::Result<(u64, tracelens::pipeline::RunReport)> {
    let writing = |e: TableError| anyhow::anyhow!("writing {}: {e}", path.display());
    let mut writer = SpansParquetWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), 3).map_err(writing)?;
    let (mut rows, mut failed, mut attributes) = (0u64, None::<TableError>, String::new());
    let report = inputs.run(&mut |dict, trace| {
        if failed.is_some() {
            return;
        }
        for s in &trace.spans {
            json::write_attributes(&mut attributes, dict, &s.attributes);
            if let Err(e) = writer.add(dict, s, &attributes) {
                failed = Some(e);
                return;
            }
            rows += 1;
        }
        if writer.pending_rows() >= ROW_GROUP_SPANS {
            failed = writer.write_row_group().err();
        }
    })?;
    if let Some(e) = failed {
        return Err(writing(e));
    }
    let mut sink = writer.finish().map_err(writing)?;
    sink.flush().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok((rows, report))
}
