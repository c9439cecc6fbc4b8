//! What a run is about to do, said before it starts: its cells (items ×
//! variants × repeats) and how many are done or cached, the prompt tokens
//! the rest need (counted with the loaded model's tokenizer and chat
//! template, each cell's whole prompt), and an estimated time from the
//! speed measured in earlier runs on the same model file at the same
//! parallelism — or, without such runs, no estimate. A refined cell is up
//! to 1 + 2 × rounds generations (a draft, then feedback and a pass per
//! round); its estimate counts each generation's reply but only the
//! draft's prompt, at the speed of the parallel lanes together, so with
//! refined cells the estimate is a lower bound.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::cells::Cell;
use super::prepare::Prepared;
use super::results::{self, CellResult};
use crate::engine::protocol::Prompt;
use crate::engine::{EngineClient, EngineError};

/// The cells that need the model: neither done in this run nor cached.
pub fn to_decode<'a>(
    cells: &'a [Cell],
    done: &HashSet<String>,
    cache: &HashMap<String, CellResult>,
) -> Vec<&'a Cell> {
    cells
        .iter()
        .filter(|c| !done.contains(&c.key) && !cache.contains_key(&c.key))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub cells: usize,
    pub items: usize,
    pub variants: usize,
    /// Variants sampled (run `repeats` times per item) and the repeats.
    pub sampled_variants: usize,
    pub repeats: u32,
    /// With a result in this run already (resume).
    pub done: usize,
    /// To be taken from earlier runs.
    pub cached: usize,
    pub to_decode: usize,
    /// Of those, refined cells, and the generations they take when every
    /// round runs.
    pub refined: usize,
    pub refined_generations: u64,
    pub parallel: u32,
    pub prompt_tokens: Option<PromptTokens>,
    pub estimate: Option<Estimate>,
}

/// The counts of a plan; tokens and the estimate come after the model is
/// loaded ([`count_prompt_tokens`], [`estimate`]).
pub fn plan(
    prepared: &Prepared,
    cells: &[Cell],
    done: &HashSet<String>,
    cache: &HashMap<String, CellResult>,
    parallel: u32,
) -> Plan {
    let done_count = cells.iter().filter(|c| done.contains(&c.key)).count();
    let cached = cells
        .iter()
        .filter(|c| !done.contains(&c.key) && cache.contains_key(&c.key))
        .count();
    let variants = &prepared.experiment.variants;
    let refined: Vec<&Cell> = to_decode(cells, done, cache)
        .into_iter()
        .filter(|c| c.refine.is_some())
        .collect();
    Plan {
        cells: cells.len(),
        items: prepared.items.len(),
        variants: variants.len(),
        sampled_variants: variants
            .iter()
            .filter(|v| prepared.repeats_of(v) > 1)
            .count(),
        repeats: prepared.experiment.repeats,
        done: done_count,
        cached,
        to_decode: cells.len() - done_count - cached,
        refined: refined.len(),
        refined_generations: refined
            .iter()
            .filter_map(|c| c.refine.as_ref())
            .map(|r| u64::from(r.most_generations()))
            .sum(),
        parallel,
        prompt_tokens: None,
        estimate: None,
    }
}

/// Prompt tokens of the cells to decode.
#[derive(Debug, Clone, Serialize)]
pub struct PromptTokens {
    /// Every cell's whole prompt, summed: prefixes that cells share are
    /// decoded once, so fewer are evaluated.
    pub total: u64,
    /// Distinct prompts counted (repeats of an item share theirs).
    pub distinct_prompts: usize,
    /// Cells the model would not count (their prompt cannot be formatted;
    /// the run makes them error cells), and the first reason.
    pub uncounted: usize,
    pub uncounted_reason: Option<String>,
    /// How long counting took.
    pub seconds: f64,
}

