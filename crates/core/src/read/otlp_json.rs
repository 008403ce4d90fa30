//! OTLP/JSON as real dumps write it: canonical `resourceSpans` documents,
//! the Collector's JSON lines, Tempo's `batches`, snake_case keys, enum
//! names, base64 ids, int64 as strings or numbers, and the pre-1.0
//! `instrumentationLibrarySpans`.

use serde::Deserialize;

use crate::model::{Event, Link, Span, SpanId, Sym, TraceId};

use super::emit::{Emitter, RawId};
use super::lenient::{JKeyValue, LenientKind, LenientStatusCode, LenientU64, Text, nullable};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JResourceSpans<'a> {
    #[serde(borrow, default)]
    resource: Option<JResource<'a>>,
    #[serde(
        borrow,
        default,
        alias = "scope_spans",
        alias = "instrumentationLibrarySpans",
        alias = "instrumentation_library_spans",
        deserialize_with = "nullable"
    )]
    scope_spans: Vec<JScopeSpans<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct JResource<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct JScopeSpans<'a> {
    #[serde(borrow, default, alias = "instrumentationLibrary", alias = "instrumentation_library")]
    scope: Option<JScope<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    spans: Vec<JSpan<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct JScope<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    version: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JSpan<'a> {
    #[serde(borrow, default, alias = "trace_id")]
    trace_id: Text<'a>,
    #[serde(borrow, default, alias = "span_id")]
    span_id: Text<'a>,
    #[serde(borrow, default, alias = "parent_span_id")]
    parent_span_id: Text<'a>,
    #[serde(borrow, default, alias = "trace_state")]
    trace_state: Text<'a>,
    #[serde(default)]
    flags: LenientU64,
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(default)]
    kind: LenientKind,
    #[serde(default, alias = "start_time_unix_nano")]
    start_time_unix_nano: LenientU64,
    #[serde(default, alias = "end_time_unix_nano")]
    end_time_unix_nano: LenientU64,
    #[serde(borrow, default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    events: Vec<JEvent<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    links: Vec<JLink<'a>>,
    #[serde(borrow, default)]
    status: Option<JStatus<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JEvent<'a> {
    #[serde(default, alias = "time_unix_nano")]
    time_unix_nano: LenientU64,
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JLink<'a> {
    #[serde(borrow, default, alias = "trace_id")]
    trace_id: Text<'a>,
    #[serde(borrow, default, alias = "span_id")]
    span_id: Text<'a>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct JStatus<'a> {
    #[serde(default)]
    code: LenientStatusCode,
    #[serde(borrow, default)]
    message: Text<'a>,
}

/// Converts one `ResourceSpans` and emits its spans.
pub(crate) fn emit_resource_spans(rs: &JResourceSpans<'_>, e: &mut Emitter<'_>) {
    let attrs = rs.resource.as_ref().map(|r| e.attrs(&r.attributes)).unwrap_or_default();
    let resource = e.dict.resource(attrs);
    let service = e.dict.resource_of(resource).service;
    for ss in &rs.scope_spans {
        let (scope_name, scope_version) = match &ss.scope {
            Some(s) => (e.dict.intern(s.name.as_str()), e.dict.intern(s.version.as_str())),
            None => (Sym::EMPTY, Sym::EMPTY),
        };
        for js in &ss.spans {
            let mut span = Span::new(Default::default(), Default::default());
            let parent = (!js.parent_span_id.is_empty()).then(|| RawId::Text(js.parent_span_id.as_str()));
            e.set_ids(&mut span, RawId::Text(js.trace_id.as_str()), RawId::Text(js.span_id.as_str()), parent);
            e.set_timing(&mut span, js.start_time_unix_nano.0, js.end_time_unix_nano.0);
            span.resource = resource;
            span.service = service;
            span.name = e.dict.intern(js.name.as_str());
            span.kind = js.kind.0;
            span.scope_name = scope_name;
            span.scope_version = scope_version;
            span.flags = js.flags.0.unwrap_or(0) as u32;
            span.set_trace_state((!js.trace_state.is_empty()).then(|| js.trace_state.as_str().into()));
            if let Some(st) = &js.status {
                span.status = st.code.0;
                span.set_status_message((!st.message.is_empty()).then(|| st.message.as_str().into()));
            }
            span.attributes = e.span_attrs(&js.attributes);
            span.set_events(
                js.events
                    .iter()
                    .map(|ev| Event {
                        time_ns: ev.time_unix_nano.0.unwrap_or(0),
                        name: e.dict.intern(ev.name.as_str()),
                        attributes: e.span_attrs(&ev.attributes),
                    })
                    .collect(),
            );
            span.set_links(
                js.links
                    .iter()
                    .filter_map(|l| {
                        let trace_id = TraceId::from_text(l.trace_id.as_str()).id()?;
                        let span_id = SpanId::from_text(l.span_id.as_str()).id()?;
                        Some(Link { trace_id, span_id, attributes: e.span_attrs(&l.attributes) })
                    })
                    .collect(),
            );
            e.emit(span);
        }
    }
}
