//! The Experiments screen's state machine, driven through `update` with
//! the messages its driver sends, and drawn on ratatui's TestBackend:
//! the lists and a run in progress with its gauges, a run's matrix (score,
//! sort, filter), a cell, two variants side by side, ratings, comparing
//! runs, snapshots at several sizes, the heat colours from the theme, and
//! tiny terminals.

use std::path::{Path, PathBuf};

use crossterm::event::KeyCode;
use whet::engine::protocol::{ChatMessage, GenerationStats, Role, StopReason};
use whet::experiment::library::{self, RunEntry};
use whet::experiment::matrix::{Filter, Score, Sort};
use whet::experiment::prepare::prepare;
use whet::experiment::ratings::{Ratings, RATING_METRIC};
use whet::experiment::results::{CellResult, RunInfo};
use whet::experiment::run::Progress;
use whet::experiment::score::CellScores;
use whet::tui::app::{update, App, Effect, Msg, Screen};
use whet::tui::experiments::{ExpOverlay, ListPane, OpenRun, RunView, Running};
use whet::tui::theme::Slot;
mod common;

use common::app::smollm2_app;
use common::keys::*;
use common::screen::{draw, find, text_of};

const RUN_ID: &str = "20261130-101500-000-reviews";

fn experiment(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("reviews.jsonl"),
        concat!(
            "{\"review\": \"The soup was cold and the waiter rude.\", \"reference\": \"The soup was hot and the waiter kind.\"}\n",
            "{\"review\": \"Loud music, tiny portions.\", \"reference\": \"Quiet music, generous portions.\"}\n",
            "{\"review\": \"We waited an hour for a table.\", \"reference\": \"We were seated at once.\"}\n",
        ),
    )
    .unwrap();
    let path = dir.join("reviews.toml");
    std::fs::write(
        &path,
        concat!(
            "name = \"reviews\"\ntemplate = \"sentiment-reversal\"\ndataset = \"reviews.jsonl\"\n",
            "metrics = [\"chrf\", \"length\"]\nchecks = [{ max-words = 8 }]\nrepeats = 2\n",
            "[[variants]]\nname = \"greedy\"\ntemperature = 0\n",
            "[[variants]]\nname = \"warm\"\ntemperature = 0.8\n",
        ),
    )
    .unwrap();
    path
}

fn cell(item: usize, variant: &str, repeat: u32, output: &str, chrf: f64) -> CellResult {
    let words = output.split_whitespace().count();
    CellResult {
        key: format!("{item}-{variant}-{repeat}"),
        item,
        line: item + 1,
        variant: variant.into(),
        repeat,
        seed: 7 + repeat,
        input: vec![
            ChatMessage::new(
                Role::System,
                "Rewrite the review with the opposite sentiment.",
            ),
            ChatMessage::new(Role::User, format!("Review {item}")),
        ],
        output: output.into(),
        stop_reason: Some(StopReason::Eos),
        stats: Some(GenerationStats {
            prompt_tokens: 40,
            generated_tokens: words as u32 + 2,
            ..GenerationStats::default()
        }),
        scores: CellScores {
            metrics: [
                ("chrf".to_string(), chrf),
                ("length".to_string(), words as f64),
            ]
            .into_iter()
            .collect(),
            checks: vec![words <= 8],
        },
        error: None,
        cached: false,
        refine: None,
    }
}

fn results() -> Vec<CellResult> {
    let mut failed = cell(2, "warm", 1, "", 0.0);
    failed.error = Some("the worker died while decoding this cell, twice".into());
    failed.scores = CellScores::default();
    vec![
        cell(
            0,
            "greedy",
            0,
            "The soup was hot and the waiter kind.",
            100.0,
        ),
        cell(0, "warm", 0, "The soup was warm and the waiter kind.", 80.0),
        cell(
            0,
            "warm",
            1,
            "The soup was hot and the staff very kind indeed today.",
            60.0,
        ),
        cell(1, "greedy", 0, "Loud music, tiny portions.", 30.0),
        cell(1, "warm", 0, "Quiet music, generous portions.", 100.0),
        cell(1, "warm", 1, "Quiet music, generous portions.", 100.0),
        cell(2, "greedy", 0, "We waited an hour for a table.", 20.0),
        cell(2, "warm", 0, "We were seated at once.", 100.0),
        failed,
    ]
}

