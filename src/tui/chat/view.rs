//! Drawing the chat: the conversation, the input, and its settings popup.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::Focus;
use crate::engine::protocol::Role;
use crate::tui::app::{App, DrawnLayout};
use crate::tui::conversation::{Entry, EntryStatus};
use crate::tui::keymap::{Action, Context};
use crate::tui::lens;
use crate::tui::markdown::{self, MarkdownStyle};
use crate::tui::sanitize::sanitize;
use crate::tui::settings::{Field, SettingsForm};
use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::{pane, popup};

const MAX_INPUT_LINES: u16 = 8;

/// The conversation above the input, in `area`; where they went is
/// written back for the mouse and for scrolling.
pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let input_height = (app.chat.input.lines().len() as u16).clamp(1, MAX_INPUT_LINES) + 2;
    let [messages, input] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(input_height)]).areas(area);
    let (scroll_up, last_entry_height) = render_messages(app, frame, messages);
    render_input(app, frame, input);
    app.drawn.set(DrawnLayout {
        messages,
        input,
        scroll_up,
        last_entry_height,
    });
}

/// Draws the conversation; returns how far up from the bottom it is shown
/// and the newest message's height.
fn render_messages(app: &App, frame: &mut Frame, area: Rect) -> (u16, usize) {
    let theme = &app.theme;
    let title = if app.chat.session_name.is_empty() {
        format!(" whet · {} ", app.model_name)
    } else {
        format!(" whet · {} · {} ", app.model_name, app.chat.session_name)
    };
    let block = pane(
        theme,
        app.chat.focus == Focus::Messages && app.overlay.is_none(),
    )
    .title(Span::styled(sanitize(&title), theme.style(Slot::Title)));
    let lensed = app
        .chat
        .lens
        .as_ref()
        .filter(|_| app.chat.focus == Focus::Messages)
        .and_then(|(index, lens)| Some((*index, app.chat.entries.get(*index)?, lens)));
    if let Some((index, entry, lens)) = lensed {
        let mut title = format!(" Lens · {} · message {}", app.model_name, index + 1);
        if !entry.branches.is_empty() {
            title.push_str(&format!(
                " · {} other version{} ({}/{})",
                entry.branches.len(),
                if entry.branches.len() == 1 { "" } else { "s" },
                app.keymap.key_hint(Action::BranchPrev),
                app.keymap.key_hint(Action::BranchNext),
            ));
        }
        if entry.status == EntryStatus::Streaming {
            title.push_str(" · streaming");
        }
        title.push(' ');
        let block = pane(theme, app.overlay.is_none())
            .title(Span::styled(sanitize(&title), theme.style(Slot::Title)));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let hints = format!(
            "←/→ token · ↑/↓ choose · Enter forks · {} closes",
            app.keymap.key_hint_in(Context::Messages, Action::Lens)
        );
        lens::render(frame, inner, theme, entry.tokens.as_deref(), lens, &hints);
        return (0, 0);
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.chat.entries.is_empty() {
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
        .chat
        .selected
        .filter(|_| app.chat.focus == Focus::Messages || app.chat.follow_selection);
    // Entries are laid out from the newest back, only as far as the view
    // (and the selection) reach: a long session costs no more per frame
    // than a short one.
    let mut laid_out: Vec<(Vec<Line<'static>>, usize)> = Vec::new();
    let mut height = 0usize;
    let mut selected_span = None;
    let mut scroll_up = usize::from(app.chat.scroll_up);
    let mut last_entry_height = 0;
    for (index, entry) in app.chat.entries.iter().enumerate().rev() {
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
                app.chat.scroll_up > 0 && !app.chat.follow_selection,
                app.chat.scroll_base_tail,
            ) {
                scroll_up += lines_height.saturating_sub(base);
            }
        }
        if Some(index) == selected {
            // From the bottom: the entry spans (height - its height, height].
            selected_span = Some((height, lines_height));
        }
        let reached_selection = selected.is_none_or(|s| index <= s) || !app.chat.follow_selection;
        if reached_selection {
            if let (true, Some((to_top, own))) = (app.chat.follow_selection, selected_span) {
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
    let title = match &app.chat.editing {
        Some((index, _)) => format!(
            " Editing message {} · {} {} · {} cancel ",
            index + 1,
            keys.key_hint(Action::Send),
            match app.chat.entries.get(*index).map(|e| e.role) {
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
    let mut input = app.chat.input.clone();
    input.set_style(app.theme.style(Slot::Text));
    input.set_placeholder_style(app.theme.style(Slot::Muted));
    input.set_cursor_line_style(Style::default());
    input.set_block(
        pane(
            &app.theme,
            app.chat.focus == Focus::Input && app.overlay.is_none(),
        )
        .title(Span::styled(title, app.theme.style(Slot::Title))),
    );
    frame.render_widget(&input, area);
}

pub fn render_settings(app: &App, form: &SettingsForm, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let inner = popup(
        app,
        frame,
        area,
        96,
        22,
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
