//! Large JSON documents read in blocks: a document whose trace data is one
//! top-level array — a Jaeger `{"data": [trace, …]}`, an OTLP or Tempo
//! `{"resourceSpans" | "batches": [resourceSpans, …]}`, a Zipkin span array
//! — is scanned block by block for the array's elements, and each element is
//! parsed from memory on its own (on the decoding threads, in chunks, as
//! JSON lines are). A document of any size is then read as fast as a small
//! one and never held whole: memory is a block, the chunks in flight and
//! one element.
//!
//! The scan only finds where elements begin and end (strings, escapes and
//! nesting); the elements are parsed as the whole-document reader parses
//! them, and the keys after the array as it would. A document of another
//! shape is streamed whole (see `json`).

use std::io::{Cursor, Read};

use serde::de::DeserializeSeed;

use super::chunked::{self, Chunk, ChunkOutcome, Tail};
use super::emit::Emitter;
use super::error::ReadErrorKind;
use super::jaeger::{self, JaegerTrace};
use super::json::{Doc, ZipkinItem, element_error};
use super::otlp_json::{self, JResourceSpans};
use super::{Dialect, ReadOptions};

/// Bytes read from the input at a time.
pub(crate) const BLOCK_BYTES: usize = 8 << 20;

/// What the elements of the document's array are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elements {
    /// Jaeger traces (`data`).
    Jaeger,
    /// OTLP `ResourceSpans` (`resourceSpans`).
    Otlp,
    /// Tempo batches: OTLP `ResourceSpans` (`batches`).
    Tempo,
    /// Zipkin spans (or arrays of them) in a top-level array.
    Zipkin,
}

impl Elements {
    fn dialect(self) -> Dialect {
        match self {
            Elements::Jaeger => Dialect::Jaeger,
            Elements::Otlp => Dialect::Otlp,
            Elements::Tempo => Dialect::Tempo,
            Elements::Zipkin => Dialect::Zipkin,
        }
    }

    fn decoder(self) -> fn(&Chunk, &mut Emitter<'_>, bool) -> ChunkOutcome {
        match self {
            Elements::Jaeger => |c, e, _| decode(c, e, Elements::Jaeger),
            Elements::Otlp => |c, e, _| decode(c, e, Elements::Otlp),
            Elements::Tempo => |c, e, _| decode(c, e, Elements::Tempo),
            Elements::Zipkin => |c, e, _| decode(c, e, Elements::Zipkin),
        }
    }
}

/// The input as blocks in a buffer, with the line and column of a position.
struct Scanner<'r> {
    r: &'r mut dyn Read,
    buf: Vec<u8>,
    /// Next byte to look at, in `buf`.
    pos: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Bytes read at a time.
    block: usize,
    /// Keep every byte read (while the shape is not known, the whole
    /// document may still have to be read from the buffer).
    hold: bool,
    /// Line of `counted` (1-based), and the input offset where it began.
    line: u64,
    line_start: u64,
    /// Input offset up to which newlines were counted.
    counted: u64,
}

