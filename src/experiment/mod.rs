//! Prompt experiments: variants of a prompt run over the same dataset,
//! scored, and compared with paired statistics.
//!
//! - [`spec`] — the experiment file, with `file:line:col` errors;
//! - [`dataset`] — the inputs (JSONL or CSV), with `file:line` errors;
//! - [`prepare`] — a file with its templates and dataset, cross-checked;
//! - [`cells`] — items × variants × repeats as exact requests, with keys;
//! - [`refinement`] — a variant's refinement rounds, and the pass a
//!   refined cell keeps;
//! - [`refined_run`] — refined cells as refine loops on the engine;
//! - [`score`](mod@score) — a cell's metrics and checks;
//! - [`results`] — a run on disk, appended cell by cell;
//! - [`ratings`] — people's 1–5 ratings of cells, a `rating` metric;
//! - [`matrix`] — a run as items × variants for one score, sorted and filtered;
//! - [`from_template`] — an experiment made from a template in the workbench;
//! - [`launch`] — a new run, or one to resume, set up;
//! - [`run`](mod@run) — cells through the engine (resume, cache, crashes);
//! - [`summary`] — per-variant statistics against the baseline;
//! - [`export`] — a run as CSV (a row per cell) or Markdown;
//! - [`library`] — the experiment files there are, and past runs;
//! - [`compare`] — two runs of an experiment, variant by variant, paired
//!   over the items both have;
//! - [`plan`] — before running: cells, prompt tokens, estimated time.

pub mod cells;
pub mod compare;
pub mod dataset;
pub mod export;
pub mod from_template;
pub mod launch;
pub mod library;
pub mod matrix;
pub mod plan;
pub mod prepare;
pub mod ratings;
pub mod refined_run;
pub mod refinement;
pub mod results;
pub mod run;
pub mod score;
pub mod spec;
pub mod summary;
