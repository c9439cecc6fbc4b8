//! The typed protocol between a front end and the engine worker process.
//!
//! Commands go to the worker's stdin and events come back on its stdout, one
//! JSON object per line. Keeping the wire format to plain serde types lets the
//! same protocol later front a remote server.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::beams::BeamSettings;
pub use super::constraint::Constraint;
use super::probs::{ProbsRequest, TokenProbs};
use super::sampling::SamplingParams;

/// A request from the front end to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Load a model (replacing any loaded one) and create its context.
    Load(LoadRequest),
    /// Generate a completion; answered by `Token` events and one `Done` or `Error`.
    Generate(GenerateRequest),
    /// Generate completions for several requests, decoded together as
    /// parallel sequences (at most the context's `parallel`); answered by
    /// each request's `Token` events and `Done` or `Error`, then `ManyDone`.
    /// Cancel with the batch's id stops them all, with a request's id that one.
    GenerateMany {
        id: u64,
        requests: Vec<GenerateRequest>,
        parallel: u32,
    },
    /// Run a beam search (transformers' `generate(num_beams=…)`); answered
    /// by one `BeamsDone` or `Error`. The context gains the sequences the
    /// beams need if it has fewer (its KV cache is then started afresh).
    Beams(BeamRequest),
    /// Stop the generation with this id at the next token; it ends with `Done`
    /// and reason `Cancelled`, keeping the partial text.
    Cancel { id: u64 },
    /// Count the tokens a prompt takes after formatting; answered by `TokenCount`.
    CountTokens { id: u64, prompt: Prompt },
    /// Return the exact text the model would see for a prompt; answered by `Formatted`.
    FormatPrompt { id: u64, prompt: Prompt },
    /// Exit cleanly.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadRequest {
    pub model: PathBuf,
    /// Requested context size in tokens; llama.cpp rounds it up to a multiple of 256.
    pub n_ctx: u32,
    /// Prompt-evaluation chunk size; a larger single decode would abort llama.cpp.
    pub n_batch: u32,
    pub threads: u32,
    /// A llama.cpp built-in chat format name that overrides the model's own template.
    #[serde(default)]
    pub chat_format: Option<String>,
    /// Load only the vocabulary and metadata (for `whet models info`).
    #[serde(default)]
    pub vocab_only: bool,
    /// Flash attention: None lets llama.cpp decide.
    #[serde(default)]
    pub flash_attention: Option<bool>,
    /// Sequences decoded together by `GenerateMany` (1..=8); 1 for a
    /// context that serves one request at a time.
    #[serde(default = "one")]
    pub parallel: u32,
}

fn one() -> u32 {
    1
}

/// The `--flash-attn` choice of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FlashAttn {
    /// llama.cpp decides (it enables it on the CPU). Measured with
    /// scripts/llama-bench-compare.py on this build, on is as fast as off or
    /// faster at every depth up to 3k; and off, with this llama.cpp, makes
    /// greedy output depend on where tokens sit in the KV cache, so a
    /// continued reply is no longer the uninterrupted one.
    #[default]
    Auto,
    On,
    Off,
}

impl FlashAttn {
    pub fn setting(self) -> Option<bool> {
        match self {
            FlashAttn::Auto => None,
            FlashAttn::On => Some(true),
            FlashAttn::Off => Some(false),
        }
    }
}

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prompt {
    /// Exact model input; special-token text such as `<|im_start|>` is parsed.
    Raw { text: String },
    /// Messages formatted with the model's chat template; message text is
    /// tokenized with special-token parsing off.
    Chat { messages: Vec<ChatMessage> },
    /// Like `Chat`, but the last message (the assistant's, cut short) is left
    /// open: the model goes on writing it instead of starting a new turn.
    ChatContinue {
        messages: Vec<ChatMessage>,
        /// The open message as exact token ids, used instead of tokenizing
        /// its text: a reply cut before one of its tokens (and perhaps
        /// given another there) continues from exactly the tokens it had,
        /// which re-tokenizing its text may not give back. Each id must be
        /// in the model's vocabulary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_tokens: Option<Vec<i32>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub id: u64,
    pub prompt: Prompt,
    #[serde(default)]
    pub sampling: SamplingParams,
    pub max_tokens: u32,
    /// Generation ends when the text contains one of these; it is not emitted.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Reuse the KV cache for the prefix this prompt shares with the previous one.
    #[serde(default = "yes")]
    pub reuse_prefix: bool,
    /// Keep generating past end-of-generation tokens (benchmarks only).
    #[serde(default)]
    pub ignore_eos: bool,
    /// Send each token's log-probability and top alternatives on its
    /// `Token` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probs: Option<ProbsRequest>,
    /// A grammar or JSON Schema the output must follow (llama.cpp's grammar
    /// sampler); refused with llama.cpp's reason before anything is decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
}

/// A beam search over a prompt; see [`crate::engine::beams`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeamRequest {
    pub id: u64,
    pub prompt: Prompt,
    pub beams: BeamSettings,
    /// transformers' `max_new_tokens`.
    pub max_tokens: u32,
}

