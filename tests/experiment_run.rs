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
