//! The statistics of the regression judge, as plain functions over numbers:
//! the Hodges–Lehmann shift with its Mann–Whitney confidence interval
//! (exact for small samples, normal with tie correction otherwise, order
//! statistics picked from the implicit sorted difference matrix without
//! materialising it), a cluster bootstrap of a quantile ratio, Fisher's
//! exact test, Wilson intervals, Benjamini–Hochberg, and the normal and
//! binomial helpers they need.

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit,
/// relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Standard normal quantile (Acklam's algorithm, relative error about
/// 1e-9, refined by one Halley step against [`normal_cdf`]; about 1e-7
/// overall, far below what any interval here needs).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let plow = 0.024_25;
    let x = if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One Halley refinement step.
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// One-sided Fisher exact test that the candidate's rate is higher: the
/// probability, given the margins, of at least `c_err` candidate errors.
pub fn fisher_greater(b_err: u64, b_n: u64, c_err: u64, c_n: u64) -> f64 {
    let errors = b_err + c_err;
    let total = b_n + c_n;
    if c_n == 0 || errors == 0 {
        return 1.0;
    }
    let hi = errors.min(c_n);
    let lo = errors.saturating_sub(b_n);
    let ln_denominator = ln_choose(total, errors);
    let mut p = 0.0;
    for k in c_err.max(lo)..=hi {
        p += (ln_choose(c_n, k) + ln_choose(b_n, errors - k) - ln_denominator).exp();
    }
    p.min(1.0)
}

/// Wilson score interval of a proportion at two-sided level `level`.
pub fn wilson(k: u64, n: u64, level: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = normal_quantile(0.5 + level / 2.0);
    let (n, p) = (n as f64, k as f64 / n as f64);
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Benjamini–Hochberg adjusted p-values, in the input order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank_from_top, &i) in order.iter().enumerate() {
        let rank = m - rank_from_top;
        running = running.min(p[i] * m as f64 / rank as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// Two-sided p-value of a binomial count against expected share `rho`
/// (normal approximation with continuity correction; exact below 30
/// trials).
pub fn binomial_two_sided(k: u64, n: u64, rho: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&rho) {
        return 1.0;
    }
    if n < 30 {
        let pmf = |i: u64| {
            if rho == 0.0 || rho == 1.0 {
                let hit = (rho == 0.0 && i == 0) || (rho == 1.0 && i == n);
                return if hit { 1.0 } else { 0.0 };
            }
            (ln_choose(n, i) + i as f64 * rho.ln() + (n - i) as f64 * (1.0 - rho).ln()).exp()
        };
        let observed = pmf(k);
        let p: f64 = (0..=n).map(pmf).filter(|&q| q <= observed * (1.0 + 1e-9)).sum();
        return p.min(1.0);
    }
    let mean = n as f64 * rho;
    let sd = (n as f64 * rho * (1.0 - rho)).sqrt();
    if sd == 0.0 {
        return if (k as f64 - mean).abs() < 0.5 { 1.0 } else { 0.0 };
    }
    let z = ((k as f64 - mean).abs() - 0.5).max(0.0) / sd;
    (2.0 * (1.0 - normal_cdf(z))).min(1.0)
}

/// A shift estimate with its confidence interval and test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shift {
    /// Hodges–Lehmann estimate of candidate − baseline.
    pub estimate: f64,
    /// Lower confidence bound.
    pub lo: f64,
    /// Upper confidence bound.
    pub hi: f64,
    /// Two-sided Mann–Whitney p-value.
    pub p_value: f64,
}

/// Pairs (i, j) with `c[i] - b[j] <= x`, both sorted ascending.
fn count_at_most(b: &[f64], c: &[f64], x: f64) -> u64 {
    let mut count = 0u64;
    let mut j = 0usize;
    // For increasing c[i], the b[j] with c[i] - b[j] <= x start later.
    for &ci in c {
        while j < b.len() && ci - b[j] > x {
            j += 1;
        }
        count += (b.len() - j) as u64;
    }
    count
}

