//! Refinement rounds (Self-Refine, Madaan et al. 2023): a draft, then
//! feedback on the latest pass and a refined pass, repeated.
//!
//! [`RefineLoop`] is the loop as a pure state machine: it says which
//! messages to generate next ([`RefineLoop::next_step`]) and takes the
//! result ([`RefineLoop::record`]); whoever drives it owns the engine. The
//! command line drives it straight through ([`drive`]); the UI through its
//! effects; the tests with a scripted engine. Every pass, its feedback, the
//! messages sent and the engine's figures are kept in a [`RefineRun`].
//!
//! - [`defaults`] — the feedback and refine prompts for a template without;
//! - [`store`] — runs on disk;
//! - [`export`] — a run as Markdown.

pub mod defaults;
pub mod export;
pub mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::client::Generation;
use crate::engine::constraint::Constraint;
use crate::engine::protocol::{
    ChatMessage, GenerateRequest, GenerationStats, Prompt, Role, StopReason,
};
use crate::engine::SamplingParams;
use crate::metrics::{self, Scores};
use crate::prompt::{render_text, Refine};
use crate::store::tokens::KeptToken;

/// 2: passes keep their tokens' probabilities, and a run keeps the grammar
/// or schema its passes followed. Version 1 files load.
pub const REFINE_FORMAT_VERSION: u32 = 2;

/// The default number of refine rounds.
pub const DEFAULT_ROUNDS: u32 = 3;

/// What each feedback and refine step is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum History {
    /// The whole run so far as one conversation, then the new request: the
    /// prompt grows, and the engine decodes only what is new each step.
    #[default]
    Conversation,
    /// The request alone (it restates the task and the answer): short
    /// prompts, sharing only their start with the step before.
    Fresh,
}

/// When the loop stops, besides the rounds running out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopConfig {
    pub max_rounds: u32,
    #[serde(default)]
    pub history: History,
    /// Feedback containing this (any case) means nothing is left to fix.
    pub stop_phrase: Option<String>,
    /// Stop when the score parsed from the feedback reaches this.
    pub score_threshold: Option<f64>,
    /// Where the score is in the feedback: a regular expression whose first
    /// group is the number (the last match counts).
    pub score_pattern: String,
    /// The model's context size, when known: a conversation step that might
    /// not fit is sent as a fresh request instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ctx: Option<u32>,
}

/// "Total score: 22", "Score: 7/10", "score = 4.5".
pub const DEFAULT_SCORE_PATTERN: &str = r"(?i)score\s*[:=]?\s*(\d+(?:\.\d+)?)";

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            max_rounds: DEFAULT_ROUNDS,
            history: History::default(),
            stop_phrase: None,
            score_threshold: None,
            score_pattern: DEFAULT_SCORE_PATTERN.to_string(),
            n_ctx: None,
        }
    }
}

/// The texts of a run's feedback and refine steps (placeholders unfilled).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefinePrompts {
    pub feedback: String,
    pub refine: String,
}

/// One generation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    pub text: String,
    pub reason: StopReason,
    pub stats: GenerationStats,
    /// Each token with its probability and alternatives, when they were
    /// asked for (the lens on a pass).
    pub tokens: Option<Vec<KeptToken>>,
}

/// Feedback on a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub messages: Vec<ChatMessage>,
    pub text: String,
    pub reason: StopReason,
    pub stats: GenerationStats,
    /// The score the feedback gives, if the pattern found one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// Words removed and added against the previous pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSize {
    pub deleted: usize,
    pub inserted: usize,
}

/// A pass: the draft (0) or a refined answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pass {
    pub index: u32,
    /// The messages sent to get it.
    pub messages: Vec<ChatMessage>,
    pub text: String,
    pub reason: StopReason,
    pub stats: GenerationStats,
    /// Its tokens with their probabilities, when they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<KeptToken>>,
    /// The feedback on this pass (that led to the next one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
    /// Against the run's references (lengths only without any).
    pub scores: Scores,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffSize>,
    /// The user's rating, 1 to 5, and note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoopEnd {
    MaxRounds,
    /// The feedback said there is nothing left to fix.
    StopPhrase,
    ScoreThreshold {
        score: f64,
    },
    /// A pass came out the same as the one before.
    Unchanged,
    Cancelled,
    Failed {
        message: String,
    },
}

