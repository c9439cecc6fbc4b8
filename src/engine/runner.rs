//! The llama.cpp side of the engine: a loaded model, its context, and the
//! generation loop with KV prefix reuse. Runs inside the worker process only.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;

use super::chat;
use super::guided::{self, Grammar};
use super::llama_log;
use super::probs;
use super::protocol::{
    ChatFormat, Event, GenerateRequest, GenerationStats, GrammarEnd, LoadRequest, ModelInfo,
    Prompt, StopReason,
};
use super::sampling::SamplingParams;
use super::stop::{StopMatcher, StopOutcome};
use super::utf8::Utf8Stream;
use crate::models::gguf;

/// A model in memory with what is needed to format prompts for it.
pub struct LoadedModel {
    pub model: LlamaModel,
    pub info: ModelInfo,
    template: Option<LlamaChatTemplate>,
}

impl LoadedModel {
    /// Checks the file in Rust first: llama.cpp aborts the process on some
    /// malformed files instead of returning an error.
    pub fn load(
        backend: &LlamaBackend,
        request: &LoadRequest,
        on_progress: impl FnMut(f32) + 'static,
    ) -> Result<Self, String> {
        let path = &request.model;
        let describe = |reason: String| format!("cannot load model '{}': {reason}", path.display());
        let summary = gguf::read_summary(path).map_err(|e| describe(e.to_string()))?;
        // Past its training context a model degrades, and a huge context
        // only fails after seconds of allocating: say so before loading.
        if let Some(trained) = summary.context_length.filter(|_| !request.vocab_only) {
            if u64::from(request.n_ctx) > trained {
                return Err(describe(format!(
                    "a context of {} tokens is more than it was trained for ({trained}); use --ctx {trained} or less",
                    request.n_ctx
                )));
            }
        }
        let mut on_progress = on_progress;
        let params = LlamaModelParams::default()
            .with_vocab_only(request.vocab_only)
            .with_progress_callback(move |fraction| {
                on_progress(fraction);
                true
            });
        let (model, log) =
            llama_log::capture(|| LlamaModel::load_from_file(backend, path, &params));
        let model = model.map_err(|_| {
            describe(llama_log::with_reason(
                "llama.cpp could not load it".to_string(),
                &log,
            ))
        })?;
        let (template, chat_format) = chat::resolve_format(&model, request.chat_format.as_deref())?;
        let info = ModelInfo {
            path: path.clone(),
            file_size: summary.file_size,
            architecture: summary.architecture.clone(),
            name: summary.name.clone(),
            parameter_count: summary.parameter_count,
            quantization: summary.quantization.clone(),
            n_ctx_train: summary.context_length,
            n_ctx: 0,
            n_batch: request.n_batch,
            threads: request.threads,
            n_vocab: u32::try_from(model.n_vocab()).unwrap_or(0),
            chat_template_present: summary.chat_template.is_some(),
            chat_format,
        };
        Ok(Self {
            model,
            info,
            template,
        })
    }

