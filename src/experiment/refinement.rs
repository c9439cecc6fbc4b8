//! A variant's refinement rounds. In its `[[variants]]` entry:
//!
//! ```toml
//! refine = { rounds = 2, keep = "best", best_by = "chrf" }
//! # also: history = "fresh", stop_phrase = "" (never stop early),
//! #       feedback = "…{{task}}…{{answer}}…", refine = "…{{feedback}}…"
//! ```
//!
//! or `rounds = [0, 2]` and `keep = ["best", "last"]` in `[matrix]`
//! (`rounds = 0` is a plain variant). Each cell of such a variant is a
//! Self-Refine loop of [`crate::refine`]: the draft (the same generation as
//! a plain cell), then per round feedback on the latest pass and a refined
//! pass. Every pass is scored as a plain cell would be, and the cell's
//! output and scores are those of the pass it keeps:
//!
//! - `keep = "last"` (the default): the last pass, what refinement gives
//!   when nothing chooses;
//! - `keep = "best"`: the pass scoring highest on `best_by` against the
//!   item's references (the earlier pass on a tie; an item without
//!   references keeps the last). The refine loop itself picks no pass (a
//!   person marks one on the rounds screen): it scores every pass against
//!   the references, and "best" ranks the passes by that score. It is an
//!   oracle, since it looks at the references to choose: it says how good
//!   the best pass is, not what a system without references would return.
//!
//! Feedback and refine prompts, the stop phrase and a score threshold come
//! from the variant, else its template's `[refine]` table, else
//! `prompts/defaults/refine.toml`, as for `whet refine`.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::results::CellResult;
use super::score::{score, CellScores};
use super::spec::Check;
use crate::engine::protocol::{GenerationStats, StopReason};
use crate::prompt::placeholders;
use crate::prompt::template::{FEEDBACK_PLACEHOLDERS, REFINE_PLACEHOLDERS};
use crate::prompt::Refine;
use crate::refine::{
    History, LoopConfig, LoopEnd, RefinePrompts, RefineRun, DEFAULT_ROUNDS, DEFAULT_SCORE_PATTERN,
};

/// More rounds than this is a typo, not an experiment: each round is two
/// generations per cell.
pub const MAX_ROUNDS: u32 = 16;

/// The metrics `keep = "best"` can rank passes by: those against the
/// references (length would reward rambling).
pub const RANKING_METRICS: [&str; 6] = ["bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact"];

/// Which pass a refined cell is scored by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    Best,
    #[default]
    Last,
}

impl Keep {
    fn parse(text: &str) -> Option<Keep> {
        match text {
            "best" => Some(Keep::Best),
            "last" => Some(Keep::Last),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Keep::Best => "best",
            Keep::Last => "last",
        }
    }
}

/// A variant's rounds as the experiment file gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Refinement {
    pub rounds: u32,
    pub keep: Keep,
    /// The metric `keep = "best"` ranks by (None with `keep = "last"`).
    pub best_by: Option<String>,
    pub history: History,
    /// In place of the template's (or the default) prompts and stop phrase.
    pub feedback: Option<String>,
    pub refine: Option<String>,
    pub stop_phrase: Option<String>,
}

impl Default for Refinement {
    fn default() -> Self {
        Refinement {
            rounds: DEFAULT_ROUNDS,
            keep: Keep::Last,
            best_by: None,
            history: History::default(),
            feedback: None,
            refine: None,
            stop_phrase: None,
        }
    }
}

/// The `refine = { … }` table of a variant.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRefinement {
    rounds: Option<Spanned<u32>>,
    keep: Option<Spanned<String>>,
    best_by: Option<Spanned<String>>,
    history: Option<Spanned<String>>,
    feedback: Option<Spanned<String>>,
    refine: Option<Spanned<String>>,
    stop_phrase: Option<String>,
}

/// The metric `keep = "best"` ranks by when `best_by` is not given: the
/// experiment's first metric against the references.
fn default_best_by(metrics: &[String]) -> Option<String> {
    metrics
        .iter()
        .find(|m| RANKING_METRICS.contains(&m.as_str()))
        .cloned()
}

fn no_ranking_metric() -> String {
    format!(
        "keep = \"best\" ranks the passes by a metric against the references: set best_by ({}) or list one in 'metrics'",
        RANKING_METRICS.join(", ")
    )
}

