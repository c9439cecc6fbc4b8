//! Every command and event survives the wire format unchanged, and the worker
//! answers a malformed line with an error instead of dying.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use serde::de::DeserializeOwned;
use serde::Serialize;
use whet::engine::protocol::*;
use whet::engine::SamplingParams;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
    let line = encode_line(&value);
    assert!(!line.contains('\n'), "one line per message: {line}");
    let back: T = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(back, value);
}

/// Fails to compile when a variant is added without a round-trip case below.
fn command_is_covered(command: &Command) {
    match command {
        Command::Load(_)
        | Command::Generate(_)
        | Command::GenerateMany { .. }
        | Command::Cancel { .. }
        | Command::CountTokens { .. }
        | Command::FormatPrompt { .. }
        | Command::Beams(_)
        | Command::Shutdown => {}
    }
}

fn event_is_covered(event: &Event) {
    match event {
        Event::Ready { .. }
        | Event::LoadProgress { .. }
        | Event::Loaded { .. }
        | Event::Token { .. }
        | Event::Done { .. }
        | Event::ManyDone { .. }
        | Event::BeamsDone { .. }
        | Event::TokenCount { .. }
        | Event::Formatted { .. }
        | Event::Error { .. } => {}
    }
}

fn chat_prompt() -> Prompt {
    Prompt::Chat {
        messages: vec![
            ChatMessage::new(Role::System, "Be brief. \"quoted\" \\ back"),
            ChatMessage::new(Role::User, "日本語 😀 <|im_start|>\n\ttab"),
            ChatMessage::new(Role::Assistant, ""),
        ],
    }
}

#[test]
fn every_command_round_trips() {
    let commands = vec![
        Command::Load(LoadRequest {
            model: PathBuf::from("/models/ü space.gguf"),
            n_ctx: 4096,
            n_batch: 512,
            threads: 2,
            chat_format: Some("chatml".into()),
            vocab_only: true,
            flash_attention: Some(false),
            parallel: 1,
        }),
        Command::Generate(GenerateRequest {
            id: 7,
            prompt: chat_prompt(),
            sampling: SamplingParams {
                temperature: 0.7,
                top_k: 20,
                top_p: 0.9,
                min_p: 0.1,
                repeat_penalty: 1.1,
                repeat_last_n: 32,
                seed: 42,
            },
            max_tokens: 128,
            stop: vec!["\n\n".into(), "END".into()],
            reuse_prefix: false,
            ignore_eos: true,
            probs: None,
            constraint: None,
        }),
        Command::Generate(GenerateRequest {
            id: 8,
            prompt: Prompt::Raw {
                text: "raw <s> text".into(),
            },
            sampling: SamplingParams::greedy(),
            max_tokens: 0,
            stop: vec![],
            reuse_prefix: true,
            ignore_eos: false,
            probs: Some(whet::engine::probs::ProbsRequest {
                top: 10,
                after_sampler: true,
            }),
            constraint: Some(whet::engine::protocol::Constraint::Grammar {
                text: "root ::= \"yes\" | \"no\"\n".into(),
                source: "yn.gbnf".into(),
            }),
        }),
        Command::GenerateMany {
            id: 12,
            requests: vec![GenerateRequest {
                id: 13,
                prompt: chat_prompt(),
                sampling: SamplingParams::greedy(),
                max_tokens: 16,
                stop: vec![],
                reuse_prefix: false,
                ignore_eos: false,
                probs: None,
                constraint: Some(whet::engine::protocol::Constraint::JsonSchema {
                    schema: "{\"type\": \"object\"}".into(),
                    source: String::new(),
                }),
            }],
            parallel: 4,
        },
        Command::Beams(BeamRequest {
            id: 14,
            prompt: chat_prompt(),
            beams: whet::engine::beams::BeamSettings {
                num_beams: 3,
                length_penalty: -0.5,
                early_stopping: whet::engine::beams::EarlyStopping::Never,
                num_return_sequences: 2,
                no_repeat_ngram_size: 3,
            },
            max_tokens: 20,
        }),
        Command::Cancel { id: 7 },
        Command::CountTokens {
            id: 11,
            prompt: Prompt::ChatContinue {
                messages: vec![ChatMessage::new(Role::Assistant, "Once upon")],
                open_tokens: None,
            },
        },
        Command::CountTokens {
            id: 12,
            prompt: Prompt::ChatContinue {
                messages: vec![ChatMessage::new(Role::Assistant, "Once upon")],
                open_tokens: Some(vec![7454, 2402]),
            },
        },
        Command::CountTokens {
            id: 9,
            prompt: chat_prompt(),
        },
        Command::FormatPrompt {
            id: 10,
            prompt: chat_prompt(),
        },
        Command::Shutdown,
    ];
    for command in commands {
        command_is_covered(&command);
        round_trip(command);
    }
}

