//! The faults a real server will not produce on demand, from a small local
//! HTTP fixture: a malformed event, an error object inside a 200 stream, a
//! stream cut off, a stall before the first token and between tokens, a
//! 429 with retry-after, a 401 (naming the key's variable, never the key),
//! an oversized event; and the network's own: a refused connection and a
//! host that does not resolve. Each is a clear error, none hangs, and text
//! that had arrived is said to be kept. No model runs here.

mod common;

use std::time::Duration;

use common::fake_server::{delta, finish, json_response, sse_response, Answer, FakeServer};
use whet::engine::protocol::{ChatMessage, GenerateRequest, Prompt, Role, StopReason};
use whet::engine::remote::Backend;
use whet::engine::{EngineClient, SamplingParams};

fn ask() -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: vec![ChatMessage::new(Role::User, "Hi")],
        },
        sampling: SamplingParams::greedy(),
        max_tokens: 16,
        stop: Vec::new(),
        reuse_prefix: true,
        ignore_eos: false,
        probs: None,
        constraint: None,
    }
}

fn backend(url: &str) -> Backend {
    let mut backend = Backend::from_url(url).unwrap();
    backend.name = "fake".into();
    backend.first_token_timeout_s = 2.0;
    backend.idle_timeout_s = 0.5;
    backend.connect_timeout_s = 2.0;
    backend
}

async fn engine(backend: Backend) -> EngineClient {
    let mut engine = EngineClient::connect(backend).await.unwrap();
    engine
        .load(common::load_request("remote".into(), 0))
        .await
        .expect("the probe");
    engine
}

