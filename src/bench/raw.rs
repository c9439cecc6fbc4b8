//! The reference: a bare in-process llama-cpp-2 decode loop, written the way
//! the crate's own examples do it, to measure whet's engine against.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

pub struct RawModel {
    // Declared before the backend so that it is freed first.
    model: LlamaModel,
    backend: LlamaBackend,
}

/// One run of the bare loop.
#[derive(Debug, Clone)]
pub struct RawRun {
    pub prompt_tokens: usize,
    /// From the first prompt decode to the first sampled token.
    pub ttft_ms: f64,
    /// From the first sampled token to the last.
    pub first_to_last_ms: f64,
    pub tokens: Vec<i32>,
}

impl RawModel {
    pub fn load(path: &Path) -> Result<Self, String> {
        let backend =
            LlamaBackend::init().map_err(|e| format!("cannot initialise llama.cpp: {e}"))?;
        let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())
            .map_err(|e| format!("cannot load model '{}': {e}", path.display()))?;
        Ok(Self { model, backend })
    }

    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let mut tokens = Vec::new();
        if vocab.should_add_bos() {
            tokens.push(vocab.bos());
        }
        tokens.extend(vocab.tokenize(text.as_bytes(), false, true));
        tokens
    }

    /// The text of `tokens`, special ones (BOS) left out: what `tokenize`
    /// turns back into the same tokens, for text that tokenizes stably.
    pub fn detokenize(&self, tokens: &[LlamaToken]) -> Result<String, String> {
        let vocab = self.model.vocab();
        let mut bytes = Vec::new();
        for token in tokens {
            vocab.token_to_piece_into(*token, &mut bytes, false, None);
        }
        String::from_utf8(bytes).map_err(|e| format!("the filler is not UTF-8: {e}"))
    }

    pub fn context(
        &self,
        n_ctx: u32,
        n_batch: u32,
        threads: u32,
        flash_attention: Option<bool>,
    ) -> Result<LlamaContext<'_>, String> {
        let threads = i32::try_from(threads).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(crate::engine::runner::flash_attention_policy(
                flash_attention,
            ));
        self.model
            .new_context(&self.backend, params)
            .map_err(|e| format!("cannot create a context: {e}"))
    }

    /// The logits after decoding `prompt` from an empty cache: the reference
    /// the engine's reported probabilities are checked against.
    pub fn prompt_logits(
        &self,
        ctx: &mut LlamaContext<'_>,
        prompt: &[LlamaToken],
    ) -> Result<Vec<f32>, String> {
        let mut batch = LlamaBatch::new(ctx.n_batch() as usize, 1);
        ctx.clear_kv_cache();
        decode_prompt(ctx, &mut batch, prompt)?;
        Ok(ctx.get_logits_ith(batch.n_tokens() - 1).to_vec())
    }

    /// Greedy decoding of `n_gen` tokens after `prompt`, end-of-generation ignored.
    pub fn measure(
        &self,
        ctx: &mut LlamaContext<'_>,
        prompt: &[LlamaToken],
        n_gen: usize,
    ) -> Result<RawRun, String> {
        let n_batch = ctx.n_batch() as usize;
        let mut batch = LlamaBatch::new(n_batch, 1);
        let vocab = self.model.vocab();
        let mut piece = Vec::new();
        ctx.clear_kv_cache();

        let started = Instant::now();
        let mut position = decode_prompt(ctx, &mut batch, prompt)?;
        let mut sampler = LlamaSampler::greedy();
        let mut token = sampler.sample(ctx, batch.n_tokens() - 1);
        let first = Instant::now();
        let mut tokens = vec![token.0];
        while tokens.len() < n_gen {
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, false, None);
            batch.clear();
            batch
                .add(token, position, &[0], true)
                .map_err(|e| e.to_string())?;
            position += 1;
            ctx.decode(&mut batch).map_err(|e| e.to_string())?;
            token = sampler.sample(ctx, 0);
            tokens.push(token.0);
        }
        let last = Instant::now();
        Ok(RawRun {
            prompt_tokens: prompt.len(),
            ttft_ms: first.duration_since(started).as_secs_f64() * 1000.0,
            first_to_last_ms: last.duration_since(first).as_secs_f64() * 1000.0,
            tokens,
        })
    }

    /// Time to decode `new` tokens on top of `depth` cached ones and sample
    /// the next: what a chat turn with prefix reuse costs in the bare loop.
    /// The cached part is filled with `filler` (cycled) and not timed.
    pub fn measure_suffix(
        &self,
        ctx: &mut LlamaContext<'_>,
        filler: &[LlamaToken],
        depth: usize,
        new: usize,
    ) -> Result<f64, String> {
        if filler.is_empty() || new == 0 {
            return Err("measure_suffix needs filler tokens and at least one new token".into());
        }
        let n_batch = ctx.n_batch() as usize;
        let mut batch = LlamaBatch::new(n_batch, 1);
        let tokens: Vec<LlamaToken> = filler.iter().copied().cycle().take(depth + new).collect();
        ctx.clear_kv_cache();
        let mut decode = |ctx: &mut LlamaContext<'_>, range: std::ops::Range<usize>| {
            for start in range.clone().step_by(n_batch) {
                let end = (start + n_batch).min(range.end);
                batch.clear();
                for (position, token) in (start..end).zip(&tokens[start..end]) {
                    let wants_logits = position + 1 == range.end;
                    batch
                        .add(*token, position as i32, &[0], wants_logits)
                        .map_err(|e| e.to_string())?;
                }
                ctx.decode(&mut batch).map_err(|e| e.to_string())?;
            }
            Ok::<i32, String>(batch.n_tokens() - 1)
        };
        if depth > 0 {
            decode(ctx, 0..depth)?;
        }
        let started = Instant::now();
        let last = decode(ctx, depth..depth + new)?;
        let _first = LlamaSampler::greedy().sample(ctx, last);
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    }
}

/// Decodes `prompt` into sequence 0 from position 0 in chunks of the batch
/// size, logits only for its last token (left at the batch's last index).
/// Returns the next position.
fn decode_prompt(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    prompt: &[LlamaToken],
) -> Result<i32, String> {
    let chunks: Vec<&[LlamaToken]> = prompt.chunks(ctx.n_batch() as usize).collect();
    let mut position = 0i32;
    for (index, chunk) in chunks.iter().enumerate() {
        batch.clear();
        for (offset, token) in chunk.iter().enumerate() {
            let last = index + 1 == chunks.len() && offset + 1 == chunk.len();
            batch
                .add(*token, position, &[0], last)
                .map_err(|e| e.to_string())?;
            position += 1;
        }
        ctx.decode(batch).map_err(|e| e.to_string())?;
    }
    Ok(position)
}
