//! JSON inputs: framing (one document, or JSON lines) and the top-level
//! dispatch that recognises each dialect by its keys as they stream past:
//! OTLP `resourceSpans`, Tempo `batches` / `trace`, Jaeger api_v3 `result`,
//! Jaeger `data` or a bare Jaeger trace, and Zipkin span arrays.
//!
//! Documents are streamed: each `ResourceSpans`, Jaeger trace or Zipkin
//! span is converted and emitted as soon as it is parsed. JSON lines are
//! read line by line; each line is one atomic record.

use std::fmt;
use std::io::{self, BufRead, Read};

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::chunked::{self, Chunk, ChunkOutcome, Tail};
use super::emit::Emitter;
use super::error::ReadErrorKind;
use super::jaeger::{self, JaegerProcesses, JaegerSpan, JaegerTrace};
use super::json_blocks;
use super::lenient::Text;
use super::otlp_json::{self, JResourceSpans};
use super::zipkin::{self, ZipkinSpan};
use super::{Dialect, ReadOptions};

/// The first line is probed as a JSON-lines record up to this size before
/// the rest is read; a longer first line is found in the document buffer.
const FIRST_LINE_PROBE_BYTES: u64 = 64 << 20;
/// No JSON line may be longer than this.
const MAX_LINE_BYTES: u64 = 256 << 20;
/// A document up to this size is parsed from memory (about three times as
/// fast as streaming, and strings are borrowed); a larger one is read in
/// blocks, element by element (`json_blocks`), or streamed when its trace
/// data is not one top-level array.
const DOCUMENT_IN_MEMORY_BYTES: u64 = 16 << 20;

/// How a JSON input was framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Document,
    Lines,
}

/// The sizes that decide how a JSON input is read.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// See [`FIRST_LINE_PROBE_BYTES`].
    first_line_probe: u64,
    /// See [`DOCUMENT_IN_MEMORY_BYTES`].
    in_memory: u64,
    /// Bytes a large document is read in at a time.
    block: usize,
}

const LIMITS: Limits = Limits {
    first_line_probe: FIRST_LINE_PROBE_BYTES,
    in_memory: DOCUMENT_IN_MEMORY_BYTES,
    block: json_blocks::BLOCK_BYTES,
};

/// Reads a JSON input (document or JSON lines).
///
/// It is JSON lines when its first non-blank line is one complete JSON
/// value (whatever its length, up to [`MAX_LINE_BYTES`]), otherwise one
/// document.
pub(crate) fn read_json(
    r: &mut dyn BufRead,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
) -> Result<Framing, ReadErrorKind> {
    let in_memory = if opts.document_bytes_in_memory == 0 { LIMITS.in_memory } else { opts.document_bytes_in_memory };
    read_json_with_limits(r, e, opts, Limits { in_memory, ..LIMITS })
}

/// [`read_json`] with the sizes that decide how the input is read.
fn read_json_with_limits(
    r: &mut dyn BufRead,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
    limits: Limits,
) -> Result<Framing, ReadErrorKind> {
    let mut line = Vec::new();
    let mut line_no: u64 = 0;
    // Skip leading blank lines.
    let first = loop {
        line.clear();
        let read = read_line(r, &mut line, limits.first_line_probe)?;
        line_no += 1;
        match read {
            LineRead::Eof => return Ok(Framing::Empty),
            LineRead::TooLong => break None,
            LineRead::Line if is_blank(&line) => continue,
            LineRead::Line => break Some(serde_json::from_slice::<IgnoredAny>(&line)),
        }
    };
    let is_document = match &first {
        None => true,
        Some(Ok(_)) => false,
        Some(Err(err)) => err.is_eof(),
    };
    if !is_document {
        return read_lines(r, e, opts, line, line_no);
    }
    let lines_before = line_no - 1;
    let mut doc = std::mem::take(&mut line);
    let limit = limits.in_memory.saturating_sub(doc.len() as u64);
    let got = r.take(limit + 1).read_to_end(&mut doc)?;
    if first.is_none()
        && let Some(end) = first_line_end(&doc)
        && serde_json::from_slice::<IgnoredAny>(&doc[..end]).is_ok()
    {
        // A first line longer than the probe that is one value: JSON lines
        // all the same, read on from the buffer.
        let line = doc[..=end].to_vec();
        let mut rest = io::Cursor::new(doc);
        rest.set_position(end as u64 + 1);
        return read_lines(&mut rest.chain(r), e, opts, line, line_no);
    }
    let result = if (got as u64) <= limit {
        let mut de = serde_json::Deserializer::from_slice(&doc);
        Doc { e }.deserialize(&mut de).and_then(|()| de.end())
    } else {
        let mut rest: &mut dyn BufRead = r;
        let doc = match json_blocks::read(doc, &mut rest, e, opts, lines_before, limits.block) {
            Ok(()) => return Ok(Framing::Document),
            Err((_, Some(err))) => return Err(classify(err, e)),
            Err((doc, None)) => doc,
        };
        let mut de = serde_json::Deserializer::from_reader(io::Cursor::new(doc).chain(rest));
        Doc { e }.deserialize(&mut de).and_then(|()| de.end())
    };
    result.map(|()| Framing::Document).map_err(|err| classify(json_error(&err, lines_before), e))
}

