//! `whet bench`: whet's engine path (worker process, protocol, streaming)
//! against a bare in-process llama-cpp-2 loop on the same model, threads and
//! prompt, measured in the same run, alternating the two, several times.

pub mod depth;
pub mod duel;
pub mod grammar;
pub mod history;
pub mod parallel;
pub mod raw;
pub mod remote;
pub mod saves;
pub mod stats;
pub mod ui;

use crate::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::engine::client::Generation;
use crate::engine::probs::ProbsRequest;
use crate::engine::protocol::{ChatMessage, FlashAttn, GenerateRequest, LoadRequest, Prompt, Role};
use crate::engine::{EngineClient, SamplingParams, SpawnOptions};
use crate::paths;
use stats::Summary;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// GGUF model file [default: the installed default model].
    #[arg(long, short)]
    pub model: Option<PathBuf>,
    /// Measure an OpenAI-compatible server instead (a backend named in
    /// <config>/backends.toml, or a base URL up to /v1): whet's view of each
    /// reply against the server's own timings; with `--parallel`, cells in
    /// flight at once against one at a time.
    #[arg(long, value_name = "NAME|URL", conflicts_with_all = ["model", "ui", "saves", "depth"])]
    pub backend: Option<String>,
    /// CPU threads for both paths [default: number of physical cores].
    #[arg(long)]
    pub threads: Option<u32>,
    /// Context size for both paths (the chat UI's default).
    #[arg(long = "ctx", default_value_t = 4096)]
    pub n_ctx: u32,
    /// Prompt-evaluation batch size for both paths.
    #[arg(long = "batch", default_value_t = 512)]
    pub n_batch: u32,
    /// Repetitions of each measurement (the two paths alternate).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Tokens generated per run (with `--parallel`, per cell; 0 = until
    /// the reply ends).
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: u32,
    /// Chat turns in the prefix-reuse conversation.
    #[arg(long, default_value_t = 10)]
    pub turns: usize,
    /// Also time a chat turn after this many tokens of history (0 = skip).
    #[arg(long, default_value_t = 3072, value_name = "TOKENS")]
    pub history_tokens: usize,
    /// Flash attention, for both paths.
    #[arg(long, value_enum, default_value_t = FlashAttn::Auto)]
    pub flash_attn: FlashAttn,
    /// Only measure the chat screen's frame render time with a session of
    /// this many messages (no model needed).
    #[arg(long, value_name = "MESSAGES")]
    pub ui: Option<usize>,
    /// Measure at these context depths instead (comma-separated, e.g.
    /// `0,1024,2048,3072`): generation with that many tokens already cached,
    /// and a prompt evaluated on top of them, as llama-bench's `-d`.
    #[arg(long, value_delimiter = ',', value_name = "TOKENS")]
    pub depth: Vec<usize>,
    /// Measure these numbers of parallel sequences instead (comma-separated,
    /// e.g. `1,2,4,8`, at most 8): the same cells one request at a time and
    /// decoded together.
    #[arg(long, value_delimiter = ',', value_name = "N")]
    pub parallel: Vec<u32>,
    /// Cells for `--parallel`.
    #[arg(long, default_value_t = 16)]
    pub cells: usize,
    /// Only measure saving a session of this many messages while a reply
    /// streams into it (no model needed; `--gen-tokens` long, at
    /// `--saves-rate` tokens per second).
    #[arg(long, value_name = "MESSAGES")]
    pub saves: Option<usize>,
    /// Tokens per second of the simulated reply for `--saves`.
    #[arg(long, default_value_t = 90.0)]
    pub saves_rate: f64,
    /// Measure generation with and without this JSON schema instead
    /// (10 chat prompts, greedy, `--reps` times each), and the share of
    /// constrained outputs that validate.
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    /// The compare mode's cost: the same turns to `--model` (A) and this
    /// model (B) in two workers, one after the other and at once — each
    /// side's tok/s, Enter to both replies done, both workers' memory.
    #[arg(long, value_name = "MODEL_B", conflicts_with_all = ["backend", "ui", "saves", "depth", "parallel"])]
    pub duel: Option<PathBuf>,
    /// The chat format for `--duel`'s model (a base model has none).
    #[arg(long, value_name = "NAME", requires = "duel")]
    pub duel_chat_format: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The whet binary that provides the worker [default: this binary].
    #[arg(long, hide = true)]
    pub worker_exe: Option<PathBuf>,
}

