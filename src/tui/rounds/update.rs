//! The rounds screen's part of the app's pure `update`: starting a loop
//! from the workbench's template, feeding it the engine's results one step
//! at a time, and the keys of the timeline and the comparison.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::TextArea;

use super::{LensTarget, ListPurpose, Rounds, RoundsLens, RoundsOverlay, RunList};
use crate::engine::probs::TokenProbs;
use crate::engine::protocol::{GenerationStats, StopReason};
use crate::refine::{Generated, LoopConfig, RefineLoop, RefineRun, RefineSetup, DEFAULT_ROUNDS};
use crate::store::runs::RunSummary;
use crate::store::tokens::keep_piece;
use crate::tui::app::{engine_ready, App, Effect, EngineState, Screen};
use crate::tui::keymap::Action;
use crate::tui::lens::{self, Lens, LensKey};
use crate::tui::rating::{parse_rating, rating_text};
use crate::tui::run_settings::run_settings;
use crate::tui::workbench::{AfterConfirm, WbOverlay};

/// Starts refinement rounds on the workbench's template and values.
pub fn start(app: &mut App) -> Vec<Effect> {
    if app.rounds.as_ref().is_some_and(Rounds::is_running) {
        app.screen = Screen::Rounds;
        return Vec::new();
    }
    let Some(doc) = &app.wb.doc else {
        // Nothing to refine: the rounds shown last, or the saved runs.
        if app.rounds.is_none() {
            let mut rounds = Rounds::new(RefineLoop::from_run(RefineRun::default()));
            rounds.overlay = Some(RoundsOverlay::Runs(RunList {
                purpose: ListPurpose::Open,
                runs: Vec::new(),
                selected: 0,
                loaded: false,
            }));
            app.rounds = Some(rounds);
            app.screen = Screen::Rounds;
            app.info("open a template first to refine it; these are the saved runs");
            return vec![Effect::ListRefinements];
        }
        app.screen = Screen::Rounds;
        return Vec::new();
    };
    let messages = match doc.render() {
        Ok(messages) => messages,
        Err(why) => {
            app.error(format!("cannot refine: {}", why.replace('\n', "; ")));
            return Vec::new();
        }
    };
    let Ok(template) = doc.to_template() else {
        return Vec::new();
    };
    let values = doc.values();
    let constraint = doc.constraint(&template);
    // The template's references answer its default values only.
    let defaults_only = doc.vars.iter().all(|var| {
        let value = var.text();
        value.is_empty() || Some(value.as_str()) == var.default.as_deref()
    });
    if app.wb.is_running() || !engine_ready(app) {
        if app.wb.is_running() {
            app.info("a run is streaming; Esc stops it");
        }
        return Vec::new();
    }
    let (sampling, max_tokens, stop) = run_settings(&template);
    // The draft and every pass follow the template's grammar or schema.
    let constraint = match constraint {
        Ok(constraint) => constraint,
        Err(why) => {
            app.error(format!("cannot refine: {why}"));
            return Vec::new();
        }
    };
    if template.sampling.beams().is_some() && constraint.is_some() {
        app.error("cannot refine: a grammar or JSON schema does not apply to beam search");
        return Vec::new();
    }
    let setup = RefineSetup {
        template: template.name.clone(),
        template_toml: crate::prompt::to_toml(&template),
        values,
        model: Some(app.model_path.clone()),
        sampling,
        max_tokens,
        stop,
        constraint,
        config: LoopConfig {
            max_rounds: DEFAULT_ROUNDS,
            n_ctx: Some(app.n_ctx).filter(|&n| n > 0),
            ..LoopConfig::default()
        },
        refine: template.refine.clone(),
        draft_messages: messages,
        references: if defaults_only {
            template.references.clone()
        } else {
            Vec::new()
        },
    };
    // From a beam-search run's list, the chosen sequence is the draft.
    let chosen_beam = (app.wb.focus == crate::tui::workbench::Pane::Output)
        .then(|| app.wb.run.as_ref().and_then(|r| r.chosen_beam_text()))
        .flatten()
        .map(str::to_string);
    match RefineLoop::new(setup) {
        Ok(mut lp) => {
            if let Some(text) = chosen_beam {
                if let Some(step) = lp.next_step() {
                    let generated = Generated {
                        text,
                        reason: StopReason::Eos,
                        stats: GenerationStats::default(),
                        tokens: None,
                    };
                    lp.record(&step, generated);
                }
            }
            app.rounds = Some(Rounds::new(lp));
            app.screen = Screen::Rounds;
            next_step(app)
        }
        Err(why) => {
            app.error(format!("cannot refine: {why}"));
            Vec::new()
        }
    }
}

