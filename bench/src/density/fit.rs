//! The marginal cost of one more instance: an ordinary least-squares line
//! `y = intercept + slope · N` through the ramp's (N, memory) points, with
//! the standard errors of slope and intercept (residual variance over
//! n − 2 degrees of freedom) and R².

use serde::{Deserialize, Serialize};

use super::measure::Measure;
use super::record::Ramp;

/// A fitted line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Points fitted.
    pub points: usize,
    /// Cost per instance (units of y per instance).
    pub slope: f64,
    /// Standard error of the slope (`None` with fewer than three points).
    pub slope_se: Option<f64>,
    /// y at N = 0.
    pub intercept: f64,
    /// Standard error of the intercept.
    pub intercept_se: Option<f64>,
    /// Coefficient of determination.
    pub r2: Option<f64>,
}

/// Least squares through `points` (x, y); `None` with fewer than two
/// points or all x equal.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ssr: f64 = points
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    let (slope_se, intercept_se) = if n > 2 {
        let s2 = ssr / (nf - 2.0);
        (
            Some((s2 / sxx).sqrt()),
            Some((s2 * (1.0 / nf + mx * mx / sxx)).sqrt()),
        )
    } else {
        (None, None)
    };
    let r2 = (syy > 0.0).then(|| 1.0 - ssr / syy);
    Some(Fit {
        points: n,
        slope,
        slope_se,
        intercept,
        intercept_se,
        r2,
    })
}

/// The (N, KiB) points of `measure` over `ramp`'s steps.
pub fn points(ramp: &Ramp, measure: Measure) -> Vec<(f64, f64)> {
    ramp.steps
        .iter()
        .filter_map(|s| Some((f64::from(s.n), measure.kib(&ramp.baseline, s)?)))
        .collect()
}

/// The fit of `measure` over `ramp`, KiB per instance.
pub fn fit_ramp(ramp: &Ramp, measure: Measure) -> Option<Fit> {
    // A measure seen at N = 0 only (cgroup memory before any instance) is no line.
    let pts = points(ramp, measure);
    if pts.iter().filter(|p| p.0 > 0.0).count() < 1 {
        return None;
    }
    fit(&pts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_line() {
        let f = fit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12);
        assert!((f.intercept - 1.0).abs() < 1e-12);
        assert!(f.slope_se.unwrap() < 1e-9);
        assert!((f.r2.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn standard_errors_match_the_textbook() {
        // x = 1..5, y = 2.1 3.9 6.2 7.8 10.1: slope 1.99, SE 0.0597 (by hand:
        // residuals .06 -.13 .18 -.21 .10, SSR = 0.107, Sxx = 10).
        let pts = [(1.0, 2.1), (2.0, 3.9), (3.0, 6.2), (4.0, 7.8), (5.0, 10.1)];
        let f = fit(&pts).unwrap();
        assert!((f.slope - 1.99).abs() < 1e-9, "{f:?}");
        assert!((f.intercept - 0.05).abs() < 1e-9, "{f:?}");
        let se = f.slope_se.unwrap();
        assert!((se - (0.107_f64 / 3.0 / 10.0).sqrt()).abs() < 1e-9, "{se}");
        let ise = f.intercept_se.unwrap();
        assert!((ise - (0.107_f64 / 3.0 * (0.2 + 9.0 / 10.0)).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn too_few_points_is_no_fit() {
        assert!(fit(&[]).is_none());
        assert!(fit(&[(1.0, 1.0)]).is_none());
        assert!(fit(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
        let two = fit(&[(0.0, 0.0), (2.0, 4.0)]).unwrap();
        assert_eq!((two.slope, two.slope_se), (2.0, None));
    }
}