    /// A token's text on its own, special tokens by name (`<|im_end|>`): an
    /// alternative that ends the reply must still be visible. A token holding
    /// part of a multi-byte character shows U+FFFD.
    pub fn piece_text(&self, token: i32) -> String {
        let bytes = self
            .model
            .vocab()
            .token_to_piece(LlamaToken(token), true, None);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Turns a prompt into tokens. Raw prompts parse special-token text; chat
    /// messages never do, only the template's markup is parsed.
    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, String> {
        self.tokenize_with_replies(prompt, &VecDeque::new())
            .map(|(tokens, _)| tokens)
    }

    /// Like `tokenize`, but message text equal to an earlier reply's text
    /// becomes the tokens the model sampled for it. Sampled tokens are not
    /// always the tokenizer's own split of the same text (at temperature > 0
    /// often not), and one difference would make the KV cache miss from there
    /// on, re-decoding the rest of the conversation.
    ///
    /// For `ChatContinue` it also returns the open reply (its text and the
    /// tokens it ends the prompt with), so the continued reply can be
    /// remembered whole.
    fn tokenize_with_replies(
        &self,
        prompt: &Prompt,
        replies: &VecDeque<Reply>,
    ) -> Result<(Vec<LlamaToken>, Option<OpenReply>), String> {
        let vocab = self.model.vocab();
        let mut tokens = Vec::new();
        if vocab.should_add_bos() {
            tokens.push(vocab.bos());
        }
        let mut open_reply = None;
        match prompt {
            Prompt::Raw { text } => tokens.extend(vocab.tokenize(text.as_bytes(), false, true)),
            Prompt::Chat { messages } | Prompt::ChatContinue { messages, .. } => {
                let template = self
                    .template
                    .as_ref()
                    .ok_or_else(|| self.no_format_message())?;
                let mut segments = chat::format_segments(&self.model, template, messages)?;
                if matches!(prompt, Prompt::ChatContinue { .. }) {
                    chat::leave_last_message_open(&mut segments, messages)?;
                }
                let open_tokens = match prompt {
                    Prompt::ChatContinue {
                        open_tokens: Some(ids),
                        ..
                    } => Some(self.vocabulary_tokens(ids)?),
                    _ => None,
                };
                let last = segments.len().saturating_sub(1);
                for (index, segment) in segments.iter().enumerate() {
                    let sampled = (!segment.parse_special)
                        .then(|| replies.iter().rev().find(|r| r.text == segment.text))
                        .flatten();
                    let start = tokens.len();
                    match (sampled, &open_tokens) {
                        (_, Some(open)) if index == last => tokens.extend_from_slice(open),
                        (Some(reply), _) => tokens.extend_from_slice(&reply.tokens),
                        (None, _) => tokens.extend(vocab.tokenize(
                            segment.text.as_bytes(),
                            false,
                            segment.parse_special,
                        )),
                    }
                    if index == last && matches!(prompt, Prompt::ChatContinue { .. }) {
                        open_reply = Some(OpenReply {
                            text: segment.text.clone(),
                            tokens: tokens[start..].to_vec(),
                            given: open_tokens.is_some(),
                        });
                    }
                }
            }
        }
        // A template or raw prompt that spells out BOS itself must not get a second one.
        if tokens.len() >= 2 && vocab.should_add_bos() && tokens[1] == vocab.bos() {
            tokens.remove(0);
        }
        Ok((tokens, open_reply))
    }

    /// Token ids from a request, each checked against the vocabulary: an id
    /// out of range would make llama.cpp read past its tables or abort.
    fn vocabulary_tokens(&self, ids: &[i32]) -> Result<Vec<LlamaToken>, String> {
        let n_vocab = self.model.n_vocab();
        ids.iter()
            .map(|&id| {
                if (0..n_vocab).contains(&id) {
                    Ok(LlamaToken(id))
                } else {
                    Err(bad_token_message(id, n_vocab))
                }
            })
            .collect()
    }

    /// The exact text the model sees for these tokens, special tokens included.
    pub fn render_tokens(&self, tokens: &[LlamaToken]) -> String {
        self.detokenize(tokens, true)
    }

    /// Text of tokens as generation shows it (special tokens not rendered).
    fn render_plain(&self, tokens: &[LlamaToken]) -> String {
        self.detokenize(tokens, false)
    }

    fn detokenize(&self, tokens: &[LlamaToken], special: bool) -> String {
        let vocab = self.model.vocab();
        let mut bytes = Vec::new();
        for token in tokens {
            vocab.token_to_piece_into(*token, &mut bytes, special, None);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn no_format_message(&self) -> String {
        let names = chat::builtin_format_names().join(", ");
        match self.info.chat_format {
            ChatFormat::Missing => format!(
                "the model has no chat template; choose a format with --chat-format NAME \
                 (one of: {names}) or use --raw"
            ),
            _ => format!(
                "the model's chat template is not one llama.cpp recognises; choose a format \
                 with --chat-format NAME (one of: {names}) or use --raw"
            ),
        }
    }

    pub fn new_session(
        &self,
        backend: &LlamaBackend,
        request: &LoadRequest,
    ) -> Result<Session<'_>, String> {
        let threads = i32::try_from(request.threads.max(1)).unwrap_or(1);
        let n_batch = request.n_batch.max(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(request.n_ctx.max(1)))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(flash_attention_policy(request.flash_attention));
        // Several sequences share one cache (not a slice each), so any of
        // them can use the whole context and copy another's prefix.
        let n_seq_max = request.parallel.clamp(1, MAX_SEQUENCES);
        let params = if n_seq_max > 1 {
            params.with_n_seq_max(n_seq_max).with_kv_unified(true)
        } else {
            params
        };
        let (ctx, log) = llama_log::capture(|| self.model.new_context(backend, params));
        let ctx = ctx.map_err(|e| {
            let what = format!("cannot create a context of {} tokens: {e}", request.n_ctx);
            llama_log::with_reason(what, &log)
        })?;
        Ok(Session {
            model: self,
            n_batch: ctx.n_batch() as usize,
            n_seq_max,
            batch: LlamaBatch::new(ctx.n_batch() as usize, 1),
            ctx,
            cached: Vec::new(),
            replies: VecDeque::new(),
        })
    }
}

/// The most sequences a context gets: a beam search's (parallel requests
/// take at most `MAX_PARALLEL`).
pub const MAX_SEQUENCES: u32 = super::beams::MAX_BEAMS as u32 + 2;

/// Replies remembered for `tokenize_with_replies`; older ones are forgotten.
const REMEMBERED_REPLIES: usize = 256;

/// The text of a reply and the tokens that were sampled for it.
#[derive(Debug, Clone)]
struct Reply {
    text: String,
    tokens: Vec<LlamaToken>,
}

/// The open reply of a `ChatContinue` prompt: its text, the tokens it
/// ends the prompt with, and whether they were given as ids.
#[derive(Debug, Clone)]
struct OpenReply {
    text: String,
    tokens: Vec<LlamaToken>,
    given: bool,
}

/// A context with the token sequence currently held in its KV cache.
pub struct Session<'m> {
    pub(super) model: &'m LoadedModel,
    pub(super) ctx: LlamaContext<'m>,
    pub(super) batch: LlamaBatch<'static>,
    pub(super) n_batch: usize,
    /// Sequences the context was created for (`LoadRequest::parallel`).
    n_seq_max: u32,
    /// Tokens whose keys and values are in the cache (sequence 0), in
    /// position order.
    pub(super) cached: Vec<LlamaToken>,
    replies: VecDeque<Reply>,
}

/// How a generation ended, reported by `Session::generate`.
pub type Outcome = Result<(String, StopReason, GenerationStats), String>;

impl Session<'_> {
    pub fn n_ctx(&self) -> u32 {
        self.ctx.n_ctx()
    }

