//! Logs go to a file, never to the terminal (the TUI owns the screen).

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::paths;

/// Starts logging to `whet.log`; with `echo_to_stderr` also to stderr. The
/// guard must live until exit so buffered lines are written.
pub fn init(echo_to_stderr: bool) -> Option<WorkerGuard> {
    let dir = paths::log_dir().ok()?;
    std::fs::create_dir_all(&dir).ok()?;
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(&dir, "whet.log"));
    let filter = || EnvFilter::try_from_env("WHET_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(filter());
    let stderr_layer = echo_to_stderr.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
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
