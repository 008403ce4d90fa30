//! The [`Emitter`]: where every reader hands over finished spans. It owns the
//! rules every format shares — id validation, timing checks, warnings — and
//! makes a stream record atomic: a record that fails to decode leaves no
//! spans and no warnings behind.

use crate::model::{
    Attr, Dictionary, MAX_VALUE_BYTES, ParsedId, Span, SpanId, SpanQuality, Sym, TraceId, Value, WarningKind, Warnings,
};

use super::Dialect;
use super::error::ReadErrorKind;
use super::lenient::{JAny, JKeyValue};

/// How many skipped-record messages an input keeps for its report.
const MAX_BAD_RECORD_MESSAGES: usize = 5;

/// An id as the dump wrote it.
#[derive(Clone, Copy, Debug)]
pub enum RawId<'a> {
    /// Text: hex (any length up to the id's), or base64.
    Text(&'a str),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

impl RawId<'_> {
    /// As a trace id; text `exact`ly as OTLP/JSON writes ids, or leniently
    /// (see [`TraceId::from_text`]).
    fn trace(self, exact: bool) -> ParsedId<TraceId> {
        match self {
            RawId::Text(t) if exact => TraceId::from_text_exact(t),
            RawId::Text(t) => TraceId::from_text(t),
            RawId::Bytes(b) => TraceId::from_bytes(b),
        }
    }

    /// As a span id (see [`RawId::trace`]).
    fn span(self, exact: bool) -> ParsedId<SpanId> {
        match self {
            RawId::Text(t) if exact => SpanId::from_text_exact(t),
            RawId::Text(t) => SpanId::from_text(t),
            RawId::Bytes(b) => SpanId::from_bytes(b),
        }
    }

    fn original(self) -> Box<str> {
        match self {
            RawId::Text(t) => t.into(),
            RawId::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect::<String>().into(),
        }
    }
}

/// Where emitted spans go.
enum Sink<'a> {
    /// Handed to a function one by one (a record's spans when it commits).
    Each(&'a mut dyn FnMut(&Dictionary, Span)),
    /// Appended to a vector as they are decoded (an aborted record's spans
    /// are truncated away): no span is moved twice.
    Vec(&'a mut Vec<Span>),
}

/// Collects spans from a reader into a sink, one input at a time.
pub struct Emitter<'a> {
    /// Where names and resources are interned (readers outside this
    /// crate intern through it too).
    pub dict: &'a mut Dictionary,
    warnings: &'a mut Warnings,
    sink: Sink<'a>,
    fallback_trace: TraceId,
    synthetic_seq: u64,
    spans: u64,
    /// The open record: its spans (held here unless the sink is a vector,
    /// where they start at `record_start`) and the warnings before it.
    record: Option<(Vec<Span>, Warnings, u64)>,
    record_start: usize,
    pending: Vec<Span>,
    bad_records: Vec<String>,
    dialect: Option<Dialect>,
    /// Set when a JSON record turned out not to be trace data at all.
    pub(crate) not_traces: bool,
    /// When set, only span, event and link attributes with these keys are
    /// kept (resource attributes are always kept).
    pub(crate) keep_attributes: Option<Vec<Sym>>,
    /// Bit `n` set when a kept key is `n` bytes long (bit 63: 63 or more),
    /// so most other keys are refused without hashing them.
    keep_lengths: u64,
    /// Ids given as text are read exactly as OTLP/JSON writes them
    /// ([`Emitter::exact_ids`]).
    exact_ids: bool,
    /// When set, the OTLP protobuf decoder writes each span's attributes
    /// here as JSON text instead of decoding them into the span.
    pub(crate) attributes_json: Option<&'a mut AttributesJson>,
    /// `attributes_json`'s lengths when the current record began.
    json_mark: (usize, usize),
}

/// How an emitter decodes, for an emitter of the same settings on another
/// thread ([`Emitter::chunk_settings`]).
#[derive(Clone, Debug)]
pub(crate) struct ChunkSettings {
    fallback_trace: TraceId,
    keep_attributes: Option<Vec<String>>,
    exact_ids: bool,
}

