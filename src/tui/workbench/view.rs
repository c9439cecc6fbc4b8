//! Drawing the workbench: the template list, the editor, the variables and
//! examples, the exact model input and the output; then its popups.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use ratatui_textarea::TextArea;

use super::doc::{Origin, TemplateDoc, TextField};
use super::example_form::ExampleForm;
use super::{HistoryList, LinePrompt, Pane, WbOverlay, WorkbenchRun};
use crate::engine::protocol::Role;
use crate::prompt::Source;
use crate::store::runs::{BeamSearchRun, RunOutcome};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Context};
use crate::tui::sanitize::sanitize;
use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::{pane, popup, run_lines, window};

/// Below this the workbench's six panes cannot show anything useful.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 14;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    app.wb.drawn.set(Default::default());
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "the workbench needs {MIN_WIDTH}×{MIN_HEIGHT}; {} returns to the chat",
            app.keymap.key_hint(Action::Workbench)
        );
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .style(theme.style(Slot::StatusWarning)),
            area,
        );
        return;
    }
    let wb = &app.wb;
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(area);
    let (list_width, side_width) = if area.width >= 110 {
        (24, 38)
    } else {
        (18, 28)
    };
    let [list, editor, side] = Layout::horizontal([
        Constraint::Length(list_width),
        Constraint::Min(20),
        Constraint::Length(side_width),
    ])
    .areas(top);
    let [variables, examples] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(side);
    let [preview, output] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let focused = |p: Pane| wb.focus == p && wb.overlay.is_none() && app.overlay.is_none();
    wb.drawn
        .set([list, editor, variables, examples, preview, output]);

    render_list(app, frame, list, focused(Pane::Templates));
    match &wb.doc {
        Some(doc) => {
            render_editor(app, doc, frame, editor, focused(Pane::Editor));
            render_variables(app, doc, frame, variables, focused(Pane::Variables));
            render_examples(app, doc, frame, examples, focused(Pane::Examples));
        }
        None => {
            let hint = format!(
                "Pick a template ({} opens it, {} searches, {} starts a new one). {} moves between panes; {} shows every key.",
                app.keymap.key_hint(Action::Pick),
                app.keymap.key_hint(Action::Search),
                app.keymap.key_hint(Action::NewTemplate),
                app.keymap.key_hint(Action::FocusNext),
                app.keymap.key_hint(Action::Help),
            );
            let block = titled(theme, Pane::Editor.title(), focused(Pane::Editor));
            frame.render_widget(
                Paragraph::new(Line::styled(hint, theme.style(Slot::Muted)))
                    .wrap(Wrap { trim: false })
                    .block(block),
                editor,
            );
            for (pane_kind, rect) in [(Pane::Variables, variables), (Pane::Examples, examples)] {
                frame.render_widget(titled(theme, pane_kind.title(), focused(pane_kind)), rect);
            }
        }
    }
    render_preview(app, frame, preview, focused(Pane::Preview));
    render_output(app, frame, output, focused(Pane::Output));

    match &wb.overlay {
        Some(WbOverlay::Example(form)) => render_example_form(app, form, frame, area),
        Some(WbOverlay::Line(prompt)) => render_line_prompt(app, prompt, frame, area),
        Some(WbOverlay::History(list)) => render_history(app, list, frame, area),
        Some(WbOverlay::Confirm(next)) => {
            let name = wb.doc.as_ref().map_or("", |d| d.name());
            let inner = popup(app, frame, area, 84, 7, "Unsaved changes");
            let lines = vec![
                Line::styled(
                    format!("Template {name} has unsaved changes."),
                    theme.style(Slot::Text),
                ),
                Line::raw(""),
                key_line(theme, "s", &format!("save them, then {}", next.describe())),
                key_line(
                    theme,
                    "d",
                    &format!("discard them, then {}", next.describe()),
                ),
                key_line(theme, "Esc", "keep editing"),
            ];
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        }
        None => {}
    }
}

fn titled(theme: &Theme, title: &str, focused: bool) -> ratatui::widgets::Block<'static> {
    pane(theme, focused).title(Span::styled(
        format!(" {} ", sanitize(title)),
        theme.style(Slot::Title),
    ))
}

fn key_line(theme: &Theme, key: &str, what: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{key:>4}  "), theme.style(Slot::HelpKey)),
        Span::styled(what.to_string(), theme.style(Slot::Text)),
    ])
}

