//! The chat screen's state machine driven without a terminal: keys, pastes,
//! mouse events and engine events go in through `update`, and each test
//! checks the state it leaves and the effects it asks the driver to run.
//! Keys are real key events resolved through `app.keymap`, so the default
//! bindings are exercised as a user would press them.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use whet::engine::protocol::{ChatMessage, Role, StopReason};
use whet::engine::sampling::SamplingOverrides;
use whet::engine::SamplingParams;
use whet::store::session::Session;
use whet::tui::app::{update, App, DrawnLayout, Effect, EngineState, Msg, Overlay, TurnFigures};
use whet::tui::chat::Focus;
use whet::tui::conversation::{Entry, EntryStatus};
use whet::tui::keymap::Keymap;
use whet::tui::picker::{PickerItem, PickerKind};
use whet::tui::settings::{Field, SettingsForm};

// ---------------------------------------------------------------- helpers

fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    update(app, Msg::Key(KeyEvent::new(code, modifiers)))
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    press(app, code, KeyModifiers::NONE)
}

/// A character as a terminal reports it: uppercase letters with Shift.
fn ch(app: &mut App, c: char) -> Vec<Effect> {
    let modifiers = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    press(app, KeyCode::Char(c), modifiers)
}

fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    press(app, KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        let effects = ch(app, c);
        assert!(effects.is_empty(), "typing {c:?} gave {effects:?}");
    }
}

fn backspace(app: &mut App, times: usize) {
    for _ in 0..times {
        key(app, KeyCode::Backspace);
    }
}

fn input_text(app: &App) -> String {
    app.chat.input.lines().join("\n")
}

fn notice(app: &App) -> String {
    app.notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

fn figures() -> TurnFigures {
    TurnFigures {
        ttft_ms: 50.0,
        tokens_per_sec: 100.0,
    }
}

fn ready_app() -> App {
    let mut app = App::new(PathBuf::from("/m/model.gguf"));
    app.chat.session_name = "open-session".into();
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "model".into(),
            model_path: PathBuf::from("/m/model.gguf"),
            n_ctx: 4096,
        },
    );
    assert_eq!(app.engine, EngineState::Ready);
    app
}

/// Streams `text` as the reply of generation `id` and finishes it.
fn stream_reply(app: &mut App, id: u64, text: &str, reason: StopReason) {
    update(app, Msg::GenerationStarted { id });
    for piece in text.split_inclusive(' ') {
        update(
            app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id,
                text: piece.into(),
            },
        );
    }
    let effects = update(
        app,
        Msg::GenerationDone {
            id,
            reason,
            context_used: 100,
            figures: figures(),
            stats: None,
        },
    );
    assert_eq!(effects, vec![Effect::SaveSession]);
}

/// Types `question` into the input, sends it and streams `reply`.
fn turn(app: &mut App, id: u64, question: &str, reply: &str) {
    assert_eq!(app.chat.focus, Focus::Input);
    type_text(app, question);
    let effects = key(app, KeyCode::Enter);
    assert!(
        matches!(
            effects.as_slice(),
            [
                Effect::SaveSession,
                Effect::Generate {
                    continue_reply: false,
                    ..
                }
            ]
        ),
        "{effects:?}"
    );
    stream_reply(app, id, reply, StopReason::Eos);
}

/// q1 a1 q2 a2, all finished, focus in the input.
fn chat() -> App {
    let mut app = ready_app();
    turn(&mut app, 1, "q1", "a1");
    turn(&mut app, 2, "q2", "a2");
    assert_eq!(
        texts(&app.chat.entries),
        [
            (Role::User, "q1"),
            (Role::Assistant, "a1"),
            (Role::User, "q2"),
            (Role::Assistant, "a2")
        ]
    );
    app
}

fn texts(entries: &[Entry]) -> Vec<(Role, &str)> {
    entries.iter().map(|e| (e.role, e.text.as_str())).collect()
}

fn user(text: &str) -> ChatMessage {
    ChatMessage::new(Role::User, text)
}

fn assistant(text: &str) -> ChatMessage {
    ChatMessage::new(Role::Assistant, text)
}

/// Tab to the message list and select message `index` with Up/Down.
fn select(app: &mut App, index: usize) {
    if app.chat.focus == Focus::Input {
        key(app, KeyCode::Tab);
    }
    assert_eq!(app.chat.focus, Focus::Messages);
    while app.chat.selected.unwrap() > index {
        key(app, KeyCode::Up);
    }
    while app.chat.selected.unwrap() < index {
        key(app, KeyCode::Down);
    }
    assert_eq!(app.chat.selected, Some(index));
}

fn generate(messages: Vec<ChatMessage>, continue_reply: bool) -> Effect {
    Effect::Generate {
        messages,
        continue_reply,
    }
}

fn form(app: &App) -> &SettingsForm {
    match &app.overlay {
        Some(Overlay::Settings(form)) => form,
        _ => panic!("the settings panel is not open"),
    }
}

fn field_text(app: &App, field: Field) -> String {
    form(app)
        .fields
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, area)| area.lines().join("\n"))
        .unwrap()
}

/// Tab through the settings panel to `field`.
fn focus_field(app: &mut App, field: Field) {
    for _ in 0..Field::ALL.len() {
        if form(app).focused_field() == field {
            return;
        }
        key(app, KeyCode::Tab);
    }
    panic!("Tab never reached {field:?}");
}

/// Replace a settings field's text the way a user would: go there, erase
/// it with Backspace from the end of the line, type the new value.
fn set_field(app: &mut App, field: Field, value: &str) {
    focus_field(app, field);
    key(app, KeyCode::End);
    let len = field_text(app, field).chars().count();
    backspace(app, len);
    assert_eq!(field_text(app, field), "", "{field:?} was not cleared");
    type_text(app, value);
    assert_eq!(field_text(app, field), value);
}

fn picker_items(app: &App) -> (PickerKind, usize, bool, bool) {
    match &app.overlay {
        Some(Overlay::Picker(p)) => (p.kind, p.selected, p.delete_armed, p.renaming.is_some()),
        _ => panic!("no picker is open"),
    }
}

fn item(key: &str, current: bool, problem: Option<&str>) -> PickerItem {
    PickerItem {
        key: key.into(),
        label: key.into(),
        detail: String::new(),
        current,
        problem: problem.map(str::to_string),
        remote: None,
    }
}

fn open_sessions(app: &mut App) {
    assert_eq!(key(app, KeyCode::F(4)), vec![Effect::ListSessions]);
    update(
        app,
        Msg::PickerItems(
            PickerKind::Sessions,
            vec![
                item("open-session", true, None),
                item("older", false, None),
                item(
                    "broken",
                    false,
                    Some("broken.json: not a whet session: expected value at line 1 column 1"),
                ),
            ],
        ),
    );
    // The list starts on the session in use.
    assert_eq!(picker_items(app), (PickerKind::Sessions, 0, false, false));
}

fn mouse(app: &mut App, kind: MouseEventKind, column: u16, row: u16) -> Vec<Effect> {
    update(
        app,
        Msg::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }),
    )
}

// ------------------------------------------------ edit and resend, branches

