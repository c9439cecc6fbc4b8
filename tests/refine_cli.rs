//! `whet refine` with the real binary and the real default model: a shipped
//! template refined for 2 rounds with greedy decoding records every pass
//! and its feedback, scores each against the template's reference, reuses
//! the KV cache across steps, saves a run that reads back the same, and
//! does all of it again identically.

mod common;

use std::path::Path;

use common::*;
use whet::refine::{store, RefineRun};

fn whet_in(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(whet_bin())
        .args(args)
        .env("WHET_CONFIG_DIR", dir.join("config"))
        .env("WHET_DATA_DIR", dir.join("data"))
        .env("WHET_LOG_DIR", dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn refine_acronym(dir: &Path) -> serde_json::Value {
    let model = smollm2();
    let output = whet_in(
        dir,
        &[
            "refine",
            "--template",
            "acronym",
            "--rounds",
            "2",
            "--temp",
            "0",
            "--max-tokens",
            "96",
            "--model",
            model.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    json(&output)
}

#[test]
fn a_shipped_template_refined_for_two_rounds_keeps_every_pass() {
    let dir = tempfile::tempdir().unwrap();
    let report = refine_acronym(dir.path());
    let run: RefineRun = serde_json::from_value(report.clone()).unwrap();

    // The draft, then at most two refined passes; every pass but the last
    // has the feedback that led on, unless the feedback ended the loop.
    assert!(
        !run.passes.is_empty() && run.passes.len() <= 3,
        "{report:#}"
    );
    let end = run.end.clone().expect("the loop ended");
    for (i, pass) in run.passes.iter().enumerate() {
        assert_eq!(pass.index as usize, i);
        assert!(!pass.text.trim().is_empty(), "pass {i} is empty");
        // Scored against the template's reference (SCUBA: ...).
        assert!(pass.scores.bleu.is_some() && pass.scores.chrf.is_some());
        assert_eq!(
            pass.scores.exact_match,
            Some(pass.text.trim() == run.references[0])
        );
        if i > 0 {
            assert!(pass.diff.is_some());
            let feedback = &run.passes[i - 1].feedback.as_ref().unwrap().text;
            // The refine request carries the task, the previous pass and
            // the feedback on it, after the conversation so far.
            let feedback_sent = &run.passes[i - 1].feedback.as_ref().unwrap().messages;
            assert!(pass.messages.starts_with(feedback_sent));
            assert!(feedback_sent.starts_with(&run.draft_messages));
            let sent = &pass.messages.last().unwrap().content;
            assert!(sent.contains(&run.task), "{sent}");
            assert!(sent.contains(run.passes[i - 1].text.trim()), "{sent}");
            assert!(sent.contains(feedback.trim()), "{sent}");
        }
    }
    assert_eq!(run.passes[0].messages, run.draft_messages);
    assert_eq!(run.references.len(), 1);
    match end {
        whet::refine::LoopEnd::MaxRounds => assert_eq!(run.passes.len(), 3),
        whet::refine::LoopEnd::StopPhrase => {
            let last = run.passes.last().unwrap();
            let feedback = last.feedback.as_ref().expect("the feedback that ended it");
            assert!(feedback.text.contains("NO FURTHER CHANGES"));
        }
        whet::refine::LoopEnd::Unchanged => {
            let n = run.passes.len();
            assert_eq!(run.passes[n - 1].text.trim(), run.passes[n - 2].text.trim());
        }
        whet::refine::LoopEnd::ScoreThreshold { score } => {
            // acronym.toml: a "Total score" of 22 or more ends it.
            assert!(score >= 22.0);
            let feedback = run.passes.last().unwrap().feedback.as_ref().unwrap();
            assert_eq!(feedback.score, Some(score));
        }
        other => panic!("unexpected end {other:?}"),
    }

    // The steps after the first share a prefix with the one before: the
    // cache is reused and fewer tokens are decoded than without it.
    let totals = &report["token_totals"];
    let decoded = totals["decoded"].as_u64().unwrap();
    let without = totals["decoded_without_reuse"].as_u64().unwrap();
    assert!(totals["reused"].as_u64().unwrap() > 0, "{totals}");
    assert!(decoded < without, "{totals}");

    // Saved, and it reads back as printed.
    let path = report["saved_to"].as_str().expect("saved");
    let id = Path::new(path).file_stem().unwrap().to_str().unwrap();
    let saved: RefineRun = store::load(&dir.path().join("data").join("refinements"), id).unwrap();
    assert_eq!(saved, run);

    // Greedy decoding: the same run again gives the same passes.
    let again: RefineRun = serde_json::from_value(refine_acronym(dir.path())).unwrap();
    let texts = |run: &RefineRun| -> Vec<String> {
        run.passes
            .iter()
            .flat_map(|p| {
                [
                    Some(p.text.clone()),
                    p.feedback.as_ref().map(|f| f.text.clone()),
                ]
            })
            .flatten()
            .collect()
    };
    assert_eq!(texts(&again), texts(&run));
    assert_eq!(
        store::list::<RefineRun>(&dir.path().join("data").join("refinements")).len(),
        2
    );
}

#[test]
fn a_plain_prompt_is_refined_with_the_default_prompts_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2();
    let output = whet_in(
        dir.path(),
        &[
            "refine",
            "--prompt",
            "Name three primary colours.",
            "--rounds",
            "1",
            "--temp",
            "0",
            "--max-tokens",
            "48",
            "--reference",
            "Red, yellow and blue.",
            "--model",
            model.to_str().unwrap(),
            "--json",
            "--no-save",
        ],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let report = json(&output);
    let run: RefineRun = serde_json::from_value(report.clone()).unwrap();
    assert_eq!(run.template, "prompt");
    assert_eq!(
        run.prompts.feedback,
        whet::refine::defaults::prompts().feedback
    );
    assert_eq!(run.references, ["Red, yellow and blue."]);
    assert!(run.passes[0].scores.rouge1.is_some());
    assert!(report["saved_to"].is_null());
    assert!(!dir.path().join("data").join("refinements").exists());

    // Refused before any model loads, each with its reason.
    for (args, expected) in [
        (vec!["refine"], "--prompt"),
        (vec!["refine", "--prompt", "x", "--var", "a=b"], "--var"),
        (
            vec!["refine", "--template", "nope"],
            "unknown template 'nope'",
        ),
        (
            vec!["refine", "--prompt", "x", "--reference", "@/no/such/file"],
            "/no/such/file",
        ),
        (
            vec![
                "refine",
                "--prompt",
                "x",
                "--score-threshold",
                "3",
                "--score-pattern",
                "(",
            ],
            "the score pattern",
        ),
    ] {
        let output = whet_in(dir.path(), &args);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_grammar_binds_the_draft_and_every_pass_while_the_feedback_stays_free() {
    let dir = tempfile::tempdir().unwrap();
    let grammar = dir.path().join("colour.gbnf");
    std::fs::write(
        &grammar,
        "root ::= (\"red\" | \"yellow\" | \"blue\" | \"green\") \".\"\n",
    )
    .unwrap();
    let model = smollm2();
    let output = whet_in(
        dir.path(),
        &[
            "refine",
            "--prompt",
            "Name a primary colour.",
            "--rounds",
            "2",
            "--temp",
            "0",
            "--max-tokens",
            "48",
            "--grammar",
            grammar.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let report = json(&output);
    let run: RefineRun = serde_json::from_value(report.clone()).unwrap();
    assert!(matches!(
        run.constraint,
        Some(whet::engine::constraint::Constraint::Grammar { .. })
    ));
    let colours = ["red.", "yellow.", "blue.", "green."];
    for pass in &run.passes {
        assert!(
            colours.contains(&pass.text.as_str()),
            "pass {} is not in the grammar: {:?}",
            pass.index,
            pass.text
        );
    }
    // The feedback is free text: longer than any string of the grammar.
    let feedback = run.passes[0]
        .feedback
        .as_ref()
        .expect("feedback on the draft");
    assert!(
        feedback.text.split_whitespace().count() > 2,
        "{:?}",
        feedback.text
    );
    // The saved run keeps the grammar; it reads back the same.
    let path = report["saved_to"].as_str().expect("saved");
    let id = Path::new(path).file_stem().unwrap().to_str().unwrap();
    let back: RefineRun = store::load(&dir.path().join("data").join("refinements"), id).unwrap();
    assert_eq!(back, run);
}
