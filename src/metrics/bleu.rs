//! BLEU exactly as sacrebleu 2.x computes it with its defaults: the `13a`
//! tokenizer, case kept, n-grams up to 4, exponential ("exp", NIST)
//! smoothing, and for several references the clipped counts of the most
//! generous reference per n-gram and the brevity penalty of the reference
//! length closest to the candidate's (the shorter one on a tie).
//!
//! [`sentence_bleu`] is `sacrebleu.sentence_bleu` (effective order on: only
//! the n-gram orders the candidate has count); [`corpus_bleu`] is
//! `sacrebleu.corpus_bleu` (statistics summed over the segments, all four
//! orders count). Scores are on sacrebleu's 0–100 scale.

use std::collections::HashMap;

use super::tokenize::{rstrip_py, split_py, tokenize_13a};

/// The highest n-gram order.
const MAX_ORDER: usize = 4;

/// A segment's sufficient statistics (sacrebleu's
/// `[hyp_len, ref_len] + correct + total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stats {
    hyp_len: usize,
    ref_len: usize,
    correct: [usize; MAX_ORDER],
    total: [usize; MAX_ORDER],
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.hyp_len += other.hyp_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += other.correct[n];
            self.total[n] += other.total[n];
        }
    }
}

/// sacrebleu's `_preprocess_segment`: `rstrip()`, then `13a`.
fn preprocess(segment: &str) -> String {
    tokenize_13a(rstrip_py(segment))
}

/// Every n-gram of order 1..=4 of `tokens`, counted.
fn ngrams<'a>(tokens: &'a [&'a str]) -> HashMap<&'a [&'a str], usize> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// The reference length closest to `hyp_len`; the shorter one on a tie.
fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
    ref_lens
        .iter()
        .copied()
        .min_by_key(|&len| (hyp_len.abs_diff(len), len))
        .unwrap_or(0)
}

/// The statistics of one candidate against its references.
fn segment_stats(candidate: &str, references: &[&str]) -> Stats {
    let references: Vec<String> = references.iter().map(|r| preprocess(r)).collect();
    let ref_tokens: Vec<Vec<&str>> = references.iter().map(|r| split_py(r)).collect();
    let ref_lens: Vec<usize> = ref_tokens.iter().map(Vec::len).collect();
    // Each n-gram at the highest count any one reference has.
    let mut ref_counts: HashMap<&[&str], usize> = HashMap::new();
    for tokens in &ref_tokens {
        for (gram, count) in ngrams(tokens) {
            let best = ref_counts.entry(gram).or_insert(0);
            *best = (*best).max(count);
        }
    }

    let candidate = preprocess(candidate);
    let hyp_tokens = split_py(&candidate);
    let mut stats = Stats {
        hyp_len: hyp_tokens.len(),
        ref_len: closest_ref_len(hyp_tokens.len(), &ref_lens),
        ..Stats::default()
    };
    for (gram, count) in ngrams(&hyp_tokens) {
        let n = gram.len() - 1;
        stats.total[n] += count;
        if let Some(&in_ref) = ref_counts.get(gram) {
            stats.correct[n] += count.min(in_ref);
        }
    }
    stats
}

/// sacrebleu's `my_log`: the logarithm, with log(0) a huge negative number.
fn my_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// sacrebleu's `BLEU.compute_bleu` with `smooth_method='exp'`.
fn compute(stats: &Stats, effective_order: bool) -> f64 {
    if stats.correct.iter().all(|&c| c == 0) {
        return 0.0;
    }
    let bp = if stats.hyp_len < stats.ref_len {
        if stats.hyp_len > 0 {
            (1.0 - stats.ref_len as f64 / stats.hyp_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = [0.0f64; MAX_ORDER];
    let mut smooth_mteval = 1.0f64;
    let mut eff_order = MAX_ORDER;
    let orders = stats.correct.iter().zip(&stats.total);
    for (n, (precision, (&correct, &total))) in precisions.iter_mut().zip(orders).enumerate() {
        if total == 0 {
            break;
        }
        if effective_order {
            eff_order = n + 1;
        }
        *precision = if correct == 0 {
            smooth_mteval *= 2.0;
            100.0 / (smooth_mteval * total as f64)
        } else {
            100.0 * correct as f64 / total as f64
        };
    }
    let log_sum: f64 = precisions[..eff_order].iter().map(|&p| my_log(p)).sum();
    bp * (log_sum / eff_order as f64).exp()
}

/// `sacrebleu.sentence_bleu(candidate, references).score`: 0–100, with
/// effective order (a one-word candidate is scored on unigrams alone) and
/// exponential smoothing. With no references the score is 0.
pub fn sentence_bleu(candidate: &str, references: &[&str]) -> f64 {
    compute(&segment_stats(candidate, references), true)
}

/// `sacrebleu.corpus_bleu(candidates, streams).score`, 0–100, where
/// `references[i]` holds the references of `candidates[i]` (any number,
/// differing between candidates; sacrebleu takes the transpose, padded with
/// `None`). Candidates beyond the end of `references` have none.
pub fn corpus_bleu(candidates: &[&str], references: &[Vec<&str>]) -> f64 {
    let mut stats = Stats::default();
    for (i, candidate) in candidates.iter().enumerate() {
        let refs = references.get(i).map_or(&[][..], Vec::as_slice);
        stats += segment_stats(candidate, refs);
    }
    compute(&stats, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_is_100_and_disjoint_is_0() {
        let text = "the quick brown fox jumps over the lazy dog";
        assert!((sentence_bleu(text, &[text]) - 100.0).abs() < 1e-9);
        assert_eq!(sentence_bleu("alpha beta", &["gamma delta"]), 0.0);
        assert_eq!(sentence_bleu("", &["gamma delta"]), 0.0);
        assert_eq!(sentence_bleu("gamma", &[]), 0.0);
    }

    #[test]
    fn closest_reference_length_prefers_the_shorter_on_a_tie() {
        assert_eq!(closest_ref_len(5, &[7, 3]), 3);
        assert_eq!(closest_ref_len(5, &[3, 7]), 3);
        assert_eq!(closest_ref_len(5, &[9, 6, 4]), 4);
        assert_eq!(closest_ref_len(5, &[]), 0);
    }

    #[test]
    fn effective_order_scores_a_one_word_candidate_on_unigrams() {
        // One matching unigram out of one: precision 100, no higher orders.
        assert!((sentence_bleu("cat", &["cat"]) - 100.0).abs() < 1e-9);
        // Corpus BLEU counts all four orders: no bigrams means 0.
        assert_eq!(corpus_bleu(&["cat"], &[vec!["cat"]]), 0.0);
    }
}
