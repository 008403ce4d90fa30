//! Trace digests sampled per minute of trace start, for change detection
//! over any window the receiver retains: each minute keeps a uniform
//! random sample (reservoir sampling, Vitter's algorithm R) of at most
//! `per_minute` of the traces that started in it, as the judge's
//! travelling digests ([`TraceDigester`]), encoded. A minute with fewer
//! traces keeps them all, so a quiet service is judged on every trace; a
//! busy one on a fixed number a minute, which bounds memory (a few hundred
//! bytes a digest) whatever the traffic. Each minute has its own string
//! table, so the names its digests use (status messages among them) go
//! with it when it is older than the retention and let go.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message as _;

use tracelens_core::analysis::portable::Names;
use tracelens_core::judge::sample::portable::TraceDigester;
use tracelens_core::judge::sample::portable::pb::TraceDigest;
use tracelens_core::model::{Dictionary, Trace};

const MINUTE_MS: u64 = 60_000;

/// One minute's sample.
#[derive(Default)]
struct Minute {
    /// Traces that started in it.
    seen: u64,
    /// The names its digests index.
    names: Names,
    /// The sample, encoded digests.
    digests: Vec<Vec<u8>>,
}

/// The per-minute samples.
pub struct Samples {
    per_minute: usize,
    retention_ms: u64,
    /// Made afresh for each minute's traces (its tables of scopes and
    /// error types would otherwise grow for as long as the receiver runs).
    digester: (u64, TraceDigester),
    minutes: BTreeMap<u64, Minute>,
    bytes: usize,
    rng: u64,
}

/// One minute taken: the names its digests index, and the encoded
/// [`TraceDigest`]s.
pub type MinuteSample = (Arc<[String]>, Vec<Vec<u8>>);

/// Digests taken out of the live lock, per minute.
pub struct SampleSnapshot {
    /// The minutes taken.
    pub minutes: Vec<MinuteSample>,
    /// Traces that started in the minutes taken (sampled or not).
    pub seen: u64,
}

impl SampleSnapshot {
    /// Digests taken.
    pub fn len(&self) -> usize {
        self.minutes.iter().map(|(_, d)| d.len()).sum()
    }

