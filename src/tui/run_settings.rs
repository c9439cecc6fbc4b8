//! How the UI generates for a template, shared by the workbench's runs and
//! its refinement rounds.

use crate::engine::SamplingParams;
use crate::prompt::Template;

/// A run stops after this many tokens unless the template says otherwise:
/// small models can go on until the context is full.
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// How the UI generates for a template (a run, or refinement rounds): its
/// sampling settings over the defaults (a fixed seed, so that prompt changes
/// compare fairly), its token limit or [`DEFAULT_MAX_TOKENS`], its stops.
pub fn run_settings(template: &Template) -> (SamplingParams, u32, Vec<String>) {
    let mut sampling = SamplingParams::default();
    template.sampling.apply(&mut sampling);
    let max_tokens = template.sampling.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let stop = template.sampling.stop.clone().unwrap_or_default();
    (sampling, max_tokens, stop)
}
