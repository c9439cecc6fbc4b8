//! Refined variants (`refine = { rounds, keep }`) through `whet experiment
//! run` and `resume` on the scripted worker (no model: `WHET_ENGINE_SCRIPT`,
//! see src/engine/scripted.rs): a refined cell runs a draft and two
//! generations per round, `keep = "best"` and `keep = "last"` score
//! different passes of the same loop, a run killed in the middle of a loop
//! resumes to the results of an uninterrupted run, a worker that dies in a
//! loop reruns that cell, and a second run takes refined cells from the
//! cache.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use whet::engine::scripted::SCRIPT_ENV;
use whet::experiment::refinement::Keep;
use whet::experiment::results::{read_results, CellResult};

const WORDS: [&str; 3] = ["apple", "river", "lantern"];

/// Three items, a stand-in model file and private data and config
/// folders; `variants` are the experiment's `[[variants]]` entries.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(variants: &str) -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        // References in the toy model's alphabet, so chrF tells passes apart.
        let lines: String = WORDS
            .iter()
            .map(|w| format!("{{\"word\": \"{w}\", \"reference\": \"{w} is a word\"}}\n"))
            .collect();
        std::fs::write(lab.path("words.jsonl"), lines).unwrap();
        std::fs::write(
            lab.path("refine.toml"),
            format!(
                "name = \"refine\"\nprompt = \"Say something about {{{{word}}}}.\"\n\
                 dataset = \"words.jsonl\"\nmetrics = [\"chrf\", \"length\"]\n{variants}"
            ),
        )
        .unwrap();
        std::fs::write(lab.path("model.gguf"), "not a real model").unwrap();
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str], script: &str) -> Command {
        let script_file = self.path("script.toml");
        std::fs::write(&script_file, script).unwrap();
        let data = self.path("data");
        let mut command = Command::new(whet_bin());
        command
            .args(args)
            .env("WHET_DATA_DIR", &data)
            .env("WHET_CONFIG_DIR", data.join("config"))
            .env("WHET_LOG_DIR", data.join("logs"))
            .env(SCRIPT_ENV, script_file)
            .stdin(Stdio::null());
        command
    }

    fn run_command(&self, script: &str) -> Command {
        let (file, model) = (self.path("refine.toml"), self.path("model.gguf"));
        let args = [
            "experiment",
            "run",
            file.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--parallel",
            "3",
            "--json",
        ];
        self.command(&args, script)
    }

    fn run(&self, script: &str) -> Output {
        self.run_command(script).output().unwrap()
    }

    fn spawn_run(&self, script: &str) -> Child {
        self.run_command(script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn resume(&self, run: &Path, script: &str) -> Output {
        let id = run.file_name().unwrap().to_str().unwrap();
        let model = self.path("model.gguf");
        let args = [
            "experiment",
            "resume",
            id,
            "--model",
            model.to_str().unwrap(),
        ];
        self.command(&args, script).output().unwrap()
    }

    /// Run folders, oldest first.
    fn runs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<_> = std::fs::read_dir(self.path("data").join("experiments"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs
    }

    /// The prompts the worker was sent, in order.
    fn journal(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("journal"))
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default()
    }

    fn journal_script(&self) -> String {
        format!("journal = {:?}\n", self.path("journal"))
    }
}

const PLAIN: &str = "[[variants]]\nname = \"plain\"\ntemperature = 0\nmax_tokens = 12\n";

/// A greedy variant refined for `rounds` keeping `keep`, never stopping
/// early on the feedback's say-so.
fn refined(name: &str, rounds: u32, keep: &str) -> String {
    format!(
        "[[variants]]\nname = \"{name}\"\ntemperature = 0\nmax_tokens = 12\n\
         refine = {{ rounds = {rounds}, keep = \"{keep}\", stop_phrase = \"\" }}\n"
    )
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(output),
        stderr(output)
    );
}

