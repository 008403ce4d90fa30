//! [`Trace`]: the spans of one trace id after assembly, with each span's
//! parent resolved to an index.

use super::{Span, TraceId};

/// Marks "no parent in this trace" in [`Trace::parents`].
pub const NO_PARENT: u32 = u32::MAX;

/// An assembled trace. Span ids are unique, parent links form a forest
/// (cycles were cut), and `parents[i]` is the index of span `i`'s parent or
/// [`NO_PARENT`] for roots and orphans.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The trace id.
    pub trace_id: TraceId,
    /// The spans, in the order they were read.
    pub spans: Vec<Span>,
    /// Parent index per span.
    pub parents: Vec<u32>,
}

impl Trace {
    /// Indices of spans without a parent in this trace (roots and orphans).
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        self.parents.iter().enumerate().filter(|(_, p)| **p == NO_PARENT).map(|(i, _)| i)
    }

    /// The parent of span `i`, if it is in this trace.
    pub fn parent(&self, i: usize) -> Option<usize> {
        let p = self.parents[i];
        (p != NO_PARENT).then_some(p as usize)
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the trace has no spans.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}
