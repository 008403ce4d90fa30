//! What the readers' unit tests share: a span written out with every name
//! resolved, so spans read by different decoders (or on different threads,
//! with different interning orders) compare equal as text.

use crate::model::{Attr, Dictionary, Span, Value};

fn value_text(d: &Dictionary, v: &Value) -> String {
    match v {
        Value::Array(items) => {
            format!("[{}]", items.iter().map(|i| value_text(d, i)).collect::<Vec<_>>().join(","))
        }
        Value::Map(entries) => format!("{{{}}}", attrs_text(d, entries)),
        other => format!("{other:?}"),
    }
}

fn attrs_text(d: &Dictionary, attrs: &[Attr]) -> String {
    attrs.iter().map(|a| format!("{}={}", d.resolve(a.key), value_text(d, &a.value))).collect::<Vec<_>>().join(";")
}

/// A span with every name resolved, so decoders with different
/// interning orders compare equal.
pub(crate) fn resolved(d: &Dictionary, s: &Span) -> String {
    let resource = d.resource_of(s.resource);
    let events: Vec<String> = s
        .events()
        .iter()
        .map(|e| format!("{}@{}:{}", d.resolve(e.name), e.time_ns, attrs_text(d, &e.attributes)))
        .collect();
    let links: Vec<String> = s
        .links()
        .iter()
        .map(|l| format!("{}/{}:{}", l.trace_id, l.span_id.to_hex(), attrs_text(d, &l.attributes)))
        .collect();
    format!(
        "{:?} {:?} {:?} {} svc={} res={} scope={}/{} kind={:?} {}..{} {:?} {:?} {:?} flags={} attrs={} events={events:?} links={links:?} q={:?} orig={:?}",
        s.trace_id,
        s.span_id,
        s.parent_id,
        d.resolve(s.name),
        d.resolve(s.service),
        attrs_text(d, &resource.attributes),
        d.resolve(s.scope_name),
        d.resolve(s.scope_version),
        s.kind,
        s.start_ns,
        s.end_ns,
        s.status,
        s.status_message(),
        s.trace_state(),
        s.flags,
        attrs_text(d, &s.attributes),
        s.quality,
        s.original_ids(),
    )
}
