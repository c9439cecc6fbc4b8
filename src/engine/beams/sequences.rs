//! Beam search on a [`Backend`]: the beams are parallel sequences of one
//! context. The prompt is decoded once into sequence 0 (reusing what
//! sequence 0 already holds of it) and stays there for later requests;
//! beam `i` lives in some sequence among 1..=num_beams, starts as a KV copy
//! of sequence 0, and each step decodes one token per beam in one batch.
//! When the search re-forms the beams, a child takes over its parent's
//! sequence if it is the parent's first child, and otherwise gets a dropped
//! beam's sequence, cleared and refilled with a KV copy of the parent.
//!
//! A dropped beam's cells are not freed during the search: before its
//! sequence is cleared they are copied to a last sequence nobody reads, the
//! graveyard. llama.cpp's attention is not invariant to the order of a
//! sequence's cells in the cache (it accumulates over cells in cell order,
//! partly in F16), and freed cells would be refilled by later tokens at
//! lower cell indices than earlier ones; measured on SmolLM2, that moved a
//! beam's log-probabilities by up to 0.06 per token from a fresh decode of
//! the same tokens and changed which beams won. With nothing freed every
//! new token is appended, each beam's cells stay in position order, and a
//! beam's logits equal those of decoding its tokens alone. The search uses
//! no more cells than its check allows (prompt + beams × new tokens); the
//! graveyard is emptied at the end.

use std::time::{Duration, Instant};

use llama_cpp_2::token::LlamaToken;

use super::search::{search, BeamModel, BeamResult};
use super::BeamOptions;
use crate::engine::parallel::Backend;

/// The error of a search stopped by its caller.
pub const CANCELLED: &str = "the beam search was cancelled";

/// The sequences a search of `num_beams` beams needs: the prompt's, one
/// per beam and the graveyard (the last one).
pub fn sequences_for(num_beams: usize) -> u32 {
    num_beams as u32 + 2
}

/// The sequence that holds the prompt (and single requests' cache).
const PROMPT_SEQ: i32 = 0;

/// Runs the beam search over `prompt` on `backend`. `options.eos` should
/// hold the model's end-of-generation tokens. Afterwards sequence 0 holds
/// the prompt (the backend's cached tokens) and the beams' sequences are
/// empty, also after an error.
pub fn beam_search<B: Backend>(
    backend: &mut B,
    prompt: &[LlamaToken],
    options: &BeamOptions,
) -> Result<BeamResult, String> {
    beam_search_with(backend, prompt, options, &|| false).map(|run| run.result)
}

/// A search's result and how its prompt was evaluated.
#[derive(Debug, Clone)]
pub struct BeamRun {
    pub result: BeamResult,
    /// Prompt tokens sequence 0 already held.
    pub reused_tokens: usize,
    pub prompt_eval: Duration,
}

/// [`beam_search`], polling `cancelled` before each step: a cancelled
/// search ends with an error (its beams are unfinished; none is a result).
pub fn beam_search_with<B: Backend>(
    backend: &mut B,
    prompt: &[LlamaToken],
    options: &BeamOptions,
    cancelled: &dyn Fn() -> bool,
) -> Result<BeamRun, String> {
    options.validate()?;
    check_room(backend, prompt.len(), options)?;
    let prompt_ids: Vec<i32> = prompt.iter().map(|t| t.0).collect();
    let mut beams = BackendBeams {
        backend,
        prompt,
        num_beams: options.num_beams,
        seqs: Vec::new(),
        generated: 0,
        cancelled,
        reused: 0,
        prompt_eval: Duration::ZERO,
        prompt_decoded: false,
    };
    let result = search(&mut beams, &prompt_ids, options);
    // A cancelled search leaves the prompt's KV whole; after a failed
    // decode nothing in the cache is trusted.
    let prompt_intact = match &result {
        Ok(_) => true,
        Err(e) => e == CANCELLED && beams.prompt_decoded,
    };
    beams.finish(prompt_intact);
    Ok(BeamRun {
        result: result?,
        reused_tokens: beams.reused,
        prompt_eval: beams.prompt_eval,
    })
}

