//! Beam search through the real worker and the real default model: one
//! beam is greedy decoding, scores are the returned tokens' summed
//! log-probabilities (checked against an independent softmax over
//! llama.cpp's logits), four beams against greedy on ten prompts, the
//! context check, cancelling, and `whet run --beams`.
//!
//! The algorithm itself is checked against transformers' own `generate()`
//! in `src/engine/beams/fixtures.rs`.

mod common;

use common::*;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use whet::bench::raw::RawModel;
use whet::engine::beams::{BeamModel, BeamSettings, EarlyStopping, CANCELLED};
use whet::engine::protocol::{Beam, BeamRequest, BeamStats, ChatMessage, Prompt, Role};
use whet::engine::{EngineClient, GenerateRequest, SamplingParams};

const PROMPTS: [&str; 10] = [
    "Name a colour.",
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Give me a synonym for happy.",
    "How many legs does a spider have?",
    "Say hello in Spanish.",
    "What do bees make?",
    "Finish this: The early bird",
    "Name a planet in our solar system.",
    "What is two plus two?",
];

fn chat(text: &str) -> Prompt {
    Prompt::Chat {
        messages: vec![ChatMessage::new(Role::User, text)],
    }
}

fn beams(num_beams: usize) -> BeamSettings {
    BeamSettings {
        num_beams,
        ..BeamSettings::default()
    }
}

fn request(prompt: Prompt, settings: BeamSettings, max_tokens: u32) -> BeamRequest {
    BeamRequest {
        id: 0,
        prompt,
        beams: settings,
        max_tokens,
    }
}

async fn engine(n_ctx: u32, parallel: u32) -> EngineClient {
    let options = whet::engine::SpawnOptions::local(whet_bin());
    let mut engine = EngineClient::spawn(&options).await.expect("spawn");
    let mut load = load_request(smollm2(), n_ctx);
    load.parallel = parallel;
    engine.load(load).await.expect("load");
    engine
}

async fn search(engine: &mut EngineClient, request: BeamRequest) -> (Vec<Beam>, BeamStats) {
    engine
        .beams_until(request, std::future::pending())
        .await
        .expect("beam search")
}

fn greedy(prompt: Prompt, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt,
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix: true,
        ignore_eos: false,
        probs: None,
        constraint: None,
    }
}

#[tokio::test]
async fn one_beam_is_greedy_decoding() {
    // A context of one sequence: the worker adds the two a beam needs.
    let mut engine = engine(2048, 1).await;
    for text in &PROMPTS[..4] {
        let generation = engine
            .generate(greedy(chat(text), 48), |_| {})
            .await
            .expect("greedy");
        let (found, stats) = search(&mut engine, request(chat(text), beams(1), 48)).await;
        assert_eq!(found.len(), 1);
        let beam = &found[0];
        assert_eq!(beam.text, generation.text, "{text}");
        let greedy_tokens: Vec<i32> = generation.tokens.iter().map(|t| t.token).collect();
        // The beam keeps its end-of-generation token; greedy does not send it.
        let generated = &beam.tokens[..beam.tokens.len() - usize::from(beam.eos)];
        assert_eq!(generated, greedy_tokens.as_slice(), "{text}");
        assert_eq!(
            beam.eos,
            generation.reason == whet::engine::protocol::StopReason::Eos
        );
        assert_eq!(stats.steps as usize, beam.tokens.len());
    }
    // The context it grew still serves plain generations, the same way.
    let again = engine
        .generate(greedy(chat(PROMPTS[0]), 48), |_| {})
        .await
        .expect("greedy after beams");
    let (first, _) = search(&mut engine, request(chat(PROMPTS[0]), beams(1), 48)).await;
    assert_eq!(again.text, first[0].text);
    engine.shutdown().await;
}

/// The summed log-probability of `tokens` after `prompt`: llama.cpp in
/// this process decoding the prompt, then one token at a time as a
/// generation does, and each step's log-softmax done in f64.
fn reference_logprob(raw: &RawModel, prompt: &[LlamaToken], tokens: &[i32]) -> f64 {
    let mut ctx = raw
        .context(1024, 512, whet::paths::default_threads(), None)
        .expect("context");
    let mut logits = raw.prompt_logits(&mut ctx, prompt).expect("decode");
    let mut batch = LlamaBatch::new(1, 1);
    let mut sum = 0.0;
    for (offset, &token) in tokens.iter().enumerate() {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let log_sum = logits
            .iter()
            .map(|&l| (f64::from(l) - max).exp())
            .sum::<f64>()
            .ln();
        sum += f64::from(logits[token as usize]) - max - log_sum;
        batch.clear();
        let position = (prompt.len() + offset) as i32;
        batch
            .add(LlamaToken(token), position, &[0], true)
            .expect("batch");
        ctx.decode(&mut batch).expect("decode a token");
        logits = ctx.get_logits_ith(0).to_vec();
    }
    sum
}

