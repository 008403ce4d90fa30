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
use std::panic::AssertUnwindSafe;
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
/// returned after the chunks before it were handed over. A decoder's panic
/// on a worker is raised again on the calling thread, as if it had decoded
/// the chunk itself.
pub(crate) fn run(
    e: &mut Emitter<'_>,
    opts: &ReadOptions,
    fill: &mut dyn FnMut(&mut Chunk) -> Option<Tail>,
    decode: fn(&Chunk, &mut Emitter<'_>, bool) -> ChunkOutcome,
) -> Result<(ChunkOutcome, Tail), ReadErrorKind> {
    let settings = e.chunk_settings().expect("callers check that the emitter can hand chunks out");
    let strict = opts.strict;
    let decode_one = |job: Job| decode_chunk(job, &settings, decode, strict);
    let mut first = Chunk::default();
    let first_tail = fill(&mut first);
    // One thread, or an input of one chunk (no thread is worth starting):
    // every chunk is decoded here, in one buffer.
    if opts.threads <= 1 || first_tail.is_some() {
        let (mut total, mut chunk, mut tail) = (ChunkOutcome::default(), first, first_tail);
        loop {
            if !chunk.is_empty() {
                let mut done = decode_one(Job { n: 0, chunk, spans: Vec::new() });
                hand_over(e, &mut done, &mut total)?;
                chunk = done.chunk;
                chunk.bytes.clear();
                chunk.records.clear();
            }
            if let Some(tail) = tail {
                return Ok((total, tail));
            }
            tail = fill(&mut chunk);
        }
    }
    // The calling thread is one of the threads: it frames, hands over and
    // analyses, and decodes a waiting chunk itself rather than wait.
    let threads = opts.threads.min(MAX_THREADS);
    let in_flight = 2 * threads;
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(in_flight);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Decoded>();
        let workers: Vec<_> = (1..threads)
            .map(|_| {
                let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
                let decode_one = &decode_one;
                scope.spawn(move || {
                    loop {
                        let job = job_rx.lock().map_or(Err(mpsc::RecvError), |rx| rx.recv());
                        let Ok(job) = job else { break };
                        let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| decode_one(job)));
                        let panicked = decoded.is_err();
                        if done_tx.send(decoded).is_err() || panicked {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(done_tx);
        let outcome = hand_over_in_order(e, fill, first, &job_tx, &job_rx, &done_rx, in_flight, &decode_one);
        // Every worker is joined here, on every path, before the input's
        // outcome is returned: a closed job queue ends their loops, and
        // joining waits for the threads to have exited (thread-locals
        // released), not only for their loops to have ended.
        drop(job_tx);
        drop(done_rx);
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        match outcome {
            Ok(result) => result,
            Err(Lost::Panic(panic)) => std::panic::resume_unwind(panic),
            Err(Lost::Worker) => Err(worker_lost()),
        }
    })
}

/// A chunk decoded on a worker, or the panic its decoder raised.
type Decoded = std::thread::Result<Done>;

/// Why [`hand_over_in_order`] stopped before the input's end.
enum Lost {
    /// A decoder panicked on a worker.
    Panic(Box<dyn std::any::Any + Send>),
    /// Every worker stopped.
    Worker,
}

/// The calling thread's part of [`run`]: frames chunks onto the job queue
/// (at most `in_flight` waiting or being decoded), decodes a waiting one
/// itself when no decoded chunk is ready, and hands decoded chunks to `e`
/// in input order.
#[allow(clippy::too_many_arguments)]
fn hand_over_in_order(
    e: &mut Emitter<'_>,
    fill: &mut dyn FnMut(&mut Chunk) -> Option<Tail>,
    first: Chunk,
    job_tx: &mpsc::SyncSender<Job>,
    job_rx: &Mutex<mpsc::Receiver<Job>>,
    done_rx: &mpsc::Receiver<Decoded>,
    in_flight: usize,
    decode_one: &dyn Fn(Job) -> Done,
) -> Result<Result<(ChunkOutcome, Tail), ReadErrorKind>, Lost> {
    let mut total = ChunkOutcome::default();
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
            job_tx.send(job).map_err(|_| Lost::Worker)?;
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
            return Ok(Ok((total, tail.unwrap_or(Tail::End))));
        }
        while !pending.contains_key(&next) {
            let decoded = match done_rx.try_recv() {
                Ok(decoded) => decoded,
                Err(mpsc::TryRecvError::Disconnected) => return Err(Lost::Worker),
                Err(mpsc::TryRecvError::Empty) => {
                    // A worker waiting for work holds the lock: then
                    // there is none to take.
                    let waiting = job_rx.try_lock().ok().and_then(|rx| rx.try_recv().ok());
                    match waiting {
                        Some(job) => Ok(decode_one(job)),
                        None => done_rx.recv().map_err(|_| Lost::Worker)?,
                    }
                }
            };
            let done = decoded.map_err(Lost::Panic)?;
            pending.insert(done.n, done);
        }
        let mut done = pending.remove(&next).expect("waited for");
        next += 1;
        if let Err(err) = hand_over(e, &mut done, &mut total) {
            return Ok(Err(err));
        }
        done.chunk.bytes.clear();
        done.chunk.records.clear();
        free_chunks.push(done.chunk);
        free_spans.push(done.decoded.spans);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `fill` that puts each of `records` in a chunk of its own.
    fn one_record_chunks(records: Vec<&'static [u8]>) -> impl FnMut(&mut Chunk) -> Option<Tail> {
        let mut records = records.into_iter().enumerate();
        move |chunk| match records.next() {
            Some((i, record)) => {
                chunk.bytes.extend_from_slice(record);
                chunk.records.push((chunk.bytes.len(), i as u64, i as u64 + 1));
                None
            }
            None => Some(Tail::End),
        }
    }

    fn decode(chunk: &Chunk, _: &mut Emitter<'_>, _: bool) -> ChunkOutcome {
        let mut outcome = ChunkOutcome::default();
        for (bytes, offset, _) in chunk.iter() {
            match bytes {
                b"boom" => panic!("the decoder failed on boom"),
                b"stop" => {
                    outcome.fatal = Some(ReadErrorKind::AtByte { offset, message: "stop".into() });
                    break;
                }
                _ => outcome.good += 1,
            }
        }
        outcome
    }

    fn records(n: usize, at: usize, bad: &'static [u8]) -> Vec<&'static [u8]> {
        (0..n).map(|i| if i == at { bad } else { b"ok".as_slice() }).collect()
    }

    fn run_on(records: Vec<&'static [u8]>, threads: usize) -> Result<(ChunkOutcome, Tail), ReadErrorKind> {
        let (mut dict, mut warnings, mut spans) = (Dictionary::default(), Warnings::default(), Vec::new());
        let mut e = Emitter::collecting("test", &mut dict, &mut warnings, &mut spans);
        let opts = ReadOptions { threads, ..ReadOptions::default() };
        run(&mut e, &opts, &mut one_record_chunks(records), decode)
    }

    #[test]
    fn every_chunk_is_counted_once_for_any_thread_count() {
        for threads in [1, 2, 3, 8, 64] {
            let (outcome, tail) = run_on(records(50, usize::MAX, b""), threads).unwrap();
            assert_eq!(outcome.good, 50, "{threads} threads");
            assert!(matches!(tail, Tail::End));
        }
    }

    #[test]
    fn a_fatal_error_ends_the_input_after_the_chunks_before_it() {
        for threads in [1, 2, 3] {
            let err = run_on(records(40, 17, b"stop"), threads).err().expect("the 18th record stops the input");
            assert_eq!(err.to_string(), "byte offset 17: stop", "{threads} threads");
        }
    }

    #[test]
    fn a_decoders_panic_is_raised_on_the_calling_thread() {
        for threads in [1, 2, 3] {
            let outcome = std::panic::catch_unwind(|| run_on(records(40, 23, b"boom"), threads));
            let panic = outcome.err().expect("the decoder's panic comes through, not a hang or an error");
            assert_eq!(panic.downcast_ref::<&str>(), Some(&"the decoder failed on boom"), "{threads} threads");
        }
    }
}
