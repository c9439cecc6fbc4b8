//! The compare mode's columns on ratatui's TestBackend: two models side by
//! side with their own figures, blind headings before the vote and names
//! after, stacked columns in a narrow terminal, the latest lines in view
//! with a shared scroll, Unicode, and sizes too small to hold anything.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use whet::arena::duel::{Column, Contender, Duel, ModelRef, VoteContext};
use whet::arena::Verdict;
use whet::engine::protocol::{ChatMessage, GenerationStats, Role, StopReason};
use whet::engine::SamplingParams;
use whet::tui::duel_view::DuelView;
use whet::tui::theme::Theme;
mod common;

use common::screen::{find, text_of};

fn local(name: &str) -> Contender {
    Contender {
        name: name.into(),
        model: ModelRef::Local {
            path: format!("/models/{name}.gguf").into(),
            sha256: None,
        },
    }
}

fn stats(tokens: u32, ms: f64, ttft: f64) -> Option<GenerationStats> {
    Some(GenerationStats {
        generated_tokens: tokens,
        generation_ms: ms,
        ttft_ms: ttft,
        ..GenerationStats::default()
    })
}

/// Two turns: the first answered by both and voted on, the second with A
/// done and B still writing.
fn duel(blind: bool, vote: bool) -> Duel {
    let mut duel = Duel::new(
        vec![ChatMessage::new(Role::System, "Be brief.")],
        local("SmolLM2 135M Instruct Q4_1"),
        local("Gemma 3 270M Q4_K_M"),
        blind,
        false,
        false,
    );
    duel.send("Name a colour.").unwrap();
    duel.token(Column::A, "Red.");
    duel.finished(Column::A, StopReason::Eos, stats(3, 25.0, 41.0));
    duel.token(Column::B, "The colour blue, like the sky\non a clear day.");
    duel.finished(Column::B, StopReason::MaxTokens, stats(16, 160.0, 88.0));
    if vote {
        let context = VoteContext {
            session: "s".into(),
            at_ms: 1,
            sampling: [SamplingParams::greedy(), SamplingParams::greedy()],
        };
        duel.vote(Verdict::B, Some("more vivid".into()), context)
            .unwrap();
        duel.send("Why?").unwrap();
        duel.token(Column::A, "Because.");
        duel.finished(Column::A, StopReason::Eos, stats(2, 20.0, 30.0));
        duel.token(Column::B, "Blue is calm");
    }
    duel
}

fn draw(duel: &Duel, scroll: u16, width: u16, height: u16) -> Buffer {
    let theme = Theme::fallback();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            let view = DuelView {
                duel,
                theme: &theme,
                scroll,
                focused: true,
            };
            frame.render_widget(view, frame.area());
        })
        .unwrap();
    terminal.backend().buffer().clone()
}

#[test]
fn blind_columns_show_letters_until_the_vote_then_names() {
    let before = text_of(&draw(&duel(true, false), 0, 100, 14));
    insta::assert_snapshot!("blind_before_vote_100x14", before);
    assert!(!before.contains("Gemma") && !before.contains("SmolLM2"));
    let after = text_of(&draw(&duel(true, true), 0, 100, 20));
    insta::assert_snapshot!("blind_after_vote_100x20", after);
    assert!(after.contains("┏ A · SmolLM2 135M Instruct Q4_1 ━"));
    assert!(after.contains("vote: B better (blind) — more vivid"));
}

#[test]
fn each_column_has_its_own_figures() {
    let screen = draw(&duel(false, false), 0, 100, 14);
    let text = text_of(&screen);
    assert!(
        text.contains("3 tokens · 120.0 tok/s · TTFT 41 ms"),
        "{text}"
    );
    assert!(
        text.contains("16 tokens · 100.0 tok/s · TTFT 88 ms"),
        "{text}"
    );
    // A's figures are on A's side.
    let (a_x, _) = find(&screen, "3 tokens").unwrap();
    let (b_x, _) = find(&screen, "16 tokens").unwrap();
    assert!(a_x < 50 && b_x >= 50);
    // While B writes, its border says so.
    let text = text_of(&draw(&duel(false, true), 0, 100, 20));
    assert!(text.contains("writing…"), "{text}");
}

#[test]
fn a_narrow_terminal_stacks_the_columns() {
    let screen = text_of(&draw(&duel(false, true), 0, 50, 24));
    insta::assert_snapshot!("stacked_50x24", screen);
}

#[test]
fn the_latest_lines_are_in_view_and_scroll_moves_both_back() {
    let duel = duel(false, true);
    let latest = text_of(&draw(&duel, 0, 100, 8));
    assert!(
        latest.contains("Blue is calm") && latest.contains("Because."),
        "{latest}"
    );
    let back = text_of(&draw(&duel, 100, 100, 8));
    assert!(back.contains("Name a colour."), "{back}");
    assert!(!back.contains("Blue is calm"), "{back}");
}

#[test]
fn unicode_and_tiny_sizes_draw_without_panicking() {
    let mut duel = Duel::new(
        Vec::new(),
        local("日本語モデル"),
        local("e\u{301}mile"),
        false,
        true,
        false,
    );
    duel.send("家族 👩‍👩‍👧 と\tcafe\u{301}\u{1b}[2J").unwrap();
    duel.token(Column::A, "とても良い 🐝");
    duel.token(Column::B, "tre\u{300}s bien");
    insta::assert_snapshot!("unicode_80x10", text_of(&draw(&duel, 0, 80, 10)));
    for (w, h) in [(0, 0), (1, 1), (3, 2), (10, 3), (71, 4), (72, 4)] {
        draw(&duel, 0, w, h);
        draw(&duel, u16::MAX, w, h);
    }
}

#[test]
fn a_failed_reply_keeps_its_text_and_says_why_in_the_error_colour() {
    let mut duel = duel(false, false);
    duel.send("Again").unwrap();
    duel.token(Column::A, "half a rep");
    duel.failed(Column::A, "the engine stopped");
    let screen = draw(&duel, 0, 100, 16);
    let text = text_of(&screen);
    assert!(text.contains("half a rep"), "{text}");
    let (x, y) = find(&screen, "[failed: the engine stopped]").unwrap();
    let theme = Theme::fallback();
    let error = theme.style(whet::tui::theme::Slot::StatusError);
    assert_eq!(screen[(x + 1, y)].fg, error.fg.unwrap());
    // B started once A failed.
    assert!(text.contains("writing…"), "{text}");
}
