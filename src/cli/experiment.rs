//! `whet experiment`: prompt experiments over datasets.

use std::path::PathBuf;
use std::process::ExitCode;

use whet::experiment::prepare::{prepare, Prepared};
use whet::outln;

#[derive(clap::Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Check experiment files with their templates and datasets, without
    /// running anything; prints every problem (exit 1 if any) and, for a
    /// good file, how many cells it has.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: ExperimentCommand) -> Result<ExitCode, String> {
    match command {
        ExperimentCommand::Check { files } => Ok(check(&files)),
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let user_templates = super::templates::user_dir();
    let mut failed = false;
    for file in files {
        match prepare(file, user_templates.as_deref()) {
            Ok(prepared) => {
                for warning in &prepared.warnings {
                    outln!("warning: {warning}");
                }
                outln!("{}", summary(&prepared));
            }
            Err(problems) => {
                failed = true;
                for problem in problems {
                    outln!("{problem}");
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `FILE: ok: 20 items × 3 variants = 60 cells (baseline '0-shot')`.
fn summary(prepared: &Prepared) -> String {
    let e = &prepared.experiment;
    let items = if prepared.items.len() < prepared.items_in_file {
        format!(
            "{} items (of {})",
            prepared.items.len(),
            prepared.items_in_file
        )
    } else {
        format!("{} items", prepared.items.len())
    };
    let repeats = if e.repeats > 1 {
        format!(", {} repeats of sampled variants", e.repeats)
    } else {
        String::new()
    };
    format!(
        "{}: ok: {items} × {} variants{repeats} = {} cells (baseline '{}')",
        prepared.path.display(),
        e.variants.len(),
        prepared.cells(),
        e.baseline
    )
}