/// Reads a variant's table; an error is placed at its offset in the file.
pub(super) fn parse(
    file: &Spanned<FileRefinement>,
    metrics: &[String],
) -> Result<Refinement, (usize, String)> {
    let table = file.get_ref();
    let mut out = Refinement::default();
    if let Some(rounds) = &table.rounds {
        if *rounds.get_ref() > MAX_ROUNDS {
            return Err((
                rounds.span().start,
                format!(
                    "rounds must be at most {MAX_ROUNDS} (each round is two generations per cell)"
                ),
            ));
        }
        out.rounds = *rounds.get_ref();
    }
    if let Some(keep) = &table.keep {
        out.keep = Keep::parse(keep.get_ref())
            .ok_or((keep.span().start, "keep = \"best\" or \"last\"".to_string()))?;
    }
    if let Some(history) = &table.history {
        out.history = match history.get_ref().as_str() {
            "conversation" => History::Conversation,
            "fresh" => History::Fresh,
            _ => {
                return Err((
                    history.span().start,
                    "history = \"conversation\" or \"fresh\"".into(),
                ))
            }
        };
    }
    match (&table.best_by, out.keep) {
        (Some(best_by), Keep::Last) => {
            return Err((
                best_by.span().start,
                "best_by goes with keep = \"best\" (keep = \"last\" ranks nothing)".into(),
            ))
        }
        (Some(best_by), Keep::Best) => {
            if !RANKING_METRICS.contains(&best_by.get_ref().as_str()) {
                return Err((
                    best_by.span().start,
                    format!(
                        "best_by '{}' is not a metric against the references ({})",
                        best_by.get_ref(),
                        RANKING_METRICS.join(", ")
                    ),
                ));
            }
            out.best_by = Some(best_by.get_ref().clone());
        }
        (None, Keep::Best) => {
            let at = table
                .keep
                .as_ref()
                .map_or(file.span().start, |k| k.span().start);
            out.best_by = Some(default_best_by(metrics).ok_or((at, no_ranking_metric()))?);
        }
        (None, Keep::Last) => {}
    }
    for (key, value, allowed) in [
        ("feedback", &table.feedback, FEEDBACK_PLACEHOLDERS),
        ("refine", &table.refine, REFINE_PLACEHOLDERS),
    ] {
        let Some(value) = value else { continue };
        check_prompt(key, value.get_ref(), allowed).map_err(|m| (value.span().start, m))?;
    }
    out.feedback = table.feedback.as_ref().map(|f| f.get_ref().clone());
    out.refine = table.refine.as_ref().map(|r| r.get_ref().clone());
    out.stop_phrase = table.stop_phrase.clone();
    Ok(out)
}

/// A feedback or refine prompt may use only the loop's placeholders, and
/// must show the model the answer it is about.
fn check_prompt(key: &str, text: &str, allowed: &[&str]) -> Result<(), String> {
    let segments = placeholders::parse(text).map_err(|errors| {
        errors
            .first()
            .map_or_else(String::new, |e| format!("refine.{key}: {e}"))
    })?;
    let mut has_answer = false;
    for segment in segments {
        if let placeholders::Segment::Var { name, .. } = segment {
            if !allowed.contains(&name.as_str()) {
                return Err(format!(
                    "unknown placeholder '{{{{{name}}}}}' in refine.{key} (it can use {})",
                    allowed.join(", ")
                ));
            }
            has_answer |= name == "answer";
        }
    }
    if !has_answer {
        return Err(format!(
            "refine.{key} never shows the model the answer: use {{{{answer}}}}"
        ));
    }
    Ok(())
}

