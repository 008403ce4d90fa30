//! OTLP/HTTP `Content-Encoding`: the compressions the Collector's
//! `confighttp` can send (`gzip`, `zstd`, `deflate`/`zlib`, `snappy`,
//! `x-snappy-framed`, `lz4`) and `identity`, each inflated to at most one
//! byte over the request limit, so that an oversized body is refused
//! without inflating it whole. Anything else is refused (415) with the list
//! of what is accepted, never read as identity.

use std::io::Read;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

use super::status::TransportError;

/// What the `Content-Encoding` header may name, as the 415 answer lists it.
pub const SUPPORTED: &str = "gzip, zstd, deflate, zlib, snappy, x-snappy-framed, lz4, identity";

/// One coding of a body (`identity` is none: nothing to undo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// gzip (RFC 1952), also several members one after another.
    Gzip,
    /// A zstd frame (or several).
    Zstd,
    /// zlib (RFC 1950), which is what HTTP's `deflate` means in practice;
    /// a raw deflate stream (RFC 1951) is accepted as well.
    Zlib,
    /// Snappy's block format, or its framing format when the body starts
    /// with the framing format's stream identifier.
    Snappy,
    /// Snappy's framing format.
    SnappyFramed,
    /// The LZ4 frame format.
    Lz4,
}

impl Coding {
    fn parse(name: &str) -> Option<Coding> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Coding::Gzip,
            "zstd" => Coding::Zstd,
            "deflate" | "zlib" => Coding::Zlib,
            "snappy" => Coding::Snappy,
            "x-snappy-framed" => Coding::SnappyFramed,
            "lz4" => Coding::Lz4,
            _ => return None,
        })
    }

    /// Its name in errors.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Zstd => "zstd",
            Coding::Zlib => "deflate",
            Coding::Snappy => "snappy",
            Coding::SnappyFramed => "x-snappy-framed",
            Coding::Lz4 => "lz4",
        }
    }
}

/// The codings `headers` name, in the order they were applied.
pub fn codings(headers: &HeaderMap) -> Result<Vec<Coding>, TransportError> {
    let mut codings = Vec::new();
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let value = value.to_str().map_err(|_| TransportError::UnsupportedEncoding("(not text)".to_owned()))?;
        for name in value.split(',') {
            let name = name.trim();
            if name.is_empty() || name.eq_ignore_ascii_case("identity") {
                continue;
            }
            codings.push(Coding::parse(name).ok_or_else(|| TransportError::UnsupportedEncoding(name.to_owned()))?);
        }
    }
    Ok(codings)
}

/// `body` with the codings `headers` name undone (last applied, first
/// undone), at most `limit + 1` bytes long.
pub fn decode(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, TransportError> {
    let mut body = body;
    for coding in codings(headers)?.into_iter().rev() {
        body = inflate(coding, &body, limit)
            .map(Bytes::from)
            .map_err(|source| TransportError::Decompress { encoding: coding.name(), source })?;
    }
    Ok(body)
}

/// The snappy framing format's first chunk: the stream identifier.
const SNAPPY_STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// `body` inflated from `coding`, to at most `limit + 1` bytes.
fn inflate(coding: Coding, body: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    let cap = limit as u64 + 1;
    let mut out = Vec::new();
    match coding {
        Coding::Gzip => {
            flate2::read::MultiGzDecoder::new(body).take(cap).read_to_end(&mut out)?;
        }
        Coding::Zstd => {
            zstd::stream::read::Decoder::with_buffer(body)?.take(cap).read_to_end(&mut out)?;
        }
        Coding::Zlib if is_zlib_header(body) => {
            flate2::read::ZlibDecoder::new(body).take(cap).read_to_end(&mut out)?;
        }
        Coding::Zlib => {
            flate2::read::DeflateDecoder::new(body).take(cap).read_to_end(&mut out)?;
        }
        Coding::Snappy if !body.starts_with(SNAPPY_STREAM_IDENTIFIER) => {
            let len = snap::raw::decompress_len(body).map_err(invalid)?;
            if len > limit {
                // The block says how long it is: no need to inflate it to
                // know it is too long.
                return Ok(vec![0; limit + 1]);
            }
            out = snap::raw::Decoder::new().decompress_vec(body).map_err(invalid)?;
        }
        Coding::Snappy | Coding::SnappyFramed => {
            snap::read::FrameDecoder::new(body).take(cap).read_to_end(&mut out)?;
        }
        Coding::Lz4 => {
            lz4::Decoder::new(body)?.take(cap).read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// Whether `body` starts with a zlib header: deflate, a window of at most
/// 32 KiB, and the check bits right.
fn is_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

fn invalid(e: snap::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn payload() -> Vec<u8> {
        (0..50_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    fn encoded(name: &str, data: &[u8]) -> Vec<u8> {
        match name {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "zstd" => zstd::encode_all(data, 1).unwrap(),
            "zlib" => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "deflate" => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "snappy" => snap::raw::Encoder::new().compress_vec(data).unwrap(),
            "x-snappy-framed" => {
                let mut e = snap::write::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.into_inner().unwrap()
            }
            "lz4" => {
                let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
                e.write_all(data).unwrap();
                let (out, result) = e.finish();
                result.unwrap();
                out
            }
            _ => unreachable!("{name}"),
        }
    }

    #[test]
    fn every_coding_round_trips_and_stops_one_byte_over_the_limit() {
        let data = payload();
        for name in ["gzip", "zstd", "zlib", "deflate", "snappy", "x-snappy-framed", "lz4"] {
            let body = Bytes::from(encoded(name, &data));
            let header = if name == "zlib" { "deflate" } else { name };
            let out = decode(&headers(header), body.clone(), data.len()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.as_ref(), data.as_slice(), "{name}");
            let out = decode(&headers(header), body, 1000).unwrap();
            assert_eq!(out.len(), 1001, "{name}: inflated past the limit");
        }
        // The framing format under plain `snappy` too.
        let framed = Bytes::from(encoded("x-snappy-framed", &data));
        assert_eq!(decode(&headers("snappy"), framed, data.len()).unwrap().as_ref(), data.as_slice());
        // Two codings, applied in order.
        let twice = Bytes::from(encoded("gzip", &encoded("zstd", &data)));
        assert_eq!(decode(&headers("zstd, gzip"), twice, data.len()).unwrap().as_ref(), data.as_slice());
    }

    #[test]
    fn unknown_codings_and_broken_bodies_are_named() {
        let e = decode(&headers("br"), Bytes::from_static(b"x"), 10).unwrap_err();
        assert!(matches!(&e, TransportError::UnsupportedEncoding(name) if name == "br"), "{e}");
        assert!(e.to_string().contains(SUPPORTED), "{e}");
        for name in ["gzip", "zstd", "deflate", "snappy", "x-snappy-framed", "lz4"] {
            let e = decode(&headers(name), Bytes::from_static(b"\x00\x01garbage"), 10).unwrap_err();
            assert!(e.to_string().starts_with(&format!("invalid {name} body")), "{name}: {e}");
        }
        assert_eq!(decode(&headers("identity"), Bytes::from_static(b"abc"), 10).unwrap().as_ref(), b"abc");
    }
}
