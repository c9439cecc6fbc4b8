//! The driver's hold on the session files: the lock of the open session,
//! and opening, starting, renaming and deleting sessions without ever
//! touching one that another whet has open.

use std::path::{Path, PathBuf};

use crate::store::library;
use crate::store::lock::SessionLock;
use crate::store::session::{self, Session};

/// The sessions folder and the lock on the session open in this whet.
pub struct SessionFiles {
    pub dir: PathBuf,
    lock: SessionLock,
}

impl SessionFiles {
    pub fn new(dir: PathBuf, lock: SessionLock) -> Self {
        Self { dir, lock }
    }

    /// Writes `current` (the open session) to its file.
    pub fn save(&self, current: &Session) -> Result<(), String> {
        session::session_path(&self.dir, &current.name)
            .and_then(|path| session::save(&path, current))
            .map_err(|e| e.to_string())
    }

    /// Opens session `name` in place of `current`: refused while `current`
    /// cannot be saved (its turns would be lost) or while another whet
    /// has `name` open.
    pub fn open(&mut self, current: &Session, name: &str) -> Result<Session, String> {
        self.save_before_leaving(current)?;
        let lock = SessionLock::acquire(&self.dir, name).map_err(|e| e.to_string())?;
        let path = session::session_path(&self.dir, name).map_err(|e| e.to_string())?;
        let loaded = session::load(&path).map_err(|e| e.to_string())?;
        self.lock = lock;
        Ok(loaded)
    }

    /// Writes a new session and makes it the open one in place of
    /// `current`, with the same guard as `open`.
    pub fn start(&mut self, current: &Session, new: &Session) -> Result<(), String> {
        self.save_before_leaving(current)?;
        let lock = SessionLock::acquire(&self.dir, &new.name).map_err(|e| e.to_string())?;
        self.save(new)?;
        self.lock = lock;
        Ok(())
    }

    /// The open session must reach its file before another replaces it on
    /// screen: its turns would be lost otherwise.
    fn save_before_leaving(&self, current: &Session) -> Result<(), String> {
        self.save(current)
            .map_err(|e| format!("this session is not saved, so it stays open: {e}"))
    }

    /// Renames session `from` to `to`; `current` is the open session's
    /// name. The target's lock is taken first, so no other whet can start
    /// a session of that name meanwhile.
    pub fn rename(&mut self, current: &str, from: &str, to: &str) -> Result<PathBuf, String> {
        let to_lock = SessionLock::acquire(&self.dir, to).map_err(|e| e.to_string())?;
        if from == current {
            let path = library::rename(&self.dir, from, to)?;
            self.lock = to_lock;
            return Ok(path);
        }
        let _from_lock = SessionLock::acquire(&self.dir, from).map_err(|e| e.to_string())?;
        library::rename(&self.dir, from, to)
    }

    /// Moves session `name` (not the open one) to the trash, unless another
    /// whet has it open.
    pub fn delete(&self, name: &str) -> Result<PathBuf, String> {
        let _lock = SessionLock::acquire(&self.dir, name).map_err(|e| e.to_string())?;
        library::delete(&self.dir, name)
    }
}

/// A name for a new session that no file and no running whet uses yet:
/// `base`, else `base-2`, `base-3`, …
pub fn unused_name(dir: &Path, base: &str) -> String {
    (1..1000)
        .map(|n| match n {
            1 => base.to_string(),
            n => format!("{base}-{n}"),
        })
        .find(|name| {
            session::session_path(dir, name).is_ok_and(|path| !path.exists())
                && crate::store::lock::holder(dir, name).is_none()
        })
        .unwrap_or_else(|| base.to_string())
}

/// Saves of a reply while it streams: at most every `MIN_INTERVAL`, and
/// never more often than `COST_FACTOR` times what the last save took, so a
/// large session spends at most 1/COST_FACTOR of the time being saved.
#[derive(Debug, Default)]
pub struct StreamSaves {
    last: Option<(std::time::Instant, std::time::Duration)>,
    saved_len: usize,
}

impl StreamSaves {
    pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
    pub const COST_FACTOR: u32 = 20;

    /// Whether the reply, now `len` bytes, should be saved at `now`.
    pub fn due(&self, now: std::time::Instant, len: usize) -> bool {
        if len == self.saved_len {
            return false;
        }
        match self.last {
            None => true,
            Some((at, cost)) => now >= at + Self::MIN_INTERVAL.max(cost * Self::COST_FACTOR),
        }
    }

    /// A save started at `at` took `cost`, with the reply `len` bytes long.
    pub fn saved(&mut self, at: std::time::Instant, cost: std::time::Duration, len: usize) {
        self.last = Some((at, cost));
        self.saved_len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn stream_saves_wait_for_growth_and_for_the_longer_of_two_seconds_and_twenty_costs() {
        let start = Instant::now();
        let mut saves = StreamSaves::default();
        assert!(saves.due(start, 5));
        saves.saved(start, Duration::from_millis(10), 5);
        assert!(!saves.due(start + Duration::from_secs(10), 5), "no growth");
        assert!(!saves.due(start + Duration::from_millis(1999), 9));
        assert!(saves.due(start + Duration::from_secs(2), 9));
        // A save of 300 ms (a very large session) spaces them 6 s apart.
        saves.saved(start, Duration::from_millis(300), 9);
        assert!(!saves.due(start + Duration::from_millis(5999), 12));
        assert!(saves.due(start + Duration::from_secs(6), 12));
    }
}
