//! `whet bench --parallel 1,2,4,8`: the same cells (a system prompt and two
//! few-shot exchanges shared, one question each, greedy) decoded one request
//! at a time and as N parallel sequences of one context; tokens per second,
//! wall time, and whether the outputs are the sequential ones.

use serde::Serialize;

use super::stats::Summary;
use crate::engine::protocol::{ChatMessage, GenerateRequest, Prompt, Role};
use crate::engine::{EngineClient, SamplingParams};

const SYSTEM: &str = "You are a helpful assistant. Answer in one or two short sentences.";
const SHOTS: [(&str, &str); 2] = [
    (
        "What is the boiling point of water?",
        "Water boils at 100 degrees Celsius at sea level.",
    ),
    ("Name a primary colour.", "Red is a primary colour."),
];
const QUESTIONS: [&str; 16] = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What do bees make?",
    "Which planet is closest to the sun?",
    "What is frozen water called?",
    "Who wrote Romeo and Juliet?",
    "What gas do plants take in?",
    "How many days are in a leap year?",
    "What is the largest ocean?",
    "What language is spoken in Brazil?",
    "What is the chemical symbol for gold?",
    "How many continents are there?",
    "What is the tallest animal?",
    "What instrument has 88 keys?",
    "What is the opposite of hot?",
    "Which bird is a symbol of peace?",
];
const MAX_TOKENS: u32 = 64;

#[derive(Debug, Serialize)]
pub struct ParallelReport {
    pub parallel: u32,
    pub cells: usize,
    pub generated_tokens: u32,
    pub wall_ms: Summary,
    pub tok_s: Summary,
    /// tok/s median over the sequential median.
    pub speedup: f64,
    /// Cells whose text differs from the sequential run's.
    pub differing: usize,
    pub decodes: u32,
    pub prompt_tokens_shared: u32,
}

#[derive(Debug, Serialize)]
pub struct SequentialReport {
    pub cells: usize,
    pub generated_tokens: u32,
    pub wall_ms: Summary,
    pub tok_s: Summary,
}

/// `count` cells, each generating `gen_tokens` (end of generation ignored,
/// so every run does the same work, as llama-bench's tg) or, with 0, until
/// the model ends its reply (at most `MAX_TOKENS`).
pub fn cells(count: usize, gen_tokens: u32) -> Vec<GenerateRequest> {
    QUESTIONS
        .iter()
        .cycle()
        .take(count)
        .map(|q| {
            let mut messages = vec![ChatMessage::new(Role::System, SYSTEM)];
            for (question, answer) in SHOTS {
                messages.push(ChatMessage::new(Role::User, question));
                messages.push(ChatMessage::new(Role::Assistant, answer));
            }
            messages.push(ChatMessage::new(Role::User, *q));
            GenerateRequest {
                id: 0,
                prompt: Prompt::Chat { messages },
                sampling: SamplingParams::greedy(),
                max_tokens: if gen_tokens == 0 {
                    MAX_TOKENS
                } else {
                    gen_tokens
                },
                stop: Vec::new(),
                // One request after another reuses the shared prefix too.
                reuse_prefix: true,
                ignore_eos: gen_tokens > 0,
                probs: None,
                constraint: None,
            }
        })
        .collect()
}

/// The cells one request at a time: their texts, tokens and wall time.
async fn sequential(
    engine: &mut EngineClient,
    cells: &[GenerateRequest],
) -> Result<(Vec<String>, u32, f64), String> {
    let started = std::time::Instant::now();
    let mut texts = Vec::new();
    let mut tokens = 0;
    for cell in cells {
        let generation = engine
            .generate(cell.clone(), |_| {})
            .await
            .map_err(|e| e.to_string())?;
        tokens += generation.stats.generated_tokens;
        texts.push(generation.text);
    }
    Ok((texts, tokens, started.elapsed().as_secs_f64() * 1000.0))
}

/// Per level: wall times, tok/s, and the last run's tokens, differing
/// cells (the most seen), decodes and shared prompt tokens.
type LevelRuns = (Vec<f64>, Vec<f64>, u32, usize, u32, u32);

