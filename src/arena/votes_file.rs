//! The votes file: `<data>/arena/votes.jsonl`, one vote per line, only
//! ever appended to. A line that cannot be read (a torn write, a hand
//! edit) is reported with its place and left as it is; the other votes
//! still count.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::vote::{Vote, VOTE_VERSION};

pub fn default_path() -> Result<PathBuf, String> {
    Ok(crate::paths::data_dir()?.join("arena").join("votes.jsonl"))
}

/// Adds `vote` as the file's last line, on disk before this returns.
pub fn append(path: &Path, vote: &Vote) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot record the vote in {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut line = serde_json::to_string(vote).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(fail)?;
    // A line cut short by a crash must not swallow this one.
    if ends_mid_line(&mut file).map_err(fail)? {
        line.insert(0, '\n');
    }
    file.write_all(line.as_bytes()).map_err(fail)?;
    file.sync_data().map_err(fail)
}

fn ends_mid_line(file: &mut std::fs::File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The votes read, and a problem for each line that could not be.
#[derive(Debug, Default)]
pub struct VotesRead {
    pub votes: Vec<Vote>,
    pub problems: Vec<String>,
}

/// All votes of the file (none when it does not exist yet).
pub fn read(path: &Path) -> Result<VotesRead, String> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VotesRead::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut read = VotesRead::default();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let place = |column: usize| format!("{}:{number}:{column}", path.display());
        let line = match std::str::from_utf8(line) {
            Ok(line) => line,
            Err(e) => {
                read.problems
                    .push(format!("{}: not UTF-8", place(e.valid_up_to() + 1)));
                continue;
            }
        };
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(e) => {
                read.problems.push(format!(
                    "{}: {}: left out",
                    place(e.column().max(1)),
                    without_place(&e)
                ));
                continue;
            }
        };
        // Checked before the fields: a newer whet may have added some.
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > u64::from(VOTE_VERSION) {
            read.problems.push(format!(
                "{}: a vote of version {version} (this whet reads up to {VOTE_VERSION}): left out",
                place(1)
            ));
            continue;
        }
        match serde_json::from_value::<Vote>(value) {
            Ok(vote) => read.votes.push(vote),
            Err(e) => read
                .problems
                .push(format!("{}: {}: left out", place(1), without_place(&e))),
        }
    }
    Ok(read)
}

/// serde_json's message without its " at line L column C" (the place is
/// given in front, in the file's own numbering).
fn without_place(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_string(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::vote::{Side, Verdict};
    use crate::engine::SamplingParams;

    pub(crate) fn vote(a: &str, b: &str, verdict: Verdict) -> Vote {
        let side = |model: &str| Side {
            model: model.into(),
            file: None,
            sha256: None,
            backend: None,
            sampling: SamplingParams::greedy(),
            stats: None,
        };
        Vote {
            version: VOTE_VERSION,
            at_ms: 1,
            session: "s".into(),
            turn: 0,
            blind: true,
            verdict,
            note: Some("tab\tand \"quotes\"\nnewline".into()),
            a: side(a),
            b: side(b),
        }
    }

    #[test]
    fn votes_are_appended_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arena/votes.jsonl");
        assert!(read(&path).unwrap().votes.is_empty());
        let first = vote("a", "b", Verdict::A);
        let second = vote("b", "a", Verdict::BothBad);
        append(&path, &first).unwrap();
        append(&path, &second).unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.votes, [first, second]);
        assert!(read.problems.is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn a_torn_line_is_reported_and_the_next_vote_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.jsonl");
        append(&path, &vote("a", "b", Verdict::A)).unwrap();
        // A crash in the middle of the second line.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"version\":1,\"at_ms\":").unwrap();
        drop(file);
        append(&path, &vote("a", "b", Verdict::B)).unwrap();
        append(&path, &vote("a", "b", Verdict::Tie)).unwrap();

        let read = read(&path).unwrap();
        let verdicts: Vec<Verdict> = read.votes.iter().map(|v| v.verdict).collect();
        assert_eq!(verdicts, [Verdict::A, Verdict::B, Verdict::Tie]);
        assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
        let problem = &read.problems[0];
        assert!(
            problem.starts_with(&format!("{}:2:", path.display())),
            "{problem}"
        );
        assert!(problem.contains("EOF while parsing"), "{problem}");
        assert!(!problem.contains(" at line "), "{problem}");
    }

    #[test]
    fn unknown_verdicts_and_newer_versions_are_left_out_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.jsonl");
        let good = serde_json::to_string(&vote("a", "b", Verdict::A)).unwrap();
        let newer = good.replace("\"version\":1", "\"version\":9");
        let unknown = good.replace("\"verdict\":\"a\"", "\"verdict\":\"c\"");
        std::fs::write(&path, format!("{good}\n\n{newer}\n{unknown}\n")).unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.votes.len(), 1);
        assert_eq!(read.problems.len(), 2);
        assert!(
            read.problems[0].contains(":3:1: a vote of version 9"),
            "{:?}",
            read.problems
        );
        assert!(
            read.problems[1].contains(":4:1: unknown variant `c`"),
            "{:?}",
            read.problems
        );
    }
}
