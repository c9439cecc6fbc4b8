//! Every kind of bad model file gets a one-line message naming the file and
//! the reason, a non-zero exit, no crash of whet itself and no llama.cpp log
//! lines on the terminal. Files llama.cpp itself refuses or aborts on are
//! made by patching one header value of the real default model.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::bad_model::*;
use common::*;

/// A copy of the real model with one u32 metadata value replaced.
fn patched_model(dir: &Path, key: &str, value: u32) -> PathBuf {
    let mut bytes = std::fs::read(smollm2()).unwrap();
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap_or_else(|| panic!("key {key} not in the model"));
    let type_at = at + needle.len();
    assert_eq!(
        &bytes[type_at..type_at + 4],
        &4u32.to_le_bytes(),
        "{key} is a u32"
    );
    bytes[type_at + 4..type_at + 8].copy_from_slice(&value.to_le_bytes());
    write(dir, &format!("{key}-{value}.gguf"), &bytes)
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("nope.gguf");
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert_eq!(reason, "no such file");
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("models.gguf");
    std::fs::create_dir(&model).unwrap();
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert_eq!(reason, "it is a directory, not a GGUF file");
}

#[test]
fn zero_byte_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "empty.gguf", b"");
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert_eq!(reason, "the file is empty (0 bytes)");
}

#[test]
fn text_file_named_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "notes.gguf",
        b"hello world\nthis is not a model\n",
    );
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert_eq!(
        reason,
        "not a GGUF file (it starts with \"hell\" instead of \"GGUF\")"
    );
}

#[test]
fn truncated_in_the_tensor_data() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(smollm2()).unwrap();
    let model = write(dir.path(), "cut.gguf", &bytes[..10_000_000]);
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert!(
        reason.starts_with("the file is truncated: tensor '")
            && reason
                .ends_with("needs data up to byte 98362432 but the file has only 10000000 bytes"),
        "{reason}"
    );
}

#[test]
fn truncated_in_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(smollm2()).unwrap();
    let model = write(dir.path(), "stub.gguf", &bytes[..200_000]);
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert!(
        reason.starts_with("the file is truncated: it ends inside the header"),
        "{reason}"
    );
}

#[test]
fn file_without_read_permission() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "locked.gguf", b"GGUF");
    std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o000)).unwrap();
    let is_root = unsafe { libc::geteuid() } == 0;
    let output = if is_root {
        // Root reads any file; drop to nobody so the permission bits apply.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let result = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(whet_bin())
            .args(["run", "--model", model.to_str().unwrap(), "--raw", "Hello"])
            .env("WHET_LOG_DIR", dir.path().join("logs"))
            .env("WHET_DATA_DIR", dir.path().join("data"))
            .env("WHET_CONFIG_DIR", dir.path().join("config"))
            .output()
            .expect("setpriv (util-linux) runs whet as nobody");
        result
    } else {
        run_model(&model, dir.path())
    };
    let reason = assert_clean_failure(&output, &model);
    assert_eq!(reason, "permission denied (cannot read the file)");
}

#[test]
fn header_llama_cpp_refuses_gives_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model = patched_model(dir.path(), "llama.attention.head_count", 0);
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert!(
        reason.starts_with("llama.cpp could not load it: check_tensor_dims: tensor 'blk.0.attn_q.weight' has wrong shape"),
        "{reason}"
    );
}

#[test]
fn llama_cpp_abort_is_contained_in_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    // More layers than llama.cpp supports: a GGML_ASSERT, i.e. abort().
    let model = patched_model(dir.path(), "llama.block_count", 1000);
    let reason = assert_clean_failure(&run_model(&model, dir.path()), &model);
    assert!(
        reason
            .starts_with("the engine stopped: killed by signal 6 (SIGABRT: llama.cpp aborted) — "),
        "{reason}"
    );
    assert!(
        reason.contains("GGML_ASSERT"),
        "the assertion is quoted: {reason}"
    );
    // The abort's own output went to the log file, not the terminal.
    let log = std::fs::read_to_string(dir.path().join("whet.log")).unwrap();
    assert!(log.contains("GGML_ASSERT"));
}

#[test]
fn models_info_reports_bad_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "empty.gguf", b"");
    let output = whet(&["models", "info", model.to_str().unwrap()], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "error: cannot read model '{}': the file is empty (0 bytes)",
            model.display()
        )
    );
}