/// A text area drawn with the theme; the cursor only where the keys go.
fn styled_area(theme: &Theme, area: &TextArea<'static>, focused: bool) -> TextArea<'static> {
    let mut area = area.clone();
    area.set_style(theme.style(Slot::Text));
    area.set_cursor_line_style(Style::default());
    area.set_search_style(theme.style(Slot::Variable));
    area.set_placeholder_style(theme.style(Slot::Muted));
    area.set_selection_style(theme.style(Slot::Selection));
    if !focused {
        area.set_cursor_style(theme.style(Slot::Text));
    }
    area
}

fn render_list(app: &App, frame: &mut Frame, area: Rect, focused: bool) {
    let theme = &app.theme;
    let wb = &app.wb;
    let block = titled(theme, Pane::Templates.title(), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let [search, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    if wb.searching {
        let mut area = styled_area(theme, &wb.search, focused);
        area.set_search_pattern("").ok();
        frame.render_widget(&area, search);
    } else {
        let query = wb.search_text();
        let line = if query.is_empty() {
            Line::styled(
                format!("{} search", app.keymap.key_hint(Action::Search)),
                theme.style(Slot::Muted),
            )
        } else {
            Line::styled(format!("/{}", sanitize(&query)), theme.style(Slot::Text))
        };
        frame.render_widget(Paragraph::new(line), search);
    }
    let visible = wb.visible();
    if visible.is_empty() {
        let text = if wb.entries.is_empty() {
            "reading…"
        } else {
            "no name matches"
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, theme.style(Slot::Muted))),
            list,
        );
        return;
    }
    let open = wb.doc.as_ref().map(TemplateDoc::name);
    let range = window(wb.list_selected, visible.len(), usize::from(list.height));
    let lines: Vec<Line> = range
        .clone()
        .map(|i| {
            let entry = visible[i];
            let marker = if Some(entry.name.as_str()) == open {
                "▸ "
            } else {
                "  "
            };
            let mut spans = vec![
                Span::raw(marker),
                Span::styled(sanitize(&entry.name), theme.style(Slot::Text)),
            ];
            if let Source::User(_) = entry.source {
                spans.push(Span::styled(" (yours)", theme.style(Slot::Muted)));
            }
            let line = Line::from(spans);
            if i == wb.list_selected {
                line.patch_style(theme.style(Slot::Selection))
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
}

fn render_editor(app: &App, doc: &TemplateDoc, frame: &mut Frame, area: Rect, focused: bool) {
    let theme = &app.theme;
    let origin = match &doc.origin {
        Origin::Shipped => "shipped; saving makes your copy",
        Origin::User(_) => "yours",
        Origin::New => "new",
    };
    let mut title = vec![Span::styled(
        format!(" {} · {origin} ", sanitize(doc.name())),
        theme.style(Slot::Title),
    )];
    if doc.is_dirty() {
        title.push(Span::styled("● unsaved ", theme.style(Slot::StatusWarning)));
    }
    let block = pane(theme, focused).title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 3 {
        return;
    }
    let [tabs, text, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let mut spans = Vec::new();
    for field in TextField::ALL {
        let label = format!(" {} ", field.label());
        spans.push(if field == doc.field {
            Span::styled(
                label,
                theme
                    .style(Slot::BorderFocused)
                    .add_modifier(Modifier::REVERSED),
            )
        } else {
            Span::styled(label, theme.style(Slot::Muted))
        });
    }
    spans.push(Span::styled(
        format!(" {} next", app.keymap.key_hint(Action::NextText)),
        theme.style(Slot::Muted),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), tabs);

    let mut editor = styled_area(theme, doc.editor(), focused);
    editor.set_placeholder_text(match doc.field {
        TextField::Prompt => "the user message; {{name}} makes a variable",
        TextField::System => "an optional system prompt",
        TextField::Sampling => "temperature = 0.3\nmax_tokens = 200",
        TextField::Feedback => "feedback prompt for refinement rounds: {{task}}, {{answer}}",
        TextField::Refine => "refine prompt: {{task}}, {{answer}}, {{feedback}}",
    });
    frame.render_widget(&editor, text);

    let problems = doc.problems();
    let footer_line = match problems.first() {
        Some(problem) => {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            };
            Line::styled(
                format!("✗ {}{more}", sanitize(&problem.to_string())),
                theme.style(Slot::StatusError),
            )
        }
        None => {
            let cursor = doc.editor().cursor();
            Line::styled(
                format!(
                    "Ln {}, Col {} · {} run · {} save",
                    cursor.0 + 1,
                    cursor.1 + 1,
                    app.keymap.key_hint(Action::Run),
                    app.keymap.key_hint(Action::Save)
                ),
                theme.style(Slot::Muted),
            )
        }
    };
    frame.render_widget(Paragraph::new(footer_line), footer);
}

fn render_variables(app: &App, doc: &TemplateDoc, frame: &mut Frame, area: Rect, focused: bool) {
    let theme = &app.theme;
    let block = titled(theme, Pane::Variables.title(), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if doc.vars.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "no {{variables}} in the prompt",
                theme.style(Slot::Muted),
            ))
            .wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    // Each variable: a label row and up to 4 rows of value; from the
    // selected one back as far as fits, so the selection is on screen.
    let value_width = inner.width.saturating_sub(1).max(1);
    let heights: Vec<u16> = doc
        .vars
        .iter()
        .map(|v| {
            let rows = Paragraph::new(v.value.lines().join("\n"))
                .wrap(Wrap { trim: false })
                .line_count(value_width);
            1 + (rows as u16).clamp(1, 4)
        })
        .collect();
    let mut first = doc.var_selected.min(doc.vars.len() - 1);
    let mut used = heights[first];
    while first > 0 && used + heights[first - 1] <= inner.height {
        first -= 1;
        used += heights[first];
    }
    let mut y = inner.y;
    for (index, var) in doc.vars.iter().enumerate().skip(first) {
        let height = heights[index];
        if y >= inner.bottom() {
            break;
        }
        let selected = index == doc.var_selected;
        let mut label = vec![Span::styled(
            format!("{{{{{}}}}}", var.name),
            theme
                .style(Slot::Variable)
                .add_modifier(if selected && focused {
                    Modifier::BOLD
                } else {
                    Modifier::empty()
                }),
        )];
        let empty = var.value.is_empty();
        let note = match (&var.default, empty) {
            (Some(default), true) => format!(" default: {}", first_line(default)),
            (None, true) => " needs a value".to_string(),
            _ => var
                .description
                .as_deref()
                .map(|d| format!(" {}", first_line(d)))
                .unwrap_or_default(),
        };
        let note_slot = if empty && var.default.is_none() {
            Slot::StatusError
        } else {
            Slot::Muted
        };
        label.push(Span::styled(sanitize(&note), theme.style(note_slot)));
        let label_rect = Rect::new(inner.x, y, inner.width, 1);
        frame.render_widget(Paragraph::new(Line::from(label)), label_rect);
        let value_height = (height - 1).min(inner.bottom().saturating_sub(y + 1));
        if value_height > 0 {
            let value_rect = Rect::new(
                inner.x + 1,
                y + 1,
                inner.width.saturating_sub(1),
                value_height,
            );
            let value = styled_area(theme, &var.value, focused && selected);
            frame.render_widget(&value, value_rect);
        }
        y = y.saturating_add(height);
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if text.lines().nth(1).is_some() {
        format!("{line}…")
    } else {
        line.to_string()
    }
}

fn render_examples(app: &App, doc: &TemplateDoc, frame: &mut Frame, area: Rect, focused: bool) {
    let theme = &app.theme;
    let enabled = doc.examples.iter().filter(|e| e.enabled).count();
    let title = format!(
        "{} · {enabled}/{} on",
        Pane::Examples.title(),
        doc.examples.len()
    );
    let block = titled(theme, &title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let keys = &app.keymap;
    let hint_rows = if focused { 1 } else { 0 };
    let [list, hint] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(hint_rows)]).areas(inner);
    if doc.examples.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(
                    "no examples; {} adds one",
                    keys.key_hint(Action::ExampleAdd)
                ),
                theme.style(Slot::Muted),
            ))
            .wrap(Wrap { trim: false }),
            list,
        );
    } else {
        let range = window(
            doc.example_selected,
            doc.examples.len(),
            usize::from(list.height),
        );
        let lines: Vec<Line> = range
            .map(|i| {
                let example = &doc.examples[i];
                let input = match (&example.vars, &example.input) {
                    (Some(vars), _) => vars
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.replace('\n', " ")))
                        .collect::<Vec<_>>()
                        .join(" "),
                    (None, Some(input)) => input.replace('\n', " "),
                    (None, None) => String::new(),
                };
                let text = format!(
                    "{}. {} → {}",
                    i + 1,
                    input,
                    example.output.replace('\n', " ")
                );
                let slot = if example.enabled {
                    Slot::Text
                } else {
                    Slot::Muted
                };
                let line = Line::from(vec![
                    Span::styled(
                        if example.enabled { "[x] " } else { "[ ] " },
                        theme.style(Slot::Variable),
                    ),
                    Span::styled(sanitize(&text), theme.style(slot)),
                ]);
                if i == doc.example_selected && focused {
                    line.patch_style(theme.style(Slot::Selection))
                } else {
                    line
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), list);
    }
    if focused {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(
                    "{} add · {} edit · {} copy · {} del · {} on/off · {}/{} move",
                    keys.key_hint(Action::ExampleAdd),
                    keys.key_hint(Action::ExampleEdit),
                    keys.key_hint(Action::ExampleDuplicate),
                    keys.key_hint(Action::ExampleDelete),
                    keys.key_hint(Action::ExampleToggle),
                    keys.key_hint(Action::ExampleMoveUp),
                    keys.key_hint(Action::ExampleMoveDown),
                ),
                theme.style(Slot::Muted),
            )),
            hint,
        );
    }
}

