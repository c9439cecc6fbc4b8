//! `whet run`: one generation, streamed to stdout, with a summary on stderr.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use whet::outln;

use tokio::sync::Notify;
use whet::engine::client::Generation;
use whet::engine::probs::{Confidence, ProbsRequest, ReplyConfidence};
use whet::engine::protocol::{ChatMessage, Constraint, GenerateRequest, Prompt, Role, StopReason};
use whet::engine::sampling::SamplingOverrides;
use whet::engine::SamplingParams;
use whet::prompt::TemplateSampling;
use whet::sampling_defaults::{self, SamplingDefaults};

use super::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The prompt; read from stdin when absent.
    #[arg(conflicts_with = "template")]
    pub prompt: Option<String>,
    /// Render this prompt template (shipped, or yours in <config>/prompts)
    /// instead of a prompt; its sampling defaults apply unless given here.
    #[arg(long, conflicts_with_all = ["raw", "system"])]
    pub template: Option<String>,
    #[command(flatten)]
    pub template_input: super::templates::TemplateInput,
    #[command(flatten)]
    pub model: ModelArgs,
    /// A system message (chat mode only).
    #[arg(long, conflicts_with = "raw")]
    pub system: Option<String>,
    /// Send the prompt as the exact model input, without a chat template.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub beams: super::run_beams::BeamArgs,
    /// Report each token's log-probability and its N most likely
    /// alternatives (0..=20): in the JSON's tokens, and as shading (low
    /// confidence underlined) and a summary line when writing to a terminal.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=20))]
    pub probs: Option<u8>,
    /// With --probs: the distribution the sampler drew from (after the
    /// penalties, top-k/top-p/min-p and temperature) instead of the model's
    /// raw one.
    #[arg(long, requires = "probs")]
    pub probs_after_sampler: bool,
    #[command(flatten)]
    pub constraint: ConstraintArgs,
    /// Print one JSON object with the text and statistics instead of streaming.
    #[arg(long)]
    pub json: bool,
    /// Write control characters and escape sequences from the model to a
    /// terminal unchanged. By default they are shown as visible symbols (␛)
    /// when stdout is a terminal, so output cannot drive it (clear the
    /// screen, set the clipboard); pipes and files always get the exact bytes.
    #[arg(long)]
    pub raw_output: bool,
}

/// Sampling settings of the command line, over a template's, over the
/// user's defaults (`<config>/sampling.toml`), over the model's recommended
/// ones (catalog models), over llama.cpp's defaults.
#[derive(clap::Args, Debug)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 is greedy (deterministic) [default: the
    /// model's recommendation, else 0.8].
    #[arg(long = "temp")]
    pub temperature: Option<f32>,
    /// Keep the k most likely tokens (0 = off) [default: 40].
    #[arg(long)]
    pub top_k: Option<i32>,
    /// Nucleus sampling threshold (1 = off) [default: the model's
    /// recommendation, else 0.95].
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Minimum probability relative to the top token (0 = off) [default: 0.05].
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Penalty for repeating recent tokens (1 = off) [default: 1].
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// How many recent tokens the repeat penalty considers [default: 64].
    #[arg(long)]
    pub repeat_last_n: Option<i32>,
    /// Random seed [default: different each run].
    #[arg(long)]
    pub seed: Option<u32>,
    /// Stop after this many generated tokens (0 = until the context is
    /// full) [default: 512].
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Stop when the output contains this text (repeatable); it is not printed.
    #[arg(long = "stop", value_name = "STR")]
    pub stops: Vec<String>,
}

