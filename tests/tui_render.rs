//! The chat screen drawn on ratatui's TestBackend: snapshots at several
//! sizes (tiny ones included) with wide and combining characters, and the
//! colours that tell roles apart, asserted on buffer cells.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use whet::engine::protocol::{Role, StopReason};
use whet::tui::app::{update, App, Msg, TurnFigures};
use whet::tui::conversation::{Entry, EntryStatus};
use whet::tui::theme::{self, Slot};
mod common;

use common::screen::{draw, text_of};

fn send(app: &mut App, text: &str) {
    update(app, Msg::Paste(text.to_string()));
    update(
        app,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
}

/// A finished exchange with CJK, a ZWJ emoji, a combining accent and a tab,
/// then a reply still streaming.
fn conversation() -> App {
    let mut app = App::new("/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    app.chat.session_name = "chat-20261128-170000".into();
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "SmolLM2 135M".into(),
            model_path: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            n_ctx: 4096,
        },
    );
    send(&mut app, "日本語で挨拶して 👩‍👩‍👧 café\tok");
    update(&mut app, Msg::GenerationStarted { id: 1 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 1,
            text: "こんにちは！ e\u{301}t\u{e9} 🎉\n\nIn **Rust**:\n```rust\nfn main() {\n\tprintln!(\"hi\");\n}\n```".into(),
        },
    );
    update(
        &mut app,
        Msg::GenerationDone {
            id: 1,
            reason: StopReason::Eos,
            context_used: 57,
            figures: TurnFigures {
                ttft_ms: 84.0,
                tokens_per_sec: 121.5,
            },
            stats: None,
        },
    );
    send(
        &mut app,
        "And a longer answer, please, so that it wraps across several lines of the view.",
    );
    update(&mut app, Msg::GenerationStarted { id: 2 });
    update(&mut app, Msg::Token { context_used: 0, token: -1, probs: None, id: 2, text: "Sure: the quick brown fox jumps over the lazy dog, again and again, until the line wraps.".into() });
    app
}

#[test]
fn conversation_at_several_sizes() {
    let app = conversation();
    for (width, height) in [(80, 24), (40, 12), (24, 8)] {
        let screen = text_of(&draw(&app, width, height));
        insta::assert_snapshot!(format!("conversation_{width}x{height}"), screen);
    }
}

#[test]
fn loading_screen() {
    let mut app = App::new("/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    update(&mut app, Msg::Paste("typed while loading".into()));
    insta::assert_snapshot!("loading_60x10", text_of(&draw(&app, 60, 10)));
}

#[test]
fn crashed_engine_keeps_the_conversation_on_screen() {
    let mut app = conversation();
    update(
        &mut app,
        Msg::EngineStopped("the engine stopped: killed by signal 9 (SIGKILL)".into()),
    );
    let screen = text_of(&draw(&app, 100, 14));
    insta::assert_snapshot!("crashed_100x14", screen);
}

#[test]
fn tiny_terminals_say_so_and_never_panic() {
    let app = conversation();
    for (width, height) in [(1, 1), (2, 50), (200, 1), (23, 8), (24, 7), (0, 0)] {
        let screen = text_of(&draw(&app, width, height));
        if width >= 10 {
            assert!(
                screen.starts_with("terminal"),
                "{width}x{height}: {screen:?}"
            );
        }
    }
    insta::assert_snapshot!("too_small_30x4", text_of(&draw(&app, 30, 4)));
}

#[test]
fn the_view_follows_the_end_and_scrolls_back_through_a_long_session() {
    let mut app = App::new("/models/m.gguf".into());
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "m".into(),
            model_path: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            n_ctx: 4096,
        },
    );
    for i in 0..200 {
        app.chat.entries.push(Entry::new(
            Role::User,
            format!("message number {i}"),
            EntryStatus::Done,
        ));
    }
    let bottom = text_of(&draw(&app, 60, 20));
    assert!(bottom.contains("message number 199"), "{bottom}");
    assert!(!bottom.contains("message number 190 "), "{bottom}");
    app.chat.scroll_up = 30; // ten three-line messages up
    let scrolled = text_of(&draw(&app, 60, 20));
    assert!(scrolled.contains("message number 189"), "{scrolled}");
    assert!(!scrolled.contains("message number 199"), "{scrolled}");
    // Scrolling past the top shows the first message and does not panic.
    app.chat.scroll_up = u16::MAX;
    let top = text_of(&draw(&app, 60, 20));
    assert!(
        top.contains("message number 0\n") || top.contains("message number 0 "),
        "{top}"
    );
}

fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) {
    update(app, Msg::Key(KeyEvent::new(code, modifiers)));
}

/// Where `needle` starts on screen.
fn find(buffer: &Buffer, needle: &str) -> (u16, u16) {
    common::screen::find(buffer, needle)
        .unwrap_or_else(|| panic!("{needle} not on screen:\n{}", text_of(buffer)))
}

#[test]
fn every_shipped_theme_colours_the_screen_from_its_slots() {
    for name in ["dark", "light", "high-contrast"] {
        let mut app = conversation();
        app.theme = theme::load(name, None).unwrap().theme;
        let buffer = draw(&app, 80, 30);
        let expect = |needle: &str, slot: Slot| {
            let (x, y) = find(&buffer, needle);
            let style = app.theme.style(slot);
            assert_eq!(
                buffer[(x, y)].fg,
                style.fg.unwrap_or(Color::Reset),
                "{name}: {needle}"
            );
        };
        expect("You", Slot::UserMessage);
        expect("Assistant", Slot::AssistantMessage);
        expect("● generating", Slot::StatusBusy);
        expect("fn main", Slot::CodeBlock);
        let (x, y) = find(&buffer, "fn main");
        assert_eq!(
            buffer[(x, y)].bg,
            app.theme.style(Slot::CodeBlock).bg.unwrap_or(Color::Reset),
            "{name}: code block background"
        );
        // The focused input's border and the unfocused message list's.
        assert_eq!(
            Some(buffer[(0, 0)].fg),
            app.theme.style(Slot::Border).fg,
            "{name}: border"
        );
        let input_top = (0..30).find(|&y| {
            buffer[(1, y)].symbol() != " "
                && Some(buffer[(0, y)].fg) == app.theme.style(Slot::BorderFocused).fg
                && y > 0
        });
        assert!(input_top.is_some(), "{name}: focused input border");
    }
    // The roles differ in every theme.
    for name in ["dark", "light", "high-contrast"] {
        let theme = theme::load(name, None).unwrap().theme;
        assert_ne!(
            theme.style(Slot::UserMessage),
            theme.style(Slot::AssistantMessage)
        );
    }
}

#[test]
fn markdown_replies_set_code_apart() {
    let app = conversation();
    let screen = text_of(&draw(&app, 60, 30));
    assert!(screen.contains("╭─ rust"), "{screen}");
    assert!(screen.contains("│     println!(\"hi\");"), "{screen}");
    assert!(
        screen.contains("In Rust:"),
        "bold markers are not shown: {screen}"
    );
}