#[test]
fn editing_an_earlier_question_keeps_the_later_turns_as_a_branch() {
    let mut app = chat();
    type_text(&mut app, "my draft");
    select(&mut app, 0);
    assert!(ch(&mut app, 'e').is_empty());
    assert_eq!(app.chat.focus, Focus::Input);
    assert_eq!(input_text(&app), "q1");
    assert_eq!(app.chat.editing.as_ref().map(|(i, _)| *i), Some(0));

    type_text(&mut app, " again");
    let effects = key(&mut app, KeyCode::Enter);
    // The model sees the conversation up to the edited message only.
    assert_eq!(
        effects,
        vec![Effect::SaveSession, generate(vec![user("q1 again")], false)]
    );
    assert_eq!(
        texts(&app.chat.entries),
        [(Role::User, "q1 again"), (Role::Assistant, "")]
    );
    assert_eq!(app.chat.entries[1].status, EntryStatus::Streaming);
    // The old message and everything after it are kept, unchanged.
    assert_eq!(app.chat.entries[0].branches.len(), 1);
    assert_eq!(
        texts(&app.chat.entries[0].branches[0]),
        [
            (Role::User, "q1"),
            (Role::Assistant, "a1"),
            (Role::User, "q2"),
            (Role::Assistant, "a2")
        ]
    );
    // The draft that was in the input before editing comes back.
    assert_eq!(input_text(&app), "my draft");
    assert!(app.chat.editing.is_none());
    stream_reply(&mut app, 3, "b1", StopReason::Eos);
    key(&mut app, KeyCode::End);
    backspace(&mut app, "my draft".len());
    assert_eq!(input_text(&app), "");

    // ] and [ switch between the two versions, and back.
    key(&mut app, KeyCode::Tab);
    assert_eq!(ch(&mut app, ']'), vec![Effect::SaveSession]);
    assert_eq!(
        texts(&app.chat.entries),
        [
            (Role::User, "q1"),
            (Role::Assistant, "a1"),
            (Role::User, "q2"),
            (Role::Assistant, "a2")
        ]
    );
    assert_eq!(app.chat.selected, Some(0));
    assert_eq!(
        texts(&app.chat.entries[0].branches[0]),
        [(Role::User, "q1 again"), (Role::Assistant, "b1")]
    );
    assert_eq!(ch(&mut app, '['), vec![Effect::SaveSession]);
    assert_eq!(
        texts(&app.chat.entries),
        [(Role::User, "q1 again"), (Role::Assistant, "b1")]
    );
    assert_eq!(ch(&mut app, ']'), vec![Effect::SaveSession]);
    assert_eq!(app.chat.entries.len(), 4);

    // The version on screen is the one the next turn continues.
    key(&mut app, KeyCode::Tab);
    type_text(&mut app, "q3");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![
            Effect::SaveSession,
            generate(
                vec![
                    user("q1"),
                    assistant("a1"),
                    user("q2"),
                    assistant("a2"),
                    user("q3")
                ],
                false
            )
        ]
    );
}

#[test]
fn editing_a_middle_question_resends_from_there_and_keeps_the_earlier_turns() {
    let mut app = chat();
    select(&mut app, 2);
    ch(&mut app, 'e');
    backspace(&mut app, 2);
    type_text(&mut app, "Q2");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![
            Effect::SaveSession,
            generate(vec![user("q1"), assistant("a1"), user("Q2")], false)
        ]
    );
    assert_eq!(
        texts(&app.chat.entries[..3]),
        [
            (Role::User, "q1"),
            (Role::Assistant, "a1"),
            (Role::User, "Q2")
        ]
    );
    assert!(app.chat.entries[0].branches.is_empty());
    assert_eq!(
        texts(&app.chat.entries[2].branches[0]),
        [(Role::User, "q2"), (Role::Assistant, "a2")]
    );
}

#[test]
fn esc_while_editing_restores_the_draft_and_changes_nothing() {
    let mut app = chat();
    type_text(&mut app, "half-written");
    let before = app.chat.entries.clone();
    select(&mut app, 2);
    ch(&mut app, 'e');
    assert_eq!(input_text(&app), "q2");
    type_text(&mut app, " changed");
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(input_text(&app), "half-written");
    assert!(app.chat.editing.is_none());
    assert_eq!(app.chat.entries, before);
    assert!(notice(&app).contains("edit cancelled"), "{}", notice(&app));
    // Enter now sends the draft as a new message, nothing is replaced.
    let effects = key(&mut app, KeyCode::Enter);
    assert!(matches!(
        effects.as_slice(),
        [Effect::SaveSession, Effect::Generate { .. }]
    ));
    assert_eq!(app.chat.entries[..4], before[..]);
    assert_eq!(app.chat.entries[4].text, "half-written");
}

#[test]
fn editing_a_reply_saves_it_in_place_with_the_old_version_as_a_branch() {
    let mut app = chat();
    select(&mut app, 3);
    ch(&mut app, 'e');
    assert_eq!(input_text(&app), "a2");
    assert!(notice(&app).contains("Enter saves it"), "{}", notice(&app));
    backspace(&mut app, 2);
    type_text(&mut app, "a better answer");
    // No model is needed to save an edited reply, so not even a running one.
    update(&mut app, Msg::EngineStopped("killed by signal 9".into()));
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Effect::SaveSession]);
    assert_eq!(
        texts(&app.chat.entries),
        [
            (Role::User, "q1"),
            (Role::Assistant, "a1"),
            (Role::User, "q2"),
            (Role::Assistant, "a better answer")
        ]
    );
    assert_eq!(app.chat.entries[3].status, EntryStatus::Done);
    assert_eq!(
        app.chat.entries[3].branches,
        vec![vec![Entry::new(Role::Assistant, "a2", EntryStatus::Done)]]
    );
    assert!(app.generating.is_none());
    assert!(matches!(app.engine, EngineState::Crashed(_)));
    // [ brings the original back.
    key(&mut app, KeyCode::Tab);
    assert_eq!(ch(&mut app, '['), vec![Effect::SaveSession]);
    assert_eq!(app.chat.entries[3].text, "a2");
}

// ------------------------------------------------------------------ delete

#[test]
fn delete_needs_two_presses_and_the_selection_moves_to_the_next_message() {
    let mut app = chat();
    select(&mut app, 1);
    assert!(ch(&mut app, 'd').is_empty());
    assert!(app.chat.delete_armed);
    assert_eq!(app.chat.entries.len(), 4);
    assert_eq!(notice(&app), "press d again to delete this message");
    assert_eq!(ch(&mut app, 'd'), vec![Effect::SaveSession]);
    assert_eq!(
        texts(&app.chat.entries),
        [
            (Role::User, "q1"),
            (Role::User, "q2"),
            (Role::Assistant, "a2")
        ]
    );
    // The selection stays at the same place, now on the message after.
    assert_eq!(app.chat.selected, Some(1));
    assert!(!app.chat.delete_armed);

    // Any other key in between disarms: d, j, d only arms again.
    ch(&mut app, 'd');
    ch(&mut app, 'j');
    assert_eq!(app.chat.selected, Some(2));
    assert!(!app.chat.delete_armed);
    assert!(ch(&mut app, 'd').is_empty());
    assert_eq!(app.chat.entries.len(), 3);

    // The Delete key confirms too; deleting the last selects the new last.
    assert_eq!(key(&mut app, KeyCode::Delete), vec![Effect::SaveSession]);
    assert_eq!(
        texts(&app.chat.entries),
        [(Role::User, "q1"), (Role::User, "q2")]
    );
    assert_eq!(app.chat.selected, Some(1));
    ch(&mut app, 'd');
    ch(&mut app, 'd');
    ch(&mut app, 'd');
    ch(&mut app, 'd');
    assert!(app.chat.entries.is_empty());
    assert_eq!(app.chat.selected, None);
    // Nothing left: nothing happens.
    assert!(ch(&mut app, 'd').is_empty());
    assert!(ch(&mut app, 'd').is_empty());
}

