//! Parquet input: tracelens's own `spans` table (see [`crate::table`]) and
//! the column layout of the OpenTelemetry Collector's ClickHouse exporter
//! (`Timestamp`, `TraceId`, `SpanId`, `ParentSpanId`, `SpanName`,
//! `SpanKind`, `ServiceName`, `Duration`, `StatusCode`, `StatusMessage`,
//! `ResourceAttributes`, `SpanAttributes`, …), so a ClickHouse query result
//! exported to Parquet can be analysed. Parquet needs the whole file, so the
//! input is read into memory first.

use std::io::Cursor;

use polars::prelude::*;

use super::emit::{Emitter, RawId};
use super::error::ReadErrorKind;
use crate::model::{Attr, Dictionary, Span, SpanId, SpanKind, Status, StatusCode, TraceId, Value};
use crate::table::json;

/// Parquet's magic, at both ends of a file.
pub(crate) const MAGIC: &[u8; 4] = b"PAR1";

fn bad(message: impl Into<String>) -> ReadErrorKind {
    ReadErrorKind::NotTraces(message.into())
}

fn column<'a>(df: &'a DataFrame, name: &str) -> Option<&'a Column> {
    df.column(name).ok()
}

/// A column as text, if it is there (any type is cast to text).
fn strings(df: &DataFrame, name: &str) -> Result<Option<StringChunked>, ReadErrorKind> {
    let Some(c) = column(df, name) else { return Ok(None) };
    let cast = c.cast(&DataType::String).map_err(|e| bad(format!("column {name}: {e}")))?;
    Ok(Some(cast.str().map_err(|e| bad(format!("column {name}: {e}")))?.clone()))
}

/// A column as unsigned integers, if it is there.
fn integers(df: &DataFrame, name: &str) -> Result<Option<UInt64Chunked>, ReadErrorKind> {
    let Some(c) = column(df, name) else { return Ok(None) };
    let physical = match c.dtype() {
        DataType::Datetime(_, _) | DataType::Duration(_) => c.cast(&DataType::Int64),
        _ => Ok(c.clone()),
    }
    .and_then(|c| c.cast(&DataType::UInt64))
    .map_err(|e| bad(format!("column {name}: {e}")))?;
    Ok(Some(physical.u64().map_err(|e| bad(format!("column {name}: {e}")))?.clone()))
}

fn text_at(c: &Option<StringChunked>, row: usize) -> Option<&str> {
    c.as_ref().and_then(|c| c.get(row))
}

fn int_at(c: &Option<UInt64Chunked>, row: usize) -> Option<u64> {
    c.as_ref().and_then(|c| c.get(row))
}

/// Reads a Parquet file's spans.
pub(crate) fn read_parquet(bytes: Vec<u8>, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let df =
        ParquetReader::new(Cursor::new(bytes)).finish().map_err(|err| bad(format!("invalid Parquet file: {err}")))?;
    let has = |name: &str| df.column(name).is_ok();
    if has("trace_id") && has("span_id") {
        read_own(&df, e)
    } else if has("TraceId") && has("SpanId") {
        read_clickhouse(&df, e)
    } else {
        let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
        Err(bad(format!(
            "a Parquet file without span columns (found {}); expected tracelens's spans table (trace_id, span_id, ...) or the ClickHouse exporter's (TraceId, SpanId, ...)",
            names.join(", ")
        )))
    }
}

fn read_own(df: &DataFrame, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let trace_id = strings(df, "trace_id")?;
    let span_id = strings(df, "span_id")?;
    let parent = strings(df, "parent_span_id")?;
    let service = strings(df, "service")?;
    let operation = strings(df, "operation")?;
    let kind = strings(df, "kind")?;
    let status_code = strings(df, "status_code")?;
    let status_message = strings(df, "status_message")?;
    let start = integers(df, "start_unix_nano")?;
    let end = integers(df, "end_unix_nano")?;
    let scope_name = strings(df, "scope_name")?;
    let scope_version = strings(df, "scope_version")?;
    let trace_state = strings(df, "trace_state")?;
    let flags = integers(df, "flags")?;
    let resource_attributes = strings(df, "resource_attributes")?;
    let span_attributes = strings(df, "span_attributes")?;
    let events = strings(df, "events")?;
    let links = strings(df, "links")?;
    let keys = *e.dict.keys();
    for row in 0..df.height() {
        let at = |m: String| bad(format!("row {row}: {m}"));
        let mut resource = match text_at(&resource_attributes, row) {
            Some(t) => json::parse_attributes(e.dict, t, "resource_attributes").map_err(at)?,
            None => Vec::new(),
        };
        if !resource.iter().any(|a| a.key == keys.service_name)
            && let Some(s) = text_at(&service, row)
        {
            resource.push(Attr { key: keys.service_name, value: Value::Str(s.into()) });
        }
        let mut span = Span::new(TraceId::default(), SpanId::default());
        span.resource = e.dict.resource(resource);
        span.service = e.dict.resource_of(span.resource).service;
        span.name = e.dict.intern(text_at(&operation, row).unwrap_or(""));
        span.kind = text_at(&kind, row).and_then(SpanKind::from_name).unwrap_or(SpanKind::Unspecified);
        span.status = Status {
            code: text_at(&status_code, row).and_then(StatusCode::from_name).unwrap_or(StatusCode::Unset),
            message: text_at(&status_message, row).filter(|m| !m.is_empty()).map(Into::into),
        };
        span.scope_name = e.dict.intern(text_at(&scope_name, row).unwrap_or(""));
        span.scope_version = e.dict.intern(text_at(&scope_version, row).unwrap_or(""));
        span.trace_state = text_at(&trace_state, row).filter(|t| !t.is_empty()).map(Into::into);
        span.flags = int_at(&flags, row).unwrap_or(0) as u32;
        if let Some(t) = text_at(&span_attributes, row) {
            span.attributes = json::parse_attributes(e.dict, t, "span_attributes").map_err(at)?;
        }
        if let Some(t) = text_at(&events, row) {
            span.events = json::parse_events(e.dict, t).map_err(at)?;
        }
        if let Some(t) = text_at(&links, row) {
            span.links = json::parse_links(e.dict, t).map_err(at)?;
        }
        let parent_id = text_at(&parent, row).filter(|p| !p.is_empty()).map(RawId::Text);
        e.set_ids(
            &mut span,
            RawId::Text(text_at(&trace_id, row).unwrap_or("")),
            RawId::Text(text_at(&span_id, row).unwrap_or("")),
            parent_id,
        );
        e.set_timing(&mut span, int_at(&start, row), int_at(&end, row));
        e.emit(span);
    }
    Ok(())
}

