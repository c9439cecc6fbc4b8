//! whet: a terminal workbench for tuning prompts on local GGUF models.
//!
//! The library holds everything the front ends share: the crash-isolated
//! inference engine, model files, paths and logging. `main.rs` is a thin CLI.

pub mod arena;
pub mod bench;
pub mod diff;
pub mod engine;
pub mod experiment;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod paths;
pub mod prompt;
pub mod refine;
pub mod sampling_defaults;
pub mod statistics;
pub mod store;
pub mod text_position;
pub mod tui;

/// `println!` that does not panic when stdout is closed (e.g. `whet models list | head -1`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
