//! The lens on the workbench's output: a run keeps its tokens, `t` on the
//! output opens the lens, and Enter on an alternative forks a new run that
//! goes on from the kept tokens and the chosen one.

use crossterm::event::KeyCode;
use whet::engine::probs::{Alternative, TokenProbs};
use whet::engine::protocol::{ChatMessage, Role, StopReason};
use whet::tui::app::{update, App, Effect, Msg, TurnFigures};
use whet::tui::workbench::Pane;

mod common;

use common::app::{ready_app, shipped};
use common::keys::{ch, ctrl, key, type_text};
use common::screen::{draw, text_of};

fn token(app: &mut App, id: u64, sampled: (i32, &str, f32), other: (i32, &str, f32)) {
    let top = [sampled, other]
        .into_iter()
        .map(|(token, text, p)| Alternative {
            token,
            text: text.into(),
            logprob: p.ln(),
        })
        .collect();
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
                entropy: Some(0.7),
            }),
        },
    );
}

fn done(app: &mut App, id: u64) -> Vec<Effect> {
    update(
        app,
        Msg::GenerationDone {
            id,
            reason: StopReason::Eos,
            context_used: 60,
            figures: TurnFigures {
                ttft_ms: 50.0,
                tokens_per_sec: 100.0,
            },
            stats: None,
        },
    )
}

#[test]
fn a_fork_of_the_output_is_a_new_run_from_the_kept_tokens() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(5));
    update(&mut app, Msg::Templates(shipped()));
    ch(&mut app, '/');
    type_text(&mut app, "acronym");
    key(&mut app, KeyCode::Enter);
    let effects = ctrl(&mut app, 'g');
    let Some(Effect::RunTemplate {
        messages,
        sampling,
        max_tokens,
        stop,
        ..
    }) = effects.first().cloned()
    else {
        panic!("{effects:?}");
    };
    update(&mut app, Msg::GenerationStarted { id: 3 });
    token(&mut app, 3, (40, "SCUBA", 0.9), (41, "Scuba", 0.05));
    token(&mut app, 3, (42, ":", 0.3), (43, " is", 0.5));
    token(&mut app, 3, (44, " Self", 0.8), (45, " self", 0.1));
    let saved = done(&mut app, 3);
    let Some(Effect::SaveRun(record)) = saved.first() else {
        panic!("{saved:?}");
    };
    assert_eq!(record.tokens.as_ref().map(Vec::len), Some(3));
    // The parent has an id once saved.
    update(
        &mut app,
        Msg::RunSaved {
            id: "20261201-050000-000-acronym".into(),
            created_unix_ms: 1,
        },
    );

    assert_eq!(app.wb.focus, Pane::Output);
    ch(&mut app, 't');
    assert!(app.wb.run.as_ref().unwrap().lens.is_some());
    key(&mut app, KeyCode::Right);
    let screen = text_of(&draw(&app, 120, 40));
    assert!(screen.contains("token 2/3"), "{screen}");
    assert!(screen.contains("▶␣is"), "{screen}");
    let effects = key(&mut app, KeyCode::Enter);
    let mut forked_messages = messages.clone();
    forked_messages.push(ChatMessage::new(Role::Assistant, "SCUBA is"));
    assert_eq!(
        effects,
        vec![Effect::ForkRun {
            messages: forked_messages,
            open_tokens: vec![40, 43],
            sampling,
            max_tokens,
            stop,
        }]
    );
    let run = app.wb.run.as_ref().unwrap();
    assert!(run.is_streaming());
    assert_eq!(run.record.id, "");
    assert_eq!(run.record.messages, messages);
    assert_eq!(run.record.output, "SCUBA is");
    let fork = run.record.forked_from.as_ref().unwrap();
    assert_eq!(
        (fork.run.as_str(), fork.token),
        ("20261201-050000-000-acronym", 1)
    );

    update(&mut app, Msg::GenerationStarted { id: 4 });
    token(&mut app, 4, (46, " diving", 0.7), (47, " a", 0.2));
    assert_eq!(
        app.wb.run.as_ref().unwrap().lens.as_ref().unwrap().cursor,
        2
    );
    let saved = done(&mut app, 4);
    let Some(Effect::SaveRun(record)) = saved.first() else {
        panic!("{saved:?}");
    };
    assert_eq!(record.output, "SCUBA is diving");
    assert_eq!(record.tokens.as_ref().map(Vec::len), Some(3));
    // t closes the lens.
    ch(&mut app, 't');
    assert!(app.wb.run.as_ref().unwrap().lens.is_none());
}

