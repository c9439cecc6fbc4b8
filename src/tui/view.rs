//! Drawing: a function of the state (plus where things were drawn, written
//! back for mouse clicks). Every colour comes from the theme's semantic slots.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, DrawnLayout, EngineState, Focus, Overlay, Screen};
use super::conversation::{Entry, EntryStatus};
use super::keymap::Action;
use super::markdown::{self, MarkdownStyle};
use super::picker::Picker;
use super::sanitize::sanitize;
use super::settings::{Field, SettingsForm};
use super::theme::{Slot, Theme};
use crate::engine::protocol::Role;

/// Below this the layout cannot show a message, an input line and a status.
pub const MIN_WIDTH: u16 = 24;
pub const MIN_HEIGHT: u16 = 8;
const MAX_INPUT_LINES: u16 = 8;

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(app, frame, area);
        app.drawn.set(DrawnLayout::default());
        return;
    }
    if app.screen == Screen::Workbench {
        let [main, status] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
        super::workbench::view::render(app, frame, main);
        render_status(app, frame, status);
        app.drawn.set(DrawnLayout::default());
        render_overlays(app, frame, area);
        return;
    }
    if app.screen == Screen::Rounds {
        let [main, status] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
        super::rounds::view::render(app, frame, main);
        render_status(app, frame, status);
        app.drawn.set(DrawnLayout::default());
        render_overlays(app, frame, area);
        return;
    }
    let input_height = (app.input.lines().len() as u16).clamp(1, MAX_INPUT_LINES) + 2;
    let [messages, input, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(input_height),
        Constraint::Length(1),
    ])
    .areas(area);
    let (scroll_up, last_entry_height) = render_messages(app, frame, messages);
    render_input(app, frame, input);
    render_status(app, frame, status);
    app.drawn.set(DrawnLayout {
        messages,
        input,
        scroll_up,
        last_entry_height,
    });
    render_overlays(app, frame, area);
}