fn render_preview(app: &App, frame: &mut Frame, area: Rect, focused: bool) {
    let theme = &app.theme;
    let preview = &app.wb.preview;
    let max_tokens = app
        .wb
        .doc
        .as_ref()
        .and_then(|d| d.to_template().ok())
        .map_or(crate::tui::run_settings::DEFAULT_MAX_TOKENS, |t| {
            t.sampling
                .max_tokens
                .unwrap_or(crate::tui::run_settings::DEFAULT_MAX_TOKENS)
        });
    let (count, count_slot) = match (&preview.exact, &preview.rendered) {
        (Some((_, tokens)), _) if app.n_ctx > 0 => {
            let slot = if tokens + max_tokens > app.n_ctx {
                Slot::StatusError
            } else {
                Slot::Muted
            };
            (
                format!(
                    " {tokens} / {} tokens (+{max_tokens} to generate) ",
                    app.n_ctx
                ),
                slot,
            )
        }
        (Some((_, tokens)), _) => (format!(" {tokens} tokens "), Slot::Muted),
        (None, Some(Ok(_))) if app.engine_is_up() => (" counting… ".to_string(), Slot::Muted),
        (None, Some(Ok(_))) => (" tokens when the model is loaded ".to_string(), Slot::Muted),
        _ => (String::new(), Slot::Muted),
    };
    let mut title = vec![Span::styled(
        format!(" {} ", Pane::Preview.title()),
        theme.style(Slot::Title),
    )];
    if !count.is_empty() {
        title.push(Span::styled("·", theme.style(Slot::Title)));
        title.push(Span::styled(count, theme.style(count_slot)));
    }
    let block = pane(theme, focused).title(Line::from(title));
    let text: Text = match (&preview.exact, &preview.rendered) {
        (_, Some(Err(problem))) => Text::styled(sanitize(problem), theme.style(Slot::StatusError)),
        (Some((exact, _)), _) => Text::styled(sanitize(exact), theme.style(Slot::Text)),
        (None, Some(Ok(messages))) => {
            // Until the engine answers: the messages, labelled by role.
            let mut lines = Vec::new();
            if let Some(error) = &preview.exact_error {
                lines.push(Line::styled(
                    format!("the engine could not format it: {}", sanitize(error)),
                    theme.style(Slot::StatusError),
                ));
            }
            for message in messages {
                let slot = match message.role {
                    Role::System => Slot::SystemMessage,
                    Role::User => Slot::UserMessage,
                    Role::Assistant => Slot::AssistantMessage,
                };
                lines.push(Line::styled(
                    format!("[{}]", message.role.as_str()),
                    theme.style(slot),
                ));
                for line in message.content.split('\n') {
                    lines.push(Line::styled(sanitize(line), theme.style(Slot::Muted)));
                }
            }
            Text::from(lines)
        }
        _ => Text::styled("", theme.style(Slot::Muted)),
    };
    let paragraph = Paragraph::new(text).wrap(Wrap { trim: false });
    let inner = block.inner(area);
    let max = (paragraph.line_count(inner.width) as u16).saturating_sub(inner.height);
    set_scroll_limit(app, 0, max);
    let scroll = preview.scroll.min(max);
    frame.render_widget(paragraph.scroll((scroll, 0)).block(block), area);
}