/// One returned hypothesis of a beam search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beam {
    /// The generated text, without the end-of-generation token.
    pub text: String,
    /// The generated tokens, the end-of-generation token included when it
    /// ended on one.
    pub tokens: Vec<i32>,
    /// transformers' `sequences_scores`: `logprob / len(tokens) ** length_penalty`.
    pub score: f32,
    /// The summed log-probability of `tokens`.
    pub logprob: f32,
    /// It ended on an end-of-generation token (else on the token limit).
    pub eos: bool,
}

/// Timings of one beam search, measured in the worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BeamStats {
    pub prompt_tokens: u32,
    /// Of those, tokens whose KV entries were already in the cache.
    pub reused_tokens: u32,
    pub prompt_eval_ms: f64,
    /// Steps of the search: tokens each beam took.
    pub steps: u32,
    /// Tokens decoded after the prompt, over all beams (one per beam and
    /// step after the first).
    pub decoded_tokens: u32,
    /// From the prompt's logits to the end of the search.
    pub search_ms: f64,
}

impl BeamStats {
    /// Steps per second: how fast each beam grows.
    pub fn steps_per_sec(&self) -> f64 {
        per_second(self.steps.saturating_sub(1), self.search_ms)
    }

    /// Tokens decoded per second over all beams.
    pub fn tokens_per_sec(&self) -> f64 {
        per_second(self.decoded_tokens, self.search_ms)
    }
}

fn yes() -> bool {
    true
}

/// A message from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker started and reads commands.
    Ready {
        version: String,
        pid: u32,
    },
    /// How far llama.cpp has read the model file, 0..=1, while loading.
    LoadProgress {
        fraction: f32,
    },
    Loaded {
        info: ModelInfo,
    },
    /// One sampled token. `text` is what became printable with it: empty while a
    /// multi-byte character or a possible stop string is still incomplete.
    Token {
        id: u64,
        text: String,
        token: i32,
        prob: f32,
        /// Tokens in the context once this one is in: the prompt and what
        /// has been generated so far.
        #[serde(default)]
        context_used: u32,
        /// When the request asked for them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probs: Option<TokenProbs>,
    },
    Done {
        id: u64,
        text: String,
        reason: StopReason,
        stats: GenerationStats,
    },
    /// A beam search ended: its hypotheses, best first.
    BeamsDone {
        id: u64,
        beams: Vec<Beam>,
        stats: BeamStats,
    },
    /// Every request of a `GenerateMany` has ended.
    ManyDone {
        id: u64,
        stats: super::parallel::ManyStats,
    },
    TokenCount {
        id: u64,
        tokens: u32,
        n_ctx: u32,
    },
    Formatted {
        id: u64,
        text: String,
        tokens: u32,
    },
    /// A request failed; `id` is absent for failures outside a request (e.g. Load).
    Error {
        id: Option<u64>,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    Eos,
    StopString,
    MaxTokens,
    /// No room left in the context for another token.
    ContextFull,
    Cancelled,
}

impl StopReason {
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Eos => "end of generation",
            StopReason::StopString => "stop string",
            StopReason::MaxTokens => "max tokens",
            StopReason::ContextFull => "context full",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// Timings measured inside the worker for one generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    /// Tokens in the formatted prompt.
    pub prompt_tokens: u32,
    /// Of those, tokens whose KV entries were reused from the previous request.
    pub reused_tokens: u32,
    pub generated_tokens: u32,
    /// Decoding the new part of the prompt.
    pub prompt_eval_ms: f64,
    /// From receiving the request to sampling the first token.
    pub ttft_ms: f64,
    /// From the first sampled token to the last one.
    pub generation_ms: f64,
    /// For a constrained request: whether the output ended with the grammar
    /// complete. Only `Complete` output is guaranteed to match; output cut
    /// by max tokens, a full context, cancelling or a stop string is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<GrammarEnd>,
}

/// Where a constrained generation left its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrammarEnd {
    /// The output is a complete match of the grammar (or schema).
    Complete,
    /// The output stopped before the grammar was finished: it does not match.
    Unfinished,
}

