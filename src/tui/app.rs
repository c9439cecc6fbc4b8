//! The chat screen's state and the only place it changes: `update` takes a
//! message (a key, a paste, an engine event) and returns the effects for the
//! driver to run. No terminal, no IO, no clock: tests drive it directly.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::sanitize::sanitize;
use std::path::PathBuf;

use crate::engine::protocol::{ChatMessage, Role, StopReason};
use crate::store::session::{Session, StoredMessage};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryStatus {
    Done,
    Streaming,
    /// Stopped by the user (Esc) or by the context filling up.
    Stopped(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub role: Role,
    pub text: String,
    pub status: EntryStatus,
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

pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    EngineLoaded {
        model_name: String,
        n_ctx: u32,
    },
    EngineLoadFailed(String),
    GenerationStarted {
        id: u64,
    },
    Token {
        id: u64,
        text: String,
    },
    GenerationDone {
        id: u64,
        reason: StopReason,
        context_used: u32,
        figures: TurnFigures,
    },
    GenerationFailed {
        id: Option<u64>,
        message: String,
    },
    EngineStopped(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start a chat generation for these messages.
    Generate {
        messages: Vec<ChatMessage>,
    },
    Cancel {
        id: u64,
    },
    RestartEngine,
    Suspend,
    /// Write the session file (after every change to the conversation).
    SaveSession,
    Quit,
}

pub struct App {
    pub session_name: String,
    pub system_prompt: Option<String>,
    pub model_name: String,
    pub entries: Vec<Entry>,
    pub input: TextArea<'static>,
    pub engine: EngineState,
    /// The running generation's id, once the driver has started it.
    pub generating: Option<u64>,
    pub n_ctx: u32,
    pub context_used: u32,
    pub last_turn: Option<TurnFigures>,
    pub focus: Focus,
    /// Lines scrolled up from the bottom; 0 follows the stream.
    pub scroll_up: u16,
    /// The first Ctrl+C arms quitting, the second quits.
    pub quit_armed: bool,
    pub notice: Option<String>,
    pub should_quit: bool,
}

/// Warn when fewer tokens than this are left in the context.
pub const CONTEXT_WARNING_MARGIN: u32 = 256;

impl App {
    /// A UI for an existing (or new, empty) session.
    pub fn with_session(session: &Session, model_name: impl Into<String>) -> Self {
        let mut app = Self::new(model_name);
        app.session_name = session.name.clone();
        app.system_prompt = session.system_prompt.clone();
        app.entries = session
            .messages
            .iter()
            .map(|m| Entry {
                role: m.role,
                text: m.text.clone(),
                status: match &m.note {
                    None => EntryStatus::Done,
                    Some(note) => match note.strip_prefix("failed: ") {
                        Some(why) => EntryStatus::Failed(why.to_string()),
                        None => EntryStatus::Stopped(note.clone()),
                    },
                },
            })
            .collect();
        app
    }

    /// The session as it should be saved; a reply still streaming is saved
    /// with what has arrived so far.
    pub fn to_session(&self, model: Option<PathBuf>) -> Session {
        let mut session = Session::new(self.session_name.clone());
        session.model = model;
        session.system_prompt = self.system_prompt.clone();
        session.messages = self
            .entries
            .iter()
            .map(|e| StoredMessage {
                role: e.role,
                text: e.text.clone(),
                note: match &e.status {
                    EntryStatus::Done => None,
                    EntryStatus::Streaming => Some("stopped".into()),
                    EntryStatus::Stopped(why) => Some(why.clone()),
                    EntryStatus::Failed(why) => Some(format!("failed: {why}")),
                },
                branches: Vec::new(),
            })
            .collect();
        session
    }

    pub fn new(model_name: impl Into<String>) -> Self {
        let mut input = TextArea::default();
        input.set_placeholder_text("Type a message; Enter sends, Alt+Enter or Ctrl+J adds a line");
        Self {
            session_name: String::new(),
            system_prompt: None,
            model_name: model_name.into(),
            entries: Vec::new(),
            input,
            engine: EngineState::Loading,
            generating: None,
            n_ctx: 0,
            context_used: 0,
            last_turn: None,
            focus: Focus::Input,
            scroll_up: 0,
            quit_armed: false,
            notice: None,
            should_quit: false,
        }
    }

    pub fn is_busy(&self) -> bool {
        self.entries
            .last()
            .is_some_and(|e| e.status == EntryStatus::Streaming)
    }

    pub fn context_nearly_full(&self) -> bool {
        self.n_ctx > 0 && self.context_used + CONTEXT_WARNING_MARGIN >= self.n_ctx
    }

    /// The conversation as the model should see it: the system prompt and
    /// the finished turns.
    fn conversation(&self) -> Vec<ChatMessage> {
        let system = self
            .system_prompt
            .iter()
            .map(|s| ChatMessage::new(Role::System, s.clone()));
        let turns = self
            .entries
            .iter()
            .filter(|e| !matches!(e.status, EntryStatus::Failed(_) | EntryStatus::Streaming))
            .map(|e| ChatMessage::new(e.role, e.text.clone()));
        system.chain(turns).collect()
    }

    fn streaming_entry(&mut self) -> Option<&mut Entry> {
        self.entries
            .last_mut()
            .filter(|e| e.status == EntryStatus::Streaming)
    }
}

pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Paste(text) => {
            if app.focus == Focus::Input {
                app.input
                    .insert_str(text.replace("\r\n", "\n").replace('\r', "\n"));
            }
            Vec::new()
        }
        Msg::EngineLoaded { model_name, n_ctx } => {
            app.model_name = model_name;
            app.n_ctx = n_ctx;
            app.engine = EngineState::Ready;
            app.notice = None;
            Vec::new()
        }
        Msg::EngineLoadFailed(message) => {
            app.engine = EngineState::Failed(message);
            Vec::new()
        }
        Msg::GenerationStarted { id } => {
            app.generating = Some(id);
            app.engine = EngineState::Generating;
            Vec::new()
        }
        Msg::Token { id, text } => {
            if app.generating == Some(id) {
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
        } => {
            if app.generating == Some(id) {
                if let Some(entry) = app.streaming_entry() {
                    entry.status = match reason {
                        StopReason::Cancelled => EntryStatus::Stopped("stopped".into()),
                        StopReason::ContextFull => EntryStatus::Stopped("context full".into()),
                        _ => EntryStatus::Done,
                    };
                }
                app.generating = None;
                app.engine = EngineState::Ready;
                app.context_used = context_used;
                app.last_turn = Some(figures);
                return vec![Effect::SaveSession];
            }
            Vec::new()
        }
        Msg::GenerationFailed { id, message } => {
            if id.is_none() || app.generating == id {
                if let Some(entry) = app.streaming_entry() {
                    entry.status = EntryStatus::Failed(message.clone());
                }
                app.generating = None;
                if app.engine == EngineState::Generating {
                    app.engine = EngineState::Ready;
                }
                app.notice = Some(message);
                return vec![Effect::SaveSession];
            }
            Vec::new()
        }
        Msg::EngineStopped(message) => {
            // The conversation stays; only the reply in flight is marked.
            if let Some(entry) = app.streaming_entry() {
                entry.status = EntryStatus::Failed("the engine stopped".into());
            }
            app.generating = None;
            app.engine = EngineState::Crashed(message);
            vec![Effect::SaveSession]
        }
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    if ctrl && key.code == KeyCode::Char('c') {
        if app.quit_armed {
            app.should_quit = true;
            return vec![Effect::Quit];
        }
        app.quit_armed = true;
        app.notice = Some("press Ctrl+C again to quit".into());
        return Vec::new();
    }
    if app.quit_armed {
        app.quit_armed = false;
        app.notice = None;
    }
    match (key.code, ctrl, alt) {
        (KeyCode::Esc, _, _) => app
            .generating
            .map(|id| vec![Effect::Cancel { id }])
            .unwrap_or_default(),
        (KeyCode::Char('z'), true, _) => vec![Effect::Suspend],
        (KeyCode::Char('r'), true, _) => restart(app),
        (KeyCode::Char('g'), true, _) => regenerate(app),
        (KeyCode::Tab, false, false) => {
            app.focus = match app.focus {
                Focus::Input => Focus::Messages,
                Focus::Messages => Focus::Input,
            };
            Vec::new()
        }
        (KeyCode::PageUp, _, _) => scroll(app, 10),
        (KeyCode::PageDown, _, _) => scroll(app, -10),
        _ if app.focus == Focus::Messages => on_messages_key(app, key),
        (KeyCode::Enter, false, false) => send(app),
        (KeyCode::Enter, _, true) | (KeyCode::Char('j'), true, false) => {
            app.input.insert_newline();
            Vec::new()
        }
        _ => {
            app.input.input(key);
            Vec::new()
        }
    }
}

fn on_messages_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Char('q') => {
            app.should_quit = true;
            vec![Effect::Quit]
        }
        KeyCode::Up | KeyCode::Char('k') => scroll(app, 1),
        KeyCode::Down | KeyCode::Char('j') => scroll(app, -1),
        KeyCode::End | KeyCode::Char('G') => {
            app.scroll_up = 0;
            Vec::new()
        }
        KeyCode::Char('r') => restart(app),
        _ => Vec::new(),
    }
}

