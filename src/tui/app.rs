//! The shell of the UI: the state every screen shares (the engine, the
//! model, popups, notices, the screen shown) and the only place state
//! changes: `update` takes a message (a key, a paste, a mouse event, an
//! engine event, the result of some IO), routes it to the screen it is for
//! and returns the effects for the driver to run. No terminal, no IO, no
//! clock: tests drive it directly.

use std::cell::Cell;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use ratatui_textarea::TextArea;

use super::chat::{update as chat, Chat, Focus};
use super::experiments::{update as ex, Experiments, OpenRun, Running};
use super::keymap::{Action, Context, Keymap};
use super::picker::{Picker, PickerItem, PickerKind};
use super::rounds::{update as rd, Rounds};
use super::sanitize::sanitize;
use super::settings::SettingsForm;
use super::theme::Theme;
use super::workbench::{self, update as wb, Workbench};
use crate::engine::probs::TokenProbs;
use crate::engine::protocol::{ChatMessage, GenerationStats, StopReason};
use crate::engine::remote::RemoteModel;
use crate::engine::sampling::SamplingOverrides;
use crate::engine::SamplingParams;
use crate::experiment::compare::Comparison;
use crate::experiment::library::{ExperimentFile, RunEntry};
use crate::experiment::ratings::Ratings;
use crate::experiment::results::CellResult;
use crate::experiment::run::Progress;
use crate::prompt::{Template, TemplateEntry};
use crate::refine::RefineRun;
use crate::store::runs::{RunOutcome, RunRecord, RunSummary};
use crate::store::session::{ReplySettings, Session};

/// Which screen is shown: the chat, or the prompt workbench beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Chat,
    Workbench,
    /// The workbench's refinement rounds.
    Rounds,
    /// Experiments: files, runs, a run's results.
    Experiments,
    /// Two models side by side (the chat's compare mode).
    Compare,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineState {
    Loading,
    Ready,
    Generating,
    /// The model could not be loaded.
    Failed(String),
    /// The worker died; the message says how.
    Crashed(String),
}

/// Figures of the last finished turn, for the status line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnFigures {
    pub ttft_ms: f64,
    pub tokens_per_sec: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// A popup over the chat; at most one, plus the help on top of anything.
pub enum Overlay {
    Settings(SettingsForm),
    Picker(Box<Picker>),
    /// Quitting while the session could not be saved: retry, or quit with
    /// a rescue copy written elsewhere.
    QuitUnsaved,
}

/// Where the view last drew things, for mouse clicks and for scrolling from
/// what is actually on screen. Written by `view::render`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrawnLayout {
    pub messages: Rect,
    pub input: Rect,
    /// Lines between the bottom of the conversation and the bottom of the view.
    pub scroll_up: u16,
    /// Lines of the newest message as drawn.
    pub last_entry_height: usize,
}

pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    Mouse(MouseEvent),
    EngineLoaded {
        model_name: String,
        model_path: PathBuf,
        n_ctx: u32,
    },
    EngineLoadFailed(String),
    /// The fraction of the model file read so far.
    LoadProgress(f32),
    GenerationStarted {
        id: u64,
    },
    Token {
        id: u64,
        text: String,
        /// Tokens in the context after this one (0 when unknown).
        context_used: u32,
        /// The sampled token's id; −1 for text that ends a reply without
        /// a token of its own (held back by a stop string check).
        token: i32,
        /// Its probability and alternatives, when they were asked for.
        probs: Option<TokenProbs>,
    },
    GenerationDone {
        id: u64,
        reason: StopReason,
        context_used: u32,
        figures: TurnFigures,
        /// The worker's figures, kept with a workbench run.
        stats: Option<GenerationStats>,
    },
    GenerationFailed {
        id: Option<u64>,
        message: String,
    },
    /// A beam search (a workbench run) ended.
    BeamsDone {
        id: u64,
        beams: Vec<crate::engine::protocol::Beam>,
        stats: crate::engine::protocol::BeamStats,
    },
    EngineStopped(String),
    /// The lists a picker shows, read from disk by the driver.
    PickerItems(PickerKind, Vec<PickerItem>),
    /// A remote backend's models (or why it did not answer), replacing its
    /// stand-in in the model picker.
    BackendItems {
        backend: String,
        items: Vec<PickerItem>,
    },
    /// Another session was opened.
    SessionOpened(Box<Session>),
    /// A session file was renamed (perhaps the open one).
    SessionRenamed {
        from: String,
        to: String,
    },
    /// The outcome of some IO the driver ran, for the status line.
    Notice(Notice),
    /// Whether writing the session file worked; a failure stays on screen
    /// until a later save succeeds.
    SessionSaved(Result<(), String>),
    /// The template library, read by the driver.
    Templates(Vec<TemplateEntry>),
    TemplateSaved {
        template: Box<Template>,
        path: PathBuf,
    },
    TemplateSaveFailed(String),
    /// A variable's value read from a file.
    ValueLoaded {
        var: String,
        text: String,
    },
    /// The engine's exact input for preview `revision`, and its tokens.
    PreviewFormatted {
        revision: u64,
        result: Result<(String, u32), String>,
    },
    Runs(Vec<RunSummary>),
    RunOpened(Box<RunRecord>),
    RunSaved {
        id: String,
        created_unix_ms: u64,
    },
    /// A chat session made from a template's rendered messages.
    ChatStarted(Box<Session>),
    /// Saved refinement runs, newest first.
    Refinements(Vec<RunSummary>),
    RefinementOpened {
        run: Box<RefineRun>,
        /// Beside the open run, pass by pass, rather than instead of it.
        compare: bool,
    },
    RefinementSaved {
        id: String,
        created_unix_ms: u64,
    },
    /// Experiment files and runs, read by the driver.
    ExperimentsListed {
        files: Vec<ExperimentFile>,
        runs: Vec<RunEntry>,
    },
    ExperimentRunOpened(Box<OpenRun>),
    /// A run started in the background.
    ExperimentStarted(Box<Running>),
    /// A cell of the run in progress finished (None: only the figures
    /// changed).
    ExperimentProgress {
        id: String,
        result: Option<Box<CellResult>>,
        progress: Progress,
    },
    ExperimentFinished {
        id: String,
        outcome: Result<(), String>,
    },
    ExperimentsCompared(Result<Box<Comparison>, String>),
    /// An experiment file was written (from the workbench's template).
    ExperimentMade(PathBuf),
    /// What one of the compare mode's two engines did.
    Duel(Box<crate::arena::runner::DuelEvent>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start a chat generation with the session's settings.
    Generate {
        messages: Vec<ChatMessage>,
        /// Go on writing the last message (a stopped reply) instead of
        /// starting a new one.
        continue_reply: bool,
    },
    /// Start a chat generation that goes on writing the last message from
    /// exactly these tokens (a fork from the lens).
    ContinueFrom {
        messages: Vec<ChatMessage>,
        open_tokens: Vec<i32>,
    },
    Cancel {
        id: u64,
    },
    /// Start a new worker and load the model (after a crash, or with a new
    /// model or context size).
    RestartEngine,
    Suspend,
    /// Write the session file (after every change to the conversation).
    SaveSession,
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Write the session as Markdown and JSON into the exports directory.
    Export,
    ListModels,
    ListSessions,
    /// Save the current session and open this one.
    OpenSession(String),
    RenameSession {
        from: String,
        to: String,
    },
    DeleteSession(String),
    Quit,
    /// Read the template library (shipped and the user's).
    ListTemplates,
    /// Save as the user's template file.
    SaveTemplate(Box<Template>),
    /// Read a file into a variable's value.
    ReadValueFile {
        var: String,
        path: PathBuf,
    },
    /// Ask the engine for the exact input of these messages, once typing
    /// has paused; answered by `PreviewFormatted` for `revision`.
    FormatPreview {
        revision: u64,
        messages: Vec<ChatMessage>,
    },
    /// Generate for the workbench with the template's settings.
    RunTemplate {
        messages: Vec<ChatMessage>,
        sampling: SamplingParams,
        max_tokens: u32,
        stop: Vec<String>,
        /// The template's grammar or JSON schema (on a refinement step: on
        /// the draft and the passes, not on the feedback).
        constraint: Option<crate::engine::constraint::Constraint>,
    },
    /// A beam search for the workbench, with the template's settings.
    RunBeams {
        messages: Vec<ChatMessage>,
        beams: crate::engine::beams::BeamSettings,
        max_tokens: u32,
    },
    /// Generate for the workbench going on writing the last message from
    /// exactly these tokens (a fork of a run from the lens).
    ForkRun {
        messages: Vec<ChatMessage>,
        open_tokens: Vec<i32>,
        sampling: SamplingParams,
        max_tokens: u32,
        stop: Vec<String>,
    },
    /// Write a run record (a new id is given to one without).
    SaveRun(Box<RunRecord>),
    ListRuns,
    OpenRun(String),
    /// Write a refinement run (a new id is given to one without).
    SaveRefinement(Box<RefineRun>),
    ListRefinements,
    OpenRefinement {
        id: String,
        compare: bool,
    },
    /// Write the run as Markdown and JSON into the exports directory.
    ExportRefinement(Box<RefineRun>),
    /// Start a new chat session from these messages.
    StartChat {
        messages: Vec<ChatMessage>,
        sampling: SamplingParams,
        reply: ReplySettings,
    },
    /// Read the experiment files and runs.
    ListExperiments,
    OpenExperimentRun(String),
    /// Run the experiment file in the background (a worker of its own).
    StartExperiment(PathBuf),
    ResumeExperiment(String),
    /// Stop the run in progress; its finished cells are kept.
    StopExperiment,
    SaveRatings {
        dir: PathBuf,
        ratings: Ratings,
    },
    /// Run A against run B, metric by metric.
    CompareExperimentRuns {
        a: String,
        b: String,
    },
    /// Write the run as Markdown, CSV and JSON into the exports directory.
    ExportExperimentRun(String),
    /// Write an experiment of the workbench's template over `dataset`.
    MakeExperiment {
        saved: Option<Box<Template>>,
        edited: Option<Box<Template>>,
        dataset: PathBuf,
    },
    /// Start the compare mode's engines (again, with the threads `pace`
    /// wants); the chat's engine serves `chat_column`.
    StartDuelEngines {
        models: [crate::arena::duel::ModelRef; 2],
        chat_column: crate::arena::duel::Column,
        pace: crate::arena::duel::Pace,
    },
    /// Run these jobs of the duel.
    DuelJobs {
        jobs: Vec<crate::arena::duel::DuelJob>,
        settings: [crate::arena::runner::ColumnSettings; 2],
    },
    /// Append a vote to the votes file.
    RecordVote(Box<crate::arena::Vote>),
    /// The comparison ended with `keep`'s side: its engine becomes the
    /// chat's, the other stops.
    EndDuel {
        keep: crate::arena::duel::Column,
    },
}

