//! The workbench's part of the app's pure `update`: its keys, and the
//! answers to the IO it asks the driver for (template lists, saves, value
//! files, the engine's exact input, run records).

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::doc::{Origin, TemplateDoc};
use super::example_form::ExampleForm;
use super::{
    AfterConfirm, HistoryList, LinePrompt, LinePurpose, Pane, WbOverlay, Workbench, WorkbenchRun,
};
use crate::engine::probs::TokenProbs;
use crate::engine::protocol::{Beam, BeamStats, ChatMessage, GenerationStats, Role, StopReason};
use crate::engine::SamplingParams;
use crate::prompt::template::is_template_name;
use crate::prompt::{Source, Template, TemplateEntry};
use crate::store::runs::{
    BeamSearchRun, ForkedFrom, RunOutcome, RunRecord, RunSummary, RUN_FORMAT_VERSION,
};
use crate::store::tokens::{keep_piece, KeptAlternative};
use crate::tui::app::{engine_ready, App, Effect};
use crate::tui::keymap::Action;
use crate::tui::lens::{self, Lens, LensKey};
use crate::tui::run_settings::run_settings;
use crate::tui::sanitize::sanitize;

/// Keys while the workbench has the screen (and no app popup is open).
pub fn on_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    if action != Some(Action::ExampleDelete) {
        app.wb.delete_armed = false;
    }
    if app.wb.overlay.is_some() {
        return on_overlay_key(app, action, key);
    }
    let lens_open = app.wb.run.as_ref().is_some_and(|r| r.lens.is_some());
    if lens_open && app.wb.focus == Pane::Output {
        if let Some(effects) = lens_key(app, action, key) {
            return effects;
        }
    }
    // Keys every pane shares.
    match action {
        Some(Action::Stop) => return stop(app),
        Some(Action::FocusNext) => return focus(app, app.wb.focus.step(true)),
        Some(Action::FocusPrev) => return focus(app, app.wb.focus.step(false)),
        Some(Action::Run) => return run(app),
        Some(Action::Save) => return save(app, None),
        Some(Action::SaveAs) => {
            if let Some(doc) = &app.wb.doc {
                let name = doc.name().to_string();
                app.wb.overlay = Some(WbOverlay::Line(Box::new(LinePrompt::new(
                    LinePurpose::SaveAs,
                    &name,
                ))));
            }
            return Vec::new();
        }
        Some(Action::SendToChat) => return send_to_chat(app),
        Some(Action::MakeExperiment) => {
            if template_to_save(app).is_some() {
                app.wb.overlay = Some(WbOverlay::Line(Box::new(LinePrompt::new(
                    LinePurpose::ExperimentDataset,
                    "",
                ))));
            }
            return Vec::new();
        }
        Some(Action::History) => {
            app.wb.overlay = Some(WbOverlay::History(HistoryList {
                runs: Vec::new(),
                selected: 0,
                loaded: false,
            }));
            return vec![Effect::ListRuns];
        }
        Some(Action::NextText) => {
            if let Some(doc) = &mut app.wb.doc {
                doc.field = doc.field.next();
                app.wb.focus = Pane::Editor;
            }
            return Vec::new();
        }
        Some(Action::Suspend) => return vec![Effect::Suspend],
        Some(Action::RestartEngine) => return crate::tui::app::restart(app),
        _ => {}
    }
    let effects = match app.wb.focus {
        Pane::Templates => templates_key(app, action, key),
        Pane::Editor => editor_key(app, action, key),
        Pane::Variables => variables_key(app, action, key),
        Pane::Examples => examples_key(app, action),
        Pane::Preview => {
            let max = app.wb.scroll_limits.get()[0];
            scroll_key(&mut app.wb.preview.scroll, max, action, key);
            Vec::new()
        }
        Pane::Output => {
            if action == Some(Action::Lens) {
                return open_lens(app);
            }
            let max = app.wb.scroll_limits.get()[1];
            if let Some(run) = &mut app.wb.run {
                if !choose_beam(run, key) {
                    scroll_key(&mut run.scroll, max, action, key);
                }
            }
            Vec::new()
        }
    };
    with_refresh(app, effects)
}

/// ← → (or [ ]) choose among a beam-search run's sequences; true when the
/// key did.
fn choose_beam(run: &mut WorkbenchRun, key: KeyEvent) -> bool {
    let count = run.beams().len();
    if count < 2 || !key.modifiers.difference(KeyModifiers::SHIFT).is_empty() {
        return false;
    }
    let selected = run.beam_selected.min(count - 1);
    run.beam_selected = match key.code {
        KeyCode::Left | KeyCode::Char('[') => selected.saturating_sub(1),
        KeyCode::Right | KeyCode::Char(']') => (selected + 1).min(count - 1),
        _ => return false,
    };
    true
}

