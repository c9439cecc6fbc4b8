//! A prompt template file: its serde types, [`parse`] with every check of
//! the format (errors at their line and column in the file) and [`to_toml`]
//! for saving.
//!
//! Messages, each `FILE:LINE:COL: MESSAGE` (LINE and COL 1-based, COL in
//! characters) unless noted:
//!
//! - the TOML parser's own message for a syntax error, an unknown field, a
//!   wrong type or a missing required field (`missing field `prompt``, at 1:1
//!   for a top-level field, at the `[[examples]]` header for an example's);
//!   a top-level field found inside a table (written after a `[table]`
//!   header) gets ` (if 'references' is meant for the top level, write it
//!   before the first [table])` appended;
//! - `FILE: template format version N is newer than this whet reads (1)` —
//!   the only message then, since a newer file may use fields this whet does
//!   not know;
//! - `template format version 0 does not exist (this whet reads 1)`;
//! - `invalid template name 'a b' (use letters, digits, '-' and '_')`;
//! - `name 'x' does not match the file name 'y.toml'` ([`parse_named`]);
//! - `description must be one line`;
//! - `invalid variable name 'a b' (use letters, digits and '_')` — a key of
//!   `[variables]`;
//! - `example N: give either 'vars' or 'input', not both` and
//!   `example N: give either 'vars' or 'input' (it has neither)`, at the
//!   example's `[[examples]]` header (N counts from 1);
//! - for a `vars` example (an `input` example is a literal user message, so
//!   it is not compared with the prompt): `example N lacks variable 'x'
//!   that the prompt uses`, at the example's `vars` table, for a variable of
//!   the prompt without a declared default; `example N: unknown variable
//!   'x' (the prompt uses: a, b)` (or `(the prompt uses no variables)`) at
//!   the key in `vars`; and `example N: variable 'x' is only in the system
//!   prompt, which examples do not fill (the prompt uses: a, b)`;
//! - the placeholder errors of [`super::placeholders`] in `system`,
//!   `prompt`, `refine.feedback` and `refine.refine`, at the `{{` or `}}` in
//!   the file;
//! - `unknown placeholder '{{x}}' in refine.feedback (it can use task, answer)`
//!   (`refine.refine` can also use `feedback`).
//!
//! Every problem past the TOML stage is reported, in file order.
//!
//! Warnings ([`check_named`] only; the template still loads):
//!
//! - `warning: example N lacks variable 'x' that the prompt uses (it takes
//!   the declared default)`, at the example's `vars` table: the example pair
//!   changes with the default.
//!
//! Columns count characters from the start of the line; a UTF-8 byte order
//! mark at the start of the file is not one.

use super::placeholders::{self, is_variable_name, Segment};
use super::toml_string;
use crate::engine::beams::{BeamSettings, EarlyStopping};
use crate::engine::sampling::{SamplingOverrides, SamplingParams};
use crate::text_position::line_col;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The newest template format version this whet reads.
pub const FORMAT_VERSION: u32 = 1;

/// What `refine.feedback` may use.
pub const FEEDBACK_PLACEHOLDERS: &[&str] = &["task", "answer"];
/// What `refine.refine` may use.
pub const REFINE_PLACEHOLDERS: &[&str] = &["task", "answer", "feedback"];

/// A prompt template, as in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub version: u32,
    /// Letters, digits, `-` and `_`; equals the file name without `.toml`.
    pub name: String,
    /// One line.
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The user message, with `{{variable}}` placeholders.
    pub prompt: String,
    /// Descriptions and defaults of variables (by name). Variables used but
    /// not declared are allowed; see [`Template::variables`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Variable>,
    /// Few-shot examples, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    #[serde(default, skip_serializing_if = "TemplateSampling::is_empty")]
    pub sampling: TemplateSampling,
    #[serde(default, skip_serializing_if = "Refine::is_empty")]
    pub refine: Refine,
    /// Reference outputs for scoring the answer to the default values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

/// A declared variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A few-shot example: exactly one of `vars` (values rendered through the
/// template's prompt) and `input` (a literal user message), and the
/// expected `output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    pub output: String,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// Default sampling settings of a template; each one left out keeps the
/// caller's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Beam search instead of sampling, with transformers' option names
    /// (`generate(num_beams=…)`); the other beam keys need this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_beams: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_return_sequences: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_repeat_ngram_size: Option<usize>,
    /// A GBNF grammar file the output must follow, relative to the
    /// template file (not both this and `json_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<String>,
    /// A JSON Schema file the output must match, relative to the template file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<String>,
}

impl TemplateSampling {
    /// The beam search this template asks for, when it sets `num_beams`;
    /// the keys it leaves out take transformers' defaults.
    pub fn beams(&self) -> Option<BeamSettings> {
        let num_beams = self.num_beams?;
        let defaults = BeamSettings::default();
        Some(BeamSettings {
            num_beams,
            length_penalty: self.length_penalty.unwrap_or(defaults.length_penalty),
            early_stopping: self.early_stopping.unwrap_or(defaults.early_stopping),
            num_return_sequences: self
                .num_return_sequences
                .unwrap_or(defaults.num_return_sequences),
            no_repeat_ngram_size: self
                .no_repeat_ngram_size
                .unwrap_or(defaults.no_repeat_ngram_size),
        })
    }

