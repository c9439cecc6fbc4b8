//! whet's metrics against the reference implementations: every pair in
//! tests/fixtures/metrics/pairs.json agrees to 4 decimals with the values
//! sacrebleu and rouge-score gave for it (expected.json, written by
//! scripts/metric-fixtures.py), and so do the corpus BLEU and chrF over the
//! whole set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use whet::metrics::{self, Rouge};

/// Agreement to 4 decimals.
const TOLERANCE: f64 = 5e-5;

struct Pair {
    id: String,
    candidate: String,
    references: Vec<String>,
}

impl Pair {
    fn refs(&self) -> Vec<&str> {
        self.references.iter().map(String::as_str).collect()
    }
}

fn fixtures() -> (Vec<Pair>, Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(name)).expect(name);
        serde_json::from_str(&text).expect(name)
    };
    let pairs = read("pairs.json")
        .as_array()
        .expect("pairs.json is a list")
        .iter()
        .map(|pair| Pair {
            id: pair["id"].as_str().unwrap().to_string(),
            candidate: pair["candidate"].as_str().unwrap().to_string(),
            references: pair["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect(),
        })
        .collect();
    (pairs, read("expected.json"))
}

/// Compares values and remembers the largest difference per metric.
#[derive(Default)]
struct Checker {
    max_diff: BTreeMap<&'static str, f64>,
    failures: Vec<String>,
}

impl Checker {
    fn check(&mut self, id: &str, metric: &'static str, ours: f64, expected: &Value) {
        let expected = expected
            .as_f64()
            .unwrap_or_else(|| panic!("{id} {metric}: no number in expected.json"));
        let diff = (ours - expected).abs();
        let max = self.max_diff.entry(metric).or_insert(0.0);
        *max = max.max(diff);
        if diff.is_nan() || diff >= TOLERANCE {
            self.failures
                .push(format!("{id} {metric}: whet {ours} vs {expected}"));
        }
    }

    fn check_rouge(&mut self, id: &str, names: [&'static str; 3], ours: Rouge, expected: &Value) {
        self.check(id, names[0], ours.precision, &expected["precision"]);
        self.check(id, names[1], ours.recall, &expected["recall"]);
        self.check(id, names[2], ours.f1, &expected["f1"]);
    }

    fn finish(self) {
        for (metric, diff) in &self.max_diff {
            println!("max |whet - reference| {metric}: {diff:.3e}");
        }
        assert!(
            self.failures.is_empty(),
            "{} disagreements:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn expected_for<'a>(expected: &'a Value, id: &str) -> &'a Value {
    expected["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in expected.json: rerun scripts/metric-fixtures.py"))
}

#[test]
fn the_fixtures_cover_the_cases_asked_for() {
    let (pairs, expected) = fixtures();
    assert!(pairs.len() >= 30, "{} pairs", pairs.len());
    assert_eq!(expected["pairs"].as_array().unwrap().len(), pairs.len());
    assert!(pairs.iter().any(|p| p.references.len() == 3));
    assert!(pairs.iter().any(|p| p.candidate.is_empty()));
    assert!(expected["versions"]["sacrebleu"]
        .as_str()
        .unwrap()
        .starts_with("2."));
}

#[test]
fn every_pair_agrees_with_sacrebleu_and_rouge_score() {
    let (pairs, expected) = fixtures();
    let mut checker = Checker::default();
    for pair in &pairs {
        let id = pair.id.as_str();
        let want = expected_for(&expected, id);
        let refs = pair.refs();
        let candidate = pair.candidate.as_str();

        checker.check(
            id,
            "bleu",
            metrics::sentence_bleu(candidate, &refs),
            &want["bleu"],
        );
        checker.check(id, "chrf", metrics::chrf(candidate, &refs), &want["chrf"]);
        let rouge1 = metrics::rouge_n_multi(candidate, &refs, 1);
        let rouge2 = metrics::rouge_n_multi(candidate, &refs, 2);
        let rouge_l = metrics::rouge_l_multi(candidate, &refs);
        checker.check_rouge(
            id,
            ["rouge1 P", "rouge1 R", "rouge1 F1"],
            rouge1,
            &want["rouge1"],
        );
        checker.check_rouge(
            id,
            ["rouge2 P", "rouge2 R", "rouge2 F1"],
            rouge2,
            &want["rouge2"],
        );
        checker.check_rouge(
            id,
            ["rougeL P", "rougeL R", "rougeL F1"],
            rouge_l,
            &want["rougeL"],
        );
        if let [reference] = refs[..] {
            // One reference: the single-reference functions are the same.
            assert_eq!(metrics::rouge_n(candidate, reference, 1), rouge1, "{id}");
            assert_eq!(metrics::rouge_n(candidate, reference, 2), rouge2, "{id}");
            assert_eq!(metrics::rouge_l(candidate, reference), rouge_l, "{id}");
        }

        // score() is the same numbers, plus exact match and lengths.
        let scores = metrics::score(candidate, &pair.references);
        assert_eq!(
            scores.bleu,
            Some(metrics::sentence_bleu(candidate, &refs)),
            "{id}"
        );
        assert_eq!(scores.chrf, Some(metrics::chrf(candidate, &refs)), "{id}");
        assert_eq!(scores.rouge1, Some(rouge1.f1), "{id}");
        assert_eq!(scores.rouge2, Some(rouge2.f1), "{id}");
        assert_eq!(scores.rouge_l, Some(rouge_l.f1), "{id}");
        assert_eq!(scores.exact_match, want["exact_match"].as_bool(), "{id}");
        assert_eq!(
            metrics::exact_match(candidate, &refs),
            scores.exact_match.unwrap()
        );
        assert_eq!(Some(scores.words as u64), want["words"].as_u64(), "{id}");
        assert_eq!(Some(scores.chars as u64), want["chars"].as_u64(), "{id}");
    }
    checker.finish();
}

#[test]
fn corpus_scores_agree_with_sacrebleu() {
    let (pairs, expected) = fixtures();
    let candidates: Vec<&str> = pairs.iter().map(|p| p.candidate.as_str()).collect();
    let references: Vec<Vec<&str>> = pairs.iter().map(Pair::refs).collect();
    let mut checker = Checker::default();
    checker.check(
        "corpus",
        "corpus bleu",
        metrics::corpus_bleu(&candidates, &references),
        &expected["corpus"]["bleu"],
    );
    checker.check(
        "corpus",
        "corpus chrf",
        metrics::corpus_chrf(&candidates, &references),
        &expected["corpus"]["chrf"],
    );
    checker.finish();
}
