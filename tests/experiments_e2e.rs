//! The Experiments screen in a real terminal (tmux) with the real default
//! model: F10 lists a small experiment of the user's, Enter runs it in the
//! background while the gauges move, the finished run opens as a matrix,
//! a cell shows its exact input, a rating is saved beside the results,
//! and the run on disk says the same as `whet experiment show`.

mod common;

use std::time::Duration;

use common::tmux::{chat_tmux, start_chat};
use common::*;

#[test]
fn an_experiment_runs_opens_rates_and_matches_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = dir.path().join("config/experiments");
    std::fs::create_dir_all(&experiments).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/prompts/experiments/sentiment-reviews.jsonl"
        ),
        experiments.join("reviews.jsonl"),
    )
    .unwrap();
    std::fs::write(
        experiments.join("a-tiny.toml"),
        concat!(
            "name = \"a-tiny\"\ndescription = \"Three reviews, with and without examples.\"\n",
            "template = \"sentiment-reversal\"\ndataset = \"reviews.jsonl\"\nlimit = 3\n",
            "metrics = [\"chrf\", \"length\"]\nchecks = [{ max-words = 60 }]\n",
            "[[variants]]\nname = \"zero-shot\"\nexamples = \"none\"\ntemperature = 0\n",
            "[[variants]]\nname = \"all-shots\"\nexamples = \"all\"\ntemperature = 0\n",
        ),
    )
    .unwrap();
    let tmux = chat_tmux("experiments", dir.path(), "");
    start_chat(&tmux, dir.path(), "e2e");

    tmux.keys(&["F10"]);
    let screen = tmux.wait_for("the experiment list", |s| {
        s.contains("a-tiny") && s.contains("sentiment-shots")
    });
    assert!(
        screen.contains("Three reviews, with and without examples."),
        "{screen}"
    );
    tmux.keys(&["Enter"]);
    // The run goes on in the background, then opens as a matrix.
    tmux.wait_for("the run to start", |s| {
        s.contains("Running a-tiny") || s.contains("a-tiny · 2026")
    });
    let screen = tmux.wait_for_within(Duration::from_secs(180), "the matrix", |s| {
        s.contains("mean [95%]") && s.contains("zero-shot") && s.contains("all-shots")
    });
    assert!(screen.contains("3 of 3 rows"), "{screen}");
    assert!(screen.contains("baseline"), "{screen}");
    let runs = std::fs::read_dir(dir.path().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    let cells = std::fs::read_to_string(run.join("results.jsonl")).unwrap();
    assert_eq!(cells.lines().count(), 6, "3 items × 2 variants");

    // A cell: its variables and exact input.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the cell", |s| s.contains("exact input:"));
    assert!(screen.contains("{{review}}"), "{screen}");
    assert!(screen.contains("Reference"), "{screen}");
    tmux.escape();
    // Rate it 4 with a note: saved beside the results, a rating column.
    tmux.keys(&["r"]);
    tmux.wait_for("the rating prompt", |s| s.contains("Rate the cell"));
    tmux.keys(&["4 keeps the facts", "Enter"]);
    tmux.wait_for("the rating saved", |s| s.contains("rating saved"));
    let ratings = std::fs::read_to_string(run.join("ratings.json")).unwrap();
    assert!(
        ratings.contains("\"score\": 4") && ratings.contains("keeps the facts"),
        "{ratings}"
    );

    // The screen's header row is the command line's summary.
    let shown = std::process::Command::new(whet_bin())
        .args(["experiment", "show", &id, "--format", "json"])
        .env("WHET_DATA_DIR", dir.path())
        .env("WHET_CONFIG_DIR", dir.path().join("config"))
        .env("WHET_LOG_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let chrf = summary["variants"][0]["metrics"]["chrf"]["estimate"]
        .as_f64()
        .unwrap();
    let screen = tmux.screen();
    assert!(
        screen.contains(&format!("{chrf:.1} [")),
        "chrF {chrf:.1} on screen:\n{screen}"
    );

    // q quits and the terminal comes back.
    tmux.keys(&["q"]);
    tmux.wait_for("whet to exit", |s| s.contains("EXIT=0"));
}
