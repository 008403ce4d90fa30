//! Trace and span ids: fixed-size byte arrays, and the rules for turning
//! whatever a dump calls an id (hex of any case and length, base64, raw bytes,
//! opaque text) into one.

use std::fmt;

/// A 16-byte trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

/// The outcome of parsing an id as a dump wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParsedId<T> {
    /// A well-formed id (hex, base64 or raw bytes of the right length).
    Valid(T),
    /// Not an id in any encoding we know (letters, wrong byte length, …):
    /// mapped to a stable hash of its text so equal texts stay equal.
    Opaque(T),
    /// The empty string or no bytes at all.
    Empty,
    /// All zero bytes, which OTLP defines as invalid.
    Zero,
}

impl<T> ParsedId<T> {
    /// The id, if there is one to use (valid or hashed).
    pub fn id(self) -> Option<T> {
        match self {
            ParsedId::Valid(id) | ParsedId::Opaque(id) => Some(id),
            ParsedId::Empty | ParsedId::Zero => None,
        }
    }
}

macro_rules! id_impl {
    ($ty:ident, $len:expr) => {
        impl $ty {
            /// Number of bytes in this id.
            pub const LEN: usize = $len;

            /// Whether every byte is zero.
            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|&b| b == 0)
            }

            /// Parses raw bytes as an OTLP protobuf message carries them.
            pub fn from_bytes(bytes: &[u8]) -> ParsedId<Self> {
                if bytes.is_empty() {
                    return ParsedId::Empty;
                }
                if bytes.len() == $len {
                    let mut out = [0u8; $len];
                    out.copy_from_slice(bytes);
                    let id = $ty(out);
                    return if id.is_zero() { ParsedId::Zero } else { ParsedId::Valid(id) };
                }
                ParsedId::Opaque(Self::hashed(bytes))
            }

            /// Parses an id written as text: hex of any case (left-padded when
            /// leading zeros were dropped), base64 of the right byte length,
            /// or anything else, which is hashed.
            pub fn from_text(text: &str) -> ParsedId<Self> {
                let text = text.trim();
                if text.is_empty() {
                    return ParsedId::Empty;
                }
                let mut out = [0u8; $len];
                let parsed = if text.len() <= 2 * $len && decode_hex_padded(text.as_bytes(), &mut out) {
                    true
                } else {
                    decode_base64_exact(text, &mut out)
                };
                if parsed {
                    let id = $ty(out);
                    if id.is_zero() { ParsedId::Zero } else { ParsedId::Valid(id) }
                } else {
                    ParsedId::Opaque(Self::hashed(text.as_bytes()))
                }
            }

            /// Parses an id as OTLP/JSON must write it: exactly
            /// 2 × [`Self::LEN`] hex digits, or base64 of exactly
            /// [`Self::LEN`] bytes. Anything else is malformed
            /// ([`ParsedId::Opaque`], hashed), shorter hex included, which
            /// [`Self::from_text`] left-pads.
            pub fn from_text_exact(text: &str) -> ParsedId<Self> {
                let t = text.trim();
                let short_hex = !t.is_empty() && t.len() < 2 * $len && t.bytes().all(|b| b.is_ascii_hexdigit());
                if !short_hex {
                    return Self::from_text(text);
                }
                let mut out = [0u8; $len];
                if decode_base64_exact(t, &mut out) {
                    let id = $ty(out);
                    return if id.is_zero() { ParsedId::Zero } else { ParsedId::Valid(id) };
                }
                ParsedId::Opaque(Self::hashed(t.as_bytes()))
            }

            /// Lower-case hex, the canonical text form.
            pub fn to_hex(&self) -> String {
                let mut s = String::with_capacity(2 * $len);
                for b in self.0 {
                    s.push(HEX[(b >> 4) as usize] as char);
                    s.push(HEX[(b & 0xf) as usize] as char);
                }
                s
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.to_hex())
            }
        }
    };
}

id_impl!(TraceId, 16);
id_impl!(SpanId, 8);

impl TraceId {
    fn hashed(bytes: &[u8]) -> Self {
        let hi = stable_hash64(bytes, 0x7472_6163_656c_656e);
        let lo = stable_hash64(bytes, 0x6f70_6171_7565_6964);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&hi.to_be_bytes());
        out[8..].copy_from_slice(&lo.to_be_bytes());
        TraceId(out)
    }

    /// The low 8 bytes, the part a 64-bit Zipkin/Jaeger trace id fills.
    pub fn low64(&self) -> u64 {
        u64::from_be_bytes(self.0[8..].try_into().expect("8 bytes"))
    }
}

impl SpanId {
    fn hashed(bytes: &[u8]) -> Self {
        SpanId(stable_hash64(bytes, 0x6f70_6171_7565_6964).to_be_bytes())
    }

    /// A deterministic new id derived from this one and a salt, for spans
    /// that must be told apart (Zipkin shared server halves, duplicates).
    pub fn derived(&self, salt: &[u8]) -> SpanId {
        let mut buf = [0u8; 40];
        let n = salt.len().min(32);
        buf[..8].copy_from_slice(&self.0);
        buf[8..8 + n].copy_from_slice(&salt[..n]);
        let mut id = SpanId(stable_hash64(&buf[..8 + n], 0x7368_6172_6564_6964).to_be_bytes());
        if id.is_zero() {
            id.0[7] = 1;
        }
        id
    }

