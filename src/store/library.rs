//! The sessions folder as a list the user manages: list, rename, delete.
//! A file whet cannot read is listed with its problem and never changed;
//! deleting moves a session to `.trash` instead of unlinking it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::session::{self, session_path, SessionError};
use crate::engine::protocol::Role;

/// The folder inside the sessions folder that deleted sessions move to.
pub const TRASH_DIR: &str = ".trash";

const TITLE_CHARS: usize = 60;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    /// The file name without `.json`: what `rename` and `delete` take.
    pub name: String,
    pub path: PathBuf,
    pub modified: Option<SystemTime>,
    pub messages: usize,
    /// First line of the first user message, shortened to ~60 chars
    /// (empty when there is none).
    pub title: String,
    /// Some(message) when the file cannot be opened (corrupt, future
    /// version): still listed so the user sees it, never touched.
    pub problem: Option<String>,
}

/// Every `*.json` in `dir` (a missing dir is an empty list), newest first.
/// Unreadable files are listed with `problem` set.
pub fn list(dir: &Path) -> Vec<SessionSummary> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sessions: Vec<SessionSummary> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let name = path.file_name()?.to_str()?;
            let name = name.strip_suffix(".json")?;
            // Hidden files are whet's temporaries, never sessions.
            if name.is_empty() || name.starts_with('.') {
                return None;
            }
            let metadata = std::fs::metadata(&path).ok()?;
            if !metadata.is_file() {
                return None;
            }
            Some(summarize(name.to_string(), path, metadata.modified().ok()))
        })
        .collect();
    sessions.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| a.name.cmp(&b.name))
    });
    sessions
}

fn summarize(name: String, path: PathBuf, modified: Option<SystemTime>) -> SessionSummary {
    let mut summary = SessionSummary {
        name,
        path,
        modified,
        messages: 0,
        title: String::new(),
        problem: None,
    };
    match session::load(&summary.path) {
        Ok(session) => {
            summary.messages = session.messages.len();
            summary.title = session
                .messages
                .iter()
                .find(|m| m.role == Role::User)
                .map(|m| title_of(&m.text))
                .unwrap_or_default();
        }
        Err(error) => summary.problem = Some(error.to_string()),
    }
    summary
}

fn title_of(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() <= TITLE_CHARS {
        return line.to_string();
    }
    let mut title: String = line.chars().take(TITLE_CHARS - 1).collect();
    title.truncate(title.trim_end().len());
    title.push('…');
    title
}

