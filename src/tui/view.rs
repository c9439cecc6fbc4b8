//! Drawing: a pure function of the state. Colours are fixed here for now;
//! themes come with the theme files.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, EngineState, Entry, EntryStatus, Focus};
use super::sanitize::sanitize;
use crate::engine::protocol::Role;

/// Below this the layout cannot show a message, an input line and a status.
pub const MIN_WIDTH: u16 = 24;
pub const MIN_HEIGHT: u16 = 8;
const MAX_INPUT_LINES: u16 = 8;

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area);
        return;
    }
    let input_height = (app.input.lines().len() as u16).clamp(1, MAX_INPUT_LINES) + 2;
    let [messages, input, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(input_height),
        Constraint::Length(1),
    ])
    .areas(area);
    render_messages(app, frame, messages);
    render_input(app, frame, input);
    render_status(app, frame, status);
}

fn render_too_small(frame: &mut Frame, area: Rect) {
    let text = format!("terminal too small (need {MIN_WIDTH}×{MIN_HEIGHT})");
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .style(Style::default().fg(Color::Yellow)),
        area,
    );
}

fn border_style(focused: bool) -> Style {
    if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default().fg(Color::DarkGray)
    }
}

fn render_messages(app: &App, frame: &mut Frame, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border_style(app.focus == Focus::Messages))
        .title(if app.session_name.is_empty() {
            format!(" whet · {} ", app.model_name)
        } else {
            format!(" whet · {} · {} ", app.model_name, app.session_name)
        });
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.entries.is_empty() {
        let hint = Paragraph::new(Line::styled(
            "Ask something. Tab moves between the input and the messages; Esc stops a reply.",
            Style::default().fg(Color::DarkGray),
        ))
        .wrap(Wrap { trim: false });
        frame.render_widget(hint, inner);
        return;
    }
    // Only the entries that reach into the view are laid out, newest first:
    // a long session costs no more per frame than a short one.
    let wanted = usize::from(inner.height) + usize::from(app.scroll_up);
    let mut visible: Vec<Vec<Line<'static>>> = Vec::new();
    let mut height = 0usize;
    for entry in app.entries.iter().rev() {
        let lines = entry_lines(entry);
        height += Paragraph::new(lines.clone())
            .wrap(Wrap { trim: false })
            .line_count(inner.width);
        visible.push(lines);
        if height >= wanted {
            break;
        }
    }
    let lines: Vec<Line<'static>> = visible.into_iter().rev().flatten().collect();
    // Follow the end unless the user scrolled up.
    let offset = height
        .saturating_sub(usize::from(inner.height))
        .saturating_sub(usize::from(app.scroll_up));
    let offset = u16::try_from(offset).unwrap_or(u16::MAX);
    let paragraph = Paragraph::new(Text::from(lines))
        .wrap(Wrap { trim: false })
        .scroll((offset, 0));
    frame.render_widget(paragraph, inner);
}

/// One message: a header with the role and its state, the text, a blank line.
fn entry_lines(entry: &Entry) -> Vec<Line<'static>> {
    let (name, colour) = match entry.role {
        Role::User => ("You", Color::Green),
        Role::Assistant => ("Assistant", Color::Magenta),
        Role::System => ("System", Color::Yellow),
    };
    let mut header = vec![Span::styled(
        name,
        Style::default().fg(colour).add_modifier(Modifier::BOLD),
    )];
    let dim = Style::default().fg(Color::DarkGray);
    match &entry.status {
        EntryStatus::Streaming => header.push(Span::styled(" …", dim)),
        EntryStatus::Stopped(why) => header.push(Span::styled(
            format!(" [{why}]"),
            Style::default().fg(Color::Yellow),
        )),
        EntryStatus::Failed(why) => header.push(Span::styled(
            format!(" [failed: {why}]"),
            Style::default().fg(Color::Red),
        )),
        EntryStatus::Done => {}
    }
    let mut lines = vec![Line::from(header)];
    // User text is shown safely too (tabs, pasted control characters);
    // what is sent to the model stays as typed.
    lines.extend(
        sanitize(&entry.text)
            .split('\n')
            .map(|line| Line::raw(line.to_string())),
    );
    lines.push(Line::raw(""));
    lines
}

fn render_input(app: &App, frame: &mut Frame, area: Rect) {
    let mut input = app.input.clone();
    input.set_block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(border_style(app.focus == Focus::Input))
            .title(" Message · Enter send · Alt+Enter/Ctrl+J newline · Esc stop · Ctrl+G regenerate · Ctrl+C×2 quit "),
    );
    frame.render_widget(&input, area);
}

fn render_status(app: &App, frame: &mut Frame, area: Rect) {
    let (state, colour) = match &app.engine {
        EngineState::Loading => ("loading model…".to_string(), Color::Yellow),
        EngineState::Ready => ("ready".to_string(), Color::Green),
        EngineState::Generating => ("generating".to_string(), Color::Cyan),
        EngineState::Failed(why) => (format!("load failed: {why}"), Color::Red),
        EngineState::Crashed(why) => (format!("{why} — Ctrl+R restarts"), Color::Red),
    };
    let mut spans = vec![Span::styled(
        format!("● {state}"),
        Style::default().fg(colour),
    )];
    if app.n_ctx > 0 {
        let ctx_style = if app.context_nearly_full() {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(
            format!("ctx {}/{}", app.context_used, app.n_ctx),
            ctx_style,
        ));
    }
    if let Some(turn) = app.last_turn {
        spans.push(Span::raw(format!(
            " │ {:.1} tok/s │ TTFT {:.0} ms",
            turn.tokens_per_sec, turn.ttft_ms
        )));
    }
    if let Some(notice) = &app.notice {
        spans.push(Span::styled(
            format!(" │ {notice}"),
            Style::default().fg(Color::Yellow),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
