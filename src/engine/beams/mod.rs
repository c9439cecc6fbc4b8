//! Beam search with Hugging Face transformers' semantics (`generate()` with
//! `num_beams`), followed from transformers 5.24.0's
//! `GenerationMixin._beam_search` in `generation/utils.py` and checked
//! against it (`tests/fixtures/beams/`).
//!
//! - [`search`]: the algorithm, independent of llama.cpp; it asks a
//!   [`BeamModel`] for each beam's logits and tells it which beam continues
//!   which.
//! - [`beam_search`]: that algorithm on the engine's [`Backend`], the beams
//!   being parallel sequences of one context.
//!
//! What transformers does, and so this does:
//! - log-probabilities are the log-softmax of the raw logits at
//!   temperature 1; `no_repeat_ngram_size` then sets banned tokens to −∞
//!   (no renormalising), over the prompt and generated tokens together;
//! - each step keeps the best `max(2, 1 + EOS tokens) × num_beams`
//!   continuations of all beams; those among the first `num_beams` that end
//!   (EOS, or `max_new_tokens` reached) become hypotheses scored
//!   `summed log-prob / generated length ** length_penalty`, the length
//!   counting the EOS token and not the prompt; the best `num_beams` not
//!   ending run on;
//! - `early_stopping`: see [`EarlyStopping`];
//! - the result is the `num_return_sequences` best hypotheses, best first,
//!   the EOS token included in their tokens.
//!
//! Where we had to choose:
//! - equal scores: torch's `topk` leaves their order unspecified; here the
//!   lower beam, then the lower token, comes first (and a kept hypothesis
//!   before a new one);
//! - `num_beams = 1`: `generate()` runs greedy decoding instead; here the
//!   search runs with `early_stopping` true, which is the same thing;
//! - a hypothesis slot still empty at the end (it takes banned n-grams or
//!   a vocabulary barely larger than the beams) is left out, where
//!   transformers would return its padding with score −1e9.
//!
//! [`Backend`]: crate::engine::parallel::Backend

mod ngram;
mod options;
mod search;
mod sequences;
pub mod serve;

#[cfg(test)]
mod fixtures;

pub use ngram::banned_next_tokens;
pub use options::{BeamOptions, BeamSettings, EarlyStopping, MAX_BEAMS};
pub use search::{search, BeamModel, BeamResult, Hypothesis};
pub use sequences::{beam_search, beam_search_with, sequences_for, BeamRun, CANCELLED};
