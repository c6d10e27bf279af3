//! Duration distributions: exponential, lognormal, triangular, fixed and empirical.
//!
//! All values are hours (of working time for staff work). A specification is validated
//! once ([`DistSpec::validate`]) and compiled into a [`Dist`] that samples without failing.

use rand::Rng;
use rand::RngExt;
use rand_distr::{Distribution, Exp, LogNormal, Triangular};
use serde::{Deserialize, Serialize};

use crate::error::ScenarioError;

/// The largest duration (hours) a distribution may produce: beyond it virtual time could not
/// be turned into a date.
pub const MAX_HOURS: f64 = 1e6;

/// A distribution as written in a scenario, e.g. `{ dist = "exponential", mean = 4.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum DistSpec {
    /// Exponential with the given mean.
    Exponential {
        /// Mean (hours).
        mean: f64,
    },
    /// Lognormal given by its own mean and standard deviation (not those of the log).
    Lognormal {
        /// Mean (hours).
        mean: f64,
        /// Standard deviation (hours).
        sd: f64,
    },
    /// Triangular on `[min, max]` with the given mode.
    Triangular {
        /// Lower bound.
        min: f64,
        /// Most likely value.
        mode: f64,
        /// Upper bound.
        max: f64,
    },
    /// Always the same value; `0` makes a stage instantaneous (it then takes no staff).
    Fixed {
        /// The value.
        value: f64,
    },
    /// Draws one of the observed values, optionally weighted.
    Empirical {
        /// Observed values.
        values: Vec<f64>,
        /// Optional weights, one per value.
        #[serde(default)]
        weights: Option<Vec<f64>>,
    },
}