/// The `k`-th smallest (1-based) of all `c[i] - b[j]`, without
/// materialising them: bisection on the value, counting in O(m + n).
fn kth_difference(b: &[f64], c: &[f64], k: u64) -> f64 {
    let (mut lo, mut hi) = (c[0] - b[b.len() - 1], c[c.len() - 1] - b[0]);
    if count_at_most(b, c, lo) >= k {
        return lo;
    }
    // Invariant: count(lo) < k <= count(hi).
    for _ in 0..200 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if count_at_most(b, c, mid) >= k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // Snap to the actual difference: the largest one not above `hi`.
    let mut best = f64::NEG_INFINITY;
    let mut j = 0usize;
    for &ci in c {
        while j < b.len() && ci - b[j] > hi {
            j += 1;
        }
        if j < b.len() {
            best = best.max(ci - b[j]);
        }
    }
    best
}

/// Exact null distribution of the Mann–Whitney U (no ties): P(U <= u)
/// for u in 0..=m·n.
fn exact_u_cdf(m: usize, n: usize) -> Vec<f64> {
    // f[i][j][u] via the recurrence on the largest observation, kept as a
    // rolling table over (i, j) of u-counts (as f64: counts grow fast).
    let mut table: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n + 1]; m + 1];
    for i in 0..=m {
        for j in 0..=n {
            let mut f = vec![0.0; i * j + 1];
            if i == 0 || j == 0 {
                f[0] = 1.0;
            } else {
                // Largest is from the first sample: it beats all j of the second.
                for (u, v) in table[i - 1][j].iter().enumerate() {
                    f[u + j] += v;
                }
                for (u, v) in table[i][j - 1].iter().enumerate() {
                    f[u] += v;
                }
            }
            table[i][j] = f;
        }
    }
    let f = &table[m][n];
    let total: f64 = f.iter().sum();
    let mut acc = 0.0;
    f.iter()
        .map(|v| {
            acc += v;
            acc / total
        })
        .collect()
}

/// Hodges–Lehmann estimate of the shift `candidate - baseline` with a
/// two-sided `level` confidence interval from the Mann–Whitney
/// distribution: exact when the smaller sample is under 50, normal with tie
/// correction otherwise. Inputs need not be sorted; both must be non-empty.
pub fn hodges_lehmann(baseline: &[f64], candidate: &[f64], level: f64) -> Shift {
    let mut b = baseline.to_vec();
    let mut c = candidate.to_vec();
    b.sort_by(f64::total_cmp);
    c.sort_by(f64::total_cmp);
    let (m, n) = (c.len() as u64, b.len() as u64);
    let mn = m * n;
    let estimate = if mn % 2 == 1 {
        kth_difference(&b, &c, mn.div_ceil(2))
    } else {
        (kth_difference(&b, &c, mn / 2) + kth_difference(&b, &c, mn / 2 + 1)) / 2.0
    };
    let alpha = 1.0 - level;
    // U = pairs with c > b (ties half): its null mean is mn/2.
    let u = mann_whitney_u(&b, &c);
    let (k, p_value) = if m.min(n) < 50 {
        let cdf = exact_u_cdf(c.len(), b.len());
        // Largest k with P(U <= k - 1) <= alpha/2.
        let mut k = 0u64;
        while (k as usize) < cdf.len() && cdf[k as usize] <= alpha / 2.0 {
            k += 1;
        }
        let lower = u.floor() as usize;
        let upper = (mn as f64 - u).floor() as usize;
        let tail = cdf[lower.min(cdf.len() - 1)].min(cdf[upper.min(cdf.len() - 1)]);
        (k, (2.0 * tail).min(1.0))
    } else {
        let var = variance_u(&b, &c);
        let z = normal_quantile(1.0 - alpha / 2.0);
        let k = (mn as f64 / 2.0 - z * var.sqrt()).floor().max(0.0) as u64;
        let zu = ((u - mn as f64 / 2.0).abs() - 0.5).max(0.0) / var.sqrt().max(f64::MIN_POSITIVE);
        (k, (2.0 * (1.0 - normal_cdf(zu))).min(1.0))
    };
    let (lo, hi) = if k == 0 {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        (kth_difference(&b, &c, k), kth_difference(&b, &c, mn + 1 - k))
    };
    Shift { estimate, lo, hi, p_value }
}