    pub fn n_seq_max(&self) -> u32 {
        self.n_seq_max
    }

    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, String> {
        self.model
            .tokenize_with_replies(prompt, &self.replies)
            .map(|(tokens, _)| tokens)
    }

    /// A prompt must have a token, and leave room in the context for one
    /// more: said before anything is decoded.
    pub(super) fn check_prompt_fits(&self, prompt: &[LlamaToken]) -> Result<(), String> {
        check_prompt_fits(prompt, self.ctx.n_ctx() as usize)
    }

    /// Runs one request, sending `Token` events through `emit` as tokens are
    /// sampled. `cancelled` is polled between prompt chunks and before each token.
    pub fn generate(
        &mut self,
        request: &GenerateRequest,
        cancelled: &dyn Fn() -> bool,
        emit: &mut dyn FnMut(Event),
    ) -> Outcome {
        let started = Instant::now();
        request.sampling.validate()?;
        if let Some(asked) = &request.probs {
            asked.validate()?;
        }
        // A grammar that does not parse is refused before anything is decoded.
        let mut grammar = match &request.constraint {
            Some(constraint) => Some(Grammar::new(&self.model.model, constraint)?),
            None => None,
        };
        let (prompt, open_reply) = self
            .model
            .tokenize_with_replies(&request.prompt, &self.replies)?;
        let n_ctx = self.ctx.n_ctx() as usize;
        self.check_prompt_fits(&prompt)?;
        let mut stats = GenerationStats {
            prompt_tokens: prompt.len() as u32,
            ..GenerationStats::default()
        };
        // A reply given ending in an end-of-generation token (an alternative
        // chosen there) is finished: nothing follows it.
        if let Some(open) = &open_reply {
            if open.given
                && open
                    .tokens
                    .last()
                    .is_some_and(|&t| self.model.model.vocab().is_eog(t))
            {
                return Ok((String::new(), StopReason::Eos, stats));
            }
        }

        let eval_started = Instant::now();
        let Some(reused) = self.evaluate_prompt(&prompt, request.reuse_prefix, cancelled)? else {
            stats.prompt_eval_ms = ms_since(eval_started);
            return Ok((String::new(), StopReason::Cancelled, stats));
        };
        stats.reused_tokens = reused as u32;
        stats.prompt_eval_ms = ms_since(eval_started);

        let mut sampler = build_sampler(&request.sampling, self.model.model.n_vocab());
        let mut utf8 = Utf8Stream::new();
        let mut stops = StopMatcher::new(&request.stop);
        let mut text = String::new();
        let mut sampled: Vec<LlamaToken> = Vec::new();
        let mut first_token_at = None;
        let mut last_token_at = Instant::now();
        // Logits of the last evaluated position are at the last batch index.
        let mut logits_index = self.batch.n_tokens() - 1;

        let reason = loop {
            if cancelled() {
                break StopReason::Cancelled;
            }
            let (token, prob, token_probs) = match (grammar.as_mut(), request.probs) {
                (Some(grammar), asked) => {
                    self.sample_with_grammar(&mut sampler, grammar, logits_index, asked)?
                }
                (None, Some(asked)) if asked.after_sampler => {
                    self.sample_reporting_the_draw(&mut sampler, logits_index, asked.top)?
                }
                (None, asked) => {
                    let token = sampler.sample(&self.ctx, logits_index);
                    let (prob, token_probs) = probs::of_sampled(
                        self.ctx.get_logits_ith(logits_index),
                        token.0,
                        asked,
                        |t| self.model.piece_text(t),
                    );
                    (token, prob, token_probs)
                }
            };
            last_token_at = Instant::now();
            if first_token_at.is_none() {
                first_token_at = Some(last_token_at);
                stats.ttft_ms = ms_between(started, last_token_at);
            }
            let vocab = self.model.model.vocab();
            if vocab.is_eog(token) && !request.ignore_eos {
                break StopReason::Eos;
            }
            stats.generated_tokens += 1;
            sampled.push(token);
            let piece = utf8.push(&vocab.token_to_piece(token, false, None));
            let (shown, stopped) = match stops.push(&piece) {
                StopOutcome::Continue(shown) => (shown, false),
                StopOutcome::Stopped(shown) => (shown, true),
            };
            text.push_str(&shown);
            emit(Event::Token {
                id: request.id,
                text: shown,
                token: token.0,
                prob,
                // The token is decoded next; it counts as in the context.
                context_used: self.cached.len() as u32 + 1,
                probs: token_probs,
            });
            if stopped {
                break StopReason::StopString;
            }
            if request.max_tokens > 0 && stats.generated_tokens >= request.max_tokens {
                break StopReason::MaxTokens;
            }
            if self.cached.len() >= n_ctx {
                break StopReason::ContextFull;
            }
            self.decode_one(token)?;
            logits_index = 0;
        };

        if reason != StopReason::StopString {
            let tail = utf8.finish();
            let mut rest = match stops.push(&tail) {
                StopOutcome::Continue(shown) | StopOutcome::Stopped(shown) => shown,
            };
            rest.push_str(&stops.finish());
            if !rest.is_empty() {
                text.push_str(&rest);
                emit(Event::Token {
                    id: request.id,
                    text: rest,
                    token: -1,
                    prob: 0.0,
                    context_used: self.cached.len() as u32,
                    probs: None,
                });
            }
        }
        if let Some(first) = first_token_at {
            stats.generation_ms = ms_between(first, last_token_at);
        }
        stats.grammar = grammar.as_mut().map(|g| grammar_end(g, reason));
        // A continued reply is remembered whole: the next turn sends it whole.
        let (whole_text, whole_tokens) = match open_reply {
            Some(open) => (
                open.text + &text,
                open.tokens.into_iter().chain(sampled).collect(),
            ),
            None => (text.clone(), sampled),
        };
        // Only a reply whose tokens spell exactly its text can stand in for it
        // (not one cut by a stop string, nor one with invalid UTF-8).
        if reason != StopReason::StopString
            && !text.is_empty()
            && self.model.render_plain(&whole_tokens) == whole_text
        {
            if self.replies.len() == REMEMBERED_REPLIES {
                self.replies.pop_front();
            }
            self.replies.push_back(Reply {
                text: whole_text,
                tokens: whole_tokens,
            });
        }
        Ok((text, reason, stats))
    }

