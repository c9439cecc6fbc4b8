//! p-values for "could this difference between two variants be chance?",
//! two-sided, over paired items.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{Binomial, DiscreteCDF};

use super::mean;

/// Up to this many nonzero differences the permutation test enumerates
/// every sign assignment (2^n); beyond, it samples them.
const EXACT_UP_TO: usize = 20;

/// The exact sign test (two-sided binomial test at p = ½, as
/// scipy.stats.binomtest): `wins` items where the variant did better,
/// `losses` where it did worse; ties carry no information and are left out.
/// For pass/fail scores this is the exact McNemar test. 1 when there is
/// nothing to compare.
pub fn sign_test(wins: u64, losses: u64) -> f64 {
    let n = wins + losses;
    if n == 0 {
        return 1.0;
    }
    let Ok(binomial) = Binomial::new(0.5, n) else {
        return 1.0;
    };
    // Symmetric at p = ½: twice the smaller tail.
    (2.0 * binomial.cdf(wins.min(losses))).min(1.0)
}

/// The paired permutation test of the mean difference (as
/// scipy.stats.permutation_test with `permutation_type="samples"`, two
/// pairs swapped = a difference's sign flipped): the share of sign
/// assignments whose mean is at least as far out as the observed one,
/// two-sided as scipy reports it (twice the smaller tail, at most 1).
/// Exact up to 20 differences; beyond, `resamples` random assignments
/// drawn with `seed`, counted as scipy does (+1 in numerator and
/// denominator).
pub fn paired_permutation(differences: &[f64], resamples: usize, seed: u64) -> f64 {
    let n = differences.len();
    if n == 0 {
        return 1.0;
    }
    let observed = mean(differences);
    // scipy's allowance for statistics equal up to rounding.
    let gamma = (observed * f64::EPSILON * 100.0).abs();
    let (mut less, mut greater) = (0u64, 0u64);
    let mut count = |statistic: f64| {
        less += u64::from(statistic <= observed + gamma);
        greater += u64::from(statistic >= observed - gamma);
    };
    let (total, adjustment) = if n <= EXACT_UP_TO {
        for signs in 0u64..(1u64 << n) {
            let sum: f64 = differences
                .iter()
                .enumerate()
                .map(|(i, d)| if signs >> i & 1 == 1 { -d } else { *d })
                .sum();
            count(sum / n as f64);
        }
        (1u64 << n, 0)
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..resamples {
            let sum: f64 = differences
                .iter()
                .map(|d| if rng.random_bool(0.5) { -d } else { *d })
                .sum();
            count(sum / n as f64);
        }
        (resamples as u64, 1)
    };
    let p_less = (less + adjustment) as f64 / (total + adjustment) as f64;
    let p_greater = (greater + adjustment) as f64 / (total + adjustment) as f64;
    (2.0 * p_less.min(p_greater)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_test_small_cases() {
        assert_eq!(sign_test(0, 0), 1.0);
        // 5 of 5 one way: 2 × (1/32).
        assert!((sign_test(5, 0) - 0.0625).abs() < 1e-12);
        assert!((sign_test(0, 5) - 0.0625).abs() < 1e-12);
        assert_eq!(sign_test(3, 3), 1.0);
    }

    #[test]
    fn permutation_of_all_equal_signs() {
        // Four positive differences: only the observed assignment and its
        // mirror are as extreme; one tail is 1/16.
        let p = paired_permutation(&[1.0, 2.0, 3.0, 4.0], 0, 0);
        assert!((p - 2.0 / 16.0).abs() < 1e-12, "{p}");
        assert_eq!(paired_permutation(&[0.0, 0.0], 0, 0), 1.0);
    }
}