/// Sets `rounds` or `keep` from a `[matrix]` value; Ok(false) for another
/// key.
pub(super) fn set_from_matrix(
    refinement: &mut Option<Refinement>,
    key: &str,
    value: &toml::Value,
    metrics: &[String],
) -> Result<bool, String> {
    match key {
        "rounds" => {
            let rounds = match value {
                toml::Value::Integer(n) if (0..=i64::from(MAX_ROUNDS)).contains(n) => *n as u32,
                _ => {
                    return Err(format!(
                        "matrix 'rounds' takes whole numbers from 0 to {MAX_ROUNDS}"
                    ))
                }
            };
            refinement.get_or_insert_with(Refinement::default).rounds = rounds;
        }
        "keep" => {
            let keep = match value {
                toml::Value::String(s) => Keep::parse(s),
                _ => None,
            }
            .ok_or("matrix 'keep' takes \"best\" and \"last\"")?;
            let refinement = refinement.get_or_insert_with(Refinement::default);
            refinement.keep = keep;
            refinement.best_by = match keep {
                Keep::Last => None,
                Keep::Best => Some(
                    refinement
                        .best_by
                        .clone()
                        .or_else(|| default_best_by(metrics))
                        .ok_or_else(no_ranking_metric)?,
                ),
            };
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A refined cell's loop as it runs: the prompts and settings resolved
/// (variant, then template, then defaults). All of it is part of the
/// cell's key: a change to any of them changes what the cell holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellRefinement {
    pub keep: Keep,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_by: Option<String>,
    pub prompts: RefinePrompts,
    pub config: LoopConfig,
}

impl CellRefinement {
    /// `refinement` over the variant's template's own `[refine]` table.
    pub fn resolve(refinement: &Refinement, template: &Refine) -> CellRefinement {
        let over = Refine {
            feedback: refinement.feedback.clone().or(template.feedback.clone()),
            refine: refinement.refine.clone().or(template.refine.clone()),
            stop_phrase: refinement
                .stop_phrase
                .clone()
                .or(template.stop_phrase.clone()),
            score_threshold: template.score_threshold,
            score_pattern: template.score_pattern.clone(),
        };
        let config = LoopConfig {
            max_rounds: refinement.rounds,
            history: refinement.history,
            stop_phrase: None,
            score_threshold: None,
            score_pattern: DEFAULT_SCORE_PATTERN.to_string(),
            n_ctx: None,
        };
        let (prompts, config) = crate::refine::resolve(config, &over);
        CellRefinement {
            keep: refinement.keep,
            best_by: refinement.best_by.clone(),
            prompts,
            config,
        }
    }

    /// The template's `[refine]` table that makes [`crate::refine::RefineLoop`]
    /// use exactly these prompts.
    pub fn as_template_refine(&self) -> Refine {
        Refine {
            feedback: Some(self.prompts.feedback.clone()),
            refine: Some(self.prompts.refine.clone()),
            stop_phrase: self.config.stop_phrase.clone(),
            score_threshold: self.config.score_threshold,
            score_pattern: Some(self.config.score_pattern.clone()),
        }
    }

    /// Generations when every round runs: the draft, then feedback and a
    /// pass per round (the loop can end sooner).
    pub fn most_generations(&self) -> u32 {
        1 + 2 * self.config.max_rounds
    }
}

/// A refined cell as saved with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefinedCell {
    pub keep: Keep,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_by: Option<String>,
    /// The pass whose output and scores are the cell's (index in `passes`,
    /// 0 the draft).
    pub kept: usize,
    pub passes: Vec<RefinedPass>,
    /// Why the loop ended: its rounds ran out, or sooner (the feedback
    /// found nothing to fix, a pass came out unchanged, a step failed).
    pub end: Option<LoopEnd>,
}

/// One pass of a refined cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefinedPass {
    pub output: String,
    pub stop_reason: StopReason,
    pub stats: GenerationStats,
    /// The experiment's metrics and checks, as a plain cell's.
    pub scores: CellScores,
    /// Its `best_by` score, which `keep = "best"` ranks by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank_score: Option<f64>,
    /// The feedback on it that led to the next pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<PassFeedback>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassFeedback {
    pub text: String,
    pub stop_reason: StopReason,
    pub stats: GenerationStats,
}

impl RefinedCell {
    /// The passes of a loop's run (unscored: see [`RefinedCell::rescore`]).
    pub fn from_run(run: &RefineRun, refinement: &CellRefinement) -> RefinedCell {
        let passes = run
            .passes
            .iter()
            .map(|pass| RefinedPass {
                output: pass.text.clone(),
                stop_reason: pass.reason,
                stats: pass.stats.clone(),
                scores: CellScores::default(),
                rank_score: None,
                feedback: pass.feedback.as_ref().map(|f| PassFeedback {
                    text: f.text.clone(),
                    stop_reason: f.reason,
                    stats: f.stats.clone(),
                }),
            })
            .collect::<Vec<_>>();
        RefinedCell {
            keep: refinement.keep,
            best_by: refinement.best_by.clone(),
            kept: passes.len().saturating_sub(1),
            passes,
            end: run.end.clone(),
        }
    }

    /// Scores every pass against `references` with the experiment's
    /// `metrics` and `checks`, and chooses the pass kept.
    pub fn rescore(&mut self, references: &[String], metrics: &[String], checks: &[Check]) {
        for pass in &mut self.passes {
            pass.scores = score(&pass.output, references, metrics, checks);
            pass.rank_score = self.best_by.as_ref().and_then(|metric| {
                score(&pass.output, references, std::slice::from_ref(metric), &[])
                    .metrics
                    .get(metric)
                    .copied()
            });
        }
        let ranks: Vec<Option<f64>> = self.passes.iter().map(|p| p.rank_score).collect();
        self.kept = kept_pass(self.keep, &ranks);
    }

