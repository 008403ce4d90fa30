//! Spans of the model back into OTLP: an [`ExportTraceServiceRequest`]
//! per batch, spans grouped by resource and scope as an SDK groups them.
//! Everything the model keeps goes back: ids, names, kinds, times,
//! attributes, events, links, status, trace state and flags.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan, Status, span};
use rustc_hash::FxHashMap;

use tracelens_core::model::{Attr, Dictionary, ResourceId, Span, Sym, Value};

/// Collects spans into requests of about `batch_spans` spans.
pub struct Batcher {
    batch_spans: usize,
    /// Resource → its `ResourceSpans` in `request`.
    resources: FxHashMap<ResourceId, usize>,
    /// (resource, scope name, scope version) → position in `request`.
    groups: FxHashMap<(ResourceId, Sym, Sym), (usize, usize)>,
    request: ExportTraceServiceRequest,
    spans: usize,
}

impl Batcher {
    /// Requests of at least one and about `batch_spans` spans.
    pub fn new(batch_spans: usize) -> Batcher {
        Batcher {
            batch_spans: batch_spans.max(1),
            resources: FxHashMap::default(),
            groups: FxHashMap::default(),
            request: ExportTraceServiceRequest::default(),
            spans: 0,
        }
    }

    /// Adds spans (a whole trace, so a trace is not split across requests
    /// unless it alone is larger than a batch); returns a full request.
    pub fn add(&mut self, dict: &Dictionary, spans: &[Span]) -> Option<(ExportTraceServiceRequest, usize)> {
        for s in spans {
            let key = (s.resource, s.scope_name, s.scope_version);
            let (r, k) = *self.groups.entry(key).or_insert_with(|| {
                let r = *self.resources.entry(s.resource).or_insert_with(|| {
                    self.request.resource_spans.push(ResourceSpans {
                        resource: Some(Resource {
                            attributes: resource_attributes(dict, s.resource),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    self.request.resource_spans.len() - 1
                });
                let scopes = &mut self.request.resource_spans[r].scope_spans;
                scopes.push(ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: dict.resolve(s.scope_name).to_string(),
                        version: dict.resolve(s.scope_version).to_string(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                (r, scopes.len() - 1)
            });
            self.request.resource_spans[r].scope_spans[k].spans.push(encode_span(dict, s));
            self.spans += 1;
        }
        (self.spans >= self.batch_spans).then(|| self.take())
    }

    /// The spans collected so far as a request, if any.
    pub fn finish(&mut self) -> Option<(ExportTraceServiceRequest, usize)> {
        (self.spans > 0).then(|| self.take())
    }

    fn take(&mut self) -> (ExportTraceServiceRequest, usize) {
        self.resources.clear();
        self.groups.clear();
        let spans = std::mem::take(&mut self.spans);
        (std::mem::take(&mut self.request), spans)
    }
}

fn resource_attributes(dict: &Dictionary, id: ResourceId) -> Vec<KeyValue> {
    key_values(dict, &dict.resource_of(id).attributes)
}

/// One span.
pub fn encode_span(dict: &Dictionary, s: &Span) -> PSpan {
    PSpan {
        trace_id: s.trace_id.0.to_vec(),
        span_id: s.span_id.0.to_vec(),
        trace_state: s.trace_state().unwrap_or_default().to_string(),
        parent_span_id: s.parent_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        flags: s.flags,
        name: dict.resolve(s.name).to_string(),
        kind: s.kind as i32,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.end_ns,
        attributes: key_values(dict, &s.attributes),
        events: s
            .events()
            .iter()
            .map(|e| span::Event {
                time_unix_nano: e.time_ns,
                name: dict.resolve(e.name).to_string(),
                attributes: key_values(dict, &e.attributes),
                dropped_attributes_count: 0,
            })
            .collect(),
        links: s
            .links()
            .iter()
            .map(|l| span::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                attributes: key_values(dict, &l.attributes),
                ..Default::default()
            })
            .collect(),
        status: (s.status as i32 != 0 || s.status_message().is_some())
            .then(|| Status { message: s.status_message().unwrap_or_default().to_string(), code: s.status as i32 }),
        ..Default::default()
    }
}

fn key_values(dict: &Dictionary, attrs: &[Attr]) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|a| KeyValue {
            key: dict.resolve(a.key).to_string(),
            value: Some(any_value(dict, &a.value)),
            ..Default::default()
        })
        .collect()
}

fn any_value(dict: &Dictionary, v: &Value) -> AnyValue {
    use any_value::Value as V;
    let value = match v {
        Value::Empty => None,
        Value::Str(s) => Some(V::StringValue(s.to_string())),
        Value::Bool(b) => Some(V::BoolValue(*b)),
        Value::Int(i) => Some(V::IntValue(*i)),
        Value::Double(d) => Some(V::DoubleValue(*d)),
        Value::Bytes(b) => Some(V::BytesValue(b.to_vec())),
        Value::Array(items) => {
            Some(V::ArrayValue(ArrayValue { values: items.iter().map(|i| any_value(dict, i)).collect() }))
        }
        Value::Map(kvs) => Some(V::KvlistValue(KeyValueList { values: key_values(dict, kvs) })),
    };
    AnyValue { value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::model::Warnings;
    use tracelens_core::read::{ReadOptions, read_spans};

    #[test]
    fn spans_go_back_to_otlp_as_they_came() {
        // Decode the shop fixture, encode it again, decode that: the same spans.
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/shop.otlp.json")).unwrap();
        let mut dict = Dictionary::default();
        let mut warnings = Warnings::default();
        let mut spans = Vec::new();
        read_spans("shop", &bytes[..], &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s))
            .unwrap();
        let mut batcher = Batcher::new(1000);
        assert!(batcher.add(&dict, &spans).is_none());
        let (request, n) = batcher.finish().unwrap();
        assert_eq!(n, spans.len());
        assert!(batcher.finish().is_none());
        let body = prost::Message::encode_to_vec(&request);
        let mut again_dict = Dictionary::default();
        let mut again = Vec::new();
        read_spans("again", &body[..], &ReadOptions::default(), &mut again_dict, &mut warnings, &mut |_, s| {
            again.push(s)
        })
        .unwrap();
        assert_eq!(again.len(), spans.len());
        for (a, b) in spans.iter().zip(&again) {
            assert_eq!(
                (a.trace_id, a.span_id, a.parent_id, a.kind, a.status),
                (b.trace_id, b.span_id, b.parent_id, b.kind, b.status)
            );
            assert_eq!((a.start_ns, a.end_ns, a.flags), (b.start_ns, b.end_ns, b.flags));
            assert_eq!(dict.resolve(a.name), again_dict.resolve(b.name));
            assert_eq!(dict.resolve(a.service), again_dict.resolve(b.service));
            assert_eq!(a.attributes.len(), b.attributes.len());
            assert_eq!(a.events().len(), b.events().len());
            assert_eq!(a.links().len(), b.links().len());
            assert_eq!(a.status_message(), b.status_message());
        }
    }

    #[test]
    fn batches_hold_whole_traces() {
        let mut dict = Dictionary::default();
        let resource = dict.resource(Vec::new());
        let trace = |t: u8, n: u8| -> Vec<Span> {
            (0..n)
                .map(|i| {
                    let mut s =
                        Span::new(tracelens_core::model::TraceId([t; 16]), tracelens_core::model::SpanId([i + 1; 8]));
                    s.resource = resource;
                    s
                })
                .collect()
        };
        let mut batcher = Batcher::new(5);
        assert!(batcher.add(&dict, &trace(1, 3)).is_none());
        let (request, n) = batcher.add(&dict, &trace(2, 3)).expect("full after six spans");
        assert_eq!(n, 6);
        assert_eq!(request.resource_spans.len(), 1);
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 6);
        assert!(batcher.finish().is_none());
    }
}
