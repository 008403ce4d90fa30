//! `tracelens export`: spans, edges or critical-path sections of any input
//! as a Parquet, CSV or NDJSON table.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use polars::prelude::*;

use tracelens::model::attr_json as json;
use tracelens::table::spans_parquet::SpansParquetWriter;
use tracelens::table::{Table, TableError, Tables};

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
    after_help = "Examples:\n  tracelens export dump.pb --output spans.parquet\n  tracelens export traces/ --table edges --output edges.csv\n  tracelens export dump.jsonl --table critical-path --output - --format ndjson\n\nColumns of spans: trace_id, span_id, parent_span_id, service, operation, kind, status_code,\nstatus_message, start_unix_nano, end_unix_nano, duration_ns, service_version, environment, host,\nscope_name, scope_version, trace_state, flags, resource_attributes and span_attributes (JSON\nobjects), events and links (JSON arrays). Parquet written here is an input of every command."
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

/// Where a table goes, a piece at a time: each piece has the same columns,
/// and becomes a Parquet row group, or CSV rows (the header with the first),
/// or NDJSON lines.
enum TableSink {
    Csv {
        out: Box<dyn std::io::Write>,
        header: bool,
    },
    Ndjson(Box<dyn std::io::Write>),
    Parquet {
        out: Option<Box<dyn std::io::Write>>,
        writer: Option<Box<polars::io::parquet::write::BatchedWriter<Box<dyn std::io::Write>>>>,
    },
}

impl TableSink {
    /// Opens `path` (or standard output) for a table in `format`.
    fn create(path: &Path, format: FileFormat) -> anyhow::Result<TableSink> {
        let stdout = path == Path::new("-");
        if stdout && format == FileFormat::Parquet {
            return Err(UsageError("Parquet needs a file, not standard output".to_string()).into());
        }
        let out: Box<dyn std::io::Write> = if stdout {
            Box::new(std::io::stdout().lock())
        } else {
            let file = File::create(path).map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
            Box::new(std::io::BufWriter::with_capacity(1 << 20, file))
        };
        Ok(match format {
            FileFormat::Csv => TableSink::Csv { out, header: true },
            FileFormat::Ndjson => TableSink::Ndjson(out),
            FileFormat::Parquet => TableSink::Parquet { out: Some(out), writer: None },
        })
    }

    /// Writes the next piece of the table.
    fn write(&mut self, df: &mut DataFrame) -> PolarsResult<()> {
        match self {
            TableSink::Csv { out, header } => {
                CsvWriter::new(out).include_header(*header).finish(df)?;
                *header = false;
            }
            TableSink::Ndjson(out) => JsonWriter::new(out).with_json_format(JsonFormat::JsonLines).finish(df)?,
            TableSink::Parquet { out, writer } => {
                if let Some(out) = out.take() {
                    let compression = ParquetCompression::Zstd(None);
                    *writer =
                        Some(Box::new(ParquetWriter::new(out).with_compression(compression).batched(df.schema())?));
                }
                if let Some(writer) = writer {
                    writer.write_batch(df)?;
                }
            }
        }
        Ok(())
    }

    /// Ends the table (Parquet's footer) and flushes it.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            TableSink::Csv { mut out, .. } | TableSink::Ndjson(mut out) => out.flush()?,
            TableSink::Parquet { writer, .. } => {
                if let Some(writer) = writer {
                    writer.finish()?;
                }
            }
        }
        Ok(())
    }
}

