//! Write-ahead log: every accepted OTLP request is appended here, and made
//! durable, before it is acknowledged; after a crash the log is replayed so
//! no acknowledged span is lost.
//!
//! Layout: a directory of segment files `wal-<20-digit sequence>.wal`, each
//! a run of records `[u32 BE payload length][u32 BE CRC-32][u64 BE segment
//! tag][payload]`. The tag is derived from the segment's sequence and the
//! CRC covers tag and payload, so a record belongs to one segment: bytes
//! left in a reused file by its earlier life never read as records. A
//! segment is closed, when the next record would grow it past
//! [`WalConfig::segment_bytes`], by a closing mark (a header with no
//! payload) and a sync; then the next one starts. Segments of the first
//! format (`wal-<sequence>.log`, 8-byte headers without a tag, never reused)
//! are still read, and compacted away like the others.
//!
//! Preallocation ([`WalConfig::preallocate`], on in the receiver): the next
//! segment is a file whose blocks are already allocated and written, so a
//! sync flushes data without journalling a new file length or extent, which
//! costs about half the CPU and wall time of a sync that extends the file.
//! A background thread readies
//! it (`wal-next.ready`) from a segment compaction has finished with
//! (`wal-<sequence>.free`, as many kept as a compaction run retired,
//! see [`free_segments_to_keep`]) or, when there is none, by writing a file full of
//! zeros and syncing it; rotation renames it into place. The records of a
//! segment end at its closing mark, at the end of the file, or at the first
//! header without the segment's tag (zeros, or an earlier life's bytes).
//!
//! Fsync policy ([`SyncPolicy::EveryAppend`], the default): `append` returns
//! only after the record and the file length are on disk (`fdatasync`), so a
//! request acknowledged after `append` survives `kill -9` and power loss. A
//! new segment's directory entry is synced when the segment is created.
//! Group commit: `append_unsynced` several records, then one `sync` (or a
//! [`SyncHandle`] taken after them, synced while appends go on), then
//! acknowledge them all.
//!
//! Recovery: in the newest segment, a record cut short by the end of the
//! file, or a record of the segment failing its checksum with no record of
//! the segment after it, is a torn write from a crash (an unsynced write can
//! reach the disk partly, in any page order); [`Wal::open`] truncates it and
//! reports it, and marks the newest segment closed where its records end.
//! Any other bad record (an impossible length, a checksum failure with a
//! record of the segment after it, anything in an older segment, an older segment
//! whose records end before its closing mark) is corruption: reading that
//! segment stops there, the rest of the log is still read, and it is
//! reported — never silently skipped, never truncated.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Largest record payload accepted (the receiver's request limit is lower).
pub const MAX_RECORD_BYTES: u32 = 1 << 30;
/// Header of a record: length, checksum, segment tag.
const HEADER_BYTES: u64 = 16;
/// Header of a record in a first-format (`.log`) segment: length, checksum.
const V1_HEADER_BYTES: u64 = 8;
/// Mixed into a segment's sequence to make its tag ("tracelen"): never zero
/// for a real sequence, so zero-filled bytes never carry one.
const TAG_BASE: u64 = u64::from_be_bytes(*b"tracelen");
/// Compacted segments kept for reuse as the next segment, at least (at
/// the default size, 512 MiB the log used anyway before compaction); more
/// when a compaction run retired more (see [`free_segments_to_keep`]).
pub const FREE_SEGMENTS_KEPT: usize = 8;
/// Bytes of compacted segments kept for reuse, at most, beyond the
/// [`FREE_SEGMENTS_KEPT`] always kept (64 segments at the default size).
pub const FREE_BYTES_MAX: u64 = 4 << 30;

/// How many compacted segments of `segment_bytes` to keep for reuse after a
/// compaction run over `compacted` segments: as many as the log went
/// through since the previous run, so that the segments of the next
/// interval are all reused ones. With `serve`'s 30 s compaction interval a
/// busy receiver closes ~30 segments per run; keeping fewer has the
/// preparer zero-fill the rest (CPU per span, and those segments written
/// twice). At least [`FREE_SEGMENTS_KEPT`], at most
/// [`FREE_BYTES_MAX`] of them.
pub fn free_segments_to_keep(compacted: usize, segment_bytes: u64) -> usize {
    let most = usize::try_from(FREE_BYTES_MAX / segment_bytes.max(1)).unwrap_or(usize::MAX);
    compacted.min(most).max(FREE_SEGMENTS_KEPT)
}

/// The tag every record of segment `sequence` carries.
fn segment_tag(sequence: u64) -> [u8; 8] {
    (sequence ^ TAG_BASE).to_be_bytes()
}

/// The header without a payload that closes segment `sequence`.
fn closing_mark(sequence: u64) -> [u8; HEADER_BYTES as usize] {
    let tag = segment_tag(sequence);
    record_header(tag, 0, crc32fast::hash(&tag))
}

/// A record header: `len`, the CRC of tag and payload, the tag.
fn record_header(tag: [u8; 8], len: u32, crc: u32) -> [u8; HEADER_BYTES as usize] {
    let mut header = [0u8; HEADER_BYTES as usize];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4..8].copy_from_slice(&crc.to_be_bytes());
    header[8..].copy_from_slice(&tag);
    header
}

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after every append, before it returns (durable acks).
    EveryAppend,
    /// Leave it to the OS (tests and benchmarks only: a crash loses data).
    Never,
}

/// Log settings.
#[derive(Clone, Debug)]
pub struct WalConfig {
    /// Directory holding the segments (created if missing).
    pub dir: PathBuf,
    /// Size at which a segment is closed.
    pub segment_bytes: u64,
    /// Fsync policy.
    pub sync: SyncPolicy,
    /// Start segments from files whose blocks are already written: reused
    /// compacted segments, or zero-filled ones (see the module docs).
    pub preallocate: bool,
}

impl WalConfig {
    /// Defaults: 64 MiB segments, fsync on every append, no preallocation.
    pub fn new(dir: impl Into<PathBuf>) -> WalConfig {
        WalConfig { dir: dir.into(), segment_bytes: 64 << 20, sync: SyncPolicy::EveryAppend, preallocate: false }
    }
}

/// Errors from the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A payload over [`MAX_RECORD_BYTES`].
    #[error("record of {0} bytes is over the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
    /// A bad record in a closed segment.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// An empty payload (its header would read as the end of the records).
    #[error("empty record")]
    Empty,
    /// A sync of the segment failed earlier: what was written to it since
    /// its last good sync is in doubt.
    #[error("{path}: an earlier sync of this log segment failed, so what was written to it since is in doubt")]
    SyncFailed {
        /// The segment.
        path: PathBuf,
    },
    /// The directory holds data this build cannot read.
    #[error(
        "{path}: {found}; this build reads data format {DATA_FORMAT} and earlier. Use the build that wrote it (or a newer one), or another data directory"
    )]
    Format {
        /// The directory's format file.
        path: PathBuf,
        /// What the file says.
        found: String,
    },
}

/// The format of the data directory this build writes, recorded in its
/// [`FORMAT_FILE`] so that a build that cannot read it refuses it instead of
/// leaving records out: 3 since OTLP/JSON requests are logged with tag 2
/// (their ids read exactly as OTLP writes them, see `ingest::IdRule`); 2
/// since records carry their segment's tag (`.wal` segments); 1 was the
/// first log format (`.log`). All are still read.
pub const DATA_FORMAT: u32 = 3;
/// The file under the data directory that names its format.
pub const FORMAT_FILE: &str = "FORMAT";

