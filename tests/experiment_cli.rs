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

/// A finished run made by hand (no model): two variants over two items.
fn hand_made_run(data: &std::path::Path) -> (String, std::path::PathBuf) {
    use whet::experiment::results::{CellResult, RunInfo, RunLog};
    use whet::experiment::score::CellScores;
    let dir = data.join("files");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("d.jsonl"),
        "{\"text\": \"a\", \"reference\": \"x\"}\n{\"text\": \"b\", \"reference\": \"y\"}\n",
    )
    .unwrap();
    let file = dir.join("e.toml");
    std::fs::write(
        &file,
        "name = \"e\"\nprompt = \"Say {{text}}\"\ndataset = \"d.jsonl\"\nmetrics = [\"exact\"]\nchecks = [{ contains = \"x\" }]\n[[variants]]\nname = \"plain\"\n[[variants]]\nname = \"with, comma\"\ntemperature = 0\n",
    )
    .unwrap();
    let info = RunInfo {
        id: "run-1".into(),
        experiment: "e".into(),
        file: file.clone(),
        file_text: String::new(),
        model: "/m.gguf".into(),
        model_sha256: "00".into(),
        parallel: 1,
        limit: None,
        repeats: None,
        cells: Some(4),
        created_unix_ms: 0,
    };
    let mut log = RunLog::create(&data.join("experiments"), &info).unwrap();
    for (item, variant, output, exact) in [
        (0, "plain", "x", 1.0),
        (1, "plain", "no", 0.0),
        (0, "with, comma", "x", 1.0),
        (1, "with, comma", "y \"quoted\"", 0.0),
    ] {
        log.append(&CellResult {
            key: format!("{item}{variant}"),
            item,
            line: item + 1,
            variant: variant.into(),
            repeat: 0,
            seed: 0,
            input: vec![],
            output: output.into(),
            stop_reason: Some(whet::engine::protocol::StopReason::Eos),
            stats: None,
            scores: CellScores {
                metrics: [("exact".to_string(), exact)].into(),
                checks: vec![output.contains('x')],
            },
            error: None,
            cached: false,
        })
        .unwrap();
    }
    ("run-1".into(), file)
}

fn show(data: &std::path::Path, id: &str, format: &str) -> String {
    let output = std::process::Command::new(whet_bin())
        .args(["experiment", "show", id, "--format", format])
        .env("WHET_DATA_DIR", data)
        .env("WHET_CONFIG_DIR", data.join("config"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn a_run_shows_as_a_table_markdown_csv_and_json() {
    let data = tempfile::tempdir().unwrap();
    let (id, _) = hand_made_run(data.path());
    let table = show(data.path(), &id, "table");
    assert!(
        table.starts_with("e · 2 items · baseline 'plain'"),
        "{table}"
    );
    assert!(table.contains("with, comma (2 cells)"), "{table}");
    let csv = show(data.path(), &id, "csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "item_line",
            "variant",
            "repeat",
            "seed",
            "cached",
            "stop_reason",
            "error",
            "output",
            "exact",
            "contains \"x\""
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(&rows[3][1], "with, comma");
    assert_eq!(&rows[3][7], "y \"quoted\"");
    assert_eq!((&rows[3][8], &rows[3][9]), ("0", "fail"));
    let md = show(data.path(), &id, "md");
    assert!(md.starts_with("# e\n"), "{md}");
    assert!(
        md.contains("| with, comma | 0.500 [0.000, 1.000] | +0.000 (p=1.000) |"),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&show(data.path(), &id, "json")).unwrap();
    assert_eq!(json["variants"][1]["name"], "with, comma");
    assert_eq!(json["variants"][0]["checks"][0]["estimate"], 0.5);
}
