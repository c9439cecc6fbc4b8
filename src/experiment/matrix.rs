//! A run as a matrix for one score: a row per dataset item, a column per
//! variant, each cell that score averaged over the item's repeats, with
//! error cells and disagreeing repeats marked. Rows sort by the item, by a
//! variant's score, or by how much the variants disagree, and filter to
//! where the variants differ or a check fails. No terminal here: the
//! Experiments screen draws what this computes.

use std::collections::{BTreeMap, BTreeSet};

use super::prepare::Prepared;
use super::ratings::RATING_METRIC;
use super::results::CellResult;
use super::summary::metric_names;

/// Which score the matrix shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Score {
    Metric(String),
    /// A check by its index in the experiment: 1 pass, 0 fail.
    Check(usize),
}

impl Score {
    pub fn label(&self, prepared: &Prepared) -> String {
        match self {
            Score::Metric(name) => name.clone(),
            Score::Check(index) => prepared
                .experiment
                .checks
                .get(*index)
                .map_or_else(|| format!("check {index}"), |c| c.label()),
        }
    }

    /// The range a value of this score falls in, for a heat scale: fixed
    /// where the score has one, else what the run shows.
    pub fn scale(&self, observed: (f64, f64)) -> (f64, f64) {
        match self {
            Score::Metric(name) => match name.as_str() {
                "bleu" | "chrf" => (0.0, 100.0),
                "rouge1" | "rouge2" | "rougeL" | "exact" => (0.0, 1.0),
                RATING_METRIC => (1.0, 5.0),
                _ => observed,
            },
            Score::Check(_) => (0.0, 1.0),
        }
    }
}

/// Every score of a run: its metrics (with `rating` once a cell is rated),
/// then its checks.
pub fn scores(prepared: &Prepared, results: &[CellResult]) -> Vec<Score> {
    let mut all: Vec<Score> = metric_names(prepared, results)
        .into_iter()
        .map(Score::Metric)
        .collect();
    all.extend((0..prepared.experiment.checks.len()).map(Score::Check));
    all
}

fn value_of(result: &CellResult, score: &Score) -> Option<f64> {
    if result.error.is_some() {
        return None;
    }
    match score {
        Score::Metric(name) => result.scores.metrics.get(name).copied(),
        Score::Check(index) => result
            .scores
            .checks
            .get(*index)
            .map(|&p| if p { 1.0 } else { 0.0 }),
    }
}

/// One item of one variant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatrixCell {
    /// The score's mean over the repeats that have it.
    pub value: Option<f64>,
    /// Indices into the run's results, in repeat order.
    pub results: Vec<usize>,
    pub errors: usize,
    /// Different outputs among the repeats.
    pub distinct_outputs: usize,
    /// The repeats disagree on this score.
    pub disagree: bool,
}

impl MatrixCell {
    pub fn is_missing(&self) -> bool {
        self.results.is_empty()
    }

    pub fn all_errors(&self) -> bool {
        !self.results.is_empty() && self.errors == self.results.len()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The item's index (after `limit`) and its line in the dataset.
    pub item: usize,
    pub line: usize,
    /// One per variant, in the experiment's order.
    pub cells: Vec<MatrixCell>,
    /// Some check fails in some cell of the row.
    pub check_fails: bool,
}

impl Row {
    /// Highest minus lowest value across the variants (0 with fewer than
    /// two values).
    pub fn spread(&self) -> f64 {
        let values: Vec<f64> = self.cells.iter().filter_map(|c| c.value).collect();
        match (
            values.iter().copied().reduce(f64::min),
            values.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) => hi - lo,
            _ => 0.0,
        }
    }