impl SamplingArgs {
    /// The sampler, the token limit and the stop strings: `defaults` (the
    /// model's and the user's; a fresh seed), then the template's, then
    /// these.
    pub fn resolve(
        &self,
        defaults: &SamplingDefaults,
        template: Option<&TemplateSampling>,
    ) -> Result<(SamplingParams, u32, Vec<String>), String> {
        if self.stops.iter().any(|s| s.is_empty()) {
            return Err("--stop needs a non-empty string".into());
        }
        let fresh = SamplingParams {
            seed: SamplingParams::fresh_seed(),
            ..SamplingParams::default()
        };
        let mut sampling = defaults.resolve(&SamplingOverrides::default(), &fresh);
        if let Some(defaults) = template {
            defaults.apply(&mut sampling);
        }
        let set = |value: Option<f32>, field: &mut f32| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(self.temperature, &mut sampling.temperature);
        set(self.top_p, &mut sampling.top_p);
        set(self.min_p, &mut sampling.min_p);
        set(self.repeat_penalty, &mut sampling.repeat_penalty);
        sampling.top_k = self.top_k.unwrap_or(sampling.top_k);
        sampling.repeat_last_n = self.repeat_last_n.unwrap_or(sampling.repeat_last_n);
        sampling.seed = self.seed.unwrap_or(sampling.seed);
        sampling.validate()?;
        let template_max = template.and_then(|s| s.max_tokens);
        let max_tokens = self.max_tokens.or(template_max).unwrap_or(512);
        let stops = if self.stops.is_empty() {
            template.and_then(|s| s.stop.clone()).unwrap_or_default()
        } else {
            self.stops.clone()
        };
        Ok((sampling, max_tokens, stops))
    }
}

