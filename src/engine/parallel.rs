//! Many requests decoded together: each runs as its own sequence of one
//! llama.cpp context (unified KV cache), their tokens go through llama.cpp in
//! shared batches, and a finished sequence's slot takes the next request. A
//! prompt that starts like a sequence already in the cache (the same system
//! prompt and few-shot examples) copies that prefix (`seq_cp`, metadata
//! only) instead of decoding it again. Experiments, beams and side-by-side
//! runs build on this.

use std::collections::VecDeque;
use std::time::Instant;

use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::guided::{self, Grammar};
use super::probs::{self, ProbsRequest, TokenProbs};
use super::protocol::{
    Constraint, Event, GenerateRequest, GenerationStats, GrammarEnd, Prompt, StopReason,
};
use super::runner::{
    build_sampler, check_prompt_fits, common_prefix_len, ms_between, ms_since, Outcome, Session,
};
use super::sampling::SamplingParams;
use super::stop::{StopMatcher, StopOutcome};
use super::utf8::Utf8Stream;

/// The most sequences one context is created for (llama.cpp aborts on a
/// sequence id beyond it).
pub const MAX_PARALLEL: u32 = 8;

/// What a batch of requests took, for throughput reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManyStats {
    pub requests: u32,
    pub parallel: u32,
    pub wall_ms: f64,
    /// Prompt tokens decoded (not copied from a shared prefix).
    pub prompt_tokens_decoded: u32,
    /// Prompt tokens taken from another sequence or the cache.
    pub prompt_tokens_shared: u32,
    pub generated_tokens: u32,
    /// llama.cpp decode calls.
    pub decodes: u32,
}

/// What the scheduler needs from a model and its context: llama.cpp's in
/// the worker ([`Session`]), a scripted toy model in tests
/// ([`super::scripted::ToyBackend`]). Its calls mirror llama.cpp's: one
/// batch is built with `batch_add` and run with `decode`, then sampled at
/// the batch indices that asked for logits.
pub trait Backend {
    /// One request's sampling state (penalties, RNG).
    type Sampler;
    /// The context size in tokens (all sequences together).
    fn n_ctx(&self) -> usize;
    /// The most tokens one decode may take.
    fn n_batch(&self) -> usize;
    /// Sequences the context was created for.
    fn n_seq_max(&self) -> u32;
    /// The prompt's tokens.
    fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, String>;
    fn sampler(&self, params: &SamplingParams) -> Self::Sampler;
    /// A sampler whose output must follow `constraint` (its own grammar
    /// state: one per sequence); refused with the reason when the grammar
    /// does not parse or the schema does not convert.
    fn constrained_sampler(
        &self,
        _params: &SamplingParams,
        constraint: &Constraint,
    ) -> Result<Self::Sampler, String> {
        Err(format!(
            "{}: this engine cannot constrain output",
            constraint.source()
        ))
    }
    /// Samples (and accepts) a token from the logits at `batch_index` of
    /// the last decode; fails only when a grammar allows no token.
    fn sample(
        &mut self,
        sampler: &mut Self::Sampler,
        batch_index: i32,
    ) -> Result<LlamaToken, String>;
    /// Where a constrained sampler's grammar stands after a generation
    /// that stopped for `reason`; None without a constraint.
    fn grammar_end(&self, _sampler: &mut Self::Sampler, _reason: StopReason) -> Option<GrammarEnd> {
        None
    }
    /// The sampled token's probability (raw softmax at temperature 1) and
    /// its full facts, from the logits at `batch_index`, when `asked`;
    /// otherwise (0, None): batch runs do not pay for a softmax per token
    /// unless they want it.
    fn token_probs(
        &self,
        batch_index: i32,
        token: LlamaToken,
        asked: Option<ProbsRequest>,
    ) -> (f32, Option<TokenProbs>);
    fn is_eog(&self, token: LlamaToken) -> bool;
    /// The raw logits (one per vocabulary token) at `batch_index` of the
    /// last decode, which must have asked for them. Beam search ranks the
    /// whole vocabulary, so it needs the row, not a sampled token.
    fn logits(&self, batch_index: i32) -> Vec<f32>;
    /// The token's bytes as generation shows them (special tokens not rendered).
    fn piece(&self, token: LlamaToken) -> Vec<u8>;
    fn batch_clear(&mut self);
    fn batch_add(
        &mut self,
        token: LlamaToken,
        position: i32,
        seq: i32,
        logits: bool,
    ) -> Result<(), String>;
    fn batch_len(&self) -> i32;
    fn decode(&mut self) -> Result<(), String>;
    /// Removes positions `from..to` (None: from the start / to the end) of
    /// `seq`; false if it cannot.
    fn clear_seq(&mut self, seq: i32, from: Option<u32>, to: Option<u32>) -> bool;
    /// Makes `dst` hold `src`'s positions `from..to` too.
    fn copy_seq(&mut self, src: i32, dst: i32, from: Option<u32>, to: Option<u32>) -> bool;
    /// Empties every sequence.
    fn clear_all(&mut self);
    /// The tokens sequence 0 holds for single requests (it may share its
    /// prefix with parallel ones), handed over to the scheduler.
    fn take_cached(&mut self) -> Vec<LlamaToken>;
    /// What sequence 0 holds after parallel requests.
    fn put_cached(&mut self, tokens: Vec<LlamaToken>);
}

/// One sequence's sampler on llama.cpp: the chain, and the grammar of a
/// constrained request.
pub struct SeqSampler {
    chain: LlamaSampler,
    grammar: Option<Grammar>,
}

