//! `whet refine`: the Self-Refine loop from the command line — a draft,
//! then feedback and a refined pass per round — printing each pass with
//! its feedback and scores (or one JSON object), and saving the run.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use whet::engine::protocol::{ChatMessage, Role};
use whet::engine::{EngineClient, SamplingParams};
use whet::metrics::Scores;
use whet::outln;
use whet::refine::{
    self, store, Generated, Generator, History, LoopConfig, LoopEvent, RefineLoop, RefineRun,
    RefineSetup, Step, StepKind, DEFAULT_ROUNDS, DEFAULT_SCORE_PATTERN,
};

use super::run::{ConstraintArgs, SamplingArgs};
use super::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct RefineArgs {
    /// Refine the answer to a plain prompt (the default feedback and refine
    /// prompts of prompts/defaults/refine.toml apply).
    #[arg(
        long,
        conflicts_with = "template",
        required_unless_present = "template"
    )]
    pub prompt: Option<String>,
    /// Refine the answer to this template (its feedback and refine prompts,
    /// stop phrase, sampling and references apply).
    #[arg(long)]
    pub template: Option<String>,
    #[command(flatten)]
    pub template_input: super::templates::TemplateInput,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// The draft and every refined pass follow it (the feedback is free).
    #[command(flatten)]
    pub constraint: ConstraintArgs,
    /// Refine rounds after the draft.
    #[arg(long, default_value_t = DEFAULT_ROUNDS)]
    pub rounds: u32,
    /// What each feedback and refine step sees: `conversation` (the run so
    /// far, then the request; only new tokens are decoded) or `fresh` (the
    /// request alone).
    #[arg(long, value_enum, default_value_t = History::Conversation)]
    pub history: History,
    /// End when the feedback contains this [default: the template's, else
    /// "NO FURTHER CHANGES"].
    #[arg(long)]
    pub stop_phrase: Option<String>,
    /// End when the score found in the feedback reaches this.
    #[arg(long)]
    pub score_threshold: Option<f64>,
    /// Where the feedback's score is: a regular expression whose first group
    /// is the number.
    #[arg(long, default_value = DEFAULT_SCORE_PATTERN)]
    pub score_pattern: String,
    /// A reference output to score every pass against: text, or @FILE
    /// (repeatable). Without one, a template's own references are used when
    /// all its values are the defaults.
    #[arg(long = "reference", value_name = "TEXT|@FILE")]
    pub references: Vec<String>,
    /// Print one JSON object with every pass instead of streaming.
    #[arg(long)]
    pub json: bool,
    /// Do not save the run in <data>/refinements.
    #[arg(long)]
    pub no_save: bool,
}

