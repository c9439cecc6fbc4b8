//! The cells of an experiment: every item × variant × repeat, as the exact
//! request the model gets, and the key that identifies its result (the
//! model, the exact input, the sampling settings with the seed, the token
//! limit, the stop strings and the repeat index, and for a refined cell its
//! rounds, prompts and the pass it keeps): a cell whose key has a result
//! already need not run again.

use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::prepare::Prepared;
use super::refinement::CellRefinement;
use super::spec::Examples;
use crate::engine::protocol::{ChatMessage, Constraint, GenerateRequest, Prompt};
use crate::engine::SamplingParams;
use crate::prompt::render::{render, ExampleSelection};

/// Tokens a reply may take when neither the variant nor the template says.
pub const DEFAULT_MAX_TOKENS: u32 = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Index into `Prepared::items`.
    pub item: usize,
    /// Index into the experiment's variants.
    pub variant: usize,
    /// 0-based repeat; its seed is the experiment's seed plus it.
    pub repeat: u32,
    pub messages: Vec<ChatMessage>,
    pub sampling: SamplingParams,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    pub key: String,
    /// The model file of a variant that names its own; None runs on the
    /// run's model.
    pub model: Option<PathBuf>,
    /// The chat format that model is loaded with (None: the run's).
    pub chat_format: Option<String>,
    /// A refined cell's loop (None: one generation).
    pub refine: Option<CellRefinement>,
    /// The grammar or schema its output must follow.
    pub constraint: Option<Constraint>,
}

impl Cell {
    /// The engine request for this cell (each cell starts from its own
    /// prompt; shared prefixes are the engine's business).
    pub fn request(&self) -> GenerateRequest {
        GenerateRequest {
            id: 0,
            prompt: Prompt::Chat {
                messages: self.messages.clone(),
            },
            sampling: self.sampling.clone(),
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            reuse_prefix: true,
            ignore_eos: false,
            probs: None,
            constraint: self.constraint.clone(),
        }
    }
}

#[derive(Serialize)]
struct KeyParts<'a> {
    model: &'a str,
    /// Left out when unset, so cells without one keep their keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_format: Option<&'a str>,
    messages: &'a [ChatMessage],
    sampling: &'a SamplingParams,
    max_tokens: u32,
    stop: &'a [String],
    repeat: u32,
    /// Left out for a plain cell, so plain keys are what they were before
    /// variants could refine.
    #[serde(skip_serializing_if = "Option::is_none")]
    refine: Option<&'a CellRefinement>,
    /// Left out without one, so unconstrained keys are what they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    constraint: Option<&'a Constraint>,
}

/// The model a variant runs on: its file (None: the run's model) and the
/// file's SHA-256, which is part of every cell's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantModel {
    pub path: Option<PathBuf>,
    pub sha256: String,
    /// The chat format to load it with (None: the model's own template).
    pub chat_format: Option<String>,
}

/// Every cell of `prepared` for the model identified by `model` (its
/// file's SHA-256), in item order, then variant, then repeat. A cell whose
/// messages cannot be rendered is reported, not built.
pub fn cells(prepared: &Prepared, model: &str) -> Result<Vec<Cell>, Vec<String>> {
    let models: Vec<VariantModel> = prepared
        .experiment
        .variants
        .iter()
        .map(|_| VariantModel {
            path: None,
            sha256: model.to_string(),
            chat_format: None,
        })
        .collect();
    cells_on(prepared, &models)
}

