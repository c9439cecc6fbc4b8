//! Running an experiment's cells on the engine: cells with a result in this
//! run are skipped (resume), cells with a result under the same key in an
//! earlier run are copied (cache), the rest are decoded as parallel
//! sequences, and each result is saved the moment it arrives. Refined cells
//! run after their model's plain cells, one refinement loop at a time
//! ([`super::refined_run`]). A worker that dies is restarted; a cell in
//! flight during two crashes becomes an error cell and the run goes on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cells::Cell;
use super::prepare::Prepared;
use super::refined_run::{refine_cell, LoopOutcome};
use super::refinement::RefinedCell;
use super::results::{CellResult, RunLog};
use super::score::score;
use crate::engine::client::Generation;
use crate::engine::protocol::{GenerationStats, LoadRequest, StopReason};
use crate::engine::{EngineClient, SpawnOptions};

/// How often a cell may be in flight when the worker dies before it is
/// given up as an error cell.
const ATTEMPTS: u32 = 2;

/// How often streamed tokens update the progress between finished cells.
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// Where the run stands, for progress displays.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub cached: usize,
    pub errors: usize,
    pub generated_tokens: u64,
    /// Tokens received so far, cells still being decoded included.
    pub streamed_tokens: u64,
    pub seconds: f64,
    /// The index (in the cells given) of the cell that just finished.
    pub last_cell: Option<usize>,
}

impl Progress {
    /// Tokens generated per second so far (live: cells in flight count).
    pub fn tokens_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.streamed_tokens.max(self.generated_tokens) as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Seconds left at the pace so far (None before the first decoded cell).
    pub fn eta_seconds(&self, decoded: usize) -> Option<f64> {
        let left = self.total.saturating_sub(self.done);
        (decoded > 0 && self.seconds > 0.0).then(|| self.seconds / decoded as f64 * left as f64)
    }
}

/// The engine a run uses, and how to start it again.
pub struct Engine {
    pub client: EngineClient,
    pub spawn: SpawnOptions,
    pub load: LoadRequest,
    /// The context the model was loaded with (refinement loops fall back
    /// to fresh requests when their conversation might not fit).
    pub n_ctx: u32,
}

impl Engine {
    pub async fn start(spawn: SpawnOptions, load: LoadRequest) -> Result<Engine, String> {
        let mut client = EngineClient::spawn(&spawn)
            .await
            .map_err(|e| e.to_string())?;
        let info = client.load(load.clone()).await.map_err(|e| e.to_string())?;
        Ok(Engine {
            client,
            spawn,
            load,
            n_ctx: info.n_ctx,
        })
    }

    async fn restart(&mut self) -> Result<(), String> {
        let fresh = Engine::start(self.spawn.clone(), self.load.clone()).await?;
        let old = std::mem::replace(self, fresh);
        old.client.shutdown().await;
        Ok(())
    }

    /// A worker with `model` loaded (the same settings otherwise), unless
    /// it has it already.
    async fn switch_to(
        &mut self,
        model: &std::path::Path,
        chat_format: Option<&str>,
    ) -> Result<(), String> {
        if self.load.model == model && self.load.chat_format.as_deref() == chat_format {
            return Ok(());
        }
        let load = LoadRequest {
            model: model.to_path_buf(),
            chat_format: chat_format.map(str::to_string),
            ..self.load.clone()
        };
        let fresh = Engine::start(self.spawn.clone(), load)
            .await
            .map_err(|e| format!("cannot load {}: {e}", model.display()))?;
        let old = std::mem::replace(self, fresh);
        old.client.shutdown().await;
        Ok(())
    }
}

/// A cell's result from a generation (or its failure), scored.
pub fn cell_result(
    prepared: &Prepared,
    cell: &Cell,
    outcome: &Result<Generation, String>,
) -> CellResult {
    let reply = match outcome {
        Ok(g) => Ok((g.text.clone(), g.reason, g.stats.clone())),
        Err(message) => Err(message.clone()),
    };
    result_of(prepared, cell, reply)
}

