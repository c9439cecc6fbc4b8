//! The prompt workbench's state machine driven without a terminal: keys go
//! in through `update` (resolved through the default keymap, as a user
//! would press them), and the effects the driver would run are answered by
//! hand with the messages the driver would send back: the template list is
//! the shipped one (`whet::prompt::list(None)`), saves land at made-up
//! paths, runs stream tokens with made-up ids.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::app::{ready_app, shipped, shipped_template};
use common::keys::*;
use crossterm::event::{KeyCode, KeyModifiers};

use whet::engine::protocol::{ChatMessage, GenerationStats, Role, StopReason};
use whet::engine::SamplingParams;
use whet::prompt::{Template, TemplateEntry};
use whet::store::runs::{RunOutcome, RunRecord, RunSummary, RUN_FORMAT_VERSION};
use whet::store::session::{Session, StoredMessage};
use whet::tui::app::{update, App, Effect, EngineState, Msg, Screen, TurnFigures};
use whet::tui::workbench::doc::{Origin, TextField};
use whet::tui::workbench::example_form::FieldRole;
use whet::tui::workbench::{AfterConfirm, LinePurpose, Pane, WbOverlay};

// ---------------------------------------------------------------- helpers

fn figures() -> TurnFigures {
    TurnFigures {
        ttft_ms: 40.0,
        tokens_per_sec: 80.0,
    }
}

fn stats() -> GenerationStats {
    GenerationStats {
        prompt_tokens: 120,
        reused_tokens: 0,
        generated_tokens: 9,
        prompt_eval_ms: 30.0,
        ttft_ms: 40.0,
        generation_ms: 110.0,
        grammar: None,
    }
}

/// F5 to the workbench, answering its one ListTemplates.
fn workbench() -> App {
    let mut app = ready_app();
    assert_eq!(key(&mut app, KeyCode::F(5)), vec![Effect::ListTemplates]);
    assert_eq!(app.screen, Screen::Workbench);
    assert!(update(&mut app, Msg::Templates(shipped())).is_empty());
    app
}

/// Back to the template list, search for `name`, open it; the effects of
/// the Enter that opened it.
fn open(app: &mut App, name: &str) -> Vec<Effect> {
    for _ in 0..Pane::ORDER.len() {
        if app.wb.focus == Pane::Templates {
            break;
        }
        shift_tab(app);
    }
    assert_eq!(app.wb.focus, Pane::Templates);
    assert!(ch(app, '/').is_empty());
    assert!(app.wb.searching);
    let old = app.wb.search_text().chars().count();
    backspace(app, old);
    type_text(app, name);
    assert_eq!(app.wb.selected_entry().unwrap().name, name);
    // Enter in the search opens the first match at once.
    let effects = key(app, KeyCode::Enter);
    assert!(!app.wb.searching);
    effects
}

/// `open` for a fresh workbench, checking that it opened.
fn workbench_with(name: &str) -> App {
    let mut app = workbench();
    open(&mut app, name);
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), name);
    assert_eq!(app.wb.focus, Pane::Editor);
    assert!(!app.wb.is_dirty(), "{name} is dirty when just opened");
    app
}

fn go_to(app: &mut App, pane: Pane) {
    for _ in 0..Pane::ORDER.len() {
        if app.wb.focus == pane {
            return;
        }
        key(app, KeyCode::Tab);
    }
    panic!("Tab never reached {pane:?}");
}

fn prompt_text(app: &App) -> String {
    app.wb.doc.as_ref().unwrap().text(TextField::Prompt)
}

fn var_names(app: &App) -> Vec<String> {
    app.wb
        .doc
        .as_ref()
        .unwrap()
        .vars
        .iter()
        .map(|v| v.name.clone())
        .collect()
}

fn var_texts(app: &App) -> Vec<(String, String)> {
    app.wb
        .doc
        .as_ref()
        .unwrap()
        .vars
        .iter()
        .map(|v| (v.name.clone(), v.text()))
        .collect()
}

/// The rendered messages shown in the preview (panics if they are an error).
fn rendered(app: &App) -> Vec<ChatMessage> {
    match &app.wb.preview.rendered {
        Some(Ok(messages)) => messages.clone(),
        other => panic!("no rendered messages: {other:?}"),
    }
}

fn preview_error(app: &App) -> String {
    match &app.wb.preview.rendered {
        Some(Err(error)) => error.clone(),
        other => panic!("the preview is not an error: {other:?}"),
    }
}

fn last_user(app: &App) -> String {
    let messages = rendered(app);
    let last = messages.last().unwrap();
    assert_eq!(last.role, Role::User);
    last.content.clone()
}

/// The few-shot outputs in the rendered messages, in order.
fn shot_outputs(app: &App) -> Vec<String> {
    rendered(app)
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.content.clone())
        .collect()
}

fn format_previews(effects: &[Effect]) -> Vec<(u64, Vec<ChatMessage>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::FormatPreview { revision, messages } => Some((*revision, messages.clone())),
            _ => None,
        })
        .collect()
}

fn saved_templates(effects: &[Effect]) -> Vec<Template> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveTemplate(t) => Some((**t).clone()),
            _ => None,
        })
        .collect()
}

fn has_run(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::RunTemplate { .. }))
}

fn line_prompt(app: &App) -> (LinePurpose, String, Option<String>) {
    match &app.wb.overlay {
        Some(WbOverlay::Line(prompt)) => {
            (prompt.purpose.clone(), prompt.text(), prompt.error.clone())
        }
        _ => panic!("no one-line prompt is open"),
    }
}

fn confirm(app: &App) -> Option<AfterConfirm> {
    match &app.wb.overlay {
        Some(WbOverlay::Confirm(next)) => Some(next.clone()),
        _ => None,
    }
}

/// The example form's fields: (role, text), focused index, error.
fn example_form(app: &App) -> (Vec<(FieldRole, String)>, usize, Option<String>) {
    match &app.wb.overlay {
        Some(WbOverlay::Example(form)) => (
            form.fields
                .iter()
                .map(|f| (f.role.clone(), f.text()))
                .collect(),
            form.focused,
            form.error.clone(),
        ),
        _ => panic!("the example form is not open"),
    }
}

/// The user's copy of a saved template, as the driver would list it.
fn user_entry(template: &Template, path: &str) -> TemplateEntry {
    TemplateEntry {
        name: template.name.clone(),
        source: whet::prompt::Source::User(PathBuf::from(path)),
        text: whet::prompt::to_toml(template),
    }
}

const ACRONYM_TITLE: &str = "Underwater breathing without external accessories";
const ACRONYM_REPLY: &str =
    "\n\nReply with one line: the acronym, a colon, then the words it stands for.";

// ------------------------------------------------------ 1. list and open

#[test]
fn f5_lists_the_templates_once_search_filters_and_enter_opens() {
    let mut app = ready_app();
    assert_eq!(app.screen, Screen::Chat);
    assert_eq!(key(&mut app, KeyCode::F(5)), vec![Effect::ListTemplates]);
    assert_eq!(app.screen, Screen::Workbench);
    assert!(app.wb.visible().is_empty());
    update(&mut app, Msg::Templates(shipped()));
    let names: Vec<&str> = app.wb.visible().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "acronym",
            "codegen",
            "persona",
            "qa",
            "sentiment-reversal",
            "story",
            "summarize"
        ]
    );
    // Back and forth: the list is not asked for again.
    assert!(key(&mut app, KeyCode::F(5)).is_empty());
    assert_eq!(app.screen, Screen::Chat);
    assert!(key(&mut app, KeyCode::F(5)).is_empty());
    assert_eq!(app.screen, Screen::Workbench);

    // j/k move in the list.
    assert_eq!(app.wb.focus, Pane::Templates);
    ch(&mut app, 'j');
    ch(&mut app, 'j');
    assert_eq!(app.wb.selected_entry().unwrap().name, "persona");
    ch(&mut app, 'k');
    assert_eq!(app.wb.selected_entry().unwrap().name, "codegen");

    // `/` searches by name, in any case; typed letters are not commands.
    ch(&mut app, '/');
    assert!(app.wb.searching);
    type_text(&mut app, "S");
    let names: Vec<&str> = app.wb.visible().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["persona", "sentiment-reversal", "story", "summarize"]
    );
    type_text(&mut app, "tO");
    let names: Vec<&str> = app.wb.visible().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["story"]);
    assert_eq!(app.wb.search_text(), "StO");
    assert!(
        app.wb.overlay.is_none(),
        "typing 'n' or 'a' opened something"
    );
    // Enter ends the search and opens the first match at once.
    key(&mut app, KeyCode::Enter);
    assert!(!app.wb.searching);
    let doc = app.wb.doc.as_ref().expect("Enter opened nothing");
    assert_eq!(doc.name(), "story");
    assert_eq!(doc.origin, Origin::Shipped);
    assert_eq!(app.wb.focus, Pane::Editor);
    let story = shipped_template("story");
    assert_eq!(doc.editor().lines().join("\n"), story.prompt);
    assert_eq!(
        doc.editor().lines()[0],
        "Write a short story of {{length}}."
    );
    // One field per variable, in order of first use, defaults filled in.
    assert_eq!(
        var_texts(&app),
        [
            ("length".to_string(), "about 150 words".to_string()),
            ("premise".to_string(), String::new()),
            ("style".to_string(), "simple and vivid".to_string()),
        ]
    );

    // The system prompt's variables come first.
    open(&mut app, "persona");
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "persona");
    assert_eq!(var_names(&app), ["persona", "message"]);
    assert!(var_texts(&app)[0].1.starts_with("Captain Mara"));
}

