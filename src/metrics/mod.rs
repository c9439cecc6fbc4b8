//! Reference-based metrics for scoring a model's output: BLEU, chrF,
//! ROUGE-1/2/L, exact match and length.
//!
//! Each metric reproduces a standard implementation with its default
//! settings, so that the numbers agree with published tooling to 4 decimals
//! (`tests/metrics_fixtures.rs` checks ~30 cases computed by
//! `scripts/metric-fixtures.py`):
//!
//! | metric | as computed by | scale |
//! | --- | --- | --- |
//! | [`sentence_bleu`], [`corpus_bleu`] | `sacrebleu.sentence_bleu` / `corpus_bleu` (13a, exp smoothing) | 0–100 |
//! | [`chrf`], [`corpus_chrf`] | `sacrebleu.sentence_chrf` / `corpus_chrf` (chrF2, no word n-grams) | 0–100 |
//! | [`rouge_n`], [`rouge_l`] | rouge-score's `RougeScorer(['rouge1', 'rouge2', 'rougeL'], use_stemmer=False)` | 0–1 |
//! | [`exact_match`] | the candidate equals a reference, surrounding whitespace trimmed | yes/no |
//!
//! Notable consequences of those definitions: BLEU and chrF are
//! case-sensitive, ROUGE is not; ROUGE's tokenizer keeps only ASCII letters
//! and digits, so text without any (CJK, emoji) has no ROUGE tokens and
//! scores 0, and accented letters split words (`café` → `caf`).

mod bleu;
mod chrf;
mod rouge;
pub mod tokenize;

use serde::{Deserialize, Serialize};

pub use bleu::{corpus_bleu, sentence_bleu};
pub use chrf::{chrf, corpus_chrf};
pub use rouge::{rouge_l, rouge_l_multi, rouge_n, rouge_n_multi, Rouge};

/// Every metric of one candidate against its references. Without
/// references only the lengths are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Scores {
    /// Sentence BLEU, 0–100 ([`sentence_bleu`]).
    pub bleu: Option<f64>,
    /// chrF, 0–100 ([`chrf`]).
    pub chrf: Option<f64>,
    /// ROUGE-1 F1, 0–1, against the best reference ([`rouge_n_multi`]).
    pub rouge1: Option<f64>,
    /// ROUGE-2 F1, 0–1, against the best reference.
    pub rouge2: Option<f64>,
    /// ROUGE-L F1, 0–1, against the best reference ([`rouge_l_multi`]).
    pub rouge_l: Option<f64>,
    /// Whether the candidate equals a reference ([`exact_match`]).
    pub exact_match: Option<bool>,
    /// The candidate's words: runs of non-whitespace.
    pub words: usize,
    /// The candidate's characters (Unicode scalar values), all of them.
    pub chars: usize,
}

/// All metrics of one candidate against its references (BLEU = sentence
/// BLEU); with no references only the lengths are set.
pub fn score(candidate: &str, references: &[String]) -> Scores {
    let mut scores = Scores {
        words: candidate.split_whitespace().count(),
        chars: candidate.chars().count(),
        ..Scores::default()
    };
    if references.is_empty() {
        return scores;
    }
    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
    scores.bleu = Some(sentence_bleu(candidate, &refs));
    scores.chrf = Some(chrf(candidate, &refs));
    scores.rouge1 = Some(rouge_n_multi(candidate, &refs, 1).f1);
    scores.rouge2 = Some(rouge_n_multi(candidate, &refs, 2).f1);
    scores.rouge_l = Some(rouge_l_multi(candidate, &refs).f1);
    scores.exact_match = Some(exact_match(candidate, &refs));
    scores
}

/// Whether `candidate` equals any reference once leading and trailing
/// whitespace (Unicode `White_Space`, as [`str::trim`]) is removed from
/// both. Everything else counts: case, inner spacing, punctuation. False
/// with no references.
pub fn exact_match(candidate: &str, references: &[&str]) -> bool {
    let candidate = candidate.trim();
    references.iter().any(|r| r.trim() == candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_trims_only_the_ends() {
        assert!(exact_match("  Paris\n", &["Lyon", "Paris"]));
        assert!(!exact_match("paris", &["Paris"]));
        assert!(!exact_match("New  York", &["New York"]));
        assert!(!exact_match("x", &[]));
        assert!(exact_match(" ", &[""]));
    }

    #[test]
    fn lengths_without_references() {
        let scores = score(" héllo  wörld 👋\n", &[]);
        assert_eq!(
            scores,
            Scores {
                words: 3,
                chars: 16,
                ..Scores::default()
            }
        );
    }

    #[test]
    fn every_metric_with_references() {
        let scores = score("the cat sat", &["the cat sat".into()]);
        assert!((scores.bleu.unwrap() - 100.0).abs() < 1e-9);
        assert!((scores.chrf.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(scores.rouge1, Some(1.0));
        assert_eq!(scores.rouge2, Some(1.0));
        assert_eq!(scores.rouge_l, Some(1.0));
        assert_eq!(scores.exact_match, Some(true));
        assert_eq!((scores.words, scores.chars), (3, 11));
    }
}
