//! The remote engine's side of the protocol: a task that reads the same
//! [`Command`]s as the worker process and answers with the same [`Event`]s,
//! by HTTP to the backend. Each generation is a task of its own, so that a
//! `Cancel` (which closes its connection), several requests in flight
//! (`GenerateMany`, up to the backend's `max_parallel`) and a slow server
//! never block the commands behind them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};

use super::config::{Backend, Kind};
use super::http;
use super::openai::{self, Chunk, Timings, Usage};
use super::probe::{self, ServerInfo};
use super::sse::{SseItem, SseParser};
use crate::engine::parallel::ManyStats;
use crate::engine::protocol::{
    ChatFormat, Command, Event, GenerateRequest, GenerationStats, GrammarEnd, ModelInfo, Prompt,
    StopReason, UNKNOWN_TOKEN,
};

/// What a request that failed after some of its reply had streamed says
/// first: the front ends keep the text and mark it.
pub const CONNECTION_LOST: &str = "connection lost";

/// The loaded "model": the backend and what its probe found.
struct Server {
    backend: Backend,
    client: reqwest::Client,
    info: ServerInfo,
}

type Events = mpsc::UnboundedSender<Event>;

/// Serves `commands` for `backend` until Shutdown or the client goes.
pub async fn serve(
    backend: Backend,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: Events,
) {
    let _ = events.send(Event::Ready {
        version: format!("remote {}", backend.base_url()),
        pid: 0,
    });
    let mut server: Option<Arc<Server>> = None;
    // Cancel switches of what runs, by the ids a Cancel may name (a batch's
    // id names all of its requests).
    let mut cancels: HashMap<u64, Vec<watch::Sender<bool>>> = HashMap::new();
    while let Some(command) = commands.recv().await {
        cancels.retain(|_, senders| senders.iter().any(|s| !s.is_closed()));
        match command {
            Command::Load(_) => {
                server = None;
                match load(&backend).await {
                    Ok(loaded) => {
                        let _ = events.send(Event::Loaded {
                            info: model_info(&loaded),
                        });
                        server = Some(Arc::new(loaded));
                    }
                    Err(message) => {
                        let _ = events.send(Event::Error { id: None, message });
                    }
                }
            }
            Command::Generate(request) => {
                let Some(server) = ready(&server, request.id, &events) else {
                    continue;
                };
                let (cancel, cancelled) = watch::channel(false);
                cancels.entry(request.id).or_default().push(cancel);
                let events = events.clone();
                tokio::spawn(async move {
                    let id = request.id;
                    let event = match generate(&server, request, cancelled, &events).await {
                        Ok(done) => done,
                        Err(message) => Event::Error {
                            id: Some(id),
                            message,
                        },
                    };
                    let _ = events.send(event);
                });
            }
            Command::GenerateMany {
                id,
                requests,
                parallel,
            } => {
                let Some(server) = ready(&server, id, &events) else {
                    continue;
                };
                let mut jobs = Vec::new();
                for request in requests {
                    let (cancel, cancelled) = watch::channel(false);
                    cancels.entry(id).or_default().push(cancel.clone());
                    cancels.entry(request.id).or_default().push(cancel);
                    jobs.push((request, cancelled));
                }
                let width = parallel.clamp(1, server.backend.max_parallel);
                tokio::spawn(generate_many(server, id, jobs, width, events.clone()));
            }
            Command::Beams(request) => {
                let _ = events.send(Event::Error {
                    id: Some(request.id),
                    message: "beam search runs on the local engine only: a server samples, it does not search (run it without --backend)".into(),
                });
            }
            Command::Cancel { id } => {
                for cancel in cancels.remove(&id).unwrap_or_default() {
                    let _ = cancel.send(true);
                }
            }
            Command::CountTokens { id, prompt } => {
                let Some(server) = ready(&server, id, &events) else {
                    continue;
                };
                let events = events.clone();
                tokio::spawn(async move {
                    let event = match exact_input(&server, &prompt).await {
                        Ok((_, tokens)) => Event::TokenCount {
                            id,
                            tokens,
                            n_ctx: server.info.n_ctx.unwrap_or(0),
                        },
                        Err(message) => Event::Error {
                            id: Some(id),
                            message,
                        },
                    };
                    let _ = events.send(event);
                });
            }
            Command::FormatPrompt { id, prompt } => {
                let Some(server) = ready(&server, id, &events) else {
                    continue;
                };
                let events = events.clone();
                tokio::spawn(async move {
                    let event = match exact_input(&server, &prompt).await {
                        Ok((text, tokens)) => Event::Formatted { id, text, tokens },
                        Err(message) => Event::Error {
                            id: Some(id),
                            message,
                        },
                    };
                    let _ = events.send(event);
                });
            }
            Command::Shutdown => break,
        }
    }
    for cancel in cancels.into_values().flatten() {
        let _ = cancel.send(true);
    }
}