pub struct App {
    /// The chat screen's conversation, input and settings.
    pub chat: Chat,
    pub model_name: String,
    /// The model file loaded (or to load); a picked model replaces it.
    pub model_path: PathBuf,
    /// The model is on this remote backend instead (`model_path` then only
    /// names it).
    pub remote: Option<RemoteModel>,
    pub engine: EngineState,
    /// How much of the model file is read, while loading.
    pub load_progress: Option<f32>,
    /// The running generation's id, once the driver has started it.
    pub generating: Option<u64>,
    pub n_ctx: u32,
    pub context_used: u32,
    pub last_turn: Option<TurnFigures>,
    pub overlay: Option<Overlay>,
    pub show_help: bool,
    /// The first Ctrl+C arms quitting, the second quits.
    pub quit_armed: bool,
    pub notice: Option<Notice>,
    pub should_quit: bool,
    pub keymap: Keymap,
    pub theme: Theme,
    pub drawn: Cell<DrawnLayout>,
    pub screen: Screen,
    pub wb: Workbench,
    /// The refinement rounds shown (running, finished or reopened).
    pub rounds: Option<Rounds>,
    pub exp: Experiments,
    /// The compare mode, while a comparison is open.
    pub compare: Option<super::compare::CompareScreen>,
}

/// Warn when fewer tokens than this are left in the context.
pub const CONTEXT_WARNING_MARGIN: u32 = 256;

