//! The experiment file: which prompt, which dataset, which variants, how
//! they are scored. TOML, checked with every problem at its `file:line:col`:
//!
//! ```toml
//! version = 1
//! name = "sentiment-shots"             # = the file name without .toml
//! description = "0, 1 and 3 examples"  # optional, one line
//! template = "sentiment-reversal"      # or: prompt = "…{{var}}…", system = "…"
//! dataset = "sentiment-reviews.jsonl"  # relative to this file; JSONL or CSV
//! metrics = ["chrf", "bleu", "rougeL", "exact", "length"]
//! checks = [{ contains = "great" }, { max-words = 60 }, { is-json = true }]
//!                                      # also { json-schema = "schema.json" }
//! baseline = "0-shot"                  # default: the first variant
//! repeats = 1                          # seeds seed, seed+1, … (greedy runs once)
//! seed = 42
//! limit = 10                           # only the first items
//!
//! [[variants]]
//! name = "0-shot"
//! examples = "none"                    # "none", "all" or [1, 3]
//!
//! [[variants]]
//! name = "3-shot"
//! examples = "all"
//! temperature = 0.2                    # also top_k, top_p, min_p, repeat_penalty,
//!                                      # max_tokens, stop, system, template, model,
//!                                      # grammar or json_schema (files, relative
//!                                      # to this file)
//!
//! [[variants]]
//! name = "3-shot refined"
//! examples = "all"
//! refine = { rounds = 2, keep = "best" } # see super::refinement
//!
//! [matrix]                             # crossed with every variant above
//! temperature = [0.0, 0.7]
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::refinement::{self, FileRefinement, Refinement};
use crate::text_position::line_col;

/// The format version this whet reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The metrics a variant's outputs can be scored with (against the
/// item's references, where they need them).
pub const METRICS: [&str; 7] = [
    "bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact", "length",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    pub prompt: PromptSource,
    pub dataset: String,
    pub metrics: Vec<String>,
    pub checks: Vec<Check>,
    /// The variant the others are compared with.
    pub baseline: String,
    pub repeats: u32,
    pub seed: u32,
    pub limit: Option<usize>,
    /// In file order, the matrix expanded.
    pub variants: Vec<Variant>,
}

/// Where the prompt comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptSource {
    Template(String),
    Inline {
        system: Option<String>,
        prompt: String,
    },
}

/// Which few-shot examples a variant sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Examples {
    /// The template's own choice (those marked enabled).
    Template,
    None,
    All,
    Only(Vec<usize>),
}

/// A pass/fail column, as promptfoo's assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Equals(String),
    Contains(String),
    IContains(String),
    NotContains(String),
    Regex(String),
    MaxWords(usize),
    IsJson,
    /// The output is JSON that the schema in this file (relative to the
    /// experiment file) validates; `schema` is filled in when the
    /// experiment is prepared.
    JsonSchema {
        file: String,
        schema: serde_json::Value,
    },
}

impl Check {
    /// The column's name: `contains "great"`, `max-words 60`.
    pub fn label(&self) -> String {
        match self {
            Check::Equals(v) => format!("equals {v:?}"),
            Check::Contains(v) => format!("contains {v:?}"),
            Check::IContains(v) => format!("icontains {v:?}"),
            Check::NotContains(v) => format!("not-contains {v:?}"),
            Check::Regex(v) => format!("regex {v:?}"),
            Check::MaxWords(n) => format!("max-words {n}"),
            Check::IsJson => "is-json".to_string(),
            Check::JsonSchema { file, .. } => format!("json-schema {file:?}"),
        }
    }
}

/// One way of running the prompt; unset fields keep the template's (and
/// the model's) settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variant {
    pub name: String,
    pub template: Option<String>,
    pub system: Option<String>,
    pub examples: Option<Examples>,
    pub temperature: Option<f32>,
    pub top_k: Option<i32>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stop: Option<Vec<String>>,
    /// A catalog model id or a path.
    pub model: Option<String>,
    /// The chat format to load that model with (for a base model without a
    /// chat template, such as Gemma 3 270M: `gemma`).
    pub chat_format: Option<String>,
    /// Refinement rounds (at least one; None: a plain variant).
    pub refine: Option<Refinement>,
    /// A GBNF grammar file the output must follow (relative to the
    /// experiment file); None keeps the template's.
    pub grammar: Option<String>,
    /// A JSON Schema file the output must match (relative to the
    /// experiment file); None keeps the template's.
    pub json_schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line_col: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

