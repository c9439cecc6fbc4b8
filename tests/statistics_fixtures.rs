//! The statistics library against scipy and statsmodels: inputs and the
//! values those packages give are committed fixtures
//! (`tests/fixtures/statistics`, made by `scripts/statistics-fixtures.py`).
//! Exact computations must agree to 1e-9; resampled ones (bootstrap
//! intervals, Monte Carlo p-values) within their sampling error.

use serde_json::Value;
use whet::statistics::{bootstrap, hypothesis, proportion, LEVEL, RESAMPLES, SEED};

fn fixtures() -> (Value, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/statistics");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    (read("inputs.json"), read("expected.json"))
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn close(got: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (got - expected).abs() <= tolerance,
        "{what}: got {got}, scipy/statsmodels {expected}"
    );
}

#[test]
fn wilson_intervals_equal_statsmodels() {
    let (inputs, expected) = fixtures();
    for (case, want) in inputs["wilson"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["wilson"].as_array().unwrap())
    {
        let (s, n) = (case[0].as_u64().unwrap(), case[1].as_u64().unwrap());
        let got = proportion::wilson(s, n, LEVEL).unwrap();
        let want = numbers(want);
        close(got.low, want[0], 1e-9, &format!("wilson({s}, {n}) low"));
        close(got.high, want[1], 1e-9, &format!("wilson({s}, {n}) high"));
    }
}

#[test]
fn sign_test_equals_scipy_binomtest() {
    let (inputs, expected) = fixtures();
    for (case, want) in inputs["sign_test"]
        .as_array()
        .unwrap()
        .iter()
        .zip(numbers(&expected["sign_test"]))
    {
        let (w, l) = (case[0].as_u64().unwrap(), case[1].as_u64().unwrap());
        close(
            hypothesis::sign_test(w, l),
            want,
            1e-9,
            &format!("sign_test({w}, {l})"),
        );
    }
}

#[test]
fn exact_permutation_p_values_equal_scipy() {
    let (inputs, expected) = fixtures();
    for (case, want) in inputs["permutation"]
        .as_array()
        .unwrap()
        .iter()
        .zip(numbers(&expected["permutation"]))
    {
        let differences = numbers(case);
        let got = hypothesis::paired_permutation(&differences, RESAMPLES, SEED);
        close(got, want, 1e-9, &format!("permutation {differences:?}"));
    }
}

#[test]
fn sampled_permutation_p_values_are_within_sampling_error_of_scipy() {
    let (inputs, expected) = fixtures();
    for (case, want) in inputs["permutation_sampled"]
        .as_array()
        .unwrap()
        .iter()
        .zip(numbers(&expected["permutation_sampled"]))
    {
        let differences = numbers(case);
        let got = hypothesis::paired_permutation(&differences, RESAMPLES, SEED);
        // Two independent 10,000-draw estimates: a few standard errors.
        let se = (want * (1.0 - want) / RESAMPLES as f64).sqrt();
        close(
            got,
            want,
            4.0 * se + 5e-4,
            &format!("sampled permutation of {} differences", differences.len()),
        );
    }
}

#[test]
fn bootstrap_intervals_are_within_resampling_error_of_scipy() {
    let (inputs, expected) = fixtures();
    for (case, want) in inputs["bootstrap"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["bootstrap"].as_array().unwrap())
    {
        let values = numbers(case);
        let got = bootstrap::mean_interval(&values, LEVEL, RESAMPLES, SEED).unwrap();
        let (low, high) = (
            want["low"].as_f64().unwrap(),
            want["high"].as_f64().unwrap(),
        );
        close(got.estimate, want["mean"].as_f64().unwrap(), 1e-9, "mean");
        // Percentile endpoints of two independent 10,000-resample runs.
        let width = high - low;
        close(
            got.low,
            low,
            0.05 * width,
            &format!("bootstrap low of {values:?}"),
        );
        close(
            got.high,
            high,
            0.05 * width,
            &format!("bootstrap high of {values:?}"),
        );
    }
}