    /// The variants do not all agree: different values, or errors in some.
    pub fn differs(&self) -> bool {
        let errors: BTreeSet<bool> = self.cells.iter().map(MatrixCell::all_errors).collect();
        self.spread() > 1e-9 || errors.len() > 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sort {
    /// Dataset order.
    Item,
    /// By a variant's value, highest first (missing values last).
    Variant(usize),
    /// Largest spread across the variants first, then disagreeing repeats.
    Disagreement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    /// Rows where the variants differ on the score shown.
    Differ,
    /// Rows where some check fails.
    CheckFails,
}

impl Filter {
    pub fn next(self) -> Filter {
        match self {
            Filter::All => Filter::Differ,
            Filter::Differ => Filter::CheckFails,
            Filter::CheckFails => Filter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all rows",
            Filter::Differ => "rows where variants differ",
            Filter::CheckFails => "rows where a check fails",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub score: Score,
    pub variants: Vec<String>,
    /// Every item of the run, in dataset order.
    pub rows: Vec<Row>,
    /// Lowest and highest value shown (for scores without a fixed scale).
    pub observed: (f64, f64),
}

/// The matrix of `score` over a run.
pub fn build(prepared: &Prepared, results: &[CellResult], score: Score) -> Matrix {
    let variants: Vec<String> = prepared
        .experiment
        .variants
        .iter()
        .map(|v| v.name.clone())
        .collect();
    let column: BTreeMap<&str, usize> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| (v.as_str(), i))
        .collect();
    let mut by_item: BTreeMap<usize, Row> = BTreeMap::new();
    for (index, item) in prepared.items.iter().enumerate() {
        by_item.insert(
            index,
            Row {
                item: index,
                line: item.line,
                cells: vec![MatrixCell::default(); variants.len()],
                check_fails: false,
            },
        );
    }
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by_key(|&i| results[i].repeat);
    for i in order {
        let result = &results[i];
        let (Some(&col), Some(row)) = (
            column.get(result.variant.as_str()),
            by_item.get_mut(&result.item),
        ) else {
            continue;
        };
        row.cells[col].results.push(i);
        if result.error.is_some() {
            row.cells[col].errors += 1;
        } else if result.scores.checks.iter().any(|p| !p) {
            row.check_fails = true;
        }
    }
    let mut observed = (f64::INFINITY, f64::NEG_INFINITY);
    for row in by_item.values_mut() {
        for cell in &mut row.cells {
            let values: Vec<f64> = cell
                .results
                .iter()
                .filter_map(|&i| value_of(&results[i], &score))
                .collect();
            if !values.is_empty() {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                cell.value = Some(mean);
                observed = (observed.0.min(mean), observed.1.max(mean));
            }
            cell.disagree = values.iter().any(|v| (v - values[0]).abs() > 1e-9);
            cell.distinct_outputs = cell
                .results
                .iter()
                .filter(|&&i| results[i].error.is_none())
                .map(|&i| results[i].output.as_str())
                .collect::<BTreeSet<_>>()
                .len();
        }
    }
    if observed.0 > observed.1 {
        observed = (0.0, 0.0);
    }
    Matrix {
        score,
        variants,
        rows: by_item.into_values().collect(),
        observed,
    }
}

impl Matrix {
    /// Indices into `rows` as shown: filtered, then sorted (ties keep
    /// dataset order).
    pub fn shown(&self, sort: &Sort, filter: Filter) -> Vec<usize> {
        let mut shown: Vec<usize> = (0..self.rows.len())
            .filter(|&i| match filter {
                Filter::All => true,
                Filter::Differ => self.rows[i].differs(),
                Filter::CheckFails => self.rows[i].check_fails,
            })
            .collect();
        match sort {
            Sort::Item => {}
            Sort::Variant(col) => shown.sort_by(|&a, &b| {
                let value = |i: usize| self.rows[i].cells.get(*col).and_then(|c| c.value);
                match (value(a), value(b)) {
                    (Some(x), Some(y)) => y.total_cmp(&x),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                }
            }),
            Sort::Disagreement => shown.sort_by(|&a, &b| {
                let key = |i: usize| {
                    let row = &self.rows[i];
                    (
                        row.spread(),
                        row.cells.iter().filter(|c| c.disagree).count(),
                    )
                };
                let (sa, da) = key(a);
                let (sb, db) = key(b);
                sb.total_cmp(&sa).then(db.cmp(&da))
            }),
        }
        shown
    }

    /// Where `value` sits on the score's scale, 0 to 1.
    pub fn heat(&self, value: f64) -> f64 {
        let (lo, hi) = self.score.scale(self.observed);
        if hi - lo <= f64::EPSILON {
            return 0.5;
        }
        ((value - lo) / (hi - lo)).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::prepare::prepare;
    use crate::experiment::score::CellScores;

    fn prepared(dir: &std::path::Path) -> Prepared {
        std::fs::write(
            dir.join("d.jsonl"),
            "{\"review\": \"a\", \"reference\": \"x\"}\n{\"review\": \"b\", \"reference\": \"y\"}\n{\"review\": \"c\", \"reference\": \"z\"}\n",
        )
        .unwrap();
        let path = dir.join("e.toml");
        std::fs::write(
            &path,
            "name = \"e\"\ntemplate = \"sentiment-reversal\"\ndataset = \"d.jsonl\"\nmetrics = [\"chrf\", \"length\"]\nchecks = [{ max-words = 3 }]\nrepeats = 2\n[[variants]]\nname = \"greedy\"\ntemperature = 0\n[[variants]]\nname = \"hot\"\ntemperature = 0.9\n",
        )
        .unwrap();
        prepare(&path, None).unwrap()
    }

    fn cell(item: usize, variant: &str, repeat: u32, chrf: f64, pass: bool) -> CellResult {
        CellResult {
            item,
            line: item + 1,
            variant: variant.into(),
            repeat,
            seed: repeat,
            output: format!("out {chrf}"),
            scores: CellScores {
                metrics: [("chrf".to_string(), chrf), ("length".to_string(), 2.0)]
                    .into_iter()
                    .collect(),
                checks: vec![pass],
            },
            ..CellResult::for_test(&format!("{item}-{variant}-{repeat}"))
        }
    }

    #[test]
    fn cells_average_repeats_mark_disagreement_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let prepared = prepared(dir.path());
        let mut failed = cell(2, "hot", 0, 0.0, true);
        failed.error = Some("prompt too long".into());
        let results = vec![
            cell(0, "greedy", 0, 50.0, true),
            cell(0, "hot", 1, 30.0, true),
            cell(0, "hot", 0, 50.0, true),
            cell(1, "greedy", 0, 40.0, false),
            cell(1, "hot", 0, 40.0, true),
            cell(1, "hot", 1, 40.0, true),
            cell(2, "greedy", 0, 10.0, true),
            failed,
        ];
        let m = build(&prepared, &results, Score::Metric("chrf".into()));
        assert_eq!(m.variants, ["greedy", "hot"]);
        assert_eq!(m.rows.len(), 3);
        let hot0 = &m.rows[0].cells[1];
        assert_eq!(hot0.value, Some(40.0));
        assert!(hot0.disagree);
        assert_eq!(hot0.distinct_outputs, 2);
        assert_eq!(hot0.results, [2, 1], "in repeat order");
        assert!(!m.rows[1].cells[1].disagree);
        assert!(m.rows[2].cells[1].all_errors());
        assert_eq!(m.rows[2].cells[1].value, None);
        assert!(m.rows[1].check_fails && !m.rows[0].check_fails);
        // Row 0 spreads 10, row 1 not at all, row 2 has an error on one side.
        assert_eq!(m.shown(&Sort::Item, Filter::Differ), [0, 2]);
        assert_eq!(m.shown(&Sort::Item, Filter::CheckFails), [1]);
        assert_eq!(m.shown(&Sort::Disagreement, Filter::All), [0, 1, 2]);
        assert_eq!(m.shown(&Sort::Variant(0), Filter::All), [0, 1, 2]);
        assert_eq!(m.shown(&Sort::Variant(1), Filter::All), [0, 1, 2]);
        let by_greedy_low: Vec<usize> = m.shown(&Sort::Variant(0), Filter::All);
        assert_eq!(m.rows[by_greedy_low[2]].item, 2);
        assert_eq!(m.heat(50.0), 0.5, "chrF's scale is 0-100");
        let checks = build(&prepared, &results, Score::Check(0));
        assert_eq!(checks.rows[1].cells[0].value, Some(0.0));
        assert_eq!(Score::Check(0).label(&prepared), "max-words 3");
        let length = build(&prepared, &results, Score::Metric("length".into()));
        assert_eq!(length.heat(2.0), 0.5, "no spread: the middle");
        assert_eq!(
            scores(&prepared, &results),
            [
                Score::Metric("chrf".into()),
                Score::Metric("length".into()),
                Score::Check(0)
            ]
        );
    }
}