#[test]
fn a_message_with_kept_versions_cannot_be_deleted() {
    let mut app = chat();
    select(&mut app, 3);
    ch(&mut app, 'e');
    type_text(&mut app, "!");
    key(&mut app, KeyCode::Enter);
    assert!(!app.chat.entries[3].branches.is_empty());
    let before = app.chat.entries.clone();
    select(&mut app, 3);
    assert!(ch(&mut app, 'd').is_empty());
    assert!(!app.chat.delete_armed);
    assert!(ch(&mut app, 'd').is_empty());
    assert_eq!(app.chat.entries, before);
    assert!(
        notice(&app).contains("has other versions"),
        "{}",
        notice(&app)
    );
    // Its neighbours can still go.
    select(&mut app, 2);
    ch(&mut app, 'd');
    assert_eq!(ch(&mut app, 'd'), vec![Effect::SaveSession]);
    assert_eq!(app.chat.entries.len(), 3);
}

#[test]
fn nothing_is_deleted_or_edited_while_a_reply_streams() {
    let mut app = chat();
    type_text(&mut app, "q3");
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::GenerationStarted { id: 9 });
    select(&mut app, 0);
    assert!(ch(&mut app, 'd').is_empty());
    assert!(ch(&mut app, 'd').is_empty());
    assert!(ch(&mut app, 'e').is_empty());
    assert_eq!(app.chat.entries.len(), 6);
    assert!(app.chat.editing.is_none());
    assert!(notice(&app).contains("wait for the reply"));
}

// ---------------------------------------------------------------- continue

#[test]
fn continue_goes_on_writing_a_stopped_last_reply() {
    let mut app = ready_app();
    type_text(&mut app, "Tell a story");
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::GenerationStarted { id: 1 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 1,
            text: "Once upon".into(),
        },
    );
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::Cancel { id: 1 }]);
    update(
        &mut app,
        Msg::GenerationDone {
            id: 1,
            reason: StopReason::Cancelled,
            context_used: 20,
            figures: figures(),
            stats: None,
        },
    );
    assert_eq!(
        app.chat.entries[1].status,
        EntryStatus::Stopped("stopped".into())
    );

    // Not from the question.
    select(&mut app, 0);
    assert!(ch(&mut app, 'c').is_empty());
    assert_eq!(notice(&app), "only a stopped last reply can be continued");
    assert_eq!(
        app.chat.entries[1].status,
        EntryStatus::Stopped("stopped".into())
    );

    select(&mut app, 1);
    assert_eq!(
        ch(&mut app, 'c'),
        vec![
            Effect::SaveSession,
            generate(vec![user("Tell a story"), assistant("Once upon")], true)
        ]
    );
    assert_eq!(app.chat.entries.len(), 2);
    assert_eq!(app.chat.entries[1].status, EntryStatus::Streaming);
    assert_eq!(app.engine, EngineState::Generating);

    // The new tokens go on the same message; the token limit stops it again.
    update(&mut app, Msg::GenerationStarted { id: 2 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 2,
            text: " a time".into(),
        },
    );
    update(
        &mut app,
        Msg::GenerationDone {
            id: 2,
            reason: StopReason::MaxTokens,
            context_used: 30,
            figures: figures(),
            stats: None,
        },
    );
    assert_eq!(app.chat.entries.len(), 2);
    assert_eq!(app.chat.entries[1].text, "Once upon a time");
    assert_eq!(
        app.chat.entries[1].status,
        EntryStatus::Stopped("max tokens".into())
    );

    // Stopped by the token limit: it can go on again, and finish.
    assert_eq!(
        ch(&mut app, 'c'),
        vec![
            Effect::SaveSession,
            generate(
                vec![user("Tell a story"), assistant("Once upon a time")],
                true
            )
        ]
    );
    stream_reply(&mut app, 3, ", there was", StopReason::Eos);
    assert_eq!(app.chat.entries[1].text, "Once upon a time, there was");
    assert_eq!(app.chat.entries[1].status, EntryStatus::Done);

    // A finished reply cannot be continued.
    assert!(ch(&mut app, 'c').is_empty());
    assert_eq!(notice(&app), "only a stopped last reply can be continued");
    assert_eq!(app.chat.entries[1].status, EntryStatus::Done);
}

#[test]
fn a_stopped_reply_that_is_no_longer_last_cannot_be_continued() {
    let mut app = ready_app();
    type_text(&mut app, "q1");
    key(&mut app, KeyCode::Enter);
    stream_reply(&mut app, 1, "partial", StopReason::ContextFull);
    assert_eq!(
        app.chat.entries[1].status,
        EntryStatus::Stopped("context full".into())
    );
    turn(&mut app, 2, "q2", "a2");
    select(&mut app, 1);
    assert!(ch(&mut app, 'c').is_empty());
    assert_eq!(app.chat.entries.len(), 4);
    assert_eq!(app.chat.entries[3].status, EntryStatus::Done);
}

// -------------------------------------------------------------------- copy

const CODE_REPLY: &str = "Build it:\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n\nthen run:\n\n```sh\ncargo run --release\n```\n\nDone.";

#[test]
fn y_copies_the_selected_message_and_shift_y_its_last_code_block() {
    let mut app = ready_app();
    turn(&mut app, 1, "How?", CODE_REPLY);
    assert_eq!(app.chat.entries[1].text, CODE_REPLY);
    select(&mut app, 1);
    assert_eq!(
        ch(&mut app, 'y'),
        vec![Effect::Copy(CODE_REPLY.to_string())]
    );
    assert_eq!(
        ch(&mut app, 'Y'),
        vec![Effect::Copy("cargo run --release".to_string())]
    );
    assert!(notice(&app).contains("copied the code block"));
    select(&mut app, 0);
    assert_eq!(ch(&mut app, 'y'), vec![Effect::Copy("How?".to_string())]);
    assert!(ch(&mut app, 'Y').is_empty());
    assert_eq!(notice(&app), "this message has no code block");
}

#[test]
fn shift_y_copies_the_code_exactly() {
    let mut app = ready_app();
    turn(&mut app, 1, "Python?", "x");
    // Tabs, blank lines and trailing spaces inside the block are kept.
    let code = "def f():\n\treturn 1  \n\n\n# end";
    app.chat.entries[1].text = format!("Here:\n~~~python\n{code}\n~~~\n");
    select(&mut app, 1);
    assert_eq!(ch(&mut app, 'Y'), vec![Effect::Copy(code.to_string())]);
}

// ---------------------------------------------------------------- settings