    /// What `LlamaSampler::sample` does (every token as a candidate, the
    /// chain applied, the selected token accepted), keeping the candidates
    /// the chain left to report the distribution it drew from. The same
    /// calls in the same order: the RNG, and so the text, are unchanged.
    fn sample_reporting_the_draw(
        &self,
        sampler: &mut LlamaSampler,
        logits_index: i32,
        top: u8,
    ) -> Result<(LlamaToken, f32, Option<probs::TokenProbs>), String> {
        let mut candidates =
            LlamaTokenDataArray::from_iter(self.ctx.candidates_ith(logits_index), false);
        sampler.apply(&mut candidates);
        let token = candidates
            .selected_token()
            .ok_or_else(|| "the sampler selected no token".to_string())?;
        sampler.accept(token);
        let left: Vec<(i32, f32, f32)> = candidates
            .data
            .iter()
            .map(|d| (d.id().0, d.logit(), d.p()))
            .collect();
        let prob = probs::token_probability(self.ctx.get_logits_ith(logits_index), token.0);
        let drawn = probs::after_sampler(&left, token.0, top, |t| self.model.piece_text(t));
        Ok((token, prob, drawn))
    }

    /// Samples under a grammar (see [`guided`]). Probabilities before the
    /// sampler are the model's raw ones as without a grammar; after the
    /// sampler they are the distribution the token was drawn from: the
    /// chain's when its first draw was allowed, the grammar-masked one when
    /// it had to draw again.
    fn sample_with_grammar(
        &self,
        sampler: &mut LlamaSampler,
        grammar: &mut Grammar,
        logits_index: i32,
        asked: Option<probs::ProbsRequest>,
    ) -> Result<(LlamaToken, f32, Option<probs::TokenProbs>), String> {
        let vocab = self.model.model.vocab();
        let drawn = guided::sample(sampler, grammar, &self.ctx, logits_index, |t| {
            vocab.is_eog(t)
        })?;
        let token = drawn.token;
        let logits = self.ctx.get_logits_ith(logits_index);
        match asked {
            Some(asked) if asked.after_sampler => {
                let left: Vec<(i32, f32, f32)> = drawn
                    .candidates
                    .data
                    .iter()
                    .map(|d| (d.id().0, d.logit(), d.p()))
                    .collect();
                let prob = probs::token_probability(logits, token.0);
                let after =
                    probs::after_sampler(&left, token.0, asked.top, |t| self.model.piece_text(t));
                Ok((token, prob, after))
            }
            asked => {
                let (prob, token_probs) =
                    probs::of_sampled(logits, token.0, asked, |t| self.model.piece_text(t));
                Ok((token, prob, token_probs))
            }
        }
    }

