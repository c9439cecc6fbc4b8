//! The chat screen's state and the only place it changes: `update` takes a
//! message (a key, a paste, a mouse event, an engine event, the result of
//! some IO) and returns the effects for the driver to run. No terminal, no
//! IO, no clock: tests drive it directly.

use std::cell::Cell;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};
use ratatui_textarea::TextArea;

use super::conversation::{self, chat_messages, Entry, EntryStatus};
use super::keymap::{Action, Context, Keymap};
use super::picker::{Picker, PickerItem, PickerKind};
use super::rounds::{update as rd, Rounds};
use super::sanitize::sanitize;
use super::settings::{ChatSettings, SettingsForm};
use super::theme::Theme;
use super::workbench::{self, update as wb, Workbench};
use crate::engine::protocol::{prompt_too_long, ChatMessage, GenerationStats, Role, StopReason};
use crate::engine::sampling::SamplingOverrides;
use crate::engine::SamplingParams;
use crate::prompt::{Template, TemplateEntry};
use crate::refine::RefineRun;
use crate::sampling_defaults::SamplingDefaults;
use crate::store::runs::{RunOutcome, RunRecord, RunSummary};
use crate::store::session::{ReplySettings, Session};

/// Which screen is shown: the chat, or the prompt workbench beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Chat,
    Workbench,
    /// The workbench's refinement rounds.
    Rounds,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Input,
    Messages,
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
    EngineStopped(String),
    /// The lists a picker shows, read from disk by the driver.
    PickerItems(PickerKind, Vec<PickerItem>),
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
}

pub struct App {
    pub session_name: String,
    pub settings: ChatSettings,
    /// What the sampler settings the session leaves alone follow: the
    /// user's defaults and the model's recommendation.
    pub sampling_defaults: SamplingDefaults,
    pub model_name: String,
    /// The model file loaded (or to load); a picked model replaces it.
    pub model_path: PathBuf,
    pub entries: Vec<Entry>,
    pub input: TextArea<'static>,
    pub engine: EngineState,
    /// How much of the model file is read, while loading.
    pub load_progress: Option<f32>,
    /// The running generation's id, once the driver has started it.
    pub generating: Option<u64>,
    pub n_ctx: u32,
    pub context_used: u32,
    pub last_turn: Option<TurnFigures>,
    pub focus: Focus,
    /// The message acted on in the message list.
    pub selected: Option<usize>,
    /// Keep the selected message in view (until the user scrolls).
    pub follow_selection: bool,
    /// Lines scrolled up from the bottom; 0 follows the stream.
    pub scroll_up: u16,
    /// The newest message's height when the user scrolled up: what it grows
    /// by while streaming is added to `scroll_up`, so the view stays put.
    pub scroll_base_tail: Option<usize>,
    /// The message being edited in the input, and the draft it replaced.
    pub editing: Option<(usize, Vec<String>)>,
    pub overlay: Option<Overlay>,
    pub show_help: bool,
    /// The first Ctrl+C arms quitting, the second quits.
    pub quit_armed: bool,
    /// The first delete press arms, the second deletes.
    pub delete_armed: bool,
    pub notice: Option<Notice>,
    /// Why the conversation on screen is not in the session file (the last
    /// save failed); None once a save succeeds.
    pub unsaved: Option<String>,
    /// Where a rescue copy goes when quitting with unsaved turns (said in
    /// the question before quitting).
    pub rescue_hint: String,
    /// Esc was pressed and the reply is winding down.
    pub stopping: bool,
    /// A message sent while the reply was stopping: it goes out as soon as
    /// the reply has stopped.
    pub queued: Option<String>,
    pub should_quit: bool,
    pub keymap: Keymap,
    pub theme: Theme,
    pub drawn: Cell<DrawnLayout>,
    pub screen: Screen,
    pub wb: Workbench,
    /// The refinement rounds shown (running, finished or reopened).
    pub rounds: Option<Rounds>,
}

/// Warn when fewer tokens than this are left in the context.
pub const CONTEXT_WARNING_MARGIN: u32 = 256;
const INPUT_PLACEHOLDER: &str = "Type a message; Enter sends, Alt+Enter or Ctrl+J adds a line";
const WHEEL_LINES: i32 = 3;

fn empty_input() -> TextArea<'static> {
    let mut input = TextArea::default();
    input.set_placeholder_text(INPUT_PLACEHOLDER);
    input
}

/// The input holding `lines`, with the cursor at the end, ready to go on.
fn input_with(lines: Vec<String>) -> TextArea<'static> {
    if lines.iter().all(|l| l.is_empty()) {
        return empty_input();
    }
    let mut input = TextArea::new(lines);
    input.set_placeholder_text(INPUT_PLACEHOLDER);
    input.move_cursor(ratatui_textarea::CursorMove::Bottom);
    input.move_cursor(ratatui_textarea::CursorMove::End);
    input
}