/// The popups of both screens, and the help over everything.
fn render_overlays(app: &App, frame: &mut Frame, area: Rect) {
    match &app.overlay {
        Some(Overlay::Settings(form)) => render_settings(app, form, frame, area),
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

pub(super) fn pane(theme: &Theme, focused: bool) -> Block<'static> {
    let block = Block::default().borders(Borders::ALL);
    if focused {
        block
            .border_style(theme.style(Slot::BorderFocused))
            .border_type(BorderType::Thick)
    } else {
        block.border_style(theme.style(Slot::Border))
    }
}

/// Draws the conversation; returns how far up from the bottom it is shown
/// and the newest message's height.
fn render_messages(app: &App, frame: &mut Frame, area: Rect) -> (u16, usize) {
    let theme = &app.theme;
    let title = if app.session_name.is_empty() {
        format!(" whet · {} ", app.model_name)
    } else {
        format!(" whet · {} · {} ", app.model_name, app.session_name)
    };
    let block = pane(theme, app.focus == Focus::Messages && app.overlay.is_none())
        .title(Span::styled(sanitize(&title), theme.style(Slot::Title)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.entries.is_empty() {
        let hint = format!(
            "Ask something. {} moves between the input and the messages; {} stops a reply; {} shows every key.",
            app.keymap.key_hint(Action::FocusNext),
            app.keymap.key_hint(Action::Stop),
            app.keymap.key_hint(Action::Help),
        );
        let hint =
            Paragraph::new(Line::styled(hint, theme.style(Slot::Muted))).wrap(Wrap { trim: false });
        frame.render_widget(hint, inner);
        return (0, 0);
    }
    let view_height = usize::from(inner.height);
    let selected = app
        .selected
        .filter(|_| app.focus == Focus::Messages || app.follow_selection);
    // Entries are laid out from the newest back, only as far as the view
    // (and the selection) reach: a long session costs no more per frame
    // than a short one.
    let mut laid_out: Vec<(Vec<Line<'static>>, usize)> = Vec::new();
    let mut height = 0usize;
    let mut selected_span = None;
    let mut scroll_up = usize::from(app.scroll_up);
    let mut last_entry_height = 0;
    for (index, entry) in app.entries.iter().enumerate().rev() {
        let lines = entry_lines(app, entry, Some(index) == selected);
        let lines_height = Paragraph::new(lines.clone())
            .wrap(Wrap { trim: false })
            .line_count(inner.width);
        height += lines_height;
        laid_out.push((lines, lines_height));
        if laid_out.len() == 1 {
            last_entry_height = lines_height;
            // Scrolled up while a reply grows: keep the same lines in view.
            if let (true, Some(base)) = (
                app.scroll_up > 0 && !app.follow_selection,
                app.scroll_base_tail,
            ) {
                scroll_up += lines_height.saturating_sub(base);
            }
        }
        if Some(index) == selected {
            // From the bottom: the entry spans (height - its height, height].
            selected_span = Some((height, lines_height));
        }
        let reached_selection = selected.is_none_or(|s| index <= s) || !app.follow_selection;
        if reached_selection {
            if let (true, Some((to_top, own))) = (app.follow_selection, selected_span) {
                // Show the whole selected entry, or its top if it is taller.
                let lowest = to_top.saturating_sub(view_height);
                let highest = if own > view_height {
                    lowest
                } else {
                    to_top - own
                };
                scroll_up = scroll_up.clamp(lowest, highest.max(lowest));
            }
            if height >= view_height + scroll_up {
                break;
            }
        }
    }
    // Scrolling stops at the top of the conversation.
    let scroll_up = scroll_up.min(height.saturating_sub(view_height));
    let offset = height.saturating_sub(view_height + scroll_up);
    let lines: Vec<Line<'static>> = laid_out
        .into_iter()
        .rev()
        .flat_map(|(lines, _)| lines)
        .collect();
    let paragraph = Paragraph::new(Text::from(lines))
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(offset).unwrap_or(u16::MAX), 0));
    frame.render_widget(paragraph, inner);
    (
        u16::try_from(scroll_up).unwrap_or(u16::MAX),
        last_entry_height,
    )
}

fn markdown_style(theme: &Theme) -> MarkdownStyle {
    MarkdownStyle {
        text: theme.style(Slot::Text),
        code_block: theme.style(Slot::CodeBlock),
        inline_code: theme.style(Slot::InlineCode),
        heading: theme.style(Slot::Heading),
        emphasis: theme.style(Slot::Emphasis),
        strong: theme.style(Slot::Strong),
        link: theme.style(Slot::Link),
        quote: theme.style(Slot::Quote),
        list_marker: theme.style(Slot::ListMarker),
        muted: theme.style(Slot::Muted),
    }
}

/// One message: a header with the role and its state, the text, a blank line.
fn entry_lines(app: &App, entry: &Entry, selected: bool) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let (name, slot) = match entry.role {
        Role::User => ("You", Slot::UserMessage),
        Role::Assistant => ("Assistant", Slot::AssistantMessage),
        Role::System => ("System", Slot::SystemMessage),
    };
    let mut header = vec![Span::styled(
        if selected {
            format!("▶ {name}")
        } else {
            name.to_string()
        },
        theme.style(slot).add_modifier(Modifier::BOLD),
    )];
    let muted = theme.style(Slot::Muted);
    match &entry.status {
        EntryStatus::Streaming => header.push(Span::styled(" …", muted)),
        EntryStatus::Stopped(why) => header.push(Span::styled(
            format!(" [{why}]"),
            theme.style(Slot::StatusWarning),
        )),
        EntryStatus::Failed(why) => header.push(Span::styled(
            format!(" [failed: {}]", sanitize(why)),
            theme.style(Slot::StatusError),
        )),
        EntryStatus::Done => {}
    }
    if !entry.branches.is_empty() {
        header.push(Span::styled(
            format!(
                " ({} other version{}: {}/{})",
                entry.branches.len(),
                if entry.branches.len() == 1 { "" } else { "s" },
                app.keymap.key_hint(Action::BranchPrev),
                app.keymap.key_hint(Action::BranchNext),
            ),
            muted,
        ));
    }
    let mut header = Line::from(header);
    if selected {
        header = header.patch_style(theme.style(Slot::Selection));
    }
    let mut lines = vec![header];
    match entry.role {
        // Replies are Markdown; what people type is shown as typed (made
        // safe: tabs, pasted control characters). What is sent to the model
        // stays as typed either way.
        Role::Assistant => {
            lines.extend(markdown::render(&entry.text, &markdown_style(theme)).lines);
        }
        _ => {
            let style = theme.style(Slot::Text);
            lines.extend(
                sanitize(&entry.text)
                    .split('\n')
                    .map(|line| Line::styled(line.to_string(), style)),
            );
        }
    }
    lines.push(Line::raw(""));
    lines
}

fn render_input(app: &App, frame: &mut Frame, area: Rect) {
    let keys = &app.keymap;
    let title = match &app.editing {
        Some((index, _)) => format!(
            " Editing message {} · {} {} · {} cancel ",
            index + 1,
            keys.key_hint(Action::Send),
            match app.entries.get(*index).map(|e| e.role) {
                Some(Role::Assistant) => "save",
                _ => "resend from here",
            },
            keys.key_hint(Action::Stop),
        ),
        None => format!(
            " Message · {} send · {} newline · {} stop · {} help ",
            keys.key_hint(Action::Send),
            keys.key_hint(Action::Newline),
            keys.key_hint(Action::Stop),
            keys.key_hint(Action::Help),
        ),
    };
    let mut input = app.input.clone();
    input.set_style(app.theme.style(Slot::Text));
    input.set_placeholder_style(app.theme.style(Slot::Muted));
    input.set_cursor_line_style(Style::default());
    input.set_block(
        pane(
            &app.theme,
            app.focus == Focus::Input && app.overlay.is_none(),
        )
        .title(Span::styled(title, app.theme.style(Slot::Title))),
    );
    frame.render_widget(&input, area);
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
    if app.unsaved.is_some() {
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
    let why = app.unsaved.as_deref().unwrap_or("the last save failed");
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
                sanitize(&app.rescue_hint)
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

/// A centred box of at most `width`×`height`, cleared, with a title.
pub(super) fn popup(
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

fn render_settings(app: &App, form: &SettingsForm, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let inner = popup(
        app,
        frame,
        area,
        96,
        21,
        "Settings · applied to the next turn",
    );
    let system_height = 6u16;
    let mut constraints = vec![Constraint::Length(1), Constraint::Length(system_height)];
    constraints.extend(std::iter::repeat_n(
        Constraint::Length(1),
        form.fields.len() - 1,
    ));
    constraints.push(Constraint::Length(1));
    constraints.push(Constraint::Min(1));
    let rows = Layout::vertical(constraints).split(inner);
    let label_width = 16u16;
    // Where sampler values come from ("model card (SmolLM2 135M
    // Instruct)"), beside them; narrow popups give it up first.
    let origin_width = inner.width.saturating_sub(label_width + 12).min(40);
    for (index, (field, text)) in form.fields.iter().enumerate() {
        let focused = index == form.focused;
        let label_style = if focused {
            theme
                .style(Slot::BorderFocused)
                .add_modifier(Modifier::BOLD)
        } else {
            theme.style(Slot::Text)
        };
        let mut area = text.clone();
        area.set_style(theme.style(Slot::Text));
        area.set_cursor_line_style(Style::default());
        if !focused {
            area.set_cursor_style(theme.style(Slot::Text));
        }
        if *field == Field::SystemPrompt {
            frame.render_widget(
                Paragraph::new(Span::styled(field.label(), label_style)),
                rows[0],
            );
            area.set_block(pane(theme, focused));
            frame.render_widget(&area, rows[1]);
            continue;
        }
        let row = rows[index + 1];
        let [label, value, origin] = Layout::horizontal([
            Constraint::Length(label_width),
            Constraint::Min(8),
            Constraint::Length(origin_width),
        ])
        .areas(row);
        frame.render_widget(
            Paragraph::new(Span::styled(field.label(), label_style)),
            label,
        );
        frame.render_widget(&area, value);
        if let Some(text) = form.origin_label(*field) {
            frame.render_widget(
                Paragraph::new(Span::styled(sanitize(&text), theme.style(Slot::Muted))),
                origin,
            );
        }
    }
    let focused = form.focused_field();
    let footer = match &form.error {
        Some(error) => Line::styled(sanitize(error), theme.style(Slot::StatusError)),
        None => {
            let back = form
                .inherited(focused)
                .map(|inherited| format!(" · empty = {inherited}"))
                .unwrap_or_default();
            Line::styled(
                sanitize(&format!("{}: {}{back}", focused.label(), focused.hint())),
                theme.style(Slot::Muted),
            )
        }
    };
    let hints = Line::styled(
        format!(
            "{} apply · {} cancel · Tab/Shift+Tab move between fields",
            app.keymap.key_hint(Action::Apply),
            app.keymap.key_hint(Action::Close),
        ),
        theme.style(Slot::Muted),
    );
    let last = rows.len() - 1;
    frame.render_widget(
        Paragraph::new(vec![footer, hints]).wrap(Wrap { trim: false }),
        rows[last - 1].union(rows[last]),
    );
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