#[tokio::test]
async fn scores_are_the_summed_log_probabilities_of_the_returned_tokens() {
    const TEXT: &str = "The capital of France is";
    let prompt = Prompt::Raw {
        text: TEXT.to_string(),
    };
    let settings = BeamSettings {
        num_beams: 3,
        num_return_sequences: 3,
        length_penalty: 0.7,
        early_stopping: EarlyStopping::True,
        ..BeamSettings::default()
    };
    let mut engine = engine(1024, 4).await;
    let (found, _) = search(&mut engine, request(prompt, settings, 12)).await;
    engine.shutdown().await;
    assert_eq!(found.len(), 3);
    assert!(found.windows(2).all(|pair| pair[0].score >= pair[1].score));

    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let raw = RawModel::load(&smollm2()).expect("load in-process");
    let prompt_tokens = raw.tokenize(TEXT);
    for beam in &found {
        let exact = reference_logprob(&raw, &prompt_tokens, &beam.tokens);
        assert!(
            (f64::from(beam.logprob) - exact).abs() < 1e-4 * exact.abs().max(1.0),
            "{:?}: reported {} vs {exact}",
            beam.text,
            beam.logprob
        );
        let length = beam.tokens.len() as f32;
        let score = beam.logprob / length.powf(0.7);
        assert!(
            (beam.score - score).abs() < 1e-4,
            "{} vs {score}",
            beam.score
        );
    }
}

/// The search's model with every beam decoded from an empty cache at
/// each step: what the worker's beams, kept as KV sequences copied and
/// re-assigned, must equal.
struct FromScratch<'a> {
    raw: &'a RawModel,
    ctx: llama_cpp_2::context::LlamaContext<'a>,
    prompt: Vec<LlamaToken>,
    beams: Vec<Vec<LlamaToken>>,
}

impl BeamModel for FromScratch<'_> {
    fn prompt_logits(&mut self) -> Result<Vec<f32>, String> {
        self.raw.prompt_logits(&mut self.ctx, &self.prompt)
    }

    fn advance(&mut self, parents: &[usize], tokens: &[i32]) -> Result<Vec<Vec<f32>>, String> {
        let old = std::mem::take(&mut self.beams);
        self.beams = parents
            .iter()
            .zip(tokens)
            .map(|(&p, &t)| {
                let mut beam = old.get(p).cloned().unwrap_or_else(|| self.prompt.clone());
                beam.push(LlamaToken(t));
                beam
            })
            .collect();
        let beams = self.beams.clone();
        beams
            .iter()
            .map(|beam| self.raw.prompt_logits(&mut self.ctx, beam))
            .collect()
    }
}

