//! Differential: the borrowing protobuf decoder and prost must accept and
//! refuse exactly the same request bodies, and find the same spans.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::{Emitter, read_otlp_protobuf};

fuzz_target!(|data: &[u8]| {
    let (mut dict, mut warnings, mut emitted) = (Dictionary::default(), Warnings::default(), 0usize);
    let mut sink = |_: &Dictionary, _| emitted += 1;
    let mut e = Emitter::new("fuzz", &mut dict, &mut warnings, &mut sink);
    let wire = read_otlp_protobuf(data, &mut e);
    let prost = ExportTraceServiceRequest::decode(data);
    assert_eq!(wire.is_ok(), prost.is_ok(), "wire {wire:?} vs prost {prost:?}");
    if let Ok(request) = prost {
        let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        assert_eq!(emitted, spans, "spans found");
    }
});
