//! A borrowing decoder for OTLP trace protobuf: one `ResourceSpans` message
//! straight from its wire bytes into the span model, with no intermediate
//! owned messages (names are interned from the input slice, ids parsed in
//! place). It accepts and refuses exactly what prost decoding into
//! `opentelemetry-proto`'s types does (wire types, UTF-8 strings, lengths,
//! nesting limit), and converts exactly as [`super::otlp_proto`] does from
//! those types; the tests hold it to both.

use super::emit::{Emitter, RawId};
use crate::model::{
    Attr, Dictionary, Event, Link, ResourceId, Span, SpanId, SpanKind, StatusCode, Sym, TraceId, Value,
};

/// prost's default nesting limit for one decoded message.
const RECURSION_LIMIT: u32 = 100;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// What is wrong with the bytes, and where (offset within the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

type R<T> = Result<T, WireError>;

/// A cursor over one message's bytes.
#[derive(Clone)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` within the outermost message, for errors.
    base: usize,
}

/// One field's value, borrowed.
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(Reader<'a>),
    /// A group (skipped, as prost does for unknown fields).
    Group,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, pos: 0, base }
    }

    fn err<T>(&self, message: impl Into<String>) -> R<T> {
        Err(WireError { offset: self.base + self.pos, message: message.into() })
    }

    #[inline(always)]
    fn varint(&mut self) -> R<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else { return self.err("varint cut short") };
            self.pos += 1;
            if i == 9 && b > 1 {
                return self.err("invalid varint");
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.err("invalid varint")
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return self.err(format!("field of {n} bytes runs past the end of its message"));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next field: (number, wire type, value), or `None` at the end.
    #[inline(always)]
    fn next(&mut self, depth: u32) -> R<Option<(u32, u8, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return self.err(format!("invalid key value: {key}"));
        }
        let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
        if number == 0 {
            return self.err("invalid tag value: 0");
        }
        let value = match wire {
            VARINT => Field::Varint(self.varint()?),
            FIXED64 => Field::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            FIXED32 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            LEN => {
                let len = self.varint()?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let start = self.base + self.pos;
                Field::Len(Reader::new(self.take(len)?, start))
            }
            START_GROUP => {
                self.skip_group(number, depth)?;
                Field::Group
            }
            END_GROUP => return self.err("unexpected end group"),
            _ => return self.err(format!("invalid wire type value: {wire}")),
        };
        Ok(Some((number, wire, value)))
    }

    fn skip_group(&mut self, number: u32, depth: u32) -> R<()> {
        if depth == 0 {
            return self.err("recursion limit reached");
        }
        loop {
            if self.pos >= self.buf.len() {
                return self.err("group cut short");
            }
            let key = self.varint()?;
            let (n, wire) = ((key >> 3) as u32, (key & 7) as u8);
            if key > u64::from(u32::MAX) || n == 0 {
                return self.err(format!("invalid key value: {key}"));
            }
            match wire {
                END_GROUP if n == number => return Ok(()),
                END_GROUP => return self.err("unexpected end group"),
                VARINT => {
                    self.varint()?;
                }
                FIXED64 => {
                    self.take(8)?;
                }
                FIXED32 => {
                    self.take(4)?;
                }
                LEN => {
                    let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                    self.take(len)?;
                }
                START_GROUP => self.skip_group(n, depth - 1)?,
                _ => return self.err(format!("invalid wire type value: {wire}")),
            }
        }
    }
}

impl<'a> Field<'a> {
    fn wrong(number: u32, wire: u8, expected: u8, at: &Reader<'_>) -> WireError {
        WireError {
            offset: at.base + at.pos,
            message: format!("invalid wire type: field {number} has wire type {wire}, expected {expected}"),
        }
    }
}

/// `bytes` as text, if UTF-8. Nearly every string of a dump is ASCII,
/// which is checked eight bytes at a time before the full check.
#[inline]
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

fn string<'a>(field: Field<'a>, number: u32, wire: u8, at: &Reader<'_>) -> R<&'a str> {
    match field {
        Field::Len(r) => utf8(r.buf).ok_or_else(|| WireError {
            offset: r.base,
            message: format!("invalid string value in field {number}: data is not UTF-8 encoded"),
        }),
        _ => Err(Field::wrong(number, wire, LEN, at)),
    }
}

fn bytes<'a>(field: Field<'a>, number: u32, wire: u8, at: &Reader<'_>) -> R<&'a [u8]> {
    match field {
        Field::Len(r) => Ok(r.buf),
        _ => Err(Field::wrong(number, wire, LEN, at)),
    }
}

fn message<'a>(field: Field<'a>, number: u32, wire: u8, at: &Reader<'_>, depth: u32) -> R<Reader<'a>> {
    match field {
        Field::Len(r) if depth == 0 => r.err("recursion limit reached"),
        Field::Len(r) => Ok(r),
        _ => Err(Field::wrong(number, wire, LEN, at)),
    }
}

fn varint(field: Field<'_>, number: u32, wire: u8, at: &Reader<'_>) -> R<u64> {
    match field {
        Field::Varint(v) => Ok(v),
        _ => Err(Field::wrong(number, wire, VARINT, at)),
    }
}

fn fixed64(field: Field<'_>, number: u32, wire: u8, at: &Reader<'_>) -> R<u64> {
    match field {
        Field::Fixed64(v) => Ok(v),
        _ => Err(Field::wrong(number, wire, FIXED64, at)),
    }
}

fn fixed32(field: Field<'_>, number: u32, wire: u8, at: &Reader<'_>) -> R<u32> {
    match field {
        Field::Fixed32(v) => Ok(v),
        _ => Err(Field::wrong(number, wire, FIXED32, at)),
    }
}