impl Backend for Session<'_> {
    type Sampler = SeqSampler;

    fn n_ctx(&self) -> usize {
        self.ctx.n_ctx() as usize
    }

    fn n_batch(&self) -> usize {
        self.n_batch
    }

    fn n_seq_max(&self) -> u32 {
        Session::n_seq_max(self)
    }

    fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, String> {
        self.tokenize(prompt)
    }

    fn sampler(&self, params: &SamplingParams) -> SeqSampler {
        SeqSampler {
            chain: build_sampler(params, self.model.model.n_vocab()),
            grammar: None,
        }
    }

    fn constrained_sampler(
        &self,
        params: &SamplingParams,
        constraint: &Constraint,
    ) -> Result<SeqSampler, String> {
        Ok(SeqSampler {
            chain: build_sampler(params, self.model.model.n_vocab()),
            grammar: Some(Grammar::new(&self.model.model, constraint)?),
        })
    }

    #[inline]
    fn sample(&mut self, sampler: &mut SeqSampler, batch_index: i32) -> Result<LlamaToken, String> {
        match sampler.grammar.as_mut() {
            None => Ok(sampler.chain.sample(&self.ctx, batch_index)),
            Some(grammar) => {
                let vocab = self.model.model.vocab();
                guided::sample(&mut sampler.chain, grammar, &self.ctx, batch_index, |t| {
                    vocab.is_eog(t)
                })
                .map(|drawn| drawn.token)
            }
        }
    }

    fn grammar_end(&self, sampler: &mut SeqSampler, reason: StopReason) -> Option<GrammarEnd> {
        sampler
            .grammar
            .as_mut()
            .map(|grammar| super::runner::grammar_end(grammar, reason))
    }

    fn token_probs(
        &self,
        batch_index: i32,
        token: LlamaToken,
        asked: Option<ProbsRequest>,
    ) -> (f32, Option<TokenProbs>) {
        if asked.is_none() {
            return (0.0, None);
        }
        probs::of_sampled(self.ctx.get_logits_ith(batch_index), token.0, asked, |t| {
            self.model.piece_text(t)
        })
    }

    #[inline]
    fn is_eog(&self, token: LlamaToken) -> bool {
        self.model.model.vocab().is_eog(token)
    }

    fn logits(&self, batch_index: i32) -> Vec<f32> {
        self.ctx.get_logits_ith(batch_index).to_vec()
    }

    #[inline]
    fn piece(&self, token: LlamaToken) -> Vec<u8> {
        self.model.model.vocab().token_to_piece(token, false, None)
    }

    #[inline]
    fn batch_clear(&mut self) {
        self.batch.clear();
    }

    #[inline]
    fn batch_add(
        &mut self,
        token: LlamaToken,
        position: i32,
        seq: i32,
        logits: bool,
    ) -> Result<(), String> {
        self.batch
            .add(token, position, &[seq], logits)
            .map_err(|e| e.to_string())
    }

    #[inline]
    fn batch_len(&self) -> i32 {
        self.batch.n_tokens()
    }

    fn decode(&mut self) -> Result<(), String> {
        self.ctx.decode(&mut self.batch).map_err(|e| e.to_string())
    }

    fn clear_seq(&mut self, seq: i32, from: Option<u32>, to: Option<u32>) -> bool {
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), from, to)
            .unwrap_or(false)
    }

    fn copy_seq(&mut self, src: i32, dst: i32, from: Option<u32>, to: Option<u32>) -> bool {
        self.ctx.copy_kv_cache_seq(src, dst, from, to).is_ok()
    }

    fn clear_all(&mut self) {
        self.ctx.clear_kv_cache();
    }

    fn take_cached(&mut self) -> Vec<LlamaToken> {
        std::mem::take(&mut self.cached)
    }

    fn put_cached(&mut self, tokens: Vec<LlamaToken>) {
        self.cached = tokens;
    }
}

/// One request in flight in a slot.
struct Job<S> {
    index: usize,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens before this one are in the slot's sequence.
    next_prompt: usize,
    sampler: S,
    utf8: Utf8Stream,
    stops: StopMatcher,
    text: String,
    stats: GenerationStats,
    started: Instant,
    first_token_at: Option<Instant>,
    last_token_at: Instant,
    /// A sampled token not yet decoded.
    pending: Option<LlamaToken>,
    /// Where this job's logits are in the batch just decoded.
    logits_at: Option<i32>,
    /// Cells this job may still need: its prompt and its token budget.
    reserved: usize,
}

/// A sequence of the context and what it holds.
struct Slot<S> {
    seq: i32,
    /// Tokens in this sequence's KV cache, in position order.
    tokens: Vec<LlamaToken>,
    job: Option<Job<S>>,
}

impl Session<'_> {
    /// [`generate_many`] on this context.
    pub fn generate_many(
        &mut self,
        requests: &[GenerateRequest],
        parallel: u32,
        cancelled: &dyn Fn(u64) -> bool,
        emit: &mut dyn FnMut(Event),
    ) -> (Vec<Outcome>, ManyStats) {
        generate_many(self, requests, parallel, cancelled, emit)
    }
}

