//! Token probabilities through the real worker and the real default model:
//! what `GenerateRequest::probs` returns, checked against an independent
//! softmax over llama.cpp's logits, greedy decoding, parallel sequences and
//! `whet run --probs`.

mod common;

use common::*;
use whet::bench::raw::RawModel;
use whet::engine::client::{Generation, TokenRecord};
use whet::engine::probs::ProbsRequest;
use whet::engine::protocol::{GenerateRequest, Prompt};
use whet::engine::SamplingParams;

const PROMPT: &str = "The capital of France is";

fn greedy_with_probs(top: u8, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt: Prompt::Raw {
            text: PROMPT.to_string(),
        },
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix: false,
        ignore_eos: false,
        probs: Some(ProbsRequest {
            top,
            after_sampler: false,
        }),
        constraint: None,
    }
}

fn probs_of(record: &TokenRecord) -> &whet::engine::probs::TokenProbs {
    record
        .probs
        .as_ref()
        .expect("every sampled token has probs")
}

async fn generate(request: GenerateRequest) -> Generation {
    let mut engine = engine_with(smollm2(), 1024).await;
    let generation = engine.generate(request, |_| {}).await.expect("generation");
    engine.shutdown().await;
    generation
}

#[tokio::test]
async fn greedy_tokens_are_their_own_most_likely_alternative() {
    let generation = generate(greedy_with_probs(5, 16)).await;
    assert_eq!(generation.tokens.len(), 16);
    for (index, record) in generation.tokens.iter().enumerate() {
        let probs = probs_of(record);
        assert_eq!(probs.top.len(), 5, "token {index}");
        // Greedy takes the raw argmax: the token heads its own list.
        assert_eq!(probs.top[0].token, record.token, "token {index}");
        assert_eq!(probs.top[0].logprob, probs.logprob);
        assert!(probs
            .top
            .windows(2)
            .all(|pair| pair[0].logprob >= pair[1].logprob));
        let mass: f32 = probs.top.iter().map(|a| a.logprob.exp()).sum();
        assert!(mass <= 1.0 + 1e-3, "token {index}: {mass}");
        assert!((record.prob - probs.logprob.exp()).abs() < 1e-6);
        assert!(probs.logprob <= 0.0);
    }
    // The text of each alternative is the token's own text.
    let first = &generation.tokens[0];
    assert_eq!(probs_of(first).top[0].text, first.text);
}

#[tokio::test]
async fn first_token_probabilities_equal_an_exact_softmax_of_the_logits() {
    let generation = generate(greedy_with_probs(20, 1)).await;
    let reported = probs_of(&generation.tokens[0]).clone();

    // The same prompt decoded in this process with llama-cpp-2 directly,
    // and the log-softmax done in f64 the slow obvious way.
    // llama.cpp's log goes to tracing, which nothing here prints.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let raw = RawModel::load(&smollm2()).expect("load in-process");
    let mut ctx = raw
        .context(1024, 512, whet::paths::default_threads(), None)
        .expect("context");
    let logits = raw
        .prompt_logits(&mut ctx, &raw.tokenize(PROMPT))
        .expect("decode");
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_sum = logits
        .iter()
        .map(|&l| (f64::from(l) - max).exp())
        .sum::<f64>()
        .ln();
    let logprob = |token: i32| f64::from(logits[token as usize]) - max - log_sum;
    let mut order: Vec<i32> = (0..logits.len() as i32).collect();
    order.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });

    assert_eq!(generation.tokens[0].token, order[0]);
    // The entropy over the whole vocabulary, in f64.
    let entropy: f64 = -(0..logits.len() as i32)
        .map(logprob)
        .filter(|l| l.is_finite())
        .map(|l| l.exp() * l)
        .sum::<f64>();
    let reported_entropy = f64::from(reported.entropy.expect("entropy"));
    assert!(
        (reported_entropy - entropy).abs() < 1e-2,
        "{reported_entropy} vs {entropy}"
    );
    assert!((f64::from(reported.logprob) - logprob(order[0])).abs() < 1e-3);
    let tokens: Vec<i32> = reported.top.iter().map(|a| a.token).collect();
    assert_eq!(tokens, order[..20].to_vec());
    for alternative in &reported.top {
        let exact = logprob(alternative.token);
        assert!(
            (f64::from(alternative.logprob) - exact).abs() < 1e-3,
            "token {}: {} vs {exact}",
            alternative.token,
            alternative.logprob
        );
    }
}

#[tokio::test]
async fn parallel_sequences_report_the_same_probabilities_as_one_alone() {
    let alone = generate(greedy_with_probs(3, 12)).await;
    let mut engine = EngineClientBuilder::parallel(2).await;
    let (results, _) = engine
        .generate_many(
            vec![greedy_with_probs(3, 12), greedy_with_probs(3, 12)],
            2,
            |_, _| {},
        )
        .await
        .expect("batch");
    engine.shutdown().await;
    for result in results {
        let together = result.expect("request");
        assert_eq!(together.text, alone.text);
        for (a, b) in alone.tokens.iter().zip(&together.tokens) {
            let (a, b) = (probs_of(a), probs_of(b));
            // Batched decoding may round differently in the last bits.
            assert!((a.logprob - b.logprob).abs() < 1e-2, "{a:?} vs {b:?}");
            let ids = |p: &whet::engine::probs::TokenProbs| -> Vec<i32> {
                p.top.iter().map(|x| x.token).collect()
            };
            assert_eq!(ids(a)[0], ids(b)[0]);
        }
    }
}