#[tokio::test]
async fn beams_kept_in_kv_sequences_equal_beams_decoded_from_scratch() {
    const TEXT: &str = "The capital of France is";
    let settings = BeamSettings {
        num_beams: 3,
        num_return_sequences: 3,
        early_stopping: EarlyStopping::True,
        ..BeamSettings::default()
    };
    let mut engine = engine(1024, 4).await;
    let prompt = Prompt::Raw {
        text: TEXT.to_string(),
    };
    let (found, _) = search(&mut engine, request(prompt, settings.clone(), 12)).await;
    engine.shutdown().await;

    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let raw = RawModel::load(&smollm2()).expect("load in-process");
    let prompt = raw.tokenize(TEXT);
    let eos: Vec<i32> = found
        .iter()
        .flat_map(|b| b.tokens.last().copied().filter(|_| b.eos))
        .collect();
    let mut scratch = FromScratch {
        ctx: raw
            .context(1024, 512, whet::paths::default_threads(), None)
            .expect("context"),
        raw: &raw,
        prompt: prompt.clone(),
        beams: Vec::new(),
    };
    let ids: Vec<i32> = prompt.iter().map(|t| t.0).collect();
    let expected = whet::engine::beams::search(&mut scratch, &ids, &settings.options(12, eos))
        .expect("search from scratch");
    let got: Vec<(&[i32], f32)> = found
        .iter()
        .map(|b| (b.tokens.as_slice(), b.logprob))
        .collect();
    let want: Vec<(&[i32], f32)> = expected
        .hypotheses
        .iter()
        .map(|h| (h.tokens.as_slice(), h.logprob))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn four_beams_find_likelier_replies_than_greedy_on_most_prompts() {
    // length_penalty 0 ranks by summed log-probability alone, the quantity
    // compared; early_stopping "never" searches until no beam can improve.
    let settings = BeamSettings {
        num_beams: 4,
        length_penalty: 0.0,
        early_stopping: EarlyStopping::Never,
        ..BeamSettings::default()
    };
    let mut engine = engine(2048, 5).await;
    let mut at_least_greedy = 0;
    let mut report = Vec::new();
    for text in PROMPTS {
        let (greedy, _) = search(&mut engine, request(chat(text), beams(1), 32)).await;
        let (best, stats) = search(&mut engine, request(chat(text), settings.clone(), 32)).await;
        let (greedy, best) = (&greedy[0], &best[0]);
        // One beam is greedy (the test above), so its logprob is greedy's.
        if best.logprob >= greedy.logprob - 1e-4 {
            at_least_greedy += 1;
        }
        report.push(format!(
            "{text:?}: greedy {:.3} ({} tok), beam 4 {:.3} ({} tok), {} steps",
            greedy.logprob,
            greedy.tokens.len(),
            best.logprob,
            best.tokens.len(),
            stats.steps
        ));
    }
    engine.shutdown().await;
    eprintln!(
        "{}\nbeam 4 >= greedy on {at_least_greedy} of 10",
        report.join("\n")
    );
    assert!(at_least_greedy >= 8, "{}", report.join("\n"));
}

#[tokio::test]
async fn a_search_the_context_cannot_hold_is_refused_before_it_starts() {
    let mut engine = engine(256, 5).await;
    let error = engine
        .beams_until(
            request(chat(PROMPTS[0]), beams(4), 100),
            std::future::pending(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("4 beams × 100 new tokens need") && error.contains("it has 256"),
        "{error}"
    );
    // Too many beams, refused with the limit.
    let error = engine
        .beams_until(
            request(chat(PROMPTS[0]), beams(9), 4),
            std::future::pending(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("at most 8 beams"), "{error}");
    // The worker is still there and serves a search that fits.
    let (found, stats) = search(&mut engine, request(chat(PROMPTS[0]), beams(4), 8)).await;
    assert_eq!(found.len(), 1);
    assert!(stats.steps >= 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_search_ends_with_an_error_and_the_prompt_stays_cached() {
    let mut engine = engine(4096, 5).await;
    let prompt = chat("Write a long story about a lighthouse keeper.");
    let settings = BeamSettings {
        num_beams: 4,
        early_stopping: EarlyStopping::Never,
        ..BeamSettings::default()
    };
    let error = engine
        .beams_until(
            request(prompt.clone(), settings, 900),
            tokio::time::sleep(std::time::Duration::from_millis(300)),
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(error, CANCELLED);
    let (_, stats) = search(&mut engine, request(prompt, beams(2), 4)).await;
    assert_eq!(stats.reused_tokens, stats.prompt_tokens - 1);
    engine.shutdown().await;
}

#[test]
fn whet_run_prints_each_returned_sequence_with_its_score() {
    let logs = tempfile::tempdir().unwrap();
    let model = smollm2();
    let model = model.to_str().unwrap();
    let args = [
        "run",
        "--model",
        model,
        "--beams",
        "3",
        "--num-return",
        "3",
        "--max-tokens",
        "16",
        "--json",
        "Name a colour.",
    ];
    let output = whet(&args, logs.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    let found = report["beams"].as_array().expect("beams");
    assert_eq!(found.len(), 3);
    let scores: Vec<f64> = found.iter().map(|b| b["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|p| p[0] >= p[1]), "{scores:?}");
    assert_eq!(report["beam_search"]["num_beams"], 3);

    // Plain output: a line with each sequence's score above its text.
    let args = [
        "run",
        "--model",
        model,
        "--beams",
        "3",
        "--num-return",
        "2",
        "--max-tokens",
        "16",
        "Name a colour.",
    ];
    let output = whet(&args, logs.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("── beam 1 · score "), "{text}");
    assert!(text.contains("\n── beam 2 · score "), "{text}");
    assert!(stderr(&output).contains("3 beams ×"), "{}", stderr(&output));

    // Beam options without beams, and beams with sampling-only options.
    let output = whet(
        &["run", "--model", model, "--length-penalty", "2", "Hi"],
        logs.path(),
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--length-penalty is a beam-search option"));
    let output = whet(
        &[
            "run", "--model", model, "--beams", "2", "--probs", "3", "Hi",
        ],
        logs.path(),
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--probs does not apply to beam search"));
}
