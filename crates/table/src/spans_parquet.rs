//! The spans table written to Parquet straight from spans, column by
//! column: `export` and the receiver's compaction, which writes every span
//! it receives.
//! polars would build a DataFrame, convert its categoricals to Arrow
//! dictionaries and try dictionary encoding on every text column before
//! encoding pages (half of compaction's time); here each row's values go
//! into per-column buffers as spans are added, and a row group becomes
//! Parquet pages directly — dictionary pages for the columns of few
//! distinct values, plain pages for the rest — handed to polars-parquet's
//! file writer with the schema and metadata polars itself writes for the
//! table. A file reads back as the table [`super::SpanRows`] builds for SQL
//! (the tests hold the two equal column by column).

use std::io::Write;
use std::ops::Range;

use polars::prelude::{CompatLevel, PolarsError, SchemaExt};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::parquet::encoding::hybrid_rle::{self, Encoder};
use polars_parquet::parquet::page::{DataPage, DataPageHeader, DataPageHeaderV1, DictPage};
use polars_parquet::parquet::statistics::{BinaryStatistics, ParquetStatistics, PrimitiveStatistics};
use polars_parquet::write::{
    CompressionOptions, Compressor, Descriptor, DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator,
    FileWriter, Page, ParquetPhysicalType, StatisticsOptions, Version, WriteOptions, ZstdLevel,
};
use rustc_hash::FxHashMap;

use super::{SpanRows, TableError, status_name};
use tracelens_core::model::attr_json as json;
use tracelens_core::model::{Dictionary, Span, SpanQuality, Sym, TraceId};

/// The columns in file order: [`SpanRows`]'s, checked when a writer starts.
const COLUMNS: [&str; 22] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "operation",
    "kind",
    "status_code",
    "status_message",
    "start_unix_nano",
    "end_unix_nano",
    "duration_ns",
    "service_version",
    "environment",
    "host",
    "scope_name",
    "scope_version",
    "trace_state",
    "flags",
    "resource_attributes",
    "span_attributes",
    "events",
    "links",
];

/// Plain text pages end after the value that takes them past this size
/// (polars' default data page size); other columns' pages are smaller.
const PAGE_BYTES: usize = 1 << 20;

fn io_error(e: std::io::Error) -> TableError {
    TableError::Page(e)
}

/// A column being filled: its pages for a row group, then emptied for the
/// next (keeping its buffers).
trait Column {
    fn pages(&self, descriptor: &Descriptor, rows: usize) -> Result<Vec<Page>, TableError>;
    fn clear(&mut self);
}

/// Which rows of a column hold a value: Parquet definition levels (every
/// column of the table is declared nullable, as polars declares them).
#[derive(Default)]
struct Validity {
    present: Vec<bool>,
    nulls: usize,
}

impl Validity {
    fn push(&mut self, present: bool) {
        self.present.push(present);
        self.nulls += usize::from(!present);
    }

    fn nulls_in(&self, rows: Range<usize>) -> usize {
        if self.nulls == 0 { 0 } else { self.present[rows].iter().filter(|p| !**p).count() }
    }

