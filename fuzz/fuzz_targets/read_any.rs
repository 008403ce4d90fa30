//! Any bytes as a dump: format detection, gzip and zstd framing, every
//! reader (OTLP protobuf bare and length-prefixed, OTLP JSON documents and
//! lines, Jaeger, Zipkin), then assembly and every analysis over what was
//! read. Nothing may panic or hang; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracelens_core::analysis::TraceAnalyses;
use tracelens_core::analysis::critical_path::critical_path;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::{ReadOptions, read_spans};

fuzz_target!(|data: &[u8]| {
    let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
    let _ = read_spans("fuzz", data, &ReadOptions::default(), &mut dict, &mut warnings, &mut |_, s| spans.push(s));
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
