//! Two runs of an experiment side by side (say, before and after editing a
//! template): per variant (by name), each metric and check in run A and in
//! run B over the items both runs scored, and the difference B − A with a
//! paired bootstrap interval and a p-value. An item is the same item in
//! both runs when its index and its dataset line match; its repeats are
//! averaged first, as in the summary, so every item counts once. Variants,
//! metrics and checks that only one run has are listed as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::results::{self, CellResult, RunInfo};
use super::spec;
use super::summary::{paired, per_item, ItemId};
use crate::statistics::paired::{compare as paired_compare, PairedComparison, ScoreKind};
use crate::statistics::{LEVEL, RESAMPLES, SEED};

/// One of the two runs.
#[derive(Debug, Clone, Serialize)]
pub struct RunSide {
    pub id: String,
    pub experiment: String,
    pub model: PathBuf,
    pub created_unix_ms: u64,
    pub cells: usize,
    pub errors: usize,
}

/// A metric or a check of one variant in both runs.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreComparison {
    /// The metric's name, or the check's label.
    pub name: String,
    /// Items both runs have a value for.
    pub shared_items: usize,
    /// Means over those items (a check's: its pass rate).
    pub mean_a: f64,
    pub mean_b: f64,
    /// B − A over those items; None without shared items.
    pub difference: Option<PairedComparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantComparison {
    pub name: String,
    /// Items with a scored (non-error) cell in each run, and in both.
    pub items_a: usize,
    pub items_b: usize,
    pub shared_items: usize,
    pub metrics: Vec<ScoreComparison>,
    pub checks: Vec<ScoreComparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: RunSide,
    pub b: RunSide,
    pub variants: Vec<VariantComparison>,
    /// What only run A has: `variant 'x'`, `metric 'bleu'`, `check 'max-words 60'`.
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
}

/// The check labels of a run, from the experiment text it ran with
/// (`check N` where that text cannot be read any more).
fn check_labels(info: &RunInfo, results: &[CellResult]) -> Vec<String> {
    let count = results
        .iter()
        .map(|r| r.scores.checks.len())
        .max()
        .unwrap_or(0);
    let parsed = spec::parse(&info.file_text, &info.file.display().to_string(), None)
        .ok()
        .map(|e| e.checks.iter().map(|c| c.label()).collect::<Vec<_>>())
        .filter(|labels| labels.len() >= count);
    parsed.unwrap_or_else(|| (1..=count).map(|n| format!("check {n}")).collect())
}

/// Variant names in the experiment's order (from the text the run
/// started with), then any others in the order they first appear (results
/// are saved as cells finish).
fn variant_names(info: &RunInfo, results: &[CellResult]) -> Vec<String> {
    let mut names: Vec<String> = spec::parse(&info.file_text, "", None)
        .map(|e| e.variants.into_iter().map(|v| v.name).collect())
        .unwrap_or_default();
    names.retain(|n| results.iter().any(|r| r.variant == *n));
    for r in results {
        if !names.contains(&r.variant) {
            names.push(r.variant.clone());
        }
    }
    names
}

fn score_comparison(
    name: &str,
    a: &BTreeMap<ItemId, f64>,
    b: &BTreeMap<ItemId, f64>,
    kind: ScoreKind,
) -> ScoreComparison {
    let (xs, ys) = paired(a, b);
    ScoreComparison {
        name: name.to_string(),
        shared_items: xs.len(),
        mean_a: crate::statistics::mean(&xs),
        mean_b: crate::statistics::mean(&ys),
        difference: paired_compare(&xs, &ys, kind, LEVEL, RESAMPLES, SEED),
    }
}

fn side(info: &RunInfo, results: &[CellResult]) -> RunSide {
    RunSide {
        id: info.id.clone(),
        experiment: info.experiment.clone(),
        model: info.model.clone(),
        created_unix_ms: info.created_unix_ms,
        cells: results.len(),
        errors: results.iter().filter(|r| r.error.is_some()).count(),
    }
}