/// Runs `requests` on `backend` with at most `parallel` of them at once,
/// sending their `Token` events through `emit` as they are sampled and
/// each one's `Done` or `Error` as it ends. Returns one outcome per
/// request, in order, and the batch's figures. `cancelled(id)` is asked
/// for each request between decodes.
pub fn generate_many<B: Backend>(
    backend: &mut B,
    requests: &[GenerateRequest],
    parallel: u32,
    cancelled: &dyn Fn(u64) -> bool,
    emit: &mut dyn FnMut(Event),
) -> (Vec<Outcome>, ManyStats) {
    Scheduler { backend }.run(requests, parallel, cancelled, emit)
}

/// The scheduling, written against a [`Backend`].
struct Scheduler<'b, B> {
    backend: &'b mut B,
}

impl<B: Backend> Scheduler<'_, B> {
    fn run(
        &mut self,
        requests: &[GenerateRequest],
        parallel: u32,
        cancelled: &dyn Fn(u64) -> bool,
        emit: &mut dyn FnMut(Event),
    ) -> (Vec<Outcome>, ManyStats) {
        let started = Instant::now();
        // Every sequence's next token must fit one batch.
        let parallel = parallel
            .min(self.backend.n_seq_max())
            .min(self.backend.n_batch() as u32)
            .clamp(1, MAX_PARALLEL);
        let n_ctx = self.backend.n_ctx();
        let mut outcomes: Vec<Option<Outcome>> = requests.iter().map(|_| None).collect();
        let mut stats = ManyStats {
            requests: requests.len() as u32,
            parallel,
            ..ManyStats::default()
        };
        // Sequence 0 is the single-request cache: it may share its prefix too.
        let mut slots: Vec<Slot<B::Sampler>> = (0..parallel as i32)
            .map(|seq| Slot {
                seq,
                tokens: if seq == 0 {
                    self.backend.take_cached()
                } else {
                    Vec::new()
                },
                job: None,
            })
            .collect();
        for slot in &slots[1..] {
            self.remove_sequence(slot.seq);
        }
        let mut queue: VecDeque<usize> = (0..requests.len()).collect();
        // Each request's Done or Error goes out as soon as it ends, so the
        // client can save it while the others run.
        let mut announced = vec![false; requests.len()];
        let mut announce = |outcomes: &[Option<Outcome>], emit: &mut dyn FnMut(Event)| {
            for (index, outcome) in outcomes.iter().enumerate() {
                let Some(outcome) = outcome else { continue };
                if std::mem::replace(&mut announced[index], true) {
                    continue;
                }
                let id = requests[index].id;
                emit(match outcome {
                    Ok((text, reason, stats)) => Event::Done {
                        id,
                        text: text.clone(),
                        reason: *reason,
                        stats: stats.clone(),
                    },
                    Err(message) => Event::Error {
                        id: Some(id),
                        message: message.clone(),
                    },
                });
            }
        };

        loop {
            announce(&outcomes, emit);
            // Fill free slots while the cache has room for what they may need.
            while let Some(&index) = queue.front() {
                let Some(free) = slots.iter().position(|s| s.job.is_none()) else {
                    break;
                };
                let request = &requests[index];
                let prompt = match self.prepare(request) {
                    Ok(prompt) => prompt,
                    Err(message) => {
                        queue.pop_front();
                        outcomes[index] = Some(Err(message));
                        continue;
                    }
                };
                let budget = if request.max_tokens == 0 {
                    n_ctx
                } else {
                    request.max_tokens as usize
                };
                let reserved = (prompt.len() + budget).min(n_ctx);
                // Counted as if nothing were shared: a cell too many would
                // make the decode fail for every sequence in flight.
                let in_use = |slots: &[Slot<B::Sampler>]| -> usize {
                    slots
                        .iter()
                        .enumerate()
                        .map(|(i, s)| match &s.job {
                            Some(job) => job.reserved,
                            None if i == free => 0,
                            None => s.tokens.len(),
                        })
                        .sum()
                };
                if in_use(&slots) + reserved > n_ctx {
                    // Idle sequences kept for their prefixes go first.
                    for (i, slot) in slots.iter_mut().enumerate() {
                        if slot.job.is_none() && i != free && !slot.tokens.is_empty() {
                            self.backend.clear_seq(slot.seq, None, None);
                            slot.tokens.clear();
                        }
                    }
                }
                let busy = slots.iter().any(|s| s.job.is_some());
                if busy && in_use(&slots) + reserved > n_ctx {
                    break;
                }
                queue.pop_front();
                // A grammar that does not parse ends the request before
                // anything of it is decoded.
                let sampler = match &request.constraint {
                    None => self.backend.sampler(&request.sampling),
                    Some(constraint) => {
                        match self
                            .backend
                            .constrained_sampler(&request.sampling, constraint)
                        {
                            Ok(sampler) => sampler,
                            Err(message) => {
                                outcomes[index] = Some(Err(message));
                                continue;
                            }
                        }
                    }
                };
                let shared = self.share_prefix(&mut slots, free, &prompt);
                stats.prompt_tokens_shared += shared as u32;
                let now = Instant::now();
                slots[free].job = Some(Job {
                    index,
                    next_prompt: shared,
                    sampler,
                    utf8: Utf8Stream::new(),
                    stops: StopMatcher::new(&request.stop),
                    text: String::new(),
                    stats: GenerationStats {
                        prompt_tokens: prompt.len() as u32,
                        reused_tokens: shared as u32,
                        ..GenerationStats::default()
                    },
                    started: now,
                    first_token_at: None,
                    last_token_at: now,
                    pending: None,
                    logits_at: None,
                    reserved,
                    prompt,
                });
            }
            if slots.iter().all(|s| s.job.is_none()) {
                break;
            }

            // Cancelled requests end before the next decode.
            for slot in &mut slots {
                let cancel = slot
                    .job
                    .as_ref()
                    .is_some_and(|j| cancelled(requests[j.index].id));
                if cancel {
                    let mut job = slot.job.take().expect("checked");
                    let index = job.index;
                    job.stats.grammar = self
                        .backend
                        .grammar_end(&mut job.sampler, StopReason::Cancelled);
                    outcomes[index] = Some(Ok(finish(job, StopReason::Cancelled, emit, requests)));
                }
            }

            // One batch: every sampled token first (one each), then prompt
            // tokens in the room left.
            self.backend.batch_clear();
            let mut room = self.backend.n_batch();
            for slot in &mut slots {
                let Some(job) = slot.job.as_mut() else {
                    continue;
                };
                job.logits_at = None;
                if let Some(token) = job.pending.take() {
                    let at = self.backend.batch_len();
                    if let Err(e) =
                        self.backend
                            .batch_add(token, slot.tokens.len() as i32, slot.seq, true)
                    {
                        let job = slot.job.take().expect("checked");
                        outcomes[job.index] = Some(Err(format!("cannot build a batch: {e}")));
                        continue;
                    }
                    slot.tokens.push(token);
                    job.logits_at = Some(at);
                    room -= 1;
                }
            }
            for slot in &mut slots {
                let Some(job) = slot.job.as_mut() else {
                    continue;
                };
                if job.next_prompt >= job.prompt.len() || room == 0 {
                    continue;
                }
                let end = (job.next_prompt + room).min(job.prompt.len());
                for position in job.next_prompt..end {
                    let last = position + 1 == job.prompt.len();
                    let at = self.backend.batch_len();
                    // The batch was sized for n_batch tokens; `room` keeps within it.
                    let _ = self.backend.batch_add(
                        job.prompt[position],
                        position as i32,
                        slot.seq,
                        last,
                    );
                    slot.tokens.push(job.prompt[position]);
                    if last {
                        job.logits_at = Some(at);
                    }
                }
                stats.prompt_tokens_decoded += (end - job.next_prompt) as u32;
                room -= end - job.next_prompt;
                job.next_prompt = end;
            }
            if self.backend.batch_len() == 0 {
                continue;
            }
            stats.decodes += 1;
            if let Err(e) = self.backend.decode() {
                // The cache may be partly written: every sequence in flight
                // fails, and the cache is forgotten.
                for slot in &mut slots {
                    if let Some(job) = slot.job.take() {
                        outcomes[job.index] = Some(Err(format!("llama.cpp failed to decode: {e}")));
                    }
                    slot.tokens.clear();
                }
                self.backend.clear_all();
                continue;
            }

            // Sample for every job whose logits came out of this decode.
            for slot in &mut slots {
                let Some(job) = slot.job.as_mut() else {
                    continue;
                };
                let Some(at) = job.logits_at else { continue };
                let request = &requests[job.index];
                if job.first_token_at.is_none() && job.stats.prompt_eval_ms == 0.0 {
                    job.stats.prompt_eval_ms = ms_since(job.started);
                }
                let token = match self.backend.sample(&mut job.sampler, at) {
                    Ok(token) => token,
                    Err(message) => {
                        let job = slot.job.take().expect("checked");
                        outcomes[job.index] = Some(Err(message));
                        continue;
                    }
                };
                let (prob, token_probs) = self.backend.token_probs(at, token, request.probs);
                job.last_token_at = Instant::now();
                if job.first_token_at.is_none() {
                    job.first_token_at = Some(job.last_token_at);
                    job.stats.ttft_ms = ms_between(job.started, job.last_token_at);
                }
                let reason = if self.backend.is_eog(token) && !request.ignore_eos {
                    Some(StopReason::Eos)
                } else {
                    job.stats.generated_tokens += 1;
                    stats.generated_tokens += 1;
                    let piece = job.utf8.push(&self.backend.piece(token));
                    let (shown, stopped) = match job.stops.push(&piece) {
                        StopOutcome::Continue(shown) => (shown, false),
                        StopOutcome::Stopped(shown) => (shown, true),
                    };
                    job.text.push_str(&shown);
                    emit(Event::Token {
                        id: request.id,
                        text: shown,
                        token: token.0,
                        prob,
                        context_used: slot.tokens.len() as u32 + 1,
                        probs: token_probs,
                    });
                    if stopped {
                        Some(StopReason::StopString)
                    } else if request.max_tokens > 0
                        && job.stats.generated_tokens >= request.max_tokens
                    {
                        Some(StopReason::MaxTokens)
                    } else if slot.tokens.len() >= n_ctx {
                        Some(StopReason::ContextFull)
                    } else {
                        job.pending = Some(token);
                        None
                    }
                };
                if let Some(reason) = reason {
                    let mut job = slot.job.take().expect("checked");
                    job.stats.grammar = self.backend.grammar_end(&mut job.sampler, reason);
                    let index = job.index;
                    outcomes[index] = Some(Ok(finish(job, reason, emit, requests)));
                }
            }
        }

        announce(&outcomes, emit);
        // Sequence 0 stays the single-request cache; the others are freed.
        self.backend
            .put_cached(std::mem::take(&mut slots[0].tokens));
        for slot in &slots[1..] {
            self.remove_sequence(slot.seq);
        }
        stats.wall_ms = ms_since(started);
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err("the request was not run".to_string())))
            .collect();
        (outcomes, stats)
    }

    /// The request's prompt tokens, checked against the context.
    fn prepare(&self, request: &GenerateRequest) -> Result<Vec<LlamaToken>, String> {
        request.sampling.validate()?;
        if let Some(asked) = &request.probs {
            asked.validate()?;
            if asked.after_sampler {
                return Err("probabilities after the sampler are reported for single \
                            requests only, not in a parallel batch"
                    .to_string());
            }
        }
        let prompt = self.backend.prompt_tokens(&request.prompt)?;
        check_prompt_fits(&prompt, self.backend.n_ctx())?;
        Ok(prompt)
    }

    /// Makes slot `free`'s sequence hold the longest prefix of `prompt` any
    /// sequence holds (copied from it when it is another), keeping at least
    /// the last prompt token to decode (its logits are needed). Returns the
    /// prefix length.
    fn share_prefix(
        &mut self,
        slots: &mut [Slot<B::Sampler>],
        free: usize,
        prompt: &[LlamaToken],
    ) -> usize {
        let limit = prompt.len() - 1;
        let (donor, shared) = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (i, common_prefix_len(&s.tokens, prompt).min(limit)))
            // Prefer the free slot itself on a tie: nothing to copy.
            .max_by_key(|&(i, n)| (n, i == free))
            .unwrap_or((free, 0));
        let seq = slots[free].seq;
        if donor == free {
            let kept = self.backend.clear_seq(seq, Some(shared as u32), None);
            if kept {
                slots[free].tokens.truncate(shared);
                return shared;
            }
            self.remove_sequence(seq);
            slots[free].tokens.clear();
            return 0;
        }
        self.remove_sequence(seq);
        let copied = shared > 0
            && self
                .backend
                .copy_seq(slots[donor].seq, seq, Some(0), Some(shared as u32));
        slots[free].tokens = if copied {
            prompt[..shared].to_vec()
        } else {
            Vec::new()
        };
        slots[free].tokens.len()
    }

    fn remove_sequence(&mut self, seq: i32) {
        self.backend.clear_seq(seq, None, None);
    }
}