#[test]
fn every_shipped_template_opens_clean_and_renders_like_the_library() {
    let mut app = workbench();
    for entry in shipped() {
        open(&mut app, &entry.name);
        let doc = app.wb.doc.as_ref().unwrap();
        assert_eq!(doc.name(), entry.name);
        assert!(!doc.is_dirty(), "{} is dirty when just opened", entry.name);
        assert!(doc.problems().is_empty(), "{}", entry.name);
        let template = whet::prompt::load(&entry).unwrap();
        assert_eq!(doc.to_template().unwrap(), template);
        let names: Vec<String> = template.variables().into_iter().map(|v| v.name).collect();
        assert_eq!(var_names(&app), names);
        // What the workbench renders is what the library renders.
        let expected = whet::prompt::render(
            &template,
            &doc.values(),
            whet::prompt::ExampleSelection::Enabled,
        )
        .map_err(|e| e.to_string());
        assert_eq!(app.wb.preview.rendered, Some(expected), "{}", entry.name);
    }
}

// ------------------------------------------- 2. variables, problems, preview

#[test]
fn a_new_placeholder_adds_a_field_and_an_unclosed_one_is_reported_at_its_place() {
    let mut app = workbench_with("acronym");
    let opened = app.wb.preview.revision;
    assert_eq!(var_names(&app), ["title"]);
    assert_eq!(
        last_user(&app),
        format!("Create an acronym for this title:\n{ACRONYM_TITLE}{ACRONYM_REPLY}")
    );

    // Line 2 is "{{title}}": add " in a {{tone}} tone" after it.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::End);
    let effects = type_text(&mut app, " in a {{tone}} tone");
    assert_eq!(var_names(&app), ["title", "tone"]);
    assert_eq!(var_texts(&app)[1].1, "", "tone has no default");
    assert!(app.wb.is_dirty());
    // While a `{{` is open, and with tone missing, nothing is sent to format.
    assert_eq!(preview_error(&app), "missing values for: tone");
    // " in a {" rendered (a single brace is text); from the second '{' on,
    // an unclosed placeholder and then the missing tone ask for nothing.
    let previews = format_previews(&effects);
    assert_eq!(previews.len(), " in a {".len(), "{previews:?}");
    assert!(previews[6].1.last().unwrap().content.contains(" in a {\n"));

    // Give tone a value: Tab to the variables, Down off the title's line.
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.wb.focus, Pane::Variables);
    assert_eq!(app.wb.doc.as_ref().unwrap().var_selected, 0);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.wb.doc.as_ref().unwrap().var_selected, 1);
    let effects = type_text(&mut app, "playful");
    // The examples fill the prompt with their own values, and have none
    // for tone: still nothing to format, and the preview says why.
    assert!(format_previews(&effects).is_empty(), "{effects:?}");
    assert!(
        preview_error(&app).starts_with("example 1: missing values for: tone\n"),
        "{}",
        preview_error(&app)
    );
    let effects = ctrl(&mut app, 'g');
    assert!(!has_run(&effects));
    assert!(notice(&app).starts_with("cannot run: example 1: missing values for: tone;"));
    // F8 makes the value tone's default: the examples render with it.
    let effects = key(&mut app, KeyCode::F(8));
    assert_eq!(
        last_user(&app),
        format!(
            "Create an acronym for this title:\n{ACRONYM_TITLE} in a playful tone{ACRONYM_REPLY}"
        )
    );
    assert!(rendered(&app)[1]
        .content
        .contains("drink water in a playful tone\n"));
    let previews = format_previews(&effects);
    assert_eq!(previews.len(), 1, "{effects:?}");
    assert_eq!(previews[0].1, rendered(&app));
    assert_eq!(previews[0].0, app.wb.preview.revision);
    assert!(app.wb.preview.revision > opened);
    let declared = app
        .wb
        .doc
        .as_ref()
        .unwrap()
        .to_template()
        .unwrap()
        .variables;
    assert_eq!(declared["tone"].default.as_deref(), Some("playful"));

    // An unclosed `{{` at the end of line 2: "{{title}} in a {{tone}} tone {{".
    shift_tab(&mut app);
    assert_eq!(app.wb.focus, Pane::Editor);
    type_text(&mut app, " {");
    let good = app.wb.preview.revision;
    let effects = ch(&mut app, '{');
    assert!(format_previews(&effects).is_empty(), "{effects:?}");
    let problems = app.wb.doc.as_ref().unwrap().problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].field, problems[0].line, problems[0].col),
        (TextField::Prompt, 2, 30)
    );
    assert_eq!(
        preview_error(&app),
        "prompt:2:30: unclosed '{{' (no '}}' after it)"
    );
    assert_eq!(app.wb.preview.exact, None);
    let broken = app.wb.preview.revision;
    assert!(broken > good);
    // The variables stay while the text is broken.
    assert_eq!(var_names(&app), ["title", "tone"]);
    // A save is refused with the problem.
    let effects = ctrl(&mut app, 's');
    assert!(saved_templates(&effects).is_empty());
    assert!(
        notice(&app).contains("prompt:2:30: unclosed"),
        "{}",
        notice(&app)
    );

    // Fixed: the preview is asked for again, with a newer revision.
    let effects = backspace(&mut app, 1);
    let previews = format_previews(&effects);
    assert_eq!(previews.len(), 1, "{effects:?}");
    let (revision, messages) = previews[0].clone();
    assert!(revision > broken);
    assert_eq!(revision, app.wb.preview.revision);
    assert_eq!(messages, rendered(&app));
    assert!(messages
        .last()
        .unwrap()
        .content
        .contains("playful tone {\n"));

    // A stale answer is dropped; the current one is shown.
    update(
        &mut app,
        Msg::PreviewFormatted {
            revision: good,
            result: Ok(("stale".into(), 1)),
        },
    );
    assert_eq!(app.wb.preview.exact, None);
    update(
        &mut app,
        Msg::PreviewFormatted {
            revision,
            result: Ok(("<|user|>exact".into(), 321)),
        },
    );
    assert_eq!(app.wb.preview.exact, Some(("<|user|>exact".into(), 321)));
    // An engine error for the current revision is kept too.
    ch(&mut app, '!');
    let current = app.wb.preview.revision;
    update(
        &mut app,
        Msg::PreviewFormatted {
            revision: current,
            result: Err("no chat template".into()),
        },
    );
    assert_eq!(app.wb.preview.exact, None);
    assert_eq!(
        app.wb.preview.exact_error.as_deref(),
        Some("no chat template")
    );
}

#[test]
fn a_variable_removed_for_a_moment_comes_back_with_its_value() {
    let mut app = workbench_with("acronym");
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::End);
    type_text(&mut app, " (kept)");
    shift_tab(&mut app);
    // Line 2 "{{title}}": delete the 'e' of title and type it again.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Left);
    backspace(&mut app, 1);
    assert_eq!(var_names(&app), ["titl"]);
    assert_eq!(var_texts(&app)[0].1, "");
    ch(&mut app, 'e');
    assert_eq!(prompt_text(&app), shipped_template("acronym").prompt);
    assert_eq!(
        var_texts(&app),
        [("title".to_string(), format!("{ACRONYM_TITLE} (kept)"))]
    );
}

// ------------------------------------------------------------- 3. values

#[test]
fn typing_a_value_changes_the_last_message_and_an_empty_field_means_the_default() {
    let mut app = workbench_with("qa");
    assert_eq!(var_names(&app), ["passage", "question"]);
    go_to(&mut app, Pane::Variables);
    // Enter at the last line of a field goes to the next one.
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.wb.doc.as_ref().unwrap().var_selected, 1);
    let before = last_user(&app);
    let others = rendered(&app)[..rendered(&app).len() - 1].to_vec();
    assert!(before.contains("Question: On which day is the bakery closed?\n"));
    // A field opens with the cursor at its start.
    key(&mut app, KeyCode::End);
    let effects = type_text(&mut app, " Be brief.");
    assert!(last_user(&app).contains("Question: On which day is the bakery closed? Be brief.\n"));
    assert_eq!(
        format_previews(&effects).len(),
        " Be brief.".chars().count(),
        "each change asks for the exact input again"
    );
    // The system prompt and the examples (their own values) do not change.
    let now = rendered(&app);
    assert_eq!(now[..now.len() - 1], others[..]);

    // Emptied, the field gives way to the declared default.
    let len = var_texts(&app)[1].1.chars().count();
    backspace(&mut app, len);
    assert_eq!(var_texts(&app)[1].1, "");
    assert_eq!(last_user(&app), before);
    assert!(!app
        .wb
        .doc
        .as_ref()
        .unwrap()
        .values()
        .contains_key("question"));

    // A value over two lines; Up on its first line goes back to the passage.
    type_text(&mut app, "Which day?");
    press(&mut app, KeyCode::Enter, KeyModifiers::ALT);
    type_text(&mut app, "Answer in one word.");
    assert!(last_user(&app).contains("Question: Which day?\nAnswer in one word.\n"));
    key(&mut app, KeyCode::Up);
    assert_eq!(
        app.wb.doc.as_ref().unwrap().var_selected,
        1,
        "moved up a line"
    );
    key(&mut app, KeyCode::Up);
    assert_eq!(app.wb.doc.as_ref().unwrap().var_selected, 0);
    // Up on the first field stays there.
    key(&mut app, KeyCode::Up);
    assert_eq!(app.wb.doc.as_ref().unwrap().var_selected, 0);
}