/// Pasted text goes to the focused text field.
pub fn on_paste(app: &mut App, text: String) -> Vec<Effect> {
    let wb = &mut app.wb;
    match &mut wb.overlay {
        Some(WbOverlay::Example(form)) => {
            form.focused_area().insert_str(text);
            return Vec::new();
        }
        Some(WbOverlay::Line(prompt)) => {
            prompt.area.insert_str(text.replace('\n', " "));
            return Vec::new();
        }
        Some(_) => return Vec::new(),
        None => {}
    }
    match (wb.focus, &mut wb.doc) {
        (Pane::Templates, _) => {
            wb.searching = true;
            wb.search.insert_str(text.replace('\n', " "));
            wb.list_selected = 0;
        }
        (Pane::Variables, Some(doc)) => {
            if let Some(var) = doc.vars.get_mut(doc.var_selected) {
                var.value.insert_str(text);
            }
        }
        (_, Some(doc)) => {
            wb.focus = Pane::Editor;
            doc.editor_mut().insert_str(text);
        }
        (_, None) => {}
    }
    refresh(app)
}

/// A click focuses the pane under it; the wheel scrolls the preview or the
/// output under it.
pub fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Effect> {
    if app.wb.overlay.is_some() {
        return Vec::new();
    }
    let Some(pane) = app.wb.pane_at(Position::new(mouse.column, mouse.row)) else {
        return Vec::new();
    };
    let lines = match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => return focus(app, pane),
        MouseEventKind::ScrollUp => -3,
        MouseEventKind::ScrollDown => 3,
        _ => return Vec::new(),
    };
    let limits = app.wb.scroll_limits.get();
    let (scroll, max) = match pane {
        Pane::Preview => (&mut app.wb.preview.scroll, limits[0]),
        Pane::Output => match &mut app.wb.run {
            Some(run) => (&mut run.scroll, limits[1]),
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    *scroll = scrolled(*scroll, lines, max);
    Vec::new()
}

fn focus(app: &mut App, pane: Pane) -> Vec<Effect> {
    app.wb.focus = pane;
    app.wb.searching = false;
    Vec::new()
}

fn stop(app: &mut App) -> Vec<Effect> {
    if let Some(id) = app.wb.run.as_ref().and_then(|r| r.generation) {
        if app.wb.is_running() {
            return vec![Effect::Cancel { id }];
        }
    }
    if app.wb.searching {
        app.wb.searching = false;
    }
    Vec::new()
}

/// Scrolls a read-only pane, never past the last page (`max`, as drawn).
fn scroll_key(scroll: &mut u16, max: u16, action: Option<Action>, key: KeyEvent) {
    let lines: i32 = match (action, key.code) {
        (Some(Action::SelectPrev), _) => -1,
        (Some(Action::SelectNext), _) => 1,
        (Some(Action::PageUp), _) => -10,
        (Some(Action::PageDown), _) => 10,
        (_, KeyCode::Home) => i32::MIN / 2,
        (_, KeyCode::End) => i32::MAX / 2,
        _ => return,
    };
    *scroll = scrolled(*scroll, lines, max);
}

fn scrolled(scroll: u16, lines: i32, max: u16) -> u16 {
    let target = i32::from(scroll.min(max)).saturating_add(lines);
    u16::try_from(target.clamp(0, i32::from(max))).unwrap_or(max)
}

// --- the template list -----------------------------------------------------

fn templates_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let wb = &mut app.wb;
    if wb.searching {
        match key.code {
            // Enter opens the best match at once; Down goes to the list.
            KeyCode::Enter => {
                wb.searching = false;
                if let Some(entry) = wb.selected_entry() {
                    let name = entry.name.clone();
                    return ask_then(app, AfterConfirm::OpenTemplate(name));
                }
            }
            KeyCode::Down => wb.searching = false,
            _ => {
                wb.search.input(key);
                wb.list_selected = 0;
            }
        }
        return Vec::new();
    }
    let count = wb.visible().len();
    match action {
        Some(Action::SelectPrev) => wb.list_selected = wb.list_selected.saturating_sub(1),
        Some(Action::SelectNext) => {
            wb.list_selected = (wb.list_selected + 1).min(count.saturating_sub(1))
        }
        Some(Action::Search) => wb.searching = true,
        Some(Action::NewTemplate) => {
            wb.overlay = Some(WbOverlay::Line(Box::new(LinePrompt::new(
                LinePurpose::NewTemplate,
                "",
            ))))
        }
        Some(Action::Pick) => {
            if let Some(entry) = wb.selected_entry() {
                let name = entry.name.clone();
                return ask_then(app, AfterConfirm::OpenTemplate(name));
            }
        }
        _ => {}
    }
    Vec::new()
}

/// Goes ahead with `next`, or first asks what to do with unsaved changes.
fn ask_then(app: &mut App, next: AfterConfirm) -> Vec<Effect> {
    let same_template = matches!(&next, AfterConfirm::OpenTemplate(name)
        if app.wb.doc.as_ref().is_some_and(|d| d.name() == name));
    if same_template {
        app.wb.focus = Pane::Editor;
        return Vec::new();
    }
    if app.wb.is_dirty() {
        app.wb.overlay = Some(WbOverlay::Confirm(next));
        return Vec::new();
    }
    go_ahead(app, next)
}

