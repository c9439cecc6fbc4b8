//! How sure the model was of each token: its log-probability and the most
//! likely alternatives, from one row of logits.
//!
//! The definition is llama-server's default `n_probs` (and OpenAI's
//! `logprobs`): the softmax of the raw logits over the whole vocabulary at
//! temperature 1, before any sampler. It says what the model thought, not
//! what the sampler settings made of it.

use serde::{Deserialize, Serialize};

/// The most alternatives a request may ask for (llama-server and OpenAI
/// allow 20 too).
pub const MAX_TOP: u8 = 20;

/// What a generation request wants to know about each sampled token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbsRequest {
    /// Alternatives to report with each token, 0..=20 (0: only the token's
    /// own log-probability).
    pub top: u8,
    /// Report the distribution the sampler drew from (after penalties,
    /// top-k/top-p/min-p and temperature) instead of the model's raw one,
    /// as llama-server's `post_sampling_probs`. Single requests only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_sampler: bool,
}

impl ProbsRequest {
    pub fn validate(&self) -> Result<(), String> {
        if self.top > MAX_TOP {
            return Err(format!(
                "{} alternatives per token asked for; at most {MAX_TOP}",
                self.top
            ));
        }
        Ok(())
    }
}

/// One token's probability facts, carried on its `Token` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenProbs {
    /// Natural log of the sampled token's probability.
    pub logprob: f32,
    /// The most likely tokens, most likely first (the sampled one among them
    /// when it is likely enough).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<Alternative>,
    /// Entropy in nats of the whole distribution the token was drawn from
    /// (the full vocabulary; with `after_sampler`, the candidates the
    /// chain left): how unsure the model was at this point, whichever
    /// token came out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub token: i32,
    /// The token's text; a token that holds part of a multi-byte character
    /// shows it as U+FFFD.
    pub text: String,
    pub logprob: f32,
}

/// How sure the model was of one token, in three bands for shading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidence {
    /// Below 25%: the model nearly said something else.
    Low,
    /// 25% to 60%.
    Medium,
    High,
}

impl Confidence {
    pub fn of(prob: f32) -> Self {
        if prob < 0.25 {
            Confidence::Low
        } else if prob < 0.6 {
            Confidence::Medium
        } else {
            Confidence::High
        }
    }
}

/// How sure the model was of a whole reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyConfidence {
    pub tokens: usize,
    /// Mean natural-log probability of the sampled tokens.
    pub mean_logprob: f64,
    /// exp(−mean log-probability): how many tokens the model was, on
    /// average, choosing between.
    pub perplexity: f64,
    /// The least likely sampled tokens as (index in the reply, log-prob),
    /// least likely first; ties in reply order.
    pub lowest: Vec<(usize, f32)>,
}

impl ReplyConfidence {
    /// `None` for a reply without tokens.
    pub fn of(logprobs: &[f32], lowest: usize) -> Option<Self> {
        if logprobs.is_empty() {
            return None;
        }
        let mean = logprobs.iter().map(|&l| f64::from(l)).sum::<f64>() / logprobs.len() as f64;
        let mut ranked: Vec<(usize, f32)> = logprobs.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        ranked.truncate(lowest);
        Some(Self {
            tokens: logprobs.len(),
            mean_logprob: mean,
            perplexity: (-mean).exp(),
            lowest: ranked,
        })
    }
}

/// The normaliser of a log-softmax: log Σ exp(logit), computed around the
/// row's maximum so that no term overflows.
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax {
    max: f32,
    log_sum: f32,
}

impl LogSoftmax {
    /// One pass over the row; `None` when it holds no finite logit.
    pub fn of(logits: &[f32]) -> Option<Self> {
        let max = max_of(logits);
        if !max.is_finite() {
            return None;
        }
        let sum = sum_exp_below(logits, max);
        (sum > 0.0 && sum.is_finite()).then(|| Self {
            max,
            log_sum: sum.ln(),
        })
    }

    pub fn logprob(&self, logit: f32) -> f32 {
        logit - self.max - self.log_sum
    }