#[test]
fn a_variable_without_value_or_default_blocks_the_run_and_is_named() {
    let mut app = workbench_with("story");
    assert_eq!(
        preview_error(&app),
        "missing values for: premise",
        "premise has no default"
    );
    let effects = ctrl(&mut app, 'g');
    assert!(!has_run(&effects), "{effects:?}");
    assert!(effects.is_empty(), "{effects:?}");
    assert!(notice_is_error(&app));
    assert_eq!(notice(&app), "cannot run: missing values for: premise");
    assert!(app.wb.run.is_none());
    assert_eq!(app.engine, EngineState::Ready);

    // Given a value, it runs.
    go_to(&mut app, Pane::Variables);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.wb.doc.as_ref().unwrap().var_selected, 1);
    let effects = type_text(&mut app, "A cat learns to fly.");
    assert_eq!(
        format_previews(&effects).len(),
        "A cat learns to fly.".len()
    );
    assert!(last_user(&app).contains("Premise: A cat learns to fly.\n"));
    assert!(has_run(&ctrl(&mut app, 'g')));
}

// ------------------------------------------------------------ 4. examples

#[test]
fn examples_are_added_edited_duplicated_deleted_toggled_and_moved() {
    let mut app = workbench_with("acronym");
    go_to(&mut app, Pane::Examples);
    let sip = "SIP: Smart Intake Prompter";
    let pal = "PAL: Peer Academic Link";
    let leap = "LEAP: Learning Essentials for Advancing Professionals";
    assert_eq!(shot_outputs(&app), [sip, pal, leap]);

    // Add: a field per prompt variable, then the output.
    assert!(ch(&mut app, 'a').is_empty());
    let (fields, focused, error) = example_form(&app);
    assert_eq!(
        fields,
        [
            (FieldRole::Var("title".into()), String::new()),
            (FieldRole::Output, String::new())
        ]
    );
    assert_eq!((focused, error), (0, None));
    type_text(&mut app, "A bike-sharing app");
    // An empty output is refused; the form stays.
    ctrl(&mut app, 's');
    let (_, _, error) = example_form(&app);
    assert_eq!(error.as_deref(), Some("the expected output is empty"));
    assert_eq!(app.wb.doc.as_ref().unwrap().examples.len(), 3);
    key(&mut app, KeyCode::Tab);
    assert_eq!(example_form(&app).1, 1);
    let bap = "BAP: Bike Access Program";
    type_text(&mut app, bap);
    ctrl(&mut app, 's');
    assert!(app.wb.overlay.is_none());
    // It goes after the selected example and is selected.
    assert_eq!(shot_outputs(&app), [sip, bap, pal, leap]);
    assert_eq!(app.wb.doc.as_ref().unwrap().example_selected, 1);
    let messages = rendered(&app);
    assert_eq!(
        messages[3].content,
        format!("Create an acronym for this title:\nA bike-sharing app{ACRONYM_REPLY}")
    );
    assert_eq!(messages[4].content, bap);
    assert!(app.wb.is_dirty());

    // Edit with e: the form holds the example; the output gets a '!'.
    ch(&mut app, 'e');
    let (fields, _, _) = example_form(&app);
    assert_eq!(
        fields,
        [
            (FieldRole::Var("title".into()), "A bike-sharing app".into()),
            (FieldRole::Output, bap.into())
        ]
    );
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::End);
    ch(&mut app, '!');
    ctrl(&mut app, 's');
    assert!(app.wb.overlay.is_none());
    let bap = "BAP: Bike Access Program!";
    assert_eq!(shot_outputs(&app), [sip, bap, pal, leap]);

    // Enter edits too; Esc closes an unchanged form at once, a changed one
    // on the second Esc, without applying.
    key(&mut app, KeyCode::Enter);
    example_form(&app);
    key(&mut app, KeyCode::Esc);
    assert!(app.wb.overlay.is_none());
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "zzz");
    key(&mut app, KeyCode::Esc);
    assert!(example_form(&app).2.unwrap().contains("Esc again"));
    key(&mut app, KeyCode::Esc);
    assert!(app.wb.overlay.is_none());
    assert_eq!(shot_outputs(&app), [sip, bap, pal, leap]);

    // Duplicate: the copy follows it and is selected.
    ch(&mut app, 'c');
    assert_eq!(shot_outputs(&app), [sip, bap, bap, pal, leap]);
    assert_eq!(app.wb.doc.as_ref().unwrap().example_selected, 2);

    // Delete needs two presses in a row.
    ch(&mut app, 'd');
    assert_eq!(app.wb.doc.as_ref().unwrap().examples.len(), 5);
    assert!(
        notice(&app).contains("again to delete example 3"),
        "{}",
        notice(&app)
    );
    key(&mut app, KeyCode::Esc);
    ch(&mut app, 'd');
    assert_eq!(
        app.wb.doc.as_ref().unwrap().examples.len(),
        5,
        "Esc disarms"
    );
    ch(&mut app, 'd');
    assert_eq!(shot_outputs(&app), [sip, bap, pal, leap]);
    assert_eq!(app.wb.doc.as_ref().unwrap().example_selected, 2);

    // Toggle: the disabled example's pair leaves the messages, and returns.
    let count = rendered(&app).len();
    ch(&mut app, ' ');
    assert!(!app.wb.doc.as_ref().unwrap().examples[2].enabled);
    assert_eq!(shot_outputs(&app), [sip, bap, leap]);
    assert_eq!(rendered(&app).len(), count - 2);
    assert!(rendered(&app)
        .iter()
        .all(|m| !m.content.contains("study partners")));
    ch(&mut app, ' ');
    assert_eq!(shot_outputs(&app), [sip, bap, pal, leap]);

    // Move: K/J and Alt+Up/Down; the pairs follow, inputs with outputs.
    ch(&mut app, 'K');
    assert_eq!(shot_outputs(&app), [sip, pal, bap, leap]);
    assert_eq!(app.wb.doc.as_ref().unwrap().example_selected, 1);
    alt(&mut app, KeyCode::Up);
    assert_eq!(shot_outputs(&app), [pal, sip, bap, leap]);
    alt(&mut app, KeyCode::Up);
    assert_eq!(shot_outputs(&app), [pal, sip, bap, leap], "already first");
    alt(&mut app, KeyCode::Down);
    ch(&mut app, 'J');
    ch(&mut app, 'J');
    assert_eq!(shot_outputs(&app), [sip, bap, leap, pal]);
    ch(&mut app, 'J');
    assert_eq!(shot_outputs(&app), [sip, bap, leap, pal], "already last");
    let messages = rendered(&app);
    let last_pair = &messages[messages.len() - 3..messages.len() - 1];
    assert!(last_pair[0].content.contains("study partners"));
    assert_eq!(last_pair[1].content, pal);

    // A disabled example is saved as such, in its place.
    ch(&mut app, ' ');
    let saved = saved_templates(&ctrl(&mut app, 's'));
    assert_eq!(saved.len(), 1);
    let outputs: Vec<(&str, bool)> = saved[0]
        .examples
        .iter()
        .map(|e| (e.output.as_str(), e.enabled))
        .collect();
    assert_eq!(
        outputs,
        [(sip, true), (bap, true), (leap, true), (pal, false)]
    );
}

#[test]
fn an_example_for_a_prompt_without_variables_is_a_plain_input() {
    let mut app = workbench();
    // A new template: its name, then its prompt.
    assert!(ch(&mut app, 'n').is_empty());
    assert_eq!(line_prompt(&app).0, LinePurpose::NewTemplate);
    type_text(&mut app, "greet");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "greet");
    assert_eq!(app.wb.doc.as_ref().unwrap().origin, Origin::New);
    assert!(app.wb.is_dirty(), "a new template is unsaved");
    type_text(&mut app, "Say hello.");
    go_to(&mut app, Pane::Examples);
    ch(&mut app, 'a');
    let (fields, _, _) = example_form(&app);
    assert_eq!(
        fields,
        [
            (FieldRole::Input, String::new()),
            (FieldRole::Output, String::new())
        ]
    );
    key(&mut app, KeyCode::Tab);
    type_text(&mut app, "Hi!");
    ctrl(&mut app, 's');
    assert_eq!(example_form(&app).2.as_deref(), Some("the input is empty"));
    shift_tab(&mut app);
    type_text(&mut app, "Say hi.");
    ctrl(&mut app, 's');
    assert!(app.wb.overlay.is_none());
    assert_eq!(
        rendered(&app),
        [
            ChatMessage::new(Role::User, "Say hi."),
            ChatMessage::new(Role::Assistant, "Hi!"),
            ChatMessage::new(Role::User, "Say hello."),
        ]
    );
}

