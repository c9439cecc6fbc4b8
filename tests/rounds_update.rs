//! The refinement rounds screen's state machine driven without a terminal:
//! F9 in the workbench starts Self-Refine rounds on the open template, and
//! each step's effects are answered by hand with the messages the driver
//! would send back (generation ids, tokens, figures, saves), as a scripted
//! engine. Keys go in through `update` with the default keymap.

mod common;

use std::path::PathBuf;

use common::app::{ready_app, shipped, shipped_template};
use common::keys::*;
use crossterm::event::{KeyCode, KeyModifiers};

use whet::engine::protocol::{ChatMessage, GenerationStats, Role, StopReason};
use whet::engine::SamplingParams;
use whet::refine::{LoopEnd, RefineRun};
use whet::store::runs::RunSummary;
use whet::tui::app::{update, App, Effect, EngineState, Msg, Screen, TurnFigures};
use whet::tui::keymap::Context;
use whet::tui::rounds::{ListPurpose, Rounds, RoundsOverlay};
use whet::tui::workbench::Pane;

// ---------------------------------------------------------------- helpers

fn figures() -> TurnFigures {
    TurnFigures {
        ttft_ms: 40.0,
        tokens_per_sec: 80.0,
    }
}

/// Figures that differ per step, so each pass can be told by its own.
fn stats(n: u32) -> GenerationStats {
    GenerationStats {
        prompt_tokens: 100 + n,
        reused_tokens: n,
        generated_tokens: 10 + n,
        prompt_eval_ms: 30.0,
        ttft_ms: 40.0,
        generation_ms: 110.0 + f64::from(n),
        grammar: None,
    }
}

/// F5 to the workbench, answering its ListTemplates, then search for
/// `name` in the template list and open it.
fn open_in(mut app: App, name: &str) -> App {
    assert_eq!(key(&mut app, KeyCode::F(5)), vec![Effect::ListTemplates]);
    assert!(update(&mut app, Msg::Templates(shipped())).is_empty());
    for _ in 0..Pane::ORDER.len() {
        if app.wb.focus == Pane::Templates {
            break;
        }
        shift_tab(&mut app);
    }
    assert_eq!(app.wb.focus, Pane::Templates);
    ch(&mut app, '/');
    type_text(&mut app, name);
    assert_eq!(app.wb.selected_entry().unwrap().name, name);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), name);
    assert!(!app.wb.is_dirty());
    app
}

fn workbench_with(name: &str) -> App {
    open_in(ready_app(), name)
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

/// The rendered messages shown in the workbench's preview.
fn rendered(app: &App) -> Vec<ChatMessage> {
    match &app.wb.preview.rendered {
        Some(Ok(messages)) => messages.clone(),
        other => panic!("no rendered messages: {other:?}"),
    }
}

fn rounds(app: &App) -> &Rounds {
    app.rounds.as_ref().expect("rounds are open")
}

fn run(app: &App) -> &RefineRun {
    rounds(app).run()
}

/// The messages of the RunTemplate among `effects`, if there is one.
fn run_template(effects: &[Effect]) -> Option<Vec<ChatMessage>> {
    let mut runs = effects.iter().filter_map(|e| match e {
        Effect::RunTemplate { messages, .. } => Some(messages.clone()),
        _ => None,
    });
    let first = runs.next();
    assert!(
        runs.next().is_none(),
        "two generations at once: {effects:?}"
    );
    first
}

/// The run of the one SaveRefinement among `effects`.
fn saved(effects: &[Effect]) -> RefineRun {
    let runs: Vec<RefineRun> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveRefinement(run) => Some((**run).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(runs.len(), 1, "one save expected: {effects:?}");
    runs.into_iter().next().unwrap()
}

fn has_save(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::SaveRefinement(_)))
}

/// The driver's side of one step: it starts as generation `id`, streams
/// `pieces`, and ends with `reason` and `stats(id)`; the effects of the end.
fn answer(app: &mut App, id: u64, pieces: &[&str], reason: StopReason) -> Vec<Effect> {
    assert!(update(app, Msg::GenerationStarted { id }).is_empty());
    for piece in pieces {
        assert!(update(
            app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id,
                text: piece.to_string()
            }
        )
        .is_empty());
    }
    update(
        app,
        Msg::GenerationDone {
            id,
            reason,
            context_used: 300,
            figures: figures(),
            stats: Some(stats(id as u32)),
        },
    )
}

fn user(text: impl Into<String>) -> ChatMessage {
    ChatMessage::new(Role::User, text.into())
}

/// A prompt with `{{name}}` placeholders filled, by plain replacement.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    assert!(!out.contains("{{"), "unfilled: {out}");
    out
}

/// A step's messages: the request last, after either nothing or the run so
/// far as a conversation (`history`). Returns the request.
fn request_after(messages: &[ChatMessage], history: &[ChatMessage]) -> ChatMessage {
    let (request, before) = messages.split_last().expect("a step sends messages");
    assert!(
        before.is_empty() || before == history,
        "the messages before the request are neither nothing nor the run so far: {before:#?}"
    );
    request.clone()
}

fn assistant(text: &str) -> ChatMessage {
    ChatMessage::new(Role::Assistant, text.to_string())
}

const TITLE: &str = "Underwater breathing without external accessories";
const DRAFT: &str = " UBWEA: Underwater Breathing Without External Accessories\n";
const FEEDBACK_1: &str = "* Ease of pronunciation: 1\n* Total score: 12\nUse fewer words.";
const PASS_1: &str = "SCUBA: Self-Contained Underwater Breathing Apparatus";
const FEEDBACK_2: &str = "* Total score: 19\nMake it easier to remember.";
const PASS_2: &str = "DIVE: Deep Independent Venturing Equipment";
const FEEDBACK_3: &str = "* Total score: 20\nRelate it to the title.";
const PASS_3: &str = "BREATHE: Breathing Rig for Easy Aquatic Trips";

// ------------------------------------------------- 1. the loop, step by step

