//! # tracelens-table
//!
//! Columnar span tables (polars): every span set tracelens reads can become
//! a table — `spans` (one row per span), `edges` (one row per call between
//! two nodes) and `critical_path` (one row per section of each trace's
//! critical path) — for Parquet, CSV and NDJSON files and for SQL.
//! Attributes, events and links are JSON text columns, so any tool reads
//! them and tracelens reads them back without loss of what its analyses
//! use. No I/O here but Parquet and polars' writers into sinks their callers
//! give. The spans table goes to Parquet (`export`, the receiver's
//! compaction) straight from spans, a row group at a time, without a
//! DataFrame ([`spans_parquet`]); SQL, the text formats and the other
//! tables are DataFrames. Parquet files — this table, or the ClickHouse
//! exporter's layout — are read back as spans by [`parquet`], which
//! [`read_options`] plugs into `tracelens-core`'s readers.
//!
//! * [`spans_parquet`] — the spans table written to Parquet, row group by
//!   row group.
//! * [`parquet`] — Parquet input.

pub mod parquet;
pub mod parquet_pages;
pub mod spans_parquet;

use tracelens_core::read::ReadOptions;

/// Reader options that read Parquet as well as every other format.
pub fn read_options(strict: bool) -> ReadOptions {
    ReadOptions { strict, parquet: Some(parquet::read_parquet), ..ReadOptions::default() }
}

use polars::prelude::*;

use tracelens_core::analysis::critical_path::{CriticalPathConfig, critical_path};
use tracelens_core::model::attr_json as json;
use tracelens_core::model::{Dictionary, SpanKind, SpanQuality, StatusCode, Sym, Trace, Value};

/// The tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// One row per span.
    Spans,
    /// One row per call between two nodes.
    Edges,
    /// One row per critical-path section.
    CriticalPath,
}

impl Table {
    /// The name SQL uses.
    pub fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::Edges => "edges",
            Table::CriticalPath => "critical_path",
        }
    }
}

