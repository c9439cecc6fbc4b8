//! Chat sessions as versioned JSON files in `<data>/sessions/NAME.json`.

use super::dates::civil_from_days;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::tokens::{write_pretty, KeptToken};
use crate::arena::duel::{Column, Duel};
use crate::engine::constraint::Constraint;
use crate::engine::protocol::Role;
use crate::engine::remote::RemoteModel;
use crate::engine::sampling::SamplingOverrides;
use crate::engine::SamplingParams;

/// The format version this build writes; it reads this one and older.
/// Version 2 added reply settings and kept branches of edited turns;
/// version 3 records which sampler settings the session chose itself;
/// version 4 keeps replies' tokens with their probabilities; version 5 the
/// grammar or JSON schema replies follow (a chat started from a template
/// that sets one); version 6 the remote backend the chat's model is on;
/// version 7 a comparison of two models in progress (the compare mode).
pub const SESSION_VERSION: u32 = 7;

/// A comparison in progress, kept with its session so that nothing typed
/// or generated in it is lost when whet stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredComparison {
    pub duel: Duel,
    /// The column the chat's own model is in.
    pub chat_column: Column,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub version: u32,
    pub name: String,
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// The model is on this remote backend rather than in a local file
    /// (from version 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<RemoteModel>,
    /// A comparison in progress (from version 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<StoredComparison>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// The sampler settings of the last save, all of them, as used.
    #[serde(default)]
    pub sampling: SamplingParams,
    /// The ones this session chose; the others follow the user's defaults
    /// and the model's recommendation. Absent in files before version 3,
    /// whose settings were all the session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_set: Option<SamplingOverrides>,
    #[serde(default)]
    pub reply: ReplySettings,
    #[serde(default)]
    pub messages: Vec<StoredMessage>,
}

/// How replies are generated, beyond the sampler: applied to the next turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplySettings {
    /// Use `sampling.seed` for every turn; otherwise each turn gets a fresh
    /// seed, so that regenerating can give a different reply.
    pub fixed_seed: bool,
    /// At most this many tokens per reply (0 = until the context is full).
    pub max_tokens: u32,
    pub stop: Vec<String>,
    /// Context size to load the model with; None = the command line's.
    pub n_ctx: Option<u32>,
    /// Keep each reply token's probability and alternatives (for the lens).
    pub probabilities: bool,
    /// What every new reply must match (a continued or forked one is not
    /// held to it: its start was not generated under it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
}

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            fixed_seed: false,
            max_tokens: 1024,
            stop: Vec::new(),
            n_ctx: None,
            probabilities: true,
            constraint: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredMessage {
    pub role: Role,
    pub text: String,
    /// Why a reply ended early ("stopped", "context full", "failed: …"), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Other versions of the conversation from this message on, kept when
    /// the message was edited and resent; each starts with its own version
    /// of this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<Vec<StoredMessage>>,
    /// A reply's tokens with their probabilities, when they were computed
    /// (from version 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<KeptToken>>,
}

impl StoredMessage {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
            note: None,
            branches: Vec::new(),
            tokens: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{path}: cannot read the session: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: not a valid session file: {message} (the file was left untouched)"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: session format version {found} is newer than this whet reads ({SESSION_VERSION}); update whet (the file was left untouched)")]
    FutureVersion { path: PathBuf, found: u64 },
    #[error("{path}: cannot save the session: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "invalid session name '{0}': use letters, digits, '-', '_' and '.' (not starting with '.')"
    )]
    BadName(String),
}

impl Session {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            version: SESSION_VERSION,
            name: name.into(),
            model: None,
            backend: None,
            compare: None,
            system_prompt: None,
            sampling: SamplingParams::default(),
            sampling_set: Some(SamplingOverrides::default()),
            reply: ReplySettings::default(),
            messages: Vec::new(),
        }
    }
}

pub fn sessions_dir() -> Result<PathBuf, String> {
    Ok(crate::paths::data_dir()?.join("sessions"))
}

/// Session names become file names; keep them to a safe alphabet.
pub fn session_path(dir: &Path, name: &str) -> Result<PathBuf, SessionError> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 120
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(SessionError::BadName(name.to_string()));
    }
    Ok(dir.join(format!("{name}.json")))
}

