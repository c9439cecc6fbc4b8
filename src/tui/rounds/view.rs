//! Drawing the rounds: the timeline on the left, the two passes side by
//! side with their word diff on the right, the feedback that led from one
//! to the other below them.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::{pass_name, ListPurpose, Rounds, RoundsOverlay, RunList};
use crate::diff::word_diff;
use crate::refine::{Pass, StepKind};
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::sanitize::sanitize;
use crate::tui::side_by_side::{self, SideBySide};
use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::run_lines;
use crate::tui::widgets::{pane, popup};

pub const MIN_WIDTH: u16 = 50;
pub const MIN_HEIGHT: u16 = 12;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let Some(rounds) = &app.rounds else {
        return;
    };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        frame.render_widget(
            Paragraph::new(format!(
                "the rounds need {MIN_WIDTH}×{MIN_HEIGHT}; {} returns to the workbench",
                app.keymap.key_hint(Action::Workbench)
            ))
            .wrap(Wrap { trim: true })
            .style(theme.style(Slot::StatusWarning)),
            area,
        );
        return;
    }
    let timeline_width = (area.width / 3).clamp(28, 48);
    let [timeline, right] =
        Layout::horizontal([Constraint::Length(timeline_width), Constraint::Min(20)]).areas(area);
    let [compare, feedback] =
        Layout::vertical([Constraint::Percentage(68), Constraint::Percentage(32)]).areas(right);
    let focused = rounds.overlay.is_none() && app.overlay.is_none();
    render_timeline(app, rounds, frame, timeline, focused);
    render_compare(app, rounds, frame, compare);
    render_feedback(app, rounds, frame, feedback);
    match &rounds.overlay {
        Some(RoundsOverlay::Rate(area_text)) => {
            let inner = popup(
                app,
                frame,
                area,
                70,
                5,
                &format!("Rate {} (1-5, then a note)", pass_name(rounds.selected)),
            );
            let [field, hint] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            let mut text = (**area_text).clone();
            text.set_style(theme.style(Slot::Text));
            text.set_cursor_line_style(Default::default());
            frame.render_widget(&text, field);
            frame.render_widget(
                Paragraph::new(Line::styled(
                    "e.g. \"4 clear but long\" · Enter keeps · Esc cancels · 0 clears",
                    theme.style(Slot::Muted),
                )),
                hint,
            );
        }
        Some(RoundsOverlay::Runs(list)) => render_runs(app, list, frame, area),
        None => {}
    }
}