fn render_output(app: &App, frame: &mut Frame, area: Rect, focused: bool) {
    let theme = &app.theme;
    let Some(run) = &app.wb.run else {
        let hint = format!(
            "{} runs the template; its output streams here and is kept in the history ({}).",
            app.keymap.key_hint(Action::Run),
            app.keymap.key_hint(Action::History)
        );
        frame.render_widget(
            Paragraph::new(Line::styled(hint, theme.style(Slot::Muted)))
                .wrap(Wrap { trim: false })
                .block(titled(theme, Pane::Output.title(), focused)),
            area,
        );
        return;
    };
    let (state, slot) = run_state(run);
    let block = pane(theme, focused).title(Line::from(vec![
        Span::styled(
            format!(" {} ·", Pane::Output.title()),
            theme.style(Slot::Title),
        ),
        Span::styled(format!(" {state} "), theme.style(slot)),
    ]));
    let inner = block.inner(area);
    if let Some(lens) = run.lens.as_ref().filter(|_| focused) {
        frame.render_widget(block, area);
        let hints = format!(
            "←/→ token · ↑/↓ choose · Enter forks a new run · {} closes",
            app.keymap.key_hint_in(Context::WorkbenchList, Action::Lens)
        );
        crate::tui::lens::render(
            frame,
            inner,
            theme,
            run.record.tokens.as_deref(),
            lens,
            &hints,
        );
        return;
    }
    let text = match &run.record.beam_search {
        Some(search) => beams_text(app, run, search),
        None => Text::styled(
            sanitize(&run.record.output),
            theme.style(Slot::AssistantMessage),
        ),
    };
    let paragraph = Paragraph::new(text).wrap(Wrap { trim: false });

    // While it streams, the newest lines stay in view.
    let max = (paragraph.line_count(inner.width) as u16).saturating_sub(inner.height);
    set_scroll_limit(app, 1, max);
    let scroll = if run.is_streaming() {
        max
    } else {
        run.scroll.min(max)
    };
    frame.render_widget(paragraph.scroll((scroll, 0)).block(block), area);
}

