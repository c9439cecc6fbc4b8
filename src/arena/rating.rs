//! A rating per model from all votes at once: the Bradley–Terry model,
//! where model i beats model j with probability σ(θᵢ − θⱼ), fitted by
//! maximum likelihood (Newton's method), shown on the Elo scale
//! (1000 + 400·θ/ln 10, so 400 points are 10:1 odds) with percentile
//! bootstrap intervals over the votes.
//!
//! Ties and two bad replies count half a win for each side (as Chatbot
//! Arena scores them). A weak Gaussian prior on θ (standard deviation
//! `PRIOR_SD` logits, about 350 Elo points) keeps a model that has won
//! every vote at a finite rating — without it the maximum is at infinity —
//! and barely moves ratings backed by tens of votes. The prior also pins
//! the mean rating at 1000. Checked against scipy's optimiser
//! (`tests/arena_fixtures.rs`).

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::games::{Game, Games};
use crate::statistics::bootstrap::percentile;
use crate::statistics::Interval;

/// The prior's standard deviation, in logits.
pub const PRIOR_SD: f64 = 2.0;

/// The Elo scale's centre and its points per factor of ten in the odds.
pub const ELO_BASE: f64 = 1000.0;
pub const ELO_SCALE: f64 = 400.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    pub model: String,
    /// On the Elo scale, with its bootstrap interval.
    pub elo: Interval,
    /// Votes the model took part in.
    pub votes: u64,
}

/// Every model's rating, best first, at `level` confidence from
/// `resamples` bootstrap resamples drawn with `seed`.
pub fn ratings(games: &Games, level: f64, resamples: usize, seed: u64) -> Vec<Rating> {
    let n = games.models.len();
    let estimate = fit(n, &aggregate(games.games.iter()));
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); n];
    if !games.games.is_empty() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let count = games.games.len();
        for _ in 0..resamples {
            let resample = (0..count).map(|_| &games.games[rng.random_range(0..count)]);
            for (model, theta) in fit(n, &aggregate(resample)).into_iter().enumerate() {
                draws[model].push(theta);
            }
        }
    }
    let tail = (1.0 - level) / 2.0;
    let mut ratings: Vec<Rating> = (0..n)
        .map(|model| {
            let mut thetas = std::mem::take(&mut draws[model]);
            thetas.sort_by(f64::total_cmp);
            let (low, high) = if thetas.is_empty() {
                (estimate[model], estimate[model])
            } else {
                (percentile(&thetas, tail), percentile(&thetas, 1.0 - tail))
            };
            Rating {
                model: games.models[model].clone(),
                elo: Interval {
                    estimate: elo(estimate[model]),
                    low: elo(low),
                    high: elo(high),
                },
                votes: games
                    .games
                    .iter()
                    .filter(|g| g.a == model || g.b == model)
                    .count() as u64,
            }
        })
        .collect();
    ratings.sort_by(|x, y| {
        y.elo
            .estimate
            .total_cmp(&x.elo.estimate)
            .then_with(|| x.model.cmp(&y.model))
    });
    ratings
}

/// θ on the Elo scale.
pub fn elo(theta: f64) -> f64 {
    ELO_BASE + ELO_SCALE * theta / std::f64::consts::LN_10
}

/// Games between the same two models in the same columns, summed: how
/// many, and A's total score.
type Aggregated = BTreeMap<(usize, usize), (f64, f64)>;

fn aggregate<'a>(games: impl Iterator<Item = &'a Game>) -> Aggregated {
    let mut sums = Aggregated::new();
    for game in games {
        let entry = sums.entry((game.a, game.b)).or_default();
        entry.0 += 1.0;
        entry.1 += game.score_of_a();
    }
    sums
}

