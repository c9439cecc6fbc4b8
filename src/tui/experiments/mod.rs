//! The Experiments screen: experiment files and past runs; a run's results
//! matrix (items × variants for one score, on the theme's heat scale) under
//! a header of each variant's mean, interval and difference from the
//! baseline; a cell's detail (variables, exact input, output against the
//! reference with a word diff); two variants side by side row by row;
//! ratings; a comparison with another run; and a run in progress with a
//! gauge per variant.
//!
//! - [`update`] — keys and the answers of the IO it asks for;
//! - [`view`] — drawing it;
//! - [`driver`] — that IO: listing, opening, running (in the background,
//!   with a worker of its own), exporting.

pub mod driver;
pub mod update;
pub mod view;

use std::path::PathBuf;

use ratatui_textarea::TextArea;

use super::keymap::Context;
use crate::experiment::compare::Comparison;
use crate::experiment::library::{ExperimentFile, RunEntry};
use crate::experiment::matrix::{self, Filter, Matrix, Score, Sort};
use crate::experiment::prepare::Prepared;
use crate::experiment::ratings::Ratings;
use crate::experiment::results::{CellResult, RunInfo};
use crate::experiment::summary::{summarise, Summary};

/// Which list has the keys on the list view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListPane {
    Files,
    Runs,
}

/// What the open run shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunView {
    Matrix,
    /// The selected cell; `repeat` picks among its repeats.
    Cell {
        repeat: usize,
        scroll: u16,
    },
    /// Two variants' outputs for the selected row, side by side.
    Pair {
        scroll: u16,
    },
    /// This run against another one.
    Compare {
        scroll: u16,
    },
}

/// A run opened from disk (or still running).
pub struct OpenRun {
    pub info: RunInfo,
    pub dir: PathBuf,
    pub prepared: Prepared,
    /// Results with the ratings applied.
    pub results: Vec<CellResult>,
    pub ratings: Ratings,
    /// Why ratings cannot be saved (their file is unreadable): rating is
    /// refused rather than overwriting it.
    pub ratings_problem: Option<String>,
    pub summary: Summary,
    pub scores: Vec<Score>,
    pub score: usize,
    pub matrix: Matrix,
    pub sort: Sort,
    pub filter: Filter,
    /// Indices into `matrix.rows`, as shown.
    pub shown: Vec<usize>,
    /// The selected row (an index into `shown`) and variant column.
    pub row: usize,
    pub col: usize,
    /// The two variants side by side (left, right).
    pub pair: (usize, usize),
    pub view: RunView,
    pub comparison: Option<Comparison>,
}

impl OpenRun {
    pub fn new(
        info: RunInfo,
        dir: PathBuf,
        prepared: Prepared,
        results: Vec<CellResult>,
        ratings: Result<Ratings, String>,
    ) -> OpenRun {
        let (ratings, ratings_problem) = match ratings {
            Ok(r) => (r, None),
            Err(problem) => (Ratings::default(), Some(problem)),
        };
        let baseline = prepared
            .experiment
            .variants
            .iter()
            .position(|v| v.name == prepared.experiment.baseline)
            .unwrap_or(0);
        let right = if baseline == 0 && prepared.experiment.variants.len() > 1 {
            1
        } else {
            0
        };
        let matrix = matrix::build(&prepared, &[], Score::Metric(String::new()));
        let mut run = OpenRun {
            info,
            dir,
            summary: summarise(&prepared, &[]),
            prepared,
            results,
            ratings,
            ratings_problem,
            scores: Vec::new(),
            score: 0,
            matrix,
            sort: Sort::Item,
            filter: Filter::All,
            shown: Vec::new(),
            row: 0,
            col: 0,
            pair: (baseline, right),
            view: RunView::Matrix,
            comparison: None,
        };
        run.refresh();
        run
    }

