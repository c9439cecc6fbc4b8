//! Drawing the experiments screen: the lists (with a run's gauges), a run's
//! matrix under its header, a cell, two variants side by side, a
//! comparison with another run, and the popups.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Gauge, Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::{ExpOverlay, Experiments, ListPane, OpenRun, RunView, Running};
use crate::diff::word_diff;
use crate::experiment::matrix::{MatrixCell, Score};
use crate::experiment::refinement::RefinedCell;
use crate::experiment::results::CellResult;
use crate::statistics::Interval;
use crate::tui::app::App;
use crate::tui::keymap::{Action, Context};
use crate::tui::sanitize::sanitize;
use crate::tui::side_by_side::{self, SideBySide};
use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::{pane, popup, window};

/// The width of the matrix's first column (line and the item's text).
const ITEM_WIDTH: u16 = 24;
/// A variant column's width, at least and at most.
const MIN_COLUMN: u16 = 14;
const MAX_COLUMN: u16 = 26;
/// Lines of the header above the matrix rows: name, mean, difference.
const HEADER_LINES: u16 = 3;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let exp = &app.exp;
    match exp.open.as_deref() {
        Some(open) => render_run(app, open, frame, area),
        None => render_lists(app, exp, frame, area),
    }
    match &exp.overlay {
        Some(ExpOverlay::Rate(text)) => {
            let inner = popup(app, frame, area, 70, 5, "Rate the cell (1-5, then a note)");
            let [field, hint] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            let mut text = (**text).clone();
            text.set_style(app.theme.style(Slot::Text));
            text.set_placeholder_style(app.theme.style(Slot::Muted));
            text.set_cursor_line_style(Style::default());
            frame.render_widget(&text, field);
            frame.render_widget(
                Paragraph::new(Line::styled(
                    "e.g. \"4 right, but wordy\" · Enter keeps · Esc cancels · 0 clears",
                    app.theme.style(Slot::Muted),
                ))
                .wrap(Wrap { trim: true }),
                hint,
            );
        }
        Some(ExpOverlay::PickRun { runs, selected }) => {
            let height = (runs.len() as u16).saturating_add(3).min(16);
            let inner = popup(app, frame, area, 80, height, "Compare with run (Enter)");
            let range = window(*selected, runs.len(), usize::from(inner.height));
            let lines: Vec<Line> = range
                .map(|i| {
                    let run = &runs[i];
                    let line = Line::from(vec![
                        Span::styled(sanitize(&run.id), app.theme.style(Slot::Text)),
                        Span::styled(
                            format!("  {} cells", run.cells_done),
                            app.theme.style(Slot::Muted),
                        ),
                    ]);
                    if i == *selected {
                        line.patch_style(app.theme.style(Slot::Selection))
                    } else {
                        line
                    }
                })
                .collect();
            frame.render_widget(Paragraph::new(lines), inner);
        }
        None => {}
    }
}