/// Why a table could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// polars failed.
    #[error(transparent)]
    Polars(#[from] PolarsError),
    /// A Parquet page could not be encoded.
    #[error("encoding a Parquet page: {0}")]
    Page(#[source] std::io::Error),
    /// A value past what Parquet's 32-bit lengths hold.
    #[error("{0} over 4 GiB")]
    TooLarge(&'static str),
    /// A row group with more distinct values than dictionary indices.
    #[error("more distinct values in a row group than dictionary indices")]
    DictionaryFull,
    /// The spans table's columns are not the ones the writer encodes.
    #[error("the spans table's columns changed: {0:?}")]
    Columns(Vec<String>),
}

/// Lower-case status name.
pub fn status_name(code: StatusCode) -> &'static str {
    match code {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    }
}

/// Lower-case hex of `bytes` in `buf` (twice as long).
fn hex<'a>(bytes: &[u8], buf: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = DIGITS[(b >> 4) as usize];
        buf[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    std::str::from_utf8(&buf[..2 * bytes.len()]).expect("hex digits are ASCII")
}

fn text(name: &str) -> StringChunkedBuilder {
    StringChunkedBuilder::new(name.into(), 0)
}

/// Rows of the `spans` table, built trace by trace straight into column
/// builders (no string per cell).
pub struct SpanRows {
    trace_id: StringChunkedBuilder,
    span_id: StringChunkedBuilder,
    parent_span_id: StringChunkedBuilder,
    service: StringChunkedBuilder,
    operation: StringChunkedBuilder,
    kind: StringChunkedBuilder,
    status_code: StringChunkedBuilder,
    status_message: StringChunkedBuilder,
    start: Vec<Option<u64>>,
    end: Vec<Option<u64>>,
    duration: Vec<Option<u64>>,
    version: StringChunkedBuilder,
    environment: StringChunkedBuilder,
    host: StringChunkedBuilder,
    scope_name: StringChunkedBuilder,
    scope_version: StringChunkedBuilder,
    trace_state: StringChunkedBuilder,
    flags: Vec<u32>,
    resource_attributes: StringChunkedBuilder,
    span_attributes: StringChunkedBuilder,
    events: StringChunkedBuilder,
    links: StringChunkedBuilder,
    rows: usize,
    /// Resource id -> its attributes' JSON, computed once per resource.
    resource_json: Vec<Option<String>>,
}

impl Default for SpanRows {
    fn default() -> Self {
        SpanRows {
            trace_id: text("trace_id"),
            span_id: text("span_id"),
            parent_span_id: text("parent_span_id"),
            service: text("service"),
            operation: text("operation"),
            kind: text("kind"),
            status_code: text("status_code"),
            status_message: text("status_message"),
            start: Vec::new(),
            end: Vec::new(),
            duration: Vec::new(),
            version: text("service_version"),
            environment: text("environment"),
            host: text("host"),
            scope_name: text("scope_name"),
            scope_version: text("scope_version"),
            trace_state: text("trace_state"),
            flags: Vec::new(),
            resource_attributes: text("resource_attributes"),
            span_attributes: text("span_attributes"),
            events: text("events"),
            links: text("links"),
            rows: 0,
            resource_json: Vec::new(),
        }
    }
}

fn non_empty_str(dict: &Dictionary, sym: Sym) -> Option<&str> {
    let s = dict.resolve(sym);
    (!s.is_empty()).then_some(s)
}

impl SpanRows {
    /// Adds every span of a trace.
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        self.add_spans(dict, &trace.spans);
    }

    /// Adds spans as they are (no trace needed).
    pub fn add_spans(&mut self, dict: &Dictionary, spans: &[tracelens_core::model::Span]) {
        let mut buf = [0u8; 32];
        let mut attributes = String::new();
        self.reserve(spans.len());
        for s in spans {
            let resource = dict.resource_of(s.resource);
            self.trace_id.append_value(hex(&s.trace_id.0, &mut buf));
            self.span_id.append_value(hex(&s.span_id.0, &mut buf));
            match s.parent_id {
                Some(p) => self.parent_span_id.append_value(hex(&p.0, &mut buf)),
                None => self.parent_span_id.append_null(),
            }
            self.service.append_value(dict.resolve(s.service));
            self.operation.append_value(dict.resolve(s.name));
            self.kind.append_value(s.kind.as_str());
            self.status_code.append_value(status_name(s.status));
            self.status_message.append_option(s.status_message());
            let start_known = !s.quality.contains(SpanQuality::MISSING_START);
            self.start.push(start_known.then_some(s.start_ns));
            self.end.push(start_known.then_some(s.end_ns));
            self.duration.push(s.duration_ns());
            self.version.append_option(non_empty_str(dict, resource.version));
            self.environment.append_option(non_empty_str(dict, resource.environment));
            self.host.append_option(non_empty_str(dict, resource.host));
            self.scope_name.append_option(non_empty_str(dict, s.scope_name));
            self.scope_version.append_option(non_empty_str(dict, s.scope_version));
            self.trace_state.append_option(s.trace_state());
            self.flags.push(s.flags);
            let r = s.resource.index();
            if self.resource_json.len() <= r {
                self.resource_json.resize(r + 1, None);
            }
            let resource_json =
                self.resource_json[r].get_or_insert_with(|| json::attributes(dict, &resource.attributes));
            self.resource_attributes.append_value(resource_json.as_str());
            json::write_attributes(&mut attributes, dict, &s.attributes);
            self.span_attributes.append_value(attributes.as_str());
            if s.events().is_empty() {
                self.events.append_null();
            } else {
                self.events.append_value(json::events(dict, s.events()));
            }
            if s.links().is_empty() {
                self.links.append_null();
            } else {
                self.links.append_value(json::links(dict, s.links()));
            }
            self.rows += 1;
        }
    }

    /// Room for `n` more rows in the fixed-width columns (growing them row
    /// by row copied each several times).
    fn reserve(&mut self, n: usize) {
        for column in [&mut self.start, &mut self.end, &mut self.duration] {
            column.reserve(n);
        }
        self.flags.reserve(n);
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The table.
    pub fn finish(self) -> Result<DataFrame, TableError> {
        let s = |b: StringChunkedBuilder| b.finish().into_column();
        let columns = vec![
            s(self.trace_id),
            s(self.span_id),
            s(self.parent_span_id),
            s(self.service),
            s(self.operation),
            s(self.kind),
            s(self.status_code),
            s(self.status_message),
            Column::new("start_unix_nano".into(), self.start),
            Column::new("end_unix_nano".into(), self.end),
            Column::new("duration_ns".into(), self.duration),
            s(self.version),
            s(self.environment),
            s(self.host),
            s(self.scope_name),
            s(self.scope_version),
            s(self.trace_state),
            Column::new("flags".into(), self.flags),
            s(self.resource_attributes),
            s(self.span_attributes),
            s(self.events),
            s(self.links),
        ];
        Ok(DataFrame::new_infer_height(columns)?)
    }
}

/// Rows of the `edges` table: a span calling into another service (its
/// child there), or a client or producer span naming a database or peer it
/// called.
#[derive(Default)]
pub struct EdgeRows {
    trace_id: Vec<String>,
    client: Vec<String>,
    server: Vec<String>,
    connection_type: Vec<&'static str>,
    client_span_id: Vec<String>,
    server_span_id: Vec<Option<String>>,
    client_operation: Vec<String>,
    server_operation: Vec<Option<String>>,
    start: Vec<u64>,
    client_duration: Vec<Option<u64>>,
    server_duration: Vec<Option<u64>>,
    failed: Vec<bool>,
}

fn peer(dict: &Dictionary, attrs: &[tracelens_core::model::Attr]) -> Option<(String, bool)> {
    let k = dict.keys();
    let text = |key: Sym| {
        attrs.iter().find(|a| a.key == key).and_then(|a| match &a.value {
            Value::Str(s) if !s.is_empty() => Some(s.to_string()),
            _ => None,
        })
    };
    let db = [k.db_namespace, k.db_name, k.db_system, k.db_system_name].iter().find_map(|&key| text(key));
    let named = [k.peer_service, k.server_address, k.messaging_destination_name].iter().find_map(|&key| text(key));
    match (named, db) {
        (Some(n), db) => Some((n, db.is_some())),
        (None, Some(db)) => Some((db, true)),
        (None, None) => None,
    }
}

impl EdgeRows {
    /// Adds the calls of a trace.
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        let spans = &trace.spans;
        let trace_id = trace.trace_id.to_hex();
        let mut has_remote_child = vec![false; spans.len()];
        for (i, s) in spans.iter().enumerate() {
            let Some(p) = trace.parent(i) else { continue };
            let c = &spans[p];
            if c.service == s.service {
                continue;
            }
            has_remote_child[p] = true;
            let messaging = matches!(c.kind, SpanKind::Producer) || matches!(s.kind, SpanKind::Consumer);
            self.trace_id.push(trace_id.clone());
            self.client.push(dict.resolve(c.service).to_string());
            self.server.push(dict.resolve(s.service).to_string());
            self.connection_type.push(if messaging { "messaging_system" } else { "" });
            self.client_span_id.push(c.span_id.to_hex());
            self.server_span_id.push(Some(s.span_id.to_hex()));
            self.client_operation.push(dict.resolve(c.name).to_string());
            self.server_operation.push(Some(dict.resolve(s.name).to_string()));
            self.start.push(c.start_ns);
            self.client_duration.push(c.duration_ns());
            self.server_duration.push(s.duration_ns());
            self.failed.push(c.is_error() || s.is_error());
        }
        for (i, c) in spans.iter().enumerate() {
            if has_remote_child[i] || !matches!(c.kind, SpanKind::Client | SpanKind::Producer) {
                continue;
            }
            let Some((name, database)) = peer(dict, &c.attributes) else { continue };
            self.trace_id.push(trace_id.clone());
            self.client.push(dict.resolve(c.service).to_string());
            self.server.push(name);
            self.connection_type.push(if database { "database" } else { "virtual_node" });
            self.client_span_id.push(c.span_id.to_hex());
            self.server_span_id.push(None);
            self.client_operation.push(dict.resolve(c.name).to_string());
            self.server_operation.push(None);
            self.start.push(c.start_ns);
            self.client_duration.push(c.duration_ns());
            self.server_duration.push(None);
            self.failed.push(c.is_error());
        }
    }

    /// The table.
    pub fn finish(self) -> Result<DataFrame, TableError> {
        let columns = vec![
            Column::new("trace_id".into(), self.trace_id),
            Column::new("client".into(), self.client),
            Column::new("server".into(), self.server),
            Column::new("connection_type".into(), self.connection_type),
            Column::new("client_span_id".into(), self.client_span_id),
            Column::new("server_span_id".into(), self.server_span_id),
            Column::new("client_operation".into(), self.client_operation),
            Column::new("server_operation".into(), self.server_operation),
            Column::new("start_unix_nano".into(), self.start),
            Column::new("client_duration_ns".into(), self.client_duration),
            Column::new("server_duration_ns".into(), self.server_duration),
            Column::new("failed".into(), self.failed),
        ];
        Ok(DataFrame::new_infer_height(columns)?)
    }
}

