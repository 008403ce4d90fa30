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

use super::emit::Emitter;
use super::error::ReadErrorKind;
use super::jaeger::{self, JaegerProcesses, JaegerSpan, JaegerTrace};
use super::lenient::Text;
use super::otlp_json::{self, JResourceSpans};
use super::zipkin::{self, ZipkinSpan};
use super::{Dialect, ReadOptions};

/// The first line is tried as a JSON-lines record only up to this size;
/// a longer first line is read as (part of) a streamed document.
const FIRST_LINE_PROBE_BYTES: u64 = 64 << 20;
/// No JSON line may be longer than this.
const MAX_LINE_BYTES: u64 = 256 << 20;

/// How a JSON input was framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Document,
    Lines,
}

/// Reads a JSON input (document or JSON lines).
pub(crate) fn read_json(
    r: &mut dyn BufRead,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
) -> Result<Framing, ReadErrorKind> {
    let mut line = Vec::new();
    let mut line_no: u64 = 0;
    // Skip leading blank lines.
    let first = loop {
        line.clear();
        let read = read_line(r, &mut line, FIRST_LINE_PROBE_BYTES)?;
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
    if is_document {
        let lines_before = line_no - 1;
        let chained = io::Cursor::new(std::mem::take(&mut line)).chain(r);
        let mut de = serde_json::Deserializer::from_reader(chained);
        let result = Doc { e }.deserialize(&mut de).and_then(|()| de.end());
        return result.map(|()| Framing::Document).map_err(|err| classify(json_error(&err, lines_before), e));
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
pub(crate) fn read_record(bytes: &[u8], e: &mut Emitter<'_>) -> Result<(), String> {
    read_record_json(bytes, e).map_err(|err| json_error(&err, 0).to_string())
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
        Some(i) => text[..i].to_string(),
        None => text,
    };
    ReadErrorKind::AtLine { line: err.line() as u64 + lines_before, column: err.column() as u64, message }
}

/// The top level of any JSON trace document.
struct Doc<'e, 'x> {
    e: &'e mut Emitter<'x>,
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
                "resourceSpans" | "resource_spans" => {
                    e.set_dialect(Dialect::Otlp);
                    map.next_value_seed(ResourceSpansList { e: &mut *e })?;
                    recognized = true;
                }
                "batches" => {
                    e.set_dialect(Dialect::Tempo);
                    map.next_value_seed(ResourceSpansList { e: &mut *e })?;
                    recognized = true;
                }
                "trace" | "result" => {
                    map.next_value_seed(Nested { e: &mut *e })?;
                    recognized = true;
                }
                "data" => {
                    e.set_dialect(Dialect::Jaeger);
                    map.next_value_seed(JaegerTraceList { e: &mut *e })?;
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

/// A list of `ResourceSpans`, each emitted as soon as it is parsed.
struct ResourceSpansList<'e, 'x> {
    e: &'e mut Emitter<'x>,
}

impl<'de> DeserializeSeed<'de> for ResourceSpansList<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResourceSpansList<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of ResourceSpans")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(rs) = seq.next_element::<JResourceSpans<'de>>()? {
            otlp_json::emit_resource_spans(&rs, self.e);
        }
        Ok(())
    }
}

/// Jaeger's `data`: a list of traces, each emitted as soon as it is parsed.
struct JaegerTraceList<'e, 'x> {
    e: &'e mut Emitter<'x>,
}

impl<'de> DeserializeSeed<'de> for JaegerTraceList<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JaegerTraceList<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Jaeger traces")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(trace) = seq.next_element::<JaegerTrace<'de>>()? {
            jaeger::emit_trace(&trace, self.e);
        }
        Ok(())
    }
}

/// One element of a Zipkin array: a span, or (ListOfTraces) a span array.
struct ZipkinItem<'e, 'x> {
    e: &'e mut Emitter<'x>,
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