/// What a model is called until it has loaded and named itself.
pub(crate) fn model_name_of(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl App {
    pub fn new(model_path: PathBuf) -> Self {
        Self {
            chat: Chat::new(&model_path),
            model_name: model_name_of(&model_path),
            model_path,
            remote: None,
            engine: EngineState::Loading,
            load_progress: None,
            generating: None,
            n_ctx: 0,
            context_used: 0,
            last_turn: None,
            overlay: None,
            show_help: false,
            quit_armed: false,
            notice: None,
            should_quit: false,
            keymap: Keymap::defaults(),
            theme: Theme::fallback(),
            drawn: Cell::new(DrawnLayout::default()),
            screen: Screen::Chat,
            wb: Workbench::default(),
            rounds: None,
            exp: Experiments::default(),
            compare: None,
        }
    }

    /// A UI for an existing (or new, empty) session.
    pub fn with_session(session: &Session, model_path: PathBuf) -> Self {
        let mut app = Self::new(model_path);
        app.load_session(session);
        app
    }

    pub(crate) fn load_session(&mut self, session: &Session) {
        self.chat.load_session(session);
        self.context_used = 0;
        // A comparison left open goes on where it was (F9 shows it); its
        // engines start again with its next message.
        self.compare = session
            .compare
            .clone()
            .map(super::compare::CompareScreen::restored);
        if self.compare.is_some() {
            self.info(format!(
                "this session has a comparison open: {} shows it",
                self.keymap.key_hint(Action::Compare)
            ));
        }
    }

    /// The session as it should be saved; a reply still streaming is saved
    /// with what has arrived so far.
    pub fn to_session(&self) -> Session {
        let mut session = self.chat.to_session(&self.model_path);
        if let Some(remote) = &self.remote {
            session.model = None;
            session.backend = Some(remote.clone());
        }
        session.compare =
            self.compare
                .as_ref()
                .map(|screen| crate::store::session::StoredComparison {
                    duel: screen.duel.clone(),
                    chat_column: screen.chat_column,
                });
        session
    }

    /// The user's sampling defaults (read from their file at start).
    pub fn set_user_sampling(&mut self, user: SamplingOverrides) {
        self.chat.set_user_sampling(user);
    }

    /// Another model: the chat's settings the session leaves alone follow
    /// its recommendation.
    pub fn set_model_path(&mut self, path: PathBuf) {
        self.chat.set_model_path(&path);
        self.model_path = path;
    }

    /// Whether a chat reply is streaming.
    pub fn is_busy(&self) -> bool {
        self.chat.is_busy()
    }

    /// Whether a model is loaded and answering (or about to).
    pub fn engine_is_up(&self) -> bool {
        matches!(self.engine, EngineState::Ready | EngineState::Generating)
    }

    pub fn context_nearly_full(&self) -> bool {
        self.n_ctx > 0 && self.context_used + CONTEXT_WARNING_MARGIN >= self.n_ctx
    }

    /// The chat's conversation as the model should see it.
    pub fn conversation(&self) -> Vec<ChatMessage> {
        self.chat.conversation()
    }

    /// The keymap context of what has the keyboard now.
    pub fn context(&self) -> Context {
        if self.overlay.is_none() && self.screen == Screen::Workbench {
            return self.wb.context();
        }
        if self.overlay.is_none() && self.screen == Screen::Experiments {
            return self.exp.context();
        }
        if self.overlay.is_none() && self.screen == Screen::Compare {
            return Context::Compare;
        }
        if self.overlay.is_none() && self.screen == Screen::Rounds {
            return self
                .rounds
                .as_ref()
                .map_or(Context::Rounds, Rounds::context);
        }
        match (&self.overlay, self.chat.focus) {
            (Some(Overlay::Settings(_)), _) => Context::Settings,
            (Some(Overlay::Picker(_)), _) | (Some(Overlay::QuitUnsaved), _) => Context::Picker,
            (None, Focus::Input) => Context::Input,
            (None, Focus::Messages) => Context::Messages,
        }
    }

    pub(crate) fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
        });
    }

    pub(crate) fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
        });
    }
}

pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Paste(text) => {
            let text = text.replace("\r\n", "\n").replace('\r', "\n");
            match &mut app.overlay {
                Some(Overlay::Settings(form)) => {
                    form.focused_area().insert_str(text);
                }
                Some(Overlay::Picker(picker)) => {
                    if let Some(name) = &mut picker.renaming {
                        name.insert_str(text.replace('\n', " "));
                    }
                }
                Some(Overlay::QuitUnsaved) => {}
                None if app.screen == Screen::Workbench => return wb::on_paste(app, text),
                None if app.screen == Screen::Rounds => rd::on_paste(app, &text),
                None if app.screen == Screen::Experiments => ex::on_paste(app, &text),
                None if app.screen == Screen::Compare => {
                    if let Some(screen) = &mut app.compare {
                        match &mut screen.note_editor {
                            Some(editor) => {
                                editor.insert_str(text.replace('\n', " "));
                            }
                            None => {
                                screen.input.insert_str(text);
                            }
                        }
                    }
                }
                None => chat::on_paste(app, text),
            }
            Vec::new()
        }
        Msg::Mouse(mouse) => on_mouse(app, mouse),
        Msg::EngineLoaded {
            model_name,
            model_path,
            n_ctx,
        } => {
            app.model_name = model_name;
            app.set_model_path(model_path);
            app.n_ctx = n_ctx;
            app.engine = EngineState::Ready;
            app.load_progress = None;
            wb::on_engine_ready(app)
        }
        Msg::EngineLoadFailed(message) => {
            app.engine = EngineState::Failed(message);
            Vec::new()
        }
        Msg::LoadProgress(fraction) => {
            if app.engine == EngineState::Loading {
                app.load_progress = Some(fraction.clamp(0.0, 1.0));
            }
            Vec::new()
        }
        Msg::GenerationStarted { id } => {
            let owned = wb::on_started(&mut app.wb, id) || rd::on_started(app, id) || app.is_busy();
            if !owned {
                // Stopped before it started (Esc on rounds whose step had
                // not begun): nothing waits for it.
                return vec![Effect::Cancel { id }];
            }
            app.generating = Some(id);
            app.engine = EngineState::Generating;
            Vec::new()
        }
        Msg::Token {
            id,
            text,
            context_used,
            token,
            probs,
        } => {
            if app.generating == Some(id) && context_used > 0 {
                app.context_used = context_used;
            }
            if wb::owns_generation(&app.wb, id) {
                wb::on_token(&mut app.wb, &sanitize(&text), token, probs.as_ref());
            } else if rd::owns_generation(app, id) {
                // Kept as the model wrote it: it goes into the next prompt.
                rd::on_token(app, &text, token, probs.as_ref());
            } else if app.generating == Some(id) {
                chat::on_token(app, &sanitize(&text), token, probs.as_ref());
            }
            Vec::new()
        }
        Msg::GenerationDone {
            id,
            reason,
            context_used,
            figures,
            stats,
        } => {
            if app.generating != Some(id) {
                return Vec::new();
            }
            if wb::owns_generation(&app.wb, id) {
                app.generating = None;
                app.engine = EngineState::Ready;
                app.context_used = context_used;
                app.last_turn = Some(figures);
                let mut effects = wb::on_finished(&mut app.wb, RunOutcome::Done { reason }, stats);
                effects.extend(wb::fork_pending(app));
                return effects;
            }
            if rd::owns_generation(app, id) {
                app.generating = None;
                app.engine = EngineState::Ready;
                app.context_used = context_used;
                app.last_turn = Some(figures);
                return rd::on_done(app, reason, stats.unwrap_or_default());
            }
            app.generating = None;
            app.engine = EngineState::Ready;
            app.context_used = context_used;
            app.last_turn = Some(figures);
            chat::on_done(app, reason)
        }
        Msg::BeamsDone { id, beams, stats } => {
            if app.generating != Some(id) || !wb::owns_generation(&app.wb, id) {
                return Vec::new();
            }
            app.generating = None;
            app.engine = EngineState::Ready;
            app.last_turn = Some(TurnFigures {
                ttft_ms: stats.prompt_eval_ms,
                tokens_per_sec: stats.tokens_per_sec(),
            });
            wb::on_beams(&mut app.wb, beams, stats)
        }
        Msg::GenerationFailed { id, message } => {
            if id.is_some() && app.generating != id {
                return Vec::new();
            }
            if app.wb.is_running()
                && (id.is_none() || id.is_some_and(|id| wb::owns_generation(&app.wb, id)))
            {
                app.generating = None;
                if app.engine == EngineState::Generating {
                    app.engine = EngineState::Ready;
                }
                // A stopped beam search ends with the worker's word for it.
                if message == crate::engine::beams::CANCELLED {
                    let outcome = RunOutcome::Done {
                        reason: StopReason::Cancelled,
                    };
                    return wb::on_finished(&mut app.wb, outcome, None);
                }
                app.error(message.clone());
                return wb::on_finished(&mut app.wb, RunOutcome::Failed { message }, None);
            }
            let rounds_step = app.rounds.as_ref().is_some_and(|r| r.step.is_some());
            if rounds_step && (id.is_none() || id.is_some_and(|id| rd::owns_generation(app, id))) {
                app.generating = None;
                app.error(message.clone());
                return rd::on_failed(app, message);
            }
            app.generating = None;
            if app.engine == EngineState::Generating {
                app.engine = EngineState::Ready;
            }
            chat::on_failed(app, message)
        }
        Msg::EngineStopped(message) => {
            app.generating = None;
            chat::on_engine_stopped(app);
            let mut effects = vec![Effect::SaveSession];
            if app.wb.is_running() {
                effects.extend(wb::on_finished(
                    &mut app.wb,
                    RunOutcome::Failed {
                        message: format!("the engine stopped: {message}"),
                    },
                    None,
                ));
            }
            effects.extend(rd::on_failed(app, format!("the engine stopped: {message}")));
            app.engine = EngineState::Crashed(message);
            effects
        }
        Msg::PickerItems(kind, items) => {
            if let Some(Overlay::Picker(picker)) = &mut app.overlay {
                if picker.kind == kind {
                    picker.set_items(items);
                }
            }
            Vec::new()
        }
        Msg::BackendItems { backend, items } => {
            if let Some(Overlay::Picker(picker)) = &mut app.overlay {
                if picker.kind == PickerKind::Models {
                    picker.replace_backend(&backend, items);
                }
            }
            Vec::new()
        }
        Msg::Duel(event) => super::compare::on_event(app, *event),
        Msg::SessionOpened(session) => {
            app.load_session(&session);
            app.overlay = None;
            app.screen = Screen::Chat;
            app.info(format!("opened session {}", session.name));
            Vec::new()
        }
        Msg::SessionRenamed { from, to } => {
            if app.chat.session_name == from {
                app.chat.session_name = to.clone();
            }
            app.info(format!("renamed session {from} to {to}"));
            Vec::new()
        }
        Msg::Notice(notice) => {
            app.notice = Some(notice);
            Vec::new()
        }
        Msg::SessionSaved(Ok(())) => {
            if app.chat.unsaved.take().is_some() {
                app.info("the session is saved again");
            }
            Vec::new()
        }
        Msg::SessionSaved(Err(error)) => {
            app.error(format!("not saved: {error}"));
            app.chat.unsaved = Some(error);
            Vec::new()
        }
        Msg::Templates(entries) => wb::on_templates(app, entries),
        Msg::TemplateSaved { template, path } => wb::on_template_saved(app, *template, path),
        Msg::TemplateSaveFailed(message) => {
            wb::on_save_failed(app, message);
            Vec::new()
        }
        Msg::ValueLoaded { var, text } => wb::on_value_loaded(app, var, text),
        Msg::PreviewFormatted { revision, result } => {
            wb::on_preview(app, revision, result);
            Vec::new()
        }
        Msg::Runs(runs) => {
            wb::on_runs(app, runs);
            Vec::new()
        }
        Msg::RunOpened(record) => wb::on_run_opened(app, *record),
        Msg::RunSaved {
            id,
            created_unix_ms,
        } => {
            wb::on_run_saved(app, id, created_unix_ms);
            Vec::new()
        }
        Msg::Refinements(runs) => {
            rd::on_runs(app, runs);
            Vec::new()
        }
        Msg::RefinementOpened { run, compare } => {
            rd::on_opened(app, *run, compare);
            Vec::new()
        }
        Msg::RefinementSaved {
            id,
            created_unix_ms,
        } => {
            rd::on_saved(app, id, created_unix_ms);
            Vec::new()
        }
        Msg::ChatStarted(session) => chat::on_started_from_template(app, &session),
        Msg::ExperimentsListed { files, runs } => {
            ex::on_listed(&mut app.exp, files, runs);
            Vec::new()
        }
        Msg::ExperimentRunOpened(run) => {
            ex::on_run_opened(app, run);
            Vec::new()
        }
        Msg::ExperimentStarted(running) => {
            ex::on_started(app, *running);
            Vec::new()
        }
        Msg::ExperimentProgress {
            id,
            result,
            progress,
        } => {
            ex::on_progress(app, &id, result.map(|r| *r), progress);
            Vec::new()
        }
        Msg::ExperimentFinished { id, outcome } => ex::on_finished(app, &id, outcome),
        Msg::ExperimentMade(path) => ex::on_made(app, path),
        Msg::ExperimentsCompared(comparison) => {
            ex::on_compared(app, comparison);
            Vec::new()
        }
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let context = app.context();
    let action = app.keymap.action(context, &key);
    let quits = action == Some(Action::Quit)
        || (action == Some(Action::QuitNow) && context == Context::WorkbenchList);
    let form_open = matches!(
        app.wb.overlay,
        Some(workbench::WbOverlay::Example(_) | workbench::WbOverlay::Line(_))
    );
    if quits && form_open {
        // The popup holds typing that quitting (or its question) would drop.
        app.screen = Screen::Workbench;
        app.info(format!(
            "close the popup first ({} keeps it, {} drops it)",
            app.keymap
                .key_hint_in(Context::WorkbenchForm, Action::Apply),
            app.keymap
                .key_hint_in(Context::WorkbenchForm, Action::Close)
        ));
        return Vec::new();
    }
    if quits
        && app.wb.is_dirty()
        && !matches!(app.wb.overlay, Some(workbench::WbOverlay::Confirm(_)))
    {
        // Unsaved template changes: ask first, on the workbench.
        app.screen = Screen::Workbench;
        app.overlay = None;
        app.quit_armed = false;
        app.wb.overlay = Some(workbench::WbOverlay::Confirm(workbench::AfterConfirm::Quit));
        return Vec::new();
    }
    if matches!(app.overlay, Some(Overlay::QuitUnsaved)) {
        return quit_unsaved_key(app, key);
    }
    let quits_chat = action == Some(Action::Quit)
        || (action == Some(Action::QuitNow) && context == Context::Messages);
    if (quits || quits_chat) && app.chat.unsaved.is_some() {
        // The turns on screen are not on disk: ask, never just go.
        app.quit_armed = false;
        app.overlay = Some(Overlay::QuitUnsaved);
        return Vec::new();
    }
    if action == Some(Action::QuitNow)
        && context == Context::WorkbenchList
        && app.wb.overlay.is_none()
    {
        app.should_quit = true;
        return vec![Effect::Quit];
    }
    if action == Some(Action::Quit) {
        if app.quit_armed {
            app.should_quit = true;
            return vec![Effect::Quit];
        }
        app.quit_armed = true;
        app.info(format!(
            "press {} again to quit",
            app.keymap.key_hint(Action::Quit)
        ));
        return Vec::new();
    }
    if app.quit_armed {
        app.quit_armed = false;
        app.notice = None;
    }
    if app.show_help {
        // Any key closes the help; it is only a view.
        app.show_help = false;
        return Vec::new();
    }
    if action == Some(Action::Help) {
        app.show_help = true;
        return Vec::new();
    }
    if action == Some(Action::Workbench) && app.overlay.is_none() && app.wb.overlay.is_none() {
        return switch_screen(app);
    }
    if action == Some(Action::Experiments)
        && app.overlay.is_none()
        && app.wb.overlay.is_none()
        && app.exp.overlay.is_none()
    {
        return ex::toggle(app);
    }
    match app.overlay {
        Some(Overlay::Settings(_)) => chat::on_settings_key(app, action, key),
        Some(Overlay::Picker(_)) => on_picker_key(app, action, key),
        Some(Overlay::QuitUnsaved) => quit_unsaved_key(app, key),
        None if app.screen == Screen::Workbench => on_workbench_key(app, action, key),
        None if app.screen == Screen::Rounds => rd::on_key(app, action, key),
        None if app.screen == Screen::Experiments => ex::on_key(app, action, key),
        None if app.screen == Screen::Compare => super::compare::on_key(app, action, key),
        None if action == Some(Action::Compare) && app.screen == Screen::Chat => {
            super::compare::open(app)
        }
        None => chat::on_key(app, action, key),
    }
}

