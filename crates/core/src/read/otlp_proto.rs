//! OTLP protobuf: a bare `ExportTraceServiceRequest`/`TracesData`, and the
//! Collector file exporter's stream of 4-byte big-endian length-prefixed
//! records (each optionally one zstd frame, holding protobuf or JSON).
//!
//! Both are read incrementally: the top-level message is walked field by
//! field and each `ResourceSpans` is decoded on its own, so a large dump is
//! never held in memory whole.

use std::io::{self, Read};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

use crate::model::{Attr, Event, Link, Span, SpanId, SpanKind, StatusCode, Sym, TraceId, Value};

use super::ReadOptions;
use super::chunked::{self, Chunk, ChunkOutcome, Tail};
use super::emit::{Emitter, RawId};
use super::error::ReadErrorKind;
use super::json;

/// Largest record or `ResourceSpans` accepted (after decompression).
pub(crate) const MAX_MESSAGE_BYTES: u64 = 256 << 20;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Reads a bare protobuf message whose field 1 is repeated `ResourceSpans`.
pub(crate) fn read_bare(r: &mut dyn Read, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let mut offset: u64 = 0;
    let mut buf = Vec::new();
    loop {
        let field_start = offset;
        let Some(key) = read_varint(r, &mut offset, true)? else { return Ok(()) };
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                read_varint(r, &mut offset, false)?;
            }
            1 => skip(r, 8, &mut offset)?,
            5 => skip(r, 4, &mut offset)?,
            2 => {
                let len = read_varint(r, &mut offset, false)?.unwrap_or(0);
                if len > MAX_MESSAGE_BYTES {
                    return Err(ReadErrorKind::at_byte(
                        field_start,
                        format!("field {field} is {len} bytes long, over the {MAX_MESSAGE_BYTES}-byte limit"),
                    ));
                }
                if field == 1 {
                    buf.clear();
                    read_exact_or_truncated(r, len, &mut buf, &mut offset)?;
                    super::otlp_wire::emit_resource_spans(&buf, e).map_err(|err| {
                        ReadErrorKind::at_byte(field_start, format!("invalid ResourceSpans message: {err}"))
                    })?;
                } else {
                    skip(r, len, &mut offset)?;
                }
            }
            _ => {
                return Err(ReadErrorKind::at_byte(
                    field_start,
                    format!(
                        "invalid protobuf wire type {wire} for field {field}; expected an OTLP ExportTraceServiceRequest"
                    ),
                ));
            }
        }
    }
}

/// Reads a bare protobuf message already in memory: like [`read_bare`],
/// without copying each `ResourceSpans` out first.
pub(crate) fn read_bare_slice(body: &[u8], e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    super::otlp_wire::read_request(body, e, MAX_MESSAGE_BYTES)
        .map_err(|(at, message)| ReadErrorKind::at_byte(at, message))
}

/// Reads a stream of `[u32 BE length][record]` where each record is a
/// `TracesData` in protobuf or JSON, optionally one zstd frame. A bad record
/// is skipped and counted unless `opts.strict`.
pub(crate) fn read_length_prefixed(
    r: &mut dyn Read,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
) -> Result<(), ReadErrorKind> {
    if chunked::wanted(opts) && e.chunk_settings().is_some() {
        return read_length_prefixed_chunked(r, e, opts);
    }
    let mut offset: u64 = 0;
    let mut record = Vec::new();
    let mut plain = Vec::new();
    let mut index: u64 = 0;
    loop {
        let start = offset;
        let mut len_bytes = [0u8; 4];
        let got = read_up_to(r, &mut len_bytes)?;
        if got == 0 {
            return Ok(());
        }
        offset += got as u64;
        index += 1;
        if got < 4 {
            return truncated(e, opts, start, index, "record length cut short at end of input");
        }
        let len = u32::from_be_bytes(len_bytes) as u64;
        if len > MAX_MESSAGE_BYTES {
            // The framing is lost: nothing after this can be trusted.
            return Err(ReadErrorKind::at_byte(
                start,
                format!(
                    "record {index} claims {len} bytes, over the {MAX_MESSAGE_BYTES}-byte limit; not a length-prefixed OTLP stream past this point"
                ),
            ));
        }
        record.clear();
        let got = (&mut *r).take(len).read_to_end(&mut record).map_err(ReadErrorKind::Io)?;
        offset += got as u64;
        if (got as u64) < len {
            return truncated(
                e,
                opts,
                start,
                index,
                &format!("record of {len} bytes cut short after {got} bytes at end of input"),
            );
        }
        e.begin_record();
        match decode_record(&record, &mut plain, e) {
            Ok(()) => e.commit_record(),
            Err(err) => {
                e.abort_record();
                let msg = format!("record {index}: {err}");
                if opts.strict {
                    return Err(ReadErrorKind::at_byte(start, msg));
                }
                e.bad_record(&ReadErrorKind::at_byte(start, msg));
            }
        }
    }
}

