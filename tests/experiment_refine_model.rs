//! A refined variant with the real model (SmolLM2, the default): a tiny
//! experiment of two items, a plain variant and the same refined for a
//! round keeping the best pass by chrF (and, beside it, keeping the last),
//! run through `whet experiment run --json`. Each refined cell has its
//! draft and one refined pass (3 generations), its draft is the plain
//! cell's output, and its output is the pass that `whet refine` — the same
//! loop on its own, with the same prompt, settings and reference — makes
//! and scores best (or makes last). Each refine step's request is sent
//! alone (`history = "fresh"`): SmolLM2 tends to repeat its draft word for
//! word when it sees the conversation, and then every pass is the same.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::*;
use whet::experiment::results::{read_results, CellResult};

const REVIEWS: [(&str, &str); 2] = [
    (
        "The food was cold and the staff rude.",
        "The food was hot and the staff kind.",
    ),
    (
        "The room was dirty and the bed too small.",
        "The room was clean and the bed large.",
    ),
];
const MAX_TOKENS: u32 = 24;

fn whet_in(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(whet_bin())
        .args(args)
        .env("WHET_DATA_DIR", data)
        .env("WHET_CONFIG_DIR", data.join("config"))
        .env("WHET_LOG_DIR", data.join("logs"))
        .output()
        .expect("run whet")
}

fn prompt(review: &str) -> String {
    format!("Rewrite this review with the opposite sentiment, in one sentence: {review}")
}

/// The pass `keep = "best"` keeps among chrF scores: the earliest highest.
fn earliest_best(scores: &[f64]) -> usize {
    let best = scores.iter().copied().fold(f64::MIN, f64::max);
    scores.iter().position(|&s| s == best).unwrap()
}

#[test]
fn a_refined_cell_keeps_the_pass_the_refine_loop_scores_best() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let lines: String = REVIEWS
        .iter()
        .map(|(review, reference)| {
            format!(
                "{}\n",
                serde_json::json!({"review": review, "reference": reference})
            )
        })
        .collect();
    std::fs::write(dir.join("reviews.jsonl"), lines).unwrap();
    let file = dir.join("refine.toml");
    let refined = |name: &str, keep: &str| {
        format!(
            "[[variants]]\nname = \"{name}\"\ntemperature = 0\nmax_tokens = {MAX_TOKENS}\n\
             refine = {{ rounds = 1, keep = \"{keep}\", history = \"fresh\", stop_phrase = \"\" }}\n"
        )
    };
    std::fs::write(
        &file,
        format!(
            "name = \"refine\"\nprompt = {:?}\ndataset = \"reviews.jsonl\"\n\
             metrics = [\"chrf\", \"length\"]\n\
             [[variants]]\nname = \"plain\"\ntemperature = 0\nmax_tokens = {MAX_TOKENS}\n{}{}",
            prompt("{{review}}"),
            refined("best", "best"),
            refined("last", "last"),
        ),
    )
    .unwrap();
    let model = smollm2();
    let model = model.to_str().unwrap();
    // One sequence at a time: greedy output is then that of a request alone.
    let started = Instant::now();
    let output = whet_in(
        dir,
        &[
            "experiment",
            "run",
            file.to_str().unwrap(),
            "--model",
            model,
            "--parallel",
            "1",
            "--json",
        ],
    );
    let seconds = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{}", stderr(&output));
    eprintln!("the experiment ran in {seconds:.1} s");
    let plan = stderr(&output);
    assert!(
        plan.contains("6 to decode (4 refined: up to 12 generations"),
        "{plan}"
    );
    let summary = json(&output);
    assert_eq!(summary["variants"][1]["refine"]["cells"], 2);
    let run = std::fs::read_dir(dir.join("experiments"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let results = read_results(&run).unwrap();
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|r| r.error.is_none()), "{results:?}");
    let cell = |variant: &str, item: usize| -> &CellResult {
        results
            .iter()
            .find(|r| r.variant == variant && r.item == item)
            .unwrap()
    };

    for (item, (review, reference)) in REVIEWS.iter().enumerate() {
        let best = cell("best", item);
        let last = cell("last", item);
        let best_loop = best.refine.as_ref().unwrap();
        let last_loop = last.refine.as_ref().unwrap();
        for refined in [best_loop, last_loop] {
            assert_eq!(refined.passes.len(), 2, "the draft and one refined pass");
            assert_eq!(refined.generations(), 3);
            assert_eq!(refined.passes[0].output, cell("plain", item).output);
        }
        let ranks: Vec<f64> = best_loop
            .passes
            .iter()
            .map(|p| p.rank_score.unwrap())
            .collect();
        assert_eq!(best_loop.kept, earliest_best(&ranks));
        assert_eq!(best.output, best_loop.passes[best_loop.kept].output);
        assert_eq!(best.scores.metrics["chrf"], ranks[best_loop.kept]);
        assert_eq!(last_loop.kept, 1);
        assert_eq!(last.output, last_loop.passes[1].output);
        eprintln!(
            "item {item}: passes {:?}, chrF {ranks:?}: best keeps pass {}, last pass 1",
            best_loop
                .passes
                .iter()
                .map(|p| &p.output)
                .collect::<Vec<_>>(),
            best_loop.kept
        );

        // The same loop run by `whet refine` on its own.
        let alone = whet_in(
            dir,
            &[
                "refine",
                "--prompt",
                &prompt(review),
                "--model",
                model,
                "--rounds",
                "1",
                "--temp",
                "0",
                "--repeat-penalty",
                "1",
                "--max-tokens",
                &MAX_TOKENS.to_string(),
                "--stop-phrase",
                "",
                "--history",
                "fresh",
                "--reference",
                reference,
                "--json",
                "--no-save",
            ],
        );
        assert!(alone.status.success(), "{}", stderr(&alone));
        let alone = json(&alone);
        let passes = alone["passes"].as_array().unwrap();
        let texts: Vec<&str> = passes.iter().map(|p| p["text"].as_str().unwrap()).collect();
        for refined in [best_loop, last_loop] {
            let experiment_texts: Vec<&str> =
                refined.passes.iter().map(|p| p.output.as_str()).collect();
            assert_eq!(experiment_texts, texts, "item {item}: the same passes");
            assert_eq!(
                refined.passes[0].feedback.as_ref().unwrap().text,
                passes[0]["feedback"]["text"].as_str().unwrap(),
                "item {item}: the same feedback"
            );
        }
        let chrf: Vec<f64> = passes
            .iter()
            .map(|p| p["scores"]["chrf"].as_f64().unwrap())
            .collect();
        assert_eq!(
            best.output,
            texts[earliest_best(&chrf)],
            "item {item}: the pass whet refine scores best"
        );
        assert_eq!(last.output, texts[1], "item {item}: its last pass");
    }
}
