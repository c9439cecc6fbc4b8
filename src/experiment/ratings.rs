//! Human ratings of a run's cells: 1–5 with an optional note, kept beside
//! the results in `<run>/ratings.json` (written atomically; a file that
//! cannot be read is refused, never overwritten). Rated cells gain a
//! `rating` metric, so ratings are summarised and compared like any score.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::results::CellResult;
use crate::store::atomic::write_atomic;

pub const RATINGS_FILE: &str = "ratings.json";
pub const RATINGS_FORMAT_VERSION: u32 = 1;
/// The metric rated cells gain.
pub const RATING_METRIC: &str = "rating";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    /// 1 (bad) to 5 (good).
    pub score: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A run's ratings by cell key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ratings {
    pub version: u32,
    pub cells: BTreeMap<String, Rating>,
}

impl Ratings {
    /// The ratings of the run in `dir`; none when it has no file yet.
    pub fn read(dir: &Path) -> Result<Ratings, String> {
        let path = dir.join(RATINGS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Ratings {
                    version: RATINGS_FORMAT_VERSION,
                    cells: BTreeMap::new(),
                })
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let ratings: Ratings = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a ratings file ({e}); it is left as it is and ratings are not saved",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if ratings.version > RATINGS_FORMAT_VERSION {
            return Err(format!(
                "{}: ratings format {} is newer than this whet reads ({RATINGS_FORMAT_VERSION})",
                path.display(),
                ratings.version
            ));
        }
        if let Some((key, bad)) = ratings
            .cells
            .iter()
            .find(|(_, r)| !(1..=5).contains(&r.score))
        {
            return Err(format!(
                "{}: the rating of cell {key} is {}, not 1-5",
                path.display(),
                bad.score
            ));
        }
        Ok(ratings)
    }

    /// Writes the ratings into the run's folder (atomically).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(RATINGS_FILE);
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        write_atomic(&path, json.as_bytes())
            .map_err(|e| format!("cannot save {}: {e}", path.display()))
    }

    /// Rates a cell (a score outside 1–5 is refused).
    pub fn set(&mut self, key: &str, score: u8, note: &str) -> Result<(), String> {
        if !(1..=5).contains(&score) {
            return Err(format!("a rating is 1 to 5, not {score}"));
        }
        self.cells.insert(
            key.to_string(),
            Rating {
                score,
                note: note.trim().to_string(),
            },
        );
        Ok(())
    }

    pub fn clear(&mut self, key: &str) {
        self.cells.remove(key);
    }

    /// Gives every rated cell of `results` its `rating` metric (and takes
    /// it from a cell no longer rated).
    pub fn apply(&self, results: &mut [CellResult]) {
        for result in results {
            match self.cells.get(&result.key) {
                Some(r) => {
                    result
                        .scores
                        .metrics
                        .insert(RATING_METRIC.to_string(), f64::from(r.score));
                }
                None => {
                    result.scores.metrics.remove(RATING_METRIC);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_round_trip_and_become_a_metric() {
        let dir = tempfile::tempdir().unwrap();
        let mut ratings = Ratings::read(dir.path()).unwrap();
        assert!(ratings.cells.is_empty());
        ratings.set("k1", 4, "  good enough ").unwrap();
        assert!(ratings.set("k2", 6, "").is_err());
        ratings.save(dir.path()).unwrap();
        let back = Ratings::read(dir.path()).unwrap();
        assert_eq!(back, ratings);
        assert_eq!(back.cells["k1"].note, "good enough");
        let mut results: Vec<CellResult> = ["k1", "k2"]
            .iter()
            .map(|k| {
                serde_json::from_value(serde_json::json!({
                    "key": k, "item": 0, "line": 1, "variant": "v", "repeat": 0, "seed": 0,
                    "input": [], "output": "", "stop_reason": null, "stats": null,
                    "scores": {"metrics": {}, "checks": []}, "error": null
                }))
                .unwrap()
            })
            .collect();
        back.apply(&mut results);
        assert_eq!(results[0].scores.metrics.get(RATING_METRIC), Some(&4.0));
        assert_eq!(results[1].scores.metrics.get(RATING_METRIC), None);
    }

    #[test]
    fn a_corrupt_file_is_refused_with_where_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RATINGS_FILE);
        std::fs::write(&path, "{\"version\": 1, \"cells\": {\"k\": {\"score\": }}}").unwrap();
        let error = Ratings::read(dir.path()).unwrap_err();
        assert!(error.contains("ratings.json:1:"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"version\": 1, \"cells\": {\"k\": {\"score\": }}}"
        );
        std::fs::write(
            &path,
            "{\"version\": 1, \"cells\": {\"k\": {\"score\": 9}}}",
        )
        .unwrap();
        assert!(Ratings::read(dir.path()).unwrap_err().contains("not 1-5"));
    }
}