/// What an emitter made with [`Emitter::for_chunk`] decoded from one chunk.
pub(crate) struct DecodedChunk {
    /// The spans, referring into `dict`.
    pub(crate) spans: Vec<Span>,
    /// The chunk's own names and resources.
    pub(crate) dict: Dictionary,
    /// Warnings counted while decoding.
    pub(crate) warnings: Warnings,
    /// Messages of the first skipped records.
    pub(crate) bad_records: Vec<String>,
    /// The dialect recognised, if any.
    pub(crate) dialect: Option<Dialect>,
    /// A record turned out not to be trace data.
    pub(crate) not_traces: bool,
}

/// Span attributes as JSON text, one object per span in the order the
/// spans were emitted (see [`Emitter::attributes_as_json`]): the same text
/// [`crate::model::attr_json::attributes`] makes of the decoded attributes.
#[derive(Default, Debug)]
pub struct AttributesJson {
    /// The objects, back to back.
    pub(crate) text: Vec<u8>,
    /// Where each span's object ends in `text`.
    pub(crate) ends: Vec<usize>,
}

impl AttributesJson {
    /// Spans written.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No spans written.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The object of the `i`th span.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        std::str::from_utf8(&self.text[start..self.ends[i]]).expect("JSON text is UTF-8")
    }

    /// Writes `attributes` as the next span's object.
    pub fn push(&mut self, dict: &Dictionary, attributes: &[Attr]) {
        crate::model::attr_json::write_attributes_bytes(&mut self.text, dict, attributes);
        self.ends.push(self.text.len());
    }

    /// Forgets everything (keeping the memory).
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl<'a> Emitter<'a> {
    /// An emitter for the input named `input` (used to derive a stable
    /// synthetic trace id for spans whose trace id is unusable).
    pub fn new(
        input: &str,
        dict: &'a mut Dictionary,
        warnings: &'a mut Warnings,
        sink: &'a mut dyn FnMut(&Dictionary, Span),
    ) -> Self {
        Self::with_sink(input, dict, warnings, Sink::Each(sink))
    }

    /// An emitter that appends spans to `out` (what it held before stays).
    pub fn collecting(
        input: &str,
        dict: &'a mut Dictionary,
        warnings: &'a mut Warnings,
        out: &'a mut Vec<Span>,
    ) -> Self {
        Self::with_sink(input, dict, warnings, Sink::Vec(out))
    }

    fn with_sink(input: &str, dict: &'a mut Dictionary, warnings: &'a mut Warnings, sink: Sink<'a>) -> Self {
        let fallback = match TraceId::from_text(&format!("tracelens:invalid-trace-id:{input}")) {
            ParsedId::Valid(id) | ParsedId::Opaque(id) => id,
            ParsedId::Empty | ParsedId::Zero => TraceId([0xff; 16]),
        };
        Emitter {
            dict,
            warnings,
            sink,
            fallback_trace: fallback,
            synthetic_seq: 0,
            spans: 0,
            record: None,
            record_start: 0,
            pending: Vec::new(),
            bad_records: Vec::new(),
            dialect: None,
            not_traces: false,
            keep_attributes: None,
            keep_lengths: u64::MAX,
            exact_ids: false,
            attributes_json: None,
            json_mark: (0, 0),
        }
    }

    /// Has the OTLP protobuf decoder write each span's attributes to `out`
    /// as JSON text (one object per emitted span, in order; every
    /// attribute, whatever [`Emitter::keep_only_attributes`] says) and
    /// leave the span's own attributes empty: for a table that holds them
    /// as text anyway, without decoding every value. Text is written for
    /// exactly the spans emitted: a message that fails to decode leaves
    /// neither. Other formats' decoders ignore it (their spans keep their
    /// attributes and write nothing to `out`).
    pub fn attributes_as_json(mut self, out: &'a mut AttributesJson) -> Self {
        self.attributes_json = Some(out);
        self
    }

    /// Reads ids given as text exactly as OTLP/JSON must write them (see
    /// [`TraceId::from_text_exact`]): a receiver's rule, where a dump
    /// reader left-pads hex whose leading zeros were dropped. A malformed
    /// id is kept under a hash with its text, flagged
    /// [`SpanQuality::OPAQUE_ID`].
    pub fn exact_ids(mut self) -> Self {
        self.exact_ids = true;
        self
    }

    /// Keeps only span, event and link attributes named `keys` (and every
    /// resource attribute): for a consumer that reads a few known keys and
    /// should not pay for the rest. Undecodable input is still refused.
    pub fn keep_only_attributes(mut self, keys: &[&str]) -> Self {
        self.keep_attributes = Some(keys.iter().map(|k| self.dict.intern(k)).collect());
        self.keep_lengths = keys.iter().fold(0, |bits, k| bits | length_bit(k.len()));
        self
    }

    /// Whether a key of `len` bytes may be one of the kept keys (always,
    /// when every attribute is kept).
    pub(crate) fn may_keep_key_of_len(&self, len: usize) -> bool {
        self.keep_lengths & length_bit(len) != 0
    }

    /// What a decoder on another thread needs to decode as this emitter
    /// does ([`Emitter::for_chunk`]), or `None` when this emitter writes
    /// attributes as JSON text (which only the calling thread can).
    pub(crate) fn chunk_settings(&self) -> Option<ChunkSettings> {
        if self.attributes_json.is_some() {
            return None;
        }
        Some(ChunkSettings {
            fallback_trace: self.fallback_trace,
            keep_attributes: self
                .keep_attributes
                .as_ref()
                .map(|keep| keep.iter().map(|&k| self.dict.resolve(k).to_string()).collect()),
            exact_ids: self.exact_ids,
        })
    }

    /// An emitter that decodes as the one `settings` came from, into its
    /// own dictionary and warnings, appending spans to `out`: a chunk's
    /// spans decoded on another thread and then handed to that emitter by
    /// [`Emitter::absorb`].
    pub(crate) fn for_chunk(
        settings: &ChunkSettings,
        dict: &'a mut Dictionary,
        warnings: &'a mut Warnings,
        out: &'a mut Vec<Span>,
    ) -> Self {
        let mut e = Self::with_sink("", dict, warnings, Sink::Vec(out));
        e.fallback_trace = settings.fallback_trace;
        e.exact_ids = settings.exact_ids;
        if let Some(keys) = &settings.keep_attributes {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            e = e.keep_only_attributes(&keys);
        }
        e
    }

    /// Hands over what a chunk's emitter ([`Emitter::for_chunk`]) decoded,
    /// as if this emitter had decoded it: names and resources are interned
    /// here, warnings and skipped-record messages added, and synthetic span
    /// ids given in this emitter's sequence.
    /// The chunk's spans are taken out, leaving the vector to decode the
    /// next chunk into.
    pub(crate) fn absorb(&mut self, chunk: &mut DecodedChunk) {
        let translation = self.dict.absorb(&chunk.dict);
        self.warnings.merge(&chunk.warnings);
        for message in chunk.bad_records.drain(..) {
            if self.bad_records.len() < MAX_BAD_RECORD_MESSAGES {
                self.bad_records.push(message);
            }
        }
        if let Some(dialect) = chunk.dialect {
            self.set_dialect(dialect);
        }
        self.not_traces |= chunk.not_traces;
        for mut span in chunk.spans.drain(..) {
            translation.span(&mut span);
            if span.quality.contains(SpanQuality::INVALID_SPAN_ID) {
                span.span_id = self.next_synthetic_id(&span.trace_id);
            }
            self.spans += 1;
            match &mut self.sink {
                Sink::Vec(out) => out.push(span),
                Sink::Each(sink) => sink(self.dict, span),
            }
        }
    }

    /// What this emitter decoded, to hand to the emitter its settings came
    /// from ([`Emitter::absorb`]); call once decoding is done.
    pub(crate) fn finish_chunk(self) -> (Vec<String>, Option<Dialect>, bool) {
        (self.bad_records, self.dialect, self.not_traces)
    }

    /// Spans emitted so far (committed records only).
    pub fn spans(&self) -> u64 {
        self.spans
    }

    /// Counts a skipped bad record and keeps the first few messages.
    pub(crate) fn bad_record(&mut self, err: &ReadErrorKind) {
        self.warn(WarningKind::BadRecord);
        if self.bad_records.len() < MAX_BAD_RECORD_MESSAGES {
            self.bad_records.push(err.to_string());
        }
    }

    /// Messages of the first skipped records.
    pub fn bad_record_messages(&self) -> &[String] {
        &self.bad_records
    }

    /// Records which dialect the input turned out to be (the first wins).
    pub(crate) fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect.get_or_insert(dialect);
    }

    /// The dialect recognised so far.
    pub fn dialect(&self) -> Option<Dialect> {
        self.dialect
    }

    /// Counts a warning.
    pub(crate) fn warn(&mut self, kind: WarningKind) {
        self.warnings.add(kind);
    }

    /// Whether an atomic record is open.
    pub(crate) fn in_record(&self) -> bool {
        self.record.is_some()
    }

    /// Starts an atomic record: spans are held until [`Self::commit_record`].
    pub(crate) fn begin_record(&mut self) {
        debug_assert!(self.record.is_none());
        let held = match &self.sink {
            Sink::Each(_) => std::mem::take(&mut self.pending),
            Sink::Vec(out) => {
                self.record_start = out.len();
                Vec::new()
            }
        };
        self.record = Some((held, self.warnings.clone(), self.synthetic_seq));
        if let Some(out) = &self.attributes_json {
            self.json_mark = (out.text.len(), out.ends.len());
        }
    }

    /// Passes the record's spans on.
    pub(crate) fn commit_record(&mut self) {
        if let Some((mut held, _, _)) = self.record.take() {
            match &mut self.sink {
                Sink::Each(sink) => {
                    self.spans += held.len() as u64;
                    for span in held.drain(..) {
                        sink(self.dict, span);
                    }
                    self.pending = held;
                }
                Sink::Vec(out) => self.spans += (out.len() - self.record_start) as u64,
            }
        }
    }

    /// Drops the record's spans and the warnings it counted.
    pub(crate) fn abort_record(&mut self) {
        if let Some((mut held, before, synthetic_seq)) = self.record.take() {
            // An aborted record's synthetic ids are not used up: the ids
            // given later do not depend on which records failed, nor on
            // how the input was cut into chunks.
            self.synthetic_seq = synthetic_seq;
            match &mut self.sink {
                Sink::Each(_) => {
                    held.clear();
                    self.pending = held;
                }
                Sink::Vec(out) => out.truncate(self.record_start),
            }
            *self.warnings = before;
            if let Some(out) = &mut self.attributes_json {
                out.text.truncate(self.json_mark.0);
                out.ends.truncate(self.json_mark.1);
            }
        }
    }

    /// Hands over a finished span (attribute values cut to
    /// [`MAX_VALUE_BYTES`]).
    pub fn emit(&mut self, mut span: Span) {
        if let Some(keep) = &self.keep_attributes {
            span.retain_attributes(|a| keep.contains(&a.key));
        }
        let mut cut: u64 = span.attributes.iter_mut().map(|a| a.value.truncate(MAX_VALUE_BYTES)).sum();
        if let Some(extra) = span.extra_if_any_mut() {
            let events = extra.events.iter_mut().flat_map(|e| &mut e.attributes);
            let links = extra.links.iter_mut().flat_map(|l| &mut l.attributes);
            cut += events.chain(links).map(|a| a.value.truncate(MAX_VALUE_BYTES)).sum::<u64>();
        }
        if cut > 0 {
            self.warnings.add_n(WarningKind::TruncatedValue, cut);
        }
        match &mut self.sink {
            Sink::Vec(out) => {
                self.spans += u64::from(self.record.is_none());
                out.push(span);
            }
            Sink::Each(sink) => match &mut self.record {
                Some((held, _, _)) => held.push(span),
                None => {
                    self.spans += 1;
                    sink(self.dict, span);
                }
            },
        }
    }

    /// Sets trace, span and parent ids, repairing and counting bad ones.
    pub fn set_ids(&mut self, span: &mut Span, trace: RawId<'_>, id: RawId<'_>, parent: Option<RawId<'_>>) {
        let exact = self.exact_ids;
        match trace.trace(exact) {
            ParsedId::Valid(t) => span.trace_id = t,
            ParsedId::Opaque(t) => {
                span.trace_id = t;
                span.quality.insert(SpanQuality::OPAQUE_ID);
                span.original_ids_mut().trace_id = Some(trace.original());
                self.warn(WarningKind::NonHexId);
            }
            ParsedId::Empty | ParsedId::Zero => {
                span.trace_id = self.fallback_trace;
                span.quality.insert(SpanQuality::INVALID_TRACE_ID);
                span.original_ids_mut().trace_id = Some(trace.original());
                self.warn(WarningKind::InvalidTraceId);
            }
        }
        match id.span(exact) {
            ParsedId::Valid(s) => span.span_id = s,
            ParsedId::Opaque(s) => {
                span.span_id = s;
                span.quality.insert(SpanQuality::OPAQUE_ID);
                span.original_ids_mut().span_id = Some(id.original());
                self.warn(WarningKind::NonHexId);
            }
            ParsedId::Empty | ParsedId::Zero => {
                span.span_id = self.next_synthetic_id(&span.trace_id);
                span.quality.insert(SpanQuality::INVALID_SPAN_ID);
                span.original_ids_mut().span_id = Some(id.original());
                self.warn(WarningKind::InvalidSpanId);
            }
        }
        span.parent_id = match parent.map(|p| p.span(exact)) {
            None | Some(ParsedId::Empty) | Some(ParsedId::Zero) => None,
            Some(ParsedId::Valid(p)) => Some(p),
            Some(ParsedId::Opaque(p)) => {
                span.quality.insert(SpanQuality::OPAQUE_ID);
                span.original_ids_mut().parent_id = parent.map(RawId::original);
                self.warn(WarningKind::NonHexId);
                Some(p)
            }
        };
    }

    /// The next span id in this emitter's sequence for a span that has
    /// none, derived from its trace id.
    fn next_synthetic_id(&mut self, trace: &TraceId) -> SpanId {
        self.synthetic_seq += 1;
        SpanId(self.synthetic_seq.to_be_bytes()).derived(&trace.0)
    }

    /// Sets start and end (unix ns), flagging and counting missing or
    /// impossible timing. `end == None` means no end/duration was given.
    pub fn set_timing(&mut self, span: &mut Span, start: Option<u64>, end: Option<u64>) {
        let start = start.filter(|&s| s > 0);
        let Some(start) = start else {
            span.quality.insert(SpanQuality::MISSING_START);
            self.warn(WarningKind::MissingStartTime);
            span.start_ns = 0;
            span.end_ns = end.unwrap_or(0);
            return;
        };
        span.start_ns = start;
        match end {
            None => {
                span.end_ns = start;
                span.quality.insert(SpanQuality::MISSING_DURATION);
                self.warn(WarningKind::MissingDuration);
            }
            Some(e) if e == start => {
                span.end_ns = e;
                span.quality.insert(SpanQuality::ZERO_DURATION);
                self.warn(WarningKind::ZeroDuration);
            }
            Some(e) if e < start => {
                span.end_ns = e;
                span.quality.insert(SpanQuality::NEGATIVE_DURATION);
                self.warn(WarningKind::NegativeDuration);
            }
            Some(e) => span.end_ns = e,
        }
    }

    /// Converts JSON key/values to attributes, interning keys.
    pub(crate) fn attrs(&mut self, kvs: &[JKeyValue<'_>]) -> Vec<Attr> {
        kvs.iter().map(|kv| Attr { key: self.dict.intern(kv.key.as_str()), value: self.value(&kv.value) }).collect()
    }

    /// The symbol of a span, event or link attribute key when the emitter
    /// keeps attributes with that key (interned then), `None` when it drops
    /// them: a reader asks before converting the value.
    pub(crate) fn kept_key(&mut self, key: &str) -> Option<Sym> {
        let Some(keep) = &self.keep_attributes else { return Some(self.dict.intern(key)) };
        if !self.may_keep_key_of_len(key.len()) {
            return None;
        }
        self.dict.get(key).filter(|sym| keep.contains(sym))
    }

    /// Converts a span's, event's or link's JSON key/values to attributes,
    /// skipping (without converting their values) keys the emitter does
    /// not keep.
    pub(crate) fn span_attrs(&mut self, kvs: &[JKeyValue<'_>]) -> Vec<Attr> {
        let mut out = Vec::with_capacity(if self.keep_attributes.is_none() { kvs.len() } else { 0 });
        for kv in kvs {
            if let Some(key) = self.kept_key(kv.key.as_str()) {
                let value = self.value(&kv.value);
                out.push(Attr { key, value });
            }
        }
        out
    }

    fn value(&mut self, v: &JAny<'_>) -> Value {
        match v {
            JAny::Empty => Value::Empty,
            JAny::Str(s) => Value::Str(s.as_ref().into()),
            JAny::Bool(b) => Value::Bool(*b),
            JAny::Int(i) => Value::Int(*i),
            JAny::Double(d) => Value::Double(*d),
            JAny::Bytes(b) => Value::Bytes(b.as_slice().into()),
            JAny::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            JAny::Map(kvs) => Value::Map(self.attrs(kvs).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aborted_record_leaves_nothing() {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut out = Vec::new();
        let mut sink = |_: &Dictionary, s: Span| out.push(s);
        let mut e = Emitter::new("x", &mut dict, &mut warnings, &mut sink);
        e.begin_record();
        let mut s = Span::new(TraceId([1; 16]), SpanId([1; 8]));
        e.set_timing(&mut s, None, None);
        e.emit(s.clone());
        e.abort_record();
        e.begin_record();
        e.emit(s);
        e.commit_record();
        assert_eq!(e.spans(), 1);
        drop(e);
        assert_eq!(out.len(), 1);
        assert_eq!(warnings.total(), 0);
    }

    #[test]
    fn an_aborted_records_synthetic_ids_are_given_again() {
        // Spans without a span id get synthetic ones in the emitter's
        // sequence; a record that fails must not use any up, or the ids
        // after it would depend on which records failed.
        let ids = |abort_one: bool| {
            let (mut dict, mut warnings, mut out) = (Dictionary::default(), Warnings::default(), Vec::new());
            let mut e = Emitter::collecting("x", &mut dict, &mut warnings, &mut out);
            let record = |e: &mut Emitter<'_>, commit: bool| {
                e.begin_record();
                for _ in 0..3 {
                    let mut s = Span::new(TraceId::default(), SpanId::default());
                    e.set_ids(&mut s, RawId::Bytes(&[7; 16]), RawId::Bytes(&[]), None);
                    e.emit(s);
                }
                if commit { e.commit_record() } else { e.abort_record() }
            };
            record(&mut e, true);
            if abort_one {
                record(&mut e, false);
            }
            record(&mut e, true);
            drop(e);
            out.iter().map(|s| s.span_id).collect::<Vec<_>>()
        };
        let (without, with) = (ids(false), ids(true));
        assert_eq!(without.len(), 6);
        assert_eq!(without.iter().collect::<std::collections::HashSet<_>>().len(), 6, "{without:?}");
        assert_eq!(with, without);
    }

    #[test]
    fn values_over_the_limit_are_cut_at_a_character_boundary_and_counted() {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut out = Vec::new();
        let key = dict.intern("db.statement");
        // 'é' is two bytes: the limit falls inside one.
        let long = format!("x{}", "é".repeat(MAX_VALUE_BYTES));
        let mut s = Span::new(TraceId([1; 16]), SpanId([1; 8]));
        s.attributes = vec![
            Attr { key, value: Value::Str(long.as_str().into()) },
            Attr { key, value: Value::Str("short".into()) },
            Attr { key, value: Value::Array(vec![Value::Bytes(vec![7; MAX_VALUE_BYTES + 1].into())].into()) },
        ];
        let name = dict.intern("e");
        s.extra_mut().events.push(crate::model::Event {
            time_ns: 1,
            name,
            attributes: vec![Attr { key, value: Value::Str(long.as_str().into()) }],
        });
        let mut e = Emitter::collecting("x", &mut dict, &mut warnings, &mut out);
        e.emit(s);
        drop(e);
        assert_eq!(warnings.get(WarningKind::TruncatedValue), 3);
        let s = &out[0];
        let cut = s.attributes[0].value.as_str().unwrap();
        assert_eq!(cut.len(), MAX_VALUE_BYTES - 1, "not inside the two-byte character");
        assert!(long.starts_with(cut));
        assert_eq!(s.attributes[1].value.as_str(), Some("short"));
        let Value::Array(items) = &s.attributes[2].value else { panic!() };
        assert!(matches!(&items[0], Value::Bytes(b) if b.len() == MAX_VALUE_BYTES));
        assert_eq!(s.events()[0].attributes[0].value.as_str().unwrap().len(), MAX_VALUE_BYTES - 1);
    }

    #[test]
    fn a_collecting_emitter_keeps_what_the_vector_held_and_truncates_aborted_records() {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let span = |n: u8| Span::new(TraceId([n; 16]), SpanId([n; 8]));
        let mut out = vec![span(9)];
        let mut e = Emitter::collecting("x", &mut dict, &mut warnings, &mut out);
        e.emit(span(1)); // outside a record: kept at once
        e.begin_record();
        e.emit(span(2));
        e.emit(span(3));
        e.abort_record();
        e.begin_record();
        e.emit(span(4));
        e.commit_record();
        assert_eq!(e.spans(), 2);
        drop(e);
        let ids: Vec<u8> = out.iter().map(|s| s.span_id.0[0]).collect();
        assert_eq!(ids, [9, 1, 4]);
    }

    #[test]
    fn ids_are_repaired_and_counted() {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut sink = |_: &Dictionary, _: Span| {};
        let mut e = Emitter::new("in.json", &mut dict, &mut warnings, &mut sink);
        let mut s = Span::new(TraceId::default(), SpanId::default());
        e.set_ids(&mut s, RawId::Text(""), RawId::Text("zz-top"), Some(RawId::Text("0000000000000000")));
        assert!(s.quality.contains(SpanQuality::INVALID_TRACE_ID));
        assert!(s.quality.contains(SpanQuality::OPAQUE_ID));
        assert_eq!(s.parent_id, None);
        assert_eq!(s.original_ids().unwrap().span_id.as_deref(), Some("zz-top"));
        let mut t = Span::new(TraceId::default(), SpanId::default());
        e.set_ids(&mut t, RawId::Bytes(&[0; 16]), RawId::Bytes(&[]), None);
        assert_eq!(t.trace_id, s.trace_id, "same input, same fallback trace");
        assert!(t.quality.contains(SpanQuality::INVALID_SPAN_ID));
        drop(e);
        assert_eq!(warnings.get(WarningKind::InvalidTraceId), 2);
        assert_eq!(warnings.get(WarningKind::InvalidSpanId), 1);
        assert_eq!(warnings.get(WarningKind::NonHexId), 1);
    }
}