/// Refuses `dir` if it was written in a newer format than [`DATA_FORMAT`],
/// else records that format (written to a temporary name, synced, renamed).
pub fn claim_format(dir: &Path) -> Result<(), WalError> {
    let path = dir.join(FORMAT_FILE);
    let line = format!("tracelens data format {DATA_FORMAT}\n");
    match fs::read_to_string(&path) {
        Ok(text) if text == line => return Ok(()),
        Ok(text) => {
            let found = text.trim().strip_prefix("tracelens data format ").and_then(|v| v.parse::<u32>().ok());
            match found {
                Some(format) if format <= DATA_FORMAT => {}
                Some(format) => return Err(WalError::Format { path, found: format!("data format {format}") }),
                None => {
                    let found = format!("not a tracelens format line: {:?}", text.chars().take(60).collect::<String>());
                    return Err(WalError::Format { path, found });
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(WalError::Io { path, source: e }),
    }
    let temp = dir.join(format!(".{FORMAT_FILE}.tmp"));
    let mut file = File::create(&temp).map_err(io_err(&temp))?;
    file.write_all(line.as_bytes()).and_then(|()| file.sync_all()).map_err(io_err(&temp))?;
    fs::rename(&temp, &path).map_err(io_err(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_path_buf(), source }
}

/// A bad record found while reading the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset of the bad record.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

/// What reading the log found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Good records read.
    pub records: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// A torn last record (dropped by [`Wal::open`]).
    pub torn: Option<Damage>,
    /// Bad records before the end: corruption, reported, not skipped over.
    pub corrupt: Vec<Damage>,
    /// Where the newest segment's records end when its file goes on past
    /// them without a closing mark (a prepared or reused file; the normal
    /// state after a stop): [`Wal::open`] writes the mark there.
    pub open_end: Option<OpenEnd>,
}

/// The end of the records of a newest segment left without its closing mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenEnd {
    /// The segment's sequence.
    pub sequence: u64,
    /// The segment file.
    pub segment: PathBuf,
    /// Where its records end.
    pub offset: u64,
}

/// The write-ahead log, open for appending.
#[derive(Debug)]
pub struct Wal {
    config: WalConfig,
    file: Arc<File>,
    path: Arc<Path>,
    sequence: u64,
    len: u64,
    /// Records appended to this segment.
    records: u64,
    /// A sync of this segment failed (see [`SyncHandle::sync`]).
    failed: Arc<AtomicBool>,
    preparer: Option<Preparer>,
}

/// The segment being appended to, for syncing it outside the log's lock
/// ([`Wal::sync_handle`]).
#[derive(Debug)]
pub struct SyncHandle {
    file: Arc<File>,
    path: Arc<Path>,
    failed: Arc<AtomicBool>,
    sync: bool,
}

impl SyncHandle {
    /// Makes every record appended before the handle was taken durable (per
    /// the sync policy). Once a sync of the segment failed, every later one
    /// fails too: a kernel whose writeback failed may have dropped the
    /// pages and does not report it again, so a later success would not
    /// mean the records are on disk.
    pub fn sync(&self) -> Result<(), WalError> {
        if !self.sync {
            return Ok(());
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(WalError::SyncFailed { path: self.path.to_path_buf() });
        }
        self.file.sync_data().map_err(|e| {
            self.failed.store(true, Ordering::Release);
            WalError::Io { path: self.path.to_path_buf(), source: e }
        })
    }
}

fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("wal-{sequence:020}.wal"))
}

/// The next segment (a reused one, or zero-filled and synced), ready to be
/// renamed into place.
const READY: &str = "wal-next.ready";
/// The next segment while it is being zero-filled.
const PREPARING: &str = "wal-next.prep";

/// The background thread that readies the next segment.
#[derive(Debug)]
struct Preparer {
    /// Asks for the next segment; dropped to end the thread.
    wake: Option<std::sync::mpsc::Sender<()>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Preparer {
    fn start(config: &WalConfig) -> Result<Preparer, WalError> {
        let (wake, rx) = std::sync::mpsc::channel::<()>();
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, bytes, flag) = (config.dir.clone(), config.segment_bytes, stop.clone());
        let thread = std::thread::Builder::new()
            .name("tracelens-prep".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    if let Err(e) = prepare_segment(&dir, bytes, &flag) {
                        // Rotation then starts an empty file: slower syncs, same data.
                        eprintln!("tracelens: warning: preparing the next log segment: {e}");
                    }
                }
            })
            .map_err(io_err(&config.dir))?;
        let _ = wake.send(());
        Ok(Preparer { wake: Some(wake), stop, thread: Some(thread) })
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Readies the next segment's file, unless one is ready already: a free
/// (compacted) segment of `bytes` bytes renamed, or else `bytes` zeros
/// written and synced; stops early (leaving no ready file) when `stop` is
/// set. Free segments of another size are deleted.
fn prepare_segment(dir: &Path, bytes: u64, stop: &AtomicBool) -> Result<(), WalError> {
    let ready = dir.join(READY);
    if ready.exists() {
        return Ok(());
    }
    for (_, free) in free_segments(dir)? {
        if fs::metadata(&free).is_ok_and(|m| m.len() == bytes) {
            // Its blocks are allocated and written, and compaction has just
            // read them into the page cache. The rename needs no sync of
            // its own: the one renaming it into place syncs the directory.
            return fs::rename(&free, &ready).map_err(io_err(&free));
        }
        let _ = fs::remove_file(&free);
    }
    let temp = dir.join(PREPARING);
    let fill = || -> io::Result<bool> {
        let mut file = File::create(&temp)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        Ok(true)
    };
    match fill() {
        Ok(true) => {}
        done => {
            // Stopped, or failed (a full disk): no half-made file stays.
            let _ = fs::remove_file(&temp);
            return done.map(|_| ()).map_err(io_err(&temp));
        }
    }
    fs::rename(&temp, &ready).map_err(io_err(&ready))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// Files in `dir` named `wal-<sequence>.<extension>`, by sequence.
fn files_named(dir: &Path, extensions: &[&str]) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let sequence = name.strip_prefix("wal-").and_then(|n| {
            let (seq, ext) = n.split_once('.')?;
            if extensions.contains(&ext) { seq.parse().ok() } else { None }
        });
        if let Some(seq) = sequence {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Segments in the directory (both formats), by sequence.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    files_named(dir, &["wal", "log"])
}

/// Compacted segments waiting to be reused, oldest first.
fn free_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    files_named(dir, &["free"])
}

/// Whether `path` is a segment of the first format (8-byte headers).
fn is_first_format(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "log")
}

/// Ends a closed segment compaction has finished with: kept for reuse as
/// the next segment (renamed `wal-<sequence>.free`) when it is of the
/// current format and fewer than `keep` are kept (0 when the log does not
/// preallocate); deleted otherwise. Its records never read again: the
/// segment that reuses it has another tag.
pub fn retire_segment(dir: &Path, path: &Path, keep: usize) -> Result<(), WalError> {
    if !is_first_format(path) && free_segments(dir)?.len() < keep {
        let free = path.with_extension("free");
        return fs::rename(path, &free).map_err(io_err(path));
    }
    fs::remove_file(path).map_err(io_err(path))
}