// ------------------------------------------------------- 5. dirty and save

#[test]
fn ctrl_s_saves_the_edit_and_the_saved_file_becomes_the_origin() {
    let mut app = workbench_with("acronym");
    assert_eq!(app.wb.doc.as_ref().unwrap().origin, Origin::Shipped);
    type_text(&mut app, "Please ");
    assert!(app.wb.is_dirty());
    let edited = format!("Please {}", shipped_template("acronym").prompt);
    assert_eq!(prompt_text(&app), edited);

    let effects = ctrl(&mut app, 's');
    let saved = saved_templates(&effects);
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(saved[0].name, "acronym");
    assert_eq!(saved[0].prompt, edited);
    let mut expected = shipped_template("acronym");
    expected.prompt = edited.clone();
    assert_eq!(saved[0], expected, "only the prompt changed");
    assert!(app.wb.is_dirty(), "dirty until the save has landed");

    let path = PathBuf::from("/home/u/.config/whet/templates/acronym.toml");
    let effects = update(
        &mut app,
        Msg::TemplateSaved {
            template: Box::new(saved[0].clone()),
            path: path.clone(),
        },
    );
    assert!(effects.contains(&Effect::ListTemplates), "{effects:?}");
    assert!(!app.wb.is_dirty());
    assert_eq!(app.wb.doc.as_ref().unwrap().origin, Origin::User(path));
    assert!(notice(&app).contains("saved"));

    // Undo goes back to the shipped text, which now differs from the file.
    for _ in 0.."Please ".len() {
        ctrl(&mut app, 'u');
    }
    assert_eq!(prompt_text(&app), shipped_template("acronym").prompt);
    assert!(app.wb.is_dirty());
    for _ in 0.."Please ".len() {
        ctrl(&mut app, 'r');
    }
    assert_eq!(prompt_text(&app), edited);
    assert!(!app.wb.is_dirty());
}

#[test]
fn a_failed_save_keeps_the_changes_unsaved_and_says_why() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Please ");
    assert_eq!(saved_templates(&ctrl(&mut app, 's')).len(), 1);
    update(
        &mut app,
        Msg::TemplateSaveFailed("permission denied".into()),
    );
    assert!(app.wb.is_dirty());
    assert_eq!(app.wb.doc.as_ref().unwrap().origin, Origin::Shipped);
    assert!(notice_is_error(&app));
    assert!(notice(&app).contains("permission denied"));
}

#[test]
fn save_as_saves_under_the_new_name_only_and_refuses_a_name_taken() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Please ");
    let edited = prompt_text(&app);
    assert!(key(&mut app, KeyCode::F(12)).is_empty());
    assert_eq!(
        line_prompt(&app),
        (LinePurpose::SaveAs, "acronym".to_string(), None)
    );
    backspace(&mut app, "acronym".len());
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(line_prompt(&app).2.unwrap().contains("type a name first"));

    // A name another template has is refused; the prompt stays open.
    type_text(&mut app, "qa");
    assert_eq!(line_prompt(&app).2, None, "typing clears the error");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        line_prompt(&app).2.as_deref(),
        Some("prompts/qa.toml already exists; choose another name")
    );
    backspace(&mut app, 2);
    type_text(&mut app, "two words");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(line_prompt(&app)
        .2
        .unwrap()
        .contains("cannot name a template"));
    backspace(&mut app, "two words".len());

    type_text(&mut app, "acronym-polite");
    let effects = key(&mut app, KeyCode::Enter);
    assert!(app.wb.overlay.is_none());
    let saved = saved_templates(&effects);
    assert_eq!(
        saved.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["acronym-polite"],
        "Save As writes the new file only, not the old one too: {effects:?}"
    );
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(saved[0].prompt, edited);

    let path = PathBuf::from("/t/acronym-polite.toml");
    let effects = update(
        &mut app,
        Msg::TemplateSaved {
            template: Box::new(saved[0].clone()),
            path: path.clone(),
        },
    );
    assert!(effects.contains(&Effect::ListTemplates));
    let doc = app.wb.doc.as_ref().unwrap();
    assert_eq!(doc.name(), "acronym-polite");
    assert_eq!(doc.origin, Origin::User(path));
    assert_eq!(doc.text(TextField::Prompt), edited);
    assert!(!app.wb.is_dirty());

    // The list now has it: another Save As under that name is refused.
    let mut entries = shipped();
    entries.push(user_entry(&saved[0], "/t/acronym-polite.toml"));
    update(&mut app, Msg::Templates(entries));
    open(&mut app, "acronym");
    key(&mut app, KeyCode::F(12));
    backspace(&mut app, "acronym".len());
    type_text(&mut app, "acronym-polite");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        line_prompt(&app).2.as_deref(),
        Some("/t/acronym-polite.toml already exists; choose another name")
    );
    // Esc closes it; nothing is saved.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.wb.overlay.is_none());
}

#[test]
fn save_as_keeps_the_values_typed() {
    let mut app = workbench_with("qa");
    go_to(&mut app, Pane::Variables);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::End);
    type_text(&mut app, " Be brief.");
    let values = app.wb.doc.as_ref().unwrap().values();
    let before = rendered(&app);
    key(&mut app, KeyCode::F(12));
    backspace(&mut app, "qa".len());
    type_text(&mut app, "qa-brief");
    let saved = saved_templates(&key(&mut app, KeyCode::Enter));
    assert_eq!(saved.len(), 1);
    update(
        &mut app,
        Msg::TemplateSaved {
            template: Box::new(saved[0].clone()),
            path: PathBuf::from("/t/qa-brief.toml"),
        },
    );
    let doc = app.wb.doc.as_ref().unwrap();
    assert_eq!(doc.name(), "qa-brief");
    assert!(!doc.is_dirty());
    assert_eq!(doc.values(), values, "the values typed are not in the file");
    assert_eq!(rendered(&app), before);
    assert_eq!(app.wb.focus, Pane::Variables);
}

#[test]
fn a_new_template_cannot_take_the_name_of_the_one_open() {
    let mut app = workbench_with("qa");
    shift_tab(&mut app);
    assert_eq!(app.wb.focus, Pane::Templates);
    ch(&mut app, 'n');
    type_text(&mut app, "qa");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        line_prompt(&app).2.as_deref(),
        Some("prompts/qa.toml already exists; choose another name")
    );
    assert!(
        last_user(&app).starts_with("Read the passage"),
        "qa was replaced"
    );
    backspace(&mut app, 2);
    type_text(&mut app, "qa2");
    key(&mut app, KeyCode::Enter);
    assert!(app.wb.overlay.is_none());
    let doc = app.wb.doc.as_ref().unwrap();
    assert_eq!((doc.name(), &doc.origin), ("qa2", &Origin::New));
    assert_eq!(doc.text(TextField::Prompt), "");
}

#[test]
fn ctrl_o_loads_a_value_from_a_file() {
    let mut app = workbench_with("acronym");
    go_to(&mut app, Pane::Variables);
    assert!(ctrl(&mut app, 'o').is_empty());
    assert_eq!(
        line_prompt(&app).0,
        LinePurpose::LoadFile {
            var: "title".into()
        }
    );
    type_text(&mut app, "/data/title.txt");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::ReadValueFile {
            var: "title".into(),
            path: PathBuf::from("/data/title.txt"),
        }]
    );
    assert!(app.wb.overlay.is_none());
    let effects = update(
        &mut app,
        Msg::ValueLoaded {
            var: "title".into(),
            text: "Solar panels\non boats".into(),
        },
    );
    assert_eq!(format_previews(&effects).len(), 1);
    assert_eq!(var_texts(&app)[0].1, "Solar panels\non boats");
    assert!(last_user(&app).contains("title:\nSolar panels\non boats\n"));
    assert!(notice(&app).contains("21 characters"), "{}", notice(&app));

    // `~/` is the home directory.
    if let Some(home) = std::env::var_os("HOME") {
        ctrl(&mut app, 'o');
        type_text(&mut app, "~/t.txt");
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            vec![Effect::ReadValueFile {
                var: "title".into(),
                path: PathBuf::from(home).join("t.txt"),
            }]
        );
    }
}

// ---------------------------------------------------- 6. unsaved changes

