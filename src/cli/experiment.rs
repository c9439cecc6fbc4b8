//! `whet experiment`: prompt experiments over datasets.

use std::collections::HashSet;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sha2::{Digest, Sha256};
use whet::experiment::cells::cells;
use whet::experiment::export;
use whet::experiment::prepare::{prepare, Prepared};
use whet::experiment::results::{self, CellResult, RunInfo, RunLog};
use whet::experiment::run::{run_cells, Engine, Known, Progress};
use whet::experiment::summary::{summarise, table};
use whet::outln;

use super::{load_error, spawn_options, ModelArgs};

/// Parallel sequences when not asked: the fastest measured on a 2-core
/// machine (`whet bench --parallel 1,2,4,8`: 1.69× one at a time at 8,
/// 1.47× at 4).
const DEFAULT_PARALLEL: u32 = 8;

#[derive(clap::Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Check experiment files with their templates and datasets, without
    /// running anything; prints every problem (exit 1 if any) and, for a
    /// good file, how many cells it has.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run an experiment: every item × variant × repeat, decoded as
    /// parallel sequences, each result saved as it finishes; then the
    /// summary against the baseline.
    Run {
        file: PathBuf,
        /// Sequences decoded together (1-8).
        #[arg(long, default_value_t = DEFAULT_PARALLEL)]
        parallel: u32,
        /// Only the first K items.
        #[arg(long)]
        limit: Option<usize>,
        /// Run every cell, even those an earlier run has a result for.
        #[arg(long)]
        no_cache: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Go on with a run that was stopped (its finished cells are kept).
    Resume {
        id: String,
        #[arg(long, default_value_t = DEFAULT_PARALLEL)]
        parallel: u32,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// A run's summary, or the run in another format.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The summary as on screen.
    Table,
    /// The summary as Markdown tables.
    Md,
    /// One row per cell: variant, output, metrics, checks.
    Csv,
    /// The summary as JSON.
    Json,
}

pub async fn run(command: ExperimentCommand) -> Result<ExitCode, String> {
    match command {
        ExperimentCommand::Check { files } => Ok(check(&files)),
        ExperimentCommand::Run {
            file,
            parallel,
            limit,
            no_cache,
            json,
            model,
        } => {
            let limit = limit.filter(|&l| l > 0);
            let prepared = prepare_run(&file, limit)?;
            start(prepared, limit, &model, parallel, !no_cache, json).await
        }
        ExperimentCommand::Resume {
            id,
            parallel,
            json,
            model,
        } => resume(&id, &model, parallel, json).await,
        ExperimentCommand::Show { id, format } => {
            let dir = results::experiments_dir()?.join(&id);
            let info = results::read_info(&dir)?;
            let prepared = prepare_run(&info.file, info.limit)?;
            let results = results::read_results(&dir)?;
            match format {
                Format::Table => print_summary(&prepared, &results, false)?,
                Format::Json => print_summary(&prepared, &results, true)?,
                Format::Md => {
                    outln!("{}", export::markdown(&summarise(&prepared, &results)))
                }
                Format::Csv => {
                    let table = export::csv(&prepared, &results)?;
                    outln!("{}", table.trim_end_matches('\n'));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The experiment at `file`, its items cut to the command line's `limit`.
fn prepare_run(file: &Path, limit: Option<usize>) -> Result<Prepared, String> {
    let mut prepared = prepare(file, super::templates::user_dir().as_deref())
        .map_err(|problems| problems.join("\n"))?;
    if let Some(limit) = limit {
        prepared.items.truncate(limit);
    }
    Ok(prepared)
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
                outln!("{}", summary_line(&prepared));
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
fn summary_line(prepared: &Prepared) -> String {
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

/// Variants on different models are read and checked but not run yet:
/// refuse rather than run them all on one model.
fn refuse_variant_models(prepared: &Prepared) -> Result<(), String> {
    match prepared
        .experiment
        .variants
        .iter()
        .find(|v| v.model.is_some())
    {
        Some(v) => Err(format!(
            "variant '{}' sets a model: running variants on different models is not built yet; \
             remove 'model' and pick the model with --model",
            v.name
        )),
        None => Ok(()),
    }
}

/// The model file's SHA-256, part of every cell's key.
fn model_sha256(path: &Path) -> Result<String, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

async fn start(
    prepared: Prepared,
    limit: Option<usize>,
    model: &ModelArgs,
    parallel: u32,
    use_cache: bool,
    json: bool,
) -> Result<ExitCode, String> {
    if !(1..=whet::engine::parallel::MAX_PARALLEL).contains(&parallel) {
        return Err(format!(
            "--parallel takes 1 to {}",
            whet::engine::parallel::MAX_PARALLEL
        ));
    }
    refuse_variant_models(&prepared)?;
    let load = model.load_request()?;
    let sha = model_sha256(&load.model)?;
    let cells = cells(&prepared, &sha).map_err(|e| e.join("\n"))?;
    let root = results::experiments_dir()?;
    let cache = if use_cache {
        results::cached_results(&root)
    } else {
        Default::default()
    };
    let created = whet::store::dates::now_unix_ms();
    let info = RunInfo {
        id: whet::store::runs::new_id(created, &prepared.experiment.name),
        experiment: prepared.experiment.name.clone(),
        file: std::fs::canonicalize(&prepared.path).unwrap_or(prepared.path.clone()),
        file_text: std::fs::read_to_string(&prepared.path).unwrap_or_default(),
        model: load.model.clone(),
        model_sha256: sha,
        parallel,
        limit,
        repeats: None,
        cells: Some(cells.len()),
        created_unix_ms: created,
    };
    let mut log = RunLog::create(&root, &info)?;
    eprintln!(
        "run {}: {} cells ({} items × {} variants) into {}",
        info.id,
        cells.len(),
        prepared.items.len(),
        prepared.experiment.variants.len(),
        log.dir.display()
    );
    let results = execute(
        &prepared,
        &cells,
        &HashSet::new(),
        &cache,
        &mut log,
        load,
        parallel,
    )
    .await?;
    print_summary(&prepared, &results, json)?;
    eprintln!("resume or show it with: whet experiment show {}", info.id);
    Ok(ExitCode::SUCCESS)
}

async fn resume(
    id: &str,
    model: &ModelArgs,
    parallel: u32,
    json: bool,
) -> Result<ExitCode, String> {
    let dir = results::experiments_dir()?.join(id);
    let info = results::read_info(&dir)?;
    let prepared = prepare_run(&info.file, info.limit)?;
    refuse_variant_models(&prepared)?;
    let mut load = model.load_request()?;
    if model.model.is_none() {
        load.model = info.model.clone();
    }
    let sha = model_sha256(&load.model)?;
    let cells = cells(&prepared, &sha).map_err(|e| e.join("\n"))?;
    let earlier = results::read_results(&dir)?;
    let done: HashSet<String> = earlier.iter().map(|r| r.key.clone()).collect();
    let mut log = RunLog::open(&dir)?;
    eprintln!(
        "run {id}: {} of {} cells done; running the rest",
        cells.iter().filter(|c| done.contains(&c.key)).count(),
        cells.len()
    );
    let new = execute(
        &prepared,
        &cells,
        &done,
        &Default::default(),
        &mut log,
        load,
        parallel,
    )
    .await?;
    let mut all = earlier;
    all.extend(new);
    print_summary(&prepared, &all, json)?;
    Ok(ExitCode::SUCCESS)
}

async fn execute(
    prepared: &Prepared,
    cells: &[whet::experiment::cells::Cell],
    done: &HashSet<String>,
    cache: &std::collections::HashMap<String, CellResult>,
    log: &mut RunLog,
    mut load: whet::engine::LoadRequest,
    parallel: u32,
) -> Result<Vec<CellResult>, String> {
    load.parallel = parallel;
    let mut engine = Engine::start(spawn_options()?, load.clone())
        .await
        .map_err(|e| load_error(&load, whet::engine::EngineError::Request(e)))?;
    let terminal = std::io::stderr().is_terminal();
    let mut last_line = 0;
    let show = |p: &Progress, last_line: &mut usize| {
        let decoded = p.done.saturating_sub(p.cached);
        let eta = p
            .eta_seconds(decoded)
            .map_or(String::new(), |s| format!(" · ETA {s:.0} s"));
        let line = format!(
            "{}/{} cells ({} cached, {} errors) · {:.1} tok/s{eta}",
            p.done,
            p.total,
            p.cached,
            p.errors,
            p.tokens_per_second()
        );
        if terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if p.done == p.total || p.done >= *last_line + p.total.div_ceil(10).max(1) {
            eprintln!("{line}");
            *last_line = p.done;
        }
    };
    let known = Known { done, cache };
    let result = run_cells(&mut engine, prepared, cells, known, log, parallel, |p| {
        show(p, &mut last_line)
    })
    .await;
    if terminal {
        eprintln!();
    }
    engine.client.shutdown().await;
    result
}

fn print_summary(prepared: &Prepared, results: &[CellResult], json: bool) -> Result<(), String> {
    let summary = summarise(prepared, results);
    if json {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        outln!("{text}");
    } else {
        for line in table(&summary) {
            outln!("{line}");
        }
    }
    Ok(())
}
