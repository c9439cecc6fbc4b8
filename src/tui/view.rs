//! Drawing the shell: the screen shown (each screen draws itself), the
//! status line, the popups and the help. All of it is a function of the
//! state (plus where things were drawn, written back for mouse clicks).
//! Every colour comes from the theme's semantic slots.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, DrawnLayout, EngineState, Overlay, Screen};
use super::conversation::EntryStatus;
use super::keymap::Action;
use super::picker::Picker;
use super::sanitize::sanitize;
use super::theme::Slot;
use super::widgets::popup;

/// Below this the layout cannot show a message, an input line and a status.
pub const MIN_WIDTH: u16 = 24;
pub const MIN_HEIGHT: u16 = 8;

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    app.drawn.set(DrawnLayout::default());
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(app, frame, area);
        return;
    }
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    match app.screen {
        Screen::Chat => super::chat::view::render(app, frame, main),
        Screen::Workbench => super::workbench::view::render(app, frame, main),
        Screen::Rounds => super::rounds::view::render(app, frame, main),
        Screen::Experiments => super::experiments::view::render(app, frame, main),
        Screen::Compare => super::compare::view::render(app, frame, main),
    }
    render_status(app, frame, status);
    render_overlays(app, frame, area);
}

/// The popups of both screens, and the help over everything.
fn render_overlays(app: &App, frame: &mut Frame, area: Rect) {
    match &app.overlay {
        Some(Overlay::Settings(form)) => super::chat::view::render_settings(app, form, frame, area),
        Some(Overlay::Picker(picker)) => render_picker(app, picker, frame, area),
        Some(Overlay::QuitUnsaved) => render_quit_unsaved(app, frame, area),
        None => {}
    }
    if app.show_help {
        render_help(app, frame, area);
    }
}

fn render_too_small(app: &App, frame: &mut Frame, area: Rect) {
    let text = format!("terminal too small (need {MIN_WIDTH}×{MIN_HEIGHT})");
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .style(app.theme.style(Slot::StatusWarning)),
        area,
    );
}

