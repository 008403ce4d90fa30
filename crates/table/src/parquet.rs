//! Parquet input: tracelens's own `spans` table (see [`crate`]) and
//! the column layout of the OpenTelemetry Collector's ClickHouse exporter
//! (`Timestamp`, `TraceId`, `SpanId`, `ParentSpanId`, `SpanName`,
//! `SpanKind`, `ServiceName`, `Duration`, `StatusCode`, `StatusMessage`,
//! `ResourceAttributes`, `SpanAttributes`, …), so a ClickHouse query result
//! exported to Parquet can be analysed. Parquet needs the whole file, so the
//! input's bytes are read into memory first; its rows are decoded a row
//! group at a time.

use std::collections::hash_map::Entry;
use std::io::Cursor;

use polars::prelude::*;
use rustc_hash::FxHashMap;

use tracelens_core::model::attr_json as json;
use tracelens_core::model::{Attr, Dictionary, ResourceId, Span, SpanId, SpanKind, StatusCode, TraceId, Value};
use tracelens_core::read::ReadErrorKind;
use tracelens_core::read::{Emitter, RawId};

fn bad(message: impl Into<String>) -> ReadErrorKind {
    ReadErrorKind::NotTraces(message.into())
}

thread_local! {
    /// Set while this thread runs [`guarded`]: its panics are not printed.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`guarded`] calls running, on any thread: while there are some, panics
/// on polars's worker threads (which decode columns for them, and whose
/// panics reach the caller) are not printed either.
static GUARDED_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a panic on the current thread belongs to a [`guarded`] call.
fn in_guarded_call() -> bool {
    GUARDED.with(|g| g.get())
        || (GUARDED_CALLS.load(std::sync::atomic::Ordering::SeqCst) > 0
            && std::thread::current().name().is_some_and(|n| n.starts_with("polars")))
}

/// Runs polars on a file that may be damaged. polars panics on some
/// malformed files (an Arrow schema it does not know, index arithmetic on
/// lengths the file gives), on the calling thread or on a worker thread of
/// its own whose panic it passes on: such a panic is caught and answered
/// as what it is, a file that cannot be read, without the panic hook
/// printing it (a hook that stays quiet for these panics is put in front
/// of the process's, once).
fn guarded<T>(f: impl FnOnce() -> Result<T, ReadErrorKind>) -> Result<T, ReadErrorKind> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !in_guarded_call() {
                next(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    GUARDED_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED_CALLS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    GUARDED.with(|g| g.set(was));
    result.unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(bad(format!("invalid Parquet file: the reader failed on it ({why})")))
    })
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

/// The span layouts read.
#[derive(Clone, Copy)]
enum Layout {
    Own,
    ClickHouse,
}

/// Reads a Parquet file's spans, a row group at a time (so the decoded
/// columns of one row group are in memory, not the whole table's).
pub fn read_parquet(bytes: Vec<u8>, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let file = ParquetSpans::open(bytes)?;
    for index in 0..file.row_groups() {
        let group = file.row_group(index)?;
        group.emit(0..group.rows(), e)?;
    }
    Ok(())
}

/// Reads only the footer (the metadata) of a Parquet file and returns its
/// rows: a file cut short, or not Parquet, fails here without being read
/// whole.
pub fn check_footer(file: &mut (impl std::io::Read + std::io::Seek)) -> Result<usize, ReadErrorKind> {
    guarded(|| {
        let metadata = polars_parquet::parquet::read::read_metadata(file)
            .map_err(|e| bad(format!("invalid Parquet file: {e}")))?;
        Ok(metadata.num_rows)
    })
}

/// A Parquet file of spans, in memory, whose row groups are decoded one at
/// a time and emitted in slices: a caller can decode without holding the
/// dictionary and take it only to emit.
pub struct ParquetSpans {
    bytes: Vec<u8>,
    metadata: std::sync::Arc<polars_parquet::parquet::metadata::FileMetadata>,
    layout: Layout,
}

impl ParquetSpans {
    /// Reads the file's metadata and finds its layout.
    pub fn open(bytes: Vec<u8>) -> Result<ParquetSpans, ReadErrorKind> {
        let (schema, metadata) = guarded(|| {
            let mut reader = ParquetReader::new(Cursor::new(bytes.as_slice()));
            let schema = reader.schema().map_err(invalid)?;
            let metadata = reader.get_metadata().map_err(invalid)?.clone();
            // Before polars decodes a page: it trusts their counts.
            crate::parquet_pages::check(&bytes, &metadata).map_err(|e| bad(format!("invalid Parquet file: {e}")))?;
            Ok((schema, metadata))
        })?;
        let has = |name: &str| schema.contains(name);
        let layout = if has("trace_id") && has("span_id") {
            Layout::Own
        } else if has("TraceId") && has("SpanId") {
            Layout::ClickHouse
        } else {
            let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
            return Err(bad(format!(
                "a Parquet file without span columns (found {}); expected tracelens's spans table (trace_id, span_id, ...) or the ClickHouse exporter's (TraceId, SpanId, ...)",
                names.join(", ")
            )));
        };
        Ok(ParquetSpans { bytes, metadata, layout })
    }

    /// Row groups in the file.
    pub fn row_groups(&self) -> usize {
        self.metadata.row_groups.len()
    }

    /// Decodes row group `index` (no dictionary needed).
    pub fn row_group(&self, index: usize) -> Result<RowGroup, ReadErrorKind> {
        let Some(group) = self.metadata.row_groups.get(index) else {
            return Err(bad(format!("no row group {index}: the file has {}", self.row_groups())));
        };
        let first = self.metadata.row_groups[..index].iter().map(|g| g.num_rows()).sum();
        let rows = group.num_rows();
        let df = guarded(|| {
            let mut reader = ParquetReader::new(Cursor::new(self.bytes.as_slice()));
            reader.set_metadata(self.metadata.clone());
            reader.with_slice(Some((first, rows))).finish().map_err(invalid)
        })?;
        Ok(RowGroup { df, first, layout: self.layout })
    }
}

/// A decoded row group of a [`ParquetSpans`] file.
pub struct RowGroup {
    df: DataFrame,
    first: usize,
    layout: Layout,
}

impl RowGroup {
    /// Rows in the row group.
    pub fn rows(&self) -> usize {
        self.df.height()
    }

    /// Emits the spans of `rows` (of this row group).
    pub fn emit(&self, rows: std::ops::Range<usize>, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
        let (offset, len) = (rows.start, rows.end.min(self.rows()).saturating_sub(rows.start));
        let df = if offset == 0 && len == self.rows() { self.df.clone() } else { self.df.slice(offset as i64, len) };
        match self.layout {
            Layout::Own => read_own(&df, self.first + offset, e),
            Layout::ClickHouse => read_clickhouse(&df, e),
        }
    }
}

fn invalid(err: PolarsError) -> ReadErrorKind {
    bad(format!("invalid Parquet file: {err}"))
}

/// The columns both layouts share, by their names in one layout.
struct Common {
    trace_id: Option<StringChunked>,
    span_id: Option<StringChunked>,
    parent: Option<StringChunked>,
    name: Option<StringChunked>,
    kind: Option<StringChunked>,
    service: Option<StringChunked>,
    status_code: Option<StringChunked>,
    status_message: Option<StringChunked>,
    scope_name: Option<StringChunked>,
    scope_version: Option<StringChunked>,
    trace_state: Option<StringChunked>,
}

impl Common {
    /// Reads the columns named, in order: trace id, span id, parent id,
    /// name, kind, service, status code, status message, scope name,
    /// scope version, trace state.
    fn read(df: &DataFrame, names: [&str; 11]) -> Result<Common, ReadErrorKind> {
        let [t, s, p, n, k, svc, sc, sm, scn, scv, ts] = names;
        Ok(Common {
            trace_id: strings(df, t)?,
            span_id: strings(df, s)?,
            parent: strings(df, p)?,
            name: strings(df, n)?,
            kind: strings(df, k)?,
            service: strings(df, svc)?,
            status_code: strings(df, sc)?,
            status_message: strings(df, sm)?,
            scope_name: strings(df, scn)?,
            scope_version: strings(df, scv)?,
            trace_state: strings(df, ts)?,
        })
    }

    /// The resource of `row`: its attributes, given `service` when they
    /// name none.
    fn resource(&self, row: usize, mut resource: Vec<Attr>, e: &mut Emitter<'_>) -> ResourceId {
        let service_name = e.dict.keys().service_name;
        if !resource.iter().any(|a| a.key == service_name)
            && let Some(s) = text_at(&self.service, row)
        {
            resource.push(Attr { key: service_name, value: Value::Str(s.into()) });
        }
        e.dict.resource(resource)
    }

    /// The span of `row` with its resource, name, kind, status and scope.
    fn span(&self, row: usize, resource: ResourceId, e: &mut Emitter<'_>) -> Span {
        let mut span = Span::new(TraceId::default(), SpanId::default());
        span.resource = resource;
        span.service = e.dict.resource_of(span.resource).service;
        span.name = e.dict.intern(text_at(&self.name, row).unwrap_or(""));
        span.kind = text_at(&self.kind, row).and_then(SpanKind::from_name).unwrap_or(SpanKind::Unspecified);
        span.status = text_at(&self.status_code, row).and_then(StatusCode::from_name).unwrap_or(StatusCode::Unset);
        span.set_status_message(text_at(&self.status_message, row).filter(|m| !m.is_empty()).map(Into::into));
        span.scope_name = e.dict.intern(text_at(&self.scope_name, row).unwrap_or(""));
        span.scope_version = e.dict.intern(text_at(&self.scope_version, row).unwrap_or(""));
        span.set_trace_state(text_at(&self.trace_state, row).filter(|t| !t.is_empty()).map(Into::into));
        span
    }

    /// Sets ids and timing (repairing and counting as every reader does)
    /// and emits the span.
    fn emit(&self, row: usize, mut span: Span, start: Option<u64>, end: Option<u64>, e: &mut Emitter<'_>) {
        let parent_id = text_at(&self.parent, row).filter(|p| !p.is_empty()).map(RawId::Text);
        e.set_ids(
            &mut span,
            RawId::Text(text_at(&self.trace_id, row).unwrap_or("")),
            RawId::Text(text_at(&self.span_id, row).unwrap_or("")),
            parent_id,
        );
        e.set_timing(&mut span, start, end);
        e.emit(span);
    }
}

/// Emits the spans of `df`, rows of tracelens's spans table from row `first`
/// of the file on.
fn read_own(df: &DataFrame, first: usize, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let common = Common::read(
        df,
        [
            "trace_id",
            "span_id",
            "parent_span_id",
            "operation",
            "kind",
            "service",
            "status_code",
            "status_message",
            "scope_name",
            "scope_version",
            "trace_state",
        ],
    )?;
    let start = integers(df, "start_unix_nano")?;
    let end = integers(df, "end_unix_nano")?;
    let flags = integers(df, "flags")?;
    let resource_attributes = strings(df, "resource_attributes")?;
    let span_attributes = strings(df, "span_attributes")?;
    let events = strings(df, "events")?;
    let links = strings(df, "links")?;
    // Rows share a few resources: each distinct one is parsed once.
    let mut resources: FxHashMap<(Option<&str>, Option<&str>), ResourceId> = FxHashMap::default();
    for row in 0..df.height() {
        let at = |m: String| bad(format!("row {}: {m}", first + row));
        let text = text_at(&resource_attributes, row);
        let resource = match resources.entry((text, text_at(&common.service, row))) {
            Entry::Occupied(id) => *id.get(),
            Entry::Vacant(slot) => {
                let attributes = match text {
                    Some(t) => json::parse_attributes(e.dict, t, "resource_attributes").map_err(at)?,
                    None => Vec::new(),
                };
                *slot.insert(common.resource(row, attributes, e))
            }
        };
        let mut span = common.span(row, resource, e);
        span.flags = int_at(&flags, row).unwrap_or(0) as u32;
        if let Some(t) = text_at(&span_attributes, row) {
            span.attributes = json::parse_attributes(e.dict, t, "span_attributes").map_err(at)?;
        }
        if let Some(t) = text_at(&events, row) {
            span.set_events(json::parse_events(e.dict, t).map_err(at)?);
        }
        if let Some(t) = text_at(&links, row) {
            span.set_links(json::parse_links(e.dict, t).map_err(at)?);
        }
        common.emit(row, span, int_at(&start, row), int_at(&end, row), e);
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
    let common = Common::read(
        df,
        [
            "TraceId",
            "SpanId",
            "ParentSpanId",
            "SpanName",
            "SpanKind",
            "ServiceName",
            "StatusCode",
            "StatusMessage",
            "ScopeName",
            "ScopeVersion",
            "TraceState",
        ],
    )?;
    let duration = integers(df, "Duration")?;
    // Timestamp is DateTime64(9) in ClickHouse; Parquet may carry it in ns,
    // µs or ms.
    let scale = match column(df, "Timestamp").map(|c| c.dtype().clone()) {
        Some(DataType::Datetime(TimeUnit::Microseconds, _)) => 1_000,
        Some(DataType::Datetime(TimeUnit::Milliseconds, _)) => 1_000_000,
        Some(_) => 1,
        None => return Err(bad("a ClickHouse-layout Parquet file without a Timestamp column")),
    };
    let timestamp = integers(df, "Timestamp")?;
    let resource_attributes = column(df, "ResourceAttributes");
    let span_attributes = column(df, "SpanAttributes");
    for row in 0..df.height() {
        let resource = map_at(resource_attributes, row, e.dict);
        let resource = common.resource(row, resource, e);
        let mut span = common.span(row, resource, e);
        span.attributes = map_at(span_attributes, row, e.dict);
        let start = int_at(&timestamp, row).map(|t| t.saturating_mul(scale));
        let end = start.zip(int_at(&duration, row)).map(|(s, d)| s.saturating_add(d));
        common.emit(row, span, start, end, e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::spans_parquet::SpansParquetWriter;
    use tracelens_core::model::attr_json as json;
    use tracelens_core::model::{Dictionary, Span, Warnings};
    use tracelens_core::read::read_spans;

    #[test]
    fn panics_in_polars_become_invalid_file_errors() {
        // On the calling thread.
        let err = super::guarded::<()>(|| panic!("not yet implemented")).unwrap_err().to_string();
        assert!(err.contains("invalid Parquet file: the reader failed on it (not yet implemented)"), "{err}");
        // On one of polars's worker threads, whose panic it passes on.
        let err = super::guarded::<()>(|| {
            let worker = std::thread::Builder::new().name("polars-0".into()).spawn(|| panic!("index out of bounds"));
            std::panic::resume_unwind(worker.unwrap().join().unwrap_err())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("the reader failed on it (index out of bounds)"), "{err}");
    }

    fn read(name: &str, bytes: &[u8], dict: &mut Dictionary) -> Result<Vec<Span>, tracelens_core::read::ReadError> {
        let mut spans = Vec::new();
        let mut warnings = Warnings::default();
        read_spans(name, bytes, &crate::read_options(false), dict, &mut warnings, &mut |_, s| spans.push(s))?;
        Ok(spans)
    }

    /// The spans as a spans-table Parquet file of `row_group` rows per group;
    /// `attributes` gives each span's attribute JSON.
    fn parquet(dict: &Dictionary, spans: &[Span], row_group: usize, attributes: &dyn Fn(usize) -> String) -> Vec<u8> {
        let mut out = SpansParquetWriter::new(Vec::new(), 1).unwrap();
        for (i, s) in spans.iter().enumerate() {
            out.add(dict, s, &attributes(i)).unwrap();
            if out.pending_rows() == row_group {
                out.write_row_group().unwrap();
            }
        }
        out.finish().unwrap()
    }

    #[test]
    fn every_row_group_is_read_in_order() {
        let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap();
        let mut dict = Dictionary::default();
        let spans = read("shop.otlp.json", &json, &mut dict).unwrap();
        assert!(spans.len() > 10);
        for row_group in [3, spans.len()] {
            let bytes = parquet(&dict, &spans, row_group, &|i| json::attributes(&dict, &spans[i].attributes));
            let mut back_dict = Dictionary::default();
            let back = read("shop.parquet", &bytes, &mut back_dict).unwrap();
            assert_eq!(back.len(), spans.len(), "row groups of {row_group}");
            for (a, b) in spans.iter().zip(&back) {
                assert_eq!((a.trace_id, a.span_id, a.parent_id), (b.trace_id, b.span_id, b.parent_id));
                assert_eq!((a.start_ns, a.end_ns), (b.start_ns, b.end_ns));
                assert_eq!(dict.resolve(a.name), back_dict.resolve(b.name));
                assert_eq!(a.attributes.len(), b.attributes.len());
            }
        }
    }

    #[test]
    fn row_groups_emitted_in_slices_give_the_file_s_spans() {
        let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap();
        let mut dict = Dictionary::default();
        let spans = read("shop.otlp.json", &json, &mut dict).unwrap();
        let bytes = parquet(&dict, &spans, 5, &|i| json::attributes(&dict, &spans[i].attributes));
        let whole = read("shop.parquet", &bytes, &mut Dictionary::default()).unwrap();
        let file = super::ParquetSpans::open(bytes).unwrap();
        assert_eq!(file.row_groups(), spans.len().div_ceil(5));
        let (mut back_dict, mut warnings, mut back) = (Dictionary::default(), Warnings::default(), Vec::new());
        for index in 0..file.row_groups() {
            let group = file.row_group(index).unwrap();
            for start in (0..group.rows()).step_by(2) {
                let mut sink = |_: &Dictionary, s| back.push(s);
                let mut e =
                    tracelens_core::read::Emitter::new("shop.parquet", &mut back_dict, &mut warnings, &mut sink);
                group.emit(start..start + 2, &mut e).unwrap();
            }
        }
        let ids = |v: &[Span]| v.iter().map(|s| (s.trace_id, s.span_id, s.parent_id, s.start_ns)).collect::<Vec<_>>();
        assert_eq!(ids(&back), ids(&whole));
        assert_eq!(back.len(), spans.len());
        assert!(file.row_group(file.row_groups()).is_err());
    }

    #[test]
    fn a_bad_row_in_a_later_row_group_is_named_by_its_row_in_the_file() {
        let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap();
        let mut dict = Dictionary::default();
        let spans = read("shop.otlp.json", &json, &mut dict).unwrap();
        let bytes = parquet(&dict, &spans, 3, &|i| if i == 7 { "{not json".to_string() } else { "{}".to_string() });
        let err = read("bad.parquet", &bytes, &mut Dictionary::default()).unwrap_err().to_string();
        assert!(err.contains("row 7:"), "{err}");
    }
}
