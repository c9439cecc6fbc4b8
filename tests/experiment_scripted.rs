//! `whet experiment run` and `resume` on the scripted worker (no model:
//! `WHET_ENGINE_SCRIPT`, see src/engine/scripted.rs): a worker that dies
//! after any number of saved cells, or a whole run killed with SIGKILL at
//! any point and resumed, ends with exactly the results of an uninterrupted
//! run; a second run takes every cell from the cache and a changed variant
//! re-runs only its cells; a cell that kills the worker twice becomes an
//! error cell and the run goes on.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use whet::engine::scripted::SCRIPT_ENV;
use whet::experiment::results::{read_results, CellResult};

const WORDS: [&str; 4] = ["apple", "river", "poison", "lantern"];
/// Items × variants.
const CELLS: usize = 8;

/// An experiment of 4 items × 2 variants, a stand-in model file and
/// private data and config folders.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(long_max_tokens: u32) -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        let lines: String = WORDS
            .iter()
            .map(|w| format!("{{\"word\": \"{w}\", \"reference\": \"{w}\"}}\n"))
            .collect();
        std::fs::write(lab.path("words.jsonl"), lines).unwrap();
        lab.write_experiment(long_max_tokens);
        std::fs::write(lab.model(), "not a real model").unwrap();
        lab
    }

    fn write_experiment(&self, long_max_tokens: u32) {
        std::fs::write(
            self.file(),
            format!(
                "name = \"toy\"\nprompt = \"Say something about {{{{word}}}}.\"\n\
                 dataset = \"words.jsonl\"\nmetrics = [\"length\", \"chrf\"]\n\
                 [[variants]]\nname = \"short\"\ntemperature = 0\nmax_tokens = 6\n\
                 [[variants]]\nname = \"long\"\ntemperature = 0\nmax_tokens = {long_max_tokens}\n"
            ),
        )
        .unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self) -> PathBuf {
        self.path("toy.toml")
    }

    fn model(&self) -> PathBuf {
        self.path("model.gguf")
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// `whet ARGS` on the scripted worker, following `script`.
    fn command(&self, args: &[&str], script: &str) -> Command {
        let script_file = self.path("script.toml");
        std::fs::write(&script_file, script).unwrap();
        let mut command = Command::new(whet_bin());
        command
            .args(args)
            .env("WHET_DATA_DIR", self.data())
            .env("WHET_CONFIG_DIR", self.data().join("config"))
            .env("WHET_LOG_DIR", self.data().join("logs"))
            .env(SCRIPT_ENV, script_file)
            .stdin(Stdio::null());
        command
    }

    fn run_args(&self) -> Vec<String> {
        [
            "experiment",
            "run",
            self.file().to_str().unwrap(),
            "--model",
            self.model().to_str().unwrap(),
            "--parallel",
            "3",
        ]
        .map(String::from)
        .to_vec()
    }

    fn run(&self, script: &str) -> Output {
        let args = self.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.command(&args, script).output().unwrap()
    }

    fn spawn_run(&self, script: &str) -> Child {
        let args = self.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.command(&args, script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn resume(&self, id: &str) -> Output {
        let model = self.model();
        let args = [
            "experiment",
            "resume",
            id,
            "--model",
            model.to_str().unwrap(),
            "--parallel",
            "3",
        ];
        self.command(&args, "").output().unwrap()
    }

    /// Run folders, oldest first.
    fn runs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<_> = std::fs::read_dir(self.data().join("experiments"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs
    }

    /// Lines of the worker's journal (requests it was sent).
    fn journal(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(name))
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default()
    }
}

/// Complete lines of a run's results file.
fn saved_lines(run: &Path) -> usize {
    std::fs::read_to_string(run.join("results.jsonl"))
        .map_or(0, |t| t.bytes().filter(|&b| b == b'\n').count())
}

/// What must not change with how a run went: each cell's output, reason,
/// scores and error, by key.
fn outcome(results: &[CellResult]) -> BTreeMap<String, String> {
    results
        .iter()
        .map(|r| {
            let value = serde_json::json!({
                "variant": r.variant,
                "item": r.item,
                "output": r.output,
                "stop_reason": r.stop_reason,
                "scores": r.scores,
                "error": r.error,
            });
            (r.key.clone(), value.to_string())
        })
        .collect()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(output),
        stderr(output)
    );
}

/// The results of an uninterrupted run of the lab's experiment.
fn uninterrupted() -> BTreeMap<String, String> {
    let lab = Lab::new(12);
    assert_success(&lab.run(""));
    let results = read_results(&lab.runs()[0]).unwrap();
    assert_eq!(results.len(), CELLS);
    assert!(results
        .iter()
        .all(|r| r.error.is_none() && !r.output.is_empty()));
    outcome(&results)
}

fn run_id(run: &Path) -> String {
    run.file_name().unwrap().to_str().unwrap().to_string()
}

#[test]
fn a_worker_that_dies_after_any_number_of_saved_cells_changes_no_result() {
    let expected = uninterrupted();
    for k in 1..CELLS {
        let lab = Lab::new(12);
        let marker = lab.path("fired");
        let script = format!(
            "abort_after = {k}\nonce = {:?}\njournal = {:?}\n",
            marker,
            lab.path("journal")
        );
        let output = lab.run(&script);
        assert_success(&output);
        assert!(marker.exists(), "k={k}: the worker did not die");
        let run = &lab.runs()[0];
        let results = read_results(run).unwrap();
        assert_eq!(saved_lines(run), CELLS, "k={k}: every cell once");
        assert_eq!(outcome(&results), expected, "k={k}");
        // The restarted worker was sent only the cells not saved.
        assert_eq!(lab.journal("journal").len(), CELLS + (CELLS - k), "k={k}");
    }
}

#[test]
fn a_run_killed_at_any_point_resumes_to_the_results_of_an_uninterrupted_one() {
    let expected = uninterrupted();
    for k in 0..CELLS {
        let lab = Lab::new(12);
        // The worker stops answering after k results: the run is killed
        // with exactly k cells saved.
        let script = format!("hang_after = {k}\njournal = {:?}\n", lab.path("journal"));
        let mut child = lab.spawn_run(&script);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = lab.runs().into_iter().next();
            let saved = run.as_deref().map_or(0, saved_lines);
            if saved == k && !lab.journal("journal").is_empty() {
                break;
            }
            assert!(saved <= k, "k={k}: {saved} cells saved");
            assert!(Instant::now() < deadline, "k={k}: stuck at {saved} cells");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let run = lab.runs()[0].clone();
        assert_eq!(read_results(&run).unwrap().len(), k);

        let output = lab.resume(&run_id(&run));
        assert_success(&output);
        assert!(
            stderr(&output).contains(&format!(
                "cells: {CELLS} (4 items × 2 variants): {k} done, "
            )),
            "{}",
            stderr(&output)
        );
        assert_eq!(saved_lines(&run), CELLS, "k={k}: every cell once");
        assert_eq!(outcome(&read_results(&run).unwrap()), expected, "k={k}");
    }
}

#[test]
fn a_second_run_is_all_cached_and_a_changed_variant_reruns_only_its_cells() {
    let lab = Lab::new(12);
    let journal = |name: &str| format!("journal = {:?}\n", lab.path(name));
    assert_success(&lab.run(&journal("first")));
    assert_eq!(lab.journal("first").len(), CELLS);
    let first = read_results(&lab.runs()[0]).unwrap();

    let output = lab.run(&journal("second"));
    assert_success(&output);
    assert!(
        stderr(&output).contains("8/8 cells (8 cached, 0 errors)"),
        "{}",
        stderr(&output)
    );
    assert!(lab.journal("second").is_empty(), "nothing was decoded");
    let second = read_results(&lab.runs()[1]).unwrap();
    assert!(second.iter().all(|r| r.cached));
    assert_eq!(outcome(&second), outcome(&first));

    // A shorter limit for 'long': its 4 cells run again, 'short' is cached.
    lab.write_experiment(5);
    let output = lab.run(&journal("third"));
    assert_success(&output);
    assert!(
        stderr(&output).contains("8/8 cells (4 cached, 0 errors)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(lab.journal("third").len(), 4);
    let third = read_results(&lab.runs()[2]).unwrap();
    for result in &third {
        assert_eq!(result.cached, result.variant == "short", "{result:?}");
        if result.variant == "long" {
            let before = first
                .iter()
                .find(|r| r.item == result.item && r.variant == "long")
                .unwrap();
            assert_ne!(result.key, before.key);
            assert!(before.output.starts_with(&result.output));
            assert_eq!(result.output.len(), before.output.len().min(5));
        }
    }
}

#[test]
fn a_cell_that_kills_the_worker_twice_is_an_error_cell_and_the_run_goes_on() {
    // One sequence at a time: only the poisoned cell is in flight when
    // the worker dies.
    poisoned_run("1");
}

#[test]
fn cells_in_flight_beside_a_poisoned_one_are_retried_alone_and_not_blamed() {
    // Three at a time: the cells decoded beside the poisoned one when the
    // worker dies are suspects; each runs alone, and only the poisoned one
    // kills the worker again (twice) and becomes an error cell.
    poisoned_run("3");
}

fn poisoned_run(parallel: &str) {
    let expected = uninterrupted();
    let lab = Lab::new(12);
    let args = lab.run_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let last = args.len() - 1;
    args[last] = parallel;
    let script = format!(
        "abort_on = \"poison\"\njournal = {:?}\n",
        lab.path("journal")
    );
    let output = lab.command(&args, &script).output().unwrap();
    // Error cells make the run exit 1 (after saving them and the summary).
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("2 of 8 cells ended in an error"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("8/8 cells (0 cached, 2 errors)"),
        "{}",
        stderr(&output)
    );
    let results = read_results(&lab.runs()[0]).unwrap();
    assert_eq!(results.len(), CELLS);
    for result in &results {
        if WORDS[result.item] == "poison" {
            let error = result.error.as_deref().expect("an error cell");
            assert!(
                error.contains("the worker died while decoding this cell, twice")
                    && error.contains("SIGABRT"),
                "{error}"
            );
        } else {
            assert_eq!(
                outcome(std::slice::from_ref(result)).get(&result.key),
                expected.get(&result.key),
                "{result:?}"
            );
        }
    }
}