/// Deletes the oldest kept segments beyond `keep` (after a quieter
/// compaction run than the last: the pool follows what the log needs). One
/// the preparer took meanwhile is not an error.
pub fn trim_free_segments(dir: &Path, keep: usize) -> Result<(), WalError> {
    let free = free_segments(dir)?;
    for (_, path) in &free[..free.len().saturating_sub(keep)] {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(path)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// A bad record: where, why, and whether a crash mid-append explains it
/// (cut short at the end of the file, or the file's last record failing its
/// checksum).
struct Bad {
    offset: u64,
    reason: String,
    crash_shaped: bool,
}

/// What reading one segment found.
struct SegmentRead {
    records: u64,
    bytes: u64,
    /// Where the good records end.
    end: u64,
    /// Whether they end at a closing mark or the end of the file (else at a
    /// header without the segment's tag: the unused rest of a prepared or
    /// reused file).
    closed: bool,
    bad: Option<Bad>,
}

/// Whether everything from the reader's position to the end of the file
/// is zero (a preallocated segment's unused tail).
fn zeros_to_end(r: &mut impl Read) -> io::Result<bool> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Ok(true);
        }
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Which of the two segment layouts a segment's bytes are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFormat {
    /// `wal-<sequence>.wal`: 16-byte headers carrying the segment's tag.
    Tagged,
    /// `wal-<sequence>.log`: 8-byte headers without a tag.
    First,
}

/// What reading a segment held in memory found (see [`read_segment_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Good records passed on.
    pub records: u64,
    /// Where the good records end.
    pub end: u64,
    /// Whether they end at a closing mark or the end of the bytes (else at
    /// a header without the segment's tag).
    pub closed: bool,
    /// The first bad record: where, why, and whether a crash mid-append
    /// explains it.
    pub bad: Option<(u64, String, bool)>,
}

/// Reads the records of segment `sequence` from `bytes`, passing each good
/// one to `f`: the reader the log uses on its files, over memory (for the
/// fuzz target and tests).
pub fn read_segment_bytes(
    sequence: u64,
    format: SegmentFormat,
    bytes: &[u8],
    f: &mut dyn FnMut(&[u8]),
) -> SegmentSummary {
    let size = bytes.len() as u64;
    let mut r = bytes;
    let read = match format {
        SegmentFormat::First => read_first_format(&mut r, size, f),
        SegmentFormat::Tagged => read_tagged(&mut r, size, segment_tag(sequence), f),
    };
    // Reading a slice of the size given fails only if the reader asks past
    // its end: reported as a bad record, not a panic.
    let read = read.unwrap_or_else(|e| SegmentRead {
        records: 0,
        bytes: 0,
        end: 0,
        closed: false,
        bad: Some(Bad { offset: 0, reason: e.to_string(), crash_shaped: false }),
    });
    SegmentSummary {
        records: read.records,
        end: read.end,
        closed: read.closed,
        bad: read.bad.map(|b| (b.offset, b.reason, b.crash_shaped)),
    }
}

/// Appends one record of segment `sequence` (tagged format) to `out`, as
/// [`Wal::append`] writes it; an empty payload is the closing mark.
pub fn encode_record(sequence: u64, payload: &[u8], out: &mut Vec<u8>) {
    let tag = segment_tag(sequence);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&tag);
    crc.update(payload);
    out.extend_from_slice(&record_header(tag, payload.len() as u32, crc.finalize()));
    out.extend_from_slice(payload);
}

/// Reads one segment of either format, passing each good record to `f`.
fn read_segment(sequence: u64, path: &Path, f: &mut dyn FnMut(&[u8])) -> Result<SegmentRead, WalError> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let read = if is_first_format(path) {
        read_first_format(&mut r, size, f)
    } else {
        read_tagged(&mut r, size, segment_tag(sequence), f)
    };
    read.map_err(io_err(path))
}

/// Reads the records of a segment of the current format.
fn read_tagged(r: &mut impl Read, size: u64, tag: [u8; 8], f: &mut dyn FnMut(&[u8])) -> io::Result<SegmentRead> {
    let mut read = SegmentRead { records: 0, bytes: 0, end: 0, closed: false, bad: None };
    let mut payload = Vec::new();
    let mut header = [0u8; HEADER_BYTES as usize];
    let stop = |read: &mut SegmentRead, reason: String, crash_shaped| {
        read.bad = Some(Bad { offset: read.end, reason, crash_shaped });
    };
    loop {
        let offset = read.end;
        if offset == size {
            read.closed = true;
            return Ok(read);
        }
        if size - offset < HEADER_BYTES {
            // Closing marks always fit: only an unfinished write ends here.
            stop(&mut read, "record header cut short".to_string(), true);
            return Ok(read);
        }
        r.read_exact(&mut header)?;
        if header[8..] != tag {
            // Zeros, or what the file held in an earlier life.
            return Ok(read);
        }
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes"));
        if len > MAX_RECORD_BYTES {
            stop(&mut read, format!("record length {len} is impossible"), false);
            return Ok(read);
        }
        let end = offset + HEADER_BYTES + len as u64;
        if end > size {
            stop(&mut read, format!("record of {len} bytes cut short"), true);
            return Ok(read);
        }
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&tag);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            // A crash can tear only the last record written: torn if no
            // record of this segment follows.
            let followed = size - end >= HEADER_BYTES && {
                r.read_exact(&mut header)?;
                header[8..] == tag
            };
            let reason = if len == 0 { "bad closing mark" } else { "checksum mismatch" };
            stop(&mut read, reason.to_string(), !followed);
            return Ok(read);
        }
        if len == 0 {
            read.closed = true;
            return Ok(read);
        }
        f(&payload);
        read.end = end;
        read.records += 1;
        read.bytes += len as u64;
    }
}

/// Reads the records of a first-format segment: 8-byte headers without a
/// tag, ending at the end of the file or, in a zero-filled file, at the
/// first all-zero header (only zeros may follow).
fn read_first_format(r: &mut impl Read, size: u64, f: &mut dyn FnMut(&[u8])) -> io::Result<SegmentRead> {
    let (mut offset, mut records, mut bytes) = (0u64, 0u64, 0u64);
    let mut payload = Vec::new();
    let done = |offset, records, bytes, bad: Option<(String, bool)>| SegmentRead {
        records,
        bytes,
        end: offset,
        closed: bad.is_none(),
        bad: bad.map(|(reason, crash_shaped)| Bad { offset, reason, crash_shaped }),
    };
    loop {
        if offset == size {
            return Ok(done(offset, records, bytes, None));
        }
        let mut header = [0u8; V1_HEADER_BYTES as usize];
        if size - offset < V1_HEADER_BYTES {
            // A preallocated segment closes with fewer zeros left than a
            // header takes when the next record did not fit.
            if zeros_to_end(r)? {
                return Ok(done(offset, records, bytes, None));
            }
            return Ok(done(offset, records, bytes, Some(("record header cut short".to_string(), true))));
        }
        r.read_exact(&mut header)?;
        if header == [0; V1_HEADER_BYTES as usize] {
            // The end of the records in a preallocated segment.
            if zeros_to_end(r)? {
                return Ok(done(offset, records, bytes, None));
            }
            return Ok(done(offset, records, bytes, Some(("data after the end of the records".to_string(), true))));
        }
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_RECORD_BYTES {
            return Ok(done(offset, records, bytes, Some((format!("record length {len} is impossible"), false))));
        }
        let end = offset + V1_HEADER_BYTES + len as u64;
        if end > size {
            return Ok(done(offset, records, bytes, Some((format!("record of {len} bytes cut short"), true))));
        }
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != crc {
            let last = end == size || zeros_to_end(r)?;
            return Ok(done(offset, records, bytes, Some(("checksum mismatch".to_string(), last))));
        }
        f(&payload);
        offset = end;
        records += 1;
        bytes += len as u64;
    }
}