    /// Like `of`, with the entropy of the distribution in nats from the
    /// same pass: H = log S − Σ eᵢ·(lᵢ − max) / S with eᵢ = exp(lᵢ − max)
    /// and S = Σ eᵢ (one more multiply-add per logit).
    pub fn with_entropy(logits: &[f32]) -> Option<(Self, f32)> {
        let max = max_of(logits);
        if !max.is_finite() {
            return None;
        }
        let (sum, weighted) = sum_exp_weighted_below(logits, max);
        if !(sum > 0.0 && sum.is_finite()) {
            return None;
        }
        let log_sum = sum.ln();
        let entropy = (log_sum - weighted / sum).max(0.0);
        Some((Self { max, log_sum }, entropy))
    }
}

/// The `n` largest logits as (token, logit), largest first; equal logits in
/// token order. One pass with a small sorted buffer: almost every logit is
/// rejected by one comparison with the buffer's smallest.
pub fn top_logits(logits: &[f32], n: usize) -> Vec<(i32, f32)> {
    let mut best: Vec<(i32, f32)> = Vec::with_capacity(n + 1);
    if n == 0 {
        return best;
    }
    for (index, &logit) in logits.iter().enumerate() {
        if best.len() == n && logit <= best[n - 1].1 || logit.is_nan() {
            continue;
        }
        let at = best.partition_point(|&(_, l)| l >= logit);
        best.insert(at, (index as i32, logit));
        best.truncate(n);
    }
    best
}

/// The sampled token's facts from the logits row it was sampled from;
/// `piece` turns a token id into its text.
pub fn token_probs(
    logits: &[f32],
    token: i32,
    top: u8,
    piece: impl Fn(i32) -> String,
) -> Option<TokenProbs> {
    let (softmax, entropy) = LogSoftmax::with_entropy(logits)?;
    let logit = *usize::try_from(token).ok().and_then(|i| logits.get(i))?;
    let top = top_logits(logits, usize::from(top.min(MAX_TOP)))
        .into_iter()
        .map(|(token, logit)| Alternative {
            token,
            text: piece(token),
            logprob: softmax.logprob(logit),
        })
        .collect();
    Some(TokenProbs {
        logprob: softmax.logprob(logit),
        top,
        entropy: Some(entropy),
    })
}

/// A sampled token's probability, and its full facts when a request asked
/// for them (computed from one softmax pass either way).
pub fn of_sampled(
    logits: &[f32],
    token: i32,
    asked: Option<ProbsRequest>,
    piece: impl Fn(i32) -> String,
) -> (f32, Option<TokenProbs>) {
    match asked {
        Some(asked) => {
            let probs = token_probs(logits, token, asked.top, piece);
            (probs.as_ref().map_or(0.0, |p| p.logprob.exp()), probs)
        }
        None => (token_probability(logits, token), None),
    }
}

/// The sampled token's facts from the candidates the sampler chain left, as
/// (token, logit, probability). A chain ending in a random draw leaves the
/// probabilities it drew with; a greedy one leaves none, and then the
/// softmax of the remaining logits is what it chose the maximum of.
pub fn after_sampler(
    candidates: &[(i32, f32, f32)],
    token: i32,
    top: u8,
    piece: impl Fn(i32) -> String,
) -> Option<TokenProbs> {
    let drawn: Vec<(i32, f32)> = if candidates.iter().any(|&(_, _, p)| p > 0.0) {
        candidates.iter().map(|&(id, _, p)| (id, p)).collect()
    } else {
        let logits: Vec<f32> = candidates.iter().map(|&(_, logit, _)| logit).collect();
        let softmax = LogSoftmax::of(&logits)?;
        candidates
            .iter()
            .map(|&(id, logit, _)| (id, softmax.logprob(logit).exp()))
            .collect()
    };
    let chosen = drawn.iter().find(|&&(id, _)| id == token)?.1;
    let entropy = drawn
        .iter()
        .filter(|&&(_, p)| p > 0.0)
        .map(|&(_, p)| -f64::from(p) * f64::from(p).ln())
        .sum::<f64>() as f32;
    let mut ranked: Vec<(i32, f32)> = drawn.into_iter().filter(|&(_, p)| p > 0.0).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(usize::from(top.min(MAX_TOP)));
    Some(TokenProbs {
        logprob: chosen.ln(),
        top: ranked
            .into_iter()
            .map(|(token, p)| Alternative {
                token,
                text: piece(token),
                logprob: p.ln(),
            })
            .collect(),
        entropy: Some(entropy.max(0.0)),
    })
}

