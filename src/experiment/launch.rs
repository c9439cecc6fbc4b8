//! Setting a run up, for the command line and the Experiments screen
//! alike: a new run of an experiment file (its folder, `run.json`, the
//! cells, the cache of earlier runs) or an existing run to resume (the
//! cells it has results for are done).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cells::{cells, Cell};
use super::prepare::{prepare, Prepared};
use super::results::{self, CellResult, RunInfo, RunLog};

/// Parallel sequences when not asked: the fastest measured on a 2-core
/// machine (`whet bench --parallel 1,2,4,8`: 1.69× one at a time at 8,
/// 1.47× at 4).
pub const DEFAULT_PARALLEL: u32 = 8;

/// A run ready to go: what it is, where it is written, what is left.
pub struct Launch {
    pub info: RunInfo,
    pub prepared: Prepared,
    pub cells: Vec<Cell>,
    /// Keys this run has results for (a resumed run's earlier cells).
    pub done: HashSet<String>,
    /// Earlier runs' results by key (empty without the cache).
    pub cache: HashMap<String, CellResult>,
    /// This run's results so far.
    pub earlier: Vec<CellResult>,
    pub log: RunLog,
}

/// The experiment at `file` with a run's own `limit` and `repeats`.
pub fn prepare_run(
    file: &Path,
    limit: Option<usize>,
    repeats: Option<u32>,
    user_templates: Option<&Path>,
) -> Result<Prepared, String> {
    let mut prepared = prepare(file, user_templates).map_err(|problems| problems.join("\n"))?;
    prepared.apply(limit, repeats);
    Ok(prepared)
}

/// Variants on different models are read and checked but not run yet:
/// refuse rather than run them all on one model.
pub fn refuse_variant_models(prepared: &Prepared) -> Result<(), String> {
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
pub fn model_sha256(path: &Path) -> Result<String, String> {
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

/// What a new run is asked to do.
pub struct NewRun<'a> {
    pub prepared: Prepared,
    pub model: &'a Path,
    pub parallel: u32,
    pub limit: Option<usize>,
    pub repeats: Option<u32>,
    pub use_cache: bool,
}

/// A new run folder under `root` for `run.prepared` on `run.model`.
pub fn new_run(root: &Path, run: NewRun<'_>) -> Result<Launch, String> {
    let NewRun {
        prepared,
        model,
        parallel,
        limit,
        repeats,
        use_cache,
    } = run;
    refuse_variant_models(&prepared)?;
    let sha = model_sha256(model)?;
    let cells = cells(&prepared, &sha).map_err(|e| e.join("\n"))?;
    let cache = if use_cache {
        results::cached_results(root)
    } else {
        HashMap::new()
    };
    let created = crate::store::dates::now_unix_ms();
    let info = RunInfo {
        id: crate::store::runs::new_id(created, &prepared.experiment.name),
        experiment: prepared.experiment.name.clone(),
        file: std::fs::canonicalize(&prepared.path).unwrap_or(prepared.path.clone()),
        file_text: std::fs::read_to_string(&prepared.path).unwrap_or_default(),
        model: model.to_path_buf(),
        model_sha256: sha,
        parallel,
        limit,
        repeats,
        cells: Some(cells.len()),
        created_unix_ms: created,
    };
    let log = RunLog::create(root, &info)?;
    Ok(Launch {
        info,
        prepared,
        cells,
        done: HashSet::new(),
        cache,
        earlier: Vec::new(),
        log,
    })
}

/// The run in `dir`, to go on with: on its own model unless `model` is
/// given; the cells it has results for are done.
pub fn resume_run(
    dir: &Path,
    model: Option<PathBuf>,
    user_templates: Option<&Path>,
) -> Result<Launch, String> {
    let info = results::read_info(dir)?;
    let prepared = prepare_run(&info.file, info.limit, info.repeats, user_templates)?;
    refuse_variant_models(&prepared)?;
    let model = model.unwrap_or_else(|| info.model.clone());
    let sha = model_sha256(&model)?;
    let cells = cells(&prepared, &sha).map_err(|e| e.join("\n"))?;
    let earlier = results::read_results(dir)?;
    let done = earlier.iter().map(|r| r.key.clone()).collect();
    let log = RunLog::open(dir)?;
    Ok(Launch {
        info: RunInfo { model, ..info },
        prepared,
        cells,
        done,
        cache: HashMap::new(),
        earlier,
        log,
    })
}