/// Each cell's prompt tokens as the loaded model sees them (chat template
/// applied; 0 for a cell the model would not count), and their total.
/// Each distinct prompt is counted once. Errs only when the worker fails.
pub async fn count_prompt_tokens(
    client: &mut EngineClient,
    cells: &[&Cell],
) -> Result<(PromptTokens, Vec<u32>), String> {
    let started = Instant::now();
    let mut counted: HashMap<String, Option<u32>> = HashMap::new();
    let mut per_cell = Vec::with_capacity(cells.len());
    let mut uncounted = 0;
    let mut uncounted_reason = None;
    for cell in cells {
        let key = serde_json::to_string(&cell.messages).map_err(|e| e.to_string())?;
        let tokens = match counted.get(&key) {
            Some(&tokens) => tokens,
            None => {
                let prompt = Prompt::Chat {
                    messages: cell.messages.clone(),
                };
                let tokens = match client.count_tokens(prompt).await {
                    Ok((tokens, _)) => Some(tokens),
                    Err(EngineError::Request(message)) => {
                        uncounted_reason.get_or_insert(message);
                        None
                    }
                    Err(e) => return Err(format!("cannot count the prompt tokens: {e}")),
                };
                counted.insert(key, tokens);
                tokens
            }
        };
        uncounted += usize::from(tokens.is_none());
        per_cell.push(tokens.unwrap_or(0));
    }
    Ok((
        PromptTokens {
            total: per_cell.iter().map(|&t| u64::from(t)).sum(),
            distinct_prompts: counted.len(),
            uncounted,
            uncounted_reason,
            seconds: started.elapsed().as_secs_f64(),
        },
        per_cell,
    ))
}

/// Speed measured in earlier cells decoded on the same model file at the
/// same parallelism, per sequence (each sequence shares the machine with
/// the others, so these are slower than one request alone).
#[derive(Debug, Clone, Serialize)]
pub struct Speed {
    /// Decoded cells measured (cached copies and error cells left out).
    pub cells: usize,
    /// Milliseconds per prompt token, over whole prompts (shared prefixes
    /// make this lower than evaluating each prompt alone).
    pub prompt_ms_per_token: f64,
    /// Milliseconds per generated token.
    pub generation_ms_per_token: f64,
    /// Reply length assumed for each cell: the mean in earlier runs of
    /// this experiment if there are any, else of all the measured cells.
    pub reply_tokens: f64,
    pub replies_from_this_experiment: bool,
}

impl Speed {
    pub fn prompt_tokens_per_second(&self) -> f64 {
        1000.0 / self.prompt_ms_per_token
    }
    pub fn generation_tokens_per_second(&self) -> f64 {
        1000.0 / self.generation_ms_per_token
    }
}

/// Sums over decoded cells.
#[derive(Default)]
struct Tally {
    cells: usize,
    prompt_tokens: u64,
    prompt_ms: f64,
    generated: u64,
    generation_ms: f64,
}

impl Tally {
    fn add(&mut self, result: &CellResult) {
        let Some(stats) = &result.stats else { return };
        self.cells += 1;
        self.prompt_tokens += u64::from(stats.prompt_tokens);
        // Up to the first token: prompt evaluation (and, in a shared batch,
        // waiting for the other sequences).
        self.prompt_ms += stats.ttft_ms.max(stats.prompt_eval_ms);
        self.generated += u64::from(stats.generated_tokens.saturating_sub(1));
        self.generation_ms += stats.generation_ms;
    }
}

