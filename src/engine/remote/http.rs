//! HTTP to a backend, and what its failures mean in words a user can act
//! on: a refused connection, a name that does not resolve, a timeout, a key
//! the server refused (naming the variable, never the key), a model it does
//! not have, a prompt over its context (with its numbers, in the words the
//! local engine uses so front ends treat both alike), a 429 with its
//! retry-after, a 5xx with the server's message.

use std::time::Duration;

use reqwest::{header, Client, Response, StatusCode};
use serde_json::Value;

use super::config::Backend;
use super::openai::error_message;
use crate::engine::protocol::prompt_too_long_message;

/// The most bytes of a non-streamed answer (models list, props, a
/// tokenized prompt) or of an error body whet reads.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// A client for one backend: its connect timeout; every other limit is
/// per request.
pub fn client(backend: &Backend) -> Result<Client, String> {
    Client::builder()
        .connect_timeout(backend.connect_timeout())
        .build()
        .map_err(|e| format!("backend '{}': {}", backend.name, chain(&e)))
}

/// A request with the backend's key, when it has one.
pub fn with_key(
    backend: &Backend,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::RequestBuilder, String> {
    Ok(match backend.api_key()? {
        Some(key) => request.bearer_auth(key),
        None => request,
    })
}

/// GETs `url` and reads its JSON, within `timeout`.
pub async fn get_json(
    client: &Client,
    backend: &Backend,
    url: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let request = with_key(backend, client.get(url).timeout(timeout))?;
    let response = request
        .send()
        .await
        .map_err(|e| send_error(backend, url, &e))?;
    let response = check_status(backend, url, response).await?;
    read_json(url, response).await
}

/// POSTs `body` to `url` and reads its JSON, within `timeout`.
pub async fn post_json(
    client: &Client,
    backend: &Backend,
    url: &str,
    body: &Value,
    timeout: Duration,
) -> Result<Value, String> {
    let request = client
        .post(url)
        .timeout(timeout)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    let response = with_key(backend, request)?
        .send()
        .await
        .map_err(|e| send_error(backend, url, &e))?;
    let response = check_status(backend, url, response).await?;
    read_json(url, response).await
}

async fn read_json(url: &str, response: Response) -> Result<Value, String> {
    let bytes = read_limited(response).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{url}: the server's answer is not JSON ({e})"))
}

/// The body, up to [`MAX_BODY_BYTES`].
pub async fn read_limited(mut response: Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(piece) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the server's answer: {}", chain(&e)))?
    {
        body.extend_from_slice(&piece);
        if body.len() > MAX_BODY_BYTES {
            return Err(format!(
                "the server's answer is over {} MiB",
                MAX_BODY_BYTES >> 20
            ));
        }
    }
    Ok(body)
}

/// A successful status passes the response on; any other is an error
/// that says what the server meant.
pub async fn check_status(
    backend: &Backend,
    url: &str,
    response: Response,
) -> Result<Response, String> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_limited(response).await.unwrap_or_default();
    Err(status_error(
        backend,
        url,
        status,
        retry_after.as_deref(),
        &body,
    ))
}