/// Mann–Whitney U of the candidate over the baseline (ties count half),
/// both sorted.
fn mann_whitney_u(b: &[f64], c: &[f64]) -> f64 {
    let mut less = 0usize;
    let mut u = 0.0;
    for &ci in c {
        while less < b.len() && b[less] < ci {
            less += 1;
        }
        let mut equal_hi = less;
        while equal_hi < b.len() && b[equal_hi] == ci {
            equal_hi += 1;
        }
        u += less as f64 + (equal_hi - less) as f64 / 2.0;
    }
    u
}

/// Variance of U under the null, with the tie correction.
fn variance_u(b: &[f64], c: &[f64]) -> f64 {
    let (m, n) = (c.len() as f64, b.len() as f64);
    let total = m + n;
    let mut all: Vec<f64> = b.iter().chain(c).copied().collect();
    all.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j] == all[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    m * n / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)))
}

/// Hyndman–Fan type 7 quantile of sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (i, frac) = (h.floor() as usize, h - h.floor());
    if i + 1 < sorted.len() { sorted[i] + frac * (sorted[i + 1] - sorted[i]) } else { sorted[i] }
}

/// A ratio estimate with a bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    /// The ratio on the full samples.
    pub estimate: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// One-sided p-value of "no increase": (1 + #{ratio* <= 1}) / (B + 1).
    pub p_value: f64,
}

/// xorshift64*: the bootstrap's reproducible generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize * n) >> 32
    }
}

/// Quantile `q` of the values of traces drawn with multiplicity `weights`
/// (values sorted ascending, each with its trace index; `total` the
/// expanded sample's size): type 7 over the expanded sample, without
/// expanding it. Upper quantiles are found walking down from the top, so a
/// p99 costs a hundredth of the sample.
fn weighted_quantile(sorted: &[(f64, u32)], weights: &[u32], total: u64, q: f64) -> f64 {
    if total == 0 {
        return f64::NAN;
    }
    let h = (total - 1) as f64 * q;
    let (lo_rank, frac) = (h.floor() as u64, h - h.floor());
    let hi_rank = (lo_rank + 1).min(total - 1);
    let value_at = |rank: u64| -> f64 {
        if q >= 0.5 {
            // Ranks above `rank` number total - 1 - rank.
            let mut above = 0u64;
            for &(v, t) in sorted.iter().rev() {
                let w = u64::from(weights[t as usize]);
                if w > 0 && total - above - w <= rank {
                    return v;
                }
                above += w;
            }
        } else {
            let mut below = 0u64;
            for &(v, t) in sorted {
                below += u64::from(weights[t as usize]);
                if below > rank {
                    return v;
                }
            }
        }
        f64::NAN
    };
    let lo = value_at(lo_rank);
    if frac == 0.0 || hi_rank == lo_rank {
        return lo;
    }
    lo + frac * (value_at(hi_rank) - lo)
}