fn render_lists(app: &App, exp: &Experiments, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let [lists, detail] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Min(10)]).areas(area);
    let [files_area, runs_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(3)]).areas(lists);
    let keys = &app.keymap;
    let files_title = format!(
        " Experiments · {} runs it ",
        keys.key_hint_in(Context::Experiments, Action::Pick)
    );
    let block = pane(theme, exp.pane() == ListPane::Files)
        .title(Span::styled(files_title, theme.style(Slot::Title)));
    let inner = block.inner(files_area);
    frame.render_widget(block, files_area);
    if exp.files.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                if exp.listed {
                    "no experiment files"
                } else {
                    "reading…"
                },
                theme.style(Slot::Muted),
            )),
            inner,
        );
    } else {
        let range = window(
            exp.file_selected,
            exp.files.len(),
            usize::from(inner.height),
        );
        let lines: Vec<Line> = range
            .map(|i| {
                let file = &exp.files[i];
                let mut spans = vec![Span::styled(sanitize(&file.name), theme.style(Slot::Text))];
                let origin = if file.shipped { "shipped" } else { "yours" };
                spans.push(Span::styled(
                    format!("  {origin}"),
                    theme.style(Slot::Muted),
                ));
                if file.problem.is_some() {
                    spans.push(Span::styled(
                        "  cannot be read",
                        theme.style(Slot::StatusError),
                    ));
                }
                selected_line(theme, Line::from(spans), i == exp.file_selected)
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
    let runs_title = format!(
        " Runs · {} opens · {} resumes ",
        keys.key_hint_in(Context::Experiments, Action::Pick),
        keys.key_hint_in(Context::Experiments, Action::Run)
    );
    let block = pane(theme, exp.pane() == ListPane::Runs)
        .title(Span::styled(runs_title, theme.style(Slot::Title)));
    let inner = block.inner(runs_area);
    frame.render_widget(block, runs_area);
    if exp.runs.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no runs yet", theme.style(Slot::Muted))),
            inner,
        );
    } else {
        let range = window(exp.run_selected, exp.runs.len(), usize::from(inner.height));
        let lines: Vec<Line> = range
            .map(|i| {
                let run = &exp.runs[i];
                let cells = match run.cells_total {
                    Some(total) => format!("  {}/{total}", run.cells_done),
                    None => format!("  {} cells", run.cells_done),
                };
                let mut spans = vec![
                    Span::styled(sanitize(&run.id), theme.style(Slot::Text)),
                    Span::styled(cells, theme.style(Slot::Muted)),
                ];
                if run.problem.is_some() {
                    spans.push(Span::styled("  unreadable", theme.style(Slot::StatusError)));
                }
                selected_line(theme, Line::from(spans), i == exp.run_selected)
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
    let detail = match &exp.running {
        Some(running) => {
            let height = (running.variants.len() as u16 + 3).min(detail.height / 2 + 1);
            let [gauges, rest] =
                Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(detail);
            render_gauges(app, running, frame, gauges);
            rest
        }
        None => detail,
    };
    render_detail(app, exp, frame, detail);
}

fn selected_line<'a>(theme: &Theme, line: Line<'a>, selected: bool) -> Line<'a> {
    if selected {
        line.patch_style(theme.style(Slot::Selection))
    } else {
        line
    }
}

/// The run in progress: a line of figures, then a gauge per variant.
fn render_gauges(app: &App, running: &Running, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let title = format!(
        " Running {} · {} stops ",
        sanitize(&running.experiment),
        app.keymap.key_hint(Action::Stop)
    );
    let block = pane(theme, false).title(Span::styled(title, theme.style(Slot::Title)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let eta = running
        .eta_seconds
        .map_or(String::new(), |s| format!(" · ETA {s:.0} s"));
    let stopping = if running.stopping {
        " · stopping…"
    } else {
        ""
    };
    let figures = format!(
        "{}/{} cells · {} errors · {:.1} tok/s{eta}{stopping}",
        running.done, running.total, running.errors, running.tokens_per_second
    );
    let mut rows = vec![Constraint::Length(1)];
    rows.extend(running.variants.iter().map(|_| Constraint::Length(1)));
    let areas = Layout::vertical(rows).split(inner);
    frame.render_widget(
        Paragraph::new(Line::styled(figures, theme.style(Slot::StatusBusy))),
        areas[0],
    );
    for (i, (name, done, total)) in running.variants.iter().enumerate() {
        let Some(row) = areas.get(i + 1) else {
            break;
        };
        let ratio = if *total == 0 {
            1.0
        } else {
            (*done as f64 / *total as f64).clamp(0.0, 1.0)
        };
        frame.render_widget(
            Gauge::default()
                .ratio(ratio)
                .label(format!("{} {done}/{total}", sanitize(name)))
                .gauge_style(theme.style(Slot::StatusBusy))
                .use_unicode(true),
            *row,
        );
    }
}

fn render_detail(app: &App, exp: &Experiments, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let block = pane(theme, false).title(Span::styled(" Details ", theme.style(Slot::Title)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let muted = theme.style(Slot::Muted);
    let text = theme.style(Slot::Text);
    let mut lines: Vec<Line> = Vec::new();
    match exp.pane() {
        ListPane::Files => {
            if let Some(file) = exp.selected_file() {
                lines.push(Line::styled(
                    sanitize(&file.name),
                    theme.style(Slot::Heading),
                ));
                if !file.description.is_empty() {
                    lines.push(Line::styled(sanitize(&file.description), text));
                }
                lines.push(Line::styled(
                    sanitize(&file.path.display().to_string()),
                    muted,
                ));
                if file.replaces_shipped {
                    lines.push(Line::styled(
                        "replaces the shipped experiment of its name",
                        muted,
                    ));
                }
                if let Some(problem) = &file.problem {
                    lines.push(Line::styled(
                        sanitize(problem),
                        theme.style(Slot::StatusError),
                    ));
                } else {
                    lines.push(Line::styled(
                        format!(
                            "{} runs it on the loaded model, in the background",
                            app.keymap.key_hint_in(Context::Experiments, Action::Pick)
                        ),
                        muted,
                    ));
                }
            }
        }
        ListPane::Runs => {
            if let Some(run) = exp.selected_run() {
                lines.push(Line::styled(sanitize(&run.id), theme.style(Slot::Heading)));
                if let Some(experiment) = &run.experiment {
                    lines.push(Line::styled(
                        format!("experiment {}", sanitize(experiment)),
                        text,
                    ));
                }
                if let Some(model) = &run.model {
                    lines.push(Line::styled(
                        format!("model {}", sanitize(&model.display().to_string())),
                        muted,
                    ));
                }
                let total = run
                    .cells_total
                    .map_or(String::new(), |t| format!(" of {t}"));
                lines.push(Line::styled(
                    format!(
                        "{} cells{total} done · {} cached · {} errors",
                        run.cells_done, run.cached, run.errors
                    ),
                    text,
                ));
                if let Some(problem) = &run.problem {
                    lines.push(Line::styled(
                        sanitize(problem),
                        theme.style(Slot::StatusError),
                    ));
                }
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn render_run(app: &App, open: &OpenRun, frame: &mut Frame, area: Rect) {
    match &open.view {
        RunView::Matrix => render_matrix(app, open, frame, area),
        RunView::Cell { repeat, scroll } => render_cell(app, open, *repeat, *scroll, frame, area),
        RunView::Pair { scroll } => render_pair(app, open, *scroll, frame, area),
        RunView::Compare { scroll } => render_compare(app, open, *scroll, frame, area),
    }
}

/// A value of `score` as a matrix cell shows it.
fn format_value(score: &Score, value: f64) -> String {
    match score {
        Score::Check(_) => format!("{:.0}%", value * 100.0),
        Score::Metric(name) => match name.as_str() {
            "bleu" | "chrf" | "length" => format!("{value:.1}"),
            "rating" => format!("{value:.1}"),
            _ => format!("{value:.3}"),
        },
    }
}

fn format_interval(score: &Score, interval: &Interval) -> String {
    format!(
        "{} [{}, {}]",
        format_value(score, interval.estimate),
        format_value(score, interval.low),
        format_value(score, interval.high)
    )
}

/// A variant's header lines for the score shown: its mean with interval,
/// and against the baseline its difference with p (`*` below 0.05).
fn header(open: &OpenRun, col: usize) -> (String, String) {
    let score = &open.matrix.score;
    let Some(summary) = open.summary.variants.get(col) else {
        return (String::new(), String::new());
    };
    let baseline = summary.name == open.summary.baseline;
    let (mean, versus) = match score {
        Score::Metric(name) => (
            summary.metrics.get(name).map(|i| format_interval(score, i)),
            summary.versus_baseline.get(name).map(|c| {
                format!(
                    "Δ{} p={:.3}{}",
                    signed(score, c.difference.estimate),
                    c.p_value,
                    if c.significant { "*" } else { "" }
                )
            }),
        ),
        Score::Check(index) => (
            summary
                .checks
                .get(*index)
                .filter(|i| !i.estimate.is_nan())
                .map(|i| format_interval(score, i)),
            summary
                .checks_versus_baseline
                .get(*index)
                .and_then(|c| c.as_ref())
                .map(|c| {
                    format!(
                        "Δ{:+.0}pts p={:.3}{}",
                        c.difference.estimate * 100.0,
                        c.p_value,
                        if c.significant { "*" } else { "" }
                    )
                }),
        ),
    };
    (
        mean.unwrap_or_else(|| "–".to_string()),
        match versus {
            Some(v) => v,
            None if baseline => "baseline".to_string(),
            None => "–".to_string(),
        },
    )
}

fn signed(score: &Score, value: f64) -> String {
    let text = format_value(score, value.abs());
    if value < 0.0 {
        format!("-{text}")
    } else {
        format!("+{text}")
    }
}

/// Cut to `width` columns (by display width), with … when cut.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        if out.width() + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) + 1 > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The variant columns that fit beside the item column, around `selected`.
fn visible_columns(count: usize, selected: usize, width: u16) -> (std::ops::Range<usize>, u16) {
    let room = width.saturating_sub(ITEM_WIDTH);
    let fit = usize::from((room / MIN_COLUMN).max(1));
    let shown = fit.min(count.max(1));
    let column = (room / shown as u16).clamp(MIN_COLUMN.min(room.max(1)), MAX_COLUMN);
    (window(selected, count, shown), column)
}

fn matrix_cell_text(open: &OpenRun, cell: &MatrixCell) -> String {
    if cell.is_missing() {
        return "·".to_string();
    }
    if cell.all_errors() {
        return "error".to_string();
    }
    let mut text = cell
        .value
        .map_or_else(|| "–".to_string(), |v| format_value(&open.matrix.score, v));
    if cell.disagree {
        text.push_str(" ~");
    }
    if cell.errors > 0 {
        text.push_str(" !");
    }
    text
}

fn render_matrix(app: &App, open: &OpenRun, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let sort = match &open.sort {
        crate::experiment::matrix::Sort::Item => "dataset order".to_string(),
        crate::experiment::matrix::Sort::Variant(col) => format!(
            "by {}",
            open.matrix.variants.get(*col).map_or("", |s| s.as_str())
        ),
        crate::experiment::matrix::Sort::Disagreement => "by disagreement".to_string(),
    };
    let title = format!(
        " {} · {} · {} · {} · {} of {} rows ",
        sanitize(&open.info.experiment),
        sanitize(&open.info.id),
        sanitize(&open.score_label()),
        sort,
        open.shown.len(),
        open.matrix.rows.len()
    );
    let block = pane(theme, true).title(Span::styled(
        fit(&title, usize::from(area.width.saturating_sub(2))),
        theme.style(Slot::Title),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < HEADER_LINES + 1 || inner.width < 8 {
        return;
    }
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(HEADER_LINES),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let (columns, width) = visible_columns(open.matrix.variants.len(), open.col, inner.width);
    let item_width = ITEM_WIDTH.min(inner.width);
    // The header: the item column's labels, then per variant its name, mean
    // and difference from the baseline.
    let mut head_lines: Vec<Vec<Span>> = vec![
        vec![Span::styled(
            pad("item", item_width),
            theme.style(Slot::Muted),
        )],
        vec![Span::styled(
            pad("mean [95%]", item_width),
            theme.style(Slot::Muted),
        )],
        vec![Span::styled(
            pad("vs baseline", item_width),
            theme.style(Slot::Muted),
        )],
    ];
    for col in columns.clone() {
        let name = &open.matrix.variants[col];
        let (mean, versus) = header(open, col);
        let style = if col == open.col {
            theme.style(Slot::Title)
        } else {
            theme.style(Slot::Text)
        };
        let w = usize::from(width);
        head_lines[0].push(Span::styled(pad(&sanitize(name), width), style));
        head_lines[1].push(Span::styled(
            pad(&fit(&mean, w - 1), width),
            theme.style(Slot::Text),
        ));
        let versus_style = if versus.ends_with('*') {
            theme.style(Slot::StatusWarning)
        } else {
            theme.style(Slot::Muted)
        };
        head_lines[2].push(Span::styled(pad(&fit(&versus, w - 1), width), versus_style));
    }
    frame.render_widget(
        Paragraph::new(head_lines.into_iter().map(Line::from).collect::<Vec<_>>()),
        head,
    );
    if open.shown.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!("no rows: {}", open.filter.label()),
                theme.style(Slot::Muted),
            )),
            body,
        );
    } else {
        let range = window(open.row, open.shown.len(), usize::from(body.height));
        let lines: Vec<Line> = range
            .map(|r| {
                let row = &open.matrix.rows[open.shown[r]];
                let item = open.prepared.items.get(row.item);
                let preview = item
                    .and_then(|i| i.vars.values().next())
                    .map(|v| sanitize(&v.replace('\n', " ")))
                    .unwrap_or_default();
                let label = fit(
                    &format!("{:>4} {preview}", row.line),
                    usize::from(item_width) - 1,
                );
                let mut spans = vec![Span::styled(
                    pad(&label, item_width),
                    if r == open.row {
                        theme.style(Slot::Selection)
                    } else {
                        theme.style(Slot::Muted)
                    },
                )];
                for col in columns.clone() {
                    let cell = &row.cells[col];
                    let text = matrix_cell_text(open, cell);
                    let mut style = if cell.all_errors() {
                        theme.style(Slot::StatusError)
                    } else {
                        match cell.value {
                            Some(v) => theme.style(Slot::heat(open.matrix.heat(v))),
                            None => theme.style(Slot::Muted),
                        }
                    };
                    if r == open.row && col == open.col {
                        style = style
                            .patch(theme.style(Slot::BorderFocused))
                            .add_modifier(ratatui::style::Modifier::REVERSED);
                    }
                    spans.push(Span::styled(
                        pad(&format!(" {text}"), width.saturating_sub(1)),
                        style,
                    ));
                    spans.push(Span::raw(" "));
                }
                Line::from(spans)
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), body);
    }
    let keys = &app.keymap;
    let hint = format!(
        "{} cell · {} score · {} sort · {} filter · {}/{} side by side · {} rate · {} compare runs · {} export · ~ repeats disagree · ! errors",
        keys.key_hint_in(Context::Experiments, Action::Pick),
        keys.key_hint_in(Context::Experiments, Action::NextScore),
        keys.key_hint_in(Context::Experiments, Action::SortRows),
        keys.key_hint_in(Context::Experiments, Action::FilterRows),
        keys.key_hint_in(Context::Experiments, Action::CompareLeft),
        keys.key_hint_in(Context::Experiments, Action::CompareRight),
        keys.key_hint_in(Context::Experiments, Action::Rate),
        keys.key_hint_in(Context::Experiments, Action::CompareRuns),
        keys.key_hint(Action::Export),
    );
    frame.render_widget(
        Paragraph::new(Line::styled(
            fit(&hint, usize::from(foot.width)),
            theme.style(Slot::Muted),
        )),
        foot,
    );
}

fn pad(text: &str, width: u16) -> String {
    let width = usize::from(width);
    let text = fit(text, width);
    let fill = width.saturating_sub(text.width());
    format!("{text}{}", " ".repeat(fill))
}

/// What a result's figures say: stop reason, tokens, speed, cache.
fn result_figures(result: &CellResult) -> String {
    let mut parts = Vec::new();
    if let Some(reason) = result.stop_reason {
        parts.push(format!("{reason:?}").to_lowercase());
    }
    if let Some(stats) = &result.stats {
        parts.push(format!(
            "{} prompt + {} generated tokens",
            stats.prompt_tokens, stats.generated_tokens
        ));
    }
    parts.push(format!("seed {}", result.seed));
    if result.cached {
        parts.push("from an earlier run".to_string());
    }
    parts.join(" · ")
}

/// Every score of a result: its metrics, then each check passed or failed.
fn scores_line(open: &OpenRun, result: &CellResult) -> String {
    let mut parts: Vec<String> = result
        .scores
        .metrics
        .iter()
        .map(|(name, value)| {
            format!(
                "{name} {}",
                format_value(&Score::Metric(name.clone()), *value)
            )
        })
        .collect();
    for (check, passed) in open
        .prepared
        .experiment
        .checks
        .iter()
        .zip(&result.scores.checks)
    {
        parts.push(format!(
            "{}: {}",
            check.label(),
            if *passed { "pass" } else { "fail" }
        ));
    }
    parts.join(" · ")
}

/// A refined cell's loop: the pass kept (shown below against the
/// reference), why the loop ended, and each pass with its ranking score and
/// its start.
fn refine_lines(theme: &Theme, refined: &RefinedCell) -> Vec<Line<'static>> {
    let mut head = refined.describe();
    if let Some(end) = &refined.end {
        head.push_str(&format!(" · {}", end.describe()));
    }
    let mut lines = vec![Line::styled(head, theme.style(Slot::Heading))];
    for (index, pass) in refined.passes.iter().enumerate() {
        let marker = if index == refined.kept { "▸" } else { " " };
        let score = match (&refined.best_by, pass.rank_score) {
            (Some(metric), Some(value)) => format!(
                "{metric} {} · ",
                format_value(&Score::Metric(metric.clone()), value)
            ),
            _ => String::new(),
        };
        let start = pass.output.trim().lines().next().unwrap_or("");
        let style = if index == refined.kept {
            theme.style(Slot::StatusOk)
        } else {
            theme.style(Slot::Text)
        };
        lines.push(Line::styled(
            format!(
                "{marker} pass {index}: {score}{} words · {}",
                pass.output.split_whitespace().count(),
                sanitize(&fit(start, 60))
            ),
            style,
        ));
    }
    lines
}

fn render_cell(
    app: &App,
    open: &OpenRun,
    repeat: usize,
    scroll: u16,
    frame: &mut Frame,
    area: Rect,
) {
    let theme = &app.theme;
    let results = open.selected_results();
    let (Some(row), Some(variant)) = (open.selected_row(), open.matrix.variants.get(open.col))
    else {
        frame.render_widget(
            Paragraph::new("no cell selected").block(pane(theme, true)),
            area,
        );
        return;
    };
    let item = open.prepared.items.get(row.item);
    let repeat = repeat.min(results.len().saturating_sub(1));
    let result = results.get(repeat).copied();
    let [info, diff_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(4)]).areas(area);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(item) = item {
        for (name, value) in &item.vars {
            lines.push(Line::from(vec![
                Span::styled(format!("{{{{{name}}}}} "), theme.style(Slot::Variable)),
                Span::styled(sanitize(value), theme.style(Slot::Text)),
            ]));
        }
    }
    if let Some(result) = result {
        lines.push(Line::styled(
            result_figures(result),
            theme.style(Slot::Muted),
        ));
        if result.error.is_none() {
            lines.push(Line::styled(
                scores_line(open, result),
                theme.style(Slot::Text),
            ));
        }
        if let Some(refined) = &result.refine {
            lines.extend(refine_lines(theme, refined));
        }
        if let Some(rating) = open.ratings.cells.get(&result.key) {
            lines.push(Line::styled(
                format!("rated {}/5 {}", rating.score, sanitize(&rating.note)),
                theme.style(Slot::StatusOk),
            ));
        }
        if let Some(error) = &result.error {
            lines.push(Line::styled(
                format!("error: {}", sanitize(error)),
                theme.style(Slot::StatusError),
            ));
        }
        lines.push(Line::styled("exact input:", theme.style(Slot::Heading)));
        for message in &result.input {
            let role = format!("{:?}", message.role).to_lowercase();
            lines.push(Line::styled(
                format!("[{role}]"),
                theme.style(Slot::SystemMessage),
            ));
            for text_line in message.content.lines() {
                lines.push(Line::styled(sanitize(text_line), theme.style(Slot::Text)));
            }
        }
    }
    let title = format!(
        " line {} · {} · repeat {}/{} ({}/{} switch) ",
        row.line,
        sanitize(variant),
        repeat + 1,
        results.len().max(1),
        app.keymap
            .key_hint_in(Context::Experiments, Action::BranchPrev),
        app.keymap
            .key_hint_in(Context::Experiments, Action::BranchNext),
    );
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(pane(theme, true).title(Span::styled(title, theme.style(Slot::Title)))),
        info,
    );
    let output = result.map_or("", |r| r.output.as_str());
    let reference = item.and_then(|i| i.references.first()).map(String::as_str);
    let (left_title, left) = match reference {
        Some(reference) => ("Reference".to_string(), reference),
        None => ("No reference".to_string(), ""),
    };
    let diff = word_diff(left, output);
    let titles = (left_title, format!("Output · {}", diff.summary()));
    frame.render_widget(
        SideBySide {
            diff: &diff,
            titles,
            scroll: 0,
            theme,
            focused: false,
        },
        diff_area,
    );
}

fn render_pair(app: &App, open: &OpenRun, scroll: u16, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let Some(row) = open.selected_row() else {
        frame.render_widget(Paragraph::new("no rows").block(pane(theme, true)), area);
        return;
    };
    let side = |col: usize| -> (String, String) {
        let name = open.matrix.variants.get(col).cloned().unwrap_or_default();
        let cell = row.cells.get(col);
        let result = cell
            .and_then(|c| c.results.first())
            .map(|&i| &open.results[i]);
        let value = cell.map(|c| matrix_cell_text(open, c)).unwrap_or_default();
        let text = match result {
            Some(r) => match &r.error {
                Some(e) => format!("(error: {e})"),
                None => r.output.clone(),
            },
            None => "(no result)".to_string(),
        };
        (format!("{name} · {} {value}", open.score_label()), text)
    };
    let (left_title, left) = side(open.pair.0);
    let (right_title, right) = side(open.pair.1);
    let [top, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let keys = &app.keymap;
    frame.render_widget(
        Paragraph::new(Line::styled(
            fit(
                &format!(
                    "line {} · row {}/{} · {}/{} move row by row · {}/{} put the selected variant left/right · {} back",
                    row.line,
                    open.row + 1,
                    open.shown.len(),
                    keys.key_hint_in(Context::Experiments, Action::SelectPrev),
                    keys.key_hint_in(Context::Experiments, Action::SelectNext),
                    keys.key_hint_in(Context::Experiments, Action::CompareLeft),
                    keys.key_hint_in(Context::Experiments, Action::CompareRight),
                    keys.key_hint(Action::Stop)
                ),
                usize::from(top.width),
            ),
            theme.style(Slot::Muted),
        )),
        top,
    );
    let diff = word_diff(&left, &right);
    let max = side_by_side::max_scroll(&diff, rest);
    frame.render_widget(
        SideBySide {
            diff: &diff,
            titles: (left_title, format!("{right_title} · {}", diff.summary())),
            scroll: scroll.min(max),
            theme,
            focused: true,
        },
        rest,
    );
}

fn render_compare(app: &App, open: &OpenRun, scroll: u16, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let lines: Vec<Line> = match &open.comparison {
        Some(c) => crate::experiment::compare::table(c)
            .into_iter()
            .map(|l| Line::styled(sanitize(&l), theme.style(Slot::Text)))
            .collect(),
        None => vec![Line::styled("no comparison", theme.style(Slot::Muted))],
    };
    let title = format!(
        " Compared with another run · {} back ",
        app.keymap.key_hint(Action::Stop)
    );
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(pane(theme, true).title(Span::styled(title, theme.style(Slot::Title)))),
        area,
    );
}
