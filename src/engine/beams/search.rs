//! The beam search itself, step for step as transformers 5.24.0 does it in
//! `GenerationMixin._beam_search` (`generation/utils.py`), with its helpers
//! `_get_top_k_continuations`, `_get_running_beams_for_next_iteration`,
//! `_update_finished_beams`, `_check_early_stop_heuristic` and
//! `_beam_search_has_unfinished_sequences` (batch size 1, no sampling).
//!
//! It knows nothing of llama.cpp: a [`BeamModel`] gives it logits and is
//! told which beam continues which, so a real model can copy KV cache from
//! parent to child and decode all beams in one batch.
//!
//! Scores are f32 as transformers keeps them, and its "very large negative
//! number" masks (−1e9) are reproduced rather than replaced by flags: they
//! decide which slots win ties and what a beam that hit the end scores, so
//! keeping the arithmetic keeps the results identical.

use super::ngram::banned_next_tokens;
use super::options::{BeamOptions, EarlyStopping};

/// transformers' mask for "cannot be chosen".
const MASKED: f32 = -1.0e9;

/// What the search needs from a model. Beams are numbered 0..num_beams in
/// the order the search last reported them.
pub trait BeamModel {
    /// The logits for the token after the prompt. Every beam starts there.
    fn prompt_logits(&mut self) -> Result<Vec<f32>, String>;
    /// The beams are re-formed: new beam `i` is old beam `parents[i]` (or,
    /// on the first step, the prompt) followed by `tokens[i]`. Returns the
    /// logits for each new beam's next token, in order. Several new beams
    /// may share a parent; an old beam nobody names is dropped.
    fn advance(&mut self, parents: &[usize], tokens: &[i32]) -> Result<Vec<Vec<f32>>, String>;
}

/// One returned hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// The generated tokens, the end-of-generation token included when it
    /// ended on one.
    pub tokens: Vec<i32>,
    /// transformers' `sequences_scores`: `logprob / len(tokens) ** length_penalty`.
    pub score: f32,
    /// The summed log-probability of `tokens` (after `no_repeat_ngram_size`
    /// bans, which never touch a chosen token).
    pub logprob: f32,
}

/// What the search returns: the best hypotheses, best first (at most
/// `num_return_sequences`), and how many steps it decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamResult {
    pub hypotheses: Vec<Hypothesis>,
    pub steps: usize,
}

/// A live beam: `running_sequences` / `running_beam_scores` in
/// transformers.
#[derive(Debug, Clone)]
struct Running {
    tokens: Vec<i32>,
    score: f32,
}

/// A kept hypothesis slot: `sequences` / `beam_scores` / `is_sent_finished`.
#[derive(Debug, Clone)]
struct Slot {
    tokens: Vec<i32>,
    score: f32,
    logprob: f32,
    finished: bool,
}

/// One of the step's top-k continuations.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    parent: usize,
    token: i32,
    /// Accumulated log-probability.
    logprob: f32,
    /// It ends here: an EOS token, or `max_new_tokens` reached
    /// (`next_token_hits_stopping_criteria`).
    ends: bool,
}