/// Run A against run B.
pub fn compare(a: (&RunInfo, &[CellResult]), b: (&RunInfo, &[CellResult])) -> Comparison {
    let (info_a, results_a) = a;
    let (info_b, results_b) = b;
    let mut only_in_a = Vec::new();
    let mut only_in_b = Vec::new();

    let names_a = variant_names(info_a, results_a);
    let names_b = variant_names(info_b, results_b);
    only_in_a.extend(
        names_a
            .iter()
            .filter(|n| !names_b.contains(n))
            .map(|n| format!("variant '{n}'")),
    );
    only_in_b.extend(
        names_b
            .iter()
            .filter(|n| !names_a.contains(n))
            .map(|n| format!("variant '{n}'")),
    );

    let metric_names = |results: &[CellResult]| -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in results {
            for name in r.scores.metrics.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    };
    let metrics_a = metric_names(results_a);
    let metrics_b = metric_names(results_b);
    let metrics: Vec<&String> = metrics_a.iter().filter(|m| metrics_b.contains(m)).collect();
    only_in_a.extend(
        metrics_a
            .iter()
            .filter(|m| !metrics_b.contains(m))
            .map(|m| format!("metric '{m}'")),
    );
    only_in_b.extend(
        metrics_b
            .iter()
            .filter(|m| !metrics_a.contains(m))
            .map(|m| format!("metric '{m}'")),
    );

    // Checks are matched by label: an edited experiment may reorder them.
    let checks_a = check_labels(info_a, results_a);
    let checks_b = check_labels(info_b, results_b);
    let checks: Vec<(usize, usize, &String)> = checks_a
        .iter()
        .enumerate()
        .filter_map(|(i, label)| {
            let j = checks_b.iter().position(|l| l == label)?;
            Some((i, j, label))
        })
        .collect();
    only_in_a.extend(
        checks_a
            .iter()
            .filter(|l| !checks_b.contains(l))
            .map(|l| format!("check '{l}'")),
    );
    only_in_b.extend(
        checks_b
            .iter()
            .filter(|l| !checks_a.contains(l))
            .map(|l| format!("check '{l}'")),
    );

    let mut variants = Vec::new();
    for name in names_a.iter().filter(|n| names_b.contains(n)) {
        let scored = |results: &[CellResult]| per_item(results, name, |_| Some(0.0));
        let (items_a, items_b) = (scored(results_a), scored(results_b));
        let shared_items = items_a.keys().filter(|k| items_b.contains_key(k)).count();
        let metrics = metrics
            .iter()
            .map(|metric| {
                let value = |r: &CellResult| r.scores.metrics.get(metric.as_str()).copied();
                let kind = if metric.as_str() == "exact" {
                    ScoreKind::PassFail
                } else {
                    ScoreKind::Continuous
                };
                score_comparison(
                    metric,
                    &per_item(results_a, name, value),
                    &per_item(results_b, name, value),
                    kind,
                )
            })
            .collect();
        let checks = checks
            .iter()
            .map(|&(i, j, label)| {
                let at = |index: usize| {
                    move |r: &CellResult| {
                        r.scores
                            .checks
                            .get(index)
                            .map(|&p| if p { 1.0 } else { 0.0 })
                    }
                };
                score_comparison(
                    label,
                    &per_item(results_a, name, at(i)),
                    &per_item(results_b, name, at(j)),
                    ScoreKind::PassFail,
                )
            })
            .collect();
        variants.push(VariantComparison {
            name: name.clone(),
            items_a: items_a.len(),
            items_b: items_b.len(),
            shared_items,
            metrics,
            checks,
        });
    }
    Comparison {
        a: side(info_a, results_a),
        b: side(info_b, results_b),
        variants,
        only_in_a,
        only_in_b,
    }
}

/// The runs in folders `a` and `b`, compared; their files are only read.
pub fn compare_runs(a: &Path, b: &Path) -> Result<Comparison, String> {
    let info_a = results::read_info(a)?;
    let info_b = results::read_info(b)?;
    let results_a = results::peek_results(a)?;
    let results_b = results::peek_results(b)?;
    Ok(compare((&info_a, &results_a), (&info_b, &results_b)))
}

fn model_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn p_mark(c: &PairedComparison) -> String {
    format!("p={:.3}{}", c.p_value, if c.significant { "*" } else { "" })
}

