//! Forking a reply from the lens, through the real worker and the real
//! default model: the reply cut before a token, another token forced there,
//! and greedy generation going on from exactly those tokens, with the KV
//! cache up to the fork reused; and token ids outside the vocabulary
//! refused as errors.

mod common;

use common::*;
use whet::engine::client::Generation;
use whet::engine::probs::ProbsRequest;
use whet::engine::protocol::{ChatMessage, GenerateRequest, Prompt, Role, StopReason};
use whet::engine::SamplingParams;

fn greedy(prompt: Prompt, max_tokens: u32, reuse_prefix: bool) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt,
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix,
        ignore_eos: false,
        probs: Some(ProbsRequest {
            top: 5,
            after_sampler: false,
        }),
        constraint: None,
    }
}

fn question() -> ChatMessage {
    ChatMessage::new(Role::User, "Name three colours and say why you like them.")
}

fn open(text: &str, tokens: Vec<i32>) -> Prompt {
    Prompt::ChatContinue {
        messages: vec![question(), ChatMessage::new(Role::Assistant, text)],
        open_tokens: Some(tokens),
    }
}

fn ids(generation: &Generation) -> Vec<i32> {
    generation.tokens.iter().map(|t| t.token).collect()
}

#[tokio::test]
async fn a_fork_continues_like_a_fresh_greedy_generation_from_the_same_tokens() {
    let mut engine = engine_with(smollm2(), 1024).await;
    let first = engine
        .generate(
            greedy(
                Prompt::Chat {
                    messages: vec![question()],
                },
                24,
                true,
            ),
            |_| {},
        )
        .await
        .expect("first reply");
    assert_eq!(first.tokens.len(), 24);

    // Fork at token 6 with the likeliest token the model did not take.
    let at = 6;
    let original = &first.tokens[at];
    let choice = original
        .probs
        .as_ref()
        .expect("probabilities")
        .top
        .iter()
        .find(|a| a.token != original.token)
        .expect("an alternative")
        .clone();
    let mut tokens: Vec<i32> = ids(&first)[..at].to_vec();
    tokens.push(choice.token);
    let text: String = first.tokens[..at]
        .iter()
        .map(|t| t.text.as_str())
        .chain([choice.text.as_str()])
        .collect();

    let fork = engine
        .generate(greedy(open(&text, tokens.clone()), 16, true), |_| {})
        .await
        .expect("fork");
    // The prompt and the kept tokens were still in the cache.
    assert_eq!(
        fork.stats.prompt_tokens,
        first.stats.prompt_tokens + at as u32 + 1
    );
    assert!(
        fork.stats.reused_tokens >= first.stats.prompt_tokens + at as u32,
        "reused {} of {} + {at}",
        fork.stats.reused_tokens,
        first.stats.prompt_tokens
    );
    assert_ne!(
        ids(&fork),
        ids(&first)[at + 1..at + 1 + fork.tokens.len()].to_vec()
    );

    // The same tokens evaluated from scratch continue the same way.
    let fresh = engine
        .generate(greedy(open(&text, tokens), 16, false), |_| {})
        .await
        .expect("fresh");
    assert_eq!(fresh.stats.reused_tokens, 0);
    assert_eq!(ids(&fork), ids(&fresh));
    assert_eq!(fork.text, fresh.text);
    engine.shutdown().await;
}

#[tokio::test]
async fn given_token_ids_must_be_in_the_vocabulary() {
    let mut engine = engine_with(smollm2(), 1024).await;
    // SmolLM2's vocabulary.
    let n_vocab = 49_152;
    for bad in [-1, n_vocab, i32::MAX] {
        let error = engine
            .generate(greedy(open("x", vec![28, bad]), 4, true), |_| {})
            .await
            .expect_err("a bad token id is refused");
        assert!(
            error.to_string().contains(&format!(
                "token id {bad} is not in the model's vocabulary (0 to 49151)"
            )),
            "{error}"
        );
        let counted = engine.count_tokens(open("x", vec![bad])).await;
        assert!(counted.is_err(), "{counted:?}");
    }
    // The worker is still there, and a forced end of turn ends the reply.
    let ended = engine
        .generate(greedy(open("Hi", vec![28, 2]), 4, true), |_| {})
        .await
        .expect("an end-of-turn token given");
    assert_eq!(ended.reason, StopReason::Eos);
    assert_eq!(ended.text, "");
    engine.shutdown().await;
}
