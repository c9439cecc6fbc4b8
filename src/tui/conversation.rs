//! The conversation shown in the chat: messages with their state, and the
//! branches an edit leaves behind. Pure data operations; `app` decides when.

use crate::engine::protocol::{ChatMessage, Role};
use crate::store::session::StoredMessage;
use crate::store::tokens::KeptToken;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryStatus {
    Done,
    Streaming,
    /// Cut short: stopped by the user (Esc), by the token limit or by the
    /// context filling up. Such a reply can be continued.
    Stopped(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub role: Role,
    pub text: String,
    pub status: EntryStatus,
    /// Other versions of the conversation from this entry on (see
    /// `StoredMessage::branches`).
    pub branches: Vec<Vec<Entry>>,
    /// A reply's tokens with their probabilities, when they were asked
    /// for: their texts make up `text`.
    pub tokens: Option<Vec<KeptToken>>,
}

impl Entry {
    pub fn new(role: Role, text: impl Into<String>, status: EntryStatus) -> Self {
        Self {
            role,
            text: text.into(),
            status,
            branches: Vec::new(),
            tokens: None,
        }
    }

    pub fn from_stored(message: &StoredMessage) -> Self {
        Self {
            role: message.role,
            text: message.text.clone(),
            status: match &message.note {
                None => EntryStatus::Done,
                Some(note) => match note.strip_prefix("failed: ") {
                    Some(why) => EntryStatus::Failed(why.to_string()),
                    None => EntryStatus::Stopped(note.clone()),
                },
            },
            branches: message
                .branches
                .iter()
                .map(|branch| branch.iter().map(Entry::from_stored).collect())
                .collect(),
            // Tokens that do not spell the text (an edited file) are not
            // trusted: the lens would point at the wrong places.
            tokens: message
                .tokens
                .clone()
                .filter(|tokens| spells(tokens, &message.text)),
        }
    }

    /// A reply still streaming is saved as interrupted with what has arrived.
    pub fn to_stored(&self) -> StoredMessage {
        StoredMessage {
            role: self.role,
            text: self.text.clone(),
            note: match &self.status {
                EntryStatus::Done => None,
                // Saved while streaming: whet may be gone before it ends.
                EntryStatus::Streaming => Some("interrupted".into()),
                EntryStatus::Stopped(why) => Some(why.clone()),
                EntryStatus::Failed(why) => Some(format!("failed: {why}")),
            },
            branches: self
                .branches
                .iter()
                .map(|branch| branch.iter().map(Entry::to_stored).collect())
                .collect(),
            tokens: self.tokens.clone(),
        }
    }

    /// Failed turns and the reply in flight are not part of what the model sees.
    pub fn is_context(&self) -> bool {
        !matches!(self.status, EntryStatus::Failed(_) | EntryStatus::Streaming)
    }
}

/// Whether the tokens' texts, one after another, are `text`.
pub fn spells(tokens: &[KeptToken], text: &str) -> bool {
    let mut rest = text;
    for token in tokens {
        match rest.strip_prefix(token.text.as_str()) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The messages the model sees: the system prompt, then every finished turn.
pub fn chat_messages(system_prompt: Option<&str>, entries: &[Entry]) -> Vec<ChatMessage> {
    let system = system_prompt
        .filter(|s| !s.trim().is_empty())
        .map(|s| ChatMessage::new(Role::System, s));
    let turns = entries
        .iter()
        .filter(|e| e.is_context())
        .map(|e| ChatMessage::new(e.role, e.text.clone()));
    system.into_iter().chain(turns).collect()
}

/// Replaces the entry at `index` with a new version and drops the turns after
/// it from view; the old version and its turns are kept as a branch.
pub fn replace_with_branch(entries: &mut Vec<Entry>, index: usize, text: String) {
    let Some(role) = entries.get(index).map(|e| e.role) else {
        return;
    };
    replace_with_version(entries, index, Entry::new(role, text, EntryStatus::Done));
}

/// Like `replace_with_branch`, with the new version given whole (a fork:
/// a reply streaming from a kept prefix of the old one).
pub fn replace_with_version(entries: &mut Vec<Entry>, index: usize, new: Entry) {
    if index >= entries.len() {
        return;
    }
    let mut old = entries.split_off(index);
    let mut branches = std::mem::take(&mut old[0].branches);
    branches.push(old);
    entries.push(Entry { branches, ..new });
}

/// Switches the conversation from `index` on to the next (or previous) kept
/// version. Returns false when the entry has no other version.
pub fn switch_branch(entries: &mut Vec<Entry>, index: usize, forward: bool) -> bool {
    if entries.get(index).is_none_or(|e| e.branches.is_empty()) {
        return false;
    }
    let mut current = entries.split_off(index);
    let mut branches = std::mem::take(&mut current[0].branches);
    // The versions form a ring: forward takes the oldest kept one and puts
    // the current one last; backward the reverse.
    let mut next = if forward {
        branches.push(current);
        branches.remove(0)
    } else {
        branches.insert(0, current);
        branches.pop().unwrap_or_default()
    };
    if next.is_empty() {
        return false;
    }
    next[0].branches = branches;
    entries.extend(next);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(role: Role, text: &str) -> Entry {
        Entry::new(role, text, EntryStatus::Done)
    }

    fn texts(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.text.as_str()).collect()
    }

    fn chat() -> Vec<Entry> {
        vec![
            done(Role::User, "q1"),
            done(Role::Assistant, "a1"),
            done(Role::User, "q2"),
            done(Role::Assistant, "a2"),
        ]
    }

    #[test]
    fn editing_keeps_the_old_turns_as_a_branch_and_switching_brings_them_back() {
        let mut entries = chat();
        replace_with_branch(&mut entries, 0, "q1 edited".into());
        assert_eq!(texts(&entries), ["q1 edited"]);
        assert_eq!(entries[0].branches.len(), 1);
        entries.push(done(Role::Assistant, "a1 new"));

        assert!(switch_branch(&mut entries, 0, true));
        assert_eq!(texts(&entries), ["q1", "a1", "q2", "a2"]);
        assert!(switch_branch(&mut entries, 0, true));
        assert_eq!(texts(&entries), ["q1 edited", "a1 new"]);
        assert!(switch_branch(&mut entries, 0, false));
        assert_eq!(texts(&entries), ["q1", "a1", "q2", "a2"]);
        // Nothing was lost on the way: the other version is still kept.
        assert_eq!(texts(&entries[0].branches[0]), ["q1 edited", "a1 new"]);
        assert!(!switch_branch(&mut entries, 2, true));
    }

    #[test]
    fn three_versions_rotate_in_order() {
        let mut entries = chat();
        replace_with_branch(&mut entries, 2, "v2".into());
        replace_with_branch(&mut entries, 2, "v3".into());
        assert_eq!(texts(&entries), ["q1", "a1", "v3"]);
        let mut seen = Vec::new();
        for _ in 0..3 {
            switch_branch(&mut entries, 2, true);
            seen.push(entries[2].text.clone());
        }
        assert_eq!(seen, ["q2", "v2", "v3"]);
    }

    #[test]
    fn branches_survive_a_save() {
        let mut entries = chat();
        replace_with_branch(&mut entries, 2, "other".into());
        let stored: Vec<_> = entries.iter().map(Entry::to_stored).collect();
        let loaded: Vec<_> = stored.iter().map(Entry::from_stored).collect();
        assert_eq!(loaded, entries);
    }

    #[test]
    fn the_model_sees_the_system_prompt_and_finished_turns_only() {
        let mut entries = chat();
        entries.push(Entry::new(
            Role::User,
            "bad",
            EntryStatus::Failed("x".into()),
        ));
        entries.push(Entry::new(Role::Assistant, "…", EntryStatus::Streaming));
        let messages = chat_messages(Some("Be brief."), &entries);
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[0], ChatMessage::new(Role::System, "Be brief."));
        assert!(chat_messages(Some("  "), &entries[..1]).len() == 1);
    }
}