/// Rows of the `critical_path` table.
#[derive(Default)]
pub struct PathRows {
    trace_id: Vec<String>,
    section: Vec<u32>,
    span_id: Vec<String>,
    service: Vec<String>,
    operation: Vec<String>,
    start: Vec<u64>,
    end: Vec<u64>,
    duration: Vec<u64>,
    trace_duration: Vec<u64>,
}

impl PathRows {
    /// Adds the critical path of a trace.
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        let cp = critical_path(trace, &CriticalPathConfig::default());
        let trace_id = trace.trace_id.to_hex();
        for (n, sec) in cp.sections.iter().enumerate() {
            let s = &trace.spans[sec.span];
            self.trace_id.push(trace_id.clone());
            self.section.push(n as u32);
            self.span_id.push(s.span_id.to_hex());
            self.service.push(dict.resolve(s.service).to_string());
            self.operation.push(dict.resolve(s.name).to_string());
            self.start.push(sec.start_ns);
            self.end.push(sec.end_ns);
            self.duration.push(sec.end_ns.saturating_sub(sec.start_ns));
            self.trace_duration.push(cp.duration_ns);
        }
    }

    /// The table.
    pub fn finish(self) -> Result<DataFrame, TableError> {
        let columns = vec![
            Column::new("trace_id".into(), self.trace_id),
            Column::new("section".into(), self.section),
            Column::new("span_id".into(), self.span_id),
            Column::new("service".into(), self.service),
            Column::new("operation".into(), self.operation),
            Column::new("start_unix_nano".into(), self.start),
            Column::new("end_unix_nano".into(), self.end),
            Column::new("duration_ns".into(), self.duration),
            Column::new("trace_duration_ns".into(), self.trace_duration),
        ];
        Ok(DataFrame::new_infer_height(columns)?)
    }
}

