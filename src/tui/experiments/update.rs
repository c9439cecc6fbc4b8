//! The experiments screen's part of the app's pure `update`: its keys, and
//! the answers to the IO it asks for (lists, an opened run, a run's
//! progress, a comparison).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::TextArea;

use super::{ExpOverlay, Experiments, ListPane, OpenRun, RunView, Running};
use crate::experiment::compare::Comparison;
use crate::experiment::library::{ExperimentFile, RunEntry};
use crate::experiment::matrix::Sort;
use crate::experiment::results::CellResult;
use crate::experiment::run::Progress;
use crate::tui::app::{App, Effect, Screen};
use crate::tui::keymap::Action;
use crate::tui::rating::{parse_rating, rating_text};

/// Rows PageUp and PageDown move.
const PAGE: u16 = 10;

/// F10: to the experiments, or back to the screen before.
pub fn toggle(app: &mut App) -> Vec<Effect> {
    if app.screen == Screen::Experiments {
        app.screen = app.exp.return_to.take().unwrap_or(Screen::Chat);
        return Vec::new();
    }
    app.exp.return_to = Some(app.screen);
    app.screen = Screen::Experiments;
    if !app.exp.listed {
        app.exp.listed = true;
        return vec![Effect::ListExperiments];
    }
    Vec::new()
}

pub fn on_listed(exp: &mut Experiments, files: Vec<ExperimentFile>, runs: Vec<RunEntry>) {
    exp.files = files;
    exp.runs = runs;
    if let Some(path) = exp.select_file.take() {
        if let Some(index) = exp.files.iter().position(|f| f.path == path) {
            exp.file_selected = index;
            exp.pane = Some(ListPane::Files);
        }
    }
    exp.file_selected = exp.file_selected.min(exp.files.len().saturating_sub(1));
    exp.run_selected = exp.run_selected.min(exp.runs.len().saturating_sub(1));
    if exp.pane.is_none() && exp.files.is_empty() && !exp.runs.is_empty() {
        exp.pane = Some(ListPane::Runs);
    }
}

/// An experiment was made from the workbench's template: it is shown,
/// selected, ready to run.
pub fn on_made(app: &mut App, path: std::path::PathBuf) -> Vec<Effect> {
    app.screen = Screen::Experiments;
    app.exp.open = None;
    app.exp.listed = true;
    app.info(format!(
        "experiment written to {}; {} runs it",
        path.display(),
        app.keymap
            .key_hint_in(crate::tui::keymap::Context::Experiments, Action::Pick)
    ));
    app.exp.select_file = Some(path);
    vec![Effect::ListExperiments]
}

pub fn on_run_opened(app: &mut App, run: Box<OpenRun>) {
    let id = run.info.id.clone();
    let cells = run.results.len();
    app.exp.open = Some(run);
    app.exp.overlay = None;
    app.info(format!("run {id}: {cells} cells"));
}

/// A run started in the background: its gauges appear.
pub fn on_started(app: &mut App, running: Running) {
    app.info(format!(
        "running {} ({} cells, {} already done)",
        running.experiment, running.total, running.done
    ));
    app.exp.running = Some(running);
}

/// A cell of the run in progress finished: its gauge moves, and an open
/// view of the same run gains the cell.
pub fn on_progress(app: &mut App, id: &str, result: Option<CellResult>, progress: Progress) {
    let Some(running) = app.exp.running.as_mut().filter(|r| r.id == id) else {
        return;
    };
    running.done = progress.done;
    running.total = progress.total;
    running.errors = progress.errors;
    running.tokens_per_second = progress.tokens_per_second();
    running.eta_seconds = progress.eta_seconds(progress.done.saturating_sub(progress.cached));
    let Some(result) = result else {
        return;
    };
    if let Some(gauge) = running.variants.iter_mut().find(|v| v.0 == result.variant) {
        gauge.1 += 1;
    }
    if let Some(open) = app.exp.open.as_mut().filter(|o| o.info.id == id) {
        // Opened while it ran, the run may have read this cell from disk.
        if !open.results.iter().any(|r| r.key == result.key) {
            open.results.push(result);
            open.refresh();
        }
    }
}

