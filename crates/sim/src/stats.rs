//! Small statistics: means, percentiles, Student-t confidence intervals, Erlang C.

use serde::{Deserialize, Serialize};

/// Mean of a slice (0 for an empty one).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The p-quantile (0..=1) by the nearest-rank method; 0 for an empty slice. Sorts a copy.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Two-sided 97.5% quantile of Student's t with `df` degrees of freedom.
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        // Beyond 30 degrees of freedom a first-order correction of the normal quantile is
        // accurate to three decimals.
        _ => 1.959_964 + 2.372 / df as f64,
    }
}

/// A mean with its 95% confidence interval over independent replications.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Sample mean.
    pub mean: f64,
    /// Half-width of the 95% confidence interval (infinite with one replication).
    pub half_width: f64,
    /// Number of replications.
    pub n: usize,
}

impl Estimate {
    /// Estimate from replication values.
    pub fn from_samples(xs: &[f64]) -> Self {
        let n = xs.len();
        let m = mean(xs);
        if n < 2 {
            return Self {
                mean: m,
                half_width: f64::INFINITY,
                n,
            };
        }
        let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
        Self {
            mean: m,
            half_width: t_975(n - 1) * (var / n as f64).sqrt(),
            n,
        }
    }

    /// Lower bound of the interval.
    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }
    /// Upper bound of the interval.
    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }
    /// Whether `x` lies in the interval.
    pub fn contains(&self, x: f64) -> bool {
        x >= self.low() && x <= self.high()
    }
}

/// Erlang C: probability that an arrival waits in an M/M/c queue with offered load
/// `a = λ/μ` (requires `a < c`).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    // Erlang B by the stable recursion, then C from B.
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    let rho = a / c as f64;
    b / (1.0 - rho + rho * b)
}

/// Closed-form mean wait in queue of M/M/c: `C(c, a) / (cμ − λ)`.
pub fn mmc_mean_wait(lambda: f64, mu: f64, c: u32) -> f64 {
    erlang_c(c, lambda / mu) / (c as f64 * mu - lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_textbook_values() {
        // M/M/1: P(wait) = rho.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        // c = 2, a = 1: C = 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        // M/M/1 mean wait: rho / (mu - lambda).
        assert!((mmc_mean_wait(0.5, 1.0, 1) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn confidence_interval_of_known_samples() {
        let e = Estimate::from_samples(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(e.mean, 3.0);
        assert!((e.half_width - 2.776 * (2.5f64 / 5.0).sqrt()).abs() < 1e-9);
        assert!(e.contains(1.1) && !e.contains(0.9));
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.9), 9.0);
        assert_eq!(percentile(&xs, 0.5), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