/// Builds the requested tables while traces stream by.
#[derive(Default)]
pub struct Tables {
    spans: Option<SpanRows>,
    edges: Option<EdgeRows>,
    path: Option<PathRows>,
}

impl Tables {
    /// Builders for `tables`.
    pub fn new(tables: &[Table]) -> Tables {
        Tables {
            spans: tables.contains(&Table::Spans).then(SpanRows::default),
            edges: tables.contains(&Table::Edges).then(EdgeRows::default),
            path: tables.contains(&Table::CriticalPath).then(PathRows::default),
        }
    }

    /// Adds a trace to every table being built.
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        if let Some(t) = &mut self.spans {
            t.add_trace(dict, trace);
        }
        if let Some(t) = &mut self.edges {
            t.add_trace(dict, trace);
        }
        if let Some(t) = &mut self.path {
            t.add_trace(dict, trace);
        }
    }

    /// Rows added so far, over every table being built.
    pub fn rows(&self) -> usize {
        self.spans.as_ref().map_or(0, SpanRows::len)
            + self.edges.as_ref().map_or(0, |t| t.trace_id.len())
            + self.path.as_ref().map_or(0, |t| t.trace_id.len())
    }

    /// The finished tables, by name.
    pub fn finish(self) -> Result<Vec<(Table, DataFrame)>, TableError> {
        let mut out = Vec::new();
        if let Some(t) = self.spans {
            out.push((Table::Spans, t.finish()?));
        }
        if let Some(t) = self.edges {
            out.push((Table::Edges, t.finish()?));
        }
        if let Some(t) = self.path {
            out.push((Table::CriticalPath, t.finish()?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::model::{Span, Warnings};
    use tracelens_core::read::{ReadOptions, read_spans};

    fn shop_spans() -> (Dictionary, Vec<Span>) {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap();
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        read_spans("shop", &bytes[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s))
            .unwrap();
        (dict, spans)
    }

    /// Every column as text, row by row.
    fn as_text(df: &DataFrame) -> Vec<Vec<Option<String>>> {
        df.columns()
            .iter()
            .map(|c| {
                let text = c.cast(&DataType::String).unwrap();
                text.str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
            })
            .collect()
    }

    #[test]
    fn tables_survive_parquet() {
        let (dict, spans) = shop_spans();
        assert!(spans.len() > 10);
        let mut rows = SpanRows::default();
        rows.add_spans(&dict, &spans);
        let table = rows.finish().unwrap();
        let services = table.column("service").unwrap().str().unwrap().clone();
        assert!(services.iter().any(|s| s == Some("frontend")), "{services:?}");
        let mut parquet = Vec::new();
        ParquetWriter::new(&mut parquet).finish(&mut table.clone()).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(parquet)).finish().unwrap();
        assert_eq!(back.schema(), table.schema());
        assert_eq!(as_text(&back), as_text(&table));
    }
}