fn go_ahead(app: &mut App, next: AfterConfirm) -> Vec<Effect> {
    match next {
        AfterConfirm::OpenTemplate(name) => {
            let effects = open_template(app, &name);
            with_refresh(app, effects)
        }
        AfterConfirm::NewTemplate(name) => {
            app.wb.doc = Some(TemplateDoc::new_named(&name));
            app.wb.focus = Pane::Editor;
            app.info(format!(
                "new template {name}: write its prompt; {{{{name}}}} makes a variable"
            ));
            refresh(app)
        }
        AfterConfirm::OpenRun(id) => vec![Effect::OpenRun(id)],
        AfterConfirm::Quit if app.chat.unsaved.is_some() => {
            // The chat's turns are not on disk either: that question next.
            app.overlay = Some(crate::tui::app::Overlay::QuitUnsaved);
            Vec::new()
        }
        AfterConfirm::Quit => {
            app.should_quit = true;
            vec![Effect::Quit]
        }
    }
}

fn origin_of(entry: &TemplateEntry) -> Origin {
    match &entry.source {
        Source::Shipped => Origin::Shipped,
        Source::User(path) => Origin::User(path.clone()),
    }
}

fn open_template(app: &mut App, name: &str) -> Vec<Effect> {
    let Some(entry) = app.wb.entries.iter().find(|e| e.name == name).cloned() else {
        app.error(format!("template {name} is gone; the list is read again"));
        return vec![Effect::ListTemplates];
    };
    match crate::prompt::load(&entry) {
        Ok(template) => {
            app.wb.doc = Some(TemplateDoc::open(template, origin_of(&entry)));
            app.wb.focus = Pane::Editor;
            app.info(format!("opened {}", entry.label()));
            Vec::new()
        }
        Err(problems) => {
            let first = problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            let more = match problems.len() {
                0 | 1 => String::new(),
                n => format!(" (+{} more; `whet templates check` lists them)", n - 1),
            };
            app.error(format!("{first}{more}"));
            Vec::new()
        }
    }
}

// --- the editor and the variables -------------------------------------------

fn editor_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(doc) = &mut app.wb.doc else {
        return Vec::new();
    };
    let area = doc.editor_mut();
    match action {
        Some(Action::Undo) => {
            area.undo();
        }
        Some(Action::Redo) => {
            area.redo();
        }
        Some(Action::Newline) => area.insert_newline(),
        // Ctrl+E is the chat's export, which means nothing here: the
        // editor keeps its end-of-line key.
        Some(Action::PageUp | Action::PageDown | Action::Export) | None => {
            area.input(key);
        }
        Some(_) => {}
    }
    Vec::new()
}

fn variables_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(doc) = &mut app.wb.doc else {
        return Vec::new();
    };
    let Some(var) = doc.vars.get_mut(doc.var_selected) else {
        return Vec::new();
    };
    let row = var.value.cursor().0;
    let last_row = var.value.lines().len().saturating_sub(1);
    match action {
        Some(Action::Undo) => {
            var.value.undo();
        }
        Some(Action::Redo) => {
            var.value.redo();
        }
        Some(Action::Newline) => var.value.insert_newline(),
        Some(Action::MakeDefault) => {
            if let Some(name) = doc.make_default() {
                let hint = app.keymap.key_hint(Action::Save);
                app.info(format!(
                    "{{{{{name}}}}}'s default is now this value; {hint} saves it"
                ));
            }
        }
        Some(Action::LoadFile) => {
            let var = var.name.clone();
            app.wb.overlay = Some(WbOverlay::Line(Box::new(LinePrompt::new(
                LinePurpose::LoadFile { var },
                "",
            ))));
        }
        Some(Action::Export) => {
            var.value.input(key);
        }
        Some(_) => {}
        None => match key.code {
            // Enter, or an arrow off the field's edge, moves between fields.
            KeyCode::Enter if key.modifiers.is_empty() => step_var(doc, 1),
            KeyCode::Up if row == 0 && key.modifiers.is_empty() => step_var(doc, -1),
            KeyCode::Down if row == last_row && key.modifiers.is_empty() => step_var(doc, 1),
            _ => {
                var.value.input(key);
            }
        },
    }
    Vec::new()
}

fn step_var(doc: &mut TemplateDoc, step: isize) {
    let last = doc.vars.len().saturating_sub(1);
    doc.var_selected = doc.var_selected.saturating_add_signed(step).min(last);
}

// --- the examples ------------------------------------------------------------