/// The server, or an error event for request `id` when nothing is loaded.
fn ready(server: &Option<Arc<Server>>, id: u64, events: &Events) -> Option<Arc<Server>> {
    if server.is_none() {
        let _ = events.send(Event::Error {
            id: Some(id),
            message: "no backend is connected (its probe failed or was not run)".into(),
        });
    }
    server.clone()
}

async fn load(backend: &Backend) -> Result<Server, String> {
    let client = http::client(backend)?;
    // A missing key is said now, not on the first request.
    backend.api_key()?;
    let info = probe::probe(&client, backend).await?;
    Ok(Server {
        backend: backend.clone(),
        client,
        info,
    })
}

/// The backend as the front ends see a loaded model.
fn model_info(server: &Server) -> ModelInfo {
    ModelInfo {
        path: std::path::PathBuf::from(format!(
            "{} @ {}",
            server.info.model,
            server.backend.base_url()
        )),
        file_size: 0,
        architecture: None,
        name: Some(server.info.model.clone()),
        parameter_count: 0,
        quantization: None,
        n_ctx_train: None,
        n_ctx: server.info.n_ctx.unwrap_or(0),
        n_batch: 0,
        threads: 0,
        n_vocab: 0,
        chat_template_present: true,
        chat_format: ChatFormat::Server {
            backend: server.backend.name.clone(),
            kind: server.info.kind.name().to_string(),
        },
    }
}

/// Streams one reply: Token events as it comes, the Done event at its end.
async fn generate(
    server: &Server,
    request: GenerateRequest,
    mut cancelled: watch::Receiver<bool>,
    events: &Events,
) -> Result<Event, String> {
    let id = request.id;
    let backend = &server.backend;
    let call = openai::call(backend, server.info.kind, &server.info.model, &request)?;
    let url = format!("{}{}", backend.base_url(), call.path);
    let started = Instant::now();
    let body = call.body.to_string();
    let post = || {
        server
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
    };
    let send = async {
        match http::with_key(backend, post())?.send().await {
            // A kept-alive connection the server closed as the request went
            // out: nothing reached it, so the request goes again, once, on
            // a fresh connection.
            Err(e) if http::is_stale_connection(&e) => http::with_key(backend, post())?
                .send()
                .await
                .map_err(|e| http::send_error(backend, &url, &e)),
            other => other.map_err(|e| http::send_error(backend, &url, &e)),
        }
    };
    let response = tokio::select! {
        sent = tokio::time::timeout(backend.first_token_timeout(), send) => match sent {
            Ok(Ok(response)) => response,
            Ok(Err(message)) => return Err(message),
            Err(_) => return Err(format!(
                "backend '{}': no answer within {} s (first_token_timeout_s)",
                backend.name, backend.first_token_timeout_s
            )),
        },
        _ = cancelled.wait_for(|c| *c) => return Ok(cancelled_event(id, String::new(), started)),
    };
    let mut response = http::check_status(backend, &url, response).await?;
    let mut stream = Stream::new(&request, started);
    let mut parser = SseParser::new();
    loop {
        let wait = if stream.first_text_ms.is_none() {
            backend.first_token_timeout()
        } else {
            backend.idle_timeout()
        };
        let piece = tokio::select! {
            piece = tokio::time::timeout(wait, response.chunk()) => piece,
            _ = cancelled.wait_for(|c| *c) => {
                // Dropping the response closes the connection: the server
                // stops generating for it.
                return Ok(stream.done(StopReason::Cancelled));
            }
        };
        let items = match piece {
            Err(_) => {
                let (limit, which) = if stream.first_text_ms.is_none() {
                    (backend.first_token_timeout_s, "first_token_timeout_s")
                } else {
                    (backend.idle_timeout_s, "idle_timeout_s")
                };
                return Err(stream.lost(&format!(
                    "backend '{}' sent nothing for {limit} s ({which})",
                    backend.name
                )));
            }
            Ok(Err(e)) => return Err(stream.lost(&http::chain(&e))),
            Ok(Ok(Some(bytes))) => parser.push(&bytes).map_err(|e| stream.lost(&e))?,
            Ok(Ok(None)) => {
                let mut items = parser.finish().map_err(|e| stream.lost(&e))?;
                if items.is_empty() && !stream.ended() {
                    return Err(stream.lost("the stream ended before the reply did"));
                }
                items.push(SseItem::Done);
                items
            }
        };
        for item in items {
            match item {
                SseItem::Done => {
                    if !stream.ended() {
                        return Err(stream.lost("the stream ended before the reply did"));
                    }
                    return Ok(stream.done(stream.finish.unwrap_or(StopReason::Eos)));
                }
                SseItem::Data(data) => {
                    let chunk = openai::parse_chunk(&data).map_err(|e| stream.lost(&e))?;
                    stream.take(chunk, events);
                }
            }
        }
    }
}

