//! Remote backends: an OpenAI-compatible server (llama-server, vLLM,
//! Ollama, …) behind the same protocol as the local worker. The front end's
//! [`EngineClient`](super::EngineClient) sends the same commands and reads
//! the same events; here a task turns them into HTTP requests instead of a
//! worker process turning them into llama.cpp calls. What a server cannot
//! do is an error that says so (beam search is local only), never a silent
//! difference.
//!
//! - [`config`] — `backends.toml`;
//! - [`probe`] — what a server is and can do;
//! - [`serve`] — the commands answered with events, by HTTP;
//! - [`openai`] — the wire format: requests built, chunks read;
//! - [`sse`] — the server-sent events of a streamed reply;
//! - [`http`] — requests, and their failures in plain words.

pub mod config;
pub mod http;
pub mod openai;
pub mod probe;
pub mod serve;
pub mod sse;

pub use config::{Backend, Backends, Kind, RemoteModel};
