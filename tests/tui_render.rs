//! The chat screen drawn on ratatui's TestBackend: snapshots at several
//! sizes (tiny ones included) with wide and combining characters, and the
//! colours that tell roles apart, asserted on buffer cells.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use unicode_width::UnicodeWidthStr;
use whet::engine::protocol::StopReason;
use whet::tui::app::{update, App, Msg, TurnFigures};
use whet::tui::view;

fn draw(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| view::render(app, frame)).unwrap();
    terminal.backend().buffer().clone()
}

/// The screen as a terminal would show it: the cell after a wide character
/// is covered by it, so it is skipped.
fn text_of(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut x = 0;
        while x < area.width {
            let symbol = buffer[(x, y)].symbol();
            out.push_str(symbol);
            x += (UnicodeWidthStr::width(symbol) as u16).max(1);
        }
        out.push('\n');
    }
    out
}

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
    let mut app = App::new("SmolLM2-135M-Instruct.Q4_1");
    app.session_name = "chat-20261128-170000".into();
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "SmolLM2 135M".into(),
            n_ctx: 4096,
        },
    );
    send(&mut app, "日本語で挨拶して 👩‍👩‍👧 café\tok");
    update(&mut app, Msg::GenerationStarted { id: 1 });
    update(
        &mut app,
        Msg::Token {
            id: 1,
            text: "こんにちは！ e\u{301}t\u{e9} 🎉".into(),
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
        },
    );
    send(
        &mut app,
        "And a longer answer, please, so that it wraps across several lines of the view.",
    );
    update(&mut app, Msg::GenerationStarted { id: 2 });
    update(&mut app, Msg::Token { id: 2, text: "Sure: the quick brown fox jumps over the lazy dog, again and again, until the line wraps.".into() });
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
    let mut app = App::new("SmolLM2-135M-Instruct.Q4_1");
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
fn roles_and_states_have_their_colours() {
    let app = conversation();
    let buffer = draw(&app, 80, 24);
    let find = |needle: &str| -> (u16, u16) {
        let text = text_of(&buffer);
        for (y, line) in text.lines().enumerate() {
            let cells: Vec<&str> = (0..buffer.area.width)
                .map(|x| buffer[(x, y as u16)].symbol())
                .collect();
            for x in 0..cells.len() {
                if cells[x..].concat().starts_with(needle) {
                    return (x as u16, y as u16);
                }
            }
            let _ = line;
        }
        panic!("{needle} not on screen:\n{text}");
    };
    let (x, y) = find("You");
    assert_eq!(buffer[(x, y)].fg, Color::Green);
    let (x, y) = find("Assistant");
    assert_eq!(buffer[(x, y)].fg, Color::Magenta);
    let (x, y) = find("● generating");
    assert_eq!(buffer[(x, y)].fg, Color::Cyan);
    // The focused input has a cyan border, the message list a grey one.
    assert_eq!(buffer[(0, 0)].fg, Color::DarkGray);
    let input_top =
        (0..24).find(|&y| buffer[(1, y)].symbol() == "─" && buffer[(0, y)].fg == Color::Cyan);
    assert!(input_top.is_some(), "focused input border is cyan");
}

#[test]
fn the_view_follows_the_end_and_scrolls_back_through_a_long_session() {
    let mut app = App::new("m");
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "m".into(),
            n_ctx: 4096,
        },
    );
    for i in 0..200 {
        app.entries.push(whet::tui::app::Entry {
            role: whet::engine::protocol::Role::User,
            text: format!("message number {i}"),
            status: whet::tui::app::EntryStatus::Done,
        });
    }
    let bottom = text_of(&draw(&app, 60, 20));
    assert!(bottom.contains("message number 199"), "{bottom}");
    assert!(!bottom.contains("message number 190 "), "{bottom}");
    app.scroll_up = 30; // ten three-line messages up
    let scrolled = text_of(&draw(&app, 60, 20));
    assert!(scrolled.contains("message number 189"), "{scrolled}");
    assert!(!scrolled.contains("message number 199"), "{scrolled}");
    // Scrolling past the top shows the first message and does not panic.
    app.scroll_up = u16::MAX;
    let top = text_of(&draw(&app, 60, 20));
    assert!(
        top.contains("message number 0\n") || top.contains("message number 0 "),
        "{top}"
    );
}