/// A stopped request's end, before any of it arrived.
fn cancelled_event(id: u64, text: String, started: Instant) -> Event {
    Event::Done {
        id,
        text,
        reason: StopReason::Cancelled,
        stats: GenerationStats {
            ttft_ms: started.elapsed().as_secs_f64() * 1000.0,
            ..GenerationStats::default()
        },
    }
}

/// One reply as it streams in.
struct Stream {
    id: u64,
    wants_probs: bool,
    constrained: bool,
    started: Instant,
    text: String,
    tokens: u32,
    first_text_ms: Option<f64>,
    last_text_ms: f64,
    finish: Option<StopReason>,
    usage: Option<Usage>,
    timings: Option<Timings>,
}

impl Stream {
    fn new(request: &GenerateRequest, started: Instant) -> Stream {
        Stream {
            id: request.id,
            wants_probs: request.probs.is_some(),
            constrained: request.constraint.is_some(),
            started,
            text: String::new(),
            tokens: 0,
            first_text_ms: None,
            last_text_ms: 0.0,
            finish: None,
            usage: None,
            timings: None,
        }
    }

    fn ended(&self) -> bool {
        self.finish.is_some()
    }

    fn take(&mut self, chunk: Chunk, events: &Events) {
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if chunk.timings.is_some() {
            self.timings = chunk.timings;
        }
        if chunk.finish.is_some() {
            self.finish = chunk.finish;
        }
        if chunk.text.is_empty() && chunk.tokens.is_empty() {
            return;
        }
        let now = self.started.elapsed().as_secs_f64() * 1000.0;
        self.first_text_ms.get_or_insert(now);
        self.last_text_ms = now;
        // With probabilities, a Token event per token, when the tokens
        // spell the text; otherwise the text as it came.
        let spelled: String = chunk.tokens.iter().map(|t| t.text.as_str()).collect();
        if self.wants_probs && !chunk.tokens.is_empty() && spelled == chunk.text {
            for token in chunk.tokens {
                self.tokens += 1;
                self.text.push_str(&token.text);
                let _ = events.send(Event::Token {
                    id: self.id,
                    text: token.text,
                    token: token.id,
                    prob: token.probs.logprob.exp(),
                    context_used: 0,
                    probs: Some(token.probs),
                });
            }
        } else {
            self.tokens += chunk.tokens.len().max(1) as u32;
            self.text.push_str(&chunk.text);
            let _ = events.send(Event::Token {
                id: self.id,
                text: chunk.text,
                token: UNKNOWN_TOKEN,
                prob: 0.0,
                context_used: 0,
                probs: None,
            });
        }
    }