impl DistSpec {
    /// Checks parameters; `field` is the dotted path used in the error.
    pub fn validate(&self, field: &str) -> Result<(), ScenarioError> {
        let bad = |reason: String| {
            Err(ScenarioError::Invalid {
                field: field.to_string(),
                reason,
            })
        };
        let fin = |x: f64| x.is_finite() && x >= 0.0;
        if let Some(big) = self.parameters().into_iter().find(|x| x.abs() > MAX_HOURS) {
            return bad(format!(
                "values above {MAX_HOURS} hours (about 114 years) are not simulated, got {big}"
            ));
        }
        match self {
            DistSpec::Exponential { mean } if !(mean.is_finite() && *mean > 0.0) => {
                bad(format!("exponential mean must be > 0, got {mean}"))
            }
            DistSpec::Lognormal { mean, sd } if !(mean.is_finite() && *mean > 0.0 && fin(*sd)) => {
                bad(format!(
                    "lognormal needs mean > 0 and sd >= 0, got mean {mean}, sd {sd}"
                ))
            }
            DistSpec::Triangular { min, mode, max }
                if !(fin(*min)
                    && fin(*mode)
                    && fin(*max)
                    && min <= mode
                    && mode <= max
                    && min < max) =>
            {
                bad(format!(
                    "triangular needs 0 <= min <= mode <= max and min < max, got {min}, {mode}, {max}"
                ))
            }
            DistSpec::Fixed { value } if !fin(*value) => {
                bad(format!("fixed value must be >= 0, got {value}"))
            }
            DistSpec::Empirical { values, weights } => {
                if values.is_empty() {
                    return bad("empirical needs at least one value".into());
                }
                if let Some(v) = values.iter().find(|v| !fin(**v)) {
                    return bad(format!("empirical values must be >= 0, got {v}"));
                }
                if let Some(w) = weights {
                    if w.len() != values.len() {
                        return bad(format!("{} weights for {} values", w.len(), values.len()));
                    }
                    if w.iter().any(|x| !fin(*x)) || w.iter().sum::<f64>() <= 0.0 {
                        return bad("weights must be >= 0 with a positive sum".into());
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Every number the specification holds.
    pub fn parameters(&self) -> Vec<f64> {
        match self {
            DistSpec::Exponential { mean } => vec![*mean],
            DistSpec::Lognormal { mean, sd } => vec![*mean, *sd],
            DistSpec::Triangular { min, mode, max } => vec![*min, *mode, *max],
            DistSpec::Fixed { value } => vec![*value],
            DistSpec::Empirical { values, .. } => values.clone(),
        }
    }

    /// Compiles a validated specification.
    pub fn compile(&self) -> Dist {
        match self {
            DistSpec::Exponential { mean } => Dist::Exponential(
                Exp::new(1.0 / mean).unwrap_or_else(|_| Exp::new(1.0).expect("rate 1 is valid")),
            ),
            DistSpec::Lognormal { mean, sd } => {
                if *sd == 0.0 {
                    return Dist::Fixed(*mean);
                }
                // Convert the mean and sd of the variable into mu and sigma of its logarithm.
                let sigma2 = (1.0 + (sd * sd) / (mean * mean)).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                match LogNormal::new(mu, sigma2.sqrt()) {
                    Ok(d) => Dist::Lognormal(d),
                    Err(_) => Dist::Fixed(*mean),
                }
            }
            DistSpec::Triangular { min, mode, max } => match Triangular::new(*min, *max, *mode) {
                Ok(d) => Dist::Triangular(d),
                Err(_) => Dist::Fixed(*mode),
            },
            DistSpec::Fixed { value } => Dist::Fixed(*value),
            DistSpec::Empirical { values, weights } => {
                let w = weights.clone().unwrap_or_else(|| vec![1.0; values.len()]);
                let total: f64 = w.iter().sum();
                let mut acc = 0.0;
                let cumulative = w
                    .iter()
                    .map(|x| {
                        acc += x / total;
                        acc
                    })
                    .collect();
                Dist::Empirical {
                    values: values.clone(),
                    cumulative,
                }
            }
        }
    }

    /// The distribution's mean (for documentation and utilisation estimates).
    pub fn mean(&self) -> f64 {
        match self {
            DistSpec::Exponential { mean } | DistSpec::Lognormal { mean, .. } => *mean,
            DistSpec::Triangular { min, mode, max } => (min + mode + max) / 3.0,
            DistSpec::Fixed { value } => *value,
            DistSpec::Empirical { values, weights } => {
                let w = weights.clone().unwrap_or_else(|| vec![1.0; values.len()]);
                let total: f64 = w.iter().sum();
                values.iter().zip(&w).map(|(v, w)| v * w).sum::<f64>() / total
            }
        }
    }
}

/// A compiled distribution.
#[derive(Debug, Clone)]
pub enum Dist {
    /// Exponential.
    Exponential(Exp<f64>),
    /// Lognormal.
    Lognormal(LogNormal<f64>),
    /// Triangular.
    Triangular(Triangular<f64>),
    /// Constant.
    Fixed(f64),
    /// Empirical with cumulative probabilities.
    Empirical {
        /// Values.
        values: Vec<f64>,
        /// Cumulative probabilities (last = 1).
        cumulative: Vec<f64>,
    },
}

impl Dist {
    /// Draws one value (never negative).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let x = match self {
            Dist::Exponential(d) => d.sample(rng),
            Dist::Lognormal(d) => d.sample(rng),
            Dist::Triangular(d) => d.sample(rng),
            Dist::Fixed(v) => *v,
            Dist::Empirical { values, cumulative } => {
                let u: f64 = rng.random();
                let i = cumulative.partition_point(|c| *c < u).min(values.len() - 1);
                values[i]
            }
        };
        x.max(0.0)
    }

    /// Whether every draw is zero (the stage is instantaneous and takes no staff).
    pub fn is_instant(&self) -> bool {
        matches!(self, Dist::Fixed(v) if *v == 0.0)
    }
}

/// Draws an index from weights (need not sum to 1).
pub fn pick_weighted<R: Rng + ?Sized>(rng: &mut R, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u: f64 = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn mean_of(spec: DistSpec, n: usize) -> f64 {
        let d = spec.compile();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        (0..n).map(|_| d.sample(&mut rng)).sum::<f64>() / n as f64
    }

    #[test]
    fn sample_means_match_the_specified_means() {
        for spec in [
            DistSpec::Exponential { mean: 4.0 },
            DistSpec::Lognormal { mean: 3.0, sd: 2.0 },
            DistSpec::Triangular {
                min: 1.0,
                mode: 2.0,
                max: 6.0,
            },
            DistSpec::Fixed { value: 2.5 },
            DistSpec::Empirical {
                values: vec![1.0, 2.0, 10.0],
                weights: Some(vec![1.0, 1.0, 2.0]),
            },
        ] {
            let expected = spec.mean();
            let got = mean_of(spec.clone(), 200_000);
            assert!(
                (got - expected).abs() / expected < 0.02,
                "{spec:?}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let err = DistSpec::Triangular {
            min: 3.0,
            mode: 1.0,
            max: 2.0,
        }
        .validate("service.intake.room")
        .unwrap_err();
        assert!(
            matches!(err, ScenarioError::Invalid { ref field, .. } if field == "service.intake.room"),
            "{err}"
        );
        assert!(DistSpec::Exponential { mean: 0.0 }.validate("x").is_err());
        assert!(
            DistSpec::Exponential { mean: f64::NAN }
                .validate("x")
                .is_err()
        );
        assert!(
            DistSpec::Empirical {
                values: vec![],
                weights: None
            }
            .validate("x")
            .is_err()
        );
        assert!(
            DistSpec::Empirical {
                values: vec![1.0],
                weights: Some(vec![1.0, 2.0])
            }
            .validate("x")
            .is_err()
        );
        assert!(
            DistSpec::Lognormal {
                mean: 1.0,
                sd: -1.0
            }
            .validate("x")
            .is_err()
        );
    }
}