fn info(file: &Path) -> RunInfo {
    RunInfo {
        id: RUN_ID.into(),
        experiment: "reviews".into(),
        file: file.to_path_buf(),
        file_text: String::new(),
        model: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        model_sha256: "ab".into(),
        parallel: 8,
        limit: None,
        repeats: None,
        cells: Some(9),
        created_unix_ms: 1,
    }
}

fn open_run(dir: &Path, ratings: Result<Ratings, String>) -> Box<OpenRun> {
    let file = experiment(dir);
    let prepared = prepare(&file, None).unwrap();
    Box::new(OpenRun::new(
        info(&file),
        dir.to_path_buf(),
        prepared,
        results(),
        ratings,
    ))
}

fn run_entry(id: &str, done: usize) -> RunEntry {
    RunEntry {
        id: id.into(),
        dir: PathBuf::from("/runs").join(id),
        created_unix_ms: Some(1),
        experiment: Some("reviews".into()),
        model: Some("/models/SmolLM2-135M-Instruct.Q4_1.gguf".into()),
        cells_done: done,
        cells_total: Some(9),
        errors: 1,
        cached: 0,
        problem: None,
    }
}

/// The app on the experiments screen with the shipped files and two runs.
fn listed() -> App {
    let mut app = smollm2_app();
    assert_eq!(key(&mut app, KeyCode::F(10)), vec![Effect::ListExperiments]);
    assert_eq!(app.screen, Screen::Experiments);
    let files = library::list(None, library::shipped_dir().as_deref());
    update(
        &mut app,
        Msg::ExperimentsListed {
            files,
            runs: vec![
                run_entry(RUN_ID, 9),
                run_entry("20261129-090000-000-reviews", 6),
            ],
        },
    );
    app
}

fn opened(dir: &Path) -> App {
    let mut app = listed();
    update(
        &mut app,
        Msg::ExperimentRunOpened(open_run(dir, Ok(Ratings::default()))),
    );
    app
}

fn open(app: &App) -> &OpenRun {
    app.exp.open.as_deref().expect("a run is open")
}

#[test]
fn f10_lists_files_and_runs_and_enter_runs_opens_or_resumes() {
    let mut app = listed();
    let names: Vec<&str> = app.exp.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["qa-models", "qa-temperature", "sentiment-shots"]);
    assert_eq!(app.exp.pane(), ListPane::Files);
    ch(&mut app, 'j');
    ch(&mut app, 'j');
    let sentiment = app.exp.files[2].path.clone();
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::StartExperiment(sentiment.clone())]
    );
    assert_eq!(
        ctrl(&mut app, 'g'),
        vec![Effect::StartExperiment(sentiment)]
    );
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.exp.pane(), ListPane::Runs);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::OpenExperimentRun(RUN_ID.into())]
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(
        ctrl(&mut app, 'g'),
        vec![Effect::ResumeExperiment(
            "20261129-090000-000-reviews".into()
        )]
    );
    // F10 again goes back to the chat, and the lists are not read twice;
    // from the workbench it goes back to the workbench.
    assert!(key(&mut app, KeyCode::F(10)).is_empty());
    assert_eq!(app.screen, Screen::Chat);
    assert!(key(&mut app, KeyCode::F(10)).is_empty());
    assert_eq!(app.screen, Screen::Experiments);
    key(&mut app, KeyCode::F(10));
    key(&mut app, KeyCode::F(5));
    assert_eq!(app.screen, Screen::Workbench);
    key(&mut app, KeyCode::F(10));
    assert_eq!(app.screen, Screen::Experiments);
    key(&mut app, KeyCode::F(10));
    assert_eq!(app.screen, Screen::Workbench);
}

fn running() -> Running {
    Running {
        id: RUN_ID.into(),
        experiment: "reviews".into(),
        variants: vec![("greedy".into(), 0, 3), ("warm".into(), 0, 6)],
        done: 0,
        total: 9,
        errors: 0,
        tokens_per_second: 0.0,
        eta_seconds: None,
        stopping: false,
    }
}

