//! llama.cpp's own reason for a failure, taken from its log inside the worker.
//!
//! llama.cpp says why it refused a model only in its log, and says it several
//! times over: the specific line first ("tensor 'x' has invalid ggml type
//! 999"), then wrappers ("failed to read tensor info", "failed to load model
//! from FILE"). The worker collects the error lines of a load here and sends
//! the most specific one inside its error event. Reading it from the log on
//! the front end's side instead loses it now and then: the log travels on
//! stderr, the error on the protocol pipe, and the error can arrive first.

use std::fmt::Write as _;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The target llama-cpp-2 gives every llama.cpp log event.
const LLAMA_TARGET: &str = "llama-cpp-2";

/// Lines that only say that something earlier failed.
const WRAPPERS: &[&str] = &[
    "failed to read key-value pairs",
    "failed to read tensor info",
    "failed to read tensor data",
    "failed to load model",
    "llama_model_loader: failed to load model from",
    "failed to create tensors",
    "failed to initialize ggml context",
];

/// What llama.cpp said at warning or error level while capturing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

/// `None` when nobody is capturing: llama.cpp logs all the time, and only
/// the lines of one call are wanted.
static CAPTURED: Mutex<Option<Vec<LogLine>>> = Mutex::new(None);

/// A tracing layer that keeps llama.cpp's warnings and errors while
/// [`capture`] runs. Install it in the worker's subscriber.
pub struct CaptureLayer;

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Levels order by verbosity: WARN and ERROR are the "smaller" ones.
        if meta.target() != LLAMA_TARGET || *meta.level() > Level::WARN {
            return;
        }
        let Ok(mut captured) = CAPTURED.lock() else {
            return;
        };
        let Some(lines) = captured.as_mut() else {
            return;
        };
        let mut text = TextVisitor::default();
        event.record(&mut text);
        lines.push(LogLine {
            level: *meta.level(),
            text: text.0.trim().to_string(),
        });
    }
}

/// Collects the message; llama-cpp-2 has already cut the function name off
/// it, so nothing else is needed.
#[derive(Default)]
struct TextVisitor(String);

impl Visit for TextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

/// Runs `f` and returns what llama.cpp logged at warning or error level
/// meanwhile (on this thread or any other: the worker runs one call at a
/// time).
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<LogLine>) {
    set_capturing(Some(Vec::new()));
    let result = f();
    let lines = set_capturing(None).unwrap_or_default();
    (result, lines)
}

fn set_capturing(value: Option<Vec<LogLine>>) -> Option<Vec<LogLine>> {
    match CAPTURED.lock() {
        Ok(mut captured) => std::mem::replace(&mut *captured, value),
        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), value),
    }
}

/// The line that best explains the failure: the first error that is not a
/// wrapper, then the first such warning; `None` if there is only wrappers.
pub fn most_specific_reason(lines: &[LogLine]) -> Option<String> {
    let specific = |level: Level| {
        lines
            .iter()
            .filter(|line| line.level == level)
            .map(|line| without_loader_prefix(&line.text))
            .find(|text| !text.is_empty() && !is_wrapper(text))
    };
    specific(Level::ERROR)
        .or_else(|| specific(Level::WARN))
        .map(str::to_string)
}

/// "{what}: {llama.cpp's most specific line}", or `what` alone when it
/// logged nothing more specific.
pub fn with_reason(what: String, lines: &[LogLine]) -> String {
    match most_specific_reason(lines) {
        Some(reason) => format!("{what}: {reason}"),
        None => what,
    }
}

/// "error loading model: X" is llama_model_load's way to pass X on.
fn without_loader_prefix(text: &str) -> &str {
    text.strip_prefix("error loading model: ").unwrap_or(text)
}

fn is_wrapper(text: &str) -> bool {
    WRAPPERS.iter().any(|wrapper| text.starts_with(wrapper))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> LogLine {
        LogLine {
            level: Level::ERROR,
            text: text.to_string(),
        }
    }

    fn warn(text: &str) -> LogLine {
        LogLine {
            level: Level::WARN,
            text: text.to_string(),
        }
    }

    /// The lines llama.cpp logs for a tensor of type 999, as llama-cpp-2
    /// passes them on (function names cut off).
    #[test]
    fn the_specific_gguf_error_wins_over_its_wrappers() {
        let lines = [
            error("tensor 'output_norm.weight' has invalid ggml type 999. should be in [0, 43)"),
            error("failed to read tensor info"),
            error("error loading model: llama_model_loader: failed to load model from /m.gguf"),
            error("failed to load model"),
        ];
        assert_eq!(
            most_specific_reason(&lines).as_deref(),
            Some("tensor 'output_norm.weight' has invalid ggml type 999. should be in [0, 43)")
        );
    }

    #[test]
    fn a_loader_error_is_passed_on_without_its_prefix() {
        let lines = [
            warn("ignoring a key it does not know"),
            error("error loading model: check_tensor_dims: tensor 'blk.0.attn_q.weight' has wrong shape; expected   576,     0, got   576,   576,     1,     1"),
            error("failed to load model"),
        ];
        assert_eq!(
            most_specific_reason(&lines).as_deref(),
            Some("check_tensor_dims: tensor 'blk.0.attn_q.weight' has wrong shape; expected   576,     0, got   576,   576,     1,     1")
        );
    }

    #[test]
    fn overlapping_offsets_and_nested_arrays() {
        let overlap = [
            error("tensor 'blk.0.ffn_gate.weight' has offset 30083328, expected 30636288"),
            error("failed to read tensor data"),
            error("error loading model: llama_model_loader: failed to load model from /m.gguf"),
        ];
        assert_eq!(
            most_specific_reason(&overlap).as_deref(),
            Some("tensor 'blk.0.ffn_gate.weight' has offset 30083328, expected 30636288")
        );
        let nested = [
            error("key 'test.nested' has invalid GGUF type 9"),
            error("failed to read key-value pairs"),
            error("error loading model: llama_model_loader: failed to load model from /m.gguf"),
        ];
        assert_eq!(
            most_specific_reason(&nested).as_deref(),
            Some("key 'test.nested' has invalid GGUF type 9")
        );
    }

    #[test]
    fn a_warning_explains_when_no_error_does() {
        let lines = [
            warn("the file has no vocabulary"),
            error("failed to load model"),
        ];
        assert_eq!(
            most_specific_reason(&lines).as_deref(),
            Some("the file has no vocabulary")
        );
    }

    #[test]
    fn only_wrappers_give_no_reason() {
        let lines = [
            error("error loading model: llama_model_loader: failed to load model from /m.gguf"),
            error("failed to load model"),
        ];
        assert_eq!(most_specific_reason(&lines), None);
        assert_eq!(most_specific_reason(&[]), None);
    }

    #[test]
    fn capture_keeps_only_llama_cpp_warnings_and_errors_of_the_call() {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "llama-cpp-2", "before the call");
            let ((), lines) = capture(|| {
                tracing::error!(target: "llama-cpp-2", "tensor 't' is bad\n");
                tracing::warn!(target: "llama-cpp-2", "a warning");
                tracing::info!(target: "llama-cpp-2", "progress");
                tracing::error!(target: "whet::engine", "not llama.cpp");
            });
            tracing::error!(target: "llama-cpp-2", "after the call");
            assert_eq!(lines, [error("tensor 't' is bad"), warn("a warning")]);
        });
    }
}