fn examples_key(app: &mut App, action: Option<Action>) -> Vec<Effect> {
    let Some(doc) = &mut app.wb.doc else {
        return Vec::new();
    };
    match action {
        Some(Action::SelectPrev) => doc.select_example(-1),
        Some(Action::SelectNext) => doc.select_example(1),
        Some(Action::ExampleAdd) => {
            app.wb.overlay = Some(WbOverlay::Example(Box::new(ExampleForm::new(doc))));
        }
        Some(Action::ExampleEdit) | Some(Action::Pick) => {
            if let Some(form) = ExampleForm::edit(doc, doc.example_selected) {
                app.wb.overlay = Some(WbOverlay::Example(Box::new(form)));
            }
        }
        Some(Action::ExampleDuplicate) => {
            doc.duplicate_example();
            if doc.selected_example().is_some() {
                let number = doc.example_selected + 1;
                app.info(format!("example duplicated as {number}"));
            }
        }
        Some(Action::ExampleToggle) => doc.toggle_example(),
        Some(Action::ExampleMoveUp) => doc.move_example(true),
        Some(Action::ExampleMoveDown) => doc.move_example(false),
        Some(Action::ExampleDelete) => {
            if doc.selected_example().is_none() {
                return Vec::new();
            }
            let number = doc.example_selected + 1;
            if !app.wb.delete_armed {
                app.wb.delete_armed = true;
                let hint = app.keymap.key_hint(Action::ExampleDelete);
                app.info(format!("press {hint} again to delete example {number}"));
                return Vec::new();
            }
            app.wb.delete_armed = false;
            doc.delete_example();
            app.info(format!(
                "example {number} deleted; the file keeps it until you save"
            ));
        }
        _ => {}
    }
    Vec::new()
}

// --- popups -------------------------------------------------------------------

fn on_overlay_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(overlay) = app.wb.overlay.take() else {
        return Vec::new();
    };
    match overlay {
        WbOverlay::Example(mut form) => {
            let effects = example_form_key(app, &mut form, action, key);
            if app.wb.overlay.is_none() && !form.closed {
                app.wb.overlay = Some(WbOverlay::Example(form));
            }
            with_refresh(app, effects)
        }
        WbOverlay::Line(mut prompt) => {
            line_key(app, &mut prompt, action, key).unwrap_or_else(|| {
                app.wb.overlay = Some(WbOverlay::Line(prompt));
                Vec::new()
            })
        }
        WbOverlay::History(mut list) => match action {
            Some(Action::Close) | Some(Action::Stop) => Vec::new(),
            Some(Action::SelectPrev) => {
                list.selected = list.selected.saturating_sub(1);
                app.wb.overlay = Some(WbOverlay::History(list));
                Vec::new()
            }
            Some(Action::SelectNext) => {
                list.selected = (list.selected + 1).min(list.runs.len().saturating_sub(1));
                app.wb.overlay = Some(WbOverlay::History(list));
                Vec::new()
            }
            Some(Action::Pick) => match list.runs.get(list.selected).cloned() {
                Some(RunSummary {
                    problem: Some(problem),
                    ..
                }) => {
                    app.error(problem);
                    app.wb.overlay = Some(WbOverlay::History(list));
                    Vec::new()
                }
                Some(summary) => {
                    if app.wb.is_running() {
                        app.info("wait for the run, or press Esc to stop it");
                        app.wb.overlay = Some(WbOverlay::History(list));
                        return Vec::new();
                    }
                    ask_then(app, AfterConfirm::OpenRun(summary.id))
                }
                None => {
                    app.wb.overlay = Some(WbOverlay::History(list));
                    Vec::new()
                }
            },
            _ => {
                app.wb.overlay = Some(WbOverlay::History(list));
                Vec::new()
            }
        },
        WbOverlay::Confirm(next) => match key.code {
            KeyCode::Char('s') | KeyCode::Char('S') => {
                let effects = save(app, Some(next.clone()));
                if effects.is_empty() {
                    // The save was refused; the question stays.
                    app.wb.overlay = Some(WbOverlay::Confirm(next));
                }
                effects
            }
            KeyCode::Char('d') | KeyCode::Char('D') => {
                if let Some(doc) = &app.wb.doc {
                    app.info(format!("changes to {} discarded", doc.name()));
                }
                app.wb.doc = None;
                go_ahead(app, next)
            }
            KeyCode::Esc | KeyCode::Char('c') | KeyCode::Char('C') => {
                app.info("nothing discarded; go on editing");
                Vec::new()
            }
            _ => {
                app.wb.overlay = Some(WbOverlay::Confirm(next));
                Vec::new()
            }
        },
    }
}

fn example_form_key(
    app: &mut App,
    form: &mut ExampleForm,
    action: Option<Action>,
    key: KeyEvent,
) -> Vec<Effect> {
    if action != Some(Action::Close) && action != Some(Action::Stop) {
        form.discard_armed = false;
    }
    match action {
        Some(Action::Close) | Some(Action::Stop) => {
            if form.is_changed() && !form.discard_armed {
                form.discard_armed = true;
                form.error = Some("press Esc again to throw these edits away".into());
            } else {
                form.closed = true;
            }
        }
        Some(Action::Apply) => match form.to_example() {
            Ok(example) => {
                let Some(doc) = &mut app.wb.doc else {
                    form.closed = true;
                    return Vec::new();
                };
                match form.index {
                    Some(index) => {
                        doc.replace_example(index, example);
                        app.info(format!("example {} updated", index + 1));
                    }
                    None => {
                        doc.insert_example(example);
                        let number = doc.example_selected + 1;
                        app.info(format!("example {number} added"));
                    }
                }
                form.closed = true;
            }
            Err(error) => form.error = Some(error),
        },
        Some(Action::FieldNext) => form.move_focus(true),
        Some(Action::FieldPrev) => form.move_focus(false),
        Some(Action::Undo) => {
            form.focused_area().undo();
        }
        Some(Action::Redo) => {
            form.focused_area().redo();
        }
        Some(Action::Newline) => form.focused_area().insert_newline(),
        _ => {
            if key.code == KeyCode::BackTab {
                form.move_focus(false);
            } else {
                form.focused_area().input(key);
            }
        }
    }
    Vec::new()
}