/// Reads a whole protobuf message whose field 1 is repeated `ResourceSpans`
/// (`ExportTraceServiceRequest`, `TracesData`) from a slice; other fields
/// are skipped. The error carries the byte offset within `body`.
pub(crate) fn read_request(body: &[u8], e: &mut Emitter<'_>, max_message: u64) -> Result<(), (u64, String)> {
    let mut r = Reader::new(body, 0);
    loop {
        let field_start = r.pos as u64;
        let fail = |m: String| Err((field_start, m));
        if r.pos >= r.buf.len() {
            return Ok(());
        }
        let key = r.varint().map_err(|err| (field_start, format!("protobuf {}", err.message)))?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        // As prost: a key past 32 bits or field number 0 is not protobuf.
        if key > u64::from(u32::MAX) {
            return fail(format!("protobuf invalid key value: {key}"));
        }
        if field == 0 {
            return fail("protobuf invalid tag value: 0 (field numbers start at 1)".to_string());
        }
        if field == 1 && wire != LEN {
            return fail(format!("protobuf field 1 (resource_spans) has wire type {wire}, not length-delimited"));
        }
        match wire {
            VARINT => {
                r.varint().map_err(|err| (field_start, format!("protobuf {}", err.message)))?;
            }
            // An unknown group is skipped, as prost skips it.
            START_GROUP => {
                r.skip_group(field as u32, RECURSION_LIMIT)
                    .map_err(|err| (field_start, format!("protobuf {}", err.message)))?;
            }
            FIXED64 | FIXED32 => {
                let n = if wire == FIXED64 { 8 } else { 4 };
                if r.take(n).is_err() {
                    return fail(format!("protobuf field {field} cut short at end of input"));
                }
            }
            LEN => {
                let len = r.varint().map_err(|err| (field_start, format!("protobuf {}", err.message)))?;
                if len > max_message {
                    return fail(format!("field {field} is {len} bytes long, over the {max_message}-byte limit"));
                }
                let available = (r.buf.len() - r.pos) as u64;
                if len > available {
                    return fail(format!("field {field} of {len} bytes cut short after {available} bytes"));
                }
                let start = r.pos;
                let bytes = r.take(len as usize).expect("length checked");
                if field == 1 {
                    emit_resource_spans(bytes, e).map_err(|err| {
                        (
                            field_start,
                            format!(
                                "invalid ResourceSpans message: {} (byte {} of the input)",
                                err.message,
                                start + err.offset
                            ),
                        )
                    })?;
                }
            }
            _ => {
                return fail(format!(
                    "invalid protobuf wire type {wire} for field {field}; expected an OTLP ExportTraceServiceRequest"
                ));
            }
        }
    }
}

/// Decodes `ResourceSpans` bytes and emits its spans. On an error nothing
/// of the message is emitted (its spans and warnings are rolled back).
pub(crate) fn emit_resource_spans(bytes: &[u8], e: &mut Emitter<'_>) -> R<()> {
    let own_record = !e.in_record();
    if own_record {
        e.begin_record();
    }
    let result = decode_resource_spans(Reader::new(bytes, 0), e);
    if own_record {
        match result {
            Ok(()) => e.commit_record(),
            Err(_) => e.abort_record(),
        }
    }
    result
}

fn decode_resource_spans(mut r: Reader<'_>, e: &mut Emitter<'_>) -> R<()> {
    let depth = RECURSION_LIMIT;
    // The resource may come after the spans: find the parts first.
    let mut resources: Vec<Reader<'_>> = Vec::new();
    let mut scopes: Vec<Reader<'_>> = Vec::new();
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => resources.push(message(field, number, wire, &r, depth)?),
            2 => scopes.push(message(field, number, wire, &r, depth)?),
            3 => {
                string(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    // Senders repeat the same resource, byte for byte, in every request: a
    // single resource message decoded before is not decoded again (it was
    // well-formed then, so it is now).
    let cached = match &resources[..] {
        [one] => e.dict.encoded_resource(one.buf).ok_or(Some(one.buf)),
        _ => Err(None),
    };
    let resource = match cached {
        Ok(id) => id,
        Err(encoded) => {
            // Repeated resource messages merge: their attributes append.
            let mut attrs = Vec::new();
            for m in resources {
                decode_resource(m, &mut attrs, e, depth - 1)?;
            }
            let id = e.dict.resource(attrs);
            if let Some(bytes) = encoded {
                e.dict.remember_encoded_resource(bytes, id);
            }
            id
        }
    };
    let service = e.dict.resource_of(resource).service;
    for scope in scopes {
        decode_scope_spans(scope, resource, service, e, depth - 1)?;
    }
    Ok(())
}

fn decode_resource(mut r: Reader<'_>, attrs: &mut Vec<Attr>, e: &mut Emitter<'_>, depth: u32) -> R<()> {
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => {
                let m = message(field, number, wire, &r, depth)?;
                attrs.push(decode_key_value(m, e.dict, depth - 1)?);
            }
            2 => {
                varint(field, number, wire, &r)?;
            }
            3 => validate_entity_ref(message(field, number, wire, &r, depth)?, depth - 1)?,
            _ => {}
        }
    }
    Ok(())
}

fn validate_entity_ref(mut r: Reader<'_>, depth: u32) -> R<()> {
    while let Some((number, wire, field)) = r.next(depth)? {
        if (1..=4).contains(&number) {
            string(field, number, wire, &r)?;
        }
    }
    Ok(())
}