#[test]
fn f9_runs_draft_feedback_and_refined_passes_until_the_rounds_run_out() {
    let mut app = workbench_with("acronym");
    let template = shipped_template("acronym");
    let draft_messages = rendered(&app);
    let task = draft_messages.last().unwrap().content.clone();
    assert!(task.contains(TITLE), "{task}");

    // F9: the draft is the rendered template, with its own settings.
    let effects = key(&mut app, KeyCode::F(9));
    assert_eq!(
        effects,
        vec![Effect::RunTemplate {
            messages: draft_messages.clone(),
            sampling: SamplingParams {
                temperature: 0.3,
                top_k: 40,
                top_p: 0.9,
                min_p: 0.05,
                repeat_penalty: 1.1,
                ..SamplingParams::default()
            },
            max_tokens: 128,
            stop: Vec::new(),
            constraint: None,
        }]
    );
    assert_eq!(app.screen, Screen::Rounds);
    assert_eq!(app.context(), Context::Rounds);
    assert_eq!(app.engine, EngineState::Generating);
    assert!(rounds(&app).is_running());
    assert_eq!(run(&app).template, "acronym");
    assert_eq!(run(&app).task, task);
    assert_eq!(run(&app).draft_messages, draft_messages);
    assert_eq!(run(&app).model, Some(PathBuf::from("/m/model.gguf")));
    assert_eq!(run(&app).config.max_rounds, 3);
    assert_eq!(
        run(&app).config.stop_phrase.as_deref(),
        Some("NO FURTHER CHANGES")
    );

    // The draft streams in, as the model writes it.
    update(&mut app, Msg::GenerationStarted { id: 1 });
    assert_eq!(rounds(&app).generation, Some(1));
    for piece in [
        " UBWEA:",
        " Underwater Breathing",
        " Without External Accessories\n",
    ] {
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id: 1,
                text: piece.into(),
            },
        );
    }
    assert_eq!(rounds(&app).streaming, DRAFT);
    assert!(run(&app).passes.is_empty());
    // A token of another generation goes nowhere near it.
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 99,
            text: "stray".into(),
        },
    );
    assert_eq!(rounds(&app).streaming, DRAFT);

    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 1,
            reason: StopReason::Eos,
            context_used: 300,
            figures: figures(),
            stats: Some(stats(1)),
        },
    );
    assert_eq!(effects.len(), 2, "{effects:?}");
    let saved_run = saved(&effects);
    assert!(
        matches!(effects[0], Effect::SaveRefinement(_)),
        "saved first"
    );
    assert_eq!(saved_run.passes.len(), 1);
    let draft = &run(&app).passes[0];
    assert_eq!(draft.index, 0);
    assert_eq!(draft.text, DRAFT);
    assert_eq!(draft.stats, stats(1));
    assert_eq!(draft.reason, StopReason::Eos);
    assert_eq!(draft.messages, draft_messages);
    assert_eq!(saved_run.passes[0], *draft);
    assert!(rounds(&app).streaming.is_empty());
    assert_eq!(rounds(&app).selected, 0);

    // The feedback step: the template's feedback prompt on the task and
    // the draft (trimmed).
    let feedback_messages = run_template(&effects).expect("the feedback step");
    let feedback_prompt = template.refine.feedback.clone().unwrap();
    let history = [draft_messages.clone(), vec![assistant(DRAFT.trim())]].concat();
    assert_eq!(
        request_after(&feedback_messages, &history),
        user(fill(
            &feedback_prompt,
            &[("task", &task), ("answer", DRAFT.trim())]
        ))
    );
    assert_eq!(app.engine, EngineState::Generating);

    // The save answered: the run has its id from now on.
    update(
        &mut app,
        Msg::RefinementSaved {
            id: "20260101-120000-000-acronym".into(),
            created_unix_ms: 1_767_268_800_000,
        },
    );
    assert_eq!(run(&app).id, "20260101-120000-000-acronym");
    assert_eq!(run(&app).created_unix_ms, 1_767_268_800_000);

    // Feedback 1, then the refine step.
    let effects = answer(&mut app, 2, &[FEEDBACK_1], StopReason::Eos);
    let saved_run = saved(&effects);
    assert_eq!(saved_run.id, "20260101-120000-000-acronym");
    let feedback = run(&app).passes[0].feedback.clone().expect("feedback kept");
    assert_eq!(feedback.text, FEEDBACK_1);
    assert_eq!(feedback.stats, stats(2));
    assert_eq!(feedback.score, Some(12.0), "the template's score pattern");
    assert_eq!(feedback.messages, feedback_messages);
    assert_eq!(run(&app).passes.len(), 1, "feedback is not a pass");
    let refine_messages = run_template(&effects).expect("the refine step");
    let history = [
        feedback_messages.clone(),
        vec![assistant(FEEDBACK_1.trim())],
    ]
    .concat();
    assert_eq!(
        request_after(&refine_messages, &history),
        user(fill(
            template.refine.refine.as_deref().unwrap(),
            &[
                ("task", &task),
                ("answer", DRAFT.trim()),
                ("feedback", FEEDBACK_1.trim())
            ]
        ))
    );

    // Pass 1 is scored and diffed against the draft.
    let effects = answer(
        &mut app,
        3,
        &["SCUBA: Self-Contained ", "Underwater Breathing Apparatus"],
        StopReason::Eos,
    );
    let pass = &run(&app).passes[1];
    assert_eq!(pass.index, 1);
    assert_eq!(pass.text, PASS_1);
    assert_eq!(pass.stats, stats(3));
    assert_eq!(pass.messages, refine_messages);
    assert!(pass.diff.is_some_and(|d| d.inserted > 0 && d.deleted > 0));
    // The default values, so the template's reference scores it: exact.
    assert_eq!(pass.scores.exact_match, Some(true));
    assert_eq!(rounds(&app).selected, 1, "the newest pass is selected");
    let next = run_template(&effects).expect("feedback 2");
    assert!(next.last().unwrap().content.contains(PASS_1));

    // Two more rounds; after pass 3 the rounds have run out.
    let script: [(&[&str], bool); 4] = [
        (&[FEEDBACK_2], true),
        (&[PASS_2], true),
        (&[FEEDBACK_3], true),
        (&[PASS_3], false),
    ];
    for (i, (pieces, more)) in script.into_iter().enumerate() {
        let effects = answer(&mut app, 4 + i as u64, pieces, StopReason::Eos);
        assert!(has_save(&effects), "{effects:?}");
        assert_eq!(run_template(&effects).is_some(), more, "{effects:?}");
    }
    let finished = run(&app);
    assert_eq!(
        finished
            .passes
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>(),
        [DRAFT, PASS_1, PASS_2, PASS_3]
    );
    assert_eq!(finished.end, Some(LoopEnd::MaxRounds));
    assert!(finished.passes[3].feedback.is_none());
    assert_eq!(
        finished.passes[2].feedback.as_ref().unwrap().text,
        FEEDBACK_3
    );
    assert_eq!(finished.totals().generations, 7);
    assert!(!rounds(&app).is_running());
    assert_eq!(app.engine, EngineState::Ready);
    assert!(
        notice(&app).contains("the rounds ran out"),
        "{}",
        notice(&app)
    );
    assert_eq!(rounds(&app).selected, 3);
    // A late message of a finished step changes nothing.
    let late = update(
        &mut app,
        Msg::GenerationDone {
            id: 7,
            reason: StopReason::Eos,
            context_used: 1,
            figures: figures(),
            stats: None,
        },
    );
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(run(&app).passes.len(), 4);
}

