//! Intervals for pass rates.

use statrs::distribution::{ContinuousCDF, Normal};

use super::Interval;

/// The Wilson score interval of `successes` out of `n` (as statsmodels'
/// `proportion_confint(method="wilson")`). None for n = 0.
pub fn wilson(successes: u64, n: u64, level: f64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let z = Normal::standard().inverse_cdf(1.0 - (1.0 - level) / 2.0);
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and n the bounds are exactly 0 and 1; rounding would leave
    // a speck.
    Some(Interval {
        estimate: p,
        low: if successes == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        high: if p == 1.0 {
            1.0
        } else {
            (center + half).min(1.0)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_edges() {
        assert!(wilson(0, 0, 0.95).is_none());
        let none = wilson(0, 10, 0.95).unwrap();
        assert_eq!(none.low, 0.0);
        assert!(none.high > 0.2 && none.high < 0.35);
        let all = wilson(10, 10, 0.95).unwrap();
        assert_eq!(all.high, 1.0);
    }
}
