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

/// Span status.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Status {
    /// The code.
    pub code: StatusCode,
    /// Description, usually only on errors.
    pub message: Option<Box<str>>,
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
    /// Status.
    pub status: Status,
    /// Instrumentation scope name (empty if none).
    pub scope_name: Sym,
    /// Instrumentation scope version (empty if none).
    pub scope_version: Sym,
    /// W3C trace state, if any.
    pub trace_state: Option<Box<str>>,
    /// OTLP span flags (low byte: W3C trace flags).
    pub flags: u32,
    /// Span attributes.
    pub attributes: Vec<Attr>,
    /// Events.
    pub events: Vec<Event>,
    /// Links.
    pub links: Vec<Link>,
    /// What was repaired.
    pub quality: SpanQuality,
    /// Original id texts when ids were replaced.
    pub original_ids: Option<Box<OriginalIds>>,
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
            status: Status::default(),
            scope_name: Sym::EMPTY,
            scope_version: Sym::EMPTY,
            trace_state: None,
            flags: 0,
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            quality: SpanQuality::empty(),
            original_ids: None,
        }
    }

    /// Whether the span's timing can be used for latency figures.
    pub fn has_timing(&self) -> bool {
        !self.quality.contains(SpanQuality::MISSING_START) && !self.quality.contains(SpanQuality::NEGATIVE_DURATION)
    }

    /// Duration in nanoseconds, when the timing is usable.
    pub fn duration_ns(&self) -> Option<u64> {
        self.has_timing().then(|| self.end_ns.saturating_sub(self.start_ns))
    }

    /// Whether the span failed.
    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }

    /// Original ids, created on first use.
    pub fn original_ids_mut(&mut self) -> &mut OriginalIds {
        self.original_ids.get_or_insert_with(Default::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
