//! A run's results summarised per variant: each metric's mean over items
//! with a bootstrap interval, each check's pass rate with a Wilson interval,
//! and each against the baseline over the items both have (paired: mean
//! difference with its interval, wins / ties / losses, p-value). Repeats of
//! an item are averaged first, so every item counts once.

use std::collections::BTreeMap;

use serde::Serialize;

use super::prepare::Prepared;
use super::ratings::RATING_METRIC;
use super::refinement::RefineSummary;
use super::results::CellResult;
use crate::statistics::paired::{compare, PairedComparison, ScoreKind};
use crate::statistics::{bootstrap, proportion, Interval, LEVEL, RESAMPLES, SEED};

#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    pub name: String,
    pub cells: usize,
    pub errors: usize,
    /// Metric → mean over items with its interval.
    pub metrics: BTreeMap<String, Interval>,
    /// Metric → against the baseline (absent for the baseline itself).
    pub versus_baseline: BTreeMap<String, PairedComparison>,
    /// Per check, in the experiment's order: pass rate over cells.
    pub checks: Vec<Interval>,
    pub checks_versus_baseline: Vec<Option<PairedComparison>>,
    /// Corpus BLEU and chrF (sacrebleu's corpus statistics, not a mean of
    /// sentence scores) over the cells with references, when the
    /// experiment scores them.
    pub corpus: BTreeMap<String, f64>,
    /// How much repeats of the same item agree (sampled variants only).
    pub agreement: Option<Agreement>,
    /// A refined variant's loops: which pass its cells kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refine: Option<RefineSummary>,
}

/// Agreement between the repeats of each item.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub repeats: u32,
    /// Distinct outputs per item, on average (1 = always the same).
    pub mean_distinct_outputs: f64,
    /// Per check: the share of items whose repeats disagree on it.
    pub check_flip_rate: Vec<f64>,
    /// Per check: the share of items where every repeat passes (pass^k).
    pub check_pass_all: Vec<f64>,
}

/// Repeats agreement of one variant's cells, None without repeats.
fn agreement(cells: &[&CellResult], checks: usize) -> Option<Agreement> {
    let mut by_item: BTreeMap<usize, Vec<&CellResult>> = BTreeMap::new();
    for cell in cells.iter().filter(|c| c.error.is_none()) {
        by_item.entry(cell.item).or_default().push(cell);
    }
    let repeats = by_item.values().map(Vec::len).max()?;
    if repeats < 2 {
        return None;
    }
    let items = by_item.len() as f64;
    let distinct: f64 = by_item
        .values()
        .map(|cells| {
            let outputs: std::collections::BTreeSet<&str> =
                cells.iter().map(|c| c.output.as_str()).collect();
            outputs.len() as f64
        })
        .sum();
    let mut flip = Vec::new();
    let mut pass_all = Vec::new();
    for index in 0..checks {
        let outcomes = |cells: &Vec<&CellResult>| -> Vec<bool> {
            cells
                .iter()
                .map(|c| c.scores.checks.get(index) == Some(&true))
                .collect()
        };
        let flips = by_item
            .values()
            .filter(|cells| {
                let o = outcomes(cells);
                o.iter().any(|&p| p) && o.iter().any(|&p| !p)
            })
            .count();
        let all = by_item
            .values()
            .filter(|cells| outcomes(cells).iter().all(|&p| p))
            .count();
        flip.push(flips as f64 / items);
        pass_all.push(all as f64 / items);
    }
    Some(Agreement {
        repeats: repeats as u32,
        mean_distinct_outputs: distinct / items,
        check_flip_rate: flip,
        check_pass_all: pass_all,
    })
}