#[test]
fn help_lists_the_keys_of_the_screen_below() {
    let mut app = conversation();
    key(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    assert!(app.show_help);
    let input_help = text_of(&draw(&app, 90, 40));
    assert!(input_help.contains("Ctrl+G"), "{input_help}");
    assert!(input_help.contains("Alt+Enter"), "{input_help}");
    key(&mut app, KeyCode::Char('x'), KeyModifiers::NONE);
    assert!(!app.show_help, "any key closes the help");
    key(&mut app, KeyCode::Tab, KeyModifiers::NONE);
    key(&mut app, KeyCode::Char('?'), KeyModifiers::NONE);
    let messages_help = text_of(&draw(&app, 90, 40));
    insta::assert_snapshot!("help_messages_90x40", messages_help);
}

#[test]
fn settings_panel_and_pickers_draw_at_small_and_large_sizes() {
    let mut app = conversation();
    key(&mut app, KeyCode::F(2), KeyModifiers::NONE);
    insta::assert_snapshot!("settings_80x30", text_of(&draw(&app, 80, 30)));
    for (width, height) in [(24, 8), (30, 10), (200, 60)] {
        draw(&app, width, height);
    }
    key(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    key(&mut app, KeyCode::F(4), KeyModifiers::NONE);
    update(
        &mut app,
        Msg::PickerItems(
            whet::tui::picker::PickerKind::Sessions,
            vec![
                whet::tui::picker::PickerItem {
                    key: "chat-20261128-170000".into(),
                    label: "chat-20261128-170000".into(),
                    detail: "4 messages · 日本語で挨拶して".into(),
                    current: true,
                    problem: None,
                    remote: None,
                },
                whet::tui::picker::PickerItem {
                    key: "broken".into(),
                    label: "broken".into(),
                    detail: "0 messages · ".into(),
                    current: false,
                    problem: Some("broken.json:4:17: not a valid session file".into()),
                    remote: None,
                },
            ],
        ),
    );
    insta::assert_snapshot!("sessions_90x16", text_of(&draw(&app, 90, 16)));
    for (width, height) in [(24, 8), (1, 1), (200, 3)] {
        draw(&app, width, height);
    }
}

#[test]
fn the_selected_message_is_brought_into_view() {
    let mut app = App::new("/models/m.gguf".into());
    for i in 0..100 {
        app.chat.entries.push(Entry::new(
            Role::User,
            format!("message number {i}"),
            EntryStatus::Done,
        ));
    }
    key(&mut app, KeyCode::Tab, KeyModifiers::NONE);
    for _ in 0..60 {
        key(&mut app, KeyCode::Up, KeyModifiers::NONE);
    }
    let screen = text_of(&draw(&app, 60, 20));
    assert!(screen.contains("▶ You"), "{screen}");
    assert!(
        screen.contains("message number 39\n") || screen.contains("message number 39 "),
        "{screen}"
    );
    let (x, y) = find(&draw(&app, 60, 20), "▶ You");
    assert_eq!(
        draw(&app, 60, 20)[(x, y)].bg,
        app.theme.style(Slot::Selection).bg.unwrap_or(Color::Reset)
    );
    // Scrolling from there starts where the view is.
    let shown = app.drawn.get().scroll_up;
    key(&mut app, KeyCode::PageDown, KeyModifiers::NONE);
    assert_eq!(app.chat.scroll_up, shown - 10);
}

#[test]
fn scrolled_up_the_view_stays_put_while_the_reply_grows() {
    let mut app = App::new("/models/m.gguf".into());
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "m".into(),
            model_path: "/models/m.gguf".into(),
            n_ctx: 4096,
        },
    );
    for i in 0..30 {
        app.chat.entries.push(Entry::new(
            Role::User,
            format!("message number {i}"),
            EntryStatus::Done,
        ));
    }
    send(&mut app, "Tell me more");
    update(&mut app, Msg::GenerationStarted { id: 1 });
    let token = |app: &mut App, text: &str| {
        update(
            app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id: 1,
                text: text.into(),
            },
        )
    };
    token(&mut app, "first line\n");
    draw(&app, 60, 20);
    key(&mut app, KeyCode::PageUp, KeyModifiers::NONE);
    let before = text_of(&draw(&app, 60, 20));
    for i in 0..8 {
        token(&mut app, &format!("streamed line {i}\n"));
    }
    let after = text_of(&draw(&app, 60, 20));
    let body = |screen: &str| {
        screen
            .lines()
            .skip(1)
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        body(&before),
        body(&after),
        "the view moved:\n{before}\n{after}"
    );
    // Back at the bottom, it follows the stream again.
    key(&mut app, KeyCode::PageDown, KeyModifiers::NONE);
    token(&mut app, "the newest line");
    let bottom = text_of(&draw(&app, 60, 20));
    assert!(bottom.contains("the newest line"), "{bottom}");
}

#[test]
fn an_unsaved_session_says_so_in_the_status_and_asks_before_quitting() {
    let mut app = conversation();
    update(
        &mut app,
        Msg::SessionSaved(Err(
            "/d/sessions/s.json: cannot save the session: No space left on device (os error 28)"
                .into(),
        )),
    );
    app.chat.rescue_hint = "/tmp/whet-rescue".into();
    let buffer = draw(&app, 100, 24);
    let (x, y) = common::screen::find(&buffer, "NOT SAVED").expect("NOT SAVED in the status");
    assert_eq!(y, 23, "on the status line");
    assert_eq!(
        Some(buffer[(x, y)].fg),
        app.theme.style(Slot::StatusError).fg,
        "in the error colour"
    );
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    insta::assert_snapshot!("quit_unsaved_100x24", text_of(&draw(&app, 100, 24)));
    // Tiny terminals do not panic with the question up.
    for (width, height) in [(30, 8), (10, 3)] {
        draw(&app, width, height);
    }
}