#[test]
fn a_run_in_progress_moves_its_gauges_fills_the_open_matrix_and_stops_on_esc() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = listed();
    update(&mut app, Msg::ExperimentStarted(Box::new(running())));
    // One run at a time.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.notice.as_ref().unwrap().text.contains("is going on"));
    // The run opened while it goes on: it starts empty and fills in.
    let mut empty = open_run(dir.path(), Ok(Ratings::default()));
    empty.results.clear();
    empty.refresh();
    update(&mut app, Msg::ExperimentRunOpened(empty));
    let progress = Progress {
        done: 1,
        total: 9,
        generated_tokens: 11,
        seconds: 2.0,
        last_cell: Some(0),
        ..Progress::default()
    };
    update(
        &mut app,
        Msg::ExperimentProgress {
            id: RUN_ID.into(),
            result: Some(Box::new(results().remove(1))),
            progress,
        },
    );
    let gauges = app.exp.running.as_ref().unwrap();
    assert_eq!(gauges.variants[1], ("warm".to_string(), 1, 6));
    assert_eq!(gauges.done, 1);
    assert!((gauges.tokens_per_second - 5.5).abs() < 1e-9);
    assert_eq!(open(&app).results.len(), 1);
    assert_eq!(open(&app).matrix.rows[0].cells[1].value, Some(80.0));
    // The same cell again (read from disk when the run was opened) is not
    // counted twice in the matrix.
    update(
        &mut app,
        Msg::ExperimentProgress {
            id: RUN_ID.into(),
            result: Some(Box::new(results().remove(1))),
            progress,
        },
    );
    assert_eq!(open(&app).results.len(), 1);
    // Esc on the matrix of the running run stops it (once).
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::StopExperiment]);
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    let effects = update(
        &mut app,
        Msg::ExperimentFinished {
            id: RUN_ID.into(),
            outcome: Ok(()),
        },
    );
    assert_eq!(
        effects,
        vec![Effect::ListExperiments],
        "the run is open already"
    );
    assert!(app.exp.running.is_none());
    assert!(app.notice.as_ref().unwrap().text.contains("stopped"));
    // Now Esc leaves the run for the lists.
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::ListExperiments]);
    assert!(app.exp.open.is_none());
    // A run that finishes while the lists show opens; one that finishes
    // while the chat shows does not pull the user away.
    update(&mut app, Msg::ExperimentStarted(Box::new(running())));
    let effects = update(
        &mut app,
        Msg::ExperimentFinished {
            id: RUN_ID.into(),
            outcome: Ok(()),
        },
    );
    assert_eq!(
        effects,
        vec![
            Effect::ListExperiments,
            Effect::OpenExperimentRun(RUN_ID.into())
        ]
    );
    key(&mut app, KeyCode::F(10));
    assert_eq!(app.screen, Screen::Chat);
    update(&mut app, Msg::ExperimentStarted(Box::new(running())));
    let effects = update(
        &mut app,
        Msg::ExperimentFinished {
            id: RUN_ID.into(),
            outcome: Err("the model could not be loaded".into()),
        },
    );
    assert_eq!(effects, vec![Effect::ListExperiments]);
    assert_eq!(app.screen, Screen::Chat);
    assert!(app.notice.as_ref().unwrap().error);
}

