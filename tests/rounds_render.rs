//! The refinement rounds screen drawn on ratatui's TestBackend: snapshots
//! of a finished two-round run (built through `update` with the messages a
//! driver would send) at a large and a small size, a step streaming, the
//! rating prompt, the list of runs to compare with, another run compared
//! pass by pass, tiny terminals, and the diff colours taken from each
//! shipped theme.

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use whet::engine::protocol::{GenerationStats, StopReason};
use whet::refine::{LoopEnd, RefineRun};
use whet::store::runs::RunSummary;
use whet::tui::app::{update, App, Effect, Msg, Screen, TurnFigures};
use whet::tui::theme::{self, Slot};
mod common;

use common::app::{open_summarize, smollm2_app};
use common::keys::*;
use common::screen::{draw, text_of};

fn stats(n: u32) -> GenerationStats {
    GenerationStats {
        prompt_tokens: 400 + 60 * n,
        reused_tokens: 380 + 50 * n,
        generated_tokens: 20 + n,
        prompt_eval_ms: 90.0,
        ttft_ms: 100.0,
        generation_ms: 300.0,
        grammar: None,
    }
}

/// The driver's side of a step: started as `id`, `text` streamed in two
/// pieces, ended (unless `end` is false).
fn step(app: &mut App, id: u64, text: &str, end: bool) -> Vec<Effect> {
    update(app, Msg::GenerationStarted { id });
    let middle = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(0);
    for piece in [&text[..middle], &text[middle..]] {
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
    if !end {
        return Vec::new();
    }
    update(
        app,
        Msg::GenerationDone {
            id,
            reason: StopReason::Eos,
            context_used: 600 + id as u32,
            figures: TurnFigures {
                ttft_ms: 100.0,
                tokens_per_sec: 75.0,
            },
            stats: Some(stats(id as u32)),
        },
    )
}

const DRAFT: &str = "Alder Creek's library opened in 1902. It moved after a fire.";
const FEEDBACK_0: &str = "The summary misses the 40,000 books and the Saturday classes for children.\nAdd both, and say where the library moved.";
/// Long enough to wrap, with French, an emoji and wide characters.
const PASS_1: &str = "Alder Creek's library opened in 1902 with 300 books from a farmer; après un incendie in 1957 it moved to a brick building on Main Street. Today it holds more than 40,000 books 📚 and offers free Saturday reading classes for children (日本語 too).";
const FEEDBACK_1: &str = "Use English only, and drop the extra words at the end.";
const PASS_2: &str = "Alder Creek's library opened in 1902 with 300 books from a farmer; after a fire in 1957 it moved to a brick building on Main Street. Today it holds more than 40,000 books 📚 and offers free Saturday reading classes for children.";

/// The workbench with the shipped `summarize` open, the engine ready.
fn workbench() -> App {
    let mut app = smollm2_app();
    open_summarize(&mut app);
    app
}

/// F9, the draft, and feedback on it.
fn started() -> App {
    let mut app = workbench();
    let effects = key(&mut app, KeyCode::F(9));
    assert!(
        matches!(effects.as_slice(), [Effect::RunTemplate { .. }]),
        "{effects:?}"
    );
    assert_eq!(app.screen, Screen::Rounds);
    step(&mut app, 1, DRAFT, true);
    step(&mut app, 2, FEEDBACK_0, true);
    app
}

/// Two rounds: the draft, passes 1 and 2; the feedback on pass 2 finds
/// nothing to fix.
fn finished() -> App {
    let mut app = started();
    step(&mut app, 3, PASS_1, true);
    step(&mut app, 4, FEEDBACK_1, true);
    step(&mut app, 5, PASS_2, true);
    let effects = step(&mut app, 6, "NO FURTHER CHANGES", true);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::RunTemplate { .. })),
        "{effects:?}"
    );
    update(
        &mut app,
        Msg::RefinementSaved {
            id: "20261128-221503-042-summarize".into(),
            created_unix_ms: 1,
        },
    );
    let run = app.rounds.as_ref().unwrap().run();
    assert_eq!(run.end, Some(LoopEnd::StopPhrase));
    assert_eq!(run.passes.len(), 3);
    app
}

#[test]
fn a_finished_run_at_a_large_and_a_small_size() {
    let app = finished();
    let screen = text_of(&draw(&app, 120, 30));
    for expected in [
        "Rounds · summarize · the feedback",
        "pass 2",
        "après un",
        "Feedback on pass 1 that led to pass 2",
        "Use English only",
    ] {
        assert!(screen.contains(expected), "{expected}: {screen}");
    }
    insta::assert_snapshot!("rounds_finished_120x30", screen);
    insta::assert_snapshot!("rounds_finished_80x24", text_of(&draw(&app, 80, 24)));
}