/// What must not change with how a run went: each cell's output, scores,
/// error and passes (without timings), by key.
fn outcome(results: &[CellResult]) -> BTreeMap<String, String> {
    results
        .iter()
        .map(|r| {
            let passes: Vec<_> = r
                .refine
                .iter()
                .flat_map(|f| &f.passes)
                .map(|p| {
                    serde_json::json!([p.output, p.scores, p.feedback.as_ref().map(|f| &f.text)])
                })
                .collect();
            let value = serde_json::json!({
                "variant": r.variant,
                "item": r.item,
                "output": r.output,
                "scores": r.scores,
                "error": r.error,
                "kept": r.refine.as_ref().map(|f| f.kept),
                "passes": passes,
            });
            (r.key.clone(), value.to_string())
        })
        .collect()
}

fn cell<'a>(results: &'a [CellResult], variant: &str, item: usize) -> &'a CellResult {
    results
        .iter()
        .find(|r| r.variant == variant && r.item == item)
        .unwrap_or_else(|| panic!("no cell of {variant}, item {item}"))
}

#[test]
fn a_refined_cell_runs_its_rounds_and_keep_chooses_the_pass_scored() {
    let lab = Lab::new(&format!(
        "{PLAIN}{}{}",
        refined("best", 2, "best"),
        refined("last", 2, "last")
    ));
    let output = lab.run(&lab.journal_script());
    assert_success(&output);
    // 3 plain generations, then per refined cell a draft and 2 × 2 rounds.
    let journal = lab.journal();
    assert_eq!(journal.len(), 3 + 2 * 3 * (1 + 2 * 2));
    let run = lab.runs()[0].clone();
    let results = read_results(&run).unwrap();
    assert_eq!(results.len(), 9);
    let mut choices_differ = 0;
    for item in 0..WORDS.len() {
        let plain = cell(&results, "plain", item);
        assert!(plain.refine.is_none());
        let best = cell(&results, "best", item);
        let last = cell(&results, "last", item);
        for r in [best, last] {
            let refine = r.refine.as_ref().expect("a refined cell's passes");
            assert_eq!(refine.passes.len(), 3, "the draft and two passes");
            assert_eq!(refine.generations(), 5);
            assert_eq!(refine.end, Some(whet::refine::LoopEnd::MaxRounds));
            // The draft is the plain cell's generation.
            assert_eq!(refine.passes[0].output, plain.output);
            // The cell is its kept pass, and its figures sum every step.
            let kept = &refine.passes[refine.kept];
            assert_eq!((&r.output, &r.scores), (&kept.output, &kept.scores));
            let generated: u32 = refine
                .passes
                .iter()
                .map(|p| {
                    p.stats.generated_tokens
                        + p.feedback.as_ref().map_or(0, |f| f.stats.generated_tokens)
                })
                .sum();
            assert_eq!(r.stats.as_ref().unwrap().generated_tokens, generated);
            assert!(refine.passes[..2].iter().all(|p| p.feedback.is_some()));
            assert!(refine.passes[2].feedback.is_none());
        }
        // The same loop: the same passes, scored by different rules.
        let (b, l) = (best.refine.as_ref().unwrap(), last.refine.as_ref().unwrap());
        let texts = |c: &whet::experiment::refinement::RefinedCell| -> Vec<String> {
            c.passes.iter().map(|p| p.output.clone()).collect()
        };
        assert_eq!(texts(b), texts(l));
        assert_ne!(best.key, last.key);
        assert_eq!((b.keep, l.keep), (Keep::Best, Keep::Last));
        assert_eq!(l.kept, 2);
        let ranks: Vec<f64> = b.passes.iter().map(|p| p.rank_score.unwrap()).collect();
        let highest = ranks.iter().copied().fold(f64::MIN, f64::max);
        let first_highest = ranks.iter().position(|&r| r == highest).unwrap();
        assert_eq!(b.kept, first_highest, "{ranks:?}");
        assert_eq!(best.scores.metrics["chrf"], highest);
        choices_differ += usize::from(b.kept != l.kept);
    }
    assert!(
        choices_differ > 0,
        "best and last keep the same pass everywhere"
    );
    // Each loop's steps follow each other: the draft, the default feedback
    // request on it, then the default refine request.
    let first_loop = &journal[3..8];
    assert!(
        first_loop[1].contains("Review the answer to the task"),
        "{}",
        first_loop[1]
    );
    assert!(
        first_loop[2].contains("Write an improved answer"),
        "{}",
        first_loop[2]
    );

    // The summary (JSON here) counts the passes kept; show and the CSV
    // export say it too.
    let summary = json(&output);
    let variants = summary["variants"].as_array().unwrap();
    assert!(variants[0].get("refine").is_none(), "{}", variants[0]);
    let kept_best: Vec<u64> = variants[1]["refine"]["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    let mut counted = vec![0u64; 3];
    for item in 0..WORDS.len() {
        counted[cell(&results, "best", item).refine.as_ref().unwrap().kept] += 1;
    }
    assert_eq!(kept_best, counted);
    assert_eq!(variants[2]["refine"]["kept"], serde_json::json!([0, 0, 3]));
    assert_eq!(variants[2]["refine"]["mean_passes"], 3.0);
    let id = run.file_name().unwrap().to_str().unwrap();
    let table = lab
        .command(&["experiment", "show", id], "")
        .output()
        .unwrap();
    assert_success(&table);
    assert!(
        stdout(&table).contains("  refine   2 rounds, keep last: kept the draft in 0, pass 1 in 0, pass 2 in 3 of 3 cells; 3.0 passes per cell"),
        "{}",
        stdout(&table)
    );
    let md = lab
        .command(&["experiment", "show", id, "--format", "md"], "")
        .output()
        .unwrap();
    assert!(
        stdout(&md).contains("Refined variants (pass 0 is the draft):\n\n- **best**: 2 rounds, keep best by chrf: kept the draft in "),
        "{}",
        stdout(&md)
    );
    let csv = lab
        .command(&["experiment", "show", id, "--format", "csv"], "")
        .output()
        .unwrap();
    let csv = stdout(&csv);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[6..],
        ["error", "output", "kept_pass", "passes", "chrf", "length"]
    );
    for row in reader.records().map(Result::unwrap) {
        let (variant, kept, passes) = (&row[1], &row[8], &row[9]);
        match variant {
            "plain" => assert_eq!((kept, passes), ("", ""), "{row:?}"),
            "last" => assert_eq!((kept, passes), ("2", "3"), "{row:?}"),
            _ => assert_eq!(passes, "3", "{row:?}"),
        }
    }

    // Run again: every cell, refined ones too, comes from the cache.
    std::fs::remove_file(lab.path("journal")).unwrap();
    assert_success(&lab.run(&lab.journal_script()));
    assert!(lab.journal().is_empty(), "nothing was decoded");
    let again = read_results(&lab.runs()[1]).unwrap();
    assert!(again.iter().all(|r| r.cached));
    assert_eq!(outcome(&again), outcome(&results));
}