/// F9 with acronym open, the draft done: the effects of the draft's end.
fn after_draft(app: &mut App) -> Vec<Effect> {
    assert!(run_template(&key(app, KeyCode::F(9))).is_some());
    answer(app, 1, &[DRAFT], StopReason::Eos)
}

// ------------------------------------------------------ 2. the loop's ends

#[test]
fn the_stop_phrase_in_a_feedback_ends_the_loop_before_a_refine_step() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    // Any case counts.
    let effects = answer(
        &mut app,
        2,
        &["* Total score: 23\n", "No further changes"],
        StopReason::Eos,
    );
    assert!(run_template(&effects).is_none(), "{effects:?}");
    let saved_run = saved(&effects);
    assert_eq!(saved_run.end, Some(LoopEnd::StopPhrase));
    assert_eq!(saved_run.passes.len(), 1);
    assert_eq!(
        saved_run.passes[0].feedback.as_ref().unwrap().text,
        "* Total score: 23\nNo further changes"
    );
    assert!(!rounds(&app).is_running());
    assert_eq!(app.engine, EngineState::Ready);
    assert!(notice(&app).contains("nothing to fix"), "{}", notice(&app));
}

#[test]
fn a_feedback_score_reaching_the_templates_threshold_ends_the_loop() {
    let mut app = workbench_with("acronym");
    assert_eq!(
        shipped_template("acronym").refine.score_threshold,
        Some(22.0)
    );
    after_draft(&mut app);
    let effects = answer(
        &mut app,
        2,
        &["* Ease of pronunciation: 5\n* Total score: 23\nKeep it."],
        StopReason::Eos,
    );
    assert!(run_template(&effects).is_none(), "{effects:?}");
    let saved_run = saved(&effects);
    assert_eq!(saved_run.end, Some(LoopEnd::ScoreThreshold { score: 23.0 }));
    assert_eq!(
        saved_run.passes[0].feedback.as_ref().unwrap().score,
        Some(23.0)
    );
    assert_eq!(app.engine, EngineState::Ready);
}

#[test]
fn an_unchanged_pass_ends_the_loop() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    let effects = answer(&mut app, 2, &[FEEDBACK_1], StopReason::Eos);
    assert!(run_template(&effects).is_some());
    // The same answer, spaced differently at its ends.
    let effects = answer(&mut app, 3, &[DRAFT.trim(), "\n\n"], StopReason::Eos);
    assert!(run_template(&effects).is_none(), "{effects:?}");
    let saved_run = saved(&effects);
    assert_eq!(saved_run.end, Some(LoopEnd::Unchanged));
    assert_eq!(saved_run.passes.len(), 2);
    assert_eq!(
        saved_run.passes[1].diff.map(|d| (d.deleted, d.inserted)),
        Some((0, 0))
    );
    assert_eq!(app.engine, EngineState::Ready);
    assert!(!rounds(&app).is_running());
}

// ------------------------------------------------------------- 3. Esc

#[test]
fn esc_stops_a_step_keeping_the_partial_pass_and_then_goes_back() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    answer(&mut app, 2, &[FEEDBACK_1], StopReason::Eos);
    update(&mut app, Msg::GenerationStarted { id: 3 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 3,
            text: "SCU".into(),
        },
    );
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::Cancel { id: 3 }]);
    // Until the engine says so, the step is still running.
    assert!(rounds(&app).is_running());
    assert_eq!(app.screen, Screen::Rounds);
    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 3,
            reason: StopReason::Cancelled,
            context_used: 200,
            figures: figures(),
            stats: Some(stats(3)),
        },
    );
    assert!(run_template(&effects).is_none(), "{effects:?}");
    let saved_run = saved(&effects);
    assert_eq!(saved_run.end, Some(LoopEnd::Cancelled));
    assert_eq!(saved_run.passes.len(), 2);
    assert_eq!(saved_run.passes[1].text, "SCU");
    assert_eq!(saved_run.passes[1].reason, StopReason::Cancelled);
    assert_eq!(*run(&app), saved_run);
    assert_eq!(app.engine, EngineState::Ready);
    assert!(notice(&app).contains("stopped"), "{}", notice(&app));

    // Idle: Esc goes back to the workbench, the rounds kept for F9... and
    // F9 starts new ones.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.screen, Screen::Workbench);
    assert!(app.rounds.is_some());
    let effects = key(&mut app, KeyCode::F(9));
    assert!(run_template(&effects).is_some());
    assert!(run(&app).passes.is_empty());
    assert_eq!(app.screen, Screen::Rounds);
}

#[test]
fn esc_during_a_feedback_keeps_the_partial_feedback() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    update(&mut app, Msg::GenerationStarted { id: 2 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 2,
            text: "* Ease of".into(),
        },
    );
    assert_eq!(key(&mut app, KeyCode::Esc), vec![Effect::Cancel { id: 2 }]);
    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 2,
            reason: StopReason::Cancelled,
            context_used: 200,
            figures: figures(),
            stats: None,
        },
    );
    let saved_run = saved(&effects);
    assert!(run_template(&effects).is_none());
    assert_eq!(saved_run.end, Some(LoopEnd::Cancelled));
    assert_eq!(saved_run.passes.len(), 1);
    let feedback = saved_run.passes[0].feedback.as_ref().unwrap();
    assert_eq!(feedback.text, "* Ease of");
    assert_eq!(feedback.reason, StopReason::Cancelled);
}