    /// Recomputes everything derived from the results (after new results,
    /// a rating, another score, sort or filter), keeping the selection on
    /// the same item where it is still shown.
    pub fn refresh(&mut self) {
        self.ratings.apply(&mut self.results);
        self.summary = summarise(&self.prepared, &self.results);
        let current = self.scores.get(self.score).cloned();
        self.scores = matrix::scores(&self.prepared, &self.results);
        self.score = current
            .and_then(|s| self.scores.iter().position(|x| *x == s))
            .unwrap_or(0);
        let score = self
            .scores
            .get(self.score)
            .cloned()
            .unwrap_or(Score::Metric(String::new()));
        let selected_item = self.selected_row().map(|r| r.item);
        self.matrix = matrix::build(&self.prepared, &self.results, score);
        self.shown = self.matrix.shown(&self.sort, self.filter);
        self.row = selected_item
            .and_then(|item| {
                self.shown
                    .iter()
                    .position(|&i| self.matrix.rows[i].item == item)
            })
            .unwrap_or(0)
            .min(self.shown.len().saturating_sub(1));
        self.col = self.col.min(self.matrix.variants.len().saturating_sub(1));
    }

    pub fn selected_row(&self) -> Option<&matrix::Row> {
        self.shown.get(self.row).map(|&i| &self.matrix.rows[i])
    }

    /// The selected cell's results (its repeats), in repeat order.
    pub fn selected_results(&self) -> Vec<&CellResult> {
        self.selected_row()
            .and_then(|row| row.cells.get(self.col))
            .map(|cell| cell.results.iter().map(|&i| &self.results[i]).collect())
            .unwrap_or_default()
    }

    /// The result shown in the cell view (or rated from the matrix).
    pub fn selected_result(&self) -> Option<&CellResult> {
        let repeat = match self.view {
            RunView::Cell { repeat, .. } => repeat,
            _ => 0,
        };
        let results = self.selected_results();
        results
            .get(repeat.min(results.len().saturating_sub(1)))
            .copied()
    }

    pub fn score_label(&self) -> String {
        self.scores
            .get(self.score)
            .map_or_else(|| "no score".to_string(), |s| s.label(&self.prepared))
    }
}

/// A run going on in the background.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub id: String,
    pub experiment: String,
    /// Per variant: (name, cells done, cells in all).
    pub variants: Vec<(String, usize, usize)>,
    pub done: usize,
    pub total: usize,
    pub errors: usize,
    pub tokens_per_second: f64,
    pub eta_seconds: Option<f64>,
    /// Esc was pressed: the cells in flight are dropped.
    pub stopping: bool,
}

pub enum ExpOverlay {
    /// "4 clear, but long": a rating and a note for the selected cell.
    Rate(Box<TextArea<'static>>),
    /// Another run of the same experiment to compare with.
    PickRun {
        runs: Vec<RunEntry>,
        selected: usize,
    },
}

#[derive(Default)]
pub struct Experiments {
    /// The lists were asked for (the first time the screen showed).
    pub listed: bool,
    pub files: Vec<ExperimentFile>,
    pub runs: Vec<RunEntry>,
    pub pane: Option<ListPane>,
    pub file_selected: usize,
    pub run_selected: usize,
    pub open: Option<Box<OpenRun>>,
    pub running: Option<Running>,
    pub overlay: Option<ExpOverlay>,
    /// A file to select once the lists arrive (one just made).
    pub select_file: Option<PathBuf>,
    /// The screen F10 goes back to.
    pub return_to: Option<crate::tui::app::Screen>,
}

impl Experiments {
    pub fn pane(&self) -> ListPane {
        self.pane.unwrap_or(ListPane::Files)
    }

    pub fn context(&self) -> Context {
        match &self.overlay {
            Some(ExpOverlay::Rate(_)) => Context::WorkbenchForm,
            Some(ExpOverlay::PickRun { .. }) => Context::WorkbenchList,
            None => Context::Experiments,
        }
    }

    pub fn selected_file(&self) -> Option<&ExperimentFile> {
        self.files.get(self.file_selected)
    }

    pub fn selected_run(&self) -> Option<&RunEntry> {
        self.runs.get(self.run_selected)
    }
}
