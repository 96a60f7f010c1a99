//! Summary statistics of a sample vector, as pure functions, and the
//! bootstrap confidence intervals the reports quote.
//!
//! Empty input gives `None` rather than a panic or a NaN that would leak into
//! the exports.
//!
//! Every interval here is a **percentile bootstrap 95 % confidence interval**
//! ([`BOOTSTRAP_RESAMPLES`] resamples, a fixed-seed [`SplitMix64`], so the same
//! samples always give the same interval and `vclab report` is repeatable):
//! - [`median_ci`]: of one median;
//! - [`paired_ratio`]: of the median of per-round ratios `a_i / b_i`, when both
//!   sides ran in the same interleaved rounds (the round's noise cancels);
//! - [`unpaired_ratio`]: of the ratio of two medians, each side resampled on
//!   its own, when the runs cannot be paired.

use serde::{Deserialize, Serialize};

/// Resamples drawn for every bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Seed of the bootstrap's generator (fixed: intervals are deterministic).
pub const BOOTSTRAP_SEED: u64 = 0x7C1A_B5EE_D000_2026;
/// Coverage of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// The median of `xs` (mean of the two middle values for an even count).
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    Some(median_in_place(&mut v))
}

/// The median of a non-empty buffer, reordering it (selection, no full sort).
fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        hi
    } else {
        // The lower middle is the largest value left of the upper one.
        let lo = v[..n / 2]
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(hi);
        (lo + hi) / 2.0
    }
}

/// The arithmetic mean of `xs`.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The sample standard deviation (n − 1 in the denominator); 0 for one value.
pub fn stddev(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    if xs.len() < 2 {
        return Some(0.0);
    }
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// The median absolute deviation from the median (unscaled).
pub fn mad(xs: &[f64]) -> Option<f64> {
    let m = median(xs)?;
    let dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    median(&dev)
}

/// The smallest value.
pub fn min(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().min_by(f64::total_cmp)
}

/// The largest value.
pub fn max(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().max_by(f64::total_cmp)
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): small, fast and good enough to draw resample
/// indices; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n` > 0; Lemire's multiply-shift, whose bias
    /// of at most n / 2⁶⁴ is far below anything a bootstrap can see).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The `q` quantile (0 ≤ q ≤ 1) of sorted, non-empty `v`, interpolating
/// linearly between order statistics.
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    match v.get(i + 1) {
        Some(next) => v[i] + (next - v[i]) * frac,
        None => v[i],
    }
}

/// The central [`CONFIDENCE`] interval of bootstrap replicates.
fn percentile_interval(mut replicates: Vec<f64>) -> Option<(f64, f64)> {
    replicates.retain(|x| x.is_finite());
    if replicates.is_empty() {
        return None;
    }
    replicates.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Some((
        quantile_sorted(&replicates, tail),
        quantile_sorted(&replicates, 1.0 - tail),
    ))
}

/// Fills `buf` with a resample (with replacement) of `xs` and returns its median.
fn resampled_median(xs: &[f64], buf: &mut Vec<f64>, rng: &mut SplitMix64) -> f64 {
    buf.clear();
    buf.extend((0..xs.len()).map(|_| xs[rng.below(xs.len())]));
    median_in_place(buf)
}

/// The percentile bootstrap 95 % confidence interval of the median of `xs`:
/// (low, high). `None` when `xs` is empty; one sample gives a zero-width
/// interval (there is nothing to resample). Deterministic.
pub fn median_ci(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let mut rng = SplitMix64::new(BOOTSTRAP_SEED);
    let mut buf = Vec::with_capacity(xs.len());
    let reps = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| resampled_median(xs, &mut buf, &mut rng))
        .collect();
    percentile_interval(reps)
}

/// The summary of one measured quantity over the runs of one case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub stddev: f64,
    /// Median.
    pub median: f64,
    /// Lower end of the median's 95 % confidence interval ([`median_ci`]);
    /// 0 in a version-1 file, which had none (`vclab report` recomputes it).
    #[serde(default)]
    pub ci_low: f64,
    /// Upper end of the median's 95 % confidence interval; 0 in a version-1 file.
    #[serde(default)]
    pub ci_high: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Median absolute deviation (unscaled).
    pub mad: f64,
}

