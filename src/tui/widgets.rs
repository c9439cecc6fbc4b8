//! Drawing pieces every screen uses: a bordered pane, a centred popup, a
//! window of rows around a selection, and the list of saved runs.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear};
use ratatui::Frame;

use super::app::App;
use super::sanitize::sanitize;
use super::theme::{Slot, Theme};

pub fn pane(theme: &Theme, focused: bool) -> Block<'static> {
    let block = Block::default().borders(Borders::ALL);
    if focused {
        block
            .border_style(theme.style(Slot::BorderFocused))
            .border_type(BorderType::Thick)
    } else {
        block.border_style(theme.style(Slot::Border))
    }
}

/// A centred box of at most `width`×`height`, cleared, with a title.
pub fn popup(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    width: u16,
    height: u16,
    title: &str,
) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    frame.render_widget(Clear, rect);
    let block = pane(&app.theme, true)
        .title(Span::styled(
            format!(" {title} "),
            app.theme.style(Slot::Title),
        ))
        .style(app.theme.style(Slot::Text));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    inner
}

/// The first `rows` lines from `first` so that `selected` is on screen.
pub fn window(selected: usize, count: usize, rows: usize) -> std::ops::Range<usize> {
    let rows = rows.max(1);
    let first = selected
        .saturating_sub(rows - 1)
        .min(count.saturating_sub(rows));
    first..(first + rows).min(count)
}

/// Saved runs, a line each (id, preview, and the problem of a file that
/// cannot be read), the selected one highlighted and kept in view.
pub fn run_lines(
    theme: &Theme,
    runs: &[crate::store::runs::RunSummary],
    selected: usize,
    height: u16,
) -> Vec<Line<'static>> {
    window(selected, runs.len(), usize::from(height))
        .map(|i| {
            let run = &runs[i];
            let mut spans = vec![
                Span::styled(sanitize(&run.id), theme.style(Slot::Text)),
                Span::styled(
                    format!("  {}", sanitize(&run.output_preview)),
                    theme.style(Slot::Muted),
                ),
            ];
            if let Some(problem) = &run.problem {
                spans.push(Span::styled(
                    format!("  {}", sanitize(problem)),
                    theme.style(Slot::StatusError),
                ));
            }
            let line = Line::from(spans);
            if i == selected {
                line.patch_style(theme.style(Slot::Selection))
            } else {
                line
            }
        })
        .collect()
}