impl Scanner<'_> {
    /// The byte at `pos`, reading on when the buffer is used up; `keep`
    /// is the first buffered byte still needed (it may move: returned).
    fn peek(&mut self, keep: &mut usize) -> Result<Option<u8>, ReadErrorKind> {
        if self.pos >= self.buf.len() {
            if self.eof {
                return Ok(None);
            }
            // Drop what is no longer needed, then read a block.
            let drop = if self.hold { 0 } else { (*keep).min(self.pos) };
            self.count_lines_to(self.base + drop as u64);
            self.buf.drain(..drop);
            // The first buffer (the document's beginning) may be larger
            // than a block: memory is a block or two once past it.
            if self.buf.capacity() > 4 * self.block {
                self.buf.shrink_to((2 * self.block).max(self.buf.len()));
            }
            self.base += drop as u64;
            self.pos -= drop;
            *keep -= drop;
            let before = self.buf.len();
            let got = self.r.take(self.block as u64).read_to_end(&mut self.buf)?;
            self.eof = got == 0;
            if self.buf.len() == before {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// Skips whitespace; the next byte, if any.
    fn skip_ws(&mut self) -> Result<Option<u8>, ReadErrorKind> {
        loop {
            let mut keep = self.pos;
            match self.peek(&mut keep)? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                other => return Ok(other),
            }
        }
    }

    /// Counts newlines up to input offset `to`.
    fn count_lines_to(&mut self, to: u64) {
        if to <= self.counted {
            return;
        }
        let from = (self.counted - self.base) as usize;
        let slice = &self.buf[from..(to - self.base) as usize];
        for i in memchr::memchr_iter(b'\n', slice) {
            self.line += 1;
            self.line_start = self.counted + i as u64 + 1;
        }
        self.counted = to;
    }

    /// Line and column (1-based) of buffer position `at`.
    fn line_column(&mut self, at: usize) -> (u64, u64) {
        let offset = self.base + at as u64;
        self.count_lines_to(offset);
        (self.line, offset - self.line_start + 1)
    }

    fn error_here(&mut self, message: &str) -> ReadErrorKind {
        let (line, column) = self.line_column(self.pos);
        ReadErrorKind::AtLine { line, column, message: message.to_string() }
    }

    /// A string without escapes at `pos` (a key), if it is one.
    fn plain_string(&mut self) -> Result<Option<String>, ReadErrorKind> {
        if self.skip_ws()? != Some(b'"') {
            return Ok(None);
        }
        // `keep` is the opening quote, wherever the buffer moves it.
        let mut keep = self.pos;
        self.pos += 1;
        loop {
            match self.peek(&mut keep)? {
                Some(b'"') => break,
                Some(b'\\') | None => return Ok(None),
                Some(_) => self.pos += 1,
            }
        }
        let text = String::from_utf8_lossy(&self.buf[keep + 1..self.pos]).into_owned();
        self.pos += 1;
        Ok(Some(text))
    }

    /// Scans one array element from `pos` (at its first byte): returns
    /// its start in the buffer (the buffer may have moved) and leaves
    /// `pos` after it. Strings are crossed with `memchr`, the bytes
    /// between them one by one (there are few: `":,{}[]` and numbers).
    fn element(&mut self) -> Result<usize, ReadErrorKind> {
        let mut start = self.pos;
        let mut depth = 0u32;
        let mut in_string = false;
        // The byte after a backslash that ended the buffer.
        let mut skip_next = false;
        loop {
            if self.peek(&mut start)?.is_none() {
                let what = if in_string { "EOF while parsing a string" } else { "EOF while parsing a list element" };
                return Err(self.error_here(what));
            }
            if skip_next {
                skip_next = false;
                self.pos += 1;
                continue;
            }
            let buf = &self.buf[..];
            let mut i = self.pos;
            let mut done = false;
            while i < buf.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                        None => i = buf.len(),
                        Some(k) if buf[i + k] == b'"' => {
                            in_string = false;
                            i += k + 1;
                            if depth == 0 {
                                done = true;
                                break;
                            }
                        }
                        Some(k) if i + k + 1 < buf.len() => i += k + 2,
                        Some(k) => {
                            i += k + 1;
                            skip_next = true;
                        }
                    }
                    continue;
                }
                match buf[i] {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => {
                        done = true;
                        break;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            done = true;
                            break;
                        }
                    }
                    b',' if depth == 0 => {
                        done = true;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            self.pos = i;
            if done {
                return Ok(start);
            }
        }
    }
}

/// Reads a JSON document, of which `doc` is the beginning and `r` the rest,
/// in blocks when its trace data is one top-level array; `None` (having
/// read nothing more) when it is of another shape. `lines_before` blank
/// lines came before the document; `block` bytes are read at a time.
pub(crate) fn read(
    doc: Vec<u8>,
    r: &mut dyn Read,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
    lines_before: u64,
    block: usize,
) -> Result<(), (Vec<u8>, Option<ReadErrorKind>)> {
    let mut s = Scanner {
        r,
        buf: doc,
        pos: 0,
        base: 0,
        eof: false,
        block: block.max(1),
        hold: true,
        line: 1 + lines_before,
        line_start: 0,
        counted: 0,
    };
    // Recognise the shape without letting go of the buffer: until then a
    // document of another shape is read whole from it.
    let shape = match shape(&mut s) {
        Ok(Some(shape)) => shape,
        Ok(None) => return Err((s.buf, None)),
        Err(err) => return Err((s.buf, Some(err))),
    };
    let (elements, key) = shape;
    s.hold = false;
    e.set_dialect(elements.dialect());
    let target = chunked::chunk_bytes(opts);
    let mut first = true;
    let mut fill = |chunk: &mut Chunk| -> Option<Tail> {
        while chunk.bytes.len() < target {
            match next_element(&mut s, &mut first, chunk) {
                Ok(true) => {}
                Ok(false) => return Some(Tail::End),
                Err(err) => return Some(Tail::Fatal(err)),
            }
        }
        None
    };
    let result = chunked::run(e, opts, &mut fill, elements.decoder());
    let result = result.and_then(|(_, tail)| match tail {
        Tail::End => rest(&mut s, key, e),
        Tail::Bad(err) | Tail::Fatal(err) => Err(err),
    });
    result.map_err(|err| (Vec::new(), Some(err)))
}

