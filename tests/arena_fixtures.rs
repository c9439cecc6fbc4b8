//! The arena's standing table against scipy and statsmodels: the votes and
//! the values those packages give are committed fixtures
//! (`tests/fixtures/arena`, made by `scripts/arena-fixtures.py`). Counts
//! must match exactly, Wilson intervals and the Bradley–Terry fit to 1e-6;
//! bootstrap intervals within resampling error (the two draw differently).

use serde_json::Value;
use whet::arena::standing::Standing;
use whet::arena::votes_file;

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arena")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap())
        .unwrap()
}

fn standing() -> Standing {
    let read = votes_file::read(&fixture_dir().join("votes.jsonl")).unwrap();
    // The torn line is the only problem; the vote of a model against
    // itself is read but counts for nothing.
    assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
    assert!(
        read.problems[0].contains("votes.jsonl:31:"),
        "{}",
        read.problems[0]
    );
    assert_eq!(read.votes.len(), 121);
    Standing::of(&read.votes)
}

fn close(got: f64, want: f64, tolerance: f64, what: &str) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got}, scipy/statsmodels {want}"
    );
}

#[test]
fn counts_and_wilson_intervals_equal_statsmodels() {
    let standing = standing();
    let expected = expected();
    assert_eq!(standing.votes, expected["votes"].as_u64().unwrap());
    assert_eq!(standing.blind, expected["blind"].as_u64().unwrap());
    assert_eq!(standing.both_bad, expected["both_bad"].as_u64().unwrap());
    let want = expected["pairs"].as_array().unwrap();
    assert_eq!(standing.pairs.len(), want.len());
    for (got, want) in standing.pairs.iter().zip(want) {
        let what = format!("{} vs {}", got.first, got.second);
        assert_eq!(got.first, want["first"].as_str().unwrap(), "{what}");
        assert_eq!(got.second, want["second"].as_str().unwrap(), "{what}");
        let counts = [got.wins, got.losses, got.ties, got.both_bad, got.blind];
        let want_counts =
            ["wins", "losses", "ties", "both_bad", "blind"].map(|key| want[key].as_u64().unwrap());
        assert_eq!(counts, want_counts, "{what}");
        let rate = got.win_rate.unwrap();
        let w = want["win_rate"].as_array().unwrap();
        close(rate.estimate, w[0].as_f64().unwrap(), 1e-12, &what);
        close(rate.low, w[1].as_f64().unwrap(), 1e-9, &what);
        close(rate.high, w[2].as_f64().unwrap(), 1e-9, &what);
    }
}

#[test]
fn bradley_terry_ratings_equal_scipys_fit_with_bootstrap_intervals_alike() {
    let standing = standing();
    let expected = expected();
    let want = expected["ratings"].as_object().unwrap();
    assert_eq!(standing.ratings.len(), want.len());
    // Best first.
    assert_eq!(standing.ratings[0].model, "big @ gpu");
    for pair in standing.ratings.windows(2) {
        assert!(pair[0].elo.estimate >= pair[1].elo.estimate);
    }
    for rating in &standing.ratings {
        let w = want[&rating.model].as_array().unwrap();
        let w: Vec<f64> = w.iter().map(|v| v.as_f64().unwrap()).collect();
        close(rating.elo.estimate, w[0], 1e-4, &rating.model);
        // Two bootstraps of 10000 resamples each: the interval ends agree
        // within a few Elo points.
        let width = w[2] - w[1];
        close(
            rating.elo.low,
            w[1],
            0.06 * width,
            &format!("{} low", rating.model),
        );
        close(
            rating.elo.high,
            w[2],
            0.06 * width,
            &format!("{} high", rating.model),
        );
    }
    let mean: f64 = standing.ratings.iter().map(|r| r.elo.estimate).sum::<f64>()
        / standing.ratings.len() as f64;
    close(mean, 1000.0, 1e-6, "mean rating");
}
