//! Jaeger JSON (the UI's "Download JSON" and the query API's `{"data": [...]}`
//! shape): processes become resources, `span.kind` / `error` /
//! `otel.status_code` tags become kind and status, references become the
//! parent and links, logs become events, microseconds become nanoseconds.
//!
//! The older model-proto JSON (api_v2, `{"result": {"spans": [...]}}`) is
//! read too: camelCase `traceId`/`spanId`, base64 ids, RFC 3339 `startTime`,
//! protobuf `Duration` strings (`"0.000123s"`) and `vType`/`vStr`/… tags.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::model::{Attr, Event, Link, ResourceId, Span, SpanId, SpanKind, StatusCode, Sym, TraceId, Value};

use super::emit::{Emitter, RawId};
use super::lenient::{LenientU64, Text, decode_base64, nullable};

pub(crate) type JaegerProcesses<'a> = HashMap<Text<'a>, JaegerProcess<'a>>;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct JaegerTrace<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub spans: Vec<JaegerSpan<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub processes: JaegerProcesses<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JaegerSpan<'a> {
    #[serde(borrow, default, rename = "traceID", alias = "traceId")]
    trace_id: Text<'a>,
    #[serde(borrow, default, rename = "spanID", alias = "spanId")]
    span_id: Text<'a>,
    #[serde(borrow, default, rename = "parentSpanID", alias = "parentSpanId")]
    parent_span_id: Text<'a>,
    #[serde(default)]
    flags: LenientU64,
    #[serde(borrow, default)]
    operation_name: Text<'a>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    references: Vec<JaegerRef<'a>>,
    #[serde(default)]
    start_time: JaegerTime,
    #[serde(default)]
    duration: JaegerDuration,
    #[serde(borrow, default, deserialize_with = "nullable")]
    tags: Vec<JaegerTag<'a>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    logs: Vec<JaegerLog<'a>>,
    #[serde(borrow, default, rename = "processID", alias = "processId")]
    process_id: Text<'a>,
    #[serde(borrow, default)]
    process: Option<JaegerProcess<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerRef<'a> {
    #[serde(borrow, default)]
    ref_type: Text<'a>,
    #[serde(borrow, default, rename = "traceID", alias = "traceId")]
    trace_id: Text<'a>,
    #[serde(borrow, default, rename = "spanID", alias = "spanId")]
    span_id: Text<'a>,
}

#[derive(Debug, Default)]
struct JaegerTag<'a> {
    key: Text<'a>,
    ty: Text<'a>,
    value: Scalar<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for JaegerTag<'a> {
    /// `{"key","type","value"}` (UI JSON) or `{"key","vType","vStr"|"vInt64"|…}` (model JSON).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JaegerTag<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Jaeger tag object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut tag = JaegerTag::default();
                while let Some(k) = map.next_key::<Text<'de>>()? {
                    match k.as_str() {
                        "key" => tag.key = map.next_value()?,
                        "type" | "vType" => tag.ty = map.next_value()?,
                        "value" | "vStr" | "vBool" | "vInt64" | "vFloat64" | "vBinary" => {
                            tag.value = map.next_value()?
                        }
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(tag)
            }
        }
        d.deserialize_map(V)
    }
}

/// A start time: microseconds (UI JSON) or an RFC 3339 string (model JSON); in ns.
#[derive(Debug, Default, Clone, Copy)]
struct JaegerTime(Option<u64>);

impl<'de> Deserialize<'de> for JaegerTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        micros_or(Scalar::deserialize(d)?, start_time_text, "microseconds or an RFC 3339 time")
            .map(JaegerTime)
            .map_err(de::Error::custom)
    }
}

/// A duration: microseconds (UI JSON) or a protobuf Duration string such as
/// `"0.000123s"` (model JSON); in ns.
#[derive(Debug, Default, Clone, Copy)]
struct JaegerDuration(Option<u64>);

impl<'de> Deserialize<'de> for JaegerDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        micros_or(Scalar::deserialize(d)?, parse_duration, "microseconds or a duration such as \"0.0015s\"")
            .map(JaegerDuration)
            .map_err(de::Error::custom)
    }
}

