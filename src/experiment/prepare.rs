//! An experiment file with everything it names: its templates (one per
//! variant, with the variant's system prompt), its dataset (relative to the
//! file, cut to `limit`), and what can be known before running: missing
//! variables, example numbers, models, metrics without references.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dataset::{self, Item};
use super::spec::{self, Examples, Experiment, PromptSource, Variant};
use crate::engine::constraint::Constraint;
use crate::prompt::library;
use crate::prompt::template::Template;

/// Metrics that compare an output with the item's references.
const NEED_REFERENCES: [&str; 6] = ["bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact"];

#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: PathBuf,
    pub experiment: Experiment,
    /// The dataset's items (the first `limit` of them).
    pub items: Vec<Item>,
    /// Items in the file, before `limit`.
    pub items_in_file: usize,
    /// The template each variant renders, by variant name.
    pub templates: BTreeMap<String, Template>,
    /// The grammar or JSON Schema each constrained variant's output must
    /// follow, by variant name: the variant's own, else its template's.
    pub constraints: BTreeMap<String, Constraint>,
    /// Doubts that do not stop the experiment.
    pub warnings: Vec<String>,
}

impl Prepared {
    /// How many times a variant runs each item: once when its decoding is
    /// greedy (repeats would be identical), else `repeats`.
    pub fn repeats_of(&self, variant: &Variant) -> u32 {
        let template_temperature = self
            .templates
            .get(&variant.name)
            .and_then(|t| t.sampling.temperature);
        match variant.temperature.or(template_temperature) {
            Some(t) if t <= 0.0 => 1,
            _ => self.experiment.repeats,
        }
    }

    /// A run's own choices: only the first `limit` items, and `repeats`
    /// in place of the file's (greedy variants still run once).
    pub fn apply(&mut self, limit: Option<usize>, repeats: Option<u32>) {
        if let Some(limit) = limit {
            self.items.truncate(limit);
        }
        if let Some(repeats) = repeats {
            self.experiment.repeats = repeats.max(1);
        }
    }

    /// Items × variants × their repeats.
    pub fn cells(&self) -> usize {
        self.experiment
            .variants
            .iter()
            .map(|v| self.items.len() * self.repeats_of(v) as usize)
            .sum()
    }
}