/// A cell's result from its reply (text, stop reason, figures) or the
/// reason it has none, scored against its item.
fn result_of(
    prepared: &Prepared,
    cell: &Cell,
    reply: Result<(String, StopReason, GenerationStats), String>,
) -> CellResult {
    let item = &prepared.items[cell.item];
    let experiment = &prepared.experiment;
    let variant = &experiment.variants[cell.variant];
    let (output, stop_reason, stats, error) = match reply {
        Ok((text, reason, stats)) => (text, Some(reason), Some(stats), None),
        Err(message) => (String::new(), None, None, Some(message)),
    };
    let scores = if error.is_none() {
        score(
            &output,
            &item.references,
            &experiment.metrics,
            &experiment.checks,
        )
    } else {
        Default::default()
    };
    CellResult {
        key: cell.key.clone(),
        item: cell.item,
        line: item.line,
        variant: variant.name.clone(),
        repeat: cell.repeat,
        seed: cell.sampling.seed,
        input: cell.messages.clone(),
        output,
        stop_reason,
        stats,
        scores,
        error,
        cached: false,
        refine: None,
    }
}

/// A refined cell's result: the kept pass as its output, scored, with
/// every generation's figures summed; or an error cell (with the passes
/// made before the error).
fn refined_result(
    prepared: &Prepared,
    cell: &Cell,
    refined: RefinedCell,
    error: Option<String>,
) -> CellResult {
    let reply = match (error, refined.kept_pass()) {
        (Some(message), _) => Err(message),
        (None, Some(kept)) => Ok((kept.output.clone(), kept.stop_reason, refined.total_stats())),
        (None, None) => Err("refinement made no pass".to_string()),
    };
    CellResult {
        refine: Some(refined),
        ..result_of(prepared, cell, reply)
    }
}

/// An earlier run's result for `cell`'s key, scored again with this run's
/// metrics and checks (a refined cell's passes too, and its kept pass
/// chosen again); None when it cannot stand for the cell.
fn from_cache(prepared: &Prepared, cell: &Cell, earlier: &CellResult) -> Option<CellResult> {
    let mut result = match (&cell.refine, &earlier.refine) {
        (None, _) => result_of(
            prepared,
            cell,
            Ok((
                earlier.output.clone(),
                earlier.stop_reason.unwrap_or(StopReason::Eos),
                earlier.stats.clone().unwrap_or_default(),
            )),
        ),
        (Some(_), Some(refined)) => {
            let mut refined = refined.clone();
            let experiment = &prepared.experiment;
            refined.rescore(
                &prepared.items[cell.item].references,
                &experiment.metrics,
                &experiment.checks,
            );
            refined_result(prepared, cell, refined, None)
        }
        (Some(_), None) => return None,
    };
    result.cached = true;
    Some(result)
}

/// What need not be decoded: keys this run has results for (resume), and
/// earlier runs' results by key (cache).
pub struct Known<'a> {
    pub done: &'a HashSet<String>,
    pub cache: &'a HashMap<String, CellResult>,
}

/// Runs every cell not yet `known.done`, appending results to `log`;
/// returns this call's new results. `on_progress` is told after each cell.
pub async fn run_cells(
    engine: &mut Engine,
    prepared: &Prepared,
    cells: &[Cell],
    known: Known<'_>,
    log: &mut RunLog,
    parallel: u32,
    mut on_progress: impl FnMut(&Progress) + Send,
) -> Result<Vec<CellResult>, String> {
    run_cells_reporting(engine, prepared, cells, known, log, parallel, |p, _| {
        on_progress(p)
    })
    .await
}