// ---------------------------------------------------------------- the file

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: Option<Spanned<u32>>,
    name: Spanned<String>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    template: Option<Spanned<String>>,
    prompt: Option<Spanned<String>>,
    system: Option<String>,
    dataset: Spanned<String>,
    #[serde(default)]
    metrics: Vec<Spanned<String>>,
    #[serde(default)]
    checks: Vec<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    baseline: Option<Spanned<String>>,
    repeats: Option<Spanned<u32>>,
    seed: Option<u32>,
    limit: Option<Spanned<usize>>,
    #[serde(default)]
    variants: Vec<Spanned<FileVariant>>,
    matrix: Option<Spanned<BTreeMap<String, Spanned<Vec<toml::Value>>>>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct FileVariant {
    name: Spanned<String>,
    template: Option<String>,
    system: Option<String>,
    examples: Option<Spanned<toml::Value>>,
    temperature: Option<f32>,
    top_k: Option<i32>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    max_tokens: Option<u32>,
    stop: Option<Vec<String>>,
    model: Option<String>,
    chat_format: Option<String>,
    refine: Option<Spanned<FileRefinement>>,
    grammar: Option<String>,
    json_schema: Option<Spanned<String>>,
}

/// Reads and checks an experiment file; `file` names it in messages and
/// `file_name` (the file's name without `.toml`) must be its `name`. This
/// checks the file alone; [`super::check`] adds the template and dataset.
pub fn parse(
    text: &str,
    file: &str,
    file_name: Option<&str>,
) -> Result<Experiment, Vec<SpecError>> {
    let at = |offset: usize, message: String| SpecError {
        file: file.to_string(),
        line_col: Some(line_col(text, offset)),
        message,
    };
    let parsed: File = toml::from_str(text).map_err(|e| {
        vec![match e.span() {
            Some(span) => at(span.start, e.message().to_string()),
            None => SpecError {
                file: file.to_string(),
                line_col: None,
                message: e.message().to_string(),
            },
        }]
    })?;
    let mut errors = Vec::new();
    if let Some(version) = &parsed.version {
        if *version.get_ref() != FORMAT_VERSION {
            errors.push(at(
                version.span().start,
                format!(
                    "experiment format version {} is not one this whet reads ({FORMAT_VERSION})",
                    version.get_ref()
                ),
            ));
        }
    }
    let name = parsed.name.get_ref().clone();
    if !crate::prompt::template::is_template_name(&name) {
        errors.push(at(
            parsed.name.span().start,
            format!("invalid experiment name '{name}' (use letters, digits, '-' and '_')"),
        ));
    } else if let Some(file_name) = file_name.filter(|f| *f != name) {
        errors.push(at(
            parsed.name.span().start,
            format!("name '{name}' does not match the file name '{file_name}.toml'"),
        ));
    }
    let description = parsed
        .description
        .as_ref()
        .map(|d| d.get_ref().clone())
        .unwrap_or_default();
    if let Some(d) = &parsed.description {
        if d.get_ref().contains(['\n', '\r']) {
            errors.push(at(d.span().start, "description must be one line".into()));
        }
    }
    let prompt = match (&parsed.template, &parsed.prompt) {
        (Some(template), None) => {
            if parsed.system.is_some() {
                errors.push(at(
                    template.span().start,
                    "'system' goes with an inline 'prompt'; a template has its own (a variant can set 'system')".into(),
                ));
            }
            PromptSource::Template(template.get_ref().clone())
        }
        (None, Some(prompt)) => PromptSource::Inline {
            system: parsed.system.clone(),
            prompt: prompt.get_ref().clone(),
        },
        (Some(template), Some(_)) => {
            errors.push(at(
                template.span().start,
                "give either 'template' or 'prompt', not both".into(),
            ));
            PromptSource::Template(template.get_ref().clone())
        }
        (None, None) => {
            errors.push(at(
                parsed.name.span().start,
                "the experiment needs a 'template' (a template's name) or a 'prompt'".into(),
            ));
            PromptSource::Inline {
                system: None,
                prompt: String::new(),
            }
        }
    };
    let mut metrics = Vec::new();
    for metric in &parsed.metrics {
        let metric_name = metric.get_ref();
        if METRICS.contains(&metric_name.as_str()) {
            if metrics.contains(metric_name) {
                errors.push(at(
                    metric.span().start,
                    format!("metric '{metric_name}' is listed twice"),
                ));
            }
            metrics.push(metric_name.clone());
        } else {
            errors.push(at(
                metric.span().start,
                format!(
                    "unknown metric '{metric_name}' (metrics: {})",
                    METRICS.join(", ")
                ),
            ));
        }
    }
    let mut checks = Vec::new();
    for check in &parsed.checks {
        match parse_check(check.get_ref()) {
            Ok(parsed_check) => checks.push(parsed_check),
            Err((offset, message)) => {
                errors.push(at(offset.unwrap_or(check.span().start), message))
            }
        }
    }
    let repeats = parsed.repeats.as_ref().map_or(1, |r| *r.get_ref());
    if let Some(r) = &parsed.repeats {
        if *r.get_ref() == 0 {
            errors.push(at(r.span().start, "repeats must be at least 1".into()));
        }
    }
    if let Some(l) = &parsed.limit {
        if *l.get_ref() == 0 {
            errors.push(at(
                l.span().start,
                "limit must be at least 1 (leave it out for all items)".into(),
            ));
        }
    }

    // Variants, then the matrix crossed with them.
    let mut variants = Vec::new();
    for spanned in &parsed.variants {
        match variant(spanned.get_ref(), &metrics) {
            Ok(v) => variants.push(v),
            Err((offset, message)) => errors.push(at(offset, message)),
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (spanned, variant) in parsed.variants.iter().zip(&variants) {
        if seen.contains(&variant.name.as_str()) {
            errors.push(at(
                spanned.get_ref().name.span().start,
                format!("two variants are named '{}'", variant.name),
            ));
        }
        seen.push(&variant.name);
    }
    let bases = variants.clone();
    if let Some(matrix) = &parsed.matrix {
        match expand(&variants, matrix.get_ref(), &metrics) {
            Ok(expanded) => variants = expanded,
            Err((offset, message)) => errors.push(at(offset, message)),
        }
    }
    // No rounds is a plain variant (so its cells keep a plain cell's key).
    for variant in &mut variants {
        if variant.refine.as_ref().is_some_and(|r| r.rounds == 0) {
            variant.refine = None;
        }
    }
    if variants.is_empty() {
        variants.push(Variant {
            name: "default".into(),
            ..Variant::default()
        });
    }
    // A baseline names a variant, or a variant of the list before the
    // matrix (its first combination).
    let baseline = match &parsed.baseline {
        Some(b) => {
            let wanted = b.get_ref();
            let exact = variants.iter().find(|v| v.name == *wanted);
            let base_index = bases.iter().position(|v| v.name == *wanted);
            match (exact, base_index) {
                (Some(v), _) => v.name.clone(),
                (None, Some(index)) => {
                    let per_base = variants.len() / bases.len().max(1);
                    variants[index * per_base].name.clone()
                }
                (None, None) => {
                    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
                    errors.push(at(
                        b.span().start,
                        format!(
                            "baseline '{wanted}' is not a variant (variants: {})",
                            names.join(", ")
                        ),
                    ));
                    wanted.clone()
                }
            }
        }
        None => variants[0].name.clone(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Experiment {
        name,
        description,
        prompt,
        dataset: parsed.dataset.get_ref().clone(),
        metrics,
        checks,
        baseline,
        repeats,
        seed: parsed.seed.unwrap_or(0),
        limit: parsed.limit.map(|l| *l.get_ref()),
        variants,
    })
}

type Located = (Option<usize>, String);

fn parse_check(table: &BTreeMap<String, Spanned<toml::Value>>) -> Result<Check, Located> {
    const KINDS: &str =
        "equals, contains, icontains, not-contains, regex, max-words, is-json, json-schema";
    if table.len() != 1 {
        return Err((
            None,
            format!("a check is one of {{ KIND = VALUE }} with KIND one of: {KINDS}"),
        ));
    }
    let (kind, value) = table.iter().next().expect("one entry");
    let offset = Some(value.span().start);
    let text = || match value.get_ref() {
        toml::Value::String(s) => Ok(s.clone()),
        _ => Err((offset, format!("check '{kind}' takes text"))),
    };
    Ok(match kind.as_str() {
        "equals" => Check::Equals(text()?),
        "contains" => Check::Contains(text()?),
        "icontains" => Check::IContains(text()?),
        "not-contains" => Check::NotContains(text()?),
        "regex" => {
            let pattern = text()?;
            regex::Regex::new(&pattern).map_err(|e| {
                (
                    offset,
                    format!("check 'regex': {}", one_line(&e.to_string())),
                )
            })?;
            Check::Regex(pattern)
        }
        "max-words" => match value.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Check::MaxWords(*n as usize),
            _ => return Err((offset, "check 'max-words' takes a whole number".into())),
        },
        "json-schema" => Check::JsonSchema {
            file: text()?,
            schema: serde_json::Value::Null,
        },
        "is-json" => match value.get_ref() {
            toml::Value::Boolean(true) => Check::IsJson,
            _ => return Err((offset, "check 'is-json' is written is-json = true".into())),
        },
        other => return Err((None, format!("unknown check '{other}' (checks: {KINDS})"))),
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn examples(value: &Spanned<toml::Value>) -> Result<Examples, (usize, String)> {
    let offset = value.span().start;
    match value.get_ref() {
        toml::Value::String(s) if s == "none" => Ok(Examples::None),
        toml::Value::String(s) if s == "all" => Ok(Examples::All),
        toml::Value::String(s) if s == "template" => Ok(Examples::Template),
        toml::Value::Array(list) => {
            let mut numbers = Vec::new();
            for entry in list {
                match entry {
                    toml::Value::Integer(n) if *n >= 1 => numbers.push(*n as usize),
                    _ => {
                        return Err((offset, "examples are numbered from 1: [1, 3]".into()));
                    }
                }
            }
            Ok(Examples::Only(numbers))
        }
        _ => Err((
            offset,
            "examples = \"none\", \"all\", \"template\" or a list of numbers like [1, 3]".into(),
        )),
    }
}

fn variant(file: &FileVariant, metrics: &[String]) -> Result<Variant, (usize, String)> {
    let name = file.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err((file.name.span().start, "a variant needs a name".into()));
    }
    if let (Some(_), Some(schema)) = (&file.grammar, &file.json_schema) {
        return Err((
            schema.span().start,
            format!("variant '{name}' sets both grammar and json_schema; choose one"),
        ));
    }
    Ok(Variant {
        name,
        template: file.template.clone(),
        system: file.system.clone(),
        examples: file.examples.as_ref().map(examples).transpose()?,
        temperature: file.temperature,
        top_k: file.top_k,
        top_p: file.top_p,
        min_p: file.min_p,
        repeat_penalty: file.repeat_penalty,
        max_tokens: file.max_tokens,
        stop: file.stop.clone(),
        model: file.model.clone(),
        chat_format: file.chat_format.clone(),
        refine: file
            .refine
            .as_ref()
            .map(|r| refinement::parse(r, metrics))
            .transpose()?,
        grammar: file.grammar.clone(),
        json_schema: file.json_schema.as_ref().map(|s| s.get_ref().clone()),
    })
}

/// Every variant (or one plain variant) crossed with every combination of
/// the matrix's values, named after them: `temperature=0.7 examples=none`.
fn expand(
    variants: &[Variant],
    matrix: &BTreeMap<String, Spanned<Vec<toml::Value>>>,
    metrics: &[String],
) -> Result<Vec<Variant>, (usize, String)> {
    let bases = if variants.is_empty() {
        vec![Variant::default()]
    } else {
        variants.to_vec()
    };
    let mut out = bases;
    for (key, values) in matrix {
        let offset = values.span().start;
        if values.get_ref().is_empty() {
            return Err((offset, format!("matrix '{key}' has no values")));
        }
        let mut next = Vec::new();
        for base in &out {
            for value in values.get_ref() {
                let mut v = base.clone();
                set(&mut v, key, value, metrics).map_err(|m| (offset, m))?;
                let shown = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let part = format!("{key}={shown}");
                v.name = if v.name.is_empty() {
                    part
                } else {
                    format!("{} {part}", v.name)
                };
                next.push(v);
            }
        }
        out = next;
    }
    Ok(out)
}

/// Sets one variant field from a matrix value.
fn set(
    variant: &mut Variant,
    key: &str,
    value: &toml::Value,
    metrics: &[String],
) -> Result<(), String> {
    if refinement::set_from_matrix(&mut variant.refine, key, value, metrics)? {
        return Ok(());
    }
    let float = || match value {
        toml::Value::Float(f) => Ok(*f as f32),
        toml::Value::Integer(i) => Ok(*i as f32),
        _ => Err(format!("matrix '{key}' takes numbers")),
    };
    let integer = || match value {
        toml::Value::Integer(i) => Ok(*i),
        _ => Err(format!("matrix '{key}' takes whole numbers")),
    };
    let text = || match value {
        toml::Value::String(s) => Ok(s.clone()),
        _ => Err(format!("matrix '{key}' takes text")),
    };
    match key {
        "temperature" => variant.temperature = Some(float()?),
        "top_p" => variant.top_p = Some(float()?),
        "min_p" => variant.min_p = Some(float()?),
        "repeat_penalty" => variant.repeat_penalty = Some(float()?),
        "top_k" => variant.top_k = Some(integer()? as i32),
        "max_tokens" => variant.max_tokens = Some(integer()?.max(0) as u32),
        "template" => variant.template = Some(text()?),
        "system" => variant.system = Some(text()?),
        "model" => variant.model = Some(text()?),
        "chat_format" => variant.chat_format = Some(text()?),
        "examples" => {
            let spanned = Spanned::new(0..0, value.clone());
            variant.examples = Some(examples(&spanned).map_err(|(_, m)| m)?);
        }
        other => {
            return Err(format!(
                "matrix '{other}' is not a variant setting (temperature, top_k, top_p, min_p, repeat_penalty, max_tokens, examples, template, system, model, chat_format, rounds, keep)"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version = 1
name = "shots"
template = "sentiment-reversal"
dataset = "reviews.jsonl"
metrics = ["chrf", "exact"]
checks = [{ contains = "great" }, { max-words = 60 }, { is-json = true }]
baseline = "3-shot"
repeats = 2
seed = 7

[[variants]]
name = "0-shot"
examples = "none"

[[variants]]
name = "3-shot"
examples = [1, 2, 3]
temperature = 0.2
"#;

    fn errors(text: &str) -> Vec<String> {
        parse(text, "e.toml", None)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_file_reads_whole() {
        let e = parse(GOOD, "e.toml", Some("shots")).unwrap();
        assert_eq!(
            e.prompt,
            PromptSource::Template("sentiment-reversal".into())
        );
        assert_eq!(e.metrics, ["chrf", "exact"]);
        assert_eq!(
            e.checks,
            [
                Check::Contains("great".into()),
                Check::MaxWords(60),
                Check::IsJson
            ]
        );
        assert_eq!(e.baseline, "3-shot");
        assert_eq!((e.repeats, e.seed, e.limit), (2, 7, None));
        assert_eq!(e.variants.len(), 2);
        assert_eq!(e.variants[1].examples, Some(Examples::Only(vec![1, 2, 3])));
        assert_eq!(e.variants[1].temperature, Some(0.2));
    }

    #[test]
    fn constraints_and_json_schema_checks_read() {
        let text = "name = \"c\"\nprompt = \"x\"\ndataset = \"d.csv\"\nchecks = [{ json-schema = \"s.json\" }]\n[[variants]]\nname = \"g\"\ngrammar = \"g.gbnf\"\n[[variants]]\nname = \"s\"\njson_schema = \"s.json\"\n";
        let e = parse(text, "e.toml", None).unwrap();
        assert_eq!(
            e.checks,
            [Check::JsonSchema {
                file: "s.json".into(),
                schema: serde_json::Value::Null
            }]
        );
        assert_eq!(e.variants[0].grammar.as_deref(), Some("g.gbnf"));
        assert_eq!(e.variants[1].json_schema.as_deref(), Some("s.json"));
        let both = "name = \"c\"\nprompt = \"x\"\ndataset = \"d.csv\"\n[[variants]]\nname = \"b\"\ngrammar = \"g.gbnf\"\njson_schema = \"s.json\"\n";
        assert_eq!(
            errors(both),
            ["e.toml:7:15: variant 'b' sets both grammar and json_schema; choose one"]
        );
    }

    #[test]
    fn the_matrix_crosses_every_variant_and_names_the_results() {
        let text = format!("{GOOD}\n[matrix]\ntemperature = [0, 0.7]\n");
        let e = parse(&text, "e.toml", None).unwrap();
        let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "0-shot temperature=0",
                "0-shot temperature=0.7",
                "3-shot temperature=0",
                "3-shot temperature=0.7"
            ]
        );
        assert_eq!(e.baseline, "3-shot temperature=0");
        let plain = "name = \"m\"\ntemplate = \"qa\"\ndataset = \"d.csv\"\n[matrix]\nexamples = [\"none\", \"all\"]\ntop_k = [1, 40]\n";
        let e = parse(plain, "e.toml", None).unwrap();
        let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "examples=none top_k=1",
                "examples=none top_k=40",
                "examples=all top_k=1",
                "examples=all top_k=40"
            ]
        );
        assert_eq!(e.baseline, "examples=none top_k=1");
    }

    #[test]
    fn mistakes_are_reported_where_they_are() {
        assert_eq!(
            errors("name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\nmetrics = [\"blue\"]\n"),
            ["e.toml:4:12: unknown metric 'blue' (metrics: bleu, chrf, rouge1, rouge2, rougeL, exact, length)"]
        );
        assert_eq!(
            errors("name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\nbaseline = \"nope\"\n[[variants]]\nname = \"a\"\n"),
            ["e.toml:4:12: baseline 'nope' is not a variant (variants: a)"]
        );
        assert_eq!(
            errors("name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\nchecks = [{ regex = \"(\" }]\n"),
            ["e.toml:4:21: check 'regex': regex parse error: ( ^ error: unclosed group"]
        );
        assert_eq!(
            errors("name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\n[[variants]]\nname = \"a\"\nexamples = \"some\"\n"),
            ["e.toml:6:12: examples = \"none\", \"all\", \"template\" or a list of numbers like [1, 3]"]
        );
        assert_eq!(
            errors("name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\n[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n"),
            ["e.toml:7:8: two variants are named 'a'"]
        );
        let unknown =
            errors("name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\ntemprature = 1\n");
        assert!(
            unknown[0].starts_with("e.toml:4:1: unknown field `temprature`"),
            "{unknown:?}"
        );
        assert_eq!(
            errors("name = \"x\"\ndataset = \"d.csv\"\n"),
            ["e.toml:1:8: the experiment needs a 'template' (a template's name) or a 'prompt'"]
        );
        assert_eq!(
            errors("name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\n[matrix]\ncolour = [1]\n"),
            ["e.toml:5:10: matrix 'colour' is not a variant setting (temperature, top_k, top_p, min_p, repeat_penalty, max_tokens, examples, template, system, model, chat_format, rounds, keep)"]
        );
        assert_eq!(
            parse(
                "name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\n",
                "e.toml",
                Some("y")
            )
            .unwrap_err()[0]
                .to_string(),
            "e.toml:1:8: name 'x' does not match the file name 'y.toml'"
        );
    }

    const HEAD: &str =
        "name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\nmetrics = [\"length\", \"chrf\"]\n";

    #[test]
    fn a_variant_refines_with_rounds_and_keeps_a_pass() {
        let text = format!(
            "{HEAD}[[variants]]\nname = \"plain\"\n[[variants]]\nname = \"best\"\n\
             refine = {{ rounds = 2, keep = \"best\", history = \"fresh\", stop_phrase = \"\" }}\n\
             [[variants]]\nname = \"last\"\nrefine = {{ feedback = \"Judge {{{{answer}}}}\" }}\n\
             [[variants]]\nname = \"none\"\nrefine = {{ rounds = 0, keep = \"best\" }}\n"
        );
        let e = parse(&text, "e.toml", None).unwrap();
        assert_eq!(e.variants[0].refine, None);
        let best = e.variants[1].refine.clone().unwrap();
        assert_eq!(
            best,
            Refinement {
                rounds: 2,
                keep: refinement::Keep::Best,
                // The experiment's first metric against the references.
                best_by: Some("chrf".into()),
                history: crate::refine::History::Fresh,
                feedback: None,
                refine: None,
                stop_phrase: Some(String::new()),
            }
        );
        let last = e.variants[2].refine.clone().unwrap();
        assert_eq!(
            (last.rounds, last.keep, last.best_by),
            (crate::refine::DEFAULT_ROUNDS, refinement::Keep::Last, None)
        );
        assert_eq!(last.feedback.as_deref(), Some("Judge {{answer}}"));
        // No rounds: a plain variant.
        assert_eq!(e.variants[3].refine, None);
    }

    #[test]
    fn the_matrix_crosses_rounds_and_what_is_kept() {
        let text = format!(
            "{HEAD}[[variants]]\nname = \"v\"\nrefine = {{ best_by = \"bleu\", keep = \"best\" }}\n\
             [matrix]\nrounds = [0, 2]\nkeep = [\"best\", \"last\"]\n"
        );
        let e = parse(&text, "e.toml", None).unwrap();
        // Each variant's name and (rounds, keep, best_by).
        type Shown<'a> = (&'a str, Option<(u32, &'a str, Option<&'a str>)>);
        let shown: Vec<Shown> = e
            .variants
            .iter()
            .map(|v| {
                let refine = v
                    .refine
                    .as_ref()
                    .map(|r| (r.rounds, r.keep.as_str(), r.best_by.as_deref()));
                (v.name.as_str(), refine)
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("v keep=best rounds=0", None),
                ("v keep=best rounds=2", Some((2, "best", Some("bleu")))),
                ("v keep=last rounds=0", None),
                ("v keep=last rounds=2", Some((2, "last", None))),
            ]
        );
        // A variant without a refine table gets the default settings.
        let plain = format!("{HEAD}[matrix]\nrounds = [1]\n");
        let e = parse(&plain, "e.toml", None).unwrap();
        let refine = e.variants[0].refine.clone().unwrap();
        assert_eq!((refine.rounds, refine.keep), (1, refinement::Keep::Last));
    }

    #[test]
    fn refinement_mistakes_are_reported_where_they_are() {
        let one = |refine: &str| {
            errors(&format!(
                "{HEAD}[[variants]]\nname = \"v\"\nrefine = {refine}\n"
            ))
        };
        assert_eq!(
            one("{ keep = \"first\" }"),
            ["e.toml:7:19: keep = \"best\" or \"last\""]
        );
        assert_eq!(
            one("{ rounds = 17 }"),
            ["e.toml:7:21: rounds must be at most 16 (each round is two generations per cell)"]
        );
        assert_eq!(
            one("{ best_by = \"chrf\" }"),
            ["e.toml:7:22: best_by goes with keep = \"best\" (keep = \"last\" ranks nothing)"]
        );
        assert_eq!(
            one("{ keep = \"best\", best_by = \"length\" }"),
            ["e.toml:7:37: best_by 'length' is not a metric against the references (bleu, chrf, rouge1, rouge2, rougeL, exact)"]
        );
        assert_eq!(
            one("{ history = \"all\" }"),
            ["e.toml:7:22: history = \"conversation\" or \"fresh\""]
        );
        assert_eq!(
            one("{ feedback = \"Judge {{draft}}\" }"),
            ["e.toml:7:23: unknown placeholder '{{draft}}' in refine.feedback (it can use task, answer)"]
        );
        assert_eq!(
            one("{ refine = \"Do better: {{feedback}}\" }"),
            ["e.toml:7:21: refine.refine never shows the model the answer: use {{answer}}"]
        );
        let unknown = one("{ rouns = 2 }");
        assert!(
            unknown[0].starts_with("e.toml:7:12: unknown field `rouns`"),
            "{unknown:?}"
        );
        // keep = "best" needs a metric against the references to rank by.
        let lengths =
            "name = \"x\"\ntemplate = \"t\"\ndataset = \"d.csv\"\nmetrics = [\"length\"]\n";
        assert_eq!(
            errors(&format!("{lengths}[[variants]]\nname = \"v\"\nrefine = {{ keep = \"best\" }}\n")),
            ["e.toml:7:19: keep = \"best\" ranks the passes by a metric against the references: set best_by (bleu, chrf, rouge1, rouge2, rougeL, exact) or list one in 'metrics'"]
        );
        assert_eq!(
            errors(&format!("{lengths}[matrix]\nkeep = [\"best\"]\n")),
            ["e.toml:6:8: keep = \"best\" ranks the passes by a metric against the references: set best_by (bleu, chrf, rouge1, rouge2, rougeL, exact) or list one in 'metrics'"]
        );
        assert_eq!(
            errors(&format!("{HEAD}[matrix]\nrounds = [-1]\n")),
            ["e.toml:6:10: matrix 'rounds' takes whole numbers from 0 to 16"]
        );
    }
}