/// Keys of the one-line prompt; None keeps it open.
fn line_key(
    app: &mut App,
    prompt: &mut LinePrompt,
    action: Option<Action>,
    key: KeyEvent,
) -> Option<Vec<Effect>> {
    match action {
        Some(Action::Close) | Some(Action::Stop) => return Some(Vec::new()),
        Some(Action::Apply) => {}
        _ if key.code == KeyCode::Enter => {}
        _ => {
            if !matches!(key.code, KeyCode::Enter) && !key.modifiers.contains(KeyModifiers::ALT) {
                prompt.area.input(key);
                prompt.error = None;
            }
            return None;
        }
    }
    let text = prompt.text();
    if text.is_empty() {
        let what = match prompt.purpose {
            LinePurpose::LoadFile { .. } | LinePurpose::ExperimentDataset => "a path",
            _ => "a name",
        };
        prompt.error = Some(format!("type {what} first; Esc cancels"));
        return None;
    }
    match prompt.purpose.clone() {
        LinePurpose::LoadFile { var } => Some(vec![Effect::ReadValueFile {
            var,
            path: expand_home(&text),
        }]),
        LinePurpose::ExperimentDataset => {
            let edited = template_to_save(app)?;
            let doc = app.wb.doc.as_ref()?;
            let saved = (doc.origin != super::doc::Origin::New).then(|| doc.saved.clone());
            let edited = (saved.as_ref() != Some(&edited)).then_some(edited);
            Some(vec![Effect::MakeExperiment {
                saved: saved.map(Box::new),
                edited: edited.map(Box::new),
                dataset: expand_home(&text),
            }])
        }
        LinePurpose::NewTemplate | LinePurpose::SaveAs => {
            if !is_template_name(&text) {
                prompt.error = Some(format!(
                    "'{text}' cannot name a template (use letters, digits, '-' and '_')"
                ));
                return None;
            }
            // Save As may keep the open template's name (that is Save); a
            // new template may not take it.
            let current = app
                .wb
                .doc
                .as_ref()
                .filter(|_| prompt.purpose == LinePurpose::SaveAs)
                .map(|d| d.name().to_string());
            let taken = app
                .wb
                .entries
                .iter()
                .find(|e| e.name == text && Some(&e.name) != current.as_ref());
            if let Some(entry) = taken {
                prompt.error = Some(format!(
                    "{} already exists; choose another name",
                    entry.label()
                ));
                return None;
            }
            if prompt.purpose == LinePurpose::NewTemplate {
                return Some(ask_then(app, AfterConfirm::NewTemplate(text)));
            }
            Some(save_as(app, &text))
        }
    }
}

fn expand_home(text: &str) -> PathBuf {
    match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(text),
    }
}

// --- save, run, send to chat -------------------------------------------------------

/// Saves the open template; `then` goes ahead once it has landed.
fn save(app: &mut App, then: Option<AfterConfirm>) -> Vec<Effect> {
    let Some(template) = template_to_save(app) else {
        return Vec::new();
    };
    app.wb.after_save = then;
    vec![Effect::SaveTemplate(Box::new(template))]
}

/// Save As: the template under `name`; the open document becomes that file
/// once it has landed.
fn save_as(app: &mut App, name: &str) -> Vec<Effect> {
    let Some(mut template) = template_to_save(app) else {
        return Vec::new();
    };
    template.name = name.to_string();
    app.wb.after_save = None;
    vec![Effect::SaveTemplate(Box::new(template))]
}

/// The open template, or None with the reason on the status line.
fn template_to_save(app: &mut App) -> Option<Template> {
    let Some(doc) = &app.wb.doc else {
        app.info("no template is open");
        return None;
    };
    match doc.to_template() {
        Ok(template) => Some(template),
        Err(problems) => {
            let first = problems.first().map(ToString::to_string);
            app.error(format!("cannot save: {}", first.unwrap_or_default()));
            None
        }
    }
}