    /// Nothing taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each minute's names and its digests, decoded.
    pub fn decoded(
        &self,
    ) -> impl Iterator<Item = (&[String], impl Iterator<Item = Result<TraceDigest, prost::DecodeError>> + '_)> + '_
    {
        self.minutes
            .iter()
            .map(|(names, digests)| (&**names, digests.iter().map(|d| TraceDigest::decode(d.as_slice()))))
    }
}

impl Samples {
    /// At most `per_minute` digests a minute, kept for `retention_ms`.
    pub fn new(per_minute: usize, retention_ms: u64) -> Samples {
        Samples {
            per_minute,
            retention_ms,
            digester: (u64::MAX, TraceDigester::default()),
            minutes: BTreeMap::new(),
            bytes: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Offers a completed trace: counted in its start's minute, and kept
    /// (its digest made) when the reservoir draws it.
    pub fn offer(&mut self, dict: &Dictionary, trace: &Trace) {
        if self.per_minute == 0 {
            return;
        }
        let Some(start_ns) = trace.spans.iter().filter(|s| s.has_timing()).map(|s| s.start_ns).min() else {
            return;
        };
        let key = start_ns / 1_000_000 / MINUTE_MS;
        let minute = self.minutes.entry(key).or_default();
        minute.seen += 1;
        let slot = if minute.digests.len() < self.per_minute {
            None
        } else {
            // xorshift64*: a uniform draw in 0..seen.
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let draw = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % minute.seen;
            if draw as usize >= self.per_minute {
                return;
            }
            Some(draw as usize)
        };
        if self.digester.0 != key {
            self.digester = (key, TraceDigester::default());
        }
        let encoded = self.digester.1.digest(dict, trace, &mut minute.names).encode_to_vec();
        self.bytes += encoded.len();
        match slot {
            None => minute.digests.push(encoded),
            Some(i) => {
                self.bytes -= minute.digests[i].len();
                minute.digests[i] = encoded;
            }
        }
    }

    /// Lets go of minutes older than the retention at clock time `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let first = now_ms.saturating_sub(self.retention_ms) / MINUTE_MS;
        while let Some(entry) = self.minutes.first_entry() {
            if *entry.key() >= first {
                break;
            }
            self.bytes -= entry.get().digests.iter().map(Vec::len).sum::<usize>();
            entry.remove();
        }
    }

    /// The minute of the earliest trace start kept, unix ms.
    pub fn first_ms(&self) -> Option<u64> {
        self.minutes.keys().next().map(|m| m * MINUTE_MS)
    }

    /// The samples of the minutes overlapping the ranges (unix ns,
    /// `[start, end)`).
    pub fn snapshot(&self, ranges: &[(u64, u64)]) -> SampleSnapshot {
        let mut taken = Vec::new();
        let mut seen = 0;
        let mut minutes: Vec<u64> = Vec::new();
        for &(start, end) in ranges {
            let (first, last) = (start / 1_000_000 / MINUTE_MS, end.saturating_sub(1) / 1_000_000 / MINUTE_MS);
            minutes.extend(self.minutes.range(first..=last).map(|(&m, _)| m));
        }
        minutes.sort_unstable();
        minutes.dedup();
        for m in minutes {
            let minute = &self.minutes[&m];
            seen += minute.seen;
            taken.push((minute.names.strings().to_vec().into(), minute.digests.clone()));
        }
        SampleSnapshot { minutes: taken, seen }
    }

    /// Digests kept, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        (self.minutes.values().map(|m| m.digests.len()).sum(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelens_core::model::{Span, SpanId, SpanKind, TraceId};

    const T0: u64 = 1_800_000_000_000_000_000;

    fn trace(dict: &mut Dictionary, i: u32, start_ns: u64) -> Trace {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_be_bytes());
        let mut s = Span::new(TraceId(id), SpanId([1; 8]));
        s.service = dict.intern("svc");
        s.name = dict.intern("op");
        s.resource = dict.resource(Vec::new());
        s.kind = SpanKind::Server;
        s.start_ns = start_ns;
        s.end_ns = start_ns + 1_000_000;
        tracelens_core::assemble::assemble_all([s]).0.remove(0)
    }

    #[test]
    fn each_minute_keeps_a_bounded_sample_and_counts_every_trace() {
        let mut dict = Dictionary::default();
        let mut samples = Samples::new(10, 3_600_000);
        // 100 traces in the first minute, 5 in the second.
        for i in 0..100 {
            let t = trace(&mut dict, i, T0 + u64::from(i) * 100_000_000);
            samples.offer(&dict, &t);
        }
        for i in 0..5 {
            let t = trace(&mut dict, 1_000 + i, T0 + 61_000_000_000 + u64::from(i));
            samples.offer(&dict, &t);
        }
        assert_eq!(samples.size().0, 15);
        let all = samples.snapshot(&[(T0, T0 + 120_000_000_000)]);
        assert_eq!((all.len(), all.seen), (15, 105));
        let ids: Vec<Vec<u8>> = all.decoded().flat_map(|(_, digests)| digests.map(|d| d.unwrap().trace_id)).collect();
        // The first minute's sample is drawn from all of its traces, not
        // just the first ten.
        let late = ids.iter().filter(|id| u32::from_be_bytes(id[..4].try_into().unwrap()) >= 10).count();
        assert!(late >= 10, "{ids:?}");
        assert!(all.decoded().all(|(names, _)| names.iter().any(|s| s == "svc")), "each minute names its own");
        let second = samples.snapshot(&[(T0 + 60_000_000_000, T0 + 61_500_000_000)]);
        assert_eq!((second.len(), second.seen), (5, 5));
        // An hour and a bit later, the first minute goes.
        samples.expire(T0 / 1_000_000 + 3_600_000 + 90_000);
        assert_eq!(samples.size().0, 5);
        assert_eq!(samples.first_ms(), Some((T0 / 1_000_000 / MINUTE_MS + 1) * MINUTE_MS));
    }
}
