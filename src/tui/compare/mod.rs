//! The chat's compare mode: the conversation so far goes to two models, A
//! and B, each turn to both; the user votes on each pair of replies and
//! finally goes on with one side. The duel (`arena::duel`) holds the
//! conversation; this screen adds the editor, the vote note, the engines'
//! state, and turns keys and engine events into the duel's moves and the
//! driver's effects.

pub mod view;

use std::path::PathBuf;

use crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

use super::app::{App, Effect, Screen};
use super::chat::update::empty_input;
use super::keymap::Action;
use super::picker::PickerItem;
use crate::arena::duel::{Column, Contender, Duel, DuelJob, ModelRef, Pace, VoteContext};
use crate::arena::runner::{ColumnSettings, DuelEvent};
use crate::arena::Verdict;
use crate::store::dates::now_unix_ms;

/// A column's engine as the screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnEngine {
    /// Not asked for yet: engines start with the first message.
    Idle,
    Loading,
    Ready {
        pid: u32,
    },
    Failed(String),
}

pub struct CompareScreen {
    pub duel: Duel,
    pub input: TextArea<'static>,
    /// The note the next vote carries, and its editor while it is written.
    pub note: Option<String>,
    pub note_editor: Option<TextArea<'static>>,
    /// Rows scrolled back in both columns.
    pub scroll: u16,
    /// Where the chat's own model sits (the other column is the model
    /// picked to compare with).
    pub chat_column: Column,
    pub engines: [ColumnEngine; 2],
    /// Jobs held until both engines are up: a reply that ran while the
    /// other model loaded would show a speed it does not have.
    pub held: Vec<DuelJob>,
}

impl CompareScreen {
    /// A comparison read back from its session: replies that were running
    /// count as stopped, and the engines start with the next message.
    pub fn restored(stored: crate::store::session::StoredComparison) -> CompareScreen {
        let mut duel = stored.duel;
        duel.settle();
        CompareScreen::new(duel, stored.chat_column)
    }

    fn new(duel: Duel, chat_column: Column) -> CompareScreen {
        CompareScreen {
            duel,
            input: empty_input(),
            note: None,
            note_editor: None,
            scroll: 0,
            chat_column,
            engines: [ColumnEngine::Idle, ColumnEngine::Idle],
            held: Vec::new(),
        }
    }
}

/// The chat's model as a contender.
fn chat_contender(app: &App) -> Contender {
    let model = match &app.remote {
        Some(remote) => ModelRef::Remote(remote.clone()),
        None => ModelRef::Local {
            path: app.model_path.clone(),
            sha256: None,
        },
    };
    Contender {
        name: app.model_name.clone(),
        model,
    }
}

/// F9 on the chat: back to the comparison if one is open, else pick the
/// model to compare with.
pub fn open(app: &mut App) -> Vec<Effect> {
    if app.compare.is_some() {
        app.screen = Screen::Compare;
        return Vec::new();
    }
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    let mut picker = super::picker::Picker::new(super::picker::PickerKind::Models);
    picker.for_compare = true;
    app.overlay = Some(super::app::Overlay::Picker(Box::new(picker)));
    vec![Effect::ListModels]
}

/// A model picked to compare with: the comparison opens, named (Alt+H
/// makes it blind before the first message).
pub fn start(app: &mut App, item: &PickerItem) -> Vec<Effect> {
    app.overlay = None;
    let other = Contender {
        name: item
            .remote
            .as_ref()
            .map(|r| r.label())
            .unwrap_or_else(|| super::app::model_name_of(std::path::Path::new(&item.key))),
        model: match &item.remote {
            Some(remote) => ModelRef::Remote(remote.clone()),
            None => ModelRef::Local {
                path: PathBuf::from(&item.key),
                sha256: None,
            },
        },
    };
    let chat = chat_contender(app);
    if chat.model == other.model {
        app.info("that is the chat's own model: pick another to compare with");
        return Vec::new();
    }
    let duel = Duel::new(app.conversation(), chat, other, false, false, false);
    app.compare = Some(CompareScreen::new(duel, Column::A));
    app.screen = Screen::Compare;
    app.info(format!(
        "comparing: each message goes to both · {}/{}/{}/{} vote · {} or {} goes on with one side",
        app.keymap.key_hint(Action::VoteA),
        app.keymap.key_hint(Action::VoteB),
        app.keymap.key_hint(Action::VoteTie),
        app.keymap.key_hint(Action::VoteBothBad),
        app.keymap.key_hint(Action::KeepA),
        app.keymap.key_hint(Action::KeepB),
    ));
    vec![Effect::SaveSession]
}