#[test]
fn a_fork_chosen_while_the_run_streams_stops_it_then_forks_from_what_it_kept() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(5));
    update(&mut app, Msg::Templates(shipped()));
    ch(&mut app, '/');
    type_text(&mut app, "acronym");
    key(&mut app, KeyCode::Enter);
    let effects = ctrl(&mut app, 'g');
    let Some(Effect::RunTemplate { messages, .. }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    update(&mut app, Msg::GenerationStarted { id: 3 });
    token(&mut app, 3, (40, "SCUBA", 0.9), (41, "Scuba", 0.05));
    token(&mut app, 3, (42, ":", 0.3), (43, " is", 0.5));
    // The lens opens on the newest token and follows the stream.
    ch(&mut app, 't');
    assert_eq!(
        app.wb.run.as_ref().unwrap().lens.as_ref().unwrap().cursor,
        1
    );
    token(&mut app, 3, (44, " Self", 0.8), (45, " self", 0.1));
    key(&mut app, KeyCode::Left);
    // Enter while streaming: the run is stopped first.
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(effects, vec![Effect::Cancel { id: 3 }]);
    assert!(app.wb.run.as_ref().unwrap().is_streaming());
    // A token already on its way still arrives; then the stop lands.
    token(
        &mut app,
        3,
        (46, " Contained", 0.6),
        (47, " contained", 0.3),
    );
    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 3,
            reason: StopReason::Cancelled,
            context_used: 60,
            figures: TurnFigures {
                ttft_ms: 50.0,
                tokens_per_sec: 100.0,
            },
            stats: None,
        },
    );
    // The stopped run is saved as it was, and the fork starts.
    let Some(Effect::SaveRun(stopped)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(stopped.output, "SCUBA: Self Contained");
    assert_eq!(stopped.tokens.as_ref().map(Vec::len), Some(4));
    let mut forked_messages = messages.clone();
    forked_messages.push(ChatMessage::new(Role::Assistant, "SCUBA is"));
    let Some(Effect::ForkRun {
        messages: sent,
        open_tokens,
        ..
    }) = effects.get(1)
    else {
        panic!("{effects:?}");
    };
    assert_eq!(effects.len(), 2, "{effects:?}");
    assert_eq!(*sent, forked_messages);
    assert_eq!(*open_tokens, vec![40, 43]);
    let run = app.wb.run.as_ref().unwrap();
    assert!(run.is_streaming());
    assert_eq!(run.record.output, "SCUBA is");
    assert_eq!(run.pending_fork, None);
}

#[test]
fn a_stop_that_ends_the_run_without_a_fork_pending_starts_nothing() {
    let mut app = ready_app();
    key(&mut app, KeyCode::F(5));
    update(&mut app, Msg::Templates(shipped()));
    ch(&mut app, '/');
    type_text(&mut app, "acronym");
    key(&mut app, KeyCode::Enter);
    ctrl(&mut app, 'g');
    update(&mut app, Msg::GenerationStarted { id: 3 });
    token(&mut app, 3, (40, "SCUBA", 0.9), (41, "Scuba", 0.05));
    let effects = done(&mut app, 3);
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert!(matches!(effects[0], Effect::SaveRun(_)));
}
