//! Sampling with an optional grammar, the way llama.cpp's own `common`
//! sampler does it, kept out of harm's way.
//!
//! - The grammar comes first: conceptually it masks the candidates before
//!   the rest of the chain (penalties, top-k/top-p/min-p, temperature, the
//!   draw). For speed the chain first samples unconstrained and only that
//!   one token is checked against the grammar; only if the grammar rejects
//!   it are all candidates masked by the grammar and the chain run again
//!   (llama.cpp's `common_sampler_sample`). With greedy decoding both give
//!   the same token; with sampling, an accepted first draw is kept, as in
//!   llama.cpp.
//! - Only generated tokens the grammar allowed are accepted into it: never
//!   the prompt, nor the start of a continued reply (the grammar constrains
//!   what is generated now).
//! - An end-of-generation token is never accepted into the grammar. While
//!   the grammar is unfinished, llama.cpp's grammar masks every EOG token
//!   (`llama_grammar_apply_impl` allows EOG only when a parse stack is
//!   empty), so the check above rejects it and the resample cannot pick it;
//!   accepting one would abort llama.cpp (`llama_grammar_accept_impl`).
//! - If the grammar allows no token at all, that is an error, not an abort.
//!
//! Randomness: one seeded draw per chain run, so a constrained generation
//! with a seed is reproducible; a rejected draw costs a second draw, so its
//! random stream differs from the unconstrained run's from the first
//! rejection on.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;

use super::constraint::{self, Constraint};
use super::llama_log;
use super::protocol::GrammarEnd;
use super::stderr_capture;

/// llama.cpp's grammar sampler for one generation, built from a constraint.
pub struct Grammar {
    sampler: LlamaSampler,
    /// An end-of-generation token, to ask the grammar whether it is finished.
    eog: LlamaToken,
}

impl std::fmt::Debug for Grammar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammar").finish_non_exhaustive()
    }
}

impl Grammar {
    /// Converts a schema and parses the grammar; a refusal carries
    /// llama.cpp's reason and the constraint's source.
    pub fn new(model: &LlamaModel, constraint: &Constraint) -> Result<Self, String> {
        let text = constraint.gbnf()?;
        let source = constraint.source().to_string();
        if !text.contains(constraint::ROOT) {
            return Err(format!(
                "{source}: the grammar has no `{}` rule",
                constraint::ROOT
            ));
        }
        let ((result, logged), printed) = stderr_capture::capture(|| {
            llama_log::capture(|| LlamaSampler::grammar(model, &text, constraint::ROOT))
        });
        if !printed.trim().is_empty() {
            tracing::debug!("llama.cpp on the grammar of {source}: {}", printed.trim());
        }
        let sampler = result.map_err(|e| {
            let logged = llama_log::most_specific_reason(&logged);
            let reason = match e {
                llama_cpp_2::GrammarError::NullGrammar => {
                    constraint::grammar_reason(&text, &printed, logged.as_deref())
                }
                other => other.to_string(),
            };
            match constraint {
                Constraint::Grammar { .. } => format!("{source}: {reason}"),
                Constraint::JsonSchema { .. } => format!(
                    "{source}: llama.cpp cannot use the grammar converted from this schema: {reason}"
                ),
            }
        })?;
        let vocab = model.vocab();
        let eog = [vocab.eos(), vocab.eot()]
            .into_iter()
            .find(|&t| t.0 >= 0 && vocab.is_eog(t))
            .unwrap_or(vocab.eos());
        Ok(Self { sampler, eog })
    }

    /// Whether the grammar lets `token` come next.
    pub fn allows(&mut self, token: LlamaToken) -> bool {
        let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 1.0, 0.0)], false);
        self.sampler.apply(&mut one);
        one.data[0].logit() != f32::NEG_INFINITY
    }

    /// Whether what was accepted so far is a complete match: llama.cpp
    /// allows an end-of-generation token exactly then.
    pub fn end(&mut self) -> GrammarEnd {
        if self.allows(self.eog) {
            GrammarEnd::Complete
        } else {
            GrammarEnd::Unfinished
        }
    }

    /// Masks every candidate the grammar does not allow (logit -inf).
    fn mask(&mut self, candidates: &mut LlamaTokenDataArray) {
        self.sampler.apply(candidates);
    }

    /// Moves the grammar past a generated token it allowed (never an
    /// end-of-generation token, see the module notes).
    fn accept(&mut self, token: LlamaToken, is_eog: bool) -> Result<(), String> {
        if is_eog {
            return Ok(());
        }
        self.sampler
            .try_accept(token)
            .map_err(|e| format!("the grammar refused token {}: {e}", token.0))
    }
}

/// A sampled token and the candidates it was drawn from (after the chain,
/// and the grammar if the first draw was rejected).
pub struct Drawn {
    pub token: LlamaToken,
    pub candidates: LlamaTokenDataArray,
}

/// Samples the token at `logits_index` with `chain` under `grammar`: the
/// chain's draw if the grammar allows it, else a draw from the candidates
/// the grammar allows. Both samplers accept the token.
pub fn sample(
    chain: &mut LlamaSampler,
    grammar: &mut Grammar,
    ctx: &LlamaContext<'_>,
    logits_index: i32,
    is_eog: impl Fn(LlamaToken) -> bool,
) -> Result<Drawn, String> {
    let mut candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(logits_index), false);
    chain.apply(&mut candidates);
    let first = candidates
        .selected_token()
        .ok_or_else(|| "the sampler selected no token".to_string())?;
    let token = if grammar.allows(first) {
        first
    } else {
        candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(logits_index), false);
        grammar.mask(&mut candidates);
        chain.apply(&mut candidates);
        let selected = candidates
            .selected
            .and_then(|i| candidates.data.get(i))
            .ok_or_else(|| "the sampler selected no token".to_string())?;
        if selected.logit() == f32::NEG_INFINITY {
            return Err(
                "the grammar allows no token here (no token of this model's \
                        vocabulary can continue it)"
                    .to_string(),
            );
        }
        selected.id()
    };
    chain.accept(token);
    grammar.accept(token, is_eog(token))?;
    Ok(Drawn { token, candidates })
}
