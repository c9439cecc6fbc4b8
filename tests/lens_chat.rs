//! The lens in the chat, driven through `update` with the engine's answers
//! scripted: probabilities kept with each reply (and saved), the token
//! cursor and the choice of an alternative, the fork request it builds, a
//! fork while the reply streams, a reply without probabilities; and the
//! lens drawn on TestBackend in every shipped theme, without colour and on
//! a tiny terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use whet::engine::probs::{Alternative, TokenProbs};
use whet::engine::protocol::{ChatMessage, Role, StopReason};
use whet::store::session;
use whet::tui::app::{update, App, Effect, Msg, TurnFigures};
use whet::tui::chat::Focus;
use whet::tui::conversation::EntryStatus;
use whet::tui::theme::{self, Slot, Theme};

mod common;

use common::screen::{draw, find, text_of};

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ready() -> App {
    let mut app = App::new("/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    app.chat.session_name = "chat-20261201-040000".into();
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "SmolLM2 135M".into(),
            model_path: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            n_ctx: 4096,
        },
    );
    app
}

fn ask(app: &mut App, text: &str) -> Vec<Effect> {
    update(app, Msg::Paste(text.to_string()));
    key(app, KeyCode::Enter)
}

/// A sampled token: (id, text, probability) and its alternatives.
fn token(app: &mut App, id: u64, sampled: (i32, &str, f32), others: &[(i32, &str, f32)]) {
    let mut top: Vec<Alternative> = std::iter::once(sampled)
        .chain(others.iter().copied())
        .map(|(token, text, p)| Alternative {
            token,
            text: text.into(),
            logprob: p.ln(),
        })
        .collect();
    top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
    update(
        app,
        Msg::Token {
            id,
            text: sampled.1.into(),
            context_used: 0,
            token: sampled.0,
            probs: Some(TokenProbs {
                logprob: sampled.2.ln(),
                top,
                entropy: Some(1.5),
            }),
        },
    );
}

fn done(app: &mut App, id: u64, reason: StopReason) -> Vec<Effect> {
    update(
        app,
        Msg::GenerationDone {
            id,
            reason,
            context_used: 40,
            figures: TurnFigures {
                ttft_ms: 80.0,
                tokens_per_sec: 100.0,
            },
            stats: None,
        },
    )
}

/// "The cat sat.\n日本" streamed as reply 1, with a doubtful " cat".
fn stream_reply(app: &mut App, id: u64) {
    token(app, id, (10, "The", 0.92), &[(11, "A", 0.05)]);
    token(
        app,
        id,
        (12, " cat", 0.18),
        &[(13, " dog", 0.55), (14, " bird", 0.1)],
    );
    token(app, id, (15, " sat", 0.4), &[(16, " ran", 0.3)]);
    token(app, id, (17, ".\n", 0.7), &[(2, "<|im_end|>", 0.2)]);
    token(app, id, (18, "日本", 0.3), &[(19, "e\u{301}", 0.25)]);
}

fn answered() -> App {
    let mut app = ready();
    ask(&mut app, "Tell me about cats");
    update(&mut app, Msg::GenerationStarted { id: 1 });
    stream_reply(&mut app, 1);
    done(&mut app, 1, StopReason::Eos);
    app
}

fn open_lens(app: &mut App) {
    key(app, KeyCode::Tab);
    assert_eq!(app.chat.focus, Focus::Messages);
    key(app, KeyCode::Char('t'));
}

#[test]
fn replies_keep_their_tokens_and_the_session_saves_them() {
    let mut app = ready();
    let effects = ask(&mut app, "Tell me about cats");
    assert!(effects.iter().any(|e| matches!(e, Effect::Generate { .. })));
    update(&mut app, Msg::GenerationStarted { id: 1 });
    stream_reply(&mut app, 1);
    done(&mut app, 1, StopReason::Eos);
    let reply = &app.chat.entries[1];
    assert_eq!(reply.text, "The cat sat.\n日本");
    let tokens = reply.tokens.as_ref().expect("tokens kept");
    let ids: Vec<i32> = tokens.iter().map(|t| t.id).collect();
    assert_eq!(ids, [10, 12, 15, 17, 18]);
    assert_eq!(tokens[1].top.len(), 3);
    assert_eq!(tokens[1].entropy.map(|e| e.0), Some(1500));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    session::save(&path, &app.to_session()).unwrap();
    let loaded = session::load(&path).unwrap();
    assert_eq!(loaded.version, session::SESSION_VERSION);
    let reopened = App::with_session(&loaded, "/m.gguf".into());
    assert_eq!(reopened.chat.entries[1].tokens, reply.tokens);
}

