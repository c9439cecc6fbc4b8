//! A duel: one conversation answered by two models, column A and column B,
//! turn by turn. Each column keeps its own history from the first compared
//! turn on (model A sees A's earlier replies, B sees B's), replies run one
//! after the other or at once, and each turn can be voted on.
//!
//! This is the pure state of a comparison: it holds no engine and no
//! screen. Every change returns the jobs its driver must run (start a
//! generation for a column, cancel one), and the driver reports back what
//! the engines did — so the whole flow is tested with a scripted engine.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::vote::{Side, Verdict, Vote, VOTE_VERSION};
use crate::engine::protocol::{ChatMessage, GenerationStats, Role, StopReason};
use crate::engine::remote::RemoteModel;
use crate::engine::SamplingParams;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Column {
    A,
    B,
}

impl Column {
    pub const BOTH: [Column; 2] = [Column::A, Column::B];

    pub fn index(self) -> usize {
        match self {
            Column::A => 0,
            Column::B => 1,
        }
    }

    pub fn other(self) -> Column {
        match self {
            Column::A => Column::B,
            Column::B => Column::A,
        }
    }

    pub fn letter(self) -> &'static str {
        match self {
            Column::A => "A",
            Column::B => "B",
        }
    }
}

/// Where a contender's model is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRef {
    Local {
        path: PathBuf,
        /// The file's SHA-256, when it has been computed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    Remote(RemoteModel),
}

