//! The experiments there are and the runs made of them. Experiment files
//! are the shipped ones (`prompts/experiments/NAME.toml`, with their
//! datasets) and the user's (`<config>/experiments/NAME.toml`); a user file
//! named like a shipped one replaces it, as templates do. Runs are the
//! folders under [`super::results::experiments_dir`], newest first; one
//! that cannot be read is listed with the reason, never skipped.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::results::{self, RunInfo};
use super::spec;
use crate::prompt::library::read_template_file;
use crate::prompt::template::is_template_name;

/// The user's experiments: `<config>/experiments` (the config directory
/// honours `WHET_CONFIG_DIR`).
pub fn user_dir() -> Option<PathBuf> {
    crate::paths::config_dir()
        .ok()
        .map(|dir| dir.join("experiments"))
}

/// The shipped experiments. Unlike templates they are not compiled in (an
/// experiment names a dataset file beside it), so they are read from a
/// `prompts/experiments` folder beside the binary if there is one, else
/// from the source tree whet was built from.
pub fn shipped_dir() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("prompts").join("experiments")));
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("prompts")
        .join("experiments");
    beside.into_iter().chain([built]).find(|dir| dir.is_dir())
}

/// An experiment file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentFile {
    /// The file name without `.toml` (an experiment's `name` must match it).
    pub name: String,
    pub path: PathBuf,
    pub shipped: bool,
    /// A user file that replaces the shipped experiment of its name.
    pub replaces_shipped: bool,
    /// The file's one-line description (empty if it has none).
    pub description: String,
    /// Why the file cannot be read as an experiment (its first problem;
    /// `whet experiment check` gives them all).
    pub problem: Option<String>,
}

/// `(name, path)` of every `*.toml` in `dir`, by name.
fn toml_files(dir: Option<&Path>) -> Vec<(String, PathBuf)> {
    let Some(entries) = dir.and_then(|dir| std::fs::read_dir(dir).ok()) else {
        return Vec::new();
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml") && path.is_file())
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_string();
            (!name.starts_with('.')).then_some((name, path))
        })
        .collect();
    files.sort();
    files
}

fn describe(name: &str, path: &Path, shipped: bool, replaces_shipped: bool) -> ExperimentFile {
    let label = path.display().to_string();
    let (description, problem) = match read_template_file(path) {
        Err(e) => (String::new(), Some(format!("{label}: {e}"))),
        Ok(text) => match spec::parse(&text, &label, Some(name)) {
            Ok(experiment) => (experiment.description, None),
            Err(errors) => (String::new(), errors.first().map(ToString::to_string)),
        },
    };
    ExperimentFile {
        name: name.to_string(),
        path: path.to_path_buf(),
        shipped,
        replaces_shipped,
        description,
        problem,
    }
}