#[test]
fn settings_typed_into_the_panel_apply_with_ctrl_s() {
    let mut app = ready_app();
    let before = app.chat.settings.clone();
    assert!(key(&mut app, KeyCode::F(2)).is_empty());
    assert_eq!(form(&app).focused_field(), Field::SystemPrompt);
    // Plain letters (even ones bound in other contexts: q, j, k, ?, d) type.
    type_text(&mut app, "Be brief?");
    // Enter in the system prompt is a line break.
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "Say yes or no; quick!");
    assert_eq!(
        field_text(&app, Field::SystemPrompt),
        "Be brief?\nSay yes or no; quick!"
    );
    set_field(&mut app, Field::Temperature, "0.2");
    set_field(&mut app, Field::TopK, "10");
    set_field(&mut app, Field::MaxTokens, "64");
    set_field(&mut app, Field::Stop, "\\n\\n, User:");
    set_field(&mut app, Field::Seed, "42");

    assert_eq!(ctrl(&mut app, 's'), vec![Effect::SaveSession]);
    assert!(app.overlay.is_none());
    let s = &app.chat.settings;
    assert_eq!(
        s.system_prompt.as_deref(),
        Some("Be brief?\nSay yes or no; quick!")
    );
    assert_eq!(s.sampling.temperature, 0.2);
    assert_eq!(s.sampling.top_k, 10);
    assert_eq!(s.sampling.seed, 42);
    assert!(s.reply.fixed_seed);
    assert_eq!(s.reply.max_tokens, 64);
    assert_eq!(s.reply.stop, ["\n\n", "User:"]);
    // Untouched fields keep their values; the context size is not changed.
    assert_eq!(s.sampling.top_p, before.sampling.top_p);
    assert_eq!(s.sampling.min_p, before.sampling.min_p);
    assert_eq!(s.reply.n_ctx, None);
    assert_eq!(app.engine, EngineState::Ready);

    // The next turn starts with the new system prompt.
    type_text(&mut app, "Is it?");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![
            Effect::SaveSession,
            generate(
                vec![
                    ChatMessage::new(Role::System, "Be brief?\nSay yes or no; quick!"),
                    user("Is it?")
                ],
                false
            )
        ]
    );
    // And reopening the panel shows what was applied.
    key(&mut app, KeyCode::F(2));
    assert_eq!(field_text(&app, Field::Temperature), "0.2");
    assert_eq!(field_text(&app, Field::Stop), "\\n\\n, User:");
}

#[test]
fn tab_shift_tab_enter_and_arrows_move_between_settings_fields() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(2));
    assert_eq!(form(&app).focused_field(), Field::SystemPrompt);
    key(&mut app, KeyCode::Tab);
    assert_eq!(form(&app).focused_field(), Field::Temperature);
    // Enter in a one-line field moves on rather than adding a line.
    key(&mut app, KeyCode::Enter);
    assert_eq!(form(&app).focused_field(), Field::TopK);
    key(&mut app, KeyCode::Down);
    assert_eq!(form(&app).focused_field(), Field::TopP);
    key(&mut app, KeyCode::Up);
    assert_eq!(form(&app).focused_field(), Field::TopK);
    press(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(form(&app).focused_field(), Field::Temperature);
    press(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    press(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    // Around the end to the last field.
    assert_eq!(form(&app).focused_field(), Field::Output);
    assert_eq!(field_text(&app, Field::Temperature), "0.8");
}

#[test]
fn an_invalid_setting_keeps_the_panel_open_and_names_the_field() {
    let mut app = ready_app();
    let before = app.chat.settings.clone();
    key(&mut app, KeyCode::F(2));
    set_field(&mut app, Field::TopK, "12");
    set_field(&mut app, Field::Temperature, "hot");
    assert!(ctrl(&mut app, 's').is_empty());
    assert_eq!(
        form(&app).error.as_deref(),
        Some("Temperature: 'hot' is not a valid number")
    );
    assert_eq!(app.chat.settings, before);
    // What was typed is still there to fix.
    assert_eq!(field_text(&app, Field::TopK), "12");

    set_field(&mut app, Field::Temperature, "0.5");
    set_field(&mut app, Field::Context, "10");
    assert!(ctrl(&mut app, 's').is_empty());
    assert_eq!(
        form(&app).error.as_deref(),
        Some("Context size: 10 is outside 64–1048576")
    );
    assert_eq!(app.chat.settings, before);

    set_field(&mut app, Field::Context, "default");
    assert_eq!(ctrl(&mut app, 's'), vec![Effect::SaveSession]);
    assert!(app.overlay.is_none());
    assert_eq!(app.chat.settings.sampling.temperature, 0.5);
    assert_eq!(app.chat.settings.sampling.top_k, 12);
}

#[test]
fn a_grammar_from_a_template_shows_as_output_and_free_drops_it() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(2));
    assert_eq!(field_text(&app, Field::Output), "free");
    key(&mut app, KeyCode::Esc);
    app.chat.settings.reply.constraint = Some(whet::engine::constraint::Constraint::Grammar {
        text: "root ::= \"yes\" | \"no\"".into(),
        source: "yesno.gbnf".into(),
    });
    let with_grammar = app.chat.settings.clone();
    key(&mut app, KeyCode::F(2));
    assert_eq!(field_text(&app, Field::Output), "grammar yesno.gbnf");
    // Left as it is, it stays.
    set_field(&mut app, Field::TopK, "12");
    assert_eq!(ctrl(&mut app, 's'), vec![Effect::SaveSession]);
    assert_eq!(
        app.chat.settings.reply.constraint,
        with_grammar.reply.constraint
    );
    // A new grammar cannot be typed here.
    key(&mut app, KeyCode::F(2));
    set_field(&mut app, Field::Output, "other.gbnf");
    assert!(ctrl(&mut app, 's').is_empty());
    let error = form(&app).error.clone().unwrap_or_default();
    assert!(
        error.starts_with("Output: 'other.gbnf' is not 'free'"),
        "{error}"
    );
    set_field(&mut app, Field::Output, "free");
    assert_eq!(ctrl(&mut app, 's'), vec![Effect::SaveSession]);
    assert_eq!(app.chat.settings.reply.constraint, None);
}

#[test]
fn a_new_context_size_reloads_the_model() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(2));
    assert_eq!(field_text(&app, Field::Context), "default");
    set_field(&mut app, Field::Context, "2048");
    assert_eq!(
        ctrl(&mut app, 's'),
        vec![Effect::SaveSession, Effect::RestartEngine]
    );
    assert_eq!(app.chat.settings.reply.n_ctx, Some(2048));
    assert_eq!(app.engine, EngineState::Loading);

    // The same size again: no reload.
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "model".into(),
            model_path: PathBuf::from("/m/model.gguf"),
            n_ctx: 2048,
        },
    );
    key(&mut app, KeyCode::F(2));
    assert_eq!(ctrl(&mut app, 's'), vec![Effect::SaveSession]);
    assert_eq!(app.engine, EngineState::Ready);

    // While a reply streams the reload waits; the setting is kept.
    type_text(&mut app, "hi");
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::GenerationStarted { id: 4 });
    key(&mut app, KeyCode::F(2));
    set_field(&mut app, Field::Context, "1024");
    assert_eq!(ctrl(&mut app, 's'), vec![Effect::SaveSession]);
    assert_eq!(app.chat.settings.reply.n_ctx, Some(1024));
    assert_eq!(app.engine, EngineState::Generating);
    assert!(notice(&app).contains("stop the reply first"));
}

/// The catalog's default model, by its file name.
const SMOLLM2: &str = "/m/SmolLM2-135M-Instruct.Q4_1.gguf";

#[test]
fn a_new_chat_on_a_catalog_model_starts_from_its_recommended_sampling() {
    let app = App::new(PathBuf::from(SMOLLM2));
    let s = &app.chat.settings;
    assert_eq!((s.sampling.temperature, s.sampling.top_p), (0.2, 0.9));
    assert!(
        s.sampling_set.is_empty(),
        "nothing chosen by the session yet"
    );
    // llama.cpp's defaults for what the model card does not say.
    assert_eq!((s.sampling.top_k, s.sampling.min_p), (40, 0.05));
    // And the session file says which values the session chose: none.
    let saved = app.to_session();
    assert_eq!(saved.sampling.temperature, 0.2);
    assert_eq!(saved.sampling_set, Some(SamplingOverrides::default()));

    // A model the catalog does not know samples with llama.cpp's defaults.
    let other = App::new(PathBuf::from("/m/mine.gguf"));
    assert_eq!(other.chat.settings.sampling, SamplingParams::default());
}