/// Asks for the loop's next generation, or says how it ended.
fn next_step(app: &mut App) -> Vec<Effect> {
    let Some(rounds) = &mut app.rounds else {
        return Vec::new();
    };
    rounds.streaming.clear();
    rounds.generation = None;
    // Every step keeps its tokens for the lens when the chat's replies do
    // (the driver asks for probabilities when this is Some).
    rounds.streaming_tokens = app.chat.settings.reply.probabilities.then(Vec::new);
    match rounds.lp.next_step() {
        Some(step) => {
            let run = rounds.lp.run();
            let effect = Effect::RunTemplate {
                messages: step.messages.clone(),
                sampling: run.sampling.clone(),
                max_tokens: run.max_tokens,
                stop: run.stop.clone(),
                constraint: step.constraint.clone(),
            };
            rounds.step = Some(step);
            if let Some(open) = &mut rounds.lens {
                if open.target == LensTarget::Streaming {
                    open.lens.settle(&[]);
                }
            }
            app.engine = EngineState::Generating;
            vec![effect]
        }
        None => {
            rounds.step = None;
            rounds.streaming_tokens = None;
            // A lens that followed the steps stays on the newest pass.
            if let Some(open) = &mut rounds.lens {
                let index = match open.target {
                    LensTarget::Pass(index) => index,
                    LensTarget::Streaming => rounds.selected,
                };
                open.target = LensTarget::Pass(index);
                open.lens.follow = false;
                let tokens = rounds
                    .lp
                    .run()
                    .passes
                    .get(index)
                    .and_then(|p| p.tokens.as_deref());
                open.lens.settle(tokens.unwrap_or_default());
            }
            let end = rounds.lp.run().end.as_ref().map(|e| e.describe());
            if app.engine == EngineState::Generating {
                app.engine = EngineState::Ready;
            }
            if let Some(end) = end {
                app.info(format!("rounds ended: {end}"));
            }
            Vec::new()
        }
    }
}

/// Whether generation `id` is a step of the rounds.
pub fn owns_generation(app: &App, id: u64) -> bool {
    app.rounds
        .as_ref()
        .is_some_and(|r| r.step.is_some() && r.generation == Some(id))
}

/// A generation started; it is the rounds' if their step waits for one.
pub fn on_started(app: &mut App, id: u64) -> bool {
    match &mut app.rounds {
        Some(rounds) if rounds.step.is_some() && rounds.generation.is_none() => {
            rounds.generation = Some(id);
            true
        }
        _ => false,
    }
}

pub fn on_token(app: &mut App, text: &str, token: i32, probs: Option<&TokenProbs>) {
    if let Some(rounds) = &mut app.rounds {
        rounds.streaming.push_str(text);
        keep_piece(&mut rounds.streaming_tokens, text, token, probs);
        if let Some(RoundsLens {
            target: LensTarget::Streaming,
            lens,
        }) = &mut rounds.lens
        {
            lens.settle(rounds.streaming_tokens.as_deref().unwrap_or_default());
        }
    }
}

/// Whether the rounds' next step should ask for probabilities.
pub fn wants_probs(app: &App) -> bool {
    app.rounds
        .as_ref()
        .is_some_and(|r| r.step.is_some() && r.generation.is_none() && r.streaming_tokens.is_some())
}

/// The step ended: its result goes into the loop, the run is saved, and
/// the next step starts.
pub fn on_done(app: &mut App, reason: StopReason, stats: GenerationStats) -> Vec<Effect> {
    let Some(rounds) = &mut app.rounds else {
        return Vec::new();
    };
    let Some(step) = rounds.step.take() else {
        return Vec::new();
    };
    let generated = Generated {
        text: std::mem::take(&mut rounds.streaming),
        reason,
        stats,
        tokens: rounds.streaming_tokens.take(),
    };
    rounds.lp.record(&step, generated);
    // The newest pass is selected, but not under an open rating prompt:
    // the rating is for the pass it was opened on.
    if !matches!(rounds.overlay, Some(RoundsOverlay::Rate(_))) {
        rounds.selected = rounds.run().passes.len().saturating_sub(1);
    }
    let mut effects = vec![save(rounds.run())];
    effects.extend(next_step(app));
    effects
}

