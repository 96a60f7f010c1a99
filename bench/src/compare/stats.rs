//! Summary statistics of a sample vector, as pure functions.
//!
//! Empty input gives `None` rather than a panic or a NaN that would leak into
//! the exports.

use serde::{Deserialize, Serialize};

/// The median of `xs` (mean of the two middle values for an even count).
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
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
        Some(Summary {
            n: xs.len(),
            mean: mean(xs)?,
            stddev: stddev(xs)?,
            median: median(xs)?,
            min: min(xs)?,
            max: max(xs)?,
            mad: mad(xs)?,
        })
    }
}

/// A ratio `a / b` with its propagated standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// The ratio of the two central values.
    pub value: f64,
    /// Its standard error, from the relative errors of both sides added in quadrature.
    pub error: f64,
}

/// `a / b` where each side is a (value, standard deviation) pair:
/// σ_r = |r| · √((σa/a)² + (σb/b)²). `None` when `b` or `a` is zero or not finite.
pub fn ratio(a: f64, sa: f64, b: f64, sb: f64) -> Option<Ratio> {
    if a == 0.0 || b == 0.0 || !a.is_finite() || !b.is_finite() {
        return None;
    }
    let value = a / b;
    let error = value.abs() * ((sa / a).powi(2) + (sb / b).powi(2)).sqrt();
    Some(Ratio { value, error })
}

/// The ratio of two summaries' medians, with the error from their standard deviations.
pub fn summary_ratio(a: &Summary, b: &Summary) -> Option<Ratio> {
    ratio(a.median, a.stddev, b.median, b.stddev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn median_odd_even_unsorted() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
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
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn ratio_error_propagation() {
        // 10 ± 1 over 5 ± 0.5: r = 2, relative errors 0.1 and 0.1 → 2·√0.02.
        let r = ratio(10.0, 1.0, 5.0, 0.5).unwrap();
        assert!(close(r.value, 2.0));
        assert!(close(r.error, 2.0 * 0.02f64.sqrt()));
        // Exact values carry no error.
        let r = ratio(3.0, 0.0, 4.0, 0.0).unwrap();
        assert!(close(r.value, 0.75) && r.error == 0.0);
        assert!(ratio(1.0, 0.0, 0.0, 0.0).is_none());
        assert!(ratio(1.0, 0.0, f64::NAN, 0.0).is_none());
    }
}
