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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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
    writer_interleaved(format, out, batch_spans, 0)
}

/// [`writer`], whose OTLP requests hold spans in the order they ended
/// rather than trace by trace: spans wait among the last `window` spans
/// generated and leave, earliest end first, as SDKs and a Collector send
/// them — a trace's spans spread over several requests, between other
/// traces' (0: whole traces, in order).
pub fn writer_interleaved(
    format: OutputFormat,
    out: Output,
    batch_spans: usize,
    window: usize,
) -> Box<dyn TraceWriter> {
    fn batched<E: BatchEncoder + 'static>(e: E, out: Output, batch: usize, window: usize) -> Box<dyn TraceWriter> {
        Box::new(Batched::new(e, out, batch).interleave(window))
    }
    match format {
        OutputFormat::OtlpJsonLines => batched(otlp_json::OtlpJsonLines::default(), out, batch_spans, window),
        OutputFormat::OtlpProtobufStream => batched(otlp_proto::OtlpProtoStream::default(), out, batch_spans, window),
        OutputFormat::OtlpJson => batched(otlp_json::OtlpJsonLines::default(), out, usize::MAX, window),
        OutputFormat::OtlpProtobuf => batched(otlp_proto::OtlpProtoStream::bare(), out, usize::MAX, window),
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
    /// Spans waiting to leave in end order (see [`writer_interleaved`]):
    /// (end, sequence, span), earliest first.
    waiting: BinaryHeap<Reverse<(u64, u64, GenSpan)>>,
    window: usize,
    seq: u64,
}

impl<E: BatchEncoder> Batched<E> {
    fn new(encoder: E, out: Output, batch_spans: usize) -> Self {
        Batched {
            encoder,
            batch: Batch::default(),
            batch_spans: batch_spans.max(1),
            out,
            waiting: BinaryHeap::new(),
            window: 0,
            seq: 0,
        }
    }

    fn interleave(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// Moves the span that ended first from the waiting ones to the batch.
    fn release_one(&mut self, catalog: &Catalog) -> io::Result<()> {
        if let Some(Reverse((_, _, span))) = self.waiting.pop() {
            self.batch.push(std::slice::from_ref(&span));
            if self.batch.len() >= self.batch_spans {
                self.flush(catalog)?;
            }
        }
        Ok(())
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
        if self.window == 0 {
            self.batch.push(spans);
            if self.batch.len() >= self.batch_spans {
                self.flush(catalog)?;
            }
            return Ok(());
        }
        for span in spans {
            self.seq += 1;
            self.waiting.push(Reverse((span.end_ns, self.seq, *span)));
        }
        while self.waiting.len() > self.window {
            self.release_one(catalog)?;
        }
        Ok(())
    }

    fn finish(&mut self, catalog: &Catalog) -> io::Result<()> {
        while !self.waiting.is_empty() {
            self.release_one(catalog)?;
        }
        self.flush(catalog)?;
        self.out.finish()
    }
}

/// A resource's spans in a batch: (resource, [(scope, indices into the
/// batch's order)]).
type ResourceRun = (u32, Vec<(u32, std::ops::Range<usize>)>);

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

    /// Runs of span indices sharing a resource, in resource order, each
    /// cut into runs sharing a scope, in scope order: (resource, [(scope,
    /// indices into `order`)]).
    fn by_resource(&mut self, catalog: &Catalog) -> Vec<ResourceRun> {
        self.order.clear();
        self.order.extend(0..self.spans.len() as u32);
        let spans = &self.spans;
        let key = |i: u32| {
            let s = &spans[i as usize];
            (s.resource, catalog.scope_of(s.attrs))
        };
        self.order.sort_by_key(|&i| key(i));
        let mut runs: Vec<ResourceRun> = Vec::new();
        let mut start = 0;
        for i in 1..=self.order.len() {
            if i < self.order.len() && key(self.order[i]) == key(self.order[start]) {
                continue;
            }
            let (resource, scope) = key(self.order[start]);
            match runs.last_mut() {
                Some((r, scopes)) if *r == resource => scopes.push((scope, start..i)),
                _ => runs.push((resource, vec![(scope, start..i)])),
            }
            start = i;
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
