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
    let models = format!("{root}/prompts/experiments/qa-models.toml");
    let output = check(&[&sentiment, &qa, &models]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{sentiment}: ok: 22 items × 3 variants = 66 cells (baseline '0-shot')\n\
             {qa}: ok: 20 items × 2 variants, 3 repeats of sampled variants = 80 cells (baseline 'greedy')\n\
             {models}: ok: 20 items × 2 variants = 40 cells (baseline 'smollm2')\n"
        )
    );
    // Every shipped experiment is covered above.
    let shipped: Vec<_> = std::fs::read_dir(format!("{root}/prompts/experiments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    assert_eq!(shipped.len(), 3, "{shipped:?}");
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
    add_run(
        data,
        "run-1",
        &file,
        0,
        &[
            (0, "plain", "x", 1.0),
            (1, "plain", "no", 0.0),
            (0, "with, comma", "x", 1.0),
            (1, "with, comma", "y \"quoted\"", 0.0),
        ],
    );
    ("run-1".into(), file)
}

/// A run of `file` made by hand: cells as (item, variant, output, exact),
/// checked for containing "x".
fn add_run(
    data: &std::path::Path,
    id: &str,
    file: &std::path::Path,
    created_unix_ms: u64,
    cells: &[(usize, &str, &str, f64)],
) {
    use whet::experiment::results::{CellResult, RunInfo, RunLog};
    use whet::experiment::score::CellScores;
    let info = RunInfo {
        id: id.into(),
        experiment: "e".into(),
        file: file.to_path_buf(),
        file_text: std::fs::read_to_string(file).unwrap(),
        model: "/m.gguf".into(),
        model_sha256: "00".into(),
        parallel: 1,
        limit: None,
        repeats: None,
        cells: Some(4),
        created_unix_ms,
    };
    let mut log = RunLog::create(&data.join("experiments"), &info).unwrap();
    for &(item, variant, output, exact) in cells {
        log.append(&CellResult {
            key: format!("{item}{variant}{output}"),
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
            refine: None,
        })
        .unwrap();
    }
}

fn whet_data(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(whet_bin())
        .args(args)
        .env("WHET_DATA_DIR", data)
        .env("WHET_CONFIG_DIR", data.join("config"))
        .output()
        .unwrap()
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
    // Ratings made on the Experiments screen are part of the summary.
    let run = data.path().join("experiments").join(&id);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(run.join("results.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let key = first["key"].as_str().unwrap();
    std::fs::write(
        run.join("ratings.json"),
        format!("{{\"version\": 1, \"cells\": {{\"{key}\": {{\"score\": 4, \"note\": \"ok\"}}}}}}"),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&show(data.path(), &id, "json")).unwrap();
    assert_eq!(json["variants"][0]["metrics"]["rating"]["estimate"], 4.0);
    assert!(show(data.path(), &id, "csv")
        .lines()
        .next()
        .unwrap()
        .contains("rating"));
}

#[test]
fn list_names_experiments_and_runs_newest_first_and_a_broken_run_does_not_stop_it() {
    let data = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let (_, file) = hand_made_run(data.path());
    add_run(
        data.path(),
        "run-2",
        &file,
        1_795_876_496_042,
        &[(0, "plain", "x", 1.0)],
    );
    let broken = data.path().join("experiments").join("run-3");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("run.json"), "{ not json").unwrap();
    // A user file replaces the shipped experiment of its name.
    let mine = data.path().join("config").join("experiments");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(
        mine.join("sentiment-shots.toml"),
        "name = \"sentiment-shots\"\ndescription = \"My own.\"\nprompt = \"Say {{text}}\"\ndataset = \"d.jsonl\"\n",
    )
    .unwrap();
    let output = whet_data(data.path(), &["experiment", "list"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let experiments_dir = data.path().join("experiments");
    assert_eq!(
        stdout(&output),
        format!(
            "experiments (yours: {}; shipped: {root}/prompts/experiments)\n\
             \x20 qa-models        shipped  SmolLM2 135M Instruct against Gemma 3 270M (base) on 20 passage questions, greedy, with checks.\n\
             \x20 qa-temperature   shipped  Passage questions at temperature 0 and 0.7 (3 repeats), with checks.\n\
             \x20 sentiment-shots  yours, replacing the shipped one  My own.\n\
             runs, newest first ({})\n\
             \x20 run-2  e  2026-11-28 14:34 UTC  m.gguf  1/4 cells\n\
             \x20 run-1  e  1970-01-01 00:00 UTC  m.gguf  4/4 cells\n\
             \x20 run-3  unreadable: {}: not a run file: key must be a string at line 1 column 3\n",
            mine.display(),
            experiments_dir.display(),
            broken.join("run.json").display()
        )
    );
    let json: serde_json::Value =
        serde_json::from_slice(&whet_data(data.path(), &["experiment", "list", "--json"]).stdout)
            .unwrap();
    assert_eq!(json["runs"][0]["id"], "run-2");
    assert_eq!(json["runs"][1]["cells_done"], 4);
    assert_eq!(json["experiments"][2]["replaces_shipped"], true);
}

#[test]
fn names_resolve_through_the_library() {
    let logs = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let output = check(&["sentiment-shots"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).starts_with(&format!(
            "{root}/prompts/experiments/sentiment-shots.toml: ok: 22 items"
        )),
        "{}",
        stdout(&output)
    );
    let output = whet(&["experiment", "run", "nosuch"], logs.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: unknown experiment 'nosuch' (available: qa-models, qa-temperature, sentiment-shots; yours go in {})\n",
            logs.path().join("config").join("experiments").display()
        )
    );
    let output = whet(&["experiment", "run", "--help"], logs.path());
    assert!(
        stdout(&output).contains("3 with --fail-on-check, a check failed"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn compare_pairs_variants_and_items_of_two_runs() {
    let data = tempfile::tempdir().unwrap();
    let (_, file) = hand_made_run(data.path());
    // The second run: 'plain' gets item 1 right, 'with, comma' is gone,
    // and a new variant appears.
    add_run(
        data.path(),
        "run-2",
        &file,
        1,
        &[
            (0, "plain", "x", 1.0),
            (1, "plain", "x", 1.0),
            (0, "new", "x", 1.0),
        ],
    );
    let output = whet_data(data.path(), &["experiment", "compare", "run-1", "run-2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "A run-1 · m.gguf · 4 cells");
    assert_eq!(lines[1], "B run-2 · m.gguf · 3 cells");
    assert_eq!(lines[4], "plain · 2 shared items (A 2, B 2)");
    assert!(
        lines[5].starts_with(
            "  exact    A    0.500  B    1.000  Δ +0.500 [+0.000, +1.000]  1/1/0 w/t/l  p=1.000"
        ),
        "{out}"
    );
    assert!(
        lines[6].starts_with("  check contains \"x\": A 50%  B 100%  Δ +50.0 pts"),
        "{out}"
    );
    assert_eq!(lines[7], "only in A: variant 'with, comma'");
    assert_eq!(lines[8], "only in B: variant 'new'");
    let json: serde_json::Value = serde_json::from_slice(
        &whet_data(
            data.path(),
            &["experiment", "compare", "run-1", "run-2", "--json"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(json["variants"][0]["metrics"][0]["difference"]["wins"], 1);
    assert_eq!(json["variants"][0]["shared_items"], 2);
    let output = whet_data(data.path(), &["experiment", "compare", "run-1", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: no run 'nope' in "),
        "{}",
        stderr(&output)
    );
}
