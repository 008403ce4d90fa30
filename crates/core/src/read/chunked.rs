//! Decoding on several threads: a length-prefixed stream or JSON lines is
//! cut into chunks of whole records on the calling thread, each chunk is
//! decoded on a worker thread into a dictionary of its own, and the
//! decoded chunks are handed to the calling thread's emitter in input
//! order ([`Emitter::absorb`]). The spans, warnings, skipped records and
//! errors are those of decoding on one thread, in the same order; only
//! the time differs.
//!
//! The framing (reading lengths or finding line ends) stays on the calling
//! thread: it is a small part of the work and it is what decides where a
//! record begins. At most two chunks per thread (of at most
//! [`MAX_THREADS`]) are in flight, so memory is bounded by the chunk size,
//! not by the input.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::model::{Dictionary, Span, Warnings};

use super::emit::{ChunkSettings, DecodedChunk, Emitter};
use super::error::ReadErrorKind;
use super::{DEFAULT_CHUNK_BYTES, ReadOptions};

/// Whole records cut from an input, with where they came from.
#[derive(Default)]
pub(crate) struct Chunk {
    /// The records' bytes, back to back.
    pub(crate) bytes: Vec<u8>,
    /// Per record: its end in `bytes`, its byte offset in the input and
    /// its number (1-based). JSON lines use only the first record's
    /// number, the line number of the chunk's first line.
    pub(crate) records: Vec<(usize, u64, u64)>,
}

impl Chunk {
    /// Whether no record was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records: (bytes, offset, number).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], u64, u64)> {
        let mut start = 0;
        self.records.iter().map(move |&(end, offset, number)| {
            let bytes = &self.bytes[start..end];
            start = end;
            (bytes, offset, number)
        })
    }
}

/// What decoding one chunk found besides its spans.
#[derive(Default)]
pub(crate) struct ChunkOutcome {
    /// Records decoded.
    pub(crate) good: u64,
    /// Records skipped as bad.
    pub(crate) bad: u64,
    /// The first skipped record's error.
    pub(crate) first_error: Option<ReadErrorKind>,
    /// In strict mode, the error that ends the input (the records before
    /// it in the chunk were decoded).
    pub(crate) fatal: Option<ReadErrorKind>,
}

/// How the framing ended: the input's end, possibly with a last bad
/// record (counted like the others) or an error that ends the input.
pub(crate) enum Tail {
    /// The input ended cleanly.
    End,
    /// A last record was cut short: handed to the emitter as a bad record
    /// after every chunk (not strict), or as the error (strict).
    Bad(ReadErrorKind),
    /// The input cannot be read on past this point.
    Fatal(ReadErrorKind),
}

/// Threads decoding one input at most, whatever `--threads` says: with two
/// chunks in flight per thread, memory stays within about 16 chunks and
/// their spans (some 10 MiB each for rich spans), and the calling thread,
/// which hands every chunk over, is the limit long before.
const MAX_THREADS: usize = 8;

/// The chunk size in bytes `opts` ask for.
pub(crate) fn chunk_bytes(opts: &ReadOptions) -> usize {
    if opts.chunk_bytes == 0 { DEFAULT_CHUNK_BYTES } else { opts.chunk_bytes }
}

/// Whether `opts` ask for more than one decoding thread (with one,
/// [`run`] decodes on the calling thread).
pub(crate) fn wanted(opts: &ReadOptions) -> bool {
    opts.threads > 1
}