    /// The definition levels of `rows` as a V1 data page holds them: their
    /// byte length, then the RLE/bit-packed hybrid encoding.
    fn write(&self, rows: Range<usize>, out: &mut Vec<u8>) -> Result<(), TableError> {
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        if self.nulls == 0 {
            <bool as Encoder<bool>>::run_length_encode(out, rows.len(), true, 1).map_err(io_error)?;
        } else {
            hybrid_rle::encode::<bool, _, _>(out, self.present[rows].iter().copied(), 1).map_err(io_error)?;
        }
        let len = u32::try_from(out.len() - start).map_err(|_| TableError::TooLarge("definition levels"))?;
        out[start - 4..start].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    fn clear(&mut self) {
        self.present.clear();
        self.nulls = 0;
    }
}

/// A text column of few distinct values: a dictionary page per row group
/// and each row's index into it. Values are found by a key (a symbol,
/// resource or enum index, or the row group's number for a trace), so each
/// distinct value's text is handled once per row group.
#[derive(Default)]
struct DictColumn {
    /// Key -> 0 (not seen in this row group), [`NULL_CODE`] or 1 + its index.
    by_key: Vec<u32>,
    /// Keys seen in this row group (to reset `by_key`).
    seen: Vec<u32>,
    /// The dictionary page's values, plain encoded (length, bytes).
    values: Vec<u8>,
    distinct: usize,
    min: Option<Box<[u8]>>,
    max: Option<Box<[u8]>>,
    /// Indices of the rows with a value.
    indices: Vec<u32>,
    validity: Validity,
}

const NULL_CODE: u32 = u32::MAX;

impl DictColumn {
    /// Adds a row: the value of `key`, whose text `text` gives (the same
    /// for the same key; asked once per row group).
    fn push<'a>(&mut self, key: usize, text: impl FnOnce() -> Option<&'a str>) -> Result<(), TableError> {
        if self.by_key.len() <= key {
            self.by_key.resize(key + 1, 0);
        }
        if self.by_key[key] == 0 {
            self.by_key[key] = match text() {
                None => NULL_CODE,
                Some(t) => {
                    let len = u32::try_from(t.len()).map_err(|_| TableError::TooLarge("a text value"))?;
                    self.values.extend_from_slice(&len.to_le_bytes());
                    self.values.extend_from_slice(t.as_bytes());
                    let b = t.as_bytes();
                    if self.min.as_deref().is_none_or(|m| b < m) {
                        self.min = Some(b.into());
                    }
                    if self.max.as_deref().is_none_or(|m| b > m) {
                        self.max = Some(b.into());
                    }
                    self.distinct += 1;
                    u32::try_from(self.distinct).ok().filter(|&c| c < NULL_CODE).ok_or(TableError::DictionaryFull)?
                }
            };
            self.seen.push(key as u32);
        }
        let code = self.by_key[key];
        self.validity.push(code != NULL_CODE);
        if code != NULL_CODE {
            self.indices.push(code - 1);
        }
        Ok(())
    }
}

impl Column for DictColumn {
    fn pages(&self, descriptor: &Descriptor, rows: usize) -> Result<Vec<Page>, TableError> {
        let dict = Page::Dict(DictPage::new(CowBuffer::Owned(self.values.clone()), self.distinct, false));
        let mut buf = Vec::with_capacity(rows / 2 + 64);
        self.validity.write(0..rows, &mut buf)?;
        // Bits per index: those of the largest (none for one value).
        let bits = u32::BITS - (self.distinct.saturating_sub(1) as u32).leading_zeros();
        buf.push(bits as u8);
        hybrid_rle::encode::<u32, _, _>(&mut buf, self.indices.iter().copied(), bits).map_err(io_error)?;
        let statistics = BinaryStatistics {
            primitive_type: descriptor.primitive_type.clone(),
            null_count: Some(self.validity.nulls as i64),
            distinct_count: None,
            max_value: self.max.as_deref().map(<[u8]>::to_vec),
            min_value: self.min.as_deref().map(<[u8]>::to_vec),
        }
        .serialize();
        Ok(vec![dict, data_page(buf, rows, Encoding::RleDictionary, statistics, descriptor)])
    }

    fn clear(&mut self) {
        for &key in &self.seen {
            self.by_key[key as usize] = 0;
        }
        self.seen.clear();
        self.values.clear();
        self.distinct = 0;
        self.min = None;
        self.max = None;
        self.indices.clear();
        self.validity.clear();
    }
}

/// A text column of mostly distinct values, plain encoded, in pages of
/// about [`PAGE_BYTES`].
#[derive(Default)]
struct TextColumn {
    /// Values of the rows with one: length, then bytes.
    data: Vec<u8>,
    /// (row, byte) where each page after the first starts.
    page_starts: Vec<(usize, usize)>,
    /// Byte where the current page starts.
    page_start: usize,
    validity: Validity,
}

