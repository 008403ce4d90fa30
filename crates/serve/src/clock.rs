//! The receiver's clock: wall time as unix milliseconds, read in one place
//! so that the service layer runs on a clock set by hand in its tests.
//! Nanosecond times the receiver derives (a verdict's "now", a marker's
//! horizon) are the millisecond clock scaled, so every answer within one
//! millisecond agrees on "now".

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, unix milliseconds.
    fn now_ms(&self) -> u64;

    /// Now, unix nanoseconds (the millisecond clock, scaled).
    fn now_ns(&self) -> u64 {
        self.now_ms().saturating_mul(1_000_000)
    }
}

/// The machine's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that stands still until it is set (tests and replays).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn at(now_ms: u64) -> ManualClock {
        ManualClock(AtomicU64::new(now_ms))
    }

    /// Moves the clock to `now_ms`.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_are_the_millisecond_clock_scaled() {
        let clock = ManualClock::at(1_700_000_000_123);
        assert_eq!(clock.now_ns(), 1_700_000_000_123_000_000);
        clock.set(5);
        assert_eq!((clock.now_ms(), clock.now_ns()), (5, 5_000_000));
    }

    #[test]
    fn the_system_clock_is_past_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