impl Summary {
    /// Summarises `xs`; `None` when there are no samples.
    pub fn of(xs: &[f64]) -> Option<Self> {
        let (ci_low, ci_high) = median_ci(xs)?;
        Some(Summary {
            n: xs.len(),
            mean: mean(xs)?,
            stddev: stddev(xs)?,
            median: median(xs)?,
            ci_low,
            ci_high,
            min: min(xs)?,
            max: max(xs)?,
            mad: mad(xs)?,
        })
    }
}

/// A ratio `a / b` of two runtimes' figures with its 95 % confidence interval.
///
/// Paired (`paired: true`): `value` is the median of the per-round ratios
/// `a_i / b_i` over the `n` rounds both sides ran in, and the interval is its
/// percentile bootstrap. Unpaired: `value` is `median(a) / median(b)` and the
/// interval comes from resampling each side on its own (`n`: the smaller
/// side's sample count).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "RatioFields")]
pub struct Ratio {
    /// The ratio (see the type's doc for which one).
    pub value: f64,
    /// Lower end of the 95 % confidence interval.
    pub ci_low: f64,
    /// Upper end of the 95 % confidence interval.
    pub ci_high: f64,
    /// From per-round pairs (`true`) or from the two sides' medians (`false`).
    pub paired: bool,
    /// Pairs (paired) or the smaller side's samples (unpaired).
    pub n: usize,
    /// Only for a ratio read from a version-1 `results.json`: its "± error",
    /// the two sides' standard deviations propagated around the medians. That
    /// is not a confidence interval; `ci_low`/`ci_high` are then `value ∓ error`
    /// and the renderers label it as the old figure. `vclab report` replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_error: Option<f64>,
}

/// What a saved ratio may hold: version 2's fields, or version 1's `error`.
#[derive(Deserialize)]
struct RatioFields {
    value: f64,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    #[serde(default)]
    paired: bool,
    #[serde(default)]
    n: usize,
    #[serde(default)]
    v1_error: Option<f64>,
    /// Version 1's propagated standard deviation.
    #[serde(default)]
    error: Option<f64>,
}

impl From<RatioFields> for Ratio {
    fn from(f: RatioFields) -> Self {
        let v1_error = f.v1_error.or(f.error);
        let e = v1_error.unwrap_or(0.0);
        Ratio {
            value: f.value,
            ci_low: f.ci_low.unwrap_or(f.value - e),
            ci_high: f.ci_high.unwrap_or(f.value + e),
            paired: f.paired,
            n: f.n,
            v1_error: if f.ci_low.is_some() { None } else { v1_error },
        }
    }
}

impl Ratio {
    /// The larger distance from `value` to an end of the interval, relative to
    /// `value` (0.02 = ±2 %). Infinite for a zero value.
    pub fn relative_half_width(&self) -> f64 {
        let half = (self.value - self.ci_low).max(self.ci_high - self.value);
        if self.value == 0.0 {
            f64::INFINITY
        } else {
            half / self.value.abs()
        }
    }
}

fn usable(x: f64) -> bool {
    x.is_finite() && x != 0.0
}

/// The paired ratio over per-round pairs `(a_i, b_i)`: the median of
/// `a_i / b_i` with its bootstrap 95 % CI. Pairs with a zero or non-finite side
/// are left out; `None` when none is left.
pub fn paired_ratio(pairs: &[(f64, f64)]) -> Option<Ratio> {
    let ratios: Vec<f64> = pairs
        .iter()
        .filter(|(a, b)| usable(*a) && usable(*b))
        .map(|(a, b)| a / b)
        .collect();
    let value = median(&ratios)?;
    let (ci_low, ci_high) = median_ci(&ratios)?;
    Some(Ratio {
        value,
        ci_low,
        ci_high,
        paired: true,
        n: ratios.len(),
        v1_error: None,
    })
}

