//! Attribute values (OTLP `AnyValue`) with interned keys.

use std::hash::{Hash, Hasher};

use compact_str::CompactString;

use super::Sym;

/// One key/value attribute; the key is interned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attr {
    /// Interned attribute key.
    pub key: Sym,
    /// The value.
    pub value: Value,
}

/// An attribute value, OTLP's `AnyValue`.
///
/// Doubles compare and hash by their bit pattern so that resources holding
/// them can be deduplicated.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// No value (`{}` in OTLP JSON).
    #[default]
    Empty,
    /// A string: up to 24 bytes held inline, longer ones on the heap (most
    /// attribute values are short: no allocation to make or free per value).
    Str(CompactString),
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Raw bytes.
    Bytes(Box<[u8]>),
    /// A list of values.
    Array(Box<[Value]>),
    /// A nested key/value list.
    Map(Box<[Attr]>),
}

/// The longest string or byte value kept, in bytes: a longer one is cut to
/// this (at a character boundary) and counted
/// ([`WarningKind::TruncatedValue`](super::WarningKind::TruncatedValue)),
/// so that huge values do not stay in memory with every span holding one.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

impl Value {
    /// Cuts string and byte values, nested ones too, to `max` bytes (a
    /// string at a character boundary); returns how many were cut.
    pub fn truncate(&mut self, max: usize) -> u64 {
        match self {
            Value::Str(s) if s.len() > max => {
                let mut end = max;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                1
            }
            Value::Bytes(b) if b.len() > max => {
                *b = b[..max].into();
                1
            }
            Value::Array(items) => items.iter_mut().map(|v| v.truncate(max)).sum(),
            Value::Map(attrs) => attrs.iter_mut().map(|a| a.value.truncate(max)).sum(),
            _ => 0,
        }
    }

    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// Renders the value as display text (strings unquoted).
    pub fn to_text(&self) -> String {
        match self {
            Value::Empty => String::new(),
            Value::Str(s) => s.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => d.to_string(),
            Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(Value::to_text).collect();
                format!("[{}]", parts.join(","))
            }
            Value::Map(_) => "{…}".to_string(),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Empty, Value::Empty) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Empty => {}
            Value::Str(s) => s.hash(state),
            Value::Bool(b) => b.hash(state),
            Value::Int(i) => i.hash(state),
            Value::Double(d) => d.to_bits().hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Array(a) => a.hash(state),
            Value::Map(m) => m.hash(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_small() {
        // Inline strings cost no size: a value is as large as a boxed one.
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<Attr>(), 32);
    }

    #[test]
    fn doubles_compare_by_bits() {
        assert_eq!(Value::Double(f64::NAN), Value::Double(f64::NAN));
        assert_ne!(Value::Double(0.0), Value::Double(-0.0));
        assert_ne!(Value::Int(1), Value::Double(1.0));
    }

    #[test]
    fn text_rendering() {
        assert_eq!(Value::Str("a".into()).to_text(), "a");
        assert_eq!(Value::Array(vec![Value::Int(1), Value::Bool(true)].into()).to_text(), "[1,true]");
        assert_eq!(Value::Bytes(vec![0xab, 0x01].into()).to_text(), "ab01");
    }
}
