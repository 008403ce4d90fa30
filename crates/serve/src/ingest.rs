//! Turning one OTLP export request into spans the live analysis keeps, with
//! OTLP's partial-success rules: spans that cannot be used (empty or zero
//! trace or span ids, no `service.name`) are rejected and counted, the rest
//! kept. Plain functions over bytes and messages; the gRPC and HTTP handlers
//! only call them.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use tracelens_core::model::{Dictionary, Span, SpanQuality, Warnings};
use tracelens_core::read::{Emitter, ReadErrorKind};

/// The span, event and link attributes the live analyses read: the
/// offline analyses' set. The write-ahead log keeps every attribute; live
/// memory only these.
pub const LIVE_ATTRIBUTES: [&str; 12] = tracelens_core::analysis::ATTRIBUTES_READ;

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    /// `application/x-protobuf` (and gRPC).
    Protobuf,
    /// `application/json`.
    Json,
}

impl BodyEncoding {
    /// The byte that marks a request of this encoding in the write-ahead
    /// log (read with [`IdRule::Exact`]).
    pub fn wal_tag(self) -> u8 {
        match self {
            BodyEncoding::Protobuf => 0,
            BodyEncoding::Json => 2,
        }
    }

    /// The encoding and id rule a write-ahead-log tag stands for: tag 1 is
    /// OTLP/JSON logged before ids were read exactly, read as it was read
    /// when it was acknowledged.
    pub fn from_wal_tag(tag: u8) -> Option<(BodyEncoding, IdRule)> {
        match tag {
            0 => Some((BodyEncoding::Protobuf, IdRule::Exact)),
            1 => Some((BodyEncoding::Json, IdRule::Lenient)),
            2 => Some((BodyEncoding::Json, IdRule::Exact)),
            _ => None,
        }
    }
}

/// How ids given as text (OTLP/JSON) are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdRule {
    /// As OTLP writes them: 32 and 16 hex digits (or base64 of 16 and 8
    /// bytes); anything else makes the span unusable. The receiver's rule.
    Exact,
    /// Hex with dropped leading zeros left-padded, as a dump reader does:
    /// for requests logged before the exact rule, so that what was
    /// acknowledged then is read back the same.
    Lenient,
}

impl IdRule {
    /// `e`, reading text ids by this rule.
    pub fn apply<'a>(self, e: Emitter<'a>) -> Emitter<'a> {
        match self {
            IdRule::Exact => e.exact_ids(),
            IdRule::Lenient => e,
        }
    }
}

/// A request's usable spans and what was rejected.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Spans to keep.
    pub spans: Vec<Span>,
    /// Spans rejected.
    pub rejected: u64,
    /// Why, in English, when anything was rejected.
    pub message: Option<String>,
}

/// The request could not be decoded at all (permanent: INVALID_ARGUMENT / 400).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DecodeError(#[from] pub ReadErrorKind);

/// Converts a decoded protobuf request (gRPC).
pub fn accept_message(request: &ExportTraceServiceRequest, dict: &mut Dictionary, warnings: &mut Warnings) -> Accepted {
    let mut spans = Vec::new();
    {
        let mut e = Emitter::collecting("request", dict, warnings, &mut spans).keep_only_attributes(&LIVE_ATTRIBUTES);
        for rs in &request.resource_spans {
            tracelens_core::read::emit_otlp_resource_spans(rs, &mut e);
        }
    }
    keep_usable(spans, dict)
}

/// Decodes and converts a request body (OTLP/HTTP, or a write-ahead-log
/// record), its text ids read by `ids`.
pub fn accept_bytes(
    body: &[u8],
    encoding: BodyEncoding,
    ids: IdRule,
    dict: &mut Dictionary,
    warnings: &mut Warnings,
) -> Result<Accepted, DecodeError> {
    // About what 100-span OTLP protobuf requests carry per span, so the
    // vector rarely grows (JSON bodies are larger per span: over-reserved).
    let mut spans = Vec::with_capacity((body.len() / 128).min(1 << 16));
    {
        let mut e = ids
            .apply(Emitter::collecting("request", dict, warnings, &mut spans).keep_only_attributes(&LIVE_ATTRIBUTES));
        let blank = body.iter().all(u8::is_ascii_whitespace);
        let result = match encoding {
            _ if body.is_empty() => Ok(()),
            BodyEncoding::Json if blank => Ok(()),
            BodyEncoding::Protobuf => tracelens_core::read::read_otlp_protobuf(body, &mut e),
            BodyEncoding::Json => tracelens_core::read::read_otlp_json_record(body, &mut e),
        };
        result.map_err(DecodeError)?;
    }
    Ok(keep_usable(spans, dict))
}