/// A worker loaded for two parallel sequences.
struct EngineClientBuilder;

impl EngineClientBuilder {
    async fn parallel(parallel: u32) -> whet::engine::EngineClient {
        let options = whet::engine::SpawnOptions::local(whet_bin());
        let mut engine = whet::engine::EngineClient::spawn(&options)
            .await
            .expect("spawn");
        let mut load = load_request(smollm2(), 2048);
        load.parallel = parallel;
        engine.load(load).await.expect("load");
        engine
    }
}

#[tokio::test]
async fn more_than_twenty_alternatives_are_refused() {
    let mut engine = engine_with(smollm2(), 1024).await;
    let error = engine
        .generate(greedy_with_probs(21, 4), |_| {})
        .await
        .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("21 alternatives per token asked for; at most 20"),
        "{error}"
    );
    engine.shutdown().await;
}

#[test]
fn run_probs_json_has_every_token_and_the_reply_summary() {
    let dir = tempfile::tempdir().unwrap();
    let output = whet(
        &[
            "run",
            "--raw",
            "--temp",
            "0",
            "--max-tokens",
            "8",
            "--probs",
            "3",
            "--json",
            PROMPT,
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    let tokens = report["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 8);
    let mut sum = 0.0;
    for token in tokens {
        let top = token["probs"]["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["token"], token["token"]);
        sum += token["probs"]["logprob"].as_f64().unwrap();
    }
    let confidence = &report["confidence"];
    assert_eq!(confidence["tokens"], 8);
    let mean = confidence["mean_logprob"].as_f64().unwrap();
    assert!((mean - sum / 8.0).abs() < 1e-6);
    assert!((confidence["perplexity"].as_f64().unwrap() - (-mean).exp()).abs() < 1e-6);
    let lowest = confidence["lowest"].as_array().unwrap();
    assert_eq!(lowest.len(), 5);
    let least = lowest[0]["logprob"].as_f64().unwrap();
    assert!(tokens
        .iter()
        .all(|t| t["probs"]["logprob"].as_f64().unwrap() >= least));

    // Without --probs the JSON carries no probability lists.
    let plain = whet(
        &[
            "run",
            "--raw",
            "--temp",
            "0",
            "--max-tokens",
            "2",
            "--json",
            PROMPT,
        ],
        dir.path(),
    );
    let report = json(&plain);
    assert!(report["confidence"].is_null());
    assert!(report["tokens"][0].get("probs").is_none());

    let refused = whet(&["run", "--probs", "21", PROMPT], dir.path());
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("21 is not in 0..=20"),
        "{}",
        stderr(&refused)
    );
}

fn sampled_request(seed: u32, after_sampler: bool) -> GenerateRequest {
    GenerateRequest {
        sampling: SamplingParams {
            temperature: 0.8,
            top_k: 5,
            seed,
            ..SamplingParams::default()
        },
        probs: Some(ProbsRequest {
            top: 6,
            after_sampler,
        }),
        ..greedy_with_probs(6, 32)
    }
}

#[tokio::test]
async fn after_sampler_probabilities_leave_the_draw_unchanged() {
    let mut engine = engine_with(smollm2(), 1024).await;
    for seed in [1, 7, 42] {
        let raw = engine
            .generate(sampled_request(seed, false), |_| {})
            .await
            .expect("raw");
        let drawn = engine
            .generate(sampled_request(seed, true), |_| {})
            .await
            .expect("after sampler");
        // Same calls into the sampler in the same order: the same tokens.
        let tokens = |g: &Generation| g.tokens.iter().map(|t| t.token).collect::<Vec<_>>();
        assert_eq!(tokens(&raw), tokens(&drawn), "seed {seed}");
        for (index, (r, d)) in raw.tokens.iter().zip(&drawn.tokens).enumerate() {
            let (r, d) = (probs_of(r), probs_of(d));
            // top-k 5 leaves at most five candidates, and they are all of
            // the distribution drawn from.
            assert!(d.top.len() <= 5, "seed {seed} token {index}");
            let mass: f32 = d.top.iter().map(|a| a.logprob.exp()).sum();
            assert!(
                (mass - 1.0).abs() < 1e-3,
                "seed {seed} token {index}: {mass}"
            );
            assert!(d.top.iter().any(|a| a.token == drawn.tokens[index].token));
            // The raw report keeps the whole vocabulary's alternatives.
            assert_eq!(r.top.len(), 6);
        }
    }
    let mut batch = EngineClientBuilder::parallel(2).await;
    let (results, _) = batch
        .generate_many(vec![sampled_request(1, true)], 2, |_, _| {})
        .await
        .expect("batch");
    assert!(results[0]
        .as_ref()
        .unwrap_err()
        .contains("probabilities after the sampler are reported for single requests only"));
    batch.shutdown().await;
    engine.shutdown().await;
}
