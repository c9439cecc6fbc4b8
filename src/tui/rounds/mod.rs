//! The refinement rounds screen: a timeline of passes (draft, 1, 2, …) with
//! their feedback, figures, scores and ratings, streaming in while the loop
//! runs, and two passes side by side with a word diff — two passes of this
//! run, or the same pass of this run and another one.
//!
//! - [`update`] — keys and the loop's steps, as part of the app's `update`;
//! - [`view`] — drawing it.

pub mod update;
pub mod view;

use ratatui_textarea::TextArea;

use super::keymap::Context;
use super::lens::Lens;
use crate::refine::{Pass, RefineLoop, RefineRun, Step};
use crate::store::runs::RunSummary;
use crate::store::tokens::KeptToken;

/// What a list of saved runs is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListPurpose {
    /// Open it here.
    Open,
    /// Compare this run with it, pass by pass.
    Compare,
}

pub struct RunList {
    pub purpose: ListPurpose,
    pub runs: Vec<RunSummary>,
    pub selected: usize,
    pub loaded: bool,
}

pub enum RoundsOverlay {
    /// "4 clear, but long": a rating and a note for the selected pass.
    Rate(Box<TextArea<'static>>),
    Runs(RunList),
}

pub struct Rounds {
    pub lp: RefineLoop,
    /// The step being generated, and the engine's id for it once started.
    pub step: Option<Step>,
    pub generation: Option<u64>,
    /// What the step in flight has produced so far (as the model wrote it).
    pub streaming: String,
    /// Its tokens with their probabilities, when the step asked for them.
    pub streaming_tokens: Option<Vec<KeptToken>>,
    /// The lens, when open: on a pass, or on the step streaming.
    pub lens: Option<RoundsLens>,
    /// The pass selected in the timeline.
    pub selected: usize,
    /// Passes chosen for the two columns; None follows the loop (the one
    /// before the latest, and the latest).
    pub left: Option<usize>,
    pub right: Option<usize>,
    /// The shared scroll of the two columns, in rows.
    pub scroll: u16,
    /// Another run to compare with, pass by pass.
    pub other: Option<RefineRun>,
    pub overlay: Option<RoundsOverlay>,
    /// Where the side-by-side was drawn and how far it can scroll.
    pub max_scroll: std::cell::Cell<u16>,
}

/// What the lens looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LensTarget {
    Pass(usize),
    /// The step in flight, whichever it is; once the rounds end, the pass
    /// selected.
    Streaming,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundsLens {
    pub target: LensTarget,
    pub lens: Lens,
}

/// One column of the comparison.
pub struct Side<'a> {
    pub title: String,
    pub pass: &'a Pass,
}

impl Rounds {
    pub fn new(lp: RefineLoop) -> Rounds {
        Rounds {
            lp,
            step: None,
            generation: None,
            streaming: String::new(),
            streaming_tokens: None,
            lens: None,
            selected: 0,
            left: None,
            right: None,
            scroll: 0,
            other: None,
            overlay: None,
            max_scroll: Default::default(),
        }
    }

    pub fn run(&self) -> &RefineRun {
        self.lp.run()
    }

    pub fn is_running(&self) -> bool {
        self.step.is_some()
    }

    /// What the lens shows: a title, and the tokens (None when none were
    /// kept). On the stream once the rounds have ended, the selected pass.
    pub fn lens_tokens(&self) -> Option<(String, Option<&[KeptToken]>)> {
        let target = self.lens.as_ref()?.target;
        match (target, &self.step) {
            (LensTarget::Streaming, Some(step)) => Some((
                format!("{} (streaming)", step.kind.describe()),
                self.streaming_tokens.as_deref(),
            )),
            (LensTarget::Pass(_), _) | (LensTarget::Streaming, None) => {
                let index = match target {
                    LensTarget::Pass(index) => index,
                    LensTarget::Streaming => self.selected,
                };
                let pass = self.run().passes.get(index)?;
                Some((pass_name(index), pass.tokens.as_deref()))
            }
        }
    }

    pub fn context(&self) -> Context {
        match &self.overlay {
            Some(RoundsOverlay::Rate(_)) => Context::WorkbenchForm,
            Some(RoundsOverlay::Runs(_)) => Context::WorkbenchList,
            None => Context::Rounds,
        }
    }

    /// The two passes shown side by side: with another run, the selected
    /// pass of this run and the same pass of the other (or its last);
    /// otherwise the chosen passes, by default the latest and the one before.
    pub fn sides(&self) -> Option<(Side<'_>, Side<'_>)> {
        let passes = &self.run().passes;
        let last = passes.len().checked_sub(1)?;
        if let Some(other) = &self.other {
            let index = self.selected.min(last);
            let theirs = other.passes.get(index).or(other.passes.last())?;
            return Some((
                Side {
                    title: format!("{} · {}", self.run().template, pass_name(index)),
                    pass: &passes[index],
                },
                Side {
                    // The pass first: a long id is cut at the column's end.
                    title: format!(
                        "{} · {} {}",
                        pass_name(theirs.index as usize),
                        other.template,
                        other.id
                    ),
                    pass: theirs,
                },
            ));
        }
        let right = self.right.unwrap_or(last).min(last);
        let left = self.left.unwrap_or(right.saturating_sub(1)).min(last);
        Some((
            Side {
                title: pass_name(left),
                pass: &passes[left],
            },
            Side {
                title: pass_name(right),
                pass: &passes[right],
            },
        ))
    }
}

pub fn pass_name(index: usize) -> String {
    if index == 0 {
        "draft".to_string()
    } else {
        format!("pass {index}")
    }
}