/// [`run_cells`], telling `on_cell` each new result as it is saved (and
/// the progress without one after the cached cells are copied).
pub async fn run_cells_reporting(
    engine: &mut Engine,
    prepared: &Prepared,
    cells: &[Cell],
    known: Known<'_>,
    log: &mut RunLog,
    parallel: u32,
    mut on_cell: impl FnMut(&Progress, Option<&CellResult>) + Send,
) -> Result<Vec<CellResult>, String> {
    let Known { done, cache } = known;
    let started = Instant::now();
    let mut progress = Progress {
        total: cells.len(),
        done: cells.iter().filter(|c| done.contains(&c.key)).count(),
        ..Progress::default()
    };
    let mut new_results = Vec::new();
    let mut pending: Vec<(usize, &Cell)> = Vec::new();
    for (index, cell) in cells
        .iter()
        .enumerate()
        .filter(|(_, c)| !done.contains(&c.key))
    {
        match cache
            .get(&cell.key)
            .and_then(|earlier| from_cache(prepared, cell, earlier))
        {
            Some(result) => {
                log.append(&result)?;
                progress.done += 1;
                progress.cached += 1;
                progress.last_cell = Some(index);
                on_cell(&progress, Some(&result));
                new_results.push(result);
            }
            None => pending.push((index, cell)),
        }
    }
    progress.last_cell = None;
    on_cell(&progress, None);
    let mut attempts: HashMap<String, u32> = HashMap::new();
    // Cells on the run's model first, then each variant model's in turn,
    // one worker at a time.
    let run_model = (engine.load.model.clone(), engine.load.chat_format.clone());
    type Group<'c> = ((std::path::PathBuf, Option<String>), Vec<(usize, &'c Cell)>);
    let mut groups: Vec<Group> = Vec::new();
    for (index, cell) in pending {
        let model = match &cell.model {
            Some(path) => (path.clone(), cell.chat_format.clone()),
            None => run_model.clone(),
        };
        match groups.iter_mut().find(|(m, _)| *m == model) {
            Some((_, group)) => group.push((index, cell)),
            None => groups.push((model, vec![(index, cell)])),
        }
    }
    groups.sort_by_key(|(model, _)| *model != run_model);
    for ((model, chat_format), group) in groups {
        if let Err(error) = engine.switch_to(&model, chat_format.as_deref()).await {
            // The variant's model cannot be loaded: its cells are error
            // cells, and the others go on.
            for (cell_index, cell) in group {
                let result = cell_result(prepared, cell, &Err(error.clone()));
                log.append(&result)?;
                progress.done += 1;
                progress.errors += 1;
                progress.last_cell = Some(cell_index);
                on_cell(&progress, Some(&result));
                new_results.push(result);
            }
            continue;
        }
        // Plain cells first, decoded together; then the refined ones.
        let (refined, mut waiting): (Vec<_>, Vec<_>) =
            group.into_iter().partition(|(_, c)| c.refine.is_some());
        // Cells that were in flight beside others when a worker died: any
        // of them may have killed it, so each runs alone next, and only a
        // death while a cell runs alone counts against it.
        let mut suspects: VecDeque<(usize, &Cell)> = VecDeque::new();
        loop {
            let (pending, width) = match suspects.pop_front() {
                Some(suspect) => (vec![suspect], 1),
                None if !waiting.is_empty() => (std::mem::take(&mut waiting), parallel),
                None => break,
            };
            let requests = pending.iter().map(|(_, c)| c.request()).collect();
            let mut started_cells: HashSet<usize> = HashSet::new();
            let mut finished: HashSet<usize> = HashSet::new();
            let mut save_error = None;
            // Both callbacks report: tokens as they stream (at most every
            // REPORT_EVERY), cells as they end.
            // A mutex rather than a RefCell: the future must stay Send (the UI
            // runs experiments on a tokio task).
            let reporter = Mutex::new((&mut progress, &mut on_cell, Instant::now()));
            let outcome = engine
                .client
                .generate_many_each(
                    requests,
                    width,
                    |index, _| {
                        started_cells.insert(index);
                        let mut guard = reporter.lock().unwrap_or_else(|p| p.into_inner());
                        let (progress, on_cell, last) = &mut *guard;
                        progress.streamed_tokens += 1;
                        if last.elapsed() >= REPORT_EVERY {
                            progress.seconds = started.elapsed().as_secs_f64();
                            progress.last_cell = None;
                            on_cell(progress, None);
                            *last = Instant::now();
                        }
                    },
                    |index, outcome| {
                        let (cell_index, cell) = pending[index];
                        let result = cell_result(prepared, cell, outcome);
                        if let Err(e) = log.append(&result) {
                            save_error.get_or_insert(e);
                        }
                        finished.insert(index);
                        let mut guard = reporter.lock().unwrap_or_else(|p| p.into_inner());
                        let (progress, on_cell, last) = &mut *guard;
                        progress.done += 1;
                        progress.errors += usize::from(result.error.is_some());
                        progress.generated_tokens +=
                            u64::from(result.stats.as_ref().map_or(0, |s| s.generated_tokens));
                        progress.seconds = started.elapsed().as_secs_f64();
                        progress.last_cell = Some(cell_index);
                        on_cell(progress, Some(&result));
                        *last = Instant::now();
                        new_results.push(result);
                    },
                )
                .await;
            if let Some(e) = save_error {
                return Err(e);
            }
            match outcome {
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(
                        "the worker failed during the experiment: {error}; restarting it"
                    );
                    let in_flight = (0..pending.len())
                        .filter(|i| started_cells.contains(i) && !finished.contains(i))
                        .count();
                    for (index, &(cell_index, cell)) in pending.iter().enumerate() {
                        if finished.contains(&index) {
                            continue;
                        }
                        if !started_cells.contains(&index) {
                            waiting.push((cell_index, cell));
                            continue;
                        }
                        if in_flight > 1 {
                            suspects.push_back((cell_index, cell));
                            continue;
                        }
                        let tries = attempts.entry(cell.key.clone()).or_insert(0);
                        *tries += 1;
                        if *tries >= ATTEMPTS {
                            let failed = Err(format!(
                                "the worker died while decoding this cell, twice ({error})"
                            ));
                            let result = cell_result(prepared, cell, &failed);
                            log.append(&result)?;
                            progress.done += 1;
                            progress.errors += 1;
                            progress.last_cell = Some(cell_index);
                            on_cell(&progress, Some(&result));
                            new_results.push(result);
                        } else {
                            suspects.push_front((cell_index, cell));
                        }
                    }
                    // Cells not started yet keep their order, after the
                    // ones that had already been sent.
                    waiting.sort_by_key(|(cell_index, _)| *cell_index);
                    if !suspects.is_empty() || !waiting.is_empty() || !refined.is_empty() {
                        engine.restart().await?;
                    }
                }
            }
        }
        let mut run = RefinedCells {
            engine: &mut *engine,
            prepared,
            log: &mut *log,
            progress: &mut progress,
            on_cell: &mut on_cell,
            attempts: &mut attempts,
            started,
            new_results: &mut new_results,
        };
        run.run(refined).await?;
    }
    Ok(new_results)
}

