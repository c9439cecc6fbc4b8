//! `whet bench --backend NAME`: what whet adds to a remote server. The
//! same requests are timed twice at once: by whet, from sending a request
//! to each streamed token arriving, and by the server itself (llama-server's
//! `timings`: prompt and generation time). The server's figures are the
//! reference, as the bare llama.cpp loop is for the local engine.

use serde::Serialize;

use super::stats::Summary;
use super::Comparison;
use crate::engine::protocol::{per_second, ChatMessage, GenerateRequest, Prompt, Role};
use crate::engine::{EngineClient, SamplingParams};

#[derive(Debug, Serialize)]
pub struct RemoteReport {
    pub reps: usize,
    /// Prompt tokens the server evaluated per request (not from its cache).
    pub prompt_tokens: Summary,
    pub generated_tokens: Summary,
    /// Seen by whet (tokens after the first over the time between the first
    /// and the last arriving) against the server's own rate.
    pub generation_tok_s: Comparison,
    /// whet: sending the request to the first token arriving; the server:
    /// evaluating the prompt (its share of that time).
    pub ttft_ms: Comparison,
    /// whet's time to first token minus the server's prompt time: the
    /// network, HTTP, the first token's sampling and whet's own work.
    pub ttft_overhead_ms: Summary,
    pub server_prompt_tok_s: Summary,
}

/// `reps` greedy requests of `prompt` (each made new with its number up
/// front, so the server's prompt cache cannot skip its evaluation), after
/// one unmeasured warm-up. Fails when the server gives no timings: then
/// there is nothing to compare against.
pub async fn measure(
    engine: &mut EngineClient,
    prompt: &str,
    gen_tokens: u32,
    reps: usize,
    ignore_eos: bool,
) -> Result<RemoteReport, String> {
    let mut prompt_tokens = Vec::new();
    let mut generated = Vec::new();
    let mut whet_gen = Vec::new();
    let mut server_gen = Vec::new();
    let mut whet_ttft = Vec::new();
    let mut server_prompt_ms = Vec::new();
    let mut overhead = Vec::new();
    let mut server_prompt_rate = Vec::new();
    for rep in 0..=reps {
        let request = GenerateRequest {
            id: 0,
            prompt: Prompt::Chat {
                messages: vec![ChatMessage::new(
                    Role::User,
                    format!("Request {rep} of {reps}. {prompt}"),
                )],
            },
            sampling: SamplingParams::greedy(),
            max_tokens: gen_tokens,
            stop: Vec::new(),
            reuse_prefix: true,
            // Where the server takes it, every reply runs the full length,
            // as llama-bench's do.
            ignore_eos,
            probs: None,
            constraint: None,
        };
        let generation = engine
            .generate(request, |_| {})
            .await
            .map_err(|e| e.to_string())?;
        if rep == 0 {
            continue; // warm-up
        }
        let stats = &generation.stats;
        if stats.generation_ms <= 0.0 || stats.generated_tokens < 2 {
            return Err(format!(
                "the server's reply had {} tokens and no timings of its own to compare with (llama-server reports them; other servers do not)",
                stats.generated_tokens
            ));
        }
        let evaluated = stats.prompt_tokens.saturating_sub(stats.reused_tokens);
        prompt_tokens.push(f64::from(evaluated));
        generated.push(f64::from(stats.generated_tokens));
        whet_gen.push(per_second(
            stats.generated_tokens - 1,
            generation.timing.first_to_last_ms,
        ));
        server_gen.push(per_second(stats.generated_tokens, stats.generation_ms));
        whet_ttft.push(generation.timing.ttft_ms);
        server_prompt_ms.push(stats.prompt_eval_ms);
        overhead.push(generation.timing.ttft_ms - stats.prompt_eval_ms);
        server_prompt_rate.push(per_second(evaluated, stats.prompt_eval_ms));
    }
    Ok(RemoteReport {
        reps,
        prompt_tokens: Summary::of(&prompt_tokens),
        generated_tokens: Summary::of(&generated),
        generation_tok_s: Comparison::new(&whet_gen, &server_gen),
        ttft_ms: Comparison::new(&whet_ttft, &server_prompt_ms),
        ttft_overhead_ms: Summary::of(&overhead),
        server_prompt_tok_s: Summary::of(&server_prompt_rate),
    })
}

pub fn table(report: &RemoteReport) -> Vec<String> {
    vec![
        format!(
            "{} requests after a warm-up; prompt {} tokens, reply {} tokens (median [min-max])",
            report.reps,
            report.prompt_tokens.display(0),
            report.generated_tokens.display(0)
        ),
        format!(
            "{:<26} {:>24} {:>24} {:>8}",
            "", "seen by whet", "server's timings", "ratio"
        ),
        format!(
            "{:<26} {:>24} {:>24} {:>8.3}",
            "generation tok/s",
            report.generation_tok_s.whet.display(1),
            report.generation_tok_s.raw.display(1),
            report.generation_tok_s.ratio
        ),
        format!(
            "{:<26} {:>24} {:>24} {:>8.3}",
            "first token ms / prompt ms",
            report.ttft_ms.whet.display(1),
            report.ttft_ms.raw.display(1),
            report.ttft_ms.ratio
        ),
        format!(
            "whet's time to first token beyond the server's prompt time: {} ms; server prompt eval {} tok/s",
            report.ttft_overhead_ms.display(1),
            report.server_prompt_tok_s.display(1)
        ),
    ]
}