    pub fn kept_pass(&self) -> Option<&RefinedPass> {
        self.passes.get(self.kept)
    }

    /// Generations run: every pass and every feedback.
    pub fn generations(&self) -> u32 {
        self.passes
            .iter()
            .map(|p| 1 + u32::from(p.feedback.is_some()))
            .sum()
    }

    /// The figures of every generation, summed (times too: they ran one
    /// after another).
    pub fn total_stats(&self) -> GenerationStats {
        let mut total = GenerationStats::default();
        let all = self
            .passes
            .iter()
            .flat_map(|p| std::iter::once(&p.stats).chain(p.feedback.as_ref().map(|f| &f.stats)));
        for stats in all {
            total.prompt_tokens += stats.prompt_tokens;
            total.reused_tokens += stats.reused_tokens;
            total.generated_tokens += stats.generated_tokens;
            total.prompt_eval_ms += stats.prompt_eval_ms;
            total.ttft_ms += stats.ttft_ms;
            total.generation_ms += stats.generation_ms;
        }
        total
    }

    /// `pass 2 of 3 kept (best by chrf)`.
    pub fn describe(&self) -> String {
        let how = match (&self.keep, &self.best_by) {
            (Keep::Best, Some(metric)) => format!("best by {metric}"),
            (keep, _) => keep.as_str().to_string(),
        };
        format!(
            "pass {} of {} kept ({how})",
            self.kept,
            self.passes.len().saturating_sub(1)
        )
    }
}

/// A refined variant's loops over a run: which pass its cells kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefineSummary {
    pub rounds: u32,
    pub keep: Keep,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_by: Option<String>,
    /// Cells with passes (error cells left out).
    pub cells: usize,
    /// Cells that kept pass i (0 the draft), for i up to `rounds`.
    pub kept: Vec<usize>,
    pub mean_passes: f64,
    /// Loops that ended before their rounds ran out (the feedback found
    /// nothing to fix, a pass came out the same as the one before…).
    pub ended_early: usize,
}

impl RefineSummary {
    /// Over a variant's `results` (None for a plain variant).
    pub fn of(refinement: Option<&Refinement>, results: &[&CellResult]) -> Option<RefineSummary> {
        let refinement = refinement?;
        let refined: Vec<&RefinedCell> = results
            .iter()
            .filter(|r| r.error.is_none())
            .filter_map(|r| r.refine.as_ref())
            .collect();
        let mut kept = vec![0; refinement.rounds as usize + 1];
        for cell in &refined {
            if let Some(count) = kept.get_mut(cell.kept) {
                *count += 1;
            }
        }
        let passes: usize = refined.iter().map(|c| c.passes.len()).sum();
        Some(RefineSummary {
            rounds: refinement.rounds,
            keep: refinement.keep,
            best_by: refinement.best_by.clone(),
            cells: refined.len(),
            kept,
            mean_passes: passes as f64 / refined.len().max(1) as f64,
            ended_early: refined
                .iter()
                .filter(|c| c.passes.len() <= refinement.rounds as usize)
                .count(),
        })
    }

    /// `2 rounds, keep best by chrf: kept the draft in 3 cells, pass 1 in
    /// 5, pass 2 in 12; 2.9 passes per cell, 1 loop ended early`.
    pub fn describe(&self) -> String {
        let how = match (&self.keep, &self.best_by) {
            (Keep::Best, Some(metric)) => format!("keep best by {metric}"),
            (keep, _) => format!("keep {}", keep.as_str()),
        };
        let kept: Vec<String> = self
            .kept
            .iter()
            .enumerate()
            .map(|(pass, cells)| match pass {
                0 => format!("the draft in {cells}"),
                _ => format!("pass {pass} in {cells}"),
            })
            .collect();
        let early = match self.ended_early {
            0 => String::new(),
            1 => ", 1 loop ended early".to_string(),
            n => format!(", {n} loops ended early"),
        };
        format!(
            "{} round{}, {how}: kept {} of {} cells; {:.1} passes per cell{early}",
            self.rounds,
            if self.rounds == 1 { "" } else { "s" },
            kept.join(", "),
            self.cells,
            self.mean_passes
        )
    }
}