impl TextColumn {
    fn push(&mut self, text: Option<&str>) -> Result<(), TableError> {
        if let Some(t) = text {
            // Parquet's byte arrays have 32-bit lengths.
            let len = u32::try_from(t.len()).map_err(|_| TableError::TooLarge("a text value"))?;
            self.data.extend_from_slice(&len.to_le_bytes());
            self.data.extend_from_slice(t.as_bytes());
        }
        self.next_row(text.is_some());
        Ok(())
    }

    /// A row of lower-case hex of `bytes` (ids), or null.
    fn push_hex(&mut self, bytes: Option<&[u8]>) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        if let Some(bytes) = bytes {
            self.data.extend_from_slice(&(2 * bytes.len() as u32).to_le_bytes());
            for b in bytes {
                self.data.extend_from_slice(&[DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]);
            }
        }
        self.next_row(bytes.is_some());
    }

    fn next_row(&mut self, present: bool) {
        self.validity.push(present);
        if self.data.len() - self.page_start >= PAGE_BYTES {
            self.page_start = self.data.len();
            self.page_starts.push((self.validity.present.len(), self.page_start));
        }
    }
}

impl Column for TextColumn {
    fn pages(&self, descriptor: &Descriptor, rows: usize) -> Result<Vec<Page>, TableError> {
        let mut starts = vec![(0, 0)];
        starts.extend(self.page_starts.iter().copied().filter(|&(row, _)| row < rows));
        let mut pages = Vec::with_capacity(starts.len());
        for (i, &(row, byte)) in starts.iter().enumerate() {
            let (end_row, end_byte) = starts.get(i + 1).copied().unwrap_or((rows, self.data.len()));
            let mut buf = Vec::with_capacity(end_byte - byte + (end_row - row) / 4 + 64);
            self.validity.write(row..end_row, &mut buf)?;
            buf.extend_from_slice(&self.data[byte..end_byte]);
            let statistics = BinaryStatistics {
                primitive_type: descriptor.primitive_type.clone(),
                null_count: Some(self.validity.nulls_in(row..end_row) as i64),
                distinct_count: None,
                max_value: None,
                min_value: None,
            }
            .serialize();
            pages.push(data_page(buf, end_row - row, Encoding::Plain, statistics, descriptor));
        }
        Ok(pages)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.page_starts.clear();
        self.page_start = 0;
        self.validity.clear();
    }
}

/// An integer column (u64 or u32 values, written as Parquet INT64 or INT32
/// with unsigned logical types, as polars writes them).
#[derive(Default)]
struct IntColumn {
    /// Values of the rows with one, little-endian, 8 or 4 bytes each (as
    /// the column's physical type, INT64 or INT32, says).
    data: Vec<u8>,
    min: Option<u64>,
    max: Option<u64>,
    validity: Validity,
}

impl IntColumn {
    fn push_u64(&mut self, value: Option<u64>) {
        if let Some(v) = value {
            self.data.extend_from_slice(&v.to_le_bytes());
            self.note(v);
        }
        self.validity.push(value.is_some());
    }

    fn push_u32(&mut self, value: u32) {
        self.data.extend_from_slice(&value.to_le_bytes());
        self.note(value.into());
        self.validity.push(true);
    }

    fn note(&mut self, v: u64) {
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }
}