/// Writes `table` of `inputs` to `path` in `format`, built and written
/// `piece_rows` rows at a time (never the whole table in memory); returns
/// the rows written.
fn write_table(
    inputs: &input::Inputs,
    table: Table,
    path: &Path,
    format: FileFormat,
    piece_rows: usize,
) -> anyhow::Result<(u64, tracelens::pipeline::RunReport)> {
    let mut sink = TableSink::create(path, format)?;
    // Context, not a new message: the error keeps its cause (a closed pipe
    // ends the program quietly).
    let writing = |e: anyhow::Error| e.context(format!("writing {}", path.display()));
    let (mut rows, mut pieces, mut failed) = (0u64, 0u64, None::<anyhow::Error>);
    let mut piece = |tables: Tables, sink: &mut TableSink| -> anyhow::Result<()> {
        let (_, mut df) = tables.finish().map_err(|e| writing(e.into()))?.remove(0);
        // An empty last piece only when nothing came before: the header or schema.
        if df.height() > 0 || pieces == 0 {
            rows += df.height() as u64;
            pieces += 1;
            sink.write(&mut df).map_err(|e| writing(e.into()))?;
        }
        Ok(())
    };
    let mut tables = Tables::new(&[table]);
    let report = inputs.run(&mut |dict, trace| {
        if failed.is_some() {
            return;
        }
        tables.add_trace(dict, &trace);
        if tables.rows() >= piece_rows {
            let full = std::mem::replace(&mut tables, Tables::new(&[table]));
            failed = piece(full, &mut sink).err();
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    piece(tables, &mut sink)?;
    sink.finish().map_err(writing)?;
    Ok((rows, report))
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let format = format_of(&args.output, args.format)?;
    let inputs = args.input.validate()?;
    let table: Table = args.table.into();
    if (table, format) == (Table::Spans, FileFormat::Parquet) {
        return export_spans_parquet(&inputs, &args.output);
    }
    let written = write_table(&inputs, table, &args.output, format, ROW_GROUP_SPANS);
    let to_file = args.output != Path::new("-");
    if written.is_err() && to_file {
        let _ = std::fs::remove_file(&args.output);
    }
    let (rows, report) = written?;
    if to_file {
        eprintln!(
            "tracelens: wrote {} of {} to {}",
            tracelens::render::count(rows, "row"),
            table.name(),
            args.output.display()
        );
    }
    input::print_notes(&report);
    Ok(())
}

/// Rows per row group of an exported table (polars' default), and per
/// piece of a CSV or NDJSON table.
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
    eprintln!("tracelens: wrote {} of spans to {}", tracelens::render::count(rows, "row"), path.display());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `table` of the fixtures in pieces of `piece_rows`; returns the file's bytes and rows.
    fn written(table: Table, format: FileFormat, piece_rows: usize, dir: &Path) -> (Vec<u8>, u64) {
        let fixtures = ["shop.otlp.json", "graph-edges.otlp.jsonl"]
            .map(|n| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")).join(n));
        let inputs = input::inputs_for(&fixtures, false).unwrap();
        let path = dir.join(format!("{}-{piece_rows}", table.name()));
        let (rows, _) = write_table(&inputs, table, &path, format, piece_rows).unwrap();
        (std::fs::read(&path).unwrap(), rows)
    }

    #[test]
    fn a_table_written_in_pieces_is_the_table_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        for table in [Table::Spans, Table::Edges, Table::CriticalPath] {
            for format in [FileFormat::Csv, FileFormat::Ndjson] {
                let (whole, rows) = written(table, format, usize::MAX, dir.path());
                assert!(rows > 6, "{} has rows", table.name());
                let (pieces, rows_in_pieces) = written(table, format, 3, dir.path());
                assert_eq!(rows_in_pieces, rows);
                assert_eq!(String::from_utf8(pieces).unwrap(), String::from_utf8(whole).unwrap(), "{}", table.name());
            }
            let read = |bytes: Vec<u8>| {
                let mut reader = ParquetReader::new(std::io::Cursor::new(bytes));
                let groups = reader.get_metadata().unwrap().row_groups.len();
                (reader.finish().unwrap(), groups)
            };
            let (whole, one) = read(written(table, FileFormat::Parquet, usize::MAX, dir.path()).0);
            let (pieces, groups) = read(written(table, FileFormat::Parquet, 3, dir.path()).0);
            // A piece ends with the trace that fills it: 3 rows or more.
            assert_eq!(one, 1);
            assert!(groups > 1 && groups <= whole.height().div_ceil(3), "{} in {groups} row groups", table.name());
            assert!(pieces.equals_missing(&whole), "{}", table.name());
        }
    }

    #[test]
    fn an_empty_table_still_has_its_columns() {
        // One span, so no call: no edges.
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("one-span.json");
        std::fs::write(
            &empty,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"alone","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#,
        )
        .unwrap();
        let inputs = input::inputs_for(&[empty], false).unwrap();
        let csv = dir.path().join("edges.csv");
        let (rows, _) = write_table(&inputs, Table::Edges, &csv, FileFormat::Csv, 3).unwrap();
        assert_eq!(rows, 0);
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.starts_with("trace_id,client,server,"), "{text}");
        assert_eq!(text.lines().count(), 1);
    }
}