#[test]
fn the_cursor_moves_and_enter_forks_into_a_new_version() {
    let mut app = answered();
    open_lens(&mut app);
    let (index, lens) = app.chat.lens.clone().expect("lens open");
    assert_eq!((index, lens.cursor), (1, 0));
    key(&mut app, KeyCode::Right);
    // On " cat" the choice starts on the likeliest other token, " dog".
    let (_, lens) = app.chat.lens.clone().unwrap();
    assert_eq!((lens.cursor, lens.choice), (1, 0));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let (_, lens) = app.chat.lens.clone().unwrap();
    assert_eq!(lens.choice, 2);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Up);
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![
            Effect::SaveSession,
            Effect::ContinueFrom {
                messages: vec![
                    ChatMessage::new(Role::User, "Tell me about cats"),
                    ChatMessage::new(Role::Assistant, "The dog"),
                ],
                open_tokens: vec![10, 13],
            },
        ]
    );
    // The new version streams from the kept prefix and the forced token,
    // whose probability is the one it had among the alternatives.
    let reply = &app.chat.entries[1];
    assert_eq!(reply.status, EntryStatus::Streaming);
    assert_eq!(reply.text, "The dog");
    assert_eq!(reply.branches.len(), 1);
    assert_eq!(reply.branches[0][0].text, "The cat sat.\n日本");
    let tokens = reply.tokens.as_ref().unwrap();
    assert_eq!(tokens[1].id, 13);
    assert!((tokens[1].prob() - 0.55).abs() < 1e-3);
    assert_eq!(
        tokens[1].top,
        reply.branches[0][0].tokens.as_ref().unwrap()[1].top
    );

    update(&mut app, Msg::GenerationStarted { id: 2 });
    token(&mut app, 2, (20, " barked", 0.6), &[]);
    // The lens follows the growing reply.
    assert_eq!(app.chat.lens.as_ref().unwrap().1.cursor, 2);
    done(&mut app, 2, StopReason::Eos);
    assert_eq!(app.chat.entries[1].text, "The dog barked");
    assert_eq!(app.chat.entries[1].tokens.as_ref().unwrap().len(), 3);

    // [ and ] move between the versions, the lens staying on the reply.
    key(&mut app, KeyCode::Char('['));
    assert_eq!(app.chat.entries[1].text, "The cat sat.\n日本");
    assert!(app.chat.lens.is_some());
    key(&mut app, KeyCode::Char(']'));
    assert_eq!(app.chat.entries[1].text, "The dog barked");

    // The sampled token itself is not a fork; t closes the lens.
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Up);
    assert_eq!(key(&mut app, KeyCode::Enter), vec![]);
    key(&mut app, KeyCode::Char('t'));
    assert!(app.chat.lens.is_none());
}