impl Column for IntColumn {
    fn pages(&self, descriptor: &Descriptor, rows: usize) -> Result<Vec<Page>, TableError> {
        let mut buf = Vec::with_capacity(self.data.len() + rows / 4 + 64);
        self.validity.write(0..rows, &mut buf)?;
        buf.extend_from_slice(&self.data);
        let null_count = Some(self.validity.nulls as i64);
        let primitive_type = descriptor.primitive_type.clone();
        // Unsigned values in signed statistics, as polars writes them.
        let statistics = if descriptor.primitive_type.physical_type == ParquetPhysicalType::Int64 {
            let (min_value, max_value) = (self.min.map(|v| v as i64), self.max.map(|v| v as i64));
            PrimitiveStatistics::<i64> { primitive_type, null_count, distinct_count: None, min_value, max_value }
                .serialize()
        } else {
            let (min_value, max_value) = (self.min.map(|v| v as i32), self.max.map(|v| v as i32));
            PrimitiveStatistics::<i32> { primitive_type, null_count, distinct_count: None, min_value, max_value }
                .serialize()
        };
        Ok(vec![data_page(buf, rows, Encoding::Plain, statistics, descriptor)])
    }

    fn clear(&mut self) {
        self.data.clear();
        self.min = None;
        self.max = None;
        self.validity.clear();
    }
}

fn data_page(
    buf: Vec<u8>,
    rows: usize,
    encoding: Encoding,
    statistics: ParquetStatistics,
    descriptor: &Descriptor,
) -> Page {
    let header = DataPageHeader::V1(DataPageHeaderV1 {
        num_values: rows as i32,
        encoding: encoding.into(),
        definition_level_encoding: Encoding::Rle.into(),
        repetition_level_encoding: Encoding::Rle.into(),
        statistics: Some(statistics),
    });
    Page::Data(DataPage::new(header, CowBuffer::Owned(buf), descriptor.clone(), rows))
}

/// One row group's columns being filled.
#[derive(Default)]
struct Columns {
    trace_id: DictColumn,
    span_id: TextColumn,
    parent_span_id: TextColumn,
    service: DictColumn,
    operation: DictColumn,
    kind: DictColumn,
    status_code: DictColumn,
    status_message: TextColumn,
    start: IntColumn,
    end: IntColumn,
    duration: IntColumn,
    version: DictColumn,
    environment: DictColumn,
    host: DictColumn,
    scope_name: DictColumn,
    scope_version: DictColumn,
    trace_state: TextColumn,
    flags: IntColumn,
    resource_attributes: DictColumn,
    span_attributes: TextColumn,
    events: TextColumn,
    links: TextColumn,
    rows: usize,
}

impl Columns {
    /// Every column, in file order ([`COLUMNS`]).
    fn all(&mut self) -> [&mut dyn Column; COLUMNS.len()] {
        [
            &mut self.trace_id,
            &mut self.span_id,
            &mut self.parent_span_id,
            &mut self.service,
            &mut self.operation,
            &mut self.kind,
            &mut self.status_code,
            &mut self.status_message,
            &mut self.start,
            &mut self.end,
            &mut self.duration,
            &mut self.version,
            &mut self.environment,
            &mut self.host,
            &mut self.scope_name,
            &mut self.scope_version,
            &mut self.trace_state,
            &mut self.flags,
            &mut self.resource_attributes,
            &mut self.span_attributes,
            &mut self.events,
            &mut self.links,
        ]
    }
}

/// Writes the spans table as Parquet to a sink, a row group at a time.
pub struct SpansParquetWriter<W: Write> {
    writer: FileWriter<W>,
    descriptors: Vec<Descriptor>,
    compression: CompressionOptions,
    columns: Columns,
    /// Trace id -> its key in this row group's `trace_id` column.
    traces: FxHashMap<TraceId, usize>,
    /// Resource index -> its attributes' JSON (for the writer's lifetime:
    /// one dictionary's resources).
    resource_json: Vec<Option<String>>,
    /// Each row group's trace ids, when asked for ([`Self::keeping_trace_ids`]).
    trace_ids: Option<Vec<TraceId>>,
}

fn non_empty(dict: &Dictionary, sym: Sym) -> Option<&str> {
    let s = dict.resolve(sym);
    (!s.is_empty()).then_some(s)
}