pub fn on_finished(app: &mut App, id: &str, outcome: Result<(), String>) -> Vec<Effect> {
    let stopped = app
        .exp
        .running
        .take()
        .filter(|r| r.id == id)
        .is_some_and(|r| r.stopping);
    match outcome {
        Ok(()) if stopped => app.info(format!(
            "run {id} stopped; its finished cells are kept ({} resumes it)",
            app.keymap
                .key_hint_in(crate::tui::keymap::Context::Experiments, Action::Run)
        )),
        Ok(()) => app.info(format!("run {id} finished")),
        Err(error) => app.error(format!("run {id}: {error}")),
    }
    // The lists show the run's count. An open view of it has followed its
    // cells; on the lists, the finished run opens — but never over another
    // screen or another run the user is looking at.
    let mut effects = vec![Effect::ListExperiments];
    if app.screen == Screen::Experiments && app.exp.open.is_none() && app.exp.overlay.is_none() {
        effects.push(Effect::OpenExperimentRun(id.to_string()));
    }
    effects
}

pub fn on_compared(app: &mut App, comparison: Result<Box<Comparison>, String>) {
    match comparison {
        Ok(comparison) => {
            if let Some(open) = app.exp.open.as_mut() {
                open.comparison = Some(*comparison);
                open.view = RunView::Compare { scroll: 0 };
            }
        }
        Err(error) => app.error(error),
    }
}

/// Pasted text goes to the rating field, if it is open.
pub fn on_paste(app: &mut App, text: &str) {
    if let Some(ExpOverlay::Rate(area)) = &mut app.exp.overlay {
        area.insert_str(text.replace('\n', " "));
    }
}

/// Keys while the experiments screen has the screen.
pub fn on_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    if app.exp.overlay.is_some() {
        return on_overlay_key(app, action, key);
    }
    if app.exp.open.is_some() {
        return on_run_key(app, action);
    }
    on_list_key(app, action)
}

fn step(index: &mut usize, count: usize, forward: bool) {
    if count == 0 {
        *index = 0;
    } else if forward {
        *index = (*index + 1).min(count - 1);
    } else {
        *index = index.saturating_sub(1);
    }
}

fn on_list_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    let exp = &mut app.exp;
    match action {
        Some(Action::SelectPrev | Action::SelectNext) => {
            let forward = action == Some(Action::SelectNext);
            match exp.pane() {
                ListPane::Files => step(&mut exp.file_selected, exp.files.len(), forward),
                ListPane::Runs => step(&mut exp.run_selected, exp.runs.len(), forward),
            }
            Vec::new()
        }
        Some(Action::FocusNext | Action::FocusPrev) => {
            exp.pane = Some(match exp.pane() {
                ListPane::Files => ListPane::Runs,
                ListPane::Runs => ListPane::Files,
            });
            Vec::new()
        }
        Some(Action::Pick) => match exp.pane() {
            ListPane::Files => start(app),
            ListPane::Runs => match exp.selected_run() {
                Some(run) if run.problem.is_some() => {
                    let problem = run.problem.clone().unwrap_or_default();
                    app.error(problem);
                    Vec::new()
                }
                Some(run) => vec![Effect::OpenExperimentRun(run.id.clone())],
                None => Vec::new(),
            },
        },
        Some(Action::Run) => match exp.pane() {
            ListPane::Files => start(app),
            ListPane::Runs => match exp.selected_run().map(|r| r.id.clone()) {
                Some(id) => resume(app, id),
                None => Vec::new(),
            },
        },
        Some(Action::Stop) => stop(app),
        Some(Action::QuitNow) => {
            app.should_quit = true;
            vec![Effect::Quit]
        }
        _ => Vec::new(),
    }
}

/// Whether a run may start: one at a time.
fn idle(app: &mut App) -> bool {
    match &app.exp.running {
        Some(running) => {
            let id = running.id.clone();
            app.info(format!(
                "run {id} is going on; wait for it, or press {} to stop it",
                app.keymap.key_hint(Action::Stop)
            ));
            false
        }
        None => true,
    }
}

fn start(app: &mut App) -> Vec<Effect> {
    let Some(file) = app.exp.selected_file().cloned() else {
        app.info("no experiment files: put one in your experiments folder (see the README)");
        return Vec::new();
    };
    if let Some(problem) = &file.problem {
        app.error(format!("{}: {problem}", file.name));
        return Vec::new();
    }
    if !idle(app) {
        return Vec::new();
    }
    vec![Effect::StartExperiment(file.path)]
}

fn resume(app: &mut App, id: String) -> Vec<Effect> {
    if !idle(app) {
        return Vec::new();
    }
    vec![Effect::ResumeExperiment(id)]
}

fn stop(app: &mut App) -> Vec<Effect> {
    match app.exp.running.as_mut() {
        Some(running) if !running.stopping => {
            running.stopping = true;
            app.info("stopping the run; the finished cells are kept");
            vec![Effect::StopExperiment]
        }
        _ => Vec::new(),
    }
}

