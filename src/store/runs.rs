//! The history of prompt-workbench runs: one versioned, pretty-printed JSON
//! file per run in `<data>/runs/ID.json`, written atomically. A file whet
//! cannot read is listed with its problem and never rewritten or deleted.
//!
//! The same keeping serves any [`Record`] (refinement runs too): `save`,
//! `load` and `list` are generic over it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dates::{civil_from_days, days_from_civil};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::tokens::{write_pretty, KeptToken};
use crate::engine::beams::BeamSettings;
use crate::engine::protocol::{Beam, BeamStats, ChatMessage, GenerationStats, StopReason};
use crate::engine::SamplingParams;
use crate::text_position::line_col;

/// The format version this build writes; it reads this one and older.
/// Version 2 keeps the output's tokens with their probabilities, where
/// a forked run came from, and a beam search's sequences.
pub const RUN_FORMAT_VERSION: u32 = 2;

/// Characters of output shown in a list line.
const PREVIEW_CHARS: usize = 60;
/// Characters of the template name kept in an id.
const ID_NAME_CHARS: usize = 64;
const MAX_ID_LEN: usize = 120;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// `RUN_FORMAT_VERSION` when written by this build.
    pub version: u32,
    /// The file stem: unique and sortable by time (see `new_id`). On load
    /// the file name wins over what the file says.
    pub id: String,
    pub created_unix_ms: u64,
    /// The template's name.
    pub template: String,
    /// The exact template version that ran (TOML text).
    pub template_toml: String,
    /// The variable values given.
    pub values: BTreeMap<String, String>,
    /// 1-based numbers of the few-shot examples used, in order.
    pub examples: Vec<usize>,
    pub model: Option<PathBuf>,
    pub sampling: SamplingParams,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    /// What was sent.
    pub messages: Vec<ChatMessage>,
    pub output: String,
    pub outcome: RunOutcome,
    pub stats: Option<GenerationStats>,
    /// A run of a template that sets `num_beams`: the search and what it
    /// returned (`output` is then the best sequence's text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beam_search: Option<BeamSearchRun>,
    /// The output's tokens with their probabilities, when they were
    /// computed (from version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<KeptToken>>,
    /// The run this one was forked from with the lens (from version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkedFrom>,
}

/// A workbench run's beam search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeamSearchRun {
    pub settings: BeamSettings,
    /// Best first; empty while it runs.
    #[serde(default)]
    pub beams: Vec<Beam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<BeamStats>,
}

/// Where a forked run's output left its parent's: the parent's id and the
/// index of the token replaced by another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkedFrom {
    pub run: String,
    pub token: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOutcome {
    Done {
        reason: StopReason,
    },
    Failed {
        message: String,
    },
    /// Saved while still streaming (e.g. the app quit mid-run).
    Running,
}

/// One line per run for a list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The file stem: what `load` takes.
    pub id: String,
    /// Empty when the file cannot be read and does not say.
    pub template: String,
    /// For a file that cannot be read: the time in its id, else what the
    /// file says, else its modification time, else 0.
    pub created_unix_ms: u64,
    /// First non-blank line of the output, at most 60 characters (longer
    /// ones end with '…'), control characters shown as spaces.
    pub output_preview: String,
    /// `path:line:col: message` (or `path: message`) for a file that cannot
    /// be read; such a file is never deleted or rewritten.
    pub problem: Option<String>,
}

/// A kind of record kept one JSON file each, named by its id.
pub trait Record: Serialize + DeserializeOwned {
    /// How messages name one: "run", "refinement run".
    const KIND: &'static str;
    /// The format version this build writes; it reads this one and older.
    const VERSION: u32;
    fn id(&self) -> &str;
    fn set_id(&mut self, id: String);
    fn created_unix_ms(&self) -> u64;
    fn set_created_unix_ms(&mut self, unix_ms: u64);
    fn template(&self) -> &str;
    /// The text a list line previews.
    fn preview_text(&self) -> &str;
}

impl Record for RunRecord {
    const KIND: &'static str = "run";
    const VERSION: u32 = RUN_FORMAT_VERSION;
    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    fn created_unix_ms(&self) -> u64 {
        self.created_unix_ms
    }
    fn set_created_unix_ms(&mut self, unix_ms: u64) {
        self.created_unix_ms = unix_ms;
    }
    fn template(&self) -> &str {
        &self.template
    }
    fn preview_text(&self) -> &str {
        &self.output
    }
}

