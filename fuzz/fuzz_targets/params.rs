//! The text parsers of query parameters and flags: times, durations and
//! trace and span ids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracelens_core::model::time::{parse_duration, parse_time};
use tracelens_core::model::{SpanId, TraceId};

fuzz_target!(|text: &str| {
    let _ = parse_time(text);
    let _ = parse_duration(text);
    let _ = TraceId::from_text(text);
    let _ = SpanId::from_text(text);
});