#[test]
fn page_down_scrolls_both_columns_as_far_as_the_last_page() {
    let mut app = finished();
    let (width, height) = (80, 16);
    let top = text_of(&draw(&app, width, height));
    let max = app.rounds.as_ref().unwrap().max_scroll.get();
    assert!(max > 0, "the long pass fits:\n{top}");
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.rounds.as_ref().unwrap().scroll, max.min(10));
    let scrolled = text_of(&draw(&app, width, height));
    assert_ne!(top, scrolled);
    // Both columns moved: the first rows are gone from both.
    assert!(top.contains("│Alder Creek's library"), "{top}");
    assert!(!scrolled.contains("│Alder Creek's library"), "{scrolled}");
    key(&mut app, KeyCode::PageDown);
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.rounds.as_ref().unwrap().scroll, max);
    key(&mut app, KeyCode::PageUp);
    key(&mut app, KeyCode::PageUp);
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.rounds.as_ref().unwrap().scroll, 0);
    assert_eq!(text_of(&draw(&app, width, height)), top);
}

#[test]
fn a_step_streaming() {
    let mut app = started();
    step(
        &mut app,
        3,
        "Alder Creek's library opened in 1902 with 300 books",
        false,
    );
    let screen = text_of(&draw(&app, 120, 30));
    assert!(screen.contains("running: pass 1"), "{screen}");
    assert!(screen.contains("… pass 1 (streaming)"), "{screen}");
    insta::assert_snapshot!("rounds_streaming_120x30", screen);
}

/// The line of the screen that holds `needle`.
fn row_of<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} is not on screen:\n{screen}"))
}

#[test]
fn the_streaming_tail_is_one_line_ending_with_the_newest_text() {
    for (width, text) in [
        (120, "Alder Creek's library opened in 1902 with 300 books"),
        (80, "Alder Creek's library opened in 1902 with 300 books"),
        (120, "日本語の図書館は一九〇二年に開館しました 📚 300 books"),
    ] {
        let mut app = started();
        step(&mut app, 3, text, false);
        let screen = text_of(&draw(&app, width, 30));
        let row = row_of(&screen, "  pass: ");
        assert!(row.contains("300 books"), "{width}: {row}");
        // Nothing of it wrapped onto the next row.
        let next = screen
            .lines()
            .skip_while(|l| !l.contains("  pass: "))
            .nth(1)
            .unwrap();
        assert!(!next.contains("books"), "{width}: {next}");
    }
}

#[test]
fn the_selected_pass_stays_in_view_in_a_long_timeline() {
    // Three rounds, all the way: four passes with wrapped feedback.
    let mut app = started();
    step(&mut app, 3, PASS_1, true);
    step(&mut app, 4, FEEDBACK_1, true);
    step(&mut app, 5, PASS_2, true);
    step(&mut app, 6, FEEDBACK_0, true);
    step(&mut app, 7, DRAFT, true);
    let run = app.rounds.as_ref().unwrap().run();
    assert_eq!(run.end, Some(LoopEnd::MaxRounds));
    assert_eq!(run.passes.len(), 4);
    for (width, height) in [(80, 24), (60, 14), (120, 30)] {
        for (selected, name) in ["pass 3", "pass 2", "pass 1", "draft"].iter().enumerate() {
            let screen = text_of(&draw(&app, width, height));
            assert!(
                screen.contains(&format!("▸ {name}")),
                "{width}x{height}, {name} selected ({selected} up):\n{screen}"
            );
            key(&mut app, KeyCode::Up);
        }
        for _ in 0..3 {
            key(&mut app, KeyCode::Down);
        }
    }
}

#[test]
fn the_rating_prompt() {
    let mut app = finished();
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Char('r'));
    type_text(&mut app, "4 clear but long");
    let screen = text_of(&draw(&app, 120, 30));
    assert!(
        screen.contains("Rate pass 1 (1-5, then a note)"),
        "{screen}"
    );
    assert!(screen.contains("4 clear but long"), "{screen}");
    insta::assert_snapshot!("rounds_rating_120x30", screen);
    // Kept: the stars and the note in the timeline.
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('*'));
    let screen = text_of(&draw(&app, 120, 30));
    assert!(screen.contains("★★★★☆ clear but long"), "{screen}");
    assert!(screen.contains("· best"), "{screen}");
}

fn other_run(app: &App) -> RefineRun {
    let mut other = app.rounds.as_ref().unwrap().run().clone();
    other.id = "20251231-090000-000-summarize".into();
    other.passes.truncate(2);
    other.passes[1].text =
        "The library of Alder Creek opened in 1902 and now holds 40,000 books.".into();
    other
}