/// The kind of elements and the key of the array (none for a top-level
/// array), leaving the scanner inside the array; `None` for another shape.
fn shape(s: &mut Scanner<'_>) -> Result<Option<(Elements, Option<String>)>, ReadErrorKind> {
    match s.skip_ws()? {
        Some(b'[') => {
            s.pos += 1;
            Ok(Some((Elements::Zipkin, None)))
        }
        Some(b'{') => {
            s.pos += 1;
            let Some(key) = s.plain_string()? else { return Ok(None) };
            let elements = match key.as_str() {
                "data" => Elements::Jaeger,
                "resourceSpans" | "resource_spans" => Elements::Otlp,
                "batches" => Elements::Tempo,
                _ => return Ok(None),
            };
            if s.skip_ws()? != Some(b':') {
                return Ok(None);
            }
            s.pos += 1;
            if s.skip_ws()? != Some(b'[') {
                return Ok(None);
            }
            s.pos += 1;
            Ok(Some((elements, Some(key))))
        }
        _ => Ok(None),
    }
}

/// Adds the array's next element to `chunk` (its end, line and column);
/// `false` once the array ended.
fn next_element(s: &mut Scanner<'_>, first: &mut bool, chunk: &mut Chunk) -> Result<bool, ReadErrorKind> {
    match s.skip_ws()? {
        Some(b']') => {
            s.pos += 1;
            return Ok(false);
        }
        Some(b',') if !*first => {
            s.pos += 1;
            s.skip_ws()?;
        }
        Some(_) if *first => {}
        Some(_) => return Err(s.error_here("expected `,` or `]`")),
        None => return Err(s.error_here("EOF while parsing a list")),
    }
    *first = false;
    let start = s.element()?;
    let (line, column) = s.line_column(start);
    chunk.bytes.extend_from_slice(&s.buf[start..s.pos]);
    chunk.records.push((chunk.bytes.len(), line, column));
    Ok(true)
}

/// What follows the array: for a top-level array, nothing but whitespace;
/// for an object, its other keys, read as the whole-document reader reads
/// them (the array's key given again with an empty list).
fn rest(s: &mut Scanner<'_>, key: Option<String>, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let Some(key) = key else {
        return match s.skip_ws()? {
            None => Ok(()),
            Some(_) => Err(s.error_here("trailing characters")),
        };
    };
    let (line, column) = s.line_column(s.pos);
    // The keys after the array, behind the array's key with an empty list:
    // a position on the first line is shifted back by that prefix.
    let prefix = format!("{{\"{key}\":[]");
    let shift = prefix.len() as u64;
    let tail = Cursor::new(prefix.into_bytes()).chain(Cursor::new(s.buf.split_off(s.pos))).chain(&mut *s.r);
    let mut de = serde_json::Deserializer::from_reader(tail);
    Doc::new(e)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|err| element_error(&err, line, column.saturating_sub(shift)))
}

/// Parses each element of a chunk and emits its spans.
fn decode(chunk: &Chunk, e: &mut Emitter<'_>, elements: Elements) -> ChunkOutcome {
    let mut outcome = ChunkOutcome::default();
    e.set_dialect(elements.dialect());
    for (bytes, line, column) in chunk.iter() {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = match elements {
            Elements::Jaeger => serde::Deserialize::deserialize(&mut de).map(|t: JaegerTrace<'_>| {
                jaeger::emit_trace(&t, e);
            }),
            Elements::Otlp | Elements::Tempo => {
                serde::Deserialize::deserialize(&mut de).map(|rs: JResourceSpans<'_>| {
                    otlp_json::emit_resource_spans(&rs, e);
                })
            }
            Elements::Zipkin => ZipkinItem::new(e).deserialize(&mut de),
        };
        if let Err(err) = parsed.and_then(|()| de.end()) {
            outcome.fatal = Some(element_error(&err, line, column));
            break;
        }
        outcome.good += 1;
    }
    outcome
}
