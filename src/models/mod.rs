//! Model files: the catalog of fetchable models, fetching them, and reading
//! GGUF headers without llama.cpp.

pub mod catalog;
pub mod fetch;
pub mod gguf;