/// Ends a job: flushes held-back text and fills in its figures.
fn finish<S>(
    mut job: Job<S>,
    reason: StopReason,
    emit: &mut dyn FnMut(Event),
    requests: &[GenerateRequest],
) -> (String, StopReason, GenerationStats) {
    if reason != StopReason::StopString {
        let tail = job.utf8.finish();
        let mut rest = match job.stops.push(&tail) {
            StopOutcome::Continue(shown) | StopOutcome::Stopped(shown) => shown,
        };
        rest.push_str(&job.stops.finish());
        if !rest.is_empty() {
            job.text.push_str(&rest);
            emit(Event::Token {
                id: requests[job.index].id,
                text: rest,
                token: -1,
                prob: 0.0,
                probs: None,
                context_used: 0,
            });
        }
    }
    if let Some(first) = job.first_token_at {
        job.stats.generation_ms = ms_between(first, job.last_token_at);
    }
    (job.text, reason, job.stats)
}

#[cfg(test)]
mod tests {
    //! The scheduling against the toy model of `scripted`: every reply must
    //! be the one the toy model gives the request decoded alone.

    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::engine::scripted::{self, ToyBackend};

    fn request(id: u64, text: &str, max_tokens: u32) -> GenerateRequest {
        GenerateRequest {
            id,
            prompt: Prompt::Raw {
                text: text.to_string(),
            },
            sampling: SamplingParams::greedy(),
            max_tokens,
            stop: Vec::new(),
            reuse_prefix: true,
            ignore_eos: false,
            probs: None,
            constraint: None,
        }
    }