/// Every experiment file, by name: the user's, and the shipped ones no
/// user file replaces.
pub fn list(user_dir: Option<&Path>, shipped_dir: Option<&Path>) -> Vec<ExperimentFile> {
    let shipped = toml_files(shipped_dir);
    let mine = toml_files(user_dir);
    let mut out: Vec<ExperimentFile> = mine
        .iter()
        .map(|(name, path)| describe(name, path, false, shipped.iter().any(|(n, _)| n == name)))
        .collect();
    for (name, path) in &shipped {
        if !mine.iter().any(|(n, _)| n == name) {
            out.push(describe(name, path, true, false));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether a command-line argument names an experiment (`sentiment-shots`)
/// rather than a file: no `/`, no `.toml`.
pub fn is_name(argument: &str) -> bool {
    !argument.contains('/') && !argument.contains('\\') && !argument.ends_with(".toml")
}

/// The file of experiment `name`: the user's if there is one, else the
/// shipped one. Error: `unknown experiment 'x' (available: a, b; yours go
/// in DIR)`.
pub fn find(
    name: &str,
    user_dir: Option<&Path>,
    shipped_dir: Option<&Path>,
) -> Result<PathBuf, String> {
    if is_template_name(name) {
        for dir in [user_dir, shipped_dir].into_iter().flatten() {
            let path = dir.join(format!("{name}.toml"));
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    let available: Vec<String> = list(user_dir, shipped_dir)
        .into_iter()
        .map(|e| e.name)
        .collect();
    let available = if available.is_empty() {
        "none".to_string()
    } else {
        available.join(", ")
    };
    let yours = user_dir.map_or(String::new(), |d| format!("; yours go in {}", d.display()));
    Err(format!(
        "unknown experiment '{name}' (available: {available}{yours})"
    ))
}

/// The experiment file a command-line argument means: a name through
/// [`find`], anything else as a path.
pub fn resolve(
    argument: &str,
    user_dir: Option<&Path>,
    shipped_dir: Option<&Path>,
) -> Result<PathBuf, String> {
    if is_name(argument) {
        find(argument, user_dir, shipped_dir)
    } else {
        Ok(PathBuf::from(argument))
    }
}

/// A run folder, as far as it can be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEntry {
    /// The folder's name: what `show`, `resume` and `compare` take.
    pub id: String,
    pub dir: PathBuf,
    /// From `run.json`, else from the id's time stamp.
    pub created_unix_ms: Option<u64>,
    pub experiment: Option<String>,
    pub model: Option<PathBuf>,
    /// Cells with a result (error cells included).
    pub cells_done: usize,
    /// The run's cell count when it started (not known for older runs).
    pub cells_total: Option<usize>,
    pub errors: usize,
    pub cached: usize,
    /// Why the run, or its results, cannot be read.
    pub problem: Option<String>,
}

/// One run folder, read without changing anything in it.
pub fn run_entry(dir: &Path) -> RunEntry {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut entry = RunEntry {
        created_unix_ms: crate::store::runs::created_from_id(&id),
        id,
        dir: dir.to_path_buf(),
        experiment: None,
        model: None,
        cells_done: 0,
        cells_total: None,
        errors: 0,
        cached: 0,
        problem: None,
    };
    let info: RunInfo = match results::read_info(dir) {
        Ok(info) => info,
        Err(problem) => {
            entry.problem = Some(problem);
            return entry;
        }
    };
    entry.created_unix_ms = Some(info.created_unix_ms);
    entry.experiment = Some(info.experiment);
    entry.model = Some(info.model);
    entry.cells_total = info.cells;
    match results::peek_results(dir) {
        Ok(cells) => {
            entry.cells_done = cells.len();
            entry.errors = cells.iter().filter(|c| c.error.is_some()).count();
            entry.cached = cells.iter().filter(|c| c.cached).count();
        }
        Err(problem) => entry.problem = Some(problem),
    }
    entry
}

/// Every run folder under `root`, newest first (by creation time, then
/// id); none if `root` does not exist.
pub fn runs(root: &Path) -> Vec<RunEntry> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut runs: Vec<RunEntry> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|path| path.is_dir())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .map(|path| run_entry(&path))
        .collect();
    runs.sort_by(|a, b| {
        b.created_unix_ms
            .cmp(&a.created_unix_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::results::{CellResult, RunLog};

    const EXPERIMENT: &str = "name = \"NAME\"\ndescription = \"DESC\"\nprompt = \"Say {{text}}\"\ndataset = \"d.jsonl\"\n";

    fn write(dir: &Path, name: &str, description: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            EXPERIMENT
                .replace("NAME", name)
                .replace("DESC", description),
        )
        .unwrap();
        path
    }

    #[test]
    fn a_user_file_replaces_the_shipped_one_of_its_name() {
        let root = tempfile::tempdir().unwrap();
        let shipped = root.path().join("shipped");
        let mine = root.path().join("mine");
        write(&shipped, "alpha", "shipped alpha");
        write(&shipped, "beta", "shipped beta");
        let my_beta = write(&mine, "beta", "my beta");
        let delta = write(&mine, "delta", "misnamed");
        std::fs::rename(delta, mine.join("gamma.toml")).unwrap();
        let listed = list(Some(&mine), Some(&shipped));
        let names: Vec<(&str, bool, bool)> = listed
            .iter()
            .map(|e| (e.name.as_str(), e.shipped, e.replaces_shipped))
            .collect();
        assert_eq!(
            names,
            [
                ("alpha", true, false),
                ("beta", false, true),
                ("gamma", false, false)
            ]
        );
        assert_eq!(listed[1].description, "my beta");
        let problem = listed[2].problem.as_deref().unwrap();
        assert!(
            problem.contains("name 'delta' does not match the file name 'gamma.toml'"),
            "{problem}"
        );

        assert_eq!(find("beta", Some(&mine), Some(&shipped)).unwrap(), my_beta);
        assert_eq!(
            resolve("alpha", Some(&mine), Some(&shipped)).unwrap(),
            shipped.join("alpha.toml")
        );
        // A path is a path, even one that does not exist (the run says so).
        assert_eq!(
            resolve("beta.toml", Some(&mine), Some(&shipped)).unwrap(),
            PathBuf::from("beta.toml")
        );
        assert_eq!(
            resolve("x/beta", Some(&mine), Some(&shipped)).unwrap(),
            PathBuf::from("x/beta")
        );
        assert_eq!(
            find("nope", Some(&mine), Some(&shipped)).unwrap_err(),
            format!(
                "unknown experiment 'nope' (available: alpha, beta, gamma; yours go in {})",
                mine.display()
            )
        );
    }

    #[test]
    fn the_shipped_experiments_are_found() {
        let dir = shipped_dir().expect("the source tree's prompts/experiments");
        let names: Vec<String> = list(None, Some(&dir)).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["qa-models", "qa-temperature", "sentiment-shots"]);
    }

    fn info(id: &str, created: u64) -> RunInfo {
        RunInfo {
            id: id.into(),
            experiment: "e".into(),
            file: "/e.toml".into(),
            file_text: String::new(),
            model: "/models/m.gguf".into(),
            model_sha256: "00".into(),
            parallel: 1,
            limit: None,
            repeats: None,
            cells: Some(3),
            created_unix_ms: created,
        }
    }

    fn cell(key: &str, error: bool, cached: bool) -> CellResult {
        CellResult {
            error: error.then(|| "boom".to_string()),
            cached,
            ..CellResult::for_test(key)
        }
    }

    #[test]
    fn runs_are_listed_newest_first_and_a_broken_one_is_named() {
        let root = tempfile::tempdir().unwrap();
        let mut old = RunLog::create(root.path(), &info("old", 1_000)).unwrap();
        old.append(&cell("a", false, true)).unwrap();
        old.append(&cell("b", true, false)).unwrap();
        RunLog::create(root.path(), &info("new", 2_000)).unwrap();
        // A run.json cut short, and a folder with none: listed, not fatal.
        let broken = root.path().join("20260101-000000-000-broken");
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(broken.join(results::RUN_FILE), "{\"id\": \"x\", ").unwrap();
        std::fs::create_dir_all(root.path().join("empty")).unwrap();
        // A results file with a bad line in the middle.
        let mut bad = RunLog::create(root.path(), &info("bad-results", 500)).unwrap();
        bad.append(&cell("c", false, false)).unwrap();
        std::fs::write(
            root.path().join("bad-results").join(results::RESULTS_FILE),
            "not json\n{}\n",
        )
        .unwrap();
        std::fs::write(root.path().join("stray-file"), "").unwrap();

        let listed = runs(root.path());
        let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        // The broken run's time comes from its id (2026, after the others).
        assert_eq!(
            ids,
            [
                "20260101-000000-000-broken",
                "new",
                "old",
                "bad-results",
                "empty"
            ]
        );
        let old = &listed[2];
        assert_eq!(
            (old.cells_done, old.cells_total, old.errors, old.cached),
            (2, Some(3), 1, 1)
        );
        assert_eq!(old.model.as_deref(), Some(Path::new("/models/m.gguf")));
        assert!(old.problem.is_none());
        assert!(listed[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("not a run file"));
        assert!(listed[3]
            .problem
            .as_deref()
            .unwrap()
            .contains(":1: not a cell result"));
        assert!(listed[4]
            .problem
            .as_deref()
            .unwrap()
            .contains("cannot read"));
        assert!(runs(&root.path().join("missing")).is_empty());
    }
}