/// Why a span cannot be used (OTLP partial success rejects it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// An empty, all-zero or malformed trace or span id (OTLP's are
    /// exactly 16 and 8 bytes; hex of that length in OTLP/JSON).
    BadIds,
    /// Its resource has no `service.name`.
    NoService,
}

/// Whether the receiver keeps `span`: the rule partial success applies to
/// requests, and compaction to the logged requests (which hold the
/// rejected spans too, as they came).
pub fn usable(span: &Span, dict: &Dictionary) -> Result<(), Unusable> {
    // A malformed id was kept by the reader under a stable hash, with its
    // text: a dump is repaired, but OTLP's rule for a receiver is to refuse
    // it, or the id that was sent would never be found.
    let malformed = span.quality.contains(SpanQuality::OPAQUE_ID)
        && span.original_ids().is_some_and(|o| o.trace_id.is_some() || o.span_id.is_some());
    if malformed
        || span.quality.contains(SpanQuality::INVALID_TRACE_ID)
        || span.quality.contains(SpanQuality::INVALID_SPAN_ID)
    {
        return Err(Unusable::BadIds);
    }
    let service_name = dict.keys().service_name;
    if !dict.resource_of(span.resource).attributes.iter().any(|a| a.key == service_name) {
        return Err(Unusable::NoService);
    }
    Ok(())
}

