//! The chat's part of the app's pure `update`: its keys, its mouse, and
//! what the engine's answers do to the conversation.

use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;
use ratatui_textarea::TextArea;

use super::{Focus, PendingFork};
use crate::engine::probs::TokenProbs;
use crate::engine::protocol::{prompt_too_long, ChatMessage, Role, StopReason};
use crate::store::session::Session;
use crate::store::tokens::{keep_piece, KeptAlternative};
use crate::tui::app::{engine_ready, restart, App, Effect, EngineState, Overlay, Screen};
use crate::tui::conversation::chat_messages;
use crate::tui::conversation::{self, Entry, EntryStatus};
use crate::tui::keymap::{Action, Context};
use crate::tui::lens::{self, Lens, LensKey};
use crate::tui::picker::{Picker, PickerKind};
use crate::tui::sanitize::sanitize;
use crate::tui::settings::SettingsForm;

const INPUT_PLACEHOLDER: &str = "Type a message; Enter sends, Alt+Enter or Ctrl+J adds a line";
/// Lines the mouse wheel scrolls the conversation.
pub const WHEEL_LINES: i32 = 3;

/// Pasted text goes into the input, which takes the focus.
pub fn on_paste(app: &mut App, text: String) {
    app.chat.focus = Focus::Input;
    app.chat.input.insert_str(text);
}

/// A token of the chat's reply: its text, and its probabilities when the
/// reply keeps them.
pub fn on_token(app: &mut App, text: &str, token: i32, probs: Option<&TokenProbs>) {
    let Some(entry) = app.chat.streaming_entry() else {
        return;
    };
    entry.text.push_str(text);
    keep_piece(&mut entry.tokens, text, token, probs);
    let index = app.chat.entries.len() - 1;
    settle_lens(app, index);
}

/// Keeps the lens on a token of its reply (which grew or changed).
fn settle_lens(app: &mut App, index: usize) {
    if let Some((at, lens)) = &mut app.chat.lens {
        if *at == index {
            let tokens = app
                .chat
                .entries
                .get(index)
                .and_then(|e| e.tokens.as_deref());
            lens.settle(tokens.unwrap_or_default());
        }
    }
}

/// The chat's reply ended: it is marked with why, and saved.
pub fn on_done(app: &mut App, reason: StopReason) -> Vec<Effect> {
    if let Some(entry) = app.chat.streaming_entry() {
        entry.status = match reason {
            StopReason::Cancelled => EntryStatus::Stopped("stopped".into()),
            StopReason::ContextFull => EntryStatus::Stopped("context full".into()),
            StopReason::MaxTokens => EntryStatus::Stopped("max tokens".into()),
            _ => EntryStatus::Done,
        };
    }
    let mut effects = vec![Effect::SaveSession];
    effects.extend(reply_ended(app));
    effects
}

/// The chat's reply failed: the reply says so, and a conversation too long
/// for the context gets a way out.
pub fn on_failed(app: &mut App, message: String) -> Vec<Effect> {
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
    if let Some(entry) = app.chat.streaming_entry() {
        entry.status = EntryStatus::Failed(status);
    }
    app.error(message);
    let mut effects = vec![Effect::SaveSession];
    effects.extend(reply_ended(app));
    effects
}

/// The worker died: the conversation stays; only the reply in flight is
/// marked, and a message waiting for a stop goes back into the input.
pub fn on_engine_stopped(app: &mut App) {
    if let Some(entry) = app.chat.streaming_entry() {
        entry.status = EntryStatus::Failed("the engine stopped".into());
    }
    app.chat.stopping = false;
    if let Some(text) = app.chat.queued.take() {
        restore_queued(app, &text);
    }
}

/// A chat made from a template's messages is open: its reply follows.
pub fn on_started_from_template(app: &mut App, session: &Session) -> Vec<Effect> {
    app.load_session(session);
    app.screen = Screen::Chat;
    app.chat.focus = Focus::Input;
    let answered = session
        .messages
        .last()
        .is_some_and(|m| m.role == crate::engine::protocol::Role::Assistant);
    if answered {
        // A beam the workbench returned is the reply already.
        app.info(format!(
            "chat {} started from the template with the chosen beam as the reply",
            session.name
        ));
        return Vec::new();
    }
    app.info(format!(
        "chat {} started from the template; the reply follows",
        session.name
    ));
    start_reply_checked(app)
}

