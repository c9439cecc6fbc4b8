//! `whet run`: one generation, streamed to stdout, with a summary on stderr.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use whet::outln;

use tokio::sync::Notify;
use whet::engine::client::Generation;
use whet::engine::protocol::{ChatMessage, GenerateRequest, Prompt, Role, StopReason};
use whet::engine::{EngineClient, SamplingParams};

use super::{load_error, spawn_options, ModelArgs};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The prompt; read from stdin when absent.
    pub prompt: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// A system message (chat mode only).
    #[arg(long, conflicts_with = "raw")]
    pub system: Option<String>,
    /// Send the prompt as the exact model input, without a chat template.
    #[arg(long)]
    pub raw: bool,
    /// Sampling temperature; 0 is greedy (deterministic).
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: i32,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Minimum probability relative to the top token (0 = off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalty for repeating recent tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty considers.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: i32,
    /// Random seed [default: different each run].
    #[arg(long)]
    pub seed: Option<u32>,
    /// Stop after this many generated tokens (0 = until the context is full).
    #[arg(long, default_value_t = 512)]
    pub max_tokens: u32,
    /// Stop when the output contains this text (repeatable); it is not printed.
    #[arg(long = "stop", value_name = "STR")]
    pub stops: Vec<String>,
    /// Print one JSON object with the text and statistics instead of streaming.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let text = prompt_text(args.prompt.clone())?;
    if args.stops.iter().any(|s| s.is_empty()) {
        return Err("--stop needs a non-empty string".into());
    }
    let sampling = SamplingParams {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        seed: args.seed.unwrap_or_else(SamplingParams::fresh_seed),
    };
    sampling.validate()?;
    let load = args.model.load_request()?;

    let mut engine = EngineClient::spawn(&spawn_options()?)
        .await
        .map_err(|e| e.to_string())?;
    let info = engine
        .load(load.clone())
        .await
        .map_err(|e| load_error(&load, e))?;
    let prompt = if args.raw {
        Prompt::Raw { text }
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::new(Role::System, system.clone()));
        }
        messages.push(ChatMessage::new(Role::User, text));
        Prompt::Chat { messages }
    };
    let request = GenerateRequest {
        id: 0,
        prompt,
        sampling,
        max_tokens: args.max_tokens,
        stop: args.stops.clone(),
        reuse_prefix: true,
        ignore_eos: false,
    };

    let json = args.json;
    let mut stdout = std::io::stdout();
    // Ctrl+C, or a reader that went away (`| head`), ends the generation early.
    let stdout_closed = Arc::new(Notify::new());
    let mut stdout_is_closed = false;
    let cancel = {
        let stdout_closed = Arc::clone(&stdout_closed);
        async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = stdout_closed.notified() => {}
            }
        }
    };
    let generation = engine
        .generate_until(
            request,
            |piece| {
                if json || stdout_is_closed {
                    return;
                }
                let written = stdout
                    .write_all(piece.as_bytes())
                    .and_then(|()| stdout.flush());
                if written.is_err() {
                    stdout_is_closed = true;
                    stdout_closed.notify_one();
                }
            },
            cancel,
        )
        .await
        .map_err(|e| e.to_string())?;
    let peak_rss_kib = engine.peak_rss_kib();
    engine.shutdown().await;

    if json {
        let report = serde_json::json!({
            "model": info.path,
            "text": generation.text,
            "stop_reason": generation.reason,
            "stats": generation.stats,
            "timing": generation.timing,
            "prompt_tokens_per_sec": generation.stats.prompt_tokens_per_sec(),
            "generation_tokens_per_sec": generation.stats.generation_tokens_per_sec(),
            "seed": args.seed,
            "worker_peak_rss_kib": peak_rss_kib,
            "tokens": generation.tokens,
        });
        outln!("{report}");
    } else {
        if !generation.text.ends_with('\n') && !stdout_is_closed {
            outln!();
        }
        eprintln!("{}", summary_line(&generation));
    }
    if stdout_is_closed {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if generation.reason == StopReason::Cancelled {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn prompt_text(argument: Option<String>) -> Result<String, String> {
    if let Some(text) = argument {
        return Ok(text);
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err("no prompt: pass it as an argument or pipe it on stdin".into());
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the prompt from stdin: {e}"))?;
    Ok(text)
}

pub fn summary_line(generation: &Generation) -> String {
    let stats = &generation.stats;
    format!(
        "prompt {} tok ({} reused) | generated {} tok | TTFT {:.0} ms | prompt eval {:.1} tok/s | generation {:.1} tok/s | stop: {}",
        stats.prompt_tokens,
        stats.reused_tokens,
        stats.generated_tokens,
        generation.timing.ttft_ms,
        stats.prompt_tokens_per_sec(),
        stats.generation_tokens_per_sec(),
        generation.reason.describe()
    )
}