/// `<data dir>/runs` (the data dir respects `WHET_DATA_DIR`).
pub fn runs_dir() -> Result<PathBuf, String> {
    Ok(crate::paths::data_dir()?.join("runs"))
}

/// An id for a run started at `created_unix_ms`:
/// `YYYYMMDD-HHMMSS-mmm-TEMPLATE` in UTC, the template name kept to
/// `[A-Za-z0-9_-]` (other characters become '-') and 64 characters; without
/// the `-TEMPLATE` part when the name is empty.
pub fn new_id(created_unix_ms: u64, template: &str) -> String {
    let name: String = template
        .chars()
        .take(ID_NAME_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let time = time_stamp(created_unix_ms);
    if name.is_empty() {
        time
    } else {
        format!("{time}-{name}")
    }
}

/// [`save`], first giving a record without an id its creation time (now)
/// and an id made from it ([`new_id`]); a record saved before keeps both.
pub fn save_new<R: Record>(dir: &Path, record: &mut R) -> Result<PathBuf, String> {
    if record.id().is_empty() {
        let now = super::dates::now_unix_ms();
        record.set_created_unix_ms(now);
        record.set_id(new_id(now, record.template()));
    }
    save(dir, record)
}

/// Saves `record` as `<dir>/<id>.json` (atomically, creating `dir`) and
/// returns the path. Saving the same run again (same id, creation time and
/// template) replaces it; a file there that is another run or that whet
/// cannot read is refused and left untouched.
pub fn save<R: Record>(dir: &Path, record: &R) -> Result<PathBuf, String> {
    let kind = R::KIND;
    let path = run_path::<R>(dir, record.id())?;
    match std::fs::symlink_metadata(&path) {
        Ok(_) => {
            let existing = load::<R>(dir, record.id())
                .map_err(|error| format!("{error}; the {kind} was not saved"))?;
            if existing.created_unix_ms() != record.created_unix_ms()
                || existing.template() != record.template()
            {
                let path = path.display();
                return Err(format!(
                    "{path}: another {kind} is already saved as '{}'; the {kind} was not saved (the file was left untouched)",
                    record.id()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: cannot save the {kind}: {e}", path.display())),
    }
    // A run's tokens go on one line; the rest is pretty.
    let mut json = write_pretty(record)
        .map_err(|e| format!("{}: cannot save the {kind}: {e}", path.display()))?;
    json.push(b'\n');
    write_atomic(&path, &json)
        .map_err(|e| format!("{}: cannot save the {kind}: {e}", path.display()))?;
    Ok(path)
}

/// Reads `<dir>/<id>.json`. Errors name the file (and `line:col` for a file
/// that is not a valid run); a newer format version is refused.
pub fn load<R: Record>(dir: &Path, id: &str) -> Result<R, String> {
    let kind = R::KIND;
    let version = R::VERSION;
    let path = run_path::<R>(dir, id)?;
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{}: no such {kind}", path.display()),
        _ => format!("{}: cannot read the {kind}: {e}", path.display()),
    })?;
    let corrupt = |e: serde_json::Error| {
        let (line, column) = position(&text, &e);
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        format!(
            "{}:{line}:{column}: not a valid {kind} file: {message} (the file was left untouched)",
            path.display()
        )
    };
    // The version is checked before the shape: a newer file may have fields
    // this build does not know, and must be refused for its version.
    let value: serde_json::Value = serde_json::from_str(&text).map_err(corrupt)?;
    if let Some(found) = value.get("version").and_then(|v| v.as_u64()) {
        if found > u64::from(version) {
            return Err(format!(
                "{}: {kind} format version {found} is newer than this whet reads ({version}); update whet (the file was left untouched)",
                path.display()
            ));
        }
    }
    let mut record: R = serde_json::from_str(&text).map_err(corrupt)?;
    record.set_id(id.to_string());
    Ok(record)
}

/// Every run in `dir`, newest first (by creation time, then id); a missing
/// dir is an empty list. Only `*.json` files count, hidden ones (whet's
/// temporaries) excepted. Files that cannot be read are listed with
/// `problem` set and are not changed.
pub fn list<R: Record>(dir: &Path) -> Vec<RunSummary> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut runs: Vec<RunSummary> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let id = path.file_name()?.to_str()?.strip_suffix(".json")?;
            if id.is_empty() || id.starts_with('.') {
                return None;
            }
            let metadata = std::fs::metadata(&path).ok()?;
            if !metadata.is_file() {
                return None;
            }
            Some(summarize::<R>(dir, id, &path, metadata.modified().ok()))
        })
        .collect();
    runs.sort_by(|a, b| {
        b.created_unix_ms
            .cmp(&a.created_unix_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    runs
}

fn summarize<R: Record>(
    dir: &Path,
    id: &str,
    path: &Path,
    modified: Option<SystemTime>,
) -> RunSummary {
    let loaded = if is_safe_id(id) {
        load::<R>(dir, id)
    } else {
        Err(format!("{}: {}", path.display(), bad_id::<R>(id)))
    };
    match loaded {
        Ok(record) => RunSummary {
            id: id.to_string(),
            template: record.template().to_string(),
            created_unix_ms: record.created_unix_ms(),
            output_preview: preview(record.preview_text()),
            problem: None,
        },
        Err(problem) => {
            // What can still be told: a future version's file is valid JSON.
            let value: Option<serde_json::Value> = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            let field = |name: &str| value.as_ref().and_then(|v| v.get(name));
            let modified_ms = modified
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .and_then(|d| u64::try_from(d.as_millis()).ok());
            RunSummary {
                id: id.to_string(),
                template: field("template")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                created_unix_ms: created_from_id(id)
                    .or_else(|| field("created_unix_ms").and_then(|v| v.as_u64()))
                    .or(modified_ms)
                    .unwrap_or(0),
                output_preview: String::new(),
                problem: Some(problem),
            }
        }
    }
}

fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn bad_id<R: Record>(id: &str) -> String {
    format!(
        "invalid {} id '{id}': use letters, digits, '-', '_' and '.' (not starting with '.', at most {MAX_ID_LEN})",
        R::KIND
    )
}

fn run_path<R: Record>(dir: &Path, id: &str) -> Result<PathBuf, String> {
    if !is_safe_id(id) {
        return Err(bad_id::<R>(id));
    }
    Ok(dir.join(format!("{id}.json")))
}

/// serde_json's line and column, the column counted in characters like
/// every other `file:line:col` whet prints (serde_json counts bytes).
fn position(text: &str, error: &serde_json::Error) -> (usize, usize) {
    let line = error.line();
    let line_text = text
        .split('\n')
        .nth(line.saturating_sub(1))
        .unwrap_or_default();
    // line_col's column is 1 + the characters before the offset; serde_json's
    // is the number of bytes up to and including the one it stopped at.
    let (_, column) = line_col(line_text, error.column());
    (line, column - 1)
}

fn preview(output: &str) -> String {
    let line: String = output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= PREVIEW_CHARS {
        return line;
    }
    let mut preview: String = line.chars().take(PREVIEW_CHARS - 1).collect();
    preview.truncate(preview.trim_end().len());
    preview.push('…');
    preview
}

/// `YYYYMMDD-HHMMSS-mmm` in UTC.
fn time_stamp(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}-{:03}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        unix_ms % 1000
    )
}

/// The time at the start of an id made by `new_id`, if it starts with one.
pub fn created_from_id(id: &str) -> Option<u64> {
    let stamp = id.get(..19)?;
    if !(id.len() == 19 || id[19..].starts_with('-')) {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = stamp.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    let ms = digits(16..19)?;
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = u64::try_from(days_from_civil(year as i64, month as u32, day as u32)).ok()?;
    let unix_ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms;
    // Out-of-range fields (Feb 30, 25 o'clock, '-' in the wrong place) do
    // not survive the way back.
    (time_stamp(unix_ms) == stamp).then_some(unix_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::protocol::Role;

    fn record(created_unix_ms: u64, template: &str, output: &str) -> RunRecord {
        RunRecord {
            version: RUN_FORMAT_VERSION,
            id: new_id(created_unix_ms, template),
            created_unix_ms,
            template: template.to_string(),
            template_toml: format!("name = \"{template}\"\nprompt = \"Summarize: {{{{text}}}}\"\n"),
            values: BTreeMap::from([
                ("text".to_string(), "日本語 👩‍👩‍👧 \"quoted\"\nline".to_string()),
                ("tone".to_string(), String::new()),
            ]),
            examples: vec![2, 1],
            model: Some(PathBuf::from("/models/SmolLM2-135M-Instruct.Q4_1.gguf")),
            sampling: SamplingParams {
                seed: 7,
                ..SamplingParams::greedy()
            },
            max_tokens: Some(256),
            stop: vec!["\n\n".to_string()],
            messages: vec![
                ChatMessage::new(Role::System, "Be brief."),
                ChatMessage::new(Role::User, "Summarize: 日本語"),
            ],
            output: output.to_string(),
            outcome: RunOutcome::Done {
                reason: StopReason::Eos,
            },
            stats: Some(GenerationStats {
                prompt_tokens: 31,
                reused_tokens: 0,
                generated_tokens: 12,
                prompt_eval_ms: 40.5,
                ttft_ms: 52.25,
                generation_ms: 310.125,
                grammar: None,
            }),
            beam_search: None,
            tokens: None,
            forked_from: None,
        }
    }

    const T2026: u64 = 1_795_876_496_042; // 2026-11-28 14:34:56.042 UTC

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn round_trip_in_a_pretty_file_named_by_the_id() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data").join("runs");
        for outcome in [
            RunOutcome::Done {
                reason: StopReason::StopString,
            },
            RunOutcome::Failed {
                message: "the worker crashed".into(),
            },
            RunOutcome::Running,
        ] {
            let mut run = record(T2026, "summarize", "A short summary.\nMore.");
            run.outcome = outcome;
            let path = save(&dir, &run).unwrap();
            assert_eq!(path, dir.join("20261128-143456-042-summarize.json"));
            assert_eq!(load::<RunRecord>(&dir, &run.id).unwrap(), run);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.starts_with("{\n  \"version\": 2,\n"), "{text}");
            assert!(text.ends_with("}\n"));
        }
        let mut bare = record(0, "bare", "");
        bare.model = None;
        bare.max_tokens = None;
        bare.stats = None;
        bare.values.clear();
        save(&dir, &bare).unwrap();
        assert_eq!(load::<RunRecord>(&dir, &bare.id).unwrap(), bare);
        assert_eq!(
            file_names(&dir),
            [
                "19700101-000000-000-bare.json",
                "20261128-143456-042-summarize.json"
            ]
        );
    }

    #[test]
    fn the_file_name_is_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let run = record(T2026, "summarize", "x");
        let path = save(dir.path(), &run).unwrap();
        std::fs::rename(&path, dir.path().join("renamed.json")).unwrap();
        let loaded = load::<RunRecord>(dir.path(), "renamed").unwrap();
        assert_eq!(loaded.id, "renamed");
        assert_eq!(loaded.output, "x");
    }

    #[test]
    fn saving_the_same_run_again_replaces_it_but_another_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = record(T2026, "summarize", "partial");
        run.outcome = RunOutcome::Running;
        let path = save(dir.path(), &run).unwrap();
        run.output = "partial and finished".into();
        run.outcome = RunOutcome::Done {
            reason: StopReason::MaxTokens,
        };
        save(dir.path(), &run).unwrap();
        assert_eq!(load::<RunRecord>(dir.path(), &run.id).unwrap(), run);

        let bytes = std::fs::read(&path).unwrap();
        let mut other = record(T2026 + 1, "summarize", "different");
        other.id = run.id.clone();
        let error = save(dir.path(), &other).unwrap_err();
        assert!(error.contains("another run is already saved as"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(
            file_names(dir.path()),
            ["20261128-143456-042-summarize.json"]
        );
    }

    #[test]
    fn list_is_newest_first_by_creation_then_id() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list::<RunRecord>(&dir.path().join("missing")).is_empty());
        assert!(list::<RunRecord>(dir.path()).is_empty());
        // Saved out of order; the file times say nothing about the order.
        for run in [
            record(T2026, "b-tie", "tie b"),
            record(1_000, "oldest", "\n\n  first words  \nsecond line"),
            record(T2026 + 5_000, "newest", &"x".repeat(100)),
            record(T2026, "a-tie", ""),
        ] {
            save(dir.path(), &run).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a run").unwrap();
        std::fs::write(dir.path().join(".whet-abc.tmp"), "temporary").unwrap();
        std::fs::write(dir.path().join("run.json.tmp"), "temporary").unwrap();
        std::fs::write(dir.path().join(".hidden.json"), "{").unwrap();
        std::fs::create_dir(dir.path().join("folder.json")).unwrap();

        let runs = list::<RunRecord>(dir.path());
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "20261128-143501-042-newest",
                "20261128-143456-042-b-tie",
                "20261128-143456-042-a-tie",
                "19700101-000001-000-oldest",
            ]
        );
        assert_eq!(
            runs[0],
            RunSummary {
                id: "20261128-143501-042-newest".into(),
                template: "newest".into(),
                created_unix_ms: T2026 + 5_000,
                output_preview: format!("{}…", "x".repeat(59)),
                problem: None,
            }
        );
        assert_eq!(runs[1].output_preview, "tie b");
        assert_eq!(runs[2].output_preview, "");
        assert_eq!(runs[3].output_preview, "first words");
        assert_eq!(runs[3].created_unix_ms, 1_000);
        assert!(runs.iter().all(|r| r.problem.is_none()));
    }

    #[test]
    fn a_truncated_file_is_listed_with_its_position_and_never_changed() {
        let dir = tempfile::tempdir().unwrap();
        let good = record(T2026, "good", "fine");
        save(dir.path(), &good).unwrap();
        // A run cut short in the middle of its output, after non-ASCII text.
        let broken_run = record(T2026 - 60_000, "broken", "début — 日本語 and more");
        let full = serde_json::to_string_pretty(&broken_run).unwrap();
        let cut = full.find(" and more").unwrap();
        let truncated = &full[..cut];
        let broken = dir.path().join(format!("{}.json", broken_run.id));
        std::fs::write(&broken, truncated).unwrap();
        let last_line = truncated.rsplit('\n').next().unwrap();
        let line = truncated.matches('\n').count() + 1;
        let column = last_line.chars().count();
        assert_ne!(column, last_line.len(), "the test needs a multi-byte line");
        let expected = format!(
            "{}:{line}:{column}: not a valid run file: EOF while parsing a string (the file was left untouched)",
            broken.display()
        );

        let runs = list::<RunRecord>(dir.path());
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].id, good.id);
        assert_eq!(runs[1].id, broken_run.id);
        assert_eq!(runs[1].problem.as_deref(), Some(expected.as_str()));
        // Placed by the time in its id.
        assert_eq!(runs[1].created_unix_ms, T2026 - 60_000);
        assert_eq!(runs[1].output_preview, "");
        assert_eq!(
            load::<RunRecord>(dir.path(), &broken_run.id).unwrap_err(),
            expected
        );
        assert_eq!(std::fs::read_to_string(&broken).unwrap(), truncated);

        // Saving other runs, or this one over it, leaves it as it was.
        save(dir.path(), &record(T2026 + 1, "later", "y")).unwrap();
        let error = save(dir.path(), &broken_run).unwrap_err();
        assert!(error.contains(&expected), "{error}");
        assert_eq!(std::fs::read_to_string(&broken).unwrap(), truncated);
        assert_eq!(list::<RunRecord>(dir.path()).len(), 3);
        assert_eq!(std::fs::read_to_string(&broken).unwrap(), truncated);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let ascii = "{\n  \"output\": \"abc\", oops\n}\n";
        let wide = "{\n  \"output\": \"日本語\", oops\n}\n";
        std::fs::write(dir.path().join("ascii.json"), ascii).unwrap();
        std::fs::write(dir.path().join("wide.json"), wide).unwrap();
        // 'o' is the 20th character of line 2 in both, but serde_json
        // counts 26 bytes in the second.
        let bytes = serde_json::from_str::<serde_json::Value>(wide).unwrap_err();
        assert_eq!((bytes.line(), bytes.column()), (2, 26));
        for name in ["ascii", "wide"] {
            let error = load::<RunRecord>(dir.path(), name).unwrap_err();
            assert_eq!(
                error,
                format!(
                    "{}:2:20: not a valid run file: key must be a string (the file was left untouched)",
                    dir.path().join(format!("{name}.json")).display()
                )
            );
        }
        let problems: Vec<String> = list::<RunRecord>(dir.path())
            .into_iter()
            .filter_map(|r| r.problem)
            .collect();
        assert_eq!(problems.len(), 2);
        assert!(
            problems.iter().all(|p| p.contains(".json:2:20: ")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_beam_search_run_round_trips_and_a_version_1_file_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = record(T2026, "summarize", "best");
        run.beam_search = Some(BeamSearchRun {
            settings: BeamSettings::default(),
            beams: vec![Beam {
                text: "best".into(),
                tokens: vec![5, 6, 2],
                score: -0.5,
                logprob: -1.5,
                eos: true,
            }],
            stats: Some(BeamStats::default()),
        });
        save(dir.path(), &run).unwrap();
        assert_eq!(load::<RunRecord>(dir.path(), &run.id).unwrap(), run);

        let mut old = serde_json::to_value(record(T2026, "summarize", "x")).unwrap();
        old["version"] = 1.into();
        old.as_object_mut().unwrap().remove("beam_search");
        std::fs::write(dir.path().join("old.json"), old.to_string()).unwrap();
        let loaded = load::<RunRecord>(dir.path(), "old").unwrap();
        assert_eq!(loaded.version, 1);
        assert_eq!(loaded.beam_search, None);
    }

    #[test]
    fn tokens_and_the_fork_round_trip_and_version_1_files_still_load() {
        use crate::store::tokens::{KeptAlternative, MilliNats};
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let mut run = record(T2026, "summarize", "Hi!");
        run.tokens = Some(vec![KeptToken {
            id: 5,
            text: "Hi!".into(),
            logprob: MilliNats(-120),
            entropy: Some(MilliNats(640)),
            top: vec![KeptAlternative {
                id: 5,
                text: "Hi!".into(),
                logprob: MilliNats(-120),
            }],
        }]);
        run.forked_from = Some(ForkedFrom {
            run: "20261128-143400-000-summarize".into(),
            token: 3,
        });
        let path = save(dir, &run).unwrap();
        assert_eq!(load::<RunRecord>(dir, &run.id).unwrap(), run);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"tokens\": [[5,\"Hi!\",-120,640,[[5,\"Hi!\",-120]]]],\n"),
            "{text}"
        );
        // A file of version 1 (no tokens, no fork) reads as before.
        let mut old = record(T2026 + 1, "summarize", "old");
        old.version = 1;
        let mut json: serde_json::Value = serde_json::to_value(&old).unwrap();
        json.as_object_mut().unwrap().remove("tokens");
        std::fs::write(
            dir.join(format!("{}.json", old.id)),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
        let loaded = load::<RunRecord>(dir, &old.id).unwrap();
        assert_eq!(
            (loaded.version, loaded.tokens, loaded.forked_from),
            (1, None, None)
        );
    }

    #[test]
    fn a_newer_version_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.json");
        let text =
            "{\"version\": 3, \"template\": \"summarize\", \"created_unix_ms\": 5, \"tabs\": []}";
        std::fs::write(&path, text).unwrap();
        let error = load::<RunRecord>(dir.path(), "future").unwrap_err();
        assert_eq!(
            error,
            format!(
                "{}: run format version 3 is newer than this whet reads (2); update whet (the file was left untouched)",
                path.display()
            )
        );
        let runs = list::<RunRecord>(dir.path());
        assert_eq!(runs[0].problem.as_deref(), Some(error.as_str()));
        assert_eq!(runs[0].template, "summarize");
        assert_eq!(runs[0].created_unix_ms, 5);
        let mut run = record(5, "summarize", "x");
        run.id = "future".into();
        assert!(save(dir.path(), &run).unwrap_err().contains("newer"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn wrong_fields_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut value = serde_json::to_value(record(T2026, "t", "x")).unwrap();
        value["colour"] = 3.into();
        std::fs::write(dir.path().join("a.json"), value.to_string()).unwrap();
        let error = load::<RunRecord>(dir.path(), "a").unwrap_err();
        assert!(error.contains("unknown field `colour`"), "{error}");
        value.as_object_mut().unwrap().remove("colour");
        value["outcome"] = serde_json::json!({"kind": "exploded"});
        std::fs::write(dir.path().join("a.json"), value.to_string()).unwrap();
        let error = load::<RunRecord>(dir.path(), "a").unwrap_err();
        assert!(error.contains("unknown variant `exploded`"), "{error}");
        assert_eq!(
            load::<RunRecord>(dir.path(), "absent").unwrap_err(),
            format!("{}: no such run", dir.path().join("absent.json").display())
        );
    }

    #[test]
    fn unsafe_ids_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("runs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(root.path().join("x.json"), "{}").unwrap();
        for bad in [
            "",
            "../x",
            "a/b",
            "/abs",
            ".hidden",
            "a\\b",
            "sp ace",
            "é",
            &"a".repeat(121),
        ] {
            let mut run = record(T2026, "t", "x");
            run.id = bad.to_string();
            let error = save(&dir, &run).unwrap_err();
            assert!(error.starts_with("invalid run id"), "{bad}: {error}");
            let error = load::<RunRecord>(&dir, bad).unwrap_err();
            assert!(error.starts_with("invalid run id"), "{bad}: {error}");
        }
        assert!(file_names(&dir).is_empty());
        assert_eq!(file_names(root.path()), ["runs", "x.json"]);
        assert_eq!(
            std::fs::read_to_string(root.path().join("x.json")).unwrap(),
            "{}"
        );
        // A file of another name in the folder is listed, not opened.
        std::fs::write(dir.join("my run.json"), "{}").unwrap();
        let problem = list::<RunRecord>(&dir).remove(0).problem.unwrap();
        assert!(problem.contains("invalid run id 'my run'"), "{problem}");
    }

    #[test]
    fn ids_are_utc_times_and_the_template_name() {
        assert_eq!(new_id(0, "NAME"), "19700101-000000-000-NAME");
        // date -u -d @1795876496 → 2026-11-28 14:34:56
        assert_eq!(new_id(T2026, "summarize"), "20261128-143456-042-summarize");
        assert_eq!(new_id(951_782_400_123, "leap"), "20000229-000000-123-leap");
        // date -u -d @4102444799 → 2099-12-31 23:59:59
        assert_eq!(new_id(4_102_444_799_999, "x"), "20991231-235959-999-x");
        assert_eq!(
            new_id(0, "a b/../é_ok-1"),
            "19700101-000000-000-a-b-----_ok-1"
        );
        assert_eq!(new_id(0, ""), "19700101-000000-000");
        let long = new_id(0, &"n".repeat(500));
        assert!(is_safe_id(&long), "{long}");
        // Sortable by time: later runs have greater ids.
        assert!(new_id(T2026, "a") > new_id(T2026 - 1, "z"));
        assert!(new_id(10_000, "a") > new_id(9_999, "z"));
    }

    #[test]
    fn times_are_read_back_from_ids() {
        for ms in [
            0,
            1,
            999,
            86_399_999,
            951_782_400_123,
            T2026,
            4_102_444_799_999,
        ] {
            assert_eq!(created_from_id(&new_id(ms, "t")), Some(ms), "{ms}");
            assert_eq!(created_from_id(&new_id(ms, "")), Some(ms), "{ms}");
        }
        for bad in [
            "renamed",
            "20261128-143456-042x",
            "20260230-000000-000",
            "20261128-250000-000-t",
            "2026112-1434560-042-t",
            "19691231-235959-999",
            "+0261128-143456-042",
        ] {
            assert_eq!(created_from_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn previews_are_cut_on_character_boundaries() {
        assert_eq!(preview(""), "");
        assert_eq!(preview("\n \n"), "");
        assert_eq!(preview("  one\ttab\r\nnext"), "one tab");
        assert_eq!(preview(&"a".repeat(60)), "a".repeat(60));
        let kanji = preview(&"日本語".repeat(30));
        assert_eq!(kanji.chars().count(), 60);
        assert_eq!(
            kanji,
            format!(
                "{}…",
                "日本語".repeat(30).chars().take(59).collect::<String>()
            )
        );
        let family = "👩‍👩‍👧".repeat(40);
        let cut = preview(&family);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
        assert!(family.starts_with(cut.trim_end_matches('…')));
        assert_eq!(
            preview(&format!("{}tail", "é ".repeat(40))).chars().last(),
            Some('…')
        );
        let spaced = preview(&format!("{}{}", "b".repeat(58), "   more words"));
        assert_eq!(spaced, format!("{}…", "b".repeat(58)));
    }

    #[test]
    fn save_new_gives_a_new_record_its_time_and_id_and_keeps_an_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = record(0, "summarize", "x");
        run.id = String::new();
        let before = crate::store::dates::now_unix_ms();
        let path = save_new(dir.path(), &mut run).unwrap();
        let after = crate::store::dates::now_unix_ms();
        assert!((before..=after).contains(&run.created_unix_ms));
        assert_eq!(run.id, new_id(run.created_unix_ms, "summarize"));
        assert_eq!(path, dir.path().join(format!("{}.json", run.id)));
        let (id, created) = (run.id.clone(), run.created_unix_ms);
        run.output = "y".into();
        save_new(dir.path(), &mut run).unwrap();
        assert_eq!(
            (run.id.as_str(), run.created_unix_ms),
            (id.as_str(), created)
        );
        assert_eq!(load::<RunRecord>(dir.path(), &id).unwrap().output, "y");
    }
}
