//! `whet bench --duel MODEL_B`: the compare mode's cost. The same turns go
//! to two local models through the duel's own runner (two workers), one
//! after the other and at once, alternating: each side's generation speed,
//! the time from Enter to both replies finished, and the two workers'
//! memory.

use std::time::Instant;

use serde::Serialize;

use super::stats::Summary;
use crate::arena::duel::{Column, Contender, Duel, ModelRef};
pub use crate::arena::runner::ColumnStart;
use crate::arena::runner::{ColumnSettings, DuelEvent, DuelRunner};
use crate::engine::protocol::{per_second, ChatMessage, Role};
use crate::engine::SamplingParams;

#[derive(Debug, Serialize)]
pub struct PaceReport {
    /// Each side's generation tok/s (the worker's own figures).
    pub a_tok_s: Summary,
    pub b_tok_s: Summary,
    /// From sending the turn to both replies finished.
    pub turn_ms: Summary,
}

#[derive(Debug, Serialize)]
pub struct DuelReport {
    pub reps: usize,
    pub gen_tokens: u32,
    pub one_after_the_other: PaceReport,
    pub at_once: PaceReport,
    /// Peak resident memory of each worker, MiB (both models loaded).
    pub worker_peak_rss_mib: [Option<f64>; 2],
}

/// `reps` turns at each pace (alternating, after one warm-up turn each),
/// every turn a new question so no reply comes from a cache.
pub async fn measure(
    columns: [ColumnStart; 2],
    names: [String; 2],
    gen_tokens: u32,
    reps: usize,
) -> Result<DuelReport, String> {
    let contender = |name: &str, start: &ColumnStart| Contender {
        name: name.to_string(),
        model: ModelRef::Local {
            path: start.load.model.clone(),
            sha256: None,
        },
    };
    let [a_name, b_name] = names;
    let (a, b) = (
        contender(&a_name, &columns[0]),
        contender(&b_name, &columns[1]),
    );
    let mut runner = DuelRunner::start(columns);
    let settings = ColumnSettings {
        sampling: SamplingParams::greedy(),
        max_tokens: gen_tokens,
        stop: Vec::new(),
    };
    let settings = [settings.clone(), settings];
    let mut samples: [[Vec<f64>; 3]; 2] = Default::default();
    let mut failure = None;
    'reps: for rep in 0..=reps {
        for (pace, at_once) in [false, true].into_iter().enumerate() {
            let mut duel = Duel::new(
                vec![ChatMessage::new(
                    Role::System,
                    "You are a helpful assistant.",
                )],
                a.clone(),
                b.clone(),
                false,
                at_once,
                false,
            );
            let question = format!(
                "Question {rep}{pace}: describe a walk along a river in spring, in detail."
            );
            let started = Instant::now();
            match play_turn(&mut duel, &mut runner, &question, &settings).await {
                Ok(()) => {}
                Err(message) => {
                    failure = Some(message);
                    break 'reps;
                }
            }
            let turn_ms = started.elapsed().as_secs_f64() * 1000.0;
            if rep == 0 {
                continue; // warm-up
            }
            let turn = &duel.turns[0];
            for column in Column::BOTH {
                let stats = turn.replies[column.index()]
                    .stats
                    .clone()
                    .unwrap_or_default();
                samples[pace][column.index()]
                    .push(per_second(stats.generated_tokens, stats.generation_ms));
            }
            samples[pace][2].push(turn_ms);
        }
    }
    let engines = runner.finish().await;
    let rss: Vec<Option<f64>> = engines
        .iter()
        .map(|e| {
            e.as_ref()
                .and_then(|e| e.peak_rss_kib())
                .map(|k| k as f64 / 1024.0)
        })
        .collect();
    for engine in engines.into_iter().flatten() {
        engine.shutdown().await;
    }
    if let Some(message) = failure {
        return Err(message);
    }
    let pace = |s: &[Vec<f64>; 3]| PaceReport {
        a_tok_s: Summary::of(&s[0]),
        b_tok_s: Summary::of(&s[1]),
        turn_ms: Summary::of(&s[2]),
    };
    Ok(DuelReport {
        reps,
        gen_tokens,
        one_after_the_other: pace(&samples[0]),
        at_once: pace(&samples[1]),
        worker_peak_rss_mib: [rss[0], rss[1]],
    })
}

async fn play_turn(
    duel: &mut Duel,
    runner: &mut DuelRunner,
    question: &str,
    settings: &[ColumnSettings; 2],
) -> Result<(), String> {
    for job in duel.send(question)? {
        runner.run(job, settings);
    }
    while duel.busy() {
        let event = runner
            .events
            .recv()
            .await
            .ok_or("the duel's engines stopped")?;
        let jobs = match event {
            DuelEvent::Token { column, text } => {
                duel.token(column, &text);
                Vec::new()
            }
            DuelEvent::Done { column, generation } => {
                duel.finished(column, generation.reason, Some(generation.stats))
            }
            DuelEvent::Failed { column, message } | DuelEvent::LoadFailed { column, message } => {
                return Err(format!("column {}: {message}", column.letter()));
            }
            DuelEvent::Loaded { .. } => Vec::new(),
        };
        for job in jobs {
            runner.run(job, settings);
        }
    }
    Ok(())
}

pub fn table(report: &DuelReport, names: &[String; 2]) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{} turns per pace after a warm-up, {} tokens per reply (greedy); median [min-max]",
            report.reps, report.gen_tokens
        ),
        format!(
            "{:<22} {:>22} {:>22} {:>26}",
            "", "A tok/s", "B tok/s", "Enter to both done, ms"
        ),
    ];
    for (label, pace) in [
        ("one after the other", &report.one_after_the_other),
        ("at once", &report.at_once),
    ] {
        lines.push(format!(
            "{:<22} {:>22} {:>22} {:>26}",
            label,
            pace.a_tok_s.display(1),
            pace.b_tok_s.display(1),
            pace.turn_ms.display(0)
        ));
    }
    let rss = |r: Option<f64>| r.map_or("?".to_string(), |m| format!("{m:.0} MiB"));
    lines.push(format!(
        "A = {}, B = {}; worker peak RSS A {}, B {}",
        names[0],
        names[1],
        rss(report.worker_peak_rss_mib[0]),
        rss(report.worker_peak_rss_mib[1])
    ));
    lines
}
