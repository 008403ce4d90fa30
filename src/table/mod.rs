//! Columnar span tables (polars): every span set tracelens reads can become
//! a table — `spans` (one row per span), `edges` (one row per call between
//! two nodes) and `critical_path` (one row per section of each trace's
//! critical path) — for Parquet, CSV and NDJSON files and for SQL.
//! Attributes, events and links are JSON text columns, so any tool reads
//! them and tracelens reads them back without loss of what its analyses
//! use. No I/O here but polars' own writers, called by the CLI.

pub mod json;

use polars::prelude::*;

use crate::analysis::critical_path::{CriticalPathConfig, critical_path};
use crate::model::{Dictionary, SpanKind, SpanQuality, StatusCode, Sym, Trace, Value};

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
#[error("{0}")]
pub struct TableError(pub String);

impl From<PolarsError> for TableError {
    fn from(e: PolarsError) -> Self {
        TableError(e.to_string())
    }
}

/// Lower-case status name.
pub fn status_name(code: StatusCode) -> &'static str {
    match code {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    }
}

fn non_empty(dict: &Dictionary, sym: Sym) -> Option<String> {
    let s = dict.resolve(sym);
    (!s.is_empty()).then(|| s.to_string())
}

/// Rows of the `spans` table, built trace by trace.
#[derive(Default)]
pub struct SpanRows {
    trace_id: Vec<String>,
    span_id: Vec<String>,
    parent_span_id: Vec<Option<String>>,
    service: Vec<String>,
    operation: Vec<String>,
    kind: Vec<&'static str>,
    status_code: Vec<&'static str>,
    status_message: Vec<Option<String>>,
    start: Vec<Option<u64>>,
    end: Vec<Option<u64>>,
    duration: Vec<Option<u64>>,
    version: Vec<Option<String>>,
    environment: Vec<Option<String>>,
    host: Vec<Option<String>>,
    scope_name: Vec<Option<String>>,
    scope_version: Vec<Option<String>>,
    trace_state: Vec<Option<String>>,
    flags: Vec<u32>,
    resource_attributes: Vec<String>,
    span_attributes: Vec<String>,
    events: Vec<Option<String>>,
    links: Vec<Option<String>>,
}

impl SpanRows {
    /// Adds every span of a trace.
    pub fn add_trace(&mut self, dict: &Dictionary, trace: &Trace) {
        self.add_spans(dict, &trace.spans);
    }

    /// Adds spans as they are (no trace needed: the receiver writes each
    /// log segment's spans before their traces are complete).
    pub fn add_spans(&mut self, dict: &Dictionary, spans: &[crate::model::Span]) {
        for s in spans {
            let resource = dict.resource_of(s.resource);
            self.trace_id.push(s.trace_id.to_hex());
            self.span_id.push(s.span_id.to_hex());
            self.parent_span_id.push(s.parent_id.map(|p| p.to_hex()));
            self.service.push(dict.resolve(s.service).to_string());
            self.operation.push(dict.resolve(s.name).to_string());
            self.kind.push(s.kind.as_str());
            self.status_code.push(status_name(s.status.code));
            self.status_message.push(s.status.message.as_deref().map(str::to_string));
            let start_known = !s.quality.contains(SpanQuality::MISSING_START);
            self.start.push(start_known.then_some(s.start_ns));
            self.end.push(start_known.then_some(s.end_ns));
            self.duration.push(s.duration_ns());
            self.version.push(non_empty(dict, resource.version));
            self.environment.push(non_empty(dict, resource.environment));
            self.host.push(non_empty(dict, resource.host));
            self.scope_name.push(non_empty(dict, s.scope_name));
            self.scope_version.push(non_empty(dict, s.scope_version));
            self.trace_state.push(s.trace_state.as_deref().map(str::to_string));
            self.flags.push(s.flags);
            self.resource_attributes.push(json::attributes(dict, &resource.attributes));
            self.span_attributes.push(json::attributes(dict, &s.attributes));
            self.events.push((!s.events.is_empty()).then(|| json::events(dict, &s.events)));
            self.links.push((!s.links.is_empty()).then(|| json::links(dict, &s.links)));
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.span_id.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.span_id.is_empty()
    }

    /// The table.
    pub fn finish(self) -> Result<DataFrame, TableError> {
        let columns = vec![
            Column::new("trace_id".into(), self.trace_id),
            Column::new("span_id".into(), self.span_id),
            Column::new("parent_span_id".into(), self.parent_span_id),
            Column::new("service".into(), self.service),
            Column::new("operation".into(), self.operation),
            Column::new("kind".into(), self.kind),
            Column::new("status_code".into(), self.status_code),
            Column::new("status_message".into(), self.status_message),
            Column::new("start_unix_nano".into(), self.start),
            Column::new("end_unix_nano".into(), self.end),
            Column::new("duration_ns".into(), self.duration),
            Column::new("service_version".into(), self.version),
            Column::new("environment".into(), self.environment),
            Column::new("host".into(), self.host),
            Column::new("scope_name".into(), self.scope_name),
            Column::new("scope_version".into(), self.scope_version),
            Column::new("trace_state".into(), self.trace_state),
            Column::new("flags".into(), self.flags),
            Column::new("resource_attributes".into(), self.resource_attributes),
            Column::new("span_attributes".into(), self.span_attributes),
            Column::new("events".into(), self.events),
            Column::new("links".into(), self.links),
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

fn peer(dict: &Dictionary, attrs: &[crate::model::Attr]) -> Option<(String, bool)> {
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
