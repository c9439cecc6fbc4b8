//! `whet experiment run` with the real model: results are saved cell by
//! cell, a run killed with SIGKILL mid-way resumes to the same results as
//! an uninterrupted one, and a second run takes every cell from the cache.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use whet::experiment::results::{read_results, CellResult};

fn whet_in(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(whet_bin())
        .args(args)
        .env("WHET_DATA_DIR", data)
        .env("WHET_CONFIG_DIR", data.join("config"))
        .output()
        .expect("run whet")
}

fn runs(data: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(data.join("experiments"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn by_key(results: Vec<CellResult>) -> std::collections::BTreeMap<String, String> {
    results.into_iter().map(|r| (r.key, r.output)).collect()
}

#[test]
fn a_killed_run_resumes_to_the_same_results_and_a_rerun_is_all_cached() {
    let data = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let file = format!("{root}/prompts/experiments/sentiment-shots.toml");
    let model = smollm2();
    let model = model.to_str().unwrap();
    // One sequence at a time: then greedy output does not depend on which
    // cells share a batch, which a kill and a resume change (with several
    // sequences a few replies would differ after a near tie; see
    // tests/parallel_engine.rs).
    let args = [
        "experiment",
        "run",
        &file,
        "--limit",
        "4",
        "--parallel",
        "1",
        "--model",
        model,
    ];

    // Start, and kill it once two cells are saved.
    let mut child = Command::new(whet_bin())
        .args(args)
        .env("WHET_DATA_DIR", data.path())
        .env("WHET_CONFIG_DIR", data.path().join("config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let saved = runs(data.path())
            .first()
            .and_then(|d| std::fs::read_to_string(d.join("results.jsonl")).ok())
            .map_or(0, |t| t.lines().count());
        if saved >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no results after 2 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run = runs(data.path())[0].clone();
    let before = read_results(&run).unwrap().len();
    assert!(
        (2..12).contains(&before),
        "{before} cells saved before the kill"
    );

    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    let output = whet_in(
        data.path(),
        &[
            "experiment",
            "resume",
            &id,
            "--parallel",
            "1",
            "--model",
            model,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("3-shot (4 cells)"),
        "{}",
        stdout(&output)
    );
    let resumed = read_results(&run).unwrap();
    assert_eq!(resumed.len(), 12, "every cell once");
    assert!(resumed.iter().all(|r| r.error.is_none()));

    // The same cells uninterrupted (no cache) give the same greedy outputs.
    let fresh_data = tempfile::tempdir().unwrap();
    let output = whet_in(fresh_data.path(), &args);
    assert!(output.status.success(), "{}", stderr(&output));
    let fresh = read_results(&runs(fresh_data.path())[0]).unwrap();
    assert_eq!(by_key(resumed.clone()), by_key(fresh));

    // Run again where the first ran: every cell comes from the cache.
    let output = whet_in(data.path(), &args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("12/12 cells (12 cached, 0 errors)"),
        "{}",
        stderr(&output)
    );
    let again = read_results(&runs(data.path())[1]).unwrap();
    assert!(again.iter().all(|r| r.cached));
    assert_eq!(by_key(again), by_key(resumed));
}

/// A user's experiment, run by name with `--repeats`: the plan said before
/// it (its prompt tokens are what the engine then evaluated), an estimate
/// once an earlier run on the model has measured its speed, exit 3 for a
/// failed check under `--fail-on-check`, exit 1 for error cells; then the
/// runs listed and compared.
#[test]
fn a_named_experiment_says_its_plan_and_exits_by_its_checks() {
    let data = tempfile::tempdir().unwrap();
    let mine = data.path().join("config").join("experiments");
    std::fs::create_dir_all(&mine).unwrap();
    let long = "word ".repeat(400);
    std::fs::write(
        mine.join("tiny.jsonl"),
        format!(
            "{{\"word\": \"cat\"}}\n{{\"word\": \"tree\"}}\n{{\"word\": \"moon\"}}\n{{\"word\": \"{long}\"}}\n"
        ),
    )
    .unwrap();
    let experiment = |checks: &str| {
        format!(
            "name = \"tiny\"\nprompt = \"Write one word that rhymes with {{{{word}}}}.\"\ndataset = \"tiny.jsonl\"\n\
             metrics = [\"length\"]\nchecks = [{checks}]\n\
             [[variants]]\nname = \"greedy\"\ntemperature = 0\nmax_tokens = 8\n\
             [[variants]]\nname = \"sampled\"\ntemperature = 0.8\nmax_tokens = 8\n"
        )
    };
    std::fs::write(mine.join("tiny.toml"), experiment("{ max-words = 1000 }")).unwrap();
    let model = smollm2();
    let model = model.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "experiment",
            "run",
            "tiny",
            "--repeats",
            "2",
            "--parallel",
            "2",
            "--model",
            model,
        ];
        args.extend_from_slice(extra);
        whet_in(data.path(), &args)
    };

    let first = run(&["--limit", "3"]);
    let err = stderr(&first);
    assert_eq!(first.status.code(), Some(0), "{err}");
    assert!(
        err.contains("\ncells: 9 (3 items × 2 variants, 2 repeats of the 1 sampled variant): 0 done, 0 cached, 9 to decode\n"),
        "{err}"
    );
    assert!(
        err.contains("\nestimate: none (no earlier cells on this model at --parallel 2"),
        "{err}"
    );
    assert!(err.contains("9/9 cells (0 cached, 0 errors)"), "{err}");
    let first_dir = runs(data.path())[0].clone();
    let results = read_results(&first_dir).unwrap();
    assert_eq!(results.len(), 9);
    // The counted prompt tokens are the ones the engine evaluated.
    let evaluated: u32 = results
        .iter()
        .map(|r| r.stats.as_ref().unwrap().prompt_tokens)
        .sum();
    assert!(
        err.contains(&format!(
            "\nprompt tokens: {} over the 9 cells to decode",
            whet::experiment::plan::thousands(u64::from(evaluated))
        )),
        "{evaluated}: {err}"
    );
    let info = whet::experiment::results::read_info(&first_dir).unwrap();
    assert_eq!((info.repeats, info.cells), (Some(2), Some(9)));

    // A check every output fails, under --fail-on-check: exit 3, with an
    // estimate from the first run's cells.
    std::fs::write(
        mine.join("tiny.toml"),
        experiment("{ max-words = 1000 }, { equals = \"never this\" }"),
    )
    .unwrap();
    let second = run(&["--limit", "3", "--no-cache", "--fail-on-check"]);
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(3), "{err}");
    assert!(err.contains("\nestimate: about "), "{err}");
    assert!(
        err.contains(
            "\n  from 9 earlier cells on this model at --parallel 2: per sequence, prompt "
        ),
        "{err}"
    );
    assert!(
        err.contains("checks failed on 9 of 9 cells (--fail-on-check: exit 3)"),
        "{err}"
    );

    // The fourth item does not fit a 256-token context: its cells are
    // error cells, and errors exit 1 even under --fail-on-check.
    let third = run(&["--limit", "4", "--ctx", "256", "--fail-on-check"]);
    let err = stderr(&third);
    assert_eq!(third.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cells: 12 (4 items × 2 variants, 2 repeats of the 1 sampled variant): 0 done, 9 cached, 3 to decode"),
        "{err}"
    );
    assert!(err.contains("3 of 12 cells ended in an error"), "{err}");

    let listed = whet_in(data.path(), &["experiment", "list"]);
    let out = stdout(&listed);
    assert!(out.contains("\n  tiny             yours\n"), "{out}");
    assert!(out.contains("12/12 cells (3 errors, 9 cached)"), "{out}");
    let ids: Vec<String> = runs(data.path())
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let compared = whet_in(data.path(), &["experiment", "compare", &ids[0], &ids[1]]);
    let out = stdout(&compared);
    assert!(compared.status.success(), "{}", stderr(&compared));
    assert!(out.contains("greedy · 3 shared items (A 3, B 3)"), "{out}");
    assert!(
        out.ends_with("only in B: check 'equals \"never this\"'\n"),
        "{out}"
    );
}