/// The speed of earlier cells under `root` on the model whose file has
/// `model_sha256`, decoded at `parallel`; None without any (or without
/// enough to divide by).
pub fn measured_speed(
    root: &Path,
    model_sha256: &str,
    parallel: u32,
    experiment: &str,
) -> Option<Speed> {
    let mut all = Tally::default();
    let mut mine = Tally::default();
    for entry in std::fs::read_dir(root).ok()?.filter_map(Result::ok) {
        let dir = entry.path();
        let Ok(info) = results::read_info(&dir) else {
            continue;
        };
        if info.model_sha256 != model_sha256 || info.parallel != parallel {
            continue;
        }
        let Ok(cells) = results::peek_results(&dir) else {
            continue;
        };
        // Refined cells ran one sequence at a time, not at `parallel`.
        let decoded = |c: &&CellResult| c.error.is_none() && !c.cached && c.refine.is_none();
        for cell in cells.iter().filter(decoded) {
            all.add(cell);
            if info.experiment == experiment {
                mine.add(cell);
            }
        }
    }
    if all.cells == 0 || all.prompt_tokens == 0 || all.generated == 0 {
        return None;
    }
    let replies = if mine.cells > 0 { &mine } else { &all };
    Some(Speed {
        cells: all.cells,
        prompt_ms_per_token: all.prompt_ms / all.prompt_tokens as f64,
        generation_ms_per_token: all.generation_ms / all.generated as f64,
        reply_tokens: replies.generated as f64 / replies.cells as f64 + 1.0,
        replies_from_this_experiment: mine.cells > 0,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub seconds: f64,
    pub speed: Speed,
    /// Refined cells are counted: the time is at least this.
    pub lower_bound: bool,
}

/// The time to decode `cells` (with `prompt_tokens` each) at `parallel`:
/// each cell's prompt and its reply (the assumed length, at most its
/// `max_tokens`) at the measured per-sequence speed, `parallel` cells at
/// a time (the throughput measured with every lane busy, even for fewer
/// cells: with fewer sequences each one runs faster). A refined cell
/// counts a reply per generation of all its rounds, and its draft's
/// prompt only (the later prompts hold replies not known yet); its loop
/// runs one sequence at a time, slower than the lanes together, so the
/// estimate is then a lower bound.
pub fn estimate(speed: &Speed, cells: &[&Cell], prompt_tokens: &[u32], parallel: u32) -> Estimate {
    let busy_ms: f64 = cells
        .iter()
        .zip(prompt_tokens)
        .map(|(cell, &tokens)| {
            // The first token comes with the prompt; the rest one by one.
            let reply = speed.reply_tokens.min(f64::from(cell.max_tokens));
            let generations = cell
                .refine
                .as_ref()
                .map_or(1.0, |r| f64::from(r.most_generations()));
            f64::from(tokens) * speed.prompt_ms_per_token
                + (reply * generations - 1.0).max(0.0) * speed.generation_ms_per_token
        })
        .sum();
    // Fewer cells than lanes run faster each (less contention): the
    // measured throughput of `parallel` lanes is assumed throughout.
    let lanes = f64::from(parallel.max(1));
    Estimate {
        seconds: busy_ms / lanes / 1000.0,
        speed: speed.clone(),
        lower_bound: cells.iter().any(|c| c.refine.is_some()),
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `45 s`, `3 min 10 s`, `2 h 5 min`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

/// The plan as lines for a terminal: [`cells_line`], then [`cost_lines`].
pub fn lines(plan: &Plan) -> Vec<String> {
    let mut lines = vec![cells_line(plan)];
    lines.extend(cost_lines(plan));
    lines
}

/// `cells: 12 (4 items × 3 variants): 0 done, 2 cached, 10 to decode`,
/// known before the model loads.
pub fn cells_line(plan: &Plan) -> String {
    let repeats = if plan.sampled_variants > 0 && plan.repeats > 1 {
        format!(
            ", {} repeats of the {} sampled variant{}",
            plan.repeats,
            plan.sampled_variants,
            if plan.sampled_variants == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    let refined = match plan.refined {
        0 => String::new(),
        n => format!(
            " ({n} refined: up to {} generations, a draft then feedback and a pass per round)",
            thousands(plan.refined_generations)
        ),
    };
    format!(
        "cells: {} ({} items × {} variants{repeats}): {} done, {} cached, {} to decode{refined}",
        plan.cells, plan.items, plan.variants, plan.done, plan.cached, plan.to_decode
    )
}

/// The prompt tokens and the estimate, once the model is loaded (nothing
/// when there is nothing to decode).
pub fn cost_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    if plan.to_decode == 0 {
        return lines;
    }
    if let Some(tokens) = &plan.prompt_tokens {
        let drafts = if plan.refined > 0 {
            ", a refined cell's draft"
        } else {
            ""
        };
        lines.push(format!(
            "prompt tokens: {} over the {} cells to decode (whole prompts{drafts}, counted with the model in {:.2} s; shared prefixes are evaluated once)",
            thousands(tokens.total),
            plan.to_decode,
            tokens.seconds
        ));
        if let Some(reason) = &tokens.uncounted_reason {
            lines.push(format!(
                "  {} cells could not be counted: {reason}",
                tokens.uncounted
            ));
        }
    }
    match &plan.estimate {
        Some(e) => {
            lines.push(format!(
                "estimate: {} {} at --parallel {}",
                if e.lower_bound { "at least" } else { "about" },
                duration(e.seconds),
                plan.parallel
            ));
            lines.push(format!(
                "  from {} earlier cells on this model at --parallel {}: per sequence, prompt {:.0} tok/s and generation {:.1} tok/s; replies of {:.0} tokens assumed (their mean {})",
                e.speed.cells,
                plan.parallel,
                e.speed.prompt_tokens_per_second(),
                e.speed.generation_tokens_per_second(),
                e.speed.reply_tokens,
                if e.speed.replies_from_this_experiment {
                    "in earlier runs of this experiment"
                } else {
                    "in those cells"
                }
            ));
            if e.lower_bound {
                lines.push("  refined cells: a reply per generation and the draft's prompt are counted; their later prompts are not, and their loops run one sequence at a time".to_string());
            }
        }
        None => lines.push(format!(
            "estimate: none (no earlier cells on this model at --parallel {} to measure its speed by; the progress ETA follows the first cells)",
            plan.parallel
        )),
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::protocol::GenerationStats;
    use crate::experiment::refinement::CellRefinement;
    use crate::experiment::results::{RunInfo, RunLog};

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration(44.6), "45 s");
        assert_eq!(duration(190.0), "3 min 10 s");
        assert_eq!(duration(7_500.0), "2 h 5 min");
    }

    fn result(key: &str, stats: GenerationStats, cached: bool) -> CellResult {
        CellResult {
            stats: Some(stats),
            cached,
            ..CellResult::for_test(key)
        }
    }

    fn run(root: &Path, id: &str, experiment: &str, sha: &str, parallel: u32) -> RunLog {
        RunLog::create(
            root,
            &RunInfo {
                id: id.into(),
                experiment: experiment.into(),
                file: "/e.toml".into(),
                file_text: String::new(),
                model: "/m.gguf".into(),
                model_sha256: sha.into(),
                parallel,
                limit: None,
                repeats: None,
                cells: None,
                created_unix_ms: 0,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_estimate_uses_cells_on_the_same_model_at_the_same_parallelism() {
        let root = tempfile::tempdir().unwrap();
        let stats = |prompt_tokens, ttft_ms, generated_tokens, generation_ms| GenerationStats {
            prompt_tokens,
            reused_tokens: 0,
            generated_tokens,
            prompt_eval_ms: ttft_ms,
            ttft_ms,
            generation_ms,
            grammar: None,
        };
        // Another experiment on the model at parallel 2: 100 prompt tokens
        // in 200 ms, 11 tokens (10 after the first) in 100 ms.
        let mut other = run(root.path(), "other", "x", "sha", 2);
        other
            .append(&result("a", stats(100, 200.0, 11, 100.0), false))
            .unwrap();
        // Copies, refined cells (decoded alone) and other models or
        // parallelism are left out.
        other
            .append(&result("b", stats(1, 1e6, 2, 1e6), true))
            .unwrap();
        let mut refined = result("r", stats(1, 1e6, 2, 1e6), false);
        refined.refine = Some(crate::experiment::refinement::RefinedCell {
            keep: crate::experiment::refinement::Keep::Last,
            best_by: None,
            kept: 0,
            passes: vec![],
            end: None,
        });
        other.append(&refined).unwrap();
        run(root.path(), "p1", "x", "sha", 1)
            .append(&result("c", stats(1, 1e6, 2, 1e6), false))
            .unwrap();
        run(root.path(), "m2", "x", "other", 2)
            .append(&result("d", stats(1, 1e6, 2, 1e6), false))
            .unwrap();
        assert!(measured_speed(root.path(), "sha", 4, "e").is_none());

        let speed = measured_speed(root.path(), "sha", 2, "e").unwrap();
        assert_eq!(speed.cells, 1);
        assert_eq!(speed.prompt_ms_per_token, 2.0);
        assert_eq!(speed.generation_ms_per_token, 10.0);
        assert_eq!(speed.reply_tokens, 11.0);
        assert!(!speed.replies_from_this_experiment);
        // Earlier runs of this experiment give the reply length.
        run(root.path(), "mine", "e", "sha", 2)
            .append(&result("e", stats(100, 200.0, 31, 300.0), false))
            .unwrap();
        let speed = measured_speed(root.path(), "sha", 2, "e").unwrap();
        assert_eq!(speed.cells, 2);
        assert_eq!(speed.reply_tokens, 31.0);
        assert!(speed.replies_from_this_experiment);

        // Two cells of 50 prompt tokens, replies capped at 20: each
        // 50 × 2 ms + 19 × 10 ms = 290 ms, two at a time.
        let cell = Cell {
            item: 0,
            variant: 0,
            repeat: 0,
            messages: vec![],
            sampling: Default::default(),
            max_tokens: 20,
            stop: vec![],
            key: "k".into(),
            model: None,
            chat_format: None,
            refine: None,
            constraint: None,
        };
        let e = estimate(&speed, &[&cell, &cell], &[50, 50], 2);
        assert!((e.seconds - 0.29).abs() < 1e-9, "{}", e.seconds);
        let e = estimate(&speed, &[&cell, &cell], &[50, 50], 8);
        assert!((e.seconds - 0.29 / 4.0).abs() < 1e-9, "{}", e.seconds);
        assert!(!e.lower_bound);
        // A refined cell of 2 rounds: 5 replies of 20 tokens, the first
        // with its prompt: 50 × 2 ms + 99 × 10 ms, and at least that.
        let refinement = crate::experiment::refinement::Refinement {
            rounds: 2,
            ..Default::default()
        };
        let refined = Cell {
            refine: Some(CellRefinement::resolve(&refinement, &Default::default())),
            ..cell.clone()
        };
        let e = estimate(&speed, &[&refined], &[50], 1);
        assert!((e.seconds - 1.09).abs() < 1e-9, "{}", e.seconds);
        assert!(e.lower_bound);
        let lines = cost_lines(&Plan {
            estimate: Some(e),
            ..plan_of(&[cell.clone(), refined.clone()])
        });
        assert_eq!(lines[0], "estimate: at least 1 s at --parallel 1");
        assert!(
            lines[2].starts_with("  refined cells: a reply per generation"),
            "{lines:?}"
        );
    }

    /// The plan of `cells` (over one item each), nothing done or cached.
    fn plan_of(cells: &[Cell]) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.jsonl"), "{\"n\": \"7\"}\n").unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "name = \"p\"\nprompt = \"{{n}}\"\ndataset = \"d.jsonl\"\n",
        )
        .unwrap();
        let prepared = crate::experiment::prepare::prepare(&path, None).unwrap();
        plan(&prepared, cells, &HashSet::new(), &HashMap::new(), 1)
    }

    #[test]
    fn the_plan_counts_the_generations_of_refined_cells() {
        let refinement = crate::experiment::refinement::Refinement {
            rounds: 3,
            ..Default::default()
        };
        let plain = Cell {
            item: 0,
            variant: 0,
            repeat: 0,
            messages: vec![],
            sampling: Default::default(),
            max_tokens: 20,
            stop: vec![],
            key: "plain".into(),
            model: None,
            chat_format: None,
            refine: None,
            constraint: None,
        };
        let refined = |key: &str| Cell {
            key: key.into(),
            refine: Some(CellRefinement::resolve(&refinement, &Default::default())),
            ..plain.clone()
        };
        let plan = plan_of(&[plain.clone(), refined("r1"), refined("r2")]);
        assert_eq!(
            (plan.to_decode, plan.refined, plan.refined_generations),
            (3, 2, 14)
        );
        assert_eq!(
            cells_line(&plan),
            "cells: 3 (1 items × 1 variants): 0 done, 0 cached, 3 to decode (2 refined: up to 14 generations, a draft then feedback and a pass per round)"
        );
        assert!(!cells_line(&plan_of(&[plain])).contains("refined"));
    }
}