impl LoopEnd {
    pub fn describe(&self) -> String {
        match self {
            LoopEnd::MaxRounds => "the rounds ran out".into(),
            LoopEnd::StopPhrase => "the feedback found nothing to fix".into(),
            LoopEnd::ScoreThreshold { score } => {
                format!("the feedback's score {score} reached the threshold")
            }
            LoopEnd::Unchanged => "a pass came out the same as the one before".into(),
            LoopEnd::Cancelled => "stopped".into(),
            LoopEnd::Failed { message } => format!("failed: {message}"),
        }
    }
}

/// A whole refinement run, as saved (the default: an empty one, nothing run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefineRun {
    pub version: u32,
    /// File stem; given when first saved.
    pub id: String,
    pub created_unix_ms: u64,
    pub template: String,
    /// The template version that ran (TOML), empty for a plain prompt.
    pub template_toml: String,
    pub values: BTreeMap<String, String>,
    pub model: Option<PathBuf>,
    pub sampling: SamplingParams,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    /// The grammar or JSON schema the draft and every pass follow (the
    /// feedback is free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
    pub config: LoopConfig,
    pub prompts: RefinePrompts,
    /// The rendered prompt (`{{task}}`) and the messages of the draft.
    pub task: String,
    pub draft_messages: Vec<ChatMessage>,
    pub references: Vec<String>,
    pub passes: Vec<Pass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<LoopEnd>,
    /// The pass the user marked best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<u32>,
}

/// What to generate next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Draft,
    Feedback { round: u32 },
    Refine { round: u32 },
}

