//! Structure-aware: arbitrary OTLP requests, encoded with prost, so the
//! fuzzer gets past the framing into every field. A well-formed request
//! always decodes, and every span in it is emitted (repaired if need be).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::{Emitter, read_otlp_protobuf};

#[derive(Arbitrary, Debug)]
enum Scalar {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Scalar(Scalar),
    Array(Vec<Scalar>),
    Empty,
}

#[derive(Arbitrary, Debug)]
struct Attr {
    key: String,
    value: Value,
}

#[derive(Arbitrary, Debug)]
struct FuzzSpan {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    status: Option<(i32, String)>,
    attributes: Vec<Attr>,
    events: Vec<(u64, String, Vec<Attr>)>,
    links: Vec<(Vec<u8>, Vec<u8>)>,
    flags: u32,
}

#[derive(Arbitrary, Debug)]
struct FuzzScope {
    name: String,
    version: String,
    spans: Vec<FuzzSpan>,
}

#[derive(Arbitrary, Debug)]
struct FuzzResource {
    service: Option<String>,
    attributes: Vec<Attr>,
    scopes: Vec<FuzzScope>,
}

fn scalar(s: Scalar) -> any_value::Value {
    match s {
        Scalar::Str(v) => any_value::Value::StringValue(v),
        Scalar::Bool(v) => any_value::Value::BoolValue(v),
        Scalar::Int(v) => any_value::Value::IntValue(v),
        Scalar::Double(v) => any_value::Value::DoubleValue(v),
        Scalar::Bytes(v) => any_value::Value::BytesValue(v),
    }
}

fn attrs(list: Vec<Attr>) -> Vec<KeyValue> {
    list.into_iter()
        .map(|a| KeyValue {
            key: a.key,
            value: match a.value {
                Value::Scalar(s) => Some(AnyValue { value: Some(scalar(s)) }),
                Value::Array(v) => Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: v.into_iter().map(|s| AnyValue { value: Some(scalar(s)) }).collect(),
                    })),
                }),
                Value::Empty => None,
            },
            ..Default::default()
        })
        .collect()
}

fuzz_target!(|resources: Vec<FuzzResource>| {
    let mut total = 0usize;
    let request = ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|r| {
                let mut attributes = attrs(r.attributes);
                if let Some(service) = r.service {
                    attributes.push(KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::StringValue(service)) }),
                        ..Default::default()
                    });
                }
                ResourceSpans {
                    resource: Some(Resource { attributes, ..Default::default() }),
                    scope_spans: r
                        .scopes
                        .into_iter()
                        .map(|s| {
                            total += s.spans.len();
                            ScopeSpans {
                                scope: Some(InstrumentationScope {
                                    name: s.name,
                                    version: s.version,
                                    ..Default::default()
                                }),
                                spans: s
                                    .spans
                                    .into_iter()
                                    .map(|p| Span {
                                        trace_id: p.trace_id,
                                        span_id: p.span_id,
                                        parent_span_id: p.parent_span_id,
                                        name: p.name,
                                        kind: p.kind,
                                        start_time_unix_nano: p.start,
                                        end_time_unix_nano: p.end,
                                        status: p.status.map(|(code, message)| Status { code, message }),
                                        attributes: attrs(p.attributes),
                                        events: p
                                            .events
                                            .into_iter()
                                            .map(|(t, name, a)| span::Event {
                                                time_unix_nano: t,
                                                name,
                                                attributes: attrs(a),
                                                ..Default::default()
                                            })
                                            .collect(),
                                        links: p
                                            .links
                                            .into_iter()
                                            .map(|(trace_id, span_id)| span::Link {
                                                trace_id,
                                                span_id,
                                                ..Default::default()
                                            })
                                            .collect(),
                                        flags: p.flags,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect(),
    };
    let bytes = request.encode_to_vec();
    let (mut dict, mut warnings, mut emitted) = (Dictionary::default(), Warnings::default(), 0usize);
    let mut sink = |_: &Dictionary, _| emitted += 1;
    let mut e = Emitter::new("fuzz", &mut dict, &mut warnings, &mut sink);
    let result = read_otlp_protobuf(&bytes, &mut e);
    assert!(result.is_ok(), "a well-formed request was refused: {result:?}");
    assert_eq!(emitted, total, "spans emitted");
});
