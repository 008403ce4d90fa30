//! Zipkin v2 JSON: an array of spans (any trace, any order) or an array of
//! such arrays. Microseconds become nanoseconds, `localEndpoint` becomes the
//! resource, `remoteEndpoint` becomes peer attributes, an `error` tag (any
//! value, even empty) marks failure, and `shared` SERVER halves are flagged
//! for the assembler to give their own id. Resource attributes written as
//! tags (`service.version`, `host.name`, …) go back to the resource.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::model::{Attr, Event, Span, SpanId, SpanKind, SpanQuality, StatusCode, TraceId, Value};

use super::emit::{Emitter, RawId};
use super::lenient::{LenientBool, LenientU64, Text, nullable};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ZipkinSpan<'a> {
    #[serde(borrow, default)]
    trace_id: Text<'a>,
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow, default)]
    parent_id: Text<'a>,
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    kind: Text<'a>,
    #[serde(default)]
    timestamp: LenientU64,
    #[serde(default)]
    duration: LenientU64,
    #[serde(borrow, default)]
    local_endpoint: Option<Endpoint<'a>>,
    #[serde(borrow, default)]
    remote_endpoint: Option<Endpoint<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    annotations: Vec<Annotation<'a>>,
    #[serde(borrow, default)]
    tags: Tags<'a>,
    #[serde(default)]
    shared: LenientBool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint<'a> {
    #[serde(borrow, default)]
    service_name: Text<'a>,
    #[serde(borrow, default)]
    ipv4: Text<'a>,
    #[serde(borrow, default)]
    ipv6: Text<'a>,
    #[serde(default)]
    port: LenientU64,
}

#[derive(Debug, Default, Deserialize)]
struct Annotation<'a> {
    #[serde(default)]
    timestamp: LenientU64,
    #[serde(borrow, default)]
    value: Text<'a>,
}

/// String tags in their original order.
#[derive(Debug, Default)]
struct Tags<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tags<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string tags")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Tags::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut tags = Vec::new();
                while let Some(entry) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    tags.push(entry);
                }
                Ok(Tags(tags))
            }
        }
        d.deserialize_any(V)
    }
}

impl Tags<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v.as_str())
    }
}

/// Tags that become span fields instead of attributes.
const CONSUMED_TAGS: [&str; 4] = ["error", "otel.status_code", "otel.status_description", "w3c.tracestate"];

/// Resource attributes that OpenTelemetry's Zipkin exporter writes as tags;
/// they describe the process, so they go to the resource.
const RESOURCE_TAGS: [&str; 4] =
    ["service.version", "deployment.environment.name", "deployment.environment", "host.name"];

/// Converts one Zipkin span and emits it.
pub(crate) fn emit_span(zs: &ZipkinSpan<'_>, e: &mut Emitter<'_>) {
    let mut resource_attrs = Vec::new();
    if let Some(local) = &zs.local_endpoint {
        if !local.service_name.is_empty() {
            resource_attrs
                .push(Attr { key: e.dict.keys().service_name, value: Value::Str(local.service_name.as_str().into()) });
        }
        let ip = if local.ipv4.is_empty() { &local.ipv6 } else { &local.ipv4 };
        if !ip.is_empty() {
            resource_attrs.push(Attr { key: e.dict.intern("host.ip"), value: Value::Str(ip.as_str().into()) });
        }
    }
    for (k, v) in &zs.tags.0 {
        if RESOURCE_TAGS.contains(&k.as_str()) {
            resource_attrs.push(Attr { key: e.dict.intern(k.as_str()), value: Value::Str(v.as_str().into()) });
        }
    }
    let resource = e.dict.resource(resource_attrs);

    let mut span = Span::new(TraceId::default(), SpanId::default());
    let parent = (!zs.parent_id.is_empty() && zs.parent_id != zs.id).then(|| RawId::Text(zs.parent_id.as_str()));
    e.set_ids(&mut span, RawId::Text(zs.trace_id.as_str()), RawId::Text(zs.id.as_str()), parent);
    let start = zs.timestamp.0.map(|us| us.saturating_mul(1000));
    let end = match (start, zs.duration.0) {
        (Some(s), Some(d)) => Some(s.saturating_add(d.saturating_mul(1000))),
        _ => None,
    };
    e.set_timing(&mut span, start, end);
    span.resource = resource;
    span.service = e.dict.resource_of(resource).service;
    span.name = e.dict.intern(zs.name.as_str());
    span.kind = match zs.kind.as_str().to_ascii_uppercase().as_str() {
        "CLIENT" => SpanKind::Client,
        "SERVER" => SpanKind::Server,
        "PRODUCER" => SpanKind::Producer,
        "CONSUMER" => SpanKind::Consumer,
        _ if zs.tags.get("span.kind").is_some_and(|k| k.eq_ignore_ascii_case("internal")) => SpanKind::Internal,
        _ => SpanKind::Unspecified,
    };
    if zs.shared.0 {
        span.quality.insert(SpanQuality::ZIPKIN_SHARED);
    }
    let (status, message) = if let Some(message) = zs.tags.get("error") {
        (StatusCode::Error, Some(message))
    } else {
        match zs.tags.get("otel.status_code").and_then(StatusCode::from_name) {
            Some(code) => (code, zs.tags.get("otel.status_description")),
            None => (StatusCode::Unset, None),
        }
    };
    span.status = status;
    span.set_status_message(message.filter(|m| !m.is_empty()).map(Into::into));
    span.set_trace_state(zs.tags.get("w3c.tracestate").map(Into::into));

    let mut attributes = Vec::with_capacity(zs.tags.0.len() + 3);
    for (k, v) in &zs.tags.0 {
        if !CONSUMED_TAGS.contains(&k.as_str()) && !RESOURCE_TAGS.contains(&k.as_str()) {
            if let Some(key) = e.kept_key(k.as_str()) {
                attributes.push(Attr { key, value: Value::Str(v.as_str().into()) });
            }
        }
    }
    if let Some(remote) = &zs.remote_endpoint {
        if !remote.service_name.is_empty() {
            attributes.push(Attr {
                key: e.dict.intern("peer.service"),
                value: Value::Str(remote.service_name.as_str().into()),
            });
        }
        let ip = if remote.ipv4.is_empty() { &remote.ipv6 } else { &remote.ipv4 };
        if !ip.is_empty() {
            attributes.push(Attr { key: e.dict.intern("network.peer.address"), value: Value::Str(ip.as_str().into()) });
        }
        if let Some(port) = remote.port.0 {
            attributes.push(Attr { key: e.dict.intern("network.peer.port"), value: Value::Int(port as i64) });
        }
    }
    span.attributes = attributes;
    span.set_events(
        zs.annotations
            .iter()
            .map(|a| Event {
                time_ns: a.timestamp.0.unwrap_or(0).saturating_mul(1000),
                name: e.dict.intern(a.value.as_str()),
                attributes: Vec::new(),
            })
            .collect(),
    );
    e.emit(span);
}
