//! Attributes, events and links as JSON text, and back: attributes are an
//! object (`{"http.route": "/cart", "retries": 2}`; bytes become base64
//! text), events and links arrays of objects. Integers stay integers and
//! doubles doubles, so reading back gives the same values for everything
//! but bytes (which come back as text).

use base64::Engine;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value as Json};

use crate::model::{Attr, Dictionary, Event, Link, SpanId, TraceId, Value};

fn value(dict: &Dictionary, v: &Value) -> Json {
    match v {
        Value::Empty => Json::Null,
        Value::Str(s) => Json::String(s.to_string()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Array(items) => Json::Array(items.iter().map(|i| value(dict, i)).collect()),
        Value::Map(entries) => Json::Object(object(dict, entries)),
    }
}

fn object(dict: &Dictionary, attrs: &[Attr]) -> Map<String, Json> {
    attrs.iter().map(|a| (dict.resolve(a.key).to_string(), value(dict, &a.value))).collect()
}

/// Attributes serialized straight from the model (no intermediate JSON
/// values: this runs once per span of an export).
struct AttrsRef<'a>(&'a Dictionary, &'a [Attr]);
struct ValueRef<'a>(&'a Dictionary, &'a Value);

impl Serialize for AttrsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.1.len()))?;
        for a in self.1 {
            map.serialize_entry(self.0.resolve(a.key), &ValueRef(self.0, &a.value))?;
        }
        map.end()
    }
}

impl Serialize for ValueRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            Value::Empty => s.serialize_unit(),
            Value::Str(v) => s.serialize_str(v),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Double(d) if d.is_finite() => s.serialize_f64(*d),
            Value::Double(_) => s.serialize_unit(),
            Value::Bytes(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items.iter() {
                    seq.serialize_element(&ValueRef(self.0, i))?;
                }
                seq.end()
            }
            Value::Map(entries) => AttrsRef(self.0, entries).serialize(s),
        }
    }
}

/// Attributes as a JSON object.
pub fn attributes(dict: &Dictionary, attrs: &[Attr]) -> String {
    let mut out = String::new();
    write_attributes(&mut out, dict, attrs);
    out
}

/// [`attributes`] into `out` (cleared first), so a table builder can reuse
/// one buffer for every row.
pub fn write_attributes(out: &mut String, dict: &Dictionary, attrs: &[Attr]) {
    out.clear();
    let mut bytes = std::mem::take(out).into_bytes();
    write_attributes_bytes(&mut bytes, dict, attrs);
    // serde_json writes UTF-8 only.
    *out = String::from_utf8(bytes).expect("serde_json writes UTF-8");
}

/// [`attributes`] appended to `out`.
pub(crate) fn write_attributes_bytes(out: &mut Vec<u8>, dict: &Dictionary, attrs: &[Attr]) {
    if attrs.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    serde_json::to_writer(out, &AttrsRef(dict, attrs)).expect("attributes serialize");
}

/// One attribute value's JSON text, as in [`attributes`], appended to `out`.
pub(crate) fn write_value_bytes(out: &mut Vec<u8>, dict: &Dictionary, value: &Value) {
    serde_json::to_writer(out, &ValueRef(dict, value)).expect("values serialize");
}

/// Events as a JSON array of `{"time_unix_nano", "name", "attributes"}`.
pub fn events(dict: &Dictionary, events: &[Event]) -> String {
    Json::Array(
        events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "time_unix_nano": e.time_ns,
                    "name": dict.resolve(e.name),
                    "attributes": object(dict, &e.attributes),
                })
            })
            .collect(),
    )
    .to_string()
}

/// Links as a JSON array of `{"trace_id", "span_id", "attributes"}`.
pub fn links(dict: &Dictionary, links: &[Link]) -> String {
    Json::Array(
        links
            .iter()
            .map(|l| {
                serde_json::json!({
                    "trace_id": l.trace_id.to_hex(),
                    "span_id": l.span_id.to_hex(),
                    "attributes": object(dict, &l.attributes),
                })
            })
            .collect(),
    )
    .to_string()
}

