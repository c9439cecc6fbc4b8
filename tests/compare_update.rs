//! The compare screen's state machine without a terminal or engines: real
//! key events through the default keymap, the duel engines' events as the
//! driver would deliver them, and the effects each step asks for.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use whet::arena::duel::{Column, DuelJob, ModelRef, Pace, ReplyState};
use whet::arena::runner::DuelEvent;
use whet::arena::Verdict;
use whet::engine::client::{ClientTiming, Generation};
use whet::engine::protocol::{GenerationStats, Role, StopReason};
use whet::tui::app::{update, App, Effect, EngineState, Msg, Screen};
use whet::tui::compare::ColumnEngine;
use whet::tui::conversation::EntryStatus;
use whet::tui::picker::{PickerItem, PickerKind};

fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    update(app, Msg::Key(KeyEvent::new(code, modifiers)))
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    press(app, code, KeyModifiers::NONE)
}

fn alt(app: &mut App, c: char) -> Vec<Effect> {
    press(app, KeyCode::Char(c), KeyModifiers::ALT)
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        assert!(press(app, KeyCode::Char(c), KeyModifiers::NONE).is_empty());
    }
}

fn ready_app() -> App {
    let mut app = App::new(PathBuf::from("/m/smol.gguf"));
    app.chat.session_name = "s".into();
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "Smol".into(),
            model_path: PathBuf::from("/m/smol.gguf"),
            n_ctx: 4096,
        },
    );
    assert_eq!(app.engine, EngineState::Ready);
    app
}

fn item(path: &str, current: bool) -> PickerItem {
    PickerItem {
        key: path.into(),
        label: path.into(),
        detail: String::new(),
        current,
        problem: None,
        remote: None,
    }
}

/// F9, then Enter on gemma in the picker.
fn compare_with_gemma(app: &mut App) {
    assert_eq!(key(app, KeyCode::F(9)), vec![Effect::ListModels]);
    update(
        app,
        Msg::PickerItems(
            PickerKind::Models,
            vec![item("/m/smol.gguf", true), item("/m/gemma.gguf", false)],
        ),
    );
    key(app, KeyCode::Down);
    assert_eq!(key(app, KeyCode::Enter), vec![Effect::SaveSession]);
    assert_eq!(app.screen, Screen::Compare);
}

fn event(app: &mut App, event: DuelEvent) -> Vec<Effect> {
    update(app, Msg::Duel(Box::new(event)))
}

fn done(app: &mut App, column: Column, text: &str) -> Vec<Effect> {
    event(
        app,
        DuelEvent::Token {
            column,
            text: text.into(),
        },
    );
    let generation = Generation {
        id: 1,
        text: text.into(),
        reason: StopReason::Eos,
        stats: GenerationStats {
            generated_tokens: 2,
            ..GenerationStats::default()
        },
        timing: ClientTiming::default(),
        tokens: Vec::new(),
    };
    event(
        app,
        DuelEvent::Done {
            column,
            generation: Box::new(generation),
        },
    )
}

fn loaded(app: &mut App, column: Column, pid: u32) -> Vec<Effect> {
    event(
        app,
        DuelEvent::Loaded {
            column,
            info: None,
            pid,
        },
    )
}

