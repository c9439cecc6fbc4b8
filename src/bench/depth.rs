//! Speed at a context depth, as llama-bench's `-d` measures it: generation
//! with `depth` tokens already in the KV cache (`tg@d`), and evaluating a
//! prompt on top of them (`pp@d`). whet's worker and the bare loop take
//! turns on the same tokens, so their ratio is free of machine drift; the
//! comparison with llama.cpp's own build is `scripts/llama-bench-compare`'s.

use serde::Serialize;

use super::raw::RawModel;
use super::{greedy_raw, per_sec, Comparison, PROMPT};
use crate::engine::EngineClient;

#[derive(Debug, Serialize)]
pub struct DepthReport {
    /// Tokens in the cache before the measured work (asked for; the prose
    /// filler is cut to exactly this many tokens).
    pub depth: usize,
    /// Tokens of the prompt evaluated on top of `depth`.
    pub prompt_tokens: usize,
    pub gen_tokens: u32,
    pub generation_tok_s: Comparison,
    pub prompt_eval_tok_s: Comparison,
}

/// The filler's text cut to `depth` tokens of `model`'s vocabulary (BOS
/// included), and `PROMPT` after it, such that both tokenize as the filler
/// then the prompt: both paths then hold the same cache. A cut inside a
/// word may tokenize differently; a token or two less avoids it.
fn filler(model: &RawModel, depth: usize) -> Result<(String, String), String> {
    let mut text = String::new();
    while model.tokenize(&text).len() <= depth + 8 {
        text.push_str(PROMPT);
        text.push('\n');
    }
    let tokens = model.tokenize(&text);
    for cut in (depth.saturating_sub(8).max(2)..=depth.max(2)).rev() {
        let prefix = model.detokenize(&tokens[..cut])?;
        let with_prompt = format!("{prefix} {PROMPT}");
        let prefix_tokens = model.tokenize(&prefix);
        let all = model.tokenize(&with_prompt);
        if prefix_tokens[..] == tokens[..cut] && all.starts_with(&prefix_tokens) {
            return Ok((prefix, with_prompt));
        }
    }
    Err(format!(
        "no cut of the filler near {depth} tokens tokenizes stably"
    ))
}

pub async fn measure(
    engine: &mut EngineClient,
    model: &RawModel,
    ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
    depth: usize,
    gen_tokens: u32,
    reps: usize,
    warm: bool,
) -> Result<DepthReport, String> {
    let (prefix, with_prompt) = filler(model, depth)?;
    let prefix_tokens = model.tokenize(&prefix);
    let all_tokens = model.tokenize(&with_prompt);
    let prompt_tokens = all_tokens.len() - prefix_tokens.len();
    let (mut whet_gen, mut whet_pp, mut raw_gen, mut raw_pp) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // An unmeasured round warms both paths (page-in, caches) when asked:
    // once per run is enough.
    let first = usize::from(!warm);
    for rep in first..=reps {
        for path in 0..2 {
            let whet_turn = (rep + path) % 2 == 0;
            if whet_turn {
                // tg@d: generation right after the filler, from a clear cache.
                let generation = engine
                    .generate(greedy_raw(prefix.clone(), gen_tokens, false), |_| {})
                    .await
                    .map_err(|e| e.to_string())?;
                if generation.stats.prompt_tokens as usize != prefix_tokens.len() {
                    return Err(format!(
                        "the two paths tokenized the filler differently ({} vs {} tokens)",
                        generation.stats.prompt_tokens,
                        prefix_tokens.len()
                    ));
                }
                // pp@d: the prompt on top of the cached filler.
                let evaluated = engine
                    .generate(greedy_raw(with_prompt.clone(), 1, true), |_| {})
                    .await
                    .map_err(|e| e.to_string())?;
                let decoded =
                    (evaluated.stats.prompt_tokens - evaluated.stats.reused_tokens) as usize;
                if rep > 0 {
                    whet_gen.push(generation.timing.generation_tokens_per_sec());
                    whet_pp.push(per_sec(decoded, evaluated.timing.ttft_ms));
                }
            } else {
                let run = model.measure(ctx, &prefix_tokens, gen_tokens as usize)?;
                let pp_ms =
                    model.measure_suffix(ctx, &all_tokens, prefix_tokens.len(), prompt_tokens)?;
                if rep > 0 {
                    raw_gen.push(per_sec(run.tokens.len() - 1, run.first_to_last_ms));
                    raw_pp.push(per_sec(prompt_tokens, pp_ms));
                }
            }
        }
    }
    Ok(DepthReport {
        depth: prefix_tokens.len(),
        prompt_tokens,
        gen_tokens,
        generation_tok_s: Comparison::new(&whet_gen, &raw_gen),
        prompt_eval_tok_s: Comparison::new(&whet_pp, &raw_pp),
    })
}

/// The depths as a table, one row each.
pub fn table(reports: &[DepthReport]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:>6}  {:>22}  {:>22}  {:>6}  {:>22}  {:>22}  {:>6}",
        "depth",
        "tg whet tok/s",
        "tg bare loop tok/s",
        "ratio",
        "pp whet tok/s",
        "pp bare loop tok/s",
        "ratio"
    )];
    for r in reports {
        lines.push(format!(
            "{:>6}  {:>22}  {:>22}  {:>6.3}  {:>22}  {:>22}  {:>6.3}",
            r.depth,
            r.generation_tok_s.whet.display(1),
            r.generation_tok_s.raw.display(1),
            r.generation_tok_s.ratio,
            r.prompt_eval_tok_s.whet.display(1),
            r.prompt_eval_tok_s.raw.display(1),
            r.prompt_eval_tok_s.ratio,
        ));
    }
    lines
}