/// Refuses a search the context cannot hold, before decoding anything.
fn check_room<B: Backend>(
    backend: &B,
    prompt_len: usize,
    options: &BeamOptions,
) -> Result<(), String> {
    if prompt_len == 0 {
        return Err("beam search needs a prompt of at least one token".into());
    }
    let seqs_needed = sequences_for(options.num_beams) as usize;
    if seqs_needed > backend.n_seq_max() as usize {
        return Err(format!(
            "{} beams need {seqs_needed} sequences (the prompt's, one per beam and one \
             that keeps dropped beams' cells); \
             the context has {}",
            options.num_beams,
            backend.n_seq_max()
        ));
    }
    if options.num_beams > backend.n_batch() {
        return Err(format!(
            "{} beams do not fit one batch of {} tokens",
            options.num_beams,
            backend.n_batch()
        ));
    }
    let cells = prompt_len + options.num_beams * options.max_new_tokens;
    if cells > backend.n_ctx() {
        return Err(format!(
            "the prompt ({prompt_len} tokens) and {} beams × {} new tokens need {cells} \
             tokens of context; it has {}",
            options.num_beams,
            options.max_new_tokens,
            backend.n_ctx()
        ));
    }
    Ok(())
}

/// The search's [`BeamModel`] on a backend.
struct BackendBeams<'a, B: Backend> {
    backend: &'a mut B,
    prompt: &'a [LlamaToken],
    num_beams: usize,
    /// Beam `i`'s sequence id; empty until the first step's beams exist
    /// (before that every beam is the prompt, in sequence 0).
    seqs: Vec<i32>,
    /// Tokens each beam holds after the prompt.
    generated: usize,
    cancelled: &'a dyn Fn() -> bool,
    /// Prompt tokens sequence 0 already held, and the time to decode the rest.
    reused: usize,
    prompt_eval: Duration,
    /// Sequence 0 holds the whole prompt.
    prompt_decoded: bool,
}

impl<B: Backend> BackendBeams<'_, B> {
    /// Decodes what sequence 0 lacks of the prompt, in batches of at most
    /// n_batch tokens, with logits for the prompt's last token (re-decoded
    /// if sequence 0 held the whole prompt already). Returns its batch
    /// index.
    fn decode_prompt(&mut self) -> Result<i32, String> {
        let cached = self.backend.take_cached();
        let shared = cached
            .iter()
            .zip(self.prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(self.prompt.len() - 1);
        if !self
            .backend
            .clear_seq(PROMPT_SEQ, Some(shared as u32), None)
        {
            // A cache that cannot be cut where needed: start over.
            self.backend.clear_seq(PROMPT_SEQ, None, None);
            return self.decode_prompt_from(0);
        }
        self.reused = shared;
        self.decode_prompt_from(shared)
    }

    fn decode_prompt_from(&mut self, start: usize) -> Result<i32, String> {
        let n_batch = self.backend.n_batch();
        let last = self.prompt.len() - 1;
        let mut logits_index = 0;
        for (chunk_index, chunk) in self.prompt[start..].chunks(n_batch).enumerate() {
            self.backend.batch_clear();
            for (offset, &token) in chunk.iter().enumerate() {
                let position = start + chunk_index * n_batch + offset;
                let wants_logits = position == last;
                if wants_logits {
                    logits_index = offset as i32;
                }
                self.backend
                    .batch_add(token, position as i32, PROMPT_SEQ, wants_logits)?;
            }
            self.backend.decode()?;
        }
        Ok(logits_index)
    }

    /// Gives new beam `i` a sequence holding its parent's tokens.
    fn reassign(&mut self, parents: &[usize]) {
        let n = parents.len();
        if self.seqs.is_empty() {
            // First step: every parent is the prompt.
            self.seqs = (1..=n as i32).collect();
            for &seq in &self.seqs {
                self.backend.clear_seq(seq, None, None);
                self.backend.copy_seq(PROMPT_SEQ, seq, None, None);
            }
            return;
        }
        let old = std::mem::take(&mut self.seqs);
        let mut taken = vec![false; old.len()];
        let mut seqs: Vec<Option<i32>> = parents
            .iter()
            .map(|&p| {
                (!taken[p]).then(|| {
                    taken[p] = true;
                    old[p]
                })
            })
            .collect();
        // The dropped beams' sequences, one for each child whose parent's
        // sequence went to a sibling. The parent's sequence still holds
        // the parent's tokens: nothing is decoded until every copy is made.
        let mut free = old
            .iter()
            .zip(&taken)
            .filter(|(_, &t)| !t)
            .map(|(&seq, _)| seq);
        for (i, seq) in seqs.iter_mut().enumerate() {
            if seq.is_none() {
                let dst = free
                    .next()
                    .expect("as many dropped beams as extra children");
                self.backend.copy_seq(dst, self.graveyard(), None, None);
                self.backend.clear_seq(dst, None, None);
                self.backend.copy_seq(old[parents[i]], dst, None, None);
                *seq = Some(dst);
            }
        }
        self.seqs = seqs.into_iter().flatten().collect();
    }

    fn graveyard(&self) -> i32 {
        sequences_for(self.num_beams) as i32 - 1
    }

    /// Leaves sequence 0 holding the prompt (or nothing, when it may not)
    /// and the beams' sequences and the graveyard empty.
    fn finish(&mut self, prompt_intact: bool) {
        for seq in 1..=self.graveyard() {
            self.backend.clear_seq(seq, None, None);
        }
        if prompt_intact {
            self.backend.put_cached(self.prompt.to_vec());
        } else {
            self.backend.clear_seq(PROMPT_SEQ, None, None);
            self.backend.put_cached(Vec::new());
        }
    }
}

