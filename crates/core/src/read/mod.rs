//! Reading trace dumps: format detection by content (never by file name),
//! transparent gzip/zstd decompression, and one streaming reader per format.
//!
//! Every reader converts into [`crate::model`] at the edge and hands spans
//! to a sink as it decodes them; nothing downstream sees JSON or protobuf.
//!
//! | Detected by | Format |
//! |---|---|
//! | `1F 8B` / `28 B5 2F FD` at offset 0 | gzip / zstd: decompressed, then detected again |
//! | first non-blank byte `{` or `[` | JSON: OTLP (`resourceSpans`), Tempo (`batches`, `trace`), Jaeger (`data`, `spans`), Zipkin (array); one document or JSON lines |
//! | first byte `0A` | bare OTLP protobuf `ExportTraceServiceRequest` / `TracesData` |
//! | first byte below `10` | Collector file exporter stream: `[u32 BE length][record]`, records protobuf, JSON or zstd |
//!
//! Modules: `input` (paths and standard input), `error`, `emit` (the
//! [`Emitter`] every reader hands spans to), `chunked` (length-prefixed
//! streams and JSON lines decoded on several threads), `json` (framing and dialect
//! dispatch), `json_blocks` (large documents read element by element),
//! `lenient` (tolerant JSON pieces), `otlp_json`,
//! `otlp_proto` (bare requests and the Collector's stream) over
//! `otlp_wire` (a borrowing protobuf decoder), `jaeger`, `zipkin`.

mod chunked;
mod emit;
mod error;
mod input;
mod jaeger;
mod json;
mod json_blocks;
mod lenient;
mod otlp_json;
mod otlp_proto;
mod otlp_wire;
#[cfg(test)]
mod test_support;
mod zipkin;

use std::fmt;
use std::io::{BufReader, Cursor, Read};

pub use emit::{AttributesJson, Emitter, RawId};
pub use error::{ReadError, ReadErrorKind};
pub use input::{Input, expand_inputs};

use crate::model::{Dictionary, Span, Warnings};

/// Reads a whole Parquet file (its bytes) into the emitter; the Parquet
/// reader lives in `tracelens-table`, apart from this crate's
/// dependencies.
pub type ParquetReader = fn(Vec<u8>, &mut Emitter<'_>) -> Result<(), ReadErrorKind>;

/// The first bytes of a Parquet file.
pub const PARQUET_MAGIC: &[u8] = b"PAR1";

/// Options shared by all readers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Fail on the first bad record of a stream instead of skipping it.
    pub strict: bool,
    /// How to read a Parquet file (None: Parquet input is refused with
    /// [`ReadErrorKind::ParquetUnsupported`]).
    pub parquet: Option<ParquetReader>,
    /// When set, only span, event and link attributes with these keys are
    /// kept (resource attributes always are): what the analyses read
    /// ([`crate::analysis::ATTRIBUTES_READ`]), so the others are checked
    /// but never allocated.
    pub keep_attributes: Option<&'static [&'static str]>,
    /// Threads decoding a length-prefixed stream or JSON lines, in chunks
    /// of whole records (0 or 1: decode on the calling thread). Whatever
    /// the number, the spans, warnings and errors are those of one thread,
    /// in the same order.
    pub threads: usize,
    /// Bytes of whole records per chunk handed to a decoding thread (0:
    /// [`DEFAULT_CHUNK_BYTES`]).
    pub chunk_bytes: usize,
    /// A JSON document up to this size is parsed whole from memory; a
    /// larger one is read in blocks, element by element (0: 16 MiB).
    pub document_bytes_in_memory: u64,
}

/// Bytes of records per chunk a decoding thread takes by default.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// The JSON dialect an input turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OTLP/JSON (`resourceSpans`), including Jaeger api_v3 `result`.
    Otlp,
    /// Tempo's `{"batches": [...]}`.
    Tempo,
    /// Jaeger UI/query JSON.
    Jaeger,
    /// Zipkin v2 JSON.
    Zipkin,
}