/// Runs the search. `prompt` is only read for `no_repeat_ngram_size`
/// (transformers counts the prompt's n-grams too).
pub fn search(
    model: &mut impl BeamModel,
    prompt: &[i32],
    options: &BeamOptions,
) -> Result<BeamResult, String> {
    options.validate()?;
    let num_beams = options.num_beams;
    // generate() runs greedy decoding for one beam; one beam that stops
    // at its first finished hypothesis is exactly that.
    let early_stopping = if num_beams == 1 {
        EarlyStopping::True
    } else {
        options.early_stopping
    };
    let keep = options.candidates_per_step();

    // Beam 0 starts at 0 and the others at −1e9, so the first step draws
    // only from beam 0 instead of picking the same token num_beams times.
    let mut running: Vec<Running> = (0..num_beams)
        .map(|i| Running {
            tokens: Vec::new(),
            score: if i == 0 { 0.0 } else { MASKED },
        })
        .collect();
    let mut slots: Vec<Slot> = (0..num_beams)
        .map(|_| Slot {
            tokens: Vec::new(),
            score: MASKED,
            logprob: MASKED,
            finished: false,
        })
        .collect();
    let mut improvement_possible = true;

    let first = model.prompt_logits()?;
    let mut rows: Vec<Vec<f32>> = vec![first; num_beams];
    let mut steps = 0;
    loop {
        let generated = steps; // tokens each running beam holds
        if rows.len() != num_beams {
            return Err(format!(
                "the model gave logits for {} beams, not {num_beams}",
                rows.len()
            ));
        }
        let candidates = top_candidates(&rows, &running, prompt, options, keep, generated)?;
        steps += 1;

        let (next, parents) = next_running(&candidates, &running, num_beams);
        update_slots(
            &mut slots,
            &candidates,
            &running,
            options,
            early_stopping,
            improvement_possible,
            generated + 1,
        );
        running = next;

        // `_check_early_stop_heuristic` after `cur_len += 1`, then
        // `_beam_search_has_unfinished_sequences`.
        improvement_possible =
            improvement_possible && can_improve(&running, &slots, options, early_stopping, steps);
        let all_finished = slots.iter().all(|s| s.finished);
        let all_end = candidates.iter().all(|c| c.ends);
        let open = !(all_finished && early_stopping == EarlyStopping::True);
        if !(improvement_possible && open && !all_end) {
            break;
        }

        let tokens: Vec<i32> = running
            .iter()
            .map(|r| r.tokens[r.tokens.len() - 1])
            .collect();
        rows = model.advance(&parents, &tokens)?;
    }

    let hypotheses = slots
        .into_iter()
        .take(options.num_return_sequences)
        // Only a slot that never received a hypothesis is unfinished here;
        // transformers would return its placeholder, we leave it out.
        .filter(|s| s.finished)
        .map(|s| Hypothesis {
            tokens: s.tokens,
            score: s.score,
            logprob: s.logprob,
        })
        .collect();
    Ok(BeamResult { hypotheses, steps })
}

/// `_get_top_k_continuations`: the `keep` best (beam, token) pairs over all
/// beams by accumulated log-probability, best first. Log-probabilities are
/// the log-softmax of the raw logits; `no_repeat_ngram_size` then sets
/// banned tokens to −∞ without renormalising, as transformers' logits
/// processors run after its `log_softmax`. Equal scores keep the lower
/// beam, then the lower token, first (torch.topk leaves ties unspecified).
fn top_candidates(
    rows: &[Vec<f32>],
    running: &[Running],
    prompt: &[i32],
    options: &BeamOptions,
    keep: usize,
    generated: usize,
) -> Result<Vec<Candidate>, String> {
    let vocab = rows[0].len();
    if rows.iter().any(|row| row.len() != vocab) {
        return Err("the model gave logits rows of different lengths".into());
    }
    if vocab * rows.len() < keep {
        return Err(format!(
            "a vocabulary of {vocab} tokens is too small for {keep} candidates per step"
        ));
    }
    let ends_by_length = generated + 1 >= options.max_new_tokens;
    let mut pool: Vec<Candidate> = Vec::with_capacity(keep * rows.len());
    let mut sequence: Vec<i32> = Vec::new();
    for (beam, (row, run)) in rows.iter().zip(running).enumerate() {
        if row.iter().any(|l| l.is_nan()) {
            return Err(format!("the logits of beam {beam} hold NaN"));
        }
        let norm = log_normaliser(row)
            .ok_or_else(|| format!("the logits of beam {beam} hold no finite value"))?;
        sequence.clear();
        sequence.extend_from_slice(prompt);
        sequence.extend_from_slice(&run.tokens);
        let banned = banned_next_tokens(&sequence, options.no_repeat_ngram_size);
        let logprob = |token: usize| {
            if banned.contains(&(token as i32)) {
                f32::NEG_INFINITY
            } else {
                (row[token] - norm) + run.score
            }
        };
        // The beam's own best `keep`: no other can be among the overall best.
        let mut best: Vec<(usize, f32)> = Vec::with_capacity(keep + 1);
        for token in 0..vocab {
            let value = logprob(token);
            if best.len() == keep && value <= best[keep - 1].1 {
                continue;
            }
            let at = best.partition_point(|&(_, v)| v >= value);
            best.insert(at, (token, value));
            best.truncate(keep);
        }
        pool.extend(best.into_iter().map(|(token, value)| Candidate {
            parent: beam,
            token: token as i32,
            logprob: value,
            ends: ends_by_length || options.is_eos(token as i32),
        }));
    }
    // Stable: ties stay in (beam, token) order.
    pool.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
    pool.truncate(keep);
    Ok(pool)
}

