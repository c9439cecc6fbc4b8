//! A variant against the baseline over the items both scored: the mean
//! difference with its paired interval, wins / ties / losses per item, and
//! a p-value from the test that fits the score.

use serde::{Deserialize, Serialize};

use super::bootstrap::paired_difference_interval;
use super::hypothesis::{paired_permutation, sign_test};
use super::Interval;

/// Significance threshold for marking a difference.
pub const ALPHA: f64 = 0.05;

/// How a score is compared item by item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    /// 0 or 1 (a check, exact match): the exact sign test on the items that
    /// changed (exact McNemar).
    PassFail,
    /// Any number (BLEU, chrF, ROUGE, length, a rating): the paired
    /// permutation test of the mean difference.
    Continuous,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// variant − baseline, averaged over the items.
    pub difference: Interval,
    pub wins: u64,
    pub ties: u64,
    pub losses: u64,
    pub p_value: f64,
    pub significant: bool,
}

/// The variant's scores `variant` against the baseline's `baseline`, item
/// by item (same order, same length). None when they differ in length or
/// are empty.
pub fn compare(
    baseline: &[f64],
    variant: &[f64],
    kind: ScoreKind,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<PairedComparison> {
    let difference = paired_difference_interval(baseline, variant, level, resamples, seed)?;
    let (mut wins, mut ties, mut losses) = (0, 0, 0);
    for (b, v) in baseline.iter().zip(variant) {
        match v.partial_cmp(b) {
            Some(std::cmp::Ordering::Greater) => wins += 1,
            Some(std::cmp::Ordering::Less) => losses += 1,
            _ => ties += 1,
        }
    }
    let p_value = match kind {
        ScoreKind::PassFail => sign_test(wins, losses),
        ScoreKind::Continuous => {
            let differences: Vec<f64> = baseline.iter().zip(variant).map(|(b, v)| v - b).collect();
            paired_permutation(&differences, resamples, seed)
        }
    };
    Some(PairedComparison {
        difference,
        wins,
        ties,
        losses,
        p_value,
        significant: p_value < ALPHA,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_improvement_is_significant_and_counted() {
        let baseline = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let variant = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let c = compare(&baseline, &variant, ScoreKind::PassFail, 0.95, 2000, 1).unwrap();
        assert_eq!((c.wins, c.ties, c.losses), (7, 1, 0));
        assert!((c.p_value - 2.0 / 128.0).abs() < 1e-12);
        assert!(c.significant);
        assert!((c.difference.estimate - 0.875).abs() < 1e-12);
        assert!(compare(&[1.0], &[1.0, 2.0], ScoreKind::Continuous, 0.95, 10, 1).is_none());
    }
}
