//! `whet experiment`: prompt experiments over datasets.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use whet::experiment::launch::{self, Launch, NewRun};
use whet::experiment::prepare::{prepare, Prepared};
use whet::experiment::results::{self, CellResult};
use whet::experiment::run::{run_cells, Engine, Known, Progress};
use whet::experiment::summary::{cells_failing_checks, summarise, table};
use whet::experiment::{compare, export, library, plan};
use whet::outln;

use super::{load_error, ModelArgs};

/// The exit code of a run whose checks failed under `--fail-on-check`.
pub const EXIT_CHECKS_FAILED: u8 = 3;

const EXIT_CODES: &str = "Exit codes: 0 the run finished; 1 an error (bad file, model, disk) \
or some cells ended in an error (saved as error cells; the summary still prints); \
3 with --fail-on-check, a check failed on a cell that has an output.";

#[derive(clap::Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Check experiment files (or names) with their templates and
    /// datasets, without running anything; prints every problem (exit 1 if
    /// any) and, for a good file, how many cells it has.
    Check {
        #[arg(required = true, value_name = "NAME|FILE")]
        files: Vec<String>,
    },
    /// Run an experiment: every item × variant × repeat, decoded as
    /// parallel sequences, each result saved as it finishes; then the
    /// summary against the baseline. Before running it says how many cells
    /// there are, the prompt tokens they need and, from earlier runs on the
    /// same model, about how long they will take.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// An experiment's name (yours in <config>/experiments, or a
        /// shipped one: see `whet experiment list`) or its file.
        #[arg(value_name = "NAME|FILE")]
        experiment: String,
        /// Sequences decoded together (1-8).
        #[arg(long, default_value_t = launch::DEFAULT_PARALLEL)]
        parallel: u32,
        /// Only the first K items.
        #[arg(long)]
        limit: Option<usize>,
        /// Runs of each item by a sampled variant, in place of the file's
        /// `repeats` (a greedy variant still runs once).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: Option<u32>,
        /// Run every cell, even those an earlier run has a result for.
        #[arg(long)]
        no_cache: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Exit with 3 when a check fails on any cell with an output (for
        /// CI); error cells still exit with 1.
        #[arg(long)]
        fail_on_check: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Go on with a run that was stopped (its finished cells are kept).
    #[command(after_help = EXIT_CODES)]
    Resume {
        id: String,
        #[arg(long, default_value_t = launch::DEFAULT_PARALLEL)]
        parallel: u32,
        #[arg(long)]
        json: bool,
        /// Exit with 3 when a check fails on any cell of the run with an
        /// output.
        #[arg(long)]
        fail_on_check: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// A run's summary, or the run in another format.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The experiments there are (yours in <config>/experiments, and the
    /// shipped ones) and the runs made, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Two runs of an experiment (say, before and after editing its
    /// template): per variant, each metric and check in both runs and the
    /// difference B − A with a paired interval and p-value over the items
    /// both runs have.
    Compare {
        /// Run A (the earlier one, usually).
        a: String,
        /// Run B.
        b: String,
        #[arg(long)]
        json: bool,
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
            experiment,
            parallel,
            limit,
            repeats,
            no_cache,
            json,
            fail_on_check,
            model,
        } => {
            let file = resolve(&experiment)?;
            let limit = limit.filter(|&l| l > 0);
            let prepared = prepare_run(&file, limit, repeats)?;
            let options = RunOptions {
                parallel,
                json,
                fail_on_check,
            };
            start(prepared, limit, repeats, &model, !no_cache, options).await
        }
        ExperimentCommand::Resume {
            id,
            parallel,
            json,
            fail_on_check,
            model,
        } => {
            let options = RunOptions {
                parallel,
                json,
                fail_on_check,
            };
            resume(&id, &model, options).await
        }
        ExperimentCommand::Show { id, format } => {
            let run = launch::read_run(&id, super::templates::user_dir().as_deref())?;
            if let Err(problem) = &run.ratings {
                eprintln!("warning: ratings left out: {problem}");
            }
            let (prepared, results) = (run.prepared, run.results);
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
        ExperimentCommand::List { json } => list(json),
        ExperimentCommand::Compare { a, b, json } => {
            let comparison = compare::compare_runs(&launch::run_dir(&a)?, &launch::run_dir(&b)?)?;
            if json {
                let text = serde_json::to_string_pretty(&comparison).map_err(|e| e.to_string())?;
                outln!("{text}");
            } else {
                for line in compare::table(&comparison) {
                    outln!("{line}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An experiment's name or file, as a file.
fn resolve(argument: &str) -> Result<PathBuf, String> {
    library::resolve(
        argument,
        library::user_dir().as_deref(),
        library::shipped_dir().as_deref(),
    )
}

/// The experiment at `file` with a run's choices: the first `limit` items,
/// `repeats` in place of the file's.
fn prepare_run(
    file: &Path,
    limit: Option<usize>,
    repeats: Option<u32>,
) -> Result<Prepared, String> {
    launch::prepare_run(
        file,
        limit,
        repeats,
        super::templates::user_dir().as_deref(),
    )
}

fn list(json: bool) -> Result<ExitCode, String> {
    let user = library::user_dir();
    let shipped = library::shipped_dir();
    let experiments = library::list(user.as_deref(), shipped.as_deref());
    let root = results::experiments_dir()?;
    let runs = library::runs(&root);
    if json {
        let value = serde_json::json!({ "experiments": experiments, "runs": runs });
        let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
        outln!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let place = |dir: &Option<PathBuf>| {
        dir.as_ref()
            .map_or("none".to_string(), |d| d.display().to_string())
    };
    outln!(
        "experiments (yours: {}; shipped: {})",
        place(&user),
        place(&shipped)
    );
    if experiments.is_empty() {
        outln!("  none");
    }
    let name_width = experiments.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in &experiments {
        let source = match (e.shipped, e.replaces_shipped) {
            (true, _) => "shipped",
            (false, true) => "yours, replacing the shipped one",
            (false, false) => "yours",
        };
        let about = match &e.problem {
            Some(problem) => format!("problem: {problem}"),
            None => e.description.clone(),
        };
        let line = format!("  {:<name_width$}  {source:<7}  {about}", e.name);
        outln!("{}", line.trim_end());
    }
    outln!("runs, newest first ({})", root.display());
    if runs.is_empty() {
        outln!("  none yet");
    }
    let id_width = runs.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let experiment_width = runs
        .iter()
        .filter_map(|r| r.experiment.as_ref().map(|e| e.chars().count()))
        .max()
        .unwrap_or(0);
    for r in &runs {
        let created = r
            .created_unix_ms
            .map_or("?".to_string(), whet::store::dates::utc_minute);
        let Some(experiment) = &r.experiment else {
            outln!(
                "  {:<id_width$}  unreadable: {}",
                r.id,
                r.problem.as_deref().unwrap_or("?")
            );
            continue;
        };
        let model = r
            .model
            .as_ref()
            .and_then(|m| m.file_name())
            .map_or("?".to_string(), |n| n.to_string_lossy().into_owned());
        let cells = match r.cells_total {
            Some(total) => format!("{}/{total} cells", r.cells_done),
            None => format!("{} cells", r.cells_done),
        };
        let mut notes = Vec::new();
        if r.errors > 0 {
            notes.push(format!("{} errors", r.errors));
        }
        if r.cached > 0 {
            notes.push(format!("{} cached", r.cached));
        }
        if let Some(problem) = &r.problem {
            notes.push(format!("unreadable results: {problem}"));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        outln!(
            "  {:<id_width$}  {experiment:<experiment_width$}  {created}  {model}  {cells}{notes}",
            r.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(files: &[String]) -> ExitCode {
    let user_templates = super::templates::user_dir();
    super::report_checks(files, |file| {
        let file = resolve(file).map_err(|message| vec![message])?;
        let prepared = prepare(&file, user_templates.as_deref())?;
        let mut lines: Vec<String> = prepared
            .warnings
            .iter()
            .map(|warning| format!("warning: {warning}"))
            .collect();
        lines.push(summary_line(&prepared));
        Ok(lines)
    })
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

/// How a run goes, from the command line.
struct RunOptions {
    parallel: u32,
    json: bool,
    fail_on_check: bool,
}

async fn start(
    prepared: Prepared,
    limit: Option<usize>,
    repeats: Option<u32>,
    model: &ModelArgs,
    use_cache: bool,
    options: RunOptions,
) -> Result<ExitCode, String> {
    let remote = model.remote()?;
    let parallel = options.parallel;
    // A server takes as many as its backend's max_parallel allows; the
    // local engine's sequences are bounded by its context.
    if remote.is_none() && !(1..=whet::engine::parallel::MAX_PARALLEL).contains(&parallel) {
        return Err(format!(
            "--parallel takes 1 to {}",
            whet::engine::parallel::MAX_PARALLEL
        ));
    }
    let load = model.load_request()?;
    let root = results::experiments_dir()?;
    let mut launch = launch::new_run(
        &root,
        NewRun {
            prepared,
            model: &load.model,
            remote: remote.as_ref(),
            parallel,
            limit,
            repeats,
            use_cache,
        },
    )?;
    eprintln!("run {} into {}", launch.info.id, launch.log.dir.display());
    let spawn = model.spawn_options()?;
    let results = execute(&mut launch, &root, load, parallel, spawn).await?;
    print_summary(&launch.prepared, &results, options.json)?;
    eprintln!(
        "show it again with: whet experiment show {}",
        launch.info.id
    );
    Ok(exit_code(&results, options.fail_on_check))
}

async fn resume(id: &str, model: &ModelArgs, options: RunOptions) -> Result<ExitCode, String> {
    let remote = model.remote()?;
    let dir = launch::run_dir(id)?;
    let mut load = model.load_request()?;
    let mut launch = launch::resume_run(
        &dir,
        model.model.clone(),
        remote.as_ref(),
        super::templates::user_dir().as_deref(),
    )?;
    load.model = launch.info.model.clone();
    eprintln!("run {id}: going on in {}", dir.display());
    let root = results::experiments_dir()?;
    let spawn = model.spawn_options()?;
    let new = execute(&mut launch, &root, load, options.parallel, spawn).await?;
    let mut all = std::mem::take(&mut launch.earlier);
    all.extend(new);
    print_summary(&launch.prepared, &all, options.json)?;
    Ok(exit_code(&all, options.fail_on_check))
}

/// 1 when cells ended in an error, else 3 when `fail_on_check` and a check
/// failed on a cell with an output, else 0; says why on stderr.
fn exit_code(results: &[CellResult], fail_on_check: bool) -> ExitCode {
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    if errors > 0 {
        eprintln!(
            "{errors} of {} cells ended in an error (their messages: `whet experiment show RUN --format csv`)",
            results.len()
        );
        return ExitCode::FAILURE;
    }
    let failing = cells_failing_checks(results);
    if fail_on_check && failing > 0 {
        eprintln!(
            "checks failed on {failing} of {} cells (--fail-on-check: exit {EXIT_CHECKS_FAILED})",
            results.len()
        );
        return ExitCode::from(EXIT_CHECKS_FAILED);
    }
    ExitCode::SUCCESS
}

/// Says what the run will do, loads the model, counts the prompt tokens,
/// estimates the time (from earlier runs under `root`), then runs the
/// cells with a progress bar (plain lines when stderr is not a terminal).
async fn execute(
    run: &mut Launch,
    root: &Path,
    mut load: whet::engine::LoadRequest,
    parallel: u32,
    spawn: whet::engine::SpawnOptions,
) -> Result<Vec<CellResult>, String> {
    let mut the_plan = plan::plan(&run.prepared, &run.cells, &run.done, &run.cache, parallel);
    eprintln!("{}", plan::cells_line(&the_plan));
    load.parallel = parallel;
    let mut engine = Engine::start(spawn, load.clone())
        .await
        .map_err(|e| load_error(&load, whet::engine::EngineError::Request(e)))?;
    let pending = plan::to_decode(&run.cells, &run.done, &run.cache);
    if !pending.is_empty() {
        match plan::count_prompt_tokens(&mut engine.client, &pending).await {
            Ok((tokens, per_cell)) => {
                the_plan.prompt_tokens = Some(tokens);
                the_plan.estimate = plan::measured_speed(
                    root,
                    &run.info.model_sha256,
                    parallel,
                    &run.prepared.experiment.name,
                )
                .map(|speed| plan::estimate(&speed, &pending, &per_cell, parallel));
            }
            // The run restarts a worker that died; it goes on without
            // the figures.
            Err(message) => eprintln!("{message}"),
        }
    }
    for line in plan::cost_lines(&the_plan) {
        eprintln!("{line}");
    }
    let mut view = ProgressView::new(run.cells.len());
    let known = Known {
        done: &run.done,
        cache: &run.cache,
    };
    let result = run_cells(
        &mut engine,
        &run.prepared,
        &run.cells,
        known,
        &mut run.log,
        parallel,
        |p| view.show(p),
    )
    .await;
    view.finish();
    engine.client.shutdown().await;
    result
}

/// Where the run stands: an indicatif bar on a terminal, else a plain
/// line on stderr every tenth of the cells and at the end.
struct ProgressView {
    bar: Option<ProgressBar>,
    last_line: usize,
}

impl ProgressView {
    fn new(total: usize) -> ProgressView {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} cells · {msg} · {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        ProgressView { bar, last_line: 0 }
    }

    /// `3 cached, 0 errors · 41.2 tok/s · ETA 1 min 5 s`.
    fn message(p: &Progress) -> String {
        let decoded = p.done.saturating_sub(p.cached);
        let eta = p
            .eta_seconds(decoded)
            .filter(|_| p.done < p.total)
            .map_or(String::new(), |s| format!(" · ETA {}", plan::duration(s)));
        format!(
            "{} cached, {} errors · {:.1} tok/s{eta}",
            p.cached,
            p.errors,
            p.tokens_per_second()
        )
    }

    fn show(&mut self, p: &Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.done as u64);
                bar.set_message(Self::message(p));
            }
            None => {
                if p.done == p.total || p.done >= self.last_line + p.total.div_ceil(10).max(1) {
                    let decoded = p.done.saturating_sub(p.cached);
                    let eta = p
                        .eta_seconds(decoded)
                        .map_or(String::new(), |s| format!(" · ETA {s:.0} s"));
                    eprintln!(
                        "{}/{} cells ({} cached, {} errors) · {:.1} tok/s{eta}",
                        p.done,
                        p.total,
                        p.cached,
                        p.errors,
                        p.tokens_per_second()
                    );
                    self.last_line = p.done;
                }
            }
        }
    }

    /// Leaves the bar's last state on screen.
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
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