/// A beam-search run: each returned sequence under a line with its rank,
/// score and length, the chosen one marked, and how to use it.
fn beams_text(app: &App, run: &WorkbenchRun, search: &BeamSearchRun) -> Text<'static> {
    let theme = &app.theme;
    let mut lines = Vec::new();
    if search.beams.is_empty() {
        let what = if run.is_streaming() {
            format!(
                "beam search with {} beams… (the sequences appear when it ends)",
                search.settings.num_beams
            )
        } else {
            "the beam search returned nothing".to_string()
        };
        lines.push(Line::styled(what, theme.style(Slot::Muted)));
        return Text::from(lines);
    }
    if search.beams.len() > 1 {
        lines.push(Line::styled(
            format!(
                "← → choose a sequence; {} sends it to the chat as the reply, {} refines it",
                app.keymap.key_hint(Action::SendToChat),
                app.keymap.key_hint(Action::Refine)
            ),
            theme.style(Slot::Muted),
        ));
    }
    for (rank, beam) in search.beams.iter().enumerate() {
        let chosen = rank == run.beam_selected;
        let header = format!(
            "{} {}. score {:.4} · log-probability {:.3} · {} tokens{}",
            if chosen { "▶" } else { " " },
            rank + 1,
            beam.score,
            beam.logprob,
            beam.tokens.len(),
            if beam.eos {
                ""
            } else {
                " · cut at the token limit"
            }
        );
        let slot = if chosen { Slot::Title } else { Slot::Muted };
        lines.push(Line::styled(header, theme.style(slot)));
        for line in sanitize(&beam.text).lines() {
            lines.push(Line::styled(
                line.to_string(),
                theme.style(Slot::AssistantMessage),
            ));
        }
        lines.push(Line::default());
    }
    Text::from(lines)
}

fn set_scroll_limit(app: &App, index: usize, max: u16) {
    let mut limits = app.wb.scroll_limits.get();
    limits[index] = max;
    app.wb.scroll_limits.set(limits);
}

