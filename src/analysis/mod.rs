//! Analyses over assembled traces. Each consumes [`crate::model::Trace`]s
//! through `add_trace` and produces a summary that merges exactly, so a
//! file, a time bucket or a whole run are the same type.

pub mod summary;

pub use summary::Summary;
