//! Prompt experiments: variants of a prompt run over the same dataset,
//! scored, and compared with paired statistics.
//!
//! - [`spec`] — the experiment file, with `file:line:col` errors;
//! - [`dataset`] — the inputs (JSONL or CSV), with `file:line` errors.

pub mod dataset;
pub mod spec;
