//! A run in other formats: CSV with one row per cell (for a spreadsheet),
//! and Markdown with the summary as tables (for a report). A run with
//! refined variants says which pass each refined cell kept (CSV columns
//! `kept_pass` and `passes`, only then) and how often (Markdown).

use super::prepare::Prepared;
use super::results::CellResult;
use super::summary::Summary;

/// One row per cell: where it comes from, its output, and each metric and
/// check as columns (empty where a metric has no value).
pub fn csv(prepared: &Prepared, results: &[CellResult]) -> Result<String, String> {
    let experiment = &prepared.experiment;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "item_line",
        "variant",
        "repeat",
        "seed",
        "cached",
        "stop_reason",
        "error",
        "output",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Only for runs with refined cells, so other runs' columns stay put.
    let refined = results.iter().any(|r| r.refine.is_some());
    if refined {
        header.extend(["kept_pass".to_string(), "passes".to_string()]);
    }
    let metrics = super::summary::metric_names(prepared, results);
    header.extend(metrics.iter().cloned());
    header.extend(experiment.checks.iter().map(|c| c.label()));
    writer.write_record(&header).map_err(|e| e.to_string())?;
    for r in results {
        let mut row = vec![
            r.line.to_string(),
            r.variant.clone(),
            r.repeat.to_string(),
            r.seed.to_string(),
            r.cached.to_string(),
            r.stop_reason
                .map(|s| format!("{s:?}").to_lowercase())
                .unwrap_or_default(),
            r.error.clone().unwrap_or_default(),
            r.output.clone(),
        ];
        if refined {
            let (kept, passes) = r
                .refine
                .as_ref()
                .map_or((String::new(), String::new()), |f| {
                    (f.kept.to_string(), f.passes.len().to_string())
                });
            row.extend([kept, passes]);
        }
        for metric in &metrics {
            row.push(
                r.scores
                    .metrics
                    .get(metric)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            );
        }
        for index in 0..experiment.checks.len() {
            row.push(match r.scores.checks.get(index) {
                Some(true) => "pass".into(),
                Some(false) => "fail".into(),
                None => String::new(),
            });
        }
        writer.write_record(&row).map_err(|e| e.to_string())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The summary as Markdown: a table of metrics (mean and interval, and the
/// difference from the baseline with its p-value) and one of checks.
pub fn markdown(summary: &Summary) -> String {
    let mut out = format!(
        "# {}\n\n{} items; baseline **{}**; 95% intervals; Δ against the baseline over the same items (p-value, * below 0.05).\n\n",
        summary.experiment, summary.items, summary.baseline
    );
    let metrics: Vec<&String> = summary
        .variants
        .first()
        .map(|v| v.metrics.keys().collect())
        .unwrap_or_default();
    if !metrics.is_empty() {
        out.push_str("| variant |");
        for m in &metrics {
            out.push_str(&format!(" {m} | Δ {m} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|---|".repeat(metrics.len()));
        out.push('\n');
        for v in &summary.variants {
            out.push_str(&format!("| {} |", cell_text(&v.name)));
            for m in &metrics {
                match v.metrics.get(*m) {
                    Some(i) => out.push_str(&format!(
                        " {:.3} [{:.3}, {:.3}] |",
                        i.estimate, i.low, i.high
                    )),
                    None => out.push_str(" – |"),
                }
                match v.versus_baseline.get(*m) {
                    Some(c) => out.push_str(&format!(
                        " {:+.3} (p={:.3}{}) |",
                        c.difference.estimate,
                        c.p_value,
                        if c.significant { "*" } else { "" }
                    )),
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    if !summary.check_labels.is_empty() {
        out.push_str("| variant |");
        for label in &summary.check_labels {
            out.push_str(&format!(" {} |", cell_text(label)));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(summary.check_labels.len()));
        out.push('\n');
        for v in &summary.variants {
            out.push_str(&format!("| {} |", cell_text(&v.name)));
            for (index, rate) in v.checks.iter().enumerate() {
                let versus = v
                    .checks_versus_baseline
                    .get(index)
                    .and_then(|c| c.as_ref())
                    .map(|c| {
                        format!(
                            " ({:+.0} pts, p={:.3}{})",
                            c.difference.estimate * 100.0,
                            c.p_value,
                            if c.significant { "*" } else { "" }
                        )
                    })
                    .unwrap_or_default();
                out.push_str(&format!(" {:.0}%{versus} |", rate.estimate * 100.0));
            }
            out.push('\n');
        }
    }
    let refined: Vec<String> = summary
        .variants
        .iter()
        .filter_map(|v| {
            let refine = v.refine.as_ref()?;
            Some(format!(
                "- **{}**: {}\n",
                cell_text(&v.name),
                refine.describe()
            ))
        })
        .collect();
    if !refined.is_empty() {
        out.push_str("\nRefined variants (pass 0 is the draft):\n\n");
        out.push_str(&refined.concat());
    }
    out
}

/// Text safe inside a Markdown table cell.
fn cell_text(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
