//! chrF exactly as sacrebleu 2.x computes it with its defaults
//! (`sentence_chrf` / `corpus_chrf`): character n-grams of orders 1..=6 over
//! the text with all whitespace removed, no word n-grams, case kept, β = 2,
//! and sacrebleu's default smoothing (`eps_smoothing=False`): precision and
//! recall are averaged over the orders that both sides have, and the F-score
//! is taken of those averages. With several references, the one giving the
//! best F-score is used. Scores are 0–100.

use std::collections::HashMap;

use super::tokenize::is_py_whitespace;

/// The highest character n-gram order.
const CHAR_ORDER: usize = 6;
/// β² of the F-score: recall weighs β = 2 times precision.
const FACTOR: f64 = 4.0;

/// Per order: `[candidate n-grams, reference n-grams, matches]`.
type Stats = [[usize; 3]; CHAR_ORDER];

/// The text's characters without whitespace (`''.join(line.split())`).
fn chars_without_whitespace(text: &str) -> Vec<char> {
    text.chars().filter(|&c| !is_py_whitespace(c)).collect()
}

/// The character n-grams of each order 1..=6, counted.
fn char_ngrams(chars: &[char]) -> Vec<HashMap<&[char], usize>> {
    (1..=CHAR_ORDER)
        .map(|n| {
            let mut counts = HashMap::new();
            for gram in chars.windows(n) {
                *counts.entry(gram).or_insert(0) += 1;
            }
            counts
        })
        .collect()
}

/// sacrebleu's `_get_match_statistics`, for every order.
fn match_stats(hyp: &[HashMap<&[char], usize>], reference: &[HashMap<&[char], usize>]) -> Stats {
    let mut stats = [[0; 3]; CHAR_ORDER];
    for (n, (hyp_grams, ref_grams)) in hyp.iter().zip(reference).enumerate() {
        let mut hyp_count = 0;
        let mut matches = 0;
        for (gram, &count) in hyp_grams {
            hyp_count += count;
            if let Some(&in_ref) = ref_grams.get(gram) {
                matches += count.min(in_ref);
            }
        }
        // No hits are counted for an order the reference has none of.
        let hyp_count = if ref_grams.is_empty() { 0 } else { hyp_count };
        stats[n] = [hyp_count, ref_grams.values().sum(), matches];
    }
    stats
}

/// sacrebleu's `CHRF._compute_f_score` without eps smoothing.
fn f_score(stats: &Stats) -> f64 {
    let mut avg_prec = 0.0f64;
    let mut avg_rec = 0.0f64;
    let mut effective_order = 0usize;
    for &[n_hyp, n_ref, n_match] in stats {
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += n_match as f64 / n_hyp as f64;
            avg_rec += n_match as f64 / n_ref as f64;
            effective_order += 1;
        }
    }
    if effective_order == 0 {
        return 0.0;
    }
    avg_prec /= effective_order as f64;
    avg_rec /= effective_order as f64;
    if avg_prec + avg_rec != 0.0 {
        let score = (1.0 + FACTOR) * avg_prec * avg_rec / (FACTOR * avg_prec + avg_rec);
        100.0 * score
    } else {
        0.0
    }
}

/// The statistics of the reference that gives the best F-score (the first
/// one on a tie); all zeros without references.
fn segment_stats(candidate: &str, references: &[&str]) -> Stats {
    let hyp_chars = chars_without_whitespace(candidate);
    let hyp = char_ngrams(&hyp_chars);
    let mut best: Option<(f64, Stats)> = None;
    for reference in references {
        let ref_chars = chars_without_whitespace(reference);
        let stats = match_stats(&hyp, &char_ngrams(&ref_chars));
        let f = f_score(&stats);
        if best.as_ref().is_none_or(|(best_f, _)| f > *best_f) {
            best = Some((f, stats));
        }
    }
    best.map_or([[0; 3]; CHAR_ORDER], |(_, stats)| stats)
}

/// `sacrebleu.sentence_chrf(candidate, references).score`: 0–100; 0 with
/// no references.
pub fn chrf(candidate: &str, references: &[&str]) -> f64 {
    f_score(&segment_stats(candidate, references))
}

/// `sacrebleu.corpus_chrf(candidates, streams).score`, 0–100: each
/// candidate's best-reference statistics summed, then one F-score.
/// `references[i]` holds the references of `candidates[i]`.
pub fn corpus_chrf(candidates: &[&str], references: &[Vec<&str>]) -> f64 {
    let mut total = [[0; 3]; CHAR_ORDER];
    for (i, candidate) in candidates.iter().enumerate() {
        let refs = references.get(i).map_or(&[][..], Vec::as_slice);
        let stats = segment_stats(candidate, refs);
        for (sum, add) in total.iter_mut().zip(stats) {
            for (sum, add) in sum.iter_mut().zip(add) {
                *sum += add;
            }
        }
    }
    f_score(&total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_count() {
        let a = chrf("a cat sat", &["acat  sat"]);
        assert!((a - 100.0).abs() < 1e-9, "{a}");
        assert_eq!(chrf("", &["abc"]), 0.0);
        assert_eq!(chrf("abc", &[]), 0.0);
        assert_eq!(chrf("abc", &["xyz"]), 0.0);
    }

    #[test]
    fn the_best_reference_is_used() {
        let one = chrf("the cat", &["a dog"]);
        let best = chrf("the cat", &["a dog", "the cat"]);
        assert!(one < best);
        assert!((best - 100.0).abs() < 1e-9);
    }
}