#[test]
fn the_users_defaults_beat_the_models_and_the_sessions_beat_both() {
    let mut app = App::new(PathBuf::from(SMOLLM2));
    app.set_user_sampling(SamplingOverrides {
        temperature: Some(0.7),
        ..SamplingOverrides::default()
    });
    assert_eq!(app.chat.settings.sampling.temperature, 0.7);
    assert_eq!(app.chat.settings.sampling.top_p, 0.9);
    key(&mut app, KeyCode::F(2));
    set_field(&mut app, Field::TopP, "0.5");
    ctrl(&mut app, 's');
    assert_eq!(app.chat.settings.sampling.top_p, 0.5);
    assert_eq!(
        app.chat.settings.sampling_set,
        SamplingOverrides {
            top_p: Some(0.5),
            ..SamplingOverrides::default()
        }
    );
}

#[test]
fn another_model_brings_its_own_defaults_but_not_over_what_the_session_chose() {
    let mut app = App::new(PathBuf::from(SMOLLM2));
    key(&mut app, KeyCode::F(2));
    set_field(&mut app, Field::TopK, "12");
    ctrl(&mut app, 's');
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "Gemma 3 270M".into(),
            model_path: PathBuf::from("/m/gemma-3-270m-q4_k_m.gguf"),
            n_ctx: 4096,
        },
    );
    let s = &app.chat.settings.sampling;
    // Gemma's card recommends nothing: llama.cpp's values come back…
    assert_eq!((s.temperature, s.top_p), (0.8, 0.95));
    // …and the session's own choice stays.
    assert_eq!(s.top_k, 12);
    key(&mut app, KeyCode::F(2));
    assert_eq!(
        form(&app).origin_label(Field::Temperature).as_deref(),
        Some("llama.cpp default")
    );
    assert_eq!(
        form(&app).origin_label(Field::TopK).as_deref(),
        Some("this session")
    );
}

#[test]
fn a_session_saved_before_sampling_had_sources_keeps_all_of_its_settings() {
    let mut old = Session::new("old");
    old.sampling_set = None;
    old.sampling = SamplingParams {
        temperature: 0.8,
        top_p: 0.95,
        ..SamplingParams::default()
    };
    let app = App::with_session(&old, PathBuf::from(SMOLLM2));
    assert_eq!(
        app.chat.settings.sampling.temperature, 0.8,
        "not the model's 0.2"
    );
    assert_eq!(
        app.chat.settings.sampling_set,
        SamplingOverrides::all_of(&old.sampling)
    );
}

#[test]
fn esc_discards_the_settings_panel() {
    let mut app = ready_app();
    let before = app.chat.settings.clone();
    key(&mut app, KeyCode::F(2));
    type_text(&mut app, "You are a pirate.");
    set_field(&mut app, Field::Temperature, "0");
    set_field(&mut app, Field::Context, "512");
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(app.chat.settings, before);
    assert_eq!(app.engine, EngineState::Ready);
    assert_eq!(notice(&app), "settings unchanged");
    // Reopened, the panel shows the settings in force, not the discarded text.
    key(&mut app, KeyCode::F(2));
    assert_eq!(field_text(&app, Field::SystemPrompt), "");
    assert_eq!(field_text(&app, Field::Temperature), "0.8");
}

// ----------------------------------------------------------------- pickers

#[test]
fn picking_another_model_restarts_the_engine_with_it() {
    let mut app = ready_app();
    assert_eq!(key(&mut app, KeyCode::F(3)), vec![Effect::ListModels]);
    match &app.overlay {
        Some(Overlay::Picker(p)) => {
            assert_eq!(p.kind, PickerKind::Models);
            assert!(p.loading);
        }
        _ => panic!("no picker"),
    }
    // A list for the other picker is not shown in this one.
    update(
        &mut app,
        Msg::PickerItems(PickerKind::Sessions, vec![item("s", false, None)]),
    );
    match &app.overlay {
        Some(Overlay::Picker(p)) => assert!(p.items.is_empty() && p.loading),
        _ => panic!("no picker"),
    }
    update(
        &mut app,
        Msg::PickerItems(
            PickerKind::Models,
            vec![
                item("/m/model.gguf", true, None),
                item("/m/other-model.gguf", false, None),
            ],
        ),
    );
    assert_eq!(picker_items(&app), (PickerKind::Models, 0, false, false));

    // Enter on the model in use changes nothing.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(app.engine, EngineState::Ready);

    key(&mut app, KeyCode::F(3));
    update(
        &mut app,
        Msg::PickerItems(
            PickerKind::Models,
            vec![
                item("/m/model.gguf", true, None),
                item("/m/other-model.gguf", false, None),
            ],
        ),
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(picker_items(&app).1, 1);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SaveSession, Effect::RestartEngine]
    );
    assert!(app.overlay.is_none());
    assert_eq!(app.model_path, PathBuf::from("/m/other-model.gguf"));
    assert_eq!(app.model_name, "other-model");
    assert_eq!(app.engine, EngineState::Loading);
    // The session is saved with the new model.
    assert_eq!(
        app.to_session().model,
        Some(PathBuf::from("/m/other-model.gguf"))
    );
}

#[test]
fn picking_a_remote_model_connects_to_it_and_the_session_remembers_it() {
    use whet::engine::remote::RemoteModel;
    let mut app = ready_app();
    key(&mut app, KeyCode::F(3));
    let gpu = RemoteModel {
        backend: "gpu".into(),
        model: None,
    };
    let mut stand_in = item("gpu", false, None);
    stand_in.remote = Some(gpu.clone());
    update(
        &mut app,
        Msg::PickerItems(
            PickerKind::Models,
            vec![item("/m/model.gguf", true, None), stand_in],
        ),
    );
    // The server answers while the picker is open: its models replace it.
    let big = RemoteModel {
        backend: "gpu".into(),
        model: Some("big".into()),
    };
    let mut listed = item("big @ gpu", false, None);
    listed.remote = Some(big.clone());
    update(
        &mut app,
        Msg::BackendItems {
            backend: "gpu".into(),
            items: vec![listed],
        },
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SaveSession, Effect::RestartEngine]
    );
    assert_eq!(app.remote, Some(big.clone()));
    assert_eq!(app.model_name, "big @ gpu");
    assert_eq!(app.engine, EngineState::Loading);
    let session = app.to_session();
    assert_eq!((session.model, session.backend), (None, Some(big.clone())));

    // A backend that did not answer says why and is not picked.
    key(&mut app, KeyCode::F(3));
    let mut down = item(
        "laptop",
        false,
        Some("backend 'laptop' is not reachable: refused"),
    );
    down.remote = Some(gpu);
    update(&mut app, Msg::PickerItems(PickerKind::Models, vec![down]));
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.remote, Some(big));

    // Back to a local file: the remote is forgotten.
    app.overlay = None;
    app.engine = EngineState::Ready;
    key(&mut app, KeyCode::F(3));
    update(
        &mut app,
        Msg::PickerItems(PickerKind::Models, vec![item("/m/model.gguf", false, None)]),
    );
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SaveSession, Effect::RestartEngine]
    );
    assert_eq!(app.remote, None);
    let session = app.to_session();
    assert_eq!(
        (session.model, session.backend),
        (Some(PathBuf::from("/m/model.gguf")), None)
    );
}

#[test]
fn esc_closes_a_picker_without_effects() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(3));
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(app.model_path, PathBuf::from("/m/model.gguf"));
}