    /// The id as a big-endian integer.
    pub fn as_u64(&self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex right-aligned into `out` (so `"1f"` fills the last byte).
/// Returns false on any non-hex character or if the text is too long.
fn decode_hex_padded(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() > 2 * out.len() {
        return false;
    }
    out.fill(0);
    let mut pos = out.len() * 2;
    for &c in text.iter().rev() {
        let Some(v) = hex_val(c) else { return false };
        pos -= 1;
        let byte = &mut out[pos / 2];
        if pos % 2 == 1 {
            *byte |= v;
        } else {
            *byte |= v << 4;
        }
    }
    true
}

/// Decodes standard or URL-safe base64 (padded or not) that yields exactly
/// `out.len()` bytes.
fn decode_base64_exact(text: &str, out: &mut [u8]) -> bool {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut buf = [0u8; 24];
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        if let Ok(n) = engine.decode_slice(text, &mut buf)
            && n == out.len()
        {
            out.copy_from_slice(&buf[..n]);
            return true;
        }
    }
    false
}

/// A stable 64-bit hash (FNV-1a with a final avalanche), identical on every
/// platform and run, for mapping opaque ids to fixed-size ones.
pub fn stable_hash64(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finalizer so that short inputs spread over all bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_any_case_and_padding() {
        let a = TraceId::from_text("5B8EFFF798038103D269B633813FC60C");
        let b = TraceId::from_text("5b8efff798038103d269b633813fc60c");
        assert_eq!(a, b);
        assert_eq!(a.id().unwrap().to_hex(), "5b8efff798038103d269b633813fc60c");
        // A 64-bit Zipkin id fills the low half.
        let z = TraceId::from_text("e2ed4a4a7f0ac5e6").id().unwrap();
        assert_eq!(z.to_hex(), "0000000000000000e2ed4a4a7f0ac5e6");
        // Leading zeros dropped (31 digits).
        let short = TraceId::from_text("b8efff798038103d269b633813fc60c").id().unwrap();
        assert_eq!(short.to_hex(), "0b8efff798038103d269b633813fc60c");
        let s = SpanId::from_text("1").id().unwrap();
        assert_eq!(s.to_hex(), "0000000000000001");
    }

    #[test]
    fn base64_ids() {
        // 16 bytes 0x00..0x0f
        let t = TraceId::from_text("AAECAwQFBgcICQoLDA0ODw==");
        assert_eq!(t, ParsedId::Valid(TraceId(core::array::from_fn(|i| i as u8))));
        let s = SpanId::from_text("AAECAwQFBgc=");
        assert_eq!(s, ParsedId::Valid(SpanId([0, 1, 2, 3, 4, 5, 6, 7])));
        // '+' and '/' characters
        let s = SpanId::from_text("+/+/+/+/+/8=");
        assert!(matches!(s, ParsedId::Valid(_)));
    }

    #[test]
    fn invalid_and_opaque() {
        assert_eq!(TraceId::from_text(""), ParsedId::Empty);
        assert_eq!(TraceId::from_text("00000000000000000000000000000000"), ParsedId::Zero);
        assert_eq!(SpanId::from_bytes(&[0; 8]), ParsedId::Zero);
        assert_eq!(SpanId::from_bytes(&[]), ParsedId::Empty);
        let a = SpanId::from_text("span-A");
        let b = SpanId::from_text("span-A");
        let c = SpanId::from_text("span-B");
        assert!(matches!(a, ParsedId::Opaque(_)));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Wrong byte length is opaque, not truncated.
        assert!(matches!(SpanId::from_bytes(&[1, 2, 3]), ParsedId::Opaque(_)));
        // Too long hex is opaque.
        assert!(matches!(SpanId::from_text("0123456789abcdef01"), ParsedId::Opaque(_)));
    }

    #[test]
    fn exact_ids_are_what_otlp_json_writes() {
        let full = "5b8efff798038103d269b633813fc60c";
        assert_eq!(TraceId::from_text_exact(full), TraceId::from_text(full));
        assert_eq!(
            TraceId::from_text_exact("AAECAwQFBgcICQoLDA0ODw=="),
            TraceId::from_text("AAECAwQFBgcICQoLDA0ODw==")
        );
        assert_eq!(SpanId::from_text_exact(""), ParsedId::Empty);
        assert_eq!(SpanId::from_text_exact("0000000000000000"), ParsedId::Zero);
        // Hex with its leading zeros dropped is malformed here; the lenient
        // reading pads it.
        for short in ["b8efff798038103d269b633813fc60c", "e2ed4a4a7f0ac5e6", "1"] {
            assert!(matches!(TraceId::from_text_exact(short), ParsedId::Opaque(_)), "{short}");
            assert!(matches!(TraceId::from_text(short), ParsedId::Valid(_)), "{short}");
        }
        assert!(matches!(SpanId::from_text_exact("eee19b7ec3c1b17"), ParsedId::Opaque(_)));
        assert!(matches!(SpanId::from_text_exact("0123456789abcdef01"), ParsedId::Opaque(_)));
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let id = SpanId([1; 8]);
        assert_eq!(id.derived(b"server"), id.derived(b"server"));
        assert_ne!(id.derived(b"server"), id);
        assert_ne!(id.derived(b"server"), id.derived(b"dup1"));
    }

    #[test]
    fn stable_hash_is_fixed() {
        // Pinned so that ids derived in one version read the same in the next.
        assert_eq!(stable_hash64(b"", 0), stable_hash64(b"", 0));
        assert_ne!(stable_hash64(b"a", 0), stable_hash64(b"b", 0));
        assert_ne!(stable_hash64(b"a", 0), stable_hash64(b"a", 1));
    }
}
