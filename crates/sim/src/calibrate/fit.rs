//! Choosing a duration distribution for observed values by the Kolmogorov–Smirnov distance.
//!
//! Each shipped family (exponential, lognormal, triangular, fixed) is fitted by its moments
//! (triangular: the sample's range, the mode from the mean; fixed: the most frequent value),
//! and the family whose CDF lies closest to the empirical CDF in the sup norm (the KS
//! statistic D) is chosen. A sample of at most 12 distinct values that no family fits at
//! the 5% level becomes an empirical distribution of them. D is printed with the 5% critical value 1.36/√n; since the
//! parameters come from the same sample, that test is conservative (Lilliefors): a fit it
//! does not reject is not rejected by the exact test either.

use serde::Serialize;

use crate::dist::DistSpec;

/// The chosen distribution for one set of observations, with its goodness of fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    /// The chosen distribution.
    pub spec: DistSpec,
    /// Its family's name.
    pub family: &'static str,
    /// Kolmogorov–Smirnov statistic of the chosen fit.
    pub ks: f64,
    /// The KS statistic of every candidate, by family.
    pub candidates: Vec<(&'static str, f64)>,
    /// Observations.
    pub n: usize,
    /// Sample mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub sd: f64,
}

impl Fit {
    /// The asymptotic 5% critical value of D for `n` observations.
    pub fn critical_5pct(&self) -> f64 {
        1.36 / (self.n.max(1) as f64).sqrt()
    }

    /// Whether the KS test at 5% does not reject the chosen fit.
    pub fn accepted(&self) -> bool {
        self.ks <= self.critical_5pct()
    }
}

/// Fits the shipped families to `values` (hours, ≥ 0) and keeps the one with the smallest KS
/// statistic. `None` when there is nothing to fit.
pub fn best_fit(values: &[f64]) -> Option<Fit> {
    let mut xs: Vec<f64> = values
        .iter()
        .copied()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .collect();
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let sd = var.sqrt();
    let (min, max) = (xs[0], xs[n - 1]);
    if max - min <= 1e-9 * max.max(1.0) {
        return Some(Fit {
            spec: DistSpec::Fixed { value: mean },
            family: "fixed",
            ks: 0.0,
            candidates: vec![("fixed", 0.0)],
            n,
            mean,
            sd,
        });
    }
    let mut candidates: Vec<(&'static str, DistSpec)> = Vec::new();
    if mean > 0.0 {
        candidates.push(("exponential", DistSpec::Exponential { mean }));
        candidates.push(("lognormal", DistSpec::Lognormal { mean, sd }));
    }
    let mode = (3.0 * mean - min - max).clamp(min, max);
    candidates.push(("triangular", DistSpec::Triangular { min, mode, max }));
    // A duration most often of one exact value (a fixed time, seen through some noise of
    // the reconstruction) is best told by its most frequent value.
    if let Some(value) = most_frequent(&xs) {
        candidates.push(("fixed", DistSpec::Fixed { value }));
    }
    let scored: Vec<(&'static str, DistSpec, f64)> = candidates
        .into_iter()
        .map(|(name, spec)| {
            let d = ks_statistic(&xs, &spec);
            (name, spec, d)
        })
        .collect();
    let mut best = scored.iter().min_by(|a, b| a.2.total_cmp(&b.2)).cloned()?;
    let mut scored = scored;
    // A duration of a few exact values (a schedule: a visit 9, 18 or 45 working hours
    // after the rectification) that no parametric family fits is the empirical
    // distribution of those values. It is the sample itself (D = 0), so it is chosen only
    // when the KS test rejects the best parametric fit.
    if let Some(spec) = few_values(&xs) {
        let d = ks_statistic(&xs, &spec);
        if best.2 > 1.36 / (n as f64).sqrt() {
            best = ("empirical", spec.clone(), d);
        }
        scored.push(("empirical", spec, d));
    }
    Some(Fit {
        spec: best.1,
        family: best.0,
        ks: best.2,
        candidates: scored.iter().map(|(n, _, d)| (*n, *d)).collect(),
        n,
        mean,
        sd,
    })
}

/// The distinct values (to [`RESOLUTION_HOURS`]) and their counts, when there are at most
/// 12 of them in a sample of at least 20.
fn few_values(sorted: &[f64]) -> Option<DistSpec> {
    let runs = groups(sorted);
    if runs.len() > 12 || runs.len() < 2 || sorted.len() < 20 {
        return None;
    }
    Some(DistSpec::Empirical {
        values: runs.iter().map(|(i, j)| sorted[(i + j) / 2]).collect(),
        weights: Some(runs.iter().map(|(i, j)| (j - i) as f64).collect()),
    })
}

/// The value that occurs most often (to [`RESOLUTION_HOURS`]), if it makes up at least a
/// tenth of the sorted sample.
fn most_frequent(sorted: &[f64]) -> Option<f64> {
    let (i, j) = groups(sorted).into_iter().max_by_key(|(i, j)| j - i)?;
    ((j - i) * 10 >= sorted.len() && j - i > 1).then_some(sorted[(i + j) / 2])
}

/// Durations closer than this (hours, 3.6 s) are one value: the log's times are whole
/// seconds, so a difference of two of them is off by up to two seconds.
pub const RESOLUTION_HOURS: f64 = 1e-3;

/// sup |F_n − F| over sorted `xs`, on both sides of every distinct value (values within
/// [`RESOLUTION_HOURS`] of each other taken as one), so that a distribution with jumps,
/// fixed or empirical, is measured right at its jumps.
pub fn ks_statistic(sorted: &[f64], spec: &DistSpec) -> f64 {
    let n = sorted.len() as f64;
    let mut d: f64 = 0.0;
    for (i, j) in groups(sorted) {
        let (below, at) = (i as f64 / n, j as f64 / n);
        d = d
            .max((at - cdf(spec, sorted[j - 1])).abs())
            .max((below - cdf_left(spec, sorted[i])).abs());
    }
    d
}

/// Index ranges `[i, j)` of the sorted sample's runs of values within
/// [`RESOLUTION_HOURS`] of the run's first.
fn groups(sorted: &[f64]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j] - sorted[i] < RESOLUTION_HOURS {
            j += 1;
        }
        out.push((i, j));
        i = j;
    }
    out
}