/// The pass kept: the last, or the highest ranked (the earliest of equals;
/// the last when no pass has a score).
pub fn kept_pass(keep: Keep, ranks: &[Option<f64>]) -> usize {
    let last = ranks.len().saturating_sub(1);
    if keep == Keep::Last {
        return last;
    }
    let mut best: Option<(usize, f64)> = None;
    for (index, rank) in ranks.iter().enumerate() {
        if let Some(value) = rank.filter(|v| !v.is_nan()) {
            if best.is_none_or(|(_, b)| value > b) {
                best = Some((index, value));
            }
        }
    }
    best.map_or(last, |(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_keeps_the_earliest_highest_and_last_the_last() {
        let ranks = [Some(10.0), Some(30.0), Some(30.0), Some(20.0)];
        assert_eq!(kept_pass(Keep::Best, &ranks), 1);
        assert_eq!(kept_pass(Keep::Last, &ranks), 3);
        // Without references nothing ranks: the last pass is kept.
        assert_eq!(kept_pass(Keep::Best, &[None, None]), 1);
        assert_eq!(kept_pass(Keep::Best, &[None, Some(0.0), None]), 1);
        assert_eq!(kept_pass(Keep::Best, &[]), 0);
    }

    #[test]
    fn passes_are_scored_and_the_kept_one_chosen_by_its_metric() {
        let pass = |text: &str, feedback: bool| RefinedPass {
            output: text.into(),
            stop_reason: StopReason::Eos,
            stats: GenerationStats {
                generated_tokens: 2,
                prompt_tokens: 10,
                ..Default::default()
            },
            scores: CellScores::default(),
            rank_score: None,
            feedback: feedback.then(|| PassFeedback {
                text: "fix it".into(),
                stop_reason: StopReason::Eos,
                stats: GenerationStats {
                    generated_tokens: 3,
                    prompt_tokens: 20,
                    ..Default::default()
                },
            }),
        };
        let mut cell = RefinedCell {
            keep: Keep::Best,
            best_by: Some("chrf".into()),
            kept: 0,
            passes: vec![
                pass("a cold pizza", true),
                pass("the pizza was hot", true),
                pass("pizza", false),
            ],
            end: Some(LoopEnd::MaxRounds),
        };
        let references = ["The pizza was hot.".to_string()];
        cell.rescore(
            &references,
            &["length".into()],
            &[Check::Contains("hot".into())],
        );
        assert_eq!(cell.kept, 1);
        assert_eq!(cell.passes[1].scores.checks, [true]);
        assert_eq!(cell.passes[1].scores.metrics["length"], 4.0);
        assert!(cell.passes[1].rank_score > cell.passes[0].rank_score);
        assert_eq!(cell.describe(), "pass 1 of 2 kept (best by chrf)");
        cell.keep = Keep::Last;
        cell.rescore(&references, &[], &[]);
        assert_eq!(cell.kept, 2);
        assert_eq!(cell.generations(), 5);
        let total = cell.total_stats();
        assert_eq!((total.generated_tokens, total.prompt_tokens), (12, 70));
    }

    #[test]
    fn a_variant_summary_counts_the_passes_kept_and_the_loops_ended_early() {
        let refinement = Refinement {
            rounds: 2,
            keep: Keep::Best,
            best_by: Some("chrf".into()),
            ..Refinement::default()
        };
        let loop_of = |passes: usize, kept: usize| {
            let pass = RefinedPass {
                output: "x".into(),
                stop_reason: StopReason::Eos,
                stats: GenerationStats::default(),
                scores: CellScores::default(),
                rank_score: None,
                feedback: None,
            };
            CellResult {
                refine: Some(RefinedCell {
                    keep: Keep::Best,
                    best_by: Some("chrf".into()),
                    kept,
                    passes: vec![pass; passes],
                    end: None,
                }),
                ..CellResult::for_test("k")
            }
        };
        let mut failed = loop_of(1, 0);
        failed.error = Some("the worker died".into());
        let results = [loop_of(3, 1), loop_of(3, 2), loop_of(1, 0), failed];
        let cells: Vec<&CellResult> = results.iter().collect();
        let summary = RefineSummary::of(Some(&refinement), &cells).unwrap();
        assert_eq!((summary.cells, summary.kept.clone()), (3, vec![1, 1, 1]));
        assert_eq!(summary.ended_early, 1);
        assert!((summary.mean_passes - 7.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            summary.describe(),
            "2 rounds, keep best by chrf: kept the draft in 1, pass 1 in 1, pass 2 in 1 of 3 cells; 2.3 passes per cell, 1 loop ended early"
        );
        assert!(RefineSummary::of(None, &cells).is_none());
    }
}
