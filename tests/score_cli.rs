//! `whet score` with the real binary: the text report, `--json`, several
//! references, and the errors for a missing file and a missing candidate.

mod common;

use std::path::Path;

use common::*;
use whet::metrics::{self, Scores};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    format!("@{}", path.display())
}

/// The report line that starts with `label`, without the label.
fn line<'a>(report: &'a str, label: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no '{label}' line in:\n{report}"))
        .trim()
}

#[test]
fn text_report_has_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write(dir.path(), "ref.txt", "The cat sat on the mat.\n");
    let output = whet(
        &[
            "score",
            "--reference",
            &reference,
            "--candidate",
            "The cat is sitting on the mat.",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = stdout(&output);
    let expected = metrics::score(
        "The cat is sitting on the mat.",
        &["The cat sat on the mat.".to_string()],
    );
    assert_eq!(
        line(&report, "BLEU (0-100)"),
        format!("{:.2}", expected.bleu.unwrap()),
        "{report}"
    );
    // The same pair in the sacrebleu fixtures: 41.113 BLEU, 60.134 chrF.
    assert_eq!(line(&report, "BLEU (0-100)"), "41.11");
    assert_eq!(
        line(&report, "chrF (0-100)"),
        format!("{:.2}", expected.chrf.unwrap())
    );
    assert_eq!(
        line(&report, "ROUGE-1 F1"),
        format!("{:.4}", expected.rouge1.unwrap())
    );
    assert_eq!(
        line(&report, "ROUGE-2 F1"),
        format!("{:.4}", expected.rouge2.unwrap())
    );
    assert_eq!(
        line(&report, "ROUGE-L F1"),
        format!("{:.4}", expected.rouge_l.unwrap())
    );
    assert_eq!(line(&report, "exact match"), "no");
    assert_eq!(line(&report, "words"), "7");
    assert_eq!(line(&report, "chars"), "30");
    assert_eq!(line(&report, "references"), "1");
}

#[test]
fn json_is_one_object_of_the_scores() {
    let dir = tempfile::tempdir().unwrap();
    // The file's one final line break is not part of the candidate.
    let candidate = write(dir.path(), "cand.txt", "Paris\n");
    let output = whet(
        &[
            "score",
            "--reference",
            "Paris",
            "--candidate",
            &candidate,
            "--json",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let value = json(&output);
    assert!(value.is_object());
    let scores: Scores = serde_json::from_value(value).unwrap();
    assert_eq!(scores, metrics::score("Paris", &["Paris".to_string()]));
    assert_eq!(scores.exact_match, Some(true));
    assert_eq!((scores.words, scores.chars), (1, 5));
    assert!((scores.bleu.unwrap() - 100.0).abs() < 1e-9);
}

#[test]
fn several_references_score_against_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "ref1.txt", "There is a cat on the mat.");
    let second = write(dir.path(), "ref2.txt", "The cat sits on the mat.");
    let candidate = "The cat is on the mat.";
    let output = whet(
        &[
            "score",
            "--reference",
            &first,
            "--reference",
            &second,
            "--candidate",
            candidate,
            "--json",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let scores: Scores = serde_json::from_value(json(&output)).unwrap();
    let refs = ["There is a cat on the mat.", "The cat sits on the mat."];
    assert_eq!(scores.bleu, Some(metrics::sentence_bleu(candidate, &refs)));
    assert!(scores.bleu.unwrap() > metrics::sentence_bleu(candidate, &refs[..1]));
    assert_eq!(
        scores.rouge1,
        Some(metrics::rouge_n_multi(candidate, &refs, 1).f1)
    );
    assert_eq!(scores.exact_match, Some(false));

    let text = stdout(&whet(
        &[
            "score",
            "--reference",
            &first,
            "--reference",
            &second,
            "--candidate",
            candidate,
        ],
        dir.path(),
    ));
    assert_eq!(line(&text, "references"), "2");
}

#[test]
fn without_references_only_lengths_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let output = whet(&["score", "--candidate", "two words", "--json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let value = json(&output);
    assert!(value["bleu"].is_null() && value["rouge_l"].is_null());
    assert_eq!(value["words"], 2);
    assert_eq!(value["chars"], 9);
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ref.txt");
    let output = whet(
        &[
            "score",
            "--reference",
            &format!("@{}", missing.display()),
            "--candidate",
            "text",
        ],
        dir.path(),
    );
    assert!(!output.status.success());
    assert!(stdout(&output).is_empty());
    let error = stderr(&output);
    assert!(error.contains("no-such-ref.txt"), "{error}");
    assert!(error.contains("cannot read"), "{error}");
}

#[test]
fn a_missing_candidate_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = whet(&["score", "--reference", "text"], dir.path());
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--candidate"),
        "{}",
        stderr(&output)
    );
}