fn scroll(app: &mut App, lines: i32) -> Vec<Effect> {
    let up = i32::from(app.scroll_up) + lines;
    app.scroll_up = u16::try_from(up.max(0)).unwrap_or(u16::MAX);
    Vec::new()
}

fn restart(app: &mut App) -> Vec<Effect> {
    if matches!(app.engine, EngineState::Crashed(_) | EngineState::Failed(_)) {
        app.engine = EngineState::Loading;
        vec![Effect::RestartEngine]
    } else {
        Vec::new()
    }
}

/// Ctrl+G: replace the last reply with a new one for the same conversation.
fn regenerate(app: &mut App) -> Vec<Effect> {
    if app.engine != EngineState::Ready {
        app.notice = Some("regenerate needs a ready engine and no reply in progress".into());
        return Vec::new();
    }
    let Some(last) = app.entries.iter().rposition(|e| e.role == Role::Assistant) else {
        return Vec::new();
    };
    // Only the latest exchange can be regenerated; later user text would be lost.
    if app.entries[last + 1..].iter().any(|e| e.role == Role::User) {
        app.notice = Some("only the last reply can be regenerated".into());
        return Vec::new();
    }
    app.entries.truncate(last);
    start_reply(app)
}

/// Appends an empty reply that the next tokens stream into.
fn start_reply(app: &mut App) -> Vec<Effect> {
    let messages = app.conversation();
    app.entries.push(Entry {
        role: Role::Assistant,
        text: String::new(),
        status: EntryStatus::Streaming,
    });
    app.scroll_up = 0;
    app.notice = None;
    app.engine = EngineState::Generating;
    vec![Effect::SaveSession, Effect::Generate { messages }]
}