/// How an input is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Nothing but whitespace.
    Empty,
    /// One JSON document.
    Json,
    /// JSON lines (several records, one per line).
    JsonLines,
    /// A bare protobuf `ExportTraceServiceRequest` / `TracesData`.
    Protobuf,
    /// Length-prefixed records (the Collector's file exporter).
    LengthPrefixed,
    /// A Parquet file (tracelens's spans table or the ClickHouse exporter's layout).
    Parquet,
}

/// Whole-input compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip
    Gzip,
    /// zstd
    Zstd,
}

impl Compression {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What an input turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// Framing and encoding.
    pub encoding: Encoding,
    /// JSON dialect, when JSON.
    pub dialect: Option<Dialect>,
    /// Whole-input compression, outermost first (at most two layers).
    pub compression: [Option<Compression>; 2],
}

impl Format {
    /// A short name such as `otlp-json-lines`, `zipkin-json` or
    /// `otlp-protobuf-stream`.
    pub fn name(&self) -> &'static str {
        match (self.encoding, self.dialect) {
            (Encoding::Empty, _) => "empty",
            (Encoding::Protobuf, _) => "otlp-protobuf",
            (Encoding::LengthPrefixed, _) => "otlp-protobuf-stream",
            (Encoding::Parquet, _) => "parquet",
            (Encoding::Json, Some(Dialect::Otlp) | None) => "otlp-json",
            (Encoding::JsonLines, Some(Dialect::Otlp) | None) => "otlp-json-lines",
            (Encoding::Json, Some(Dialect::Tempo)) => "tempo-json",
            (Encoding::JsonLines, Some(Dialect::Tempo)) => "tempo-json-lines",
            (Encoding::Json, Some(Dialect::Jaeger)) => "jaeger-json",
            (Encoding::JsonLines, Some(Dialect::Jaeger)) => "jaeger-json-lines",
            (Encoding::Json, Some(Dialect::Zipkin)) => "zipkin-json",
            (Encoding::JsonLines, Some(Dialect::Zipkin)) => "zipkin-json-lines",
        }
    }

    /// Compression layers, outermost first.
    pub fn compressions(&self) -> impl Iterator<Item = Compression> + '_ {
        self.compression.iter().flatten().copied()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        for c in self.compressions() {
            write!(f, "+{}", c.as_str())?;
        }
        Ok(())
    }
}

/// The result of reading one input.
#[derive(Clone, Debug)]
pub struct InputReport {
    /// Detected format.
    pub format: Format,
    /// Spans emitted.
    pub spans: u64,
    /// Messages of the first skipped bad records, if any.
    pub bad_records: Vec<String>,
}

const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
const HEAD_BYTES: usize = 4096;
const BUFFER_BYTES: usize = 256 << 10;

/// Converts one decoded OTLP `ResourceSpans` (for the receiver).
pub fn emit_otlp_resource_spans(rs: &opentelemetry_proto::tonic::trace::v1::ResourceSpans, e: &mut Emitter<'_>) {
    otlp_proto::emit_resource_spans(rs, e);
}

/// Reads one protobuf `ExportTraceServiceRequest` body (for the receiver).
pub fn read_otlp_protobuf(body: &[u8], e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    otlp_proto::read_bare_slice(body, e)
}

/// Reads one OTLP/JSON request body (for the receiver).
pub fn read_otlp_json_record(body: &[u8], e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    json::read_record(body, e)
}

/// Reads one input, whatever its format, passing each span to `sink`
/// together with the dictionary its names and resource refer into.
/// `name` is used in errors and to derive stable synthetic ids.
pub fn read_spans(
    name: &str,
    source: impl Read,
    opts: &ReadOptions,
    dict: &mut Dictionary,
    warnings: &mut Warnings,
    sink: &mut dyn FnMut(&Dictionary, Span),
) -> Result<InputReport, ReadError> {
    let mut emitter = Emitter::new(name, dict, warnings, sink);
    if let Some(keys) = opts.keep_attributes {
        emitter = emitter.keep_only_attributes(keys);
    }
    let mut format = Format { encoding: Encoding::Empty, dialect: None, compression: [None, None] };
    let result = detect_and_read(Box::new(source), 0, &mut format, &mut emitter, opts);
    format.dialect = emitter.dialect();
    match result {
        Ok(()) => {
            Ok(InputReport { format, spans: emitter.spans(), bad_records: emitter.bad_record_messages().to_vec() })
        }
        Err(kind) => Err(ReadError { input: name.to_string(), kind }),
    }
}

