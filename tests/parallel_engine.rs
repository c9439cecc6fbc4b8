//! Several requests decoded together as parallel sequences of one context,
//! through the real worker and the real model: the same greedy outputs as
//! one at a time, a shared prefix decoded once, slots reused as sequences
//! finish, and a failing request that does not take the others down.

mod common;

use common::*;
use whet::engine::protocol::{ChatMessage, GenerateRequest, Prompt, Role, StopReason};
use whet::engine::{EngineClient, SamplingParams, SpawnOptions};

const SYSTEM: &str = "You are a helpful assistant. Answer in one short sentence.";
const QUESTIONS: [&str; 6] = [
    "What is the capital of France?",
    "Name a colour of the sky.",
    "How many legs does a spider have?",
    "What do bees make?",
    "Which planet is closest to the sun?",
    "What is frozen water called?",
];

fn question(text: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: vec![
                ChatMessage::new(Role::System, SYSTEM),
                ChatMessage::new(Role::User, text),
            ],
        },
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix: false,
        ignore_eos: false,
        probs: None,
        constraint: None,
    }
}

async fn engine(parallel: u32, n_ctx: u32) -> EngineClient {
    let options = SpawnOptions::local(whet_bin());
    let mut engine = EngineClient::spawn(&options).await.expect("spawn worker");
    let mut request = load_request(smollm2(), n_ctx);
    request.parallel = parallel;
    engine.load(request).await.expect("load model");
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_greedy_outputs_equal_one_at_a_time_and_the_shared_prefix_is_decoded_once() {
    let mut engine = engine(4, 4096).await;
    let mut sequential = Vec::new();
    for q in QUESTIONS {
        let generation = engine.generate(question(q, 32), |_| {}).await.unwrap();
        sequential.push(generation.text);
    }
    let requests: Vec<_> = QUESTIONS.iter().map(|q| question(q, 32)).collect();
    let mut streamed = vec![String::new(); QUESTIONS.len()];
    let (results, stats) = engine
        .generate_many(requests, 4, |index, text| streamed[index].push_str(text))
        .await
        .unwrap();
    let texts: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("every request answers").text)
        .collect();
    assert_eq!(streamed, texts, "the streamed pieces spell each reply");
    // A step that decodes one token for each of several sequences runs
    // llama.cpp's matrix kernels on several rows at once, which round
    // differently from the one-row step of a lone sequence: a near tie can
    // go the other way, and the reply then goes on differently. Most
    // replies are the same, and all of them start the same.
    let differing: Vec<_> = (0..texts.len())
        .filter(|&i| texts[i] != sequential[i])
        .map(|i| (QUESTIONS[i], &sequential[i], &texts[i]))
        .collect();
    assert!(differing.len() * 2 < texts.len(), "{differing:#?}");
    for (_, expected, got) in &differing {
        let start = |t: &str| t.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        assert_eq!(start(expected), start(got));
    }
    assert!(texts[0].contains("Paris"), "{}", texts[0]);
    assert_eq!((stats.requests, stats.parallel), (6, 4));
    // The system prompt's tokens were decoded for the first sequence only:
    // each later request copied them.
    let prefix_tokens = engine
        .count_tokens(Prompt::Chat {
            messages: vec![ChatMessage::new(Role::System, SYSTEM)],
        })
        .await
        .unwrap()
        .0;
    assert!(
        stats.prompt_tokens_shared as usize >= 5 * (prefix_tokens as usize - 2),
        "{stats:?}, a prefix of about {prefix_tokens} tokens"
    );
    // Fewer decodes than one per token of every reply: the batches were shared.
    assert!(stats.decodes < stats.generated_tokens, "{stats:?}");

    // One sequence at a time through the same scheduler (prefix copies,
    // slots reused) is exactly the sequential decoding.
    let requests: Vec<_> = QUESTIONS.iter().map(|q| question(q, 32)).collect();
    let (one_at_a_time, stats) = engine.generate_many(requests, 1, |_, _| {}).await.unwrap();
    let one_at_a_time: Vec<String> = one_at_a_time.into_iter().map(|r| r.unwrap().text).collect();
    assert_eq!(one_at_a_time, sequential);
    assert_eq!(stats.parallel, 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_is_an_error_of_its_own_and_the_rest_finish() {
    let mut engine = engine(2, 256).await;
    let long = "word ".repeat(400);
    let requests = vec![
        question(QUESTIONS[0], 8),
        question(&long, 8),
        question(QUESTIONS[1], 8),
    ];
    let (results, stats) = engine.generate_many(requests, 2, |_, _| {}).await.unwrap();
    assert_eq!(results.len(), 3);
    let error = results[1].as_ref().unwrap_err();
    assert!(error.contains("the context holds 256"), "{error}");
    for index in [0, 2] {
        let generation = results[index].as_ref().unwrap();
        assert!(
            matches!(generation.reason, StopReason::Eos | StopReason::MaxTokens),
            "{generation:?}"
        );
        assert!(!generation.text.is_empty());
    }
    assert_eq!(stats.requests, 3);
    // The context serves single requests as before afterwards.
    let after = engine
        .generate(question(QUESTIONS[0], 8), |_| {})
        .await
        .unwrap();
    assert_eq!(after.text, results[0].as_ref().unwrap().text);
    engine.shutdown().await;
}
