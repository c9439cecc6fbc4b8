//! A run on disk: `<data>/experiments/<run id>/run.json` (what ran: the
//! experiment file's path and text, the model) and `results.jsonl`, one
//! cell per line, appended and synced as each cell finishes. A kill loses
//! at most the cells in flight; a line cut short by one is ignored when the
//! run is read back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::refinement::RefinedCell;
use super::score::CellScores;
use crate::engine::protocol::{ChatMessage, GenerationStats, StopReason};
use crate::store::atomic::write_atomic;

pub const RUN_FILE: &str = "run.json";
pub const RESULTS_FILE: &str = "results.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub experiment: String,
    /// The experiment file, and its text when the run started.
    pub file: PathBuf,
    pub file_text: String,
    pub model: PathBuf,
    /// SHA-256 of the model file: part of every cell's key.
    pub model_sha256: String,
    pub parallel: u32,
    /// `--limit` of the command line: only the first items.
    #[serde(default)]
    pub limit: Option<usize>,
    /// `--repeats` of the command line, in place of the file's `repeats`.
    #[serde(default)]
    pub repeats: Option<u32>,
    /// The run's cells when it started (absent in runs made before this
    /// was recorded).
    #[serde(default)]
    pub cells: Option<usize>,
    pub created_unix_ms: u64,
}

/// One finished cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub key: String,
    /// Index of the item in the dataset (after `limit`) and its line.
    pub item: usize,
    pub line: usize,
    pub variant: String,
    pub repeat: u32,
    pub seed: u32,
    /// The messages the model was given.
    pub input: Vec<ChatMessage>,
    pub output: String,
    pub stop_reason: Option<StopReason>,
    pub stats: Option<GenerationStats>,
    pub scores: CellScores,
    /// Why the cell has no output (it is an error cell).
    pub error: Option<String>,
    /// Taken from an earlier run with the same key.
    #[serde(default)]
    pub cached: bool,
    /// A refined cell's passes and the one kept: `output`, `stop_reason`
    /// and `scores` are the kept pass's, `stats` the sum over every
    /// generation of the loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refine: Option<RefinedCell>,
}

#[cfg(test)]
impl CellResult {
    /// A cell for unit tests: item 0 (line 1) of variant "v", repeat 0,
    /// no output, nothing scored; tests set what they need over it.
    pub(crate) fn for_test(key: &str) -> CellResult {
        CellResult {
            key: key.into(),
            item: 0,
            line: 1,
            variant: "v".into(),
            repeat: 0,
            seed: 0,
            input: vec![],
            output: String::new(),
            stop_reason: None,
            stats: None,
            scores: CellScores::default(),
            error: None,
            cached: false,
            refine: None,
        }
    }
}

pub fn experiments_dir() -> Result<PathBuf, String> {
    Ok(crate::paths::data_dir()?.join("experiments"))
}

/// An open run: its folder and the results file, appended to.
pub struct RunLog {
    pub dir: PathBuf,
    results: File,
}