#[test]
fn a_fork_while_streaming_stops_the_reply_first() {
    let mut app = ready();
    ask(&mut app, "Tell me about cats");
    update(&mut app, Msg::GenerationStarted { id: 1 });
    token(&mut app, 1, (10, "The", 0.92), &[(11, "A", 0.05)]);
    token(&mut app, 1, (12, " cat", 0.18), &[(13, " dog", 0.55)]);
    open_lens(&mut app);
    // It follows the newest token.
    assert_eq!(app.chat.lens.as_ref().unwrap().1.cursor, 1);
    token(&mut app, 1, (15, " sat", 0.4), &[(16, " ran", 0.3)]);
    assert_eq!(app.chat.lens.as_ref().unwrap().1.cursor, 2);
    key(&mut app, KeyCode::Left);
    token(&mut app, 1, (17, ".", 0.7), &[]);
    assert_eq!(app.chat.lens.as_ref().unwrap().1.cursor, 1);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Cancel { id: 1 }]
    );
    let effects = done(&mut app, 1, StopReason::Cancelled);
    assert!(
        effects.contains(&Effect::ContinueFrom {
            messages: vec![
                ChatMessage::new(Role::User, "Tell me about cats"),
                ChatMessage::new(Role::Assistant, "The dog"),
            ],
            open_tokens: vec![10, 13],
        }),
        "{effects:?}"
    );
    assert_eq!(app.chat.entries[1].branches[0][0].text, "The cat sat.");
    assert_eq!(
        app.chat.entries[1].branches[0][0].status,
        EntryStatus::Stopped("stopped".into())
    );
}

#[test]
fn replies_without_probabilities_say_so() {
    let mut app = ready();
    app.chat.settings.reply.probabilities = false;
    ask(&mut app, "hi");
    update(&mut app, Msg::GenerationStarted { id: 1 });
    token(&mut app, 1, (10, "Hello", 0.9), &[]);
    done(&mut app, 1, StopReason::Eos);
    assert_eq!(app.chat.entries[1].tokens, None);
    open_lens(&mut app);
    assert!(app.chat.lens.is_some());
    assert_eq!(
        app.notice.as_ref().map(|n| n.text.as_str()),
        Some(whet::tui::lens::NO_PROBS)
    );
    key(&mut app, KeyCode::Right);
    assert_eq!(key(&mut app, KeyCode::Enter), vec![]);
    let screen = text_of(&draw(&app, 60, 12));
    assert!(screen.contains("no probabilities were kept"), "{screen}");
}

#[test]
fn the_lens_in_every_theme_and_without_colour() {
    let mut app = answered();
    open_lens(&mut app);
    key(&mut app, KeyCode::Right);
    let mut themes: Vec<(String, Theme)> = theme::available(None)
        .into_iter()
        .map(|name| {
            let loaded = theme::load(&name, None).unwrap();
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
            (name, loaded.theme)
        })
        .collect();
    themes.push(("plain".into(), Theme::plain()));
    assert_eq!(themes.len(), 4);
    for (name, theme) in themes {
        let text_bg = theme.style(Slot::Text).bg.unwrap_or(Color::Reset);
        let medium_bg = theme.style(Slot::ConfidenceMedium).bg.unwrap_or(text_bg);
        let low_bg = theme.style(Slot::ConfidenceLow).bg.unwrap_or(text_bg);
        app.theme = theme;
        let buffer = draw(&app, 90, 20);
        insta::assert_snapshot!(format!("lens_{name}_90x20"), text_of(&buffer));
        // " cat" (18 %) is underlined and under the cursor (reversed);
        // "The" (92 %) is neither, in every theme.
        let (x, y) = find(&buffer, "The cat").expect("the reply");
        let the = buffer[(x, y)].modifier;
        let cat = buffer[(x + 4, y)].modifier;
        assert!(!the.contains(Modifier::UNDERLINED), "{name}");
        assert!(cat.contains(Modifier::UNDERLINED), "{name}");
        assert!(cat.contains(Modifier::REVERSED), "{name}");
        assert!(!the.contains(Modifier::REVERSED), "{name}");
        // The theme's shades: " sat" (40 %) medium, "日本" (30 %) too, the
        // low " cat" with its own background.
        assert_eq!(buffer[(x + 8, y)].bg, medium_bg, "{name}");
        assert_eq!(buffer[(x + 5, y)].bg, low_bg, "{name}");
    }
}

#[test]
fn the_lens_on_small_terminals() {
    let mut app = answered();
    open_lens(&mut app);
    key(&mut app, KeyCode::End);
    let screen = text_of(&draw(&app, 44, 16));
    insta::assert_snapshot!("lens_narrow_44x16", screen);
    for (width, height) in [(20, 6), (8, 4), (1, 1), (3, 12)] {
        // Nothing to assert but that it draws.
        draw(&app, width, height);
    }
}