fn render_timeline(app: &App, rounds: &Rounds, frame: &mut Frame, area: Rect, focused: bool) {
    let theme = &app.theme;
    let run = rounds.run();
    let state = match (&rounds.step, &run.end) {
        (Some(step), _) => format!("running: {}", step.kind.describe()),
        (None, Some(end)) => end.describe(),
        (None, None) => "ready".into(),
    };
    let title = if run.template.is_empty() {
        let hint = app
            .keymap
            .key_hint_in(crate::tui::keymap::Context::Rounds, Action::History);
        format!(" Rounds · no run open ({hint} lists the saved ones) ")
    } else {
        format!(
            " Rounds · {} · {} ",
            sanitize(&run.template),
            sanitize(&state)
        )
    };
    let block = pane(theme, focused).title(Span::styled(title, theme.style(Slot::Title)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    // The selected pass's lines: lines[selected.0..selected.1].
    let mut selected = (0, 0);
    for (i, pass) in run.passes.iter().enumerate() {
        let start = lines.len();
        lines.extend(pass_lines(
            theme,
            run.best,
            pass,
            i == rounds.selected && focused,
        ));
        if i == rounds.selected {
            selected = (start, lines.len());
        }
    }
    if let Some(step) = &rounds.step {
        let what = match step.kind {
            StepKind::Draft => "draft",
            StepKind::Feedback { .. } => "feedback",
            StepKind::Refine { .. } => "pass",
        };
        lines.push(Line::styled(
            format!("… {} (streaming)", step.kind.describe()),
            theme.style(Slot::StatusBusy),
        ));
        // The end of the newest line, as much as fits on one row.
        let label = format!("  {what}: ");
        let room = usize::from(inner.width).saturating_sub(label.width());
        let last = sanitize(rounds.streaming.lines().last().unwrap_or_default());
        let mut used = 0;
        let mut tail: Vec<char> = Vec::new();
        for c in last.chars().rev() {
            used += c.width().unwrap_or(0);
            if used > room {
                break;
            }
            tail.push(c);
        }
        let tail: String = tail.into_iter().rev().collect();
        lines.push(Line::styled(
            format!("{label}{tail}"),
            theme.style(Slot::Muted),
        ));
    }
    let totals = run.totals();
    if totals.generations > 0 {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!(
                "decoded {} tokens ({} without prefix reuse)",
                totals.decoded(),
                totals.decoded_without_reuse()
            ),
            theme.style(Slot::Muted),
        ));
    }
    let keys = &app.keymap;
    lines.push(Line::styled(
        format!(
            "{}/{} left/right · {} rate · {} best · {} copy · {} lens · {} other run · {} stop",
            keys.key_hint(Action::CompareLeft),
            keys.key_hint(Action::CompareRight),
            keys.key_hint(Action::Rate),
            keys.key_hint(Action::MarkBest),
            keys.key_hint_in(crate::tui::keymap::Context::Rounds, Action::CopyMessage),
            keys.key_hint_in(crate::tui::keymap::Context::Rounds, Action::Lens),
            keys.key_hint(Action::CompareRuns),
            keys.key_hint(Action::Stop),
        ),
        theme.style(Slot::Muted),
    ));
    // Keep the selected pass in view: its lines wrap, so count rows.
    let before = rows(&lines[..selected.0], inner.width);
    let end = before + rows(&lines[selected.0..selected.1], inner.width);
    let first = end.saturating_sub(usize::from(inner.height)).min(before);
    let paragraph = Paragraph::new(Text::from(lines))
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(first).unwrap_or(0), 0));
    frame.render_widget(paragraph, inner);
}

/// The rows `lines` take wrapped to `width`.
fn rows(lines: &[Line], width: u16) -> usize {
    if lines.is_empty() {
        return 0;
    }
    Paragraph::new(Text::from(lines.to_vec()))
        .wrap(Wrap { trim: false })
        .line_count(width)
}

fn pass_lines(theme: &Theme, best: Option<u32>, pass: &Pass, selected: bool) -> Vec<Line<'static>> {
    let index = pass.index as usize;
    let mut head = vec![
        Span::styled(if selected { "▸ " } else { "  " }, theme.style(Slot::Title)),
        Span::styled(pass_name(index), theme.style(Slot::Title)),
        Span::styled(
            format!(
                " · {} tok · {:.1} s · {}",
                pass.stats.generated_tokens,
                (pass.stats.ttft_ms + pass.stats.generation_ms) / 1000.0,
                pass.reason.describe()
            ),
            theme.style(Slot::Muted),
        ),
    ];
    if best == Some(pass.index) {
        head.push(Span::styled(" · best", theme.style(Slot::StatusOk)));
    }
    let head = Line::from(head);
    let head = if selected {
        head.patch_style(theme.style(Slot::Selection))
    } else {
        head
    };
    let mut lines = vec![head];
    let s = &pass.scores;
    let mut figures = Vec::new();
    if let Some(v) = s.bleu {
        figures.push(format!("BLEU {v:.1}"));
    }
    if let Some(v) = s.chrf {
        figures.push(format!("chrF {v:.1}"));
    }
    if let Some(v) = s.rouge_l {
        figures.push(format!("R-L {v:.2}"));
    }
    if s.exact_match == Some(true) {
        figures.push("exact".into());
    }
    figures.push(format!("{} words", s.words));
    if let Some(diff) = pass.diff {
        figures.push(format!("-{} +{}", diff.deleted, diff.inserted));
    }
    lines.push(Line::styled(
        format!("  {}", figures.join(" · ")),
        theme.style(Slot::Text),
    ));
    if let Some(rating) = pass.rating {
        let stars = format!(
            "{}{}",
            "★".repeat(usize::from(rating)),
            "☆".repeat(usize::from(5u8.saturating_sub(rating)))
        );
        lines.push(Line::styled(
            format!("  {stars} {}", sanitize(&pass.note)),
            theme.style(Slot::StatusWarning),
        ));
    }
    if let Some(feedback) = &pass.feedback {
        let first = feedback
            .text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let score = feedback
            .score
            .map(|s| format!(" (score {s})"))
            .unwrap_or_default();
        lines.push(Line::styled(
            format!("  feedback{score}: {}", sanitize(first)),
            theme.style(Slot::Muted),
        ));
    }
    lines
}