#[test]
fn the_matrix_switches_score_sorts_filters_and_opens_cells_and_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = opened(dir.path());
    let run = open(&app);
    assert_eq!(run.matrix.score, Score::Metric("chrf".into()));
    assert_eq!(run.shown, [0, 1, 2]);
    // warm's first item: two repeats that disagree (80 and 60).
    assert_eq!(run.matrix.rows[0].cells[1].value, Some(70.0));
    assert!(run.matrix.rows[0].cells[1].disagree);
    ch(&mut app, 'm');
    assert_eq!(open(&app).matrix.score, Score::Metric("length".into()));
    ch(&mut app, 'm');
    assert_eq!(open(&app).matrix.score, Score::Check(0));
    assert_eq!(open(&app).score_label(), "max-words 8");
    ch(&mut app, 'm');
    assert_eq!(open(&app).matrix.score, Score::Metric("chrf".into()));
    // Sorting by the selected column (greedy: 100, 30, 20), then by
    // disagreement (item 1: 30 vs 100; item 2: 20 vs 100; item 0: 100 vs 70).
    ch(&mut app, 's');
    assert_eq!(open(&app).sort, Sort::Variant(0));
    assert_eq!(open(&app).shown, [0, 1, 2]);
    ch(&mut app, 's');
    assert_eq!(open(&app).sort, Sort::Disagreement);
    assert_eq!(open(&app).shown, [2, 1, 0]);
    ch(&mut app, 's');
    assert_eq!(open(&app).sort, Sort::Item);
    // Filters: rows where a check fails (item 0's long warm repeat).
    ch(&mut app, 'f');
    assert_eq!(open(&app).filter, Filter::Differ);
    assert_eq!(open(&app).shown, [0, 1, 2]);
    ch(&mut app, 'f');
    assert_eq!(open(&app).filter, Filter::CheckFails);
    assert_eq!(open(&app).shown, [0]);
    ch(&mut app, 'f');
    assert_eq!(open(&app).filter, Filter::All);
    // A cell: the second repeat with ], back with Esc.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        open(&app).view,
        RunView::Cell {
            repeat: 0,
            scroll: 0
        }
    );
    assert_eq!(open(&app).selected_result().unwrap().key, "0-warm-0");
    ch(&mut app, ']');
    assert_eq!(open(&app).selected_result().unwrap().key, "0-warm-1");
    ch(&mut app, ']');
    assert_eq!(
        open(&app).selected_result().unwrap().key,
        "0-warm-1",
        "the last repeat"
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(
        open(&app).selected_result().unwrap().key,
        "1-warm-0",
        "the next row"
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(open(&app).view, RunView::Matrix);
    // Side by side: b puts the selected variant right, a the other left.
    ch(&mut app, 'b');
    assert_eq!(open(&app).view, RunView::Pair { scroll: 0 });
    assert_eq!(open(&app).pair, (0, 1));
    key(&mut app, KeyCode::Left);
    ch(&mut app, 'a');
    assert_eq!(open(&app).pair, (0, 1));
    key(&mut app, KeyCode::Esc);
    // Copy the selected output, export the run.
    assert_eq!(
        ch(&mut app, 'y'),
        vec![Effect::Copy("Loud music, tiny portions.".into())]
    );
    assert_eq!(
        ctrl(&mut app, 'e'),
        vec![Effect::ExportExperimentRun(RUN_ID.into())]
    );
}

#[test]
fn a_rating_is_saved_and_becomes_a_metric_and_an_unreadable_file_refuses_ratings() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = opened(dir.path());
    key(&mut app, KeyCode::Right);
    assert!(ch(&mut app, 'r').is_empty());
    assert!(matches!(app.exp.overlay, Some(ExpOverlay::Rate(_))));
    type_text(&mut app, "9 nope");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app
        .notice
        .as_ref()
        .unwrap()
        .text
        .contains("'9' is not a rating"));
    for _ in 0..6 {
        key(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "4 kind, but warm");
    let effects = key(&mut app, KeyCode::Enter);
    let Some(Effect::SaveRatings {
        dir: saved_in,
        ratings,
    }) = effects.first()
    else {
        panic!("{effects:?}");
    };
    assert_eq!(saved_in, dir.path());
    assert_eq!(ratings.cells["0-warm-0"].score, 4);
    assert_eq!(ratings.cells["0-warm-0"].note, "kind, but warm");
    let run = open(&app);
    assert!(run.scores.contains(&Score::Metric(RATING_METRIC.into())));
    let warm = &run.summary.variants[1];
    assert_eq!(warm.metrics[RATING_METRIC].estimate, 4.0);
    // The rating shows again when the prompt is reopened; 0 clears it.
    ch(&mut app, 'r');
    let Some(ExpOverlay::Rate(area)) = &app.exp.overlay else {
        panic!("no prompt");
    };
    assert_eq!(area.lines()[0], "4 kind, but warm");
    key(&mut app, KeyCode::Esc);
    // An error cell has nothing to rate.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    ch(&mut app, ']');
    assert!(ch(&mut app, 'r').is_empty());
    assert!(app.exp.overlay.is_none());
    // Ratings whose file cannot be read are not overwritten.
    let mut app = listed();
    update(
        &mut app,
        Msg::ExperimentRunOpened(open_run(dir.path(), Err("ratings.json:1:9: bad".into()))),
    );
    assert!(ch(&mut app, 'r').is_empty());
    assert!(app.exp.overlay.is_none());
    assert_eq!(app.notice.as_ref().unwrap().text, "ratings.json:1:9: bad");
}