fn generated_columns(effects: &[Effect]) -> Vec<Column> {
    effects
        .iter()
        .flat_map(|e| match e {
            Effect::DuelJobs { jobs, .. } => jobs
                .iter()
                .filter_map(|j| match j {
                    DuelJob::Generate { column, .. } => Some(*column),
                    DuelJob::Cancel { .. } => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn the_first_message_starts_both_engines_and_waits_for_them_before_a_replies() {
    let mut app = ready_app();
    compare_with_gemma(&mut app);
    let screen = app.compare.as_ref().unwrap();
    assert_eq!(screen.duel.contender(Column::A).name, "Smol");
    assert_eq!(screen.duel.pace, Pace::OneAfterTheOther);
    type_text(&mut app, "Name a colour.");
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects[0],
        Effect::StartDuelEngines {
            models: [
                ModelRef::Local {
                    path: "/m/smol.gguf".into(),
                    sha256: None
                },
                ModelRef::Local {
                    path: "/m/gemma.gguf".into(),
                    sha256: None
                },
            ],
            chat_column: Column::A,
            pace: Pace::OneAfterTheOther,
        }
    );
    // Nothing generates while a model still loads.
    assert!(generated_columns(&effects).is_empty());
    assert!(loaded(&mut app, Column::A, 10).is_empty());
    let effects = loaded(&mut app, Column::B, 11);
    assert_eq!(generated_columns(&effects), [Column::A]);
    let Effect::DuelJobs { settings, .. } = &effects[0] else {
        panic!("{effects:?}")
    };
    // Both sides run with the chat's settings.
    assert_eq!(settings[0], settings[1]);
    assert_eq!(settings[0].sampling, app.chat.settings.sampling);

    // A's end starts B; B's end leaves the turn to vote on.
    assert_eq!(
        generated_columns(&done(&mut app, Column::A, "Red.")),
        [Column::B]
    );
    let effects = done(&mut app, Column::B, "Blue.");
    assert_eq!(effects, vec![Effect::SaveSession]);
    let screen = app.compare.as_ref().unwrap();
    assert_eq!(
        screen.engines,
        [
            ColumnEngine::Ready { pid: 10 },
            ColumnEngine::Ready { pid: 11 }
        ]
    );
    assert!(!screen.duel.busy());
}

#[test]
fn a_vote_with_a_note_is_recorded_and_blind_names_show_after_it() {
    let mut app = ready_app();
    compare_with_gemma(&mut app);
    assert_eq!(alt(&mut app, 'h'), vec![Effect::SaveSession]);
    let screen = app.compare.as_ref().unwrap();
    assert!(screen.duel.blind && !screen.duel.revealed);
    assert_eq!(screen.duel.shown_name(Column::A), "A");
    let chat_column = screen.chat_column;
    assert_eq!(
        screen.duel.contender(chat_column).name,
        "Smol",
        "the coin's column holds the chat's model"
    );
    type_text(&mut app, "Hi");
    let effects = key(&mut app, KeyCode::Enter);
    let Effect::StartDuelEngines {
        chat_column: told, ..
    } = &effects[0]
    else {
        panic!("{effects:?}")
    };
    assert_eq!(*told, chat_column);
    loaded(&mut app, Column::A, 1);
    loaded(&mut app, Column::B, 2);
    // Voting before both replies are in is refused; the note waits.
    alt(&mut app, 'n');
    type_text(&mut app, "B rambles");
    key(&mut app, KeyCode::Enter);
    assert!(alt(&mut app, 'a').is_empty());
    assert_eq!(
        app.compare.as_ref().unwrap().note.as_deref(),
        Some("B rambles")
    );
    done(&mut app, Column::A, "Hello.");
    done(&mut app, Column::B, "Hello hello hello");
    let effects = alt(&mut app, 'a');
    let Effect::RecordVote(vote) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(vote.verdict, Verdict::A);
    assert!(vote.blind);
    assert_eq!(vote.note.as_deref(), Some("B rambles"));
    assert_eq!(vote.session, "s");
    let screen = app.compare.as_ref().unwrap();
    assert!(screen.note.is_none());
    assert!(screen.duel.revealed);
    assert!(screen.duel.shown_name(Column::A).starts_with("A · "));
    // Blindness is chosen before the first message.
    assert!(alt(&mut app, 'h').is_empty());
}

#[test]
fn esc_stops_both_and_one_side_regenerates_alone() {
    let mut app = ready_app();
    compare_with_gemma(&mut app);
    alt(&mut app, 'p');
    assert_eq!(app.compare.as_ref().unwrap().duel.pace, Pace::AtOnce);
    type_text(&mut app, "Story");
    key(&mut app, KeyCode::Enter);
    loaded(&mut app, Column::A, 1);
    let effects = loaded(&mut app, Column::B, 2);
    assert_eq!(generated_columns(&effects), [Column::A, Column::B]);
    event(
        &mut app,
        DuelEvent::Token {
            column: Column::B,
            text: "Once".into(),
        },
    );
    let effects = key(&mut app, KeyCode::Esc);
    let Effect::DuelJobs { jobs, .. } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(
        jobs,
        &vec![
            DuelJob::Cancel { column: Column::A },
            DuelJob::Cancel { column: Column::B }
        ]
    );
    // The engines answer the cancel with their ends.
    for column in Column::BOTH {
        let generation = Generation {
            id: 1,
            text: String::new(),
            reason: StopReason::Cancelled,
            stats: GenerationStats::default(),
            timing: ClientTiming::default(),
            tokens: Vec::new(),
        };
        event(
            &mut app,
            DuelEvent::Done {
                column,
                generation: Box::new(generation),
            },
        );
    }
    let duel = &app.compare.as_ref().unwrap().duel;
    assert!(!duel.busy());
    assert_eq!(duel.turns[0].replies[1].text, "Once");
    let effects = alt(&mut app, '2');
    assert_eq!(generated_columns(&effects), [Column::B]);
}

#[test]
fn a_crashed_side_fails_alone_and_keeping_the_other_continues_the_chat() {
    let mut app = ready_app();
    compare_with_gemma(&mut app);
    type_text(&mut app, "Hi");
    key(&mut app, KeyCode::Enter);
    loaded(&mut app, Column::A, 1);
    loaded(&mut app, Column::B, 2);
    event(
        &mut app,
        DuelEvent::Token {
            column: Column::A,
            text: "Hel".into(),
        },
    );
    let effects = event(
        &mut app,
        DuelEvent::Failed {
            column: Column::A,
            message: "the engine stopped (signal 9)".into(),
        },
    );
    assert_eq!(generated_columns(&effects), [Column::B]);
    assert!(app.notice.as_ref().unwrap().error);
    done(&mut app, Column::B, "Hello there.");
    let screen = app.compare.as_ref().unwrap();
    assert!(matches!(
        screen.duel.turns[0].replies[0].state,
        ReplyState::Failed(_)
    ));
    assert!(matches!(screen.engines[0], ColumnEngine::Failed(_)));

    // F7: the chat goes on with B's model and B's side of the turn.
    let effects = key(&mut app, KeyCode::F(7));
    assert_eq!(
        effects,
        vec![Effect::EndDuel { keep: Column::B }, Effect::SaveSession]
    );
    assert_eq!(app.screen, Screen::Chat);
    assert!(app.compare.is_none());
    assert_eq!(app.model_path, PathBuf::from("/m/gemma.gguf"));
    let entries = &app.chat.entries;
    let last_two: Vec<(Role, &str)> = entries[entries.len() - 2..]
        .iter()
        .map(|e| (e.role, e.text.as_str()))
        .collect();
    assert_eq!(
        last_two,
        [(Role::User, "Hi"), (Role::Assistant, "Hello there.")]
    );
    assert_eq!(entries.last().unwrap().status, EntryStatus::Done);
}

#[test]
fn keeping_the_chats_side_before_any_message_changes_nothing_and_picking_itself_is_refused() {
    let mut app = ready_app();
    compare_with_gemma(&mut app);
    assert_eq!(key(&mut app, KeyCode::F(6)), vec![Effect::SaveSession]);
    assert_eq!(app.screen, Screen::Chat);
    assert_eq!(app.model_path, PathBuf::from("/m/smol.gguf"));
    // The chat's own model cannot be compared with itself.
    key(&mut app, KeyCode::F(9));
    update(
        &mut app,
        Msg::PickerItems(PickerKind::Models, vec![item("/m/smol.gguf", true)]),
    );
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.compare.is_none());
    assert_eq!(app.screen, Screen::Chat);
}

#[test]
fn a_comparison_in_progress_is_saved_with_the_session_and_comes_back_stopped() {
    let mut app = ready_app();
    compare_with_gemma(&mut app);
    type_text(&mut app, "Hi");
    key(&mut app, KeyCode::Enter);
    loaded(&mut app, Column::A, 1);
    loaded(&mut app, Column::B, 2);
    event(
        &mut app,
        DuelEvent::Token {
            column: Column::A,
            text: "Hal".into(),
        },
    );
    let session = app.to_session();
    let stored = session.compare.clone().unwrap();
    assert_eq!(stored.chat_column, Column::A);
    assert_eq!(stored.duel.turns[0].replies[0].text, "Hal");

    let mut reopened = App::with_session(&session, PathBuf::from("/m/smol.gguf"));
    assert_eq!(reopened.screen, Screen::Chat);
    let screen = reopened.compare.as_ref().unwrap();
    assert!(!screen.duel.busy(), "running replies come back stopped");
    assert_eq!(screen.engines, [ColumnEngine::Idle, ColumnEngine::Idle]);
    // F9 goes back to it; its next message starts the engines again.
    assert!(key(&mut reopened, KeyCode::F(9)).is_empty());
    assert_eq!(reopened.screen, Screen::Compare);
    type_text(&mut reopened, "Again");
    let effects = key(&mut reopened, KeyCode::Enter);
    assert!(
        matches!(effects[0], Effect::StartDuelEngines { .. }),
        "{effects:?}"
    );
}
