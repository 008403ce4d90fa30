//! The in-memory span model shared by every reader and analysis.
//!
//! Ids are fixed-size arrays, service and operation names are interned
//! [`Sym`]s, resources are deduplicated into a [`ResourceTable`] so that
//! `service.version`, `deployment.environment` and `host.name` are plain
//! fields, and everything a reader had to repair is recorded as
//! [`SpanQuality`] flags on the span and counted in [`Warnings`].

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

pub use attr::{Attr, Value};
pub use dictionary::{Dictionary, WellKnownKeys};
pub use id::{ParsedId, SpanId, TraceId, stable_hash64};
pub use intern::{Interner, Sym};
pub use resource::{Resource, ResourceId, ResourceTable};
pub use span::{Event, Link, OriginalIds, Span, SpanExtra, SpanKind, SpanQuality, StatusCode};
pub use trace::{NO_PARENT, Trace};
pub use warning::{WarningKind, Warnings};
