//! Every stored span of one trace: the log's segments present now (the one
//! being written included) and the compacted files that may hold it, so a
//! trace is readable from its acknowledgement on — while still open, after
//! a crash before it was restored, during and after compaction.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::compact::{self, CompactError};
use super::trace_index::TraceIndex;
use super::wal::{self, WalError};
use crate::ingest::{BodyEncoding, accept_bytes};
use tracelens_core::model::{Dictionary, Span, TraceId, Warnings};

/// The data directory trace look-ups read, with the index of which
/// compacted files may hold a trace.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The data directory.
    pub dir: PathBuf,
    /// Filled by compaction and the restore.
    pub index: Arc<RwLock<TraceIndex>>,
}

/// Why the stored spans of a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The log's segments could not be read.
    #[error(transparent)]
    Log(#[from] WalError),
    /// A compacted file could not be read.
    #[error(transparent)]
    Compacted(#[from] CompactError),
}

impl Stored {
    /// The spans of `trace_id` kept in the data directory, names interned
    /// in `dict`, each once: a span compacted while the log was read, or
    /// logged twice (a sender's retry of a request that had succeeded), is
    /// one span.
    pub fn trace_spans(&self, trace_id: &TraceId, dict: &mut Dictionary) -> Result<Vec<Span>, LookupError> {
        // The log first: a segment compacted meanwhile is in a compacted
        // file by the time the files are listed.
        let mut spans = logged_spans(&self.dir, trace_id, dict)?;
        let may_hold = |file: &Path| self.index.read().expect("index lock").may_hold(file, trace_id);
        spans.extend(compact::find_trace(&self.dir, trace_id, dict, &may_hold, &mut |file, e| {
            self.unreadable(file, &e)
        }));
        let mut seen = rustc_hash::FxHashSet::default();
        spans.retain(|s| seen.insert((s.span_id, s.parent_id, s.start_ns, s.end_ns, s.kind as u8)));
        Ok(spans)
    }
}

impl Stored {
    /// Lists a compacted file found unreadable (in the log, the first time),
    /// so that queries leave it out and `/readyz` names it.
    pub fn unreadable(&self, file: &Path, error: &CompactError) {
        if self.index.write().expect("index lock").mark_unreadable(file.to_owned(), error.to_string()) {
            eprintln!("tracelens: error: {error}; this compacted file is left out of trace look-ups and searches");
        }
    }

    /// The files found unreadable, in words, if any.
    pub fn describe_unreadable(&self) -> Option<String> {
        let index = self.index.read().expect("index lock");
        let files: Vec<String> = index.unreadable().map(|(_, why)| why.to_string()).collect();
        (!files.is_empty()).then(|| {
            format!(
                "{} compacted file(s) cannot be read and are left out of trace look-ups and searches: {}",
                files.len(),
                files.join("; ")
            )
        })
    }
}

/// The spans of `trace_id` in the log's segments present now: only records
/// that mention the id (its bytes, or its hex or base64 text) are decoded.
fn logged_spans(dir: &Path, trace_id: &TraceId, dict: &mut Dictionary) -> Result<Vec<Span>, WalError> {
    use base64::Engine as _;
    let raw = trace_id.0;
    let hex = trace_id.to_hex();
    let texts = [hex.clone(), hex.to_uppercase(), base64::engine::general_purpose::STANDARD.encode(raw)];
    let raw_finder = memchr::memmem::Finder::new(&raw);
    let text_finders: Vec<memchr::memmem::Finder<'_>> =
        texts.iter().map(|t| memchr::memmem::Finder::new(t.as_bytes())).collect();
    let mut warnings = Warnings::default();
    let mut spans = Vec::new();
    wal::scan(dir, &mut |record| {
        let Some((&tag, body)) = record.split_first() else { return };
        let Some((encoding, ids)) = BodyEncoding::from_wal_tag(tag) else { return };
        let mentioned = match encoding {
            BodyEncoding::Protobuf => raw_finder.find(body).is_some(),
            BodyEncoding::Json => text_finders.iter().any(|f| f.find(body).is_some()),
        };
        if !mentioned {
            return;
        }
        // The record was accepted when it was logged; one that no longer
        // decodes was reported when the log was opened.
        if let Ok(accepted) = accept_bytes(body, encoding, ids, dict, &mut warnings) {
            spans.extend(accepted.spans.into_iter().filter(|s| s.trace_id == *trace_id));
        }
    })?;
    Ok(spans)
}