impl ModelRef {
    pub fn is_remote(&self) -> bool {
        matches!(self, ModelRef::Remote(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contender {
    /// The model's name as whet shows it.
    pub name: String,
    pub model: ModelRef,
}

/// Whether the two replies of a turn are generated together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// A streams, then B: two local models at once on a small machine
    /// halve each other's speed, so each reply's figures would mislead.
    OneAfterTheOther,
    AtOnce,
}

impl Pace {
    /// The pace for these two models: at once when either is remote (the
    /// server's work does not slow the local one), else as the user chose.
    pub fn for_models(a: &ModelRef, b: &ModelRef, at_once: bool) -> Pace {
        if at_once || a.is_remote() || b.is_remote() {
            Pace::AtOnce
        } else {
            Pace::OneAfterTheOther
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyState {
    /// Waiting for the other column's reply to finish.
    Queued,
    Streaming,
    Done(StopReason),
    /// The engine failed (a crashed worker, a lost connection); the text
    /// that arrived is kept.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    pub state: ReplyState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<GenerationStats>,
}

impl Reply {
    fn queued() -> Reply {
        Reply {
            text: String::new(),
            state: ReplyState::Queued,
            stats: None,
        }
    }

    pub fn in_progress(&self) -> bool {
        matches!(self.state, ReplyState::Queued | ReplyState::Streaming)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnVote {
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Cast before the names were shown.
    pub blind: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub user: String,
    /// Column A's reply, then column B's.
    pub replies: [Reply; 2],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote: Option<TurnVote>,
}

/// What the driver does for the duel.
#[derive(Debug, Clone, PartialEq)]
pub enum DuelJob {
    /// Generate `column`'s reply to the last turn from its own history.
    Generate {
        column: Column,
        messages: Vec<ChatMessage>,
    },
    Cancel {
        column: Column,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Duel {
    /// Column A's model, then column B's.
    pub contenders: [Contender; 2],
    /// The names are hidden until the first vote.
    pub blind: bool,
    pub revealed: bool,
    pub pace: Pace,
    /// The conversation before the first compared turn, shared by both.
    pub prefix: Vec<ChatMessage>,
    pub turns: Vec<Turn>,
}

impl Duel {
    /// A duel of the chat's model against `other` from the conversation so
    /// far. Blind, the chat's model lands in column A or B as `coin` says
    /// (the caller flips it), so the column gives nothing away.
    pub fn new(
        prefix: Vec<ChatMessage>,
        chat_model: Contender,
        other: Contender,
        blind: bool,
        at_once: bool,
        coin: bool,
    ) -> Duel {
        let pace = Pace::for_models(&chat_model.model, &other.model, at_once);
        let contenders = if blind && coin {
            [other, chat_model]
        } else {
            [chat_model, other]
        };
        Duel {
            contenders,
            blind,
            revealed: !blind,
            pace,
            prefix,
            turns: Vec::new(),
        }
    }

    pub fn contender(&self, column: Column) -> &Contender {
        &self.contenders[column.index()]
    }

    /// The column's heading: its model's name, or only its letter while
    /// the duel is blind.
    pub fn shown_name(&self, column: Column) -> String {
        if self.revealed {
            format!("{} · {}", column.letter(), self.contender(column).name)
        } else {
            column.letter().to_string()
        }
    }

    pub fn busy(&self) -> bool {
        self.turns
            .last()
            .is_some_and(|t| t.replies.iter().any(Reply::in_progress))
    }

    /// `column`'s conversation: the shared start, then every turn with the
    /// column's own reply (what has arrived of it).
    pub fn history(&self, column: Column) -> Vec<ChatMessage> {
        let mut messages = self.prefix.clone();
        for turn in &self.turns {
            messages.push(ChatMessage::new(Role::User, turn.user.clone()));
            let reply = &turn.replies[column.index()];
            if !reply.text.is_empty() {
                messages.push(ChatMessage::new(Role::Assistant, reply.text.clone()));
            }
        }
        messages
    }

    /// The history `column` answers the last turn from: its history
    /// without its own (partial or earlier) reply to that turn.
    fn prompt_for(&self, column: Column) -> Vec<ChatMessage> {
        let mut messages = self.history(column);
        if self
            .turns
            .last()
            .is_some_and(|t| !t.replies[column.index()].text.is_empty())
        {
            messages.pop();
        }
        messages
    }

    /// A new turn to both columns.
    pub fn send(&mut self, user: &str) -> Result<Vec<DuelJob>, String> {
        if self.busy() {
            return Err("wait for both replies, or press Esc to stop them".into());
        }
        if user.trim().is_empty() {
            return Err("type a message first".into());
        }
        self.turns.push(Turn {
            user: user.to_string(),
            replies: [Reply::queued(), Reply::queued()],
            vote: None,
        });
        Ok(self.start_queued())
    }

    /// Starts what may start now: every queued reply at once, or the
    /// first queued one when nothing else streams.
    fn start_queued(&mut self) -> Vec<DuelJob> {
        let Some(turn) = self.turns.last() else {
            return Vec::new();
        };
        let streaming = turn
            .replies
            .iter()
            .any(|r| r.state == ReplyState::Streaming);
        let queued: Vec<Column> = Column::BOTH
            .into_iter()
            .filter(|c| turn.replies[c.index()].state == ReplyState::Queued)
            .collect();
        let starting: Vec<Column> = match self.pace {
            Pace::AtOnce => queued,
            Pace::OneAfterTheOther if streaming => Vec::new(),
            Pace::OneAfterTheOther => queued.into_iter().take(1).collect(),
        };
        starting
            .into_iter()
            .map(|column| {
                let messages = self.prompt_for(column);
                self.reply_mut(column).state = ReplyState::Streaming;
                DuelJob::Generate { column, messages }
            })
            .collect()
    }

    fn reply_mut(&mut self, column: Column) -> &mut Reply {
        let turn = self.turns.last_mut().expect("a turn is in progress");
        &mut turn.replies[column.index()]
    }

    fn streaming(&self, column: Column) -> bool {
        self.turns
            .last()
            .is_some_and(|t| t.replies[column.index()].state == ReplyState::Streaming)
    }

    /// Text for `column`'s reply (ignored unless it is streaming: a late
    /// token after a stop).
    pub fn token(&mut self, column: Column, text: &str) {
        if self.streaming(column) {
            self.reply_mut(column).text.push_str(text);
        }
    }

    /// `column`'s reply ended; the other may start.
    pub fn finished(
        &mut self,
        column: Column,
        reason: StopReason,
        stats: Option<GenerationStats>,
    ) -> Vec<DuelJob> {
        if !self.streaming(column) {
            return Vec::new();
        }
        let reply = self.reply_mut(column);
        reply.state = ReplyState::Done(reason);
        reply.stats = stats;
        self.start_queued()
    }

    /// `column`'s engine failed mid-reply: the text so far is kept, marked,
    /// and the other column goes on.
    pub fn failed(&mut self, column: Column, message: &str) -> Vec<DuelJob> {
        if !self.streaming(column) {
            return Vec::new();
        }
        self.reply_mut(column).state = ReplyState::Failed(message.to_string());
        self.start_queued()
    }

    /// Esc: both replies stop; a queued one ends before it started.
    pub fn stop(&mut self) -> Vec<DuelJob> {
        let Some(turn) = self.turns.last_mut() else {
            return Vec::new();
        };
        let mut jobs = Vec::new();
        for column in Column::BOTH {
            let reply = &mut turn.replies[column.index()];
            match reply.state {
                ReplyState::Streaming => jobs.push(DuelJob::Cancel { column }),
                ReplyState::Queued => reply.state = ReplyState::Done(StopReason::Cancelled),
                _ => {}
            }
        }
        jobs
    }

    /// A new reply for one column of the last turn; the other stays. A
    /// vote on the turn is dropped from the duel (the votes file keeps it:
    /// it was cast on the replies then shown).
    pub fn regenerate(&mut self, column: Column) -> Result<Vec<DuelJob>, String> {
        if self.busy() {
            return Err("wait for both replies, or press Esc to stop them".into());
        }
        let Some(turn) = self.turns.last_mut() else {
            return Err("nothing to regenerate yet".into());
        };
        turn.replies[column.index()] = Reply::queued();
        turn.vote = None;
        Ok(self.start_queued())
    }

    /// The user's verdict on the last turn, as a line for the votes file.
    /// Blind, the names are shown from now on.
    pub fn vote(
        &mut self,
        verdict: Verdict,
        note: Option<String>,
        cast: VoteContext,
    ) -> Result<Vote, String> {
        if self.busy() {
            return Err("vote when both replies have finished".into());
        }
        let prefix_turns = self.prefix.iter().filter(|m| m.role == Role::User).count();
        let turn_index = self
            .turns
            .len()
            .checked_sub(1)
            .ok_or("nothing to vote on yet")?;
        let blind = !self.revealed;
        let turn = &mut self.turns[turn_index];
        if turn.vote.is_some() {
            return Err("this turn has its vote; send the next message".into());
        }
        let note = note.filter(|n| !n.trim().is_empty());
        turn.vote = Some(TurnVote {
            verdict,
            note: note.clone(),
            blind,
        });
        let side = |column: Column, sampling: &SamplingParams| {
            let contender = &self.contenders[column.index()];
            let (file, sha256, backend) = match &contender.model {
                ModelRef::Local { path, sha256 } => (Some(path.clone()), sha256.clone(), None),
                ModelRef::Remote(remote) => (None, None, Some(remote.clone())),
            };
            Side {
                model: contender.name.clone(),
                file,
                sha256,
                backend,
                sampling: sampling.clone(),
                stats: self.turns[turn_index].replies[column.index()].stats.clone(),
            }
        };
        let vote = Vote {
            version: VOTE_VERSION,
            at_ms: cast.at_ms,
            session: cast.session,
            turn: prefix_turns + turn_index,
            blind,
            verdict,
            note,
            a: side(Column::A, &cast.sampling[0]),
            b: side(Column::B, &cast.sampling[1]),
        };
        self.revealed = true;
        Ok(vote)
    }

    /// Ends the duel with `column`'s side of it: the conversation the chat
    /// goes on with, and its model.
    pub fn continue_with(&self, column: Column) -> Result<(Vec<ChatMessage>, Contender), String> {
        if self.busy() {
            return Err("wait for both replies, or press Esc to stop them".into());
        }
        Ok((self.history(column), self.contender(column).clone()))
    }

    /// Another model for `column`; its history goes on with the new one.
    pub fn replace(
        &mut self,
        column: Column,
        contender: Contender,
        at_once: bool,
    ) -> Result<(), String> {
        if self.busy() {
            return Err("wait for both replies, or press Esc to stop them".into());
        }
        self.contenders[column.index()] = contender;
        self.pace = Pace::for_models(
            &self.contenders[0].model,
            &self.contenders[1].model,
            at_once,
        );
        Ok(())
    }

    /// A duel read back from a session file: replies that were still
    /// running when it was saved count as stopped.
    pub fn settle(&mut self) {
        if let Some(turn) = self.turns.last_mut() {
            for reply in &mut turn.replies {
                if reply.in_progress() {
                    reply.state = ReplyState::Done(StopReason::Cancelled);
                }
            }
        }
    }
}

/// What a vote records beyond the duel itself.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteContext {
    pub session: String,
    pub at_ms: u64,
    /// Column A's sampler settings, then column B's.
    pub sampling: [SamplingParams; 2],
}
