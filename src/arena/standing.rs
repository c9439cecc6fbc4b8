//! The standing table: every vote so far, as head-to-head records and
//! ratings, for the terminal, Markdown, CSV and JSON.

use serde::Serialize;

use super::games::Games;
use super::pairs::{self, PairRecord};
use super::rating::{self, Rating, PRIOR_SD};
use super::vote::{Verdict, Vote};
use crate::statistics::{Interval, LEVEL, RESAMPLES, SEED};

#[derive(Debug, Clone, Serialize)]
pub struct Standing {
    pub votes: u64,
    pub blind: u64,
    pub both_bad: u64,
    pub level: f64,
    /// How the ratings are made, in words (for the table's reader).
    pub method: String,
    pub ratings: Vec<Rating>,
    pub pairs: Vec<PairRecord>,
}

impl Standing {
    pub fn of(votes: &[Vote]) -> Standing {
        let games = Games::of(votes);
        Standing {
            votes: games.games.len() as u64,
            blind: games.games.iter().filter(|g| g.blind).count() as u64,
            both_bad: games
                .games
                .iter()
                .filter(|g| g.verdict == Verdict::BothBad)
                .count() as u64,
            level: LEVEL,
            method: format!(
                "Bradley–Terry on the Elo scale (mean 1000; 400 points = 10:1 odds), ties and both-bad as half a win each, Gaussian prior sd {PRIOR_SD} logits; {:.0}% percentile bootstrap over votes ({RESAMPLES} resamples, seed {SEED}); pair win rates over decisive votes with Wilson intervals",
                LEVEL * 100.0
            ),
            ratings: rating::ratings(&games, LEVEL, RESAMPLES, SEED),
            pairs: pairs::records(&games, LEVEL),
        }
    }

    /// Plain text for the terminal.
    pub fn lines(&self) -> Vec<String> {
        if self.votes == 0 {
            return vec![
                "no votes yet: compare two models in the chat and vote on their replies".into(),
            ];
        }
        let mut lines = vec![format!(
            "{} ({} blind, {} both bad)",
            plural(self.votes, "vote"),
            self.blind,
            self.both_bad
        )];
        lines.push(String::new());
        let width = name_width(self.ratings.iter().map(|r| r.model.as_str()), 5);
        lines.push(format!(
            "{}  {:>6}  {:>13}  {:>5}",
            pad("model", width),
            "rating",
            "95% interval",
            "votes"
        ));
        for r in &self.ratings {
            lines.push(format!(
                "{}  {:>6.0}  {:>13}  {:>5}",
                pad(&r.model, width),
                r.elo.estimate,
                interval_cell(r),
                r.votes
            ));
        }
        lines.push(String::new());
        let width = name_width(
            self.pairs
                .iter()
                .map(|p| p.first.as_str())
                .chain(self.pairs.iter().map(|p| p.second.as_str())),
            1,
        );
        lines.push(format!(
            "{}  {}  {:>4}  {:>4}  {:>6}  {:>8}  {:>13}  {:>5}",
            pad("A", width),
            pad("B", width),
            "wins",
            "ties",
            "losses",
            "win rate",
            "95% interval",
            "blind"
        ));
        for p in &self.pairs {
            let (rate, interval) = rate_cells(p.win_rate);
            lines.push(format!(
                "{}  {}  {:>4}  {:>4}  {:>6}  {rate:>8}  {interval:>13}  {:>5}",
                pad(&p.first, width),
                pad(&p.second, width),
                p.wins,
                p.ties,
                p.losses,
                p.blind
            ));
        }
        lines.push(String::new());
        lines.push(self.method.clone());
        lines
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Arena standing\n\n{} ({} blind, {} both bad).\n\n",
            plural(self.votes, "vote"),
            self.blind,
            self.both_bad
        );
        out.push_str("| model | rating | 95% interval | votes |\n|---|---:|---:|---:|\n");
        for r in &self.ratings {
            out.push_str(&format!(
                "| {} | {:.0} | {} | {} |\n",
                cell(&r.model),
                r.elo.estimate,
                interval_cell(r),
                r.votes
            ));
        }
        out.push_str("\n| A | B | wins | ties | losses | win rate | 95% interval | blind |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
        for p in &self.pairs {
            let (rate, interval) = rate_cells(p.win_rate);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {rate} | {interval} | {} |\n",
                cell(&p.first),
                cell(&p.second),
                p.wins,
                p.ties,
                p.losses,
                p.blind
            ));
        }
        out.push_str(&format!("\n{}\n", self.method));
        out
    }

    /// One CSV table: a row per rating, then a row per pair (`kind` says
    /// which), so a spreadsheet gets both from one file.
    pub fn csv(&self) -> Result<String, String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let fail = |e: csv::Error| e.to_string();
        writer
            .write_record([
                "kind",
                "model",
                "opponent",
                "rating",
                "rating_low",
                "rating_high",
                "votes",
                "wins",
                "ties",
                "losses",
                "both_bad",
                "blind",
                "win_rate",
                "win_rate_low",
                "win_rate_high",
            ])
            .map_err(fail)?;
        for r in &self.ratings {
            writer
                .write_record([
                    "rating".to_string(),
                    r.model.clone(),
                    String::new(),
                    format!("{:.3}", r.elo.estimate),
                    format!("{:.3}", r.elo.low),
                    format!("{:.3}", r.elo.high),
                    r.votes.to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ])
                .map_err(fail)?;
        }
        for p in &self.pairs {
            let rate = |f: fn(&Interval) -> f64| {
                p.win_rate
                    .as_ref()
                    .map(|i| format!("{:.6}", f(i)))
                    .unwrap_or_default()
            };
            writer
                .write_record([
                    "pair".to_string(),
                    p.first.clone(),
                    p.second.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    p.votes().to_string(),
                    p.wins.to_string(),
                    p.ties.to_string(),
                    p.losses.to_string(),
                    p.both_bad.to_string(),
                    p.blind.to_string(),
                    rate(|i| i.estimate),
                    rate(|i| i.low),
                    rate(|i| i.high),
                ])
                .map_err(fail)?;
        }
        let bytes = writer.into_inner().map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }
}

/// Below this many votes a model's bootstrap interval says nothing (a
/// single vote resamples to itself every time): the table says so instead.
pub const FEWEST_VOTES_FOR_INTERVAL: u64 = 5;

fn interval_cell(rating: &Rating) -> String {
    if rating.votes < FEWEST_VOTES_FOR_INTERVAL {
        "too few votes".into()
    } else {
        format!("{:.0}–{:.0}", rating.elo.low, rating.elo.high)
    }
}

fn plural(count: u64, word: &str) -> String {
    if count == 1 {
        format!("1 {word}")
    } else {
        format!("{count} {word}s")
    }
}

fn rate_cells(rate: Option<Interval>) -> (String, String) {
    match rate {
        Some(i) => (
            format!("{:.0}%", i.estimate * 100.0),
            format!("{:.0}–{:.0}%", i.low * 100.0, i.high * 100.0),
        ),
        None => ("–".into(), "–".into()),
    }
}

fn name_width<'a>(names: impl Iterator<Item = &'a str>, least: usize) -> usize {
    names
        .map(unicode_width::UnicodeWidthStr::width)
        .max()
        .unwrap_or(0)
        .max(least)
}

/// `text` padded to `width` terminal columns (wide characters take two).
fn pad(text: &str, width: usize) -> String {
    let used = unicode_width::UnicodeWidthStr::width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(used)))
}

/// A Markdown table cell: a `|` in a model's name would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
