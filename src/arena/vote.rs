//! One vote: the same turn answered by two models, and which answer the
//! user preferred.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::protocol::GenerationStats;
use crate::engine::remote::RemoteModel;
use crate::engine::SamplingParams;

/// The version of a vote line; a reader refuses lines from a newer whet.
pub const VOTE_VERSION: u32 = 1;

/// Which reply the user preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    A,
    B,
    Tie,
    /// Neither reply is acceptable: a tie for the rating, counted apart.
    BothBad,
}

impl Verdict {
    /// A's share of the win: 1, 0, or ½ for a tie or two bad replies
    /// (as Chatbot Arena scores "tie (bothbad)").
    pub fn score_of_a(self) -> f64 {
        match self {
            Verdict::A => 1.0,
            Verdict::B => 0.0,
            Verdict::Tie | Verdict::BothBad => 0.5,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::A => "A better",
            Verdict::B => "B better",
            Verdict::Tie => "tie",
            Verdict::BothBad => "both bad",
        }
    }
}

/// One side of a compared turn: the model and how it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Side {
    /// The model's name as whet shows it.
    pub model: String,
    /// The local GGUF file, when the model is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The local file's SHA-256: two files under one name are two models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The remote backend, when the model is on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<RemoteModel>,
    pub sampling: SamplingParams,
    /// The reply's figures, when it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<GenerationStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    pub version: u32,
    /// When the vote was cast (Unix milliseconds).
    pub at_ms: u64,
    /// The session and the turn (its user message's index among the
    /// session's user messages, from 0) the vote is about.
    pub session: String,
    pub turn: usize,
    /// The names were hidden until the vote.
    pub blind: bool,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub a: Side,
    pub b: Side,
}