#[test]
fn sessions_picker_opens_renames_and_deletes() {
    let mut app = ready_app();
    open_sessions(&mut app);

    // r renames the selected session: the name is editable in place.
    key(&mut app, KeyCode::Down);
    assert!(ch(&mut app, 'r').is_empty());
    assert!(picker_items(&app).3);
    backspace(&mut app, "older".len());
    // Letters bound in the picker (j, k, d, r) type while renaming.
    type_text(&mut app, "kept-draft-jr");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::RenameSession {
            from: "older".into(),
            to: "kept-draft-jr".into()
        }]
    );
    assert!(!picker_items(&app).3);
    update(
        &mut app,
        Msg::SessionRenamed {
            from: "older".into(),
            to: "kept-draft-jr".into(),
        },
    );
    assert_eq!(app.chat.session_name, "open-session");
    assert_eq!(notice(&app), "renamed session older to kept-draft-jr");

    // Esc while renaming cancels only the rename.
    ch(&mut app, 'r');
    type_text(&mut app, "xx");
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.overlay.is_some());
    assert!(!picker_items(&app).3);

    // d twice deletes.
    assert!(ch(&mut app, 'd').is_empty());
    assert!(picker_items(&app).2);
    assert_eq!(notice(&app), "press d again to delete session older");
    assert_eq!(
        ch(&mut app, 'd'),
        vec![Effect::DeleteSession("older".into())]
    );

    // Moving in between disarms.
    ch(&mut app, 'd');
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Down);
    assert!(!picker_items(&app).2);
    assert!(ch(&mut app, 'd').is_empty());

    // Enter on another session saves this one and opens it.
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::SaveSession, Effect::OpenSession("older".into())]
    );
}

#[test]
fn renaming_the_open_session_renames_it_in_the_ui() {
    let mut app = ready_app();
    open_sessions(&mut app);
    ch(&mut app, 'r');
    backspace(&mut app, 7);
    type_text(&mut app, "chat");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::RenameSession {
            from: "open-session".into(),
            to: "open-chat".into()
        }]
    );
    update(
        &mut app,
        Msg::SessionRenamed {
            from: "open-session".into(),
            to: "open-chat".into(),
        },
    );
    assert_eq!(app.chat.session_name, "open-chat");
    // An unchanged or empty name renames nothing.
    ch(&mut app, 'r');
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    ch(&mut app, 'r');
    backspace(&mut app, 40);
    assert!(key(&mut app, KeyCode::Enter).is_empty());
}

#[test]
fn the_open_session_cannot_be_deleted() {
    let mut app = ready_app();
    open_sessions(&mut app);
    assert_eq!(picker_items(&app).1, 0);
    assert!(ch(&mut app, 'd').is_empty());
    assert!(!picker_items(&app).2);
    assert!(ch(&mut app, 'd').is_empty());
    assert_eq!(
        notice(&app),
        "this session is open; open another one to delete it"
    );
    // Enter on it just closes the picker.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.overlay.is_none());
}

#[test]
fn a_session_with_a_problem_cannot_be_opened_and_says_why() {
    let mut app = ready_app();
    open_sessions(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(picker_items(&app).1, 2);
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let n = app.notice.clone().unwrap();
    assert!(n.error);
    assert_eq!(
        n.text,
        "broken.json: not a whet session: expected value at line 1 column 1"
    );
    // The picker stays open.
    assert_eq!(picker_items(&app).0, PickerKind::Sessions);
}

// -------------------------------------------------------------------- help

#[test]
fn f1_shows_the_help_and_any_key_closes_it() {
    let mut app = chat();
    type_text(&mut app, "draft");
    assert!(key(&mut app, KeyCode::F(1)).is_empty());
    assert!(app.show_help);
    // The closing key does nothing else: Enter does not send.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(!app.show_help);
    assert_eq!(app.chat.entries.len(), 4);
    assert_eq!(input_text(&app), "draft");
    key(&mut app, KeyCode::F(1));
    ch(&mut app, 'x');
    assert!(!app.show_help);
    assert_eq!(input_text(&app), "draft");
}

#[test]
fn question_mark_types_in_the_input_and_opens_help_in_the_message_list() {
    let mut app = chat();
    ch(&mut app, '?');
    assert!(!app.show_help);
    assert_eq!(input_text(&app), "?");
    key(&mut app, KeyCode::Tab);
    let selected = app.chat.selected;
    ch(&mut app, '?');
    assert!(app.show_help);
    key(&mut app, KeyCode::Up);
    assert!(!app.show_help);
    assert_eq!(app.chat.selected, selected);
}

#[test]
fn help_opens_over_the_settings_panel_and_closing_it_keeps_the_panel() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(2));
    type_text(&mut app, "sys");
    key(&mut app, KeyCode::F(1));
    assert!(app.show_help);
    key(&mut app, KeyCode::Esc);
    assert!(!app.show_help);
    assert_eq!(field_text(&app, Field::SystemPrompt), "sys");
}

// ------------------------------------------------------------------- mouse

#[test]
fn the_mouse_wheel_scrolls_the_conversation() {
    let mut app = chat();
    assert_eq!(app.chat.scroll_up, 0);
    assert!(mouse(&mut app, MouseEventKind::ScrollUp, 5, 5).is_empty());
    assert_eq!(app.chat.scroll_up, 3);
    mouse(&mut app, MouseEventKind::ScrollUp, 5, 5);
    assert_eq!(app.chat.scroll_up, 6);
    mouse(&mut app, MouseEventKind::ScrollDown, 5, 5);
    assert_eq!(app.chat.scroll_up, 3);
    for _ in 0..5 {
        mouse(&mut app, MouseEventKind::ScrollDown, 5, 5);
    }
    assert_eq!(app.chat.scroll_up, 0);

    // While the view follows the selection, scrolling starts from what is
    // on screen.
    app.drawn.set(DrawnLayout {
        scroll_up: 20,
        ..DrawnLayout::default()
    });
    select(&mut app, 1);
    assert!(app.chat.follow_selection);
    mouse(&mut app, MouseEventKind::ScrollUp, 5, 5);
    assert_eq!(app.chat.scroll_up, 23);
    assert!(!app.chat.follow_selection);
}

#[test]
fn a_click_moves_the_focus_to_the_pane_clicked() {
    let mut app = chat();
    app.drawn.set(DrawnLayout {
        messages: Rect::new(0, 1, 80, 20),
        input: Rect::new(0, 21, 80, 4),
        ..DrawnLayout::default()
    });
    assert_eq!(app.chat.focus, Focus::Input);
    let left = MouseEventKind::Down(MouseButton::Left);
    assert!(mouse(&mut app, left, 10, 5).is_empty());
    assert_eq!(app.chat.focus, Focus::Messages);
    // Focusing the list selects the last message.
    assert_eq!(app.chat.selected, Some(3));
    mouse(&mut app, left, 79, 24);
    assert_eq!(app.chat.focus, Focus::Input);
    // Outside both (the status line), and other buttons: no change.
    mouse(&mut app, left, 10, 0);
    assert_eq!(app.chat.focus, Focus::Input);
    mouse(&mut app, MouseEventKind::Down(MouseButton::Right), 10, 5);
    assert_eq!(app.chat.focus, Focus::Input);
    mouse(&mut app, left, 0, 1);
    assert_eq!(app.chat.focus, Focus::Messages);
}

#[test]
fn the_mouse_does_nothing_under_an_overlay() {
    let mut app = chat();
    app.drawn.set(DrawnLayout {
        messages: Rect::new(0, 1, 80, 20),
        input: Rect::new(0, 21, 80, 4),
        ..DrawnLayout::default()
    });
    key(&mut app, KeyCode::F(2));
    mouse(&mut app, MouseEventKind::ScrollUp, 5, 5);
    mouse(&mut app, MouseEventKind::Down(MouseButton::Left), 10, 5);
    assert_eq!(app.chat.scroll_up, 0);
    assert_eq!(app.chat.focus, Focus::Input);
}