fn detect_and_read(
    mut source: Box<dyn Read + '_>,
    depth: usize,
    format: &mut Format,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
) -> Result<(), ReadErrorKind> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    source.by_ref().take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    let compression = if head.starts_with(&GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if head.starts_with(&ZSTD_MAGIC) {
        Some(Compression::Zstd)
    } else {
        None
    };
    if let Some(compression) = compression {
        let Some(slot) = format.compression.get_mut(depth) else {
            return Err(ReadErrorKind::Unrecognized("more than two layers of compression".to_string()));
        };
        *slot = Some(compression);
        let raw = Cursor::new(head).chain(source);
        let inner: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
        };
        return detect_and_read(inner, depth + 1, format, e, opts);
    }
    if head.starts_with(PARQUET_MAGIC) {
        format.encoding = Encoding::Parquet;
        let Some(read_parquet) = opts.parquet else { return Err(ReadErrorKind::ParquetUnsupported) };
        let mut all = head;
        source.read_to_end(&mut all)?;
        return read_parquet(all, e);
    }
    if head.starts_with(&UTF8_BOM) {
        head.drain(..UTF8_BOM.len());
    }
    let kind = sniff(&head);
    let shown = format!("{}{}", head[..head.len().min(32)].escape_ascii(), if head.len() > 32 { "…" } else { "" });
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, Cursor::new(head).chain(source));
    match kind {
        Sniffed::Json => {
            format.encoding = match json::read_json(&mut reader, e, opts)? {
                json::Framing::Empty => Encoding::Empty,
                json::Framing::Document => Encoding::Json,
                json::Framing::Lines => Encoding::JsonLines,
            };
            Ok(())
        }
        Sniffed::Protobuf => {
            format.encoding = Encoding::Protobuf;
            otlp_proto::read_bare(&mut reader, e)
        }
        Sniffed::LengthPrefixed => {
            format.encoding = Encoding::LengthPrefixed;
            otlp_proto::read_length_prefixed(&mut reader, e, opts)
        }
        Sniffed::Unknown => Err(ReadErrorKind::NotTraces(format!(
            "not a trace format tracelens reads (it starts \"{shown}\"); expected OTLP JSON or protobuf, \
             Jaeger JSON, Zipkin JSON, Parquet, or gzip/zstd of one"
        ))),
    }
}

enum Sniffed {
    Json,
    Protobuf,
    LengthPrefixed,
    Unknown,
}

/// Decides the encoding from the first bytes (after decompression).
fn sniff(head: &[u8]) -> Sniffed {
    let first = head.iter().copied().find(|b| !b.is_ascii_whitespace());
    // Text: no control bytes but whitespace. Protobuf always has some (field
    // tags 0x12, 0x1a, …), even when it happens to start with "\n{".
    let is_text = head.iter().all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'));
    match (first, head.first()) {
        (None, _) => Sniffed::Json,
        (Some(b'{' | b'['), _) if is_text => Sniffed::Json,
        (_, Some(0x0A)) => Sniffed::Protobuf,
        (_, Some(&b)) if b < 0x10 && head.len() >= 4 => Sniffed::LengthPrefixed,
        _ => Sniffed::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert!(matches!(sniff(b"  {\"resourceSpans\":[]}"), Sniffed::Json));
        assert!(matches!(sniff(b"\n[]"), Sniffed::Json));
        assert!(matches!(sniff(b""), Sniffed::Json));
        assert!(matches!(sniff(&[0x0A, b'{', 0x0A, 0x12, 0x00]), Sniffed::Protobuf));
        assert!(matches!(sniff(&[0x00, 0x00, 0x01, 0x02, 0x0A]), Sniffed::LengthPrefixed));
        assert!(matches!(sniff(b"hello"), Sniffed::Unknown));
        assert!(matches!(sniff(&[0x00, 0x01]), Sniffed::Unknown));
    }
}