/// [`read_length_prefixed`] on `opts.threads` threads: the records are
/// framed here and decoded in chunks elsewhere, with the same outcome.
fn read_length_prefixed_chunked(
    r: &mut dyn Read,
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
) -> Result<(), ReadErrorKind> {
    let target = chunked::chunk_bytes(opts);
    let mut offset: u64 = 0;
    let mut index: u64 = 0;
    let mut fill = |chunk: &mut Chunk| -> Option<Tail> {
        while chunk.bytes.len() < target {
            let start = offset;
            let mut len_bytes = [0u8; 4];
            let got = match read_up_to(r, &mut len_bytes) {
                Ok(got) => got,
                Err(err) => return Some(Tail::Fatal(err)),
            };
            if got == 0 {
                return Some(Tail::End);
            }
            offset += got as u64;
            index += 1;
            if got < 4 {
                let what = "record length cut short at end of input";
                return Some(Tail::Bad(ReadErrorKind::at_byte(start, format!("record {index}: {what}"))));
            }
            let len = u32::from_be_bytes(len_bytes) as u64;
            if len > MAX_MESSAGE_BYTES {
                return Some(Tail::Fatal(ReadErrorKind::at_byte(
                    start,
                    format!(
                        "record {index} claims {len} bytes, over the {MAX_MESSAGE_BYTES}-byte limit; not a length-prefixed OTLP stream past this point"
                    ),
                )));
            }
            let before = chunk.bytes.len();
            let got = match (&mut *r).take(len).read_to_end(&mut chunk.bytes) {
                Ok(got) => got,
                Err(err) => return Some(Tail::Fatal(ReadErrorKind::Io(err))),
            };
            offset += got as u64;
            if (got as u64) < len {
                chunk.bytes.truncate(before);
                let what = format!("record of {len} bytes cut short after {got} bytes at end of input");
                return Some(Tail::Bad(ReadErrorKind::at_byte(start, format!("record {index}: {what}"))));
            }
            chunk.records.push((chunk.bytes.len(), start, index));
        }
        None
    };
    let (_, tail) = chunked::run(e, opts, &mut fill, decode_records)?;
    match tail {
        Tail::End => Ok(()),
        Tail::Bad(err) if !opts.strict => {
            e.bad_record(&err);
            Ok(())
        }
        Tail::Bad(err) | Tail::Fatal(err) => Err(err),
    }
}

/// Decodes a chunk's records as [`read_length_prefixed`] does, each one
/// atomic.
fn decode_records(chunk: &Chunk, e: &mut Emitter<'_>, strict: bool) -> ChunkOutcome {
    let mut plain = Vec::new();
    let mut outcome = ChunkOutcome::default();
    for (record, start, index) in chunk.iter() {
        e.begin_record();
        match decode_record(record, &mut plain, e) {
            Ok(()) => {
                e.commit_record();
                outcome.good += 1;
            }
            Err(err) => {
                e.abort_record();
                let err = ReadErrorKind::at_byte(start, format!("record {index}: {err}"));
                if strict {
                    outcome.fatal = Some(err);
                    break;
                }
                outcome.bad += 1;
                e.bad_record(&err);
            }
        }
    }
    outcome
}

fn truncated(e: &mut Emitter<'_>, opts: &ReadOptions, start: u64, index: u64, what: &str) -> Result<(), ReadErrorKind> {
    let err = ReadErrorKind::at_byte(start, format!("record {index}: {what}"));
    if opts.strict {
        return Err(err);
    }
    e.bad_record(&err);
    Ok(())
}

fn decode_record(record: &[u8], plain: &mut Vec<u8>, e: &mut Emitter<'_>) -> Result<(), ReadErrorKind> {
    let body: &[u8] = if record.starts_with(&ZSTD_MAGIC) {
        plain.clear();
        let decoder = zstd::stream::read::Decoder::new(record).map_err(ReadErrorKind::Zstd)?;
        decoder.take(MAX_MESSAGE_BYTES + 1).read_to_end(plain).map_err(ReadErrorKind::Zstd)?;
        if plain.len() as u64 > MAX_MESSAGE_BYTES {
            return Err(ReadErrorKind::Inflated { limit: MAX_MESSAGE_BYTES });
        }
        plain
    } else {
        record
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => json::read_record(body, e),
        _ => read_bare_slice(body, e),
    }
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize, ReadErrorKind> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(ReadErrorKind::Io(err)),
        }
    }
    Ok(n)
}