fn run_state(run: &WorkbenchRun) -> (String, Slot) {
    let record = &run.record;
    let beam_figures = record.beam_search.as_ref().and_then(|search| {
        search.stats.as_ref().map(|s| {
            format!(
                " · {} beams × {} steps · {:.1} tok/s over all beams",
                search.settings.num_beams,
                s.steps,
                s.tokens_per_sec()
            )
        })
    });
    let figures = record
        .stats
        .as_ref()
        .map(|s| {
            format!(
                " · {} tok · {:.1} tok/s",
                s.generated_tokens,
                s.generation_tokens_per_sec()
            )
        })
        .or(beam_figures)
        .unwrap_or_default();
    let id = if record.id.is_empty() {
        String::new()
    } else {
        format!(" · {}", record.id)
    };
    let reopened = if run.reopened { " · reopened" } else { "" };
    match &record.outcome {
        RunOutcome::Running => ("streaming…".into(), Slot::StatusBusy),
        RunOutcome::Done { reason } => (
            format!("{}{figures}{reopened}{id}", reason.describe()),
            Slot::StatusOk,
        ),
        RunOutcome::Failed { message } => (
            format!("failed: {}{id}", sanitize(message)),
            Slot::StatusError,
        ),
    }
}

fn render_example_form(app: &App, form: &ExampleForm, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let title = match form.index {
        Some(i) => format!("Example {}", i + 1),
        None => "New example".to_string(),
    };
    let rows_per_field: Vec<u16> = form
        .fields
        .iter()
        .map(|f| match f.role {
            super::example_form::FieldRole::Output => 6,
            _ => 4,
        })
        .collect();
    let height = rows_per_field.iter().sum::<u16>() + 4;
    let inner = popup(app, frame, area, 80, height, &title);
    let mut constraints: Vec<Constraint> = rows_per_field
        .iter()
        .map(|&h| Constraint::Length(h))
        .collect();
    constraints.push(Constraint::Min(2));
    let rows = Layout::vertical(constraints).split(inner);
    for (index, field) in form.fields.iter().enumerate() {
        let focused = index == form.focused;
        let mut text = styled_area(theme, &field.area, focused);
        text.set_search_pattern("").ok();
        text.set_block(pane(theme, focused).title(Span::styled(
            format!(" {} ", sanitize(&field.label())),
            theme.style(Slot::Variable),
        )));
        frame.render_widget(&text, rows[index]);
    }
    let keys = &app.keymap;
    let mut lines = Vec::new();
    if let Some(error) = &form.error {
        lines.push(Line::styled(
            sanitize(error),
            theme.style(Slot::StatusError),
        ));
    }
    lines.push(Line::styled(
        format!(
            "{} keep · {} cancel · {} next field · {} new line",
            keys.key_hint_in(Context::WorkbenchForm, Action::Apply),
            keys.key_hint_in(Context::WorkbenchForm, Action::Close),
            keys.key_hint_in(Context::WorkbenchForm, Action::FieldNext),
            keys.key_hint_in(Context::WorkbenchForm, Action::Newline),
        ),
        theme.style(Slot::Muted),
    ));
    if let Some(last) = rows.last() {
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), *last);
    }
}

fn render_line_prompt(app: &App, prompt: &LinePrompt, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let inner = popup(app, frame, area, 70, 5, &prompt.title());
    let [field, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    let mut text = styled_area(theme, &prompt.area, true);
    text.set_search_pattern("").ok();
    frame.render_widget(&text, field);
    let line = match &prompt.error {
        Some(error) => Line::styled(sanitize(error), theme.style(Slot::StatusError)),
        None => Line::styled("Enter accepts · Esc cancels", theme.style(Slot::Muted)),
    };
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), footer);
}

fn render_history(app: &App, list: &HistoryList, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let height = (list.runs.len() as u16).saturating_add(4).clamp(6, 24);
    let inner = popup(app, frame, area, 96, height, "Runs · newest first");
    let [rows, footer] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    if !list.loaded || list.runs.is_empty() {
        let text = if list.loaded {
            "no runs yet"
        } else {
            "reading…"
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, theme.style(Slot::Muted))),
            rows,
        );
    } else {
        let lines = run_lines(theme, &list.runs, list.selected, rows.height);
        frame.render_widget(Paragraph::new(lines), rows);
    }
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!(
                "{} reopens the run (its template version, values and output) · {} closes",
                app.keymap.key_hint(Action::Pick),
                app.keymap.key_hint(Action::Close)
            ),
            theme.style(Slot::Muted),
        )),
        footer,
    );
}