fn run(app: &mut App) -> Vec<Effect> {
    if app.wb.is_running() {
        app.info("a run is streaming; Esc stops it");
        return Vec::new();
    }
    let Some(doc) = &app.wb.doc else {
        app.info("open a template first (Enter in the list)");
        return Vec::new();
    };
    let messages = match doc.render() {
        Ok(messages) => messages,
        Err(why) => {
            app.error(format!("cannot run: {}", why.replace('\n', "; ")));
            return Vec::new();
        }
    };
    let Ok(template) = doc.to_template() else {
        return Vec::new();
    };
    let values = doc.values();
    let examples = doc.enabled_examples();
    let constraint = doc.constraint(&template);
    if !engine_ready(app) {
        return Vec::new();
    }
    let (sampling, max_tokens, stop) = run_settings(&template);
    let beams = template.sampling.beams();
    if beams.is_some() && max_tokens == 0 {
        app.error("a beam search needs a token limit: set max_tokens in [sampling]");
        return Vec::new();
    }
    let constraint = match constraint {
        Ok(constraint) => constraint,
        Err(why) => {
            app.error(format!("cannot run: {why}"));
            return Vec::new();
        }
    };
    if beams.is_some() && constraint.is_some() {
        app.error("cannot run: a grammar or JSON schema does not apply to beam search");
        return Vec::new();
    }
    let record = RunRecord {
        version: RUN_FORMAT_VERSION,
        id: String::new(),
        created_unix_ms: 0,
        template: template.name.clone(),
        template_toml: crate::prompt::to_toml(&template),
        values,
        examples,
        model: Some(app.model_path.clone()),
        sampling: sampling.clone(),
        max_tokens: Some(max_tokens),
        stop: stop.clone(),
        messages: messages.clone(),
        output: String::new(),
        outcome: RunOutcome::Running,
        stats: None,
        beam_search: beams.clone().map(|settings| BeamSearchRun {
            settings,
            beams: Vec::new(),
            stats: None,
        }),
        tokens: app.chat.settings.reply.probabilities.then(Vec::new),
        forked_from: None,
    };
    app.wb.run = Some(WorkbenchRun::new(record, false));
    app.wb.focus = Pane::Output;
    app.engine = crate::tui::app::EngineState::Generating;
    app.notice = None;
    if let Some(beams) = beams {
        return vec![Effect::RunBeams {
            messages,
            beams,
            max_tokens,
        }];
    }
    vec![Effect::RunTemplate {
        messages,
        sampling,
        max_tokens,
        stop,
        constraint,
    }]
}

fn send_to_chat(app: &mut App) -> Vec<Effect> {
    let Some(doc) = &app.wb.doc else {
        app.info("open a template first (Enter in the list)");
        return Vec::new();
    };
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    match doc.render() {
        Ok(mut messages) => {
            // From a beam-search run's list, the chosen sequence goes along
            // as the reply.
            if app.wb.focus == Pane::Output {
                if let Some(text) = app.wb.run.as_ref().and_then(WorkbenchRun::chosen_beam_text) {
                    messages.push(ChatMessage::new(Role::Assistant, text));
                }
            }
            // The chat goes on with the template's settings: its sampler,
            // and its length and stop strings for every reply.
            let mut sampling = SamplingParams::default();
            let mut reply = app.chat.settings.reply.clone();
            let mut constraint = Ok(None);
            if let Ok(template) = doc.to_template() {
                let (template_sampling, _, stop) = run_settings(&template);
                sampling = template_sampling;
                reply.stop = stop;
                // The chat's own limit unless the template sets one.
                reply.max_tokens = template.sampling.max_tokens.unwrap_or(reply.max_tokens);
                constraint = doc.constraint(&template);
            }
            // The template's grammar or schema binds every new reply.
            match constraint {
                Ok(constraint) => reply.constraint = constraint,
                Err(why) => {
                    app.error(format!("cannot send: {why}"));
                    return Vec::new();
                }
            }
            vec![Effect::StartChat {
                messages,
                sampling,
                reply,
            }]
        }
        Err(why) => {
            app.error(format!("cannot send: {}", why.replace('\n', "; ")));
            Vec::new()
        }
    }
}

// --- answers from the driver ------------------------------------------------------

/// Renders again; when the messages changed, asks the engine (through the
/// driver, which waits for typing to pause) for the exact input.
pub fn refresh(app: &mut App) -> Vec<Effect> {
    let Some(doc) = &mut app.wb.doc else {
        app.wb.preview = Default::default();
        return Vec::new();
    };
    doc.sync_vars();
    let rendered = doc.render();
    let preview = &mut app.wb.preview;
    if preview.rendered.as_ref() == Some(&rendered) {
        return Vec::new();
    }
    preview.revision += 1;
    preview.exact = None;
    preview.exact_error = None;
    preview.rendered = Some(rendered.clone());
    match rendered {
        Ok(messages) => vec![Effect::FormatPreview {
            revision: preview.revision,
            messages,
        }],
        Err(_) => Vec::new(),
    }
}

fn with_refresh(app: &mut App, mut effects: Vec<Effect>) -> Vec<Effect> {
    effects.extend(refresh(app));
    effects
}

/// The engine is (again) ready: the preview is asked for anew.
pub fn on_engine_ready(app: &mut App) -> Vec<Effect> {
    app.wb.preview.rendered = None;
    refresh(app)
}

