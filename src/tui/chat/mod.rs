//! The chat screen: a conversation with the loaded model, in branches, with
//! its own settings. Its state lives here; `update` holds its keys and its
//! part of the engine's answers, `view` draws it. The shell (`tui::app`)
//! routes messages to it as it does to the other screens.

pub mod update;
pub mod view;

use std::path::Path;

use ratatui_textarea::TextArea;

use super::conversation::{chat_messages, Entry, EntryStatus};
use super::lens::Lens;
use super::settings::ChatSettings;
use crate::engine::protocol::ChatMessage;
use crate::engine::sampling::SamplingOverrides;
use crate::engine::SamplingParams;
use crate::sampling_defaults::SamplingDefaults;
use crate::store::session::{ReplySettings, Session};
use crate::store::tokens::KeptAlternative;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Input,
    Messages,
}

pub struct Chat {
    pub session_name: String,
    pub settings: ChatSettings,
    /// What the sampler settings the session leaves alone follow: the
    /// user's defaults and the model's recommendation.
    pub sampling_defaults: SamplingDefaults,
    pub entries: Vec<Entry>,
    pub input: TextArea<'static>,
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
    /// The first delete press arms, the second deletes.
    pub delete_armed: bool,
    /// Esc was pressed and the reply is winding down.
    pub stopping: bool,
    /// A message sent while the reply was stopping: it goes out as soon as
    /// the reply has stopped.
    pub queued: Option<String>,
    /// Why the conversation on screen is not in the session file (the last
    /// save failed); None once a save succeeds.
    pub unsaved: Option<String>,
    /// Where a rescue copy goes when quitting with unsaved turns (said in
    /// the question before quitting).
    pub rescue_hint: String,
    /// The lens, open on the reply at this index.
    pub lens: Option<(usize, Lens)>,
    /// A fork chosen while a reply streamed: it starts once the reply has
    /// stopped.
    pub pending_fork: Option<PendingFork>,
}

/// A fork of reply `entry` at token `at` with `choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFork {
    pub entry: usize,
    pub at: usize,
    pub choice: KeptAlternative,
}

impl Chat {
    pub fn new(model_path: &Path) -> Self {
        let sampling_defaults =
            SamplingDefaults::for_model(model_path, SamplingOverrides::default());
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
            entries: Vec::new(),
            input: update::empty_input(),
            focus: Focus::Input,
            selected: None,
            follow_selection: false,
            scroll_up: 0,
            scroll_base_tail: None,
            editing: None,
            delete_armed: false,
            stopping: false,
            queued: None,
            unsaved: None,
            rescue_hint: String::new(),
            lens: None,
            pending_fork: None,
        }
    }

    /// Shows `session`: its conversation and settings replace the open ones.
    pub fn load_session(&mut self, session: &Session) {
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
        self.lens = None;
        self.pending_fork = None;
        // An edit belongs to the conversation it was started in.
        if let Some((_, draft)) = self.editing.take() {
            self.input = update::input_with(draft);
        }
        self.scroll_up = 0;
    }

    /// The session as it should be saved; a reply still streaming is saved
    /// with what has arrived so far.
    pub fn to_session(&self, model_path: &Path) -> Session {
        let mut session = Session::new(self.session_name.clone());
        session.model = Some(model_path.to_path_buf());
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
    pub fn set_model_path(&mut self, path: &Path) {
        self.sampling_defaults = SamplingDefaults::for_model(path, self.sampling_defaults.user);
        self.follow_sampling_defaults();
    }

    fn follow_sampling_defaults(&mut self) {
        let settings = &mut self.settings;
        settings.sampling = self
            .sampling_defaults
            .resolve(&settings.sampling_set, &settings.sampling);
    }

    /// Whether a reply is streaming into the conversation.
    pub fn is_busy(&self) -> bool {
        self.entries
            .last()
            .is_some_and(|e| e.status == EntryStatus::Streaming)
    }

    /// The conversation as the model should see it.
    pub fn conversation(&self) -> Vec<ChatMessage> {
        chat_messages(self.settings.system_prompt.as_deref(), &self.entries)
    }

    pub(crate) fn streaming_entry(&mut self) -> Option<&mut Entry> {
        self.entries
            .last_mut()
            .filter(|e| e.status == EntryStatus::Streaming)
    }

    /// The message actions apply to: the selected one, else the last.
    pub(crate) fn target(&self) -> Option<usize> {
        match self.selected {
            Some(i) if i < self.entries.len() => Some(i),
            _ => self.entries.len().checked_sub(1),
        }
    }
}
