//! Which compacted files may hold a trace: a Bloom filter of each file's
//! trace ids (10 bits per trace, about 1% false positives), so that a
//! look-up past the recently completed traces reads only the files that
//! may hold the trace instead of the trace-id column of every file kept. A
//! day at 10,000 spans/s is about 2,000 files and 72 million traces: ~90
//! MB of filters. Compaction adds each file it writes and the restore each
//! file kept from before the start; a file without a filter (not restored
//! yet, or put there by hand) is read. A file found unreadable (truncated,
//! not Parquet) is listed with why, and left out of look-ups and searches
//! until it is gone, so that one damaged file does not fail every query.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tracelens_core::model::TraceId;

/// Bits per trace id (with [`HASHES`]: about 1% false positives).
const BITS_PER_ID: usize = 10;
/// Bit positions set per trace id.
const HASHES: u64 = 7;

/// A Bloom filter of trace ids.
#[derive(Clone, Debug)]
struct Bloom {
    words: Vec<u64>,
}

/// splitmix64's finalizer: every input bit moves every output bit, so
/// sequential ids (as some SDKs and tests make) spread like random ones.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Bloom {
    /// A filter of `ids` (each may come more than once).
    fn of(ids: &[TraceId]) -> Bloom {
        let mut bloom = Bloom { words: vec![0; (ids.len() * BITS_PER_ID).div_ceil(64).max(1)] };
        for id in ids {
            bloom.insert(id);
        }
        bloom
    }

    /// The bit positions of `id` in a filter of `bits` bits (double hashing).
    fn positions(id: &TraceId, bits: u64) -> impl Iterator<Item = usize> {
        let (hi, lo) = id.0.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let h = mix(word(lo) ^ mix(word(hi)));
        let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
        (0..HASHES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bits) as usize)
    }

    fn bits(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    fn insert(&mut self, id: &TraceId) {
        for p in Bloom::positions(id, self.bits()) {
            self.words[p / 64] |= 1 << (p % 64);
        }
    }

    fn may_hold(&self, id: &TraceId) -> bool {
        Bloom::positions(id, self.bits()).all(|p| self.words[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// The start of a filter's file: a name and the format.
const FILTER_MAGIC: &[u8; 8] = b"TLBLOOM1";

/// A filter of `ids` as a file holds it: `TLBLOOM1`, the CRC-32 of
/// the words, the words (little-endian u64s).
pub fn encode_filter(ids: &[TraceId]) -> Vec<u8> {
    let bloom = Bloom::of(ids);
    let mut words = Vec::with_capacity(bloom.words.len() * 8);
    for w in &bloom.words {
        words.extend_from_slice(&w.to_le_bytes());
    }
    let mut out = Vec::with_capacity(12 + words.len());
    out.extend_from_slice(FILTER_MAGIC);
    out.extend_from_slice(&crc32fast::hash(&words).to_le_bytes());
    out.extend_from_slice(&words);
    out
}

/// A filter read back from [`encode_filter`]'s bytes, or why not.
fn decode_filter(bytes: &[u8]) -> Result<Bloom, String> {
    let Some(rest) = bytes.strip_prefix(FILTER_MAGIC) else { return Err("not a trace-id filter".to_string()) };
    let (Some(crc), Some(words)) = (rest.get(..4), rest.get(4..)) else { return Err("cut short".to_string()) };
    if words.is_empty() || words.len() % 8 != 0 {
        return Err(format!("{} bytes of words", words.len()));
    }
    if crc32fast::hash(words).to_le_bytes() != crc {
        return Err("checksum mismatch".to_string());
    }
    let words = words.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))).collect();
    Ok(Bloom { words })
}

/// The filters of the compacted files, by path.
#[derive(Debug, Default)]
pub struct TraceIndex {
    files: HashMap<PathBuf, Bloom>,
    unreadable: BTreeMap<PathBuf, String>,
}

impl TraceIndex {
    /// Records the trace ids of `file` (each may come more than once).
    pub fn add(&mut self, file: PathBuf, ids: &[TraceId]) {
        self.files.insert(file, Bloom::of(ids));
    }

    /// Records the filter of `file` from [`encode_filter`]'s bytes.
    pub fn add_encoded(&mut self, file: PathBuf, bytes: &[u8]) -> Result<(), String> {
        self.files.insert(file, decode_filter(bytes)?);
        Ok(())
    }

    /// Whether `file` has a filter.
    pub fn has_filter(&self, file: &Path) -> bool {
        self.files.contains_key(file)
    }

    /// Whether `file` may hold trace `id`: no when its filter says so or
    /// when it is unreadable.
    pub fn may_hold(&self, file: &Path, id: &TraceId) -> bool {
        !self.unreadable.contains_key(file) && self.files.get(file).is_none_or(|bloom| bloom.may_hold(id))
    }

    /// Whether `file` was found unreadable.
    pub fn is_unreadable(&self, file: &Path) -> bool {
        self.unreadable.contains_key(file)
    }

    /// Lists `file` as unreadable, with why; true the first time.
    pub fn mark_unreadable(&mut self, file: PathBuf, why: String) -> bool {
        self.files.remove(&file);
        self.unreadable.insert(file, why).is_none()
    }

    /// The files found unreadable, with why.
    pub fn unreadable(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.unreadable.iter().map(|(p, w)| (p.as_path(), w.as_str()))
    }

    /// Forgets the files not in `kept` (deleted by retention).
    pub fn retain(&mut self, kept: &[PathBuf]) {
        self.files.retain(|path, _| kept.contains(path));
        self.unreadable.retain(|path, _| kept.contains(path));
    }

    /// Files with a filter.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// No file has a filter.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Memory the filters take, bytes.
    pub fn bytes(&self) -> usize {
        self.files.values().map(|b| b.words.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TraceId {
        let mut b = [0u8; 16];
        b[8..].copy_from_slice(&n.to_be_bytes());
        TraceId(b)
    }

    #[test]
    fn every_added_id_is_found_and_about_one_in_a_hundred_others_is_not_ruled_out() {
        let mut index = TraceIndex::default();
        // Sequential ids, as a test or a naive SDK makes them.
        let ids: Vec<TraceId> = (0..20_000).map(id).collect();
        index.add(PathBuf::from("a.parquet"), &ids);
        let file = Path::new("a.parquet");
        assert!(ids.iter().all(|i| index.may_hold(file, i)), "no false negatives");
        let false_positives = (1_000_000..1_100_000).filter(|&n| index.may_hold(file, &id(n))).count();
        assert!(false_positives < 2_000, "{false_positives} of 100,000 absent ids not ruled out");
        assert!(false_positives > 100, "{false_positives}: suspiciously few for 10 bits per id");
        assert_eq!(index.bytes(), 20_000 * 10 / 8);
    }

    #[test]
    fn filters_read_back_from_their_bytes_answer_alike_and_damage_is_refused() {
        let ids: Vec<TraceId> = (0..1_000).map(id).collect();
        let bytes = encode_filter(&ids);
        let (mut direct, mut read) = (TraceIndex::default(), TraceIndex::default());
        direct.add(PathBuf::from("a.parquet"), &ids);
        read.add_encoded(PathBuf::from("a.parquet"), &bytes).unwrap();
        assert!(read.has_filter(Path::new("a.parquet")));
        let file = Path::new("a.parquet");
        for n in 0..20_000 {
            assert_eq!(direct.may_hold(file, &id(n)), read.may_hold(file, &id(n)), "{n}");
        }
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert_eq!(read.add_encoded(PathBuf::from("b"), &damaged), Err("checksum mismatch".to_string()));
        assert_eq!(read.add_encoded(PathBuf::from("b"), &bytes[..10]), Err("cut short".to_string()));
        assert_eq!(read.add_encoded(PathBuf::from("b"), b"PAR1"), Err("not a trace-id filter".to_string()));
        assert!(!read.has_filter(Path::new("b")));
    }

    #[test]
    fn a_file_without_a_filter_may_hold_anything_and_deleted_files_are_forgotten() {
        let mut index = TraceIndex::default();
        index.add(PathBuf::from("a.parquet"), &[id(1)]);
        index.add(PathBuf::from("b.parquet"), &[]);
        assert!(index.may_hold(Path::new("c.parquet"), &id(5)));
        assert!(!index.may_hold(Path::new("b.parquet"), &id(1)));
        index.retain(&[PathBuf::from("b.parquet")]);
        assert_eq!(index.len(), 1);
        assert!(index.may_hold(Path::new("a.parquet"), &id(2)), "forgotten: read again");
        // An unreadable file is left out, listed once, and forgotten when deleted.
        assert!(index.mark_unreadable(PathBuf::from("c.parquet"), "truncated".into()));
        assert!(!index.mark_unreadable(PathBuf::from("c.parquet"), "truncated".into()));
        assert!(!index.may_hold(Path::new("c.parquet"), &id(5)));
        assert_eq!(index.unreadable().collect::<Vec<_>>(), [(Path::new("c.parquet"), "truncated")]);
        index.retain(&[]);
        assert_eq!(index.unreadable().count(), 0);
    }
}
