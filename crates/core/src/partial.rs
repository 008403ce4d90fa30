//! Partials: what one process learned from some traces, in a form another
//! process merges exactly — analyses per time bucket
//! ([`crate::analysis::portable`]), the judge's trace digests
//! ([`crate::judge::sample::portable`]), a summary and warnings, with the
//! one string table their names index. `tracelens analyze --partial`
//! writes them to files (a magic line, then length-delimited messages),
//! `tracelens merge` reads them.

use crate::analysis::portable::PortableError;
use crate::model::{WarningKind, Warnings};

/// The newest partial format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The protobuf messages (field numbers are the format: only ever added to).
pub mod pb {
    /// What one process learned: analyses per time bucket, with the
    /// string table their names index.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Partial {
        /// The format version ([`super::FORMAT_VERSION`]).
        #[prost(uint32, tag = "1")]
        pub format: u32,
        /// Every name the rest refers to, by index.
        #[prost(string, repeated, tag = "2")]
        pub strings: Vec<String>,
        /// Analyses per time bucket.
        #[prost(message, repeated, tag = "3")]
        pub buckets: Vec<Bucket>,
        /// Spans, traces, services and time range (offline partials).
        #[prost(message, optional, tag = "4")]
        pub summary: Option<crate::analysis::portable::pb::Summary>,
        /// Spans read, before exact duplicates were dropped.
        #[prost(uint64, tag = "5")]
        pub spans_read: u64,
        /// Repairs and oddities counted while reading and assembling.
        #[prost(message, repeated, tag = "6")]
        pub warnings: Vec<WarningCount>,
    }

    /// The analyses of the traces that started in one time bucket.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Bucket {
        /// Bucket start, unix ms (0 with a width of 0: no time bucket).
        #[prost(uint64, tag = "1")]
        pub start_ms: u64,
        /// Bucket width, ms.
        #[prost(uint64, tag = "2")]
        pub width_ms: u64,
        /// The analyses.
        #[prost(message, optional, tag = "3")]
        pub analyses: Option<crate::analysis::portable::pb::Analyses>,
        /// Digests of its traces for the judge.
        #[prost(message, repeated, tag = "4")]
        pub digests: Vec<crate::judge::sample::portable::pb::TraceDigest>,
    }

    /// How often one kind of warning occurred.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WarningCount {
        /// The kind, as reports name it (`duplicate_span`).
        #[prost(string, tag = "1")]
        pub kind: String,
        /// Occurrences.
        #[prost(uint64, tag = "2")]
        pub count: u64,
    }
}

/// The first bytes of a partials file: then length-delimited
/// [`pb::Partial`] messages, one after another.
pub const FILE_MAGIC: &[u8] = b"tracelens-partials\n";

/// A partials file holding `partials`.
pub fn encode_file(partials: &[pb::Partial]) -> Vec<u8> {
    use prost::Message as _;
    let mut out = FILE_MAGIC.to_vec();
    for p in partials {
        p.encode_length_delimited(&mut out).expect("a Vec grows to fit");
    }
    out
}

/// The partials of a partials file, checked for their format version.
pub fn decode_file(bytes: &[u8]) -> Result<Vec<pb::Partial>, PortableError> {
    use prost::Message as _;
    let mut rest = bytes.strip_prefix(FILE_MAGIC).ok_or_else(|| {
        PortableError::invalid("file", "does not start as a tracelens partials file (written by analyze --partial)")
    })?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let partial = pb::Partial::decode_length_delimited(&mut rest)
            .map_err(|e| PortableError::invalid(format!("partial {}", out.len() + 1), e.to_string()))?;
        check_version(&partial)?;
        out.push(partial);
    }
    Ok(out)
}

/// A partial this build can read.
pub fn check_version(partial: &pb::Partial) -> Result<(), PortableError> {
    if partial.format == 0 || partial.format > FORMAT_VERSION {
        return Err(PortableError::Version { found: partial.format, supported: FORMAT_VERSION });
    }
    Ok(())
}

/// Warning counts out, in report order.
pub fn warnings_out(warnings: &Warnings) -> Vec<pb::WarningCount> {
    warnings.iter().map(|(kind, count)| pb::WarningCount { kind: kind.as_str().to_string(), count }).collect()
}

/// Warning counts in, added to `into`.
pub fn warnings_in(message: &[pb::WarningCount], into: &mut Warnings) -> Result<(), PortableError> {
    for (i, w) in message.iter().enumerate() {
        let kind = WarningKind::ALL.iter().find(|k| k.as_str() == w.kind).ok_or_else(|| {
            PortableError::invalid(format!("warnings[{i}].kind"), format!("no warning kind {:?}", w.kind))
        })?;
        into.add_n(*kind, w.count);
    }
    Ok(())
}
