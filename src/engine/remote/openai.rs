//! The OpenAI wire format as whet uses it: the body of a streamed chat (or
//! raw-text) completion built from a [`GenerateRequest`], with each kind of
//! server's extras, and the chunks of the stream read back. Pure functions,
//! tested without a server.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::config::{Backend, Kind};
use crate::engine::constraint::Constraint;
use crate::engine::probs::{Alternative, TokenProbs};
use crate::engine::protocol::{GenerateRequest, Prompt, StopReason, UNKNOWN_TOKEN};

/// The most alternatives OpenAI's `top_logprobs` takes.
pub const MAX_TOP_LOGPROBS: u8 = 20;

/// Where a request goes and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The path under the base URL: `/chat/completions` or `/completions`.
    pub path: &'static str,
    pub body: Value,
}

/// The request for `request` on `backend` (of `kind`, serving `model`), or
/// why this server cannot take it.
pub fn call(
    backend: &Backend,
    kind: Kind,
    model: &str,
    request: &GenerateRequest,
) -> Result<Call, String> {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    // The last chunk then carries the token counts.
    body.insert("stream_options".into(), json!({ "include_usage": true }));
    let path = match &request.prompt {
        Prompt::Chat { messages } => {
            body.insert("messages".into(), messages_json(messages));
            "/chat/completions"
        }
        Prompt::ChatContinue {
            messages,
            open_tokens,
        } => {
            if kind != Kind::LlamaServer {
                return Err(format!(
                    "{kind} cannot continue a reply (only llama-server goes on from an unfinished assistant message)"
                ));
            }
            if open_tokens.is_some() {
                return Err("forking a reply at a token needs the local engine (a server takes text, not token ids)".into());
            }
            body.insert("messages".into(), messages_json(messages));
            "/chat/completions"
        }
        Prompt::Raw { text } => {
            body.insert("prompt".into(), json!(text));
            "/completions"
        }
    };
    let s = &request.sampling;
    body.insert("temperature".into(), json!(s.temperature));
    body.insert("top_p".into(), json!(s.top_p));
    body.insert("seed".into(), json!(s.seed));
    if request.max_tokens > 0 {
        body.insert("max_tokens".into(), json!(request.max_tokens));
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    // The samplers OpenAI's API lacks, where the server takes them.
    if matches!(kind, Kind::LlamaServer | Kind::Vllm | Kind::Ollama) {
        body.insert("top_k".into(), json!(s.top_k));
        body.insert("min_p".into(), json!(s.min_p));
    }
    match kind {
        Kind::LlamaServer => {
            body.insert("repeat_penalty".into(), json!(s.repeat_penalty));
            body.insert("repeat_last_n".into(), json!(s.repeat_last_n));
            if backend.strict {
                body.insert("cache_prompt".into(), json!(false));
            }
            if request.ignore_eos {
                body.insert("ignore_eos".into(), json!(true));
            }
        }
        Kind::Vllm => {
            body.insert("repetition_penalty".into(), json!(s.repeat_penalty));
            if request.ignore_eos {
                body.insert("ignore_eos".into(), json!(true));
            }
        }
        Kind::Ollama | Kind::Openai => {
            if request.ignore_eos {
                return Err(format!(
                    "{kind} cannot be told to ignore the end of generation"
                ));
            }
        }
    }
    if let Some(probs) = &request.probs {
        if probs.after_sampler {
            return Err("the distribution after the sampler is the local engine's alone; a server reports the model's".into());
        }
        body.insert("logprobs".into(), json!(true));
        body.insert(
            "top_logprobs".into(),
            json!(probs.top.min(MAX_TOP_LOGPROBS)),
        );
    }
    if let Some(constraint) = &request.constraint {
        add_constraint(&mut body, kind, constraint)?;
    }
    Ok(Call {
        path,
        body: Value::Object(body),
    })
}

fn messages_json(messages: &[crate::engine::protocol::ChatMessage]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
            .collect(),
    )
}