impl<B: Backend> BeamModel for BackendBeams<'_, B> {
    fn prompt_logits(&mut self) -> Result<Vec<f32>, String> {
        let started = Instant::now();
        let index = self.decode_prompt()?;
        let logits = self.backend.logits(index);
        self.prompt_eval = started.elapsed();
        self.prompt_decoded = true;
        Ok(logits)
    }

    fn advance(&mut self, parents: &[usize], tokens: &[i32]) -> Result<Vec<Vec<f32>>, String> {
        if (self.cancelled)() {
            return Err(CANCELLED.into());
        }
        self.reassign(parents);
        let position = (self.prompt.len() + self.generated) as i32;
        self.backend.batch_clear();
        for (&seq, &token) in self.seqs.iter().zip(tokens) {
            self.backend
                .batch_add(LlamaToken(token), position, seq, true)?;
        }
        self.backend.decode()?;
        self.generated += 1;
        Ok((0..tokens.len() as i32)
            .map(|i| self.backend.logits(i))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::protocol::Prompt;
    use crate::engine::scripted::{self, next_token, toy_logits, ToyBackend, EOS};

    fn prompt(text: &str) -> Vec<LlamaToken> {
        scripted::tokenize(&Prompt::Raw {
            text: text.to_string(),
        })
    }

    fn options(num_beams: usize, max_new_tokens: usize) -> BeamOptions {
        BeamOptions {
            num_return_sequences: num_beams.min(3),
            ..BeamOptions::new(num_beams, max_new_tokens, vec![EOS.0])
        }
    }

    /// The toy model without a KV cache: each beam's logits recomputed
    /// from its whole sequence, the reference for the backend's copies.
    struct Recomputed {
        prompt: Vec<LlamaToken>,
        beams: Vec<Vec<LlamaToken>>,
    }

    impl BeamModel for Recomputed {
        fn prompt_logits(&mut self) -> Result<Vec<f32>, String> {
            Ok(toy_logits(&self.prompt))
        }

        fn advance(&mut self, parents: &[usize], tokens: &[i32]) -> Result<Vec<Vec<f32>>, String> {
            let old = std::mem::take(&mut self.beams);
            self.beams = parents
                .iter()
                .zip(tokens)
                .map(|(&p, &t)| {
                    let mut seq = old.get(p).cloned().unwrap_or_else(|| self.prompt.clone());
                    seq.push(LlamaToken(t));
                    seq
                })
                .collect();
            Ok(self.beams.iter().map(|s| toy_logits(s)).collect())
        }
    }

    #[test]
    fn one_beam_is_the_toy_models_greedy_reply() {
        for text in ["Once upon", "eos=5 hi", "a longer prompt than the batch"] {
            let tokens = prompt(text);
            let mut toy = ToyBackend::new(4096, 8, 3);
            let result = beam_search(&mut toy, &tokens, &options(1, 40)).unwrap();
            let mut seq = tokens.clone();
            let mut greedy = Vec::new();
            loop {
                let next = next_token(&seq, None);
                greedy.push(next.0);
                seq.push(next);
                if next == EOS {
                    break;
                }
            }
            assert_eq!(result.hypotheses[0].tokens, greedy, "{text}");
        }
    }

    #[test]
    fn beams_in_kv_sequences_equal_beams_recomputed_from_scratch() {
        for num_beams in [2, 3, 4, 8] {
            for text in ["Once upon", "eos=12 abc", "the quick brown fox jumps"] {
                let tokens = prompt(text);
                // Exactly the sequences and the batch the search needs, so
                // one more would trip the toy's llama.cpp checks.
                let mut toy = ToyBackend::new(8192, num_beams, sequences_for(num_beams));
                let opts = options(num_beams, 16);
                let got = beam_search(&mut toy, &tokens, &opts).unwrap();
                let mut reference = Recomputed {
                    prompt: tokens.clone(),
                    beams: Vec::new(),
                };
                let ids: Vec<i32> = tokens.iter().map(|t| t.0).collect();
                let want = search(&mut reference, &ids, &opts).unwrap();
                assert_eq!(got, want, "{num_beams} beams, {text:?}");
                assert!(toy.decodes.iter().all(|d| !d.failed));
                assert!(toy.decodes.iter().all(|d| d.batch.len() <= num_beams));
                // The prompt stays in sequence 0; the beams are gone.
                assert_eq!(toy.sequence(0), &tokens[..]);
                for seq in 1..=num_beams as i32 {
                    assert!(toy.sequence(seq).is_empty(), "sequence {seq}");
                }
            }
        }
    }

    #[test]
    fn a_second_search_reuses_the_prompts_kv() {
        let tokens = prompt("eos=6 the same prompt");
        let mut toy = ToyBackend::new(4096, 64, 6);
        let first = beam_search(&mut toy, &tokens, &options(4, 10)).unwrap();
        let decodes = toy.decodes.len();
        let second = beam_search(&mut toy, &tokens, &options(4, 10)).unwrap();
        assert_eq!(first, second);
        // Only the prompt's last token is decoded again, for its logits.
        assert_eq!(toy.decodes[decodes].batch.len(), 1);
    }

    #[test]
    fn a_search_the_context_cannot_hold_is_refused_before_decoding() {
        let tokens = prompt("hello");
        let cases = [
            (ToyBackend::new(4096, 64, 5), "sequences"),
            (ToyBackend::new(4096, 3, 8), "one batch"),
            (ToyBackend::new(40, 64, 8), "tokens of context"),
        ];
        for (mut toy, reason) in cases {
            let err = beam_search(&mut toy, &tokens, &options(4, 10)).unwrap_err();
            assert!(err.contains(reason), "{err}");
            assert!(toy.decodes.is_empty());
        }
        let mut toy = ToyBackend::new(4096, 64, 8);
        let err = beam_search(&mut toy, &[], &options(4, 10)).unwrap_err();
        assert!(err.contains("prompt"), "{err}");
    }

    #[test]
    fn a_failed_decode_ends_the_search_and_empties_the_sequences() {
        let tokens = prompt("Once upon a time");
        let mut toy = ToyBackend::new(4096, 64, 6);
        toy.fail_decodes.insert(3);
        let err = beam_search(&mut toy, &tokens, &options(4, 10)).unwrap_err();
        assert!(err.contains("scripted decode failure"), "{err}");
        for seq in 0..6 {
            assert!(toy.sequence(seq).is_empty(), "sequence {seq}");
        }
    }

    #[test]
    fn a_cancelled_search_empties_the_beams_and_keeps_the_prompt() {
        let tokens = prompt("Once upon a time");
        let mut toy = ToyBackend::new(4096, 64, 6);
        let steps = std::cell::Cell::new(0);
        let cancel_at_third = || {
            steps.set(steps.get() + 1);
            steps.get() >= 3
        };
        let err =
            beam_search_with(&mut toy, &tokens, &options(4, 10), &cancel_at_third).unwrap_err();
        assert_eq!(err, CANCELLED);
        assert_eq!(toy.sequence(0), tokens);
        for seq in 1..6 {
            assert!(toy.sequence(seq).is_empty(), "sequence {seq}");
        }
        // The next search finds the prompt in the cache.
        let run = beam_search_with(&mut toy, &tokens, &options(4, 10), &|| false).unwrap();
        assert_eq!(run.reused_tokens, tokens.len() - 1);
    }
}