/// Closed segments of the log at `dir` (every one but the newest), oldest
/// first, as (sequence, path).
pub fn closed_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut all = segments(dir)?;
    all.pop();
    Ok(all)
}

/// Reads the good records of closed segment `sequence` in order; the error
/// names the first bad record, if any (after the good ones before it were
/// read), or where the records end before the segment's closing mark.
pub fn read_closed_segment(sequence: u64, path: &Path, f: &mut dyn FnMut(&[u8])) -> Result<u64, WalError> {
    let read = read_segment(sequence, path, f)?;
    match (read.bad, read.closed) {
        (None, true) => Ok(read.records),
        (Some(bad), _) => Err(WalError::Corrupt(format!("{} at byte {}: {}", path.display(), bad.offset, bad.reason))),
        (None, false) => Err(WalError::Corrupt(format!("{} at byte {}: {UNCLOSED}", path.display(), read.end))),
    }
}

/// Reads the good records of every segment present now, oldest first, the
/// one being written included, for look-ups while the log is in use: a
/// segment compacted and retired while the scan runs is passed over (its
/// records are in a compacted file by then), and a segment's reading stops
/// at its first bad record (in the newest one, a write in progress).
pub fn scan(dir: &Path, f: &mut dyn FnMut(&[u8])) -> Result<u64, WalError> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut records = 0;
    for (sequence, path) in segments(dir)? {
        match read_segment(sequence, &path, f) {
            Ok(read) => records += read.records,
            Err(WalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(records)
}

/// How an older segment whose records end early is reported.
const UNCLOSED: &str = "the records end before the segment's closing mark";

/// Reads every good record of the log at `dir` in order, without changing
/// anything. A bad record at the very end of the last segment is reported as
/// torn; any other bad record as corruption.
pub fn replay(dir: &Path, f: &mut dyn FnMut(&[u8])) -> Result<ReplayReport, WalError> {
    let mut report = ReplayReport::default();
    if !dir.exists() {
        return Ok(report);
    }
    let all = segments(dir)?;
    for (i, (sequence, path)) in all.iter().enumerate() {
        let read = read_segment(*sequence, path, f)?;
        report.records += read.records;
        report.bytes += read.bytes;
        // Only the newest segment can end in a write a crash interrupted,
        // or be left without its closing mark.
        let newest = i + 1 == all.len();
        if let Some(bad) = read.bad {
            let damage = Damage { segment: path.clone(), offset: bad.offset, reason: bad.reason };
            if bad.crash_shaped && newest {
                report.torn = Some(damage);
            } else {
                report.corrupt.push(damage);
            }
        } else if !read.closed {
            if newest {
                report.open_end = Some(OpenEnd { sequence: *sequence, segment: path.clone(), offset: read.end });
            } else {
                let reason = UNCLOSED.to_string();
                report.corrupt.push(Damage { segment: path.clone(), offset: read.end, reason });
            }
        }
    }
    Ok(report)
}

impl Wal {
    /// Opens the log for appending (creating the directory), after cutting a
    /// torn last record off. Replay first with [`replay`] to recover data.
    pub fn open(config: WalConfig) -> Result<(Wal, ReplayReport), WalError> {
        fs::create_dir_all(&config.dir).map_err(io_err(&config.dir))?;
        claim_format(&config.dir)?;
        let report = replay(&config.dir, &mut |_| {})?;
        if let Some(torn) = &report.torn {
            let file = OpenOptions::new().write(true).open(&torn.segment).map_err(io_err(&torn.segment))?;
            file.set_len(torn.offset).map_err(io_err(&torn.segment))?;
            file.sync_all().map_err(io_err(&torn.segment))?;
        }
        if let Some(end) = &report.open_end {
            // Closed from now on, it must end at its mark like the others.
            let mark = closing_mark(end.sequence);
            let file = OpenOptions::new().write(true).open(&end.segment).map_err(io_err(&end.segment))?;
            file.write_all_at(&mark, end.offset).and_then(|()| file.sync_data()).map_err(io_err(&end.segment))?;
        }
        let newest = segments(&config.dir)?.last().map(|(seq, _)| *seq);
        let next = newest.map_or(0, |seq| seq + 1);
        let _ = fs::remove_file(config.dir.join(PREPARING)); // from a run that stopped mid-way
        let ready = config.dir.join(READY);
        let fits = fs::metadata(&ready).is_ok_and(|m| m.len() == config.segment_bytes);
        // A reused file's records carry the tag of its earlier sequence, which
        // is below the newest segment's: with no segment left (an emptied
        // directory) the numbering starts again and could meet it.
        if !config.preallocate || !fits || newest.is_none() {
            // A file an earlier run prepared is not used when preallocation
            // is off or the segment size changed; nor left behind.
            let _ = fs::remove_file(&ready);
        }
        for (seq, free) in free_segments(&config.dir)? {
            if !config.preallocate || seq >= next {
                let _ = fs::remove_file(free);
            }
        }
        let (file, path) = Wal::create_segment(&config, next)?;
        let preparer = if config.preallocate { Some(Preparer::start(&config)?) } else { None };
        let failed = Arc::default();
        Ok((Wal { config, file, path, sequence: next, len: 0, records: 0, failed, preparer }, report))
    }

    /// Starts segment `sequence`: the prepared file when there is one (and
    /// the next is asked for), else a new empty file.
    fn create_segment(config: &WalConfig, sequence: u64) -> Result<(Arc<File>, Arc<Path>), WalError> {
        let path = segment_path(&config.dir, sequence);
        let ready = config.dir.join(READY);
        let file = if config.preallocate && fs::rename(&ready, &path).is_ok() {
            OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?
        } else {
            OpenOptions::new().create_new(true).write(true).open(&path).map_err(io_err(&path))?
        };
        if config.sync == SyncPolicy::EveryAppend {
            // The new directory entry must survive a crash too.
            File::open(&config.dir).and_then(|d| d.sync_all()).map_err(io_err(&config.dir))?;
        }
        Ok((Arc::new(file), path.into()))
    }

    /// Appends one record; with [`SyncPolicy::EveryAppend`] it is on disk
    /// when this returns.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.append_unsynced(payload)?;
        self.sync()
    }

    /// Appends one record without waiting for the disk: for group commit,
    /// where several appends share one [`Self::sync`] before any of them is
    /// acknowledged. A segment closed on the way is synced before the next
    /// one starts.
    pub fn append_unsynced(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.append_parts_unsynced(&[payload])
    }

    /// [`Self::append_unsynced`] of a payload given in parts (written
    /// together, without copying them into one buffer first).
    pub fn append_parts_unsynced(&mut self, parts: &[&[u8]]) -> Result<(), WalError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_RECORD_BYTES as usize {
            return Err(WalError::TooLarge(len));
        }
        if len == 0 {
            return Err(WalError::Empty);
        }
        let size = HEADER_BYTES + len as u64;
        if self.segment_failed() {
            // Nothing written from now on may sit behind what a failed sync
            // may have lost: a new segment (this one stays without its
            // closing mark, read as far as it is readable).
            let (file, path) = Wal::create_segment(&self.config, self.sequence + 1)?;
            (self.file, self.path, self.sequence, self.len, self.records) = (file, path, self.sequence + 1, 0, 0);
            self.failed = Arc::default();
        }
        // Room is kept for the closing mark.
        if self.len > 0 && self.len + size + HEADER_BYTES > self.config.segment_bytes {
            self.close_segment()?;
        }
        let tag = segment_tag(self.sequence);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&tag);
        for p in parts {
            crc.update(p);
        }
        let header = record_header(tag, len as u32, crc.finalize());
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() + 1);
        slices.push(IoSlice::new(&header));
        slices.extend(parts.iter().map(|p| IoSlice::new(p)));
        self.write(&mut slices)?;
        self.len += size;
        self.records += 1;
        Ok(())
    }

    /// Closes the segment being written (closing mark, sync) and starts the
    /// next one.
    fn close_segment(&mut self) -> Result<(), WalError> {
        let mark = closing_mark(self.sequence);
        self.write(&mut [IoSlice::new(&mark)])?;
        self.len += HEADER_BYTES;
        self.sync()?;
        let (file, path) = Wal::create_segment(&self.config, self.sequence + 1)?;
        (self.file, self.path, self.sequence, self.len, self.records) = (file, path, self.sequence + 1, 0, 0);
        self.failed = Arc::default();
        if let Some(wake) = self.preparer.as_ref().and_then(|p| p.wake.as_ref()) {
            let _ = wake.send(());
        }
        Ok(())
    }

    /// Where the log is: the segment being written and how many records
    /// were appended to it (every record appended so far is one of those
    /// or in an older segment).
    pub fn position(&self) -> (u64, u64) {
        (self.sequence, self.records)
    }

    /// Writes `slices` at the end of the records; on failure the next write
    /// goes where this one started, so no partial record is left between
    /// good ones.
    fn write(&mut self, slices: &mut [IoSlice<'_>]) -> Result<(), WalError> {
        let mut rest = slices;
        while !rest.is_empty() {
            let error = match (&*self.file).write_vectored(rest) {
                Ok(0) => io::ErrorKind::WriteZero.into(),
                Ok(n) => {
                    IoSlice::advance_slices(&mut rest, n);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            let _ = (&*self.file).seek(SeekFrom::Start(self.len));
            return Err(WalError::Io { path: self.path.to_path_buf(), source: error });
        }
        Ok(())
    }

    /// The segment being appended to.
    pub fn current_path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    /// Whether a sync of the segment being appended to failed: the records
    /// appended since its last good sync are in doubt, and the next append
    /// starts a new segment.
    pub fn segment_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Makes every append so far durable (per the sync policy).
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.sync_handle().sync()
    }

    /// What [`Self::sync`] does, detached from the log: syncing it makes
    /// every append made so far durable, while appends go on (group commit
    /// syncs outside the log's lock). Records appended to earlier segments
    /// were synced when their segment was closed.
    pub fn sync_handle(&self) -> SyncHandle {
        SyncHandle {
            file: self.file.clone(),
            path: self.path.clone(),
            failed: self.failed.clone(),
            sync: self.config.sync == SyncPolicy::EveryAppend,
        }
    }

    /// Deletes closed segments last written more than `retention` ago;
    /// returns how many were removed.
    pub fn expire(&mut self, retention: Duration) -> Result<usize, WalError> {
        let now = SystemTime::now();
        let mut removed = 0;
        for (seq, path) in segments(&self.config.dir)? {
            if seq >= self.sequence {
                continue;
            }
            let modified = fs::metadata(&path).and_then(|m| m.modified()).map_err(io_err(&path))?;
            if now.duration_since(modified).unwrap_or_default() > retention {
                fs::remove_file(&path).map_err(io_err(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// When appends reach the disk.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.config.sync
    }

    /// The segment being appended to.
    pub fn current_segment(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(dir: &Path) -> (Vec<Vec<u8>>, ReplayReport) {
        let mut out = Vec::new();
        let report = replay(dir, &mut |p| out.push(p.to_vec())).unwrap();
        (out, report)
    }

    #[test]
    fn appended_records_replay_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig { segment_bytes: 64, ..WalConfig::new(dir.path()) };
        let (mut wal, report) = Wal::open(config.clone()).unwrap();
        assert_eq!(report, ReplayReport::default());
        let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1 + (i as usize * 3) % 40]).collect();
        for p in &payloads {
            wal.append(p).unwrap();
        }
        // An empty record's header would read as the end of the records.
        assert!(matches!(wal.append(b""), Err(WalError::Empty)));
        assert!(matches!(wal.append_parts_unsynced(&[b"", b""]), Err(WalError::Empty)));
        drop(wal);
        assert!(segments(dir.path()).unwrap().len() > 3, "rotated");
        let (read, report) = read_all(dir.path());
        assert_eq!(read, payloads);
        assert_eq!(report.records, 20);
        assert!(report.torn.is_none() && report.corrupt.is_empty());
        // Reopening continues after the last segment.
        let (mut wal, _) = Wal::open(config).unwrap();
        wal.append(b"more").unwrap();
        drop(wal);
        assert_eq!(read_all(dir.path()).0.last().unwrap(), b"more");
    }

    #[test]
    fn segments_in_memory_read_and_encode_as_the_files_do() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig { segment_bytes: 128, ..WalConfig::new(dir.path()) };
        let (mut wal, _) = Wal::open(config).unwrap();
        let payloads: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 1 + i as usize * 5]).collect();
        for p in &payloads {
            wal.append(p).unwrap();
        }
        drop(wal);
        let mut read = Vec::new();
        for (sequence, path) in segments(dir.path()).unwrap() {
            let bytes = fs::read(&path).unwrap();
            let mut here = Vec::new();
            let summary = read_segment_bytes(sequence, SegmentFormat::Tagged, &bytes, &mut |r| here.push(r.to_vec()));
            assert!(summary.closed && summary.bad.is_none(), "{summary:?}");
            assert_eq!(summary.records as usize, here.len());
            // Written by encode_record, the same bytes (a closing mark is
            // an empty record).
            let mut encoded = Vec::new();
            for r in &here {
                encode_record(sequence, r, &mut encoded);
            }
            if bytes.len() > encoded.len() {
                encode_record(sequence, b"", &mut encoded);
            }
            assert_eq!(encoded, bytes);
            read.extend(here);
        }
        assert_eq!(read, payloads);
        // Another segment's tag ends the records; a flipped payload byte is
        // a checksum mismatch, and a cut a torn record.
        let mut one = Vec::new();
        encode_record(7, b"first", &mut one);
        encode_record(7, b"second", &mut one);
        assert_eq!(read_segment_bytes(8, SegmentFormat::Tagged, &one, &mut |_| {}).records, 0);
        let mut flipped = one.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let summary = read_segment_bytes(7, SegmentFormat::Tagged, &flipped, &mut |_| {});
        assert_eq!(summary.records, 1);
        assert_eq!(summary.bad, Some((21, "checksum mismatch".to_string(), true)));
        let summary = read_segment_bytes(7, SegmentFormat::Tagged, &one[..40], &mut |_| {});
        assert_eq!(summary.bad, Some((21, "record of 6 bytes cut short".to_string(), true)));
    }

    #[test]
    fn the_position_counts_the_records_of_the_segment_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig { segment_bytes: 64, ..WalConfig::new(dir.path()) };
        let (mut wal, _) = Wal::open(config).unwrap();
        let first = wal.sequence;
        assert_eq!(wal.position(), (first, 0));
        wal.append(b"one").unwrap();
        wal.append(b"two").unwrap();
        assert_eq!(wal.position(), (first, 2));
        // The third does not fit: a new segment.
        wal.append(&[3; 20]).unwrap();
        assert_eq!(wal.position(), (first + 1, 1));
    }

    #[test]
    fn group_commit_syncs_across_segment_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(WalConfig { segment_bytes: 20, ..WalConfig::new(dir.path()) }).unwrap();
        for p in [&b"one"[..], b"two", b"three", b"four"] {
            wal.append_unsynced(p).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        assert!(segments(dir.path()).unwrap().len() >= 2);
        let (read, report) = read_all(dir.path());
        assert_eq!(read, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec(), b"four".to_vec()]);
        assert_eq!(report.records, 4);
    }

    #[test]
    fn a_payload_in_parts_is_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = WalConfig::new(dir.path());
        config.segment_bytes = 4096;
        let (mut wal, _) = Wal::open(config).unwrap();
        let big = vec![7u8; 3000];
        wal.append_parts_unsynced(&[b"\x00", b"head", b"", b"tail"]).unwrap();
        wal.append_parts_unsynced(&[b"\x01", &big]).unwrap();
        // Over the segment size: a new segment, the record whole in it.
        wal.append_parts_unsynced(&[b"\x01", &big]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (read, report) = read_all(dir.path());
        let mut tagged = vec![1u8];
        tagged.extend_from_slice(&big);
        assert_eq!(read, vec![b"\x00headtail".to_vec(), tagged.clone(), tagged]);
        assert_eq!((report.records, report.torn, report.corrupt.len()), (3, None, 0));
        assert_eq!(segments(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn a_torn_last_record_is_reported_then_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        wal.append(b"first").unwrap();
        wal.append(b"second").unwrap();
        let path = wal.current_segment().to_path_buf();
        drop(wal);
        // A crash mid-write: the last record lost its tail.
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let (read, report) = read_all(dir.path());
        assert_eq!(read, vec![b"first".to_vec()]);
        let torn = report.torn.expect("torn tail reported");
        assert_eq!(torn.offset, HEADER_BYTES + 5);
        assert!(report.corrupt.is_empty());
        // Opening cuts it off, and appends go on from there.
        let (mut wal, report) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert!(report.torn.is_some());
        wal.append(b"third").unwrap();
        drop(wal);
        let (read, report) = read_all(dir.path());
        assert_eq!(read, vec![b"first".to_vec(), b"third".to_vec()]);
        assert!(report.torn.is_none());
    }

    #[test]
    fn checksum_failures_torn_only_at_the_very_end() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        for p in [&b"one"[..], b"two", b"three"] {
            wal.append(p).unwrap();
        }
        let path = wal.current_segment().to_path_buf();
        drop(wal);
        let mut bytes = fs::read(&path).unwrap();
        // Damage the middle record: corruption, and "three" after it is not cut away.
        let second = 2 * HEADER_BYTES as usize + 3;
        bytes[second] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let (_, report) = read_all(dir.path());
        assert!(report.torn.is_none());
        assert_eq!(report.corrupt.len(), 1);
        let (_, opened) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), bytes.len() as u64, "corruption is never truncated");
        assert_eq!(opened.corrupt.len(), 1);
        // Damage only the last record of the newest segment: a torn write.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        wal.append(b"one").unwrap();
        wal.append(b"two").unwrap();
        let path = wal.current_segment().to_path_buf();
        drop(wal);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let (read, report) = read_all(dir.path());
        assert_eq!(read, vec![b"one".to_vec()]);
        assert_eq!(report.torn.map(|t| t.reason), Some("checksum mismatch".to_string()));
    }

    #[test]
    fn corruption_before_the_end_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig { segment_bytes: 40, ..WalConfig::new(dir.path()) };
        let (mut wal, _) = Wal::open(config).unwrap();
        for p in [&b"aaaaaaaaaaaa"[..], b"bbbbbbbbbbbb", b"cccccccccccc", b"dddddddddddd"] {
            wal.append(p).unwrap();
        }
        drop(wal);
        let first = segments(dir.path()).unwrap()[0].1.clone();
        let mut bytes = fs::read(&first).unwrap();
        bytes[HEADER_BYTES as usize + 2] ^= 0xff; // flip a payload byte of the first record
        fs::write(&first, bytes).unwrap();
        let (read, report) = read_all(dir.path());
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(report.corrupt[0].reason, "checksum mismatch");
        assert!(report.torn.is_none());
        assert!(read.contains(&b"dddddddddddd".to_vec()), "later segments are still read: {read:?}");
        assert!(!read.contains(&b"aaaaaaaaaaaa".to_vec()));
    }

    #[test]
    fn old_closed_segments_expire() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(WalConfig { segment_bytes: 16, ..WalConfig::new(dir.path()) }).unwrap();
        for _ in 0..5 {
            wal.append(b"12345678").unwrap();
        }
        let before = segments(dir.path()).unwrap().len();
        assert_eq!(wal.expire(Duration::from_secs(3600)).unwrap(), 0);
        std::thread::sleep(Duration::from_millis(20));
        let removed = wal.expire(Duration::from_millis(1)).unwrap();
        assert_eq!(removed, before - 1, "everything but the open segment");
        wal.append(b"still works").unwrap();
    }

    /// Waits for the preparer to have the next segment ready (it writes and
    /// syncs a file: seconds when other work loads the disk).
    fn wait_ready(dir: &Path) {
        for _ in 0..6_000 {
            if dir.join(READY).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no prepared segment in 60 s");
    }

    fn preallocated(dir: &Path) -> WalConfig {
        WalConfig { segment_bytes: 4096, preallocate: true, ..WalConfig::new(dir) }
    }

    #[test]
    fn preallocated_segments_hold_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(preallocated(dir.path())).unwrap();
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + 37 * i as usize]).collect();
        for p in &payloads {
            wait_ready(dir.path()); // so every rotation takes a prepared file
            wal.append(p).unwrap();
        }
        let segs = segments(dir.path()).unwrap();
        assert!(segs.len() > 5, "rotated: {segs:?}");
        let sizes: Vec<u64> = segs.iter().map(|(_, p)| fs::metadata(p).unwrap().len()).collect();
        // The first segment was started before anything was prepared.
        assert!(sizes[1..].iter().all(|&n| n == 4096), "zero-filled to the segment size: {sizes:?}");
        drop(wal);
        assert!(!dir.path().join(PREPARING).exists(), "the preparer stops with the log");
        let (read, report) = read_all(dir.path());
        assert_eq!(read, payloads);
        assert_eq!((report.torn, report.corrupt.len()), (None, 0));
        // Closed segments read the same way (compaction), zero tails and all.
        let closed: u64 = segs[..segs.len() - 1]
            .iter()
            .map(|(seq, path)| read_closed_segment(*seq, path, &mut |_| {}).unwrap())
            .sum();
        assert!(closed >= 30, "{closed}");
    }

    #[test]
    fn torn_writes_in_a_preallocated_segment() {
        // (damage at an offset after the records' start, damage reported: (torn?, reason))
        type Harm = dyn Fn(&mut Vec<u8>, usize);
        let cases: [(&Harm, Option<(bool, &str)>); 3] = [
            // The last record's payload only partly on disk.
            (&|b, end| b[end - 2] ^= 0xff, Some((true, "checksum mismatch"))),
            // A later page of an unsynced write on disk, its header not:
            // the records end at the header, nothing to report.
            (&|b, end| b[end + 700] = 0x5a, None),
            // A middle record damaged, good records after it: corruption.
            (&|b, _| b[HEADER_BYTES as usize + 1] ^= 0xff, Some((false, "checksum mismatch"))),
        ];
        for (damage, reported) in cases {
            let dir = tempfile::tempdir().unwrap();
            let config = WalConfig { segment_bytes: 1 << 16, ..preallocated(dir.path()) };
            let (mut wal, _) = Wal::open(config.clone()).unwrap();
            wal.append(&[9; 65_450]).unwrap(); // fills the first segment, an empty file at open
            wait_ready(dir.path());
            for p in [[1u8; 100], [2; 100], [3; 100]] {
                wal.append(&p).unwrap(); // the first rotates into the prepared segment
            }
            let path = wal.current_segment().to_path_buf();
            drop(wal);
            let mut bytes = fs::read(&path).unwrap();
            assert_eq!(bytes.len(), 1 << 16, "{path:?} was prepared");
            let end = 3 * (HEADER_BYTES as usize + 100);
            assert!(bytes[end..].iter().all(|&b| b == 0));
            damage(&mut bytes, end);
            fs::write(&path, &bytes).unwrap();
            let (read, report) = read_all(dir.path());
            let found = report.torn.clone().or(report.corrupt.first().cloned());
            assert_eq!(found.as_ref().map(|d| (report.torn.is_some(), d.reason.as_str())), reported);
            match reported {
                None | Some((true, _)) => {
                    assert_eq!(read.len(), 1 + 2 + reported.is_none() as usize);
                    // Opening cuts the torn tail off, or marks where the
                    // records end; the log reads clean after.
                    drop(Wal::open(config.clone()).unwrap());
                    let (again, report) = read_all(dir.path());
                    assert_eq!(again, read);
                    assert_eq!((report.torn, report.corrupt.len()), (None, 0));
                }
                Some((false, _)) => {
                    assert_eq!(read.len(), 1, "reading the segment stops at corruption");
                    // In a closed segment the same damage is corruption too.
                    let (_, opened) = Wal::open(config.clone()).unwrap();
                    assert_eq!((opened.torn, opened.corrupt.len()), (None, 1));
                }
            }
        }
    }

    #[test]
    fn a_directory_of_a_newer_format_is_refused_and_others_are_claimed() {
        let dir = tempfile::tempdir().unwrap();
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        let format = dir.path().join(FORMAT_FILE);
        assert_eq!(fs::read_to_string(&format).unwrap(), "tracelens data format 3\n");
        // The first format's directories had no file: claimed as they are opened.
        fs::write(&format, "tracelens data format 1\n").unwrap();
        drop(Wal::open(WalConfig::new(dir.path())).unwrap());
        assert_eq!(fs::read_to_string(&format).unwrap(), "tracelens data format 3\n");
        fs::write(&format, "tracelens data format 4\n").unwrap();
        let err = Wal::open(WalConfig::new(dir.path())).map(drop).expect_err("a newer format is refused").to_string();
        assert!(err.contains("FORMAT: data format 4; this build reads data format 3 and earlier"), "{err}");
        fs::write(&format, "garbage").unwrap();
        let err =
            Wal::open(WalConfig::new(dir.path())).map(drop).expect_err("an unreadable format is refused").to_string();
        assert!(err.contains("not a tracelens format line: \"garbage\""), "{err}");
        assert_eq!(fs::read_to_string(&format).unwrap(), "garbage", "left as found");
    }

    #[test]
    fn preparing_stops_or_fails_without_leaving_a_file() {
        let dir = tempfile::tempdir().unwrap();
        prepare_segment(dir.path(), 4 << 20, &AtomicBool::new(true)).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "stopped: nothing left");
        let missing = dir.path().join("gone");
        assert!(prepare_segment(&missing, 4096, &AtomicBool::new(false)).is_err());
        prepare_segment(dir.path(), 4096, &AtomicBool::new(false)).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, [READY]);
        assert_eq!(fs::read(dir.path().join(READY)).unwrap(), vec![0u8; 4096]);
    }

    #[test]
    fn a_prepared_segment_of_another_size_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(READY), vec![0u8; 1000]).unwrap();
        let (wal, _) = Wal::open(preallocated(dir.path())).unwrap();
        assert_eq!(fs::metadata(wal.current_segment()).unwrap().len(), 0, "a new empty file, not the 1000-byte one");
        drop(wal);
        // One of the right size is taken.
        fs::write(dir.path().join(READY), vec![0u8; 4096]).unwrap();
        let (wal, _) = Wal::open(preallocated(dir.path())).unwrap();
        assert_eq!(fs::metadata(wal.current_segment()).unwrap().len(), 4096);
    }

    #[test]
    fn a_prepared_segment_filled_to_its_last_byte_reads_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(preallocated(dir.path())).unwrap();
        wal.append(&[1; 4000]).unwrap(); // the first segment, an empty file at open
        wait_ready(dir.path());
        // Into the prepared segment, leaving just the room of its closing mark.
        wal.append(&[2; 4096 - 2 * HEADER_BYTES as usize]).unwrap();
        let closed = wal.current_segment().to_path_buf();
        wal.append(&[3; 10]).unwrap(); // does not fit: rotates
        assert_ne!(wal.current_segment(), closed);
        drop(wal);
        assert_eq!(fs::metadata(&closed).unwrap().len(), 4096);
        assert_eq!(read_closed_segment(1, &closed, &mut |_| {}).unwrap(), 1);
        let (read, report) = read_all(dir.path());
        assert_eq!(read.len(), 3);
        assert_eq!((report.torn, report.corrupt.len()), (None, 0));
    }

    #[test]
    fn garbage_segments_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("wal-00000000000000000000.log"), [0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5]).unwrap();
        let mut tagged = vec![0xff; 8];
        tagged.extend_from_slice(&segment_tag(1));
        tagged.extend_from_slice(&[7; 40]);
        fs::write(dir.path().join("wal-00000000000000000001.wal"), &tagged).unwrap();
        fs::write(dir.path().join("not-a-segment.txt"), b"ignored").unwrap();
        let (read, report) = read_all(dir.path());
        assert!(read.is_empty());
        assert!(report.torn.is_none(), "an impossible length is corruption, not a torn write");
        assert_eq!(report.corrupt.len(), 2);
        let (mut wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        wal.append(b"ok").unwrap();
    }

    /// Fills segments 0-2 of a preallocated log, retires segment 1 as
    /// compaction does, and rotates into the reused file; returns the log
    /// (appending to the reused segment 3) and the records kept in the log.
    fn reuse_a_segment(dir: &Path) -> (Wal, Vec<Vec<u8>>) {
        let config = preallocated(dir);
        let (mut wal, _) = Wal::open(config).unwrap();
        let mut kept = Vec::new();
        for i in 0..3u8 {
            wait_ready(dir);
            let record = vec![10 + i; 4096 - 2 * HEADER_BYTES as usize];
            wal.append(&record).unwrap(); // fills segment i
            if i != 1 {
                kept.push(record);
            }
        }
        // Segment 1 is compacted; the file ready next is zeros, so it goes.
        retire_segment(dir, &segment_path(dir, 1), FREE_SEGMENTS_KEPT).unwrap();
        assert!(dir.join("wal-00000000000000000001.free").exists());
        wait_ready(dir);
        fs::remove_file(dir.join(READY)).unwrap();
        prepare_segment(dir, 4096, &AtomicBool::new(false)).unwrap();
        assert!(free_segments(dir).unwrap().is_empty(), "the free segment was readied");
        for p in [vec![1u8; 100], vec![2; 100]] {
            wal.append(&p).unwrap(); // the first rotates into the reused file
            kept.push(p);
        }
        assert_eq!(wal.sequence, 3);
        (wal, kept)
    }

    #[test]
    fn a_reused_segment_never_replays_its_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, kept) = reuse_a_segment(dir.path());
        let path = wal.current_segment().to_path_buf();
        drop(wal);
        let bytes = fs::read(&path).unwrap();
        let end = 2 * (HEADER_BYTES as usize + 100);
        assert_eq!(bytes[end + 50], 11, "the earlier life's record is still in the file");
        let (read, report) = read_all(dir.path());
        assert_eq!(read, kept);
        assert_eq!((report.torn, report.corrupt.len()), (None, 0));
        let open_end = report.open_end.expect("the newest segment ends before its file");
        assert_eq!((open_end.sequence, open_end.offset), (3, end as u64));
        // Reopened, the segment is closed at its mark and reads the same.
        let (mut wal, report) = Wal::open(preallocated(dir.path())).unwrap();
        assert!(report.open_end.is_some());
        wal.append(b"after").unwrap();
        drop(wal);
        assert_eq!(read_closed_segment(3, &path, &mut |_| {}).unwrap(), 2);
        let (read, report) = read_all(dir.path());
        assert_eq!(read.len(), kept.len() + 1);
        assert_eq!((report.torn, report.corrupt.len()), (None, 0));
    }

    #[test]
    fn a_torn_record_in_a_reused_segment_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, mut kept) = reuse_a_segment(dir.path());
        let path = wal.current_segment().to_path_buf();
        drop(wal);
        let mut bytes = fs::read(&path).unwrap();
        let last = 2 * (HEADER_BYTES as usize + 100) - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (read, report) = read_all(dir.path());
        kept.pop();
        assert_eq!(read, kept);
        let torn = report.torn.expect("torn, though earlier bytes follow it");
        assert_eq!((torn.offset, torn.reason.as_str()), (HEADER_BYTES + 100, "checksum mismatch"));
        // Cut off at open; the log reads clean after.
        drop(Wal::open(preallocated(dir.path())).unwrap());
        let (again, report) = read_all(dir.path());
        assert_eq!(again, kept);
        assert_eq!((report.torn, report.corrupt.len()), (None, 0));
    }

    #[test]
    fn an_older_segment_ending_before_its_mark_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = reuse_a_segment(dir.path());
        drop(wal);
        // Segment 2's closing mark lost: its records end at a foreign header.
        let path = segment_path(dir.path(), 2);
        let mut bytes = fs::read(&path).unwrap();
        let mark = 4096 - HEADER_BYTES as usize;
        bytes[mark..].fill(0);
        fs::write(&path, &bytes).unwrap();
        let (read, report) = read_all(dir.path());
        assert_eq!(read.len(), 4, "its records are still read");
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!((report.corrupt[0].offset, report.corrupt[0].reason.as_str()), (mark as u64, UNCLOSED));
        assert!(read_closed_segment(2, &path, &mut |_| {}).is_err());
    }

    #[test]
    fn the_pool_of_reused_segments_follows_what_a_compaction_run_retired() {
        const MIB: u64 = 1 << 20;
        assert_eq!(free_segments_to_keep(0, 64 * MIB), FREE_SEGMENTS_KEPT);
        assert_eq!(free_segments_to_keep(3, 64 * MIB), FREE_SEGMENTS_KEPT);
        assert_eq!(free_segments_to_keep(30, 64 * MIB), 30, "a busy 30 s interval: all of it");
        assert_eq!(free_segments_to_keep(1000, 64 * MIB), 64, "a backlog: 4 GiB");
        assert_eq!(free_segments_to_keep(30, 1024 * MIB), FREE_SEGMENTS_KEPT, "large segments: the floor");
        assert_eq!(free_segments_to_keep(30, 0), 30, "no size known: not a division by zero");
    }

    #[test]
    fn retired_segments_are_kept_for_reuse_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig { segment_bytes: 16, ..WalConfig::new(dir.path()) };
        let (mut wal, _) = Wal::open(config.clone()).unwrap();
        for _ in 0..FREE_SEGMENTS_KEPT + 3 {
            wal.append(b"one segment each").unwrap();
        }
        let closed = closed_segments(dir.path()).unwrap();
        assert!(closed.len() > FREE_SEGMENTS_KEPT + 1);
        retire_segment(dir.path(), &closed[0].1, 0).unwrap();
        assert!(free_segments(dir.path()).unwrap().is_empty(), "not kept unless the log preallocates");
        for (_, path) in &closed[1..] {
            retire_segment(dir.path(), path, FREE_SEGMENTS_KEPT).unwrap();
        }
        assert_eq!(free_segments(dir.path()).unwrap().len(), FREE_SEGMENTS_KEPT);
        assert_eq!(segments(dir.path()).unwrap().len(), 1, "every closed segment retired");
        // A quieter run keeps fewer: the oldest go.
        let kept: Vec<u64> = free_segments(dir.path()).unwrap().into_iter().map(|(seq, _)| seq).collect();
        trim_free_segments(dir.path(), 3).unwrap();
        let left: Vec<u64> = free_segments(dir.path()).unwrap().into_iter().map(|(seq, _)| seq).collect();
        assert_eq!(left, kept[kept.len() - 3..]);
        // A log that does not preallocate deletes what was kept.
        drop(wal);
        drop(Wal::open(config).unwrap());
        assert!(free_segments(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn kept_files_are_dropped_when_the_numbering_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = reuse_a_segment(dir.path());
        // Ready before the log closes: closing stops the preparer, which
        // then leaves the file it was writing unfinished.
        wait_ready(dir.path());
        drop(wal);
        retire_segment(dir.path(), &segment_path(dir.path(), 0), FREE_SEGMENTS_KEPT).unwrap();
        // Every segment deleted by hand: segment 0 would start again.
        for (_, path) in segments(dir.path()).unwrap() {
            fs::remove_file(path).unwrap();
        }
        let (wal, report) = Wal::open(preallocated(dir.path())).unwrap();
        assert_eq!((report.records, wal.sequence), (0, 0));
        assert_eq!(fs::metadata(wal.current_segment()).unwrap().len(), 0, "a new file, not segment 0's old one");
        assert!(free_segments(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn first_format_segments_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        // Two records as the first format wrote them: [len][crc][payload].
        let mut old = Vec::new();
        for payload in [&b"written"[..], b"before"] {
            old.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            old.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
            old.extend_from_slice(payload);
        }
        let first = dir.path().join("wal-00000000000000000004.log");
        fs::write(&first, &old).unwrap();
        let (mut wal, report) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert_eq!((report.records, report.torn, report.corrupt.len()), (2, None, 0));
        assert_eq!(wal.current_segment(), segment_path(dir.path(), 5), "numbering goes on, in the new format");
        wal.append(b"after").unwrap();
        drop(wal);
        let (read, _) = read_all(dir.path());
        assert_eq!(read, [&b"written"[..], b"before", b"after"]);
        assert_eq!(read_closed_segment(4, &first, &mut |_| {}).unwrap(), 2);
        // Compacted, a first-format segment is deleted, never reused.
        retire_segment(dir.path(), &first, FREE_SEGMENTS_KEPT).unwrap();
        assert!(!first.exists() && free_segments(dir.path()).unwrap().is_empty());
    }
}
