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

use super::protocol::{Event, GenerateRequest, GenerationStats, StopReason};
use super::runner::{build_sampler, common_prefix_len, ms_between, ms_since, Outcome, Session};
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

/// One request in flight in a slot.
struct Job {
    index: usize,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens before this one are in the slot's sequence.
    next_prompt: usize,
    sampler: LlamaSampler,
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
struct Slot {
    seq: i32,
    /// Tokens in this sequence's KV cache, in position order.
    tokens: Vec<LlamaToken>,
    job: Option<Job>,
}

impl Session<'_> {
    /// Runs `requests` with at most `parallel` of them at once, sending their
    /// `Token` events through `emit` as they are sampled and each one's
    /// `Done` or `Error` as it ends. Returns one outcome per request, in
    /// order, and the batch's figures. `cancelled(id)` is asked for each
    /// request between decodes.
    pub fn generate_many(
        &mut self,
        requests: &[GenerateRequest],
        parallel: u32,
        cancelled: &dyn Fn(u64) -> bool,
        emit: &mut dyn FnMut(Event),
    ) -> (Vec<Outcome>, ManyStats) {
        let started = Instant::now();
        // Every sequence's next token must fit one batch.
        let parallel = parallel
            .min(self.n_seq_max())
            .min(self.n_batch as u32)
            .clamp(1, MAX_PARALLEL);
        let n_ctx = self.ctx.n_ctx() as usize;
        let mut outcomes: Vec<Option<Outcome>> = requests.iter().map(|_| None).collect();
        let mut stats = ManyStats {
            requests: requests.len() as u32,
            parallel,
            ..ManyStats::default()
        };
        // Sequence 0 is the single-request cache: it may share its prefix too.
        let mut slots: Vec<Slot> = (0..parallel as i32)
            .map(|seq| Slot {
                seq,
                tokens: if seq == 0 {
                    std::mem::take(&mut self.cached)
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
                let in_use = |slots: &[Slot]| -> usize {
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
                            let _ = self
                                .ctx
                                .clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                            slot.tokens.clear();
                        }
                    }
                }
                let busy = slots.iter().any(|s| s.job.is_some());
                if busy && in_use(&slots) + reserved > n_ctx {
                    break;
                }
                queue.pop_front();
                let shared = self.share_prefix(&mut slots, free, &prompt);
                stats.prompt_tokens_shared += shared as u32;
                let now = Instant::now();
                slots[free].job = Some(Job {
                    index,
                    next_prompt: shared,
                    sampler: build_sampler(&request.sampling, self.model.model.n_vocab()),
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
                    let job = slot.job.take().expect("checked");
                    let index = job.index;
                    outcomes[index] = Some(Ok(finish(job, StopReason::Cancelled, emit, requests)));
                }
            }

            // One batch: every sampled token first (one each), then prompt
            // tokens in the room left.
            self.batch.clear();
            let mut room = self.n_batch;
            for slot in &mut slots {
                let Some(job) = slot.job.as_mut() else {
                    continue;
                };
                job.logits_at = None;
                if let Some(token) = job.pending.take() {
                    let at = self.batch.n_tokens();
                    if let Err(e) =
                        self.batch
                            .add(token, slot.tokens.len() as i32, &[slot.seq], true)
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
                    let at = self.batch.n_tokens();
                    // The batch was sized for n_batch tokens; `room` keeps within it.
                    let _ =
                        self.batch
                            .add(job.prompt[position], position as i32, &[slot.seq], last);
                    slot.tokens.push(job.prompt[position]);
                    if last {
                        job.logits_at = Some(at);
                    }
                }
                stats.prompt_tokens_decoded += (end - job.next_prompt) as u32;
                room -= end - job.next_prompt;
                job.next_prompt = end;
            }
            if self.batch.n_tokens() == 0 {
                continue;
            }
            stats.decodes += 1;
            if let Err(e) = self.ctx.decode(&mut self.batch) {
                // The cache may be partly written: every sequence in flight
                // fails, and the cache is forgotten.
                for slot in &mut slots {
                    if let Some(job) = slot.job.take() {
                        outcomes[job.index] = Some(Err(format!("llama.cpp failed to decode: {e}")));
                    }
                    slot.tokens.clear();
                }
                self.ctx.clear_kv_cache();
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
                let token = job.sampler.sample(&self.ctx, at);
                job.last_token_at = Instant::now();
                if job.first_token_at.is_none() {
                    job.first_token_at = Some(job.last_token_at);
                    job.stats.ttft_ms = ms_between(job.started, job.last_token_at);
                }
                let vocab = self.model.model.vocab();
                let reason = if vocab.is_eog(token) && !request.ignore_eos {
                    Some(StopReason::Eos)
                } else {
                    job.stats.generated_tokens += 1;
                    stats.generated_tokens += 1;
                    let piece = job.utf8.push(&vocab.token_to_piece(token, false, None));
                    let (shown, stopped) = match job.stops.push(&piece) {
                        StopOutcome::Continue(shown) => (shown, false),
                        StopOutcome::Stopped(shown) => (shown, true),
                    };
                    job.text.push_str(&shown);
                    emit(Event::Token {
                        id: request.id,
                        text: shown,
                        token: token.0,
                        prob: 0.0,
                        context_used: slot.tokens.len() as u32 + 1,
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
                    let job = slot.job.take().expect("checked");
                    let index = job.index;
                    outcomes[index] = Some(Ok(finish(job, reason, emit, requests)));
                }
            }
        }

        announce(&outcomes, emit);
        // Sequence 0 stays the single-request cache; the others are freed.
        self.cached = std::mem::take(&mut slots[0].tokens);
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
        let prompt = self.tokenize(&request.prompt)?;
        self.check_prompt_fits(&prompt)?;
        Ok(prompt)
    }

    /// Makes slot `free`'s sequence hold the longest prefix of `prompt` any
    /// sequence holds (copied from it when it is another), keeping at least
    /// the last prompt token to decode (its logits are needed). Returns the
    /// prefix length.
    fn share_prefix(&mut self, slots: &mut [Slot], free: usize, prompt: &[LlamaToken]) -> usize {
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
            let kept = self
                .ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(shared as u32), None)
                .unwrap_or(false);
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
                .ctx
                .copy_kv_cache_seq(slots[donor].seq, seq, Some(0), Some(shared as u32))
                .is_ok();
        slots[free].tokens = if copied {
            prompt[..shared].to_vec()
        } else {
            Vec::new()
        };
        slots[free].tokens.len()
    }

    fn remove_sequence(&mut self, seq: i32) {
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
    }
}

/// Ends a job: flushes held-back text and fills in its figures.
fn finish(
    mut job: Job,
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
                context_used: 0,
            });
        }
    }
    if let Some(first) = job.first_token_at {
        job.stats.generation_ms = ms_between(first, job.last_token_at);
    }
    (job.text, reason, job.stats)
}
