//! One OTLP protobuf request body as the receiver decodes it (the
//! borrowing decoder, straight into the model).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::{Emitter, read_otlp_protobuf};

fuzz_target!(|data: &[u8]| {
    let (mut dict, mut warnings) = (Dictionary::default(), Warnings::default());
    let mut sink = |_: &Dictionary, _| {};
    let mut e = Emitter::new("fuzz", &mut dict, &mut warnings, &mut sink);
    let _ = read_otlp_protobuf(data, &mut e);
});