/// Where the first line of `doc` ends (its `\n`), if within [`MAX_LINE_BYTES`].
fn first_line_end(doc: &[u8]) -> Option<usize> {
    let window = &doc[..doc.len().min(MAX_LINE_BYTES as usize)];
    window.iter().position(|&b| b == b'\n')
}

/// Reads JSON lines, `line` (line number `line_no`) the first of them:
/// each line one atomic record, a bad one skipped and counted unless
/// strict.
fn read_lines(
    r: &mut dyn BufRead,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
    mut line: Vec<u8>,
    mut line_no: u64,
) -> Result<Framing, ReadErrorKind> {
    if chunked::wanted(opts) && e.chunk_settings().is_some() {
        return read_lines_chunked(r, e, opts, line, line_no);
    }
    let (mut good, mut bad) = (0u64, 0u64);
    let mut first_error = None;
    loop {
        if !is_blank(&line) {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            e.begin_record();
            match read_record_json(&line, e) {
                Ok(()) => {
                    e.commit_record();
                    good += 1;
                }
                Err(err) => {
                    e.abort_record();
                    let err = json_error(&err, line_no - 1);
                    if opts.strict {
                        return Err(err);
                    }
                    bad += 1;
                    e.bad_record(&err);
                    first_error.get_or_insert(err);
                }
            }
        }
        line.clear();
        match read_line(r, &mut line, MAX_LINE_BYTES)? {
            LineRead::Eof => break,
            LineRead::TooLong => {
                return Err(ReadErrorKind::AtLine {
                    line: line_no + 1,
                    column: 1,
                    message: format!("line longer than {MAX_LINE_BYTES} bytes; expected one JSON record per line"),
                });
            }
            LineRead::Line => line_no += 1,
        }
    }
    if good == 0 && bad > 0 {
        return Err(classify(first_error.expect("a bad record was seen"), e));
    }
    Ok(if good + bad > 1 { Framing::Lines } else { Framing::Document })
}

/// [`read_lines`] on `opts.threads` threads: lines are found here and
/// decoded in chunks elsewhere, with the same outcome.
fn read_lines_chunked(
    r: &mut dyn BufRead,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
    first: Vec<u8>,
    first_no: u64,
) -> Result<Framing, ReadErrorKind> {
    let target = chunked::chunk_bytes(opts);
    let mut first = Some(first);
    let mut line_no = first_no;
    let mut fill = |chunk: &mut Chunk| -> Option<Tail> {
        let mut chunk_first = None;
        let tail = loop {
            if chunk.bytes.len() >= target {
                break None;
            }
            let number = match first.take() {
                Some(line) => {
                    chunk.bytes.extend_from_slice(&line);
                    first_no
                }
                None => {
                    let before = chunk.bytes.len();
                    match read_line(r, &mut chunk.bytes, MAX_LINE_BYTES) {
                        Err(err) => break Some(Tail::Fatal(err)),
                        Ok(LineRead::Eof) => break Some(Tail::End),
                        Ok(LineRead::TooLong) => {
                            chunk.bytes.truncate(before);
                            break Some(Tail::Fatal(ReadErrorKind::AtLine {
                                line: line_no + 1,
                                column: 1,
                                message: format!(
                                    "line longer than {MAX_LINE_BYTES} bytes; expected one JSON record per line"
                                ),
                            }));
                        }
                        Ok(LineRead::Line) => {
                            line_no += 1;
                            line_no
                        }
                    }
                }
            };
            chunk_first.get_or_insert(number);
            // The last line may end without one: lines stay apart.
            if chunk.bytes.last() != Some(&b'\n') {
                chunk.bytes.push(b'\n');
            }
        };
        if let Some(number) = chunk_first {
            chunk.records = vec![(chunk.bytes.len(), 0, number)];
        }
        tail
    };
    let (total, tail) = chunked::run(e, opts, &mut fill, decode_lines)?;
    match tail {
        Tail::End => {}
        Tail::Bad(err) | Tail::Fatal(err) => return Err(err),
    }
    if total.good == 0 && total.bad > 0 {
        return Err(classify(total.first_error.expect("a bad record was seen"), e));
    }
    Ok(if total.good + total.bad > 1 { Framing::Lines } else { Framing::Document })
}

