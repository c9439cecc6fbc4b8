//! Setting a run up, for the command line and the Experiments screen
//! alike: a new run of an experiment file (its folder, `run.json`, the
//! cells, the cache of earlier runs) or an existing run to resume (the
//! cells it has results for are done).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cells::{cells_on, Cell, VariantModel};
use super::prepare::{prepare, Prepared};
use super::ratings::Ratings;
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

/// Where a variant's `model` is: a catalog model's file in the models
/// folder, else a path relative to the experiment file.
pub fn variant_model_path(experiment: &Path, model: &str) -> Result<PathBuf, String> {
    let path = match crate::models::catalog::find(model) {
        Some(entry) => crate::paths::models_dir()?.join(entry.file_name),
        None => experiment.parent().unwrap_or(Path::new(".")).join(model),
    };
    if !path.is_file() {
        return Err(match crate::models::catalog::find(model) {
            Some(_) => format!(
                "model {model} is not installed ({}); run `whet models fetch {model}`",
                path.display()
            ),
            None => format!("model file {} does not exist", path.display()),
        });
    }
    Ok(path)
}

/// Each variant's model (None: the run's `model`) with its file's hash,
/// each file hashed once.
pub fn variant_models(
    prepared: &Prepared,
    model: &Path,
    model_sha: &str,
) -> Result<Vec<VariantModel>, String> {
    let mut hashes: HashMap<PathBuf, String> = HashMap::new();
    hashes.insert(model.to_path_buf(), model_sha.to_string());
    let mut out = Vec::new();
    for variant in &prepared.experiment.variants {
        let Some(name) = &variant.model else {
            out.push(VariantModel {
                path: None,
                sha256: model_sha.to_string(),
                chat_format: None,
            });
            continue;
        };
        let path = variant_model_path(&prepared.path, name)
            .map_err(|e| format!("variant '{}': {e}", variant.name))?;
        let sha = match hashes.get(&path) {
            Some(sha) => sha.clone(),
            None => {
                let sha = model_sha256(&path)?;
                hashes.insert(path.clone(), sha.clone());
                sha
            }
        };
        // The run's own model named again is the run's model.
        let path = (path != model || variant.chat_format.is_some()).then_some(path);
        out.push(VariantModel {
            path,
            sha256: sha,
            chat_format: variant.chat_format.clone(),
        });
    }
    Ok(out)
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

/// The identity of a remote backend's model, in place of a file's hash in
/// cells' keys: its base URL and the model it was told to use. (A server
/// can swap the weights behind the same name; `--no-cache` then.)
pub fn remote_identity(backend: &crate::engine::remote::Backend) -> String {
    let text = format!(
        "remote\n{}\n{}",
        backend.base_url(),
        backend.model.as_deref().unwrap_or_default()
    );
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The run's model identity: the file's hash, or the backend's identity.
fn identity(
    model: &Path,
    remote: Option<&crate::engine::remote::Backend>,
    prepared: &Prepared,
) -> Result<String, String> {
    let Some(backend) = remote else {
        return model_sha256(model);
    };
    if let Some(variant) = prepared
        .experiment
        .variants
        .iter()
        .find(|v| v.model.is_some() || v.chat_format.is_some())
    {
        return Err(format!(
            "variant '{}' names its own model or chat format; on backend '{}' every variant runs on the server's model",
            variant.name, backend.name
        ));
    }
    Ok(remote_identity(backend))
}

/// What a new run is asked to do.
pub struct NewRun<'a> {
    pub prepared: Prepared,
    pub model: &'a Path,
    /// The remote backend it runs on (`model` then names it).
    pub remote: Option<&'a crate::engine::remote::Backend>,
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
        remote,
        parallel,
        limit,
        repeats,
        use_cache,
    } = run;
    let sha = identity(model, remote, &prepared)?;
    let models = variant_models(&prepared, model, &sha)?;
    let cells = cells_on(&prepared, &models).map_err(|e| e.join("\n"))?;
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
    remote: Option<&crate::engine::remote::Backend>,
    user_templates: Option<&Path>,
) -> Result<Launch, String> {
    let info = results::read_info(dir)?;
    let prepared = prepare_run(&info.file, info.limit, info.repeats, user_templates)?;
    let model = model.unwrap_or_else(|| info.model.clone());
    let sha = identity(&model, remote, &prepared)?;
    let models = variant_models(&prepared, &model, &sha)?;
    let cells = cells_on(&prepared, &models).map_err(|e| e.join("\n"))?;
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

/// The folder of run `id` under the experiments folder, which must exist.
pub fn run_dir(id: &str) -> Result<PathBuf, String> {
    let root = results::experiments_dir()?;
    let dir = root.join(id);
    if id.is_empty() || id.contains(['/', '\\']) || !dir.is_dir() {
        return Err(format!(
            "no run '{id}' in {} (see `whet experiment list`)",
            root.display()
        ));
    }
    Ok(dir)
}

/// A run read back from its folder.
pub struct SavedRun {
    pub dir: PathBuf,
    pub info: RunInfo,
    /// The experiment as the run ran it (its limit and repeats).
    pub prepared: Prepared,
    /// Its results so far, with the ratings applied (a `rating` metric).
    pub results: Vec<CellResult>,
    /// Its ratings, or why they cannot be read (then none are applied).
    pub ratings: Result<Ratings, String>,
}

/// Run `id` as the summary, the screen and the exports see it. The results
/// file is read without being changed (another whet may be appending).
pub fn read_run(id: &str, user_templates: Option<&Path>) -> Result<SavedRun, String> {
    let dir = run_dir(id)?;
    let info = results::read_info(&dir)?;
    let prepared = prepare_run(&info.file, info.limit, info.repeats, user_templates)?;
    let mut results = results::peek_results(&dir)?;
    let ratings = Ratings::read(&dir);
    if let Ok(ratings) = &ratings {
        ratings.apply(&mut results);
    }
    Ok(SavedRun {
        dir,
        info,
        prepared,
        results,
        ratings,
    })
}
