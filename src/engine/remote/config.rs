//! `<config>/backends.toml`: the OpenAI-compatible servers whet may drive,
//! by name. A backend is a table:
//!
//! ```toml
//! [gpu-box]
//! url = "http://10.0.0.7:8080/v1"   # the base URL, up to /v1
//! model = "qwen2.5-7b-instruct"       # optional when the server has one model
//! api_key_env = "GPU_BOX_KEY"         # the variable that holds the key
//! kind = "llama-server"               # optional: detected from the server
//! max_parallel = 4                    # requests in flight (an experiment's cells)
//! connect_timeout_s = 5
//! first_token_timeout_s = 300         # a long prompt on a busy server
//! idle_timeout_s = 60                 # between two pieces of a stream
//! strict = false                      # llama-server: cache_prompt = false
//! ```
//!
//! The key itself is never in a whet file: only the variable's name is.
//! Errors say `backends.toml:line:col`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::text_position::line_col;

/// The file's name in the config directory.
pub const BACKENDS_FILE: &str = "backends.toml";

/// What serves the API: it decides which of the server's extras whet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// llama.cpp's server: `/props`, `/tokenize`, `/apply-template`,
    /// `timings`, `cache_prompt`, `n_probs`, grammars and JSON schemas.
    LlamaServer,
    Vllm,
    Ollama,
    /// Anything else that speaks the OpenAI API: only what it defines.
    Openai,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::LlamaServer => "llama-server",
            Kind::Vllm => "vllm",
            Kind::Ollama => "ollama",
            Kind::Openai => "openai",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub const DEFAULT_CONNECT_TIMEOUT_S: f64 = 5.0;
pub const DEFAULT_FIRST_TOKEN_TIMEOUT_S: f64 = 300.0;
pub const DEFAULT_IDLE_TIMEOUT_S: f64 = 60.0;
pub const DEFAULT_MAX_PARALLEL: u32 = 1;
/// More requests in flight than this is a typo, not a server.
pub const MAX_PARALLEL_LIMIT: u32 = 256;

/// One backend, as written in the file (or made from a bare URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// The table's name (filled in from it).
    #[serde(skip)]
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default = "default_max_parallel")]
    pub max_parallel: u32,
    #[serde(default = "default_connect")]
    pub connect_timeout_s: f64,
    #[serde(default = "default_first_token")]
    pub first_token_timeout_s: f64,
    #[serde(default = "default_idle")]
    pub idle_timeout_s: f64,
    /// Reproducible results over speed: llama-server is told not to reuse
    /// a slot's cached prompt (`cache_prompt: false`), which can change
    /// results from one slot to another.
    #[serde(default)]
    pub strict: bool,
}

fn default_max_parallel() -> u32 {
    DEFAULT_MAX_PARALLEL
}
fn default_connect() -> f64 {
    DEFAULT_CONNECT_TIMEOUT_S
}
fn default_first_token() -> f64 {
    DEFAULT_FIRST_TOKEN_TIMEOUT_S
}
fn default_idle() -> f64 {
    DEFAULT_IDLE_TIMEOUT_S
}