    /// Brings the KV cache to hold exactly `prompt`, decoding only what is not
    /// already there. Returns how many tokens were reused, or None if the
    /// request was cancelled first (the cache then holds what was decoded).
    fn evaluate_prompt(
        &mut self,
        prompt: &[LlamaToken],
        reuse: bool,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<usize>, String> {
        let mut keep = if reuse {
            common_prefix_len(&self.cached, prompt)
        } else {
            0
        };
        // The last prompt token is always decoded again: its logits are needed.
        keep = keep.min(prompt.len() - 1);
        self.truncate_cache(keep);
        let keep = self.cached.len();

        let pending = &prompt[keep..];
        let chunks = pending.chunks(self.n_batch);
        let n_chunks = chunks.len();
        for (index, chunk) in chunks.enumerate() {
            if cancelled() {
                return Ok(None);
            }
            self.batch.clear();
            let start = self.cached.len();
            for (offset, token) in chunk.iter().enumerate() {
                let is_last = index + 1 == n_chunks && offset + 1 == chunk.len();
                self.batch
                    .add(*token, (start + offset) as i32, &[0], is_last)
                    .map_err(|e| format!("cannot build a batch: {e}"))?;
            }
            self.decode_batch()?;
            self.cached.extend_from_slice(chunk);
        }
        Ok(Some(keep))
    }

    fn truncate_cache(&mut self, keep: usize) {
        if keep == self.cached.len() {
            return;
        }
        let removed = self
            .ctx
            .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
            .unwrap_or(false);
        if removed {
            self.cached.truncate(keep);
        } else {
            // Some memory types cannot drop a tail; start over instead.
            self.ctx.clear_kv_cache();
            self.cached.clear();
        }
    }

    fn decode_one(&mut self, token: LlamaToken) -> Result<(), String> {
        self.batch.clear();
        self.batch
            .add(token, self.cached.len() as i32, &[0], true)
            .map_err(|e| format!("cannot build a batch: {e}"))?;
        self.decode_batch()?;
        self.cached.push(token);
        Ok(())
    }

    fn decode_batch(&mut self) -> Result<(), String> {
        self.ctx.decode(&mut self.batch).map_err(|e| {
            // The cache may be partly written; forget it rather than trust it.
            self.ctx.clear_kv_cache();
            self.cached.clear();
            format!("llama.cpp failed to decode: {e}")
        })
    }
}

/// Where a constrained generation that stopped for `reason` left its
/// grammar. An end-of-generation token is only drawn when the grammar
/// allows it, that is when it is complete; a stop string cuts the text
/// the grammar saw, so that output does not match whatever the grammar's
/// state; otherwise the grammar is asked.
pub(super) fn grammar_end(grammar: &mut Grammar, reason: StopReason) -> GrammarEnd {
    match reason {
        StopReason::Eos => GrammarEnd::Complete,
        StopReason::StopString => GrammarEnd::Unfinished,
        _ => grammar.end(),
    }
}

pub fn flash_attention_policy(setting: Option<bool>) -> llama_cpp_sys_2::llama_flash_attn_type {
    match setting {
        None => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
        Some(true) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        Some(false) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
    }
}

pub(super) fn build_sampler(params: &SamplingParams, n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    if (params.repeat_penalty - 1.0).abs() > f32::EPSILON {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            params.repeat_last_n,
            params.repeat_penalty,
            0.0,
            0.0,
        ));
    }
    if params.is_greedy() {
        chain.push(LlamaSampler::greedy());
    } else {
        if params.top_k > 0 {
            chain.push(LlamaSampler::top_k(params.top_k));
        }
        if params.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(params.top_p, 1));
        }
        if params.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(params.min_p, 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        chain.push(LlamaSampler::dist(params.seed));
    }
    LlamaSampler::chain_simple(chain)
}

/// A prompt must have a token, and leave room in a context of `n_ctx`
/// for one more.
pub(super) fn check_prompt_fits(prompt: &[LlamaToken], n_ctx: usize) -> Result<(), String> {
    if prompt.is_empty() {
        return Err("the prompt is empty".to_string());
    }
    if prompt.len() >= n_ctx {
        return Err(super::protocol::prompt_too_long_message(
            prompt.len(),
            n_ctx,
        ));
    }
    Ok(())
}

/// What a request with a token id outside the vocabulary is told.
pub fn bad_token_message(id: i32, n_vocab: i32) -> String {
    format!(
        "token id {id} is not in the model's vocabulary (0 to {})",
        n_vocab - 1
    )
}

pub fn common_prefix_len(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

pub(super) fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

pub(super) fn ms_between(start: Instant, end: Instant) -> f64 {
    end.duration_since(start).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix() {
        let a: Vec<LlamaToken> = [1, 2, 3].map(LlamaToken).to_vec();
        let b: Vec<LlamaToken> = [1, 2, 4, 5].map(LlamaToken).to_vec();
        assert_eq!(common_prefix_len(&a, &b), 2);
        assert_eq!(common_prefix_len(&a, &[]), 0);
    }
}