/// A few paragraphs of plain prose, long enough (~250 tokens) for a stable
/// prompt-evaluation rate.
const PROMPT: &str = "The history of sharpening stones is as long as the history of tools. \
Early people rubbed flakes of flint against sandstone to restore an edge, and every farming \
village later kept a whetstone beside the scythes and sickles. A good stone is chosen for the \
size of its grain: coarse stones remove metal quickly and repair chips, while fine stones \
polish the edge until it shaves. Water or oil carries away the loose particles so the surface \
keeps cutting. Natural stones from a handful of famous quarries were traded across continents, \
and their names still appear in catalogues today. In the nineteenth century manufacturers \
learned to bond crushed abrasives into artificial stones of uniform grit, which made sharpening \
cheaper and more predictable. Modern workshops use diamond plates, ceramic rods and leather \
strops, yet the basic motion has not changed: hold a steady angle, apply light pressure, and \
work both sides of the blade evenly until a small burr forms and is removed. Patience matters \
more than force, and a few careful strokes often do more than many hurried ones. Write a short \
summary of this passage.";

const CHAT_TURNS: &[&str] = &[
    "Hi! Can you help me plan a small vegetable garden?",
    "Which vegetables grow well for beginners?",
    "How much sun do tomatoes need?",
    "What about watering, how often?",
    "Should I use raised beds?",
    "What soil should I buy for them?",
    "How do I keep slugs away?",
    "When should I plant the seedlings outside?",
    "Can I grow herbs in the same bed?",
    "Thanks! Can you summarise the plan in three points?",
    "One more question: how do I store the harvest?",
    "And which vegetables freeze well?",
];

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub model: PathBuf,
    pub threads: u32,
    pub n_ctx: u32,
    pub reps: usize,
    pub prompt_tokens: usize,
    pub gen_tokens: u32,
    pub generation_tok_s: Comparison,
    /// whet with each token's probability and top 10 alternatives (`whet`)
    /// against whet without (`raw`).
    pub generation_with_probs_tok_s: Comparison,
    pub prompt_eval_tok_s: Comparison,
    /// Greedy tokens of the two paths were identical in every run.
    pub outputs_identical: bool,
    pub chat_turns: usize,
    pub ttft_turn1_ms: Summary,
    pub ttft_last_turn_ms: Summary,
    pub ttft_last_turn_without_reuse_ms: Summary,
    pub ttft_ratio_last_over_first: f64,
    /// Tokens already cached and tokens decoded for turn 1 and the last turn.
    pub turn1_shape: TurnShape,
    pub last_turn_shape: TurnShape,
    /// The bare loop decoding the same number of new tokens at the same depth.
    pub raw_turn1_ms: Summary,
    pub raw_last_turn_ms: Summary,
    /// A turn after `--history-tokens` of history, against the bare loop.
    pub ttft_history: Option<history::HistoryTtft>,
    pub worker_peak_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TurnShape {
    pub cached: usize,
    pub decoded: usize,
}

struct ChatTtft {
    first: Vec<f64>,
    last: Vec<f64>,
    last_fresh: Vec<f64>,
    raw_first: Vec<f64>,
    raw_last: Vec<f64>,
    first_shape: TurnShape,
    last_shape: TurnShape,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub whet: Summary,
    pub raw: Summary,
    /// whet median / raw median.
    pub ratio: f64,
}

impl Comparison {
    fn new(whet: &[f64], raw: &[f64]) -> Self {
        let whet = Summary::of(whet);
        let raw = Summary::of(raw);
        let ratio = if raw.median > 0.0 {
            whet.median / raw.median
        } else {
            0.0
        };
        Self { whet, raw, ratio }
    }
}