/// Why a session could not be loaded, saying that the file was not changed.
fn refusal(error: SessionError) -> String {
    let message = error.to_string();
    if message.contains("left untouched") {
        message
    } else {
        format!("{message} (the file was left untouched)")
    }
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = session_path(dir, name).map_err(|e| e.to_string())?;
    match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => Ok(path),
        Ok(_) => Err(format!("{}: not a session file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("no session named '{name}'"))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Renames session `from` to `to`: refuses an invalid new name or an
/// existing target; refuses a file that does not load (corrupt, future
/// version), leaving it untouched; writes the new file atomically with its
/// `name` field updated, then removes the old one. Returns the new path.
pub fn rename(dir: &Path, from: &str, to: &str) -> Result<PathBuf, String> {
    let target = session_path(dir, to).map_err(|e| e.to_string())?;
    let source = existing(dir, from)?;
    if from == to {
        return Ok(source);
    }
    // symlink_metadata: even a dangling link there is something not to replace.
    if std::fs::symlink_metadata(&target).is_ok() {
        return Err(format!("a session named '{to}' already exists"));
    }
    let mut loaded = session::load(&source).map_err(refusal)?;
    loaded.name = to.to_string();
    session::save(&target, &loaded).map_err(|e| e.to_string())?;
    std::fs::remove_file(&source).map_err(|e| {
        format!(
            "saved as {}, but the old file {} could not be removed: {e}",
            target.display(),
            source.display()
        )
    })?;
    Ok(target)
}

/// Deletes session `name` by moving it to `dir/.trash/NAME-<unix secs>.json`
/// (recoverable: see `deleted_message`); never unlinks user data. A file
/// that does not load can be deleted too: its bytes move unchanged.
/// Returns where the file went.
pub fn delete(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let source = existing(dir, name)?;
    let trash = dir.join(TRASH_DIR);
    std::fs::create_dir_all(&trash)
        .map_err(|e| format!("{}: cannot create the trash folder: {e}", trash.display()))?;
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Never replace an earlier deletion of the same name.
    let target = (0..)
        .map(|n| match n {
            0 => trash.join(format!("{name}-{seconds}.json")),
            n => trash.join(format!("{name}-{seconds}-{n}.json")),
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("an unused file name");
    // A rename within the same folder tree: the bytes are never rewritten.
    std::fs::rename(&source, &target).map_err(|e| {
        format!(
            "{}: cannot move to {}: {e} (the file was left untouched)",
            source.display(),
            target.display()
        )
    })?;
    for folder in [dir, trash.as_path()] {
        if let Ok(folder) = std::fs::File::open(folder) {
            let _ = folder.sync_all();
        }
    }
    Ok(target)
}

/// What to tell the user after `delete`: where the session went and how to
/// get it back.
pub fn deleted_message(name: &str, moved_to: &Path) -> String {
    format!(
        "deleted '{name}': moved to {} (move it back into the sessions folder as {name}.json to restore it)",
        moved_to.display()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::session::{Session, StoredMessage};

    fn save(dir: &Path, name: &str, texts: &[&str]) -> PathBuf {
        let mut session = Session::new(name);
        for (i, text) in texts.iter().enumerate() {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            session.messages.push(StoredMessage::new(role, *text));
        }
        let path = session_path(dir, name).unwrap();
        session::save(&path, &session).unwrap();
        path
    }

    fn set_modified(path: &Path, seconds: u64) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap();
    }

    const CORRUPT: &str =
        "{\n  \"version\": 1,\n  \"name\": \"broken\",\n  \"messages\": [ oops ]\n}\n";

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_missing_folder_is_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&dir.path().join("nope")).is_empty());
    }

    #[test]
    fn list_is_newest_first_and_shows_unreadable_files_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(100);
        let old = save(
            dir.path(),
            "old",
            &["\n  first line  \nsecond line", "reply"],
        );
        let new = save(dir.path(), "new", &[&long]);
        let empty = save(dir.path(), "empty", &[]);
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, CORRUPT).unwrap();
        let future = dir.path().join("future.json");
        std::fs::write(
            &future,
            "{\"version\": 99, \"name\": \"future\", \"tabs\": []}",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a session").unwrap();
        std::fs::write(dir.path().join(".whet-123.tmp"), "temporary").unwrap();
        std::fs::create_dir(dir.path().join(TRASH_DIR)).unwrap();
        std::fs::create_dir(dir.path().join("folder.json")).unwrap();
        set_modified(&old, 1_000);
        set_modified(&new, 3_000);
        set_modified(&empty, 2_000);
        set_modified(&broken, 4_000);
        set_modified(&future, 500);

        let sessions = list(dir.path());
        let order: Vec<&str> = sessions.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["broken", "new", "empty", "old", "future"]);

        let broken_summary = &sessions[0];
        assert_eq!(broken_summary.path, broken);
        let problem = broken_summary.problem.as_deref().unwrap();
        assert!(
            problem.contains(&format!("{}:4:17:", broken.display())),
            "{problem}"
        );
        assert!(problem.contains("left untouched"), "{problem}");
        assert_eq!(std::fs::read_to_string(&broken).unwrap(), CORRUPT);

        assert_eq!(sessions[1].title, format!("{}…", "x".repeat(59)));
        assert_eq!(sessions[1].messages, 1);
        assert_eq!(sessions[1].problem, None);
        assert_eq!(sessions[2].title, "");
        assert_eq!(sessions[2].messages, 0);
        assert_eq!(sessions[3].title, "first line");
        assert_eq!(sessions[3].messages, 2);
        assert_eq!(
            sessions[3].modified,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
        );
        let problem = sessions[4].problem.as_deref().unwrap();
        assert!(problem.contains("version 99 is newer"), "{problem}");
    }

    #[test]
    fn titles_are_shortened_on_character_boundaries() {
        assert_eq!(title_of("short"), "short");
        let long = "日本語".repeat(30);
        let title = title_of(&long);
        assert_eq!(title.chars().count(), 60);
        assert!(title.ends_with('…'));
        assert_eq!(
            title_of(&format!("{} tail", "a ".repeat(40)))
                .chars()
                .last(),
            Some('…')
        );
    }

    #[test]
    fn rename_writes_the_new_name_and_removes_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let old = save(dir.path(), "before", &["hello"]);
        let new = rename(dir.path(), "before", "after").unwrap();
        assert_eq!(new, dir.path().join("after.json"));
        assert!(!old.exists());
        let loaded = session::load(&new).unwrap();
        assert_eq!(loaded.name, "after");
        assert_eq!(loaded.messages, [StoredMessage::new(Role::User, "hello")]);
        assert_eq!(names(dir.path()), ["after.json"]);
    }

    #[test]
    fn rename_to_an_existing_name_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = save(dir.path(), "a", &["one"]);
        let b = save(dir.path(), "b", &["two"]);
        let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(
            rename(dir.path(), "a", "b").unwrap_err(),
            "a session named 'b' already exists"
        );
        assert_eq!(std::fs::read(&a).unwrap(), a_bytes);
        assert_eq!(std::fs::read(&b).unwrap(), b_bytes);
        assert_eq!(names(dir.path()), ["a.json", "b.json"]);
    }

    #[test]
    fn rename_to_a_bad_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = save(dir.path(), "a", &["one"]);
        let bytes = std::fs::read(&a).unwrap();
        for bad in ["", "../b", ".hidden", "a b", "x/y"] {
            let error = rename(dir.path(), "a", bad).unwrap_err();
            assert!(error.contains("invalid session name"), "{bad}: {error}");
        }
        assert_eq!(std::fs::read(&a).unwrap(), bytes);
        assert_eq!(names(dir.path()), ["a.json"]);
    }

    #[test]
    fn rename_of_a_missing_session_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            rename(dir.path(), "ghost", "b").unwrap_err(),
            "no session named 'ghost'"
        );
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn rename_of_an_unreadable_file_is_refused_and_leaves_it_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, CORRUPT).unwrap();
        let error = rename(dir.path(), "broken", "fixed").unwrap_err();
        assert!(error.contains(":4:17:"), "{error}");
        assert!(error.contains("left untouched"), "{error}");
        assert_eq!(std::fs::read_to_string(&broken).unwrap(), CORRUPT);

        let future = dir.path().join("future.json");
        let text = "{\"version\": 99, \"name\": \"future\"}";
        std::fs::write(&future, text).unwrap();
        let error = rename(dir.path(), "future", "past").unwrap_err();
        assert!(error.contains("newer"), "{error}");
        assert!(error.contains("left untouched"), "{error}");
        assert_eq!(std::fs::read_to_string(&future).unwrap(), text);
        assert_eq!(names(dir.path()), ["broken.json", "future.json"]);
    }

    #[test]
    fn delete_moves_the_file_to_the_trash_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(dir.path(), "gone", &["keep me"]);
        let bytes = std::fs::read(&path).unwrap();
        let first = delete(dir.path(), "gone").unwrap();
        assert!(!path.exists());
        assert_eq!(first.parent().unwrap(), dir.path().join(TRASH_DIR));
        let file = first.file_name().unwrap().to_str().unwrap();
        assert!(
            file.starts_with("gone-") && file.ends_with(".json"),
            "{file}"
        );
        assert_eq!(std::fs::read(&first).unwrap(), bytes);
        assert!(list(dir.path()).is_empty());
        assert!(deleted_message("gone", &first).contains("restore"));

        // A second session of the same name deleted in the same second keeps both.
        save(dir.path(), "gone", &["again"]);
        let second = delete(dir.path(), "gone").unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), bytes);
        assert!(session::load(&second).is_ok());
    }

    #[test]
    fn delete_moves_an_unreadable_file_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, CORRUPT).unwrap();
        let moved = delete(dir.path(), "broken").unwrap();
        assert_eq!(std::fs::read_to_string(&moved).unwrap(), CORRUPT);
        assert_eq!(
            delete(dir.path(), "broken").unwrap_err(),
            "no session named 'broken'"
        );
        assert!(delete(dir.path(), "../escape").is_err());
    }
}
