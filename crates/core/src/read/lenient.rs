//! Tolerant JSON building blocks shared by the JSON readers: strings that
//! may be borrowed or null, integers written as numbers or strings, enums
//! written as numbers or names, and OTLP `AnyValue`s in either key style.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::{SpanKind, StatusCode};

/// A string borrowed from the input when possible; `null` reads as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text::default())
            }
            // Some dumps write numeric ids as JSON numbers.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes `null` as the type's default (for lists that writers emit
/// as `null`).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An unsigned integer written as a number or a decimal string; `null` or
/// `""` is absent. Never goes through `f64` for integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LenientU64(pub Option<u64>);

impl<'de> Deserialize<'de> for LenientU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientU64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer (number or decimal string)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientU64(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(|v| LenientU64(Some(v))).map_err(|_| E::custom(format!("negative value {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 18_446_744_073_709_551_616.0 {
                    Ok(LenientU64(Some(v as u64)))
                } else {
                    Err(E::custom(format!("expected a non-negative integer, found {v}")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let t = v.trim();
                if t.is_empty() {
                    return Ok(LenientU64(None));
                }
                t.parse::<u64>()
                    .map(|v| LenientU64(Some(v)))
                    .map_err(|_| E::custom(format!("expected an integer, found {v:?}")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientU64(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientU64(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A signed integer written as a number or a decimal string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LenientI64(pub i64);

impl<'de> Deserialize<'de> for LenientI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientI64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer (number or decimal string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientI64(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(LenientI64).map_err(|_| E::custom(format!("integer {v} out of int64 range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 9_223_372_036_854_775_808.0 {
                    Ok(LenientI64(v as i64))
                } else {
                    Err(E::custom(format!("expected an integer, found {v}")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.trim()
                    .parse::<i64>()
                    .map(LenientI64)
                    .map_err(|_| E::custom(format!("expected an integer, found {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A double written as a number, a numeric string, or `"NaN"`/`"Infinity"`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LenientF64(pub f64);

impl<'de> Deserialize<'de> for LenientF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientF64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LenientF64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v.trim() {
                    "NaN" => Ok(LenientF64(f64::NAN)),
                    "Infinity" | "+Infinity" => Ok(LenientF64(f64::INFINITY)),
                    "-Infinity" => Ok(LenientF64(f64::NEG_INFINITY)),
                    t => t
                        .parse::<f64>()
                        .map(LenientF64)
                        .map_err(|_| E::custom(format!("expected a number, found {v:?}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean, also accepted as `"true"`/`"false"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LenientBool(pub bool);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientBool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LenientBool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "true" => Ok(LenientBool(true)),
                    "false" | "" => Ok(LenientBool(false)),
                    _ => Err(E::custom(format!("expected a boolean, found {v:?}"))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientBool(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// Span kind as an integer or a name (`SPAN_KIND_SERVER`, `server`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LenientKind(pub SpanKind);

impl<'de> Deserialize<'de> for LenientKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientKind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a span kind (number or name)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientKind(SpanKind::from_i32(i32::try_from(v).unwrap_or(0))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientKind(SpanKind::from_i32(i32::try_from(v).unwrap_or(0))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                SpanKind::from_name(v).map(LenientKind).ok_or_else(|| E::custom(format!("unknown span kind {v:?}")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientKind::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// Status code as an integer or a name (`STATUS_CODE_ERROR`, `ERROR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LenientStatusCode(pub StatusCode);

impl<'de> Deserialize<'de> for LenientStatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientStatusCode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code (number or name)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientStatusCode(StatusCode::from_i32(i32::try_from(v).unwrap_or(0))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientStatusCode(StatusCode::from_i32(i32::try_from(v).unwrap_or(0))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                StatusCode::from_name(v)
                    .map(LenientStatusCode)
                    .ok_or_else(|| E::custom(format!("unknown status code {v:?}")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientStatusCode::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// OTLP `AnyValue` as JSON: `{"stringValue": …}` and friends, in camelCase
/// or snake_case; `{}` and `null` are empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum JAny<'a> {
    #[default]
    Empty,
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<JAny<'a>>),
    Map(Vec<JKeyValue<'a>>),
}

/// OTLP `KeyValue` as JSON.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub(crate) struct JKeyValue<'a> {
    #[serde(borrow, default)]
    pub key: Text<'a>,
    #[serde(borrow, default)]
    pub value: JAny<'a>,
}

#[derive(Default, serde::Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct JValues<T> {
    #[serde(default = "Vec::new", deserialize_with = "nullable")]
    values: Vec<T>,
}

impl<'de: 'a, 'a> Deserialize<'de> for JAny<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JAny<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an OTLP AnyValue object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JAny::Empty)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JAny::Empty)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = JAny::Empty;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    out = match key.as_str() {
                        "stringValue" | "string_value" => JAny::Str(map.next_value::<Text<'de>>()?.0),
                        "boolValue" | "bool_value" => JAny::Bool(map.next_value::<LenientBool>()?.0),
                        "intValue" | "int_value" => JAny::Int(map.next_value::<LenientI64>()?.0),
                        "doubleValue" | "double_value" => JAny::Double(map.next_value::<LenientF64>()?.0),
                        "bytesValue" | "bytes_value" => {
                            let text = map.next_value::<Text<'de>>()?;
                            JAny::Bytes(decode_base64(text.as_str()).map_err(de::Error::custom)?)
                        }
                        "arrayValue" | "array_value" => {
                            JAny::Array(map.next_value::<Option<JValues<JAny<'de>>>>()?.unwrap_or_default().values)
                        }
                        "kvlistValue" | "kvlist_value" => {
                            JAny::Map(map.next_value::<Option<JValues<JKeyValue<'de>>>>()?.unwrap_or_default().values)
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                }
                Ok(out)
            }
            // Tolerate bare JSON scalars where an AnyValue was expected.
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JAny::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JAny::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(JAny::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JAny::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map(JAny::Int).unwrap_or(JAny::Double(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JAny::Double(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<JAny<'de>>()? {
                    items.push(item);
                }
                Ok(JAny::Array(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// Decodes standard or URL-safe base64, padded or not.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(text) {
            return Ok(bytes);
        }
    }
    Err(format!("invalid base64 {:?}", truncate(text, 40)))
}

/// At most `max` characters of `text`, for error messages.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_value_forms() {
        let v: JAny = serde_json::from_str(r#"{"stringValue":"x"}"#).unwrap();
        assert_eq!(v, JAny::Str("x".into()));
        let v: JAny = serde_json::from_str(r#"{"int_value":"-42"}"#).unwrap();
        assert_eq!(v, JAny::Int(-42));
        let v: JAny = serde_json::from_str(r#"{"intValue":9007199254740993}"#).unwrap();
        assert_eq!(v, JAny::Int(9007199254740993));
        let v: JAny = serde_json::from_str(r#"{"doubleValue":"NaN"}"#).unwrap();
        assert!(matches!(v, JAny::Double(d) if d.is_nan()));
        let v: JAny = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(v, JAny::Empty);
        let v: JAny = serde_json::from_str(r#"{"bytesValue":"AQI="}"#).unwrap();
        assert_eq!(v, JAny::Bytes(vec![1, 2]));
        let v: JAny = serde_json::from_str(r#"{"arrayValue":{"values":[{"boolValue":true},{"intValue":1}]}}"#).unwrap();
        assert_eq!(v, JAny::Array(vec![JAny::Bool(true), JAny::Int(1)]));
        let v: JAny =
            serde_json::from_str(r#"{"kvlistValue":{"values":[{"key":"a","value":{"stringValue":"b"}}]}}"#).unwrap();
        assert_eq!(v, JAny::Map(vec![JKeyValue { key: Text("a".into()), value: JAny::Str("b".into()) }]));
        assert!(serde_json::from_str::<JAny>(r#"{"bytesValue":"!!"}"#).is_err());
    }

    #[test]
    fn integers_never_via_float() {
        let v: LenientU64 = serde_json::from_str(r#""1700000000123456789""#).unwrap();
        assert_eq!(v.0, Some(1_700_000_000_123_456_789));
        let v: LenientU64 = serde_json::from_str("1700000000123456789").unwrap();
        assert_eq!(v.0, Some(1_700_000_000_123_456_789));
        assert_eq!(serde_json::from_str::<LenientU64>("null").unwrap().0, None);
        assert!(serde_json::from_str::<LenientU64>("-1").is_err());
        assert!(serde_json::from_str::<LenientU64>(r#""abc""#).is_err());
    }

    #[test]
    fn enums_by_number_or_name() {
        assert_eq!(serde_json::from_str::<LenientKind>(r#""SPAN_KIND_CONSUMER""#).unwrap().0, SpanKind::Consumer);
        assert_eq!(serde_json::from_str::<LenientKind>("3").unwrap().0, SpanKind::Client);
        assert_eq!(serde_json::from_str::<LenientStatusCode>(r#""STATUS_CODE_ERROR""#).unwrap().0, StatusCode::Error);
        assert!(serde_json::from_str::<LenientKind>(r#""sideways""#).is_err());
    }
}