fn render_compare(app: &App, rounds: &Rounds, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    if let (Some(open), Some((title, tokens))) = (&rounds.lens, rounds.lens_tokens()) {
        let block = pane(theme, true).title(Span::styled(
            format!(" Lens · {title} "),
            theme.style(Slot::Title),
        ));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let hints = format!(
            "←/→ token · ↑/↓ alternatives · {} closes",
            app.keymap
                .key_hint_in(crate::tui::keymap::Context::Rounds, Action::Lens)
        );
        crate::tui::lens::render(frame, inner, theme, tokens, &open.lens, &hints);
        return;
    }
    let Some((left, right)) = rounds.sides() else {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "the draft streams in; the passes are compared here",
                theme.style(Slot::Muted),
            ))
            .block(pane(theme, false)),
            area,
        );
        rounds.max_scroll.set(0);
        return;
    };
    let diff = word_diff(&left.pass.text, &right.pass.text);
    rounds.max_scroll.set(side_by_side::max_scroll(&diff, area));
    let titles = (left.title, format!("{} · {}", right.title, diff.summary()));
    frame.render_widget(
        SideBySide {
            diff: &diff,
            titles,
            scroll: rounds.scroll.min(rounds.max_scroll.get()),
            theme,
            focused: false,
        },
        area,
    );
}

fn render_feedback(app: &App, rounds: &Rounds, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let run = rounds.run();
    // The feedback that led to the right-hand pass: on the pass before it.
    let shown = rounds.sides().and_then(|(_, right)| {
        let before = (right.pass.index as usize).checked_sub(1)?;
        let source = match &rounds.other {
            Some(other) => other.passes.get(before)?,
            None => run.passes.get(before)?,
        };
        Some((before, source.feedback.as_ref()?))
    });
    let (title, text) = match shown {
        Some((before, feedback)) => (
            format!(
                " Feedback on {} that led to {} ",
                pass_name(before),
                pass_name(before + 1)
            ),
            feedback.text.clone(),
        ),
        None => (
            " Feedback ".to_string(),
            "the draft has no feedback before it".to_string(),
        ),
    };
    frame.render_widget(
        Paragraph::new(Text::styled(sanitize(&text), theme.style(Slot::Text)))
            .wrap(Wrap { trim: false })
            .block(pane(theme, false).title(Span::styled(
                sanitize(&title),
                theme.style(Slot::Title).add_modifier(Modifier::empty()),
            ))),
        area,
    );
}

fn render_runs(app: &App, list: &RunList, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let title = match list.purpose {
        ListPurpose::Open => "Refinement runs · Enter opens",
        ListPurpose::Compare => "Compare with · Enter puts it beside this run",
    };
    let height = (list.runs.len() as u16).saturating_add(3).clamp(5, 22);
    let inner = popup(app, frame, area, 96, height, title);
    if !list.loaded || list.runs.is_empty() {
        let text = if list.loaded {
            "no refinement runs yet"
        } else {
            "reading…"
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, theme.style(Slot::Muted))),
            inner,
        );
        return;
    }
    let lines = run_lines(theme, &list.runs, list.selected, inner.height);
    frame.render_widget(Paragraph::new(lines), inner);
}
