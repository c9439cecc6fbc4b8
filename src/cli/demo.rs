//! `whet` with no command. Until the TUI lands this streams a short demo
//! answer from the default model, so the first command shows inference works.

use std::io::Write;
use std::process::ExitCode;
use whet::outln;

use whet::engine::protocol::{ChatMessage, GenerateRequest, Prompt, Role};
use whet::engine::{EngineClient, SamplingParams};

use super::{load_error, run::summary_line, spawn_options, ModelArgs};

pub async fn run() -> Result<ExitCode, String> {
    let model = ModelArgs {
        model: None,
        n_ctx: 2048,
        n_batch: 512,
        threads: None,
        chat_format: None,
        flash_attn: super::FlashAttn::Auto,
    };
    let load = model.load_request()?;
    outln!("whet — a terminal workbench for local language models.");
    outln!("The chat UI is not built yet; `whet --help` lists what works today.");
    outln!("Demo with {}:\n", load.model.display());
    let question = "In two sentences, what is a whetstone used for?";
    outln!("> {question}");
    let mut engine = EngineClient::spawn(&spawn_options()?)
        .await
        .map_err(|e| e.to_string())?;
    engine
        .load(load.clone())
        .await
        .map_err(|e| load_error(&load, e))?;
    let request = GenerateRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: vec![ChatMessage::new(Role::User, question)],
        },
        sampling: SamplingParams::greedy(),
        max_tokens: 120,
        stop: Vec::new(),
        reuse_prefix: true,
        ignore_eos: false,
    };
    let mut stdout = std::io::stdout();
    let generation = engine
        .generate(request, |piece| {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        })
        .await
        .map_err(|e| e.to_string())?;
    engine.shutdown().await;
    outln!("\n");
    outln!("{}", summary_line(&generation));
    Ok(ExitCode::SUCCESS)
}