#[test]
fn comparing_picks_another_run_of_the_same_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = opened(dir.path());
    assert!(ch(&mut app, 'o').is_empty());
    let Some(ExpOverlay::PickRun { runs, .. }) = &app.exp.overlay else {
        panic!("no list");
    };
    assert_eq!(runs.len(), 1, "the open run itself is not offered");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::CompareExperimentRuns {
            a: "20261129-090000-000-reviews".into(),
            b: RUN_ID.into()
        }]
    );
}

#[test]
fn snapshots_of_the_lists_a_run_in_progress_the_matrix_a_cell_and_a_pair() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = listed();
    key(&mut app, KeyCode::Tab);
    insta::assert_snapshot!("experiments_lists_100x24", text_of(&draw(&app, 100, 24)));
    update(&mut app, Msg::ExperimentStarted(Box::new(running())));
    update(
        &mut app,
        Msg::ExperimentProgress {
            id: RUN_ID.into(),
            result: Some(Box::new(results().remove(0))),
            progress: Progress {
                done: 4,
                total: 9,
                generated_tokens: 120,
                seconds: 3.0,
                ..Progress::default()
            },
        },
    );
    insta::assert_snapshot!("experiments_running_100x24", text_of(&draw(&app, 100, 24)));
    update(
        &mut app,
        Msg::ExperimentFinished {
            id: RUN_ID.into(),
            outcome: Ok(()),
        },
    );
    update(
        &mut app,
        Msg::ExperimentRunOpened(open_run(dir.path(), Ok(Ratings::default()))),
    );
    insta::assert_snapshot!("experiments_matrix_120x30", text_of(&draw(&app, 120, 30)));
    insta::assert_snapshot!("experiments_matrix_80x24", text_of(&draw(&app, 80, 24)));
    insta::assert_snapshot!("experiments_matrix_50x14", text_of(&draw(&app, 50, 14)));
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("experiments_cell_120x30", text_of(&draw(&app, 120, 30)));
    key(&mut app, KeyCode::Esc);
    ch(&mut app, 'b');
    insta::assert_snapshot!("experiments_pair_120x30", text_of(&draw(&app, 120, 30)));
    key(&mut app, KeyCode::Esc);
    ch(&mut app, 'r');
    insta::assert_snapshot!("experiments_rating_100x24", text_of(&draw(&app, 100, 24)));
}

#[test]
fn matrix_cells_take_the_heat_colours_of_the_theme() {
    let dir = tempfile::tempdir().unwrap();
    let app = opened(dir.path());
    let screen = draw(&app, 120, 30);
    // greedy's first item scores 100 (best), its third 20 (bad); the
    // selected cell (the first) is drawn reversed.
    let cell_bg = |row: &str, value: &str| {
        let (_, y) = find(&screen, row).expect(row);
        let x = (0..screen.area.width)
            .find(|&x| {
                (x..screen.area.width)
                    .map(|x| screen[(x, y)].symbol())
                    .collect::<String>()
                    .starts_with(value)
            })
            .expect(value);
        screen[(x, y)].bg
    };
    assert_eq!(
        cell_bg("Loud music", " 100.0"),
        app.theme.style(Slot::HeatBest).bg.unwrap()
    );
    assert_eq!(
        cell_bg("We waited", " 20.0"),
        app.theme.style(Slot::HeatBad).bg.unwrap()
    );
    assert_eq!(
        cell_bg("Loud music", " 30.0"),
        app.theme.style(Slot::HeatBad).bg.unwrap()
    );
    assert!(
        find(&screen, "100.0 !").is_some(),
        "a cell with an error repeat is marked"
    );
    assert!(
        find(&screen, "70.0 ~").is_some(),
        "disagreeing repeats are marked"
    );
}

#[test]
fn tiny_and_odd_terminals_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = opened(dir.path());
    for (w, h) in [(1, 1), (24, 8), (30, 9), (40, 10), (200, 12)] {
        draw(&app, w, h);
    }
    key(&mut app, KeyCode::Enter);
    for (w, h) in [(24, 8), (33, 11), (61, 13)] {
        draw(&app, w, h);
    }
    let mut app = listed();
    update(&mut app, Msg::ExperimentStarted(Box::new(running())));
    for (w, h) in [(24, 8), (30, 9), (47, 10)] {
        draw(&app, w, h);
    }
}