/// `_get_running_beams_for_next_iteration`: the best `num_beams`
/// candidates after those that ended get −1e9 (so only as many ended ones
/// run on as needed to fill the beams, with hopeless scores). Returns the
/// beams and each one's parent.
fn next_running(
    candidates: &[Candidate],
    running: &[Running],
    num_beams: usize,
) -> (Vec<Running>, Vec<usize>) {
    let mut order: Vec<(usize, f32)> = candidates
        .iter()
        .enumerate()
        .map(|(j, c)| (j, c.logprob + if c.ends { MASKED } else { 0.0 }))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order.truncate(num_beams);
    let parents = order.iter().map(|&(j, _)| candidates[j].parent).collect();
    let beams = order
        .iter()
        .map(|&(j, score)| {
            let c = candidates[j];
            let mut tokens = running[c.parent].tokens.clone();
            tokens.push(c.token);
            Running { tokens, score }
        })
        .collect();
    (beams, parents)
}

/// `_update_finished_beams`: a candidate among the step's first
/// `num_beams` that ends (EOS or `max_new_tokens`) becomes a hypothesis
/// scored `logprob / length ** length_penalty`, `length` counting the
/// generated tokens with this one; the `num_beams` best of the kept and new
/// ones stay. Nothing is added once `early_stopping` is true and every slot
/// is full, or once the heuristic said no improvement is possible.
#[allow(clippy::too_many_arguments)]
fn update_slots(
    slots: &mut Vec<Slot>,
    candidates: &[Candidate],
    running: &[Running],
    options: &BeamOptions,
    early_stopping: EarlyStopping,
    improvement_possible: bool,
    length: usize,
) {
    let num_beams = options.num_beams;
    let divisor = (length as f64).powf(f64::from(options.length_penalty)) as f32;
    let full = slots.iter().all(|s| s.finished) && early_stopping == EarlyStopping::True;
    let mut merged: Vec<Slot> = std::mem::take(slots);
    for (j, c) in candidates.iter().enumerate() {
        let finishes = c.ends && j < num_beams;
        let mut score = c.logprob / divisor;
        if full {
            score += MASKED;
        }
        if !improvement_possible {
            score += MASKED;
        }
        if !finishes {
            score += MASKED;
        }
        let mut tokens = running[c.parent].tokens.clone();
        tokens.push(c.token);
        merged.push(Slot {
            tokens,
            score,
            logprob: c.logprob,
            finished: finishes,
        });
    }
    // Stable: on equal scores the older slot wins, as in torch's topk over
    // the concatenation (kept slots first) in practice.
    merged.sort_by(|a, b| b.score.total_cmp(&a.score));
    merged.truncate(num_beams);
    *slots = merged;
}

/// `_check_early_stop_heuristic`: can the best running beam still beat the
/// worst kept hypothesis? It is scored at its current length (`steps`
/// tokens), or at `max_new_tokens` when `early_stopping` is "never" and
/// longer is better (`length_penalty > 0`). While a slot is still empty the
/// worst kept score counts as −1e9, so the search goes on.
fn can_improve(
    running: &[Running],
    slots: &[Slot],
    options: &BeamOptions,
    early_stopping: EarlyStopping,
    steps: usize,
) -> bool {
    let length = if early_stopping == EarlyStopping::Never && options.length_penalty > 0.0 {
        options.max_new_tokens
    } else {
        steps
    };
    let divisor = (length as f64).powf(f64::from(options.length_penalty)) as f32;
    let best_possible = running[0].score / divisor;
    let worst_kept = slots.iter().map(|s| s.score).fold(f32::INFINITY, f32::min);
    slots
        .iter()
        .any(|s| best_possible > if s.finished { worst_kept } else { MASKED })
}

/// log Σ exp(logit) of a row, exact to f32 rounding: beams are ranked by
/// sums of these, so the fast approximate exp of `probs::LogSoftmax`
/// (≈1.6e-4 relative error) would reorder close beams. `None` when the row
/// holds no finite logit.
fn log_normaliser(row: &[f32]) -> Option<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return None;
    }
    let sum: f64 = row.iter().map(|&l| f64::from((l - max).exp())).sum();
    Some(max + sum.ln() as f32)
}
