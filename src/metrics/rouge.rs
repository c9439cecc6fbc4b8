//! ROUGE-N and ROUGE-L exactly as Google's `rouge-score` package computes
//! them with `RougeScorer([...], use_stemmer=False)`: its default tokenizer
//! ([`tokenize_rouge`]: lowercase, ASCII letters and digits only), clipped
//! n-gram overlap for ROUGE-N, the longest common subsequence of tokens for
//! ROUGE-L (not the summary-level ROUGE-Lsum). Values are 0–1.
//!
//! For several references, [`rouge_n_multi`] and [`rouge_l_multi`] follow
//! `RougeScorer.score_multi`: the reference with the highest F1 (the first
//! one on a tie) gives all three numbers.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::tokenize::tokenize_rouge;

/// Precision, recall and F1 of one ROUGE variant, each 0–1.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Rouge {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Rouge {
    /// rouge-score's `scoring.fmeasure`: the harmonic mean, 0 when both are 0.
    fn new(precision: f64, recall: f64) -> Rouge {
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Rouge {
            precision,
            recall,
            f1,
        }
    }
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if n > 0 {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

fn score_ngrams(candidate: &[String], reference: &[String], n: usize) -> Rouge {
    let target = ngrams(reference, n);
    let prediction = ngrams(candidate, n);
    let overlap: usize = target
        .iter()
        .map(|(gram, &count)| count.min(prediction.get(gram).copied().unwrap_or(0)))
        .sum();
    let target_count: usize = target.values().sum();
    let prediction_count: usize = prediction.values().sum();
    Rouge::new(
        overlap as f64 / prediction_count.max(1) as f64,
        overlap as f64 / target_count.max(1) as f64,
    )
}

/// The length of the longest common subsequence of two token lists.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

fn score_lcs(candidate: &[String], reference: &[String]) -> Rouge {
    if candidate.is_empty() || reference.is_empty() {
        return Rouge::default();
    }
    let lcs = lcs_len(reference, candidate) as f64;
    Rouge::new(lcs / candidate.len() as f64, lcs / reference.len() as f64)
}

/// ROUGE-N of `candidate` against one `reference` (n = 1 for ROUGE-1, 2 for
/// ROUGE-2): clipped n-gram matches over the candidate's n-grams
/// (precision) and over the reference's (recall); a side without n-grams
/// divides by 1. `n = 0` scores 0.
pub fn rouge_n(candidate: &str, reference: &str, n: usize) -> Rouge {
    score_ngrams(&tokenize_rouge(candidate), &tokenize_rouge(reference), n)
}

/// ROUGE-L of `candidate` against one `reference`: the longest common
/// subsequence of tokens over the candidate's length (precision) and the
/// reference's (recall); all 0 when either has no tokens.
pub fn rouge_l(candidate: &str, reference: &str) -> Rouge {
    score_lcs(&tokenize_rouge(candidate), &tokenize_rouge(reference))
}

/// The scores against the reference with the highest F1 (the first on a
/// tie), as `score_multi` picks; all 0 with no references.
fn best_of(
    candidate: &str,
    references: &[&str],
    score: impl Fn(&[String], &[String]) -> Rouge,
) -> Rouge {
    let candidate = tokenize_rouge(candidate);
    let mut best: Option<Rouge> = None;
    for reference in references {
        let rouge = score(&candidate, &tokenize_rouge(reference));
        if best.is_none_or(|b| rouge.f1 > b.f1) {
            best = Some(rouge);
        }
    }
    best.unwrap_or_default()
}

/// `RougeScorer(['rougeN']).score_multi(references, candidate)`.
pub fn rouge_n_multi(candidate: &str, references: &[&str], n: usize) -> Rouge {
    best_of(candidate, references, |c, r| score_ngrams(c, r, n))
}

/// `RougeScorer(['rougeL']).score_multi(references, candidate)`.
pub fn rouge_l_multi(candidate: &str, references: &[&str]) -> Rouge {
    best_of(candidate, references, score_lcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_docstring_example() {
        // rouge-score's README: score('The quick brown fox jumps over the
        // lazy dog', 'The quick brown dog jumps on the log.').
        let target = "The quick brown fox jumps over the lazy dog";
        let prediction = "The quick brown dog jumps on the log.";
        let r1 = rouge_n(prediction, target, 1);
        assert!((r1.precision - 0.75).abs() < 1e-12);
        assert!((r1.recall - 6.0 / 9.0).abs() < 1e-12);
        let rl = rouge_l(prediction, target);
        assert!((rl.precision - 0.625).abs() < 1e-12);
        assert!((rl.recall - 5.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn empty_sides_score_zero() {
        assert_eq!(rouge_n("", "a b", 1), Rouge::default());
        assert_eq!(rouge_n("a b", "", 2), Rouge::default());
        assert_eq!(rouge_l("", "a b"), Rouge::default());
        assert_eq!(rouge_n("a", "a", 2), Rouge::default());
        assert_eq!(rouge_n("a", "a", 0), Rouge::default());
        assert_eq!(rouge_l_multi("a", &[]), Rouge::default());
    }

    #[test]
    fn lcs_is_a_subsequence_not_a_substring() {
        let tokens = |s: &str| tokenize_rouge(s);
        assert_eq!(lcs_len(&tokens("a b c d e"), &tokens("a x c y e")), 3);
        assert_eq!(lcs_len(&tokens("a b"), &tokens("b a")), 1);
    }

    #[test]
    fn multi_takes_the_reference_with_the_best_f1() {
        let best = rouge_n_multi("the cat sat", &["a dog ran", "the cat sat down"], 1);
        assert_eq!(best, rouge_n("the cat sat", "the cat sat down", 1));
    }
}