#[test]
fn esc_before_the_step_started_ends_the_loop_at_once() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    // The feedback step was asked for, but the engine has not started it.
    let effects = key(&mut app, KeyCode::Esc);
    let saved_run = saved(&effects);
    assert_eq!(saved_run.end, Some(LoopEnd::Cancelled));
    assert!(!rounds(&app).is_running());
    assert_eq!(app.screen, Screen::Rounds);
    // The generation asked for starts anyway: nothing waits for it, so it
    // is cancelled at once rather than left to run to its token limit.
    assert_eq!(
        update(&mut app, Msg::GenerationStarted { id: 2 }),
        vec![Effect::Cancel { id: 2 }]
    );
    assert_eq!(app.generating, None);
    assert_eq!(rounds(&app).run().passes.len(), 1);
}

// ------------------------------------------------------------ 4. failures

#[test]
fn a_failed_generation_ends_the_loop_as_failed_and_saves_it() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    update(&mut app, Msg::GenerationStarted { id: 2 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 2,
            text: "* Ease".into(),
        },
    );
    let effects = update(
        &mut app,
        Msg::GenerationFailed {
            id: Some(2),
            message: "decode failed".into(),
        },
    );
    assert_eq!(effects.len(), 1, "{effects:?}");
    let saved_run = saved(&effects);
    assert_eq!(
        saved_run.end,
        Some(LoopEnd::Failed {
            message: "decode failed".into()
        })
    );
    // What was done is kept; the failed step leaves nothing.
    assert_eq!(saved_run.passes.len(), 1);
    assert!(saved_run.passes[0].feedback.is_none());
    assert!(!rounds(&app).is_running());
    assert_eq!(app.engine, EngineState::Ready);
    assert!(notice_is_error(&app));
    assert!(notice(&app).contains("decode failed"));
    // Nothing left to stop: Esc goes back.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.screen, Screen::Workbench);
}