pub async fn run(args: RefineArgs) -> Result<ExitCode, String> {
    let input = &args.template_input;
    if args.template.is_none() && (!input.vars.is_empty() || input.examples != "enabled") {
        return Err("--var and --examples need --template NAME".into());
    }
    // Everything the command line can get wrong, before a model loads.
    let (setup_base, template_sampling) = task(&args)?;
    let (sampling, max_tokens, stop) = args.sampling.resolve(
        &super::run::sampling_defaults_for(&args.model.model_path()?)?,
        template_sampling.as_ref(),
    )?;
    let constraint = args
        .constraint
        .resolve(args.template.as_deref(), template_sampling.as_ref())?;
    let mut references = Vec::new();
    for reference in &args.references {
        references.push(read_text(reference)?);
    }
    if references.is_empty() {
        references = setup_base.default_references;
    }
    let setup = RefineSetup {
        template: setup_base.name,
        template_toml: setup_base.toml,
        values: setup_base.values,
        model: None,
        sampling: sampling.clone(),
        max_tokens,
        stop: stop.clone(),
        constraint,
        config: LoopConfig {
            max_rounds: args.rounds,
            history: args.history,
            stop_phrase: args.stop_phrase.clone(),
            score_threshold: args.score_threshold,
            score_pattern: args.score_pattern.clone(),
            // Known once the model has loaded.
            n_ctx: None,
        },
        refine: setup_base.refine,
        draft_messages: setup_base.messages,
        references,
    };
    let mut refine = RefineLoop::new(setup)?;
    let load = args.model.load_request()?;
    refine.set_model(load.model.clone());

    let (mut engine, info) = super::start_engine(&args.model, &load).await?;
    refine.set_n_ctx(info.n_ctx);
    let mut generator = EngineGenerator {
        engine: &mut engine,
        sampling,
        max_tokens,
        stop,
    };
    let json = args.json;
    let mut stdout = std::io::stdout();
    refine::drive(&mut refine, &mut generator, |event| {
        if json {
            return;
        }
        match event {
            LoopEvent::Started(kind) => outln!("── {} ──", kind.describe()),
            LoopEvent::Text(text) => {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            LoopEvent::Finished(kind, run) => {
                outln!();
                outln!("{}", step_summary(kind, run));
            }
        }
    })
    .await;
    engine.shutdown().await;

    let mut run = refine.into_run();
    let saved = if args.no_save {
        None
    } else {
        Some(save(&mut run)?)
    };
    let totals = run.totals();
    if json {
        let mut report = serde_json::to_value(&run).map_err(|e| e.to_string())?;
        report["token_totals"] = serde_json::json!({
            "per_round": run.round_totals().iter().map(|t| serde_json::json!({
                "generations": t.generations,
                "decoded": t.decoded(),
                "decoded_without_reuse": t.decoded_without_reuse(),
            })).collect::<Vec<_>>(),
            "decoded": totals.decoded(),
            "decoded_without_reuse": totals.decoded_without_reuse(),
            "reused": totals.reused_tokens,
        });
        report["saved_to"] = serde_json::json!(saved);
        outln!("{report}");
    } else {
        if let Some(end) = &run.end {
            outln!("ended: {}", end.describe());
        }
        let saving = 100.0
            * (1.0
                - f64::from(totals.decoded()) / f64::from(totals.decoded_without_reuse().max(1)));
        outln!(
            "tokens decoded: {} (without prefix reuse: {}; {:.0}% saved)",
            totals.decoded(),
            totals.decoded_without_reuse(),
            saving
        );
        if let Some(path) = &saved {
            outln!("saved: {}", path.display());
        }
    }
    Ok(match run.end {
        Some(refine::LoopEnd::Cancelled) => ExitCode::from(130),
        Some(refine::LoopEnd::Failed { .. }) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// What the loop starts from: the rendered task and what goes with it.
struct TaskBase {
    name: String,
    toml: String,
    values: BTreeMap<String, String>,
    refine: whet::prompt::Refine,
    messages: Vec<ChatMessage>,
    default_references: Vec<String>,
}

fn task(args: &RefineArgs) -> Result<(TaskBase, Option<whet::prompt::TemplateSampling>), String> {
    if let Some(name) = &args.template {
        let (template, messages) = super::templates::render(name, &args.template_input)?;
        let values = whet::prompt::parse_vars(&args.template_input.vars)?;
        // A template's references answer its default values only.
        let default_references = if values.is_empty() {
            template.references.clone()
        } else {
            Vec::new()
        };
        let base = TaskBase {
            name: template.name.clone(),
            toml: whet::prompt::to_toml(&template),
            values,
            refine: template.refine.clone(),
            messages,
            default_references,
        };
        return Ok((base, Some(template.sampling)));
    }
    let prompt = args.prompt.clone().unwrap_or_default();
    if prompt.trim().is_empty() {
        return Err("--prompt is empty".into());
    }
    let base = TaskBase {
        name: "prompt".into(),
        toml: String::new(),
        values: BTreeMap::new(),
        refine: Default::default(),
        messages: vec![ChatMessage::new(Role::User, prompt)],
        default_references: Vec::new(),
    };
    Ok((base, None))
}

/// `@FILE` is the file's text; anything else is the text itself.
fn read_text(value: &str) -> Result<String, String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
        None => Ok(value.to_string()),
    }
}

fn save(run: &mut RefineRun) -> Result<std::path::PathBuf, String> {
    store::save_new(&store::refinements_dir()?, run)
}

/// One line after a step: its figures, and a pass's scores.
fn step_summary(kind: StepKind, run: &RefineRun) -> String {
    let (stats, reason, scores, diff) = match kind {
        StepKind::Draft | StepKind::Refine { .. } => match run.passes.last() {
            Some(pass) => (&pass.stats, pass.reason, Some(&pass.scores), pass.diff),
            None => return String::new(),
        },
        StepKind::Feedback { .. } => match run.passes.last().and_then(|p| p.feedback.as_ref()) {
            Some(feedback) => (&feedback.stats, feedback.reason, None, None),
            None => return String::new(),
        },
    };
    let mut line = format!(
        "   [{} tok, {} of {} prompt tokens reused, {:.1} tok/s, {}]",
        stats.generated_tokens,
        stats.reused_tokens,
        stats.prompt_tokens,
        stats.generation_tokens_per_sec(),
        reason.describe()
    );
    if let Some(scores) = scores {
        line.push_str(&format!("\n   {}", describe_scores(scores)));
    }
    if let Some(diff) = diff {
        line.push_str(&format!(
            " · -{} +{} words vs the previous pass",
            diff.deleted, diff.inserted
        ));
    }
    line
}

pub fn describe_scores(scores: &Scores) -> String {
    let mut parts = Vec::new();
    if let Some(bleu) = scores.bleu {
        parts.push(format!("BLEU {bleu:.2}"));
    }
    if let Some(chrf) = scores.chrf {
        parts.push(format!("chrF {chrf:.2}"));
    }
    if let (Some(r1), Some(r2), Some(rl)) = (scores.rouge1, scores.rouge2, scores.rouge_l) {
        parts.push(format!("ROUGE-1/2/L {r1:.3}/{r2:.3}/{rl:.3}"));
    }
    if let Some(exact) = scores.exact_match {
        parts.push(format!("exact {}", if exact { "yes" } else { "no" }));
    }
    parts.push(format!("{} words, {} chars", scores.words, scores.chars));
    parts.join(" · ")
}

/// The engine as the loop's generator: each step is a chat generation
/// with the run's settings; Ctrl+C cancels the step in progress.
struct EngineGenerator<'a> {
    engine: &'a mut EngineClient,
    sampling: SamplingParams,
    max_tokens: u32,
    stop: Vec<String>,
}

impl Generator for EngineGenerator<'_> {
    async fn generate(
        &mut self,
        step: &Step,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generated, String> {
        let request = step.request(&self.sampling, self.max_tokens, &self.stop);
        let cancel = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        self.engine
            .generate_until(request, on_text, cancel)
            .await
            .map(Generated::from)
            .map_err(|e| e.to_string())
    }
}
