//! Inference: a crash-isolated worker process running llama.cpp, the typed
//! protocol it speaks, and the async client every front end uses.

pub mod beams;
pub mod chat;
pub mod client;
pub mod constraint;
pub mod guided;
pub mod llama_log;
pub mod parallel;
pub mod probs;
pub mod protocol;
pub mod remote;
pub mod runner;
pub mod sampling;
pub mod scripted;
pub mod stderr_capture;
pub mod stop;
pub mod utf8;
pub mod worker;

pub use client::{EngineClient, EngineError, Generation, SpawnOptions};
pub use protocol::{ChatMessage, Command, Event, GenerateRequest, LoadRequest, Prompt, Role};
pub use sampling::SamplingParams;