    /// What is wrong with the beam keys, and which key to point at.
    fn beam_problem(&self) -> Option<(&'static str, String)> {
        let Some(beams) = self.beams() else {
            let stray = [
                ("length_penalty", self.length_penalty.is_some()),
                ("early_stopping", self.early_stopping.is_some()),
                ("num_return_sequences", self.num_return_sequences.is_some()),
                ("no_repeat_ngram_size", self.no_repeat_ngram_size.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set)?;
            return Some((
                stray.0,
                format!(
                    "sampling.{} is a beam-search option; set sampling.num_beams too",
                    stray.0
                ),
            ));
        };
        beams
            .validate()
            .err()
            .map(|reason| ("num_beams", format!("sampling: {reason}")))
    }

    pub fn is_empty(&self) -> bool {
        *self == TemplateSampling::default()
    }

    /// The sampler settings this template sets, without its seed.
    pub fn overrides(&self) -> SamplingOverrides {
        SamplingOverrides {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
        }
    }

    /// The template's grammar or schema, read from its file (relative to
    /// `dir`, the template file's folder): None when it names neither.
    pub fn constraint(
        &self,
        dir: &std::path::Path,
    ) -> Result<Option<crate::engine::constraint::Constraint>, String> {
        use crate::engine::constraint::Constraint;
        match (&self.grammar, &self.json_schema) {
            (Some(_), Some(_)) => {
                Err("[sampling] sets both grammar and json_schema; choose one".into())
            }
            (Some(file), None) => Constraint::grammar_file(&dir.join(file)).map(Some),
            (None, Some(file)) => Constraint::schema_file(&dir.join(file)).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Sets the fields of `params` this template sets (`max_tokens` and
    /// `stop` belong to the generate request, not to `SamplingParams`).
    pub fn apply(&self, params: &mut SamplingParams) {
        self.overrides().apply(params);
        if let Some(v) = self.seed {
            params.seed = v;
        }
    }
}

/// Prompts for Self-Refine rounds. `feedback` may use `{{task}}` (the
/// rendered user prompt) and `{{answer}}` (the latest pass); `refine` also
/// `{{feedback}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refine: Option<String>,
    /// Feedback containing it ends the loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_phrase: Option<String>,
    /// A score in the feedback at or above this ends the loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f64>,
    /// Where that score is: a regular expression whose first group is the
    /// number (the last match counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_pattern: Option<String>,
}

impl Refine {
    pub fn is_empty(&self) -> bool {
        *self == Refine::default()
    }
}

/// A variable the template uses, with what its file declares about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableInfo {
    pub name: String,
    pub description: Option<String>,
    pub default: Option<String>,
}

impl Template {
    /// The variables `system` and `prompt` use (in that order, each in order
    /// of first use, each once), with their declared description and default.
    pub fn variables(&self) -> Vec<VariableInfo> {
        self.variable_names()
            .into_iter()
            .map(|name| {
                let declared = self.variables.get(&name).cloned().unwrap_or_default();
                VariableInfo {
                    name,
                    description: declared.description,
                    default: declared.default,
                }
            })
            .collect()
    }

    /// The names of [`Template::variables`].
    pub fn variable_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for text in self.system.iter().chain([&self.prompt]) {
            for name in placeholders::variables(text) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The declared default of `name`, if any.
    pub fn default_of(&self, name: &str) -> Option<&str> {
        self.variables.get(name)?.default.as_deref()
    }
}

/// A problem in a template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub file: String,
    /// 1-based line and column (in characters), when the problem has a place.
    pub line_col: Option<(usize, usize)>,
    pub message: String,
}

impl TemplateError {
    fn at(file: &str, text: &str, offset: usize, message: impl Into<String>) -> TemplateError {
        TemplateError {
            file: file.to_string(),
            line_col: Some(line_col(text, offset)),
            message: message.into(),
        }
    }

    fn whole(file: &str, message: impl Into<String>) -> TemplateError {
        TemplateError {
            file: file.to_string(),
            line_col: None,
            message: message.into(),
        }
    }

    fn toml(file: &str, text: &str, error: &toml::de::Error) -> TemplateError {
        match error.span() {
            Some(span) => TemplateError::at(file, text, span.start, error.message()),
            None => TemplateError::whole(file, error.message()),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Reads and checks a template file; `file` names it in messages.
pub fn parse(text: &str, file: &str) -> Result<Template, Vec<TemplateError>> {
    parse_checked(text, file, None).map(|(template, _)| template)
}

/// [`parse`], and the template's `name` must be `file_name` (the file's name
/// without `.toml`): `name 'x' does not match the file name 'y.toml'`.
pub fn parse_named(
    text: &str,
    file: &str,
    file_name: &str,
) -> Result<Template, Vec<TemplateError>> {
    parse_checked(text, file, Some(file_name)).map(|(template, _)| template)
}

/// [`parse_named`] for `whet templates check`: the template comes with its
/// warnings, in file order — doubts that do not stop it from loading (see
/// the module's list of messages).
pub fn check_named(
    text: &str,
    file: &str,
    file_name: &str,
) -> Result<(Template, Vec<TemplateError>), Vec<TemplateError>> {
    parse_checked(text, file, Some(file_name))
}

/// The template and its warnings, or its errors.
fn parse_checked(
    text: &str,
    file: &str,
    file_name: Option<&str>,
) -> Result<(Template, Vec<TemplateError>), Vec<TemplateError>> {
    let doc = DeTable::parse(text).map_err(|e| vec![TemplateError::toml(file, text, &e)])?;
    let doc = doc.get_ref();
    // Before the fields: a newer file may well have fields we do not know.
    if let Some(DeValue::Integer(version)) = get(doc, "version").map(Spanned::get_ref) {
        let number = i128::from_str_radix(version.as_str(), version.radix());
        if let Some(number) = number.ok().filter(|&n| n > FORMAT_VERSION.into()) {
            return Err(vec![TemplateError::whole(
                file,
                format!(
                    "template format version {number} is newer than this whet reads ({FORMAT_VERSION})"
                ),
            )]);
        }
    }
    let template: Template =
        toml::from_str(text).map_err(|e| vec![deserialize_error(file, text, &e)])?;

    let mut problems: Vec<(usize, String)> = Vec::new();
    let span_of = |key: &str| get(doc, key).map_or(0, |v| v.span().start);
    if template.version == 0 {
        problems.push((
            span_of("version"),
            format!("template format version 0 does not exist (this whet reads {FORMAT_VERSION})"),
        ));
    }
    if !is_template_name(&template.name) {
        problems.push((
            span_of("name"),
            format!(
                "invalid template name '{}' (use letters, digits, '-' and '_')",
                template.name
            ),
        ));
    }
    if let Some(file_name) = file_name.filter(|f| *f != template.name) {
        if is_template_name(&template.name) {
            problems.push((
                span_of("name"),
                format!(
                    "name '{}' does not match the file name '{file_name}.toml'",
                    template.name
                ),
            ));
        }
    }
    if template.description.contains(['\n', '\r']) {
        problems.push((
            span_of("description"),
            "description must be one line".into(),
        ));
    }
    if let Some(DeValue::Table(variables)) = get(doc, "variables").map(Spanned::get_ref) {
        for (name, _) in variables.iter() {
            if !is_variable_name(name.get_ref()) {
                problems.push((
                    name.span().start,
                    format!(
                        "invalid variable name '{}' (use letters, digits and '_')",
                        name.get_ref()
                    ),
                ));
            }
        }
    }
    if template.sampling.grammar.is_some() && template.sampling.json_schema.is_some() {
        let at = match get(doc, "sampling").map(Spanned::get_ref) {
            Some(DeValue::Table(sampling)) => get(sampling, "json_schema").map(|v| v.span().start),
            _ => None,
        };
        problems.push((
            at.unwrap_or_else(|| span_of("sampling")),
            "[sampling] sets both grammar and json_schema; choose one".into(),
        ));
    }
    let places = example_places(doc);
    let mut warnings: Vec<(usize, String)> = Vec::new();
    for (i, example) in template.examples.iter().enumerate() {
        let place = places.get(i).cloned().unwrap_or_default();
        let what = match (&example.vars, &example.input) {
            (Some(_), Some(_)) => ", not both",
            (None, None) => " (it has neither)",
            _ => continue,
        };
        problems.push((
            place.start,
            format!("example {}: give either 'vars' or 'input'{what}", i + 1),
        ));
    }
    // Examples fill only the prompt, with their own values: a value for
    // anything else would be dropped and a missing one would be taken from
    // the defaults, both without a word. A malformed prompt is reported
    // above; its variables are not known well enough to compare.
    if let Ok(segments) = placeholders::parse(&template.prompt) {
        let mut used = Vec::new();
        placeholders::add_variables(&segments, &mut used);
        for (i, example) in template.examples.iter().enumerate() {
            if let (Some(vars), None) = (&example.vars, &example.input) {
                let place = places.get(i).cloned().unwrap_or_default();
                check_example_vars(
                    &template,
                    &used,
                    i + 1,
                    vars,
                    &place,
                    &mut problems,
                    &mut warnings,
                );
            }
        }
    }
    for key in ["system", "prompt"] {
        if let Some(value) = get(doc, key) {
            check_placeholders(text, value, None, &mut problems);
        }
    }
    if let Some(DeValue::Table(refine)) = get(doc, "refine").map(Spanned::get_ref) {
        for (key, allowed) in [
            ("feedback", FEEDBACK_PLACEHOLDERS),
            ("refine", REFINE_PLACEHOLDERS),
        ] {
            if let Some(value) = get(refine, key) {
                check_placeholders(text, value, Some((key, allowed)), &mut problems);
            }
        }
        if let (Some(pattern), Some(value)) =
            (&template.refine.score_pattern, get(refine, "score_pattern"))
        {
            if let Err(problem) = check_score_pattern(pattern) {
                problems.push((value.span().start, problem));
            }
        }
    }

    if let Some((key, problem)) = template.sampling.beam_problem() {
        let offset = match get(doc, "sampling").map(Spanned::get_ref) {
            Some(DeValue::Table(sampling)) => get(sampling, key).map(|v| v.span().start),
            _ => None,
        };
        problems.push((offset.unwrap_or(0), problem));
    }

    let at_offsets = |mut found: Vec<(usize, String)>| -> Vec<TemplateError> {
        found.sort_by_key(|(offset, _)| *offset);
        found
            .into_iter()
            .map(|(offset, message)| TemplateError::at(file, text, offset, message))
            .collect()
    };
    if problems.is_empty() {
        Ok((template, at_offsets(warnings)))
    } else {
        Err(at_offsets(problems))
    }
}

/// Where an example is in the file (byte offsets).
#[derive(Debug, Clone, Default)]
struct ExamplePlace {
    /// Its `[[examples]]` header, or the `{` of an inline table.
    start: usize,
    /// Its `vars` table: the `[examples.vars]` header, or the `{` of an
    /// inline table.
    vars: Option<usize>,
    /// Each key of that table.
    keys: BTreeMap<String, usize>,
}

/// The places of the `[[examples]]` entries, in order.
fn example_places(doc: &DeTable) -> Vec<ExamplePlace> {
    let Some(DeValue::Array(items)) = get(doc, "examples").map(Spanned::get_ref) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let mut place = ExamplePlace {
                start: item.span().start,
                ..ExamplePlace::default()
            };
            if let DeValue::Table(example) = item.get_ref() {
                if let Some(value) = get(example, "vars") {
                    place.vars = Some(value.span().start);
                    if let DeValue::Table(vars) = value.get_ref() {
                        place.keys = vars
                            .iter()
                            .map(|(k, _)| (k.get_ref().to_string(), k.span().start))
                            .collect();
                    }
                }
            }
            place
        })
        .collect()
}

/// A `vars` example (number `n`) against the variables its prompt uses:
/// a variable it lacks is an error, or a warning when the variable has a
/// declared default (which the example then takes); a variable it has that
/// the prompt does not use is an error.
fn check_example_vars(
    template: &Template,
    used: &[String],
    n: usize,
    vars: &BTreeMap<String, String>,
    place: &ExamplePlace,
    problems: &mut Vec<(usize, String)>,
    warnings: &mut Vec<(usize, String)>,
) {
    let vars_at = place.vars.unwrap_or(place.start);
    for name in used.iter().filter(|name| !vars.contains_key(*name)) {
        let message = format!("example {n} lacks variable '{name}' that the prompt uses");
        if template.default_of(name).is_some() {
            warnings.push((
                vars_at,
                format!("warning: {message} (it takes the declared default)"),
            ));
        } else {
            problems.push((vars_at, message));
        }
    }
    let uses = if used.is_empty() {
        "the prompt uses no variables".to_string()
    } else {
        format!("the prompt uses: {}", used.join(", "))
    };
    let system = template
        .system
        .as_deref()
        .map(placeholders::variables)
        .unwrap_or_default();
    for name in vars.keys().filter(|name| !used.contains(*name)) {
        let at = place.keys.get(name).copied().unwrap_or(vars_at);
        let message = if system.contains(name) {
            format!(
                "example {n}: variable '{name}' is only in the system prompt, which examples do not fill ({uses})"
            )
        } else {
            format!("example {n}: unknown variable '{name}' ({uses})")
        };
        problems.push((at, message));
    }
}

/// A score pattern must compile and capture the number in a group.
pub fn check_score_pattern(pattern: &str) -> Result<regex::Regex, String> {
    let regex = regex::Regex::new(pattern).map_err(|e| {
        let reason = e.to_string();
        let reason = reason.lines().last().unwrap_or_default().trim();
        let reason = reason.strip_prefix("error: ").unwrap_or(reason);
        format!("invalid score_pattern: {reason}")
    })?;
    if regex.captures_len() < 2 {
        return Err("score_pattern needs a group around the number, e.g. 'score: (\\d+)'".into());
    }
    Ok(regex)
}

/// The parser's message; for a top-level field found inside a table (where
/// TOML puts keys written after a `[table]` header), a hint.
fn deserialize_error(file: &str, text: &str, error: &toml::de::Error) -> TemplateError {
    let mut problem = TemplateError::toml(file, text, error);
    let field = error
        .message()
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    if let Some(field) = field.filter(|f| TOP_LEVEL_FIELDS.contains(f)) {
        let _ = write!(
            problem.message,
            " (if '{field}' is meant for the top level, write it before the first [table])"
        );
    }
    problem
}

const TOP_LEVEL_FIELDS: &[&str] = &[
    "version",
    "name",
    "description",
    "system",
    "prompt",
    "variables",
    "examples",
    "sampling",
    "refine",
    "references",
];

/// Whether `name` can name a template: `[A-Za-z0-9_-]+`.
pub fn is_template_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}

/// The placeholder errors of a string value, at their offsets in the file.
/// `refine` limits the names to those of a refine prompt.
fn check_placeholders(
    text: &str,
    value: &Spanned<DeValue>,
    refine: Option<(&str, &[&str])>,
    problems: &mut Vec<(usize, String)>,
) {
    let DeValue::String(decoded) = value.get_ref() else {
        return;
    };
    let span = value.span();
    // The raw token decoded again, byte by byte; should it ever disagree
    // with the parser, errors point at the start of the string.
    let mapping = toml_string::decode(&text[span.clone()]).filter(|d| d.text == *decoded);
    let file_offset =
        |offset: usize| span.start + mapping.as_ref().map_or(0, |m| m.raw_offset(offset));
    match placeholders::parse(decoded) {
        Err(errors) => {
            for error in errors {
                problems.push((file_offset(error.offset), error.to_string()));
            }
        }
        Ok(segments) => {
            let Some((key, allowed)) = refine else {
                return;
            };
            for segment in segments {
                if let Segment::Var { name, span } = segment {
                    if !allowed.contains(&name.as_str()) {
                        problems.push((
                            file_offset(span.start),
                            format!(
                                "unknown placeholder '{{{{{name}}}}}' in refine.{key} (it can use {})",
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// The template as a TOML file [`parse`] reads back to the same template:
/// fields in the order of the format's description, multi-line text as
/// `"""` strings (or `'''` when it has backslashes and no `'''`).
pub fn to_toml(template: &Template) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "version = {}", template.version);
    key_value(&mut out, "name", &template.name);
    key_value(&mut out, "description", &template.description);
    if let Some(system) = &template.system {
        out.push('\n');
        key_value(&mut out, "system", system);
    }
    out.push('\n');
    key_value(&mut out, "prompt", &template.prompt);
    if !template.references.is_empty() {
        out.push_str("\nreferences = [\n");
        for reference in &template.references {
            let _ = writeln!(out, "    {},", string(reference));
        }
        out.push_str("]\n");
    }
    for (name, variable) in &template.variables {
        let _ = writeln!(out, "\n[variables.{}]", key(name));
        if let Some(description) = &variable.description {
            key_value(&mut out, "description", description);
        }
        if let Some(default) = &variable.default {
            key_value(&mut out, "default", default);
        }
    }
    for example in &template.examples {
        out.push_str("\n[[examples]]\n");
        if !example.enabled {
            out.push_str("enabled = false\n");
        }
        if let Some(input) = &example.input {
            key_value(&mut out, "input", input);
        }
        key_value(&mut out, "output", &example.output);
        if let Some(vars) = &example.vars {
            out.push_str("[examples.vars]\n");
            for (name, value) in vars {
                key_value(&mut out, &key(name), value);
            }
        }
    }
    let s = &template.sampling;
    if !s.is_empty() {
        out.push_str("\n[sampling]\n");
        if let Some(temperature) = s.temperature {
            let _ = writeln!(out, "temperature = {}", float(temperature));
        }
        if let Some(top_k) = s.top_k {
            let _ = writeln!(out, "top_k = {top_k}");
        }
        for (name, value) in [
            ("top_p", s.top_p),
            ("min_p", s.min_p),
            ("repeat_penalty", s.repeat_penalty),
        ] {
            if let Some(value) = value {
                let _ = writeln!(out, "{name} = {}", float(value));
            }
        }
        if let Some(seed) = s.seed {
            let _ = writeln!(out, "seed = {seed}");
        }
        if let Some(max_tokens) = s.max_tokens {
            let _ = writeln!(out, "max_tokens = {max_tokens}");
        }
        if let Some(stop) = &s.stop {
            let stop: Vec<String> = stop.iter().map(|s| single_line(s)).collect();
            let _ = writeln!(out, "stop = [{}]", stop.join(", "));
        }
        if let Some(num_beams) = s.num_beams {
            let _ = writeln!(out, "num_beams = {num_beams}");
        }
        if let Some(length_penalty) = s.length_penalty {
            let _ = writeln!(out, "length_penalty = {}", float(length_penalty));
        }
        if let Some(early_stopping) = s.early_stopping {
            // `true`, `false` or `"never"`: the same in JSON and TOML.
            let written = serde_json::to_string(&early_stopping).unwrap_or_default();
            let _ = writeln!(out, "early_stopping = {written}");
        }
        for (name, value) in [
            ("num_return_sequences", s.num_return_sequences),
            ("no_repeat_ngram_size", s.no_repeat_ngram_size),
        ] {
            if let Some(value) = value {
                let _ = writeln!(out, "{name} = {value}");
            }
        }
        for (name, value) in [("grammar", &s.grammar), ("json_schema", &s.json_schema)] {
            if let Some(value) = value {
                let _ = writeln!(out, "{name} = {}", single_line(value));
            }
        }
    }
    let r = &template.refine;
    if !r.is_empty() {
        out.push_str("\n[refine]\n");
        for (name, value) in [
            ("feedback", &r.feedback),
            ("refine", &r.refine),
            ("stop_phrase", &r.stop_phrase),
        ] {
            if let Some(value) = value {
                key_value(&mut out, name, value);
            }
        }
        if let Some(threshold) = r.score_threshold {
            let _ = writeln!(out, "score_threshold = {threshold:?}");
        }
        if let Some(pattern) = &r.score_pattern {
            key_value(&mut out, "score_pattern", pattern);
        }
    }
    out
}

fn key_value(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {}", string(value));
}

/// A bare key when it can be one, else a quoted one.
fn key(name: &str) -> String {
    if is_template_name(name) {
        name.to_string()
    } else {
        single_line(name)
    }
}

fn float(value: f32) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        let text = value.to_string();
        if text.contains(['.', 'e', 'E']) {
            text
        } else {
            format!("{text}.0")
        }
    }
}

/// A TOML string for `value`: multi-line when it has line breaks.
fn string(value: &str) -> String {
    if value.contains('\n') {
        multi_line(value)
    } else {
        single_line(value)
    }
}

/// Whether a literal string can hold `value` (no control characters but
/// tabs, and line breaks in a multi-line one).
fn literal_fits(value: &str, multi_line: bool) -> bool {
    value
        .chars()
        .all(|c| !c.is_control() || c == '\t' || (multi_line && c == '\n'))
}

fn single_line(value: &str) -> String {
    if value.contains(['\\', '"']) && !value.contains('\'') && literal_fits(value, false) {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A multi-line string; the line break after the opening quotes is trimmed
/// by TOML, so the value starts on the next line exactly as it is.
fn multi_line(value: &str) -> String {
    if value.contains('\\')
        && !value.contains("'''")
        && !value.ends_with('\'')
        && literal_fits(value, true)
    {
        return format!("'''\n{value}'''");
    }
    let mut out = String::from("\"\"\"\n");
    let mut chars = value.chars().peekable();
    // Unescaped quotes just written: a third in a row, or one at the very
    // end, would close the string.
    let mut quotes = 0;
    while let Some(c) = chars.next() {
        quotes = if c == '"' { quotes + 1 } else { 0 };
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quotes == 3 || chars.peek().is_none() => {
                out.push_str("\\\"");
                quotes = 0;
            }
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push_str("\"\"\"");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "t.toml";

    /// The error messages of `text`, as displayed.
    fn errors(text: &str) -> Vec<String> {
        parse(text, FILE)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// A valid header, then `rest`.
    fn with(rest: &str) -> String {
        format!("version = 1\nname = \"t\"\ndescription = \"d\"\n{rest}")
    }

    #[test]
    fn the_spec_example_parses() {
        let text = r#"version = 1
name = "summarize"
description = "Summarise a passage in a few sentences."
references = ["..."]

system = "You are a careful editor."

prompt = """
Summarise the following text in {{sentences}} sentences.

{{text}}"""

[variables.text]
description = "The text to summarise."
[variables.sentences]
description = "How many sentences."
default = "three"

[[examples]]
output = "The keeper lit the lamp each night."
[examples.vars]
text = "The lighthouse keeper climbed the stairs every evening and lit the lamp."
sentences = "one"

[[examples]]
enabled = false
input = "Summarise: the cat sat on the mat."
output = "A cat sat on a mat."

[sampling]
temperature = 0.3
top_k = 40
top_p = 0.95
min_p = 0.05
repeat_penalty = 1.0
seed = 42
max_tokens = 256
stop = ["\n\n"]

[refine]
feedback = """{{task}} {{answer}}"""
refine = """{{ task }} {{answer}} {{feedback}}"""
stop_phrase = "NO FURTHER CHANGES"
"#;
        let t = parse(text, FILE).unwrap();
        assert_eq!(t.name, "summarize");
        assert_eq!(
            t.prompt,
            "Summarise the following text in {{sentences}} sentences.\n\n{{text}}"
        );
        assert_eq!(t.examples.len(), 2);
        assert!(t.examples[0].enabled);
        assert!(!t.examples[1].enabled);
        assert_eq!(t.examples[0].vars.as_ref().unwrap()["sentences"], "one");
        assert_eq!(t.sampling.stop, Some(vec!["\n\n".to_string()]));
        assert_eq!(t.sampling.seed, Some(42));
        assert_eq!(t.refine.stop_phrase.as_deref(), Some("NO FURTHER CHANGES"));
        assert_eq!(t.references, ["..."]);
        assert_eq!(
            t.variables(),
            [
                VariableInfo {
                    name: "sentences".into(),
                    description: Some("How many sentences.".into()),
                    default: Some("three".into()),
                },
                VariableInfo {
                    name: "text".into(),
                    description: Some("The text to summarise.".into()),
                    default: None,
                },
            ]
        );
        let mut params = SamplingParams::default();
        t.sampling.apply(&mut params);
        assert_eq!(
            (params.temperature, params.top_k, params.seed),
            (0.3, 40, 42)
        );
    }

    #[test]
    fn a_grammar_or_a_schema_file_relative_to_the_template() {
        let t = parse(
            &with("prompt = \"x\"\n[sampling]\njson_schema = \"schemas/p.json\"\n"),
            FILE,
        )
        .unwrap();
        assert_eq!(t.sampling.json_schema.as_deref(), Some("schemas/p.json"));
        assert!(to_toml(&t).contains("json_schema = \"schemas/p.json\"\n"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(dir.path().join("schemas/p.json"), "{\"type\": \"object\"}").unwrap();
        let constraint = t.sampling.constraint(dir.path()).unwrap().unwrap();
        assert!(constraint.source().ends_with("schemas/p.json"));
        assert_eq!(
            errors(&with(
                "prompt = \"x\"\n[sampling]\ngrammar = \"g.gbnf\"\njson_schema = \"s.json\"\n"
            )),
            ["t.toml:7:15: [sampling] sets both grammar and json_schema; choose one"]
        );
    }

    #[test]
    fn variables_of_system_then_prompt_undeclared_included() {
        let t = parse(
            &with("system = \"{{who}} {{b}}\"\nprompt = \"{{a}} {{who}} {{c}}\"\n[variables.c]\ndefault = \"1\"\n[variables.unused]\n"),
            FILE,
        )
        .unwrap();
        assert_eq!(t.variable_names(), ["who", "b", "a", "c"]);
        assert_eq!(t.variables()[3].default.as_deref(), Some("1"));
        assert_eq!(t.variables()[0].description, None);
    }

    #[test]
    fn toml_errors_at_the_parser_s_span() {
        assert_eq!(
            errors("version = 1\nprompt = 'x\n"),
            ["t.toml:2:12: invalid literal string, expected `'`"]
        );
        assert_eq!(
            errors(&with("prompt = 'x'\nfoo = 1\n")),
            ["t.toml:5:1: unknown field `foo`, expected one of `version`, `name`, `description`, `system`, `prompt`, `variables`, `examples`, `sampling`, `refine`, `references`"]
        );
        assert_eq!(
            errors(&with("prompt = 3\n")),
            ["t.toml:4:10: invalid type: integer `3`, expected a string"]
        );
        assert_eq!(errors(&with("")), ["t.toml:1:1: missing field `prompt`"]);
        assert_eq!(
            errors(&with("prompt = 'x'\n[[examples]]\ninput = 'i'\n")),
            ["t.toml:5:1: missing field `output`"]
        );
        assert_eq!(
            errors(&with("prompt = 'x'\n[sampling]\ntop_k = 1.5\n")),
            ["t.toml:6:9: invalid type: floating point `1.5`, expected i32"]
        );
        assert_eq!(
            errors(&with("prompt = 'x'\n[variables.a]\nhelp = 'h'\n")),
            ["t.toml:6:1: unknown field `help`, expected `description` or `default`"]
        );
        assert_eq!(
            errors("name = 't'\ndescription = 'd'\nprompt = 'x'\n"),
            ["t.toml:1:1: missing field `version`"]
        );
    }

    #[test]
    fn a_top_level_key_after_a_table_gets_a_hint() {
        assert_eq!(
            errors(&with("prompt = 'x'\n[refine]\nstop_phrase = 'S'\nreferences = ['r']\n")),
            ["t.toml:7:1: unknown field `references`, expected one of `feedback`, `refine`, `stop_phrase`, `score_threshold`, `score_pattern` (if 'references' is meant for the top level, write it before the first [table])"]
        );
    }

    #[test]
    fn a_newer_version_is_refused_before_anything_else() {
        assert_eq!(
            errors("version = 2\nwhatever = true\n"),
            ["t.toml: template format version 2 is newer than this whet reads (1)"]
        );
        assert_eq!(
            errors("version = 0x1_0\n"),
            ["t.toml: template format version 16 is newer than this whet reads (1)"]
        );
        assert_eq!(
            errors("version = 0\nname = 't'\ndescription = 'd'\nprompt = 'x'\n"),
            ["t.toml:1:11: template format version 0 does not exist (this whet reads 1)"]
        );
        assert_eq!(
            errors("version = -1\nname = 't'\ndescription = 'd'\nprompt = 'x'\n"),
            ["t.toml:1:11: invalid value: integer `-1`, expected u32"]
        );
    }

    #[test]
    fn name_description_and_variable_names() {
        assert_eq!(
            errors("version = 1\nname = \"a b\"\ndescription = \"x\\ny\"\nprompt = ''\n[variables.\"my var\"]\n[variables.ok_1]\n"),
            [
                "t.toml:2:8: invalid template name 'a b' (use letters, digits, '-' and '_')",
                "t.toml:3:15: description must be one line",
                "t.toml:5:12: invalid variable name 'my var' (use letters, digits and '_')",
            ]
        );
        assert_eq!(
            errors("version = 1\nname = ''\ndescription = ''\nprompt = ''\n"),
            ["t.toml:2:8: invalid template name '' (use letters, digits, '-' and '_')"]
        );
    }

    #[test]
    fn the_name_must_match_the_file_name() {
        let text = with("prompt = ''\n");
        assert!(parse_named(&text, FILE, "t").is_ok());
        let errors: Vec<String> = parse_named(&text, FILE, "other")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            ["t.toml:2:8: name 't' does not match the file name 'other.toml'"]
        );
    }

    #[test]
    fn examples_need_exactly_one_of_vars_and_input() {
        let text = with(
            "prompt = '{{a}}'\n\
             [[examples]]\ninput = 'i'\noutput = 'o'\n\
             [[examples]]\ninput = 'i'\noutput = 'o'\n[examples.vars]\na = '1'\n\
             [[examples]]\noutput = 'o'\n",
        );
        assert_eq!(
            errors(&text),
            [
                "t.toml:8:1: example 2: give either 'vars' or 'input', not both",
                "t.toml:13:1: example 3: give either 'vars' or 'input' (it has neither)",
            ]
        );
        let inline =
            with("prompt = ''\nexamples = [{ input = 'i', output = 'o' }, { output = 'o' }]\n");
        assert_eq!(
            errors(&inline),
            ["t.toml:5:44: example 2: give either 'vars' or 'input' (it has neither)"]
        );
    }

    /// The warnings of `text`, which must load, as displayed.
    fn warnings(text: &str) -> Vec<String> {
        let (_, warnings) = check_named(text, FILE, "t").unwrap();
        warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn example_vars_must_be_those_of_the_prompt() {
        // The report's case: a misspelt name would take word's default
        // without a word.
        let text = with(
            "prompt = '{{word}} and {{n}}'\n\
             [variables.word]\ndefault = 'default word'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\nword = 'w'\nn = '1'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\nn = '2'\nwrod = 'x'\n",
        );
        assert_eq!(
            errors(&text),
            ["t.toml:16:1: example 2: unknown variable 'wrod' (the prompt uses: word, n)"]
        );
        // Without the default, the missing word is an error too.
        let text = with(
            "prompt = '{{word}} and {{n}}'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\nword = 'w'\nn = '1'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\nn = '2'\nwrod = 'x'\n",
        );
        assert_eq!(
            errors(&text),
            [
                "t.toml:12:1: example 2 lacks variable 'word' that the prompt uses",
                "t.toml:14:1: example 2: unknown variable 'wrod' (the prompt uses: word, n)",
            ]
        );
    }

    #[test]
    fn example_vars_in_inline_tables_and_quoted_keys() {
        let text = with(
            "prompt = '{{a}}'\n\
             examples = [{ output = 'o', vars = { a = '1' } }, { output = 'o', vars = { \"a b\" = '1' } }]\n",
        );
        assert_eq!(
            errors(&text),
            [
                "t.toml:5:74: example 2 lacks variable 'a' that the prompt uses",
                "t.toml:5:76: example 2: unknown variable 'a b' (the prompt uses: a)",
            ]
        );
    }

    #[test]
    fn an_example_value_for_the_system_prompt_is_reported() {
        let text = with(
            "system = 'You are {{persona}}.'\nprompt = '{{message}}'\n\
             [variables.persona]\ndefault = 'a captain'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\nmessage = 'hi'\npersona = 'a pirate'\n",
        );
        assert_eq!(
            errors(&text),
            ["t.toml:12:1: example 1: variable 'persona' is only in the system prompt, which examples do not fill (the prompt uses: message)"]
        );
        // Left out, as the examples of prompts/persona.toml do: fine.
        let text = with(
            "system = 'You are {{persona}}.'\nprompt = '{{message}}'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\nmessage = 'hi'\n",
        );
        assert_eq!(warnings(&text), Vec::<String>::new());
    }

    #[test]
    fn a_prompt_without_variables_takes_no_example_vars() {
        let text = with(
            "prompt = 'Say hi.'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\nx = '1'\n",
        );
        assert_eq!(
            errors(&text),
            ["t.toml:11:1: example 2: unknown variable 'x' (the prompt uses no variables)"]
        );
    }

    #[test]
    fn input_examples_are_not_compared_with_the_prompt() {
        // `input` is the whole user message, whatever the prompt's
        // variables (render.rs sends it as written).
        let text = with("prompt = '{{a}} {{b}}'\n[[examples]]\ninput = 'literal'\noutput = 'o'\n");
        assert!(parse(&text, FILE).is_ok());
        assert_eq!(warnings(&text), Vec::<String>::new());
    }

    #[test]
    fn an_example_taking_a_declared_default_is_a_warning() {
        // Documented, and what the workbench writes for a value left empty:
        // it loads, and `check` says so.
        let text = with(
            "prompt = '{{text}} in {{length}}'\n\
             [variables.length]\ndefault = 'one sentence'\n\
             [[examples]]\noutput = 'o'\n[examples.vars]\ntext = 't'\n",
        );
        assert!(parse(&text, FILE).is_ok());
        assert_eq!(
            warnings(&text),
            ["t.toml:9:1: warning: example 1 lacks variable 'length' that the prompt uses (it takes the declared default)"]
        );
        // An error elsewhere: only the errors.
        let broken = text.replace("name = \"t\"", "name = \"?\"");
        assert_eq!(
            errors(&broken),
            ["t.toml:2:8: invalid template name '?' (use letters, digits, '-' and '_')"]
        );
    }

    #[test]
    fn example_vars_are_not_compared_with_a_malformed_prompt() {
        let text =
            with("prompt = '{{word}'\n[[examples]]\noutput = 'o'\n[examples.vars]\nword = 'w'\n");
        assert_eq!(
            errors(&text),
            ["t.toml:4:11: unclosed '{{' (no '}}' after it)"]
        );
    }

    #[test]
    fn columns_on_line_one_do_not_count_a_byte_order_mark() {
        let text = "\u{feff}version = 0\nname = 't'\ndescription = 'd'\nprompt = '{{'\n";
        assert_eq!(
            errors(text),
            [
                "t.toml:1:11: template format version 0 does not exist (this whet reads 1)",
                "t.toml:4:11: unclosed '{{' (no '}}' after it)",
            ]
        );
        // The parser's own errors too; as without the mark.
        assert_eq!(
            errors("\u{feff}version = 'x\n"),
            ["t.toml:1:13: invalid literal string, expected `'`"]
        );
        let text = with("prompt = '{{a}}'\n[[examples]]\noutput = 'o'\nvars = { b = '' }\n");
        let with_mark = format!("\u{feff}{text}");
        assert_eq!(errors(&with_mark), errors(&text));
    }

    #[test]
    fn placeholder_errors_at_their_place_in_the_file() {
        // A `"""` string starting with a line break: the error is on the
        // file's next line.
        assert_eq!(
            errors(&with("prompt = \"\"\"\nSummarise\n  {{text}\"\"\"\n")),
            ["t.toml:6:3: unclosed '{{' (no '}}' after it)"]
        );
        // Escapes before the error take their written width.
        assert_eq!(
            errors(&with("prompt = \"a\\n\\u00e9\\t }} x\"\n")),
            ["t.toml:4:23: '}}' without an opening '{{'"]
        );
        // A literal string.
        assert_eq!(
            errors(&with("prompt = \"it's\"\nsystem = 'a\\n {{ }}'\n")),
            ["t.toml:5:15: empty placeholder '{{ }}'"]
        )
    }

    #[test]
    fn wide_characters_before_the_error_count_as_one_column() {
        assert_eq!(
            errors(&with("prompt = \"日本語 🎉 {{1x}}\"\n")),
            ["t.toml:4:17: invalid variable name '1x' (use letters, digits and '_')"]
        );
    }

    #[test]
    fn line_ending_backslash_and_literal_multi_line() {
        let text = with(
            "prompt = \"\"\"\r\nfirst \\\r\n     second {{a b}}\"\"\"\nsystem = '''\n\\x {{}}\n'''\n",
        );
        assert_eq!(
            errors(&text),
            [
                "t.toml:6:13: invalid variable name 'a b' (use letters, digits and '_')",
                "t.toml:8:4: empty placeholder '{{}}'",
            ]
        );
    }

    #[test]
    fn a_score_pattern_must_compile_and_capture_the_number() {
        assert_eq!(
            errors(&with(
                "prompt = 'x'\n[refine]\nscore_threshold = 3\nscore_pattern = '(\\d+'\n"
            )),
            ["t.toml:7:17: invalid score_pattern: unclosed group"]
        );
        assert_eq!(
            errors(&with(
                "prompt = 'x'\n[refine]\nscore_pattern = 'score: \\d+'\n"
            )),
            ["t.toml:6:17: score_pattern needs a group around the number, e.g. 'score: (\\d+)'"]
        );
    }

    #[test]
    fn refine_prompts_use_only_their_placeholders() {
        let text = with(
            "prompt = '{{text}}'\n[refine]\nfeedback = '{{task}} {{feedback}}'\nrefine = \"\"\"\n{{task}}{{answer}}{{feedback}}{{text}} {{\"\"\"\n",
        );
        assert_eq!(
            errors(&text),
            [
                "t.toml:6:22: unknown placeholder '{{feedback}}' in refine.feedback (it can use task, answer)",
                "t.toml:8:40: unclosed '{{' (no '}}' after it)",
            ]
        );
        // Valid names elsewhere in the file do not hide the syntax error;
        // with it fixed, the unknown name is reported.
        let text = with("prompt = ''\n[refine]\nrefine = '{{text}}'\n");
        assert_eq!(
            errors(&text),
            ["t.toml:6:11: unknown placeholder '{{text}}' in refine.refine (it can use task, answer, feedback)"]
        );
    }

    #[test]
    fn every_problem_in_file_order() {
        let text = "version = 1\nname = '?'\ndescription = 'd'\nsystem = '}}'\nprompt = '{{'\n";
        assert_eq!(
            errors(text),
            [
                "t.toml:2:8: invalid template name '?' (use letters, digits, '-' and '_')",
                "t.toml:4:11: '}}' without an opening '{{'",
                "t.toml:5:11: unclosed '{{' (no '}}' after it)",
            ]
        );
    }

    #[test]
    fn error_display_without_a_position() {
        let e = TemplateError::whole("f", "m");
        assert_eq!(e.to_string(), "f: m");
        assert_eq!(e.line_col, None);
    }

    fn full_template() -> Template {
        Template {
            version: 1,
            name: "round-trip_1".into(),
            description: "Quotes \" and 'apostrophes' and \\ backslash".into(),
            system: Some("Line one\n\tindented \"quoted\"\nends with a quote\"".into()),
            prompt:
                "\nstarts with a break {{x}}\r\nwindows line\n\"\"\"three quotes\"\"\"\u{1}ctrl\n"
                    .into(),
            variables: BTreeMap::from([
                (
                    "x".into(),
                    Variable {
                        description: Some("the x".into()),
                        default: Some("日本語 🎉\n{{y}}".into()),
                    },
                ),
                ("y".into(), Variable::default()),
            ]),
            examples: vec![
                Example {
                    vars: Some(BTreeMap::from([(
                        "x".into(),
                        "path\\to\\file\nline 2".into(),
                    )])),
                    input: None,
                    output: "it's '''".into(),
                    enabled: true,
                },
                Example {
                    vars: None,
                    input: Some("literal {{x}}".into()),
                    output: "out\n".into(),
                    enabled: false,
                },
                Example {
                    vars: Some(BTreeMap::new()),
                    input: None,
                    output: String::new(),
                    enabled: true,
                },
            ],
            sampling: TemplateSampling {
                temperature: Some(1.0),
                top_k: Some(-1),
                top_p: Some(0.95),
                min_p: Some(0.0),
                repeat_penalty: Some(1.1),
                seed: Some(42),
                max_tokens: Some(256),
                stop: Some(vec!["\n\n".into(), "END\"".into()]),
                num_beams: Some(3),
                length_penalty: Some(-0.5),
                early_stopping: Some(EarlyStopping::True),
                num_return_sequences: Some(2),
                no_repeat_ngram_size: Some(3),
                grammar: None,
                json_schema: None,
            },
            refine: Refine {
                feedback: Some("{{task}}\n{{answer}}".into()),
                refine: None,
                stop_phrase: Some("DONE".into()),
                score_threshold: Some(7.5),
                score_pattern: Some(r"score: (\d+)".into()),
            },
            references: vec!["one".into(), "two\nlines".into()],
        }
    }

    #[test]
    fn beam_keys_are_transformers_options_checked_where_written() {
        let t = parse(
            &with("prompt = 'x'\n[sampling]\nnum_beams = 4\nearly_stopping = \"never\"\nlength_penalty = 0.5\n"),
            FILE,
        )
        .unwrap();
        let beams = t.sampling.beams().unwrap();
        assert_eq!(beams.num_beams, 4);
        assert_eq!(beams.early_stopping, EarlyStopping::Never);
        assert_eq!(beams.length_penalty, 0.5);
        assert_eq!(beams.num_return_sequences, 1);
        assert_eq!(parse(&to_toml(&t), FILE), Ok(t));

        assert_eq!(
            errors(&with("prompt = 'x'\n[sampling]\nlength_penalty = 2.0\n")),
            ["t.toml:6:18: sampling.length_penalty is a beam-search option; set sampling.num_beams too"]
        );
        assert_eq!(
            errors(&with(
                "prompt = 'x'\n[sampling]\nnum_beams = 2\nnum_return_sequences = 3\n"
            )),
            ["t.toml:6:13: sampling: num_return_sequences (3) must not exceed num_beams (2)"]
        );
        assert_eq!(
            errors(&with("prompt = 'x'\n[sampling]\nnum_beams = 9\n")),
            ["t.toml:6:13: sampling: num_beams is 9; whet runs at most 8 beams"]
        );
        let err = errors(&with(
            "prompt = 'x'\n[sampling]\nnum_beams = 2\nearly_stopping = 'soon'\n",
        ));
        assert!(err[0].contains("true, false or \"never\""), "{err:?}");
    }

    #[test]
    fn to_toml_round_trips() {
        let template = full_template();
        let text = to_toml(&template);
        assert_eq!(parse(&text, FILE), Ok(template));

        let minimal = Template {
            version: 1,
            name: "m".into(),
            description: "d".into(),
            system: None,
            prompt: "p".into(),
            variables: BTreeMap::new(),
            examples: Vec::new(),
            sampling: TemplateSampling::default(),
            refine: Refine::default(),
            references: Vec::new(),
        };
        let text = to_toml(&minimal);
        assert_eq!(
            text,
            "version = 1\nname = \"m\"\ndescription = \"d\"\n\nprompt = \"p\"\n"
        );
        assert_eq!(parse(&text, FILE), Ok(minimal));
    }

    #[test]
    fn to_toml_is_readable() {
        let mut template = full_template();
        template.prompt = "Summarise:\n\n{{x}}".into();
        template.system = Some("path\\to \"x\"".into());
        let text = to_toml(&template);
        assert!(
            text.contains("prompt = \"\"\"\nSummarise:\n\n{{x}}\"\"\"\n"),
            "{text}"
        );
        assert!(text.contains("system = 'path\\to \"x\"'\n"), "{text}");
        assert!(text.contains("temperature = 1.0\n"), "{text}");
        template.prompt = "s.split(\"\")\n\"\"\"\"x\"".into();
        // No {{x}} any more: the examples' x would be unknown.
        template.examples.clear();
        let text = to_toml(&template);
        assert!(
            text.contains("prompt = \"\"\"\ns.split(\"\")\n\"\"\\\"\"x\\\"\"\"\"\n"),
            "{text}"
        );
        assert_eq!(parse(&text, FILE).unwrap().prompt, template.prompt);
        assert!(text.contains("stop = [\"\\n\\n\", 'END\"']\n"), "{text}");
    }

    #[test]
    fn to_toml_quotes_keys_that_need_it() {
        let mut template = full_template();
        let vars = template.examples[0].vars.as_mut().unwrap();
        vars.insert("odd key".into(), "v".into());
        let text = to_toml(&template);
        assert!(
            text.contains("[examples.vars]\n\"odd key\" = \"v\"\n"),
            "{text}"
        );
        // Such a name is no variable of the prompt.
        let errors: Vec<String> = parse(&text, FILE)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].ends_with(": example 1: unknown variable 'odd key' (the prompt uses: x)"),
            "{errors:?}"
        );
    }

    #[test]
    fn float_formatting() {
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(0.3), "0.3");
        assert_eq!(float(f32::INFINITY), "inf");
        assert_eq!(float(f32::NEG_INFINITY), "-inf");
        assert_eq!(float(f32::NAN), "nan");
        assert_eq!(float(1e30), "1000000000000000000000000000000.0");
    }
}