#[test]
fn the_engine_stopping_mid_step_ends_the_loop_as_failed() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    answer(&mut app, 2, &[FEEDBACK_1], StopReason::Eos);
    update(&mut app, Msg::GenerationStarted { id: 3 });
    let effects = update(&mut app, Msg::EngineStopped("worker exited".into()));
    let saved_run = saved(&effects);
    match &saved_run.end {
        Some(LoopEnd::Failed { message }) => {
            assert!(message.contains("worker exited"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(saved_run.passes.len(), 1);
    assert!(saved_run.passes[0].feedback.is_some());
    assert!(run_template(&effects).is_none());
    assert!(!rounds(&app).is_running());
    assert!(matches!(app.engine, EngineState::Crashed(_)));
    // A failure with no step running is not the rounds'.
    let effects = update(&mut app, Msg::EngineStopped("again".into()));
    assert!(!has_save(&effects), "{effects:?}");
}

#[test]
fn a_failure_before_the_step_started_ends_the_loop_too() {
    let mut app = workbench_with("acronym");
    key(&mut app, KeyCode::F(9));
    let effects = update(
        &mut app,
        Msg::GenerationFailed {
            id: None,
            message: "the prompt does not fit".into(),
        },
    );
    let saved_run = saved(&effects);
    assert!(saved_run.passes.is_empty());
    assert_eq!(
        saved_run.end,
        Some(LoopEnd::Failed {
            message: "the prompt does not fit".into()
        })
    );
    assert_eq!(app.engine, EngineState::Ready);
}

// ------------------------------------------- 5. selection and comparison

/// Acronym's rounds run to their end: passes 0 to 3.
fn finished() -> App {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    for (i, text) in [FEEDBACK_1, PASS_1, FEEDBACK_2, PASS_2, FEEDBACK_3, PASS_3]
        .into_iter()
        .enumerate()
    {
        answer(&mut app, 2 + i as u64, &[text], StopReason::Eos);
    }
    assert_eq!(run(&app).end, Some(LoopEnd::MaxRounds));
    update(
        &mut app,
        Msg::RefinementSaved {
            id: "20260101-120000-000-acronym".into(),
            created_unix_ms: 1,
        },
    );
    app
}

/// The indices and titles of the two sides shown.
fn sides(app: &App) -> ((u32, String), (u32, String)) {
    let (left, right) = rounds(app).sides().expect("two sides");
    (
        (left.pass.index, left.title),
        (right.pass.index, right.title),
    )
}

fn side_texts(app: &App) -> (String, String) {
    let (left, right) = rounds(app).sides().unwrap();
    (left.pass.text.clone(), right.pass.text.clone())
}

/// Another run of acronym, saved earlier, with two passes.
fn other_run() -> RefineRun {
    let mut other = saved(&finished_effects_of_two_passes());
    other.id = "20251231-090000-000-acronym".into();
    other
}

/// A run stopped by the stop phrase after pass 1.
fn finished_effects_of_two_passes() -> Vec<Effect> {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    answer(&mut app, 2, &["* Total score: 9"], StopReason::Eos);
    answer(
        &mut app,
        3,
        &["OTHER: Oxygen Tank Helps Every Rescuer"],
        StopReason::Eos,
    );
    let effects = answer(&mut app, 4, &["NO FURTHER CHANGES"], StopReason::Eos);
    assert_eq!(saved(&effects).passes.len(), 2);
    effects
}

#[test]
fn the_sides_follow_the_loop_until_a_and_b_choose_them() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    // One pass: it is on both sides.
    assert_eq!(sides(&app).0 .0, 0);
    assert_eq!(sides(&app).1 .0, 0);
    answer(&mut app, 2, &[FEEDBACK_1], StopReason::Eos);
    answer(&mut app, 3, &[PASS_1], StopReason::Eos);
    assert_eq!(
        sides(&app),
        ((0, "draft".into()), (1, "pass 1".into())),
        "the one before the latest, and the latest"
    );
    answer(&mut app, 4, &[FEEDBACK_2], StopReason::Eos);
    answer(&mut app, 5, &[PASS_2], StopReason::Eos);
    assert_eq!(sides(&app).0 .0, 1);
    assert_eq!(sides(&app).1 .0, 2);

    let mut app = finished();
    assert_eq!(sides(&app), ((2, "pass 2".into()), (3, "pass 3".into())));
    assert_eq!(side_texts(&app), (PASS_2.into(), PASS_3.into()));
    // Up/k select; a puts the selected pass on the left.
    key(&mut app, KeyCode::Up);
    ch(&mut app, 'k');
    ch(&mut app, 'k');
    assert_eq!(rounds(&app).selected, 0);
    ch(&mut app, 'k');
    assert_eq!(rounds(&app).selected, 0, "the first pass stays selected");
    assert!(ch(&mut app, 'a').is_empty());
    assert_eq!(sides(&app), ((0, "draft".into()), (3, "pass 3".into())));
    // Down/j; b puts it on the right.
    ch(&mut app, 'j');
    key(&mut app, KeyCode::Down);
    assert_eq!(rounds(&app).selected, 2);
    assert!(ch(&mut app, 'b').is_empty());
    assert_eq!(sides(&app), ((0, "draft".into()), (2, "pass 2".into())));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(rounds(&app).selected, 3, "the last pass stays selected");
    // Either side may be the later one.
    ch(&mut app, 'a');
    assert_eq!(sides(&app), ((3, "pass 3".into()), (2, "pass 2".into())));
    assert_eq!(app.screen, Screen::Rounds);

    // y copies the selected pass; Ctrl+E exports the run.
    assert_eq!(ch(&mut app, 'y'), vec![Effect::Copy(PASS_3.into())]);
    assert!(notice(&app).contains("copied pass 3"), "{}", notice(&app));
    let effects = ctrl(&mut app, 'e');
    assert_eq!(
        effects,
        vec![Effect::ExportRefinement(Box::new(run(&app).clone()))]
    );
}

#[test]
fn another_run_is_compared_pass_by_pass_and_esc_drops_it() {
    let mut app = finished();
    // o lists the saved runs to compare with.
    assert_eq!(ch(&mut app, 'o'), vec![Effect::ListRefinements]);
    assert!(matches!(
        &rounds(&app).overlay,
        Some(RoundsOverlay::Runs(list)) if list.purpose == ListPurpose::Compare && !list.loaded
    ));
    assert_eq!(app.context(), Context::WorkbenchList);
    let summary = |id: &str, problem: Option<&str>| RunSummary {
        id: id.into(),
        template: "acronym".into(),
        created_unix_ms: 1,
        output_preview: "preview".into(),
        problem: problem.map(str::to_string),
    };
    update(
        &mut app,
        Msg::Refinements(vec![
            summary("20260101-120000-000-acronym", None),
            summary("broken", Some("broken.json:1:1: expected value")),
            summary("20251231-090000-000-acronym", None),
        ]),
    );
    // A file that cannot be read is refused, with its problem.
    key(&mut app, KeyCode::Down);
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(notice_is_error(&app));
    assert!(notice(&app).contains("expected value"));
    assert!(rounds(&app).overlay.is_some(), "the list stays");
    ch(&mut app, 'j');
    ch(&mut app, 'j');
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::OpenRefinement {
            id: "20251231-090000-000-acronym".into(),
            compare: true
        }]
    );
    assert!(rounds(&app).overlay.is_none());
    let other = other_run();
    assert!(update(
        &mut app,
        Msg::RefinementOpened {
            run: Box::new(other.clone()),
            compare: true
        }
    )
    .is_empty());
    assert_eq!(app.screen, Screen::Rounds);
    assert_eq!(
        run(&app).id,
        "20260101-120000-000-acronym",
        "this run stays"
    );

    // The selected pass (3) against the other's same pass: it has only
    // two, so its last.
    assert_eq!(rounds(&app).selected, 3);
    let ((left, left_title), (right, right_title)) = sides(&app);
    assert_eq!((left, right), (3, 1));
    assert_eq!(left_title, "acronym · pass 3");
    assert_eq!(right_title, "pass 1 · acronym 20251231-090000-000-acronym");
    assert_eq!(
        side_texts(&app),
        (PASS_3.into(), other.passes[1].text.clone())
    );
    // The selection moves both sides, a and b aside.
    ch(&mut app, 'k');
    ch(&mut app, 'k');
    ch(&mut app, 'b');
    assert_eq!((sides(&app).0 .0, sides(&app).1 .0), (1, 1));
    ch(&mut app, 'k');
    assert_eq!((sides(&app).0 .0, sides(&app).1 .0), (0, 0));
    assert_eq!(
        side_texts(&app),
        (DRAFT.into(), other.passes[0].text.clone())
    );

    // Esc drops the other run: this run's own sides again (b chose pass 1).
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(rounds(&app).other.is_none());
    assert_eq!(app.screen, Screen::Rounds);
    assert_eq!(sides(&app), ((0, "draft".into()), (1, "pass 1".into())));
    // Then Esc goes back to the workbench.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.screen, Screen::Workbench);
    // F9 on the workbench with finished rounds starts new ones.
    assert!(run_template(&key(&mut app, KeyCode::F(9))).is_some());
}

#[test]
fn esc_closes_the_runs_list_without_opening_anything() {
    let mut app = finished();
    assert_eq!(key(&mut app, KeyCode::F(6)), vec![Effect::ListRefinements]);
    assert!(matches!(
        &rounds(&app).overlay,
        Some(RoundsOverlay::Runs(list)) if list.purpose == ListPurpose::Open
    ));
    // Enter on an empty list does nothing.
    update(&mut app, Msg::Refinements(Vec::new()));
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(rounds(&app).overlay.is_some());
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(rounds(&app).overlay.is_none());
    assert_eq!(app.screen, Screen::Rounds);
}

// ------------------------------------------------------------ 6. ratings

fn rating_text(app: &App) -> String {
    match &rounds(app).overlay {
        Some(RoundsOverlay::Rate(area)) => area.lines().join("\n"),
        _ => panic!("the rating prompt is not open"),
    }
}

