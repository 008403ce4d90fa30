//! Writers of generated traces, one per format tracelens reads, over an
//! optionally compressed output. Each encodes directly from the
//! [`GenSpan`]s and the [`Catalog`] (resources and attribute sets are
//! encoded once and reused), keeping one batch in memory at most.
//!
//! Writers: `otlp_json`, `otlp_proto`, `jaeger`, `zipkin`, over
//! `json_text` (escaped JSON text for their hot loops).

mod jaeger;
mod json_text;
mod otlp_json;
mod otlp_proto;
mod zipkin;

use std::io::{self, BufWriter, Write};

use super::{Catalog, GenSpan};

/// Receives traces one at a time.
pub trait TraceWriter {
    /// Writes (or buffers) one trace.
    fn write_trace(&mut self, catalog: &Catalog, spans: &[GenSpan]) -> io::Result<()>;
    /// Flushes everything and closes the format and compression framing.
    fn finish(&mut self, catalog: &Catalog) -> io::Result<()>;
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// OTLP/JSON lines, one `TracesData` per batch (the Collector file exporter's JSON).
    OtlpJsonLines,
    /// Length-prefixed OTLP protobuf, one `TracesData` per batch (the file exporter's proto).
    OtlpProtobufStream,
    /// One OTLP/JSON `ExportTraceServiceRequest` holding every span (the
    /// body of one `POST /v1/traces`; the spans are held until the end).
    OtlpJson,
    /// One OTLP protobuf `ExportTraceServiceRequest` holding every span.
    OtlpProtobuf,
    /// Jaeger query API JSON (`{"data": [...]}`).
    JaegerJson,
    /// Zipkin v2 JSON span array.
    ZipkinJson,
}

/// Whole-output compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCompression {
    /// None.
    None,
    /// gzip (no timestamp in the header, so output is reproducible).
    Gzip,
    /// zstd.
    Zstd,
}

/// A byte sink with optional compression that must be finished.
pub struct Output {
    inner: OutputInner,
}

enum OutputInner {
    Plain(BufWriter<Box<dyn Write>>),
    Gzip(flate2::write::GzEncoder<BufWriter<Box<dyn Write>>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<Box<dyn Write>>>),
    Done,
}

const OUTPUT_BUFFER: usize = 1 << 20;

impl Output {
    /// Wraps `out` with `compression`.
    pub fn new(out: Box<dyn Write>, compression: OutputCompression) -> io::Result<Output> {
        let buffered = BufWriter::with_capacity(OUTPUT_BUFFER, out);
        let inner = match compression {
            OutputCompression::None => OutputInner::Plain(buffered),
            OutputCompression::Gzip => {
                OutputInner::Gzip(flate2::GzBuilder::new().mtime(0).write(buffered, flate2::Compression::default()))
            }
            OutputCompression::Zstd => OutputInner::Zstd(zstd::stream::write::Encoder::new(buffered, 3)?),
        };
        Ok(Output { inner })
    }

    /// Ends compression and flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.inner, OutputInner::Done) {
            OutputInner::Plain(mut w) => w.flush(),
            OutputInner::Gzip(w) => w.finish()?.flush(),
            OutputInner::Zstd(w) => w.finish()?.flush(),
            OutputInner::Done => Ok(()),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            OutputInner::Plain(w) => w.write(buf),
            OutputInner::Gzip(w) => w.write(buf),
            OutputInner::Zstd(w) => w.write(buf),
            OutputInner::Done => Err(io::Error::other("output already finished")),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            OutputInner::Plain(w) => w.write_all(buf),
            OutputInner::Gzip(w) => w.write_all(buf),
            OutputInner::Zstd(w) => w.write_all(buf),
            OutputInner::Done => Err(io::Error::other("output already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            OutputInner::Plain(w) => w.flush(),
            OutputInner::Gzip(w) => w.flush(),
            OutputInner::Zstd(w) => w.flush(),
            OutputInner::Done => Ok(()),
        }
    }
}

/// A writer for `format` over `out`; OTLP formats put about `batch_spans`
/// spans (whole traces) in each request.
pub fn writer(format: OutputFormat, out: Output, batch_spans: usize) -> Box<dyn TraceWriter> {
    match format {
        OutputFormat::OtlpJsonLines => Box::new(Batched::new(otlp_json::OtlpJsonLines::default(), out, batch_spans)),
        OutputFormat::OtlpProtobufStream => {
            Box::new(Batched::new(otlp_proto::OtlpProtoStream::default(), out, batch_spans))
        }
        OutputFormat::OtlpJson => Box::new(Batched::new(otlp_json::OtlpJsonLines::default(), out, usize::MAX)),
        OutputFormat::OtlpProtobuf => Box::new(Batched::new(otlp_proto::OtlpProtoStream::bare(), out, usize::MAX)),
        OutputFormat::JaegerJson => Box::new(jaeger::JaegerWriter::new(out)),
        OutputFormat::ZipkinJson => Box::new(zipkin::ZipkinWriter::new(out)),
    }
}

/// Encodes one batch of whole traces as one OTLP request.
trait BatchEncoder {
    fn encode(&mut self, catalog: &Catalog, batch: &mut Batch, out: &mut Output) -> io::Result<()>;
}

/// Collects whole traces into batches of about `batch_spans` spans and
/// hands each full batch to an encoder.
struct Batched<E> {
    encoder: E,
    batch: Batch,
    batch_spans: usize,
    out: Output,
}

impl<E: BatchEncoder> Batched<E> {
    fn new(encoder: E, out: Output, batch_spans: usize) -> Self {
        Batched { encoder, batch: Batch::default(), batch_spans: batch_spans.max(1), out }
    }

    fn flush(&mut self, catalog: &Catalog) -> io::Result<()> {
        if self.batch.len() > 0 {
            self.encoder.encode(catalog, &mut self.batch, &mut self.out)?;
            self.batch.clear();
        }
        Ok(())
    }
}

impl<E: BatchEncoder> TraceWriter for Batched<E> {
    fn write_trace(&mut self, catalog: &Catalog, spans: &[GenSpan]) -> io::Result<()> {
        self.batch.push(spans);
        if self.batch.len() >= self.batch_spans {
            self.flush(catalog)?;
        }
        Ok(())
    }

    fn finish(&mut self, catalog: &Catalog) -> io::Result<()> {
        self.flush(catalog)?;
        self.out.finish()
    }
}

/// Spans of whole traces collected until a batch is full, grouped by
/// resource when taken.
#[derive(Default)]
struct Batch {
    spans: Vec<GenSpan>,
    order: Vec<u32>,
}

impl Batch {
    fn push(&mut self, spans: &[GenSpan]) {
        self.spans.extend_from_slice(spans);
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    /// Runs of span indices sharing a resource, in resource order.
    fn by_resource(&mut self) -> Vec<(u32, std::ops::Range<usize>)> {
        self.order.clear();
        self.order.extend(0..self.spans.len() as u32);
        let spans = &self.spans;
        self.order.sort_by_key(|&i| spans[i as usize].resource);
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=self.order.len() {
            let boundary = i == self.order.len()
                || spans[self.order[i] as usize].resource != spans[self.order[start] as usize].resource;
            if boundary {
                runs.push((spans[self.order[start] as usize].resource, start..i));
                start = i;
            }
        }
        runs
    }

    fn clear(&mut self) {
        self.spans.clear();
    }
}

/// Lower-case hex of `bytes` into `out`.
fn hex_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
}

/// The scope every generated span carries.
const SCOPE_NAME: &str = "tracelens-generate";
const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");