// ------------------------------------------------------------------ keymap

#[test]
fn a_user_keymap_moves_regenerate_to_ctrl_n() {
    let (keymap, problems) =
        Keymap::from_toml("[global]\nregenerate = \"ctrl+n\"\n", "keymap.toml");
    assert_eq!(problems, Vec::<String>::new());
    let mut app = ready_app();
    app.keymap = keymap;
    turn(&mut app, 1, "Hi", "first");
    let before = app.chat.entries.clone();

    assert!(ctrl(&mut app, 'g').is_empty());
    assert_eq!(app.chat.entries, before);
    assert_eq!(app.engine, EngineState::Ready);

    assert_eq!(
        ctrl(&mut app, 'n'),
        vec![Effect::SaveSession, generate(vec![user("Hi")], false)]
    );
    assert_eq!(
        texts(&app.chat.entries),
        [(Role::User, "Hi"), (Role::Assistant, "")]
    );
    assert_eq!(app.chat.entries[1].status, EntryStatus::Streaming);
}

#[test]
fn a_user_keymap_rebinds_delete_in_the_message_list() {
    let (keymap, problems) =
        Keymap::from_toml("[messages]\ndelete_message = \"x\"\n", "keymap.toml");
    assert_eq!(problems, Vec::<String>::new());
    let mut app = chat();
    app.keymap = keymap;
    select(&mut app, 3);
    assert!(ch(&mut app, 'd').is_empty());
    assert!(!app.chat.delete_armed);
    assert!(ch(&mut app, 'x').is_empty());
    // The hint names the key in force.
    assert_eq!(notice(&app), "press x again to delete this message");
    assert_eq!(ch(&mut app, 'x'), vec![Effect::SaveSession]);
    assert_eq!(app.chat.entries.len(), 3);
}

// -------------------------------------------------------------------- quit

#[test]
fn ctrl_c_twice_quits_from_the_settings_panel() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(2));
    assert!(ctrl(&mut app, 'c').is_empty());
    assert!(app.quit_armed);
    assert!(!app.should_quit);
    assert_eq!(notice(&app), "press Ctrl+C again to quit");
    // The first press did not close or change the panel.
    assert!(matches!(app.overlay, Some(Overlay::Settings(_))));
    assert_eq!(ctrl(&mut app, 'c'), vec![Effect::Quit]);
    assert!(app.should_quit);
}

#[test]
fn ctrl_c_twice_quits_from_a_picker_while_renaming() {
    let mut app = ready_app();
    open_sessions(&mut app);
    ch(&mut app, 'r');
    assert!(ctrl(&mut app, 'c').is_empty());
    assert_eq!(ctrl(&mut app, 'c'), vec![Effect::Quit]);
    assert!(app.should_quit);
}

#[test]
fn ctrl_c_twice_quits_from_the_help() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(1));
    assert!(ctrl(&mut app, 'c').is_empty());
    assert_eq!(ctrl(&mut app, 'c'), vec![Effect::Quit]);
    assert!(app.should_quit);
}

#[test]
fn another_key_between_the_two_ctrl_c_disarms_quitting() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(3));
    ctrl(&mut app, 'c');
    key(&mut app, KeyCode::Down);
    assert!(!app.quit_armed);
    assert!(ctrl(&mut app, 'c').is_empty());
    assert!(!app.should_quit);
}

// ------------------------------------------------- edits that overlap others

#[test]
fn a_second_edit_keeps_the_original_draft() {
    let mut app = chat();
    type_text(&mut app, "my draft");
    select(&mut app, 0);
    ch(&mut app, 'e');
    assert_eq!(input_text(&app), "q1");
    // Change of mind: edit another message instead.
    select(&mut app, 2);
    ch(&mut app, 'e');
    assert_eq!(input_text(&app), "q2");
    assert_eq!(app.chat.editing.as_ref().map(|(i, _)| *i), Some(2));
    key(&mut app, KeyCode::Esc);
    // The user's own draft, not the text of the first edited message.
    assert_eq!(input_text(&app), "my draft");
}

#[test]
fn deleting_the_message_being_edited_does_not_save_the_edit_over_another() {
    let mut app = chat();
    select(&mut app, 2);
    ch(&mut app, 'e');
    type_text(&mut app, " edited");
    // Back to the list, delete the message being edited.
    select(&mut app, 2);
    ch(&mut app, 'd');
    ch(&mut app, 'd');
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.chat.focus, Focus::Input);
    key(&mut app, KeyCode::Enter);
    // Whatever happens, the user's question never becomes the model's reply.
    assert!(
        !app.chat
            .entries
            .iter()
            .any(|e| e.role == Role::Assistant && e.text == "q2 edited"),
        "{:?}",
        texts(&app.chat.entries)
    );
}

#[test]
fn switching_branches_while_editing_does_not_save_the_edit_into_the_other_branch() {
    let mut app = chat();
    select(&mut app, 0);
    ch(&mut app, 'e');
    type_text(&mut app, " again");
    key(&mut app, KeyCode::Enter);
    stream_reply(&mut app, 3, "b1", StopReason::Eos);
    // Edit the new reply b1, then look at the old branch before saving.
    select(&mut app, 1);
    ch(&mut app, 'e');
    type_text(&mut app, " fixed");
    select(&mut app, 1);
    ch(&mut app, ']');
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    // The fixed reply may only ever follow its own question.
    for (i, entry) in app.chat.entries.iter().enumerate() {
        if entry.text == "b1 fixed" {
            assert_eq!(
                app.chat.entries[i - 1].text,
                "q1 again",
                "{:?}",
                texts(&app.chat.entries)
            );
        }
    }
    assert!(
        app.chat.entries.iter().any(|e| e.text == "a1")
            || app.chat.entries[0]
                .branches
                .iter()
                .flatten()
                .any(|e| e.text == "a1"),
        "a1 is gone: {:?}",
        texts(&app.chat.entries)
    );
}

#[test]
fn regenerating_waits_for_an_edit_in_progress_so_no_stream_is_buried() {
    let mut app = chat();
    select(&mut app, 3);
    ch(&mut app, 'e');
    type_text(&mut app, " edited");
    // While editing, regenerate is refused: the edit is tied to its message.
    assert!(ctrl(&mut app, 'g').is_empty());
    assert!(
        app.notice
            .as_ref()
            .unwrap()
            .text
            .contains("finish the edit"),
        "{:?}",
        app.notice
    );
    // Saving the edit works, then regenerating streams into a new reply.
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Effect::SaveSession]);
    let effects = ctrl(&mut app, 'g');
    assert!(matches!(
        effects.as_slice(),
        [Effect::SaveSession, Effect::Generate { .. }]
    ));
    update(&mut app, Msg::GenerationStarted { id: 7 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 7,
            text: "streamed".into(),
        },
    );
    let buried = app
        .chat
        .entries
        .iter()
        .flat_map(|e| e.branches.iter().flatten())
        .any(|e| e.status == EntryStatus::Streaming);
    assert!(!buried, "{:?}", app.chat.entries);
    assert_eq!(app.chat.entries.last().unwrap().text, "streamed");
}

#[test]
fn a_restored_draft_goes_on_where_it_ended() {
    let mut app = chat();
    type_text(&mut app, "my draft");
    // Cancelled edit.
    select(&mut app, 0);
    ch(&mut app, 'e');
    key(&mut app, KeyCode::Esc);
    type_text(&mut app, "!");
    assert_eq!(input_text(&app), "my draft!");
    // Sent edit.
    select(&mut app, 0);
    ch(&mut app, 'e');
    type_text(&mut app, "?");
    key(&mut app, KeyCode::Enter);
    assert_eq!(input_text(&app), "my draft!");
    type_text(&mut app, "!");
    assert_eq!(input_text(&app), "my draft!!");
}