/// Refined cells of one model, one loop after another, each saved as it
/// ends. A loop during which the worker dies is run again from its draft
/// on a new worker, once; then it is an error cell.
struct RefinedCells<'r, F> {
    engine: &'r mut Engine,
    prepared: &'r Prepared,
    log: &'r mut RunLog,
    progress: &'r mut Progress,
    on_cell: &'r mut F,
    attempts: &'r mut HashMap<String, u32>,
    started: Instant,
    new_results: &'r mut Vec<CellResult>,
}

impl<F: FnMut(&Progress, Option<&CellResult>) + Send> RefinedCells<'_, F> {
    async fn run(&mut self, cells: Vec<(usize, &Cell)>) -> Result<(), String> {
        let mut worker_dead = false;
        for (cell_index, cell) in cells {
            let Some(refinement) = &cell.refine else {
                continue;
            };
            let result = loop {
                if std::mem::take(&mut worker_dead) {
                    self.engine.restart().await?;
                }
                let mut last = Instant::now();
                let (progress, on_cell, started) =
                    (&mut *self.progress, &mut *self.on_cell, self.started);
                let mut on_text = |_: &str| {
                    progress.streamed_tokens += 1;
                    if last.elapsed() >= REPORT_EVERY {
                        progress.seconds = started.elapsed().as_secs_f64();
                        progress.last_cell = None;
                        on_cell(progress, None);
                        last = Instant::now();
                    }
                };
                let n_ctx = self.engine.n_ctx;
                let outcome = refine_cell(
                    &mut self.engine.client,
                    n_ctx,
                    self.prepared,
                    cell,
                    refinement,
                    &mut on_text,
                )
                .await;
                match outcome {
                    LoopOutcome::Ended {
                        cell: refined,
                        error,
                    } => {
                        break refined_result(self.prepared, cell, refined, error);
                    }
                    LoopOutcome::WorkerDied(error) => {
                        tracing::warn!(
                            "the worker failed while refining a cell: {error}; restarting it"
                        );
                        worker_dead = true;
                        let tries = self.attempts.entry(cell.key.clone()).or_insert(0);
                        *tries += 1;
                        if *tries >= ATTEMPTS {
                            let failed = Err(format!(
                                "the worker died while refining this cell, twice ({error})"
                            ));
                            break cell_result(self.prepared, cell, &failed);
                        }
                    }
                }
            };
            self.log.append(&result)?;
            let progress = &mut *self.progress;
            progress.done += 1;
            progress.errors += usize::from(result.error.is_some());
            progress.generated_tokens +=
                u64::from(result.stats.as_ref().map_or(0, |s| s.generated_tokens));
            progress.seconds = self.started.elapsed().as_secs_f64();
            progress.last_cell = Some(cell_index);
            (self.on_cell)(progress, Some(&result));
            self.new_results.push(result);
        }
        Ok(())
    }
}
