//! [`Span`]: one timed operation, in OTLP's shape (nanoseconds, 16/8-byte
//! ids), whatever format it was read from.

use super::{Attr, ResourceId, SpanId, Sym, TraceId};

/// OTLP span kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum SpanKind {
    /// Not given.
    #[default]
    Unspecified = 0,
    /// In-process operation.
    Internal = 1,
    /// Handles a remote request.
    Server = 2,
    /// Makes a remote request.
    Client = 3,
    /// Sends a message.
    Producer = 4,
    /// Receives a message.
    Consumer = 5,
}

impl SpanKind {
    /// From OTLP's integer; unknown numbers are `Unspecified`.
    pub fn from_i32(v: i32) -> SpanKind {
        match v {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// From a name as dumps write it: `SPAN_KIND_SERVER`, `SERVER`, `server`.
    pub fn from_name(name: &str) -> Option<SpanKind> {
        let n = name.trim();
        let n = n.strip_prefix("SPAN_KIND_").unwrap_or(n);
        Some(match n.to_ascii_lowercase().as_str() {
            "unspecified" | "" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// OTLP status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum StatusCode {
    /// Not set.
    #[default]
    Unset = 0,
    /// Explicitly successful.
    Ok = 1,
    /// Failed.
    Error = 2,
}

impl StatusCode {
    /// From OTLP's integer; unknown numbers are `Unset`.
    pub fn from_i32(v: i32) -> StatusCode {
        match v {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// From a name: `STATUS_CODE_ERROR`, `ERROR`, `Error`, `ok`.
    pub fn from_name(name: &str) -> Option<StatusCode> {
        let n = name.trim();
        let n = n.strip_prefix("STATUS_CODE_").unwrap_or(n);
        Some(match n.to_ascii_lowercase().as_str() {
            "unset" | "" => StatusCode::Unset,
            "ok" => StatusCode::Ok,
            "error" => StatusCode::Error,
            _ => return None,
        })
    }
}

/// A timed event within a span (Jaeger log, Zipkin annotation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// Unix nanoseconds.
    pub time_ns: u64,
    /// Interned event name.
    pub name: Sym,
    /// Event attributes.
    pub attributes: Vec<Attr>,
}

/// A link to another span, possibly in another trace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Link {
    /// Linked trace.
    pub trace_id: TraceId,
    /// Linked span.
    pub span_id: SpanId,
    /// Link attributes.
    pub attributes: Vec<Attr>,
}

/// What a reader or the assembler had to repair in a span, as bit flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SpanQuality(u16);

impl SpanQuality {
    /// No start time was given; the span is excluded from latency figures.
    pub const MISSING_START: SpanQuality = SpanQuality(1);
    /// No end time or duration was given; `end_ns == start_ns`.
    pub const MISSING_DURATION: SpanQuality = SpanQuality(1 << 1);
    /// End equals start.
    pub const ZERO_DURATION: SpanQuality = SpanQuality(1 << 2);
    /// End before start; excluded from latency figures.
    pub const NEGATIVE_DURATION: SpanQuality = SpanQuality(1 << 3);
    /// An id was not hex/base64 and was mapped to a stable hash.
    pub const OPAQUE_ID: SpanQuality = SpanQuality(1 << 4);
    /// The trace id was empty or zero; a synthetic one was assigned.
    pub const INVALID_TRACE_ID: SpanQuality = SpanQuality(1 << 5);
    /// The span id was empty or zero; a synthetic one was assigned.
    pub const INVALID_SPAN_ID: SpanQuality = SpanQuality(1 << 6);
    /// The parent id names no span in the trace.
    pub const ORPHAN: SpanQuality = SpanQuality(1 << 7);
    /// The parent link closed a cycle and was cut; the span is a root.
    pub const CYCLE_CUT: SpanQuality = SpanQuality(1 << 8);
    /// A Zipkin shared SERVER half that was given its own id.
    pub const SHARED_SPLIT: SpanQuality = SpanQuality(1 << 9);
    /// Another span had the same id; this one was given a new id.
    pub const DUPLICATE_ID: SpanQuality = SpanQuality(1 << 10);
    /// Marked `shared` by Zipkin (set by the reader, resolved by assembly).
    pub const ZIPKIN_SHARED: SpanQuality = SpanQuality(1 << 11);

    /// No flags.
    pub const fn empty() -> SpanQuality {
        SpanQuality(0)
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: SpanQuality) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: SpanQuality) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: SpanQuality) {
        self.0 &= !other.0;
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The ids as the dump wrote them, kept for display when they had to be
/// replaced (opaque text, invalid, duplicate).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct OriginalIds {
    /// Original trace id text.
    pub trace_id: Option<Box<str>>,
    /// Original span id text.
    pub span_id: Option<Box<str>>,
    /// Original parent id text.
    pub parent_id: Option<Box<str>>,
}

/// What most spans lack (a status message, a trace state, events, links,
/// replaced ids), kept behind one pointer: a span is 112 bytes instead of
/// 200, so open traces take less memory and fewer cache lines.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanExtra {
    /// Status description, usually only on errors.
    pub status_message: Option<Box<str>>,
    /// W3C trace state, if any.
    pub trace_state: Option<Box<str>>,
    /// Events.
    pub events: Vec<Event>,
    /// Links.
    pub links: Vec<Link>,
    /// Original id texts when ids were replaced.
    pub original_ids: Option<OriginalIds>,
}

/// What a span without extras reads.
static NO_EXTRA: SpanExtra =
    SpanExtra { status_message: None, trace_state: None, events: Vec::new(), links: Vec::new(), original_ids: None };

/// A span's extras, allocated on first use; none and empty ones are equal.
#[derive(Clone, Debug, Default)]
struct Extra(Option<Box<SpanExtra>>);

impl Extra {
    fn get(&self) -> &SpanExtra {
        self.0.as_deref().unwrap_or(&NO_EXTRA)
    }
}

impl PartialEq for Extra {
    fn eq(&self, other: &Extra) -> bool {
        self.get() == other.get()
    }
}

/// One span.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// Trace id.
    pub trace_id: TraceId,
    /// Span id, unique within the trace after assembly.
    pub span_id: SpanId,
    /// Parent span id; `None` for roots.
    pub parent_id: Option<SpanId>,
    /// The emitting resource.
    pub resource: ResourceId,
    /// The resource's service name, copied here for the hot paths.
    pub service: Sym,
    /// Operation name.
    pub name: Sym,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, unix nanoseconds (0 with `MISSING_START`).
    pub start_ns: u64,
    /// End, unix nanoseconds.
    pub end_ns: u64,
    /// Status code.
    pub status: StatusCode,
    /// Instrumentation scope name (empty if none).
    pub scope_name: Sym,
    /// Instrumentation scope version (empty if none).
    pub scope_version: Sym,
    /// OTLP span flags (low byte: W3C trace flags).
    pub flags: u32,
    /// Span attributes.
    pub attributes: Vec<Attr>,
    /// What was repaired.
    pub quality: SpanQuality,
    /// Status message, trace state, events, links, original ids.
    extra: Extra,
}

impl Span {
    /// A span with the given ids and everything else empty.
    pub fn new(trace_id: TraceId, span_id: SpanId) -> Span {
        Span {
            trace_id,
            span_id,
            parent_id: None,
            resource: ResourceId::default(),
            service: Sym::EMPTY,
            name: Sym::EMPTY,
            kind: SpanKind::Unspecified,
            start_ns: 0,
            end_ns: 0,
            status: StatusCode::Unset,
            scope_name: Sym::EMPTY,
            scope_version: Sym::EMPTY,
            flags: 0,
            attributes: Vec::new(),
            quality: SpanQuality::empty(),
            extra: Extra(None),
        }
    }

    /// Whether the span's timing can be used for latency figures.
    pub fn has_timing(&self) -> bool {
        !self.quality.contains(SpanQuality::MISSING_START) && !self.quality.contains(SpanQuality::NEGATIVE_DURATION)
    }

    /// Duration in nanoseconds, when the timing is usable and a duration
    /// (or end) was given: a span without one is not a 0 ns sample.
    pub fn duration_ns(&self) -> Option<u64> {
        (self.has_timing() && !self.quality.contains(SpanQuality::MISSING_DURATION))
            .then(|| self.end_ns.saturating_sub(self.start_ns))
    }

    /// Whether the span failed.
    pub fn is_error(&self) -> bool {
        self.status == StatusCode::Error
    }

    /// Status message, trace state, events, links and original ids (all
    /// empty for most spans).
    pub fn extra(&self) -> &SpanExtra {
        self.extra.get()
    }

    /// The extras, allocated on first use: call it only to add something.
    pub fn extra_mut(&mut self) -> &mut SpanExtra {
        self.extra.0.get_or_insert_with(Default::default)
    }

    /// The extras, if the span has any, to change or remove them.
    pub fn extra_if_any_mut(&mut self) -> Option<&mut SpanExtra> {
        self.extra.0.as_deref_mut()
    }

    /// Events.
    pub fn events(&self) -> &[Event] {
        &self.extra().events
    }

    /// Links.
    pub fn links(&self) -> &[Link] {
        &self.extra().links
    }

    /// Status description.
    pub fn status_message(&self) -> Option<&str> {
        self.extra().status_message.as_deref()
    }

    /// W3C trace state.
    pub fn trace_state(&self) -> Option<&str> {
        self.extra().trace_state.as_deref()
    }

    /// Stores `value` in one field of the extras, allocating them only
    /// for a value that is not `empty`.
    fn set_extra<T>(&mut self, value: T, empty: bool, field: fn(&mut SpanExtra) -> &mut T) {
        if !empty || self.extra.0.is_some() {
            *field(self.extra_mut()) = value;
        }
    }

    /// Sets the status message (no allocation for none).
    pub fn set_status_message(&mut self, message: Option<Box<str>>) {
        let empty = message.is_none();
        self.set_extra(message, empty, |x| &mut x.status_message);
    }

    /// Sets the trace state (no allocation for none).
    pub fn set_trace_state(&mut self, state: Option<Box<str>>) {
        let empty = state.is_none();
        self.set_extra(state, empty, |x| &mut x.trace_state);
    }

    /// Sets the events (no allocation for none).
    pub fn set_events(&mut self, events: Vec<Event>) {
        let empty = events.is_empty();
        self.set_extra(events, empty, |x| &mut x.events);
    }

    /// Sets the links (no allocation for none).
    pub fn set_links(&mut self, links: Vec<Link>) {
        let empty = links.is_empty();
        self.set_extra(links, empty, |x| &mut x.links);
    }

    /// Keeps only the span, event and link attributes `keep` accepts.
    pub fn retain_attributes(&mut self, mut keep: impl FnMut(&Attr) -> bool) {
        self.attributes.retain(&mut keep);
        if let Some(extra) = self.extra.0.as_deref_mut() {
            for e in &mut extra.events {
                e.attributes.retain(&mut keep);
            }
            for l in &mut extra.links {
                l.attributes.retain(&mut keep);
            }
        }
    }

    /// Original id texts, when ids were replaced.
    pub fn original_ids(&self) -> Option<&OriginalIds> {
        self.extra().original_ids.as_ref()
    }

    /// Original ids, created on first use.
    pub fn original_ids_mut(&mut self) -> &mut OriginalIds {
        self.extra_mut().original_ids.get_or_insert_with(Default::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    #[test]
    fn kind_and_status_names() {
        assert_eq!(SpanKind::from_name("SPAN_KIND_CLIENT"), Some(SpanKind::Client));
        assert_eq!(SpanKind::from_name("server"), Some(SpanKind::Server));
        assert_eq!(SpanKind::from_name("bogus"), None);
        assert_eq!(SpanKind::from_i32(4), SpanKind::Producer);
        assert_eq!(SpanKind::from_i32(99), SpanKind::Unspecified);
        assert_eq!(StatusCode::from_name("STATUS_CODE_ERROR"), Some(StatusCode::Error));
        assert_eq!(StatusCode::from_name("Ok"), Some(StatusCode::Ok));
    }

    #[test]
    fn spans_stay_small_and_extras_compare_by_content() {
        assert!(std::mem::size_of::<Span>() <= 112, "{}", std::mem::size_of::<Span>());
        let plain = Span::new(TraceId([1; 16]), SpanId([1; 8]));
        let mut touched = plain.clone();
        touched.extra_mut();
        assert_eq!(touched, plain, "empty extras equal none");
        let mut unset = plain.clone();
        unset.set_trace_state(None);
        unset.set_events(Vec::new());
        assert!(unset.extra_if_any_mut().is_none(), "setting nothing allocates nothing");
        touched.set_status_message(Some("boom".into()));
        assert_ne!(touched, plain);
        assert_eq!(touched.status_message(), Some("boom"));
        assert_eq!(plain.events(), &[]);
    }

    #[test]
    fn retained_attributes_include_events_and_links() {
        let mut d = crate::model::Dictionary::default();
        let (keep, drop) = (d.intern("keep"), d.intern("drop"));
        let attrs = || vec![Attr { key: keep, value: Value::Int(1) }, Attr { key: drop, value: Value::Int(2) }];
        let mut s = Span::new(TraceId([1; 16]), SpanId([1; 8]));
        s.attributes = attrs();
        s.set_events(vec![Event { time_ns: 1, name: keep, attributes: attrs() }]);
        s.set_links(vec![Link { trace_id: TraceId([2; 16]), span_id: SpanId([2; 8]), attributes: attrs() }]);
        s.retain_attributes(|a| a.key == keep);
        let keys = |a: &[Attr]| a.iter().map(|a| a.key).collect::<Vec<_>>();
        assert_eq!(keys(&s.attributes), [keep]);
        assert_eq!(keys(&s.events()[0].attributes), [keep]);
        assert_eq!(keys(&s.links()[0].attributes), [keep]);
    }

    #[test]
    fn duration_respects_quality() {
        let mut s = Span::new(TraceId([1; 16]), SpanId([1; 8]));
        s.start_ns = 100;
        s.end_ns = 250;
        assert_eq!(s.duration_ns(), Some(150));
        s.quality.insert(SpanQuality::NEGATIVE_DURATION);
        assert_eq!(s.duration_ns(), None);
        s.quality.remove(SpanQuality::NEGATIVE_DURATION);
        s.quality.insert(SpanQuality::MISSING_START);
        assert!(!s.has_timing());
    }
}