pub fn on_templates(app: &mut App, entries: Vec<TemplateEntry>) -> Vec<Effect> {
    app.wb.entries = entries;
    let count = app.wb.visible().len();
    app.wb.list_selected = app.wb.list_selected.min(count.saturating_sub(1));
    Vec::new()
}

pub fn on_preview(app: &mut App, revision: u64, result: Result<(String, u32), String>) {
    let preview = &mut app.wb.preview;
    if revision != preview.revision {
        return;
    }
    match result {
        Ok(exact) => preview.exact = Some(exact),
        Err(error) => preview.exact_error = Some(error),
    }
}

pub fn on_value_loaded(app: &mut App, var: String, text: String) -> Vec<Effect> {
    let Some(doc) = &mut app.wb.doc else {
        return Vec::new();
    };
    if let Some(field) = doc.vars.iter_mut().find(|v| v.name == var) {
        field.value = super::doc::value_field(&text);
        app.info(format!(
            "{{{{{var}}}}} = the file's {} characters",
            text.chars().count()
        ));
    }
    refresh(app)
}

pub fn on_template_saved(app: &mut App, template: Template, path: PathBuf) -> Vec<Effect> {
    let then = app.wb.after_save.take();
    if let Some(doc) = &mut app.wb.doc {
        // After Save As the template has the new name: the open document
        // becomes the new file, its editors and values kept as they are.
        doc.mark_saved(template, path.clone());
    }
    app.info(format!("saved {}", path.display()));
    let mut effects = vec![Effect::ListTemplates];
    if let Some(next) = then {
        effects.extend(go_ahead(app, next));
    }
    effects.extend(refresh(app));
    effects
}

pub fn on_save_failed(app: &mut App, message: String) {
    app.wb.after_save = None;
    app.error(format!("cannot save: {message}"));
}

pub fn on_runs(app: &mut App, runs: Vec<RunSummary>) {
    if let Some(WbOverlay::History(list)) = &mut app.wb.overlay {
        list.runs = runs;
        list.loaded = true;
        list.selected = list.selected.min(list.runs.len().saturating_sub(1));
    }
}

/// A run from the history: its template version, values and output come
/// back; the template counts as changed if that version is not the saved one.
pub fn on_run_opened(app: &mut App, record: RunRecord) -> Vec<Effect> {
    let label = format!("run {}", record.id);
    let template = match crate::prompt::parse(&record.template_toml, &label) {
        Ok(template) => template,
        Err(problems) => {
            app.error(
                problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            );
            return Vec::new();
        }
    };
    let saved = app
        .wb
        .entries
        .iter()
        .find(|e| e.name == template.name)
        .and_then(|e| Some((origin_of(e), crate::prompt::load(e).ok()?)));
    let mut doc = match saved {
        Some((origin, saved)) => {
            let mut doc = TemplateDoc::open(template, origin);
            doc.saved = saved;
            doc
        }
        None => TemplateDoc::open(template, Origin::New),
    };
    doc.sync_vars();
    doc.set_values(&record.values);
    app.wb.doc = Some(doc);
    app.info(format!("reopened {label}"));
    app.wb.run = Some(WorkbenchRun::new(record, true));
    app.wb.focus = Pane::Output;
    refresh(app)
}

pub fn on_run_saved(app: &mut App, id: String, created_unix_ms: u64) {
    if let Some(run) = &mut app.wb.run {
        if run.record.id.is_empty() {
            run.record.id = id;
            run.record.created_unix_ms = created_unix_ms;
        }
    }
}

// --- the run's stream -----------------------------------------------------------

/// Whether generation `id` is the workbench's run (rather than a chat reply).
pub fn owns_generation(wb: &Workbench, id: u64) -> bool {
    wb.run
        .as_ref()
        .is_some_and(|r| r.is_streaming() && r.generation == Some(id))
}

pub fn on_started(wb: &mut Workbench, id: u64) -> bool {
    match &mut wb.run {
        Some(run) if run.is_streaming() && run.generation.is_none() => {
            run.generation = Some(id);
            true
        }
        _ => false,
    }
}

pub fn on_token(wb: &mut Workbench, text: &str, token: i32, probs: Option<&TokenProbs>) {
    let Some(run) = &mut wb.run else {
        return;
    };
    run.record.output.push_str(text);
    let record = &mut run.record;
    keep_piece(&mut record.tokens, text, token, probs);
    if let Some(lens) = &mut run.lens {
        lens.settle(record.tokens.as_deref().unwrap_or_default());
    }
}

/// A key on the output while the lens is open; None hands it on (the lens
/// closed first unless the key keeps it).
fn lens_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Option<Vec<Effect>> {
    let run = app.wb.run.as_mut()?;
    let mut lens = run.lens.clone()?;
    match action {
        Some(Action::Lens) => {
            run.lens = None;
            return Some(Vec::new());
        }
        Some(Action::Stop) if !run.is_streaming() => {
            run.lens = None;
            return Some(Vec::new());
        }
        Some(Action::Stop | Action::Help) => return None,
        _ => {}
    }
    let tokens = run.record.tokens.clone().unwrap_or_default();
    match lens.on_key(key, &tokens) {
        LensKey::Unhandled => {
            run.lens = None;
            None
        }
        LensKey::Moved => {
            run.lens = Some(lens);
            Some(Vec::new())
        }
        LensKey::SameToken => {
            app.info("that is the token the output has: choose another with ↑/↓");
            Some(Vec::new())
        }
        LensKey::Fork { at, choice } => {
            run.lens = Some(lens);
            Some(fork_run(app, at, choice))
        }
    }
}