/// Ratio of the `q` quantiles (candidate / baseline) with a basic
/// bootstrap interval at two-sided `level`, resampling whole clusters
/// (traces) with replacement per arm `rounds` times. Each arm is a list of
/// clusters, each a list of values; the same `seed` gives the same answer.
pub fn bootstrap_quantile_ratio(
    baseline: &[Vec<f64>],
    candidate: &[Vec<f64>],
    q: f64,
    rounds: usize,
    level: f64,
    seed: u64,
) -> Ratio {
    let flatten = |arm: &[Vec<f64>]| {
        let mut v: Vec<(f64, u32)> =
            arm.iter().enumerate().flat_map(|(t, vs)| vs.iter().map(move |&x| (x, t as u32))).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let (b, c) = (flatten(baseline), flatten(candidate));
    let ones = |n: usize| vec![1u32; n];
    let estimate = weighted_quantile(&c, &ones(candidate.len()), c.len() as u64, q)
        / weighted_quantile(&b, &ones(baseline.len()), b.len() as u64, q);
    let mut rng = Rng(seed | 1);
    let mut ratios = Vec::with_capacity(rounds);
    let (mut wb, mut wc) = (vec![0u32; baseline.len()], vec![0u32; candidate.len()]);
    for _ in 0..rounds {
        let mut totals = [0u64; 2];
        for (k, (w, arm)) in [(&mut wb, baseline), (&mut wc, candidate)].into_iter().enumerate() {
            w.iter_mut().for_each(|x| *x = 0);
            for _ in 0..arm.len() {
                let t = rng.below(arm.len());
                w[t] += 1;
                totals[k] += arm[t].len() as u64;
            }
        }
        let r = weighted_quantile(&c, &wc, totals[1], q) / weighted_quantile(&b, &wb, totals[0], q);
        if r.is_finite() {
            ratios.push(r);
        }
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = 1.0 - level;
    // Basic (reverse percentile) interval, on the log scale so that it
    // stays positive: exp(2 ln θ - ln θ*_(1-α/2)), exp(2 ln θ - ln θ*_(α/2)).
    let (lo, hi) = if ratios.is_empty() || !estimate.is_finite() || estimate <= 0.0 {
        (f64::NAN, f64::NAN)
    } else {
        let l = estimate.ln();
        let upper_star = quantile_sorted(&ratios, 1.0 - alpha / 2.0).ln();
        let lower_star = quantile_sorted(&ratios, alpha / 2.0).ln();
        ((2.0 * l - upper_star).exp(), (2.0 * l - lower_star).exp())
    };
    let not_higher = ratios.iter().filter(|&&r| r <= 1.0).count();
    Ratio { estimate, lo, hi, p_value: (1 + not_higher) as f64 / (ratios.len() + 1) as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn normal_functions_match_tables() {
        assert!(close(normal_cdf(1.959_963_984_540_054), 0.975, 1e-6));
        assert!(close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-6));
        assert!(close(normal_quantile(0.99), 2.326_347_874_040_841, 1e-6));
        assert!(close(normal_quantile(0.01), -2.326_347_874_040_841, 1e-6));
        assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-12));
        assert!(close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-12));
    }

    #[test]
    fn fisher_matches_a_known_table() {
        // Tea tasting: 3 of 4 right in each arm => one-sided p = 17/70.
        assert!(close(fisher_greater(1, 4, 3, 4), 17.0 / 70.0, 1e-9));
        assert!(close(fisher_greater(0, 4, 4, 4), 1.0 / 70.0, 1e-9));
        assert_eq!(fisher_greater(0, 100, 0, 100), 1.0);
        // 20/9833 vs 14/1021 (the spec's example) is far below 1e-5.
        assert!(fisher_greater(20, 9833, 14, 1021) < 1e-5);
    }

    #[test]
    fn wilson_and_bh() {
        let (lo, hi) = wilson(10, 100, 0.95);
        assert!(close(lo, 0.0552, 1e-3) && close(hi, 0.1744, 1e-3), "{lo} {hi}");
        let adj = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
        assert_eq!(adj.iter().map(|p| (p * 1e4).round() / 1e4).collect::<Vec<_>>(), vec![0.02, 0.04, 0.04, 0.02]);
    }

    #[test]
    fn hodges_lehmann_equals_brute_force() {
        let b: Vec<f64> = (0..37).map(|i| ((i * 7919) % 101) as f64 / 10.0).collect();
        let c: Vec<f64> = (0..29).map(|i| ((i * 104_729) % 97) as f64 / 10.0 + 1.5).collect();
        let mut d: Vec<f64> = c.iter().flat_map(|x| b.iter().map(move |y| x - y)).collect();
        d.sort_by(f64::total_cmp);
        let s = hodges_lehmann(&b, &c, 0.98);
        let mn = d.len();
        let median = if mn % 2 == 1 { d[mn / 2] } else { (d[mn / 2 - 1] + d[mn / 2]) / 2.0 };
        assert!(close(s.estimate, median, 1e-12), "{} vs {median}", s.estimate);
        assert!(s.lo <= s.estimate && s.estimate <= s.hi);
        // The interval's ends are differences themselves.
        assert!(d.contains(&s.lo) && d.contains(&s.hi));
        // Large samples: the normal branch, same estimate rule.
        let b: Vec<f64> = (0..400).map(|i| (i as f64 * 0.37).sin()).collect();
        let c: Vec<f64> = (0..300).map(|i| (i as f64 * 0.53).cos() + 0.25).collect();
        let mut d: Vec<f64> = c.iter().flat_map(|x| b.iter().map(move |y| x - y)).collect();
        d.sort_by(f64::total_cmp);
        let s = hodges_lehmann(&b, &c, 0.98);
        assert!(close(s.estimate, (d[d.len() / 2 - 1] + d[d.len() / 2]) / 2.0, 1e-12));
        assert!(s.lo < s.estimate && s.estimate < s.hi && s.p_value < 1e-6);
    }

    #[test]
    fn exact_u_distribution_is_right_for_tiny_samples() {
        // m = n = 2: U in 0..=4 with counts 1,1,2,1,1 of 6.
        let cdf = exact_u_cdf(2, 2);
        let expected = [1.0 / 6.0, 2.0 / 6.0, 4.0 / 6.0, 5.0 / 6.0, 1.0];
        for (a, b) in cdf.iter().zip(expected) {
            assert!(close(*a, b, 1e-12));
        }
        // Identical samples: no shift, a wide interval, p = 1.
        let same = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let s = hodges_lehmann(&same, &same, 0.98);
        assert_eq!(s.estimate, 0.0);
        assert!(s.lo < 0.0 && s.hi > 0.0 && s.p_value > 0.9, "{s:?}");
    }

    #[test]
    fn bootstrap_finds_a_tail_ratio_and_is_reproducible() {
        let arm = |scale: f64, n: usize| -> Vec<Vec<f64>> {
            (0..n).map(|i| vec![1.0 + (i % 100) as f64 * if i % 100 >= 98 { scale } else { 1.0 }]).collect()
        };
        let b = arm(1.0, 2000);
        let c = arm(3.0, 2000);
        let r = bootstrap_quantile_ratio(&b, &c, 0.99, 500, 0.98, 7);
        assert!(r.estimate > 2.0 && r.lo > 1.2, "{r:?}");
        assert!(r.p_value < 0.01);
        assert_eq!(r, bootstrap_quantile_ratio(&b, &c, 0.99, 500, 0.98, 7));
        let same = bootstrap_quantile_ratio(&b, &b, 0.99, 500, 0.98, 7);
        assert!(same.lo <= 1.0 && same.hi >= 1.0, "{same:?}");
    }

    #[test]
    fn weighted_quantiles_equal_expanding_the_sample() {
        let sorted: Vec<(f64, u32)> = (0..50).map(|i| (i as f64, (i % 7) as u32)).collect();
        let weights = [2u32, 0, 1, 3, 0, 1, 2];
        let mut expanded: Vec<f64> =
            sorted.iter().flat_map(|&(v, t)| std::iter::repeat_n(v, weights[t as usize] as usize)).collect();
        expanded.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let got = weighted_quantile(&sorted, &weights, expanded.len() as u64, q);
            assert!(close(got, quantile_sorted(&expanded, q), 1e-12), "q {q}: {got}");
        }
    }

    #[test]
    fn binomial_split_test() {
        assert!(binomial_two_sided(100, 1000, 0.1) > 0.5);
        assert!(binomial_two_sided(300, 1000, 0.1) < 1e-10);
        assert!(binomial_two_sided(3, 10, 0.3) > 0.9);
    }
}
