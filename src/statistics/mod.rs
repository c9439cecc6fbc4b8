//! The statistics of experiments: how sure a mean is, how sure a difference
//! between two prompt variants over the same items is, and whether it could
//! be chance. Everything is reproducible: resampling uses a fixed-seed RNG,
//! so the same scores always give the same interval. Checked against scipy
//! and statsmodels (`tests/statistics_fixtures.rs`).

pub mod bootstrap;
pub mod hypothesis;
pub mod paired;
pub mod proportion;

use serde::{Deserialize, Serialize};

/// The confidence level of every interval whet shows.
pub const LEVEL: f64 = 0.95;

/// Resamples for bootstrap intervals and Monte Carlo p-values.
pub const RESAMPLES: usize = 10_000;

/// The seed of every resampling, so a run prints the same interval twice.
pub const SEED: u64 = 20_261_130;

/// An estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// Whether the interval leaves out `value` (e.g. a difference of 0).
    pub fn excludes(&self, value: f64) -> bool {
        value < self.low || value > self.high
    }
}

/// The arithmetic mean; NaN for no values.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}