impl StepKind {
    pub fn describe(self) -> String {
        match self {
            StepKind::Draft => "draft".into(),
            StepKind::Feedback { round } => format!("feedback {round}"),
            StepKind::Refine { round } => format!("pass {round}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub messages: Vec<ChatMessage>,
    /// What the output must match: the run's constraint on a pass, none on
    /// feedback.
    pub constraint: Option<Constraint>,
}

impl Step {
    /// The engine request for this step: its messages as a chat, with the
    /// run's sampler, token limit and stop strings, and its constraint.
    pub fn request(
        &self,
        sampling: &SamplingParams,
        max_tokens: u32,
        stop: &[String],
    ) -> GenerateRequest {
        GenerateRequest {
            id: 0,
            prompt: Prompt::Chat {
                messages: self.messages.clone(),
            },
            sampling: sampling.clone(),
            max_tokens,
            stop: stop.to_vec(),
            reuse_prefix: true,
            ignore_eos: false,
            probs: None,
            constraint: self.constraint.clone(),
        }
    }
}

impl From<Generation> for Generated {
    fn from(generation: Generation) -> Self {
        Self {
            text: generation.text,
            reason: generation.reason,
            stats: generation.stats,
            tokens: None,
        }
    }
}

/// Tokens the engine evaluated over a run, with the KV prefix reuse and as
/// they would have been without it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenTotals {
    pub generations: u32,
    pub prompt_tokens: u32,
    pub reused_tokens: u32,
    pub generated_tokens: u32,
}

impl TokenTotals {
    fn add(&mut self, stats: &GenerationStats) {
        self.generations += 1;
        self.prompt_tokens += stats.prompt_tokens;
        self.reused_tokens += stats.reused_tokens;
        self.generated_tokens += stats.generated_tokens;
    }

    /// Tokens decoded: the new part of each prompt, and each sampled token.
    pub fn decoded(&self) -> u32 {
        self.prompt_tokens - self.reused_tokens + self.generated_tokens
    }

    /// Tokens that would have been decoded without reusing the cache.
    pub fn decoded_without_reuse(&self) -> u32 {
        self.prompt_tokens + self.generated_tokens
    }
}

impl RefineRun {
    /// Token totals per round (0 = the draft; round r = feedback r and pass r).
    pub fn round_totals(&self) -> Vec<TokenTotals> {
        let mut rounds = vec![TokenTotals::default(); self.passes.len().max(1)];
        for pass in &self.passes {
            rounds[pass.index as usize].add(&pass.stats);
            if let Some(feedback) = &pass.feedback {
                let next = pass.index as usize + 1;
                if next >= rounds.len() {
                    rounds.push(TokenTotals::default());
                }
                rounds[next].add(&feedback.stats);
            }
        }
        rounds
    }

    pub fn totals(&self) -> TokenTotals {
        let mut total = TokenTotals::default();
        for round in self.round_totals() {
            total.generations += round.generations;
            total.prompt_tokens += round.prompt_tokens;
            total.reused_tokens += round.reused_tokens;
            total.generated_tokens += round.generated_tokens;
        }
        total
    }
}

/// The loop: which step is next, and what each result means for it.
pub struct RefineLoop {
    run: RefineRun,
    next: Option<StepKind>,
    score_pattern: Option<regex::Regex>,
}

/// What a run starts from.
pub struct RefineSetup {
    pub template: String,
    pub template_toml: String,
    pub values: BTreeMap<String, String>,
    pub model: Option<PathBuf>,
    pub sampling: SamplingParams,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    /// The grammar or schema of the draft and the passes.
    pub constraint: Option<Constraint>,
    pub config: LoopConfig,
    /// The template's own prompts; the defaults fill what it leaves out.
    pub refine: Refine,
    /// The rendered messages of the task; the last is the user prompt.
    pub draft_messages: Vec<ChatMessage>,
    pub references: Vec<String>,
}

/// The prompts and settings a loop runs with: what the caller sets in
/// `config`, else the template's `refine` table, else the defaults. An
/// experiment keys its refined cells by exactly these.
pub fn resolve(config: LoopConfig, refine: &Refine) -> (RefinePrompts, LoopConfig) {
    let defaults = defaults::prompts();
    let prompts = RefinePrompts {
        feedback: refine.feedback.clone().unwrap_or(defaults.feedback),
        refine: refine.refine.clone().unwrap_or(defaults.refine),
    };
    let mut config = config;
    if config.stop_phrase.is_none() {
        config.stop_phrase = refine.stop_phrase.clone().or(defaults.stop_phrase);
    }
    config.score_threshold = config.score_threshold.or(refine.score_threshold);
    if config.score_pattern == DEFAULT_SCORE_PATTERN {
        if let Some(pattern) = &refine.score_pattern {
            config.score_pattern = pattern.clone();
        }
    }
    (prompts, config)
}

impl RefineLoop {
    pub fn new(setup: RefineSetup) -> Result<RefineLoop, String> {
        let (prompts, config) = resolve(setup.config, &setup.refine);
        let score_pattern = match config.score_threshold {
            Some(_) => Some(
                crate::prompt::template::check_score_pattern(&config.score_pattern)
                    .map_err(|e| format!("the score pattern: {e}"))?,
            ),
            None => None,
        };
        let task = setup
            .draft_messages
            .last()
            .filter(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .ok_or("the task has no user message")?;
        Ok(RefineLoop {
            run: RefineRun {
                version: REFINE_FORMAT_VERSION,
                id: String::new(),
                created_unix_ms: 0,
                template: setup.template,
                template_toml: setup.template_toml,
                values: setup.values,
                model: setup.model,
                sampling: setup.sampling,
                max_tokens: setup.max_tokens,
                stop: setup.stop,
                constraint: setup.constraint,
                config,
                prompts,
                task,
                draft_messages: setup.draft_messages,
                references: setup.references,
                passes: Vec::new(),
                end: None,
                best: None,
            },
            next: Some(StepKind::Draft),
            score_pattern,
        })
    }

    /// A saved run, to look at (and rate): nothing is left to generate.
    pub fn from_run(run: RefineRun) -> RefineLoop {
        RefineLoop {
            run,
            next: None,
            score_pattern: None,
        }
    }

    pub fn run(&self) -> &RefineRun {
        &self.run
    }

    /// For what the user adds: ratings, notes, the best pass, the id.
    pub fn run_mut(&mut self) -> &mut RefineRun {
        &mut self.run
    }

    pub fn into_run(self) -> RefineRun {
        self.run
    }

    /// The model the run uses, once it is known.
    pub fn set_model(&mut self, model: PathBuf) {
        self.run.model = Some(model);
    }

    pub fn is_finished(&self) -> bool {
        self.next.is_none()
    }

    /// The next generation to run, or None once the loop has ended.
    pub fn next_step(&self) -> Option<Step> {
        let kind = self.next?;
        let request = match kind {
            StepKind::Draft => {
                return Some(Step {
                    kind,
                    messages: self.run.draft_messages.clone(),
                    constraint: self.run.constraint.clone(),
                })
            }
            StepKind::Feedback { .. } => {
                let values = self.values(None);
                ChatMessage::new(
                    Role::User,
                    render_text(&self.run.prompts.feedback, &values).ok()?,
                )
            }
            StepKind::Refine { .. } => {
                let feedback = self.run.passes.last()?.feedback.as_ref()?.text.clone();
                let values = self.values(Some(feedback));
                ChatMessage::new(
                    Role::User,
                    render_text(&self.run.prompts.refine, &values).ok()?,
                )
            }
        };
        let mut messages = match self.run.config.history {
            History::Conversation if self.conversation_fits(&request) => self.conversation(),
            History::Conversation | History::Fresh => Vec::new(),
        };
        messages.push(request);
        let constraint = match kind {
            StepKind::Feedback { .. } => None,
            StepKind::Draft | StepKind::Refine { .. } => self.run.constraint.clone(),
        };
        Some(Step {
            kind,
            messages,
            constraint,
        })
    }

    /// Whether the conversation so far, `request` and a whole answer fit in
    /// the context. Tokens are estimated from the bytes, at the rate the
    /// last step's prompt took (its markup included, so the rate errs
    /// high), plus a tenth and each turn's markup for safety.
    fn conversation_fits(&self, request: &ChatMessage) -> bool {
        let Some(n_ctx) = self.run.config.n_ctx else {
            return true;
        };
        let Some(last) = self.run.passes.last() else {
            return true;
        };
        let (sent, stats) = match &last.feedback {
            Some(feedback) => (&feedback.messages, &feedback.stats),
            None => (&last.messages, &last.stats),
        };
        let bytes = |messages: &[ChatMessage]| -> u64 {
            messages.iter().map(|m| m.content.len() as u64).sum()
        };
        let rate = f64::from(stats.prompt_tokens) / bytes(sent).max(1) as f64;
        let mut conversation = self.conversation();
        conversation.push(request.clone());
        // A turn's markup (role names, separators) on top of its text.
        const TURN_MARKUP: f64 = 16.0;
        let estimate =
            bytes(&conversation) as f64 * rate * 1.1 + TURN_MARKUP * conversation.len() as f64;
        estimate + f64::from(self.run.max_tokens) <= f64::from(n_ctx)
    }

    /// The model's context size, once it is known.
    pub fn set_n_ctx(&mut self, n_ctx: u32) {
        self.run.config.n_ctx = Some(n_ctx).filter(|&n| n > 0);
    }

    /// The run so far as one conversation: the draft's messages, then each
    /// pass, the request for feedback on it and the feedback, the request
    /// to refine and the next pass. A step that continues it shares its
    /// whole prompt with the step before, plus that step's answer.
    fn conversation(&self) -> Vec<ChatMessage> {
        let mut messages = self.run.draft_messages.clone();
        for pass in &self.run.passes {
            if pass.index > 0 {
                messages.extend(pass.messages.last().cloned());
            }
            messages.push(ChatMessage::new(Role::Assistant, pass.text.trim()));
            if let Some(feedback) = &pass.feedback {
                messages.extend(feedback.messages.last().cloned());
                messages.push(ChatMessage::new(Role::Assistant, feedback.text.trim()));
            }
        }
        messages
    }

    fn values(&self, feedback: Option<String>) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        values.insert("task".to_string(), self.run.task.clone());
        let answer = self.run.passes.last().map_or("", |p| p.text.as_str());
        values.insert("answer".to_string(), answer.trim().to_string());
        if let Some(feedback) = feedback {
            values.insert("feedback".to_string(), feedback.trim().to_string());
        }
        values
    }

    /// The result of the step [`RefineLoop::next_step`] gave.
    pub fn record(&mut self, step: &Step, generated: Generated) {
        if self.next != Some(step.kind) {
            return;
        }
        let cancelled = generated.reason == StopReason::Cancelled;
        match step.kind {
            StepKind::Draft | StepKind::Refine { .. } => {
                let index = self.run.passes.len() as u32;
                let previous = self.run.passes.last().map(|p| p.text.clone());
                let references: Vec<String> = self.run.references.clone();
                let diff = previous.as_deref().map(|old| {
                    let diff = crate::diff::word_diff(old, &generated.text);
                    DiffSize {
                        deleted: diff.deleted_words,
                        inserted: diff.inserted_words,
                    }
                });
                let unchanged = previous
                    .as_deref()
                    .is_some_and(|old| old.trim() == generated.text.trim());
                self.run.passes.push(Pass {
                    index,
                    messages: step.messages.clone(),
                    scores: metrics::score(&generated.text, &references),
                    text: generated.text,
                    reason: generated.reason,
                    stats: generated.stats,
                    tokens: generated.tokens,
                    feedback: None,
                    diff,
                    rating: None,
                    note: String::new(),
                });
                self.next = if cancelled {
                    self.end(LoopEnd::Cancelled)
                } else if unchanged {
                    self.end(LoopEnd::Unchanged)
                } else if index >= self.run.config.max_rounds {
                    self.end(LoopEnd::MaxRounds)
                } else {
                    Some(StepKind::Feedback { round: index + 1 })
                };
            }
            StepKind::Feedback { round } => {
                let score = self.score_of(&generated.text);
                let says_done = self
                    .run
                    .config
                    .stop_phrase
                    .as_deref()
                    .is_some_and(|phrase| {
                        !phrase.trim().is_empty()
                            && generated
                                .text
                                .to_lowercase()
                                .contains(&phrase.trim().to_lowercase())
                    });
                let reached = match (score, self.run.config.score_threshold) {
                    (Some(score), Some(threshold)) if score >= threshold => Some(score),
                    _ => None,
                };
                if let Some(pass) = self.run.passes.last_mut() {
                    pass.feedback = Some(Feedback {
                        messages: step.messages.clone(),
                        text: generated.text,
                        reason: generated.reason,
                        stats: generated.stats,
                        score,
                    });
                }
                self.next = if cancelled {
                    self.end(LoopEnd::Cancelled)
                } else if says_done {
                    self.end(LoopEnd::StopPhrase)
                } else if let Some(score) = reached {
                    self.end(LoopEnd::ScoreThreshold { score })
                } else {
                    Some(StepKind::Refine { round })
                };
            }
        }
    }

    /// The score in a feedback text: the last match of the pattern.
    fn score_of(&self, feedback: &str) -> Option<f64> {
        let pattern = self.score_pattern.as_ref()?;
        pattern
            .captures_iter(feedback)
            .filter_map(|c| c.get(1)?.as_str().parse().ok())
            .last()
    }

    fn end(&mut self, end: LoopEnd) -> Option<StepKind> {
        self.run.end = Some(end);
        None
    }

    /// The step could not run; the loop ends keeping what is done.
    pub fn fail(&mut self, message: String) {
        self.next = self.end(LoopEnd::Failed { message });
    }

    /// Stopped between steps; what is done is kept.
    pub fn cancel(&mut self) {
        if self.next.is_some() {
            self.next = self.end(LoopEnd::Cancelled);
        }
    }
}

/// Something that generates a reply to messages (the engine, or a script
/// in tests). Its text callback is `Send` so that a loop can be driven on
/// a spawned task (an experiment run from the UI).
#[allow(async_fn_in_trait)]
pub trait Generator {
    async fn generate(
        &mut self,
        step: &Step,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generated, String>;
}

/// Runs the loop to its end with `generator`; `on_event` hears each step
/// start, its text as it streams, and its end.
pub async fn drive(
    refine: &mut RefineLoop,
    generator: &mut impl Generator,
    mut on_event: impl FnMut(LoopEvent<'_>) + Send,
) {
    while let Some(step) = refine.next_step() {
        on_event(LoopEvent::Started(step.kind));
        let result = generator
            .generate(&step, &mut |text| on_event(LoopEvent::Text(text)))
            .await;
        match result {
            Ok(generated) => {
                refine.record(&step, generated);
                on_event(LoopEvent::Finished(step.kind, refine.run()));
            }
            Err(message) => refine.fail(message),
        }
    }
}

pub enum LoopEvent<'a> {
    Started(StepKind),
    Text(&'a str),
    Finished(StepKind, &'a RefineRun),
}

#[cfg(test)]
mod tests;