pub async fn measure(
    engine: &mut EngineClient,
    levels: &[u32],
    count: usize,
    gen_tokens: u32,
    reps: usize,
) -> Result<(SequentialReport, Vec<ParallelReport>), String> {
    let cells = cells(count, gen_tokens);
    // Warm-up: page in the weights, settle the caches.
    sequential(engine, &cells[..1]).await?;
    let mut sequential_ms = Vec::new();
    let mut sequential_tok_s = Vec::new();
    let mut sequential_tokens = 0;
    let mut runs: Vec<LevelRuns> = levels
        .iter()
        .map(|_| (Vec::new(), Vec::new(), 0, 0, 0, 0))
        .collect();
    for _ in 0..reps {
        let (texts, tokens, ms) = sequential(engine, &cells).await?;
        sequential_ms.push(ms);
        sequential_tok_s.push(f64::from(tokens) * 1000.0 / ms);
        sequential_tokens = tokens;
        let reference = texts;
        for (level, run) in levels.iter().zip(&mut runs) {
            let (results, stats) = engine
                .generate_many(cells.clone(), *level, |_, _| {})
                .await
                .map_err(|e| e.to_string())?;
            let mut differing = 0;
            for (result, expected) in results.iter().zip(&reference) {
                match result {
                    Ok(generation) if generation.text == *expected => {}
                    Ok(_) => differing += 1,
                    Err(message) => return Err(format!("a cell failed: {message}")),
                }
            }
            run.0.push(stats.wall_ms);
            run.1
                .push(f64::from(stats.generated_tokens) * 1000.0 / stats.wall_ms);
            run.2 = stats.generated_tokens;
            run.3 = run.3.max(differing);
            run.4 = stats.decodes;
            run.5 = stats.prompt_tokens_shared;
        }
    }
    let sequential_report = SequentialReport {
        cells: cells.len(),
        generated_tokens: sequential_tokens,
        wall_ms: Summary::of(&sequential_ms),
        tok_s: Summary::of(&sequential_tok_s),
    };
    let base = sequential_report.tok_s.median;
    let reports = levels
        .iter()
        .zip(runs)
        .map(
            |(&parallel, (wall, tok_s, tokens, differing, decodes, shared))| {
                let tok_s = Summary::of(&tok_s);
                ParallelReport {
                    parallel,
                    cells: cells.len(),
                    generated_tokens: tokens,
                    wall_ms: Summary::of(&wall),
                    speedup: if base > 0.0 { tok_s.median / base } else { 0.0 },
                    tok_s,
                    differing,
                    decodes,
                    prompt_tokens_shared: shared,
                }
            },
        )
        .collect();
    Ok((sequential_report, reports))
}

pub fn table(
    sequential: &SequentialReport,
    reports: &[ParallelReport],
    gen_tokens: u32,
) -> Vec<String> {
    let length = if gen_tokens == 0 {
        format!("until the reply ends, at most {MAX_TOKENS} tokens")
    } else {
        format!("{gen_tokens} tokens each")
    };
    let mut lines = vec![
        format!(
            "{} cells (shared system prompt and 2 examples, greedy, {length}); median [min-max]",
            sequential.cells
        ),
        format!(
            "{:<14} {:>24} {:>26} {:>8} {:>10}",
            "", "tok/s", "wall ms", "speedup", "differ"
        ),
        format!(
            "{:<14} {:>24} {:>26} {:>8} {:>10}",
            "one at a time",
            sequential.tok_s.display(1),
            sequential.wall_ms.display(0),
            "1.00",
            "-"
        ),
    ];
    for r in reports {
        lines.push(format!(
            "{:<14} {:>24} {:>26} {:>8.2} {:>10}",
            format!("{} parallel", r.parallel),
            r.tok_s.display(1),
            r.wall_ms.display(0),
            r.speedup,
            format!("{}/{}", r.differing, r.cells)
        ));
    }
    lines
}