/// The question before quitting with turns that are not saved.
fn quit_unsaved_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Char('r') | KeyCode::Char('R') => {
            app.overlay = None;
            app.info("saving again…");
            vec![Effect::SaveSession]
        }
        KeyCode::Char('q') | KeyCode::Char('Q') => {
            app.overlay = None;
            app.should_quit = true;
            vec![Effect::Quit]
        }
        KeyCode::Esc | KeyCode::Char('c') | KeyCode::Char('C') => {
            app.overlay = None;
            app.info("not quitting; the conversation is still only on screen");
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn switch_screen(app: &mut App) -> Vec<Effect> {
    app.screen = match app.screen {
        Screen::Chat => Screen::Workbench,
        Screen::Workbench => Screen::Chat,
        // The rounds belong to the workbench.
        Screen::Rounds => Screen::Workbench,
        Screen::Experiments => Screen::Workbench,
        Screen::Compare => Screen::Workbench,
    };
    if app.screen == Screen::Workbench && !app.wb.listed {
        app.wb.listed = true;
        return vec![Effect::ListTemplates];
    }
    Vec::new()
}

/// The workbench's keys, but for the popups that serve both screens.
fn on_workbench_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    match action {
        Some(Action::Models) if app.wb.overlay.is_none() => {
            app.overlay = Some(Overlay::Picker(Box::new(Picker::new(PickerKind::Models))));
            vec![Effect::ListModels]
        }
        Some(Action::Sessions) if app.wb.overlay.is_none() => {
            app.overlay = Some(Overlay::Picker(Box::new(Picker::new(PickerKind::Sessions))));
            vec![Effect::ListSessions]
        }
        Some(Action::Refine) if app.wb.overlay.is_none() => rd::start(app),
        Some(Action::Settings) if app.wb.overlay.is_none() => {
            app.info(format!(
                "the workbench runs with the template's own settings: {} shows its sampling text",
                app.keymap.key_hint(Action::NextText)
            ));
            Vec::new()
        }
        _ => wb::on_key(app, action, key),
    }
}

fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Effect> {
    if app.overlay.is_some() || app.show_help {
        return Vec::new();
    }
    if app.screen == Screen::Workbench {
        return wb::on_mouse(app, mouse);
    }
    if app.screen == Screen::Experiments {
        return Vec::new();
    }
    if app.screen == Screen::Rounds {
        // The wheel scrolls the two columns together.
        if let Some(rounds) = &mut app.rounds {
            let max = i32::from(rounds.max_scroll.get());
            let lines = match mouse.kind {
                MouseEventKind::ScrollUp => -chat::WHEEL_LINES,
                MouseEventKind::ScrollDown => chat::WHEEL_LINES,
                _ => return Vec::new(),
            };
            let target = (i32::from(rounds.scroll) + lines).clamp(0, max);
            rounds.scroll = u16::try_from(target).unwrap_or(0);
        }
        return Vec::new();
    }
    chat::on_mouse(app, mouse)
}

pub(crate) fn restart(app: &mut App) -> Vec<Effect> {
    if matches!(app.engine, EngineState::Crashed(_) | EngineState::Failed(_)) {
        app.engine = EngineState::Loading;
        app.load_progress = Some(0.0);
        vec![Effect::RestartEngine]
    } else {
        app.info("the engine is running; it restarts only after a crash or a failed load");
        Vec::new()
    }
}