/// Decodes a chunk of whole lines as [`read_lines`] does, each line one
/// atomic record.
fn decode_lines(chunk: &Chunk, e: &mut Emitter<'_>, strict: bool) -> ChunkOutcome {
    let mut outcome = ChunkOutcome::default();
    let Some(&(_, _, mut line_no)) = chunk.records.first() else { return outcome };
    let bytes = &chunk.bytes[..];
    let mut pos = 0;
    while pos < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i + 1);
        let mut line = &bytes[pos..end];
        pos = end;
        let number = line_no;
        line_no += 1;
        if is_blank(line) {
            continue;
        }
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        e.begin_record();
        match read_record_json(line, e) {
            Ok(()) => {
                e.commit_record();
                outcome.good += 1;
            }
            Err(err) => {
                e.abort_record();
                let err = json_error(&err, number - 1);
                if strict {
                    outcome.fatal = Some(err);
                    break;
                }
                outcome.bad += 1;
                e.bad_record(&err);
                outcome.first_error.get_or_insert(err);
            }
        }
    }
    outcome
}

/// A JSON input whose only problem is that it holds no trace data is
/// reported as such, so directory walks can pass over it.
fn classify(err: ReadErrorKind, e: &Emitter<'_>) -> ReadErrorKind {
    if e.not_traces && e.spans() == 0 && e.dialect().is_none() {
        ReadErrorKind::NotTraces(format!("JSON without trace data ({err})"))
    } else {
        err
    }
}

/// Parses one complete JSON record (a length-prefixed stream's payload).
pub(crate) fn read_record(bytes: &[u8], e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    read_record_json(bytes, e).map_err(|err| json_error(&err, 0))
}

fn read_record_json(bytes: &[u8], e: &mut Emitter<'_>) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Doc { e }.deserialize(&mut de)?;
    de.end()
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

enum LineRead {
    Line,
    Eof,
    TooLong,
}

fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, limit: u64) -> Result<LineRead, ReadErrorKind> {
    let n = r.take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(LineRead::Eof);
    }
    if n as u64 == limit && buf.last() != Some(&b'\n') {
        return Ok(LineRead::TooLong);
    }
    Ok(LineRead::Line)
}

fn json_error(err: &serde_json::Error, lines_before: u64) -> ReadErrorKind {
    let text = err.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => shorten_quoted(&text[..i]),
        None => shorten_quoted(&text),
    };
    ReadErrorKind::AtLine { line: err.line() as u64 + lines_before, column: err.column() as u64, message }
}

/// Characters of a quoted value an error message shows.
const QUOTED_SHOWN: usize = 32;

/// serde quotes the offending value in full (`invalid type: string "…"`):
/// an error names where and what, it does not echo a dump's contents, so
/// quoted values past [`QUOTED_SHOWN`] characters are cut.
fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(256));
    let mut inside = false;
    let mut shown = 0;
    let mut escaped = false;
    for c in message.chars() {
        if inside {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                inside = false;
                if shown > QUOTED_SHOWN {
                    out.push('…');
                }
                out.push(c);
                continue;
            }
            shown += 1;
            if shown <= QUOTED_SHOWN {
                out.push(c);
            }
        } else {
            if c == '"' {
                inside = true;
                shown = 0;
            }
            out.push(c);
        }
    }
    out
}

