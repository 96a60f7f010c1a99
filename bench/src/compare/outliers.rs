//! Outlier flags from the median absolute deviation (Iglewicz–Hoaglin
//! modified z-score), robust where a mean and standard deviation are not.

use super::stats::{mad, median};

/// |modified z| above this marks an outlier (Iglewicz and Hoaglin's 3.5).
pub const THRESHOLD: f64 = 3.5;

/// The modified z-score of each sample: 0.6745 · (x − median) / MAD.
/// All zeros when MAD is zero (no spread: nothing stands out robustly).
pub fn modified_z_scores(xs: &[f64]) -> Vec<f64> {
    let (Some(m), Some(d)) = (median(xs), mad(xs)) else {
        return Vec::new();
    };
    if d == 0.0 {
        return vec![0.0; xs.len()];
    }
    xs.iter().map(|x| 0.6745 * (x - m) / d).collect()
}

/// The indices of the samples whose |modified z| exceeds [`THRESHOLD`].
pub fn outlier_indices(xs: &[f64]) -> Vec<usize> {
    modified_z_scores(xs)
        .iter()
        .enumerate()
        .filter(|(_, z)| z.abs() > THRESHOLD)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slow_run_is_flagged() {
        let xs = [10.0, 11.0, 10.5, 9.5, 10.2, 40.0, 10.1];
        assert_eq!(outlier_indices(&xs), vec![5]);
    }

    #[test]
    fn scores_are_signed_and_scaled() {
        // median 2, MAD 1: x = 6 → 0.6745·4.
        let z = modified_z_scores(&[1.0, 2.0, 3.0, 2.0, 6.0]);
        assert!((z[4] - 0.6745 * 4.0).abs() < 1e-12);
        assert!(z[0] < 0.0);
    }

    #[test]
    fn no_spread_and_empty() {
        assert!(outlier_indices(&[5.0, 5.0, 5.0, 9.0]).is_empty());
        assert!(outlier_indices(&[]).is_empty());
    }
}
