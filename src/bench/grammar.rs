//! `whet bench --json-schema FILE`: generation speed with and without a
//! JSON schema in the same run, and how many constrained outputs validate.
//!
//! Each of a fixed set of chat prompts is answered greedily twice per
//! repetition, the order alternating: once constrained by the schema (until
//! the grammar ends the reply, at most `--gen-tokens`), and once free for
//! exactly as many tokens (end-of-generation ignored), so both rates are
//! taken over the same number of tokens at the same depth. Every
//! constrained output is parsed with serde_json and validated with the
//! `jsonschema` crate: the share that validates must be 1.

use serde::Serialize;

use super::stats::Summary;
use crate::engine::protocol::{
    ChatMessage, Constraint, GenerateRequest, GrammarEnd, Prompt, Role, StopReason,
};
use crate::engine::{EngineClient, SamplingParams};

/// Requests for JSON of varied content: the grammar, not the wording,
/// makes the output JSON.
pub const PROMPTS: [&str; 10] = [
    "Describe a person as JSON.",
    "Invent a character for a story.",
    "Who is your favourite scientist?",
    "Tell me about a pirate.",
    "Give me a JSON object for a happy child.",
    "Describe an old sailor.",
    "Make up a teacher.",
    "Write about a sad king.",
    "Who lives next door?",
    "Create a calm librarian.",
];

#[derive(Debug, Serialize)]
pub struct GrammarReport {
    pub schema: String,
    pub prompts: usize,
    pub reps: usize,
    /// Generation rate with the schema (tokens after the first per second).
    pub constrained_tok_s: Summary,
    /// The same prompts, as many tokens, without it.
    pub free_tok_s: Summary,
    /// constrained median / free median.
    pub ratio: f64,
    /// Tokens per constrained reply.
    pub constrained_tokens: Summary,
    pub outputs: usize,
    /// Outputs that ended with the grammar complete (not cut by `--gen-tokens`).
    pub complete: usize,
    /// Outputs that parse as JSON and validate against the schema.
    pub valid: usize,
    /// valid / outputs.
    pub valid_share: f64,
    /// Outputs that did not validate, for a look.
    pub invalid_examples: Vec<String>,
}

fn request(prompt: &str, max_tokens: u32, constraint: Option<Constraint>) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: vec![ChatMessage::new(Role::User, prompt)],
        },
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix: false,
        // The free run goes on for as many tokens as the constrained one.
        ignore_eos: constraint.is_none(),
        probs: None,
        constraint,
    }
}

pub async fn measure(
    engine: &mut EngineClient,
    schema: &Constraint,
    gen_tokens: u32,
    reps: usize,
) -> Result<GrammarReport, String> {
    let Constraint::JsonSchema { schema: text, .. } = schema else {
        return Err("the grammar bench takes a JSON schema".into());
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{}: {e}", schema.source()))?;
    let validator = jsonschema::validator_for(&value)
        .map_err(|e| format!("{}: not a valid JSON schema: {e}", schema.source()))?;
    // Unmeasured: warms caches, pages in the weights, and gives each
    // prompt's constrained length (greedy: the same every time) for its
    // free run.
    let mut counts = Vec::new();
    for prompt in PROMPTS {
        let generation = run(engine, request(prompt, gen_tokens, Some(schema.clone()))).await?;
        counts.push(generation.stats.generated_tokens.max(2));
    }

    let (mut constrained, mut free, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
    let (mut outputs, mut complete, mut valid) = (0, 0, 0);
    let mut invalid_examples = Vec::new();
    for rep in 0..reps {
        for (index, prompt) in PROMPTS.iter().enumerate() {
            // Alternate which goes first, so drift in machine load hits both.
            let constrained_first = (rep + index) % 2 == 0;
            for step in 0..2 {
                let with_schema = (step == 0) == constrained_first;
                if with_schema {
                    let generation =
                        run(engine, request(prompt, gen_tokens, Some(schema.clone()))).await?;
                    constrained.push(generation.timing.generation_tokens_per_sec());
                    lengths.push(f64::from(generation.stats.generated_tokens));
                    outputs += 1;
                    if generation.stats.grammar == Some(GrammarEnd::Complete) {
                        complete += 1;
                    }
                    let ok = serde_json::from_str::<serde_json::Value>(&generation.text)
                        .is_ok_and(|v| validator.is_valid(&v));
                    if ok {
                        valid += 1;
                    } else if invalid_examples.len() < 3 {
                        invalid_examples.push(generation.text.clone());
                    }
                } else {
                    let generation = run(engine, request(prompt, counts[index], None)).await?;
                    free.push(generation.timing.generation_tokens_per_sec());
                }
            }
        }
    }
    let constrained_tok_s = Summary::of(&constrained);
    let free_tok_s = Summary::of(&free);
    let ratio = if free_tok_s.median > 0.0 {
        constrained_tok_s.median / free_tok_s.median
    } else {
        0.0
    };
    Ok(GrammarReport {
        schema: schema.source().to_string(),
        prompts: PROMPTS.len(),
        reps,
        constrained_tok_s,
        free_tok_s,
        ratio,
        constrained_tokens: Summary::of(&lengths),
        outputs,
        complete,
        valid,
        valid_share: if outputs > 0 {
            valid as f64 / outputs as f64
        } else {
            0.0
        },
        invalid_examples,
    })
}

async fn run(
    engine: &mut EngineClient,
    request: GenerateRequest,
) -> Result<crate::engine::Generation, String> {
    let generation = engine
        .generate(request, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    if generation.reason == StopReason::Cancelled {
        return Err("a bench generation was cancelled".into());
    }
    Ok(generation)
}

/// The table lines for a report.
pub fn table(report: &GrammarReport) -> Vec<String> {
    vec![
        format!(
            "JSON schema {}: {} prompts x {} reps, greedy",
            report.schema, report.prompts, report.reps
        ),
        format!(
            "generation with the schema    {} tok/s",
            report.constrained_tok_s.display(1)
        ),
        format!(
            "generation without (as many)  {} tok/s",
            report.free_tok_s.display(1)
        ),
        format!("with / without                {:.2}", report.ratio),
        format!(
            "tokens per constrained reply  {}",
            report.constrained_tokens.display(0)
        ),
        format!(
            "outputs valid                 {}/{} ({:.0}%), grammar complete {}/{}",
            report.valid,
            report.outputs,
            report.valid_share * 100.0,
            report.complete,
            report.outputs
        ),
    ]
}