/// The CDF just below `x` (differs from [`cdf`] only at a jump).
fn cdf_left(spec: &DistSpec, x: f64) -> f64 {
    match spec {
        DistSpec::Fixed { value } => {
            if x > *value {
                1.0
            } else {
                0.0
            }
        }
        DistSpec::Empirical { values, weights } => {
            let w = |i: usize| weights.as_ref().map_or(1.0, |w| w[i]);
            let total: f64 = (0..values.len()).map(w).sum();
            let below: f64 = (0..values.len()).filter(|i| values[*i] < x).map(w).sum();
            if total > 0.0 { below / total } else { 0.0 }
        }
        _ => cdf(spec, x),
    }
}

/// The CDF of a distribution at `x` (the empirical one as its step function).
pub fn cdf(spec: &DistSpec, x: f64) -> f64 {
    match spec {
        DistSpec::Exponential { mean } => {
            if x <= 0.0 {
                0.0
            } else {
                1.0 - (-x / mean).exp()
            }
        }
        DistSpec::Lognormal { mean, sd } => {
            if x <= 0.0 {
                return 0.0;
            }
            let s2 = (1.0 + (sd / mean).powi(2)).ln();
            if s2 <= 0.0 {
                return if x >= *mean { 1.0 } else { 0.0 };
            }
            let mu = mean.ln() - s2 / 2.0;
            normal_cdf((x.ln() - mu) / s2.sqrt())
        }
        DistSpec::Triangular { min, mode, max } => triangular_cdf(*min, *mode, *max, x),
        DistSpec::Fixed { value } => {
            if x >= *value {
                1.0
            } else {
                0.0
            }
        }
        DistSpec::Empirical { values, weights } => {
            let w = |i: usize| weights.as_ref().map_or(1.0, |w| w[i]);
            let total: f64 = (0..values.len()).map(w).sum();
            let below: f64 = (0..values.len()).filter(|i| values[*i] <= x).map(w).sum();
            if total > 0.0 { below / total } else { 0.0 }
        }
    }
}

fn triangular_cdf(a: f64, c: f64, b: f64, x: f64) -> f64 {
    if x <= a {
        0.0
    } else if x >= b {
        1.0
    } else if x <= c {
        (x - a).powi(2) / ((b - a) * (c - a).max(f64::MIN_POSITIVE))
    } else {
        1.0 - (b - x).powi(2) / ((b - a) * (b - c).max(f64::MIN_POSITIVE))
    }
}

/// Standard normal CDF through erfc (W. J. Cody's rational Chebyshev form as given in
/// Numerical Recipes, `erfcc`: fractional error below 1.2e-7, far finer than any KS
/// distance it is compared with).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp, LogNormal};

    #[test]
    fn the_normal_cdf_has_its_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }

    #[test]
    fn exponential_samples_are_fitted_as_exponential_with_their_mean() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let exp = Exp::new(1.0 / 4.0).unwrap();
        let xs: Vec<f64> = (0..2000).map(|_| exp.sample(&mut rng)).collect();
        let fit = best_fit(&xs).unwrap();
        assert_eq!(fit.family, "exponential", "{fit:?}");
        assert!(fit.accepted(), "{fit:?}");
        assert!((fit.mean - 4.0).abs() < 4.0 * 1.96 / (2000f64).sqrt() * 1.1);
    }

    #[test]
    fn lognormal_samples_are_fitted_as_lognormal() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        // mean 10, sd 3 of the value
        let s2 = (1.0f64 + 0.09).ln();
        let ln = LogNormal::new(10f64.ln() - s2 / 2.0, s2.sqrt()).unwrap();
        let xs: Vec<f64> = (0..2000).map(|_| ln.sample(&mut rng)).collect();
        let fit = best_fit(&xs).unwrap();
        assert_eq!(fit.family, "lognormal", "{fit:?}");
        assert!(fit.accepted(), "{fit:?}");
    }

    #[test]
    fn equal_values_are_fixed_and_nothing_is_none() {
        assert_eq!(
            best_fit(&[2.0, 2.0]).unwrap().spec,
            DistSpec::Fixed { value: 2.0 }
        );
        assert!(best_fit(&[]).is_none());
    }
}