impl Backend {
    /// A backend for a bare URL given on the command line (`--backend
    /// http://host:8080/v1`): every setting at its default.
    pub fn from_url(url: &str) -> Result<Backend, String> {
        let backend = Backend {
            name: url.to_string(),
            url: url.to_string(),
            model: None,
            api_key_env: None,
            kind: None,
            max_parallel: DEFAULT_MAX_PARALLEL,
            connect_timeout_s: DEFAULT_CONNECT_TIMEOUT_S,
            first_token_timeout_s: DEFAULT_FIRST_TOKEN_TIMEOUT_S,
            idle_timeout_s: DEFAULT_IDLE_TIMEOUT_S,
            strict: false,
        };
        backend
            .check()
            .map_err(|(_, message)| format!("{url}: {message}"))?;
        Ok(backend)
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// The server's root (the base URL without `/v1`): llama-server's own
    /// endpoints (`/props`, `/tokenize`, `/apply-template`) live there.
    pub fn root_url(&self) -> &str {
        let base = self.base_url();
        base.strip_suffix("/v1").unwrap_or(base)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout_s)
    }
    pub fn first_token_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.first_token_timeout_s)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.idle_timeout_s)
    }

    /// The API key, from the environment variable the backend names: None
    /// without one; an error naming the variable (never a value) when it
    /// is named but unset or empty.
    pub fn api_key(&self) -> Result<Option<String>, String> {
        let Some(var) = &self.api_key_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_string())),
            _ => Err(format!(
                "backend '{}': its API key variable {var} is not set",
                self.name
            )),
        }
    }

    /// What is wrong with the settings: the field and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let url = self.url.trim();
        let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        else {
            return Err((
                "url",
                format!(
                    "'{url}' is not an http:// or https:// URL (e.g. http://127.0.0.1:8080/v1)"
                ),
            ));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(("url", format!("'{url}' has no host")));
        }
        if url.starts_with("https://") && !cfg!(feature = "https") {
            return Err((
                "url",
                "this whet was built without HTTPS; build it with `--features https`".into(),
            ));
        }
        if self.max_parallel == 0 || self.max_parallel > MAX_PARALLEL_LIMIT {
            return Err((
                "max_parallel",
                format!("{} is outside 1–{MAX_PARALLEL_LIMIT}", self.max_parallel),
            ));
        }
        for (field, value) in [
            ("connect_timeout_s", self.connect_timeout_s),
            ("first_token_timeout_s", self.first_token_timeout_s),
            ("idle_timeout_s", self.idle_timeout_s),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
                return Err((
                    field,
                    format!("{value} is not a number of seconds in (0, 86400]"),
                ));
            }
        }
        if let Some(var) = &self.api_key_env {
            let valid =
                !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                // Not echoed: it may be the key itself, written by mistake.
                return Err((
                    "api_key_env",
                    "this is not an environment variable's name; if it is the key itself, put the key in a variable and name the variable here".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A model on a remote backend, as a session or a picker names it: the
/// backend (a name from the file, or a URL) and, when the server serves
/// several, which of its models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteModel {
    pub backend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl RemoteModel {
    /// What the status line and the picker call it.
    pub fn label(&self) -> String {
        match &self.model {
            Some(model) => format!(
                "{} @ {}",
                crate::models::short_model_id(model),
                self.backend
            ),
            None => self.backend.clone(),
        }
    }
}

/// The backends file read: every backend by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backends {
    pub file: Option<PathBuf>,
    pub backends: BTreeMap<String, Backend>,
}

impl Backends {
    /// `<config>/backends.toml`; none when the file does not exist.
    pub fn load() -> Result<Backends, String> {
        let dir = crate::paths::config_dir()?;
        Backends::load_from(&dir.join(BACKENDS_FILE))
    }

    pub fn load_from(path: &Path) -> Result<Backends, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Backends::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut backends = parse(&path.display().to_string(), &text)?;
        backends.file = Some(path.to_path_buf());
        Ok(backends)
    }

    /// The backend `remote` names, asked for its model when it names one.
    pub fn resolve_model(&self, remote: &RemoteModel) -> Result<Backend, String> {
        let mut backend = self.resolve(&remote.backend)?;
        if remote.model.is_some() {
            backend.model = remote.model.clone();
        }
        Ok(backend)
    }

    /// `name` from the file, or a URL taken as a backend of its own.
    pub fn resolve(&self, name_or_url: &str) -> Result<Backend, String> {
        if let Some(backend) = self.backends.get(name_or_url) {
            return Ok(backend.clone());
        }
        if name_or_url.contains("://") {
            return Backend::from_url(name_or_url);
        }
        let known: Vec<&str> = self.backends.keys().map(String::as_str).collect();
        let file = self
            .file
            .as_ref()
            .map_or_else(|| BACKENDS_FILE.to_string(), |f| f.display().to_string());
        Err(if known.is_empty() {
            format!("no backend '{name_or_url}': {file} defines none (or give a URL such as http://127.0.0.1:8080/v1)")
        } else {
            format!(
                "no backend '{name_or_url}' in {file} (it has: {})",
                known.join(", ")
            )
        })
    }
}

/// Reads the file's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Backends, String> {
    let at = |offset: usize, message: &str| {
        let (line, col) = line_col(text, offset);
        format!("{file}:{line}:{col}: {message}")
    };
    let tables: BTreeMap<String, toml::Spanned<Backend>> = toml::from_str(text).map_err(|e| {
        let message = if e.message().contains("expected struct Backend") {
            "a backend is a [table] of settings (url = …) under its name"
        } else {
            e.message()
        };
        match e.span() {
            Some(span) => match table_at(text, span.start) {
                Some(name) => at(span.start, &format!("backend '{name}': {message}")),
                None => at(span.start, message),
            },
            None => format!("{file}: {message}"),
        }
    })?;
    let mut backends = BTreeMap::new();
    for (name, spanned) in tables {
        let span = spanned.span();
        let mut backend = spanned.into_inner();
        backend.name = name.clone();
        if let Err((field, message)) = backend.check() {
            let offset = field_offset(text, span.clone(), field).unwrap_or(span.start);
            return Err(at(offset, &format!("backend '{name}': {field}: {message}")));
        }
        backends.insert(name, backend);
    }
    Ok(Backends {
        file: None,
        backends,
    })
}

