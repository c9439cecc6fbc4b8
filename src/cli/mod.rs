//! The command line: argument parsing and dispatch to one module per command.

mod arena;
mod backends;
mod experiment;
mod models;
mod refine;
mod run;
mod run_beams;
mod score;
mod templates;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use whet::engine::protocol::ModelInfo;
use whet::engine::remote::{Backend, Backends};
use whet::engine::{EngineClient, EngineError, LoadRequest, SpawnOptions};
use whet::paths;

#[derive(Parser)]
#[command(
    name = "whet",
    version,
    about = "A terminal workbench for tuning prompts on local GGUF models"
)]
struct Cli {
    /// Also print log lines (including llama.cpp's) to stderr.
    #[arg(long, short, global = true)]
    verbose: bool,
    /// Model and context options for the chat UI (when no command is given).
    #[command(flatten)]
    model: ModelArgs,
    /// Open this chat session (created if new) instead of a fresh one.
    #[arg(long)]
    session: Option<String>,
    /// Colour theme: dark, light, high-contrast, or one of yours in
    /// <config>/themes/NAME.toml.
    #[arg(long, default_value = whet::tui::theme::DEFAULT_THEME)]
    theme: String,
    #[command(subcommand)]
    command: Option<Commands>,
}

#[derive(Subcommand)]
enum Commands {
    /// Generate a completion, streaming it to stdout.
    Run(run::RunArgs),
    /// Fetch, list and inspect models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Measure whet's engine against a bare llama.cpp loop in the same run.
    Bench(whet::bench::BenchArgs),
    /// List, show (rendered or exact) and check prompt templates.
    #[command(subcommand)]
    Templates(templates::TemplatesCommand),
    /// Score a candidate text against references: BLEU, chrF, ROUGE,
    /// exact match and length.
    Score(score::ScoreArgs),
    /// Refinement rounds (Self-Refine): a draft, then feedback and a
    /// refined pass per round, each pass scored; the run is saved.
    Refine(refine::RefineArgs),
    /// Prompt experiments: variants of a prompt over a dataset.
    #[command(subcommand)]
    Experiment(experiment::ExperimentCommand),
    /// The OpenAI-compatible servers of <config>/backends.toml: list them,
    /// or check one (reachable, models, context, what it can do).
    #[command(subcommand)]
    Backends(backends::BackendsCommand),
    /// The votes of the chat's compare mode: which model wins.
    #[command(subcommand)]
    Arena(arena::ArenaCommand),
    /// Check the user's theme and keymap files; prints every problem.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The inference worker process (spawned by whet itself).
    #[command(hide = true)]
    Engine,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate <config>/keymap.toml, sampling.toml and the theme files;
    /// exit 1 on any problem.
    Check {
        /// The theme to check (with its parents).
        #[arg(long, default_value = whet::tui::theme::DEFAULT_THEME)]
        theme: String,
    },
    /// Print where whet reads its configuration and keeps its data.
    Paths,
}

/// Options every command that loads a model shares.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// GGUF model file [default: the installed default model].
    #[arg(long, short)]
    pub model: Option<PathBuf>,
    /// Use an OpenAI-compatible server instead of a local model: a backend
    /// named in <config>/backends.toml, or a base URL up to /v1.
    #[arg(long, value_name = "NAME|URL", conflicts_with = "model")]
    pub backend: Option<String>,
    /// Context size in tokens (llama.cpp rounds it up to a multiple of 256).
    #[arg(long = "ctx", default_value_t = 4096)]
    pub n_ctx: u32,
    /// Prompt tokens decoded per batch.
    #[arg(long = "batch", default_value_t = 512)]
    pub n_batch: u32,
    /// CPU threads [default: number of physical cores].
    #[arg(long)]
    pub threads: Option<u32>,
    /// A llama.cpp built-in chat format (chatml, gemma, llama3, ...) to use
    /// instead of the model's own template.
    #[arg(long)]
    pub chat_format: Option<String>,
    /// Flash attention.
    #[arg(long, value_enum, default_value_t = FlashAttn::Auto)]
    pub flash_attn: FlashAttn,
}

pub use whet::engine::protocol::FlashAttn;

impl ModelArgs {
    /// The model file asked for (or the default one), not yet checked: what
    /// the sampling defaults are looked up by before anything loads.
    pub fn model_path(&self) -> Result<std::path::PathBuf, String> {
        if let Some(backend) = &self.backend {
            // No local file: no catalog recommendation for its sampler.
            return Ok(PathBuf::from(backend));
        }
        match &self.model {
            Some(path) => Ok(path.clone()),
            None => paths::default_model_path(),
        }
    }

    /// The backend asked for with `--backend`, resolved.
    pub fn remote(&self) -> Result<Option<Backend>, String> {
        match &self.backend {
            Some(name) => Backends::load()?.resolve(name).map(Some),
            None => Ok(None),
        }
    }