pub async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let input = &args.template_input;
    if args.template.is_none() && (!input.vars.is_empty() || input.examples != "enabled") {
        return Err("--var and --examples need --template NAME".into());
    }
    // Template first: its problems are reported before a model is loaded.
    let rendered = match &args.template {
        Some(name) => Some(super::templates::render(name, &args.template_input)?),
        None => None,
    };
    let template_sampling = rendered.as_ref().map(|(t, _)| t.sampling.clone());
    let text = match &rendered {
        Some(_) => String::new(),
        None => prompt_text(args.prompt.clone())?,
    };
    let (sampling, max_tokens, stops) = args.sampling.resolve(
        &sampling_defaults_for(&args.model.model_path()?)?,
        template_sampling.as_ref(),
    )?;
    let constraint = args
        .constraint
        .resolve(args.template.as_deref(), template_sampling.as_ref())?;
    let beams = args.beams.resolve(template_sampling.as_ref())?;
    let mut load = args.model.load_request()?;
    if let Some(beams) = &beams {
        if args.probs.is_some() {
            return Err("--probs does not apply to beam search: each returned sequence comes with its log-probability".into());
        }
        if constraint.is_some() {
            return Err("a grammar or JSON schema does not apply to beam search".into());
        }
        if !args.sampling.stops.is_empty() {
            return Err("--stop does not apply to beam search: sequences end on the model's end-of-generation tokens or the token limit".into());
        }
        // The sequences the search needs, so that the worker need not
        // re-create the context.
        load.parallel = whet::engine::beams::sequences_for(beams.num_beams);
    }

    let (mut engine, info) = super::start_engine(&args.model, &load).await?;
    let prompt = if let Some((_, messages)) = rendered {
        Prompt::Chat { messages }
    } else if args.raw {
        Prompt::Raw { text }
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::new(Role::System, system.clone()));
        }
        messages.push(ChatMessage::new(Role::User, text));
        Prompt::Chat { messages }
    };
    if let Some(beams) = beams {
        if !stops.is_empty() {
            eprintln!("note: the template's stop strings do not apply to beam search");
        }
        return super::run_beams::run(
            engine,
            &info,
            prompt,
            beams,
            max_tokens,
            args.json,
            args.raw_output,
        )
        .await;
    }
    let request = GenerateRequest {
        id: 0,
        prompt,
        sampling: sampling.clone(),
        max_tokens,
        stop: stops,
        reuse_prefix: true,
        ignore_eos: false,
        probs: args.probs.map(|top| ProbsRequest {
            top,
            after_sampler: args.probs_after_sampler,
        }),
        constraint,
    };

    let json = args.json;
    let mut stdout = std::io::stdout();
    let mut to_terminal = (stdout.is_terminal() && !args.raw_output)
        .then(whet::tui::sanitize::TerminalStream::default);
    // Ctrl+C, or a reader that went away (`| head`), ends the generation early.
    let stdout_closed = Arc::new(Notify::new());
    let mut stdout_is_closed = false;
    let cancel = {
        let stdout_closed = Arc::clone(&stdout_closed);
        async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = stdout_closed.notified() => {}
            }
        }
    };
    let shade = to_terminal.is_some() && args.probs.is_some();
    let generation = engine
        .generate_tokens_until(
            request,
            |piece, probs| {
                if json || stdout_is_closed {
                    return;
                }
                let shown = match to_terminal.as_mut() {
                    Some(stream) => std::borrow::Cow::Owned(stream.push(piece)),
                    None => std::borrow::Cow::Borrowed(piece),
                };
                let shown = match probs.filter(|_| shade) {
                    Some(probs) => std::borrow::Cow::Owned(shaded(&shown, probs.logprob)),
                    None => shown,
                };
                let written = stdout
                    .write_all(shown.as_bytes())
                    .and_then(|()| stdout.flush());
                if written.is_err() {
                    stdout_is_closed = true;
                    stdout_closed.notify_one();
                }
            },
            cancel,
        )
        .await
        .map_err(|e| e.to_string())?;
    let peak_rss_kib = engine.peak_rss_kib();
    engine.shutdown().await;

    if json {
        let report = serde_json::json!({
            "model": info.path,
            "text": generation.text,
            "stop_reason": generation.reason,
            "stats": generation.stats,
            "timing": generation.timing,
            "prompt_tokens_per_sec": generation.stats.prompt_tokens_per_sec(),
            "generation_tokens_per_sec": generation.stats.generation_tokens_per_sec(),
            "seed": sampling.seed,
            "sampling": sampling,
            "worker_peak_rss_kib": peak_rss_kib,
            "confidence": args.probs.and_then(|_| confidence_json(&generation)),
            "tokens": generation.tokens,
            "note": grammar_note(&generation),
        });
        outln!("{report}");
    } else {
        if let Some(rest) = to_terminal.as_mut().map(|s| s.finish()) {
            if !stdout_is_closed {
                let _ = stdout.write_all(rest.as_bytes());
            }
        }
        if !generation.text.ends_with('\n') && !stdout_is_closed {
            outln!();
        }
        eprintln!("{}", summary_line(&generation));
        if let Some(note) = grammar_note(&generation) {
            eprintln!("{note}");
        }
        if let Some(line) = args.probs.and_then(|_| confidence_line(&generation)) {
            eprintln!("{line}");
        }
    }
    if stdout_is_closed {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if generation.reason == StopReason::Cancelled {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--grammar` / `--json-schema`, as `run` and `refine` take them.
#[derive(clap::Args, Debug, Default)]
pub struct ConstraintArgs {
    /// Constrain the output to this GBNF grammar (llama.cpp's format, start
    /// rule `root`) [default: the template's `grammar`].
    #[arg(long, value_name = "FILE.gbnf", conflicts_with = "json_schema")]
    pub grammar: Option<std::path::PathBuf>,
    /// Constrain the output to JSON matching this JSON Schema (converted to
    /// a grammar by llama.cpp) [default: the template's `json_schema`].
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<std::path::PathBuf>,
}

impl ConstraintArgs {
    /// The grammar or schema of the command line, else that of template
    /// `name` (its file relative to the template's); read and checked (a
    /// schema converted, with llama.cpp's converter) before a model is
    /// loaded. A grammar's syntax is checked by the worker, also before
    /// anything is decoded.
    pub fn resolve(
        &self,
        name: Option<&str>,
        template: Option<&TemplateSampling>,
    ) -> Result<Option<Constraint>, String> {
        let constraint = match (&self.grammar, &self.json_schema, template) {
            (Some(file), _, _) => Some(Constraint::grammar_file(file)?),
            (None, Some(file), _) => Some(Constraint::schema_file(file)?),
            (None, None, Some(sampling)) => {
                let name = name.unwrap_or_default();
                sampling.constraint(&super::templates::template_dir(name)?)?
            }
            (None, None, None) => None,
        };
        if let Some(schema @ Constraint::JsonSchema { .. }) = &constraint {
            schema.gbnf()?;
        }
        Ok(constraint)
    }
}

/// "output incomplete: the grammar was not finished (stopped by max
/// tokens)" for constrained output that does not match.
fn grammar_note(generation: &Generation) -> Option<String> {
    generation.stats.grammar?.note(generation.reason)
}

/// The model's recommended sampling and the user's defaults. A mistake in
/// the user's file stops the command: a script would otherwise run with
/// settings nobody chose.
pub fn sampling_defaults_for(model: &std::path::Path) -> Result<SamplingDefaults, String> {
    let user = match whet::paths::config_dir() {
        Ok(dir) => {
            let (user, problems) =
                sampling_defaults::load_user_file(&dir.join(sampling_defaults::USER_FILE));
            if let Some(problem) = problems.into_iter().next() {
                return Err(problem);
            }
            user
        }
        Err(_) => SamplingOverrides::default(),
    };
    Ok(SamplingDefaults::for_model(model, user))
}

fn prompt_text(argument: Option<String>) -> Result<String, String> {
    if let Some(text) = argument {
        return Ok(text);
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err("no prompt: pass it as an argument or pipe it on stdin".into());
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the prompt from stdin: {e}"))?;
    Ok(text)
}

/// The least likely tokens a summary names.
const LOWEST_SHOWN: usize = 5;

/// A token's text shaded by how sure the model was: low confidence red and
/// underlined (visible without colour), medium yellow, high as is.
fn shaded(text: &str, logprob: f32) -> String {
    if text.is_empty() {
        return String::new();
    }
    match Confidence::of(logprob.exp()) {
        Confidence::Low => format!("\x1b[4;31m{text}\x1b[0m"),
        Confidence::Medium => format!("\x1b[33m{text}\x1b[0m"),
        Confidence::High => text.to_string(),
    }
}

fn reply_confidence(generation: &Generation) -> Option<ReplyConfidence> {
    let logprobs: Vec<f32> = generation
        .tokens
        .iter()
        .filter_map(|t| t.probs.as_ref().map(|p| p.logprob))
        .collect();
    ReplyConfidence::of(&logprobs, LOWEST_SHOWN)
}

fn confidence_json(generation: &Generation) -> Option<serde_json::Value> {
    let confidence = reply_confidence(generation)?;
    let lowest: Vec<_> = confidence
        .lowest
        .iter()
        .map(|&(index, logprob)| {
            serde_json::json!({
                "index": index,
                "text": generation.tokens[index].text,
                "token": generation.tokens[index].token,
                "logprob": logprob,
            })
        })
        .collect();
    Some(serde_json::json!({
        "tokens": confidence.tokens,
        "mean_logprob": confidence.mean_logprob,
        "perplexity": confidence.perplexity,
        "lowest": lowest,
    }))
}

/// "confidence: mean log-prob -0.41 | perplexity 1.51 | least sure: "Paris" 12%, …"
fn confidence_line(generation: &Generation) -> Option<String> {
    let confidence = reply_confidence(generation)?;
    let lowest: Vec<String> = confidence
        .lowest
        .iter()
        .map(|&(index, logprob)| {
            format!(
                "{:?} {:.0}%",
                generation.tokens[index].text,
                f64::from(logprob).exp() * 100.0
            )
        })
        .collect();
    Some(format!(
        "confidence: mean log-prob {:.2} | perplexity {:.2} | least sure: {}",
        confidence.mean_logprob,
        confidence.perplexity,
        lowest.join(", ")
    ))
}

pub fn summary_line(generation: &Generation) -> String {
    let stats = &generation.stats;
    format!(
        "prompt {} tok ({} reused) | generated {} tok | TTFT {:.0} ms | prompt eval {:.1} tok/s | generation {:.1} tok/s | stop: {}",
        stats.prompt_tokens,
        stats.reused_tokens,
        stats.generated_tokens,
        generation.timing.ttft_ms,
        stats.prompt_tokens_per_sec(),
        stats.generation_tokens_per_sec(),
        generation.reason.describe()
    )
}