/// Whether a new turn can start now; if not, says why.
pub(crate) fn engine_ready(app: &mut App) -> bool {
    let why = match &app.engine {
        EngineState::Ready => return true,
        EngineState::Generating => "wait for the reply, or press Esc to stop it",
        EngineState::Loading => "the model is still loading; your message is kept",
        EngineState::Failed(_) | EngineState::Crashed(_) => {
            "the engine is not running; press Ctrl+R to restart it"
        }
    };
    app.info(why);
    false
}

fn on_picker_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let current_session = app.chat.session_name.clone();
    let Some(Overlay::Picker(picker)) = &mut app.overlay else {
        return Vec::new();
    };
    if let Some(name) = &mut picker.renaming {
        return match key.code {
            KeyCode::Esc => {
                picker.renaming = None;
                Vec::new()
            }
            KeyCode::Enter => {
                let to = name.lines().join("").trim().to_string();
                let from = picker.selected_item().map(|i| i.key.clone());
                picker.renaming = None;
                match from {
                    Some(from) if !to.is_empty() && to != from => {
                        vec![Effect::RenameSession { from, to }]
                    }
                    _ => Vec::new(),
                }
            }
            _ => {
                name.input(key);
                Vec::new()
            }
        };
    }
    if action != Some(Action::PickerDelete) {
        picker.delete_armed = false;
    }
    match action {
        Some(Action::Close) | Some(Action::Stop) => {
            app.overlay = None;
            Vec::new()
        }
        Some(Action::SelectPrev) => {
            picker.move_selection(false);
            Vec::new()
        }
        Some(Action::SelectNext) => {
            picker.move_selection(true);
            Vec::new()
        }
        Some(Action::Pick) => {
            let Some(item) = picker.selected_item().cloned() else {
                return Vec::new();
            };
            if let Some(problem) = &item.problem {
                let problem = problem.clone();
                app.error(problem);
                return Vec::new();
            }
            if picker.for_compare {
                return super::compare::start(app, &item);
            }
            match picker.kind {
                PickerKind::Models => match item.remote {
                    Some(remote) => pick_remote(app, remote),
                    None => pick_model(app, PathBuf::from(item.key)),
                },
                PickerKind::Sessions => {
                    if item.key == current_session {
                        app.overlay = None;
                        return Vec::new();
                    }
                    if app.generating.is_some() {
                        app.info("wait for the reply, or press Esc to stop it");
                        return Vec::new();
                    }
                    vec![Effect::SaveSession, Effect::OpenSession(item.key)]
                }
            }
        }
        Some(Action::PickerRename) if picker.kind == PickerKind::Sessions => {
            if let Some(item) = picker.selected_item() {
                let mut name = TextArea::new(vec![item.key.clone()]);
                name.move_cursor(ratatui_textarea::CursorMove::End);
                picker.renaming = Some(name);
            }
            Vec::new()
        }
        Some(Action::PickerDelete) if picker.kind == PickerKind::Sessions => {
            let Some(item) = picker.selected_item().cloned() else {
                return Vec::new();
            };
            if item.key == current_session {
                app.info("this session is open; open another one to delete it");
                return Vec::new();
            }
            if !picker.delete_armed {
                picker.delete_armed = true;
                let hint = app.keymap.key_hint(Action::PickerDelete);
                app.info(format!("press {hint} again to delete session {}", item.key));
                return Vec::new();
            }
            picker.delete_armed = false;
            vec![Effect::DeleteSession(item.key)]
        }
        _ => Vec::new(),
    }
}

fn pick_model(app: &mut App, path: PathBuf) -> Vec<Effect> {
    app.overlay = None;
    if app.remote.is_none() && path == app.model_path && app.engine == EngineState::Ready {
        return Vec::new();
    }
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    app.remote = None;
    app.model_name = model_name_of(&path);
    app.set_model_path(path);
    restart_engine(app)
}

/// A model on a remote backend: the engine reconnects to it; the local
/// worker, if one ran, stops.
fn pick_remote(app: &mut App, remote: RemoteModel) -> Vec<Effect> {
    app.overlay = None;
    if app.remote.as_ref() == Some(&remote) && app.engine == EngineState::Ready {
        return Vec::new();
    }
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    app.model_name = remote.label();
    app.set_model_path(PathBuf::from(remote.label()));
    app.remote = Some(remote);
    restart_engine(app)
}

pub(crate) fn restart_engine(app: &mut App) -> Vec<Effect> {
    app.engine = EngineState::Loading;
    app.load_progress = Some(0.0);
    app.context_used = 0;
    app.last_turn = None;
    vec![Effect::SaveSession, Effect::RestartEngine]
}