/// Both columns generate with the chat's settings: a comparison of models,
/// not of settings.
pub fn settings(app: &App) -> [ColumnSettings; 2] {
    let reply = &app.chat.settings.reply;
    let one = ColumnSettings {
        sampling: app.chat.settings.sampling.clone(),
        max_tokens: reply.max_tokens,
        stop: reply.stop.clone(),
    };
    [one.clone(), one]
}

fn run(app: &App, jobs: Vec<DuelJob>) -> Vec<Effect> {
    if jobs.is_empty() {
        return Vec::new();
    }
    vec![Effect::DuelJobs {
        jobs,
        settings: settings(app),
    }]
}

pub fn on_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(screen) = app.compare.as_mut() else {
        app.screen = Screen::Chat;
        return Vec::new();
    };
    if let Some(editor) = &mut screen.note_editor {
        match action {
            Some(Action::Send) => {
                let note = editor.lines().join(" ").trim().to_string();
                screen.note = (!note.is_empty()).then_some(note);
                screen.note_editor = None;
            }
            Some(Action::Stop) => screen.note_editor = None,
            _ => {
                editor.input(key);
            }
        }
        return Vec::new();
    }
    let Some(action) = action else {
        screen.input.input(key);
        return Vec::new();
    };
    match action {
        Action::Send => send(app),
        Action::Newline => {
            screen.input.insert_newline();
            Vec::new()
        }
        Action::Stop => {
            let jobs = screen.duel.stop();
            if jobs.is_empty() && !screen.duel.busy() {
                app.info(format!(
                    "nothing is running; {} or {} ends the comparison",
                    app.keymap.key_hint(Action::KeepA),
                    app.keymap.key_hint(Action::KeepB)
                ));
            }
            let mut effects = run(app, jobs);
            effects.push(Effect::SaveSession);
            effects
        }
        Action::VoteA => vote(app, Verdict::A),
        Action::VoteB => vote(app, Verdict::B),
        Action::VoteTie => vote(app, Verdict::Tie),
        Action::VoteBothBad => vote(app, Verdict::BothBad),
        Action::VoteNote => {
            let mut editor = TextArea::new(vec![screen.note.clone().unwrap_or_default()]);
            editor.move_cursor(ratatui_textarea::CursorMove::End);
            screen.note_editor = Some(editor);
            Vec::new()
        }
        Action::RegenerateA => regenerate(app, Column::A),
        Action::RegenerateB => regenerate(app, Column::B),
        Action::KeepA => keep(app, Column::A),
        Action::KeepB => keep(app, Column::B),
        Action::ToggleBlind => toggle_blind(app),
        Action::TogglePace => toggle_pace(app),
        Action::PageUp => {
            screen.scroll = screen.scroll.saturating_add(10);
            Vec::new()
        }
        Action::PageDown => {
            screen.scroll = screen.scroll.saturating_sub(10);
            Vec::new()
        }
        Action::Compare => {
            app.info(format!(
                "{} or {} ends the comparison and goes on with one side",
                app.keymap.key_hint(Action::KeepA),
                app.keymap.key_hint(Action::KeepB)
            ));
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn send(app: &mut App) -> Vec<Effect> {
    let Some(screen) = app.compare.as_mut() else {
        return Vec::new();
    };
    let text = screen.input.lines().join("\n");
    let jobs = match screen.duel.send(&text) {
        Ok(jobs) => jobs,
        Err(message) => {
            app.info(message);
            return Vec::new();
        }
    };
    screen.input = empty_input();
    screen.scroll = 0;
    let mut effects = Vec::new();
    if screen.engines.iter().all(|e| *e == ColumnEngine::Idle) {
        screen.engines = [ColumnEngine::Loading, ColumnEngine::Loading];
        effects.push(Effect::StartDuelEngines {
            models: [
                screen.duel.contenders[0].model.clone(),
                screen.duel.contenders[1].model.clone(),
            ],
            chat_column: screen.chat_column,
            pace: screen.duel.pace,
        });
    }
    if screen.engines.contains(&ColumnEngine::Loading) {
        screen.held.extend(jobs);
    } else {
        effects.extend(run(app, jobs));
    }
    effects.push(Effect::SaveSession);
    effects
}

fn vote(app: &mut App, verdict: Verdict) -> Vec<Effect> {
    let session = app.chat.session_name.clone();
    let sampling = settings(app).map(|s| s.sampling);
    let Some(screen) = app.compare.as_mut() else {
        return Vec::new();
    };
    let context = VoteContext {
        session,
        at_ms: now_unix_ms(),
        sampling,
    };
    match screen.duel.vote(verdict, screen.note.clone(), context) {
        Ok(vote) => {
            screen.note = None;
            let shown = format!(
                "voted {} · A was {}, B was {}",
                verdict.name(),
                vote.a.model,
                vote.b.model
            );
            app.info(shown);
            vec![Effect::RecordVote(Box::new(vote)), Effect::SaveSession]
        }
        Err(message) => {
            app.info(message);
            Vec::new()
        }
    }
}

fn regenerate(app: &mut App, column: Column) -> Vec<Effect> {
    let Some(screen) = app.compare.as_mut() else {
        return Vec::new();
    };
    match screen.duel.regenerate(column) {
        Ok(jobs) => {
            let mut effects = run(app, jobs);
            effects.push(Effect::SaveSession);
            effects
        }
        Err(message) => {
            app.info(message);
            Vec::new()
        }
    }
}

fn keep(app: &mut App, column: Column) -> Vec<Effect> {
    let Some(screen) = app.compare.as_ref() else {
        return Vec::new();
    };
    match screen.duel.continue_with(column) {
        Ok(_) => {
            let started = screen.engines.iter().any(|e| *e != ColumnEngine::Idle);
            let local = screen
                .duel
                .contenders
                .iter()
                .filter(|c| !c.model.is_remote())
                .count();
            // Workers that ran at once had half the cores each.
            let restart = screen.duel.pace == Pace::AtOnce && local == 2;
            let switches_model = column != screen.chat_column;
            end(app, column);
            if !started {
                // The chat's engine never left the chat.
                return if switches_model {
                    super::app::restart_engine(app)
                } else {
                    vec![Effect::SaveSession]
                };
            }
            let mut effects = vec![Effect::EndDuel { keep: column }];
            if restart {
                // Its threads were split: it starts again with all.
                effects.extend(super::app::restart_engine(app));
            } else {
                effects.push(Effect::SaveSession);
            }
            effects
        }
        Err(message) => {
            app.info(message);
            Vec::new()
        }
    }
}

fn toggle_blind(app: &mut App) -> Vec<Effect> {
    let Some(screen) = app.compare.as_mut() else {
        return Vec::new();
    };
    if !screen.duel.turns.is_empty() {
        app.info("blind or not is chosen before the first message");
        return Vec::new();
    }
    let blind = !screen.duel.blind;
    // A fresh coin decides which column the chat's model takes.
    let coin = blind && now_unix_ms() % 2 == 1;
    let [first, second] = screen.duel.contenders.clone();
    let (chat, other) = if screen.chat_column == Column::A {
        (first, second)
    } else {
        (second, first)
    };
    let at_once = screen.duel.pace == Pace::AtOnce;
    screen.duel = Duel::new(
        screen.duel.prefix.clone(),
        chat,
        other,
        blind,
        at_once,
        coin,
    );
    screen.chat_column = if coin { Column::B } else { Column::A };
    app.info(if blind {
        "blind: the names show after the first vote"
    } else {
        "named: both models' names show"
    });
    vec![Effect::SaveSession]
}

fn toggle_pace(app: &mut App) -> Vec<Effect> {
    let Some(screen) = app.compare.as_mut() else {
        return Vec::new();
    };
    if screen.duel.busy() {
        app.info("wait for both replies, or press Esc to stop them");
        return Vec::new();
    }
    let at_once = screen.duel.pace == Pace::OneAfterTheOther;
    let [a, b] = screen.duel.contenders.clone();
    let pace = Pace::for_models(&a.model, &b.model, at_once);
    if pace == screen.duel.pace {
        app.info("a remote model always runs at once beside a local one");
        return Vec::new();
    }
    screen.duel.pace = pace;
    // The workers restart with the threads the pace wants.
    let mut effects = Vec::new();
    if screen.engines.iter().any(|e| *e != ColumnEngine::Idle) {
        screen.engines = [ColumnEngine::Loading, ColumnEngine::Loading];
        effects.push(Effect::StartDuelEngines {
            models: [a.model, b.model],
            chat_column: screen.chat_column,
            pace,
        });
    }
    app.info(match pace {
        Pace::AtOnce => "replies at once: two local workers share the cores (each half as fast)",
        Pace::OneAfterTheOther => "replies one after the other: each at the machine's full speed",
    });
    effects.push(Effect::SaveSession);
    effects
}

/// What the duel's engines did.
pub fn on_event(app: &mut App, event: DuelEvent) -> Vec<Effect> {
    let Some(screen) = app.compare.as_mut() else {
        return Vec::new();
    };
    let mut problem = None;
    let jobs = match event {
        DuelEvent::Loaded { column, info, pid } => {
            screen.engines[column.index()] = ColumnEngine::Ready { pid };
            // The model's own name, as the chat shows it, until a vote
            // has recorded the one it had.
            let voted = screen.duel.turns.iter().any(|t| t.vote.is_some());
            if let (Some(info), false) = (info, voted) {
                screen.duel.contenders[column.index()].name = crate::models::display_name(&info);
            }
            release_held(screen)
        }
        DuelEvent::LoadFailed { column, message } => {
            screen.engines[column.index()] = ColumnEngine::Failed(message.clone());
            problem = Some(format!("{}: {message}", screen.duel.shown_name(column)));
            // Its replies fail at once (the runner says so); the other's run.
            release_held(screen)
        }
        DuelEvent::Token { column, text } => {
            screen.duel.token(column, &text);
            Vec::new()
        }
        DuelEvent::Done { column, generation } => {
            screen
                .duel
                .finished(column, generation.reason, Some(generation.stats))
        }
        DuelEvent::Failed { column, message } => {
            // A worker that died starts again with the column's next reply
            // (the runner sees to it; nothing is held for it meanwhile).
            screen.engines[column.index()] = ColumnEngine::Failed(message.clone());
            problem = Some(format!("{}: {message}", screen.duel.shown_name(column)));
            screen.duel.failed(column, &message)
        }
    };
    if let Some(problem) = problem {
        app.error(problem);
    }
    let busy = app.compare.as_ref().is_some_and(|s| s.duel.busy());
    let mut effects = run(app, jobs);
    if !busy {
        effects.push(Effect::SaveSession);
    }
    effects
}

/// The held jobs, once no engine is still loading.
fn release_held(screen: &mut CompareScreen) -> Vec<DuelJob> {
    if screen.engines.contains(&ColumnEngine::Loading) {
        Vec::new()
    } else {
        std::mem::take(&mut screen.held)
    }
}

/// The comparison ended with `keep`: its side of the conversation becomes
/// the chat's, its model the chat's model.
pub fn end(app: &mut App, keep: Column) {
    let Some(screen) = app.compare.take() else {
        return;
    };
    app.screen = Screen::Chat;
    let Ok((_, contender)) = screen.duel.continue_with(keep) else {
        return;
    };
    for turn in &screen.duel.turns {
        use super::conversation::{Entry, EntryStatus};
        use crate::engine::protocol::Role;
        app.chat
            .entries
            .push(Entry::new(Role::User, turn.user.clone(), EntryStatus::Done));
        let reply = &turn.replies[keep.index()];
        let status = match &reply.state {
            crate::arena::duel::ReplyState::Failed(why) => EntryStatus::Failed(why.clone()),
            crate::arena::duel::ReplyState::Done(
                crate::engine::protocol::StopReason::Cancelled,
            ) => EntryStatus::Stopped("stopped".into()),
            _ => EntryStatus::Done,
        };
        if !reply.text.is_empty() || status != EntryStatus::Done {
            app.chat
                .entries
                .push(Entry::new(Role::Assistant, reply.text.clone(), status));
        }
    }
    app.model_name = contender.name.clone();
    match contender.model {
        ModelRef::Local { path, .. } => {
            app.remote = None;
            app.set_model_path(path);
        }
        ModelRef::Remote(remote) => {
            app.set_model_path(PathBuf::from(remote.label()));
            app.remote = Some(remote);
        }
    }
    app.info(format!("the chat goes on with {}", contender.name));
}