fn keep_usable(mut spans: Vec<Span>, dict: &Dictionary) -> Accepted {
    let (mut bad_ids, mut no_service) = (0u64, 0u64);
    spans.retain(|span| match usable(span, dict) {
        Ok(()) => true,
        Err(Unusable::BadIds) => {
            bad_ids += 1;
            false
        }
        Err(Unusable::NoService) => {
            no_service += 1;
            false
        }
    });
    let mut accepted = Accepted { spans, ..Accepted::default() };
    accepted.rejected = bad_ids + no_service;
    if accepted.rejected > 0 {
        let mut parts = Vec::new();
        if bad_ids > 0 {
            parts.push(format!(
                "{} with an empty, all-zero or malformed trace or span id (16 and 8 bytes; 32 and 16 hex digits in JSON)",
                tracelens_core::render::count(bad_ids, "span")
            ));
        }
        if no_service > 0 {
            parts.push(format!(
                "{} whose resource has no service.name",
                tracelens_core::render::count(no_service, "span")
            ));
        }
        accepted.message = Some(format!("rejected {}", parts.join(" and ")));
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeSpans":[{"spans":[
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a","startTimeUnixNano":"1","endTimeUnixNano":"2"},
        {"traceId":"","spanId":"eee19b7ec3c1b175","name":"b","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]},
        {"resource":{"attributes":[]},"scopeSpans":[{"spans":[
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b176","name":"c","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

    #[test]
    fn partial_success_counts_and_explains() {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let a = accept_bytes(GOOD.as_bytes(), BodyEncoding::Json, IdRule::Exact, &mut dict, &mut warnings).unwrap();
        assert_eq!(a.spans.len(), 1);
        assert_eq!(a.rejected, 2);
        assert_eq!(
            a.message.as_deref(),
            Some(
                "rejected 1 span with an empty, all-zero or malformed trace or span id (16 and 8 bytes; 32 and 16 hex digits in JSON) and 1 span whose resource has no service.name"
            )
        );
    }

    #[test]
    fn ids_of_the_wrong_length_are_rejected_not_hashed() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan};
        use prost::Message as _;
        let span = |trace: Vec<u8>, id: Vec<u8>| PSpan {
            trace_id: trace,
            span_id: id,
            name: "op".into(),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::StringValue("api".into())) }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(vec![1; 16], vec![2; 8]),
                        span(vec![1; 8], vec![3; 8]),
                        span(vec![1; 17], vec![4; 8]),
                        span(vec![1; 16], vec![5; 9]),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (mut dict, mut warnings) = (Dictionary::default(), Warnings::default());
        let a = accept_bytes(&request.encode_to_vec(), BodyEncoding::Protobuf, IdRule::Exact, &mut dict, &mut warnings)
            .unwrap();
        assert_eq!((a.spans.len(), a.rejected), (1, 3));
        assert!(a.message.unwrap().contains("malformed trace or span id"));
        // The same in JSON: a trace id of 34 hex digits (17 bytes), and a
        // span id of 15 (a leading zero dropped: OTLP/JSON writes all 16).
        let json = GOOD
            .replace("\"traceId\":\"\"", "\"traceId\":\"5b8efff798038103d269b633813fc60c01\"")
            .replace("eee19b7ec3c1b176", "eee19b7ec3c1b17600");
        let a = accept_bytes(json.as_bytes(), BodyEncoding::Json, IdRule::Exact, &mut dict, &mut warnings).unwrap();
        assert_eq!((a.spans.len(), a.rejected), (1, 2));
        let short = GOOD.replace("eee19b7ec3c1b174", "ee19b7ec3c1b174");
        let a = accept_bytes(short.as_bytes(), BodyEncoding::Json, IdRule::Exact, &mut dict, &mut warnings).unwrap();
        assert_eq!((a.spans.len(), a.rejected), (0, 3), "the short id, and the two rejected before");
        // A request logged before ids were read exactly (WAL tag 1) is read
        // back as it was acknowledged then.
        assert_eq!(BodyEncoding::from_wal_tag(1), Some((BodyEncoding::Json, IdRule::Lenient)));
        assert_eq!(BodyEncoding::from_wal_tag(BodyEncoding::Json.wal_tag()), Some((BodyEncoding::Json, IdRule::Exact)));
        let a = accept_bytes(short.as_bytes(), BodyEncoding::Json, IdRule::Lenient, &mut dict, &mut warnings).unwrap();
        assert_eq!((a.spans.len(), a.rejected), (1, 2), "only the two rejected before");
    }

    #[test]
    fn a_body_of_nul_bytes_is_not_a_request() {
        let (mut dict, mut warnings) = (Dictionary::default(), Warnings::default());
        let e =
            accept_bytes(&[0u8; 1000], BodyEncoding::Protobuf, IdRule::Exact, &mut dict, &mut warnings).unwrap_err();
        assert!(e.to_string().contains("invalid tag value: 0"), "{e}");
    }

    #[test]
    fn empty_requests_succeed_and_garbage_fails() {
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        for (body, enc) in [(&b""[..], BodyEncoding::Protobuf), (b"{}", BodyEncoding::Json), (b" ", BodyEncoding::Json)]
        {
            let a = accept_bytes(body, enc, IdRule::Exact, &mut dict, &mut warnings).unwrap();
            assert_eq!((a.spans.len(), a.rejected), (0, 0));
        }
        assert!(
            accept_bytes(b"\x0a\xff\xff", BodyEncoding::Protobuf, IdRule::Exact, &mut dict, &mut warnings).is_err()
        );
        assert!(
            accept_bytes(b"{\"resourceSpans\": 7}", BodyEncoding::Json, IdRule::Exact, &mut dict, &mut warnings)
                .is_err()
        );
        assert!(accept_bytes(b"not json", BodyEncoding::Json, IdRule::Exact, &mut dict, &mut warnings).is_err());
    }

    #[test]
    fn protobuf_bytes_and_messages_agree() {
        use prost::Message;
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let a = accept_bytes(GOOD.as_bytes(), BodyEncoding::Json, IdRule::Exact, &mut dict, &mut warnings).unwrap();
        // Build the same single good span as a message.
        let pb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.pb")).unwrap();
        let request = ExportTraceServiceRequest::decode(pb.as_slice()).unwrap();
        let from_message = accept_message(&request, &mut dict, &mut warnings);
        let from_bytes = accept_bytes(&pb, BodyEncoding::Protobuf, IdRule::Exact, &mut dict, &mut warnings).unwrap();
        assert_eq!(from_message.spans, from_bytes.spans);
        assert_eq!(from_bytes.spans.len(), 14);
        assert_eq!(a.spans.len(), 1);
    }
}