#[test]
fn quitting_with_unsaved_changes_asks_first() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Please ");
    assert!(ctrl(&mut app, 'c').is_empty());
    assert!(!app.should_quit);
    assert_eq!(confirm(&app), Some(AfterConfirm::Quit));

    // Esc: back to editing, nothing lost.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.wb.overlay.is_none());
    assert!(!app.should_quit);
    assert!(app.wb.is_dirty());
    type_text(&mut app, "now ");
    assert!(prompt_text(&app).starts_with("Please now Create"));

    // Even from the chat screen, the question comes up on the workbench.
    key(&mut app, KeyCode::F(5));
    assert_eq!(app.screen, Screen::Chat);
    assert!(ctrl(&mut app, 'c').is_empty());
    assert_eq!(app.screen, Screen::Workbench);
    assert_eq!(confirm(&app), Some(AfterConfirm::Quit));
    // Another key keeps the question.
    assert!(ch(&mut app, 'x').is_empty());
    assert_eq!(confirm(&app), Some(AfterConfirm::Quit));

    // d discards and quits.
    assert_eq!(ch(&mut app, 'd'), vec![Effect::Quit]);
    assert!(app.should_quit);
}

#[test]
fn q_in_a_list_with_unsaved_changes_asks_too() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Please ");
    go_to(&mut app, Pane::Examples);
    assert!(ch(&mut app, 'q').is_empty());
    assert!(!app.should_quit);
    assert_eq!(confirm(&app), Some(AfterConfirm::Quit));
}

#[test]
fn save_then_quit_waits_for_the_save_to_land() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Please ");
    ctrl(&mut app, 'c');
    assert_eq!(confirm(&app), Some(AfterConfirm::Quit));
    let effects = ch(&mut app, 's');
    let saved = saved_templates(&effects);
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert!(!effects.contains(&Effect::Quit));
    assert!(!app.should_quit);
    assert!(saved[0].prompt.starts_with("Please Create"));

    let effects = update(
        &mut app,
        Msg::TemplateSaved {
            template: Box::new(saved[0].clone()),
            path: PathBuf::from("/t/acronym.toml"),
        },
    );
    assert!(effects.contains(&Effect::Quit), "{effects:?}");
    assert!(app.should_quit);
}

#[test]
fn save_then_quit_stays_when_the_save_fails() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Please ");
    ctrl(&mut app, 'c');
    assert_eq!(saved_templates(&ch(&mut app, 's')).len(), 1);
    update(&mut app, Msg::TemplateSaveFailed("disk full".into()));
    assert!(!app.should_quit);
    assert!(app.wb.is_dirty());
    // A later save that lands does not quit either.
    let saved = saved_templates(&ctrl(&mut app, 's'));
    let effects = update(
        &mut app,
        Msg::TemplateSaved {
            template: Box::new(saved[0].clone()),
            path: PathBuf::from("/t/acronym.toml"),
        },
    );
    assert!(!effects.contains(&Effect::Quit), "{effects:?}");
    assert!(!app.should_quit);
}

#[test]
fn saving_a_broken_template_from_the_question_is_refused_and_the_question_stays() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "{{");
    ctrl(&mut app, 'c');
    assert!(ch(&mut app, 's').is_empty());
    assert_eq!(confirm(&app), Some(AfterConfirm::Quit));
    assert!(
        notice(&app).contains("prompt:1:1: unclosed"),
        "{}",
        notice(&app)
    );
    assert_eq!(ch(&mut app, 'd'), vec![Effect::Quit]);
}

#[test]
fn opening_another_template_with_unsaved_changes_asks_first() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Please ");
    let effects = open(&mut app, "qa");
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(confirm(&app), Some(AfterConfirm::OpenTemplate("qa".into())));
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "acronym");
    // Esc keeps the edit.
    key(&mut app, KeyCode::Esc);
    assert!(app.wb.overlay.is_none());
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "acronym");
    assert!(app.wb.is_dirty());
    // Opening the one open goes back to it without asking.
    open(&mut app, "acronym");
    assert!(app.wb.overlay.is_none());
    assert_eq!(app.wb.focus, Pane::Editor);
    assert!(prompt_text(&app).starts_with("Please"));

    // d throws the edit away and opens qa.
    open(&mut app, "qa");
    let effects = ch(&mut app, 'd');
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "qa");
    assert!(!app.wb.is_dirty());
    assert_eq!(format_previews(&effects).len(), 1, "{effects:?}");
    assert!(last_user(&app).starts_with("Read the passage"));

    // s saves qa, and acronym opens once that has landed.
    type_text(&mut app, "Please ");
    open(&mut app, "acronym");
    let effects = ch(&mut app, 's');
    let saved = saved_templates(&effects);
    assert_eq!(saved[0].name, "qa");
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "qa");
    update(
        &mut app,
        Msg::TemplateSaved {
            template: Box::new(saved[0].clone()),
            path: PathBuf::from("/t/qa.toml"),
        },
    );
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "acronym");
    assert!(!app.wb.is_dirty());
}

// ------------------------------------------------------------------ 7. run

#[test]
fn a_run_streams_into_the_output_and_is_saved_with_its_stats() {
    let mut app = workbench_with("acronym");
    let messages = rendered(&app);
    let effects = ctrl(&mut app, 'g');
    let template = shipped_template("acronym");
    let sampling = SamplingParams {
        temperature: 0.3,
        top_k: 40,
        top_p: 0.9,
        min_p: 0.05,
        repeat_penalty: 1.1,
        ..SamplingParams::default()
    };
    assert_eq!(
        effects,
        vec![Effect::RunTemplate {
            messages: messages.clone(),
            sampling: sampling.clone(),
            max_tokens: 128,
            stop: Vec::new(),
            constraint: None,
        }]
    );
    assert_eq!(template.sampling.temperature, Some(0.3));
    assert!(app.wb.is_running());
    assert_eq!(app.wb.focus, Pane::Output);

    // Another run, or a chat message, waits for this one.
    assert!(ctrl(&mut app, 'g').is_empty());
    assert!(notice(&app).contains("Esc stops it"), "{}", notice(&app));
    key(&mut app, KeyCode::F(5));
    assert_eq!(app.screen, Screen::Chat);
    type_text(&mut app, "hello");
    let effects = key(&mut app, KeyCode::Enter);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Generate { .. })),
        "{effects:?}"
    );
    assert!(app.chat.entries.is_empty());
    key(&mut app, KeyCode::F(5));
    assert_eq!(app.screen, Screen::Workbench);

    update(&mut app, Msg::GenerationStarted { id: 7 });
    let reply = "SCUBA: Self-Contained Underwater Breathing Apparatus";
    for piece in reply.split_inclusive(' ') {
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id: 7,
                text: piece.into(),
            },
        );
    }
    let run = app.wb.run.as_ref().unwrap();
    assert_eq!(run.record.output, reply);
    assert_eq!(run.generation, Some(7));
    assert!(
        app.chat.entries.is_empty(),
        "the run's tokens went to the chat"
    );

    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 7,
            reason: StopReason::Eos,
            context_used: 300,
            figures: figures(),
            stats: Some(stats()),
        },
    );
    assert_eq!(effects.len(), 1, "{effects:?}");
    let Effect::SaveRun(record) = &effects[0] else {
        panic!("{effects:?}");
    };
    assert_eq!(
        record.outcome,
        RunOutcome::Done {
            reason: StopReason::Eos
        }
    );
    assert_eq!(record.output, reply);
    assert_eq!(record.stats, Some(stats()));
    assert_eq!(record.template, "acronym");
    assert_eq!(record.messages, messages);
    assert_eq!(record.sampling, sampling);
    assert_eq!(record.max_tokens, Some(128));
    assert_eq!(record.examples, [1, 2, 3]);
    assert_eq!(
        record.values,
        BTreeMap::from([("title".to_string(), ACRONYM_TITLE.to_string())])
    );
    assert_eq!(
        whet::prompt::parse(&record.template_toml, "run").unwrap(),
        template
    );
    assert_eq!(record.id, "");
    assert!(!app.wb.is_running());
    assert_eq!(app.engine, EngineState::Ready);

    update(
        &mut app,
        Msg::RunSaved {
            id: "20250101-120000-000-acronym".into(),
            created_unix_ms: 1_735_732_800_000,
        },
    );
    let run = app.wb.run.as_ref().unwrap();
    assert_eq!(run.record.id, "20250101-120000-000-acronym");
    assert_eq!(run.record.created_unix_ms, 1_735_732_800_000);

    // A second run: Esc stops it.
    let effects = ctrl(&mut app, 'g');
    assert!(has_run(&effects));
    assert_eq!(app.wb.run.as_ref().unwrap().record.output, "");
    assert_eq!(app.wb.run.as_ref().unwrap().record.id, "");
    update(&mut app, Msg::GenerationStarted { id: 8 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 8,
            text: "PAR".into(),
        },
    );
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::Cancel { id: 8 }]);
    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 8,
            reason: StopReason::Cancelled,
            context_used: 200,
            figures: figures(),
            stats: None,
        },
    );
    let Some(Effect::SaveRun(record)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(
        record.outcome,
        RunOutcome::Done {
            reason: StopReason::Cancelled
        }
    );
    assert_eq!(record.output, "PAR");
    // After it, Esc has nothing to stop.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
}