/// The step failed (or the engine stopped): the loop ends with what is done.
pub fn on_failed(app: &mut App, message: String) -> Vec<Effect> {
    let Some(rounds) = &mut app.rounds else {
        return Vec::new();
    };
    if rounds.step.take().is_none() {
        return Vec::new();
    }
    rounds.lp.fail(message);
    let effects = vec![save(rounds.run())];
    if app.engine == EngineState::Generating {
        app.engine = EngineState::Ready;
    }
    effects
}

fn save(run: &RefineRun) -> Effect {
    Effect::SaveRefinement(Box::new(run.clone()))
}

pub fn on_saved(app: &mut App, id: String, created_unix_ms: u64) {
    if let Some(rounds) = &mut app.rounds {
        let run = rounds.lp.run_mut();
        if run.id.is_empty() {
            run.id = id;
            run.created_unix_ms = created_unix_ms;
        }
    }
}

pub fn on_runs(app: &mut App, runs: Vec<RunSummary>) {
    if let Some(Rounds {
        overlay: Some(RoundsOverlay::Runs(list)),
        ..
    }) = &mut app.rounds
    {
        list.runs = runs;
        list.loaded = true;
        list.selected = list.selected.min(list.runs.len().saturating_sub(1));
    }
}

/// A saved run: opened here, or put beside this one.
pub fn on_opened(app: &mut App, run: RefineRun, compare: bool) {
    match (&mut app.rounds, compare) {
        (Some(rounds), true) => {
            let note = format!("comparing pass by pass with {}", run.id);
            rounds.other = Some(run);
            rounds.scroll = 0;
            app.info(note);
        }
        _ => {
            if app.rounds.as_ref().is_some_and(Rounds::is_running) {
                app.info("wait for the rounds, or press Esc to stop them");
                return;
            }
            app.info(format!("opened refinement run {}", run.id));
            let mut rounds = Rounds::new(RefineLoop::from_run(run));
            rounds.selected = rounds.run().passes.len().saturating_sub(1);
            app.rounds = Some(rounds);
            app.screen = Screen::Rounds;
        }
    }
}

