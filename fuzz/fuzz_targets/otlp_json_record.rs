//! One OTLP/JSON request body as the receiver decodes it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::{Emitter, read_otlp_json_record};

fuzz_target!(|data: &[u8]| {
    let (mut dict, mut warnings) = (Dictionary::default(), Warnings::default());
    let mut sink = |_: &Dictionary, _| {};
    // Ids read as the receiver reads them, and as a dump reader does.
    let exact = data.first().is_some_and(|b| b & 1 == 1);
    let mut e = Emitter::new("fuzz", &mut dict, &mut warnings, &mut sink);
    if exact {
        e = e.exact_ids();
    }
    let _ = read_otlp_json_record(data, &mut e);
});