/// The top level of any JSON trace document.
pub(super) struct Doc<'e, 'x> {
    e: &'e mut Emitter<'x>,
}

impl<'e, 'x> Doc<'e, 'x> {
    /// Reads a document into `e`.
    pub(super) fn new(e: &'e mut Emitter<'x>) -> Self {
        Doc { e }
    }
}

/// An error in a JSON value that began at `line` and `column` of the input
/// (its own positions are relative to that start).
pub(super) fn element_error(err: &serde_json::Error, line: u64, column: u64) -> ReadErrorKind {
    let err_line = err.line() as u64;
    let (line, column) = if err_line <= 1 {
        (line, column + (err.column() as u64).saturating_sub(1))
    } else {
        (line + err_line - 1, err.column() as u64)
    };
    match json_error(err, 0) {
        ReadErrorKind::AtLine { message, .. } => ReadErrorKind::AtLine { line, column, message },
        other => other,
    }
}

impl<'de> DeserializeSeed<'de> for Doc<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Doc<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trace document: an OTLP/Tempo/Jaeger object or a Zipkin span array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let e = self.e;
        let mut keys = 0usize;
        let mut recognized = false;
        let mut jaeger_spans: Option<Vec<JaegerSpan<'de>>> = None;
        let mut jaeger_processes: Option<JaegerProcesses<'de>> = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            keys += 1;
            match key.as_str() {
                k @ ("resourceSpans" | "resource_spans" | "batches") => {
                    e.set_dialect(if k == "batches" { Dialect::Tempo } else { Dialect::Otlp });
                    map.next_value_seed(Each::<JResourceSpans<'de>> {
                        e: &mut *e,
                        what: "a list of ResourceSpans",
                        emit: otlp_json::emit_resource_spans,
                    })?;
                    recognized = true;
                }
                "trace" | "result" => {
                    map.next_value_seed(Nested { e: &mut *e })?;
                    recognized = true;
                }
                "data" => {
                    e.set_dialect(Dialect::Jaeger);
                    map.next_value_seed(Each::<JaegerTrace<'de>> {
                        e: &mut *e,
                        what: "a list of Jaeger traces",
                        emit: jaeger::emit_trace,
                    })?;
                    recognized = true;
                }
                "spans" => {
                    jaeger_spans = Some(map.next_value::<Option<Vec<JaegerSpan<'de>>>>()?.unwrap_or_default());
                    recognized = true;
                }
                "processes" => {
                    jaeger_processes = map.next_value::<Option<JaegerProcesses<'de>>>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(spans) = jaeger_spans {
            e.set_dialect(Dialect::Jaeger);
            let trace = JaegerTrace { spans, processes: jaeger_processes.unwrap_or_default() };
            jaeger::emit_trace(&trace, e);
        }
        if keys > 0 && !recognized {
            e.not_traces = true;
            return Err(de::Error::custom(
                "no trace data: expected an object with resourceSpans (OTLP), batches (Tempo), data or spans (Jaeger), or an array of Zipkin spans",
            ));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.e.set_dialect(Dialect::Zipkin);
        while seq.next_element_seed(ZipkinItem { e: &mut *self.e })?.is_some() {}
        Ok(())
    }
}

/// `trace` / `result` wrappers: a nested document, or null.
struct Nested<'e, 'x> {
    e: &'e mut Emitter<'x>,
}

impl<'de> DeserializeSeed<'de> for Nested<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Nested<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a nested trace document or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        Doc { e: self.e }.deserialize(d)
    }
}

/// A list (or null) whose elements are parsed one at a time as `T` and
/// converted by `emit` right away, so only one element is in memory.
struct Each<'e, 'x, T> {
    e: &'e mut Emitter<'x>,
    what: &'static str,
    emit: fn(&T, &mut Emitter<'_>),
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Each<'_, '_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Each<'_, '_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            (self.emit)(&item, self.e);
        }
        Ok(())
    }
}

/// One element of a Zipkin array: a span, or (ListOfTraces) a span array.
pub(super) struct ZipkinItem<'e, 'x> {
    e: &'e mut Emitter<'x>,
}

