//! Errors from reading an input: always naming the input, and where in it
//! (line and column, or byte offset) what was expected was not found.

use std::io;

/// What went wrong, and where within the input.
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    /// The input could not be read.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Bad data at a byte offset (after decompression).
    #[error("byte offset {offset}: {message}")]
    AtByte {
        /// Offset of the bad record or field.
        offset: u64,
        /// What was expected.
        message: String,
    },
    /// Bad JSON at a line and column.
    #[error("line {line}, column {column}: {message}")]
    AtLine {
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What was expected.
        message: String,
    },
    /// The input as a whole is not something tracelens reads.
    #[error("{0}")]
    Unrecognized(String),
    /// The input is readable but holds no trace data in any format tracelens
    /// knows (a README, a config file, …).
    #[error("{0}")]
    NotTraces(String),
    /// A zstd frame inside a stream record that does not decompress.
    #[error("invalid zstd frame: {0}")]
    Zstd(#[source] io::Error),
    /// A record that decompresses past the size allowed.
    #[error("decompresses to more than {limit} bytes")]
    Inflated {
        /// The limit, bytes.
        limit: u64,
    },
    /// A Parquet file, read without a Parquet reader
    /// ([`super::ReadOptions::parquet`]).
    #[error("a Parquet file, and this reader was built without Parquet support (tracelens-table)")]
    ParquetUnsupported,
}

impl ReadErrorKind {
    pub(crate) fn at_byte(offset: u64, message: String) -> Self {
        ReadErrorKind::AtByte { offset, message }
    }
}

/// A read error naming its input.
#[derive(Debug, thiserror::Error)]
#[error("{input}: {kind}")]
pub struct ReadError {
    /// The input's name (a path, or `<stdin>`).
    pub input: String,
    /// What went wrong.
    pub kind: ReadErrorKind,
}
