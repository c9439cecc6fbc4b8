//! The compare screen: the two columns, a line saying how the comparison
//! runs (pace, blind, each engine, the note for the next vote) with its
//! keys, and the message editor.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{ColumnEngine, CompareScreen};
use crate::arena::duel::{Column, Pace};
use crate::tui::app::App;
use crate::tui::duel_view::DuelView;
use crate::tui::keymap::Action;
use crate::tui::sanitize::sanitize;
use crate::tui::theme::Slot;
use crate::tui::widgets::pane;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(screen) = &app.compare else {
        return;
    };
    let input_rows = (screen.input.lines().len() as u16).clamp(1, 5) + 2;
    let [columns, info, input] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(2),
        Constraint::Length(input_rows),
    ])
    .areas(area);
    frame.render_widget(
        DuelView {
            duel: &screen.duel,
            theme: &app.theme,
            scroll: screen.scroll,
            focused: false,
        },
        columns,
    );
    frame.render_widget(
        Paragraph::new(info_lines(app, screen)).wrap(Wrap { trim: true }),
        info,
    );
    render_input(app, screen, frame, input);
}

fn engine_text(screen: &CompareScreen, column: Column) -> String {
    let state = match &screen.engines[column.index()] {
        ColumnEngine::Idle => "starts with the first message".to_string(),
        ColumnEngine::Loading => "loading…".to_string(),
        ColumnEngine::Ready { pid: 0 } => "remote".to_string(),
        ColumnEngine::Ready { pid } => format!("worker {pid}"),
        ColumnEngine::Failed(why) => format!("failed: {why} (starts again with its next reply)"),
    };
    format!("{}: {state}", column.letter())
}

fn info_lines(app: &App, screen: &CompareScreen) -> Vec<Line<'static>> {
    let muted = app.theme.style(Slot::Muted);
    let keys = &app.keymap;
    let pace = match screen.duel.pace {
        Pace::OneAfterTheOther => "one after the other",
        Pace::AtOnce => "at once",
    };
    let blind = if screen.duel.blind && !screen.duel.revealed {
        "blind"
    } else {
        "named"
    };
    let mut first = vec![
        Span::styled(format!("{pace} · {blind} · "), muted),
        Span::styled(
            sanitize(&format!(
                "{} · {}",
                engine_text(screen, Column::A),
                engine_text(screen, Column::B)
            )),
            muted,
        ),
    ];
    if let Some(note) = &screen.note {
        first.push(Span::styled(
            format!(" · note: {}", sanitize(note)),
            app.theme.style(Slot::Emphasis),
        ));
    }
    let hints = format!(
        "vote {} A · {} B · {} tie · {} both bad · {} note │ {}/{} regenerate A/B │ {}/{} keep A/B │ {} blind · {} pace",
        keys.key_hint(Action::VoteA),
        keys.key_hint(Action::VoteB),
        keys.key_hint(Action::VoteTie),
        keys.key_hint(Action::VoteBothBad),
        keys.key_hint(Action::VoteNote),
        keys.key_hint(Action::RegenerateA),
        keys.key_hint(Action::RegenerateB),
        keys.key_hint(Action::KeepA),
        keys.key_hint(Action::KeepB),
        keys.key_hint(Action::ToggleBlind),
        keys.key_hint(Action::TogglePace),
    );
    vec![Line::from(first), Line::styled(hints, muted)]
}

fn render_input(app: &App, screen: &CompareScreen, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let (title, editor) = match &screen.note_editor {
        Some(editor) => (
            format!(
                " Note for the next vote · {} keeps it · {} drops it ",
                app.keymap.key_hint(Action::Send),
                app.keymap.key_hint(Action::Stop)
            ),
            editor,
        ),
        None => (
            format!(
                " To both models · {} send · {} stop both ",
                app.keymap.key_hint(Action::Send),
                app.keymap.key_hint(Action::Stop)
            ),
            &screen.input,
        ),
    };
    let block = pane(theme, true).title(Span::styled(title, theme.style(Slot::Title)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut editor = editor.clone();
    editor.set_style(theme.style(Slot::Text));
    editor.set_cursor_line_style(Style::default());
    frame.render_widget(&editor, inner);
}