/// What a failed status means, with the server's own message.
pub fn status_error(
    backend: &Backend,
    url: &str,
    status: StatusCode,
    retry_after: Option<&str>,
    body: &[u8],
) -> String {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let error = json.as_ref().and_then(|j| j.get("error")).cloned();
    let message = match (&error, &json) {
        (Some(error), _) => error_message(error),
        (None, Some(Value::Object(fields))) if fields.contains_key("detail") => {
            error_message(&fields["detail"])
        }
        _ => String::from_utf8_lossy(&body[..body.len().min(300)])
            .trim()
            .to_string(),
    };
    let said = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    let name = &backend.name;
    match status.as_u16() {
        401 | 403 => match &backend.api_key_env {
            Some(var) => format!(
                "backend '{name}' refused the API key from {var} ({status}){said}"
            ),
            None => format!(
                "backend '{name}' needs an API key ({status}): set api_key_env in backends.toml to the variable that holds it{said}"
            ),
        },
        404 => format!("backend '{name}': {url} was not found (404){said}; is the URL right (up to /v1) and the model served?"),
        429 => {
            let wait = retry_after
                .map(|s| format!("; it asks to retry after {s} s"))
                .unwrap_or_default();
            format!("backend '{name}' is busy (429){said}{wait}")
        }
        400 => {
            // llama-server says how long the prompt was and what fits.
            let counts = error.as_ref().and_then(|e| {
                Some((
                    e.get("n_prompt_tokens")?.as_u64()?,
                    e.get("n_ctx")?.as_u64()?,
                ))
            });
            match counts {
                Some((tokens, n_ctx)) => {
                    format!(
                        "backend '{name}': {}",
                        prompt_too_long_message(tokens as usize, n_ctx as usize)
                    )
                }
                None => format!("backend '{name}' refused the request (400){said}"),
            }
        }
        500..=599 => format!("backend '{name}' failed ({status}){said}"),
        _ => format!("backend '{name}' answered {status}{said}"),
    }
}

/// A request that got no answer at all: why, in plain words.
pub fn send_error(backend: &Backend, url: &str, error: &reqwest::Error) -> String {
    let name = &backend.name;
    let detail = chain(error);
    let lower = detail.to_ascii_lowercase();
    if error.is_timeout() {
        return format!("backend '{name}': no answer from {url} in time ({detail})");
    }
    if lower.contains("dns error")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        return format!("backend '{name}': the host of {url} does not resolve ({detail})");
    }
    if lower.contains("connection refused") {
        return format!("backend '{name}': connection refused at {url}: is the server running?");
    }
    if error.is_connect() {
        return format!("backend '{name}': cannot connect to {url} ({detail})");
    }
    format!("backend '{name}': {url}: {detail}")
}

/// The request went out on a pooled connection the server had just
/// closed (keep-alive timing): it never reached the server.
pub fn is_stale_connection(error: &reqwest::Error) -> bool {
    let detail = chain(error);
    detail.contains("connection closed before message completed")
        || detail.contains("Connection reset by peer")
}

/// An error with its causes, "a: b: c", without repeats.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(key: Option<&str>) -> Backend {
        let mut backend = Backend::from_url("http://127.0.0.1:1/v1").unwrap();
        backend.name = "box".into();
        backend.api_key_env = key.map(str::to_string);
        backend
    }

    #[test]
    fn statuses_say_what_to_do() {
        let url = "http://127.0.0.1:1/v1/chat/completions";
        let keyed = backend(Some("BOX_KEY"));
        let error = status_error(
            &keyed,
            url,
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"error":{"message":"Invalid API Key"}}"#,
        );
        assert_eq!(
            error,
            "backend 'box' refused the API key from BOX_KEY (401 Unauthorized): Invalid API Key"
        );
        let error = status_error(&backend(None), url, StatusCode::FORBIDDEN, None, b"");
        assert!(error.contains("needs an API key"), "{error}");
        let error = status_error(
            &keyed,
            url,
            StatusCode::TOO_MANY_REQUESTS,
            Some("7"),
            b"slow down",
        );
        assert_eq!(
            error,
            "backend 'box' is busy (429): slow down; it asks to retry after 7 s"
        );
        let error = status_error(
            &keyed,
            url,
            StatusCode::BAD_REQUEST,
            None,
            br#"{"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}"#,
        );
        assert_eq!(
            crate::engine::protocol::prompt_too_long(
                error.strip_prefix("backend 'box': ").unwrap()
            ),
            Some((5000, 4096))
        );
        let error = status_error(
            &keyed,
            url,
            StatusCode::NOT_FOUND,
            None,
            br#"{"detail":"model x does not exist"}"#,
        );
        assert!(error.contains("(404): model x does not exist"), "{error}");
        let error = status_error(
            &keyed,
            url,
            StatusCode::BAD_GATEWAY,
            None,
            b"<html>bad gateway</html>",
        );
        assert!(
            error.starts_with("backend 'box' failed (502 Bad Gateway): <html>"),
            "{error}"
        );
    }
}
