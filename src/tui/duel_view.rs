//! The compare mode's two columns: each with its model's name (or only its
//! letter while the duel is blind), its own figures for the last reply, and
//! every compared turn with that column's reply. Below `STACK_BELOW`
//! columns the two stack, A above B. Each column shows its latest lines;
//! `scroll` moves both back together.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::sanitize::sanitize;
use super::theme::{Slot, Theme};
use super::widgets::pane;
use crate::arena::duel::{Column, Duel, ReplyState};
use crate::engine::protocol::{per_second, StopReason};

/// Narrower than this, the columns stack.
pub const STACK_BELOW: u16 = 72;

pub struct DuelView<'a> {
    pub duel: &'a Duel,
    pub theme: &'a Theme,
    /// Screen rows scrolled back from the latest, in both columns.
    pub scroll: u16,
    pub focused: bool,
}

impl DuelView<'_> {
    /// The two columns' areas in `area`.
    pub fn areas(area: Rect) -> [Rect; 2] {
        if area.width < STACK_BELOW {
            Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(area)
        } else {
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area)
        }
    }
}

impl Widget for DuelView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        for (column, rect) in Column::BOTH.into_iter().zip(Self::areas(area)) {
            let block = pane(self.theme, self.focused)
                .title(Span::styled(
                    format!(" {} ", sanitize(&self.duel.shown_name(column))),
                    self.theme.style(Slot::Title),
                ))
                .title_bottom(Span::styled(
                    figures(self.duel, column),
                    self.theme.style(Slot::Muted),
                ));
            let inner = block.inner(rect);
            block.render(rect, buf);
            let paragraph =
                Paragraph::new(lines(self.duel, column, self.theme)).wrap(Wrap { trim: false });
            let total = u16::try_from(paragraph.line_count(inner.width)).unwrap_or(u16::MAX);
            let latest = total.saturating_sub(inner.height);
            paragraph
                .scroll((latest.saturating_sub(self.scroll), 0))
                .render(inner, buf);
        }
    }
}

/// The last reply's figures for the column's border: tokens, speed, and
/// the time to its first token.
fn figures(duel: &Duel, column: Column) -> String {
    let Some(turn) = duel.turns.last() else {
        return String::new();
    };
    let reply = &turn.replies[column.index()];
    match (&reply.state, &reply.stats) {
        (ReplyState::Queued, _) => " waiting ".into(),
        (ReplyState::Streaming, _) => " writing… ".into(),
        (_, Some(stats)) => format!(
            " {} tokens · {:.1} tok/s · TTFT {:.0} ms ",
            stats.generated_tokens,
            per_second(stats.generated_tokens, stats.generation_ms),
            stats.ttft_ms
        ),
        (_, None) => String::new(),
    }
}

fn lines<'a>(duel: &'a Duel, column: Column, theme: &Theme) -> Vec<Line<'a>> {
    let muted = theme.style(Slot::Muted);
    let mut lines = Vec::new();
    if duel.turns.is_empty() {
        lines.push(Line::styled(
            "Each message goes to both models; vote on each pair of replies.",
            muted,
        ));
    }
    for (i, turn) in duel.turns.iter().enumerate() {
        if i > 0 {
            lines.push(Line::default());
        }
        lines.push(Line::styled("You", theme.style(Slot::UserMessage)));
        lines.extend(text_lines(&turn.user, theme.style(Slot::Text)));
        // The pane's title names the model; the letter is enough here.
        lines.push(Line::styled(
            column.letter(),
            theme.style(Slot::AssistantMessage),
        ));
        let reply = &turn.replies[column.index()];
        lines.extend(text_lines(&reply.text, theme.style(Slot::Text)));
        let note = match &reply.state {
            ReplyState::Queued => Some(("waiting for the other reply".to_string(), muted)),
            ReplyState::Streaming => None,
            ReplyState::Done(StopReason::Cancelled) => Some(("stopped".into(), muted)),
            ReplyState::Done(StopReason::ContextFull) => {
                Some(("context full".into(), theme.style(Slot::StatusWarning)))
            }
            ReplyState::Done(_) => None,
            ReplyState::Failed(message) => {
                Some((format!("failed: {message}"), theme.style(Slot::StatusError)))
            }
        };
        if let Some((note, style)) = note {
            lines.push(Line::styled(format!("[{}]", sanitize(&note)), style));
        }
        if let Some(vote) = &turn.vote {
            let blind = if vote.blind { " (blind)" } else { "" };
            let mut text = format!("vote: {}{blind}", vote.verdict.name());
            if let Some(note) = &vote.note {
                text.push_str(&format!(" — {}", sanitize(note)));
            }
            lines.push(Line::styled(text, theme.style(Slot::Emphasis)));
        }
    }
    lines
}

fn text_lines(text: &str, style: Style) -> Vec<Line<'static>> {
    sanitize(text)
        .split('\n')
        .map(|line| Line::styled(line.to_string(), style))
        .collect()
}
