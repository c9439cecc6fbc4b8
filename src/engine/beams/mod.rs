//! Beam search with Hugging Face transformers' semantics (`generate()` with
//! `num_beams`), independent of llama.cpp: [`search`] asks a [`BeamModel`]
//! for logits and tells it which beam continues which.

mod ngram;
mod options;
mod search;
mod sequences;

#[cfg(test)]
mod fixtures;

pub use ngram::banned_next_tokens;
pub use options::{BeamOptions, EarlyStopping};
pub use search::{search, BeamModel, BeamResult, Hypothesis};
pub use sequences::beam_search;