/// [`cells`] with each variant's own model (`models`, one per variant).
pub fn cells_on(prepared: &Prepared, models: &[VariantModel]) -> Result<Vec<Cell>, Vec<String>> {
    let experiment = &prepared.experiment;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (item_index, item) in prepared.items.iter().enumerate() {
        for (variant_index, variant) in experiment.variants.iter().enumerate() {
            let Some(template) = prepared.templates.get(&variant.name) else {
                continue;
            };
            let selection = match &variant.examples {
                None | Some(Examples::Template) => ExampleSelection::Enabled,
                Some(Examples::None) => ExampleSelection::None,
                Some(Examples::All) => {
                    ExampleSelection::Only((1..=template.examples.len()).collect())
                }
                Some(Examples::Only(numbers)) => ExampleSelection::Only(numbers.clone()),
            };
            let messages = match render(template, &item.vars, selection) {
                Ok(messages) => messages,
                Err(e) => {
                    errors.push(format!(
                        "item at line {}, variant '{}': {e}",
                        item.line, variant.name
                    ));
                    continue;
                }
            };
            let mut base = SamplingParams::default();
            template.sampling.apply(&mut base);
            let overrides = crate::engine::sampling::SamplingOverrides {
                temperature: variant.temperature,
                top_k: variant.top_k,
                top_p: variant.top_p,
                min_p: variant.min_p,
                repeat_penalty: variant.repeat_penalty,
            };
            overrides.apply(&mut base);
            let max_tokens = variant
                .max_tokens
                .or(template.sampling.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS);
            let stop = variant
                .stop
                .clone()
                .or_else(|| template.sampling.stop.clone())
                .unwrap_or_default();
            let refine = variant
                .refine
                .as_ref()
                .map(|r| CellRefinement::resolve(r, &template.refine));
            let constraint = prepared.constraints.get(&variant.name).cloned();
            for repeat in 0..prepared.repeats_of(variant) {
                let sampling = SamplingParams {
                    seed: experiment.seed.wrapping_add(repeat),
                    ..base.clone()
                };
                let Some(model) = models.get(variant_index) else {
                    continue;
                };
                let parts = KeyParts {
                    model: &model.sha256,
                    chat_format: model.chat_format.as_deref(),
                    messages: &messages,
                    sampling: &sampling,
                    max_tokens,
                    stop: &stop,
                    repeat,
                    refine: refine.as_ref(),
                    constraint: constraint.as_ref(),
                };
                let json = serde_json::to_vec(&parts).unwrap_or_default();
                let key = hex(&Sha256::digest(&json));
                out.push(Cell {
                    item: item_index,
                    variant: variant_index,
                    repeat,
                    messages: messages.clone(),
                    sampling,
                    max_tokens,
                    stop: stop.clone(),
                    key,
                    model: model.path.clone(),
                    chat_format: model.chat_format.clone(),
                    refine: refine.clone(),
                    constraint: constraint.clone(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::prepare::prepare;

    #[test]
    fn cells_render_each_variant_and_keys_change_only_with_the_input() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.jsonl"),
            "{\"review\": \"Cold pizza.\", \"reference\": \"Hot pizza!\"}\n{\"review\": \"Rude staff.\"}\n",
        )
        .unwrap();
        let path = dir.path().join("e.toml");
        std::fs::write(
            &path,
            "name = \"e\"\ntemplate = \"sentiment-reversal\"\ndataset = \"d.jsonl\"\nrepeats = 2\nseed = 10\n[[variants]]\nname = \"none\"\nexamples = \"none\"\ntemperature = 0\n[[variants]]\nname = \"one\"\nexamples = [2]\nmax_tokens = 40\n",
        )
        .unwrap();
        let prepared = prepare(&path, None).unwrap();
        let cells = cells(&prepared, "model-a").unwrap();
        // Per item: the greedy variant once, the sampled one twice.
        assert_eq!(cells.len(), 2 * (1 + 2));
        let none = &cells[0];
        assert_eq!(none.messages.len(), 2, "system and prompt only");
        assert!(none.messages[1].content.contains("Cold pizza."));
        assert_eq!(none.sampling.temperature, 0.0);
        assert_eq!(none.max_tokens, 200, "the template's");
        let one = &cells[1];
        assert_eq!(one.messages.len(), 4, "system, one example pair, prompt");
        assert_eq!(one.max_tokens, 40);
        assert_eq!(one.sampling.temperature, 0.5, "the template's");
        assert_eq!((cells[1].sampling.seed, cells[2].sampling.seed), (10, 11));
        // Keys: distinct per cell, stable, and tied to the model.
        let keys: std::collections::BTreeSet<_> = cells.iter().map(|c| &c.key).collect();
        assert_eq!(keys.len(), cells.len());
        assert_eq!(super::cells(&prepared, "model-a").unwrap()[0].key, none.key);
        assert_ne!(super::cells(&prepared, "model-b").unwrap()[0].key, none.key);
        // The chat format a model is loaded with is part of the input too.
        let formatted: Vec<VariantModel> = (0..2)
            .map(|_| VariantModel {
                path: Some("/m/base.gguf".into()),
                sha256: "model-a".into(),
                chat_format: Some("gemma".into()),
            })
            .collect();
        let with_format = cells_on(&prepared, &formatted).unwrap();
        assert_ne!(with_format[0].key, none.key);
        assert_eq!(with_format[0].chat_format.as_deref(), Some("gemma"));
    }

    /// The keys of a fixed experiment, as computed before variants could
    /// refine: results saved by earlier whets must keep resuming and
    /// hitting the cache, so a new key field must leave these unchanged.
    #[test]
    fn keys_of_plain_variants_are_the_ones_earlier_runs_saved() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.jsonl"), "{\"n\": \"7\"}\n").unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "name = \"k\"\nprompt = \"Count to {{n}}.\"\nsystem = \"Be brief.\"\ndataset = \"d.jsonl\"\n\
             seed = 3\nrepeats = 2\n[[variants]]\nname = \"plain\"\ntemperature = 0\nmax_tokens = 20\n\
             stop = [\"\\n\\n\"]\n[[variants]]\nname = \"sampled\"\nexamples = \"none\"\ntemperature = 0.7\n",
        )
        .unwrap();
        let prepared = prepare(&path, None).unwrap();
        let keys: Vec<(usize, u32, String)> = cells(&prepared, "0123abcd")
            .unwrap()
            .into_iter()
            .map(|c| (c.variant, c.repeat, c.key))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    0,
                    0,
                    "c167e3ebaf442ff44c17288fb46b45430da01221610e9cb03a74e82e942b7b17".to_string()
                ),
                (
                    1,
                    0,
                    "946e4de6f627e4cf75e600f28ca46fb8d4dd3bcd337d651431c83551a0b6419b".to_string()
                ),
                (
                    1,
                    1,
                    "38b93feaa66119b40bfc71ba46683e3e0552d2c57090baf1ca217feeb4471ad7".to_string()
                ),
            ]
        );
    }

    /// Keys of `variants` (TOML `[[variants]]` entries) over one item.
    fn keys_of(variants: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.jsonl"),
            "{\"n\": \"7\", \"reference\": \"1 2 3\"}\n",
        )
        .unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            format!("name = \"k\"\nprompt = \"Count to {{{{n}}}}.\"\ndataset = \"d.jsonl\"\nmetrics = [\"chrf\"]\n{variants}"),
        )
        .unwrap();
        let prepared = prepare(&path, None).unwrap();
        cells(&prepared, "0123abcd")
            .unwrap()
            .into_iter()
            .map(|c| c.key)
            .collect()
    }

    #[test]
    fn a_refined_cell_is_keyed_by_its_rounds_prompts_and_kept_pass() {
        let variant = |name: &str, refine: &str| {
            format!("[[variants]]\nname = \"{name}\"\ntemperature = 0\n{refine}\n")
        };
        let plain = keys_of(&variant("a", ""))[0].clone();
        // Rounds = 0 is the plain cell, key and all.
        assert_eq!(keys_of(&variant("a", "refine = { rounds = 0 }"))[0], plain);
        let mut seen = std::collections::BTreeSet::from([plain.clone()]);
        for refine in [
            "refine = { rounds = 1 }",
            "refine = { rounds = 2 }",
            "refine = { rounds = 2, keep = \"best\" }",
            "refine = { rounds = 2, keep = \"best\", best_by = \"bleu\" }",
            "refine = { rounds = 2, history = \"fresh\" }",
            "refine = { rounds = 2, stop_phrase = \"\" }",
            "refine = { rounds = 2, feedback = \"Fix {{answer}}\" }",
            "refine = { rounds = 2, refine = \"Redo {{answer}} per {{feedback}}\" }",
        ] {
            let keys = keys_of(&format!("{}{}", variant("a", ""), variant("b", refine)));
            assert_eq!(keys[0], plain, "a plain variant's key, beside {refine}");
            assert!(
                seen.insert(keys[1].clone()),
                "{refine} has a key of its own"
            );
        }
        // The refined cell carries its loop: the default prompts, resolved.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.jsonl"), "{\"n\": \"7\"}\n").unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "name = \"k\"\nprompt = \"Count to {{n}}.\"\ndataset = \"d.jsonl\"\n[[variants]]\nname = \"r\"\nrefine = { rounds = 2 }\n",
        )
        .unwrap();
        let cell = &cells(&prepare(&path, None).unwrap(), "m").unwrap()[0];
        let refine = cell.refine.as_ref().unwrap();
        let defaults = crate::refine::defaults::prompts();
        assert_eq!(refine.prompts.feedback, defaults.feedback);
        assert_eq!(refine.config.stop_phrase, defaults.stop_phrase);
        assert_eq!(
            (refine.config.max_rounds, refine.most_generations()),
            (2, 5)
        );
    }
}