/// The reply to one request against `answers`; (text streamed, result).
async fn one(
    answers: Vec<Answer>,
    set: impl FnOnce(&mut Backend),
) -> (
    String,
    Result<whet::engine::client::Generation, String>,
    FakeServer,
) {
    let server = FakeServer::start(answers);
    let mut backend = backend(&server.url());
    set(&mut backend);
    let mut engine = engine(backend).await;
    let mut text = String::new();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        engine.generate(ask(), |t| text.push_str(t)),
    )
    .await
    .expect("never hangs")
    .map_err(|e| e.to_string());
    (text, result, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_reply_from_the_fixture_and_the_request_it_got() {
    let body = sse_response(
        &[
            ": ping",
            &delta("Hel"),
            &delta("lo"),
            &finish("stop"),
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}",
            "data: [DONE]",
        ],
        true,
    );
    let (text, result, server) = one(vec![Answer::Bytes(body)], |b| b.strict = true).await;
    let reply = result.unwrap();
    assert_eq!((text.as_str(), reply.text.as_str()), ("Hello", "Hello"));
    assert_eq!(reply.reason, StopReason::Eos);
    assert_eq!(
        (reply.stats.prompt_tokens, reply.stats.generated_tokens),
        (9, 2)
    );
    assert_eq!(reply.timing.token_events, 2);
    let requests = server.requests.lock().unwrap().clone();
    let post = requests
        .iter()
        .find(|r| r.starts_with("POST /v1/chat/completions"))
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(post.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["model"], "fake");
    assert_eq!(body["seed"], ask().sampling.seed);
    assert_eq!(body["stream"], true);
    // An OpenAI-compatible server (not llama-server): no llama.cpp extras.
    assert!(body.get("cache_prompt").is_none() && body.get("repeat_penalty").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_after_some_text_keeps_it() {
    let body = sse_response(
        &[&delta("Hel"), "data: {\"choices\": [", "data: [DONE]"],
        true,
    );
    let (text, result, _server) = one(vec![Answer::Bytes(body)], |_| {}).await;
    let error = result.unwrap_err();
    assert_eq!(text, "Hel");
    assert!(error.starts_with("connection lost after 1 tokens (the reply so far is kept): the server sent a malformed event"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_object_inside_a_200_stream() {
    let body = sse_response(
        &["data: {\"error\":{\"code\":500,\"message\":\"slot 0 crashed\",\"type\":\"server_error\"}}"],
        true,
    );
    let (_, result, _server) = one(vec![Answer::Bytes(body)], |_| {}).await;
    assert_eq!(
        result.unwrap_err(),
        "the server failed mid-reply: slot 0 crashed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_off_mid_reply() {
    let body = sse_response(&[&delta("Hel"), &delta("lo")], false);
    let (text, result, _server) = one(vec![Answer::Bytes(body)], |_| {}).await;
    let error = result.unwrap_err();
    assert_eq!(text, "Hello");
    assert!(
        error.starts_with("connection lost after 2 tokens"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_before_the_first_token_and_between_tokens_time_out() {
    let head = sse_response(&[], false);
    let (_, result, _server) = one(vec![Answer::Stall(head, Duration::from_secs(10))], |b| {
        b.first_token_timeout_s = 0.5;
    })
    .await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        "backend 'fake' sent nothing for 0.5 s (first_token_timeout_s)"
    );

    let body = sse_response(&[&delta("Hel")], false);
    let (text, result, _server) =
        one(vec![Answer::Stall(body, Duration::from_secs(10))], |_| {}).await;
    let error = result.unwrap_err();
    assert_eq!(text, "Hel");
    assert!(
        error.ends_with("backend 'fake' sent nothing for 0.5 s (idle_timeout_s)"),
        "{error}"
    );
    assert!(
        error.starts_with("connection lost after 1 tokens"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_says_when_to_retry() {
    let mut answer = json_response(429, r#"{"error":{"message":"too many requests"}}"#);
    let at = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    answer.splice(at..at, b"\r\nRetry-After: 7".iter().copied());
    let (_, result, _server) = one(vec![Answer::Bytes(answer)], |_| {}).await;
    assert_eq!(
        result.unwrap_err(),
        "backend 'fake' is busy (429): too many requests; it asks to retry after 7 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_names_its_variable_and_never_the_key() {
    std::env::set_var("WHET_FAULTS_KEY", "sk-do-not-print-me");
    let answer = json_response(401, r#"{"error":{"message":"Invalid API key"}}"#);
    let (_, result, server) = one(vec![Answer::Bytes(answer)], |b| {
        b.api_key_env = Some("WHET_FAULTS_KEY".into());
    })
    .await;
    let error = result.unwrap_err();
    assert_eq!(
        error,
        "backend 'fake' refused the API key from WHET_FAULTS_KEY (401 Unauthorized): Invalid API key"
    );
    assert!(!error.contains("sk-do-not-print-me"));
    // It was sent, as a bearer token.
    let requests = server.requests.lock().unwrap().clone();
    assert!(requests
        .iter()
        .any(|r| r.contains("authorization: Bearer sk-do-not-print-me")
            || r.contains("Authorization: Bearer sk-do-not-print-me")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_is_refused() {
    let big = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}",
        "x".repeat(5 << 20)
    );
    let body = sse_response(&[&big], true);
    let (_, result, _server) = one(vec![Answer::Bytes(body)], |_| {}).await;
    let error = result.unwrap_err();
    assert!(error.contains("over 4 MiB"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_and_no_such_host_are_said_plainly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut engine = EngineClient::connect(backend(&format!("http://127.0.0.1:{port}/v1")))
        .await
        .unwrap();
    let error = engine
        .load(common::load_request("remote".into(), 0))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("connection refused"), "{error}");
    assert!(
        error.to_string().contains("is the server running?"),
        "{error}"
    );

    let mut engine = EngineClient::connect(backend("http://no-such-host.invalid/v1"))
        .await
        .unwrap();
    let error = engine
        .load(common::load_request("remote".into(), 0))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("does not resolve"), "{error}");
    // Generating without a connected backend is an error, not a hang.
    let error = engine.generate(ask(), |_| {}).await.unwrap_err();
    assert!(
        error.to_string().contains("no backend is connected"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_before_the_first_token_ends_the_request_at_once() {
    let head = sse_response(&[], false);
    let server = FakeServer::start(vec![Answer::Stall(head, Duration::from_secs(30))]);
    let mut engine = engine(backend(&server.url())).await;
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        engine.generate_until(
            ask(),
            |_| {},
            tokio::time::sleep(Duration::from_millis(200)),
        ),
    )
    .await
    .expect("the cancel ends it")
    .unwrap();
    assert_eq!(reply.reason, StopReason::Cancelled);
    assert_eq!(reply.text, "");
}
