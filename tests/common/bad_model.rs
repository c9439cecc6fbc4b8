//! Running whet on a model file that must be refused, and the contract of
//! that refusal: exit 1, nothing on stdout, one line on stderr naming the
//! file and the reason.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{stderr, stdout, whet};

/// `whet run` on `model`, for a couple of tokens.
pub fn run_model(model: &Path, logs: &Path) -> Output {
    whet(
        &[
            "run",
            "--model",
            model.to_str().unwrap(),
            "--raw",
            "--max-tokens",
            "4",
            "Hello",
        ],
        logs,
    )
}

/// Asserts the failure contract and returns the reason after
/// "error: cannot load model '<path>': ".
pub fn assert_clean_failure(output: &Output, model: &Path) -> String {
    // Exit code 1: whet returned an error, it was not killed by a signal.
    assert_eq!(
        output.status.code(),
        Some(1),
        "status {:?}; stderr {}",
        output.status,
        stderr(output)
    );
    assert!(stdout(output).is_empty(), "stdout: {}", stdout(output));
    let err = stderr(output);
    assert_eq!(
        err.lines().count(),
        1,
        "exactly one line on stderr, got: {err}"
    );
    let prefix = format!("error: cannot load model '{}': ", model.display());
    assert!(
        err.starts_with(&prefix),
        "expected {prefix:?}..., got {err}"
    );
    err[prefix.len()..].trim_end().to_string()
}

/// Writes `bytes` to `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