fn to_value(dict: &mut Dictionary, j: &Json) -> Value {
    match j {
        Json::Null => Value::Empty,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s.as_str().into()),
        Json::Array(items) => Value::Array(items.iter().map(|i| to_value(dict, i)).collect()),
        Json::Object(m) => Value::Map(to_attrs(dict, m).into()),
    }
}

fn to_attrs(dict: &mut Dictionary, m: &Map<String, Json>) -> Vec<Attr> {
    m.iter().map(|(k, v)| Attr { key: dict.intern(k), value: to_value(dict, v) }).collect()
}

/// Attributes from a JSON object's text; `what` names the column in errors.
pub fn parse_attributes(dict: &mut Dictionary, text: &str, what: &str) -> Result<Vec<Attr>, String> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(m)) => Ok(to_attrs(dict, &m)),
        Ok(Json::Null) => Ok(Vec::new()),
        Ok(other) => Err(format!("{what} is not a JSON object: {}", truncate(&other.to_string()))),
        Err(e) => Err(format!("{what} is not JSON: {e}")),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn array(text: &str, what: &str) -> Result<Vec<Json>, String> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Array(items)) => Ok(items),
        Ok(Json::Null) => Ok(Vec::new()),
        Ok(other) => Err(format!("{what} is not a JSON array: {}", truncate(&other.to_string()))),
        Err(e) => Err(format!("{what} is not JSON: {e}")),
    }
}

/// Events from their JSON text.
pub fn parse_events(dict: &mut Dictionary, text: &str) -> Result<Vec<Event>, String> {
    array(text, "events")?
        .iter()
        .map(|e| {
            let attributes = match e.get("attributes") {
                Some(Json::Object(m)) => to_attrs(dict, m),
                _ => Vec::new(),
            };
            Ok(Event {
                time_ns: e.get("time_unix_nano").and_then(Json::as_u64).unwrap_or(0),
                name: dict.intern(e.get("name").and_then(Json::as_str).unwrap_or("")),
                attributes,
            })
        })
        .collect()
}

/// Links from their JSON text (links with unusable ids are dropped).
pub fn parse_links(dict: &mut Dictionary, text: &str) -> Result<Vec<Link>, String> {
    Ok(array(text, "links")?
        .iter()
        .filter_map(|l| {
            let trace_id = TraceId::from_text(l.get("trace_id")?.as_str()?).id()?;
            let span_id = SpanId::from_text(l.get("span_id")?.as_str()?).id()?;
            let attributes = match l.get("attributes") {
                Some(Json::Object(m)) => to_attrs(dict, m),
                _ => Vec::new(),
            };
            Some(Link { trace_id, span_id, attributes })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_their_types() {
        let mut d = Dictionary::default();
        let attrs = vec![
            Attr { key: d.intern("s"), value: Value::Str("x".into()) },
            Attr { key: d.intern("i"), value: Value::Int(-3) },
            Attr { key: d.intern("f"), value: Value::Double(2.0) },
            Attr { key: d.intern("b"), value: Value::Bool(true) },
            Attr { key: d.intern("a"), value: Value::Array(vec![Value::Int(1), Value::Str("y".into())].into()) },
            Attr {
                key: d.intern("m"),
                value: Value::Map(vec![Attr { key: d.intern("k"), value: Value::Empty }].into()),
            },
        ];
        let text = attributes(&d, &attrs);
        let back = parse_attributes(&mut d, &text, "span_attributes").unwrap();
        let mut want = attrs.clone();
        want.sort_by(|a, b| d.resolve(a.key).cmp(d.resolve(b.key)));
        let mut got = back;
        got.sort_by(|a, b| d.resolve(a.key).cmp(d.resolve(b.key)));
        assert_eq!(got, want);
        assert!(parse_attributes(&mut d, "[1]", "span_attributes").unwrap_err().contains("not a JSON object"));
        assert!(parse_attributes(&mut d, "{", "span_attributes").unwrap_err().contains("not JSON"));
    }
}
