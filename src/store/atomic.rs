//! Atomic file replacement: a temporary file in the same directory, written,
//! flushed to disk, then renamed over the target. A crash at any point leaves
//! either the old file or the new one, never a mix.

use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Same directory: a rename across filesystems would not be atomic.
    let mut temp = temporary_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable only once the directory is synced.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The names of whet's temporaries: hidden, so no list shows them, and
/// recognisable, so that those a killed save left can be swept.
const TEMPORARY_PREFIX: &str = ".whet-";
const TEMPORARY_SUFFIX: &str = ".tmp";

fn temporary_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .suffix(TEMPORARY_SUFFIX)
        .tempfile_in(dir)
}

/// Temporaries of `write_atomic` older than this were left by a process
/// that died mid-save: a save takes well under a second, even for a 20 MB
/// session, so no running save is this old.
pub const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(120);

fn is_temporary(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with(TEMPORARY_PREFIX) && n.ends_with(TEMPORARY_SUFFIX))
}

/// Removes the temporaries that killed saves left in `dir` (not its
/// subfolders), older than `age`; returns how many bytes that freed.
pub fn sweep_stale_temporaries(dir: &Path, age: std::time::Duration) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut freed = 0;
    for entry in entries.flatten() {
        if !is_temporary(&entry.file_name()) {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let old = metadata
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|elapsed| elapsed >= age);
        if metadata.is_file() && old && std::fs::remove_file(entry.path()).is_ok() {
            freed += metadata.len();
        }
    }
    freed
}

/// Whether whet can save in `dir`: creates it if needed, then writes,
/// syncs and removes a small temporary file there, as a save would.
pub fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut temp = temporary_in(dir)?;
    // A few KiB, so that a full disk shows here, not only an empty file.
    temp.write_all(&[b'\n'; 4096])?;
    temp.as_file().sync_all()?;
    temp.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporaries_are_swept_and_fresh_ones_and_other_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".whet-old.tmp");
        let fresh = dir.path().join(".whet-fresh.tmp");
        let session = dir.path().join("s.json");
        std::fs::write(&old, vec![0u8; 1000]).unwrap();
        std::fs::write(&fresh, "x").unwrap();
        std::fs::write(&session, "{}").unwrap();
        let ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(ago)
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(&session)
            .unwrap()
            .set_modified(ago)
            .unwrap();
        assert_eq!(
            sweep_stale_temporaries(dir.path(), STALE_TEMPORARY_AGE),
            1000
        );
        assert!(!old.exists());
        assert!(fresh.exists());
        assert!(session.exists());
    }

    #[test]
    fn a_file_in_place_of_the_folder_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, "").unwrap();
        assert!(check_writable(&file.join("sessions")).is_err());
        check_writable(&dir.path().join("fine")).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("fine")).unwrap().count(),
            0
        );
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("file.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.json"]);
    }
}