/// The wheel scrolls the conversation; a click focuses what it hits.
pub fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Effect> {
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

pub(crate) fn empty_input() -> TextArea<'static> {
    let mut input = TextArea::default();
    input.set_placeholder_text(INPUT_PLACEHOLDER);
    input
}

/// The input holding `lines`, with the cursor at the end, ready to go on.
pub(crate) fn input_with(lines: Vec<String>) -> TextArea<'static> {
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
    if app.chat.editing.is_some() {
        app.info(format!(
            "finish the edit ({} sends) or cancel it ({}) first",
            app.keymap.key_hint(Action::Send),
            app.keymap.key_hint(Action::Stop)
        ));
        return true;
    }
    false
}

pub fn on_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    if action != Some(Action::DeleteMessage) {
        app.chat.delete_armed = false;
    }
    if app.chat.lens.is_some() && app.chat.focus == Focus::Messages {
        if let Some(effects) = lens_key(app, action, key) {
            return effects;
        }
    }
    let Some(action) = action else {
        if app.chat.focus == Focus::Input {
            app.chat.input.input(key);
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
                match app.chat.focus {
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
                &app.chat.settings,
                &app.chat.sampling_defaults,
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
            app.chat.input.insert_newline();
            Vec::new()
        }
        Action::QuitNow => {
            app.should_quit = true;
            vec![Effect::Quit]
        }
        Action::SelectPrev => select(app, -1),
        Action::SelectNext => select(app, 1),
        Action::SelectLast => {
            app.chat.selected = app.chat.entries.len().checked_sub(1);
            app.chat.follow_selection = false;
            app.chat.scroll_up = 0;
            Vec::new()
        }
        Action::EditMessage => edit(app),
        Action::DeleteMessage => delete(app),
        Action::ContinueReply => continue_reply(app),
        Action::CopyMessage => copy_message(app),
        Action::CopyCode => copy_code(app),
        Action::BranchNext => switch_branch(app, true),
        Action::BranchPrev => switch_branch(app, false),
        Action::Lens => open_lens(app),
        // Keys of other contexts never come back for this one.
        _ => Vec::new(),
    }
}

fn set_focus(app: &mut App, focus: Focus) {
    app.chat.focus = focus;
    if focus == Focus::Input {
        app.chat.lens = None;
    }
    if focus == Focus::Messages && app.chat.selected.is_none() {
        app.chat.selected = app.chat.entries.len().checked_sub(1);
        app.chat.follow_selection = true;
    }
}

pub(crate) fn stop(app: &mut App) -> Vec<Effect> {
    if let Some(text) = app.chat.queued.take() {
        // Esc again takes back a message waiting for the stop.
        restore_queued(app, &text);
        app.info("the waiting message is back in the input");
        return Vec::new();
    }
    if let Some(id) = app.generating {
        app.chat.stopping = true;
        return vec![Effect::Cancel { id }];
    }
    if let Some((_, draft)) = app.chat.editing.take() {
        app.chat.input = input_with(draft);
        app.info("edit cancelled; the message is unchanged");
    }
    Vec::new()
}

fn scroll(app: &mut App, lines: i32) -> Vec<Effect> {
    // From what is on screen, which may be following the selection.
    let drawn = app.drawn.get();
    let from = if app.chat.follow_selection {
        drawn.scroll_up
    } else {
        app.chat.scroll_up
    };
    if app.chat.follow_selection || app.chat.scroll_up == 0 {
        app.chat.scroll_base_tail = Some(drawn.last_entry_height);
    }
    app.chat.follow_selection = false;
    let up = i32::from(from) + lines;
    app.chat.scroll_up = u16::try_from(up.max(0)).unwrap_or(u16::MAX);
    Vec::new()
}

fn select(app: &mut App, step: isize) -> Vec<Effect> {
    let Some(last) = app.chat.entries.len().checked_sub(1) else {
        return Vec::new();
    };
    let current = app.chat.selected.unwrap_or(last);
    app.chat.selected = Some(current.saturating_add_signed(step).min(last));
    app.chat.follow_selection = true;
    Vec::new()
}

