//! `tracelens sql`: polars SQL over the `spans`, `edges` and
//! `critical_path` tables of any input.

use std::io::Write;

use clap::{Args, ValueEnum};
use polars::prelude::*;
use polars::sql::SQLContext;

use tracelens::table::{Table, Tables};

use super::UsageError;
use super::input::{self, InputArgs};

/// Output of `sql`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SqlFormat {
    /// An aligned table.
    Table,
    /// One JSON object per row, in an array.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Flags of `tracelens sql`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tracelens sql \"SELECT service, count(*) AS spans FROM spans \\\n      GROUP BY service ORDER BY spans DESC\" dump.pb\n  tracelens sql \"SELECT client, server, avg(server_duration_ns) FROM edges \\\n      GROUP BY client, server\" traces/\n  tracelens sql --format csv \\\n      \"SELECT * FROM critical_path WHERE service = 'payments'\" dump.jsonl\n\nTables: spans, edges, critical_path (see `tracelens export --help` for their columns)."
)]
pub struct SqlArgs {
    /// The query (polars SQL).
    #[arg(value_name = "QUERY")]
    query: String,
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
}

pub fn run(args: SqlArgs) -> anyhow::Result<()> {
    if args.query.trim().is_empty() {
        return Err(UsageError("the query is empty".to_string()).into());
    }
    let inputs = args.input.validate()?;
    // Build only the tables the query names (critical paths cost a pass).
    let lower = args.query.to_ascii_lowercase();
    let wanted: Vec<Table> =
        [Table::Spans, Table::Edges, Table::CriticalPath].into_iter().filter(|t| lower.contains(t.name())).collect();
    let mut tables = Tables::new(&wanted);
    let report = inputs.run(&mut |dict, trace| tables.add_trace(dict, &trace))?;
    let mut ctx = SQLContext::new();
    for (table, df) in tables.finish()? {
        ctx.register(table.name(), df.lazy());
    }
    let mut result =
        ctx.execute(&args.query).and_then(|lf| lf.collect()).map_err(|e| UsageError(format!("SQL: {e}")))?;
    let mut out = std::io::stdout().lock();
    match args.format {
        SqlFormat::Table => {
            // Every row and column, not polars' elided preview.
            let config = [("POLARS_FMT_MAX_ROWS", "-1"), ("POLARS_FMT_MAX_COLS", "-1"), ("POLARS_FMT_STR_LEN", "80")];
            for (key, value) in config {
                if std::env::var_os(key).is_none() {
                    // SAFETY: set before any other thread reads the
                    // environment (formatting happens right below, on this
                    // thread; the reader threads have finished).
                    unsafe { std::env::set_var(key, value) };
                }
            }
            writeln!(out, "{result}")?;
        }
        SqlFormat::Json => JsonWriter::new(&mut out).with_json_format(JsonFormat::Json).finish(&mut result)?,
        SqlFormat::Csv => CsvWriter::new(&mut out).finish(&mut result)?,
    }
    out.flush()?;
    input::print_notes(&report);
    Ok(())
}