#[test]
fn the_runs_to_compare_with_and_a_run_compared() {
    let mut app = finished();
    assert_eq!(
        key(&mut app, KeyCode::Char('o')),
        vec![Effect::ListRefinements]
    );
    let screen = text_of(&draw(&app, 120, 30));
    assert!(screen.contains("reading…"), "{screen}");
    update(
        &mut app,
        Msg::Refinements(vec![
            RunSummary {
                id: "20261128-221503-042-summarize".into(),
                template: "summarize".into(),
                created_unix_ms: 2,
                output_preview: "Alder Creek's library opened in 1902 with 300 books…".into(),
                problem: None,
            },
            RunSummary {
                id: "20251231-090000-000-summarize".into(),
                template: "summarize".into(),
                created_unix_ms: 1,
                output_preview: "The library of Alder Creek opened in 1902 and now…".into(),
                problem: None,
            },
            RunSummary {
                id: "20251230-080000-000-broken".into(),
                template: String::new(),
                created_unix_ms: 0,
                output_preview: String::new(),
                problem: Some("20251230-080000-000-broken.json:1:1: expected value".into()),
            },
        ]),
    );
    key(&mut app, KeyCode::Down);
    let screen = text_of(&draw(&app, 120, 30));
    assert!(
        screen.contains("Compare with · Enter puts it beside this run"),
        "{screen}"
    );
    insta::assert_snapshot!("rounds_compare_list_120x30", screen);

    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::OpenRefinement {
            id: "20251231-090000-000-summarize".into(),
            compare: true
        }]
    );
    let other = other_run(&app);
    update(
        &mut app,
        Msg::RefinementOpened {
            run: Box::new(other),
            compare: true,
        },
    );
    let screen = text_of(&draw(&app, 120, 30));
    assert!(
        screen.contains("┌ pass 1 · summarize 20251231-090000"),
        "{screen}"
    );
    insta::assert_snapshot!("rounds_compared_120x30", screen);
}

#[test]
fn tiny_terminals_say_so_and_never_panic() {
    let mut app = finished();
    let screen = text_of(&draw(&app, 49, 11));
    assert!(screen.contains("the rounds need 50×12"), "{screen}");
    assert!(!screen.contains("pass 2"), "{screen}");
    insta::assert_snapshot!("rounds_tiny_49x11", screen);
    let sizes = [(0, 0), (1, 1), (49, 11), (200, 12), (50, 12), (24, 8)];
    for (width, height) in sizes {
        draw(&app, width, height);
    }
    // With the popups open, and while a step streams.
    key(&mut app, KeyCode::Char('r'));
    type_text(&mut app, "5 ✓ 日本語");
    for (width, height) in sizes {
        draw(&app, width, height);
    }
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('o'));
    update(&mut app, Msg::Refinements(Vec::new()));
    for (width, height) in sizes {
        draw(&app, width, height);
    }
    let mut app = started();
    step(&mut app, 3, "日本語 📚 streaming", false);
    for (width, height) in sizes {
        draw(&app, width, height);
    }
}

/// Where `needle` starts on screen with its first cell in `columns`.
fn find_in(buffer: &Buffer, needle: &str, columns: std::ops::Range<u16>) -> Option<(u16, u16)> {
    for y in 0..buffer.area.height {
        let cells: Vec<&str> = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        for x in columns.clone() {
            if cells[x as usize..].concat().starts_with(needle) {
                return Some((x, y));
            }
        }
    }
    None
}

#[test]
fn deleted_and_inserted_words_take_the_theme_colours() {
    for name in ["dark", "light", "high-contrast"] {
        let mut app = finished();
        app.theme = theme::load(name, None).unwrap().theme;
        let (width, height) = (120, 30);
        let buffer = draw(&app, width, height);
        let theme = app.theme.clone();
        let colours = |slot: Slot| {
            let style = theme.style(slot);
            (
                style.fg.unwrap_or(Color::Reset),
                style.bg.unwrap_or(Color::Reset),
            )
        };
        let cells = |x: u16, y: u16, len: u16| -> Vec<(Color, Color)> {
            (x..x + len)
                .map(|x| (buffer[(x, y)].fg, buffer[(x, y)].bg))
                .collect()
        };
        // The columns: the timeline takes the first 40, the two passes
        // share the other 80.
        let (left, right) = (40..80, 80..width);
        let (x, y) = find_in(&buffer, "incendie", left.clone()).expect("a deleted word");
        assert_eq!(
            cells(x, y, 8),
            vec![colours(Slot::DiffDelete); 8],
            "{name}: 'incendie' on the left"
        );
        let (x, y) = find_in(&buffer, "fire", right.clone()).expect("an inserted word");
        assert_eq!(
            cells(x, y, 4),
            vec![colours(Slot::DiffInsert); 4],
            "{name}: 'fire' on the right"
        );
        // A word both passes have is plain text on either side.
        for columns in [left, right] {
            let (x, y) = find_in(&buffer, "Saturday", columns).expect("a common word");
            assert!(
                cells(x, y, 8)
                    .iter()
                    .all(|&(fg, _)| fg == colours(Slot::Text).0),
                "{name}: 'Saturday' at {x},{y}"
            );
            assert!(!cells(x, y, 8).contains(&colours(Slot::DiffDelete)));
            assert!(!cells(x, y, 8).contains(&colours(Slot::DiffInsert)));
        }
    }
}
