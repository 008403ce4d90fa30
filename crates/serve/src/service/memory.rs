//! The memory budget (`--max-memory`): the process's resident memory, as
//! the server samples it, against a limit. From [`SHED_AT`] of the limit on,
//! live analysis gives back what it holds — open traces are completed
//! early, the recent-trace cache is halved; from [`REFUSE_AT`] on, exports
//! are refused as well (retryable, counted), until a sample is under it
//! again. The margin below the limit absorbs what arrives between two
//! samples. What live analysis keeps for good (time buckets, names) is not
//! given back: a budget too small for it refuses exports until buckets
//! expire, and says so in `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Share of the limit (in tenths) from which live analysis sheds memory.
pub const SHED_AT: u64 = 6;
/// Share of the limit (in tenths) from which exports are refused.
pub const REFUSE_AT: u64 = 8;

/// A memory limit and what it caused.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    resident: AtomicU64,
    pressed: AtomicBool,
    refusals: AtomicU64,
    sheds: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> MemoryBudget {
        MemoryBudget {
            limit,
            resident: AtomicU64::new(0),
            pressed: AtomicBool::new(false),
            refusals: AtomicU64::new(0),
            sheds: AtomicU64::new(0),
        }
    }

    /// Records a sample of resident memory; true when memory is to be shed.
    pub fn observe(&self, resident: u64) -> bool {
        self.resident.store(resident, Ordering::Relaxed);
        self.pressed.store(resident >= self.limit / 10 * REFUSE_AT, Ordering::Release);
        let shed = resident >= self.limit / 10 * SHED_AT;
        if shed {
            self.sheds.fetch_add(1, Ordering::Relaxed);
        }
        shed
    }

    /// Whether exports are being refused; counts the refusal when so.
    pub fn refuses(&self) -> bool {
        let pressed = self.pressed.load(Ordering::Acquire);
        if pressed {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
        pressed
    }

    /// Whether exports are being refused.
    pub fn is_pressed(&self) -> bool {
        self.pressed.load(Ordering::Acquire)
    }

    /// The limit, bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The last sample, bytes.
    pub fn resident(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    /// Exports refused for memory.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Samples that found memory to shed.
    pub fn sheds(&self) -> u64 {
        self.sheds.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_shed_from_six_tenths_and_exports_refused_from_eight() {
        let budget = MemoryBudget::new(1_000);
        assert!(!budget.observe(599));
        assert!(budget.observe(600));
        assert!(!budget.refuses());
        assert!(budget.observe(800));
        assert!(budget.refuses() && budget.refuses());
        assert!(budget.observe(799));
        assert!(!budget.refuses(), "taken again under eight tenths");
        assert_eq!((budget.refusals(), budget.sheds(), budget.resident()), (2, 3, 799));
    }
}