fn on_run_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    let Some(open) = app.exp.open.as_mut() else {
        return Vec::new();
    };
    let rows = open.shown.len();
    let variants = open.matrix.variants.len();
    let repeats = open
        .selected_row()
        .and_then(|r| r.cells.get(open.col))
        .map_or(0, |c| c.results.len());
    match (&mut open.view, action) {
        (_, Some(Action::QuitNow)) => {
            app.should_quit = true;
            return vec![Effect::Quit];
        }
        (RunView::Matrix, Some(Action::Stop)) => {
            if app
                .exp
                .running
                .as_ref()
                .is_some_and(|r| r.id == open.info.id)
            {
                return stop(app);
            }
            app.exp.open = None;
            return vec![Effect::ListExperiments];
        }
        (_, Some(Action::Stop)) => open.view = RunView::Matrix,
        (RunView::Compare { scroll }, Some(Action::SelectNext | Action::PageDown)) => {
            *scroll = scroll.saturating_add(if action == Some(Action::PageDown) {
                PAGE
            } else {
                1
            });
        }
        (RunView::Compare { scroll }, Some(Action::SelectPrev | Action::PageUp)) => {
            *scroll = scroll.saturating_sub(if action == Some(Action::PageUp) {
                PAGE
            } else {
                1
            });
        }
        (RunView::Compare { .. }, _) => {}
        (view, Some(Action::SelectNext | Action::SelectPrev)) => {
            step(&mut open.row, rows, action == Some(Action::SelectNext));
            reset_scroll(view);
        }
        (view, Some(Action::ColumnNext | Action::ColumnPrev)) => {
            step(&mut open.col, variants, action == Some(Action::ColumnNext));
            reset_scroll(view);
        }
        (RunView::Cell { scroll, .. } | RunView::Pair { scroll }, Some(Action::PageDown)) => {
            *scroll = scroll.saturating_add(PAGE);
        }
        (RunView::Cell { scroll, .. } | RunView::Pair { scroll }, Some(Action::PageUp)) => {
            *scroll = scroll.saturating_sub(PAGE);
        }
        (RunView::Cell { repeat, scroll }, Some(Action::BranchNext | Action::BranchPrev)) => {
            step(repeat, repeats, action == Some(Action::BranchNext));
            *scroll = 0;
        }
        (RunView::Matrix, Some(Action::Pick)) => {
            open.view = RunView::Cell {
                repeat: 0,
                scroll: 0,
            }
        }
        (_, Some(Action::CompareLeft)) => {
            open.pair.0 = open.col;
            open.view = RunView::Pair { scroll: 0 };
        }
        (_, Some(Action::CompareRight)) => {
            open.pair.1 = open.col;
            open.view = RunView::Pair { scroll: 0 };
        }
        (RunView::Matrix, Some(Action::NextScore)) if !open.scores.is_empty() => {
            open.score = (open.score + 1) % open.scores.len();
            open.refresh();
            let label = open.score_label();
            app.info(format!("showing {label}"));
        }
        (RunView::Matrix, Some(Action::SortRows)) => {
            open.sort = match open.sort {
                Sort::Item => Sort::Variant(open.col),
                Sort::Variant(_) => Sort::Disagreement,
                Sort::Disagreement => Sort::Item,
            };
            open.refresh();
            open.row = 0;
            let text = match open.sort {
                Sort::Item => "rows in dataset order".to_string(),
                Sort::Variant(col) => format!(
                    "rows by {} of '{}', highest first",
                    open.score_label(),
                    open.matrix.variants.get(col).cloned().unwrap_or_default()
                ),
                Sort::Disagreement => "rows where the variants disagree most first".to_string(),
            };
            app.info(text);
        }
        (RunView::Matrix, Some(Action::FilterRows)) => {
            open.filter = open.filter.next();
            open.refresh();
            let shown = open.shown.len();
            let text = format!(
                "{}: {shown} of {}",
                open.filter.label(),
                open.matrix.rows.len()
            );
            app.info(text);
        }
        (_, Some(Action::Rate)) => return rate(app),
        (_, Some(Action::CopyMessage)) => {
            if let Some(result) = open.selected_result() {
                let text = result.output.clone();
                app.info(format!(
                    "copied the output ({} characters)",
                    text.chars().count()
                ));
                return vec![Effect::Copy(text)];
            }
        }
        (_, Some(Action::CompareRuns)) => {
            let experiment = open.info.experiment.clone();
            let id = open.info.id.clone();
            let runs: Vec<_> = app
                .exp
                .runs
                .iter()
                .filter(|r| r.id != id && r.experiment.as_deref() == Some(experiment.as_str()))
                .filter(|r| r.problem.is_none())
                .cloned()
                .collect();
            if runs.is_empty() {
                app.info(format!("no other run of {experiment} to compare with"));
                return Vec::new();
            }
            app.exp.overlay = Some(ExpOverlay::PickRun { runs, selected: 0 });
        }
        (_, Some(Action::Export)) => {
            return vec![Effect::ExportExperimentRun(open.info.id.clone())]
        }
        (_, Some(Action::Run)) => {
            let id = open.info.id.clone();
            return resume(app, id);
        }
        _ => {}
    }
    Vec::new()
}

