//! The experiments screen's IO, run by the UI's driver: listing files and
//! runs, opening a run, exporting it, comparing two, saving ratings, and
//! running an experiment in the background with a worker of its own (the
//! chat's stays loaded), reporting each finished cell.

use std::path::Path;

use tokio::sync::{mpsc, oneshot};

use super::{OpenRun, Running};
use crate::engine::{LoadRequest, SpawnOptions};
use crate::experiment::launch::{self, Launch, NewRun, SavedRun, DEFAULT_PARALLEL};
use crate::experiment::ratings::Ratings;
use crate::experiment::results::experiments_dir;
use crate::experiment::run::{run_cells_reporting, Engine, Known};
use crate::experiment::{compare, export, library, summary};
use crate::store::atomic::write_atomic;
use crate::tui::app::{Msg, Notice};

fn notice(text: String, error: bool) -> Msg {
    Msg::Notice(Notice { text, error })
}

pub fn list() -> Msg {
    let files = library::list(
        library::user_dir().as_deref(),
        library::shipped_dir().as_deref(),
    );
    let runs = experiments_dir()
        .map(|root| library::runs(&root))
        .unwrap_or_default();
    Msg::ExperimentsListed { files, runs }
}

/// A run read from disk, ready to show (with its ratings).
pub fn open(id: &str) -> Msg {
    match launch::read_run(id, crate::paths::user_templates_dir().as_deref()) {
        Ok(run) => Msg::ExperimentRunOpened(Box::new(OpenRun::new(
            run.info,
            run.dir,
            run.prepared,
            run.results,
            run.ratings,
        ))),
        Err(error) => notice(format!("cannot open run {id}: {error}"), true),
    }
}

pub fn compare_runs(a: &str, b: &str) -> Msg {
    let compared = launch::run_dir(a)
        .and_then(|da| Ok((da, launch::run_dir(b)?)))
        .and_then(|(da, db)| compare::compare_runs(&da, &db));
    Msg::ExperimentsCompared(compared.map(Box::new))
}

pub fn save_ratings(dir: &Path, ratings: &Ratings) -> Msg {
    match ratings.save(dir) {
        Ok(()) => notice("rating saved".to_string(), false),
        Err(error) => notice(error, true),
    }
}

/// The run as Markdown (the summary), CSV (a row per cell) and JSON (the
/// summary) in the exports directory.
pub fn export(id: &str) -> Msg {
    let written =
        launch::read_run(id, crate::paths::user_templates_dir().as_deref()).and_then(|run| {
            let SavedRun {
                prepared,
                results: cells,
                ratings,
                ..
            } = run;
            // Exported ratings must be the saved ones, not silently none.
            ratings?;
            let summary = summary::summarise(&prepared, &cells);
            let out = crate::store::export::exports_dir()?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let stem = format!("experiment-{id}");
            let files = [
                (format!("{stem}.md"), export::markdown(&summary)),
                (format!("{stem}.csv"), export::csv(&prepared, &cells)?),
                (
                    format!("{stem}.json"),
                    serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())? + "\n",
                ),
            ];
            let mut paths = Vec::new();
            for (name, text) in files {
                let path = out.join(name);
                write_atomic(&path, text.as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                paths.push(path.display().to_string());
            }
            Ok(paths)
        });
    match written {
        Ok(paths) => notice(format!("exported to {}", paths.join(", ")), false),
        Err(error) => notice(format!("cannot export run {id}: {error}"), true),
    }
}

/// Writes an experiment of a workbench template into the user's
/// experiments folder, checked as `whet experiment check` would.
pub fn make_from_template(
    saved: Option<&crate::prompt::Template>,
    edited: Option<&crate::prompt::Template>,
    dataset: &Path,
) -> Msg {
    let made = library::user_dir()
        .ok_or_else(|| "no configuration directory for experiments".to_string())
        .and_then(|dir| {
            crate::experiment::from_template::write_experiment(
                &dir,
                crate::experiment::from_template::FromTemplate {
                    saved,
                    edited,
                    dataset,
                },
            )
        });
    match made {
        Ok(path) => match crate::experiment::prepare::prepare(
            &path,
            crate::paths::user_templates_dir().as_deref(),
        ) {
            Ok(_) => Msg::ExperimentMade(path),
            Err(problems) => notice(
                format!(
                    "{} is written but does not check: {}",
                    path.display(),
                    problems.first().cloned().unwrap_or_default()
                ),
                true,
            ),
        },
        Err(error) => notice(format!("cannot make the experiment: {error}"), true),
    }
}