/// A time or duration given as a number of microseconds, or as text that
/// `text` turns into nanoseconds; `null` is absent.
fn micros_or(value: Scalar<'_>, text: fn(&str) -> Option<u64>, expected: &str) -> Result<Option<u64>, String> {
    match value {
        Scalar::Null => Ok(None),
        Scalar::UInt(us) => Ok(Some(us.saturating_mul(1000))),
        Scalar::Int(us) if us >= 0 => Ok(Some((us as u64).saturating_mul(1000))),
        Scalar::Str(s) => text(&s).map(Some).ok_or_else(|| format!("expected {expected}, found {s:?}")),
        other => Err(format!("expected {expected}, found {other:?}")),
    }
}

/// Digits (microseconds) or an RFC 3339 time, to unix ns.
fn start_time_text(text: &str) -> Option<u64> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().ok().map(|us| us.saturating_mul(1000));
    }
    crate::model::time::parse_rfc3339(t)
}

/// `"1.5s"`, `"123ns"`, `"5us"`/`"5µs"`, `"2ms"`, or plain digits (µs), to ns.
fn parse_duration(text: &str) -> Option<u64> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e9)
    } else {
        (t, 1e3)
    };
    // Whole and fractional parts separately, so nanoseconds stay exact.
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let unit = scale as u64;
    let frac_ns = if frac.is_empty() {
        0
    } else {
        let digits = frac.len().min(18) as u32;
        let f: u64 = frac[..digits as usize].parse().ok()?;
        (f as u128 * unit as u128 / 10u128.pow(digits)) as u64
    };
    whole.checked_mul(unit)?.checked_add(frac_ns)
}

#[derive(Debug, Default, Deserialize)]
struct JaegerLog<'a> {
    #[serde(default)]
    timestamp: LenientU64,
    #[serde(borrow, default, deserialize_with = "nullable")]
    fields: Vec<JaegerTag<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JaegerProcess<'a> {
    #[serde(borrow, default)]
    service_name: Text<'a>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    tags: Vec<JaegerTag<'a>>,
}

/// A tag value as JSON wrote it; its `type` decides the attribute type.
#[derive(Debug, Default, Clone, PartialEq)]
enum Scalar<'a> {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tag value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // Not a Jaeger scalar; keep its JSON text rather than lose it.
                let mut parts = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    parts.push(format!("{k:?}:{v}"));
                }
                Ok(Scalar::Str(Cow::Owned(format!("{{{}}}", parts.join(",")))))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(v) = seq.next_element::<serde_json::Value>()? {
                    parts.push(v.to_string());
                }
                Ok(Scalar::Str(Cow::Owned(format!("[{}]", parts.join(",")))))
            }
        }
        d.deserialize_any(V)
    }
}

