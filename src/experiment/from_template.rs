//! An experiment made from a template open in the workbench: its saved
//! version against the edited one (the edited one is written beside the
//! experiment, so the user's template file is not touched), each with its
//! few-shot examples and without them, over a dataset the user picks.

use std::path::{Path, PathBuf};

use super::dataset;
use crate::prompt::template::{to_toml, Template};
use crate::store::atomic::write_atomic;

/// What the workbench hands over.
pub struct FromTemplate<'a> {
    /// The saved version, when there is one (a new template has none).
    pub saved: Option<&'a Template>,
    /// The edited version, when it differs from the saved one.
    pub edited: Option<&'a Template>,
    pub dataset: &'a Path,
}

/// A TOML string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A name not taken in `dir`: `NAME-experiment`, then `-2`, `-3`, …
fn free_name(dir: &Path, template: &str) -> String {
    let base = format!("{template}-experiment");
    let taken = |name: &str| dir.join(format!("{name}.toml")).exists() || dir.join(name).exists();
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken(name))
        .expect("some number is free")
}

/// Writes the experiment into `dir` (the user's experiments folder) and
/// returns its file. Metrics against references when the dataset has them,
/// else the length of the outputs.
pub fn write_experiment(dir: &Path, from: FromTemplate<'_>) -> Result<PathBuf, String> {
    let Some(template) = from.edited.or(from.saved) else {
        return Err("no template to make an experiment of".to_string());
    };
    let items = dataset::load(from.dataset).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    if items.is_empty() {
        return Err(format!("{} has no items", from.dataset.display()));
    }
    let has_references = items.iter().any(|i| !i.references.is_empty());
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = free_name(dir, &template.name);
    let dataset = std::fs::canonicalize(from.dataset).unwrap_or(from.dataset.to_path_buf());
    let mut versions: Vec<(&str, String)> = Vec::new();
    if from.saved.is_some() {
        versions.push(("saved", template.name.clone()));
    }
    if let Some(edited) = from.edited {
        let file = dir.join(&name).join(format!("{}.toml", edited.name));
        write_atomic(&file, to_toml(edited).as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        versions.push(("edited", format!("{name}/{}.toml", edited.name)));
    }
    let with_examples = from
        .saved
        .into_iter()
        .chain(from.edited)
        .any(|t| !t.examples.is_empty());
    let metrics = if has_references {
        "[\"chrf\", \"bleu\", \"rougeL\", \"length\"]"
    } else {
        "[\"length\"]"
    };
    let mut text = format!(
        "# Made in the workbench from template '{}': {}.\n\
         version = 1\nname = {}\ndescription = {}\ntemplate = {}\ndataset = {}\nmetrics = {metrics}\nbaseline = {}\n",
        template.name,
        match (from.saved.is_some(), from.edited.is_some()) {
            (true, true) => "the saved version against the edited one",
            (false, _) => "the new template",
            (true, false) => "the saved version",
        },
        quoted(&name),
        quoted(&format!("Template {} over {}", template.name, dataset.display())),
        quoted(&versions[0].1),
        quoted(&dataset.display().to_string()),
        quoted(versions[0].0),
    );
    for (version, source) in &versions {
        let shots = if with_examples {
            vec![(*version).to_string(), format!("{version}, no examples")]
        } else {
            vec![(*version).to_string()]
        };
        for (i, variant) in shots.iter().enumerate() {
            text.push_str(&format!(
                "\n[[variants]]\nname = {}\ntemplate = {}\nexamples = {}\n",
                quoted(variant),
                quoted(source),
                if i == 0 { "\"template\"" } else { "\"none\"" }
            ));
        }
    }
    let file = dir.join(format!("{name}.toml"));
    write_atomic(&file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::prepare::prepare;

    fn shipped(name: &str) -> Template {
        let entry = crate::prompt::find(name, None).unwrap();
        crate::prompt::load(&entry).unwrap()
    }

    #[test]
    fn saved_against_edited_with_and_without_examples_runs_as_an_experiment() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("reviews.jsonl");
        std::fs::write(
            &data,
            "{\"review\": \"Cold soup.\", \"reference\": \"Hot soup.\"}\n{\"review\": \"Rude staff.\", \"reference\": \"Kind staff.\"}\n",
        )
        .unwrap();
        let saved = shipped("sentiment-reversal");
        assert!(!saved.examples.is_empty());
        let mut edited = saved.clone();
        edited.prompt = format!("{}\nKeep it short.", edited.prompt);
        let experiments = dir.path().join("experiments");
        let file = write_experiment(
            &experiments,
            FromTemplate {
                saved: Some(&saved),
                edited: Some(&edited),
                dataset: &data,
            },
        )
        .unwrap();
        assert_eq!(file, experiments.join("sentiment-reversal-experiment.toml"));
        let prepared = prepare(&file, None).unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = prepared
            .experiment
            .variants
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "saved",
                "saved, no examples",
                "edited",
                "edited, no examples"
            ]
        );
        assert_eq!(prepared.experiment.baseline, "saved");
        assert_eq!(prepared.items.len(), 2);
        assert!(prepared.templates["edited"]
            .prompt
            .ends_with("Keep it short."));
        assert!(!prepared.templates["saved"]
            .prompt
            .ends_with("Keep it short."));
        assert!(prepared.experiment.metrics.contains(&"chrf".to_string()));
        // A second one does not overwrite the first.
        let again = write_experiment(
            &experiments,
            FromTemplate {
                saved: Some(&saved),
                edited: None,
                dataset: &data,
            },
        )
        .unwrap();
        assert_eq!(
            again,
            experiments.join("sentiment-reversal-experiment-2.toml")
        );
        let names: Vec<String> = prepare(&again, None)
            .unwrap()
            .experiment
            .variants
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["saved", "saved, no examples"]);
    }

    #[test]
    fn a_bad_dataset_is_refused_with_its_line_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("bad.jsonl");
        std::fs::write(&data, "{\"review\": \"ok\"}\n{not json\n").unwrap();
        let saved = shipped("sentiment-reversal");
        let experiments = dir.path().join("experiments");
        let error = write_experiment(
            &experiments,
            FromTemplate {
                saved: Some(&saved),
                edited: None,
                dataset: &data,
            },
        )
        .unwrap_err();
        assert!(error.contains("bad.jsonl:2"), "{error}");
        assert!(!experiments.exists());
    }
}