/// The results of an uninterrupted run of a plain and a refined variant
/// (one round: 3 + 3 × 3 generations).
fn uninterrupted() -> BTreeMap<String, String> {
    let lab = Lab::new(&format!("{PLAIN}{}", refined("refined", 1, "best")));
    assert_success(&lab.run(""));
    let results = read_results(&lab.runs()[0]).unwrap();
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|r| r.error.is_none()));
    outcome(&results)
}

/// Complete lines of a run's results file.
fn saved_lines(run: &Path) -> usize {
    std::fs::read_to_string(run.join("results.jsonl"))
        .map_or(0, |t| t.bytes().filter(|&b| b == b'\n').count())
}

#[test]
fn a_run_killed_inside_a_loop_resumes_to_the_results_of_an_uninterrupted_one() {
    let expected = uninterrupted();
    // After k generations: the plain cells are saved by 3, each refined
    // cell after 3 more; k = 4 and 5 are inside the first loop.
    for k in [2usize, 3, 4, 5, 6, 8, 10] {
        let saved_by_then = k.min(3) + k.saturating_sub(3) / 3;
        let lab = Lab::new(&format!("{PLAIN}{}", refined("refined", 1, "best")));
        let script = format!("hang_after = {k}\n{}", lab.journal_script());
        let mut child = lab.spawn_run(&script);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = lab.runs().into_iter().next();
            let saved = run.as_deref().map_or(0, saved_lines);
            // The worker hangs once it has answered k requests.
            if saved == saved_by_then && lab.journal().len() >= k {
                break;
            }
            assert!(saved <= saved_by_then, "k={k}: {saved} cells saved");
            assert!(Instant::now() < deadline, "k={k}: stuck at {saved} cells");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let run = lab.runs()[0].clone();
        assert_eq!(read_results(&run).unwrap().len(), saved_by_then, "k={k}");

        std::fs::remove_file(lab.path("journal")).unwrap();
        let output = lab.resume(&run, &lab.journal_script());
        assert_success(&output);
        assert!(
            stderr(&output).contains(&format!(
                "cells: 6 (3 items × 2 variants): {saved_by_then} done"
            )),
            "{}",
            stderr(&output)
        );
        assert_eq!(saved_lines(&run), 6, "k={k}: every cell once");
        assert_eq!(outcome(&read_results(&run).unwrap()), expected, "k={k}");
        // A loop cut short runs again from its draft; finished ones do not.
        let plain_left = 3 - k.min(3);
        let loops_left = 3 - k.saturating_sub(3) / 3;
        assert_eq!(lab.journal().len(), plain_left + 3 * loops_left, "k={k}");
    }
}