/// The unpaired ratio `median(a) / median(b)` with a bootstrap 95 % CI that
/// resamples `a` and `b` independently. `None` when a side is empty or its
/// median is zero or not finite.
pub fn unpaired_ratio(a: &[f64], b: &[f64]) -> Option<Ratio> {
    let (ma, mb) = (median(a)?, median(b)?);
    if !usable(ma) || !usable(mb) {
        return None;
    }
    let mut rng = SplitMix64::new(BOOTSTRAP_SEED);
    let (mut ba, mut bb) = (Vec::with_capacity(a.len()), Vec::with_capacity(b.len()));
    let reps = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let ra = resampled_median(a, &mut ba, &mut rng);
            ra / resampled_median(b, &mut bb, &mut rng)
        })
        .collect();
    let (ci_low, ci_high) = percentile_interval(reps)?;
    Some(Ratio {
        value: ma / mb,
        ci_low,
        ci_high,
        paired: false,
        n: a.len().min(b.len()),
        v1_error: None,
    })
}

/// The ratio of side `a` to side `b`, each a list of `(round, value)`: paired
/// over the rounds both sides have when every value of both carries a round
/// and at least two rounds match, else unpaired over all values.
pub fn ratio_of(a: &[(Option<u32>, f64)], b: &[(Option<u32>, f64)]) -> Option<Ratio> {
    let all_rounds = a.iter().chain(b).all(|(r, _)| r.is_some());
    if all_rounds {
        let pairs: Vec<(f64, f64)> = a
            .iter()
            .filter_map(|(ra, x)| {
                let (_, y) = b.iter().find(|(rb, _)| rb == ra)?;
                Some((*x, *y))
            })
            .collect();
        if pairs.len() >= 2 {
            if let Some(r) = paired_ratio(&pairs) {
                return Some(r);
            }
        }
    }
    let values = |side: &[(Option<u32>, f64)]| side.iter().map(|(_, x)| *x).collect::<Vec<_>>();
    unpaired_ratio(&values(a), &values(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// `n` noisy values around `centre` (deterministic, ±`spread` uniform).
    fn noisy(n: usize, centre: f64, spread: f64, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                centre + spread * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
            })
            .collect()
    }

    #[test]
    fn median_odd_even_unsorted() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0, 1.0, 9.0, 2.0, 8.0, 3.0]), Some(4.0));
    }

    #[test]
    fn stddev_known_vector() {
        // Classic vector: mean 5, population sd 2, sample sd sqrt(32/7).
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(mean(&xs).unwrap(), 5.0));
        assert!(close(stddev(&xs).unwrap(), (32.0f64 / 7.0).sqrt()));
        assert_eq!(stddev(&[3.0]), Some(0.0));
        assert_eq!(stddev(&[]), None);
    }

    #[test]
    fn mad_known_vector() {
        // median 2, |x-2| = 1 1 0 0 2 4 7 → median 1.
        let xs = [1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0];
        assert_eq!(mad(&xs), Some(1.0));
        assert_eq!(mad(&[5.0, 5.0, 5.0]), Some(0.0));
    }

    #[test]
    fn summary_of_vector() {
        let s = Summary::of(&[10.0, 12.0, 11.0, 50.0]).unwrap();
        assert_eq!(s.n, 4);
        assert!(close(s.median, 11.5));
        assert_eq!(s.min, 10.0);
        assert_eq!(s.max, 50.0);
        assert!(close(s.mean, 20.75));
        assert!(s.ci_low <= s.median && s.median <= s.ci_high);
        assert!(s.ci_low >= s.min && s.ci_high <= s.max);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn splitmix_is_the_published_sequence() {
        // First outputs for seed 1234567 (the reference implementation's test vector).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        let mut r = SplitMix64::new(7);
        assert!((0..1000).all(|_| r.below(3) < 3));
    }

    #[test]
    fn median_ci_contains_the_median_and_is_deterministic() {
        let xs = noisy(15, 100.0, 20.0, 1);
        let m = median(&xs).unwrap();
        let (lo, hi) = median_ci(&xs).unwrap();
        assert!(lo <= m && m <= hi, "{lo} {m} {hi}");
        assert!(lo >= min(&xs).unwrap() && hi <= max(&xs).unwrap());
        assert!(hi > lo);
        assert_eq!(median_ci(&xs), Some((lo, hi)));
        // One value: nothing to resample; no samples: no interval.
        assert_eq!(median_ci(&[3.0]), Some((3.0, 3.0)));
        assert_eq!(median_ci(&[]), None);
        // No spread, no width.
        assert_eq!(median_ci(&[2.0; 9]), Some((2.0, 2.0)));
    }

    #[test]
    fn median_ci_narrows_with_n() {
        let width = |n| {
            let (lo, hi) = median_ci(&noisy(n, 100.0, 20.0, 2)).unwrap();
            hi - lo
        };
        let (w10, w100, w1000) = (width(10), width(100), width(1000));
        assert!(w10 > w100 && w100 > w1000, "{w10} {w100} {w1000}");
        // The median of uniform(80, 120) is 100; 1000 samples pin it closely.
        let (lo, hi) = median_ci(&noisy(1000, 100.0, 20.0, 2)).unwrap();
        assert!(lo < 100.0 + 0.5 && hi > 100.0 - 0.5 && hi - lo < 4.0);
    }

    #[test]
    fn paired_ratio_cancels_round_noise() {
        // Each round is slowed by its own factor; A is 2 % slower than B in
        // every round. Paired, the ratio is exact; unpaired, the round noise
        // shows up in the interval.
        let slow = noisy(15, 1.0, 0.3, 3);
        let b: Vec<f64> = slow.iter().map(|s| 100.0 * s).collect();
        let a: Vec<f64> = b.iter().map(|x| x * 0.98).collect();
        let pairs: Vec<(f64, f64)> = a.iter().copied().zip(b.iter().copied()).collect();
        let p = paired_ratio(&pairs).unwrap();
        assert!(close(p.value, 0.98) && close(p.ci_low, 0.98) && close(p.ci_high, 0.98));
        assert!(p.paired && p.n == 15);
        let u = unpaired_ratio(&a, &b).unwrap();
        assert!(!u.paired && close(u.value, 0.98));
        assert!(u.ci_low < 0.9 && u.ci_high > 1.05, "{u:?}");
        assert!(u.relative_half_width() > p.relative_half_width());
    }

    #[test]
    fn ratio_of_pairs_by_round_else_falls_back() {
        let a = [(Some(0), 10.0), (Some(1), 20.0), (Some(2), 30.0)];
        let b = [(Some(2), 15.0), (Some(0), 5.0), (Some(1), 10.0)];
        let r = ratio_of(&a, &b).unwrap();
        assert!(r.paired && r.n == 3 && close(r.value, 2.0));
        assert!(close(r.ci_low, 2.0) && close(r.ci_high, 2.0));
        // A side without rounds (an older file): unpaired ratio of medians.
        let old = [(None, 5.0), (None, 10.0), (None, 15.0)];
        let r = ratio_of(&a, &old).unwrap();
        assert!(!r.paired && close(r.value, 2.0));
        assert!(r.ci_low <= 2.0 && r.ci_high >= 2.0);
        // Fewer than two common rounds: unpaired too.
        let other = [(Some(7), 5.0), (Some(8), 10.0)];
        assert!(!ratio_of(&a, &other).unwrap().paired);
        // Zero or missing denominators give no ratio.
        assert!(ratio_of(&a, &[(None, 0.0)]).is_none());
        assert!(ratio_of(&a, &[]).is_none());
    }

    #[test]
    fn relative_half_width_takes_the_wider_side() {
        let r = Ratio {
            value: 2.0,
            ci_low: 1.9,
            ci_high: 2.2,
            paired: true,
            n: 10,
            v1_error: None,
        };
        assert!(close(r.relative_half_width(), 0.1));
    }

    #[test]
    fn a_version_1_ratio_loads_with_its_old_error() {
        let r: Ratio = serde_json::from_str(r#"{"value":2.0,"error":0.5}"#).unwrap();
        assert_eq!(r.v1_error, Some(0.5));
        assert!(close(r.ci_low, 1.5) && close(r.ci_high, 2.5) && !r.paired);
        let r2 = paired_ratio(&[(2.0, 1.0), (4.0, 2.0)]).unwrap();
        let text = serde_json::to_string(&r2).unwrap();
        assert!(!text.contains("v1_error") && !text.contains("\"error\""));
        assert_eq!(serde_json::from_str::<Ratio>(&text).unwrap(), r2);
        // A version-1 summary has no interval of its median.
        let s: Summary = serde_json::from_str(
            r#"{"n":1,"mean":1.0,"stddev":0.0,"median":1.0,"min":1.0,"max":1.0,"mad":0.0}"#,
        )
        .unwrap();
        assert_eq!((s.ci_low, s.ci_high), (0.0, 0.0));
    }
}