/// A run going on in the background: its messages, and a way to stop it.
pub struct Task {
    pub id: String,
    pub messages: mpsc::UnboundedReceiver<Msg>,
    stop: Option<oneshot::Sender<()>>,
}

impl Task {
    /// Stops the run: the cells in flight are dropped, the rest kept.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs the experiment at `file` on `model` in the background.
pub fn start(file: &Path, load: &LoadRequest, spawn: &SpawnOptions) -> Result<Task, Msg> {
    let set_up = (|| {
        let prepared = launch::prepare_run(
            file,
            None,
            None,
            crate::paths::user_templates_dir().as_deref(),
        )?;
        launch::new_run(
            &experiments_dir()?,
            NewRun {
                prepared,
                model: &load.model,
                remote: spawn.remote.as_ref(),
                parallel: DEFAULT_PARALLEL,
                limit: None,
                repeats: None,
                use_cache: true,
            },
        )
    })();
    match set_up {
        Ok(launch) => Ok(spawn_task(launch, load, spawn)),
        Err(error) => Err(notice(
            format!("cannot run {}: {error}", file.display()),
            true,
        )),
    }
}

/// Goes on with run `id` (on the model it ran on) in the background.
pub fn resume(id: &str, load: &LoadRequest, spawn: &SpawnOptions) -> Result<Task, Msg> {
    let set_up = launch::run_dir(id).and_then(|dir| {
        launch::resume_run(
            &dir,
            None,
            spawn.remote.as_ref(),
            crate::paths::user_templates_dir().as_deref(),
        )
    });
    match set_up {
        Ok(launch) if launch.earlier.len() >= launch.cells.len() => {
            Err(notice(format!("run {id} has every cell already"), false))
        }
        Ok(launch) => {
            let load = LoadRequest {
                model: launch.info.model.clone(),
                ..load.clone()
            };
            Ok(spawn_task(launch, &load, spawn))
        }
        Err(error) => Err(notice(format!("cannot resume run {id}: {error}"), true)),
    }
}

fn spawn_task(launch: Launch, load: &LoadRequest, spawn: &SpawnOptions) -> Task {
    let (sender, messages) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let id = launch.info.id.clone();
    let load = LoadRequest {
        parallel: DEFAULT_PARALLEL,
        ..load.clone()
    };
    tokio::spawn(run_task(launch, load, spawn.clone(), sender, stopped));
    Task {
        id,
        messages,
        stop: Some(stop),
    }
}

async fn run_task(
    launch: Launch,
    load: LoadRequest,
    spawn: SpawnOptions,
    sender: mpsc::UnboundedSender<Msg>,
    stopped: oneshot::Receiver<()>,
) {
    let Launch {
        info,
        prepared,
        cells,
        done,
        cache,
        earlier,
        mut log,
    } = launch;
    let id = info.id.clone();
    let variants = prepared
        .experiment
        .variants
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let total = cells.iter().filter(|c| c.variant == index).count();
            let finished = earlier.iter().filter(|r| r.variant == v.name).count();
            (v.name.clone(), finished, total)
        })
        .collect();
    let _ = sender.send(Msg::ExperimentStarted(Box::new(Running {
        id: id.clone(),
        experiment: info.experiment.clone(),
        variants,
        done: done.len().min(cells.len()),
        total: cells.len(),
        errors: earlier.iter().filter(|r| r.error.is_some()).count(),
        tokens_per_second: 0.0,
        eta_seconds: None,
        stopping: false,
    })));
    let parallel = load.parallel;
    let outcome = async {
        let mut engine = Engine::start(spawn, load).await?;
        let known = Known {
            done: &done,
            cache: &cache,
        };
        let ran = tokio::select! {
            ran = run_cells_reporting(&mut engine, &prepared, &cells, known, &mut log, parallel, |progress, result| {
                let _ = sender.send(Msg::ExperimentProgress {
                    id: id.clone(),
                    result: result.cloned().map(Box::new),
                    progress: *progress,
                });
            }) => ran.map(|_| ()),
            _ = stopped => Ok(()),
        };
        engine.client.shutdown().await;
        ran
    }
    .await;
    let _ = sender.send(Msg::ExperimentFinished { id, outcome });
}