impl<'e, 'x> ZipkinItem<'e, 'x> {
    /// Reads one element into `e`.
    pub(super) fn new(e: &'e mut Emitter<'x>) -> Self {
        ZipkinItem { e }
    }
}

impl<'de> DeserializeSeed<'de> for ZipkinItem<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ZipkinItem<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Zipkin span object or an array of them")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let span = ZipkinSpan::deserialize(MapAccessDeserializer::new(map))?;
        zipkin::emit_span(&span, self.e);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(span) = seq.next_element::<ZipkinSpan<'de>>()? {
            zipkin::emit_span(&span, self.e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_messages_do_not_echo_long_values() {
        let long = format!("invalid type: string \"{}\", expected a list", "x".repeat(5000));
        assert_eq!(
            super::shorten_quoted(&long),
            format!("invalid type: string \"{}…\", expected a list", "x".repeat(32))
        );
        assert_eq!(super::shorten_quoted("unknown \"a\\\"b\" here"), "unknown \"a\\\"b\" here");
    }

    use super::*;
    use crate::model::{Dictionary, Span, SpanKind, StatusCode, Value, WarningKind, Warnings};

    /// What reading `text` with `limits` and `opts` gave, names resolved:
    /// (framing or error, one line per span, warnings, dialect).
    fn read_resolved(
        text: &str,
        limits: Limits,
        opts: &ReadOptions,
    ) -> (String, Vec<String>, Warnings, Option<Dialect>) {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut spans = Vec::new();
        let mut sink = |d: &Dictionary, s: Span| spans.push(super::super::test_support::resolved(d, &s));
        let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
        let framing = read_json_with_limits(&mut text.as_bytes(), &mut e, opts, limits);
        let dialect = e.dialect();
        drop(e);
        let framing = match framing {
            Ok(f) => format!("{f:?}"),
            Err(err) => format!("error: {err}"),
        };
        (framing, spans, warnings, dialect)
    }

    #[test]
    fn large_documents_read_in_blocks_give_what_the_whole_document_gives() {
        let fixture = |name: &str| {
            std::fs::read_to_string(format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let pretty = |text: &str| {
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap()
        };
        let otlp = fixture("shop.otlp.json");
        let mut docs = vec![fixture("shop.jaeger.json"), fixture("shop.zipkin.json"), otlp.clone()];
        // Tempo's batches, and keys after the array (read as the whole document reads them).
        docs.push(otlp.replacen("\"resourceSpans\"", "\"batches\"", 1));
        let jaeger = fixture("shop.jaeger.json");
        let with_keys = format!("{},\"total\":0,\"errors\":null}}", jaeger.trim_end().trim_end_matches('}'));
        docs.push(with_keys);
        // Escaped quotes and backslashes in names, which a block may cut.
        docs.push(fixture("shop.zipkin.json").replace("\"name\": \"", "\"name\":\"q\\\"uo\\\\te \\\" "));
        assert!(docs.last().unwrap().contains(r#"q\"uo\\te"#));
        docs.extend(docs.clone().iter().map(|d| pretty(d)).collect::<Vec<_>>());
        for doc in &docs {
            let whole = read_resolved(doc, LIMITS, &ReadOptions::default());
            assert!(whole.0 == "Document" && whole.1.len() > 10, "{}: {}", whole.0, &doc[..80]);
            for (block, threads, chunk_bytes) in [(7, 1, 0), (7, 2, 50), (1000, 3, 300), (1 << 20, 2, 4096)] {
                let opts = ReadOptions { threads, chunk_bytes, ..ReadOptions::default() };
                let blocks = read_resolved(doc, Limits { in_memory: 0, block, ..LIMITS }, &opts);
                assert!(blocks == whole, "block {block}, {threads} threads, chunks of {chunk_bytes}: {}", &doc[..80]);
            }
        }
        // An error inside an element is reported where the whole document's
        // reader reports it; the spans before it were read alike.
        let doc = pretty(&jaeger);
        let at = doc.match_indices("\"duration\": ").nth(9).unwrap().0;
        let broken = format!("{}\"duration\": {{}}, \"x\": {}", &doc[..at], &doc[at + "\"duration\": ".len()..]);
        let whole = read_resolved(&broken, LIMITS, &ReadOptions::default());
        assert!(whole.0.starts_with("error: line "), "{}", whole.0);
        for (block, threads) in [(7, 1), (64, 2), (1 << 20, 3)] {
            let opts = ReadOptions { threads, chunk_bytes: 100, ..ReadOptions::default() };
            let blocks = read_resolved(&broken, Limits { in_memory: 0, block, ..LIMITS }, &opts);
            assert_eq!(blocks.0, whole.0, "block {block}, {threads} threads");
        }
        // The array's own structure broken: an error naming its place.
        let cut = &jaeger[..jaeger.len() / 2];
        let (framing, ..) = read_resolved(cut, Limits { in_memory: 0, block: 13, ..LIMITS }, &ReadOptions::default());
        let lines = cut.lines().count();
        assert_eq!(
            framing,
            format!(
                "error: line {lines}, column {}: EOF while parsing a list element",
                cut.lines().last().unwrap().len() + 1
            )
        );
    }

    fn read(text: &str) -> (Result<Framing, ReadErrorKind>, Vec<Span>, Dictionary, Warnings, Option<Dialect>) {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut spans = Vec::new();
        let mut sink = |_: &Dictionary, s: Span| spans.push(s);
        let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
        let mut r = text.as_bytes();
        let framing = read_json(&mut r, &mut e, &ReadOptions::default());
        let dialect = e.dialect();
        drop(e);
        (framing, spans, dict, warnings, dialect)
    }

    const SPAN_CAMEL: &str = r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"op","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":1544712660000000000,"endTimeUnixNano":"1544712661000000000","status":{"code":"STATUS_CODE_ERROR","message":"boom"},"attributes":[{"key":"d","value":{"doubleValue":"NaN"}},{"key":"e","value":{}},{"key":"i","value":{"intValue":7}}],"futureField":{"x":1}}"#;

    #[test]
    fn otlp_dialects_and_wrappers() {
        let resource = r#""resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]}"#;
        let docs = [
            (format!(r#"{{"resourceSpans":[{{{resource},"scopeSpans":[{{"spans":[{SPAN_CAMEL}]}}]}}]}}"#), Dialect::Otlp),
            (format!(r#"{{"batches":[{{{resource},"instrumentationLibrarySpans":[{{"instrumentationLibrary":{{"name":"lib"}},"spans":[{SPAN_CAMEL}]}}]}}]}}"#), Dialect::Tempo),
            (format!(r#"{{"trace":{{"resourceSpans":[{{{resource},"scopeSpans":[{{"spans":[{SPAN_CAMEL}]}}]}}]}}}}"#), Dialect::Otlp),
            (format!(r#"{{"result":{{"resourceSpans":[{{{resource},"scopeSpans":[{{"spans":[{SPAN_CAMEL}]}}]}}]}}}}"#), Dialect::Otlp),
            (
                r#"{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"svc"}}]},"scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","name":"op","kind":3,"start_time_unix_nano":"1544712660000000000","end_time_unix_nano":1544712661000000000,"status":{"code":2,"message":"boom"},"attributes":[{"key":"d","value":{"double_value":"NaN"}},{"key":"e","value":null},{"key":"i","value":{"int_value":"7"}}]}]}]}]}"#.to_string(),
                Dialect::Otlp,
            ),
        ];
        for (doc, dialect) in docs {
            let (framing, spans, dict, warnings, got) = read(&doc);
            assert_eq!(framing.unwrap(), Framing::Document, "{doc}");
            assert_eq!(got, Some(dialect), "{doc}");
            assert_eq!(spans.len(), 1, "{doc}");
            assert_eq!(warnings.total(), 0, "{doc}");
            let s = &spans[0];
            assert_eq!(s.trace_id.to_hex(), "5b8efff798038103d269b633813fc60c");
            assert_eq!(s.kind, SpanKind::Client);
            assert_eq!(s.status, StatusCode::Error);
            assert_eq!(s.duration_ns(), Some(1_000_000_000));
            assert_eq!(dict.resolve(s.service), "svc");
            assert!(matches!(s.attributes[0].value, Value::Double(d) if d.is_nan()));
            assert_eq!(s.attributes[1].value, Value::Empty);
            assert_eq!(s.attributes[2].value, Value::Int(7));
        }
    }

    #[test]
    fn zipkin_list_of_traces_and_jaeger_single_trace() {
        let z = r#"[[{"traceId":"a","id":"1","name":"x","timestamp":10,"duration":5,"localEndpoint":{"serviceName":"s"}}],
                     [{"traceId":"b","id":"2","name":"y","timestamp":10,"duration":5}]]"#;
        let (framing, spans, dict, _, dialect) = read(z);
        assert_eq!(framing.unwrap(), Framing::Document);
        assert_eq!(dialect, Some(Dialect::Zipkin));
        assert_eq!(spans.len(), 2);
        assert_eq!(dict.resolve(spans[1].service), "unknown_service");

        // processes after spans, as Jaeger writes them
        let j = r#"{"traceID":"1","spans":[{"traceID":"1","spanID":"2","operationName":"op","startTime":10,"duration":5,"processID":"p1","tags":[{"key":"span.kind","type":"string","value":"server"},{"key":"http.status_code","type":"int64","value":503}]}],"processes":{"p1":{"serviceName":"svc","tags":[{"key":"hostname","type":"string","value":"h1"}]}}}"#;
        let (_, spans, dict, _, dialect) = read(j);
        assert_eq!(dialect, Some(Dialect::Jaeger));
        assert_eq!(spans.len(), 1);
        assert_eq!(dict.resolve(spans[0].service), "svc");
        assert_eq!(dict.resolve(dict.resource_of(spans[0].resource).host), "h1");
        assert_eq!(spans[0].kind, SpanKind::Server);
        assert_eq!(spans[0].status, StatusCode::Error, "5xx marks the span failed");
        assert_eq!(spans[0].start_ns, 10_000);
    }

    #[test]
    fn jaeger_model_proto_json() {
        // api_v2 model JSON: camelCase ids in base64, RFC 3339 times, Duration strings, vType tags.
        let j = r#"{"result":{"spans":[
            {"traceId":"AAAAAAAAAAAAAAAAAAAAAQ==","spanId":"AAAAAAAAAAE=","operationName":"root","startTime":"2026-11-01T10:00:00.000100Z","duration":"0.002s",
             "tags":[{"key":"span.kind","vType":"STRING","vStr":"server"},{"key":"http.status_code","vType":"INT64","vInt64":"200"}],
             "process":{"serviceName":"svc","tags":[{"key":"hostname","vStr":"h1"}]}},
            {"traceId":"AAAAAAAAAAAAAAAAAAAAAQ==","spanId":"AAAAAAAAAAI=","operationName":"child","startTime":"2026-11-01T10:00:00.000200Z","duration":"0.0005s",
             "references":[{"refType":"CHILD_OF","traceId":"AAAAAAAAAAAAAAAAAAAAAQ==","spanId":"AAAAAAAAAAE="}],
             "process":{"serviceName":"svc"}}
        ]}}"#;
        let (framing, spans, dict, warnings, dialect) = read(j);
        assert_eq!(framing.unwrap(), Framing::Document);
        assert_eq!(dialect, Some(Dialect::Jaeger));
        assert_eq!(warnings.total(), 0);
        assert_eq!(spans.len(), 2);
        let (root, child) = (&spans[0], &spans[1]);
        assert_eq!(root.trace_id.to_hex(), "00000000000000000000000000000001");
        assert_eq!(root.start_ns, 1_793_527_200_000_100_000);
        assert_eq!(root.duration_ns(), Some(2_000_000));
        assert_eq!(root.kind, SpanKind::Server);
        assert_eq!(dict.resolve(dict.resource_of(root.resource).host), "h1");
        assert_eq!(root.attributes[0].value, Value::Int(200));
        assert_eq!(child.parent_id, Some(root.span_id));
        assert_eq!(child.duration_ns(), Some(500_000));
    }

    #[test]
    fn json_lines_skip_bad_records_atomically() {
        let good = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{SPAN_CAMEL}]}}]}}]}}"#);
        // The bad line has a good first span and a broken second one: neither may survive.
        let bad = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{SPAN_CAMEL},{{"startTimeUnixNano":"x"}}]}}]}}]}}"#
        );
        let text = format!("{good}\n\n{bad}\r\n{good}\n");
        let (framing, spans, _, warnings, _) = read(&text);
        assert_eq!(framing.unwrap(), Framing::Lines);
        assert_eq!(spans.len(), 2);
        assert_eq!(warnings.get(WarningKind::BadRecord), 1);
        assert_eq!(warnings.total(), 1);
    }

    #[test]
    fn large_documents_stream_with_the_same_result() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.jaeger.json")).unwrap();
        let mut results = Vec::new();
        for limit in [DOCUMENT_IN_MEMORY_BYTES, 100, 0] {
            let mut dict = Dictionary::default();
            let mut warnings = Warnings::default();
            let mut spans = Vec::new();
            let mut sink = |_: &Dictionary, s: Span| spans.push(s);
            let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
            let limits = Limits { in_memory: limit, ..LIMITS };
            let framing = read_json_with_limits(&mut doc.as_bytes(), &mut e, &ReadOptions::default(), limits).unwrap();
            drop(e);
            assert_eq!(framing, Framing::Document);
            results.push(spans);
        }
        assert_eq!(results[0].len(), 14);
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
        // Errors in a streamed document still carry their line.
        let broken = doc.replacen("\"duration\"", "\"duration\":{},\"x\"", 1);
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut sink = |_: &Dictionary, _: Span| {};
        let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
        let limits = Limits { in_memory: 10, ..LIMITS };
        let err = read_json_with_limits(&mut broken.as_bytes(), &mut e, &ReadOptions::default(), limits).unwrap_err();
        assert!(matches!(err, ReadErrorKind::AtLine { line, .. } if line > 1), "{err}");
    }

    #[test]
    fn framing_does_not_depend_on_the_first_lines_length() {
        // Three records, the first longer than the probe; then the same
        // line in the middle. Both are JSON lines, read alike, whether the
        // rest of the input fits in memory or not.
        let long_name = "n".repeat(4000);
        let long = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            SPAN_CAMEL.replace(r#""name":"op""#, &format!(r#""name":"{long_name}""#))
        );
        let short = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{SPAN_CAMEL}]}}]}}]}}"#);
        let read_with = |text: &str, limits: Limits| {
            let mut dict = Dictionary::default();
            let mut warnings = Warnings::default();
            let mut names = Vec::new();
            let mut sink = |d: &Dictionary, s: Span| names.push(d.resolve(s.name).len());
            let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
            let framing = read_json_with_limits(&mut text.as_bytes(), &mut e, &ReadOptions::default(), limits);
            drop(e);
            (framing.unwrap(), names)
        };
        let probe = Limits { first_line_probe: 1000, ..LIMITS };
        for text in [format!("\n{long}\n{short}\n{short}\n"), format!("{short}\n{long}\n{short}")] {
            for limits in [probe, Limits { in_memory: 5000, ..probe }, Limits { in_memory: 10, ..probe }] {
                if limits.in_memory == 10 && text.starts_with('\n') {
                    // The first line does not end inside the buffer (which
                    // holds at least MAX_LINE_BYTES outside tests).
                    continue;
                }
                let (framing, names) = read_with(&text, limits);
                let expected = if text.starts_with('\n') { [4000, 2, 2] } else { [2, 4000, 2] };
                assert_eq!((framing, names.as_slice()), (Framing::Lines, &expected[..]), "{limits:?}");
            }
        }
        // A document on one long line is still a document.
        let (framing, names) = read_with(&format!("{long}\n"), probe);
        assert_eq!((framing, names.as_slice()), (Framing::Document, &[4000][..]));
        let (framing, names) = read_with(&long, probe);
        assert_eq!((framing, names.as_slice()), (Framing::Document, &[4000][..]));
        // And a pretty-printed one.
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&long).unwrap()).unwrap();
        let (framing, names) = read_with(&pretty, probe);
        assert_eq!((framing, names.as_slice()), (Framing::Document, &[4000][..]));
    }

    #[test]
    fn a_document_that_is_not_traces_says_so() {
        let (r, ..) = read("{\"name\": \"my-package\",\n \"version\": \"1.0.0\"}");
        assert!(matches!(r, Err(ReadErrorKind::NotTraces(_))), "{r:?}");
        let (r, ..) = read("{\"resourceSpans\": 5}");
        assert!(matches!(r, Err(ReadErrorKind::AtLine { line: 1, .. })), "{r:?}");
    }
}
