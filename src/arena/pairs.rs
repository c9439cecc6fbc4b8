//! Head to head: per pair of models, how often each won.

use serde::Serialize;

use super::games::Games;
use super::vote::Verdict;
use crate::statistics::{proportion, Interval};

/// The record of `first` against `second` (the pair in name order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairRecord {
    pub first: String,
    pub second: String,
    /// `first` was better.
    pub wins: u64,
    /// `second` was better.
    pub losses: u64,
    /// Ties, both-bad verdicts included.
    pub ties: u64,
    /// Of the ties, the votes that found both replies bad.
    pub both_bad: u64,
    /// Votes cast with the names hidden.
    pub blind: u64,
    /// `first`'s win rate over the decisive votes (wins and losses; ties
    /// say nothing about which is better) with its Wilson interval. None
    /// without a decisive vote.
    pub win_rate: Option<Interval>,
}

impl PairRecord {
    pub fn votes(&self) -> u64 {
        self.wins + self.losses + self.ties
    }
}

/// Every pair that met, in name order, at `level` confidence.
pub fn records(games: &Games, level: f64) -> Vec<PairRecord> {
    let n = games.models.len();
    let mut table = vec![vec![PairCounts::default(); n]; n];
    for game in &games.games {
        // Count from the side of the model first by name.
        let (first, second, first_is_a) = if game.a < game.b {
            (game.a, game.b, true)
        } else {
            (game.b, game.a, false)
        };
        let counts = &mut table[first][second];
        counts.met = true;
        match (game.verdict, first_is_a) {
            (Verdict::A, true) | (Verdict::B, false) => counts.wins += 1,
            (Verdict::A, false) | (Verdict::B, true) => counts.losses += 1,
            (Verdict::Tie, _) => counts.ties += 1,
            (Verdict::BothBad, _) => {
                counts.ties += 1;
                counts.both_bad += 1;
            }
        }
        if game.blind {
            counts.blind += 1;
        }
    }
    let mut records = Vec::new();
    for (i, row) in table.iter().enumerate() {
        for (j, counts) in row.iter().enumerate().filter(|(_, c)| c.met) {
            records.push(PairRecord {
                first: games.models[i].clone(),
                second: games.models[j].clone(),
                wins: counts.wins,
                losses: counts.losses,
                ties: counts.ties,
                both_bad: counts.both_bad,
                blind: counts.blind,
                win_rate: proportion::wilson(counts.wins, counts.wins + counts.losses, level),
            });
        }
    }
    records
}

#[derive(Debug, Clone, Default)]
struct PairCounts {
    met: bool,
    wins: u64,
    losses: u64,
    ties: u64,
    both_bad: u64,
    blind: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::games::Game;

    fn game(a: usize, b: usize, verdict: Verdict, blind: bool) -> Game {
        Game {
            a,
            b,
            verdict,
            blind,
        }
    }

    #[test]
    fn a_pair_is_counted_from_the_first_names_side_whichever_column_it_was_in() {
        let games = Games {
            models: vec!["gemma".into(), "smol".into()],
            games: vec![
                game(0, 1, Verdict::A, true),
                game(1, 0, Verdict::A, false), // smol in column A won
                game(1, 0, Verdict::B, false), // gemma in column B won
                game(0, 1, Verdict::BothBad, true),
                game(0, 1, Verdict::Tie, false),
            ],
        };
        let records = records(&games, 0.95);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.first.as_str(), r.second.as_str()), ("gemma", "smol"));
        assert_eq!(
            (r.wins, r.losses, r.ties, r.both_bad, r.blind),
            (2, 1, 2, 1, 2)
        );
        assert_eq!(r.votes(), 5);
        let rate = r.win_rate.unwrap();
        assert!((rate.estimate - 2.0 / 3.0).abs() < 1e-12);
        assert!(rate.low < rate.estimate && rate.estimate < rate.high);
    }

    #[test]
    fn only_ties_give_no_win_rate() {
        let games = Games {
            models: vec!["a".into(), "b".into(), "c".into()],
            games: vec![game(0, 2, Verdict::Tie, false)],
        };
        let records = records(&games, 0.95);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].second, "c");
        assert!(records[0].win_rate.is_none());
    }
}
