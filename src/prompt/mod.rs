//! Prompt templates: TOML files with a prompt and an optional system prompt
//! holding `{{variable}}` placeholders, variable descriptions and defaults,
//! few-shot examples, default sampling settings and refinement prompts.
//!
//! - [`placeholders`] — scanning `{{name}}` and filling values in (once,
//!   never re-expanded);
//! - [`template`] — the file's types, [`parse`] with every check at its
//!   `file:line:col`, and [`to_toml`] for saving;
//! - [`toml_string`] — where each byte of a decoded TOML string was written
//!   in the file;
//! - [`render`](mod@render) — a template and values into chat messages;
//! - [`values`] — `NAME=VALUE` and `NAME=@FILE` arguments;
//! - [`library`] — the shipped templates and the user's, by name.
//!
//! The file format (version 1):
//!
//! ```toml
//! version = 1
//! name = "summarize"                     # = the file name without .toml
//! description = "Summarise a passage."   # one line
//! references = ["..."]                   # optional; top-level keys go before any [table]
//! system = "You are a careful editor."   # optional
//! prompt = """
//! Summarise in {{sentences}} sentences:
//!
//! {{text}}"""
//!
//! [variables.sentences]                  # optional description and default
//! description = "How many sentences."
//! default = "three"
//!
//! [[examples]]                           # `vars` or `input`, and `output`
//! output = "The keeper lit the lamp."
//! [examples.vars]
//! text = "The lighthouse keeper lit the lamp every evening."
//! sentences = "one"
//!
//! [sampling]                             # all optional
//! temperature = 0.3
//!
//! [refine]                               # {{task}}, {{answer}}, {{feedback}}
//! feedback = "..."
//! refine = "..."
//! stop_phrase = "NO FURTHER CHANGES"
//! ```

pub mod library;
pub mod placeholders;
pub mod render;
pub mod template;
pub mod toml_string;
pub mod values;

pub use library::{find, list, load, save_user, Source, TemplateEntry};
pub use placeholders::{fill, variables, Missing, PlaceholderError, Segment};
pub use render::{render, render_text, ExampleSelection, RenderError, Rendered};
pub use template::{
    parse, parse_named, to_toml, Example, Refine, Template, TemplateError, TemplateSampling,
    Variable, VariableInfo, FORMAT_VERSION,
};
pub use values::{parse_var, parse_vars, VarValue};