/// Keys while the rounds have the screen (and no app popup is open).
pub fn on_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(rounds) = &mut app.rounds else {
        app.screen = Screen::Workbench;
        return Vec::new();
    };
    if let Some(overlay) = rounds.overlay.take() {
        return on_overlay_key(app, overlay, action, key);
    }
    if rounds.lens.is_some() {
        if let Some(effects) = lens_key(app, action, key) {
            return effects;
        }
    }
    let Some(rounds) = &mut app.rounds else {
        return Vec::new();
    };
    let count = rounds.run().passes.len();
    match action {
        Some(Action::Lens) => return open_lens(app),
        Some(Action::Stop) => {
            if let Some(id) = rounds.generation.filter(|_| rounds.step.is_some()) {
                return vec![Effect::Cancel { id }];
            }
            if rounds.step.is_some() {
                // Not started yet: nothing to cancel in the engine.
                rounds.step = None;
                rounds.lp.cancel();
                return vec![save(rounds.run())];
            }
            if rounds.other.take().is_some() {
                app.info("back to this run's own passes");
                return Vec::new();
            }
            app.screen = Screen::Workbench;
        }
        Some(Action::SelectPrev) => rounds.selected = rounds.selected.saturating_sub(1),
        Some(Action::SelectNext) => {
            rounds.selected = (rounds.selected + 1).min(count.saturating_sub(1))
        }
        Some(Action::CompareLeft) => {
            rounds.left = Some(rounds.selected);
            rounds.scroll = 0;
        }
        Some(Action::CompareRight) => {
            rounds.right = Some(rounds.selected);
            rounds.scroll = 0;
        }
        Some(Action::PageUp) | Some(Action::PageDown) => {
            let step: i32 = if action == Some(Action::PageUp) {
                -10
            } else {
                10
            };
            let max = rounds.max_scroll.get();
            let target = (i32::from(rounds.scroll.min(max)) + step).clamp(0, i32::from(max));
            rounds.scroll = u16::try_from(target).unwrap_or(0);
        }
        Some(Action::Rate) => {
            let Some(pass) = rounds.run().passes.get(rounds.selected) else {
                return Vec::new();
            };
            let current = rating_text(pass.rating, &pass.note);
            let mut area = TextArea::new(vec![current]);
            area.move_cursor(ratatui_textarea::CursorMove::End);
            rounds.overlay = Some(RoundsOverlay::Rate(Box::new(area)));
        }
        Some(Action::MarkBest) => {
            let selected = rounds.selected as u32;
            if selected as usize >= count {
                return Vec::new();
            }
            let run = rounds.lp.run_mut();
            run.best = if run.best == Some(selected) {
                None
            } else {
                Some(selected)
            };
            let text = match run.best {
                Some(_) => format!("{} marked best", super::pass_name(selected as usize)),
                None => "no pass marked best".to_string(),
            };
            let effect = save(rounds.run());
            app.info(text);
            return vec![effect];
        }
        Some(Action::CopyMessage) => {
            let Some(pass) = rounds.run().passes.get(rounds.selected) else {
                return Vec::new();
            };
            let text = pass.text.clone();
            let name = super::pass_name(rounds.selected);
            app.info(format!(
                "copied {name} ({} characters)",
                text.chars().count()
            ));
            return vec![Effect::Copy(text)];
        }
        Some(Action::Export) => {
            return vec![Effect::ExportRefinement(Box::new(rounds.run().clone()))];
        }
        Some(Action::CompareRuns) | Some(Action::History) => {
            let purpose = if action == Some(Action::CompareRuns) {
                ListPurpose::Compare
            } else {
                ListPurpose::Open
            };
            rounds.overlay = Some(RoundsOverlay::Runs(RunList {
                purpose,
                runs: Vec::new(),
                selected: 0,
                loaded: false,
            }));
            return vec![Effect::ListRefinements];
        }
        Some(Action::QuitNow) => {
            if app.wb.is_dirty() {
                // Unsaved template changes: ask first, on the workbench.
                app.screen = Screen::Workbench;
                app.wb.overlay = Some(WbOverlay::Confirm(AfterConfirm::Quit));
                return Vec::new();
            }
            app.should_quit = true;
            return vec![Effect::Quit];
        }
        Some(Action::Suspend) => return vec![Effect::Suspend],
        Some(Action::RestartEngine) => return crate::tui::app::restart(app),
        _ => {}
    }
    Vec::new()
}

/// Opens the lens: on the step streaming, else on the selected pass.
fn open_lens(app: &mut App) -> Vec<Effect> {
    let Some(rounds) = &mut app.rounds else {
        return Vec::new();
    };
    let (target, tokens, streaming) = match &rounds.step {
        Some(_) => (
            LensTarget::Streaming,
            rounds.streaming_tokens.as_deref(),
            true,
        ),
        None => {
            let Some(pass) = rounds.run().passes.get(rounds.selected) else {
                app.info("no pass yet: the lens shows a pass's tokens");
                return Vec::new();
            };
            (
                LensTarget::Pass(rounds.selected),
                pass.tokens.as_deref(),
                false,
            )
        }
    };
    let kept = tokens.is_some();
    let lens = Lens::open(tokens.unwrap_or_default(), streaming);
    rounds.lens = Some(RoundsLens { target, lens });
    if !kept {
        app.info(lens::NO_PROBS);
    }
    Vec::new()
}