/// Actions that change which messages exist wait until an edit is sent or
/// cancelled: the edit is tied to its message's place in the conversation.
fn blocked_by_edit(app: &mut App) -> bool {
    if app.editing.is_some() {
        app.info(format!(
            "finish the edit ({} sends) or cancel it ({}) first",
            app.keymap.key_hint(Action::Send),
            app.keymap.key_hint(Action::Stop)
        ));
        return true;
    }
    false
}

/// What a model is called until it has loaded and named itself.
fn model_name_of(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl App {
    pub fn new(model_path: PathBuf) -> Self {
        let model_name = model_name_of(&model_path);
        let sampling_defaults =
            SamplingDefaults::for_model(&model_path, SamplingOverrides::default());
        let sampling_set = SamplingOverrides::default();
        Self {
            session_name: String::new(),
            settings: ChatSettings {
                system_prompt: None,
                sampling: sampling_defaults.resolve(&sampling_set, &SamplingParams::default()),
                sampling_set,
                reply: ReplySettings::default(),
            },
            sampling_defaults,
            model_name,
            model_path,
            entries: Vec::new(),
            input: empty_input(),
            engine: EngineState::Loading,
            load_progress: None,
            generating: None,
            n_ctx: 0,
            context_used: 0,
            last_turn: None,
            focus: Focus::Input,
            selected: None,
            follow_selection: false,
            scroll_up: 0,
            scroll_base_tail: None,
            editing: None,
            overlay: None,
            show_help: false,
            quit_armed: false,
            delete_armed: false,
            notice: None,
            unsaved: None,
            rescue_hint: String::new(),
            stopping: false,
            queued: None,
            should_quit: false,
            keymap: Keymap::defaults(),
            theme: Theme::fallback(),
            drawn: Cell::new(DrawnLayout::default()),
            screen: Screen::Chat,
            wb: Workbench::default(),
            rounds: None,
        }
    }

    /// A UI for an existing (or new, empty) session.
    pub fn with_session(session: &Session, model_path: PathBuf) -> Self {
        let mut app = Self::new(model_path);
        app.load_session(session);
        app
    }

    fn load_session(&mut self, session: &Session) {
        self.session_name = session.name.clone();
        // A session from before version 3 chose all of its settings.
        let sampling_set = session
            .sampling_set
            .unwrap_or_else(|| SamplingOverrides::all_of(&session.sampling));
        self.settings = ChatSettings {
            system_prompt: session.system_prompt.clone(),
            sampling: self
                .sampling_defaults
                .resolve(&sampling_set, &session.sampling),
            sampling_set,
            reply: session.reply.clone(),
        };
        self.entries = session.messages.iter().map(Entry::from_stored).collect();
        self.selected = None;
        // An edit belongs to the conversation it was started in.
        if let Some((_, draft)) = self.editing.take() {
            self.input = input_with(draft);
        }
        self.scroll_up = 0;
        self.context_used = 0;
    }

    /// The session as it should be saved; a reply still streaming is saved
    /// with what has arrived so far.
    pub fn to_session(&self) -> Session {
        let mut session = Session::new(self.session_name.clone());
        session.model = Some(self.model_path.clone());
        session.system_prompt = self.settings.system_prompt.clone();
        session.sampling = self.settings.sampling.clone();
        session.sampling_set = Some(self.settings.sampling_set);
        session.reply = self.settings.reply.clone();
        session.messages = self.entries.iter().map(Entry::to_stored).collect();
        session
    }

    /// The user's sampling defaults (read from their file at start).
    pub fn set_user_sampling(&mut self, user: SamplingOverrides) {
        self.sampling_defaults.user = user;
        self.follow_sampling_defaults();
    }

    /// Another model: the settings the session leaves alone follow its
    /// recommendation.
    pub fn set_model_path(&mut self, path: PathBuf) {
        self.sampling_defaults = SamplingDefaults::for_model(&path, self.sampling_defaults.user);
        self.model_path = path;
        self.follow_sampling_defaults();
    }

    fn follow_sampling_defaults(&mut self) {
        let settings = &mut self.settings;
        settings.sampling = self
            .sampling_defaults
            .resolve(&settings.sampling_set, &settings.sampling);
    }

    pub fn is_busy(&self) -> bool {
        self.entries
            .last()
            .is_some_and(|e| e.status == EntryStatus::Streaming)
    }

    /// Whether a model is loaded and answering (or about to).
    pub fn engine_is_up(&self) -> bool {
        matches!(self.engine, EngineState::Ready | EngineState::Generating)
    }

    pub fn context_nearly_full(&self) -> bool {
        self.n_ctx > 0 && self.context_used + CONTEXT_WARNING_MARGIN >= self.n_ctx
    }

    /// The conversation as the model should see it.
    pub fn conversation(&self) -> Vec<ChatMessage> {
        chat_messages(self.settings.system_prompt.as_deref(), &self.entries)
    }

    /// The keymap context of what has the keyboard now.
    pub fn context(&self) -> Context {
        if self.overlay.is_none() && self.screen == Screen::Workbench {
            return self.wb.context();
        }
        if self.overlay.is_none() && self.screen == Screen::Rounds {
            return self
                .rounds
                .as_ref()
                .map_or(Context::Rounds, Rounds::context);
        }
        match (&self.overlay, self.focus) {
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

    fn streaming_entry(&mut self) -> Option<&mut Entry> {
        self.entries
            .last_mut()
            .filter(|e| e.status == EntryStatus::Streaming)
    }

    /// The message actions apply to: the selected one, else the last.
    fn target(&self) -> Option<usize> {
        match self.selected {
            Some(i) if i < self.entries.len() => Some(i),
            _ => self.entries.len().checked_sub(1),
        }
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
                None => {
                    app.focus = Focus::Input;
                    app.input.insert_str(text);
                }
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
        } => {
            if app.generating == Some(id) && context_used > 0 {
                app.context_used = context_used;
            }
            if wb::owns_generation(&app.wb, id) {
                wb::on_token(&mut app.wb, &sanitize(&text));
            } else if rd::owns_generation(app, id) {
                // Kept as the model wrote it: it goes into the next prompt.
                rd::on_token(app, &text);
            } else if app.generating == Some(id) {
                if let Some(entry) = app.streaming_entry() {
                    entry.text.push_str(&sanitize(&text));
                }
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
                return wb::on_finished(&mut app.wb, RunOutcome::Done { reason }, stats);
            }
            if rd::owns_generation(app, id) {
                app.generating = None;
                app.engine = EngineState::Ready;
                app.context_used = context_used;
                app.last_turn = Some(figures);
                return rd::on_done(app, reason, stats.unwrap_or_default());
            }
            if let Some(entry) = app.streaming_entry() {
                entry.status = match reason {
                    StopReason::Cancelled => EntryStatus::Stopped("stopped".into()),
                    StopReason::ContextFull => EntryStatus::Stopped("context full".into()),
                    StopReason::MaxTokens => EntryStatus::Stopped("max tokens".into()),
                    _ => EntryStatus::Done,
                };
            }
            app.generating = None;
            app.engine = EngineState::Ready;
            app.context_used = context_used;
            app.last_turn = Some(figures);
            let mut effects = vec![Effect::SaveSession];
            effects.extend(reply_ended(app));
            effects
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
                app.error(message.clone());
                return wb::on_finished(&mut app.wb, RunOutcome::Failed { message }, None);
            }
            let rounds_step = app.rounds.as_ref().is_some_and(|r| r.step.is_some());
            if rounds_step && (id.is_none() || id.is_some_and(|id| rd::owns_generation(app, id))) {
                app.generating = None;
                app.error(message.clone());
                return rd::on_failed(app, message);
            }
            let (status, message) = match prompt_too_long(&message) {
                Some((tokens, n_ctx)) => (
                    format!("the conversation ({tokens} tokens) does not fit the context ({n_ctx})"),
                    format!(
                        "the conversation is {tokens} tokens, more than the context holds ({n_ctx}): delete a long message ({} then {} twice) or raise the context size ({})",
                        app.keymap.key_hint(Action::FocusNext),
                        app.keymap.key_hint_in(Context::Messages, Action::DeleteMessage),
                        app.keymap.key_hint(Action::Settings)
                    ),
                ),
                None => (message.clone(), message),
            };
            if let Some(entry) = app.streaming_entry() {
                entry.status = EntryStatus::Failed(status);
            }
            app.generating = None;
            if app.engine == EngineState::Generating {
                app.engine = EngineState::Ready;
            }
            app.error(message);
            let mut effects = vec![Effect::SaveSession];
            effects.extend(reply_ended(app));
            effects
        }
        Msg::EngineStopped(message) => {
            // The conversation stays; only the reply in flight is marked.
            if let Some(entry) = app.streaming_entry() {
                entry.status = EntryStatus::Failed("the engine stopped".into());
            }
            app.generating = None;
            app.stopping = false;
            if let Some(text) = app.queued.take() {
                restore_queued(app, &text);
            }
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
        Msg::SessionOpened(session) => {
            app.load_session(&session);
            app.overlay = None;
            app.screen = Screen::Chat;
            app.info(format!("opened session {}", session.name));
            Vec::new()
        }
        Msg::SessionRenamed { from, to } => {
            if app.session_name == from {
                app.session_name = to.clone();
            }
            app.info(format!("renamed session {from} to {to}"));
            Vec::new()
        }
        Msg::Notice(notice) => {
            app.notice = Some(notice);
            Vec::new()
        }
        Msg::SessionSaved(Ok(())) => {
            if app.unsaved.take().is_some() {
                app.info("the session is saved again");
            }
            Vec::new()
        }
        Msg::SessionSaved(Err(error)) => {
            app.error(format!("not saved: {error}"));
            app.unsaved = Some(error);
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
        Msg::ChatStarted(session) => {
            app.load_session(&session);
            app.screen = Screen::Chat;
            app.focus = Focus::Input;
            app.info(format!(
                "chat {} started from the template; the reply follows",
                session.name
            ));
            start_reply_checked(app)
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
    if (quits || quits_chat) && app.unsaved.is_some() {
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
    match app.overlay {
        Some(Overlay::Settings(_)) => on_settings_key(app, action, key),
        Some(Overlay::Picker(_)) => on_picker_key(app, action, key),
        Some(Overlay::QuitUnsaved) => quit_unsaved_key(app, key),
        None if app.screen == Screen::Workbench => on_workbench_key(app, action, key),
        None if app.screen == Screen::Rounds => rd::on_key(app, action, key),
        None => on_chat_key(app, action, key),
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

fn on_chat_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    if action != Some(Action::DeleteMessage) {
        app.delete_armed = false;
    }
    let Some(action) = action else {
        if app.focus == Focus::Input {
            app.input.input(key);
        }
        return Vec::new();
    };
    match action {
        Action::Stop => stop(app),
        Action::Suspend => vec![Effect::Suspend],
        Action::RestartEngine => restart(app),
        Action::Regenerate => regenerate(app),
        Action::FocusNext => {
            set_focus(
                app,
                match app.focus {
                    Focus::Input => Focus::Messages,
                    Focus::Messages => Focus::Input,
                },
            );
            Vec::new()
        }
        Action::PageUp => scroll(app, 10),
        Action::PageDown => scroll(app, -10),
        Action::Settings => {
            app.overlay = Some(Overlay::Settings(SettingsForm::new(
                &app.settings,
                &app.sampling_defaults,
            )));
            Vec::new()
        }
        Action::Models => {
            app.overlay = Some(Overlay::Picker(Box::new(Picker::new(PickerKind::Models))));
            vec![Effect::ListModels]
        }
        Action::Sessions => {
            app.overlay = Some(Overlay::Picker(Box::new(Picker::new(PickerKind::Sessions))));
            vec![Effect::ListSessions]
        }
        Action::Export => vec![Effect::Export],
        Action::Send => send(app),
        Action::Newline => {
            app.input.insert_newline();
            Vec::new()
        }
        Action::QuitNow => {
            app.should_quit = true;
            vec![Effect::Quit]
        }
        Action::SelectPrev => select(app, -1),
        Action::SelectNext => select(app, 1),
        Action::SelectLast => {
            app.selected = app.entries.len().checked_sub(1);
            app.follow_selection = false;
            app.scroll_up = 0;
            Vec::new()
        }
        Action::EditMessage => edit(app),
        Action::DeleteMessage => delete(app),
        Action::ContinueReply => continue_reply(app),
        Action::CopyMessage => copy_message(app),
        Action::CopyCode => copy_code(app),
        Action::BranchNext => switch_branch(app, true),
        Action::BranchPrev => switch_branch(app, false),
        // Keys of other contexts never come back for this one.
        _ => Vec::new(),
    }
}

fn set_focus(app: &mut App, focus: Focus) {
    app.focus = focus;
    if focus == Focus::Messages && app.selected.is_none() {
        app.selected = app.entries.len().checked_sub(1);
        app.follow_selection = true;
    }
}

fn stop(app: &mut App) -> Vec<Effect> {
    if let Some(text) = app.queued.take() {
        // Esc again takes back a message waiting for the stop.
        restore_queued(app, &text);
        app.info("the waiting message is back in the input");
        return Vec::new();
    }
    if let Some(id) = app.generating {
        app.stopping = true;
        return vec![Effect::Cancel { id }];
    }
    if let Some((_, draft)) = app.editing.take() {
        app.input = input_with(draft);
        app.info("edit cancelled; the message is unchanged");
    }
    Vec::new()
}

fn scroll(app: &mut App, lines: i32) -> Vec<Effect> {
    // From what is on screen, which may be following the selection.
    let drawn = app.drawn.get();
    let from = if app.follow_selection {
        drawn.scroll_up
    } else {
        app.scroll_up
    };
    if app.follow_selection || app.scroll_up == 0 {
        app.scroll_base_tail = Some(drawn.last_entry_height);
    }
    app.follow_selection = false;
    let up = i32::from(from) + lines;
    app.scroll_up = u16::try_from(up.max(0)).unwrap_or(u16::MAX);
    Vec::new()
}

fn select(app: &mut App, step: isize) -> Vec<Effect> {
    let Some(last) = app.entries.len().checked_sub(1) else {
        return Vec::new();
    };
    let current = app.selected.unwrap_or(last);
    app.selected = Some(current.saturating_add_signed(step).min(last));
    app.follow_selection = true;
    Vec::new()
}

fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Effect> {
    if app.overlay.is_some() || app.show_help {
        return Vec::new();
    }
    if app.screen == Screen::Workbench {
        return wb::on_mouse(app, mouse);
    }
    if app.screen == Screen::Rounds {
        // The wheel scrolls the two columns together.
        if let Some(rounds) = &mut app.rounds {
            let max = i32::from(rounds.max_scroll.get());
            let lines = match mouse.kind {
                MouseEventKind::ScrollUp => -WHEEL_LINES,
                MouseEventKind::ScrollDown => WHEEL_LINES,
                _ => return Vec::new(),
            };
            let target = (i32::from(rounds.scroll) + lines).clamp(0, max);
            rounds.scroll = u16::try_from(target).unwrap_or(0);
        }
        return Vec::new();
    }
    let drawn = app.drawn.get();
    let at = Position::new(mouse.column, mouse.row);
    match mouse.kind {
        MouseEventKind::ScrollUp => scroll(app, WHEEL_LINES),
        MouseEventKind::ScrollDown => scroll(app, -WHEEL_LINES),
        MouseEventKind::Down(MouseButton::Left) => {
            if drawn.input.contains(at) {
                set_focus(app, Focus::Input);
            } else if drawn.messages.contains(at) {
                set_focus(app, Focus::Messages);
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
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

/// Replace the last reply with a new one for the same conversation.
fn regenerate(app: &mut App) -> Vec<Effect> {
    if blocked_by_edit(app) || !engine_ready(app) {
        return Vec::new();
    }
    let Some(last) = app.entries.iter().rposition(|e| e.role == Role::Assistant) else {
        app.info("there is no reply to regenerate");
        return Vec::new();
    };
    // Only the latest exchange can be regenerated; later user text would be lost.
    if app.entries[last + 1..].iter().any(|e| e.role == Role::User) {
        app.info("only the last reply can be regenerated");
        return Vec::new();
    }
    app.entries.truncate(last);
    start_reply(app)
}

/// Appends an empty reply that the next tokens stream into.
fn start_reply(app: &mut App) -> Vec<Effect> {
    let messages = app.conversation();
    app.entries
        .push(Entry::new(Role::Assistant, "", EntryStatus::Streaming));
    follow_stream(app);
    vec![
        Effect::SaveSession,
        Effect::Generate {
            messages,
            continue_reply: false,
        },
    ]
}

fn follow_stream(app: &mut App) {
    app.scroll_up = 0;
    app.follow_selection = false;
    app.selected = None;
    app.notice = None;
    app.engine = EngineState::Generating;
}

fn send(app: &mut App) -> Vec<Effect> {
    let lines = app.input.lines().to_vec();
    let text = lines.join("\n");
    if text.trim().is_empty() {
        return Vec::new();
    }
    let editing = app.editing.as_ref().map(|(index, _)| *index);
    // An edited reply needs no model; everything else does.
    let edits_reply = editing.is_some_and(|i| {
        app.entries
            .get(i)
            .is_some_and(|e| e.role == Role::Assistant)
    });
    if edits_reply && app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    if app.stopping && editing.is_none() {
        // The reply is winding down after Esc: the message waits for it
        // rather than staying in the input to be glued to the next one.
        if app.queued.is_some() {
            app.info("a message is already waiting for the reply to stop");
        } else {
            app.queued = Some(text);
            app.input = empty_input();
            app.info(format!(
                "your message goes out as soon as the reply has stopped ({} takes it back)",
                app.keymap.key_hint(Action::Stop)
            ));
        }
        return Vec::new();
    }
    if !edits_reply && !engine_ready(app) {
        return Vec::new();
    }
    app.input = input_with(
        app.editing
            .take()
            .map(|(_, draft)| draft)
            .unwrap_or_default(),
    );
    match editing {
        Some(index) if index < app.entries.len() => {
            conversation::replace_with_branch(&mut app.entries, index, text);
            if edits_reply {
                app.info("reply edited; the old version is kept ([ and ] switch)");
                return vec![Effect::SaveSession];
            }
        }
        _ => app
            .entries
            .push(Entry::new(Role::User, text, EntryStatus::Done)),
    }
    start_reply(app)
}

/// Puts a message that waited for a stop back into the input, before
/// anything typed since, which is kept.
fn restore_queued(app: &mut App, text: &str) {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let typed = app.input.lines();
    if typed.iter().any(|l| !l.is_empty()) {
        lines.extend(typed.iter().cloned());
    }
    app.input = input_with(lines);
}

/// A chat reply has ended (done, stopped or failed): a message that waited
/// for it goes out now.
fn reply_ended(app: &mut App) -> Vec<Effect> {
    app.stopping = false;
    let Some(text) = app.queued.take() else {
        return Vec::new();
    };
    if app.engine != EngineState::Ready || app.editing.is_some() {
        restore_queued(app, &text);
        return Vec::new();
    }
    app.entries
        .push(Entry::new(Role::User, text, EntryStatus::Done));
    start_reply(app)
}

/// Puts the selected message into the input; sending it replaces the
/// message and everything after it, which is kept as a branch.
fn edit(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.target() else {
        return Vec::new();
    };
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    // A second edit keeps the draft the first one put aside.
    let draft = match app.editing.take() {
        Some((_, draft)) => draft,
        None => app.input.lines().to_vec(),
    };
    let entry = &app.entries[index];
    let lines: Vec<String> = entry.text.split('\n').map(str::to_string).collect();
    let what = match entry.role {
        Role::Assistant => "reply; Enter saves it",
        _ => "message; Enter resends from here",
    };
    app.input = input_with(lines);
    app.editing = Some((index, draft));
    app.focus = Focus::Input;
    app.info(format!(
        "editing the {what}; the old version is kept; Esc cancels"
    ));
    Vec::new()
}

fn delete(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.target() else {
        return Vec::new();
    };
    if blocked_by_edit(app) {
        return Vec::new();
    }
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    if !app.entries[index].branches.is_empty() {
        app.info("this message has other versions; switch with [ and ] (only messages without versions can be deleted)");
        return Vec::new();
    }
    if !app.delete_armed {
        app.delete_armed = true;
        app.info(format!(
            "press {} again to delete this message",
            app.keymap.key_hint(Action::DeleteMessage)
        ));
        return Vec::new();
    }
    app.delete_armed = false;
    app.entries.remove(index);
    app.selected = match app.entries.len() {
        0 => None,
        n => Some(index.min(n - 1)),
    };
    app.info("message deleted");
    vec![Effect::SaveSession]
}

fn continue_reply(app: &mut App) -> Vec<Effect> {
    let Some(last) = app.entries.len().checked_sub(1) else {
        return Vec::new();
    };
    if blocked_by_edit(app) {
        return Vec::new();
    }
    let entry = &app.entries[last];
    let stopped = matches!(entry.status, EntryStatus::Stopped(_)) && entry.role == Role::Assistant;
    if !stopped || app.target() != Some(last) {
        app.info("only a stopped last reply can be continued");
        return Vec::new();
    }
    if entry.text.trim().is_empty() {
        app.entries.pop();
        return start_reply_checked(app);
    }
    if !engine_ready(app) {
        return Vec::new();
    }
    app.entries[last].status = EntryStatus::Done;
    let messages = app.conversation();
    app.entries[last].status = EntryStatus::Streaming;
    follow_stream(app);
    vec![
        Effect::SaveSession,
        Effect::Generate {
            messages,
            continue_reply: true,
        },
    ]
}

fn start_reply_checked(app: &mut App) -> Vec<Effect> {
    if engine_ready(app) {
        start_reply(app)
    } else {
        Vec::new()
    }
}

fn copy_message(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.target() else {
        return Vec::new();
    };
    let text = app.entries[index].text.clone();
    app.info(format!(
        "copied the message ({} characters)",
        text.chars().count()
    ));
    vec![Effect::Copy(text)]
}

fn copy_code(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.target() else {
        return Vec::new();
    };
    let rendered = super::markdown::render(&app.entries[index].text, &Default::default());
    match rendered.code_blocks.last() {
        Some(code) => {
            let code = code.clone();
            app.info(format!(
                "copied the code block ({} lines)",
                code.lines().count()
            ));
            vec![Effect::Copy(code)]
        }
        None => {
            app.info("this message has no code block");
            Vec::new()
        }
    }
}

fn switch_branch(app: &mut App, forward: bool) -> Vec<Effect> {
    if blocked_by_edit(app) {
        return Vec::new();
    }
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    // The nearest message at or above the selection that has versions.
    let from = app.target().unwrap_or(0);
    let Some(index) = (0..=from)
        .rev()
        .find(|&i| app.entries.get(i).is_some_and(|e| !e.branches.is_empty()))
    else {
        app.info("no other versions here; editing a message keeps its old version");
        return Vec::new();
    };
    conversation::switch_branch(&mut app.entries, index, forward);
    app.selected = Some(index);
    app.follow_selection = true;
    app.context_used = 0;
    vec![Effect::SaveSession]
}

fn on_settings_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(Overlay::Settings(form)) = &mut app.overlay else {
        return Vec::new();
    };
    let multi_line = form.focused_field() == super::settings::Field::SystemPrompt;
    match action {
        Some(Action::Close) | Some(Action::Stop) => {
            app.overlay = None;
            app.info("settings unchanged");
            Vec::new()
        }
        Some(Action::Apply) => apply_settings(app),
        Some(Action::FieldNext) | Some(Action::FocusNext) => {
            form.move_focus(true);
            Vec::new()
        }
        Some(Action::FieldPrev) => {
            form.move_focus(false);
            Vec::new()
        }
        _ if key.code == KeyCode::BackTab => {
            form.move_focus(false);
            Vec::new()
        }
        _ if key.code == KeyCode::Enter && !multi_line => {
            form.move_focus(true);
            Vec::new()
        }
        _ if !multi_line && matches!(key.code, KeyCode::Up | KeyCode::Down) => {
            form.move_focus(key.code == KeyCode::Down);
            Vec::new()
        }
        _ => {
            if key.code == KeyCode::Enter && key.modifiers.is_empty() {
                form.focused_area().insert_newline();
            } else {
                form.focused_area().input(key);
            }
            Vec::new()
        }
    }
}

fn apply_settings(app: &mut App) -> Vec<Effect> {
    let Some(Overlay::Settings(form)) = &mut app.overlay else {
        return Vec::new();
    };
    let next = match form.parse(&app.settings, &app.sampling_defaults) {
        Ok(next) => next,
        Err(error) => {
            form.error = Some(error);
            return Vec::new();
        }
    };
    let reload = next.reply.n_ctx != app.settings.reply.n_ctx;
    app.settings = next;
    app.overlay = None;
    let mut effects = vec![Effect::SaveSession];
    if reload && app.generating.is_none() {
        app.engine = EngineState::Loading;
        app.load_progress = Some(0.0);
        effects.push(Effect::RestartEngine);
        app.info("settings applied; reloading the model with the new context size");
    } else if reload {
        app.info("settings applied; the new context size needs a reload: stop the reply first, then reopen settings");
    } else {
        app.info("settings applied to the next turn");
    }
    effects
}

fn on_picker_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let current_session = app.session_name.clone();
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
            match picker.kind {
                PickerKind::Models => pick_model(app, PathBuf::from(item.key)),
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
    if path == app.model_path && app.engine == EngineState::Ready {
        return Vec::new();
    }
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    app.model_name = model_name_of(&path);
    app.set_model_path(path);
    app.engine = EngineState::Loading;
    app.load_progress = Some(0.0);
    app.context_used = 0;
    app.last_turn = None;
    vec![Effect::SaveSession, Effect::RestartEngine]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(code: KeyCode) -> Msg {
        Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn ctrl(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            update(app, key(KeyCode::Char(c)));
        }
    }

    fn ready_app() -> App {
        let mut app = App::new(PathBuf::from("/m/model.gguf"));
        update(
            &mut app,
            Msg::EngineLoaded {
                model_name: "SmolLM2".into(),
                model_path: PathBuf::from("/m/model.gguf"),
                n_ctx: 4096,
            },
        );
        app
    }

    fn finish(app: &mut App, id: u64, reason: StopReason, context_used: u32) {
        update(
            app,
            Msg::GenerationDone {
                id,
                reason,
                context_used,
                figures: figures(),
                stats: None,
            },
        );
    }

    fn figures() -> TurnFigures {
        TurnFigures {
            ttft_ms: 100.0,
            tokens_per_sec: 120.0,
        }
    }

    #[test]
    fn typing_while_loading_is_kept_and_sending_waits_for_the_model() {
        let mut app = App::new(PathBuf::from("/m/model.gguf"));
        type_text(&mut app, "hello");
        assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
        assert_eq!(app.input.lines(), ["hello"]);
        assert!(app.notice.as_ref().unwrap().text.contains("still loading"));
        update(
            &mut app,
            Msg::EngineLoaded {
                model_name: "m".into(),
                model_path: PathBuf::from("/m/model.gguf"),
                n_ctx: 2048,
            },
        );
        let effects = update(&mut app, key(KeyCode::Enter));
        assert_eq!(
            effects,
            vec![
                Effect::SaveSession,
                Effect::Generate {
                    messages: vec![ChatMessage::new(Role::User, "hello")],
                    continue_reply: false,
                }
            ]
        );
        assert!(app.input.is_empty());
    }

    #[test]
    fn a_turn_streams_into_the_reply_and_finishes() {
        let mut app = ready_app();
        type_text(&mut app, "Hi");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, Msg::GenerationStarted { id: 7 });
        assert_eq!(app.engine, EngineState::Generating);
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                id: 7,
                text: "Hel".into(),
            },
        );
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                id: 99,
                text: "stale".into(),
            },
        );
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                id: 7,
                text: "lo\x1b[2J".into(),
            },
        );
        let reply = app.entries.last().unwrap();
        assert_eq!(reply.text, "Hello␛[2J");
        assert_eq!(reply.status, EntryStatus::Streaming);
        finish(&mut app, 7, StopReason::Eos, 40);
        assert_eq!(app.entries.last().unwrap().status, EntryStatus::Done);
        assert_eq!(app.engine, EngineState::Ready);
        assert_eq!(app.context_used, 40);

        // The next turn sends the whole conversation.
        type_text(&mut app, "More");
        let effects = update(&mut app, key(KeyCode::Enter));
        assert_eq!(
            effects,
            vec![
                Effect::SaveSession,
                Effect::Generate {
                    messages: vec![
                        ChatMessage::new(Role::User, "Hi"),
                        ChatMessage::new(Role::Assistant, "Hello␛[2J"),
                        ChatMessage::new(Role::User, "More"),
                    ],
                    continue_reply: false,
                }
            ]
        );
    }

    #[test]
    fn esc_cancels_and_the_partial_reply_is_kept_as_stopped() {
        let mut app = ready_app();
        type_text(&mut app, "Hi");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, Msg::GenerationStarted { id: 3 });
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                id: 3,
                text: "partial".into(),
            },
        );
        assert_eq!(
            update(&mut app, key(KeyCode::Esc)),
            vec![Effect::Cancel { id: 3 }]
        );
        finish(&mut app, 3, StopReason::Cancelled, 10);
        let reply = app.entries.last().unwrap();
        assert_eq!(reply.text, "partial");
        assert_eq!(reply.status, EntryStatus::Stopped("stopped".into()));
    }

    #[test]
    fn newline_keys_and_paste_edit_the_input() {
        let mut app = ready_app();
        type_text(&mut app, "a");
        update(&mut app, ctrl('j'));
        type_text(&mut app, "b");
        update(
            &mut app,
            Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT)),
        );
        update(&mut app, Msg::Paste("line1\r\nline2 日本 👩‍👩‍👧".into()));
        assert_eq!(app.input.lines(), ["a", "b", "line1", "line2 日本 👩‍👩‍👧"]);
        // Backspace removes a whole grapheme's last char, never panics.
        for _ in 0..20 {
            update(&mut app, key(KeyCode::Backspace));
        }
    }

    #[test]
    fn ctrl_c_twice_quits_and_another_key_disarms() {
        let mut app = ready_app();
        assert!(update(&mut app, ctrl('c')).is_empty());
        assert!(app.quit_armed);
        update(&mut app, key(KeyCode::Char('x')));
        assert!(!app.quit_armed);
        update(&mut app, ctrl('c'));
        assert_eq!(update(&mut app, ctrl('c')), vec![Effect::Quit]);
        assert!(app.should_quit);
    }

    #[test]
    fn q_quits_only_outside_the_editor() {
        let mut app = ready_app();
        assert!(update(&mut app, key(KeyCode::Char('q'))).is_empty());
        assert_eq!(app.input.lines(), ["q"]);
        update(&mut app, key(KeyCode::Tab));
        assert_eq!(
            update(&mut app, key(KeyCode::Char('q'))),
            vec![Effect::Quit]
        );
    }

    #[test]
    fn a_dead_engine_keeps_the_conversation_and_offers_a_restart() {
        let mut app = ready_app();
        type_text(&mut app, "Hi");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, Msg::GenerationStarted { id: 1 });
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                id: 1,
                text: "par".into(),
            },
        );
        update(
            &mut app,
            Msg::EngineStopped("the engine stopped: killed by signal 9".into()),
        );
        assert_eq!(app.entries.len(), 2);
        assert_eq!(app.entries[0].text, "Hi");
        assert_eq!(app.entries[1].text, "par");
        assert!(matches!(app.engine, EngineState::Crashed(_)));
        type_text(&mut app, "again");
        assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
        assert_eq!(update(&mut app, ctrl('r')), vec![Effect::RestartEngine]);
        assert_eq!(app.engine, EngineState::Loading);
        // The failed reply is not sent back to the model.
        update(
            &mut app,
            Msg::EngineLoaded {
                model_name: "m".into(),
                model_path: PathBuf::from("/m/model.gguf"),
                n_ctx: 2048,
            },
        );
        let effects = update(&mut app, key(KeyCode::Enter));
        assert_eq!(
            effects,
            vec![
                Effect::SaveSession,
                Effect::Generate {
                    messages: vec![
                        ChatMessage::new(Role::User, "Hi"),
                        ChatMessage::new(Role::User, "again"),
                    ],
                    continue_reply: false,
                }
            ]
        );
    }

    #[test]
    fn the_session_round_trips_through_the_ui_state() {
        let mut app = ready_app();
        app.session_name = "s1".into();
        app.settings.system_prompt = Some("Be brief.".into());
        type_text(&mut app, "Hi");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, Msg::GenerationStarted { id: 1 });
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                id: 1,
                text: "Hel".into(),
            },
        );
        finish(&mut app, 1, StopReason::Cancelled, 9);
        let session = app.to_session();
        assert_eq!(session.name, "s1");
        assert_eq!(session.messages[1].note.as_deref(), Some("stopped"));
        let reopened = App::with_session(&session, PathBuf::from("/m/model.gguf"));
        assert_eq!(reopened.entries, app.entries);
        assert_eq!(
            reopened.settings.system_prompt.as_deref(),
            Some("Be brief.")
        );
        // The system prompt leads the conversation sent to the model.
        assert_eq!(
            reopened.conversation()[0],
            ChatMessage::new(Role::System, "Be brief.")
        );
    }

    #[test]
    fn ctrl_g_regenerates_the_last_reply_only() {
        let mut app = ready_app();
        type_text(&mut app, "Hi");
        update(&mut app, key(KeyCode::Enter));
        // Not while the reply is still coming.
        assert!(update(&mut app, ctrl('g')).is_empty());
        update(&mut app, Msg::GenerationStarted { id: 1 });
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                id: 1,
                text: "first".into(),
            },
        );
        finish(&mut app, 1, StopReason::Eos, 9);
        let effects = update(&mut app, ctrl('g'));
        assert_eq!(
            effects,
            vec![
                Effect::SaveSession,
                Effect::Generate {
                    messages: vec![ChatMessage::new(Role::User, "Hi")],
                    continue_reply: false,
                }
            ]
        );
        assert_eq!(app.entries.len(), 2);
        assert_eq!(app.entries[1].text, "");
        assert_eq!(app.entries[1].status, EntryStatus::Streaming);
    }

    #[test]
    fn context_warning_before_it_fills() {
        let mut app = ready_app();
        app.context_used = 4096 - CONTEXT_WARNING_MARGIN - 1;
        assert!(!app.context_nearly_full());
        app.context_used += 1;
        assert!(app.context_nearly_full());
    }
}