/// Cuts the input into chunks with `fill` (which adds records to a chunk
/// until it is full, returning the tail once the input ends), decodes each
/// with `decode` on `opts.threads` threads and hands them to `e` in order.
/// Returns the summed outcome and the tail; a chunk's fatal error is
/// returned after the chunks before it were handed over.
pub(crate) fn run(
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
    fill: &mut dyn FnMut(&mut Chunk) -> Option<Tail>,
    decode: fn(&Chunk, &mut Emitter<'_>, bool) -> ChunkOutcome,
) -> Result<(ChunkOutcome, Tail), ReadErrorKind> {
    let settings = e.chunk_settings().expect("callers check that the emitter can hand chunks out");
    let strict = opts.strict;
    let decode_one = |job: Job| decode_chunk(job, &settings, decode, strict);
    let mut total = ChunkOutcome::default();
    let mut first = Chunk::default();
    // An input of one chunk is decoded here: no thread is worth starting.
    if let Some(tail) = fill(&mut first) {
        if !first.is_empty() {
            let mut done = decode_one(Job { n: 0, chunk: first, spans: Vec::new() });
            hand_over(e, &mut done, &mut total)?;
        }
        return Ok((total, tail));
    }
    if opts.threads <= 1 {
        let mut chunk = first;
        loop {
            if !chunk.is_empty() {
                let mut done = decode_one(Job { n: 0, chunk, spans: Vec::new() });
                hand_over(e, &mut done, &mut total)?;
                chunk = done.chunk;
                chunk.bytes.clear();
                chunk.records.clear();
            }
            if let Some(tail) = fill(&mut chunk) {
                if !chunk.is_empty() {
                    let mut done = decode_one(Job { n: 0, chunk, spans: Vec::new() });
                    hand_over(e, &mut done, &mut total)?;
                }
                return Ok((total, tail));
            }
        }
    }
    // The calling thread is one of the threads: it frames, hands over and
    // analyses, and decodes a waiting chunk itself rather than wait.
    let threads = opts.threads.min(MAX_THREADS);
    let workers = threads - 1;
    let in_flight = 2 * threads;
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(in_flight);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        for _ in 0..workers {
            let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
            let decode_one = &decode_one;
            scope.spawn(move || {
                loop {
                    let job = job_rx.lock().map_or(Err(mpsc::RecvError), |rx| rx.recv());
                    let Ok(job) = job else { break };
                    if done_tx.send(decode_one(job)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Chunks and span vectors come back to be filled again: large
        // buffers are not allocated (and faulted in) for every chunk.
        let (mut free_chunks, mut free_spans): (Vec<Chunk>, Vec<Vec<Span>>) = (Vec::new(), Vec::new());
        let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
        let (mut sent, mut next) = (0u64, 0u64);
        let mut tail = None;
        let mut chunk = first;
        loop {
            if !chunk.is_empty() {
                let job = Job { n: sent, chunk, spans: free_spans.pop().unwrap_or_default() };
                if job_tx.send(job).is_err() {
                    return Err(worker_lost());
                }
                sent += 1;
            }
            chunk = free_chunks.pop().unwrap_or_default();
            if tail.is_none() && sent - next < in_flight as u64 {
                tail = fill(&mut chunk);
                continue;
            }
            free_chunks.push(chunk);
            chunk = Chunk::default();
            if next == sent {
                break;
            }
            while !pending.contains_key(&next) {
                let done = match done_rx.try_recv() {
                    Ok(done) => done,
                    Err(mpsc::TryRecvError::Disconnected) => return Err(worker_lost()),
                    Err(mpsc::TryRecvError::Empty) => {
                        // A worker waiting for work holds the lock: then
                        // there is none to take.
                        let waiting = job_rx.try_lock().ok().and_then(|rx| rx.try_recv().ok());
                        match waiting {
                            Some(job) => decode_one(job),
                            None => match done_rx.recv() {
                                Ok(done) => done,
                                Err(_) => return Err(worker_lost()),
                            },
                        }
                    }
                };
                pending.insert(done.n, done);
            }
            let mut done = pending.remove(&next).expect("waited for");
            next += 1;
            hand_over(e, &mut done, &mut total)?;
            done.chunk.bytes.clear();
            done.chunk.records.clear();
            free_chunks.push(done.chunk);
            free_spans.push(done.decoded.spans);
        }
        drop(job_tx);
        Ok((total, tail.unwrap_or(Tail::End)))
    })
}

/// A chunk to decode, with a vector to decode its spans into.
struct Job {
    n: u64,
    chunk: Chunk,
    spans: Vec<Span>,
}

/// A decoded chunk, with the chunk's buffers to fill again.
struct Done {
    n: u64,
    chunk: Chunk,
    decoded: DecodedChunk,
    outcome: ChunkOutcome,
}

fn worker_lost() -> ReadErrorKind {
    ReadErrorKind::Io(std::io::Error::other("a decoding thread stopped"))
}

fn decode_chunk(
    job: Job,
    settings: &ChunkSettings,
    decode: fn(&Chunk, &mut Emitter<'_>, bool) -> ChunkOutcome,
    strict: bool,
) -> Done {
    let Job { n, chunk, mut spans } = job;
    let mut dict = Dictionary::default();
    let mut warnings = Warnings::default();
    let mut e = Emitter::for_chunk(settings, &mut dict, &mut warnings, &mut spans);
    let outcome = decode(&chunk, &mut e, strict);
    let (bad_records, dialect, not_traces) = e.finish_chunk();
    Done { n, chunk, decoded: DecodedChunk { spans, dict, warnings, bad_records, dialect, not_traces }, outcome }
}

fn hand_over(e: &mut Emitter<'_>, done: &mut Done, total: &mut ChunkOutcome) -> Result<(), ReadErrorKind> {
    e.absorb(&mut done.decoded);
    let outcome = std::mem::take(&mut done.outcome);
    total.good += outcome.good;
    total.bad += outcome.bad;
    if total.first_error.is_none() {
        total.first_error = outcome.first_error;
    }
    match outcome.fatal {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
