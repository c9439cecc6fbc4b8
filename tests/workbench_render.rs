//! The prompt workbench drawn on ratatui's TestBackend: snapshots of its
//! panes and popups at a large and a small size, tiny terminals, and the
//! colour of `{{variables}}` and problems taken from the theme.

use crossterm::event::{KeyCode, KeyModifiers};
use ratatui::style::Color;
use whet::engine::protocol::{GenerationStats, StopReason};
use whet::tui::app::{update, App, Effect, Msg, TurnFigures};
use whet::tui::theme::{self, Slot};
mod common;

use common::app::{open_summarize, smollm2_app};
use common::keys::*;
use common::screen::{draw, find, text_of};

/// The workbench with the shipped `summarize` open and the engine's
/// answer for the preview given.
fn workbench() -> App {
    let mut app = smollm2_app();
    let effects = open_summarize(&mut app);
    let revision = effects
        .iter()
        .find_map(|e| match e {
            Effect::FormatPreview { revision, .. } => Some(*revision),
            _ => None,
        })
        .expect("opening a template asks for its exact input");
    update(
        &mut app,
        Msg::PreviewFormatted {
            revision,
            result: Ok((
                "<|im_start|>system\nYou are a careful editor.<|im_end|>\n<|im_start|>user\nSummarize the text below in one sentence.<|im_end|>\n<|im_start|>assistant\n".into(),
                449,
            )),
        },
    );
    app
}

fn run_to_the_end(app: &mut App) {
    let effects = press(app, KeyCode::Char('g'), KeyModifiers::CONTROL);
    assert!(
        matches!(effects.first(), Some(Effect::RunTemplate { .. })),
        "{effects:?}"
    );
    update(app, Msg::GenerationStarted { id: 4 });
    update(
        app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 4,
            text: "Honeybees dance to show where food is: 日本 🐝 café.".into(),
        },
    );
    update(
        app,
        Msg::GenerationDone {
            id: 4,
            reason: StopReason::Eos,
            context_used: 480,
            figures: TurnFigures {
                ttft_ms: 700.0,
                tokens_per_sec: 120.0,
            },
            stats: Some(GenerationStats {
                prompt_tokens: 449,
                reused_tokens: 0,
                generated_tokens: 31,
                prompt_eval_ms: 700.0,
                ttft_ms: 700.0,
                generation_ms: 250.0,
                grammar: None,
            }),
        },
    );
    update(
        app,
        Msg::RunSaved {
            id: "20261128-221503-042-summarize".into(),
            created_unix_ms: 1,
        },
    );
}

#[test]
fn the_workbench_at_a_large_and_a_small_size() {
    let mut app = workbench();
    insta::assert_snapshot!("workbench_opened_130x40", text_of(&draw(&app, 130, 40)));
    run_to_the_end(&mut app);
    let screen = text_of(&draw(&app, 130, 40));
    assert!(screen.contains("end of generation · 31 tok"), "{screen}");
    insta::assert_snapshot!("workbench_after_a_run_130x40", screen);
    insta::assert_snapshot!("workbench_after_a_run_80x24", text_of(&draw(&app, 80, 24)));
}

#[test]
fn an_unclosed_placeholder_is_shown_at_its_line_and_column() {
    let mut app = workbench();
    // The cursor is at the start: after the first line comes a new one.
    key(&mut app, KeyCode::End);
    type_text(&mut app, "\nTone: {{tone");
    let screen = text_of(&draw(&app, 130, 40));
    assert!(
        screen.contains("✗ prompt:2:7: unclosed '{{' (no '}}' after it)"),
        "{screen}"
    );
    assert!(screen.contains("● unsaved"), "{screen}");
    insta::assert_snapshot!("workbench_problem_130x40", screen);
}

#[test]
fn the_popups_draw() {
    let mut app = workbench();
    // The example form, from the examples pane.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "one sentence");
    insta::assert_snapshot!(
        "workbench_example_form_100x30",
        text_of(&draw(&app, 100, 30))
    );
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Esc);
    // The question before quitting with unsaved changes.
    key(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    let screen = text_of(&draw(&app, 100, 30));
    assert!(screen.contains("s  save them, then quit"), "{screen}");
    insta::assert_snapshot!("workbench_unsaved_100x30", screen);
    key(&mut app, KeyCode::Esc);
    // The run history.
    assert_eq!(key(&mut app, KeyCode::F(6)), vec![Effect::ListRuns]);
    update(
        &mut app,
        Msg::Runs(vec![whet::store::runs::RunSummary {
            id: "20261128-221503-042-summarize".into(),
            template: "summarize".into(),
            created_unix_ms: 1,
            output_preview: "Honeybees dance to show where food is.".into(),
            problem: None,
        }]),
    );
    insta::assert_snapshot!("workbench_history_100x30", text_of(&draw(&app, 100, 30)));
}

#[test]
fn tiny_terminals_say_so_and_never_panic() {
    let mut app = workbench();
    run_to_the_end(&mut app);
    for (width, height) in [
        (0, 0),
        (1, 1),
        (59, 40),
        (200, 14),
        (60, 15),
        (61, 16),
        (24, 8),
    ] {
        draw(&app, width, height);
    }
    let screen = text_of(&draw(&app, 50, 12));
    assert!(screen.contains("the workbench needs 60×14"), "{screen}");
    // Popups too.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('a'));
    for (width, height) in [(60, 15), (24, 8), (3, 3)] {
        draw(&app, width, height);
    }
}

#[test]
fn variables_and_problems_take_their_theme_colours() {
    for name in ["dark", "light", "high-contrast"] {
        let mut app = workbench();
        app.theme = theme::load(name, None).unwrap().theme;
        let buffer = draw(&app, 130, 40);
        let theme = app.theme.clone();
        let fg = |slot: Slot| theme.style(slot).fg.unwrap_or(Color::Reset);
        // `{{length}}` in the editor's text is highlighted as a variable;
        // the plain word before it is not.
        let (x, y) = find(&buffer, "{{length}}. Keep").expect("the prompt is on screen");
        assert_eq!(
            buffer[(x, y)].fg,
            fg(Slot::Variable),
            "{name}: {{{{length}}}}"
        );
        assert_eq!(
            buffer[(x - 2, y)].fg,
            fg(Slot::Text),
            "{name}: text before it"
        );
        // The variables form labels each variable the same way.
        let (x, y) = find(&buffer, "{{text}} The passage").expect("the text variable");
        assert_eq!(buffer[(x, y)].fg, fg(Slot::Variable), "{name}: label");

        press(&mut app, KeyCode::End, KeyModifiers::CONTROL);
        type_text(&mut app, " }}");
        let buffer = draw(&app, 130, 40);
        let (x, y) = find(&buffer, "✗ prompt:").expect("the problem line");
        assert_eq!(buffer[(x, y)].fg, fg(Slot::StatusError), "{name}: problem");
    }
}