/// A grammar or schema in the form the server takes.
fn add_constraint(
    body: &mut Map<String, Value>,
    kind: Kind,
    constraint: &Constraint,
) -> Result<(), String> {
    match (kind, constraint) {
        (Kind::LlamaServer, Constraint::Grammar { text, .. }) => {
            body.insert("grammar".into(), json!(text));
        }
        (Kind::Vllm, Constraint::Grammar { text, .. }) => {
            body.insert("guided_grammar".into(), json!(text));
        }
        (Kind::Ollama | Kind::Openai, Constraint::Grammar { .. }) => {
            return Err(format!(
                "{kind} does not take a GBNF grammar (llama-server and vLLM do); a JSON schema it can take"
            ))
        }
        (kind, Constraint::JsonSchema { schema, source }) => {
            let schema: Value = serde_json::from_str(schema)
                .map_err(|e| format!("{}: {e}", constraint_name(source)))?;
            match kind {
                Kind::LlamaServer => {
                    body.insert("json_schema".into(), schema);
                }
                Kind::Vllm => {
                    body.insert("guided_json".into(), schema);
                }
                Kind::Ollama => {
                    body.insert("format".into(), schema);
                }
                Kind::Openai => {
                    body.insert(
                        "response_format".into(),
                        json!({
                            "type": "json_schema",
                            "json_schema": { "name": "output", "schema": schema, "strict": true }
                        }),
                    );
                }
            }
        }
    }
    Ok(())
}

fn constraint_name(source: &str) -> &str {
    if source.is_empty() {
        "the JSON schema"
    } else {
        source
    }
}

/// What one chunk of the stream says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// New text of the reply.
    pub text: String,
    /// The tokens of that text with their probabilities, when asked for.
    pub tokens: Vec<ChunkToken>,
    pub finish: Option<StopReason>,
    pub usage: Option<Usage>,
    pub timings: Option<Timings>,
}

/// One token as `logprobs.content[]` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkToken {
    /// llama-server sends the id; other servers do not ([`UNKNOWN_TOKEN`]).
    pub id: i32,
    pub text: String,
    pub probs: TokenProbs,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
}

/// llama-server's own figures for a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Timings {
    /// Prompt tokens taken from the slot's cache.
    #[serde(default)]
    pub cache_n: u32,
    #[serde(default)]
    pub prompt_n: u32,
    #[serde(default)]
    pub prompt_ms: f64,
    #[serde(default)]
    pub predicted_n: u32,
    #[serde(default)]
    pub predicted_ms: f64,
}

impl Timings {
    pub fn prompt_per_second(&self) -> f64 {
        crate::engine::protocol::per_second(self.prompt_n, self.prompt_ms)
    }
    pub fn predicted_per_second(&self) -> f64 {
        crate::engine::protocol::per_second(self.predicted_n, self.predicted_ms)
    }
}

#[derive(Deserialize)]
struct RawChunk {
    #[serde(default)]
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    delta: Option<RawDelta>,
    /// `/completions` streams `text` instead of a delta.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<RawLogprobs>,
}

#[derive(Deserialize)]
struct RawDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct RawLogprobs {
    #[serde(default)]
    content: Option<Vec<RawTokenLogprob>>,
}

#[derive(Deserialize)]
struct RawTokenLogprob {
    #[serde(default)]
    id: Option<i32>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    bytes: Option<Vec<u8>>,
    logprob: f32,
    #[serde(default)]
    top_logprobs: Vec<RawTop>,
}

#[derive(Deserialize)]
struct RawTop {
    #[serde(default)]
    id: Option<i32>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    bytes: Option<Vec<u8>>,
    logprob: f32,
}

/// A token's text: from its bytes where given (a piece of a multi-byte
/// character shows as U+FFFD, as the local engine shows it).
fn token_text(token: &str, bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => token.to_string(),
    }
}