#[test]
fn a_rating_with_a_note_is_kept_a_bad_one_refused_and_zero_clears() {
    let mut app = finished();
    ch(&mut app, 'k');
    ch(&mut app, 'k');
    assert_eq!(rounds(&app).selected, 1);
    assert!(ch(&mut app, 'r').is_empty());
    assert_eq!(rating_text(&app), "");
    assert_eq!(app.context(), Context::WorkbenchForm);
    // The keys of the rounds (a, b, r, j, k, o, y) type into the prompt.
    assert!(type_text(&mut app, "4 clear but long").is_empty());
    assert_eq!(rating_text(&app), "4 clear but long");
    assert_eq!(rounds(&app).selected, 1);
    let effects = key(&mut app, KeyCode::Enter);
    let saved_run = saved(&effects);
    assert_eq!(effects.len(), 1);
    assert_eq!(saved_run.id, "20260101-120000-000-acronym");
    assert_eq!(saved_run.passes[1].rating, Some(4));
    assert_eq!(saved_run.passes[1].note, "clear but long");
    assert!(saved_run
        .passes
        .iter()
        .enumerate()
        .all(|(i, p)| i == 1 || (p.rating.is_none() && p.note.is_empty())));
    assert_eq!(*run(&app), saved_run);
    assert!(rounds(&app).overlay.is_none());
    assert!(
        notice(&app).contains("pass 1 rated 4/5"),
        "{}",
        notice(&app)
    );

    // r again shows what is there; a bad number is refused, the prompt stays.
    ch(&mut app, 'r');
    assert_eq!(rating_text(&app), "4 clear but long");
    backspace(&mut app, "4 clear but long".len());
    type_text(&mut app, "9");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(notice_is_error(&app));
    assert!(
        notice(&app).contains("'9' is not a rating"),
        "{}",
        notice(&app)
    );
    assert_eq!(rating_text(&app), "9");
    assert_eq!(run(&app).passes[1].rating, Some(4), "unchanged");
    backspace(&mut app, 1);
    type_text(&mut app, "four");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(notice_is_error(&app));
    // 0 clears the rating and the note.
    backspace(&mut app, 4);
    type_text(&mut app, "0");
    let saved_run = saved(&key(&mut app, KeyCode::Enter));
    assert_eq!(saved_run.passes[1].rating, None);
    assert_eq!(saved_run.passes[1].note, "");
    assert!(rounds(&app).overlay.is_none());
    assert!(!notice_is_error(&app));

    // Nothing at all clears too; a plain number keeps no note.
    ch(&mut app, 'r');
    type_text(&mut app, "5");
    assert_eq!(
        saved(&key(&mut app, KeyCode::Enter)).passes[1].rating,
        Some(5)
    );
    ch(&mut app, 'r');
    backspace(&mut app, 1);
    assert_eq!(saved(&key(&mut app, KeyCode::Enter)).passes[1].rating, None);

    // Esc closes the prompt and keeps the rating as it was.
    ch(&mut app, 'r');
    type_text(&mut app, "2 meh");
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(rounds(&app).overlay.is_none());
    assert_eq!(run(&app).passes[1].rating, None);
    assert_eq!(app.screen, Screen::Rounds, "the Esc went to the prompt");
}

#[test]
fn star_and_m_toggle_the_best_pass_and_save() {
    let mut app = finished();
    ch(&mut app, 'k');
    let effects = press(&mut app, KeyCode::Char('*'), KeyModifiers::SHIFT);
    assert_eq!(saved(&effects).best, Some(2));
    assert_eq!(run(&app).best, Some(2));
    assert!(notice(&app).contains("pass 2 marked best"));
    // Another pass takes it over.
    ch(&mut app, 'k');
    assert_eq!(saved(&ch(&mut app, 'm')).best, Some(1));
    // The same pass again unmarks it.
    assert_eq!(saved(&ch(&mut app, '*')).best, None);
    assert_eq!(run(&app).best, None);
    assert!(notice(&app).contains("no pass marked best"));
}

// ------------------------------------------------- 7. when F9 may start

#[test]
fn f9_waits_for_the_engine_and_for_a_workbench_run() {
    // The model is still loading.
    let mut app = open_in(App::new(PathBuf::from("/m/model.gguf")), "acronym");
    assert_eq!(app.engine, EngineState::Loading);
    assert!(key(&mut app, KeyCode::F(9)).is_empty());
    assert!(app.rounds.is_none());
    assert_eq!(app.screen, Screen::Workbench);
    assert!(notice(&app).contains("still loading"), "{}", notice(&app));

    // A workbench run is streaming.
    let mut app = workbench_with("acronym");
    assert!(ctrl(&mut app, 'g')
        .iter()
        .any(|e| matches!(e, Effect::RunTemplate { .. })));
    assert!(key(&mut app, KeyCode::F(9)).is_empty());
    assert!(app.rounds.is_none());
    assert_eq!(app.screen, Screen::Workbench);
    assert!(notice(&app).contains("Esc stops it"), "{}", notice(&app));
    // Its tokens stay the workbench's.
    update(&mut app, Msg::GenerationStarted { id: 5 });
    update(
        &mut app,
        Msg::Token {
            context_used: 0,
            token: -1,
            probs: None,
            id: 5,
            text: "SCUBA".into(),
        },
    );
    assert_eq!(app.wb.run.as_ref().unwrap().record.output, "SCUBA");

    // No template open.
    let mut app = ready_app();
    key(&mut app, KeyCode::F(5));
    update(&mut app, Msg::Templates(shipped()));
    // F9 shows the saved runs instead, to open one.
    assert_eq!(key(&mut app, KeyCode::F(9)), vec![Effect::ListRefinements]);
    assert_eq!(app.screen, Screen::Rounds);
    assert!(app.rounds.as_ref().unwrap().run().passes.is_empty());
    assert!(notice(&app).contains("open a template first"));
    // Nothing runs; Esc closes the list, and Esc again goes back.
    key(&mut app, KeyCode::Esc);
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.screen, Screen::Workbench);

    // Running rounds: F5 to the workbench, F9 comes back to them.
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    key(&mut app, KeyCode::F(5));
    assert_eq!(app.screen, Screen::Workbench);
    // The workbench cannot run beside them.
    assert!(!ctrl(&mut app, 'g')
        .iter()
        .any(|e| matches!(e, Effect::RunTemplate { .. })));
    assert!(key(&mut app, KeyCode::F(9)).is_empty());
    assert_eq!(app.screen, Screen::Rounds);
    assert_eq!(run(&app).passes.len(), 1, "the same rounds");
}