    /// The toy model's reply to `request` decoded alone.
    fn alone(request: &GenerateRequest) -> (String, StopReason) {
        scripted::reply(
            &request.prompt,
            &request.sampling,
            request.max_tokens,
            &request.stop,
        )
    }

    struct Run {
        outcomes: Vec<Outcome>,
        stats: ManyStats,
        events: Vec<Event>,
    }

    fn run_with(
        toy: &mut ToyBackend,
        requests: &[GenerateRequest],
        parallel: u32,
        cancelled: &dyn Fn(u64) -> bool,
    ) -> Run {
        let mut events = Vec::new();
        let (outcomes, stats) =
            generate_many(toy, requests, parallel, cancelled, &mut |e| events.push(e));
        Run {
            outcomes,
            stats,
            events,
        }
    }

    fn run(toy: &mut ToyBackend, requests: &[GenerateRequest], parallel: u32) -> Run {
        run_with(toy, requests, parallel, &|_| false)
    }

    fn text(outcome: &Outcome) -> (String, StopReason) {
        let (text, reason, _) = outcome.as_ref().expect("the request answers");
        (text.clone(), *reason)
    }

    /// Every request answered as if alone, and the streamed pieces and the
    /// Done events say the same.
    fn assert_as_if_alone(requests: &[GenerateRequest], run: &Run) {
        let mut streamed: HashMap<u64, String> = HashMap::new();
        let mut done: HashMap<u64, String> = HashMap::new();
        for event in &run.events {
            match event {
                Event::Token { id, text, .. } => streamed.entry(*id).or_default().push_str(text),
                Event::Done { id, text, .. } => {
                    assert!(
                        done.insert(*id, text.clone()).is_none(),
                        "one Done for {id}"
                    );
                }
                _ => {}
            }
        }
        for (request, outcome) in requests.iter().zip(&run.outcomes) {
            assert_eq!(text(outcome), alone(request), "request {}", request.id);
            let answer = &text(outcome).0;
            assert_eq!(
                done.get(&request.id),
                Some(answer),
                "Done of {}",
                request.id
            );
            let pieces = streamed.get(&request.id).cloned().unwrap_or_default();
            assert_eq!(&pieces, answer, "the pieces of {}", request.id);
        }
    }