/// The comparison as a table: a block per variant, a line per metric
/// (mean in A, in B, Δ with its interval, wins/ties/losses, p) and per
/// check (pass rates, Δ in points, p).
pub fn table(comparison: &Comparison) -> Vec<String> {
    let (a, b) = (&comparison.a, &comparison.b);
    let mut lines = vec![
        format!(
            "A {} · {} · {} cells{}",
            a.id,
            model_name(&a.model),
            a.cells,
            if a.errors > 0 {
                format!(", {} errors", a.errors)
            } else {
                String::new()
            }
        ),
        format!(
            "B {} · {} · {} cells{}",
            b.id,
            model_name(&b.model),
            b.cells,
            if b.errors > 0 {
                format!(", {} errors", b.errors)
            } else {
                String::new()
            }
        ),
    ];
    if a.experiment != b.experiment {
        lines.push(format!(
            "note: runs of different experiments ('{}' and '{}'): items are paired by index and dataset line only",
            a.experiment, b.experiment
        ));
    }
    lines.push(
        "Δ = B − A over the items both runs scored (same index and dataset line; repeats averaged per item)"
            .to_string(),
    );
    lines.push(
        "95% paired bootstrap intervals; p: permutation test (sign test for exact and checks), * = p < 0.05"
            .to_string(),
    );
    for v in &comparison.variants {
        lines.push(format!(
            "{} · {} shared items (A {}, B {})",
            v.name, v.shared_items, v.items_a, v.items_b
        ));
        for m in &v.metrics {
            let versus = match &m.difference {
                Some(c) => format!(
                    "  Δ {:+.3} [{:+.3}, {:+.3}]  {}/{}/{} w/t/l  {}",
                    c.difference.estimate,
                    c.difference.low,
                    c.difference.high,
                    c.wins,
                    c.ties,
                    c.losses,
                    p_mark(c)
                ),
                None => "  no shared items".to_string(),
            };
            lines.push(format!(
                "  {:<8} A {:>8.3}  B {:>8.3}{versus}",
                m.name, m.mean_a, m.mean_b
            ));
        }
        for c in &v.checks {
            let versus = match &c.difference {
                Some(d) => format!(
                    "  Δ {:+.1} pts [{:+.1}, {:+.1}]  {}",
                    d.difference.estimate * 100.0,
                    d.difference.low * 100.0,
                    d.difference.high * 100.0,
                    p_mark(d)
                ),
                None => "  no shared items".to_string(),
            };
            lines.push(format!(
                "  check {}: A {:.0}%  B {:.0}%{versus}",
                c.name,
                c.mean_a * 100.0,
                c.mean_b * 100.0
            ));
        }
    }
    if !comparison.only_in_a.is_empty() {
        lines.push(format!("only in A: {}", comparison.only_in_a.join(", ")));
    }
    if !comparison.only_in_b.is_empty() {
        lines.push(format!("only in B: {}", comparison.only_in_b.join(", ")));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::score::CellScores;

    fn info(id: &str, checks: &str) -> RunInfo {
        RunInfo {
            id: id.into(),
            experiment: "e".into(),
            file: "/e.toml".into(),
            file_text: format!(
                "name = \"e\"\nprompt = \"Say {{{{text}}}}\"\ndataset = \"d.jsonl\"\nchecks = [{checks}]\n"
            ),
            model: "/models/m.gguf".into(),
            model_sha256: "00".into(),
            parallel: 1,
            limit: None,
            repeats: None,
            cells: None,
            created_unix_ms: 0,
        }
    }

    fn cell(item: usize, line: usize, variant: &str, chrf: f64, checks: Vec<bool>) -> CellResult {
        CellResult {
            item,
            line,
            variant: variant.into(),
            scores: CellScores {
                metrics: [("chrf".to_string(), chrf)].into(),
                checks,
            },
            ..CellResult::for_test(&format!("{item}-{variant}-{chrf}"))
        }
    }

    #[test]
    fn variants_pair_by_name_items_by_index_and_line_checks_by_label() {
        let a_info = info("a", "{ contains = \"x\" }, { max-words = 5 }");
        // B reordered the checks and dropped one, added another.
        let b_info = info("b", "{ is-json = true }, { contains = \"x\" }");
        let a = vec![
            // Item 0: two repeats, averaged to 15.
            cell(0, 1, "v", 10.0, vec![true, true]),
            cell(0, 1, "v", 20.0, vec![false, true]),
            cell(1, 2, "v", 30.0, vec![false, true]),
            // Item 2 is on another line in B: not the same item.
            cell(2, 3, "v", 50.0, vec![true, true]),
            cell(0, 1, "gone", 1.0, vec![true, true]),
        ];
        let mut error = cell(1, 2, "v", 0.0, vec![]);
        error.error = Some("boom".into());
        let b = vec![
            cell(0, 1, "v", 25.0, vec![false, true]),
            cell(1, 2, "v", 40.0, vec![false, true]),
            error,
            cell(2, 4, "v", 0.0, vec![false, false]),
            cell(0, 1, "new", 1.0, vec![true, true]),
        ];
        let c = compare((&a_info, &a), (&b_info, &b));
        assert_eq!(c.only_in_a, ["variant 'gone'", "check 'max-words 5'"]);
        assert_eq!(c.only_in_b, ["variant 'new'", "check 'is-json'"]);
        assert_eq!(c.variants.len(), 1);
        let v = &c.variants[0];
        assert_eq!((v.items_a, v.items_b, v.shared_items), (3, 3, 2));
        let chrf = &v.metrics[0];
        assert_eq!(chrf.name, "chrf");
        assert_eq!(chrf.shared_items, 2);
        assert_eq!((chrf.mean_a, chrf.mean_b), (22.5, 32.5));
        let d = chrf.difference.unwrap();
        assert_eq!(d.difference.estimate, 10.0);
        assert_eq!((d.wins, d.ties, d.losses), (2, 0, 0));
        // `contains "x"`: A's first check, B's second; item 0 passes half
        // its repeats in A.
        let check = &v.checks[0];
        assert_eq!(check.name, "contains \"x\"");
        assert_eq!((check.mean_a, check.mean_b), (0.25, 1.0));
        assert_eq!(check.difference.unwrap().wins, 2);
        assert_eq!(v.checks.len(), 1);
        let lines = table(&c);
        assert!(
            lines.iter().any(|l| l == "v · 2 shared items (A 3, B 3)"),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  chrf     A   22.500  B   32.500  Δ +10.000")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  check contains \"x\": A 25%  B 100%  Δ +75.0 pts")),
            "{lines:#?}"
        );
        assert_eq!(
            lines.last().unwrap(),
            "only in B: variant 'new', check 'is-json'"
        );
    }
}
