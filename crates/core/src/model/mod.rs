//! The in-memory span model shared by every reader and analysis.
//!
//! Ids are fixed-size arrays, service and operation names are interned
//! [`Sym`]s, resources are deduplicated into a [`ResourceTable`] so that
//! `service.version`, `deployment.environment` and `host.name` are plain
//! fields, and everything a reader had to repair is recorded as
//! [`SpanQuality`] flags on the span and counted in [`Warnings`].
//!
//! * `span` — the span; `trace` — a trace with parents resolved.
//! * `id` — trace and span ids, from whatever a dump writes.
//! * `intern` — interned names; `dictionary` — the interner and
//!   resource table; `resource` — resources.
//! * `attr` — attribute values; [`attr_json`] — attributes, events and
//!   links as JSON text and back.
//! * [`time`] — timestamps and durations, parsed and formatted exactly.
//! * `warning` — what readers and the assembler repaired, counted.

mod attr;
pub mod attr_json;
mod dictionary;
mod id;
mod intern;
mod resource;
mod span;
pub mod time;
mod trace;
mod warning;

pub use attr::{Attr, MAX_VALUE_BYTES, Value};
pub use dictionary::{Dictionary, Translation, WellKnownKeys};
pub use id::{ParsedId, SpanId, TraceId, stable_hash64};
pub use intern::{Interner, Sym};
pub use resource::{Resource, ResourceId, ResourceTable};
pub use span::{Event, Link, OriginalIds, Span, SpanExtra, SpanKind, SpanQuality, StatusCode};
pub use trace::{NO_PARENT, Trace};
pub use warning::{WarningKind, Warnings};