/// A ClickHouse `Map(String, String)` read from Parquet: a list of
/// `{key, value}` structs.
fn map_at(c: Option<&Column>, row: usize, dict: &mut Dictionary) -> Vec<Attr> {
    let Some(c) = c else { return Vec::new() };
    let Ok(AnyValue::List(entries)) = c.get(row) else { return Vec::new() };
    let Ok(fields) = entries.struct_().map(|s| s.fields_as_series()) else { return Vec::new() };
    let find =
        |name: &str| fields.iter().find(|f| f.name().as_str() == name).and_then(|f| f.cast(&DataType::String).ok());
    let (Some(keys), Some(values)) = (find("key"), find("value")) else { return Vec::new() };
    let (Ok(keys), Ok(values)) = (keys.str(), values.str()) else { return Vec::new() };
    keys.iter()
        .zip(values.iter())
        .filter_map(|(k, v)| Some(Attr { key: dict.intern(k?), value: Value::Str(v.unwrap_or("").into()) }))
        .collect()
}

fn read_clickhouse(df: &DataFrame, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let trace_id = strings(df, "TraceId")?;
    let span_id = strings(df, "SpanId")?;
    let parent = strings(df, "ParentSpanId")?;
    let name = strings(df, "SpanName")?;
    let kind = strings(df, "SpanKind")?;
    let service = strings(df, "ServiceName")?;
    let status_code = strings(df, "StatusCode")?;
    let status_message = strings(df, "StatusMessage")?;
    let scope_name = strings(df, "ScopeName")?;
    let scope_version = strings(df, "ScopeVersion")?;
    let trace_state = strings(df, "TraceState")?;
    let duration = integers(df, "Duration")?;
    // Timestamp is DateTime64(9) in ClickHouse; Parquet may carry it in ns,
    // µs or ms.
    let (timestamp, scale) = match column(df, "Timestamp").map(|c| c.dtype().clone()) {
        Some(DataType::Datetime(unit, _)) => (
            integers(df, "Timestamp")?,
            match unit {
                TimeUnit::Nanoseconds => 1,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Milliseconds => 1_000_000,
            },
        ),
        Some(_) => (integers(df, "Timestamp")?, 1),
        None => return Err(bad("a ClickHouse-layout Parquet file without a Timestamp column")),
    };
    let resource_attributes = column(df, "ResourceAttributes");
    let span_attributes = column(df, "SpanAttributes");
    let keys = *e.dict.keys();
    for row in 0..df.height() {
        let mut resource = map_at(resource_attributes, row, e.dict);
        if !resource.iter().any(|a| a.key == keys.service_name)
            && let Some(s) = text_at(&service, row)
        {
            resource.push(Attr { key: keys.service_name, value: Value::Str(s.into()) });
        }
        let mut span = Span::new(TraceId::default(), SpanId::default());
        span.resource = e.dict.resource(resource);
        span.service = e.dict.resource_of(span.resource).service;
        span.name = e.dict.intern(text_at(&name, row).unwrap_or(""));
        span.kind = text_at(&kind, row).and_then(SpanKind::from_name).unwrap_or(SpanKind::Unspecified);
        span.status = Status {
            code: text_at(&status_code, row).and_then(StatusCode::from_name).unwrap_or(StatusCode::Unset),
            message: text_at(&status_message, row).filter(|m| !m.is_empty()).map(Into::into),
        };
        span.scope_name = e.dict.intern(text_at(&scope_name, row).unwrap_or(""));
        span.scope_version = e.dict.intern(text_at(&scope_version, row).unwrap_or(""));
        span.trace_state = text_at(&trace_state, row).filter(|t| !t.is_empty()).map(Into::into);
        span.attributes = map_at(span_attributes, row, e.dict);
        let parent_id = text_at(&parent, row).filter(|p| !p.is_empty()).map(RawId::Text);
        e.set_ids(
            &mut span,
            RawId::Text(text_at(&trace_id, row).unwrap_or("")),
            RawId::Text(text_at(&span_id, row).unwrap_or("")),
            parent_id,
        );
        let start = int_at(&timestamp, row).map(|t| t.saturating_mul(scale));
        let end = start.zip(int_at(&duration, row)).map(|(s, d)| s.saturating_add(d));
        e.set_timing(&mut span, start, end);
        e.emit(span);
    }
    Ok(())
}