impl GrammarEnd {
    /// The note a front end shows with output that does not match, naming
    /// why it stopped; None for complete output.
    pub fn note(self, reason: StopReason) -> Option<String> {
        match self {
            GrammarEnd::Complete => None,
            GrammarEnd::Unfinished => Some(format!(
                "output incomplete: the grammar was not finished (stopped by {})",
                reason.describe()
            )),
        }
    }
}

impl GenerationStats {
    pub fn prompt_tokens_per_sec(&self) -> f64 {
        let evaluated = self.prompt_tokens.saturating_sub(self.reused_tokens);
        per_second(evaluated, self.prompt_eval_ms)
    }

    /// Rate between the first and the last token: the first one's latency is
    /// prompt evaluation, counted above.
    pub fn generation_tokens_per_sec(&self) -> f64 {
        per_second(self.generated_tokens.saturating_sub(1), self.generation_ms)
    }
}

pub fn per_second(count: u32, ms: f64) -> f64 {
    if ms > 0.0 {
        f64::from(count) * 1000.0 / ms
    } else {
        0.0
    }
}

/// What the worker learned about a loaded model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub file_size: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub parameter_count: u64,
    pub quantization: Option<String>,
    pub n_ctx_train: Option<u64>,
    /// The context actually allocated (0 for a vocab-only load).
    pub n_ctx: u32,
    pub n_batch: u32,
    pub threads: u32,
    pub n_vocab: u32,
    pub chat_template_present: bool,
    pub chat_format: ChatFormat,
}

/// How chat prompts will be formatted for this model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChatFormat {
    /// The model's template, which llama.cpp recognises; `builtin` names the
    /// built-in format that renders identically, if one does.
    Model { builtin: Option<String> },
    /// Chosen with `--chat-format`.
    Override { name: String },
    /// The model has a template that llama.cpp's matcher does not recognise.
    Unrecognized,
    /// The model has no chat template (e.g. a base model).
    Missing,
    /// A remote backend formats chats itself, with its model's template.
    Server { backend: String, kind: String },
}

impl ChatFormat {
    pub fn describe(&self) -> String {
        match self {
            ChatFormat::Model {
                builtin: Some(name),
            } => format!("model template (llama.cpp built-in '{name}')"),
            ChatFormat::Model { builtin: None } => {
                "model template (recognised by llama.cpp, no identical built-in)".to_string()
            }
            ChatFormat::Override { name } => format!("'{name}' (chosen with --chat-format)"),
            ChatFormat::Unrecognized => {
                "none usable: the model's template is not one llama.cpp recognises".to_string()
            }
            ChatFormat::Missing => "none: the model has no chat template".to_string(),
            ChatFormat::Server { backend, kind } => {
                format!("the server's own ({kind} backend '{backend}')")
            }
        }
    }

    pub fn usable(&self) -> bool {
        matches!(
            self,
            ChatFormat::Model { .. } | ChatFormat::Override { .. } | ChatFormat::Server { .. }
        )
    }
}

/// The `token` of a `Token` event that releases text held back (a possible
/// stop string, a split character) rather than a sampled token.
pub const FLUSH_TOKEN: i32 = -1;

/// The `token` of a sampled token whose id is not known: a remote server
/// streams text without ids (llama-server gives them with probabilities).
pub const UNKNOWN_TOKEN: i32 = -2;

/// Serialises one message as a protocol line (without the newline).
/// The worker's refusal of a prompt longer than the context, as
/// (prompt tokens, context size), so a front end can say what to do about it.
pub fn prompt_too_long(message: &str) -> Option<(u32, u32)> {
    let rest = message.strip_prefix("the prompt is ")?;
    let (tokens, rest) = rest.split_once(" tokens but the context holds ")?;
    let n_ctx = rest.split(';').next()?;
    Some((tokens.parse().ok()?, n_ctx.parse().ok()?))
}

/// What the worker says when a prompt does not fit; `prompt_too_long`
/// reads it back.
pub fn prompt_too_long_message(tokens: usize, n_ctx: usize) -> String {
    format!(
        "the prompt is {tokens} tokens but the context holds {n_ctx}; shorten it or raise --ctx"
    )
}

pub fn encode_line<T: Serialize>(message: &T) -> String {
    // Serialising these plain data types cannot fail (no maps with non-string
    // keys, no custom serialisers).
    serde_json::to_string(message).unwrap_or_else(|e| {
        format!("{{\"event\":\"error\",\"id\":null,\"message\":\"protocol encode failed: {e}\"}}")
    })
}