#[test]
fn a_worker_that_dies_inside_a_loop_reruns_that_cell_and_twice_makes_it_an_error_cell() {
    let expected = uninterrupted();
    // Once, at every step of the first loop: the loop runs again from its
    // draft on a new worker, and nothing changes.
    for k in [4, 5, 6] {
        let lab = Lab::new(&format!("{PLAIN}{}", refined("refined", 1, "best")));
        let marker = lab.path("fired");
        let script = format!(
            "abort_after = {k}\nonce = {marker:?}\n{}",
            lab.journal_script()
        );
        let output = lab.run(&script);
        assert_success(&output);
        assert!(marker.exists(), "k={k}: the worker did not die");
        let run = &lab.runs()[0];
        assert_eq!(saved_lines(run), 6, "k={k}: every cell once");
        assert_eq!(outcome(&read_results(run).unwrap()), expected, "k={k}");
        // The steps of the loop answered before the worker died are sent
        // again (at k = 6 the loop had ended: it is saved, and the next
        // loop's draft finds the worker dead before it is sent).
        let redone = (k - 3) % 3;
        assert_eq!(lab.journal().len(), 12 + redone, "k={k}");
    }
    // Every feedback request kills the worker: each refined cell dies twice
    // and is an error cell; the plain cells are as ever.
    let lab = Lab::new(&format!("{PLAIN}{}", refined("refined", 1, "best")));
    let output = lab.run("abort_on = \"Review the answer\"\n");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let results = read_results(&lab.runs()[0]).unwrap();
    assert_eq!(results.len(), 6);
    for result in &results {
        if result.variant == "refined" {
            let error = result.error.as_deref().expect("an error cell");
            assert!(
                error.contains("the worker died while refining this cell, twice"),
                "{error}"
            );
        } else {
            assert_eq!(
                outcome(std::slice::from_ref(result)).get(&result.key),
                expected.get(&result.key)
            );
        }
    }
}