#[test]
fn applying_the_settings_panel_unchanged_changes_nothing() {
    let mut app = ready_app();
    app.chat.settings.reply.stop = vec!["User:".into(), "\n\n".into(), "\t".into()];
    app.chat.settings.system_prompt = Some("Be brief.".into());
    let before = app.chat.settings.clone();
    key(&mut app, KeyCode::F(2));
    assert_eq!(ctrl(&mut app, 's'), vec![Effect::SaveSession]);
    assert_eq!(app.chat.settings, before);
}

// ------------------------------------------------ nothing lost on quitting

#[test]
fn a_failed_save_stays_in_view_and_quitting_asks_first() {
    let mut app = chat();
    update(
        &mut app,
        Msg::SessionSaved(Err(
            "/d/sessions/s.json: cannot save the session: No space left on device (os error 28)"
                .into(),
        )),
    );
    assert!(app
        .chat
        .unsaved
        .as_deref()
        .unwrap()
        .contains("No space left"));
    assert!(notice(&app).starts_with("not saved: "), "{}", notice(&app));
    // Other keys clear a passing notice, never the unsaved state.
    type_text(&mut app, "more");
    assert!(app.chat.unsaved.is_some());

    // Ctrl+C asks (no arming, no quitting); Esc keeps working.
    assert!(ctrl(&mut app, 'c').is_empty());
    assert!(matches!(app.overlay, Some(Overlay::QuitUnsaved)));
    assert!(!app.should_quit);
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.overlay.is_none());
    assert!(!app.should_quit);
    assert_eq!(input_text(&app), "more");

    // r saves again; while it still fails the question comes back.
    ctrl(&mut app, 'c');
    assert_eq!(ch(&mut app, 'r'), vec![Effect::SaveSession]);
    assert!(app.overlay.is_none());
    ctrl(&mut app, 'c');
    assert!(matches!(app.overlay, Some(Overlay::QuitUnsaved)));
    // q quits: the driver writes a rescue copy.
    assert_eq!(ch(&mut app, 'q'), vec![Effect::Quit]);
    assert!(app.should_quit);
}

#[test]
fn a_save_that_works_again_clears_the_warning_and_quitting_is_normal() {
    let mut app = chat();
    update(&mut app, Msg::SessionSaved(Err("disk full".into())));
    update(&mut app, Msg::SessionSaved(Ok(())));
    assert_eq!(app.chat.unsaved, None);
    assert_eq!(notice(&app), "the session is saved again");
    assert!(ctrl(&mut app, 'c').is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(ctrl(&mut app, 'c'), vec![Effect::Quit]);
}

#[test]
fn q_in_the_message_list_asks_too_when_unsaved() {
    let mut app = chat();
    update(&mut app, Msg::SessionSaved(Err("read-only".into())));
    key(&mut app, KeyCode::Tab);
    assert!(ch(&mut app, 'q').is_empty());
    assert!(matches!(app.overlay, Some(Overlay::QuitUnsaved)));
}

// ------------------------------------------------ Enter while a reply stops

/// Generation `id` ends as stopped (Esc's Cancel reached the worker).
fn stopped(app: &mut App, id: u64) -> Vec<Effect> {
    update(
        app,
        Msg::GenerationDone {
            id,
            reason: StopReason::Cancelled,
            context_used: 60,
            figures: figures(),
            stats: None,
        },
    )
}

#[test]
fn a_message_sent_while_the_reply_stops_waits_for_it_and_goes_out_alone() {
    let mut app = chat();
    type_text(&mut app, "q3");
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::GenerationStarted { id: 3 });
    update(
        &mut app,
        Msg::Token {
            id: 3,
            text: "partial".into(),
            context_used: 0,
            token: -1,
            probs: None,
        },
    );
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::Cancel { id: 3 }]);
    assert!(app.chat.stopping);
    type_text(&mut app, "next question");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(input_text(&app), "", "the message left the input");
    assert!(
        notice(&app).contains("as soon as the reply has stopped"),
        "{}",
        notice(&app)
    );
    // A second message does not glue onto the first.
    type_text(&mut app, "another");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(input_text(&app), "another");
    assert!(notice(&app).contains("already waiting"), "{}", notice(&app));

    let effects = stopped(&mut app, 3);
    assert!(!app.chat.stopping);
    assert_eq!(app.chat.queued, None);
    let n = app.chat.entries.len();
    assert_eq!(
        app.chat.entries[n - 3].status,
        EntryStatus::Stopped("stopped".into())
    );
    assert_eq!(app.chat.entries[n - 2].text, "next question");
    assert_eq!(app.chat.entries[n - 1].status, EntryStatus::Streaming);
    assert!(
        matches!(
            effects.as_slice(),
            [
                Effect::SaveSession,
                Effect::SaveSession,
                Effect::Generate {
                    continue_reply: false,
                    ..
                }
            ]
        ),
        "{effects:?}"
    );
}

#[test]
fn esc_takes_back_a_waiting_message() {
    let mut app = chat();
    type_text(&mut app, "q3");
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::GenerationStarted { id: 3 });
    key(&mut app, KeyCode::Esc);
    type_text(&mut app, "wait");
    key(&mut app, KeyCode::Enter);
    // Esc again takes the waiting message back into the input, before
    // what was typed since.
    type_text(&mut app, "more");
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.chat.queued, None);
    assert_eq!(input_text(&app), "wait\nmore");
    let effects = stopped(&mut app, 3);
    assert_eq!(effects, vec![Effect::SaveSession], "nothing is sent");
    assert_eq!(input_text(&app), "wait\nmore");
}

// ------------------------------------------- a message too long for the context

#[test]
fn a_conversation_too_long_for_the_context_says_to_delete_a_message() {
    let mut app = chat();
    type_text(&mut app, "a very long paste");
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::GenerationStarted { id: 3 });
    update(
        &mut app,
        Msg::GenerationFailed {
            id: Some(3),
            message: whet::engine::protocol::prompt_too_long_message(5000, 4096),
        },
    );
    let hint = notice(&app);
    assert!(hint.contains("5000 tokens"), "{hint}");
    assert!(hint.contains("delete a long message"), "{hint}");
    assert!(hint.contains("d twice"), "{hint}");
    assert!(hint.contains("F2"), "{hint}");
    assert_eq!(
        app.chat.entries.last().unwrap().status,
        EntryStatus::Failed(
            "the conversation (5000 tokens) does not fit the context (4096)".into()
        )
    );
}

// ------------------------------------------------ the context while streaming

#[test]
fn the_context_used_follows_the_tokens_while_a_reply_streams() {
    let mut app = ready_app();
    assert_eq!(app.context_used, 0);
    type_text(&mut app, "hi");
    key(&mut app, KeyCode::Enter);
    update(&mut app, Msg::GenerationStarted { id: 1 });
    update(
        &mut app,
        Msg::Token {
            id: 1,
            text: "Hel".into(),
            context_used: 31,
            token: -1,
            probs: None,
        },
    );
    assert_eq!(app.context_used, 31);
    // Another generation's tokens do not count.
    update(
        &mut app,
        Msg::Token {
            id: 9,
            text: "x".into(),
            context_used: 999,
            token: -1,
            probs: None,
        },
    );
    assert_eq!(app.context_used, 31);
}
