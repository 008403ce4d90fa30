//! A write-ahead-log segment, read by the log's own segment reader (over
//! memory, the reader `Wal::open`, compaction and look-ups use on files).
//! The log's module is compiled into the target from its source, so the
//! target does not build the receiver's dependencies (librdkafka's build
//! does not run under cargo fuzz).
//!
//! - Any bytes as a segment of either format: no panic; every good record
//!   is decoded as the restore decodes it (tag byte, then the request body:
//!   0 protobuf, 1 and 2 OTLP/JSON, ids read leniently and exactly).
//! - Records framed by the log's encoder (`encode_record`), then one byte
//!   changed or the bytes cut: the reader gives back exactly the records
//!   before the damage or the cut (a changed length field may read on into
//!   the payload, so there only the records before it are checked), and
//!   never one that was not written.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tracelens_core::model::{Dictionary, Warnings};
use tracelens_core::read::{Emitter, read_otlp_json_record, read_otlp_protobuf};

#[path = "../../crates/serve/src/storage/wal.rs"]
#[allow(dead_code)]
mod wal;

use wal::{SegmentFormat, encode_record, read_segment_bytes};

#[derive(Arbitrary, Debug)]
struct Framed {
    sequence: u64,
    records: Vec<Vec<u8>>,
    closing_mark: bool,
    damage: Option<(usize, u8)>,
    cut: Option<usize>,
}

fn raw(format: SegmentFormat, sequence: u64, bytes: &[u8]) {
    let (mut dict, mut warnings) = (Dictionary::default(), Warnings::default());
    let mut records = 0u64;
    let summary = read_segment_bytes(sequence, format, bytes, &mut |record| {
        records += 1;
        let Some((&tag, body)) = record.split_first() else { return };
        let mut sink = |_: &Dictionary, _| {};
        let e = Emitter::new("segment", &mut dict, &mut warnings, &mut sink);
        let _ = match tag {
            0 => read_otlp_protobuf(body, &mut { e }),
            1 => read_otlp_json_record(body, &mut { e }),
            2 => read_otlp_json_record(body, &mut e.exact_ids()),
            _ => Ok(()),
        };
    });
    assert_eq!(summary.records, records);
    assert!(summary.end <= bytes.len() as u64);
}

fn framed(f: Framed) {
    let records: Vec<Vec<u8>> = f.records.into_iter().filter(|r| !r.is_empty()).take(64).collect();
    let mut bytes = Vec::new();
    // Where each record starts and ends, and where its length field is.
    let mut spans = Vec::new();
    for r in &records {
        let start = bytes.len();
        encode_record(f.sequence, r, &mut bytes);
        spans.push((start, bytes.len()));
    }
    if f.closing_mark {
        encode_record(f.sequence, b"", &mut bytes);
    }
    let mut limit = bytes.len();
    let mut length_damaged = false;
    if let Some((at, xor)) = f.damage
        && !bytes.is_empty()
        && xor != 0
    {
        let at = at % bytes.len();
        bytes[at] ^= xor;
        limit = at;
        length_damaged = spans.iter().any(|&(start, _)| (start..start + 4).contains(&at))
            || (f.closing_mark && at >= bytes.len() - 16 && at < bytes.len() - 12);
    }
    let whole = bytes.len();
    if let Some(cut) = f.cut {
        let cut = cut % (bytes.len() + 1);
        bytes.truncate(cut);
        limit = limit.min(cut);
    }
    // The records wholly before the first damaged or missing byte.
    let intact = spans.iter().take_while(|&&(_, end)| end <= limit).count();
    let mut read: Vec<Vec<u8>> = Vec::new();
    let summary = read_segment_bytes(f.sequence, SegmentFormat::Tagged, &bytes, &mut |r| read.push(r.to_vec()));
    assert_eq!(summary.records as usize, read.len());
    assert!(read.len() >= intact, "{} records read, {intact} intact", read.len());
    assert_eq!(read[..intact], records[..intact]);
    if !length_damaged {
        assert_eq!(read.len(), intact, "a record read past the damage");
    }
    let damaged = f.damage.is_some_and(|(_, xor)| xor != 0 && whole > 0);
    if bytes.len() == whole && !damaged {
        assert!(summary.closed && summary.bad.is_none(), "{summary:?}");
        assert_eq!(read, records, "every record, none more");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => raw(SegmentFormat::Tagged, 1, rest),
        1 => raw(SegmentFormat::First, 1, rest),
        _ => {
            if let Ok(f) = Framed::arbitrary_take_rest(Unstructured::new(rest)) {
                framed(f);
            }
        }
    }
});