/// Reads a varint; `Ok(None)` at a clean end of input when `eof_ok`.
fn read_varint(r: &mut dyn Read, offset: &mut u64, eof_ok: bool) -> Result<Option<u64>, ReadErrorKind> {
    let start = *offset;
    let mut value: u64 = 0;
    for i in 0..10 {
        let mut byte = [0u8; 1];
        if read_up_to(r, &mut byte)? == 0 {
            if i == 0 && eof_ok {
                return Ok(None);
            }
            return Err(ReadErrorKind::at_byte(start, "protobuf varint cut short at end of input".to_string()));
        }
        *offset += 1;
        value |= ((byte[0] & 0x7f) as u64) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(ReadErrorKind::at_byte(start, "protobuf varint longer than 10 bytes".to_string()))
}

fn skip(r: &mut dyn Read, len: u64, offset: &mut u64) -> Result<(), ReadErrorKind> {
    let start = *offset;
    let n = io::copy(&mut (&mut *r).take(len), &mut io::sink()).map_err(ReadErrorKind::Io)?;
    *offset += n;
    if n < len {
        return Err(ReadErrorKind::at_byte(start, format!("protobuf field of {len} bytes cut short after {n}")));
    }
    Ok(())
}

fn read_exact_or_truncated(
    r: &mut dyn Read,
    len: u64,
    buf: &mut Vec<u8>,
    offset: &mut u64,
) -> Result<(), ReadErrorKind> {
    let start = *offset;
    let n = (&mut *r).take(len).read_to_end(buf).map_err(ReadErrorKind::Io)? as u64;
    *offset += n;
    if n < len {
        return Err(ReadErrorKind::at_byte(start, format!("ResourceSpans of {len} bytes cut short after {n} bytes")));
    }
    Ok(())
}

/// Converts one decoded `ResourceSpans` and emits its spans.
pub(crate) fn emit_resource_spans(rs: &ResourceSpans, e: &mut Emitter<'_>) {
    let resource_attrs = rs.resource.as_ref().map(|r| attrs(&r.attributes, e)).unwrap_or_default();
    let resource = e.dict.resource(resource_attrs);
    let service = e.dict.resource_of(resource).service;
    for ss in &rs.scope_spans {
        let (scope_name, scope_version) = match &ss.scope {
            Some(s) => (e.dict.intern(&s.name), e.dict.intern(&s.version)),
            None => (Sym::EMPTY, Sym::EMPTY),
        };
        for ps in &ss.spans {
            let mut span = Span::new(TraceId::default(), SpanId::default());
            let parent = (!ps.parent_span_id.is_empty()).then_some(RawId::Bytes(&ps.parent_span_id));
            e.set_ids(&mut span, RawId::Bytes(&ps.trace_id), RawId::Bytes(&ps.span_id), parent);
            let end = (ps.end_time_unix_nano != 0).then_some(ps.end_time_unix_nano);
            e.set_timing(&mut span, Some(ps.start_time_unix_nano), end);
            span.resource = resource;
            span.service = service;
            span.name = e.dict.intern(&ps.name);
            span.kind = SpanKind::from_i32(ps.kind);
            span.scope_name = scope_name;
            span.scope_version = scope_version;
            span.flags = ps.flags;
            span.set_trace_state((!ps.trace_state.is_empty()).then(|| ps.trace_state.as_str().into()));
            if let Some(st) = &ps.status {
                span.status = StatusCode::from_i32(st.code);
                span.set_status_message((!st.message.is_empty()).then(|| st.message.as_str().into()));
            }
            span.attributes = attrs(&ps.attributes, e);
            span.set_events(
                ps.events
                    .iter()
                    .map(|ev| Event {
                        time_ns: ev.time_unix_nano,
                        name: e.dict.intern(&ev.name),
                        attributes: attrs(&ev.attributes, e),
                    })
                    .collect(),
            );
            span.set_links(
                ps.links
                    .iter()
                    .filter_map(|l| {
                        Some(Link {
                            trace_id: TraceId::from_bytes(&l.trace_id).id()?,
                            span_id: SpanId::from_bytes(&l.span_id).id()?,
                            attributes: attrs(&l.attributes, e),
                        })
                    })
                    .collect(),
            );
            e.emit(span);
        }
    }
}

fn attrs(kvs: &[KeyValue], e: &mut Emitter<'_>) -> Vec<Attr> {
    kvs.iter().map(|kv| Attr { key: e.dict.intern(&kv.key), value: value(kv.value.as_ref(), e) }).collect()
}

fn value(v: Option<&AnyValue>, e: &mut Emitter<'_>) -> Value {
    let Some(v) = v.and_then(|v| v.value.as_ref()) else { return Value::Empty };
    match v {
        any_value::Value::StringValue(s) => Value::Str(s.as_str().into()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::Int(*i),
        any_value::Value::DoubleValue(d) => Value::Double(*d),
        any_value::Value::BytesValue(b) => Value::Bytes(b.as_slice().into()),
        any_value::Value::ArrayValue(a) => Value::Array(a.values.iter().map(|x| value(Some(x), e)).collect()),
        any_value::Value::KvlistValue(m) => Value::Map(attrs(&m.values, e).into()),
        // A profiling dictionary index: meaningless without the dictionary.
        any_value::Value::StringValueStrindex(_) => Value::Empty,
    }
}