/// A key while the lens is open; None hands it on (the lens closed first,
/// unless the key is Esc that stops the step streaming).
fn lens_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Option<Vec<Effect>> {
    let rounds = app.rounds.as_mut()?;
    let mut open = rounds.lens.clone()?;
    match action {
        Some(Action::Lens) => {
            rounds.lens = None;
            return Some(Vec::new());
        }
        Some(Action::Stop) if !rounds.is_running() => {
            rounds.lens = None;
            return Some(Vec::new());
        }
        Some(Action::Stop | Action::Help) => return None,
        _ => {}
    }
    let tokens = rounds
        .lens_tokens()
        .and_then(|(_, tokens)| tokens)
        .unwrap_or_default()
        .to_vec();
    match open.lens.on_key(key, &tokens) {
        LensKey::Unhandled => {
            rounds.lens = None;
            None
        }
        LensKey::Moved | LensKey::SameToken => {
            rounds.lens = Some(open);
            Some(Vec::new())
        }
        LensKey::Fork { .. } => {
            rounds.lens = Some(open);
            // A pass is one step of its rounds: the loop goes on from the
            // whole pass, so a fork here would have nothing to continue.
            app.info(
                "a pass is not forked: fork a workbench run or a chat reply (its lens, Enter)",
            );
            Some(Vec::new())
        }
    }
}

fn on_overlay_key(
    app: &mut App,
    overlay: RoundsOverlay,
    action: Option<Action>,
    key: KeyEvent,
) -> Vec<Effect> {
    let Some(rounds) = &mut app.rounds else {
        return Vec::new();
    };
    match overlay {
        RoundsOverlay::Rate(mut area) => match action {
            Some(Action::Close) | Some(Action::Stop) => Vec::new(),
            Some(Action::Apply) => apply_rating(app, &area),
            _ if key.code == KeyCode::Enter => apply_rating(app, &area),
            _ => {
                area.input(key);
                rounds.overlay = Some(RoundsOverlay::Rate(area));
                Vec::new()
            }
        },
        RoundsOverlay::Runs(mut list) => match action {
            Some(Action::Close) | Some(Action::Stop) => Vec::new(),
            Some(Action::SelectPrev) => {
                list.selected = list.selected.saturating_sub(1);
                rounds.overlay = Some(RoundsOverlay::Runs(list));
                Vec::new()
            }
            Some(Action::SelectNext) => {
                list.selected = (list.selected + 1).min(list.runs.len().saturating_sub(1));
                rounds.overlay = Some(RoundsOverlay::Runs(list));
                Vec::new()
            }
            Some(Action::Pick) => match list.runs.get(list.selected).cloned() {
                Some(RunSummary {
                    problem: Some(problem),
                    ..
                }) => {
                    rounds.overlay = Some(RoundsOverlay::Runs(list));
                    app.error(problem);
                    Vec::new()
                }
                Some(summary) => vec![Effect::OpenRefinement {
                    id: summary.id,
                    compare: list.purpose == ListPurpose::Compare,
                }],
                None => {
                    rounds.overlay = Some(RoundsOverlay::Runs(list));
                    Vec::new()
                }
            },
            _ => {
                rounds.overlay = Some(RoundsOverlay::Runs(list));
                Vec::new()
            }
        },
    }
}

/// "4", "4 clear but long", "" (clears): the selected pass's rating.
fn apply_rating(app: &mut App, area: &TextArea<'static>) -> Vec<Effect> {
    let Some(rounds) = &mut app.rounds else {
        return Vec::new();
    };
    let (rating, note) = match parse_rating(&area.lines().join(" ")) {
        Ok(Some((rating, note))) => (Some(rating), note),
        Ok(None) => (None, String::new()),
        Err(problem) => {
            let mut area = area.clone();
            area.set_placeholder_text("a rating 1-5, then a note");
            rounds.overlay = Some(RoundsOverlay::Rate(Box::new(area)));
            app.error(problem);
            return Vec::new();
        }
    };
    let selected = rounds.selected;
    let Some(pass) = rounds.lp.run_mut().passes.get_mut(selected) else {
        return Vec::new();
    };
    pass.rating = rating;
    pass.note = note;
    let effect = save(rounds.run());
    app.info(match rating {
        Some(r) => format!("{} rated {r}/5", super::pass_name(selected)),
        None => format!("{} unrated", super::pass_name(selected)),
    });
    vec![effect]
}

/// Pasted text goes to the rating field, if it is open.
pub fn on_paste(app: &mut App, text: &str) {
    if let Some(Rounds {
        overlay: Some(RoundsOverlay::Rate(area)),
        ..
    }) = &mut app.rounds
    {
        area.insert_str(text.replace('\n', " "));
    }
}