#[test]
fn the_references_score_the_default_values_only() {
    let template = shipped_template("acronym");
    assert_eq!(
        template.references,
        ["SCUBA: Self-Contained Underwater Breathing Apparatus"]
    );
    // The defaults: the template's reference scores each pass.
    let mut app = workbench_with("acronym");
    key(&mut app, KeyCode::F(9));
    assert_eq!(run(&app).references, template.references);
    answer(&mut app, 1, &[PASS_1], StopReason::Eos);
    let scores = &run(&app).passes[0].scores;
    assert_eq!(scores.exact_match, Some(true));
    assert!(scores.bleu.is_some_and(|b| b > 99.0), "{scores:?}");

    // Another title: the reference does not answer it.
    let mut app = workbench_with("acronym");
    go_to(&mut app, Pane::Variables);
    key(&mut app, KeyCode::End);
    type_text(&mut app, " for divers");
    assert!(rendered(&app)
        .last()
        .unwrap()
        .content
        .contains("accessories for divers"));
    let effects = key(&mut app, KeyCode::F(9));
    assert_eq!(run_template(&effects), Some(rendered(&app)));
    assert!(run(&app).references.is_empty());
    assert_eq!(run(&app).values["title"], format!("{TITLE} for divers"));
    answer(&mut app, 1, &[PASS_1], StopReason::Eos);
    let scores = &run(&app).passes[0].scores;
    assert_eq!(scores.bleu, None);
    assert_eq!(scores.exact_match, None);
    assert_eq!(scores.words, 5);

    // Emptied, the field means its default again: the reference is back.
    let mut app = workbench_with("acronym");
    go_to(&mut app, Pane::Variables);
    key(&mut app, KeyCode::End);
    backspace(&mut app, TITLE.chars().count());
    key(&mut app, KeyCode::F(9));
    assert_eq!(run(&app).references, template.references);
}

// ------------------------------------------------- 8. a saved run, reopened

#[test]
fn a_saved_run_opens_for_viewing_and_its_ratings_are_saved() {
    let mut saved_run = saved(&finished_effects_of_two_passes());
    saved_run.id = "20251231-090000-000-acronym".into();
    saved_run.created_unix_ms = 5;

    // From the chat screen, say: it opens on the rounds screen.
    let mut app = ready_app();
    let effects = update(
        &mut app,
        Msg::RefinementOpened {
            run: Box::new(saved_run.clone()),
            compare: false,
        },
    );
    assert!(effects.is_empty(), "nothing to generate: {effects:?}");
    assert_eq!(app.screen, Screen::Rounds);
    assert_eq!(*run(&app), saved_run);
    assert!(!rounds(&app).is_running());
    assert_eq!(app.engine, EngineState::Ready);
    assert_eq!(rounds(&app).selected, 1, "the last pass is selected");
    assert!(notice(&app).contains("opened refinement run 20251231-090000-000-acronym"));
    assert_eq!(sides(&app).0 .0, 0);
    assert_eq!(sides(&app).1 .0, 1);

    // A rating saves it under its own id.
    ch(&mut app, 'r');
    type_text(&mut app, "3 ok");
    let rated = saved(&key(&mut app, KeyCode::Enter));
    assert_eq!(rated.id, "20251231-090000-000-acronym");
    assert_eq!(rated.created_unix_ms, 5);
    assert_eq!(rated.passes[1].rating, Some(3));
    assert_eq!(rated.passes[1].note, "ok");
    assert_eq!(rated.passes[..1], saved_run.passes[..1]);
    // Another save's answer does not rename it.
    update(
        &mut app,
        Msg::RefinementSaved {
            id: "something-else".into(),
            created_unix_ms: 9,
        },
    );
    assert_eq!(run(&app).id, "20251231-090000-000-acronym");
    assert_eq!(run(&app).created_unix_ms, 5);

    // Esc (nothing running, nothing compared) goes to the workbench.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.screen, Screen::Workbench);
}

#[test]
fn a_saved_run_does_not_replace_rounds_that_are_running() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    let mut other = other_run();
    other.template = "other".into();
    update(
        &mut app,
        Msg::RefinementOpened {
            run: Box::new(other),
            compare: false,
        },
    );
    assert_eq!(run(&app).template, "acronym");
    assert!(rounds(&app).is_running());
    assert!(
        notice(&app).contains("wait for the rounds"),
        "{}",
        notice(&app)
    );
}

// ------------------------------------------------------------ more keys

#[test]
fn a_rating_typed_while_a_pass_arrives_goes_to_the_pass_it_was_opened_for() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    answer(&mut app, 2, &[FEEDBACK_1], StopReason::Eos);
    update(&mut app, Msg::GenerationStarted { id: 3 });
    assert_eq!(rounds(&app).selected, 0);
    ch(&mut app, 'r');
    type_text(&mut app, "2 vague");
    // Pass 1 arrives while the prompt is open.
    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 3,
            reason: StopReason::Eos,
            context_used: 300,
            figures: figures(),
            stats: Some(stats(3)),
        },
    );
    assert!(run_template(&effects).is_some());
    assert_eq!(run(&app).passes.len(), 2);
    assert_eq!(rating_text(&app), "2 vague", "the prompt stays open");
    let rated = saved(&key(&mut app, KeyCode::Enter));
    assert_eq!(rated.passes[0].rating, Some(2), "the draft was being rated");
    assert_eq!(rated.passes[0].note, "vague");
    assert_eq!(rated.passes[1].rating, None);
    // With the prompt closed, the selection follows the loop again.
    answer(&mut app, 4, &[FEEDBACK_2], StopReason::Eos);
    answer(&mut app, 5, &[PASS_2], StopReason::Eos);
    assert_eq!(rounds(&app).selected, 2);
}

#[test]
fn q_quits_from_the_rounds_but_asks_first_about_an_unsaved_template() {
    let mut app = finished();
    assert_eq!(ch(&mut app, 'q'), vec![Effect::Quit]);
    assert!(app.should_quit);

    // Unsaved changes to the template: the question, on the workbench.
    let mut app = workbench_with("acronym");
    type_text(&mut app, "Be brief. ");
    assert!(app.wb.is_dirty());
    key(&mut app, KeyCode::F(9));
    answer(&mut app, 1, &[DRAFT], StopReason::Eos);
    assert_eq!(app.screen, Screen::Rounds);
    assert!(ch(&mut app, 'q').is_empty());
    assert!(!app.should_quit);
    assert_eq!(app.screen, Screen::Workbench);
    assert!(matches!(
        app.wb.overlay,
        Some(whet::tui::workbench::WbOverlay::Confirm(
            whet::tui::workbench::AfterConfirm::Quit
        ))
    ));
}

// ------------------------------------------------------------ 9. the lens

