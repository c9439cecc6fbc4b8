//! Logs go to a file, never to the terminal (the TUI owns the screen).

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::paths;

/// llama.cpp logs ~150 lines per model load; keep one old file of this size.
const ROTATE_AT_BYTES: u64 = 10 * 1024 * 1024;

fn rotate_if_large(path: &std::path::Path) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > ROTATE_AT_BYTES) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
}

/// Starts logging to `whet.log`; with `echo_to_stderr` also to stderr. The
/// guard must live until exit so buffered lines are written.
pub fn init(echo_to_stderr: bool) -> Option<WorkerGuard> {
    let dir = paths::log_dir().ok()?;
    std::fs::create_dir_all(&dir).ok()?;
    rotate_if_large(&dir.join(paths::LOG_FILE));
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(&dir, paths::LOG_FILE));
    let filter = || EnvFilter::try_from_env("WHET_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(filter());
    let stderr_layer = echo_to_stderr.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .ok()?;
    Some(guard)
}
