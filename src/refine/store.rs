//! Refinement runs on disk: `<data>/refinements/ID.json`, kept like the
//! workbench's runs (atomic saves, unreadable files listed with their
//! problem and never rewritten).

use std::path::PathBuf;

use super::{RefineRun, REFINE_FORMAT_VERSION};
use crate::store::runs::Record;

pub use crate::store::runs::{list, load, new_id, save, save_new, RunSummary};

impl Record for RefineRun {
    const KIND: &'static str = "refinement run";
    const VERSION: u32 = REFINE_FORMAT_VERSION;
    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    fn created_unix_ms(&self) -> u64 {
        self.created_unix_ms
    }
    fn set_created_unix_ms(&mut self, unix_ms: u64) {
        self.created_unix_ms = unix_ms;
    }
    fn template(&self) -> &str {
        &self.template
    }
    /// The pass marked best, else the latest.
    fn preview_text(&self) -> &str {
        let best = self.best.and_then(|b| self.passes.get(b as usize));
        best.or(self.passes.last()).map_or("", |p| p.text.as_str())
    }
}

/// `<data dir>/refinements`.
pub fn refinements_dir() -> Result<PathBuf, String> {
    Ok(crate::paths::data_dir()?.join("refinements"))
}