/// The name of the `[table]` whose header is at or before `offset`.
fn table_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let before = &text[..end];
    before.lines().rev().find_map(|line| {
        let name = line.trim().strip_prefix('[')?.split(']').next()?.trim();
        (!name.is_empty() && !name.starts_with('[')).then(|| name.trim_matches('"').to_string())
    })
}

/// Where `field = …` starts in the table whose value starts at `span`
/// (its header, or the table itself): from there to the next `[table]`.
fn field_offset(text: &str, span: std::ops::Range<usize>, field: &str) -> Option<usize> {
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let mut offset = start;
    for (i, line) in text[start..].split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if i > 0 && trimmed.starts_with('[') {
            break;
        }
        if let Some(rest) = trimmed.strip_prefix(field) {
            if rest.trim_start().starts_with('=') {
                return Some(offset + (line.len() - trimmed.len()));
            }
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[local]
url = "http://127.0.0.1:8080/v1"
max_parallel = 4

[gpu-box]
url = "http://10.0.0.7:8000/v1/"
model = "qwen"
api_key_env = "GPU_KEY"
kind = "vllm"
strict = true
"#;

    #[test]
    fn backends_read_with_defaults() {
        let backends = parse("backends.toml", FILE).unwrap();
        let local = &backends.backends["local"];
        assert_eq!(local.name, "local");
        assert_eq!(local.max_parallel, 4);
        assert_eq!(local.kind, None);
        assert_eq!(local.root_url(), "http://127.0.0.1:8080");
        assert_eq!(local.connect_timeout_s, DEFAULT_CONNECT_TIMEOUT_S);
        let gpu = &backends.backends["gpu-box"];
        assert_eq!(gpu.base_url(), "http://10.0.0.7:8000/v1");
        assert_eq!(gpu.kind, Some(Kind::Vllm));
        assert!(gpu.strict);
        assert_eq!(gpu.model.as_deref(), Some("qwen"));
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("[a]\nurl = \"ftp://x\"\n", "backends.toml:2:1: backend 'a': url: 'ftp://x' is not an http"),
            ("[a]\nurl = \"http://x/v1\"\nmax_parallel = 0\n", "backends.toml:3:1: backend 'a': max_parallel: 0 is outside"),
            ("[a]\nurl = \"http://x/v1\"\ncolour = 1\n", "backends.toml:3:1: backend 'a': unknown field `colour`"),
            ("[a]\nurl = \"http://x/v1\"\napi_key_env = \"sk-123 secret\"\n", "backends.toml:3:1: backend 'a': api_key_env: this is not an environment variable's name"),
            ("[a]\nmodel = \"m\"\n", "backends.toml:1:1: backend 'a': missing field `url`"),
            ("x = 1\n", "backends.toml:1:5: a backend is a [table]"),
            ("[a\n", "backends.toml:1:3:"),
            ("[a]\nurl = \"http://x\"\nidle_timeout_s = -1\n", "backends.toml:3:1: backend 'a': idle_timeout_s"),
        ];
        for (text, expected) in cases {
            let error = parse("backends.toml", text).unwrap_err();
            assert!(!error.contains("sk-123"), "{error}");
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_name_or_a_url_resolves() {
        let backends = parse("backends.toml", FILE).unwrap();
        assert_eq!(backends.resolve("local").unwrap().max_parallel, 4);
        let bare = backends.resolve("http://127.0.0.1:9999/v1").unwrap();
        assert_eq!(bare.max_parallel, 1);
        let error = backends.resolve("nope").unwrap_err();
        assert!(error.contains("(it has: gpu-box, local)"), "{error}");
        let error = Backends::default().resolve("nope").unwrap_err();
        assert!(error.contains("defines none"), "{error}");
        assert!(Backends::default().resolve("ftp://x").is_err());
    }

    #[test]
    fn the_key_comes_from_the_variable_and_errors_never_show_it() {
        let mut backend = Backend::from_url("http://127.0.0.1:1/v1").unwrap();
        assert_eq!(backend.api_key(), Ok(None));
        backend.api_key_env = Some("WHET_TEST_KEY_UNSET_4242".into());
        let error = backend.api_key().unwrap_err();
        assert!(error.contains("WHET_TEST_KEY_UNSET_4242"), "{error}");
        std::env::set_var("WHET_TEST_KEY_SET_4242", "sk-secret-value");
        backend.api_key_env = Some("WHET_TEST_KEY_SET_4242".into());
        assert_eq!(
            backend.api_key().unwrap().as_deref(),
            Some("sk-secret-value")
        );
    }
}