fn decode_scope_spans(mut r: Reader<'_>, resource: ResourceId, service: Sym, e: &mut Emitter<'_>, depth: u32) -> R<()> {
    let mut scope: Option<(&str, &str)> = None;
    let mut spans: Vec<Reader<'_>> = Vec::new();
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => {
                let m = message(field, number, wire, &r, depth)?;
                let (name, version) = scope.get_or_insert(("", ""));
                decode_scope(m, name, version, depth - 1)?;
            }
            2 => spans.push(message(field, number, wire, &r, depth)?),
            3 => {
                string(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    let (scope_name, scope_version) = match scope {
        Some((name, version)) => (e.dict.intern(name), e.dict.intern(version)),
        None => (Sym::EMPTY, Sym::EMPTY),
    };
    for span in spans {
        let mut s = Span::new(TraceId::default(), SpanId::default());
        s.resource = resource;
        s.service = service;
        s.scope_name = scope_name;
        s.scope_version = scope_version;
        decode_span(span, e, depth - 1, &mut s)?;
        e.emit(s);
    }
    Ok(())
}

fn decode_scope<'a>(mut r: Reader<'a>, name: &mut &'a str, version: &mut &'a str, depth: u32) -> R<()> {
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => *name = string(field, number, wire, &r)?,
            2 => *version = string(field, number, wire, &r)?,
            3 => {
                // Scope attributes are not kept, but must be well-formed.
                validate_key_value(message(field, number, wire, &r, depth)?, depth - 1)?;
            }
            4 => {
                varint(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decodes a `Span` message into `span` (a new span whose resource and
/// scope are set), in place: spans are large, and not moved here.
fn decode_span(mut r: Reader<'_>, e: &mut Emitter<'_>, depth: u32, span: &mut Span) -> R<()> {
    let (mut trace_id, mut span_id, mut parent_id): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let (mut start, mut end) = (0u64, 0u64);
    let mut status: Option<(i32, &str)> = None;
    let mut name = "";
    let mut json_attributes = 0usize;
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => trace_id = bytes(field, number, wire, &r)?,
            2 => span_id = bytes(field, number, wire, &r)?,
            3 => {
                let ts = string(field, number, wire, &r)?;
                span.set_trace_state((!ts.is_empty()).then(|| ts.into()));
            }
            4 => parent_id = bytes(field, number, wire, &r)?,
            5 => name = string(field, number, wire, &r)?,
            6 => span.kind = SpanKind::from_i32(varint(field, number, wire, &r)? as i32),
            7 => start = fixed64(field, number, wire, &r)?,
            8 => end = fixed64(field, number, wire, &r)?,
            9 => {
                let m = message(field, number, wire, &r, depth)?;
                if let Some(out) = e.attributes_json.as_deref_mut() {
                    out.text.push(if json_attributes == 0 { b'{' } else { b',' });
                    json_attributes += 1;
                    write_key_value_json(m, &mut out.text, e.dict, depth - 1)?;
                } else if let Some(a) = decode_attribute(m, e, depth - 1)? {
                    span.attributes.push(a);
                }
            }
            10 | 12 | 14 => {
                varint(field, number, wire, &r)?;
            }
            11 => {
                let m = message(field, number, wire, &r, depth)?;
                span.extra_mut().events.push(decode_event(m, e, depth - 1)?);
            }
            13 => {
                let m = message(field, number, wire, &r, depth)?;
                if let Some(link) = decode_link(m, e, depth - 1)? {
                    span.extra_mut().links.push(link);
                }
            }
            15 => {
                let m = message(field, number, wire, &r, depth)?;
                let (code, msg) = status.get_or_insert((0, ""));
                decode_status(m, code, msg, depth - 1)?;
            }
            16 => span.flags = fixed32(field, number, wire, &r)?,
            _ => {}
        }
    }
    if let Some(out) = e.attributes_json.as_deref_mut() {
        out.text.extend_from_slice(if json_attributes == 0 { b"{}" } else { b"}" });
        out.ends.push(out.text.len());
    }
    span.name = e.dict.intern(name);
    let parent = (!parent_id.is_empty()).then_some(RawId::Bytes(parent_id));
    e.set_ids(span, RawId::Bytes(trace_id), RawId::Bytes(span_id), parent);
    e.set_timing(span, Some(start), (end != 0).then_some(end));
    if let Some((code, message)) = status {
        span.status = StatusCode::from_i32(code);
        span.set_status_message((!message.is_empty()).then(|| message.into()));
    }
    Ok(())
}

fn decode_status<'a>(mut r: Reader<'a>, code: &mut i32, msg: &mut &'a str, depth: u32) -> R<()> {
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            2 => *msg = string(field, number, wire, &r)?,
            3 => *code = varint(field, number, wire, &r)? as i32,
            _ => {}
        }
    }
    Ok(())
}

