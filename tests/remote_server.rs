//! A real llama.cpp `llama-server` on 127.0.0.1 (4 slots, the default
//! model) driven through the same engine interface as the local worker:
//! streaming with the server's own timings, stop mid-reply, token
//! probabilities with ids, a JSON schema, the exact input, four requests in
//! flight, beam search refused as local-only, the server killed mid-stream,
//! and the command line (`run`, `refine`, `backends check`) against it.

mod common;

use std::time::Duration;

use common::llama_server::LlamaServer;
use common::*;
use whet::engine::constraint::Constraint;
use whet::engine::probs::ProbsRequest;
use whet::engine::protocol::{
    ChatMessage, Command, Event, GenerateRequest, Prompt, Role, StopReason,
};
use whet::engine::remote::Backend;
use whet::engine::{EngineClient, SamplingParams};

async fn connect(server: &LlamaServer, max_parallel: u32) -> EngineClient {
    let mut backend = Backend::from_url(&server.url()).unwrap();
    backend.max_parallel = max_parallel;
    let mut engine = EngineClient::connect(backend).await.expect("connect");
    let info = engine
        .load(load_request("remote".into(), 0))
        .await
        .expect("the probe");
    assert!(
        info.n_ctx >= 1024,
        "the server's context per slot: {}",
        info.n_ctx
    );
    assert!(info
        .name
        .unwrap()
        .ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"));
    engine
}

fn ask(text: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: vec![ChatMessage::new(Role::User, text)],
        },
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix: true,
        ignore_eos: false,
        probs: None,
        constraint: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_streams_with_the_servers_own_figures_and_greedy_repeats() {
    let server = LlamaServer::start(4, 1024);
    let mut engine = connect(&server, 1).await;
    let mut pieces = Vec::new();
    let first = engine
        .generate(ask("Name three colours.", 24), |t| {
            pieces.push(t.to_string())
        })
        .await
        .unwrap();
    assert_eq!(first.reason, StopReason::MaxTokens);
    assert_eq!(first.stats.generated_tokens, 24);
    assert_eq!(pieces.concat(), first.text);
    assert!(pieces.len() >= 20, "streamed in pieces: {}", pieces.len());
    assert_eq!(first.timing.token_events as usize, pieces.len());
    assert!(first.timing.ttft_ms > 0.0 && first.timing.first_to_last_ms > 0.0);
    // llama-server's timings: its prompt and generation figures.
    assert!(first.stats.prompt_tokens > 10, "{:?}", first.stats);
    assert!(first.stats.prompt_eval_ms > 0.0 && first.stats.generation_ms > 0.0);
    // Greedy again: the same text, the prompt now from the slot's cache.
    let again = engine
        .generate(ask("Name three colours.", 24), |_| {})
        .await
        .unwrap();
    assert_eq!(again.text, first.text);
    assert!(again.stats.reused_tokens > 0, "{:?}", again.stats);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_reply_keeps_its_text_and_the_server_goes_on() {
    let server = LlamaServer::start(4, 1024);
    let mut engine = connect(&server, 1).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut tx = Some(tx);
    let mut count = 0;
    let request = GenerateRequest {
        ignore_eos: true,
        ..ask("Tell me a long story.", 900)
    };
    let stopped = engine
        .generate_until(
            request,
            |_| {
                count += 1;
                if count == 5 {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            },
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    assert_eq!(stopped.reason, StopReason::Cancelled);
    assert!(!stopped.text.is_empty());
    assert!(
        stopped.tokens.len() < 100,
        "{} tokens",
        stopped.tokens.len()
    );
    let next = engine.generate(ask("Hi", 4), |_| {}).await.unwrap();
    assert_eq!(next.stats.generated_tokens, 4);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probabilities_come_with_token_ids_and_alternatives() {
    let server = LlamaServer::start(4, 1024);
    let mut engine = connect(&server, 1).await;
    let request = GenerateRequest {
        probs: Some(ProbsRequest {
            top: 5,
            after_sampler: false,
        }),
        ..ask("Name a colour.", 12)
    };
    let reply = engine.generate(request, |_| {}).await.unwrap();
    assert_eq!(reply.tokens.len(), 12);
    for token in &reply.tokens {
        assert!(token.token >= 0, "an id: {token:?}");
        let probs = token.probs.as_ref().expect("probabilities");
        assert_eq!(probs.top.len(), 5);
        // Greedy: the token is the likeliest, with its own log-probability.
        assert_eq!(probs.top[0].token, token.token);
        assert!((probs.top[0].logprob - probs.logprob).abs() < 1e-4);
        assert!(probs.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
    }
    let spelled: String = reply.tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(spelled, reply.text);
    // The distribution after the sampler is the local engine's alone.
    let request = GenerateRequest {
        probs: Some(ProbsRequest {
            top: 5,
            after_sampler: true,
        }),
        ..ask("Hi", 4)
    };
    let error = engine.generate(request, |_| {}).await.unwrap_err();
    assert!(error.to_string().contains("after the sampler"), "{error}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_schema_output_parses_and_validates() {
    let server = LlamaServer::start(4, 1024);
    let mut engine = connect(&server, 1).await;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/person.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for prompt in [
        "Describe a person.",
        "Invent a pilot.",
        "Who is your friend?",
    ] {
        let request = GenerateRequest {
            constraint: Some(Constraint::schema_file(&path).unwrap()),
            ..ask(prompt, 200)
        };
        let reply = engine.generate(request, |_| {}).await.unwrap();
        assert_eq!(reply.reason, StopReason::Eos, "{}", reply.text);
        let value: serde_json::Value = serde_json::from_str(&reply.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text));
        assert!(validator.is_valid(&value), "{}", reply.text);
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exact_input_and_its_length_come_from_the_server() {
    let server = LlamaServer::start(4, 1024);
    let mut engine = connect(&server, 1).await;
    let prompt = Prompt::Chat {
        messages: vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Name a colour."),
        ],
    };
    let (text, tokens) = engine.format_prompt(prompt.clone()).await.unwrap();
    assert!(
        text.contains("<|im_start|>system\nBe brief.<|im_end|>"),
        "{text}"
    );
    assert!(
        text.contains("<|im_start|>user\nName a colour.<|im_end|>"),
        "{text}"
    );
    assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
    let (counted, n_ctx) = engine.count_tokens(prompt.clone()).await.unwrap();
    assert_eq!(counted, tokens);
    assert_eq!(n_ctx, 1024);
    // The reply's prompt is the same length.
    let reply = engine
        .generate(
            GenerateRequest {
                prompt,
                ..ask("", 2)
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(reply.stats.prompt_tokens, tokens);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_requests_in_flight_each_end_and_the_batch_reports() {
    let server = LlamaServer::start(4, 1024);
    let mut engine = connect(&server, 4).await;
    let requests: Vec<GenerateRequest> = ["red", "blue", "green", "yellow"]
        .iter()
        .map(|c| ask(&format!("Say something about {c}."), 16))
        .collect();
    // One at a time first, for the texts to compare with.
    let mut alone = Vec::new();
    for request in &requests {
        alone.push(engine.generate(request.clone(), |_| {}).await.unwrap().text);
    }
    let (outcomes, stats) = engine.generate_many(requests, 4, |_, _| {}).await.unwrap();
    assert_eq!((stats.requests, stats.parallel), (4, 4));
    assert_eq!(stats.generated_tokens, 64);
    for (outcome, text) in outcomes.iter().zip(&alone) {
        let generation = outcome.as_ref().expect("done");
        assert_eq!(generation.stats.generated_tokens, 16);
        assert!(!generation.text.is_empty());
        // Greedy in a batch of slots may differ in the last bits of the
        // logits; the texts start the same.
        let same_start = generation
            .text
            .chars()
            .zip(text.chars())
            .take_while(|(a, b)| a == b)
            .count();
        assert!(same_start >= 8, "{:?} vs {:?}", generation.text, text);
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beam_search_is_refused_as_local_only() {
    let server = LlamaServer::start(1, 1024);
    let mut engine = connect(&server, 1).await;
    let request = whet::engine::protocol::BeamRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: vec![ChatMessage::new(Role::User, "Hi")],
        },
        beams: whet::engine::beams::BeamSettings {
            num_beams: 2,
            ..Default::default()
        },
        max_tokens: 8,
    };
    let error = engine
        .beams_until(request, std::future::pending())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("local engine only"), "{error}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_mid_stream_is_a_connection_lost_with_the_text_kept() {
    let mut server = LlamaServer::start(1, 2048);
    let mut engine = connect(&server, 1).await;
    let id = engine
        .start_generate(GenerateRequest {
            ignore_eos: true,
            ..ask("Tell me a long story.", 1500)
        })
        .unwrap();
    let mut text = String::new();
    let mut tokens = 0;
    let message = loop {
        match tokio::time::timeout(Duration::from_secs(60), engine.next_event()).await {
            Ok(Ok(Event::Token { text: piece, .. })) => {
                text.push_str(&piece);
                tokens += 1;
                if tokens == 5 {
                    server.kill();
                }
            }
            Ok(Ok(Event::Error {
                id: Some(e),
                message,
            })) if e == id => break message,
            Ok(Ok(other)) => panic!("{other:?}"),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("no end within 60 s after the kill"),
        }
    };
    assert!(message.starts_with("connection lost after"), "{message}");
    assert!(message.contains("the reply so far is kept"), "{message}");
    assert!(!text.is_empty());
    // The engine itself is fine: the next request says the server is gone.
    let error = engine.generate(ask("Hi", 2), |_| {}).await.unwrap_err();
    assert!(error.to_string().contains("connection refused"), "{error}");
    engine.send(Command::Shutdown).unwrap();
}

#[test]
fn the_command_line_runs_refines_and_checks_against_the_server() {
    let server = LlamaServer::start(2, 2048);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("backends.toml"),
        format!(
            "[local]\nurl = \"{}\"\napi_key_env = \"WHET_TEST_SERVER_KEY\"\nmax_parallel = 2\n",
            server.url()
        ),
    )
    .unwrap();
    let whet_here = |args: &[&str], key: Option<&str>| {
        let mut command = std::process::Command::new(whet_bin());
        command
            .args(args)
            .env("WHET_CONFIG_DIR", &config)
            .env("WHET_DATA_DIR", dir.path().join("data"))
            .env("WHET_LOG_DIR", dir.path())
            .env_remove("WHET_TEST_SERVER_KEY")
            .stdin(std::process::Stdio::null());
        if let Some(key) = key {
            command.env("WHET_TEST_SERVER_KEY", key);
        }
        command.output().unwrap()
    };
    // The key is named by its variable; unset, it says which.
    let output = whet_here(&["run", "--backend", "local", "Hi"], None);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("WHET_TEST_SERVER_KEY is not set"),
        "{}",
        stderr(&output)
    );

    let output = whet_here(
        &[
            "run",
            "--backend",
            "local",
            "--temp",
            "0",
            "--max-tokens",
            "12",
            "--json",
            "Name a colour.",
        ],
        Some("sk-test-secret"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["stats"]["generated_tokens"], 12);
    assert!(report["model"].as_str().unwrap().contains(&server.url()));

    let output = whet_here(
        &[
            "refine",
            "--backend",
            "local",
            "--prompt",
            "Name a colour.",
            "--rounds",
            "2",
            "--temp",
            "0",
            "--max-tokens",
            "40",
            "--json",
            "--no-save",
        ],
        Some("sk-test-secret"),
    );
    assert!(
        output.status.success(),
        "{:?}: {} {}",
        output.status,
        stderr(&output),
        stdout(&output)
    );
    let run: whet::refine::RefineRun = serde_json::from_value(json(&output)).unwrap();
    assert!(run.passes.len() >= 2, "{:?}", run.end);
    assert!(run.passes[0].feedback.is_some());

    let output = whet_here(&["backends", "check", "local"], Some("sk-test-secret"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("reachable"), "{text}");
    assert!(text.contains("llama-server (detected)"), "{text}");
    assert!(text.contains("slots      2"), "{text}");
    assert!(text.contains("generation"), "{text}");
    assert!(!text.contains("sk-test-secret"));

    let output = whet_here(&["backends", "list"], Some("sk-test-secret"));
    assert!(
        stdout(&output).contains("key from WHET_TEST_SERVER_KEY"),
        "{}",
        stdout(&output)
    );
    assert!(!stdout(&output).contains("sk-test-secret"));
    // An experiment over the server: its cells go out up to max_parallel
    // (2 here) at a time, into the same results file as a local run.
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("d.jsonl"),
        "{\"text\": \"red\", \"reference\": \"red\"}\n{\"text\": \"blue\", \"reference\": \"blue\"}\n{\"text\": \"green\", \"reference\": \"green\"}\n{\"text\": \"gold\", \"reference\": \"gold\"}\n",
    )
    .unwrap();
    std::fs::write(
        files.join("e.toml"),
        "name = \"e\"\nprompt = \"Repeat the word {{text}}.\"\ndataset = \"d.jsonl\"\nmetrics = [\"chrf\"]\n[[variants]]\nname = \"greedy\"\ntemperature = 0\nmax_tokens = 16\n",
    )
    .unwrap();
    let experiment = files.join("e.toml");
    let output = whet_here(
        &[
            "experiment",
            "run",
            experiment.to_str().unwrap(),
            "--backend",
            "local",
            "--parallel",
            "4",
            "--json",
        ],
        Some("sk-test-secret"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let runs = dir.path().join("data").join("experiments");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let results = std::fs::read_to_string(run.join("results.jsonl")).unwrap();
    let cells: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cells.len(), 4, "{results}");
    assert!(
        cells
            .iter()
            .all(|c| c["error"].is_null() && !c["output"].as_str().unwrap_or_default().is_empty()),
        "{results}"
    );
    // A variant with a model of its own cannot run on the server's.
    std::fs::write(
        files.join("m.toml"),
        "name = \"m\"\nprompt = \"Say {{text}}\"\ndataset = \"d.jsonl\"\n[[variants]]\nname = \"own\"\nmodel = \"smollm2-135m\"\n",
    )
    .unwrap();
    let output = whet_here(
        &[
            "experiment",
            "run",
            files.join("m.toml").to_str().unwrap(),
            "--backend",
            "local",
        ],
        Some("sk-test-secret"),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("variant 'own' names its own model"),
        "{}",
        stderr(&output)
    );

    // The benchmark: whet's view of each reply against the server's own
    // timings, and cells in flight at once against one at a time.
    let output = whet_here(
        &[
            "bench",
            "--backend",
            "local",
            "--reps",
            "2",
            "--gen-tokens",
            "16",
            "--json",
        ],
        Some("sk-test-secret"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let bench = json(&output)["remote"].clone();
    assert_eq!(bench["reps"], 2);
    assert_eq!(bench["generated_tokens"]["median"], 16.0);
    // The prompt was evaluated afresh each time, not taken from the cache.
    assert!(
        bench["prompt_tokens"]["min"].as_f64().unwrap() > 10.0,
        "{bench}"
    );
    for figure in ["whet", "raw"] {
        let tok_s = bench["generation_tok_s"][figure]["median"]
            .as_f64()
            .unwrap();
        assert!(tok_s > 1.0 && tok_s.is_finite(), "{bench}");
    }
    assert!(
        bench["ttft_overhead_ms"]["median"].as_f64().unwrap() >= 0.0,
        "{bench}"
    );
    let output = whet_here(
        &[
            "bench",
            "--backend",
            "local",
            "--parallel",
            "1,2",
            "--cells",
            "4",
            "--reps",
            "1",
            "--gen-tokens",
            "8",
            "--json",
        ],
        Some("sk-test-secret"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = whet_here(
        &[
            "bench",
            "--backend",
            "local",
            "--parallel",
            "4",
            "--cells",
            "4",
        ],
        Some("sk-test-secret"),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("backend 'local' allows 2 request(s) in flight"),
        "{}",
        stderr(&output)
    );

    drop(server);
    let output = whet_here(&["backends", "check", "local"], Some("sk-test-secret"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("connection refused"),
        "{}",
        stdout(&output)
    );
}

/// The model picker asks every backend of the file at once: the live
/// server lists its model with what it can do, a dead one says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_picker_lists_a_live_servers_model_and_a_dead_ones_problem() {
    use whet::tui::app::Msg;
    use whet::tui::model_list;
    let server = LlamaServer::start(4, 1024);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let backends = whet::engine::remote::config::parse(
        "backends.toml",
        &format!(
            "[live]\nurl = \"{}\"\n[gone]\nurl = \"{dead_url}\"\n",
            server.url()
        ),
    )
    .unwrap();
    let (sender, mut answers) = tokio::sync::mpsc::unbounded_channel();
    model_list::ask_backends(backends, None, sender);
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(30), answers.recv())
            .await
            .expect("every backend answers or fails within its timeouts")
            .unwrap();
        let Msg::BackendItems { backend, items } = msg else {
            panic!("unexpected message");
        };
        seen.insert(backend, items);
    }
    let live = &seen["live"];
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(
        live[0]
            .label
            .ends_with("SmolLM2-135M-Instruct.Q4_1.gguf @ live"),
        "{live:?}"
    );
    assert!(
        live[0]
            .detail
            .starts_with("remote · llama-server · 1024 ctx · 4 slots · "),
        "{}",
        live[0].detail
    );
    assert!(live[0].problem.is_none());
    let gone = &seen["gone"];
    assert!(
        gone[0]
            .problem
            .as_deref()
            .unwrap()
            .starts_with("backend 'gone' is not reachable: "),
        "{gone:?}"
    );
}