    /// How engines start for this command: workers from this binary, or
    /// the `--backend` server.
    pub fn spawn_options(&self) -> Result<SpawnOptions, String> {
        let mut options = spawn_options()?;
        options.remote = self.remote()?;
        Ok(options)
    }

    pub fn load_request(&self) -> Result<LoadRequest, String> {
        let model = match (&self.model, &self.backend) {
            (_, Some(backend)) => PathBuf::from(backend),
            (Some(path), None) => path.clone(),
            (None, None) => {
                let path = paths::default_model_path()?;
                if !path.exists() {
                    return Err(format!(
                        "the default model is not installed ({}); run `whet models fetch` or pass --model PATH",
                        path.display()
                    ));
                }
                path
            }
        };
        if self.n_ctx == 0 {
            return Err("--ctx must be at least 1".into());
        }
        if self.n_batch == 0 {
            return Err("--batch must be at least 1".into());
        }
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        Ok(LoadRequest {
            model,
            n_ctx: self.n_ctx,
            n_batch: self.n_batch,
            threads: self.threads.unwrap_or_else(paths::default_threads),
            chat_format: self.chat_format.clone(),
            vocab_only: false,
            flash_attention: self.flash_attn.setting(),
            parallel: 1,
        })
    }
}

/// The engine the command asked for, with its model loaded: a worker with
/// the local model, or the remote backend probed.
pub async fn start_engine(
    args: &ModelArgs,
    load: &LoadRequest,
) -> Result<(EngineClient, ModelInfo), String> {
    let options = args.spawn_options()?;
    let mut engine = EngineClient::spawn(&options)
        .await
        .map_err(|e| e.to_string())?;
    let info = match options.remote {
        Some(_) => engine.load(load.clone()).await.map_err(|e| e.to_string())?,
        None => engine
            .load(load.clone())
            .await
            .map_err(|e| load_error(load, e))?,
    };
    Ok((engine, info))
}

/// A worker that dies while loading is a property of the model file: say which.
pub fn load_error(request: &LoadRequest, error: EngineError) -> String {
    match error {
        EngineError::Stopped(exit) => {
            format!("cannot load model '{}': {exit}", request.model.display())
        }
        other => other.to_string(),
    }
}

pub fn spawn_options() -> Result<SpawnOptions, String> {
    SpawnOptions::from_current_exe().map_err(|e| format!("cannot find the whet binary: {e}"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Commands::Engine) = cli.command {
        return ExitCode::from(u8::try_from(whet::engine::worker::run()).unwrap_or(1));
    }
    let _log_guard = whet::logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => open_ui(&cli.model, cli.session.as_deref(), &cli.theme).await,
            Some(Commands::Config(command)) => config(command),
            Some(Commands::Templates(command)) => templates::run(command).await,
            Some(Commands::Experiment(command)) => experiment::run(command).await,
            Some(Commands::Score(args)) => score::run(args),
            Some(Commands::Run(args)) => run::run(args).await,
            Some(Commands::Refine(args)) => refine::run(args).await,
            Some(Commands::Models(command)) => models::run(command).await,
            Some(Commands::Backends(command)) => backends::run(command).await,
            Some(Commands::Arena(command)) => arena::run(command),
            Some(Commands::Bench(args)) => whet::bench::run(args).await,
            Some(Commands::Engine) => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => fail(&message),
    }
}