    /// The Done event: the server's own figures where it gave them, else
    /// what was seen from here.
    fn done(&self, reason: StopReason) -> Event {
        let ttft_ms = self.first_text_ms.unwrap_or(0.0);
        let seen_generation_ms = (self.last_text_ms - ttft_ms).max(0.0);
        let timings = self.timings.unwrap_or_default();
        let usage = self.usage.unwrap_or_default();
        let stats = GenerationStats {
            prompt_tokens: usage.prompt_tokens.max(timings.prompt_n + timings.cache_n),
            reused_tokens: timings.cache_n,
            generated_tokens: if usage.completion_tokens > 0 {
                usage.completion_tokens
            } else {
                self.tokens
            },
            prompt_eval_ms: if self.timings.is_some() {
                timings.prompt_ms
            } else {
                ttft_ms
            },
            ttft_ms,
            generation_ms: if self.timings.is_some() {
                timings.predicted_ms
            } else {
                seen_generation_ms
            },
            grammar: self.constrained.then_some(if reason == StopReason::Eos {
                GrammarEnd::Complete
            } else {
                GrammarEnd::Unfinished
            }),
        };
        Event::Done {
            id: self.id,
            text: self.text.clone(),
            reason,
            stats,
        }
    }

    /// The message of a reply that broke off: what happened, and how much
    /// of the reply is kept.
    fn lost(&self, why: &str) -> String {
        if self.text.is_empty() {
            why.to_string()
        } else {
            format!(
                "{CONNECTION_LOST} after {} tokens (the reply so far is kept): {why}",
                self.tokens
            )
        }
    }
}

/// Runs a batch, `width` requests at a time; ManyDone at the end.
async fn generate_many(
    server: Arc<Server>,
    batch: u64,
    jobs: Vec<(GenerateRequest, watch::Receiver<bool>)>,
    width: u32,
    events: Events,
) {
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(width as usize));
    let requests = jobs.len() as u32;
    let mut tasks = Vec::new();
    for (request, cancelled) in jobs {
        let slots = Arc::clone(&slots);
        let server = Arc::clone(&server);
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            let id = request.id;
            let Ok(_slot) = slots.acquire().await else {
                return GenerationStats::default();
            };
            if *cancelled.borrow() {
                let _ = events.send(cancelled_event(id, String::new(), Instant::now()));
                return GenerationStats::default();
            }
            match generate(&server, request, cancelled, &events).await {
                Ok(event) => {
                    let stats = match &event {
                        Event::Done { stats, .. } => stats.clone(),
                        _ => GenerationStats::default(),
                    };
                    let _ = events.send(event);
                    stats
                }
                Err(message) => {
                    let _ = events.send(Event::Error {
                        id: Some(id),
                        message,
                    });
                    GenerationStats::default()
                }
            }
        }));
    }
    let mut stats = ManyStats {
        requests,
        parallel: width,
        ..ManyStats::default()
    };
    for task in tasks {
        let done = task.await.unwrap_or_default();
        stats.prompt_tokens_decoded += done.prompt_tokens.saturating_sub(done.reused_tokens);
        stats.prompt_tokens_shared += done.reused_tokens;
        stats.generated_tokens += done.generated_tokens;
    }
    stats.wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _ = events.send(Event::ManyDone { id: batch, stats });
}

/// The exact text the model sees and its token count, from llama-server's
/// `/apply-template` and `/tokenize`; other servers format chats
/// themselves and do not say.
async fn exact_input(server: &Server, prompt: &Prompt) -> Result<(String, u32), String> {
    let backend = &server.backend;
    if server.info.kind != Kind::LlamaServer {
        return Err(format!(
            "{} formats the chat itself and does not show the exact input (llama-server does)",
            server.info.kind
        ));
    }
    let timeout = backend.connect_timeout() + backend.idle_timeout();
    let text = match prompt {
        Prompt::Raw { text } => text.clone(),
        Prompt::Chat { messages } | Prompt::ChatContinue { messages, .. } => {
            let messages: Vec<_> = messages
                .iter()
                .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
                .collect();
            let url = format!("{}/apply-template", backend.root_url());
            let answer = http::post_json(
                &server.client,
                backend,
                &url,
                &json!({ "messages": messages }),
                timeout,
            )
            .await?;
            answer
                .get("prompt")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("{url}: the answer has no prompt"))?
                .to_string()
        }
    };
    let url = format!("{}/tokenize", backend.root_url());
    let answer = http::post_json(
        &server.client,
        backend,
        &url,
        &json!({ "content": text, "add_special": true, "parse_special": true }),
        timeout,
    )
    .await?;
    let tokens = answer
        .get("tokens")
        .and_then(serde_json::Value::as_array)
        .map_or(0, |t| t.len() as u32);
    Ok((text, tokens))
}
