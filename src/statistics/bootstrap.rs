//! Percentile bootstrap intervals (as scipy.stats.bootstrap with
//! `method="percentile"`): resample the values with replacement, take the
//! statistic of each resample, read the interval off their percentiles.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{mean, Interval};

/// The mean of `values` with a `level` interval from `resamples` bootstrap
/// resamples drawn with `seed`. None for no values.
pub fn mean_interval(values: &[f64], level: f64, resamples: usize, seed: u64) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some(Interval {
        estimate: mean(values),
        low: percentile(&means, tail),
        high: percentile(&means, 1.0 - tail),
    })
}

/// The mean difference `b - a` over paired values, with a paired bootstrap
/// interval (items resampled, each keeping its pair). None when the
/// lengths differ or there are no pairs.
pub fn paired_difference_interval(
    a: &[f64],
    b: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    if a.len() != b.len() {
        return None;
    }
    let differences: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    mean_interval(&differences, level, resamples, seed)
}

/// numpy's default ("linear") percentile of sorted values, `q` in 0..=1.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = position.floor() as usize;
            let above = (below + 1).min(n - 1);
            let fraction = position - below as f64;
            sorted[below] + (sorted[above] - sorted[below]) * fraction
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 1.0), 4.0);
        assert!((percentile(&sorted, 0.5) - 2.5).abs() < 1e-12);
        assert!((percentile(&sorted, 0.25) - 1.75).abs() < 1e-12);
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let values = [0.1, 0.5, 0.3, 0.9, 0.4, 0.7];
        let a = mean_interval(&values, 0.95, 2000, 7).unwrap();
        let b = mean_interval(&values, 0.95, 2000, 7).unwrap();
        assert_eq!(a, b);
        assert!(a.low < a.estimate && a.estimate < a.high);
        assert!(mean_interval(&[], 0.95, 10, 7).is_none());
        let constant = mean_interval(&[2.0; 5], 0.95, 100, 7).unwrap();
        assert_eq!((constant.low, constant.high), (2.0, 2.0));
    }
}