/// Replace the last reply with a new one for the same conversation.
fn regenerate(app: &mut App) -> Vec<Effect> {
    if blocked_by_edit(app) || !engine_ready(app) {
        return Vec::new();
    }
    let Some(last) = app
        .chat
        .entries
        .iter()
        .rposition(|e| e.role == Role::Assistant)
    else {
        app.info("there is no reply to regenerate");
        return Vec::new();
    };
    // Only the latest exchange can be regenerated; later user text would be lost.
    if app.chat.entries[last + 1..]
        .iter()
        .any(|e| e.role == Role::User)
    {
        app.info("only the last reply can be regenerated");
        return Vec::new();
    }
    app.chat.entries.truncate(last);
    start_reply(app)
}

/// Appends an empty reply that the next tokens stream into.
fn start_reply(app: &mut App) -> Vec<Effect> {
    let messages = app.conversation();
    app.chat.entries.push(Entry {
        tokens: app.chat.settings.reply.probabilities.then(Vec::new),
        ..Entry::new(Role::Assistant, "", EntryStatus::Streaming)
    });
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
    app.chat.scroll_up = 0;
    app.chat.follow_selection = false;
    app.chat.selected = None;
    app.notice = None;
    app.engine = EngineState::Generating;
}

fn send(app: &mut App) -> Vec<Effect> {
    let lines = app.chat.input.lines().to_vec();
    let text = lines.join("\n");
    if text.trim().is_empty() {
        return Vec::new();
    }
    let editing = app.chat.editing.as_ref().map(|(index, _)| *index);
    // An edited reply needs no model; everything else does.
    let edits_reply = editing.is_some_and(|i| {
        app.chat
            .entries
            .get(i)
            .is_some_and(|e| e.role == Role::Assistant)
    });
    if edits_reply && app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    if app.chat.stopping && editing.is_none() {
        // The reply is winding down after Esc: the message waits for it
        // rather than staying in the input to be glued to the next one.
        if app.chat.queued.is_some() {
            app.info("a message is already waiting for the reply to stop");
        } else {
            app.chat.queued = Some(text);
            app.chat.input = empty_input();
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
    app.chat.input = input_with(
        app.chat
            .editing
            .take()
            .map(|(_, draft)| draft)
            .unwrap_or_default(),
    );
    match editing {
        Some(index) if index < app.chat.entries.len() => {
            conversation::replace_with_branch(&mut app.chat.entries, index, text);
            if edits_reply {
                app.info("reply edited; the old version is kept ([ and ] switch)");
                return vec![Effect::SaveSession];
            }
        }
        _ => app
            .chat
            .entries
            .push(Entry::new(Role::User, text, EntryStatus::Done)),
    }
    start_reply(app)
}

/// Puts a message that waited for a stop back into the input, before
/// anything typed since, which is kept.
fn restore_queued(app: &mut App, text: &str) {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let typed = app.chat.input.lines();
    if typed.iter().any(|l| !l.is_empty()) {
        lines.extend(typed.iter().cloned());
    }
    app.chat.input = input_with(lines);
}

/// A chat reply has ended (done, stopped or failed): a fork or a message
/// that waited for it goes out now.
fn reply_ended(app: &mut App) -> Vec<Effect> {
    app.chat.stopping = false;
    if let Some(fork) = app.chat.pending_fork.take() {
        if app.engine == EngineState::Ready {
            return start_fork(app, fork);
        }
        app.info("the fork was not started: the engine is not ready");
    }
    let Some(text) = app.chat.queued.take() else {
        return Vec::new();
    };
    if app.engine != EngineState::Ready || app.chat.editing.is_some() {
        restore_queued(app, &text);
        return Vec::new();
    }
    app.chat
        .entries
        .push(Entry::new(Role::User, text, EntryStatus::Done));
    start_reply(app)
}

/// Puts the selected message into the input; sending it replaces the
/// message and everything after it, which is kept as a branch.
fn edit(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.chat.target() else {
        return Vec::new();
    };
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    // A second edit keeps the draft the first one put aside.
    let draft = match app.chat.editing.take() {
        Some((_, draft)) => draft,
        None => app.chat.input.lines().to_vec(),
    };
    let entry = &app.chat.entries[index];
    let lines: Vec<String> = entry.text.split('\n').map(str::to_string).collect();
    let what = match entry.role {
        Role::Assistant => "reply; Enter saves it",
        _ => "message; Enter resends from here",
    };
    app.chat.input = input_with(lines);
    app.chat.editing = Some((index, draft));
    app.chat.focus = Focus::Input;
    app.info(format!(
        "editing the {what}; the old version is kept; Esc cancels"
    ));
    Vec::new()
}

fn delete(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.chat.target() else {
        return Vec::new();
    };
    if blocked_by_edit(app) {
        return Vec::new();
    }
    if app.generating.is_some() {
        app.info("wait for the reply, or press Esc to stop it");
        return Vec::new();
    }
    if !app.chat.entries[index].branches.is_empty() {
        app.info("this message has other versions; switch with [ and ] (only messages without versions can be deleted)");
        return Vec::new();
    }
    if !app.chat.delete_armed {
        app.chat.delete_armed = true;
        app.info(format!(
            "press {} again to delete this message",
            app.keymap.key_hint(Action::DeleteMessage)
        ));
        return Vec::new();
    }
    app.chat.delete_armed = false;
    app.chat.entries.remove(index);
    app.chat.selected = match app.chat.entries.len() {
        0 => None,
        n => Some(index.min(n - 1)),
    };
    app.info("message deleted");
    vec![Effect::SaveSession]
}

fn continue_reply(app: &mut App) -> Vec<Effect> {
    let Some(last) = app.chat.entries.len().checked_sub(1) else {
        return Vec::new();
    };
    if blocked_by_edit(app) {
        return Vec::new();
    }
    let entry = &app.chat.entries[last];
    let stopped = matches!(entry.status, EntryStatus::Stopped(_)) && entry.role == Role::Assistant;
    if !stopped || app.chat.target() != Some(last) {
        app.info("only a stopped last reply can be continued");
        return Vec::new();
    }
    if entry.text.trim().is_empty() {
        app.chat.entries.pop();
        return start_reply_checked(app);
    }
    if !engine_ready(app) {
        return Vec::new();
    }
    app.chat.entries[last].status = EntryStatus::Done;
    let messages = app.conversation();
    app.chat.entries[last].status = EntryStatus::Streaming;
    if !app.chat.settings.reply.probabilities {
        // Only the first part would have them: the lens would mislead.
        app.chat.entries[last].tokens = None;
    }
    follow_stream(app);
    vec![
        Effect::SaveSession,
        Effect::Generate {
            messages,
            continue_reply: true,
        },
    ]
}

pub(crate) fn start_reply_checked(app: &mut App) -> Vec<Effect> {
    if engine_ready(app) {
        start_reply(app)
    } else {
        Vec::new()
    }
}

fn copy_message(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.chat.target() else {
        return Vec::new();
    };
    let text = app.chat.entries[index].text.clone();
    app.info(format!(
        "copied the message ({} characters)",
        text.chars().count()
    ));
    vec![Effect::Copy(text)]
}

fn copy_code(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.chat.target() else {
        return Vec::new();
    };
    let rendered = crate::tui::markdown::render(&app.chat.entries[index].text, &Default::default());
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
    let from = app.chat.target().unwrap_or(0);
    let Some(index) = (0..=from).rev().find(|&i| {
        app.chat
            .entries
            .get(i)
            .is_some_and(|e| !e.branches.is_empty())
    }) else {
        app.info("no other versions here; editing a message keeps its old version");
        return Vec::new();
    };
    conversation::switch_branch(&mut app.chat.entries, index, forward);
    app.chat.selected = Some(index);
    app.chat.follow_selection = true;
    app.context_used = 0;
    // The lens stays on its reply's place if a reply is there.
    if let Some((at, _)) = app.chat.lens {
        let reply = app
            .chat
            .entries
            .get(at)
            .is_some_and(|e| e.role == Role::Assistant);
        if reply {
            app.chat.selected = Some(at);
            settle_lens(app, at);
        } else {
            app.chat.lens = None;
        }
    }
    vec![Effect::SaveSession]
}

/// Opens the lens on the selected reply (or the last one).
fn open_lens(app: &mut App) -> Vec<Effect> {
    let Some(index) = app.chat.target() else {
        app.info("there is no reply to look at yet");
        return Vec::new();
    };
    let entry = &app.chat.entries[index];
    if entry.role != Role::Assistant {
        app.info("the lens shows a reply's tokens: select a reply");
        return Vec::new();
    }
    let streaming = entry.status == EntryStatus::Streaming;
    let lens = Lens::open(entry.tokens.as_deref().unwrap_or_default(), streaming);
    if entry.tokens.is_none() {
        app.info(lens::NO_PROBS);
    }
    app.chat.lens = Some((index, lens));
    app.chat.selected = Some(index);
    Vec::new()
}

/// A key while the lens is open; None hands it on to the chat (the lens
/// closed first unless the key keeps it).
fn lens_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Option<Vec<Effect>> {
    let (index, mut lens) = app.chat.lens.clone()?;
    match action {
        Some(Action::Lens) => {
            app.chat.lens = None;
            return Some(Vec::new());
        }
        Some(Action::Stop) if app.generating.is_none() && app.chat.queued.is_none() => {
            app.chat.lens = None;
            return Some(Vec::new());
        }
        // These keep the lens: stopping, other versions, copying, help.
        Some(
            Action::Stop
            | Action::BranchNext
            | Action::BranchPrev
            | Action::CopyMessage
            | Action::Help
            | Action::PageUp
            | Action::PageDown,
        ) => return None,
        _ => {}
    }
    let Some(entry) = app.chat.entries.get(index) else {
        app.chat.lens = None;
        return None;
    };
    let tokens = entry.tokens.clone().unwrap_or_default();
    match lens.on_key(key, &tokens) {
        LensKey::Unhandled => {
            app.chat.lens = None;
            None
        }
        LensKey::Moved => {
            app.chat.lens = Some((index, lens));
            Some(Vec::new())
        }
        LensKey::SameToken => {
            app.info("that is the token the reply has: choose another with ↑/↓");
            Some(Vec::new())
        }
        LensKey::Fork { at, choice } => {
            app.chat.lens = Some((index, lens));
            Some(fork(
                app,
                PendingFork {
                    entry: index,
                    at,
                    choice,
                },
            ))
        }
    }
}

/// Forks reply `fork.entry` at its token `fork.at`: the reply cut before
/// it, the chosen token in its place, and the model going on from there
/// into a new version of the reply. A reply streaming is stopped first.
fn fork(app: &mut App, fork: PendingFork) -> Vec<Effect> {
    if blocked_by_edit(app) {
        return Vec::new();
    }
    if let Some(id) = app.generating {
        if app.chat.is_busy() {
            app.chat.pending_fork = Some(fork);
            app.chat.stopping = true;
            app.info("stopping the reply; the fork follows");
            return vec![Effect::Cancel { id }];
        }
    }
    if !engine_ready(app) {
        return Vec::new();
    }
    start_fork(app, fork)
}

fn start_fork(app: &mut App, fork: PendingFork) -> Vec<Effect> {
    let Some(entry) = app.chat.entries.get(fork.entry) else {
        return Vec::new();
    };
    let Some(tokens) = entry.tokens.as_deref() else {
        return Vec::new();
    };
    if fork.at >= tokens.len() {
        return Vec::new();
    }
    let choice = KeptAlternative {
        text: sanitize(&fork.choice.text),
        ..fork.choice
    };
    let tokens = lens::forked_tokens(tokens, fork.at, &choice);
    let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
    let open_tokens: Vec<i32> = tokens.iter().map(|t| t.id).collect();
    let mut messages = chat_messages(
        app.chat.settings.system_prompt.as_deref(),
        &app.chat.entries[..fork.entry],
    );
    messages.push(ChatMessage::new(Role::Assistant, text.clone()));
    let version = Entry {
        tokens: Some(tokens),
        ..Entry::new(Role::Assistant, text, EntryStatus::Streaming)
    };
    conversation::replace_with_version(&mut app.chat.entries, fork.entry, version);
    follow_stream(app);
    let mut lens = Lens::open(&[], true);
    lens.cursor = fork.at;
    app.chat.lens = Some((fork.entry, lens));
    app.chat.selected = Some(fork.entry);
    settle_lens(app, fork.entry);
    app.info(format!(
        "forked at token {}; the old version is kept ({}/{} switch)",
        fork.at + 1,
        app.keymap.key_hint(Action::BranchPrev),
        app.keymap.key_hint(Action::BranchNext)
    ));
    vec![
        Effect::SaveSession,
        Effect::ContinueFrom {
            messages,
            open_tokens,
        },
    ]
}

pub fn on_settings_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
    let Some(Overlay::Settings(form)) = &mut app.overlay else {
        return Vec::new();
    };
    let multi_line = form.focused_field() == crate::tui::settings::Field::SystemPrompt;
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
    let next = match form.parse(&app.chat.settings, &app.chat.sampling_defaults) {
        Ok(next) => next,
        Err(error) => {
            form.error = Some(error);
            return Vec::new();
        }
    };
    let reload = next.reply.n_ctx != app.chat.settings.reply.n_ctx;
    app.chat.settings = next;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::protocol::ChatMessage;
    use crate::tui::app::{update, Msg, TurnFigures, CONTEXT_WARNING_MARGIN};
    use crossterm::event::KeyModifiers;
    use std::path::PathBuf;

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
        assert_eq!(app.chat.input.lines(), ["hello"]);
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
        assert!(app.chat.input.is_empty());
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
                token: -1,
                probs: None,
                id: 7,
                text: "Hel".into(),
            },
        );
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id: 99,
                text: "stale".into(),
            },
        );
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id: 7,
                text: "lo\x1b[2J".into(),
            },
        );
        let reply = app.chat.entries.last().unwrap();
        assert_eq!(reply.text, "Hello␛[2J");
        assert_eq!(reply.status, EntryStatus::Streaming);
        finish(&mut app, 7, StopReason::Eos, 40);
        assert_eq!(app.chat.entries.last().unwrap().status, EntryStatus::Done);
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
                token: -1,
                probs: None,
                id: 3,
                text: "partial".into(),
            },
        );
        assert_eq!(
            update(&mut app, key(KeyCode::Esc)),
            vec![Effect::Cancel { id: 3 }]
        );
        finish(&mut app, 3, StopReason::Cancelled, 10);
        let reply = app.chat.entries.last().unwrap();
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
        assert_eq!(app.chat.input.lines(), ["a", "b", "line1", "line2 日本 👩‍👩‍👧"]);
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
        assert_eq!(app.chat.input.lines(), ["q"]);
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
                token: -1,
                probs: None,
                id: 1,
                text: "par".into(),
            },
        );
        update(
            &mut app,
            Msg::EngineStopped("the engine stopped: killed by signal 9".into()),
        );
        assert_eq!(app.chat.entries.len(), 2);
        assert_eq!(app.chat.entries[0].text, "Hi");
        assert_eq!(app.chat.entries[1].text, "par");
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
        app.chat.session_name = "s1".into();
        app.chat.settings.system_prompt = Some("Be brief.".into());
        type_text(&mut app, "Hi");
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, Msg::GenerationStarted { id: 1 });
        update(
            &mut app,
            Msg::Token {
                context_used: 0,
                token: -1,
                probs: None,
                id: 1,
                text: "Hel".into(),
            },
        );
        finish(&mut app, 1, StopReason::Cancelled, 9);
        let session = app.to_session();
        assert_eq!(session.name, "s1");
        assert_eq!(session.messages[1].note.as_deref(), Some("stopped"));
        let reopened = App::with_session(&session, PathBuf::from("/m/model.gguf"));
        assert_eq!(reopened.chat.entries, app.chat.entries);
        assert_eq!(
            reopened.chat.settings.system_prompt.as_deref(),
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
                token: -1,
                probs: None,
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
        assert_eq!(app.chat.entries.len(), 2);
        assert_eq!(app.chat.entries[1].text, "");
        assert_eq!(app.chat.entries[1].status, EntryStatus::Streaming);
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