/// A report as pretty JSON on stdout (`--json`).
fn print_json<T: Serialize>(report: &T) -> Result<(), String> {
    outln!(
        "{}",
        serde_json::to_string_pretty(report).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn run_saves(args: &BenchArgs, messages: usize) -> Result<ExitCode, String> {
    if args.saves_rate.is_nan() || args.saves_rate <= 0.0 {
        return Err("--saves-rate must be more than 0".into());
    }
    // Beside the real sessions: the same disk, so the same fsync cost.
    let data = paths::data_dir()?;
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let dir = tempfile::tempdir_in(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let tokens = args.gen_tokens as usize;
    let report = saves::measure(messages, tokens, args.saves_rate, dir.path())?;
    if args.json {
        print_json(&report)?;
    } else {
        outln!(
            "session of {} messages, {:.1} MB: one save {} ms (median [min-max] of 7)",
            report.messages,
            report.session_bytes as f64 / 1e6,
            report.save_ms.display(2)
        );
        outln!(
            "a {}-token reply at {} tok/s: {} saves while streaming, {:.1} MB written, {:.1}% of the time saving",
            report.reply_tokens,
            report.tokens_per_sec,
            report.saves_while_streaming,
            report.bytes_written_while_streaming as f64 / 1e6,
            report.saving_share * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: BenchArgs) -> Result<ExitCode, String> {
    if let Some(messages) = args.saves {
        return run_saves(&args, messages);
    }
    if !args.depth.is_empty() {
        return run_depths(&args).await;
    }
    if !args.parallel.is_empty() {
        return run_parallel(&args).await;
    }
    if let Some(schema) = &args.json_schema {
        return run_grammar(&args, schema).await;
    }
    if args.backend.is_some() {
        return run_remote(&args).await;
    }
    if let Some(model_b) = &args.duel {
        return run_duel(&args, model_b).await;
    }
    if let Some(messages) = args.ui {
        let report = ui::measure(messages, 200)?;
        if args.json {
            print_json(&report)?;
        } else {
            outln!(
                "chat screen {}x{}, {} messages: frame render {} ms (median [min-max] of 200 frames)",
                report.width,
                report.height,
                report.messages,
                report.frame_ms.display(3)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = measure(&args).await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// whet's worker with the model loaded, and the bare loop's model, for
/// the same settings.
async fn start_paths(
    args: &BenchArgs,
    n_ctx: u32,
) -> Result<(EngineClient, raw::RawModel, PathBuf, u32), String> {
    let (engine, model, threads) = start_worker(args, n_ctx, 1).await?;
    // The raw path runs in this process; its llama.cpp logs go to the log file.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let raw_model = raw::RawModel::load(&model)?;
    Ok((engine, raw_model, model, threads))
}

async fn run_remote(args: &BenchArgs) -> Result<ExitCode, String> {
    if args.reps == 0 || args.gen_tokens < 2 {
        return Err("--reps must be at least 1 and --gen-tokens at least 2".into());
    }
    let (mut engine, info) = connect_backend(args).await?;
    let ignore_eos = matches!(
        &info.chat_format,
        crate::engine::protocol::ChatFormat::Server { kind, .. } if kind == "llama-server" || kind == "vllm"
    );
    let report = remote::measure(&mut engine, PROMPT, args.gen_tokens, args.reps, ignore_eos).await;
    engine.shutdown().await;
    let report = report?;
    if args.json {
        print_json(&serde_json::json!({
            "backend": args.backend,
            "model": info.path,
            "remote": report,
        }))?;
    } else {
        outln!("{}", info.path.display());
        for line in remote::table(&report) {
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_duel(args: &BenchArgs, model_b: &std::path::Path) -> Result<ExitCode, String> {
    if args.reps == 0 || args.gen_tokens < 2 {
        return Err("--reps must be at least 1 and --gen-tokens at least 2".into());
    }
    let model_a = match &args.model {
        Some(path) => path.clone(),
        None => paths::default_model_path()?,
    };
    for model in [&model_a, &model_b.to_path_buf()] {
        if !model.is_file() {
            return Err(format!("{}: no such model file", model.display()));
        }
    }
    let threads = args.threads.unwrap_or_else(paths::default_threads);
    let spawn = SpawnOptions::local(match &args.worker_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?,
    });
    let column = |model: &std::path::Path, chat_format: Option<String>| duel::ColumnStart {
        engine: None,
        spawn: spawn.clone(),
        load: LoadRequest {
            model: model.to_path_buf(),
            n_ctx: args.n_ctx,
            n_batch: args.n_batch,
            threads,
            chat_format,
            vocab_only: false,
            flash_attention: args.flash_attn.setting(),
            parallel: 1,
        },
    };
    let names = [model_a.clone(), model_b.to_path_buf()].map(|p| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let columns = [
        column(&model_a, None),
        column(model_b, args.duel_chat_format.clone()),
    ];
    let report = duel::measure(columns, names.clone(), args.gen_tokens, args.reps).await?;
    if args.json {
        print_json(&serde_json::json!({
            "models": [model_a, model_b],
            "threads": threads,
            "duel": report,
        }))?;
    } else {
        outln!("threads {threads} each");
        for line in duel::table(&report, &names) {
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--backend` server, probed.
async fn connect_backend(
    args: &BenchArgs,
) -> Result<(EngineClient, crate::engine::protocol::ModelInfo), String> {
    let name = args.backend.as_deref().unwrap_or_default();
    let backend = crate::engine::remote::Backends::load()?.resolve(name)?;
    let mut engine = EngineClient::connect(backend)
        .await
        .map_err(|e| e.to_string())?;
    let info = engine
        .load(LoadRequest {
            model: PathBuf::from(name),
            n_ctx: args.n_ctx,
            n_batch: args.n_batch,
            threads: 0,
            chat_format: None,
            vocab_only: false,
            flash_attention: None,
            parallel: 1,
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok((engine, info))
}

/// whet's worker with the model loaded for `parallel` sequences (or, with
/// `--backend`, the server).
async fn start_worker(
    args: &BenchArgs,
    n_ctx: u32,
    parallel: u32,
) -> Result<(EngineClient, PathBuf, u32), String> {
    if args.backend.is_some() {
        let (engine, info) = connect_backend(args).await?;
        return Ok((engine, info.path, 0));
    }
    let model = match &args.model {
        Some(path) => path.clone(),
        None => paths::default_model_path()?,
    };
    let threads = args.threads.unwrap_or_else(paths::default_threads);
    let spawn = SpawnOptions::local(match &args.worker_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?,
    });
    let load = LoadRequest {
        model: model.clone(),
        n_ctx,
        n_batch: args.n_batch,
        threads,
        chat_format: None,
        vocab_only: false,
        flash_attention: args.flash_attn.setting(),
        parallel,
    };
    let mut engine = EngineClient::spawn(&spawn)
        .await
        .map_err(|e| e.to_string())?;
    engine.load(load).await.map_err(|e| e.to_string())?;
    Ok((engine, model, threads))
}

async fn run_grammar(args: &BenchArgs, schema: &std::path::Path) -> Result<ExitCode, String> {
    if args.reps == 0 || args.gen_tokens < 2 {
        return Err("--reps must be at least 1 and --gen-tokens at least 2".into());
    }
    let constraint = crate::engine::constraint::Constraint::schema_file(schema)?;
    constraint.gbnf()?;
    let (mut engine, model, threads) = start_worker(args, args.n_ctx, 1).await?;
    let report = grammar::measure(&mut engine, &constraint, args.gen_tokens, args.reps).await?;
    engine.shutdown().await;
    if args.json {
        print_json(&serde_json::json!({
            "model": model,
            "threads": threads,
            "grammar": report,
        }))?;
    } else {
        outln!("model {} | threads {threads}", model.display());
        for line in grammar::table(&report) {
            outln!("{line}");
        }
    }
    Ok(if report.valid == report.outputs {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_parallel(args: &BenchArgs) -> Result<ExitCode, String> {
    let most = args.parallel.iter().copied().max().unwrap_or(1);
    if args.parallel.contains(&0) || most > crate::engine::parallel::MAX_PARALLEL {
        return Err(format!(
            "--parallel takes numbers from 1 to {}",
            crate::engine::parallel::MAX_PARALLEL
        ));
    }
    if args.reps == 0 || args.cells == 0 {
        return Err("--reps and --cells must be at least 1".into());
    }
    if let Some(name) = &args.backend {
        // The remote engine never has more requests in flight than the
        // backend allows: a higher level would quietly measure a lower one.
        let backend = crate::engine::remote::Backends::load()?.resolve(name)?;
        if most > backend.max_parallel {
            return Err(format!(
                "--parallel {most}: backend '{}' allows {} request(s) in flight; raise its max_parallel in backends.toml",
                backend.name, backend.max_parallel
            ));
        }
    }
    let (mut engine, model, threads) = start_worker(args, args.n_ctx, most).await?;
    let (sequential, reports) = parallel::measure(
        &mut engine,
        &args.parallel,
        args.cells,
        args.gen_tokens,
        args.reps,
    )
    .await?;
    let peak_rss_kib = engine.peak_rss_kib();
    engine.shutdown().await;
    if args.json {
        print_json(&serde_json::json!({
            "model": model,
            "threads": threads,
            "n_ctx": args.n_ctx,
            "reps": args.reps,
            "sequential": sequential,
            "parallel": reports,
            "worker_peak_rss_kib": peak_rss_kib,
        }))?;
    } else {
        outln!(
            "{} · {threads} threads · ctx {} · {} runs each, alternating",
            model.display(),
            args.n_ctx,
            args.reps
        );
        for line in parallel::table(&sequential, &reports, args.gen_tokens) {
            outln!("{line}");
        }
        if let Some(kib) = peak_rss_kib {
            outln!("worker peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_depths(args: &BenchArgs) -> Result<ExitCode, String> {
    if args.reps == 0 || args.gen_tokens < 2 {
        return Err("--reps must be at least 1 and --gen-tokens at least 2".into());
    }
    let deepest = args.depth.iter().copied().max().unwrap_or(0);
    // Room for the deepest filler, the prompt on top and the generation.
    let needed = deepest + 512 + args.gen_tokens as usize;
    let n_ctx = u32::try_from(needed.div_ceil(256) * 256)
        .map_err(|_| "--depth is too large".to_string())?
        .max(args.n_ctx);
    let (mut engine, raw_model, model, threads) = start_paths(args, n_ctx).await?;
    let mut raw_ctx = raw_model.context(n_ctx, args.n_batch, threads, args.flash_attn.setting())?;
    let mut reports = Vec::new();
    for (index, &depth) in args.depth.iter().enumerate() {
        reports.push(
            depth::measure(
                &mut engine,
                &raw_model,
                &mut raw_ctx,
                depth,
                args.gen_tokens,
                args.reps,
                index == 0,
            )
            .await?,
        );
    }
    engine.shutdown().await;
    if args.json {
        let report = serde_json::json!({
            "model": model,
            "threads": threads,
            "n_ctx": n_ctx,
            "flash_attn": format!("{:?}", args.flash_attn),
            "reps": args.reps,
            "depths": reports,
        });
        print_json(&report)?;
    } else {
        outln!(
            "{} · {threads} threads · flash attention {:?} · median [min-max] of {} runs",
            model.display(),
            args.flash_attn,
            args.reps
        );
        for line in depth::table(&reports) {
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn measure(args: &BenchArgs) -> Result<BenchReport, String> {
    if args.reps == 0 || args.gen_tokens < 2 || args.turns == 0 {
        return Err("--reps and --turns must be at least 1 and --gen-tokens at least 2".into());
    }
    if args.turns > CHAT_TURNS.len() {
        return Err(format!("--turns can be at most {}", CHAT_TURNS.len()));
    }
    // The history, a reply and a question on top must fit the context.
    if args.history_tokens > 0 && args.history_tokens + 512 > args.n_ctx as usize {
        return Err(format!(
            "--history-tokens {} needs --ctx of at least {} (it is {})",
            args.history_tokens,
            args.history_tokens + 512,
            args.n_ctx
        ));
    }
    let (mut engine, raw_model, model, threads) = start_paths(args, args.n_ctx).await?;
    let mut raw_ctx =
        raw_model.context(args.n_ctx, args.n_batch, threads, args.flash_attn.setting())?;
    let prompt_tokens = raw_model.tokenize(PROMPT);

    // One unmeasured run each warms caches and page-ins the weights.
    whet_run(&mut engine, args.gen_tokens).await?;
    raw_model.measure(&mut raw_ctx, &prompt_tokens, args.gen_tokens as usize)?;

    let (mut whet_gen, mut whet_prompt, mut raw_gen, mut raw_prompt) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut whet_gen_probs = Vec::new();
    let mut outputs_identical = true;
    for rep in 0..args.reps {
        // Rotate which path goes first, so drift in machine load hits all.
        for path_index in 0..3 {
            let path = (rep + path_index) % 3;
            if path == 2 {
                let probs = Some(ProbsRequest {
                    top: PROBS_TOP,
                    after_sampler: false,
                });
                let generation = whet_run_with(&mut engine, args.gen_tokens, probs).await?;
                whet_gen_probs.push(generation.timing.generation_tokens_per_sec());
            } else if path == 0 {
                let generation = whet_run(&mut engine, args.gen_tokens).await?;
                if generation.stats.prompt_tokens as usize != prompt_tokens.len() {
                    return Err(format!(
                        "the two paths tokenized the prompt differently ({} vs {} tokens)",
                        generation.stats.prompt_tokens,
                        prompt_tokens.len()
                    ));
                }
                whet_gen.push(generation.timing.generation_tokens_per_sec());
                whet_prompt.push(per_sec(prompt_tokens.len(), generation.timing.ttft_ms));
                let whet_tokens: Vec<i32> = generation.tokens.iter().map(|t| t.token).collect();
                let raw_reference = raw_model.measure(&mut raw_ctx, &prompt_tokens, 2)?;
                outputs_identical &= whet_tokens.first() == raw_reference.tokens.first();
            } else {
                let run =
                    raw_model.measure(&mut raw_ctx, &prompt_tokens, args.gen_tokens as usize)?;
                raw_gen.push(per_sec(run.tokens.len() - 1, run.first_to_last_ms));
                raw_prompt.push(per_sec(run.prompt_tokens, run.ttft_ms));
            }
        }
    }
    // Full-sequence check once, outside the timed runs.
    let whet_full = whet_run(&mut engine, args.gen_tokens).await?;
    let raw_full = raw_model.measure(&mut raw_ctx, &prompt_tokens, args.gen_tokens as usize)?;
    outputs_identical &= whet_full
        .tokens
        .iter()
        .map(|t| t.token)
        .eq(raw_full.tokens.iter().copied());

    let chat = chat_ttft(&mut engine, args, &raw_model, &mut raw_ctx, &prompt_tokens).await?;
    let ttft_history = if args.history_tokens > 0 {
        Some(
            history::measure(
                &mut engine,
                &raw_model,
                &mut raw_ctx,
                &prompt_tokens,
                args.history_tokens,
                args.reps,
            )
            .await?,
        )
    } else {
        None
    };
    let worker_peak_rss_kib = engine.peak_rss_kib();
    engine.shutdown().await;

    let ttft_turn1_ms = Summary::of(&chat.first);
    let ttft_last_turn_ms = Summary::of(&chat.last);
    let ratio = if ttft_turn1_ms.median > 0.0 {
        ttft_last_turn_ms.median / ttft_turn1_ms.median
    } else {
        0.0
    };
    Ok(BenchReport {
        model,
        threads,
        n_ctx: args.n_ctx,
        reps: args.reps,
        prompt_tokens: prompt_tokens.len(),
        gen_tokens: args.gen_tokens,
        generation_tok_s: Comparison::new(&whet_gen, &raw_gen),
        generation_with_probs_tok_s: Comparison::new(&whet_gen_probs, &whet_gen),
        prompt_eval_tok_s: Comparison::new(&whet_prompt, &raw_prompt),
        outputs_identical,
        chat_turns: args.turns,
        ttft_turn1_ms,
        ttft_last_turn_ms,
        ttft_last_turn_without_reuse_ms: Summary::of(&chat.last_fresh),
        turn1_shape: chat.first_shape,
        last_turn_shape: chat.last_shape,
        raw_turn1_ms: Summary::of(&chat.raw_first),
        raw_last_turn_ms: Summary::of(&chat.raw_last),
        ttft_history,
        ttft_ratio_last_over_first: ratio,
        worker_peak_rss_kib,
    })
}

/// One generation through the worker with prefix reuse off, so the whole
/// prompt is evaluated as in the raw loop.
/// Greedy generation of exactly `max_tokens` after the exact input `text`:
/// what every measurement of the worker asks for.
fn greedy_raw(text: String, max_tokens: u32, reuse_prefix: bool) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt: Prompt::Raw { text },
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix,
        ignore_eos: true,
        probs: None,
        constraint: None,
    }
}

async fn whet_run(engine: &mut EngineClient, gen_tokens: u32) -> Result<Generation, String> {
    whet_run_with(engine, gen_tokens, None).await
}

/// Alternatives per token when the bench measures the cost of probabilities.
const PROBS_TOP: u8 = 10;

async fn whet_run_with(
    engine: &mut EngineClient,
    gen_tokens: u32,
    probs: Option<ProbsRequest>,
) -> Result<Generation, String> {
    let request = GenerateRequest {
        probs,
        ..greedy_raw(PROMPT.to_string(), gen_tokens, false)
    };
    engine
        .generate(request, |_| {})
        .await
        .map_err(|e| e.to_string())
}

/// Time to first token of turn 1 and of the last turn of a scripted chat,
/// of the last turn again without prefix reuse for contrast, and of the bare
/// loop decoding as many new tokens at the same depth, alternating per rep.
async fn chat_ttft(
    engine: &mut EngineClient,
    args: &BenchArgs,
    raw_model: &raw::RawModel,
    raw_ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
    filler: &[llama_cpp_2::token::LlamaToken],
) -> Result<ChatTtft, String> {
    let mut out = ChatTtft {
        first: Vec::new(),
        last: Vec::new(),
        last_fresh: Vec::new(),
        raw_first: Vec::new(),
        raw_last: Vec::new(),
        first_shape: TurnShape::default(),
        last_shape: TurnShape::default(),
    };
    let shape = |g: &Generation| TurnShape {
        cached: g.stats.reused_tokens as usize,
        decoded: (g.stats.prompt_tokens - g.stats.reused_tokens) as usize,
    };
    for _ in 0..args.reps {
        let mut messages = vec![ChatMessage::new(
            Role::System,
            "You are a friendly gardening assistant. Answer briefly.",
        )];
        for (turn, question) in CHAT_TURNS.iter().take(args.turns).enumerate() {
            messages.push(ChatMessage::new(Role::User, *question));
            // Turn 1 starts from an empty cache, as a new conversation would.
            let generation = chat_turn(engine, &messages, turn != 0).await?;
            if turn == 0 {
                out.first.push(generation.timing.ttft_ms);
                out.first_shape = shape(&generation);
            }
            if turn + 1 == args.turns {
                out.last.push(generation.timing.ttft_ms);
                out.last_shape = shape(&generation);
                // The same last prompt evaluated from scratch, for contrast.
                let fresh = chat_turn(engine, &messages, false).await?;
                out.last_fresh.push(fresh.timing.ttft_ms);
            }
            messages.push(ChatMessage::new(Role::Assistant, generation.text));
        }
        let (first, last) = (out.first_shape, out.last_shape);
        out.raw_first.push(raw_model.measure_suffix(
            raw_ctx,
            filler,
            first.cached,
            first.decoded,
        )?);
        out.raw_last
            .push(raw_model.measure_suffix(raw_ctx, filler, last.cached, last.decoded)?);
    }
    Ok(out)
}

async fn chat_turn(
    engine: &mut EngineClient,
    messages: &[ChatMessage],
    reuse_prefix: bool,
) -> Result<Generation, String> {
    let request = GenerateRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: messages.to_vec(),
        },
        sampling: SamplingParams::greedy(),
        max_tokens: 48,
        stop: Vec::new(),
        reuse_prefix,
        ignore_eos: false,
        probs: None,
        constraint: None,
    };
    engine
        .generate(request, |_| {})
        .await
        .map_err(|e| e.to_string())
}

fn per_sec(count: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        count as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

fn print_table(r: &BenchReport) {
    outln!(
        "whet bench: {} | {} threads | ctx {} | {} reps, paths alternating",
        r.model.display(),
        r.threads,
        r.n_ctx,
        r.reps
    );
    outln!(
        "prompt {} tokens, {} generated tokens (greedy, end-of-generation ignored)\n",
        r.prompt_tokens,
        r.gen_tokens
    );
    outln!(
        "{:<22} {:>28} {:>28} {:>7}",
        "median [min-max]",
        "whet (worker + protocol)",
        "raw llama-cpp-2 loop",
        "ratio"
    );
    for (name, c) in [
        ("generation tok/s", &r.generation_tok_s),
        ("prompt eval tok/s", &r.prompt_eval_tok_s),
    ] {
        outln!(
            "{:<22} {:>28} {:>28} {:>7.3}",
            name,
            c.whet.display(1),
            c.raw.display(1),
            c.ratio
        );
    }
    let probs = &r.generation_with_probs_tok_s;
    outln!(
        "{:<22} {:>28} {:>28} {:>7.3}",
        format!("+ probs top {PROBS_TOP} tok/s"),
        probs.whet.display(1),
        format!("(whet without: {})", probs.raw.display(1)),
        probs.ratio
    );
    outln!(
        "greedy outputs identical on both paths: {}\n",
        if r.outputs_identical { "yes" } else { "NO" }
    );
    outln!(
        "chat time to first token ({} turns, prefix reuse):",
        r.chat_turns
    );
    outln!(
        "{:<22} {:>28} {:>28} {:>7}",
        "median [min-max] ms",
        "whet (worker + protocol)",
        "raw loop, same tokens",
        "ratio"
    );
    for (name, shape, whet, raw) in [
        ("turn 1", r.turn1_shape, &r.ttft_turn1_ms, &r.raw_turn1_ms),
        (
            &*format!("turn {}", r.chat_turns),
            r.last_turn_shape,
            &r.ttft_last_turn_ms,
            &r.raw_last_turn_ms,
        ),
    ] {
        let ratio = if raw.median > 0.0 {
            whet.median / raw.median
        } else {
            0.0
        };
        outln!(
            "{:<22} {:>28} {:>28} {:>7.3}   ({} tokens decoded on {} cached)",
            name,
            whet.display(1),
            raw.display(1),
            ratio,
            shape.decoded,
            shape.cached
        );
    }
    if let Some(h) = &r.ttft_history {
        outln!(
            "{:<22} {:>28} {:>28} {:>7.3}   ({} tokens decoded on {} cached)",
            format!("after {} history", h.shape.cached),
            h.whet_ms.display(1),
            h.raw_ms.display(1),
            h.ratio,
            h.shape.decoded,
            h.shape.cached
        );
    }
    outln!(
        "turn {} / turn 1: {:.2}; turn {} without prefix reuse: {} ms",
        r.chat_turns,
        r.ttft_ratio_last_over_first,
        r.chat_turns,
        r.ttft_last_turn_without_reuse_ms.display(1)
    );
    if let Some(kib) = r.worker_peak_rss_kib {
        outln!("\nworker peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
}
