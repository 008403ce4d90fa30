//! Any bytes as a dump: format detection, gzip and zstd framing, every
//! reader (OTLP protobuf bare and length-prefixed, OTLP JSON documents and
//! lines, Jaeger, Zipkin), then assembly and every analysis over what was
//! read. Nothing may panic or hang; errors are fine. The same bytes read
//! again in small chunks on three threads, with documents read in blocks,
//! must give what one thread gave: the same outcome and, when it read,
//! the same spans and warnings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::critical_path::critical_path;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::{ReadOptions, read_spans};

fuzz_target!(|data: &[u8]| {
    let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
    let one = read_spans("fuzz", data, &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s));
    let chunked = ReadOptions { threads: 3, chunk_bytes: 64, document_bytes_in_memory: 1, ..ReadOptions::default() };
    let (mut dict2, mut warnings2, mut spans2) = (Dictionary::default(), Warnings::default(), Vec::new());
    let many = read_spans("fuzz", data, &chunked, &mut dict2, &mut warnings2, &mut |_, s| spans2.push(s));
    assert_eq!(one.is_ok(), many.is_ok(), "{one:?} / {many:?}");
    if one.is_ok() {
        assert_eq!(warnings, warnings2);
        assert_eq!(spans.len(), spans2.len());
        for (a, b) in spans.iter().zip(&spans2) {
            assert_eq!((a.trace_id, a.span_id, a.start_ns, a.end_ns), (b.trace_id, b.span_id, b.start_ns, b.end_ns));
            assert_eq!(dict.resolve(a.name), dict2.resolve(b.name));
        }
    }
    let (traces, _) = tracelens_core::assemble::assemble_all(spans);
    let mut analyses = TraceAnalyses::new(&dict, 100);
    for trace in &traces {
        let cp = critical_path(trace, &Default::default());
        analyses.add_trace_with_path(trace, &cp);
    }
    analyses.finish();
    let _ = analyses.graph.view(&dict);
    let _ = analyses.bottlenecks.view(&dict);
});
