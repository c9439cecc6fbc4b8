//! `whet arena stats` as a user runs it: the votes file under the data
//! dir, each output format, a torn line reported with its place.

use std::process::{Command, Output, Stdio};

struct Home {
    root: tempfile::TempDir,
}

impl Home {
    fn with_fixture_votes() -> Home {
        let home = Home {
            root: tempfile::tempdir().unwrap(),
        };
        let arena = home.root.path().join("data/arena");
        std::fs::create_dir_all(&arena).unwrap();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/arena/votes.jsonl");
        std::fs::copy(fixture, arena.join("votes.jsonl")).unwrap();
        home
    }

    fn whet(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_whet"))
            .args(args)
            .env("WHET_CONFIG_DIR", self.root.path().join("config"))
            .env("WHET_DATA_DIR", self.root.path().join("data"))
            .env("WHET_LOG_DIR", self.root.path().join("logs"))
            .env_remove("WHET_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn the_table_reads_the_votes_under_the_data_dir_and_names_the_torn_line() {
    let home = Home::with_fixture_votes();
    let out = home.whet(&["arena", "stats"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("120 votes (80 blind, 7 both bad)\n"),
        "{stdout}"
    );
    let first_rating = stdout.lines().nth(3).unwrap();
    assert!(first_rating.starts_with("big @ gpu "), "{stdout}");
    assert!(stdout.contains("Bradley–Terry"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("arena/votes.jsonl:31:"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn markdown_csv_and_json_say_the_same() {
    let home = Home::with_fixture_votes();
    let markdown = text(
        &home
            .whet(&["arena", "stats", "--format", "markdown"])
            .stdout,
    );
    assert!(markdown.starts_with("# Arena standing\n"), "{markdown}");
    // A pipe in a model's name stays inside its cell.
    assert!(markdown.contains("| llama \\| pipe | "), "{markdown}");

    let csv_file = home.root.path().join("out/standing.csv");
    let out = home.whet(&[
        "arena",
        "stats",
        "--format",
        "csv",
        "-o",
        csv_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let mut reader = csv::Reader::from_path(&csv_file).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let ratings = rows.iter().filter(|r| &r[0] == "rating").count();
    let pairs = rows.iter().filter(|r| &r[0] == "pair").count();
    assert_eq!((ratings, pairs), (4, 6));
    assert_eq!(&rows[0][1], "big @ gpu");

    let json: serde_json::Value =
        serde_json::from_slice(&home.whet(&["arena", "stats", "--json"]).stdout).unwrap();
    assert_eq!(json["votes"], 120);
    assert_eq!(json["ratings"][0]["model"], "big @ gpu");
    let csv_rating: f64 = rows[0][3].parse().unwrap();
    let json_rating = json["ratings"][0]["elo"]["estimate"].as_f64().unwrap();
    assert!((csv_rating - json_rating).abs() < 1e-3);
}

#[test]
fn no_votes_yet_says_how_to_cast_them() {
    let home = Home {
        root: tempfile::tempdir().unwrap(),
    };
    let out = home.whet(&["arena", "stats"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("no votes yet"),
        "{}",
        text(&out.stdout)
    );
}
