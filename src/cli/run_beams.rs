//! `whet run --beams N`: beam search instead of sampling, each returned
//! sequence printed with its score.

use std::io::IsTerminal;
use std::process::ExitCode;

use whet::engine::beams::{BeamSettings, EarlyStopping};
use whet::engine::protocol::{Beam, BeamRequest, BeamStats, ModelInfo, Prompt};
use whet::engine::EngineClient;
use whet::outln;
use whet::prompt::TemplateSampling;

/// Beam search options of the command line, over a template's.
#[derive(clap::Args, Debug)]
pub struct BeamArgs {
    /// Beam search with N beams (1..=8) instead of sampling, as
    /// transformers' `generate(num_beams=N)` does it: deterministic, the
    /// sampling options do not apply. Prints each returned sequence with
    /// its score.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub beams: Option<u8>,
    /// Beam scores are the summed log-probability divided by the length to
    /// this power; above 0 favours longer sequences [default: 1].
    #[arg(long, value_name = "X", allow_hyphen_values = true)]
    pub length_penalty: Option<f32>,
    /// When the search may stop: true (as soon as N sequences have
    /// finished), false (when no running beam can beat the finished ones at
    /// its current length) or never (... at the token limit) [default: false].
    #[arg(long, value_name = "WHEN", value_parser = str::parse::<EarlyStopping>)]
    pub early_stopping: Option<EarlyStopping>,
    /// How many of the best sequences to return (at most the beams) [default: 1].
    #[arg(long = "num-return", value_name = "N")]
    pub num_return: Option<usize>,
    /// No n-gram of this size (prompt included) appears twice; 0 is off
    /// [default: 0].
    #[arg(long, value_name = "N")]
    pub no_repeat_ngram: Option<usize>,
}

impl BeamArgs {
    /// The beam search to run, if any: the template's (`num_beams` in its
    /// `[sampling]`), then these options over it.
    pub fn resolve(
        &self,
        template: Option<&TemplateSampling>,
    ) -> Result<Option<BeamSettings>, String> {
        let from_template = template.and_then(TemplateSampling::beams);
        let mut settings = match (self.beams, from_template) {
            (Some(n), base) => BeamSettings {
                num_beams: usize::from(n),
                ..base.unwrap_or_default()
            },
            (None, Some(base)) => base,
            (None, None) => {
                let stray = [
                    ("--length-penalty", self.length_penalty.is_some()),
                    ("--early-stopping", self.early_stopping.is_some()),
                    ("--num-return", self.num_return.is_some()),
                    ("--no-repeat-ngram", self.no_repeat_ngram.is_some()),
                ]
                .into_iter()
                .find(|(_, given)| *given);
                return match stray {
                    Some((flag, _)) => Err(format!(
                        "{flag} is a beam-search option: add --beams N (or use a template that sets num_beams)"
                    )),
                    None => Ok(None),
                };
            }
        };
        if let Some(value) = self.length_penalty {
            settings.length_penalty = value;
        }
        if let Some(value) = self.early_stopping {
            settings.early_stopping = value;
        }
        if let Some(value) = self.num_return {
            settings.num_return_sequences = value;
        }
        if let Some(value) = self.no_repeat_ngram {
            settings.no_repeat_ngram_size = value;
        }
        settings.validate()?;
        Ok(Some(settings))
    }
}

/// Runs the search and prints what it returned: to a terminal or a pipe,
/// each sequence under a line with its score (the text alone when one was
/// asked for); with `--json`, one object.
pub async fn run(
    mut engine: EngineClient,
    info: &ModelInfo,
    prompt: Prompt,
    beams: BeamSettings,
    max_tokens: u32,
    json: bool,
    raw_output: bool,
) -> Result<ExitCode, String> {
    if max_tokens == 0 {
        return Err("beam search needs a token limit: give --max-tokens N (N > 0)".into());
    }
    let request = BeamRequest {
        id: 0,
        prompt,
        beams: beams.clone(),
        max_tokens,
    };
    let outcome = engine
        .beams_until(request, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    let peak_rss_kib = engine.peak_rss_kib();
    engine.shutdown().await;
    let (list, stats) = match outcome {
        Ok(done) => done,
        Err(e) if e.to_string() == whet::engine::beams::CANCELLED => {
            return Ok(ExitCode::from(130))
        }
        Err(e) => return Err(e.to_string()),
    };

    if json {
        let report = serde_json::json!({
            "model": info.path,
            "beam_search": beams,
            "max_tokens": max_tokens,
            "beams": list,
            "stats": stats,
            "steps_per_sec": stats.steps_per_sec(),
            "tokens_per_sec": stats.tokens_per_sec(),
            "worker_peak_rss_kib": peak_rss_kib,
        });
        outln!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    let to_terminal = std::io::stdout().is_terminal() && !raw_output;
    let shown = |text: &str| {
        if to_terminal {
            whet::tui::sanitize::sanitize(text)
        } else {
            text.to_string()
        }
    };
    if let [only] = list.as_slice() {
        outln!("{}", shown(&only.text));
        eprintln!("{}", describe(only));
    } else {
        for (rank, beam) in list.iter().enumerate() {
            if rank > 0 {
                outln!();
            }
            outln!("── beam {} · {}", rank + 1, describe(beam));
            outln!("{}", shown(&beam.text));
        }
    }
    eprintln!("{}", summary_line(&beams, &stats));
    Ok(ExitCode::SUCCESS)
}

/// A returned sequence's figures: transformers' score and what it is made of.
fn describe(beam: &Beam) -> String {
    format!(
        "score {:.4} (log-probability {:.3} over {} tokens{})",
        beam.score,
        beam.logprob,
        beam.tokens.len(),
        if beam.eos {
            ", ended"
        } else {
            ", cut at the token limit"
        }
    )
}

fn summary_line(beams: &BeamSettings, stats: &BeamStats) -> String {
    format!(
        "prompt {} tok ({} reused) | {} beam{} × {} steps | prompt eval {:.0} ms | search {:.0} ms | {:.1} steps/s per beam | {:.1} tok/s over all beams",
        stats.prompt_tokens,
        stats.reused_tokens,
        beams.num_beams,
        if beams.num_beams == 1 { "" } else { "s" },
        stats.steps,
        stats.prompt_eval_ms,
        stats.search_ms,
        stats.steps_per_sec(),
        stats.tokens_per_sec(),
    )
}