fn reset_scroll(view: &mut RunView) {
    match view {
        RunView::Cell { repeat, scroll } => {
            *repeat = 0;
            *scroll = 0;
        }
        RunView::Pair { scroll } | RunView::Compare { scroll } => *scroll = 0,
        RunView::Matrix => {}
    }
}

fn rate(app: &mut App) -> Vec<Effect> {
    let Some(open) = app.exp.open.as_ref() else {
        return Vec::new();
    };
    if let Some(problem) = &open.ratings_problem {
        let problem = problem.clone();
        app.error(problem);
        return Vec::new();
    }
    let Some(result) = open.selected_result() else {
        return Vec::new();
    };
    if result.error.is_some() {
        app.info("an error cell has no output to rate");
        return Vec::new();
    }
    let current = open
        .ratings
        .cells
        .get(&result.key)
        .map(|r| rating_text(Some(r.score), &r.note))
        .unwrap_or_default();
    let mut area = TextArea::new(vec![current]);
    area.move_cursor(ratatui_textarea::CursorMove::End);
    area.set_placeholder_text("a rating 1-5, then a note; 0 clears");
    app.exp.overlay = Some(ExpOverlay::Rate(Box::new(area)));
    Vec::new()
}

fn on_overlay_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(overlay) = app.exp.overlay.take() else {
        return Vec::new();
    };
    match overlay {
        ExpOverlay::Rate(mut area) => match action {
            Some(Action::Close | Action::Stop) => Vec::new(),
            Some(Action::Apply) => apply_rating(app, &area),
            _ if key.code == KeyCode::Enter => apply_rating(app, &area),
            _ => {
                area.input(key);
                app.exp.overlay = Some(ExpOverlay::Rate(area));
                Vec::new()
            }
        },
        ExpOverlay::PickRun { runs, mut selected } => match action {
            Some(Action::Close | Action::Stop) => Vec::new(),
            Some(Action::SelectPrev | Action::SelectNext) => {
                step(
                    &mut selected,
                    runs.len(),
                    action == Some(Action::SelectNext),
                );
                app.exp.overlay = Some(ExpOverlay::PickRun { runs, selected });
                Vec::new()
            }
            Some(Action::Pick) => {
                let (Some(open), Some(other)) = (app.exp.open.as_ref(), runs.get(selected)) else {
                    return Vec::new();
                };
                // The other run is A (before), this one B (after).
                vec![Effect::CompareExperimentRuns {
                    a: other.id.clone(),
                    b: open.info.id.clone(),
                }]
            }
            _ => {
                app.exp.overlay = Some(ExpOverlay::PickRun { runs, selected });
                Vec::new()
            }
        },
    }
}

fn apply_rating(app: &mut App, area: &TextArea<'static>) -> Vec<Effect> {
    let parsed = parse_rating(&area.lines().join(" "));
    let Some(open) = app.exp.open.as_mut() else {
        return Vec::new();
    };
    let Some(key) = open.selected_result().map(|r| r.key.clone()) else {
        return Vec::new();
    };
    let text = match parsed {
        Ok(Some((score, note))) => {
            if let Err(problem) = open.ratings.set(&key, score, &note) {
                app.error(problem);
                return Vec::new();
            }
            format!("rated {score}/5")
        }
        Ok(None) => {
            open.ratings.clear(&key);
            "rating cleared".to_string()
        }
        Err(problem) => {
            let mut area = area.clone();
            area.set_placeholder_text("a rating 1-5, then a note");
            app.exp.overlay = Some(ExpOverlay::Rate(Box::new(area)));
            app.error(problem);
            return Vec::new();
        }
    };
    open.refresh();
    let effect = Effect::SaveRatings {
        dir: open.dir.clone(),
        ratings: open.ratings.clone(),
    };
    app.info(text);
    vec![effect]
}
