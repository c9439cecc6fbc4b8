//! Exports of a session for use outside whet: Markdown to read or share, and
//! JSON in the session file's own schema. Exports are derived data: writing
//! one again replaces the previous export of the same session.

use std::path::{Path, PathBuf};

use super::atomic::write_atomic;
use super::session::{session_path, Session, StoredMessage};
use crate::engine::protocol::Role;

/// The conversation as Markdown: a title, the settings that produced it, the
/// system prompt, then every message under its speaker. Message text is
/// Markdown already and is copied verbatim. Deterministic: no timestamps.
pub fn to_markdown(session: &Session) -> String {
    let mut blocks = vec![format!("# {}", session.name)];

    let mut settings = Vec::new();
    if let Some(model) = &session.model {
        let file = model.file_name().unwrap_or(model.as_os_str());
        settings.push(format!("- Model: {}", code(&file.to_string_lossy())));
    }
    let s = &session.sampling;
    settings.push(format!(
        "- Sampling: temperature {}, top-k {}, top-p {}, min-p {}, repeat penalty {} (last {} tokens)",
        s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.repeat_last_n
    ));
    let reply = &session.reply;
    settings.push(if reply.fixed_seed {
        format!("- Seed: {} (fixed)", s.seed)
    } else {
        "- Seed: a fresh one each turn".to_string()
    });
    settings.push(if reply.max_tokens == 0 {
        "- Reply length: until the context is full".to_string()
    } else {
        format!("- Reply length: at most {} tokens", reply.max_tokens)
    });
    if !reply.stop.is_empty() {
        let stops: Vec<String> = reply.stop.iter().map(|s| code(&format!("{s:?}"))).collect();
        settings.push(format!("- Stop at: {}", stops.join(", ")));
    }
    if let Some(n_ctx) = reply.n_ctx {
        settings.push(format!("- Context: {n_ctx} tokens"));
    }
    blocks.push(settings.join("\n"));

    if let Some(prompt) = session.system_prompt.as_deref() {
        if !prompt.trim().is_empty() {
            blocks.push("System prompt:".to_string());
            blocks.push(quote(prompt));
        }
    }

    for message in &session.messages {
        blocks.extend(message_blocks(message));
    }

    let mut markdown = blocks.join("\n\n");
    markdown.push('\n');
    markdown
}

fn message_blocks(message: &StoredMessage) -> Vec<String> {
    let heading = match message.role {
        Role::User => "## You",
        Role::Assistant => "## Assistant",
        Role::System => "## System",
    };
    let mut blocks = vec![heading.to_string()];
    let text = message.text.trim_end_matches(['\n', '\r']);
    if !text.is_empty() {
        let mut text = text.to_string();
        // A reply stopped inside a code block would swallow every heading
        // after it; close the fence (the text itself stays as it was).
        if let Some(fence) = unclosed_fence(&text) {
            text.push('\n');
            text.push_str(&fence);
        }
        blocks.push(text);
    }
    if let Some(note) = message.note.as_deref().filter(|n| !n.is_empty()) {
        blocks.push(format!("_({note})_"));
    }
    match message.branches.len() {
        0 => {}
        1 => blocks.push(
            "_(edited: 1 other version from here on is kept in the session's JSON)_".to_string(),
        ),
        n => blocks.push(format!(
            "_(edited: {n} other versions from here on are kept in the session's JSON)_"
        )),
    }
    blocks
}

/// Inline code that survives backticks in the text.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

fn quote(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_string()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fence that would close a code block left open at the end of `text`
/// (CommonMark fences: three or more '`' or '~', indented at most 3 spaces).
fn unclosed_fence(text: &str) -> Option<String> {
    let mut open: Option<(char, usize)> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            continue;
        }
        let line = &line[indent..];
        let Some(c) = line.chars().next().filter(|c| matches!(c, '`' | '~')) else {
            continue;
        };
        let run = line.len() - line.trim_start_matches(c).len();
        if run < 3 {
            continue;
        }
        let rest = &line[run..];
        match open {
            None => {
                // A backtick fence's info string may not contain backticks.
                if c == '~' || !rest.contains('`') {
                    open = Some((c, run));
                }
            }
            Some((open_char, open_run)) => {
                if c == open_char && run >= open_run && rest.trim().is_empty() {
                    open = None;
                }
            }
        }
    }
    open.map(|(c, run)| c.to_string().repeat(run))
}