fn render_status(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let (state, slot) = match &app.engine {
        EngineState::Loading => (
            match app.load_progress {
                Some(fraction) => format!("loading model… {:.0}%", fraction * 100.0),
                None => "loading model…".to_string(),
            },
            Slot::StatusWarning,
        ),
        EngineState::Ready => ("ready".to_string(), Slot::StatusOk),
        EngineState::Generating => ("generating".to_string(), Slot::StatusBusy),
        EngineState::Failed(why) => (
            format!(
                "load failed: {} — {} retries, {} picks another model",
                sanitize(why),
                app.keymap.key_hint(Action::RestartEngine),
                app.keymap.key_hint(Action::Models)
            ),
            Slot::StatusError,
        ),
        EngineState::Crashed(why) => (
            format!(
                "{} — {} restarts",
                sanitize(why),
                app.keymap.key_hint(Action::RestartEngine)
            ),
            Slot::StatusError,
        ),
    };
    // A stopped reply is its own state, so the user sees it can be continued.
    let stopped = app.screen == Screen::Chat
        && app.engine == EngineState::Ready
        && app
            .chat
            .entries
            .last()
            .is_some_and(|e| matches!(e.status, EntryStatus::Stopped(_)));
    let (state, slot) = if stopped {
        (
            format!(
                "stopped — {} continues",
                app.keymap.key_hint(Action::ContinueReply)
            ),
            Slot::StatusWarning,
        )
    } else {
        (state, slot)
    };
    let mut spans = vec![Span::styled(format!("● {state}"), theme.style(slot))];
    if app.n_ctx > 0 {
        spans.push(Span::raw(" │ "));
        if app.context_nearly_full() {
            spans.push(Span::styled(
                format!("ctx {}/{} nearly full", app.context_used, app.n_ctx),
                theme.style(Slot::StatusError).add_modifier(Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(format!("ctx {}/{}", app.context_used, app.n_ctx)));
        }
    }
    if let Some(turn) = app.last_turn {
        spans.push(Span::raw(format!(
            " │ {:.1} tok/s │ TTFT {:.0} ms",
            turn.tokens_per_sec, turn.ttft_ms
        )));
    }
    // A failed save stays in view until a save works: a passing notice
    // is too easy to miss before quitting.
    if app.chat.unsaved.is_some() {
        spans.push(Span::styled(
            " │ NOT SAVED",
            theme.style(Slot::StatusError).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(notice) = &app.notice {
        let slot = if notice.error {
            Slot::StatusError
        } else {
            Slot::StatusWarning
        };
        spans.push(Span::styled(
            format!(" │ {}", sanitize(&notice.text)),
            theme.style(slot),
        ));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.style(Slot::StatusBar)),
        area,
    );
}

/// The question before quitting with turns the session file does not hold.
fn render_quit_unsaved(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let why = app
        .chat
        .unsaved
        .as_deref()
        .unwrap_or("the last save failed");
    let key = |key: &str, what: String| {
        Line::from(vec![
            Span::styled(format!("{key:>4}  "), theme.style(Slot::HelpKey)),
            Span::styled(what, theme.style(Slot::Text)),
        ])
    };
    let lines = vec![
        Line::styled(sanitize(why), theme.style(Slot::StatusError)),
        Line::raw(""),
        key(
            "r",
            "try saving again (after freeing space or fixing the folder)".into(),
        ),
        key(
            "q",
            format!(
                "quit, writing a rescue copy to {} (its path is printed)",
                sanitize(&app.chat.rescue_hint)
            ),
        ),
        key("Esc", "keep working".into()),
    ];
    let text = Paragraph::new(lines).wrap(Wrap { trim: false });
    // As tall as the wrapped text, and no taller.
    const WIDTH: u16 = 90;
    let rows = text.line_count(area.width.min(WIDTH).saturating_sub(2));
    let height = u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(2);
    let inner = popup(app, frame, area, WIDTH, height, "The session is not saved");
    frame.render_widget(text, inner);
}

fn render_picker(app: &App, picker: &Picker, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let height = (picker.items.len() as u16).saturating_add(5).clamp(7, 24);
    let inner = popup(app, frame, area, 90, height, picker.title());
    let [list_area, footer_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);
    if picker.loading {
        frame.render_widget(
            Paragraph::new("reading…").style(theme.style(Slot::Muted)),
            list_area,
        );
    } else if picker.items.is_empty() {
        let empty = match picker.kind {
            super::picker::PickerKind::Models => "no models installed; run `whet models fetch`",
            super::picker::PickerKind::Sessions => "no saved sessions yet",
        };
        frame.render_widget(
            Paragraph::new(empty).style(theme.style(Slot::Muted)),
            list_area,
        );
    } else {
        // Keep the selection on screen in long lists.
        let rows = usize::from(list_area.height.max(1));
        let first = picker.selected.saturating_sub(rows - 1);
        let lines: Vec<Line> = picker
            .items
            .iter()
            .enumerate()
            .skip(first)
            .take(rows)
            .map(|(index, item)| {
                let mut spans = vec![
                    Span::raw(if item.current { "● " } else { "  " }),
                    Span::styled(sanitize(&item.label), theme.style(Slot::Text)),
                    Span::styled(
                        format!("  {}", sanitize(&item.detail)),
                        theme.style(Slot::Muted),
                    ),
                ];
                if let Some(problem) = &item.problem {
                    spans.push(Span::styled(
                        format!("  {}", sanitize(problem)),
                        theme.style(Slot::StatusError),
                    ));
                }
                let line = Line::from(spans);
                if index == picker.selected {
                    line.patch_style(theme.style(Slot::Selection))
                } else {
                    line
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), list_area);
    }
    let keys = &app.keymap;
    if let Some(name) = &picker.renaming {
        let [label, field] =
            Layout::horizontal([Constraint::Length(10), Constraint::Min(1)]).areas(footer_area);
        frame.render_widget(
            Paragraph::new(Span::styled("new name:", theme.style(Slot::BorderFocused))),
            label,
        );
        let mut name = name.clone();
        name.set_cursor_line_style(Style::default());
        frame.render_widget(&name, field);
        return;
    }
    let hint = match picker.kind {
        super::picker::PickerKind::Models if picker.for_compare => format!(
            "{} compare with this model · {} close · ● the chat's",
            keys.key_hint(Action::Pick),
            keys.key_hint(Action::Close)
        ),
        super::picker::PickerKind::Models => format!(
            "{} load · {} close · ● in use",
            keys.key_hint(Action::Pick),
            keys.key_hint(Action::Close)
        ),
        super::picker::PickerKind::Sessions => format!(
            "{} open · {} rename · {} delete (to .trash) · {} close · ● open now",
            keys.key_hint(Action::Pick),
            keys.key_hint(Action::PickerRename),
            keys.key_hint(Action::PickerDelete),
            keys.key_hint(Action::Close)
        ),
    };
    frame.render_widget(
        Paragraph::new(Line::styled(hint, theme.style(Slot::Muted))).wrap(Wrap { trim: false }),
        footer_area,
    );
}

fn render_help(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let context = app.context();
    let bindings = app.keymap.help(context);
    let height = (bindings.len() as u16).saturating_add(4);
    let inner = popup(app, frame, area, 72, height, "Keys · any key closes");
    let key_width = bindings
        .iter()
        .map(|(keys, _, _)| unicode_width::UnicodeWidthStr::width(keys.as_str()))
        .max()
        .unwrap_or(0)
        .min(24);
    let lines: Vec<Line> = bindings
        .into_iter()
        .map(|(keys, description, _)| {
            Line::from(vec![
                Span::styled(format!("{keys:<key_width$}  "), theme.style(Slot::HelpKey)),
                Span::styled(description, theme.style(Slot::Text)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