impl RunLog {
    /// A new run folder under `root` with `info` written.
    pub fn create(root: &Path, info: &RunInfo) -> Result<RunLog, String> {
        let dir = root.join(&info.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let json = serde_json::to_string_pretty(info).map_err(|e| e.to_string())?;
        write_atomic(&dir.join(RUN_FILE), json.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", dir.join(RUN_FILE).display()))?;
        Self::open(&dir)
    }

    /// An existing run, to append to (resume).
    pub fn open(dir: &Path) -> Result<RunLog, String> {
        let path = dir.join(RESULTS_FILE);
        let results = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(RunLog {
            dir: dir.to_path_buf(),
            results,
        })
    }

    /// Appends one cell and syncs it to disk before returning.
    pub fn append(&mut self, result: &CellResult) -> Result<(), String> {
        let mut line = serde_json::to_string(result).map_err(|e| e.to_string())?;
        line.push('\n');
        self.results
            .write_all(line.as_bytes())
            .and_then(|()| self.results.sync_data())
            .map_err(|e| format!("cannot save a result in {}: {e}", self.dir.display()))
    }
}

/// The run's information.
pub fn read_info(dir: &Path) -> Result<RunInfo, String> {
    let path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a run file: {e}", path.display()))
}

/// The run's results in file order. A last line without its newline (a
/// write cut by a kill) is dropped, and the file is cut back to the last
/// whole line so that appending goes on cleanly; a bad line elsewhere is
/// an error naming it. Only for a run this process is about to append to
/// (or show): listing and comparing use [`peek_results`].
pub fn read_results(dir: &Path) -> Result<Vec<CellResult>, String> {
    let path = dir.join(RESULTS_FILE);
    let Some(text) = read_results_text(&path)? else {
        return Ok(Vec::new());
    };
    let whole = text.rfind('\n').map_or(0, |i| i + 1);
    if whole < text.len() {
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot repair {}: {e}", path.display()))?;
        file.set_len(whole as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot repair {}: {e}", path.display()))?;
    }
    parse_results(&text[..whole], &path)
}

/// The run's results as [`read_results`] gives them, without touching the
/// file: a run still being written (by another whet) is read as far as
/// its last whole line.
pub fn peek_results(dir: &Path) -> Result<Vec<CellResult>, String> {
    let path = dir.join(RESULTS_FILE);
    let Some(text) = read_results_text(&path)? else {
        return Ok(Vec::new());
    };
    let whole = text.rfind('\n').map_or(0, |i| i + 1);
    parse_results(&text[..whole], &path)
}

/// The results file's text; None when there is none yet.
fn read_results_text(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Whole lines of a results file, one cell each.
fn parse_results(text: &str, path: &Path) -> Result<Vec<CellResult>, String> {
    let mut results = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let result: CellResult = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: not a cell result: {e}", path.display(), index + 1))?;
        results.push(result);
    }
    Ok(results)
}

/// Results of every run under `root` by key, without error cells: what a
/// new run can reuse.
pub fn cached_results(root: &Path) -> std::collections::HashMap<String, CellResult> {
    let mut cache = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return cache;
    };
    for entry in entries.flatten() {
        if let Ok(results) = peek_results(&entry.path()) {
            for result in results.into_iter().filter(|r| r.error.is_none()) {
                cache.insert(result.key.clone(), result);
            }
        }
    }
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(key: &str) -> CellResult {
        CellResult {
            output: "out".into(),
            stop_reason: Some(StopReason::Eos),
            ..CellResult::for_test(key)
        }
    }

    #[test]
    fn appended_cells_read_back_and_a_torn_line_is_cut() {
        let root = tempfile::tempdir().unwrap();
        let info = RunInfo {
            id: "run-1".into(),
            experiment: "e".into(),
            file: "/e.toml".into(),
            file_text: "name = \"e\"".into(),
            model: "/m.gguf".into(),
            model_sha256: "ab".into(),
            parallel: 4,
            limit: None,
            repeats: None,
            cells: Some(2),
            created_unix_ms: 1,
        };
        let mut log = RunLog::create(root.path(), &info).unwrap();
        log.append(&result("a")).unwrap();
        log.append(&result("b")).unwrap();
        let dir = root.path().join("run-1");
        assert_eq!(read_info(&dir).unwrap(), info);
        // A kill in the middle of a write leaves half a line.
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join(RESULTS_FILE))
            .unwrap();
        file.write_all(b"{\"key\": \"c\", \"ite").unwrap();
        // Peeking (as listing does) reads the whole lines and leaves the
        // file as it is: another whet may be writing that line.
        let length = std::fs::metadata(dir.join(RESULTS_FILE)).unwrap().len();
        assert_eq!(peek_results(&dir).unwrap().len(), 2);
        assert_eq!(
            std::fs::metadata(dir.join(RESULTS_FILE)).unwrap().len(),
            length
        );
        let keys: Vec<String> = read_results(&dir)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(keys, ["a", "b"]);
        // Appending after the repair gives whole lines again.
        RunLog::open(&dir).unwrap().append(&result("d")).unwrap();
        let keys: Vec<String> = read_results(&dir)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(keys, ["a", "b", "d"]);
        assert_eq!(cached_results(root.path()).len(), 3);
    }
}