#[test]
fn every_event_round_trips() {
    let stats = GenerationStats {
        prompt_tokens: 30,
        reused_tokens: 12,
        generated_tokens: 5,
        prompt_eval_ms: 80.5,
        ttft_ms: 90.25,
        generation_ms: 33.0,
        grammar: Some(whet::engine::protocol::GrammarEnd::Unfinished),
    };
    let info = ModelInfo {
        path: PathBuf::from("/m.gguf"),
        file_size: 98_362_432,
        architecture: Some("llama".into()),
        name: None,
        parameter_count: 134_515_008,
        quantization: Some("Q4_1".into()),
        n_ctx_train: Some(8192),
        n_ctx: 4096,
        n_batch: 512,
        threads: 2,
        n_vocab: 49152,
        chat_template_present: true,
        chat_format: ChatFormat::Model {
            builtin: Some("chatml".into()),
        },
    };
    let mut events = vec![
        Event::Ready {
            version: "0.1.0".into(),
            pid: 1234,
        },
        Event::LoadProgress { fraction: 0.5 },
        Event::Loaded { info: info.clone() },
        Event::Token {
            id: 1,
            text: "😀".into(),
            token: 4312,
            prob: 0.25,
            context_used: 9,
            probs: None,
        },
        Event::Token {
            id: 1,
            text: " Paris".into(),
            token: 7042,
            prob: 0.77,
            context_used: 10,
            probs: Some(whet::engine::probs::TokenProbs {
                logprob: -0.259,
                top: vec![
                    whet::engine::probs::Alternative {
                        token: 7042,
                        text: " Paris".into(),
                        logprob: -0.259,
                    },
                    whet::engine::probs::Alternative {
                        token: 2,
                        text: "<|im_end|>".into(),
                        logprob: -2.76,
                    },
                ],
                entropy: Some(1.25),
            }),
        },
        Event::TokenCount {
            id: 2,
            tokens: 17,
            n_ctx: 4096,
        },
        Event::BeamsDone {
            id: 14,
            beams: vec![Beam {
                text: "日本 \"x\"".into(),
                tokens: vec![1, 2, 0],
                score: -0.25,
                logprob: -0.75,
                eos: true,
            }],
            stats: BeamStats {
                prompt_tokens: 9,
                reused_tokens: 8,
                prompt_eval_ms: 1.5,
                steps: 3,
                decoded_tokens: 6,
                search_ms: 20.25,
            },
        },
        Event::ManyDone {
            id: 12,
            stats: whet::engine::parallel::ManyStats {
                requests: 3,
                parallel: 2,
                wall_ms: 812.5,
                prompt_tokens_decoded: 40,
                prompt_tokens_shared: 24,
                generated_tokens: 90,
                decodes: 47,
            },
        },
        Event::Formatted {
            id: 3,
            text: "<|im_start|>user\nhi<|im_end|>\n".into(),
            tokens: 6,
        },
        Event::Error {
            id: None,
            message: "cannot load model".into(),
        },
        Event::Error {
            id: Some(4),
            message: "the prompt is 5000 tokens".into(),
        },
    ];
    for reason in [
        StopReason::Eos,
        StopReason::StopString,
        StopReason::MaxTokens,
        StopReason::ContextFull,
        StopReason::Cancelled,
    ] {
        events.push(Event::Done {
            id: 5,
            text: "partial".into(),
            reason,
            stats: stats.clone(),
        });
    }
    for chat_format in [
        ChatFormat::Model { builtin: None },
        ChatFormat::Override {
            name: "gemma".into(),
        },
        ChatFormat::Unrecognized,
        ChatFormat::Missing,
    ] {
        events.push(Event::Loaded {
            info: ModelInfo {
                chat_format,
                ..info.clone()
            },
        });
    }
    for event in events {
        event_is_covered(&event);
        round_trip(event);
    }
}

#[test]
fn the_wire_format_is_tagged_json_lines() {
    assert_eq!(
        encode_line(&Command::Cancel { id: 3 }),
        r#"{"cmd":"cancel","id":3}"#
    );
    assert_eq!(encode_line(&Command::Shutdown), r#"{"cmd":"shutdown"}"#);
    // Optional fields may be omitted by hand-written clients.
    let generate: Command = serde_json::from_str(
        r#"{"cmd":"generate","id":1,"prompt":{"kind":"raw","text":"hi"},"max_tokens":4}"#,
    )
    .unwrap();
    let Command::Generate(request) = generate else {
        panic!("not a generate command")
    };
    assert!(request.reuse_prefix);
    assert_eq!(request.sampling, SamplingParams::default());
}

#[test]
fn worker_answers_a_malformed_line_with_an_error_and_keeps_going() {
    let logs = tempfile::tempdir().unwrap();
    let mut worker = Process::new(env!("CARGO_BIN_EXE_whet"))
        .arg("engine")
        .env("WHET_LOG_DIR", logs.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = worker.stdin.take().unwrap();
    writeln!(stdin, "this is not json").unwrap();
    writeln!(
        stdin,
        r#"{{"cmd":"count_tokens","id":5,"prompt":{{"kind":"raw","text":"x"}}}}"#
    )
    .unwrap();
    writeln!(stdin, r#"{{"cmd":"shutdown"}}"#).unwrap();
    let events: Vec<Event> = BufReader::new(worker.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert!(worker.wait().unwrap().success());
    assert!(matches!(events[0], Event::Ready { .. }), "{events:?}");
    assert!(
        matches!(&events[1], Event::Error { id: None, message } if message.starts_with("malformed command")),
        "{events:?}"
    );
    assert_eq!(
        events[2],
        Event::Error {
            id: Some(5),
            message: "no model is loaded".into()
        }
    );
    assert_eq!(events.len(), 3);
}
