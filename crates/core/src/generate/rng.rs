//! A small seeded random number generator (xoshiro256**, seeded through
//! splitmix64) and the distributions the workload model samples. Written
//! here rather than taken from a crate so that a seed means the same output
//! in every version of tracelens.

/// Deterministic random source.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A non-zero 8-byte id.
    pub fn span_id(&mut self) -> [u8; 8] {
        loop {
            let v = self.next_u64();
            if v != 0 {
                return v.to_be_bytes();
            }
        }
    }

    /// A non-zero 16-byte id.
    pub fn trace_id(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        out[8..].copy_from_slice(&self.span_id());
        out
    }
}

/// A log-normal latency given by its median and 99th percentile, with an
/// optional extra tail: with probability `tail_probability` a sample is
/// multiplied by `tail_factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogNormal {
    /// ln(median)
    mu: f64,
    /// shape
    sigma: f64,
    /// Probability of a tail event.
    pub tail_probability: f64,
    /// Multiplier on a tail event.
    pub tail_factor: f64,
}

/// z-score of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

impl LogNormal {
    /// From the median and p99 in nanoseconds (`p99 >= median > 0`).
    pub fn from_median_p99(median_ns: f64, p99_ns: f64) -> LogNormal {
        let median = median_ns.max(1.0);
        let p99 = p99_ns.max(median);
        LogNormal { mu: median.ln(), sigma: (p99 / median).ln() / Z99, tail_probability: 0.0, tail_factor: 1.0 }
    }

    /// The median in nanoseconds.
    pub fn median_ns(&self) -> f64 {
        self.mu.exp()
    }

    /// The p99 in nanoseconds (without the extra tail).
    pub fn p99_ns(&self) -> f64 {
        (self.mu + self.sigma * Z99).exp()
    }

    /// Multiplies every sample by `factor`.
    pub fn scaled(mut self, factor: f64) -> LogNormal {
        self.mu += factor.max(1e-9).ln();
        self
    }

    /// A sample in nanoseconds.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let mut v = (self.mu + self.sigma * rng.normal()).exp();
        if rng.chance(self.tail_probability) {
            v *= self.tail_factor;
        }
        v.clamp(1.0, 3.6e12) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], c.next_u64());
        // Pinned: a seed must mean the same workload in every version.
        assert_eq!(Rng::new(0).next_u64(), 0x99ec_5f36_cb75_f2b4);
    }

    #[test]
    fn lognormal_quantiles_match_parameters() {
        let d = LogNormal::from_median_p99(10e6, 100e6);
        let mut rng = Rng::new(7);
        let mut xs: Vec<u64> = (0..200_000).map(|_| d.sample(&mut rng)).collect();
        xs.sort_unstable();
        let median = xs[xs.len() / 2] as f64;
        let p99 = xs[xs.len() * 99 / 100] as f64;
        assert!((median / 10e6 - 1.0).abs() < 0.03, "median {median}");
        assert!((p99 / 100e6 - 1.0).abs() < 0.08, "p99 {p99}");
    }

    #[test]
    fn ranges_and_units() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            let r = rng.range(3, 5);
            assert!((3..=5).contains(&r));
        }
        assert_eq!(rng.range(4, 4), 4);
        assert!(!rng.chance(0.0));
    }
}