/// Reads one `data:` payload. An error object in the stream (a server's
/// way to fail after its 200) is an error with the server's message.
pub fn parse_chunk(data: &str) -> Result<Chunk, String> {
    let raw: RawChunk = serde_json::from_str(data).map_err(|e| {
        let shown: String = data.chars().take(120).collect();
        format!("the server sent a malformed event ({e}): {shown}")
    })?;
    if let Some(error) = raw.error {
        return Err(format!(
            "the server failed mid-reply: {}",
            error_message(&error)
        ));
    }
    let mut chunk = Chunk {
        usage: raw.usage,
        timings: raw.timings,
        ..Chunk::default()
    };
    for choice in raw.choices {
        if let Some(text) = choice.delta.and_then(|d| d.content).or(choice.text) {
            chunk.text.push_str(&text);
        }
        if let Some(reason) = choice.finish_reason.as_deref() {
            chunk.finish = Some(match reason {
                "length" => StopReason::MaxTokens,
                _ => StopReason::Eos,
            });
        }
        for token in choice.logprobs.and_then(|l| l.content).unwrap_or_default() {
            let top = token
                .top_logprobs
                .iter()
                .map(|t| Alternative {
                    token: t.id.unwrap_or(UNKNOWN_TOKEN),
                    text: token_text(&t.token, t.bytes.as_deref()),
                    logprob: t.logprob,
                })
                .collect();
            chunk.tokens.push(ChunkToken {
                id: token.id.unwrap_or(UNKNOWN_TOKEN),
                text: token_text(&token.token, token.bytes.as_deref()),
                probs: TokenProbs {
                    logprob: token.logprob,
                    top,
                    entropy: None,
                },
            });
        }
    }
    Ok(chunk)
}