fn send(app: &mut App) -> Vec<Effect> {
    let text = app.input.lines().join("\n");
    if text.trim().is_empty() {
        return Vec::new();
    }
    match &app.engine {
        EngineState::Ready => {}
        EngineState::Generating => {
            app.notice = Some("wait for the reply, or press Esc to stop it".into());
            return Vec::new();
        }
        EngineState::Loading => {
            app.notice = Some("the model is still loading; your message is kept".into());
            return Vec::new();
        }
        EngineState::Failed(_) | EngineState::Crashed(_) => {
            app.notice = Some("the engine is not running; press Ctrl+R to restart it".into());
            return Vec::new();
        }
    }
    app.input = {
        let mut fresh = TextArea::default();
        fresh.set_placeholder_text(app.input.placeholder_text().to_string());
        fresh
    };
    app.entries.push(Entry {
        role: Role::User,
        text,
        status: EntryStatus::Done,
    });
    start_reply(app)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut app = App::new("model");
        update(
            &mut app,
            Msg::EngineLoaded {
                model_name: "SmolLM2".into(),
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
        let mut app = App::new("model");
        type_text(&mut app, "hello");
        assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
        assert_eq!(app.input.lines(), ["hello"]);
        assert!(app.notice.as_deref().unwrap().contains("still loading"));
        update(
            &mut app,
            Msg::EngineLoaded {
                model_name: "m".into(),
                n_ctx: 2048,
            },
        );
        let effects = update(&mut app, key(KeyCode::Enter));
        assert_eq!(
            effects,
            vec![
                Effect::SaveSession,
                Effect::Generate {
                    messages: vec![ChatMessage::new(Role::User, "hello")]
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
                id: 7,
                text: "Hel".into(),
            },
        );
        update(
            &mut app,
            Msg::Token {
                id: 99,
                text: "stale".into(),
            },
        );
        update(
            &mut app,
            Msg::Token {
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
                    ]
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
                    ]
                }
            ]
        );
    }

    #[test]
    fn the_session_round_trips_through_the_ui_state() {
        let mut app = ready_app();
        app.session_name = "s1".into();
        app.system_prompt = Some("Be brief.".into());
        type_text(&mut app, "Hi");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, Msg::GenerationStarted { id: 1 });
        update(
            &mut app,
            Msg::Token {
                id: 1,
                text: "Hel".into(),
            },
        );
        finish(&mut app, 1, StopReason::Cancelled, 9);
        let session = app.to_session(None);
        assert_eq!(session.name, "s1");
        assert_eq!(session.messages[1].note.as_deref(), Some("stopped"));
        let reopened = App::with_session(&session, "m");
        assert_eq!(reopened.entries, app.entries);
        assert_eq!(reopened.system_prompt.as_deref(), Some("Be brief."));
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
                    messages: vec![ChatMessage::new(Role::User, "Hi")]
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
