//! `whet backends list | check NAME`: the remote servers of
//! `<config>/backends.toml`, and whether one answers, with what.

use std::process::ExitCode;

use serde_json::json;
use whet::engine::protocol::{ChatMessage, GenerateRequest, LoadRequest, Prompt, Role};
use whet::engine::remote::probe::{self, Capabilities};
use whet::engine::remote::{http, Backends};
use whet::engine::{EngineClient, SamplingParams};
use whet::outln;

#[derive(clap::Subcommand, Debug)]
pub enum BackendsCommand {
    /// The backends of <config>/backends.toml.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Whether a backend (a name or a URL up to /v1) answers: its models,
    /// kind, context size, what it supports, and a short greedy reply with
    /// the server's own timings. Exit status 1 when it does not answer.
    Check {
        backend: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: BackendsCommand) -> Result<ExitCode, String> {
    match command {
        BackendsCommand::List { json } => list(json),
        BackendsCommand::Check { backend, json } => check(&backend, json).await,
    }
}

fn list(json: bool) -> Result<ExitCode, String> {
    let backends = Backends::load()?;
    if json {
        let list: Vec<_> = backends
            .backends
            .values()
            .map(|b| {
                json!({
                    "name": b.name, "url": b.url, "model": b.model, "kind": b.kind,
                    "api_key_env": b.api_key_env, "key_set": b.api_key().ok().flatten().is_some(),
                    "max_parallel": b.max_parallel, "strict": b.strict,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let file = match &backends.file {
        Some(file) => file.display().to_string(),
        None => {
            let dir = whet::paths::config_dir()?;
            outln!(
                "no backends: {} does not exist (see the README's \"Remote backends\")",
                dir.join(whet::engine::remote::config::BACKENDS_FILE)
                    .display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    outln!("{file}:");
    for backend in backends.backends.values() {
        let key = match &backend.api_key_env {
            None => "no key".to_string(),
            Some(var) if backend.api_key().is_ok() => format!("key from {var}"),
            Some(var) => format!("key from {var} (not set)"),
        };
        outln!(
            "  {:<16} {}  model {}  {}  {} in flight{}{}",
            backend.name,
            backend.url,
            backend.model.as_deref().unwrap_or("(the server's)"),
            backend
                .kind
                .map_or("kind detected".to_string(), |k| k.to_string()),
            backend.max_parallel,
            if backend.strict { "  strict" } else { "" },
            format_args!("  {key}")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(name: &str, json: bool) -> Result<ExitCode, String> {
    let backend = Backends::load()?.resolve(name)?;
    let client = http::client(&backend)?;
    let info = match probe::probe(&client, &backend).await {
        Ok(info) => info,
        Err(message) => {
            if json {
                outln!(
                    "{}",
                    json!({ "backend": backend.name, "reachable": false, "error": message })
                );
            } else {
                outln!("{}: not reachable: {message}", backend.name);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    // A short greedy reply through the same path as every front end.
    let mut engine = EngineClient::connect(backend.clone())
        .await
        .map_err(|e| e.to_string())?;
    let load = LoadRequest {
        model: name.into(),
        n_ctx: 0,
        n_batch: 0,
        threads: 0,
        chat_format: None,
        vocab_only: false,
        flash_attention: None,
        parallel: 1,
    };
    engine.load(load).await.map_err(|e| e.to_string())?;
    let reply = engine
        .generate(
            GenerateRequest {
                id: 0,
                prompt: Prompt::Chat {
                    messages: vec![ChatMessage::new(Role::User, "Say hello in five words.")],
                },
                sampling: SamplingParams::greedy(),
                max_tokens: 16,
                stop: Vec::new(),
                reuse_prefix: true,
                ignore_eos: false,
                probs: None,
                constraint: None,
            },
            |_| {},
        )
        .await;
    engine.shutdown().await;
    if json {
        let reply = match &reply {
            Ok(g) => json!({ "text": g.text, "stats": g.stats, "timing": g.timing }),
            Err(e) => json!({ "error": e.to_string() }),
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "backend": backend.name, "url": backend.url, "reachable": true,
                "server": info, "reply": reply,
            }))
            .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let kind = if info.kind_detected {
        format!("{} (detected)", info.kind)
    } else {
        info.kind.to_string()
    };
    outln!(
        "{}: reachable ({:.0} ms), {kind}",
        backend.name,
        info.latency_ms
    );
    outln!("  url        {}", backend.url);
    outln!(
        "  model      {}   (serves: {})",
        info.model,
        info.models.join(", ")
    );
    outln!(
        "  context    {}",
        info.n_ctx
            .map_or("not said by the server".to_string(), |n| format!(
                "{n} tokens per request"
            ))
    );
    if let Some(slots) = info.slots {
        outln!("  slots      {slots} (requests decoded at once)");
    }
    if let Some(version) = &info.version {
        outln!("  version    {version}");
    }
    outln!("  supports   {}", info.capabilities.describe());
    let missing = missing(&info.capabilities);
    if !missing.is_empty() {
        outln!("  not        {missing}");
    }
    match reply {
        Ok(g) => {
            let s = &g.stats;
            outln!(
                "  reply      {:?}: {} tokens, first after {:.0} ms, {:.1} tok/s as received",
                g.text.trim(),
                s.generated_tokens,
                g.timing.ttft_ms,
                g.timing.generation_tokens_per_sec()
            );
            if info.capabilities.timings {
                outln!(
                    "  server     prompt {:.1} tok/s ({} cached), generation {:.1} tok/s (its own timings)",
                    s.prompt_tokens_per_sec(),
                    s.reused_tokens,
                    s.generation_tokens_per_sec()
                );
            }
        }
        Err(e) => outln!("  reply      failed: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// What the server's kind cannot do, said plainly.
fn missing(c: &Capabilities) -> String {
    let mut not = Vec::new();
    if !c.logprobs {
        not.push("token probabilities");
    }
    if !c.grammar {
        not.push("GBNF grammars");
    }
    if !c.exact_input {
        not.push("exact input (it formats chats itself)");
    }
    if !c.continue_reply {
        not.push("continuing a reply");
    }
    not.push("beam search (local only)");
    not.join(", ")
}