impl Scalar<'_> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Scalar::Null => Cow::Borrowed(""),
            Scalar::Bool(b) => Cow::Owned(b.to_string()),
            Scalar::Int(i) => Cow::Owned(i.to_string()),
            Scalar::UInt(u) => Cow::Owned(u.to_string()),
            Scalar::Float(f) => Cow::Owned(f.to_string()),
            Scalar::Str(s) => Cow::Borrowed(s),
        }
    }

    fn is_true(&self) -> bool {
        match self {
            Scalar::Bool(b) => *b,
            Scalar::Str(s) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    /// The attribute value, typed by Jaeger's `type` field when it fits.
    fn to_value(&self, ty: &str) -> Value {
        let natural = || match self {
            Scalar::Null => Value::Empty,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::Int(*i),
            Scalar::UInt(u) => i64::try_from(*u).map(Value::Int).unwrap_or(Value::Double(*u as f64)),
            Scalar::Float(f) => Value::Double(*f),
            Scalar::Str(s) => Value::Str(s.as_ref().into()),
        };
        match (ty.to_ascii_lowercase().as_str(), self) {
            ("string", s) => Value::Str(s.text().as_ref().into()),
            ("int64", Scalar::Str(s)) => s.trim().parse().map(Value::Int).unwrap_or_else(|_| natural()),
            ("float64", Scalar::Str(s)) => s.trim().parse().map(Value::Double).unwrap_or_else(|_| natural()),
            ("float64", Scalar::Int(i)) => Value::Double(*i as f64),
            ("float64", Scalar::UInt(u)) => Value::Double(*u as f64),
            ("bool", Scalar::Str(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => natural(),
            },
            ("binary", Scalar::Str(s)) => {
                decode_base64(s).map(|b| Value::Bytes(b.into())).unwrap_or_else(|_| natural())
            }
            _ => natural(),
        }
    }
}

/// Tags that become span fields instead of attributes.
const CONSUMED_TAGS: [&str; 9] = [
    "span.kind",
    "error",
    "otel.status_code",
    "otel.status_description",
    "w3c.tracestate",
    "otel.scope.name",
    "otel.scope.version",
    "otel.library.name",
    "otel.library.version",
];

/// Converts one Jaeger trace and emits its spans.
pub(crate) fn emit_trace(trace: &JaegerTrace<'_>, e: &mut Emitter<'_>) {
    let mut resources: HashMap<&str, (ResourceId, Sym)> = HashMap::new();
    for js in &trace.spans {
        let (resource, service) = match &js.process {
            Some(p) => process_resource(p, e),
            None => match resources.get(js.process_id.as_str()) {
                Some(&r) => r,
                None => {
                    let r = match trace.processes.get(&js.process_id) {
                        Some(p) => process_resource(p, e),
                        None => process_resource(&JaegerProcess::default(), e),
                    };
                    resources.insert(js.process_id.as_str(), r);
                    r
                }
            },
        };
        emit_span(js, resource, service, e);
    }
}

fn process_resource(p: &JaegerProcess<'_>, e: &mut Emitter<'_>) -> (ResourceId, Sym) {
    let mut attrs = Vec::with_capacity(p.tags.len() + 1);
    if !p.service_name.is_empty() {
        attrs.push(Attr { key: e.dict.keys().service_name, value: Value::Str(p.service_name.as_str().into()) });
    }
    for tag in &p.tags {
        let key = if tag.key.as_str() == "hostname" { "host.name" } else { tag.key.as_str() };
        attrs.push(Attr { key: e.dict.intern(key), value: tag.value.to_value(tag.ty.as_str()) });
    }
    let id = e.dict.resource(attrs);
    (id, e.dict.resource_of(id).service)
}

fn tag<'t, 'a>(tags: &'t [JaegerTag<'a>], key: &str) -> Option<&'t Scalar<'a>> {
    tags.iter().find(|t| t.key.as_str() == key).map(|t| &t.value)
}

fn emit_span(js: &JaegerSpan<'_>, resource: ResourceId, service: Sym, e: &mut Emitter<'_>) {
    let own_trace = TraceId::from_text(js.trace_id.as_str()).id();
    let same_trace =
        |r: &&JaegerRef<'_>| r.trace_id.is_empty() || TraceId::from_text(r.trace_id.as_str()).id() == own_trace;
    let is = |r: &&JaegerRef<'_>, ty: &str| r.ref_type.as_str().eq_ignore_ascii_case(ty);
    let parent_ref = js
        .references
        .iter()
        .filter(same_trace)
        .find(|r| is(r, "CHILD_OF"))
        .or_else(|| js.references.iter().filter(same_trace).find(|r| is(r, "FOLLOWS_FROM")));
    let parent = match parent_ref {
        Some(r) => Some(RawId::Text(r.span_id.as_str())),
        None if !js.parent_span_id.is_empty() => Some(RawId::Text(js.parent_span_id.as_str())),
        None => None,
    };

    let mut span = Span::new(TraceId::default(), SpanId::default());
    e.set_ids(&mut span, RawId::Text(js.trace_id.as_str()), RawId::Text(js.span_id.as_str()), parent);
    let start = js.start_time.0;
    let end = match (start, js.duration.0) {
        (Some(s), Some(d)) => Some(s.saturating_add(d)),
        _ => None,
    };
    e.set_timing(&mut span, start, end);
    span.resource = resource;
    span.service = service;
    span.name = e.dict.intern(js.operation_name.as_str());
    span.flags = (js.flags.0.unwrap_or(0) & 0xff) as u32;

    let tags = &js.tags;
    span.kind = tag(tags, "span.kind").and_then(|v| SpanKind::from_name(&v.text())).unwrap_or_default();
    let (status, message) = status(tags, span.kind);
    span.status = status;
    span.set_status_message(message);
    span.set_trace_state(tag(tags, "w3c.tracestate").map(|v| v.text().as_ref().into()));
    if let Some(name) = tag(tags, "otel.scope.name").or_else(|| tag(tags, "otel.library.name")) {
        span.scope_name = e.dict.intern(&name.text());
    }
    if let Some(version) = tag(tags, "otel.scope.version").or_else(|| tag(tags, "otel.library.version")) {
        span.scope_version = e.dict.intern(&version.text());
    }
    span.attributes = tags
        .iter()
        .filter(|t| !CONSUMED_TAGS.contains(&t.key.as_str()))
        .filter_map(|t| Some(Attr { key: e.kept_key(t.key.as_str())?, value: t.value.to_value(t.ty.as_str()) }))
        .collect();
    span.set_events(
        js.logs
            .iter()
            .map(|log| {
                let name = tag(&log.fields, "event").map(|v| v.text().into_owned()).unwrap_or_default();
                Event {
                    time_ns: log.timestamp.0.unwrap_or(0).saturating_mul(1000),
                    name: e.dict.intern(&name),
                    attributes: log
                        .fields
                        .iter()
                        .filter(|f| f.key.as_str() != "event")
                        .map(|f| Attr { key: e.dict.intern(f.key.as_str()), value: f.value.to_value(f.ty.as_str()) })
                        .collect(),
                }
            })
            .collect(),
    );
    let ref_type_key = e.dict.intern("opentracing.ref_type");
    span.set_links(
        js.references
            .iter()
            .filter(|r| parent_ref.is_none_or(|p| !std::ptr::eq(*r, p)))
            .filter_map(|r| {
                let trace_id =
                    if r.trace_id.is_empty() { own_trace? } else { TraceId::from_text(r.trace_id.as_str()).id()? };
                let span_id = SpanId::from_text(r.span_id.as_str()).id()?;
                let ref_type = r.ref_type.as_str().to_ascii_lowercase();
                Some(Link {
                    trace_id,
                    span_id,
                    attributes: vec![Attr { key: ref_type_key, value: Value::Str(ref_type.into()) }],
                })
            })
            .collect(),
    );
    e.emit(span);
}

/// The status code and message the tags give.
fn status(tags: &[JaegerTag<'_>], kind: SpanKind) -> (StatusCode, Option<Box<str>>) {
    let description = tag(tags, "otel.status_description")
        .or_else(|| tag(tags, "http.status_message"))
        .map(|v| v.text().as_ref().into());
    if tag(tags, "error").is_some_and(Scalar::is_true) {
        return (StatusCode::Error, description);
    }
    if let Some(code) = tag(tags, "otel.status_code").and_then(|v| StatusCode::from_name(&v.text())) {
        let message = if code == StatusCode::Error { description } else { None };
        return (code, message);
    }
    let http = tag(tags, "http.status_code").or_else(|| tag(tags, "http.response.status_code"));
    if let Some(http) = http.and_then(|v| v.text().trim().parse::<u16>().ok())
        && (http >= 500 || (http >= 400 && kind == SpanKind::Client))
    {
        return (StatusCode::Error, description);
    }
    (StatusCode::Unset, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_spelling() {
        assert_eq!(parse_duration("0.000123s"), Some(123_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("123ns"), Some(123));
        assert_eq!(parse_duration("5us"), Some(5_000));
        assert_eq!(parse_duration("2ms"), Some(2_000_000));
        assert_eq!(parse_duration("42"), Some(42_000));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration("s"), None);
    }
}
