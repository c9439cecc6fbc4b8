//! `whet experiment check`: the shipped experiments are valid, and a broken
//! experiment or dataset is reported at its file:line(:col) without running
//! anything.

mod common;

use common::*;

fn check(args: &[&str]) -> std::process::Output {
    let logs = tempfile::tempdir().unwrap();
    let mut full = vec!["experiment", "check"];
    full.extend_from_slice(args);
    whet(&full, logs.path())
}

#[test]
fn the_shipped_experiments_are_valid_and_say_how_many_cells_they_have() {
    let root = env!("CARGO_MANIFEST_DIR");
    let sentiment = format!("{root}/prompts/experiments/sentiment-shots.toml");
    let qa = format!("{root}/prompts/experiments/qa-temperature.toml");
    let output = check(&[&sentiment, &qa]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{sentiment}: ok: 22 items × 3 variants = 66 cells (baseline '0-shot')\n\
             {qa}: ok: 20 items × 2 variants, 3 repeats of sampled variants = 80 cells (baseline 'greedy')\n"
        )
    );
    // Every shipped experiment is covered above.
    let shipped: Vec<_> = std::fs::read_dir(format!("{root}/prompts/experiments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    assert_eq!(shipped.len(), 2, "{shipped:?}");
}

#[test]
fn problems_in_the_experiment_and_its_dataset_are_placed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    std::fs::write(
        &data,
        "{\"review\": \"ok\", \"reference\": \"fine\"}\n{\"review\": \"bad\",}\n",
    )
    .unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "name = \"broken\"\ntemplate = \"sentiment-reversal\"\ndataset = \"data.jsonl\"\nmetrics = [\"chrf\", \"meteor\"]\n",
    )
    .unwrap();
    let output = check(&[file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        format!(
            "{}:4:20: unknown metric 'meteor' (metrics: bleu, chrf, rouge1, rouge2, rougeL, exact, length)\n",
            file.display()
        )
    );
    std::fs::write(
        &file,
        "name = \"broken\"\ntemplate = \"sentiment-reversal\"\ndataset = \"data.jsonl\"\nmetrics = [\"chrf\"]\n",
    )
    .unwrap();
    let output = check(&[file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(
        out == format!("{}:2:18: not valid JSON: trailing comma\n", data.display()),
        "{out}"
    );
}
