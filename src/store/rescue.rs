//! The last resort when the session file cannot be written (a full disk, a
//! read-only or missing data folder): a copy of the session somewhere else
//! that is writable, so quitting never loses the turns on screen.

use std::path::PathBuf;

use super::session::{self, Session};
use crate::store::dates::now_unix_ms;

/// The folder name inside each candidate place.
const RESCUE_DIR: &str = "whet-rescue";

/// Where rescue copies go, in order of preference: the temporary folder
/// (`$TMPDIR`), the home folder, the current folder.
pub fn candidates() -> Vec<PathBuf> {
    let mut places = vec![std::env::temp_dir().join(RESCUE_DIR)];
    if let Some(home) = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()) {
        places.push(home.join(RESCUE_DIR));
    }
    if let Ok(here) = std::env::current_dir() {
        places.push(here.join(RESCUE_DIR));
    }
    places
}

/// Writes `session` as `NAME-<unix ms>.json` into the first candidate
/// folder that takes it; a rescue file loads like any session file.
/// On failure, says what went wrong in each place.
pub fn write_copy(session: &Session, places: &[PathBuf]) -> Result<PathBuf, String> {
    let file = format!("{}-{}.json", session.name, now_unix_ms());
    let mut failures = Vec::new();
    for place in places {
        let path = place.join(&file);
        match session::save(&path, session) {
            Ok(()) => return Ok(path),
            Err(error) => failures.push(error.to_string()),
        }
    }
    Err(failures.join("; "))
}

/// The first candidate, to name in the question before quitting.
pub fn first_place(places: &[PathBuf]) -> String {
    places
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "a writable folder".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::protocol::Role;
    use crate::store::session::StoredMessage;

    #[test]
    fn the_copy_goes_to_the_first_place_that_takes_it_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("a-file");
        std::fs::write(&blocked, "").unwrap();
        let mut session = Session::new("talk");
        session
            .messages
            .push(StoredMessage::new(Role::User, "keep me"));
        let places = [blocked.join(RESCUE_DIR), dir.path().join("second")];
        let path = write_copy(&session, &places).unwrap();
        assert!(
            path.starts_with(dir.path().join("second")),
            "{}",
            path.display()
        );
        assert_eq!(session::load(&path).unwrap(), session);

        let error = write_copy(&session, &places[..1]).unwrap_err();
        assert!(error.contains("cannot save the session"), "{error}");
    }
}