/// A token of generation `id` with its probability `p`, and one
/// alternative `other` (id + 1) with the rest.
fn token_with_probs(app: &mut App, id: u64, token: i32, text: &str, p: f32, other: &str) {
    let top = vec![
        whet::engine::probs::Alternative {
            token,
            text: text.into(),
            logprob: p.ln(),
        },
        whet::engine::probs::Alternative {
            token: token + 1,
            text: other.into(),
            logprob: (1.0 - p).ln(),
        },
    ];
    update(
        app,
        Msg::Token {
            id,
            text: text.into(),
            context_used: 0,
            token,
            probs: Some(whet::engine::probs::TokenProbs {
                logprob: p.ln(),
                top,
                entropy: Some(0.6),
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
            context_used: 300,
            figures: figures(),
            stats: Some(stats(id as u32)),
        },
    )
}

#[test]
fn the_lens_follows_the_steps_as_they_stream_and_each_pass_keeps_its_tokens() {
    use whet::tui::rounds::update::wants_probs;
    use whet::tui::rounds::LensTarget;
    let mut app = workbench_with("acronym");
    assert!(run_template(&key(&mut app, KeyCode::F(9))).is_some());
    // The draft asks for probabilities (the chat's setting is on).
    assert!(wants_probs(&app));
    update(&mut app, Msg::GenerationStarted { id: 1 });
    assert!(!wants_probs(&app), "only the step about to start asks");
    token_with_probs(&mut app, 1, 40, "SCUBA", 0.9, "Scuba");
    ch(&mut app, 't');
    let lens = rounds(&app).lens.clone().expect("the lens is open");
    assert_eq!(lens.target, LensTarget::Streaming);
    token_with_probs(&mut app, 1, 42, ":", 0.4, " is");
    assert_eq!(rounds(&app).lens.as_ref().unwrap().lens.cursor, 1);
    let screen = common::screen::text_of(&common::screen::draw(&app, 120, 40));
    assert!(screen.contains("Lens · draft (streaming)"), "{screen}");
    assert!(screen.contains("token 2/2"), "{screen}");

    // The draft becomes pass 0 with its tokens; the lens moves on to the
    // feedback streaming next.
    let effects = done(&mut app, 1);
    assert!(run_template(&effects).is_some());
    let draft = &run(&app).passes[0];
    let kept: Vec<i32> = draft
        .tokens
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(kept, [40, 42]);
    assert_eq!(saved(&effects).passes[0].tokens, draft.tokens);
    assert!(wants_probs(&app));
    update(&mut app, Msg::GenerationStarted { id: 2 });
    token_with_probs(&mut app, 2, 50, "Good", 0.7, "Fine");
    let screen = common::screen::text_of(&common::screen::draw(&app, 120, 40));
    assert!(screen.contains("Lens · feedback 1 (streaming)"), "{screen}");
    assert!(screen.contains("token 1/1"), "{screen}");
    // Small and odd sizes draw without a panic.
    for (width, height) in [(50, 12), (51, 13), (60, 20), (200, 60), (20, 5)] {
        common::screen::draw(&app, width, height);
    }

    // Enter on an alternative: a pass is not forked.
    let effects = key(&mut app, KeyCode::Enter);
    assert!(effects.is_empty(), "{effects:?}");
    assert!(notice(&app).contains("not forked"), "{}", notice(&app));

    // Esc under the lens stops the step, as without it.
    let effects = key(&mut app, KeyCode::Esc);
    assert_eq!(effects, vec![Effect::Cancel { id: 2 }]);
    let effects = update(
        &mut app,
        Msg::GenerationDone {
            id: 2,
            reason: StopReason::Cancelled,
            context_used: 300,
            figures: figures(),
            stats: Some(stats(2)),
        },
    );
    assert!(run_template(&effects).is_none());
    // With the rounds ended, the lens stays on the newest pass.
    let open = rounds(&app).lens.clone().unwrap();
    assert_eq!(open.target, LensTarget::Pass(0));
    let screen = common::screen::text_of(&common::screen::draw(&app, 120, 40));
    assert!(screen.contains("Lens · draft "), "{screen}");
    assert!(screen.contains("token 1/2"), "{screen}");
    // t closes it; the comparison is back.
    ch(&mut app, 't');
    assert!(rounds(&app).lens.is_none());
}

#[test]
fn the_lens_on_a_pass_without_tokens_says_so() {
    let mut app = workbench_with("acronym");
    after_draft(&mut app);
    assert!(
        run(&app).passes[0].tokens.is_none(),
        "no probabilities sent"
    );
    key(&mut app, KeyCode::Esc);
    assert!(!rounds(&app).is_running());
    ch(&mut app, 't');
    assert!(
        notice(&app).contains("no probabilities"),
        "{}",
        notice(&app)
    );
    let screen = common::screen::text_of(&common::screen::draw(&app, 120, 40));
    assert!(screen.contains("no probabilities were kept"), "{screen}");
}

#[test]
fn a_template_grammar_binds_the_draft_and_passes_of_the_rounds_not_the_feedback() {
    let dir = tempfile::tempdir().unwrap();
    let grammar = dir.path().join("words.gbnf");
    std::fs::write(&grammar, "root ::= [A-Za-z :]+\n").unwrap();
    let mut app = workbench_with("acronym");
    key(&mut app, KeyCode::F(7));
    key(&mut app, KeyCode::F(7));
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, &format!("grammar = \"{}\"", grammar.display()));
    let constraint_of = |effects: &[Effect]| {
        effects.iter().find_map(|e| match e {
            Effect::RunTemplate { constraint, .. } => Some(constraint.clone()),
            _ => None,
        })
    };
    let effects = key(&mut app, KeyCode::F(9));
    let draft = constraint_of(&effects).expect("the draft runs");
    assert!(
        matches!(&draft, Some(whet::engine::constraint::Constraint::Grammar { text, .. }) if text.contains("[A-Za-z :]+")),
        "{draft:?}"
    );
    assert_eq!(run(&app).constraint, draft);
    let feedback = answer(&mut app, 1, &["SCUBA"], StopReason::Eos);
    assert_eq!(constraint_of(&feedback), Some(None), "the feedback is free");
    let pass = answer(
        &mut app,
        2,
        &["* Total score: 12\nShorter."],
        StopReason::Eos,
    );
    assert_eq!(constraint_of(&pass), Some(draft));
}