/// Lanes of the reductions below: independent accumulators let the
/// compiler vectorise them with baseline SSE2.
const LANES: usize = 16;

fn max_of(logits: &[f32]) -> f32 {
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    for chunk in chunks {
        for (m, &l) in lane_max.iter_mut().zip(chunk) {
            *m = if l > *m { l } else { *m };
        }
    }
    lane_max
        .iter()
        .chain(rest)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// Σ exp(logit − max) for a `max` no logit exceeds.
fn sum_exp_below(logits: &[f32], max: f32) -> f32 {
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    let mut lane_sum = [0f32; LANES];
    for chunk in chunks {
        for (s, &l) in lane_sum.iter_mut().zip(chunk) {
            *s += fast_exp(l - max);
        }
    }
    lane_sum.iter().sum::<f32>() + rest.iter().map(|&l| fast_exp(l - max)).sum::<f32>()
}

/// Σ exp(logit − max) and Σ exp(logit − max)·(logit − max), for the
/// entropy; logits of −∞ add nothing to either.
fn sum_exp_weighted_below(logits: &[f32], max: f32) -> (f32, f32) {
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    let mut lane_sum = [0f32; LANES];
    let mut lane_weighted = [0f32; LANES];
    for chunk in chunks {
        for ((s, w), &l) in lane_sum.iter_mut().zip(lane_weighted.iter_mut()).zip(chunk) {
            // exp underflows to 0 long before x·exp(x) could be NaN, but
            // −∞·0 is NaN: clamp the difference.
            let x = (l - max).max(-1.0e4);
            let e = fast_exp(x);
            *s += e;
            *w += e * x;
        }
    }
    let mut sum = lane_sum.iter().sum::<f32>();
    let mut weighted = lane_weighted.iter().sum::<f32>();
    for &l in rest {
        let x = (l - max).max(-1.0e4);
        let e = fast_exp(x);
        sum += e;
        weighted += e * x;
    }
    (sum, weighted)
}

/// The probability of `token` under the softmax of `logits` (0 when it
/// cannot be computed).
pub fn token_probability(logits: &[f32], token: i32) -> f32 {
    let Some(&logit) = usize::try_from(token).ok().and_then(|i| logits.get(i)) else {
        return 0.0;
    };
    LogSoftmax::of(logits).map_or(0.0, |s| s.logprob(logit).exp())
}

/// exp(x) for x <= 0 with ~1.6e-4 relative error, written so the compiler
/// can vectorise it with baseline SSE2 (no `floor` call): 2^(x·log2 e) split
/// into an integer power (exponent bits) and a polynomial for the fraction.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    let t = (x * std::f32::consts::LOG2_E).max(-126.0);
    // Truncation rounds toward zero; step down for negative non-integers.
    let truncated = t as i32;
    let floor = truncated - i32::from(t < truncated as f32);
    let f = t - floor as f32;
    // Taylor polynomial for 2^f on [0, 1); its error is below 1.6e-4.
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5 + f * (0.055_504_1 + f * (0.009_618_1 + f * 0.001_333_4))));
    let bits = ((floor + 127) as u32) << 23;
    f32::from_bits(bits) * p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// log-softmax in f64, the slow obvious way.
    fn exact_logprobs(logits: &[f32]) -> Vec<f64> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
        logits.iter().map(|&l| l as f64 - max - sum.ln()).collect()
    }

    #[test]
    fn fast_exp_is_close_to_exp() {
        for i in 0..2000 {
            let x = -(i as f32) * 0.05;
            let exact = x.exp();
            let approx = fast_exp(x);
            assert!(
                (approx - exact).abs() <= exact * 2e-4 + 1e-30,
                "x={x}: {approx} vs {exact}"
            );
        }
        assert!(fast_exp(-1000.0) >= 0.0 && fast_exp(-1000.0) < 1e-37);
    }

    #[test]
    fn probability_matches_exact_softmax_across_lanes_and_remainder() {
        let logits: Vec<f32> = (0..1_003)
            .map(|i| ((i * 7_919) % 997) as f32 * 0.03 - 12.0)
            .collect();
        let exact = exact_logprobs(&logits);
        let mut total = 0.0f64;
        for (i, exact) in exact.iter().enumerate() {
            let p = f64::from(token_probability(&logits, i as i32));
            assert!(
                (p - exact.exp()).abs() <= exact.exp() * 1e-3,
                "token {i}: {p} vs {}",
                exact.exp()
            );
            total += p;
        }
        assert!((total - 1.0).abs() < 1e-3, "probabilities sum to {total}");
    }

    #[test]
    fn logprobs_match_the_exact_log_softmax() {
        // A vocabulary-sized row with a spread like a real model's.
        let logits: Vec<f32> = (0..49_152)
            .map(|i| ((i * 7919) % 1000) as f32 / 50.0 - 10.0)
            .collect();
        let exact = exact_logprobs(&logits);
        let softmax = LogSoftmax::of(&logits).unwrap();
        for i in [0usize, 1, 999, 12_345, 49_151] {
            let got = f64::from(softmax.logprob(logits[i]));
            assert!((got - exact[i]).abs() < 5e-4, "{i}: {got} vs {}", exact[i]);
        }
    }

    #[test]
    fn entropy_matches_an_f64_reference() {
        let entropy_of = |logits: &[f32]| {
            let exact = exact_logprobs(logits);
            -exact
                .iter()
                .filter(|l| l.is_finite())
                .map(|&l| l.exp() * l)
                .sum::<f64>()
        };
        let spread: Vec<f32> = (0..49_152)
            .map(|i| ((i * 7919) % 1000) as f32 / 50.0 - 10.0)
            .collect();
        let peaked: Vec<f32> = (0..1_003)
            .map(|i| if i == 17 { 25.0 } else { (i % 13) as f32 * 0.1 })
            .collect();
        let mut masked = vec![f32::NEG_INFINITY; 40];
        masked[3] = 1.0;
        masked[30] = 1.0;
        for logits in [&spread[..], &peaked[..], &masked[..], &[0.0, 0.0, 0.0, 0.0]] {
            let (_, got) = LogSoftmax::with_entropy(logits).unwrap();
            let want = entropy_of(logits);
            assert!(
                (f64::from(got) - want).abs() < 1e-3 * want.max(1.0),
                "{got} vs {want}"
            );
        }
        // Two equal tokens: ln 2; one certain token: 0.
        let (_, two) = LogSoftmax::with_entropy(&masked).unwrap();
        assert!((two - std::f32::consts::LN_2).abs() < 1e-3);
        let (_, none) = LogSoftmax::with_entropy(&[0.0, f32::NEG_INFINITY]).unwrap();
        assert!(none.abs() < 1e-6, "{none}");
        assert!(LogSoftmax::with_entropy(&[f32::NEG_INFINITY; 3]).is_none());
        let probs = token_probs(&spread, 5, 3, |_| String::new()).unwrap();
        assert!((f64::from(probs.entropy.unwrap()) - entropy_of(&spread)).abs() < 1e-2);
    }

    #[test]
    fn top_logits_are_the_largest_in_order_ties_by_token() {
        let logits = [1.0, 5.0, 3.0, 5.0, -2.0, 4.0, f32::NAN, 0.0];
        assert_eq!(
            top_logits(&logits, 3),
            [(1, 5.0), (3, 5.0), (5, 4.0)].to_vec()
        );
        assert_eq!(top_logits(&logits, 0), Vec::new());
        // Asking for more than there are gives them all, NaN left out.
        assert_eq!(top_logits(&logits, 20).len(), 7);
    }

    #[test]
    fn token_probs_report_the_token_and_its_alternatives() {
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        let probs = token_probs(&logits, 2, 2, |t| format!("<{t}>")).unwrap();
        let exact = exact_logprobs(&logits);
        assert!((f64::from(probs.logprob) - exact[2]).abs() < 1e-3);
        let tokens: Vec<(i32, &str)> = probs
            .top
            .iter()
            .map(|a| (a.token, a.text.as_str()))
            .collect();
        assert_eq!(tokens, [(1, "<1>"), (2, "<2>")]);
        assert!((f64::from(probs.top[0].logprob) - exact[1]).abs() < 1e-3);
        // Probabilities of the whole row sum to one.
        let total: f64 = (0..4)
            .map(|t| {
                f64::from(
                    token_probs(&logits, t, 0, |_| String::new())
                        .unwrap()
                        .logprob,
                )
                .exp()
            })
            .sum();
        assert!((total - 1.0).abs() < 1e-3, "{total}");
    }

    #[test]
    fn rows_that_cannot_be_normalised_give_nothing() {
        assert!(token_probs(&[], 0, 5, |_| String::new()).is_none());
        assert!(token_probs(&[f32::NEG_INFINITY; 4], 0, 5, |_| String::new()).is_none());
        assert!(token_probs(&[0.0, 1.0], 7, 5, |_| String::new()).is_none());
        assert_eq!(token_probability(&[0.0, 1.0], -1), 0.0);
    }

    #[test]
    fn reply_confidence_mean_perplexity_and_lowest() {
        let half = 0.5f32.ln();
        let quarter = 0.25f32.ln();
        let c = ReplyConfidence::of(&[0.0, half, quarter, half], 2).unwrap();
        assert_eq!(c.tokens, 4);
        let mean = (0.0 + 2.0 * f64::from(half) + f64::from(quarter)) / 4.0;
        assert!((c.mean_logprob - mean).abs() < 1e-9);
        // The geometric mean of 1, ½, ¼, ½ is ½: perplexity 2.
        assert!((c.perplexity - 2.0).abs() < 1e-6, "{}", c.perplexity);
        assert_eq!(c.lowest, [(2, quarter), (1, half)]);
        assert!(ReplyConfidence::of(&[], 3).is_none());
    }

    #[test]
    fn confidence_bands() {
        assert_eq!(Confidence::of(0.1), Confidence::Low);
        assert_eq!(Confidence::of(0.25), Confidence::Medium);
        assert_eq!(Confidence::of(0.59), Confidence::Medium);
        assert_eq!(Confidence::of(0.6), Confidence::High);
    }

    #[test]
    fn after_sampler_uses_the_drawn_probabilities() {
        // top-k 3 left three candidates, and the draw's softmax their p.
        let candidates = [(7, 2.0, 0.6), (3, 1.0, 0.3), (9, 0.5, 0.1)];
        let probs = after_sampler(&candidates, 3, 2, |t| t.to_string()).unwrap();
        assert!((probs.logprob - 0.3f32.ln()).abs() < 1e-6);
        let tokens: Vec<i32> = probs.top.iter().map(|a| a.token).collect();
        assert_eq!(tokens, [7, 3]);
        assert!(after_sampler(&candidates, 5, 2, |t| t.to_string()).is_none());
    }

    #[test]
    fn after_a_greedy_chain_the_softmax_of_what_is_left() {
        let candidates = [(0, 0.0, 0.0), (1, 2.0f32.ln(), 0.0)];
        let probs = after_sampler(&candidates, 1, 5, |_| String::new()).unwrap();
        assert!((probs.logprob.exp() - 2.0 / 3.0).abs() < 1e-3);
        assert_eq!(probs.top.len(), 2);
    }

    #[test]
    fn the_request_limits_alternatives_to_twenty() {
        let asking = |top| ProbsRequest {
            top,
            after_sampler: false,
        };
        assert!(asking(20).validate().is_ok());
        assert_eq!(
            asking(21).validate().unwrap_err(),
            "21 alternatives per token asked for; at most 20"
        );
    }
}