impl<W: Write> SpansParquetWriter<W> {
    /// Starts a file: nothing is written until the first row group. Pages
    /// are compressed with zstd at `zstd_level`.
    pub fn new(sink: W, zstd_level: i32) -> Result<Self, TableError> {
        let schema = SpanRows::default().finish()?.schema().to_arrow(CompatLevel::newest());
        let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
        if names != COLUMNS {
            return Err(TableError::Columns(names.iter().map(|n| n.to_string()).collect()));
        }
        let level = ZstdLevel::try_new(zstd_level)?;
        let compression = CompressionOptions::Zstd(Some(level));
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            version: Version::V1,
            compression,
            data_page_size: None,
        };
        let writer = FileWriter::try_new(sink, schema, options)?;
        let descriptors = writer.parquet_schema().columns().iter().map(|c| c.descriptor.clone()).collect();
        Ok(SpansParquetWriter {
            writer,
            descriptors,
            compression,
            columns: Columns::default(),
            traces: FxHashMap::default(),
            resource_json: Vec::new(),
            trace_ids: None,
        })
    }

    /// Also keeps the trace ids of the rows written (see [`Self::trace_ids`]).
    pub fn keeping_trace_ids(mut self) -> Self {
        self.trace_ids = Some(Vec::new());
        self
    }

    /// The trace ids of the row groups written so far, each row group's
    /// once, if [`Self::keeping_trace_ids`] asked for them.
    pub fn trace_ids(&self) -> &[TraceId] {
        self.trace_ids.as_deref().unwrap_or_default()
    }

    /// Rows added since the last row group was written.
    pub fn pending_rows(&self) -> usize {
        self.columns.rows
    }

    /// Adds a span whose attributes are `attributes`, a JSON object as
    /// [`json::attributes`] writes it (its own attribute list is not read).
    /// Every span of a writer comes with the same dictionary: values are
    /// found by symbol and resource index. An error (a value Parquet cannot
    /// hold) leaves the row group half added: the caller abandons the file.
    pub fn add(&mut self, dict: &Dictionary, s: &Span, attributes: &str) -> Result<(), TableError> {
        let c = &mut self.columns;
        let resource = dict.resource_of(s.resource);
        let next = self.traces.len();
        let trace_key = *self.traces.entry(s.trace_id).or_insert(next);
        let mut hex = [0u8; 32];
        c.trace_id.push(trace_key, || Some(super::hex(&s.trace_id.0, &mut hex)))?;
        c.span_id.push_hex(Some(&s.span_id.0));
        c.parent_span_id.push_hex(s.parent_id.as_ref().map(|p| &p.0[..]));
        c.service.push(s.service.index(), || Some(dict.resolve(s.service)))?;
        c.operation.push(s.name.index(), || Some(dict.resolve(s.name)))?;
        c.kind.push(s.kind as usize, || Some(s.kind.as_str()))?;
        c.status_code.push(s.status as usize, || Some(status_name(s.status)))?;
        c.status_message.push(s.status_message())?;
        let start_known = !s.quality.contains(SpanQuality::MISSING_START);
        c.start.push_u64(start_known.then_some(s.start_ns));
        c.end.push_u64(start_known.then_some(s.end_ns));
        c.duration.push_u64(s.duration_ns());
        c.version.push(resource.version.index(), || non_empty(dict, resource.version))?;
        c.environment.push(resource.environment.index(), || non_empty(dict, resource.environment))?;
        c.host.push(resource.host.index(), || non_empty(dict, resource.host))?;
        c.scope_name.push(s.scope_name.index(), || non_empty(dict, s.scope_name))?;
        c.scope_version.push(s.scope_version.index(), || non_empty(dict, s.scope_version))?;
        c.trace_state.push(s.trace_state())?;
        c.flags.push_u32(s.flags);
        let r = s.resource.index();
        if self.resource_json.len() <= r {
            self.resource_json.resize(r + 1, None);
        }
        let resource_json = &mut self.resource_json[r];
        c.resource_attributes
            .push(r, || Some(resource_json.get_or_insert_with(|| json::attributes(dict, &resource.attributes))))?;
        c.span_attributes.push(Some(attributes))?;
        let events = (!s.events().is_empty()).then(|| json::events(dict, s.events()));
        c.events.push(events.as_deref())?;
        let links = (!s.links().is_empty()).then(|| json::links(dict, s.links()));
        c.links.push(links.as_deref())?;
        c.rows += 1;
        Ok(())
    }

    /// Writes the rows added since the last row group as one (nothing when
    /// there are none).
    pub fn write_row_group(&mut self) -> Result<(), TableError> {
        let rows = self.columns.rows;
        if rows == 0 {
            return Ok(());
        }
        let pages = (self.columns.all().into_iter().zip(&self.descriptors))
            .map(|(column, descriptor)| column.pages(descriptor, rows))
            .collect::<Result<Vec<_>, _>>()?;
        let compression = self.compression;
        let columns = pages.into_iter().map(move |pages| {
            let compressed = Compressor::new(pages.into_iter().map(Ok), compression, Vec::new())
                .map_err(|e| PolarsError::ComputeError(e.to_string().into()));
            Ok(DynStreamingIterator::new(compressed))
        });
        self.writer.write(rows as u64, DynIter::new(columns))?;
        if let Some(ids) = &mut self.trace_ids {
            ids.extend(self.traces.keys());
        }
        self.clear();
        Ok(())
    }

    fn clear(&mut self) {
        for column in self.columns.all() {
            column.clear();
        }
        self.columns.rows = 0;
        self.traces.clear();
    }

    /// Writes the pending rows and the file's footer; returns the sink.
    pub fn finish(mut self) -> Result<W, TableError> {
        self.write_row_group()?;
        self.writer.end(None)?;
        Ok(self.writer.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;
    use tracelens_core::model::{Attr, Event, Link, SpanId, Value, Warnings};
    use tracelens_core::read::read_spans;

    /// The shop fixture's spans, with what it lacks added: trace states,
    /// status messages, a span without a start, a root, events, links, a
    /// span without a scope, attributes large enough to fill several pages.
    fn spans(dict: &mut Dictionary) -> Vec<Span> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json");
        let mut spans = Vec::new();
        let mut warnings = Warnings::default();
        let file = std::fs::File::open(path).unwrap();
        read_spans(path, file, &crate::read_options(false), dict, &mut warnings, &mut |_, s| spans.push(s)).unwrap();
        assert!(spans.len() >= 12, "{}", spans.len());
        let (big, event) = (dict.intern("big"), dict.intern("retry"));
        spans[0].set_trace_state(Some("vendor=1".into()));
        spans[1].set_status_message(Some("it \"failed\"".into()));
        spans[2].quality.insert(SpanQuality::MISSING_START);
        spans[3].parent_id = None;
        spans[4].set_events(vec![Event { time_ns: 5, name: event, attributes: vec![] }]);
        let link = Link { trace_id: spans[0].trace_id, span_id: SpanId([7; 8]), attributes: vec![] };
        spans[5].set_links(vec![link]);
        // No scope: with a row group of one span, columns of nulls only.
        spans[9].scope_name = Sym::EMPTY;
        spans[9].scope_version = Sym::EMPTY;
        for s in &mut spans[6..9] {
            s.attributes.push(Attr { key: big, value: Value::Str("x".repeat(PAGE_BYTES / 2 + 1).into()) });
        }
        spans
    }

    fn write(dict: &Dictionary, spans: &[Span], row_group: usize) -> Vec<u8> {
        let mut out = SpansParquetWriter::new(Vec::new(), 1).unwrap();
        for s in spans {
            out.add(dict, s, &json::attributes(dict, &s.attributes)).unwrap();
            if out.pending_rows() == row_group {
                out.write_row_group().unwrap();
            }
        }
        out.finish().unwrap()
    }

    fn texts(df: &DataFrame, column: &str) -> Vec<Option<String>> {
        let c = df.column(column).unwrap().cast(&DataType::String).unwrap();
        c.str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn files_read_back_as_the_spans_table() {
        let mut dict = Dictionary::default();
        let spans = spans(&mut dict);
        let mut rows = SpanRows::default();
        rows.add_spans(&dict, &spans);
        let want = rows.finish().unwrap();
        for row_group in [1, 5, spans.len()] {
            let bytes = write(&dict, &spans, row_group);
            let got = ParquetReader::new(std::io::Cursor::new(&bytes)).finish().unwrap();
            assert_eq!(got.schema(), want.schema(), "row groups of {row_group}");
            for column in want.get_column_names() {
                assert_eq!(texts(&got, column), texts(&want, column), "{column}, row groups of {row_group}");
            }
            let metadata = polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
            assert_eq!(metadata.row_groups.len(), spans.len().div_ceil(row_group));
        }
        // The columns have what the fixture and the changes above put there.
        assert!(texts(&want, "trace_state").iter().filter(|t| t.is_some()).count() == 1);
        assert_eq!(texts(&want, "start_unix_nano")[2], None);
        assert_eq!(texts(&want, "parent_span_id")[3], None);
        assert!(texts(&want, "events")[4].as_deref().is_some_and(|e| e.contains("retry")));
        assert_eq!(texts(&want, "scope_version")[9], None);
    }

    #[test]
    fn large_text_columns_are_split_into_pages() {
        let mut dict = Dictionary::default();
        let spans = spans(&mut dict);
        let mut column = TextColumn::default();
        for s in &spans {
            column.push(Some(&json::attributes(&dict, &s.attributes))).unwrap();
        }
        let bytes = write(&dict, &spans, spans.len());
        let metadata = polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
        let names: Vec<_> = metadata.schema().columns().iter().map(|c| c.path_in_schema[0].to_string()).collect();
        assert_eq!(names, COLUMNS);
        // Three values of half a page: the page ends after the second.
        assert_eq!(column.page_starts.len(), 1, "{:?}", column.page_starts);
        assert_eq!(column.page_starts[0].0, 8);
    }

    #[test]
    fn a_file_without_rows_reads_as_the_empty_table() {
        let bytes = SpansParquetWriter::new(Vec::new(), 1).unwrap().finish().unwrap();
        let got = ParquetReader::new(std::io::Cursor::new(&bytes)).finish().unwrap();
        assert_eq!(got.height(), 0);
        assert_eq!(got.schema(), SpanRows::default().finish().unwrap().schema());
    }

    /// Row-group statistics are what a filtered scan prunes by: wrong ones
    /// would lose rows.
    #[test]
    fn filtered_scans_keep_every_matching_row() {
        let mut dict = Dictionary::default();
        let mut spans = spans(&mut dict);
        spans.sort_by_key(|s| (s.start_ns, s.service));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.parquet");
        std::fs::write(&path, write(&dict, &spans, 4)).unwrap();
        let starts: Vec<u64> = spans.iter().map(|s| s.start_ns).collect();
        let cut = starts[starts.len() / 2];
        let service = dict.resolve(spans[spans.len() - 1].service).to_string();
        let scan =
            || LazyFrame::scan_parquet(PlRefPath::new(path.to_str().unwrap()), ScanArgsParquet::default()).unwrap();
        let late = scan().filter(col("start_unix_nano").gt_eq(lit(cut))).collect().unwrap();
        let want =
            spans.iter().filter(|s| !s.quality.contains(SpanQuality::MISSING_START) && s.start_ns >= cut).count();
        assert_eq!(late.height(), want);
        let named = scan().filter(col("service").eq(lit(service.as_str()))).collect().unwrap();
        assert_eq!(named.height(), spans.iter().filter(|s| dict.resolve(s.service) == service).count());
        assert!(named.height() > 0);
    }
}