/// The message of an OpenAI error object (`{"message": …}` or a string).
pub fn error_message(error: &Value) -> String {
    match error {
        Value::String(text) => text.clone(),
        Value::Object(fields) => fields
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_string),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::probs::ProbsRequest;
    use crate::engine::protocol::{ChatMessage, Role};
    use crate::engine::SamplingParams;

    fn request(prompt: Prompt) -> GenerateRequest {
        GenerateRequest {
            id: 1,
            prompt,
            sampling: SamplingParams::greedy(),
            max_tokens: 32,
            stop: vec!["\n\n".into()],
            reuse_prefix: true,
            ignore_eos: false,
            probs: None,
            constraint: None,
        }
    }

    fn chat() -> Prompt {
        Prompt::Chat {
            messages: vec![ChatMessage::new(Role::User, "Hi")],
        }
    }

    fn backend() -> Backend {
        Backend::from_url("http://127.0.0.1:8080/v1").unwrap()
    }

    #[test]
    fn a_chat_request_for_llama_server_carries_its_extras() {
        let mut strict = backend();
        strict.strict = true;
        let mut req = request(chat());
        req.probs = Some(ProbsRequest {
            top: 5,
            after_sampler: false,
        });
        let call = call(&strict, Kind::LlamaServer, "m", &req).unwrap();
        assert_eq!(call.path, "/chat/completions");
        let body = &call.body;
        assert_eq!(body["model"], "m");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(
            body["messages"][0],
            json!({"role": "user", "content": "Hi"})
        );
        assert_eq!(body["temperature"], 0.0);
        assert_eq!(body["max_tokens"], 32);
        assert_eq!(body["stop"], json!(["\n\n"]));
        assert_eq!(body["seed"], json!(req.sampling.seed));
        assert_eq!(body["cache_prompt"], false);
        assert_eq!(body["logprobs"], true);
        assert_eq!(body["top_logprobs"], 5);
        assert!(body.get("top_k").is_some() && body.get("repeat_penalty").is_some());
        // Not strict: the server's prompt cache is used.
        let call = super::call(&backend(), Kind::LlamaServer, "m", &req).unwrap();
        assert!(call.body.get("cache_prompt").is_none());
    }

    #[test]
    fn what_a_server_cannot_do_is_an_error_not_a_silent_difference() {
        let mut req = request(Prompt::ChatContinue {
            messages: vec![ChatMessage::new(Role::Assistant, "Hel")],
            open_tokens: None,
        });
        assert!(call(&backend(), Kind::Openai, "m", &req)
            .unwrap_err()
            .contains("continue"));
        assert!(call(&backend(), Kind::LlamaServer, "m", &req).is_ok());
        req.prompt = Prompt::ChatContinue {
            messages: vec![ChatMessage::new(Role::Assistant, "Hel")],
            open_tokens: Some(vec![1, 2]),
        };
        assert!(call(&backend(), Kind::LlamaServer, "m", &req)
            .unwrap_err()
            .contains("local engine"));
        let mut req = request(chat());
        req.constraint = Some(Constraint::Grammar {
            text: "root ::= \"a\"".into(),
            source: String::new(),
        });
        assert!(call(&backend(), Kind::Ollama, "m", &req)
            .unwrap_err()
            .contains("GBNF"));
        assert_eq!(
            call(&backend(), Kind::LlamaServer, "m", &req).unwrap().body["grammar"],
            "root ::= \"a\""
        );
        assert_eq!(
            call(&backend(), Kind::Vllm, "m", &req).unwrap().body["guided_grammar"],
            "root ::= \"a\""
        );
        req.constraint = Some(Constraint::JsonSchema {
            schema: "{\"type\":\"object\"}".into(),
            source: String::new(),
        });
        assert_eq!(
            call(&backend(), Kind::LlamaServer, "m", &req).unwrap().body["json_schema"]["type"],
            "object"
        );
        assert_eq!(
            call(&backend(), Kind::Ollama, "m", &req).unwrap().body["format"]["type"],
            "object"
        );
        assert_eq!(
            call(&backend(), Kind::Openai, "m", &req).unwrap().body["response_format"]
                ["json_schema"]["schema"]["type"],
            "object"
        );
        let mut req = request(chat());
        req.probs = Some(ProbsRequest {
            top: 3,
            after_sampler: true,
        });
        assert!(call(&backend(), Kind::LlamaServer, "m", &req)
            .unwrap_err()
            .contains("after the sampler"));
    }

    #[test]
    fn raw_text_goes_to_the_completions_endpoint() {
        let call = call(
            &backend(),
            Kind::Vllm,
            "m",
            &request(Prompt::Raw {
                text: "Once".into(),
            }),
        )
        .unwrap();
        assert_eq!(call.path, "/completions");
        assert_eq!(call.body["prompt"], "Once");
        assert!(call.body.get("messages").is_none());
    }

    #[test]
    fn chunks_read_text_tokens_finish_usage_and_timings() {
        let chunk = parse_chunk(r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null,
            "logprobs":{"content":[{"id":42,"token":"Hel","bytes":[72,101,108],"logprob":-0.5,
            "top_logprobs":[{"id":42,"token":"Hel","logprob":-0.5},{"id":7,"token":"Hi","logprob":-1.5}]}]}}]}"#)
            .unwrap();
        assert_eq!(chunk.text, "Hel");
        assert_eq!(chunk.tokens.len(), 1);
        assert_eq!(chunk.tokens[0].id, 42);
        assert_eq!(chunk.tokens[0].probs.top[1].token, 7);
        assert_eq!(chunk.finish, None);
        let last = parse_chunk(r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15},
            "timings":{"cache_n":4,"prompt_n":8,"prompt_ms":20.0,"predicted_n":3,"predicted_ms":30.0,"predicted_per_second":100.0}}"#)
            .unwrap();
        assert_eq!(
            last.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3
            })
        );
        let timings = last.timings.unwrap();
        assert_eq!((timings.cache_n, timings.prompt_n), (4, 8));
        assert_eq!(timings.predicted_per_second(), 100.0);
        let end = parse_chunk(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#).unwrap();
        assert_eq!(end.finish, Some(StopReason::MaxTokens));
        let end = parse_chunk(r#"{"choices":[{"text":"x","finish_reason":"stop"}]}"#).unwrap();
        assert_eq!(
            (end.text.as_str(), end.finish),
            ("x", Some(StopReason::Eos))
        );
        // A piece of a multi-byte character, as bytes.
        let split = parse_chunk(r#"{"choices":[{"delta":{"content":""},"logprobs":{"content":[{"token":"?","bytes":[226,128],"logprob":-0.1,"top_logprobs":[]}]}}]}"#).unwrap();
        assert_eq!(split.tokens[0].text, "\u{fffd}");
        assert_eq!(split.tokens[0].id, UNKNOWN_TOKEN);
    }

    #[test]
    fn an_error_in_the_stream_and_malformed_json_are_errors() {
        let error =
            parse_chunk(r#"{"error":{"code":500,"message":"slot crashed","type":"server_error"}}"#)
                .unwrap_err();
        assert_eq!(error, "the server failed mid-reply: slot crashed");
        let error = parse_chunk("{\"choices\": [").unwrap_err();
        assert!(
            error.starts_with("the server sent a malformed event"),
            "{error}"
        );
    }
}