#[test]
fn a_run_uses_the_edited_sampling_text_and_enabled_examples() {
    let mut app = workbench_with("acronym");
    // F7 twice: the sampling text; its temperature line becomes 0.9.
    key(&mut app, KeyCode::F(7));
    key(&mut app, KeyCode::F(7));
    assert_eq!(app.wb.doc.as_ref().unwrap().field, TextField::Sampling);
    let first = app.wb.doc.as_ref().unwrap().editor().lines()[0].clone();
    assert!(first.starts_with("temperature = 0.3"), "{first}");
    key(&mut app, KeyCode::End);
    backspace(&mut app, first.chars().count());
    type_text(&mut app, "temperature = 0.9");
    go_to(&mut app, Pane::Examples);
    ch(&mut app, ' ');
    let effects = ctrl(&mut app, 'g');
    let Some(Effect::RunTemplate {
        sampling,
        messages,
        max_tokens,
        ..
    }) = effects.first()
    else {
        panic!("{effects:?}");
    };
    assert_eq!(sampling.temperature, 0.9);
    assert_eq!(*max_tokens, 128);
    assert_eq!(messages.len(), 1 + 2 * 2 + 1);
    assert_eq!(app.wb.run.as_ref().unwrap().record.examples, [2, 3]);

    // A broken sampling text blocks the run with its place.
    let mut app = workbench_with("acronym");
    key(&mut app, KeyCode::F(7));
    key(&mut app, KeyCode::F(7));
    type_text(&mut app, "oops ");
    let effects = ctrl(&mut app, 'g');
    assert!(!has_run(&effects), "{effects:?}");
    assert!(
        notice(&app).starts_with("cannot run: sampling:1:"),
        "{}",
        notice(&app)
    );
}

#[test]
fn a_run_waits_for_the_engine() {
    let mut app = App::new(PathBuf::from("/m/model.gguf"));
    key(&mut app, KeyCode::F(5));
    update(&mut app, Msg::Templates(shipped()));
    open(&mut app, "acronym");
    assert_eq!(app.engine, EngineState::Loading);
    assert!(ctrl(&mut app, 'g').is_empty());
    assert!(app.wb.run.is_none());
    assert!(notice(&app).contains("still loading"));
}

#[test]
fn a_failed_run_is_saved_as_failed() {
    let mut app = workbench_with("acronym");
    ctrl(&mut app, 'g');
    update(&mut app, Msg::GenerationStarted { id: 3 });
    let effects = update(
        &mut app,
        Msg::GenerationFailed {
            id: Some(3),
            message: "decode failed".into(),
        },
    );
    let Some(Effect::SaveRun(record)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(
        record.outcome,
        RunOutcome::Failed {
            message: "decode failed".into()
        }
    );
    assert!(!app.wb.is_running());
    assert_eq!(app.engine, EngineState::Ready);
}

// -------------------------------------------------------------- 8. history

fn run_record(template: &Template, values: &[(&str, &str)], output: &str) -> RunRecord {
    RunRecord {
        version: RUN_FORMAT_VERSION,
        id: "20250102-090000-000-acronym".into(),
        created_unix_ms: 1_735_808_400_000,
        template: template.name.clone(),
        template_toml: whet::prompt::to_toml(template),
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        examples: vec![1, 2, 3],
        model: Some(PathBuf::from("/m/model.gguf")),
        sampling: SamplingParams::default(),
        max_tokens: Some(128),
        stop: Vec::new(),
        messages: Vec::new(),
        output: output.into(),
        outcome: RunOutcome::Done {
            reason: StopReason::Eos,
        },
        stats: Some(stats()),
        beam_search: None,
        tokens: None,
        forked_from: None,
    }
}

fn summary(id: &str, problem: Option<&str>) -> RunSummary {
    RunSummary {
        id: id.into(),
        template: "acronym".into(),
        created_unix_ms: 1_735_808_400_000,
        output_preview: "TIDE: …".into(),
        problem: problem.map(str::to_string),
    }
}

#[test]
fn history_lists_runs_and_reopens_one_with_its_template_and_values() {
    let mut app = workbench();
    assert_eq!(key(&mut app, KeyCode::F(6)), vec![Effect::ListRuns]);
    let Some(WbOverlay::History(list)) = &app.wb.overlay else {
        panic!("no history");
    };
    assert!(!list.loaded);
    update(
        &mut app,
        Msg::Runs(vec![
            summary("20250102-090000-000-acronym", None),
            summary("broken", Some("broken.json:1:1: expected value")),
            summary("20250101-080000-000-acronym", None),
        ]),
    );
    let Some(WbOverlay::History(list)) = &app.wb.overlay else {
        panic!("no history");
    };
    assert!(list.loaded);
    assert_eq!(list.runs.len(), 3);
    // One that cannot be read says why and stays in the list.
    ch(&mut app, 'j');
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(notice_is_error(&app));
    assert!(notice(&app).contains("expected value"));
    ch(&mut app, 'k');
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::OpenRun("20250102-090000-000-acronym".into())]
    );
    assert!(app.wb.overlay.is_none());

    // The run's template had another prompt.
    let mut template = shipped_template("acronym");
    template.prompt = "Acronym for: {{title}}".into();
    let record = run_record(
        &template,
        &[("title", "Tidal energy")],
        "TIDE: Tidal Energy",
    );
    let effects = update(&mut app, Msg::RunOpened(Box::new(record.clone())));
    let doc = app.wb.doc.as_ref().unwrap();
    assert_eq!(doc.name(), "acronym");
    assert_eq!(doc.text(TextField::Prompt), "Acronym for: {{title}}");
    assert_eq!(doc.origin, Origin::Shipped);
    assert_eq!(
        var_texts(&app),
        [("title".to_string(), "Tidal energy".to_string())]
    );
    assert!(app.wb.is_dirty(), "the run's version is not the saved one");
    let run = app.wb.run.as_ref().unwrap();
    assert!(run.reopened);
    assert_eq!(run.record.output, "TIDE: Tidal Energy");
    assert_eq!(app.wb.focus, Pane::Output);
    assert_eq!(last_user(&app), "Acronym for: Tidal energy");
    assert_eq!(format_previews(&effects).len(), 1, "{effects:?}");
    // Saving it saves that version.
    let saved = saved_templates(&ctrl(&mut app, 's'));
    assert_eq!(saved[0].prompt, "Acronym for: {{title}}");

    // Reopening another run with unsaved changes asks first.
    key(&mut app, KeyCode::F(6));
    update(
        &mut app,
        Msg::Runs(vec![summary("20250101-080000-000-acronym", None)]),
    );
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        confirm(&app),
        Some(AfterConfirm::OpenRun("20250101-080000-000-acronym".into()))
    );
    assert_eq!(
        ch(&mut app, 'd'),
        vec![Effect::OpenRun("20250101-080000-000-acronym".into())]
    );

    // A run of the saved version is not an unsaved change; an empty value
    // gives way to the default.
    let record = run_record(&shipped_template("acronym"), &[], "SCUBA");
    update(&mut app, Msg::RunOpened(Box::new(record)));
    assert!(!app.wb.is_dirty());
    assert_eq!(var_texts(&app), [("title".to_string(), String::new())]);
    assert!(last_user(&app).contains(ACRONYM_TITLE));

    // Esc closes the history.
    key(&mut app, KeyCode::F(6));
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.wb.overlay.is_none());
}

#[test]
fn a_run_of_a_template_that_is_gone_opens_as_new() {
    let mut app = workbench();
    let mut template = shipped_template("acronym");
    template.name = "deleted-one".into();
    update(
        &mut app,
        Msg::RunOpened(Box::new(run_record(&template, &[("title", "X")], "x"))),
    );
    let doc = app.wb.doc.as_ref().unwrap();
    assert_eq!(doc.name(), "deleted-one");
    assert_eq!(doc.origin, Origin::New);
    assert!(app.wb.is_dirty());
    assert_eq!(var_texts(&app), [("title".to_string(), "X".to_string())]);
}

// ---------------------------------------------------------- 9. to the chat

