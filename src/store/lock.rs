//! One whet per session: the instance that has a session open holds an
//! exclusive lock on `.NAME.lock` beside it, so a second instance is told
//! instead of silently overwriting the first one's turns.
//!
//! The lock is the kernel's (`flock`), not the file's existence: when a
//! holder dies, even by kill -9, the kernel drops its lock, so a stale lock
//! file never blocks anyone. The holder writes its pid into the file, only
//! to say who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An exclusive lock on a session, released (and its file removed) on drop.
#[derive(Debug)]
pub struct SessionLock {
    path: PathBuf,
    file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("session '{name}' is open in another whet{}; close it there, or open another session", holder_text(*pid))]
    Held { name: String, pid: Option<u32> },
    #[error("{path}: cannot lock the session: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

/// The lock file of session `name` in the sessions folder `dir`: hidden, so
/// the session list never shows it.
pub fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.lock"))
}

impl SessionLock {
    /// Takes the lock of session `name` in `dir`, or says who holds it.
    /// Never waits.
    pub fn acquire(dir: &Path, name: &str) -> Result<Self, LockError> {
        let path = lock_path(dir, name);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        name: name.to_string(),
                        pid: read_pid(&mut file),
                    })
                }
                Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
            }
            // A holder removes the file as it lets go: if that happened
            // between our open and our lock, we hold a lock on a file no
            // one else can see, and must take the new one instead.
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0).map_err(io)?;
            write!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(Self { path, file });
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        // Removed while still locked, so no one can take the old file in
        // between; the lock itself goes with the descriptor.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Who holds the lock of session `name`, if anyone: `Some(pid)` (the pid
/// when the holder wrote one). Creates nothing.
pub fn holder(dir: &Path, name: &str) -> Option<Option<u32>> {
    let path = lock_path(dir, name);
    let mut file = OpenOptions::new().read(true).open(path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(_) => Some(read_pid(&mut file)),
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = SessionLock::acquire(dir.path(), "same").unwrap();
        assert_eq!(holder(dir.path(), "same"), Some(Some(std::process::id())));
        let error = SessionLock::acquire(dir.path(), "same").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "session 'same' is open in another whet (pid {}); close it there, or open another session",
                std::process::id()
            )
        );
        // Other sessions are not affected.
        let other = SessionLock::acquire(dir.path(), "other").unwrap();
        drop(first);
        assert!(!lock_path(dir.path(), "same").exists());
        assert_eq!(holder(dir.path(), "same"), None);
        let again = SessionLock::acquire(dir.path(), "same").unwrap();
        drop((again, other));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        // What kill -9 leaves: the file with a pid, and no lock on it.
        std::fs::write(lock_path(dir.path(), "s"), "999999").unwrap();
        assert_eq!(holder(dir.path(), "s"), None);
        let lock = SessionLock::acquire(dir.path(), "s").unwrap();
        assert_eq!(
            std::fs::read_to_string(lock.path()).unwrap(),
            std::process::id().to_string()
        );
    }
}