/// `whet` without a command: the chat UI, which needs a terminal.
async fn open_ui(
    model: &ModelArgs,
    session_name: Option<&str>,
    theme: &str,
) -> Result<ExitCode, String> {
    use std::io::IsTerminal;
    use whet::store::lock::SessionLock;
    use whet::store::session::{self, Session};
    // The cheapest mistakes first: a theme name is checked before models
    // and sessions are looked at.
    let config = whet::tui::UiConfig::load(theme, paths::config_dir().ok().as_deref())?;
    let dir = session::sessions_dir()?;
    let name = match session_name {
        Some(name) => name.to_string(),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            whet::tui::sessions::unused_name(&dir, &session::fresh_name(now))
        }
    };
    let path = session::session_path(&dir, &name).map_err(|e| e.to_string())?;
    // Nothing typed in the UI may be unsaveable: a data folder whet cannot
    // write is reported now, not after the first turn.
    whet::store::atomic::check_writable(&dir).map_err(|e| {
        format!(
            "cannot save sessions in {}: {e}; free some space, fix the folder, or point {} at a writable folder",
            dir.display(),
            paths::DATA_DIR_ENV
        )
    })?;
    sweep_stale_temporaries(&dir);
    // One whet per session: a second one would overwrite the first's turns.
    let lock = SessionLock::acquire(&dir, &name).map_err(|e| e.to_string())?;
    // An unreadable session stops here, before the UI, and is not touched.
    let session = if path.exists() {
        session::load(&path).map_err(|e| e.to_string())?
    } else {
        Session::new(name)
    };
    // A reopened session goes on with its own model, local or remote,
    // unless one is asked for.
    let mut model = model.clone();
    let mut session_remote = None;
    if model.model.is_none() && model.backend.is_none() {
        match &session.backend {
            Some(remote) => {
                model.backend = Some(remote.backend.clone());
                session_remote = Some(remote.clone());
            }
            None => model.model = session.model.clone().filter(|p| p.is_file()),
        }
    }
    let load = model.load_request()?;
    let spawn = match &session_remote {
        Some(remote) => {
            let backend = whet::engine::remote::Backends::load()
                .and_then(|backends| backends.resolve_model(remote))
                .map_err(|e| {
                    format!(
                        "session '{}' talks to backend '{}', which cannot be used: {e}; pass --model or --backend to go on with another model",
                        session.name, remote.backend
                    )
                })?;
            SpawnOptions {
                remote: Some(backend),
                ..spawn_options()?
            }
        }
        None => model.spawn_options()?,
    };
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err("the chat UI needs a terminal; use `whet run` in scripts and pipes".into());
    }
    check_terminal_type(std::env::var("TERM").ok().as_deref())?;
    let target = whet::tui::SessionTarget { session, dir, lock };
    let farewell = whet::tui::run(load, spawn, target, config).await?;
    for line in &farewell.lines {
        eprintln!("{line}");
    }
    if let Some(json) = &farewell.session_json {
        whet::outln!("{json}");
    }
    Ok(match farewell.signal {
        // What a shell reports for a process a signal ended.
        Some(signal) => ExitCode::from(128 + u8::try_from(signal).unwrap_or(0)),
        None if farewell.session_lost => ExitCode::FAILURE,
        None => ExitCode::SUCCESS,
    })
}

/// The full-screen UI needs cursor movement and an alternate screen; a
/// terminal that says it has none (TERM=dumb: an editor's shell buffer, a
/// serial console) would show a garble of escape sequences.
fn check_terminal_type(term: Option<&str>) -> Result<(), String> {
    if term.map(str::trim) == Some("dumb") {
        return Err("the chat UI needs a terminal that can move the cursor (TERM is 'dumb'); use a terminal emulator, or `whet run` for plain output".into());
    }
    Ok(())
}

/// Removes what saves killed mid-write left behind in whet's folders.
fn sweep_stale_temporaries(sessions_dir: &std::path::Path) {
    use whet::store::atomic::{sweep_stale_temporaries, STALE_TEMPORARY_AGE};
    let mut dirs = vec![sessions_dir.to_path_buf()];
    dirs.extend(whet::store::runs::runs_dir().ok());
    dirs.extend(whet::refine::store::refinements_dir().ok());
    dirs.extend(whet::store::export::exports_dir().ok());
    dirs.extend(paths::user_templates_dir());
    let freed: u64 = dirs
        .iter()
        .map(|dir| sweep_stale_temporaries(dir, STALE_TEMPORARY_AGE))
        .sum();
    if freed > 0 {
        tracing::info!("removed {freed} bytes of temporary files left by interrupted saves");
    }
}

fn config(command: ConfigCommand) -> Result<ExitCode, String> {
    let config_dir = paths::config_dir()?;
    match command {
        ConfigCommand::Check { theme } => {
            let config = whet::tui::UiConfig::load(&theme, Some(&config_dir))?;
            for problem in &config.problems {
                whet::outln!("{problem}");
            }
            if config.problems.is_empty() {
                whet::outln!("theme '{theme}', the keymap and the sampling defaults are valid");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        ConfigCommand::Paths => {
            whet::outln!("config:   {}", config_dir.display());
            whet::outln!("themes:   {}", config_dir.join("themes").display());
            whet::outln!("keymap:   {}", config_dir.join("keymap.toml").display());
            whet::outln!(
                "sampling: {}",
                config_dir
                    .join(whet::sampling_defaults::USER_FILE)
                    .display()
            );
            whet::outln!("data:     {}", paths::data_dir()?.display());
            whet::outln!(
                "sessions: {}",
                whet::store::session::sessions_dir()?.display()
            );
            whet::outln!("logs:     {}", paths::log_dir()?.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line on stderr, whatever the message contained.
pub fn fail(message: &str) -> ExitCode {
    let one_line = message.replace(['\n', '\r'], " ");
    eprintln!("error: {one_line}");
    ExitCode::FAILURE
}

/// Checks each of `items` and prints, per item, the lines its check gives:
/// its warnings and the line saying it is fine, or its problems. Exit 1 if
/// any item has problems (every item is still checked).
pub fn report_checks<T>(
    items: impl IntoIterator<Item = T>,
    mut check: impl FnMut(T) -> Result<Vec<String>, Vec<String>>,
) -> std::process::ExitCode {
    let mut failed = false;
    for item in items {
        let lines = check(item).unwrap_or_else(|problems| {
            failed = true;
            problems
        });
        for line in lines {
            whet::outln!("{line}");
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
