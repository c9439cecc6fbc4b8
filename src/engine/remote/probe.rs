//! What a backend is: reachable or not, its models, its kind (llama-server,
//! vLLM, Ollama or another OpenAI-compatible server, detected when the
//! config does not say), its context size when it tells, and what it can
//! do. `Load` on a remote engine is this probe; `whet backends check`
//! prints it.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::config::{Backend, Kind};
use super::http;

/// How long the probe's small requests may take beyond connecting.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// What the server said about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerInfo {
    pub kind: Kind,
    /// Whether the kind was detected (not written in backends.toml).
    pub kind_detected: bool,
    /// The model whet will use.
    pub model: String,
    /// Every model `/v1/models` lists.
    pub models: Vec<String>,
    /// The context a request gets, when the server says (llama-server's
    /// per-slot `n_ctx`, vLLM's `max_model_len`).
    pub n_ctx: Option<u32>,
    /// llama-server's slots: requests it decodes at once.
    pub slots: Option<u32>,
    /// The server's own version or build, when it says.
    pub version: Option<String>,
    pub capabilities: Capabilities,
    /// How long the probe took (the first request's round trip).
    pub latency_ms: f64,
}

/// What whet can ask of a server of this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Token log-probabilities with alternatives (`logprobs`/`top_logprobs`).
    pub logprobs: bool,
    /// A GBNF grammar.
    pub grammar: bool,
    /// Output constrained to a JSON schema.
    pub json_schema: bool,
    /// Several completions per request (`n`).
    pub n: bool,
    /// The exact model input (`/apply-template`) and token counts (`/tokenize`).
    pub exact_input: bool,
    /// Its own prompt and generation timings on each reply.
    pub timings: bool,
    /// Continues an unfinished assistant message.
    pub continue_reply: bool,
    /// Beam search: never on a server; whet's is local.
    pub beams: bool,
}

impl Capabilities {
    pub fn of(kind: Kind) -> Capabilities {
        let llama = kind == Kind::LlamaServer;
        Capabilities {
            logprobs: kind != Kind::Ollama,
            grammar: matches!(kind, Kind::LlamaServer | Kind::Vllm),
            json_schema: true,
            n: kind != Kind::Ollama,
            exact_input: llama,
            timings: llama,
            continue_reply: llama,
            beams: false,
        }
    }

    /// "logprobs, grammar, …" for what it has.
    pub fn describe(&self) -> String {
        let all = [
            ("logprobs", self.logprobs),
            ("grammar", self.grammar),
            ("json-schema", self.json_schema),
            ("n", self.n),
            ("exact input", self.exact_input),
            ("timings", self.timings),
            ("continue", self.continue_reply),
        ];
        let has: Vec<&str> = all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
        has.join(", ")
    }
}

/// Asks the server what it is and which model to use.
pub async fn probe(client: &reqwest::Client, backend: &Backend) -> Result<ServerInfo, String> {
    let started = Instant::now();
    let timeout = backend.connect_timeout() + PROBE_TIMEOUT;
    let listed = http::get_json(
        client,
        backend,
        &format!("{}/models", backend.base_url()),
        timeout,
    )
    .await?;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let entries = listed
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let models: Vec<String> = entries
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let model = match (&backend.model, models.as_slice()) {
        (Some(model), _) => model.clone(),
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(format!(
                "backend '{}': the server lists no models; set model in backends.toml",
                backend.name
            ))
        }
        (None, many) => {
            return Err(format!(
            "backend '{}' serves {} models ({}); choose one with model = \"…\" in backends.toml",
            backend.name,
            many.len(),
            many.join(", ")
        ))
        }
    };
    let owned_by = entries
        .iter()
        .find(|m| m.get("id").and_then(Value::as_str) == Some(model.as_str()))
        .and_then(|m| m.get("owned_by"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // llama-server's own endpoint says the most; ask it whatever the kind.
    let props = http::get_json(
        client,
        backend,
        &format!("{}/props", backend.root_url()),
        timeout,
    )
    .await
    .ok()
    .filter(|p| p.get("default_generation_settings").is_some());
    let (kind, kind_detected) = match backend.kind {
        Some(kind) => (kind, false),
        None if props.is_some() || owned_by == "llamacpp" => (Kind::LlamaServer, true),
        None if owned_by == "vllm" => (Kind::Vllm, true),
        None => {
            let ollama = http::get_json(
                client,
                backend,
                &format!("{}/api/version", backend.root_url()),
                timeout,
            )
            .await
            .is_ok();
            (if ollama { Kind::Ollama } else { Kind::Openai }, true)
        }
    };
    let mut info = ServerInfo {
        kind,
        kind_detected,
        model: model.clone(),
        models,
        n_ctx: None,
        slots: None,
        version: None,
        capabilities: Capabilities::of(kind),
        latency_ms,
    };
    if let Some(props) = &props {
        let settings = &props["default_generation_settings"];
        info.n_ctx = settings
            .get("n_ctx")
            .or_else(|| props.get("n_ctx"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        info.slots = props
            .get("total_slots")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        info.version = props
            .get("build_info")
            .and_then(Value::as_str)
            .map(str::to_string);
    } else if let Some(len) = entries
        .iter()
        .find(|m| m.get("id").and_then(Value::as_str) == Some(model.as_str()))
        .and_then(|m| m.get("max_model_len"))
        .and_then(Value::as_u64)
    {
        info.n_ctx = u32::try_from(len).ok();
    }
    Ok(info)
}