#[test]
fn send_to_chat_starts_a_session_with_the_rendered_messages_and_asks_for_the_reply() {
    let mut app = workbench_with("acronym");
    let messages = rendered(&app);
    let effects = ctrl(&mut app, 't');
    let Some(Effect::StartChat {
        messages: sent,
        sampling,
        reply,
    }) = effects.first()
    else {
        panic!("{effects:?}");
    };
    assert_eq!(effects.len(), 1);
    assert_eq!(*sent, messages);
    assert_eq!(sampling.temperature, 0.3);
    // The template's length limit goes with it to every reply of the chat.
    let acronym = shipped_template("acronym");
    assert_eq!(Some(reply.max_tokens), acronym.sampling.max_tokens);
    assert_eq!(reply.stop, acronym.sampling.stop.unwrap_or_default());
    assert_eq!(app.screen, Screen::Workbench, "waits for the session");

    // The driver makes the session: the system prompt apart, the rest as
    // the conversation.
    let mut session = Session::new("chat-20250102-090000");
    session.sampling = sampling.clone();
    session.system_prompt = Some(messages[0].content.clone());
    session.messages = messages[1..]
        .iter()
        .map(|m| StoredMessage::new(m.role, m.content.clone()))
        .collect();
    let effects = update(&mut app, Msg::ChatStarted(Box::new(session)));
    assert_eq!(app.screen, Screen::Chat);
    assert_eq!(app.chat.session_name, "chat-20250102-090000");
    assert_eq!(
        app.chat.settings.system_prompt.as_deref(),
        Some(messages[0].content.as_str())
    );
    let texts: Vec<(Role, String)> = app
        .chat
        .entries
        .iter()
        .map(|e| (e.role, e.text.clone()))
        .collect();
    let mut expected: Vec<(Role, String)> = messages[1..]
        .iter()
        .map(|m| (m.role, m.content.clone()))
        .collect();
    expected.push((Role::Assistant, String::new()));
    assert_eq!(texts, expected, "the reply streams into a new last entry");
    assert_eq!(
        effects,
        vec![
            Effect::SaveSession,
            Effect::Generate {
                messages: messages.clone(),
                continue_reply: false,
            }
        ]
    );
    assert_eq!(app.engine, EngineState::Generating);
}

#[test]
fn send_to_chat_is_refused_for_a_template_that_does_not_render() {
    let mut app = workbench_with("story");
    let effects = ctrl(&mut app, 't');
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(notice(&app), "cannot send: missing values for: premise");
    assert_eq!(app.screen, Screen::Workbench);
}

// ------------------------------------------------------------ 10. robustness

fn all_keys() -> Vec<(KeyCode, KeyModifiers)> {
    let mut codes = vec![
        KeyCode::Enter,
        KeyCode::Esc,
        KeyCode::Tab,
        KeyCode::BackTab,
        KeyCode::Backspace,
        KeyCode::Delete,
        KeyCode::Insert,
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::Left,
        KeyCode::Right,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Null,
    ];
    codes.extend((1..=12).map(KeyCode::F));
    codes.extend(
        "abcdegjkmnoqrstuvxyzAGJKQ /?[]{}é日🦀\u{301}"
            .chars()
            .map(KeyCode::Char),
    );
    let modifiers = [
        KeyModifiers::NONE,
        KeyModifiers::SHIFT,
        KeyModifiers::CONTROL,
        KeyModifiers::ALT,
        KeyModifiers::CONTROL | KeyModifiers::ALT,
    ];
    codes
        .into_iter()
        .flat_map(|code| modifiers.into_iter().map(move |m| (code, m)))
        .collect()
}

/// The workbench on `pane`, no template open (the list is loaded).
fn empty_workbench_on(pane: Pane) -> App {
    let mut app = workbench();
    app.wb.focus = pane;
    app
}

#[test]
fn every_key_on_every_pane_without_a_template_does_not_panic() {
    let keys = all_keys();
    for pane in Pane::ORDER {
        // Each key alone, on a fresh workbench.
        for &(code, modifiers) in &keys {
            let mut app = empty_workbench_on(pane);
            let effects = press(&mut app, code, modifiers);
            let opened = app.wb.doc.is_some();
            assert!(
                opened || !has_run(&effects),
                "{pane:?} {code:?} {modifiers:?}: {effects:?}"
            );
            if !opened {
                assert!(
                    format_previews(&effects).is_empty() && saved_templates(&effects).is_empty(),
                    "{pane:?} {code:?} {modifiers:?}: {effects:?}"
                );
            }
        }
        // All of them in a row, with the answers a driver would give.
        let mut app = empty_workbench_on(pane);
        app.wb.entries.clear();
        for &(code, modifiers) in &keys {
            if app.screen != Screen::Workbench {
                key(&mut app, KeyCode::F(5));
            }
            let effects = press(&mut app, code, modifiers);
            for effect in effects {
                match effect {
                    Effect::ListRuns => {
                        update(&mut app, Msg::Runs(vec![summary("r1", None)]));
                    }
                    Effect::OpenRun(_) => {
                        update(
                            &mut app,
                            Msg::RunOpened(Box::new(run_record(
                                &shipped_template("acronym"),
                                &[],
                                "x",
                            ))),
                        );
                    }
                    _ => {}
                }
            }
            // The view asks these; they must not panic either.
            let _ = app.context();
            let _ = app.wb.visible();
            let _ = app.wb.is_dirty();
            if let Some(doc) = &app.wb.doc {
                let _ = doc.render();
            }
        }
    }
}

#[test]
fn every_key_on_every_pane_with_a_template_open_does_not_panic() {
    let keys = all_keys();
    for pane in Pane::ORDER {
        let mut app = workbench_with("codegen");
        app.wb.focus = pane;
        for &(code, modifiers) in &keys {
            if app.screen != Screen::Workbench {
                key(&mut app, KeyCode::F(5));
            }
            let effects = press(&mut app, code, modifiers);
            if effects.contains(&Effect::ListTemplates) {
                update(&mut app, Msg::Templates(shipped()));
            }
            if app.wb.is_running() {
                update(&mut app, Msg::GenerationStarted { id: 1 });
                update(
                    &mut app,
                    Msg::Token {
                        context_used: 0,
                        token: -1,
                        probs: None,
                        id: 1,
                        text: "x".into(),
                    },
                );
                update(
                    &mut app,
                    Msg::GenerationDone {
                        id: 1,
                        reason: StopReason::Eos,
                        context_used: 10,
                        figures: figures(),
                        stats: None,
                    },
                );
            }
            let _ = app.context();
            if let Some(doc) = &app.wb.doc {
                let _ = doc.render();
                let _ = doc.problems();
                let _ = doc.is_dirty();
            }
        }
    }
}

#[test]
fn unicode_typed_into_the_editor_and_a_variable_renders_into_the_messages() {
    let mut app = workbench_with("acronym");
    // At the start of the prompt: CJK, an emoji, e + a combining accent.
    let lead = "日本語の🦀e\u{301} ";
    type_text(&mut app, lead);
    assert!(prompt_text(&app).starts_with(lead));
    assert!(last_user(&app).starts_with("日本語の🦀e\u{301} Create an acronym"));

    // A problem after them is placed by characters, not bytes.
    type_text(&mut app, "{{");
    assert_eq!(
        preview_error(&app),
        format!(
            "prompt:1:{}: unclosed '{{{{' (no '}}}}' after it)",
            lead.chars().count() + 1
        )
    );
    backspace(&mut app, 2);
    assert!(last_user(&app).starts_with(lead));

    // A variable named in the editor, its value typed with a ZWJ family.
    key(&mut app, KeyCode::End);
    type_text(&mut app, " {{言葉}} {{mot_clé}} {{word}}");
    // Names are ASCII: the non-ASCII ones are problems, at their columns.
    let problems = app.wb.doc.as_ref().unwrap().problems();
    let places: Vec<(usize, usize)> = problems.iter().map(|p| (p.line, p.col)).collect();
    let line = app.wb.doc.as_ref().unwrap().editor().lines()[0].clone();
    let col_of = |needle: &str| line[..line.find(needle).unwrap()].chars().count() + 1;
    assert_eq!(
        places,
        [(1, col_of("{{言葉}}")), (1, col_of("{{mot_clé}}"))]
    );
    // Take those two back out.
    let tail = " {{言葉}} {{mot_clé}} {{word}}".chars().count();
    backspace(&mut app, tail);
    type_text(&mut app, " {{word}}");
    assert_eq!(var_names(&app), ["word", "title"]);

    go_to(&mut app, Pane::Variables);
    let value = "漢字 👩\u{200d}👩\u{200d}👧 a\u{308}";
    type_text(&mut app, value);
    assert_eq!(var_texts(&app)[0].1, value);
    // The examples need a value for it too: its default.
    key(&mut app, KeyCode::F(8));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::End);
    type_text(&mut app, " — ünïcödé ✓");
    let last = last_user(&app);
    assert!(
        last.starts_with(&format!(
            "{lead}Create an acronym for this title: {value}\n"
        )),
        "{last:?}"
    );
    assert!(
        last.contains(&format!("{ACRONYM_TITLE} — ünïcödé ✓\n")),
        "{last:?}"
    );
    // And the run sends exactly that.
    let effects = ctrl(&mut app, 'g');
    let Some(Effect::RunTemplate { messages, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(messages.last().unwrap().content, last);
}

#[test]
fn pasting_goes_to_the_focused_field() {
    let mut app = workbench_with("acronym");
    update(&mut app, Msg::Paste("日本\r\nline two ".into()));
    assert!(prompt_text(&app).starts_with("日本\nline two Create"));
    go_to(&mut app, Pane::Variables);
    key(&mut app, KeyCode::End);
    update(&mut app, Msg::Paste(" 🦀".into()));
    assert_eq!(var_texts(&app)[0].1, format!("{ACRONYM_TITLE} 🦀"));
    assert!(last_user(&app).contains("accessories 🦀"));
    go_to(&mut app, Pane::Templates);
    update(&mut app, Msg::Paste("Q\nA".into()));
    assert!(app.wb.searching);
    assert!(
        app.wb.search_text().ends_with("Q A"),
        "{}",
        app.wb.search_text()
    );
}

#[test]
fn quitting_with_an_example_form_open_keeps_the_form_and_what_it_holds() {
    let mut app = workbench_with("acronym");
    type_text(&mut app, "x"); // the template is now unsaved too
    go_to(&mut app, Pane::Examples);
    ch(&mut app, 'a');
    type_text(&mut app, "Half typed");
    assert!(ctrl(&mut app, 'c').is_empty());
    assert!(
        notice(&app).contains("close the popup first"),
        "{}",
        notice(&app)
    );
    let Some(WbOverlay::Example(form)) = &app.wb.overlay else {
        panic!("the example form is gone");
    };
    assert_eq!(form.fields[0].text(), "Half typed");
    // Once the form is closed, quitting asks about the unsaved template.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Esc);
    assert!(app.wb.overlay.is_none());
    ctrl(&mut app, 'c');
    assert!(matches!(app.wb.overlay, Some(WbOverlay::Confirm(_))));
}

/// The acronym template with `num_beams = 3` typed into its sampling text.
fn beams_workbench() -> App {
    let mut app = workbench_with("acronym");
    key(&mut app, KeyCode::F(7));
    key(&mut app, KeyCode::F(7));
    assert_eq!(app.wb.doc.as_ref().unwrap().field, TextField::Sampling);
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "num_beams = 3");
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "num_return_sequences = 3");
    app
}