fn decode_event(mut r: Reader<'_>, e: &mut Emitter<'_>, depth: u32) -> R<Event> {
    let mut event = Event { time_ns: 0, name: Sym::EMPTY, attributes: Vec::new() };
    let mut name = "";
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => event.time_ns = fixed64(field, number, wire, &r)?,
            2 => name = string(field, number, wire, &r)?,
            3 => {
                let m = message(field, number, wire, &r, depth)?;
                if let Some(a) = decode_attribute(m, e, depth - 1)? {
                    event.attributes.push(a);
                }
            }
            4 => {
                varint(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    event.name = e.dict.intern(name);
    Ok(event)
}

/// A link, or `None` when its ids are unusable (as the converter drops them).
fn decode_link(mut r: Reader<'_>, e: &mut Emitter<'_>, depth: u32) -> R<Option<Link>> {
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    let mut attributes = Vec::new();
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => trace_id = bytes(field, number, wire, &r)?,
            2 => span_id = bytes(field, number, wire, &r)?,
            3 => {
                string(field, number, wire, &r)?;
            }
            4 => {
                let m = message(field, number, wire, &r, depth)?;
                if let Some(a) = decode_attribute(m, e, depth - 1)? {
                    attributes.push(a);
                }
            }
            5 => {
                varint(field, number, wire, &r)?;
            }
            6 => {
                fixed32(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    let (Some(trace_id), Some(span_id)) = (TraceId::from_bytes(trace_id).id(), SpanId::from_bytes(span_id).id()) else {
        return Ok(None);
    };
    Ok(Some(Link { trace_id, span_id, attributes }))
}

/// A span, event or link attribute: decoded when the emitter keeps its key
/// (or keeps everything), else only checked.
fn decode_attribute(r: Reader<'_>, e: &mut Emitter<'_>, depth: u32) -> R<Option<Attr>> {
    let Some(keep) = &e.keep_attributes else { return decode_key_value(r, e.dict, depth).map(Some) };
    let kept = |e: &Emitter<'_>, key: &str| {
        e.may_keep_key_of_len(key.len()) && e.dict.get(key).is_some_and(|k| keep.contains(&k))
    };
    if let Some(key) = usual_key_value(r.buf) {
        return if kept(e, key) { decode_key_value(r, e.dict, depth).map(Some) } else { Ok(None) };
    }
    // One pass checks the attribute as `decode_key_value` would and finds
    // its key (which may follow the value; the last one wins); only a kept
    // attribute is then decoded.
    let mut scan = r.clone();
    let mut key = "";
    while let Some((number, wire, field)) = scan.next(depth)? {
        match number {
            1 => key = string(field, number, wire, &scan)?,
            2 => validate_any_value(message(field, number, wire, &scan, depth)?, depth - 1)?,
            3 => {
                varint(field, number, wire, &scan)?;
            }
            _ => {}
        }
    }
    if kept(e, key) { decode_key_value(r, e.dict, depth).map(Some) } else { Ok(None) }
}

/// The key of a `KeyValue` in the encoding nearly every sender writes —
/// the key, then an `AnyValue` holding one ASCII string or one integer,
/// nothing else — which is then valid; `None` for any other encoding
/// (which the general path checks and decodes). Checking a skipped
/// attribute this way takes a few byte comparisons.
#[inline]
fn usual_key_value(b: &[u8]) -> Option<&str> {
    /// A length of one or two bytes, and what follows it.
    fn short_len(b: &[u8]) -> Option<(usize, &[u8])> {
        match b {
            [b0, rest @ ..] if *b0 < 0x80 => Some((*b0 as usize, rest)),
            [b0, b1, rest @ ..] if *b1 < 0x80 => Some((usize::from(*b0 & 0x7f) | usize::from(*b1) << 7, rest)),
            _ => None,
        }
    }
    let (0x0A, rest) = b.split_first().map(|(t, r)| (*t, r))? else { return None };
    let (key_len, rest) = short_len(rest)?;
    let (key, rest) = (rest.get(..key_len)?, &rest[key_len..]);
    let (0x12, rest) = rest.split_first().map(|(t, r)| (*t, r))? else { return None };
    let (value_len, value) = short_len(rest)?;
    if value.len() != value_len {
        return None;
    }
    let usual = match value {
        // stringValue
        [0x0A, rest @ ..] => short_len(rest).is_some_and(|(n, text)| text.len() == n && text.is_ascii()),
        // intValue: one varint of at most 9 bytes filling the rest
        [0x18, varint @ ..] => {
            (1..=9).contains(&varint.len())
                && varint[..varint.len() - 1].iter().all(|b| b & 0x80 != 0)
                && varint[varint.len() - 1] & 0x80 == 0
        }
        _ => false,
    };
    if usual && key.is_ascii() { utf8(key) } else { None }
}

/// Checks a `KeyValue` as [`decode_key_value`] would, keeping nothing.
fn validate_key_value(mut r: Reader<'_>, depth: u32) -> R<()> {
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => {
                string(field, number, wire, &r)?;
            }
            2 => validate_any_value(message(field, number, wire, &r, depth)?, depth - 1)?,
            3 => {
                varint(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks an `AnyValue` as [`decode_any_value`] would, keeping nothing.
fn validate_any_value(mut r: Reader<'_>, depth: u32) -> R<()> {
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => {
                string(field, number, wire, &r)?;
            }
            2 | 3 | 8 => {
                varint(field, number, wire, &r)?;
            }
            4 => {
                fixed64(field, number, wire, &r)?;
            }
            5 | 6 => {
                let mut m = message(field, number, wire, &r, depth)?;
                while let Some((n, w, f)) = m.next(depth - 1)? {
                    if n == 1 {
                        let item = message(f, n, w, &m, depth - 1)?;
                        if number == 5 {
                            validate_any_value(item, depth - 2)?;
                        } else {
                            validate_key_value(item, depth - 2)?;
                        }
                    }
                }
            }
            7 => {
                bytes(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// An attribute value that is one scalar, borrowed from the wire.
enum Scalar<'a> {
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
}

/// Writes a `KeyValue` as `"key":value`, the text [`crate::model::attr_json`]
/// makes of the attribute [`decode_key_value`] decodes, and accepts and
/// refuses what it does. A value of one scalar is written from the wire;
/// anything else (arrays, maps, repeated or merged values) is decoded and
/// written from the model.
fn write_key_value_json(r: Reader<'_>, out: &mut Vec<u8>, dict: &mut Dictionary, depth: u32) -> R<()> {
    let mut scan = r.clone();
    let mut key = "";
    let mut value = None;
    let mut values = 0;
    while let Some((number, wire, field)) = scan.next(depth)? {
        match number {
            1 => key = string(field, number, wire, &scan)?,
            2 => {
                value = Some(message(field, number, wire, &scan, depth)?);
                values += 1;
            }
            3 => {
                varint(field, number, wire, &scan)?;
            }
            _ => {}
        }
    }
    let scalar = match (values, value) {
        (0, _) => Some(Scalar::Empty),
        (1, Some(v)) => scalar_value(v, depth - 1)?,
        _ => None,
    };
    match scalar {
        Some(v) => {
            json(out, key);
            out.push(b':');
            match v {
                Scalar::Empty => out.extend_from_slice(b"null"),
                Scalar::Str(s) => json(out, s),
                Scalar::Bool(b) => json(out, &b),
                Scalar::Int(i) => json(out, &i),
                Scalar::Double(d) => json(out, &d),
                Scalar::Bytes(b) => {
                    use base64::Engine;
                    json(out, &base64::engine::general_purpose::STANDARD.encode(b))
                }
            }
        }
        None => {
            let attr = decode_key_value(r, dict, depth)?;
            json(out, dict.resolve(attr.key));
            out.push(b':');
            crate::model::attr_json::write_value_bytes(out, dict, &attr.value);
        }
    }
    Ok(())
}

/// Appends one JSON value (serde_json's text for it).
fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("JSON into memory");
}

/// The value of an `AnyValue` holding exactly one scalar field (checked as
/// [`decode_any_value`] checks it), or `None` for anything else.
fn scalar_value(mut r: Reader<'_>, depth: u32) -> R<Option<Scalar<'_>>> {
    let mut scalar = None;
    let mut fields = 0;
    while let Some((number, wire, field)) = r.next(depth)? {
        let v = match number {
            1 => Scalar::Str(string(field, number, wire, &r)?),
            2 => Scalar::Bool(varint(field, number, wire, &r)? != 0),
            3 => Scalar::Int(varint(field, number, wire, &r)? as i64),
            4 => Scalar::Double(f64::from_bits(fixed64(field, number, wire, &r)?)),
            5 | 6 => return Ok(None),
            7 => Scalar::Bytes(bytes(field, number, wire, &r)?),
            8 => {
                varint(field, number, wire, &r)?;
                Scalar::Empty
            }
            _ => continue,
        };
        scalar = Some(v);
        fields += 1;
    }
    Ok(match fields {
        0 => Some(Scalar::Empty),
        1 => scalar,
        _ => None,
    })
}

fn decode_key_value(mut r: Reader<'_>, dict: &mut Dictionary, depth: u32) -> R<Attr> {
    let mut key = "";
    let mut value = Value::Empty;
    while let Some((number, wire, field)) = r.next(depth)? {
        match number {
            1 => key = string(field, number, wire, &r)?,
            2 => {
                let m = message(field, number, wire, &r, depth)?;
                // A repeated message field merges; for a oneof the last wins.
                value = decode_any_value(m, value, dict, depth - 1)?;
            }
            3 => {
                varint(field, number, wire, &r)?;
            }
            _ => {}
        }
    }
    Ok(Attr { key: dict.intern(key), value })
}

fn decode_any_value(mut r: Reader<'_>, mut value: Value, dict: &mut Dictionary, depth: u32) -> R<Value> {
    while let Some((number, wire, field)) = r.next(depth)? {
        value = match number {
            1 => Value::Str(string(field, number, wire, &r)?.into()),
            2 => Value::Bool(varint(field, number, wire, &r)? != 0),
            3 => Value::Int(varint(field, number, wire, &r)? as i64),
            4 => Value::Double(f64::from_bits(fixed64(field, number, wire, &r)?)),
            5 => {
                let mut m = message(field, number, wire, &r, depth)?;
                // Merging into an array already there appends to it.
                let mut items = match value {
                    Value::Array(items) => items.into_vec(),
                    _ => Vec::new(),
                };
                while let Some((n, w, f)) = m.next(depth - 1)? {
                    if n == 1 {
                        let item = message(f, n, w, &m, depth - 1)?;
                        items.push(decode_any_value(item, Value::Empty, dict, depth - 2)?);
                    }
                }
                Value::Array(items.into())
            }
            6 => {
                let mut m = message(field, number, wire, &r, depth)?;
                let mut entries = match value {
                    Value::Map(entries) => entries.into_vec(),
                    _ => Vec::new(),
                };
                while let Some((n, w, f)) = m.next(depth - 1)? {
                    if n == 1 {
                        let kv = message(f, n, w, &m, depth - 1)?;
                        entries.push(decode_key_value(kv, dict, depth - 2)?);
                    }
                }
                Value::Map(entries.into())
            }
            7 => Value::Bytes(bytes(field, number, wire, &r)?.into()),
            // A profiling dictionary index: meaningless without the dictionary.
            8 => {
                varint(field, number, wire, &r)?;
                Value::Empty
            }
            _ => value,
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::resolved;
    use super::*;
    use crate::model::Warnings;
    use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
    use prost::Message;

    /// Both decoders on the same bytes: (resolved spans or error, warnings).
    /// Resolved spans (or a failure) and the warnings counted.
    type Outcome = (Result<Vec<String>, ()>, Warnings);

    fn both(bytes: &[u8]) -> (Outcome, Outcome) {
        let run = |wire: bool| {
            let mut dict = Dictionary::default();
            let mut warnings = Warnings::default();
            let mut spans = Vec::new();
            let result = {
                let mut sink = |d: &Dictionary, s: Span| spans.push(resolved(d, &s));
                let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
                if wire {
                    emit_resource_spans(bytes, &mut e).map_err(|_| ())
                } else {
                    ResourceSpans::decode(bytes)
                        .map(|rs| super::super::otlp_proto::emit_resource_spans(&rs, &mut e))
                        .map_err(|_| ())
                }
            };
            (result.map(|()| spans), warnings)
        };
        (run(true), run(false))
    }

    fn sample() -> Vec<u8> {
        use opentelemetry_proto::tonic::common::v1::{
            AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
        };
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span as PSpan, Status as PStatus, span};
        let kv = |k: &str, v: any_value::Value| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        };
        let span = |id: u8, parent: u8| PSpan {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
            name: format!("op {id}"),
            kind: i32::from(id % 6),
            start_time_unix_nano: 1_000_000_000 + u64::from(id),
            end_time_unix_nano: if id == 3 { 0 } else { 2_000_000_000 },
            trace_state: if id == 2 { "a=b".into() } else { String::new() },
            flags: 0x301,
            attributes: vec![
                kv("s", any_value::Value::StringValue("x".into())),
                kv("i", any_value::Value::IntValue(-5)),
                kv("d", any_value::Value::DoubleValue(1.5)),
                kv("b", any_value::Value::BoolValue(true)),
                kv("y", any_value::Value::BytesValue(vec![1, 2])),
                kv(
                    "a",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue { value: Some(any_value::Value::IntValue(1)) }],
                    }),
                ),
                kv(
                    "m",
                    any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("k", any_value::Value::StringValue("v".into()))],
                    }),
                ),
            ],
            events: vec![span::Event {
                time_unix_nano: 5,
                name: "ev".into(),
                attributes: vec![kv("e", any_value::Value::IntValue(1))],
                ..Default::default()
            }],
            links: vec![
                span::Link { trace_id: vec![9; 16], span_id: vec![9; 8], ..Default::default() },
                span::Link { trace_id: vec![], span_id: vec![1; 8], ..Default::default() },
            ],
            status: (id == 2).then(|| PStatus { code: 2, message: "boom".into() }),
            ..Default::default()
        };
        let rs = ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue("svc".into())),
                    kv("service.version", any_value::Value::StringValue("1.2".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![
                ScopeSpans {
                    scope: Some(InstrumentationScope { name: "lib".into(), version: "9".into(), ..Default::default() }),
                    spans: vec![span(1, 0), span(2, 1)],
                    ..Default::default()
                },
                ScopeSpans { scope: None, spans: vec![span(3, 1), span(0, 1)], ..Default::default() },
            ],
            ..Default::default()
        };
        rs.encode_to_vec()
    }

    #[test]
    fn decodes_exactly_as_prost_and_the_converter() {
        let bytes = sample();
        let ((wire, ww), (prost, pw)) = both(&bytes);
        let (wire, prost) = (wire.unwrap(), prost.unwrap());
        assert_eq!(wire.len(), 4);
        assert_eq!(wire, prost);
        assert_eq!(format!("{ww:?}"), format!("{pw:?}"));
    }

    #[test]
    fn a_repeated_resource_is_decoded_once_and_merged_resources_still_merge() {
        let bytes = sample();
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut resources = Vec::new();
        for _ in 0..2 {
            let mut sink = |_: &Dictionary, s: Span| resources.push(s.resource);
            let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
            emit_resource_spans(&bytes, &mut e).unwrap();
        }
        assert_eq!(resources.len(), 8);
        assert!(resources.iter().all(|&r| r == resources[0]));
        assert_eq!(dict.resources.len(), 1);
        // The resource message (field 1) as it was encoded is remembered.
        let mut r = Reader::new(&bytes, 0);
        let (_, _, field) = r.next(RECURSION_LIMIT).unwrap().unwrap();
        let Field::Len(resource) = field else { panic!("field 1 is a message") };
        assert_eq!(dict.encoded_resource(resource.buf), Some(resources[0]));
        // Two resource messages in one ResourceSpans merge (as prost does):
        // here a second one adds host.name, so it is another resource.
        let mut merged = bytes.clone();
        merged.extend_from_slice(&[0x0a, 0x13, 0x0a, 0x11, 0x0a, 0x09]);
        merged.extend_from_slice(b"host.name");
        merged.extend_from_slice(&[0x12, 0x04, 0x0a, 0x02]);
        merged.extend_from_slice(b"h1");
        let ((wire, _), (prost, _)) = both(&merged);
        let (wire, prost) = (wire.unwrap(), prost.unwrap());
        assert_eq!(wire, prost);
        assert!(wire[0].contains("host.name=Str(\"h1\")"), "{}", wire[0]);
    }

    #[test]
    fn the_usual_attribute_encoding_is_recognised_and_nothing_else() {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
        let kv = |key: &str, value: Option<V>| {
            KeyValue { key: key.into(), value: Some(AnyValue { value }), ..Default::default() }.encode_to_vec()
        };
        let long = "SELECT ".repeat(40);
        assert_eq!(usual_key_value(&kv("db.query.text", Some(V::StringValue(long.clone())))), Some("db.query.text"));
        assert_eq!(usual_key_value(&kv("server.port", Some(V::IntValue(8080)))), Some("server.port"));
        assert_eq!(usual_key_value(&kv("n", Some(V::IntValue(-1)))), None, "10-byte varints take the general path");
        for other in [Some(V::BoolValue(true)), Some(V::DoubleValue(1.5)), Some(V::StringValue("é".into())), None] {
            assert_eq!(usual_key_value(&kv("k", other.clone())), None, "{other:?}");
        }
        let good = kv("server.address", Some(V::StringValue("cart.svc".into())));
        for cut in 0..good.len() {
            assert_eq!(usual_key_value(&good[..cut]), None, "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.extend_from_slice(&[0x18, 0x01]);
        assert_eq!(usual_key_value(&extra), None, "a further field");
    }

    #[test]
    fn keeping_some_attributes_drops_the_rest_and_refuses_the_same_input() {
        let keys = ["i", "e", "service.name"];
        let run = |bytes: &[u8], filter: bool| {
            let mut dict = Dictionary::default();
            let mut warnings = Warnings::default();
            let mut spans = Vec::new();
            let result = {
                let mut sink = |d: &Dictionary, s: Span| spans.push(resolved(d, &s));
                let e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
                let mut e = if filter { e.keep_only_attributes(&keys) } else { e };
                emit_resource_spans(bytes, &mut e).is_ok()
            };
            (result, spans)
        };
        let bytes = sample();
        let (ok, kept) = run(&bytes, true);
        assert!(ok);
        assert!(kept[0].contains("attrs=i=Int(-5) ") && !kept[0].contains("s=Str"), "{}", kept[0]);
        assert!(kept[0].contains("ev@5:e=Int(1)"), "{}", kept[0]);
        assert!(kept[0].contains("res=service.name=Str(\"svc\");service.version"), "resource attributes stay");
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut m = bytes.clone();
            let i = rng as usize % m.len();
            m[i] = (rng >> 40) as u8;
            assert_eq!(run(&m, true).0, run(&m, false).0, "the filter changes what is kept, not what is refused");
        }
    }

    /// Spans of `bytes` with their attributes as JSON text: written from
    /// the wire (`json`) or decoded and then serialized as tables do.
    fn with_json_attributes(bytes: &[u8], json: bool) -> Result<Vec<(String, String)>, ()> {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut out = crate::read::AttributesJson::default();
        let mut spans = Vec::new();
        let mut sink = |d: &Dictionary, mut s: Span| {
            let text = crate::model::attr_json::attributes(d, &s.attributes);
            s.attributes.clear();
            spans.push((resolved(d, &s), text));
        };
        let e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
        let result = if json {
            let mut e = e.attributes_as_json(&mut out);
            read_request(bytes, &mut e, u64::MAX).map_err(|_| ())
        } else {
            let mut e = e;
            read_request(bytes, &mut e, u64::MAX).map_err(|_| ())
        };
        result?;
        if json {
            assert_eq!(out.len(), spans.len());
            for (i, (_, text)) in spans.iter_mut().enumerate() {
                assert_eq!(text, "{}", "the span's own attributes stay empty");
                *text = out.get(i).to_string();
            }
        }
        Ok(spans)
    }

    /// A request (field 1: ResourceSpans) with attributes of every kind,
    /// odd doubles and strings, empty values, and values repeated within
    /// one attribute (merged or replaced as prost does).
    fn attribute_sample() -> Vec<u8> {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan};
        let kv = |k: &str, v: Option<any_value::Value>| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: v }),
            ..Default::default()
        };
        use any_value::Value as V;
        let mut attributes = vec![
            kv("quote\"d \u{7} ü", Some(V::StringValue("line\nbreak \"q\" \u{1F600} \\".into()))),
            kv("nan", Some(V::DoubleValue(f64::NAN))),
            kv("inf", Some(V::DoubleValue(f64::NEG_INFINITY))),
            kv("tiny", Some(V::DoubleValue(5e-324))),
            kv("big", Some(V::IntValue(i64::MIN))),
            kv("no value", None),
            kv("false", Some(V::BoolValue(false))),
            kv("bytes", Some(V::BytesValue(vec![0, 255, 10]))),
            kv(
                "nested",
                Some(V::KvlistValue(KeyValueList {
                    values: vec![kv(
                        "list",
                        Some(V::ArrayValue(ArrayValue {
                            values: vec![AnyValue { value: Some(V::DoubleValue(0.1)) }, AnyValue { value: None }],
                        })),
                    )],
                })),
            ),
            kv("dup", Some(V::IntValue(1))),
            kv("dup", Some(V::StringValue("2".into()))),
        ];
        attributes.push(KeyValue { key: "absent".into(), value: None, ..Default::default() });
        let span = PSpan {
            trace_id: vec![7; 16],
            span_id: vec![1; 8],
            name: "op".into(),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes,
            ..Default::default()
        };
        let mut bare = span.clone();
        bare.span_id = vec![2; 8];
        bare.attributes.clear();
        let rs = ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![span, bare], ..Default::default() }],
            ..Default::default()
        };
        let mut bytes = request_of(&rs.encode_to_vec());
        // A span whose attributes repeat fields: a key given twice (the last
        // wins), a value given twice (scalars: the last wins), an AnyValue
        // of two fields, arrays given twice (they append), a profile index.
        let mut span = Vec::new();
        span.extend_from_slice(&[0x0a, 16]);
        span.extend_from_slice(&[7; 16]);
        span.extend_from_slice(&[0x12, 8]);
        span.extend_from_slice(&[3; 8]);
        span.extend_from_slice(&[0x39, 1, 0, 0, 0, 0, 0, 0, 0, 0x41, 2, 0, 0, 0, 0, 0, 0, 0]);
        for kv in [
            &[0x0a, 1, b'a', 0x0a, 1, b'b', 0x12, 2, 0x18, 1][..],
            &[0x0a, 1, b'c', 0x12, 2, 0x18, 1, 0x12, 3, 0x0a, 1, b'x'],
            &[0x0a, 1, b'd', 0x12, 5, 0x18, 4, 0x0a, 1, b'y'],
            &[0x0a, 1, b'e', 0x12, 4, 0x2a, 2, 0x0a, 0, 0x12, 6, 0x2a, 4, 0x0a, 2, 0x18, 9],
            &[0x0a, 1, b'f', 0x12, 2, 0x40, 3],
            &[0x0a, 1, b'g', 0x12, 5, 0x0a, 1, b'z', 0x40, 0],
        ] {
            span.push(0x4a);
            span.push(kv.len() as u8);
            span.extend_from_slice(kv);
        }
        let scope = [&[0x12, span.len() as u8][..], &span].concat();
        let resource_spans = [&[0x12, scope.len() as u8][..], &scope].concat();
        bytes.extend_from_slice(&request_of(&resource_spans));
        bytes
    }

    /// An export request of one `ResourceSpans` message.
    fn request_of(resource_spans: &[u8]) -> Vec<u8> {
        let mut request = vec![0x0a];
        prost::encoding::encode_varint(resource_spans.len() as u64, &mut request);
        request.extend_from_slice(resource_spans);
        request
    }

    #[test]
    fn attributes_as_json_are_the_text_tables_write_and_refuse_the_same_input() {
        let mut bytes = Vec::new();
        for message in [request_of(&sample()), attribute_sample()] {
            bytes = message;
            let json = with_json_attributes(&bytes, true).unwrap();
            assert_eq!(json, with_json_attributes(&bytes, false).unwrap());
            assert!(!json.is_empty());
        }
        let json = with_json_attributes(&bytes, true).unwrap();
        assert_eq!(json.len(), 3);
        assert!(
            json[0].1.contains(r#""nan":null,"inf":null,"tiny":5e-324,"big":-9223372036854775808"#),
            "{}",
            json[0].1
        );
        assert!(json[0].1.contains(r#""no value":null"#) && json[0].1.contains(r#""absent":null"#), "{}", json[0].1);
        assert!(json[0].1.contains(r#""bytes":"AP8K""#), "{}", json[0].1);
        assert!(json[0].1.contains(r#""nested":{"list":[0.1,null]}"#), "{}", json[0].1);
        assert_eq!(json[1].1, "{}");
        assert_eq!(json[2].1, r#"{"b":1,"c":"x","d":"y","e":[null,9],"f":null,"g":null}"#);
        // Mutations: refused exactly when the decoding path refuses them,
        // the same text when accepted.
        let mut rng = crate::generate::rng::Rng::new(0x853c_49e6_748f_ea9b);
        let mut next = move || rng.next_u64();
        let (mut ok, mut refused) = (0, 0);
        for round in 0..10_000 {
            let mut m = bytes.clone();
            if round % 2 == 0 {
                let i = next() as usize % m.len();
                m[i] = next() as u8;
            } else {
                for _ in 0..2 {
                    let i = next() as usize % m.len();
                    m[i] ^= 1 << (next() % 8);
                }
            }
            let (a, b) = (with_json_attributes(&m, true), with_json_attributes(&m, false));
            assert_eq!(a, b, "round {round}: {m:?}");
            if a.is_ok() { ok += 1 } else { refused += 1 }
        }
        assert!(ok > 1_000 && refused > 1_000, "{ok} accepted, {refused} refused");
    }

    /// Whether the borrowing decoder and prost accept a whole request:
    /// (wire, prost), with the spans each emitted.
    fn request_both(bytes: &[u8]) -> ((bool, usize), (bool, usize)) {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), 0usize);
        let wire = {
            let mut sink = |_: &Dictionary, _: Span| spans += 1;
            let mut e = Emitter::new("t", &mut dict, &mut warnings, &mut sink);
            read_request(bytes, &mut e, u64::MAX).is_ok()
        };
        let prost = ExportTraceServiceRequest::decode(bytes);
        let prost_spans = prost
            .as_ref()
            .map_or(0, |r| r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum());
        ((wire, spans), (prost.is_ok(), prost_spans))
    }

    #[test]
    fn requests_prost_refuses_are_refused_and_what_it_skips_is_skipped() {
        let spans = sample();
        let mut request = vec![(1 << 3) | 2];
        let mut len = spans.len();
        while len >= 0x80 {
            request.push(len as u8 | 0x80);
            len >>= 7;
        }
        request.push(len as u8);
        request.extend(&spans);
        let ((ok, n), (prost_ok, prost_n)) = request_both(&request);
        assert!(ok && prost_ok && n == prost_n && n > 0, "{n} vs {prost_n}");
        // Field number 0 (here 1,000 NUL bytes: key 0, value 0, ...).
        assert_eq!(request_both(&[0u8; 1000]), ((false, 0), (false, 0)));
        // A key past 32 bits.
        assert_eq!(request_both(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00]), ((false, 0), (false, 0)));
        // An unknown group before the spans is skipped by both.
        let mut grouped = vec![(9 << 3) | 3, 0x08, 0x01, (9 << 3) | 4];
        grouped.extend(&request);
        assert_eq!(request_both(&grouped), ((true, n), (true, n)));
        // A group that is never closed is refused by both.
        assert_eq!(request_both(&[(9 << 3) | 3, 0x08, 0x01]), ((false, 0), (false, 0)));
        // resource_spans with another wire type (found by fuzz/otlp_differential).
        assert_eq!(request_both(&[0x0d, 1, 2, 3, 4]), ((false, 0), (false, 0)));
        assert_eq!(request_both(&[0x08, 0x01]), ((false, 0), (false, 0)));
    }

    #[test]
    fn garbage_and_mutations_fail_exactly_when_prost_fails_and_never_panic() {
        let bytes = sample();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut agreed_errors, mut agreed_ok) = (0, 0);
        for round in 0..20_000 {
            let mut m = bytes.clone();
            match round % 4 {
                0 => {
                    let i = next() as usize % m.len();
                    m[i] = next() as u8;
                }
                1 => m.truncate(next() as usize % m.len()),
                2 => {
                    for _ in 0..3 {
                        let i = next() as usize % m.len();
                        m[i] ^= 1 << (next() % 8);
                    }
                }
                _ => m = (0..next() % 64).map(|_| next() as u8).collect(),
            }
            let ((wire, ww), (prost, pw)) = both(&m);
            match (&wire, &prost) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "round {round}: {m:?}");
                    assert_eq!(format!("{ww:?}"), format!("{pw:?}"));
                    agreed_ok += 1;
                }
                (Err(()), Err(())) => agreed_errors += 1,
                _ => panic!("round {round}: wire {:?} vs prost {:?} on {m:?}", wire.is_ok(), prost.is_ok()),
            }
        }
        eprintln!("{agreed_errors} errors, {agreed_ok} ok");
        assert!(agreed_errors > 1_000 && agreed_ok > 1_000, "{agreed_errors} errors, {agreed_ok} ok");
    }
}