/// The maximum of the penalised log-likelihood
/// Σ [s·log σ(θa − θb) + (c − s)·log σ(θb − θa)] − Σ θ²/(2·PRIOR_SD²),
/// by Newton's method: the function is strictly concave, so the steps
/// converge from θ = 0 in a handful of iterations.
pub fn fit(n: usize, sums: &Aggregated) -> Vec<f64> {
    let precision = 1.0 / (PRIOR_SD * PRIOR_SD);
    let mut theta = vec![0.0; n];
    for _ in 0..100 {
        // The gradient g and the negated Hessian h (positive definite).
        let mut g: Vec<f64> = theta.iter().map(|t| -precision * t).collect();
        let mut h = vec![vec![0.0; n]; n];
        for (i, row) in h.iter_mut().enumerate() {
            row[i] = precision;
        }
        for (&(a, b), &(count, score)) in sums {
            let p = sigmoid(theta[a] - theta[b]);
            let residual = score - count * p;
            g[a] += residual;
            g[b] -= residual;
            let w = count * p * (1.0 - p);
            h[a][a] += w;
            h[b][b] += w;
            h[a][b] -= w;
            h[b][a] -= w;
        }
        let step = solve(h, g);
        let size = step.iter().fold(0.0_f64, |m, s| m.max(s.abs()));
        for (t, s) in theta.iter_mut().zip(&step) {
            *t += s;
        }
        if size < 1e-13 {
            break;
        }
    }
    theta
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `h · x = g` for a symmetric positive definite `h` (Cholesky). Indexed
/// as the textbook writes it: iterators would hide which triangle is read.
#[allow(clippy::needless_range_loop)]
fn solve(mut h: Vec<Vec<f64>>, mut g: Vec<f64>) -> Vec<f64> {
    let n = g.len();
    for j in 0..n {
        let mut diagonal = h[j][j];
        for k in 0..j {
            diagonal -= h[j][k] * h[j][k];
        }
        let diagonal = diagonal.sqrt();
        h[j][j] = diagonal;
        for i in j + 1..n {
            let mut value = h[i][j];
            for k in 0..j {
                value -= h[i][k] * h[j][k];
            }
            h[i][j] = value / diagonal;
        }
    }
    for i in 0..n {
        for k in 0..i {
            g[i] -= h[i][k] * g[k];
        }
        g[i] /= h[i][i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            g[i] -= h[k][i] * g[k];
        }
        g[i] /= h[i][i];
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::vote::Verdict;

    fn games(models: usize, list: &[(usize, usize, Verdict)]) -> Games {
        Games {
            models: (0..models).map(|i| format!("m{i}")).collect(),
            games: list
                .iter()
                .map(|&(a, b, verdict)| Game {
                    a,
                    b,
                    verdict,
                    blind: false,
                })
                .collect(),
        }
    }

    #[test]
    fn a_model_that_won_every_vote_gets_a_finite_rating_above_the_rest() {
        let g = games(
            2,
            &[(0, 1, Verdict::A), (1, 0, Verdict::B), (0, 1, Verdict::A)],
        );
        let ratings = ratings(&g, 0.95, 500, 1);
        assert_eq!(ratings[0].model, "m0");
        let best = ratings[0].elo;
        assert!(best.estimate.is_finite() && best.estimate > 1000.0);
        assert!(best.low <= best.estimate && best.estimate <= best.high);
        // The prior centres the ratings on 1000.
        assert!((ratings[0].elo.estimate + ratings[1].elo.estimate - 2000.0).abs() < 1e-6);
        assert_eq!(ratings[0].votes, 3);
    }

    #[test]
    fn ties_pull_ratings_together_and_the_fit_satisfies_its_equations() {
        let g = games(
            3,
            &[
                (0, 1, Verdict::A),
                (0, 1, Verdict::A),
                (1, 0, Verdict::A),
                (1, 2, Verdict::Tie),
                (2, 0, Verdict::BothBad),
                (2, 1, Verdict::B),
            ],
        );
        let theta = fit(3, &aggregate(g.games.iter()));
        // At the maximum the gradient is zero: each model's actual score
        // minus its expected score equals θ / PRIOR_SD².
        for (model, t) in theta.iter().enumerate() {
            let mut residual = 0.0;
            for game in &g.games {
                let p = sigmoid(theta[game.a] - theta[game.b]);
                if game.a == model {
                    residual += game.score_of_a() - p;
                } else if game.b == model {
                    residual -= game.score_of_a() - p;
                }
            }
            assert!((residual - t / (PRIOR_SD * PRIOR_SD)).abs() < 1e-10);
        }
    }

    #[test]
    fn no_votes_rate_everyone_at_the_base() {
        let ratings = ratings(&games(2, &[]), 0.95, 100, 1);
        assert!(ratings
            .iter()
            .all(|r| r.elo.estimate == ELO_BASE && r.votes == 0));
    }
}
