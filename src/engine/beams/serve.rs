//! A protocol beam request served on a backend: the prompt's tokens, the
//! model's end-of-generation tokens, the texts of the returned hypotheses
//! and the search's figures.

use std::time::Instant;

use llama_cpp_2::token::LlamaToken;

use super::{beam_search_with, BeamResult};
use crate::engine::parallel::Backend;
use crate::engine::protocol::{Beam, BeamRequest, BeamStats};

/// Runs `request` over `prompt` (already tokenized as a generation would
/// tokenize it) with `eos` ending hypotheses.
pub fn serve<B: Backend>(
    backend: &mut B,
    request: &BeamRequest,
    prompt: &[LlamaToken],
    eos: Vec<i32>,
    cancelled: &dyn Fn() -> bool,
) -> Result<(Vec<Beam>, BeamStats), String> {
    request.beams.validate()?;
    if request.max_tokens == 0 {
        return Err("a beam search needs a token limit above 0".into());
    }
    let options = request.beams.options(request.max_tokens as usize, eos);
    let started = Instant::now();
    let run = beam_search_with(backend, prompt, &options, cancelled)?;
    let search = started.elapsed().saturating_sub(run.prompt_eval);
    let beams = texts(backend, &run.result, &options.eos);
    let stats = BeamStats {
        prompt_tokens: prompt.len() as u32,
        reused_tokens: run.reused_tokens as u32,
        prompt_eval_ms: run.prompt_eval.as_secs_f64() * 1000.0,
        steps: run.result.steps as u32,
        decoded_tokens: (run.result.steps.saturating_sub(1) * options.num_beams) as u32,
        search_ms: search.as_secs_f64() * 1000.0,
    };
    Ok((beams, stats))
}

/// The hypotheses with their text: the tokens' pieces, the closing
/// end-of-generation token left out as a generation leaves it out.
fn texts<B: Backend>(backend: &B, result: &BeamResult, eos: &[i32]) -> Vec<Beam> {
    result
        .hypotheses
        .iter()
        .map(|h| {
            let ended = h.tokens.last().is_some_and(|t| eos.contains(t));
            let shown = &h.tokens[..h.tokens.len() - usize::from(ended)];
            let bytes: Vec<u8> = shown
                .iter()
                .flat_map(|&t| backend.piece(LlamaToken(t)))
                .collect();
            Beam {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                tokens: h.tokens.clone(),
                score: h.score,
                logprob: h.logprob,
                eos: ended,
            }
        })
        .collect()
}

/// A vocabulary's end-of-generation tokens, found by asking of each token:
/// transformers' `eos_token_id` list, as the model's GGUF defines it
/// (llama.cpp's end-of-generation set, e.g. `<|im_end|>` and
/// `<|endoftext|>`).
pub fn eog_tokens<B: Backend>(backend: &B, n_vocab: usize) -> Vec<i32> {
    (0..n_vocab as i32)
        .filter(|&t| backend.is_eog(LlamaToken(t)))
        .collect()
}