pub fn load(path: &Path) -> Result<Session, SessionError> {
    let text = std::fs::read_to_string(path).map_err(|source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |e: serde_json::Error| SessionError::Corrupt {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    // The version is checked before the shape: a newer file may have fields
    // this build does not know, and must be refused for its version.
    let value: serde_json::Value = serde_json::from_str(&text).map_err(corrupt)?;
    if let Some(found) = value.get("version").and_then(|v| v.as_u64()) {
        if found > u64::from(SESSION_VERSION) {
            return Err(SessionError::FutureVersion {
                path: path.to_path_buf(),
                found,
            });
        }
    }
    serde_json::from_str(&text).map_err(corrupt)
}

pub fn save(path: &Path, session: &Session) -> Result<(), SessionError> {
    let write_error = |source| SessionError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut json = write_pretty(session).map_err(|e| write_error(std::io::Error::other(e)))?;
    json.push(b'\n');
    write_atomic(path, &json).map_err(write_error)
}

/// A name for a new session: `chat-YYYYMMDD-HHMMSS` in UTC.
pub fn fresh_name(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let seconds = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "chat-{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Session {
        let mut session = Session::new("demo");
        session.system_prompt = Some("Be brief.".into());
        session.reply.stop = vec!["\n\n".into()];
        let mut edited = StoredMessage::new(Role::User, "日本語 👩‍👩‍👧 \"quoted\"\nline");
        edited.branches = vec![vec![
            StoredMessage::new(Role::User, "the first version"),
            StoredMessage::new(Role::Assistant, "its reply"),
        ]];
        session.messages = vec![
            edited,
            StoredMessage {
                note: Some("stopped".into()),
                ..StoredMessage::new(Role::Assistant, "part")
            },
        ];
        session
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = session_path(dir.path(), "demo").unwrap();
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), sample());
    }

    #[test]
    fn corrupt_file_is_refused_with_its_position_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        let text = "{\n  \"version\": 1,\n  \"name\": \"x\",\n  \"messages\": [ oops ]\n}\n";
        std::fs::write(&path, text).unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{}:4:17: not a valid session file: expected value (the file was left untouched)",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.json");
        std::fs::write(&path, "{\"version\": 1, \"name\": \"x\", \"colour\": 3}").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .to_string()
            .contains("unknown field `colour`"));
        std::fs::write(&path, "{\"version\": 1, \"name\": 5}").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.contains(":1:24: not a valid session file: invalid type"),
            "{error}"
        );
    }

    #[test]
    fn future_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.json");
        std::fs::write(&path, "{\"version\": 9, \"name\": \"x\", \"tabs\": []}").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "session format version 9 is newer than this whet reads ({SESSION_VERSION})"
            )),
            "{error}"
        );
    }

    #[test]
    fn version_1_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        let text = r#"{"version": 1, "name": "old", "messages": [{"role": "user", "text": "hi"}]}"#;
        std::fs::write(&path, text).unwrap();
        let session = load(&path).unwrap();
        assert_eq!(session.messages, [StoredMessage::new(Role::User, "hi")]);
        assert_eq!(session.reply, ReplySettings::default());
    }

    fn with_tokens() -> Session {
        use super::super::tokens::{KeptAlternative, MilliNats};
        let mut session = sample();
        let token = |id: i32, text: &str, logprob: i32| KeptToken {
            id,
            text: text.into(),
            logprob: MilliNats(logprob),
            entropy: Some(MilliNats(812)),
            top: vec![
                KeptAlternative {
                    id,
                    text: text.into(),
                    logprob: MilliNats(logprob),
                },
                KeptAlternative {
                    id: 2,
                    text: "<|im_end|>".into(),
                    logprob: MilliNats(-3000),
                },
            ],
        };
        session.messages[1].text = "pa\nrt".into();
        session.messages[1].tokens = Some(vec![token(5, "pa\n", -100), token(6, "rt", -1800)]);
        session.messages[0].branches[0][1].tokens = Some(vec![token(9, "its reply", -5)]);
        session
    }

    #[test]
    fn a_reply_grammar_round_trips_and_older_files_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = session_path(dir.path(), "g").unwrap();
        let mut session = Session::new("g");
        session.reply.constraint = Some(Constraint::JsonSchema {
            schema: r#"{"type": "object"}"#.into(),
            source: "obj.json".into(),
        });
        save(&path, &session).unwrap();
        assert_eq!(load(&path).unwrap(), session);
        let old = dir.path().join("old.json");
        std::fs::write(
            &old,
            r#"{"version": 4, "name": "old", "reply": {"max_tokens": 9}}"#,
        )
        .unwrap();
        let loaded = load(&old).unwrap();
        assert_eq!(loaded.reply.max_tokens, 9);
        assert_eq!(loaded.reply.constraint, None);
    }

    #[test]
    fn a_remote_model_round_trips_and_older_files_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = session_path(dir.path(), "r").unwrap();
        let mut session = Session::new("r");
        session.backend = Some(RemoteModel {
            backend: "gpu".into(),
            model: Some("qwen2.5-7b".into()),
        });
        save(&path, &session).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"backend\": {"), "{text}");
        assert_eq!(load(&path).unwrap(), session);
        // A local session's file has no `backend` at all.
        save(&path, &Session::new("r")).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("backend"));
        let old = dir.path().join("old.json");
        std::fs::write(
            &old,
            r#"{"version": 5, "name": "old", "model": "/m/a.gguf"}"#,
        )
        .unwrap();
        let loaded = load(&old).unwrap();
        assert_eq!(loaded.backend, None);
        assert_eq!(
            loaded.model.as_deref(),
            Some(std::path::Path::new("/m/a.gguf"))
        );
    }

    #[test]
    fn a_comparison_in_progress_round_trips_and_older_files_have_none() {
        use crate::arena::duel::{Contender, ModelRef};
        let dir = tempfile::tempdir().unwrap();
        let path = session_path(dir.path(), "c").unwrap();
        let contender = |name: &str| Contender {
            name: name.into(),
            model: ModelRef::Local {
                path: format!("/m/{name}.gguf").into(),
                sha256: None,
            },
        };
        let mut duel = Duel::new(
            Vec::new(),
            contender("a"),
            contender("b"),
            true,
            false,
            true,
        );
        duel.send("Hi").unwrap();
        duel.token(Column::A, "half");
        let mut session = Session::new("c");
        session.compare = Some(StoredComparison {
            duel,
            chat_column: Column::B,
        });
        save(&path, &session).unwrap();
        assert_eq!(load(&path).unwrap(), session);
        let old = dir.path().join("old.json");
        std::fs::write(&old, r#"{"version": 6, "name": "old"}"#).unwrap();
        assert_eq!(load(&old).unwrap().compare, None);
    }

    #[test]
    fn probabilities_round_trip_on_one_line_per_reply() {
        let dir = tempfile::tempdir().unwrap();
        let path = session_path(dir.path(), "demo").unwrap();
        save(&path, &with_tokens()).unwrap();
        assert_eq!(load(&path).unwrap(), with_tokens());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("\"version\": {SESSION_VERSION},\n")),
            "{text}"
        );
        assert!(
            text.contains(
                r#""tokens": [[5,"pa\n",-100,812,[[5,"pa\n",-100],[2,"<|im_end|>",-3000]]],[6,"rt",-1800,812,"#
            ),
            "{text}"
        );
        // A message without probabilities has no `tokens` at all.
        assert_eq!(text.matches("\"tokens\"").count(), 2);
    }

    #[test]
    fn version_3_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.json");
        std::fs::write(&path, V3_FILE).unwrap();
        let session = load(&path).unwrap();
        assert_eq!(session.version, 3);
        assert_eq!(session.messages.len(), 2);
        assert_eq!(session.messages[1].tokens, None);
        assert_eq!(session.messages[0].branches[0][1].text, "an older reply");
        // Saved again, it is a version 4 file and reads back the same.
        let mut again = session.clone();
        again.version = SESSION_VERSION;
        save(&path, &again).unwrap();
        assert_eq!(load(&path).unwrap(), again);
    }

    /// A session as whet wrote it with format version 3.
    const V3_FILE: &str = r#"{
  "version": 3,
  "name": "old",
  "model": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
  "system_prompt": "Be brief.",
  "sampling": {
    "temperature": 0.2,
    "top_k": 40,
    "top_p": 0.95,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
    "repeat_last_n": 64,
    "seed": 7
  },
  "sampling_set": {},
  "reply": {
    "fixed_seed": false,
    "max_tokens": 1024,
    "stop": [],
    "n_ctx": null
  },
  "messages": [
    {
      "role": "user",
      "text": "hello",
      "branches": [
        [
          {
            "role": "user",
            "text": "hi"
          },
          {
            "role": "assistant",
            "text": "an older reply"
          }
        ]
      ]
    },
    {
      "role": "assistant",
      "text": "Hello! How can I help?",
      "note": "stopped"
    }
  ]
}
"#;

    #[test]
    fn names_are_checked() {
        let dir = Path::new("/s");
        assert!(session_path(dir, "chat-1_a.b").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "sp ace", "é"] {
            assert!(session_path(dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fresh_names_are_dates() {
        assert_eq!(fresh_name(0), "chat-19700101-000000");
        assert_eq!(fresh_name(1_795_876_496), "chat-20261128-143456");
        assert_eq!(fresh_name(951_782_400), "chat-20000229-000000");
    }
}
