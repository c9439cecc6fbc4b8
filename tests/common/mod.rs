//! Shared helpers for the integration tests. The core tests run the real
//! default model through the real llama.cpp bindings; `scripts/test` fetches it.

#![allow(dead_code)]

pub mod app;
pub mod bad_model;
pub mod fake_server;
pub mod keys;
pub mod llama_server;
pub mod screen;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use whet::engine::{EngineClient, LoadRequest, SpawnOptions};

pub fn whet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_whet"))
}

fn installed(file: &str) -> PathBuf {
    let path = whet::paths::models_dir()
        .expect("a data directory")
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: run `whet models fetch` (scripts/test does) before the tests",
        path.display()
    );
    path
}

/// The default model (SmolLM2-135M-Instruct Q4_1).
pub fn smollm2() -> PathBuf {
    installed(whet::paths::DEFAULT_MODEL_FILE)
}

/// Gemma 3 270M Q4_K_M: a base model without a chat template.
pub fn gemma3() -> PathBuf {
    installed(whet::models::catalog::GEMMA3_270M.file_name)
}

/// Runs the whet binary with its logs kept in `log_dir`.
pub fn whet(args: &[&str], log_dir: &Path) -> Output {
    whet_with_stdin(args, log_dir, None)
}

pub fn whet_with_stdin(args: &[&str], log_dir: &Path, stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(whet_bin())
        .args(args)
        .env("WHET_LOG_DIR", log_dir)
        // The user's own files (sampling defaults, templates) stay out.
        .env("WHET_CONFIG_DIR", log_dir.join("config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn whet");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait for whet")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stdout: {} stderr: {}",
            stdout(output),
            stderr(output)
        )
    })
}

pub fn load_request(model: PathBuf, n_ctx: u32) -> LoadRequest {
    LoadRequest {
        model,
        n_ctx,
        n_batch: 512,
        threads: whet::paths::default_threads(),
        chat_format: None,
        vocab_only: false,
        flash_attention: None,
        parallel: 1,
    }
}

pub async fn engine_with(model: PathBuf, n_ctx: u32) -> EngineClient {
    let options = SpawnOptions::local(whet_bin());
    let mut engine = EngineClient::spawn(&options).await.expect("spawn worker");
    engine
        .load(load_request(model, n_ctx))
        .await
        .expect("load model");
    engine
}