fn beam(text: &str, score: f32) -> whet::engine::protocol::Beam {
    whet::engine::protocol::Beam {
        text: text.into(),
        tokens: vec![1; text.len()],
        score,
        logprob: score * 3.0,
        eos: true,
    }
}

#[test]
fn a_template_with_beams_runs_a_beam_search_whose_sequences_can_be_chosen_sent_and_refined() {
    let mut app = beams_workbench();
    let messages = rendered(&app);
    let effects = ctrl(&mut app, 'g');
    let Some(Effect::RunBeams {
        messages: sent,
        beams,
        max_tokens,
    }) = effects.first()
    else {
        panic!("{effects:?}");
    };
    assert_eq!(*sent, messages);
    assert_eq!((beams.num_beams, beams.num_return_sequences), (3, 3));
    assert_eq!(*max_tokens, 128);
    assert!(app.wb.is_running());

    update(&mut app, Msg::GenerationStarted { id: 9 });
    let returned = vec![
        beam("NASA", -0.2),
        beam("N.A.S.A.", -0.4),
        beam("nasa", -0.9),
    ];
    let stats = whet::engine::protocol::BeamStats {
        prompt_tokens: 50,
        steps: 4,
        decoded_tokens: 9,
        search_ms: 90.0,
        ..Default::default()
    };
    let effects = update(
        &mut app,
        Msg::BeamsDone {
            id: 9,
            beams: returned.clone(),
            stats: stats.clone(),
        },
    );
    let Some(Effect::SaveRun(record)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(record.output, "NASA");
    let search = record.beam_search.as_ref().unwrap();
    assert_eq!(search.beams, returned);
    assert_eq!(search.stats.as_ref(), Some(&stats));
    assert_eq!(
        record.outcome,
        RunOutcome::Done {
            reason: StopReason::Eos
        }
    );
    assert_eq!(app.engine, EngineState::Ready);

    // ← → choose among them in the output pane; the choice stops at the ends.
    assert_eq!(app.wb.focus, Pane::Output);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.wb.run.as_ref().unwrap().beam_selected, 2);
    key(&mut app, KeyCode::Left);
    assert_eq!(
        app.wb.run.as_ref().unwrap().chosen_beam_text(),
        Some("N.A.S.A.")
    );

    // Sent to the chat, the chosen one is the reply; the chat asks for none.
    let effects = ctrl(&mut app, 't');
    let Some(Effect::StartChat { messages: sent, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    let mut expected = messages.clone();
    expected.push(ChatMessage::new(Role::Assistant, "N.A.S.A."));
    assert_eq!(*sent, expected);
    let mut session = Session::new("chat-beam");
    session.system_prompt = Some(messages[0].content.clone());
    session.messages = expected[1..]
        .iter()
        .map(|m| StoredMessage::new(m.role, m.content.clone()))
        .collect();
    let effects = update(&mut app, Msg::ChatStarted(Box::new(session)));
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Generate { .. })),
        "{effects:?}"
    );
    assert_eq!(app.chat.entries.last().unwrap().text, "N.A.S.A.");

    // Refined, the chosen one is the draft: the rounds start at feedback.
    key(&mut app, KeyCode::F(5));
    assert_eq!(app.screen, Screen::Workbench);
    go_to(&mut app, Pane::Output);
    let effects = key(&mut app, KeyCode::F(9));
    let rounds = app.rounds.as_ref().expect("rounds");
    let passes = &rounds.lp.run().passes;
    assert_eq!(passes.len(), 1, "the draft pass");
    assert_eq!(passes[0].text, "N.A.S.A.");
    let Some(Effect::RunTemplate { messages: step, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    assert!(
        step.iter().any(|m| m.content.contains("N.A.S.A.")),
        "{step:?}"
    );
}

#[test]
fn a_stopped_beam_search_is_saved_as_stopped() {
    let mut app = beams_workbench();
    ctrl(&mut app, 'g');
    update(&mut app, Msg::GenerationStarted { id: 4 });
    let effects = update(
        &mut app,
        Msg::GenerationFailed {
            id: Some(4),
            message: whet::engine::beams::CANCELLED.into(),
        },
    );
    let Some(Effect::SaveRun(record)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(
        record.outcome,
        RunOutcome::Done {
            reason: StopReason::Cancelled
        }
    );
}

#[test]
fn a_template_grammar_goes_with_it_to_the_chat() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("acronym.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "properties": {"acronym": {"type": "string"}}}"#,
    )
    .unwrap();
    let mut app = with_sampling_line(&format!("json_schema = \"{}\"", schema.display()));
    let effects = ctrl(&mut app, 't');
    let Some(Effect::StartChat { reply, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    match &reply.constraint {
        Some(whet::engine::constraint::Constraint::JsonSchema { schema: text, .. }) => {
            assert!(text.contains("acronym"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // Without one, the chat's replies are free (an earlier grammar goes).
    let mut app = workbench_with("acronym");
    app.chat.settings.reply.constraint = reply.constraint.clone();
    let effects = ctrl(&mut app, 't');
    let Some(Effect::StartChat { reply, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(reply.constraint, None);
    // A missing file blocks it, saying which.
    let mut app = with_sampling_line("grammar = \"/nonexistent/g.gbnf\"");
    let effects = ctrl(&mut app, 't');
    assert!(effects.is_empty(), "{effects:?}");
    assert!(
        notice(&app).starts_with("cannot send: "),
        "{}",
        notice(&app)
    );
    assert!(notice(&app).contains("g.gbnf"), "{}", notice(&app));
}

/// The acronym template with `line` added to its sampling text.
fn with_sampling_line(line: &str) -> App {
    let mut app = workbench_with("acronym");
    key(&mut app, KeyCode::F(7));
    key(&mut app, KeyCode::F(7));
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, line);
    app
}

#[test]
fn a_template_grammar_constrains_the_workbench_run_and_a_missing_file_blocks_it() {
    let dir = tempfile::tempdir().unwrap();
    let grammar = dir.path().join("yesno.gbnf");
    std::fs::write(&grammar, "root ::= \"yes\" | \"no\"\n").unwrap();
    let mut app = with_sampling_line(&format!("grammar = \"{}\"", grammar.display()));
    let effects = ctrl(&mut app, 'g');
    let Some(Effect::RunTemplate { constraint, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    match constraint {
        Some(whet::engine::constraint::Constraint::Grammar { text, .. }) => {
            assert_eq!(text, "root ::= \"yes\" | \"no\"\n");
        }
        other => panic!("{other:?}"),
    }

    let missing = dir.path().join("gone.json");
    let mut app = with_sampling_line(&format!("json_schema = \"{}\"", missing.display()));
    let effects = ctrl(&mut app, 'g');
    assert!(!has_run(&effects), "{effects:?}");
    assert!(notice(&app).starts_with("cannot run: "), "{}", notice(&app));
    assert!(notice(&app).contains("gone.json"), "{}", notice(&app));

    let mut app = with_sampling_line(&format!("grammar = \"{}\"", grammar.display()));
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "num_beams = 2");
    let effects = ctrl(&mut app, 'g');
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::RunBeams { .. })),
        "{effects:?}"
    );
    assert!(
        notice(&app).contains("does not apply to beam search"),
        "{}",
        notice(&app)
    );
}