/// Reads the experiment at `path` and everything it names; every problem
/// found is returned (as `file:line:col: message` lines).
pub fn prepare(path: &Path, user_templates: Option<&Path>) -> Result<Prepared, Vec<String>> {
    let file = path.display().to_string();
    let text = library::read_template_file(path).map_err(|e| vec![format!("{file}: {e}")])?;
    let file_name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let mut experiment = spec::parse(&text, &file, file_name.as_deref())
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let here = path.parent().unwrap_or(Path::new(".")).to_path_buf();

    // json-schema checks: their schemas, relative to the experiment file.
    for check in &mut experiment.checks {
        if let spec::Check::JsonSchema {
            file: schema_file,
            schema,
        } = check
        {
            match load_schema(&here.join(&*schema_file)) {
                Ok(value) => *schema = value,
                Err(message) => errors.push(format!("{file}: check 'json-schema': {message}")),
            }
        }
    }

    // Templates, loaded once each, with the folder their files are in.
    let mut loaded: BTreeMap<String, Template> = BTreeMap::new();
    let mut template_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut constraints = BTreeMap::new();
    let mut templates = BTreeMap::new();
    for variant in &experiment.variants {
        let base = match (&variant.template, &experiment.prompt) {
            (Some(name), _) | (None, PromptSource::Template(name)) => {
                if !loaded.contains_key(name) {
                    let entry = if name.ends_with(".toml") {
                        template_file(path, name)
                    } else {
                        library::find(name, user_templates)
                    };
                    match entry.and_then(|entry| {
                        let dir = match &entry.source {
                            crate::prompt::Source::User(file) => {
                                file.parent().unwrap_or(Path::new(".")).to_path_buf()
                            }
                            crate::prompt::Source::Shipped => here.clone(),
                        };
                        library::load(&entry)
                            .map(|template| (template, dir))
                            .map_err(|errors| {
                                errors
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            })
                    }) {
                        Ok((template, dir)) => {
                            loaded.insert(name.clone(), template);
                            template_dirs.insert(name.clone(), dir);
                        }
                        Err(message) => {
                            errors.push(format!("{file}: variant '{}': {message}", variant.name));
                            continue;
                        }
                    }
                }
                loaded[name].clone()
            }
            (None, PromptSource::Inline { system, prompt }) => {
                inline_template(&experiment.name, system, prompt)
            }
        };
        let mut template = base;
        if let Some(system) = &variant.system {
            template.system = Some(system.clone());
        }
        if let Some(Examples::Only(numbers)) = &variant.examples {
            if let Some(n) = numbers.iter().find(|&&n| n > template.examples.len()) {
                errors.push(format!(
                    "{file}: variant '{}': example {n} does not exist (template '{}' has {})",
                    variant.name,
                    template.name,
                    template.examples.len()
                ));
            }
        }
        if let Some(model) = &variant.model {
            let as_path = path.parent().unwrap_or(Path::new(".")).join(model);
            if crate::models::catalog::find(model).is_none() && !as_path.is_file() {
                errors.push(format!(
                    "{file}: variant '{}': model '{model}' is neither a catalog model ({}) nor a file",
                    variant.name,
                    crate::models::catalog::ALL
                        .iter()
                        .map(|m| m.id)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        // The variant's grammar or schema, else its template's.
        let constraint = match (&variant.grammar, &variant.json_schema) {
            (Some(grammar), _) => Constraint::grammar_file(&here.join(grammar)).map(Some),
            (None, Some(schema)) => Constraint::schema_file(&here.join(schema)).map(Some),
            (None, None) => {
                let dir = variant
                    .template
                    .as_ref()
                    .or(match &experiment.prompt {
                        PromptSource::Template(name) => Some(name),
                        PromptSource::Inline { .. } => None,
                    })
                    .and_then(|name| template_dirs.get(name))
                    .unwrap_or(&here);
                template
                    .sampling
                    .constraint(dir)
                    .map_err(|e| format!("template '{}': {e}", template.name))
            }
        };
        match constraint {
            Ok(Some(constraint)) => {
                // A schema llama.cpp cannot convert is said now, not per cell.
                match constraint.gbnf() {
                    Ok(_) => {
                        constraints.insert(variant.name.clone(), constraint);
                    }
                    Err(message) => {
                        errors.push(format!("{file}: variant '{}': {message}", variant.name))
                    }
                }
            }
            Ok(None) => {}
            Err(message) => errors.push(format!("{file}: variant '{}': {message}", variant.name)),
        }
        templates.insert(variant.name.clone(), template);
    }

    // The dataset, relative to the experiment file.
    let dataset_path = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&experiment.dataset);
    let items = match dataset::load(&dataset_path) {
        Ok(items) => items,
        Err(problems) => {
            errors.extend(problems.iter().map(ToString::to_string));
            Vec::new()
        }
    };
    let dataset_file = dataset_path.display().to_string();
    let items_in_file = items.len();
    let items: Vec<Item> = match experiment.limit {
        Some(limit) => items.into_iter().take(limit).collect(),
        None => items,
    };

    // Every variable each template needs, for every item.
    if !items.is_empty() {
        for (variant, template) in &templates {
            for name in template.variable_names() {
                if template.default_of(&name).is_some() {
                    if items.iter().all(|item| !item.vars.contains_key(&name)) {
                        warnings.push(format!(
                            "{dataset_file}: no item has '{name}': every item uses template '{}''s default (variant '{variant}')",
                            template.name
                        ));
                    }
                    continue;
                }
                let lacking: Vec<usize> = items
                    .iter()
                    .filter(|item| !item.vars.contains_key(&name))
                    .map(|item| item.line)
                    .collect();
                if lacking.len() == items.len() {
                    errors.push(format!(
                        "{dataset_file}: no item has '{name}', which template '{}' needs (variant '{variant}') and gives no default",
                        template.name
                    ));
                } else {
                    for line in lacking {
                        errors.push(format!(
                            "{dataset_file}:{line}: no value for '{name}', which template '{}' needs (variant '{variant}') and gives no default",
                            template.name
                        ));
                    }
                }
            }
        }
        let with_references = items.iter().filter(|i| !i.references.is_empty()).count();
        for metric in &experiment.metrics {
            if !NEED_REFERENCES.contains(&metric.as_str()) {
                continue;
            }
            if with_references == 0 {
                errors.push(format!(
                    "{file}: metric '{metric}' compares with references, and no item of {dataset_file} has one ('reference' or 'references')"
                ));
            } else if with_references < items.len() {
                warnings.push(format!(
                    "{dataset_file}: {} of {} items have no reference; '{metric}' leaves them out",
                    items.len() - with_references,
                    items.len()
                ));
            }
        }
        // keep = "best" ranks a refined cell's passes against the references.
        for variant in &experiment.variants {
            let Some(metric) = variant.refine.as_ref().and_then(|r| r.best_by.as_ref()) else {
                continue;
            };
            if with_references == 0 {
                errors.push(format!(
                    "{file}: variant '{}': keep = \"best\" ranks the passes by {metric} against the references, and no item of {dataset_file} has one",
                    variant.name
                ));
            } else if with_references < items.len() {
                warnings.push(format!(
                    "{dataset_file}: {} of {} items have no reference; variant '{}' keeps their last pass",
                    items.len() - with_references,
                    items.len(),
                    variant.name
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Prepared {
        path: path.to_path_buf(),
        experiment,
        items,
        items_in_file,
        templates,
        constraints,
        warnings,
    })
}

/// A json-schema check's schema: JSON (errors at file:line:col) that the
/// validator accepts as a schema.
fn load_schema(path: &Path) -> Result<serde_json::Value, String> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {source}: {e}"))?;
    let value = crate::engine::constraint::check_schema_json(&text, &source)?;
    jsonschema::validator_for(&value)
        .map_err(|e| format!("{source}: not a valid JSON schema: {e}"))?;
    Ok(value)
}

/// A template named by its file (`template = "edits/summarize.toml"`),
/// relative to the experiment file: how an experiment made in the
/// workbench keeps the edited version of a template beside it.
fn template_file(experiment: &Path, relative: &str) -> Result<library::TemplateEntry, String> {
    let path = experiment.parent().unwrap_or(Path::new(".")).join(relative);
    let text = library::read_template_file(&path)
        .map_err(|e| format!("template file {}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(library::TemplateEntry {
        name,
        source: crate::prompt::Source::User(path),
        text,
    })
}

/// A template made from an experiment's inline prompt.
fn inline_template(name: &str, system: &Option<String>, prompt: &str) -> Template {
    Template {
        version: crate::prompt::template::FORMAT_VERSION,
        name: name.to_string(),
        description: String::new(),
        system: system.clone(),
        prompt: prompt.to_string(),
        variables: BTreeMap::new(),
        examples: Vec::new(),
        sampling: Default::default(),
        refine: Default::default(),
        references: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn grammars_schemas_and_json_schema_checks_are_read_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "d.jsonl", "{\"q\": \"a\"}\n");
        write(dir.path(), "yn.gbnf", "root ::= \"yes\" | \"no\"\n");
        write(
            dir.path(),
            "s.json",
            "{\"type\": \"object\", \"required\": [\"a\"]}",
        );
        let path = write(
            dir.path(),
            "c.toml",
            "name = \"c\"\nprompt = \"{{q}}\"\ndataset = \"d.jsonl\"\nchecks = [{ json-schema = \"s.json\" }]\n[[variants]]\nname = \"g\"\ngrammar = \"yn.gbnf\"\n[[variants]]\nname = \"s\"\njson_schema = \"s.json\"\n[[variants]]\nname = \"free\"\n",
        );
        let prepared = prepare(&path, None).unwrap();
        assert!(matches!(
            prepared.constraints.get("g"),
            Some(Constraint::Grammar { text, .. }) if text.contains("yes")
        ));
        assert!(matches!(
            prepared.constraints.get("s"),
            Some(Constraint::JsonSchema { .. })
        ));
        assert!(!prepared.constraints.contains_key("free"));
        let spec::Check::JsonSchema { schema, .. } = &prepared.experiment.checks[0] else {
            panic!("{:?}", prepared.experiment.checks);
        };
        assert_eq!(schema["required"][0], "a");
        let cells = super::super::cells::cells(&prepared, "sha").unwrap();
        assert_eq!(
            cells[0].request().constraint,
            prepared.constraints.get("g").cloned()
        );
        assert_eq!(cells[2].request().constraint, None);

        write(dir.path(), "s.json", "{\n  \"type\": \"object\",,\n}");
        let errors = prepare(&path, None).unwrap_err();
        let broken = dir.path().join("s.json").display().to_string();
        assert!(
            errors.iter().any(|e| e.contains(&format!(
                "check 'json-schema': {broken}:2:20: not valid JSON"
            ))),
            "{errors:?}"
        );
    }

    #[test]
    fn a_shipped_template_over_a_dataset_counts_its_cells() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "reviews.jsonl",
            "{\"review\": \"Cold pizza.\", \"reference\": \"Hot pizza!\"}\n{\"review\": \"Rude staff.\", \"reference\": \"Kind staff!\"}\n{\"review\": \"Slow.\"}\n",
        );
        let path = write(
            dir.path(),
            "shots.toml",
            "name = \"shots\"\ntemplate = \"sentiment-reversal\"\ndataset = \"reviews.jsonl\"\nmetrics = [\"chrf\"]\nrepeats = 3\n[[variants]]\nname = \"none\"\nexamples = \"none\"\ntemperature = 0\n[[variants]]\nname = \"all\"\nexamples = \"all\"\n",
        );
        let prepared = prepare(&path, None).unwrap();
        assert_eq!(prepared.items.len(), 3);
        // The greedy variant runs once per item; the other (the template's
        // temperature 0.5) three times.
        assert_eq!(prepared.cells(), 3 + 9);
        // A run's --limit and --repeats: the greedy variant still runs once.
        let mut fewer = prepared.clone();
        fewer.apply(Some(2), Some(5));
        assert_eq!(fewer.cells(), 2 + 2 * 5);
        assert_eq!(
            prepared.warnings,
            [format!(
                "{}: 1 of 3 items have no reference; 'chrf' leaves them out",
                dir.path().join("reviews.jsonl").display()
            )]
        );
    }

    #[test]
    fn what_the_files_disagree_on_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "d.csv", "text,reference\nx,y\n");
        let path = write(
            dir.path(),
            "e.toml",
            "name = \"e\"\ntemplate = \"sentiment-reversal\"\ndataset = \"d.csv\"\n[[variants]]\nname = \"v\"\nexamples = [4]\nmodel = \"nosuch\"\n",
        );
        let errors = prepare(&path, None).unwrap_err();
        let file = path.display().to_string();
        let data = dir.path().join("d.csv").display().to_string();
        assert_eq!(
            errors,
            [
                format!("{file}: variant 'v': example 4 does not exist (template 'sentiment-reversal' has 3)"),
                format!("{file}: variant 'v': model 'nosuch' is neither a catalog model (smollm2-135m, gemma3-270m) nor a file"),
            ]
        );
        // A variable with a default that no item gives is a doubt, not an error.
        let defaulted = write(
            dir.path(),
            "f.toml",
            "name = \"f\"\ntemplate = \"sentiment-reversal\"\ndataset = \"d.csv\"\n",
        );
        assert_eq!(
            prepare(&defaulted, None).unwrap().warnings,
            [format!("{data}: no item has 'review': every item uses template 'sentiment-reversal''s default (variant 'default')")]
        );
        let inline = write(
            dir.path(),
            "i.toml",
            "name = \"i\"\nprompt = \"Say {{text}} and {{other}}\"\ndataset = \"d.csv\"\nmetrics = [\"exact\"]\n",
        );
        assert_eq!(
            prepare(&inline, None).unwrap_err(),
            [format!("{data}: no item has 'other', which template 'i' needs (variant 'default') and gives no default")]
        );
        let refined = write(
            dir.path(),
            "r.toml",
            "name = \"r\"\nprompt = \"Say {{text}}\"\ndataset = \"nothing.csv\"\n[[variants]]\nname = \"v\"\nrefine = { keep = \"best\", best_by = \"chrf\" }\n",
        );
        write(dir.path(), "nothing.csv", "text\nx\n");
        assert_eq!(
            prepare(&refined, None).unwrap_err(),
            [format!("{}: variant 'v': keep = \"best\" ranks the passes by chrf against the references, and no item of {} has one", refined.display(), dir.path().join("nothing.csv").display())]
        );
        let missing = write(
            dir.path(),
            "m.toml",
            "name = \"m\"\nprompt = \"x\"\ndataset = \"nope.jsonl\"\n",
        );
        assert!(prepare(&missing, None).unwrap_err()[0].contains("cannot read the dataset"));
    }
}