/// Corpus BLEU and chrF of `cells` against their items' references.
fn corpus(prepared: &Prepared, cells: &[&CellResult]) -> BTreeMap<String, f64> {
    let scored: Vec<&&CellResult> = cells
        .iter()
        .filter(|c| c.error.is_none() && !prepared.items[c.item].references.is_empty())
        .collect();
    let mut out = BTreeMap::new();
    if scored.is_empty() {
        return out;
    }
    let candidates: Vec<&str> = scored.iter().map(|c| c.output.as_str()).collect();
    let references: Vec<Vec<&str>> = scored
        .iter()
        .map(|c| {
            prepared.items[c.item]
                .references
                .iter()
                .map(String::as_str)
                .collect()
        })
        .collect();
    let metrics = &prepared.experiment.metrics;
    if metrics.iter().any(|m| m == "bleu") {
        out.insert(
            "bleu".to_string(),
            crate::metrics::corpus_bleu(&candidates, &references),
        );
    }
    if metrics.iter().any(|m| m == "chrf") {
        out.insert(
            "chrf".to_string(),
            crate::metrics::corpus_chrf(&candidates, &references),
        );
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub experiment: String,
    pub baseline: String,
    pub items: usize,
    pub check_labels: Vec<String>,
    pub variants: Vec<VariantSummary>,
}

/// An item of the dataset: its index and its line (the line too, so that
/// two runs pair only items that are the same line of the dataset).
pub(super) type ItemId = (usize, usize);

/// Per item, the mean of `value` over the variant's scored cells (repeats
/// averaged, so every item counts once).
pub(super) fn per_item(
    results: &[CellResult],
    variant: &str,
    value: impl Fn(&CellResult) -> Option<f64>,
) -> BTreeMap<ItemId, f64> {
    let mut sums: BTreeMap<ItemId, (f64, usize)> = BTreeMap::new();
    for r in results
        .iter()
        .filter(|r| r.variant == variant && r.error.is_none())
    {
        if let Some(v) = value(r) {
            let entry = sums.entry((r.item, r.line)).or_default();
            entry.0 += v;
            entry.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(item, (sum, n))| (item, sum / n as f64))
        .collect()
}

/// Paired values of the items both maps have.
pub(super) fn paired(a: &BTreeMap<ItemId, f64>, b: &BTreeMap<ItemId, f64>) -> (Vec<f64>, Vec<f64>) {
    a.iter()
        .filter_map(|(item, x)| b.get(item).map(|y| (*x, *y)))
        .unzip()
}

/// The experiment's metrics, and `rating` when some cell is rated.
pub fn metric_names(prepared: &Prepared, results: &[CellResult]) -> Vec<String> {
    let mut names = prepared.experiment.metrics.clone();
    if results
        .iter()
        .any(|r| r.scores.metrics.contains_key(RATING_METRIC))
    {
        names.push(RATING_METRIC.to_string());
    }
    names
}

pub fn summarise(prepared: &Prepared, results: &[CellResult]) -> Summary {
    let experiment = &prepared.experiment;
    let metric_of = |name: &str| {
        let name = name.to_string();
        move |r: &CellResult| r.scores.metrics.get(&name).copied()
    };
    let check_of = |index: usize| {
        move |r: &CellResult| {
            r.scores
                .checks
                .get(index)
                .map(|&p| if p { 1.0 } else { 0.0 })
        }
    };
    let baseline = &experiment.baseline;
    let metrics = metric_names(prepared, results);
    let mut variants = Vec::new();
    for variant in &experiment.variants {
        let mine: Vec<&CellResult> = results
            .iter()
            .filter(|r| r.variant == variant.name)
            .collect();
        let mut summary = VariantSummary {
            name: variant.name.clone(),
            cells: mine.len(),
            errors: mine.iter().filter(|r| r.error.is_some()).count(),
            metrics: BTreeMap::new(),
            versus_baseline: BTreeMap::new(),
            checks: Vec::new(),
            checks_versus_baseline: Vec::new(),
            corpus: corpus(prepared, &mine),
            agreement: agreement(&mine, experiment.checks.len()),
            refine: RefineSummary::of(variant.refine.as_ref(), &mine),
        };
        for metric in &metrics {
            let values = per_item(results, &variant.name, metric_of(metric));
            let list: Vec<f64> = values.values().copied().collect();
            if let Some(interval) = bootstrap::mean_interval(&list, LEVEL, RESAMPLES, SEED) {
                summary.metrics.insert(metric.clone(), interval);
            }
            if variant.name != *baseline {
                let base = per_item(results, baseline, metric_of(metric));
                let (b, v) = paired(&base, &values);
                let kind = if metric == "exact" {
                    ScoreKind::PassFail
                } else {
                    ScoreKind::Continuous
                };
                if let Some(c) = compare(&b, &v, kind, LEVEL, RESAMPLES, SEED) {
                    summary.versus_baseline.insert(metric.clone(), c);
                }
            }
        }
        for (index, _) in experiment.checks.iter().enumerate() {
            let passed = mine
                .iter()
                .filter(|r| r.error.is_none())
                .filter(|r| r.scores.checks.get(index) == Some(&true))
                .count() as u64;
            let scored = mine.iter().filter(|r| r.error.is_none()).count() as u64;
            summary.checks.push(
                proportion::wilson(passed, scored, LEVEL).unwrap_or(Interval {
                    estimate: f64::NAN,
                    low: f64::NAN,
                    high: f64::NAN,
                }),
            );
            let comparison = (variant.name != *baseline).then(|| {
                let base = per_item(results, baseline, check_of(index));
                let values = per_item(results, &variant.name, check_of(index));
                let (b, v) = paired(&base, &values);
                compare(&b, &v, ScoreKind::PassFail, LEVEL, RESAMPLES, SEED)
            });
            summary.checks_versus_baseline.push(comparison.flatten());
        }
        variants.push(summary);
    }
    Summary {
        experiment: experiment.name.clone(),
        baseline: baseline.clone(),
        items: prepared.items.len(),
        check_labels: experiment.checks.iter().map(|c| c.label()).collect(),
        variants,
    }
}

/// Scored cells (error cells left out) on which at least one check
/// failed: what `--fail-on-check` looks at.
pub fn cells_failing_checks(results: &[CellResult]) -> usize {
    results
        .iter()
        .filter(|r| r.error.is_none() && r.scores.checks.iter().any(|&passed| !passed))
        .count()
}

/// The summary as a table: a row per variant, per metric its mean with
/// interval and its difference from the baseline with the p-value (`*`
/// below 0.05); per check its pass rate.
pub fn table(summary: &Summary) -> Vec<String> {
    let mut lines = vec![format!(
        "{} · {} items · baseline '{}' · 95% intervals; Δ vs baseline (p, * = p < 0.05)",
        summary.experiment, summary.items, summary.baseline
    )];
    for v in &summary.variants {
        let errors = if v.errors > 0 {
            format!(", {} errors", v.errors)
        } else {
            String::new()
        };
        lines.push(format!("{} ({} cells{errors})", v.name, v.cells));
        for (metric, interval) in &v.metrics {
            let versus = match v.versus_baseline.get(metric) {
                Some(c) => format!(
                    "   Δ {:+.3} [{:+.3}, {:+.3}]  {}/{}/{} w/t/l  p={:.3}{}",
                    c.difference.estimate,
                    c.difference.low,
                    c.difference.high,
                    c.wins,
                    c.ties,
                    c.losses,
                    c.p_value,
                    if c.significant { "*" } else { "" }
                ),
                None => String::new(),
            };
            lines.push(format!(
                "  {metric:<8} {:>8.3} [{:.3}, {:.3}]{versus}",
                interval.estimate, interval.low, interval.high
            ));
        }
        if let Some(refine) = &v.refine {
            lines.push(format!("  refine   {}", refine.describe()));
        }
        if !v.corpus.is_empty() {
            let parts: Vec<String> = v
                .corpus
                .iter()
                .map(|(metric, value)| format!("{metric} {value:.3}"))
                .collect();
            lines.push(format!("  corpus   {}", parts.join(", ")));
        }
        for (index, label) in summary.check_labels.iter().enumerate() {
            let Some(rate) = v.checks.get(index) else {
                continue;
            };
            let versus = match v.checks_versus_baseline.get(index).and_then(|c| c.as_ref()) {
                Some(c) => format!(
                    "   Δ {:+.1} pts  p={:.3}{}",
                    c.difference.estimate * 100.0,
                    c.p_value,
                    if c.significant { "*" } else { "" }
                ),
                None => String::new(),
            };
            lines.push(format!(
                "  check {label}: {:.0}% [{:.0}–{:.0}%]{versus}",
                rate.estimate * 100.0,
                rate.low * 100.0,
                rate.high * 100.0
            ));
        }
        if let Some(a) = &v.agreement {
            lines.push(format!(
                "  repeats  {} per item: {:.2} distinct outputs per item",
                a.repeats, a.mean_distinct_outputs
            ));
            for (index, label) in summary.check_labels.iter().enumerate() {
                let (Some(flip), Some(all)) =
                    (a.check_flip_rate.get(index), a.check_pass_all.get(index))
                else {
                    continue;
                };
                lines.push(format!(
                    "    check {label}: flips on {:.0}% of items, pass^{} {:.0}%",
                    flip * 100.0,
                    a.repeats,
                    all * 100.0
                ));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::score::CellScores;

    fn cell(item: usize, output: &str, check: bool) -> CellResult {
        CellResult {
            item,
            line: item + 1,
            output: output.into(),
            scores: CellScores {
                metrics: BTreeMap::new(),
                checks: vec![check],
            },
            ..CellResult::for_test(&format!("{item}-{output}"))
        }
    }

    #[test]
    fn failing_checks_are_counted_on_scored_cells_only() {
        let mut error = cell(2, "", false);
        error.error = Some("the worker died".into());
        let cells = [cell(0, "a", true), cell(1, "b", false), error];
        assert_eq!(cells_failing_checks(&cells), 1);
        assert_eq!(cells_failing_checks(&cells[..1]), 0);
    }

    #[test]
    fn repeats_agreement_counts_distinct_outputs_flips_and_pass_k() {
        let cells = [
            cell(0, "a", true),
            cell(0, "a", true),
            cell(0, "b", true),
            cell(1, "c", true),
            cell(1, "d", false),
            cell(1, "e", true),
        ];
        let refs: Vec<&CellResult> = cells.iter().collect();
        let a = agreement(&refs, 1).unwrap();
        assert_eq!(a.repeats, 3);
        assert!((a.mean_distinct_outputs - 2.5).abs() < 1e-12);
        assert_eq!(a.check_flip_rate, [0.5]);
        assert_eq!(a.check_pass_all, [0.5]);
        assert!(
            agreement(&refs[..1], 1).is_none(),
            "one repeat: nothing to agree on"
        );
    }
}