#[test]
fn alt_e_in_the_workbench_makes_an_experiment_of_saved_against_edited() {
    let mut app = smollm2_app();
    common::app::open_summarize(&mut app);
    // Unedited: only the saved version goes in.
    alt(&mut app, KeyCode::Char('e'));
    type_text(&mut app, "~/data.jsonl");
    let effects = key(&mut app, KeyCode::Enter);
    let Some(Effect::MakeExperiment {
        saved,
        edited,
        dataset,
    }) = effects.first()
    else {
        panic!("{effects:?}");
    };
    assert_eq!(saved.as_ref().unwrap().name, "summarize");
    assert!(edited.is_none());
    assert!(dataset.ends_with("data.jsonl") && !dataset.starts_with("~"));
    // Edited in the editor (which has the focus once opened): both versions.
    type_text(&mut app, " Be brief.");
    assert!(app.wb.is_dirty(), "the typing reached the editor");
    alt(&mut app, KeyCode::Char('e'));
    assert!(key(&mut app, KeyCode::Enter).is_empty(), "a path first");
    type_text(&mut app, "/tmp/data.csv");
    let effects = key(&mut app, KeyCode::Enter);
    let Some(Effect::MakeExperiment { saved, edited, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    let edited = edited.as_ref().expect("the edited version");
    assert_ne!(Some(edited), saved.as_ref());
    // The driver wrote it: the screen shows it, selected.
    let made = app.exp.files.len();
    assert_eq!(made, 0);
    let effects = update(
        &mut app,
        Msg::ExperimentMade("/cfg/experiments/summarize-experiment.toml".into()),
    );
    assert_eq!(effects, vec![Effect::ListExperiments]);
    assert_eq!(app.screen, Screen::Experiments);
    let mut files = library::list(None, library::shipped_dir().as_deref());
    files.push(whet::experiment::library::ExperimentFile {
        name: "summarize-experiment".into(),
        path: "/cfg/experiments/summarize-experiment.toml".into(),
        shipped: false,
        replaces_shipped: false,
        description: String::new(),
        problem: None,
    });
    update(
        &mut app,
        Msg::ExperimentsListed {
            files,
            runs: vec![],
        },
    );
    assert_eq!(
        app.exp.selected_file().unwrap().name,
        "summarize-experiment"
    );
}

#[test]
fn a_refined_cell_shows_its_passes_and_the_one_kept() {
    use whet::experiment::refinement::{Keep, PassFeedback, RefinedCell, RefinedPass};
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path());
    let prepared = prepare(&file, None).unwrap();
    let pass = |output: &str, chrf: f64, feedback: bool| RefinedPass {
        output: output.into(),
        stop_reason: StopReason::Eos,
        stats: GenerationStats::default(),
        scores: CellScores::default(),
        rank_score: Some(chrf),
        feedback: feedback.then(|| PassFeedback {
            text: "Say hot.".into(),
            stop_reason: StopReason::Eos,
            stats: GenerationStats::default(),
        }),
    };
    let mut results = results();
    results[0].refine = Some(RefinedCell {
        keep: Keep::Best,
        best_by: Some("chrf".into()),
        kept: 1,
        passes: vec![
            pass("The soup was cold.", 40.0, true),
            pass("The soup was hot and the waiter kind.", 100.0, true),
            pass("Hot soup.", 55.5, false),
        ],
        end: Some(whet::refine::LoopEnd::MaxRounds),
    });
    let mut app = listed();
    update(
        &mut app,
        Msg::ExperimentRunOpened(Box::new(OpenRun::new(
            info(&file),
            dir.path().to_path_buf(),
            prepared,
            results,
            Ok(Ratings::default()),
        ))),
    );
    key(&mut app, KeyCode::Enter);
    assert_eq!(open(&app).selected_result().unwrap().key, "0-greedy-0");
    let screen = text_of(&draw(&app, 120, 40));
    assert!(
        screen.contains("pass 1 of 2 kept (best by chrf) · the rounds ran out"),
        "{screen}"
    );
    assert!(
        screen.contains("▸ pass 1: chrf 100.0 · 8 words · The soup was hot"),
        "{screen}"
    );
    assert!(
        screen.contains("  pass 2: chrf 55.5 · 2 words · Hot soup."),
        "{screen}"
    );
}
