//! Votes as games between models: each model gets one name and an index,
//! each vote becomes A's score against B.

use std::collections::{BTreeMap, BTreeSet};

use super::vote::{Side, Verdict, Vote};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Game {
    pub a: usize,
    pub b: usize,
    pub verdict: Verdict,
    pub blind: bool,
}

impl Game {
    /// A's share of the win.
    pub fn score_of_a(&self) -> f64 {
        self.verdict.score_of_a()
    }
}

/// The models (sorted by name) and the games between them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Games {
    pub models: Vec<String>,
    pub games: Vec<Game>,
}

impl Games {
    /// A vote of a model against itself (the same name and file on both
    /// sides) says nothing about either and is left out.
    pub fn of(votes: &[Vote]) -> Games {
        let names = names(votes);
        let models: Vec<String> = names
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index = |side: &Side| {
            let name = &names[&identity(side)];
            models.binary_search(name).expect("every side is named")
        };
        let games = votes
            .iter()
            .map(|vote| Game {
                a: index(&vote.a),
                b: index(&vote.b),
                verdict: vote.verdict,
                blind: vote.blind,
            })
            .filter(|game| game.a != game.b)
            .collect();
        Games { models, games }
    }
}

/// What tells two models apart: the backend and model for a remote one;
/// the name and the file's hash for a local one.
fn identity(side: &Side) -> (String, Option<String>) {
    match &side.backend {
        Some(remote) => (remote.label(), None),
        None => (side.model.clone(), side.sha256.clone()),
    }
}

/// Each identity's name in the table: its own name, with the start of the
/// file's hash when files with different contents share the name.
fn names(votes: &[Vote]) -> BTreeMap<(String, Option<String>), String> {
    let identities: BTreeSet<(String, Option<String>)> = votes
        .iter()
        .flat_map(|vote| [identity(&vote.a), identity(&vote.b)])
        .collect();
    let mut per_name: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in &identities {
        *per_name.entry(name).or_default() += 1;
    }
    identities
        .iter()
        .map(|identity| {
            let (name, sha) = identity;
            let shown = match sha {
                Some(sha) if per_name[name.as_str()] > 1 => {
                    format!("{name} [{}]", &sha[..sha.len().min(8)])
                }
                None if per_name[name.as_str()] > 1 => format!("{name} [no hash]"),
                _ => name.clone(),
            };
            (identity.clone(), shown)
        })
        .collect()
}