    /// Sequences whose tokens a decode carried.
    fn sequences(call: &scripted::DecodeCall) -> BTreeSet<i32> {
        call.batch.iter().map(|e| e.seq).collect()
    }

    fn done_order(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Done { id, .. } | Event::Error { id: Some(id), .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn slots_are_reused_as_sequences_finish() {
        let lengths = [3usize, 7, 1, 4, 6, 2, 5];
        let requests: Vec<_> = lengths
            .iter()
            .enumerate()
            .map(|(i, n)| request(i as u64 + 1, &format!("{i} question eos={n}"), 32))
            .collect();
        let mut toy = ToyBackend::new(4096, 512, 8);
        // (With max_tokens 0 a request reserves the whole context and runs
        // alone: see the admission test.)
        let run = run(&mut toy, &requests, 3);
        assert_as_if_alone(&requests, &run);
        // A request holds its slot for its prompt's decode and one decode
        // per generated token (the EOS is not decoded); the next request
        // takes the first slot that frees.
        let mut free_at = [0usize; 3];
        for n in lengths {
            let slot = (0..3).min_by_key(|&s| (free_at[s], s)).unwrap();
            free_at[slot] += n + 1;
        }
        let makespan = *free_at.iter().max().unwrap();
        assert_eq!(run.stats.decodes as usize, makespan, "{:?}", run.stats);
        assert_eq!(toy.decodes.len(), makespan);
        assert_eq!(run.stats.parallel, 3);
        assert_eq!(
            run.stats.generated_tokens as usize,
            lengths.iter().sum::<usize>()
        );
        for call in &toy.decodes {
            assert!(sequences(call).iter().all(|&s| (0..3).contains(&s)));
            assert!(!call.failed);
        }
        // Three slots busy until the queue ran out.
        assert_eq!(sequences(&toy.decodes[0]).len(), 3);
        assert_eq!(sequences(&toy.decodes[makespan - 1]).len(), 1);
    }

    #[test]
    fn done_events_come_in_the_order_requests_end() {
        let requests = vec![
            request(1, "a eos=9", 32),
            request(2, "b eos=2", 32),
            request(3, "c eos=5", 32),
            request(4, "d eos=1", 32),
        ];
        let mut toy = ToyBackend::new(4096, 512, 8);
        let run = run(&mut toy, &requests, 4);
        assert_as_if_alone(&requests, &run);
        assert_eq!(done_order(&run.events), [4, 2, 3, 1]);
        // Each Done goes out as its request ends, before the others' later tokens.
        let last_token_of_1 = run
            .events
            .iter()
            .rposition(|e| matches!(e, Event::Token { id: 1, .. }))
            .unwrap();
        let done_of_4 = run
            .events
            .iter()
            .position(|e| matches!(e, Event::Done { id: 4, .. }))
            .unwrap();
        assert!(done_of_4 < last_token_of_1);
    }

    #[test]
    fn a_prefix_in_the_cache_is_copied_not_decoded_again() {
        let system = "You are a toy. Answer briefly, please. ";
        let prefix = system.len();
        let questions = ["alpha eos=4", "bravo eos=6", "charlie eos=3", "delta eos=5"];
        let mut toy = ToyBackend::new(4096, 512, 8);
        // One request first leaves its sequence in the cache (sequence 0).
        let first = vec![request(1, &format!("{system}zulu eos=2"), 32)];
        let warm = run(&mut toy, &first, 1);
        assert_as_if_alone(&first, &warm);
        assert_eq!(warm.stats.prompt_tokens_shared, 0);
        let calls_before = toy.decodes.len();

        let requests: Vec<_> = questions
            .iter()
            .enumerate()
            .map(|(i, q)| request(i as u64 + 2, &format!("{system}{q}"), 32))
            .collect();
        let run = run(&mut toy, &requests, 4);
        assert_as_if_alone(&requests, &run);
        let prompt_tokens: usize = requests
            .iter()
            .map(|r| scripted::tokenize(&r.prompt).len())
            .sum();
        assert_eq!(run.stats.prompt_tokens_shared as usize, 4 * prefix);
        assert_eq!(
            run.stats.prompt_tokens_decoded as usize,
            prompt_tokens - 4 * prefix
        );
        for (request, outcome) in requests.iter().zip(&run.outcomes) {
            let (_, _, stats) = outcome.as_ref().unwrap();
            assert_eq!(
                stats.reused_tokens as usize, prefix,
                "request {}",
                request.id
            );
        }
        // No decode carried a token of the prefix.
        for call in &toy.decodes[calls_before..] {
            assert!(
                call.batch.iter().all(|e| e.position as usize >= prefix),
                "{call:?}"
            );
        }
    }

    #[test]
    fn a_prefix_is_decoded_once_per_sequence_that_starts_cold() {
        // Requests admitted together find nothing in the cache: each
        // decodes the prefix. Later ones copy it from a finished sequence.
        let system = "Shared instructions for every request. ";
        let prefix = system.len();
        let questions = ["a eos=3", "b eos=5", "c eos=2", "d eos=4", "e eos=1"];
        let requests: Vec<_> = questions
            .iter()
            .enumerate()
            .map(|(i, q)| request(i as u64 + 1, &format!("{system}{q}"), 32))
            .collect();
        let mut toy = ToyBackend::new(4096, 512, 8);
        let run = run(&mut toy, &requests, 2);
        assert_as_if_alone(&requests, &run);
        assert_eq!(run.stats.prompt_tokens_shared as usize, 3 * prefix);
        let prefix_tokens_decoded = toy
            .decodes
            .iter()
            .flat_map(|c| &c.batch)
            .filter(|e| (e.position as usize) < prefix)
            .count();
        assert_eq!(prefix_tokens_decoded, 2 * prefix);
        assert!(toy.decodes[0].batch.len() >= 2 * prefix);
    }

    #[test]
    fn admission_keeps_the_cells_reserved_within_a_small_context() {
        // Each request may need its prompt (8 tokens) and 20 more: two fit
        // in 64 cells, three do not.
        let requests: Vec<_> = (0..6)
            .map(|i| request(i + 1, &format!("q{i} eos={}", 3 + i), 20))
            .collect();
        let mut toy = ToyBackend::new(64, 16, 4);
        let run = run(&mut toy, &requests, 4);
        assert_as_if_alone(&requests, &run);
        assert!(toy.decodes.iter().all(|c| !c.failed && c.cells <= 64));
        let most = toy.decodes.iter().map(|c| sequences(c).len()).max();
        assert_eq!(most, Some(2), "admission, not the 4 slots, limited it");

        // A request that may take the whole context runs alone.
        let requests = vec![
            request(10, "x eos=2", 8),
            request(11, "whole eos=3", 0),
            request(12, "y eos=2", 8),
        ];
        let run = run_with(&mut toy, &requests, 4, &|_| false);
        assert_as_if_alone(&requests, &run);
        let calls = &toy.decodes[toy.decodes.len() - run.stats.decodes as usize..];
        assert!(calls.iter().all(|c| !c.failed && c.cells <= 64));
        let whole_started = calls
            .iter()
            .position(|c| c.batch.iter().any(|e| e.token == LlamaToken(b'w' as i32)))
            .unwrap();
        assert!(calls.iter().all(|c| c.cells <= 64));
        // It waited for the first to end, and the third waited for it.
        let seqs_with_whole = sequences(&calls[whole_started]);
        assert_eq!(seqs_with_whole.len(), 1, "{:?}", calls[whole_started]);
        for call in &calls[whole_started..whole_started + 4] {
            assert_eq!(sequences(call).len(), 1, "{call:?}");
        }
    }

    #[test]
    fn a_prompt_that_cannot_fit_fails_alone() {
        let long = "z".repeat(70);
        let requests = vec![
            request(1, "first eos=3", 4),
            request(2, &long, 4),
            request(3, "third eos=2", 4),
        ];
        let mut toy = ToyBackend::new(64, 16, 2);
        let run = run(&mut toy, &requests, 2);
        assert_eq!(
            run.outcomes[1].as_ref().unwrap_err(),
            &crate::engine::protocol::prompt_too_long_message(70, 64)
        );
        for i in [0, 2] {
            assert_eq!(text(&run.outcomes[i]), alone(&requests[i]));
        }
        assert!(run
            .events
            .iter()
            .any(|e| matches!(e, Event::Error { id: Some(2), .. })));
        assert!(toy.decodes.iter().all(|c| !c.failed));
        // An empty prompt too.
        let run = run_with(&mut toy, &[request(4, "", 4)], 2, &|_| false);
        assert_eq!(run.outcomes[0].as_ref().unwrap_err(), "the prompt is empty");
    }

    #[test]
    fn cancelling_one_request_keeps_its_text_so_far_and_the_others_run_on() {
        let requests = vec![
            request(1, "one eos=6", 32),
            request(2, "two eos=9", 32),
            request(3, "three eos=4", 32),
        ];
        let tokens_of_2 = Cell::new(0);
        let cancelled = |id: u64| id == 2 && tokens_of_2.get() >= 3;
        let mut events = Vec::new();
        let mut toy = ToyBackend::new(4096, 512, 4);
        let (outcomes, _) = generate_many(&mut toy, &requests, 3, &cancelled, &mut |e| {
            if matches!(e, Event::Token { id: 2, .. }) {
                tokens_of_2.set(tokens_of_2.get() + 1);
            }
            events.push(e);
        });
        let (text_2, reason) = text(&outcomes[1]);
        assert_eq!(reason, StopReason::Cancelled);
        assert_eq!(text_2, alone(&requests[1]).0[..3]);
        for i in [0, 2] {
            assert_eq!(text(&outcomes[i]), alone(&requests[i]));
        }
        assert_eq!(done_order(&events), [2, 3, 1]);
    }

    #[test]
    fn cancelling_all_ends_every_request_with_its_text_so_far() {
        let requests: Vec<_> = (0..5)
            .map(|i| {
                request(
                    i + 1,
                    &format!("r{i} eos={}", [2, 8, 9, 7, 6][i as usize]),
                    32,
                )
            })
            .collect();
        let tokens = Cell::new(0);
        let cancelled = |_: u64| tokens.get() >= 8;
        let mut toy = ToyBackend::new(4096, 512, 4);
        let events = RefCell::new(Vec::new());
        let (outcomes, stats) = generate_many(&mut toy, &requests, 2, &cancelled, &mut |e| {
            if matches!(e, Event::Token { .. }) {
                tokens.set(tokens.get() + 1);
            }
            events.borrow_mut().push(e);
        });
        // The first (2 tokens) ended; the others were cut or never started.
        assert_eq!(text(&outcomes[0]), alone(&requests[0]));
        for (request, outcome) in requests.iter().zip(&outcomes).skip(1) {
            let (text, reason) = text(outcome);
            assert_eq!(reason, StopReason::Cancelled, "request {}", request.id);
            assert!(
                alone(request).0.starts_with(&text),
                "request {}",
                request.id
            );
        }
        assert_eq!(done_order(&events.borrow()).len(), 5);
        // Cancelled before the decode after the 8th token (two sequences
        // sample per decode).
        assert!((8..=9).contains(&tokens.get()));
        assert_eq!(stats.generated_tokens, tokens.get());
        assert_eq!(toy.decodes.len(), stats.decodes as usize);
    }

    #[test]
    fn a_failing_decode_fails_every_sequence_in_flight_and_the_context_is_usable_after() {
        let requests = vec![
            request(1, "A eos=1", 32),
            request(2, "B eos=6", 32),
            request(3, "C eos=6", 32),
            request(4, "D eos=2", 32),
            request(5, "E eos=2", 32),
        ];
        let mut toy = ToyBackend::new(4096, 512, 2);
        toy.fail_decodes.insert(3);
        let run = run(&mut toy, &requests, 2);
        // A ended after decode 2; decode 3 carried B's token and C's prompt.
        assert_eq!(sequences(&toy.decodes[2]).len(), 2);
        assert!(toy.decodes[2].failed);
        for i in [1, 2] {
            let error = run.outcomes[i].as_ref().unwrap_err();
            assert_eq!(
                error,
                "llama.cpp failed to decode: a scripted decode failure"
            );
        }
        for i in [0, 3, 4] {
            assert_eq!(
                text(&run.outcomes[i]),
                alone(&requests[i]),
                "request {}",
                i + 1
            );
        }
        assert_eq!(done_order(&run.events), [1, 2, 3, 4, 5]);
        assert_eq!(toy.decodes.iter().filter(|c| c.failed).count(), 1);

        // The half-written cache was forgotten: the same context answers as before.
        let again = run_with(&mut toy, &requests, 2, &|_| false);
        assert_as_if_alone(&requests, &again);
    }

    #[test]
    fn batches_stay_within_n_batch_with_sampled_tokens_first() {
        let requests: Vec<_> = (0..5)
            .map(|i| {
                let prompt = format!("{i} a prompt longer than one batch of eight eos={}", 2 + i);
                request(i + 1, &prompt, 32)
            })
            .collect();
        let mut toy = ToyBackend::new(4096, 8, 4);
        let run = run(&mut toy, &requests, 3);
        assert_as_if_alone(&requests, &run);
        for call in &toy.decodes {
            assert!(call.batch.len() <= 8, "{call:?}");
            // Generated tokens (the toy's 256 and up) before prompt tokens.
            let first_prompt = call.batch.iter().position(|e| e.token.0 < 256);
            if let Some(first_prompt) = first_prompt {
                assert!(call.batch[first_prompt..].iter().all(|e| e.token.0 < 256));
            }
        }
        assert!(toy.decodes.iter().filter(|c| c.batch.len() == 8).count() > 5);
    }

    #[test]
    fn stop_strings_and_token_limits_end_requests_as_if_alone() {
        let base = request(1, "stop test eos=14", 32);
        let (reply, _) = alone(&base);
        let stop = reply[5..7].to_string();
        let requests = vec![
            GenerateRequest {
                stop: vec![stop.clone()],
                ..base.clone()
            },
            GenerateRequest {
                id: 2,
                max_tokens: 3,
                ..base.clone()
            },
            GenerateRequest {
                id: 3,
                sampling: SamplingParams {
                    temperature: 0.7,
                    seed: 5,
                    ..SamplingParams::default()
                },
                ..base.clone()
            },
        ];
        let mut toy = ToyBackend::new(4096, 512, 4);
        let run = run(&mut toy, &requests, 3);
        assert_as_if_alone(&requests, &run);
        let reasons: Vec<_> = run.outcomes.iter().map(|o| text(o).1).collect();
        assert_eq!(
            reasons,
            [
                StopReason::StopString,
                StopReason::MaxTokens,
                StopReason::Eos
            ]
        );
        assert!(!text(&run.outcomes[0]).0.contains(&stop));
        assert_ne!(
            text(&run.outcomes[2]).0,
            reply,
            "the seed changes the reply"
        );
    }

    #[test]
    fn probabilities_reach_the_token_events_of_requests_that_ask() {
        let mut toy = ToyBackend::new(4096, 512, 8);
        let mut asking = request(1, "probabilities please", 6);
        asking.probs = Some(ProbsRequest {
            top: 2,
            after_sampler: false,
        });
        let plain = request(2, "no probabilities", 6);
        let run = run(&mut toy, &[asking, plain], 2);
        let mut sampled = HashMap::new();
        for event in &run.events {
            let Event::Token {
                id, token, probs, ..
            } = event
            else {
                continue;
            };
            if *token < 0 {
                assert!(probs.is_none(), "the final flush is not a sample");
                continue;
            }
            *sampled.entry(*id).or_insert(0) += 1;
            match (id, probs) {
                (1, Some(probs)) => {
                    // Uniform over the toy's 28 generable tokens.
                    assert!((probs.logprob + 28f32.ln()).abs() < 1e-3, "{probs:?}");
                    assert_eq!(probs.top.len(), 2);
                }
                (2, None) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(sampled[&1] > 0 && sampled[&2] > 0);
    }
}