/// Opens the lens on the output.
fn open_lens(app: &mut App) -> Vec<Effect> {
    let Some(run) = &mut app.wb.run else {
        app.info("run the template first: the lens shows its output's tokens");
        return Vec::new();
    };
    let tokens = run.record.tokens.as_deref().unwrap_or_default();
    run.lens = Some(Lens::open(tokens, run.is_streaming()));
    if run.record.tokens.is_none() {
        app.info(lens::NO_PROBS);
    }
    Vec::new()
}

/// Forks the shown run at token `at` with `choice`: a new run with the
/// same messages and settings whose output starts with the kept tokens
/// and the chosen one, the model going on from there.
fn fork_run(app: &mut App, at: usize, choice: KeptAlternative) -> Vec<Effect> {
    let Some(run) = &mut app.wb.run else {
        return Vec::new();
    };
    if run.is_streaming() {
        // Stopped first; the fork follows when the stop has landed.
        let Some(id) = run.generation else {
            app.info("the run has not started yet: fork once its tokens stream");
            return Vec::new();
        };
        run.pending_fork = Some((at, choice));
        app.info("stopping the run; the fork follows");
        return vec![Effect::Cancel { id }];
    }
    if run.record.tokens.as_ref().is_none_or(|t| at >= t.len()) || !engine_ready(app) {
        return Vec::new();
    }
    let Some(run) = &app.wb.run else {
        return Vec::new();
    };
    let Some(tokens) = run.record.tokens.as_deref() else {
        return Vec::new();
    };
    let choice = KeptAlternative {
        text: sanitize(&choice.text),
        ..choice
    };
    let tokens = lens::forked_tokens(tokens, at, &choice);
    let output: String = tokens.iter().map(|t| t.text.as_str()).collect();
    let open_tokens: Vec<i32> = tokens.iter().map(|t| t.id).collect();
    let parent = &run.record;
    let mut messages = parent.messages.clone();
    messages.push(ChatMessage::new(Role::Assistant, output.clone()));
    let record = RunRecord {
        id: String::new(),
        created_unix_ms: 0,
        output,
        outcome: RunOutcome::Running,
        stats: None,
        tokens: Some(tokens),
        forked_from: Some(ForkedFrom {
            run: parent.id.clone(),
            token: at,
        }),
        ..parent.clone()
    };
    let effect = Effect::ForkRun {
        messages,
        open_tokens,
        sampling: parent.sampling.clone(),
        max_tokens: parent.max_tokens.unwrap_or(0),
        stop: parent.stop.clone(),
    };
    let mut new_run = WorkbenchRun::new(record, false);
    let mut lens = Lens::open(&[], true);
    lens.cursor = at;
    new_run.lens = Some(lens);
    app.wb.run = Some(new_run);
    app.wb.focus = Pane::Output;
    app.engine = crate::tui::app::EngineState::Generating;
    app.info(format!(
        "forked at token {}: a new run (the old one stays in the history, {})",
        at + 1,
        app.keymap.key_hint(Action::History)
    ));
    vec![effect]
}

/// A beam-search run ended: its output is the best sequence, and every
/// returned one is kept with its score; the record is saved.
pub fn on_beams(wb: &mut Workbench, beams: Vec<Beam>, stats: BeamStats) -> Vec<Effect> {
    let Some(run) = &mut wb.run else {
        return Vec::new();
    };
    let reason = match beams.first() {
        Some(best) if !best.eos => StopReason::MaxTokens,
        _ => StopReason::Eos,
    };
    run.record.output = beams.first().map(|b| b.text.clone()).unwrap_or_default();
    run.beam_selected = 0;
    if let Some(search) = &mut run.record.beam_search {
        search.beams = beams;
        search.stats = Some(stats);
    }
    on_finished(wb, RunOutcome::Done { reason }, None)
}

/// The run stopped for a fork chosen while it streamed: the fork starts
/// now, from the tokens it has.
pub fn fork_pending(app: &mut App) -> Vec<Effect> {
    let Some((at, choice)) = app.wb.run.as_mut().and_then(|run| run.pending_fork.take()) else {
        return Vec::new();
    };
    fork_run(app, at, choice)
}

/// The run ended; its record is saved.
pub fn on_finished(
    wb: &mut Workbench,
    outcome: RunOutcome,
    stats: Option<GenerationStats>,
) -> Vec<Effect> {
    let Some(run) = &mut wb.run else {
        return Vec::new();
    };
    run.record.outcome = outcome;
    run.record.stats = stats;
    vec![Effect::SaveRun(Box::new(run.record.clone()))]
}