/// The session as pretty JSON in the session file's schema (loads with
/// `session::load`).
pub fn to_json(session: &Session) -> String {
    // A Session has only string keys and plain values: it always serializes.
    let mut json = serde_json::to_string_pretty(session).expect("a session serializes to JSON");
    json.push('\n');
    json
}

/// Writes `<dir>/<name>.md` and `<dir>/<name>.json` atomically (creating
/// `dir`) and returns both paths; a previous export of the session is replaced.
pub fn write(session: &Session, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    // The name becomes a file name: the session rules keep it inside `dir`.
    let json_path = session_path(dir, &session.name).map_err(|e| e.to_string())?;
    let md_path = dir.join(format!("{}.md", session.name));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot create the export folder: {e}", dir.display()))?;
    for (path, text) in [
        (&md_path, to_markdown(session)),
        (&json_path, to_json(session)),
    ] {
        write_atomic(path, text.as_bytes())
            .map_err(|e| format!("{}: cannot write the export: {e}", path.display()))?;
    }
    Ok((md_path, json_path))
}

/// Where exports go: `<data>/exports`.
pub fn exports_dir() -> Result<PathBuf, String> {
    Ok(crate::paths::data_dir()?.join("exports"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Session {
        let mut session = Session::new("demo");
        session.model = Some(PathBuf::from("/models/SmolLM2-135M-Instruct.Q4_1.gguf"));
        session.system_prompt = Some("Be brief.\n\nAnswer in English.".into());
        session.reply.stop = vec!["\n\n".into()];
        let mut edited = StoredMessage::new(Role::User, "What is **Rust**?\nIn one line.");
        edited.branches = vec![vec![StoredMessage::new(Role::User, "What is Rust?")]];
        session.messages = vec![
            edited,
            StoredMessage {
                note: Some("stopped".into()),
                ..StoredMessage::new(Role::Assistant, "A language:\n\n```rust\nfn main() {")
            },
            StoredMessage::new(Role::System, "Keep going.\n"),
        ];
        session
    }

    #[test]
    fn markdown() {
        insta::assert_snapshot!(to_markdown(&sample()));
    }

    #[test]
    fn markdown_of_an_empty_session_with_defaults() {
        let mut session = Session::new("empty");
        session.reply.fixed_seed = true;
        session.reply.max_tokens = 0;
        session.reply.n_ctx = Some(4096);
        assert_eq!(
            to_markdown(&session),
            "# empty\n\n\
             - Sampling: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat penalty 1 (last 64 tokens)\n\
             - Seed: 0 (fixed)\n\
             - Reply length: until the context is full\n\
             - Context: 4096 tokens\n"
        );
    }

    #[test]
    fn open_fences_are_found() {
        assert_eq!(unclosed_fence("a\n```rust\nx"), Some("```".into()));
        assert_eq!(unclosed_fence("```\nx\n```"), None);
        assert_eq!(unclosed_fence("~~~~\n```\n~~~"), Some("~~~~".into()));
        assert_eq!(unclosed_fence("````\nx\n````"), None);
        assert_eq!(unclosed_fence("    ```\nindented code"), None);
        assert_eq!(unclosed_fence("``` not ` a fence"), None);
        assert_eq!(unclosed_fence("no code"), None);
    }

    #[test]
    fn json_round_trips() {
        let json = to_json(&sample());
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), sample());
    }

    #[test]
    fn write_creates_the_folder_and_replaces_a_previous_export() {
        let dir = tempfile::tempdir().unwrap();
        let exports = dir.path().join("exports");
        let (md, json) = write(&Session::new("demo"), &exports).unwrap();
        assert_eq!(md, exports.join("demo.md"));
        assert_eq!(json, exports.join("demo.json"));
        let (md, json) = write(&sample(), &exports).unwrap();
        assert_eq!(
            std::fs::read_to_string(&md).unwrap(),
            to_markdown(&sample())
        );
        assert_eq!(std::fs::read_to_string(&json).unwrap(), to_json(&sample()));
        let loaded = crate::store::session::load(&json).unwrap();
        assert_eq!(loaded, sample());
        let mut names: Vec<_> = std::fs::read_dir(&exports)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["demo.json", "demo.md"]);
    }

    #[test]
    fn write_refuses_a_name_that_is_not_a_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let error = write(&Session::new("../escape"), dir.path()).unwrap_err();
        assert!(error.contains("invalid session name"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
