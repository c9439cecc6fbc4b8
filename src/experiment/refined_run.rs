//! A refined cell on the engine: a [`RefineLoop`] driven by
//! [`refine::drive`] with single generations on the run's worker. A loop's
//! steps depend on each other, so they cannot share a batch; one after
//! another, each step continues the conversation the worker's KV cache
//! holds from the step before, so only its new part is decoded. (Several
//! loops in lock-step batches would decode every loop's whole conversation
//! again at each step: the parallel scheduler keeps one sequence's cache
//! between batches.)

use super::cells::Cell;
use super::prepare::Prepared;
use super::refinement::{CellRefinement, RefinedCell};
use crate::engine::{EngineClient, EngineError};
use crate::refine::{self, Generated, Generator, LoopEnd, RefineLoop, RefineSetup, Step};

/// How a refined cell's loop ended.
pub enum LoopOutcome {
    /// The loop ran to its end, with its passes scored and one kept; a
    /// step the worker refused (a prompt too long, say) ends it with that
    /// error, and the cell is an error cell.
    Ended {
        cell: RefinedCell,
        error: Option<String>,
    },
    /// The worker died during a step: the cell may be tried again.
    WorkerDied(String),
}

/// Runs `cell`'s loop on `client` (a context of `n_ctx` tokens, so that a
/// conversation that might not fit goes as a fresh request), calling
/// `on_text` with each piece of text as it streams.
pub async fn refine_cell(
    client: &mut EngineClient,
    n_ctx: u32,
    prepared: &Prepared,
    cell: &Cell,
    refinement: &CellRefinement,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> LoopOutcome {
    let experiment = &prepared.experiment;
    let item = &prepared.items[cell.item];
    let variant = &experiment.variants[cell.variant];
    let setup = RefineSetup {
        template: variant.name.clone(),
        template_toml: String::new(),
        values: item.vars.clone(),
        model: None,
        sampling: cell.sampling.clone(),
        max_tokens: cell.max_tokens,
        stop: cell.stop.clone(),
        constraint: cell.constraint.clone(),
        config: refinement.config.clone(),
        refine: refinement.as_template_refine(),
        draft_messages: cell.messages.clone(),
        references: item.references.clone(),
    };
    let mut refine_loop = match RefineLoop::new(setup) {
        Ok(refine_loop) => refine_loop,
        Err(message) => {
            let mut empty = RefinedCell::from_run(&Default::default(), refinement);
            empty.end = Some(LoopEnd::Failed {
                message: message.clone(),
            });
            return LoopOutcome::Ended {
                cell: empty,
                error: Some(message),
            };
        }
    };
    refine_loop.set_n_ctx(n_ctx);
    let mut steps = Steps {
        client,
        cell,
        died: None,
    };
    refine::drive(&mut refine_loop, &mut steps, |event| {
        if let refine::LoopEvent::Text(text) = event {
            on_text(text);
        }
    })
    .await;
    if let Some(message) = steps.died {
        return LoopOutcome::WorkerDied(message);
    }
    let run = refine_loop.into_run();
    let mut refined = RefinedCell::from_run(&run, refinement);
    refined.rescore(&item.references, &experiment.metrics, &experiment.checks);
    let error = match &run.end {
        Some(LoopEnd::Failed { message }) => Some(format!("refinement failed at {message}")),
        Some(LoopEnd::Cancelled) => Some("refinement was cancelled".to_string()),
        _ if run.passes.is_empty() => Some("refinement made no pass".to_string()),
        _ => None,
    };
    LoopOutcome::Ended {
        cell: refined,
        error,
    }
}

/// The worker as the loop's generator: every step with the cell's
/// sampling, token limit and stop strings.
struct Steps<'a> {
    client: &'a mut EngineClient,
    cell: &'a Cell,
    /// Set when the worker died (as opposed to refusing a request).
    died: Option<String>,
}

impl Generator for Steps<'_> {
    async fn generate(
        &mut self,
        step: &Step,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generated, String> {
        let request = step.request(&self.cell.sampling, self.cell.max_tokens, &self.cell.stop);
        match self.client.generate(request, |text| on_text(text)).await {
            Ok(generation) => Ok(generation.into()),
            Err(EngineError::Request(message)) => {
                Err(format!("{}: {message}", step.kind.describe()))
            }
            Err(error) => {
                let message = error.to_string();
                self.died = Some(message.clone());
                Err(message)
            }
        }
    }
}
