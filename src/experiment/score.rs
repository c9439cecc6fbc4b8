//! A cell's output scored: the experiment's metrics against the item's
//! references, and its checks as pass/fail.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::spec::Check;
use crate::metrics;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellScores {
    /// Metric name → value (BLEU and chrF 0–100, ROUGE 0–1, exact 0 or 1,
    /// length in words). A metric that needs references is absent for an
    /// item without any.
    pub metrics: BTreeMap<String, f64>,
    /// One per check of the experiment, in its order.
    pub checks: Vec<bool>,
}

pub fn score(
    output: &str,
    references: &[String],
    metric_names: &[String],
    checks: &[Check],
) -> CellScores {
    let all = metrics::score(output, references);
    let mut values = BTreeMap::new();
    for name in metric_names {
        let value = match name.as_str() {
            "bleu" => all.bleu,
            "chrf" => all.chrf,
            "rouge1" => all.rouge1,
            "rouge2" => all.rouge2,
            "rougeL" => all.rouge_l,
            "exact" => all.exact_match.map(|e| if e { 1.0 } else { 0.0 }),
            "length" => Some(all.words as f64),
            _ => None,
        };
        if let Some(value) = value {
            values.insert(name.clone(), value);
        }
    }
    CellScores {
        metrics: values,
        checks: checks.iter().map(|c| passes(c, output)).collect(),
    }
}

/// Whether `output` passes `check` (surrounding whitespace ignored for
/// `equals` and `is-json`).
pub fn passes(check: &Check, output: &str) -> bool {
    match check {
        Check::Equals(v) => output.trim() == v.trim(),
        Check::Contains(v) => output.contains(v.as_str()),
        Check::IContains(v) => output.to_lowercase().contains(&v.to_lowercase()),
        Check::NotContains(v) => !output.contains(v.as_str()),
        // Checked when the file was read; an invalid one fails every cell.
        Check::Regex(pattern) => regex::Regex::new(pattern).is_ok_and(|r| r.is_match(output)),
        Check::MaxWords(n) => output.split_whitespace().count() <= *n,
        Check::IsJson => serde_json::from_str::<serde_json::Value>(output.trim()).is_ok(),
        Check::JsonSchema { schema, .. } => matches_schema(schema, output),
    }
}

/// Whether `output` (surrounding whitespace ignored) is JSON that `schema`
/// validates. A schema that does not compile fails every output (it was
/// checked when the experiment was prepared).
pub fn matches_schema(schema: &serde_json::Value, output: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(output.trim()) else {
        return false;
    };
    jsonschema::validator_for(schema).is_ok_and(|validator| validator.is_valid(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_checks() {
        let checks = [
            Check::Contains("Paris".into()),
            Check::IContains("paris".into()),
            Check::NotContains("Lyon".into()),
            Check::Regex("^The".into()),
            Check::MaxWords(3),
            Check::IsJson,
            Check::Equals(" The capital is Paris. ".into()),
        ];
        let s = score(
            "The capital is Paris.",
            &["The capital is Paris.".to_string()],
            &["exact".into(), "chrf".into(), "length".into()],
            &checks,
        );
        assert_eq!(s.metrics["exact"], 1.0);
        assert!((s.metrics["chrf"] - 100.0).abs() < 1e-9);
        assert_eq!(s.metrics["length"], 4.0);
        assert_eq!(s.checks, [true, true, true, true, false, false, true]);
        let without = score("x", &[], &["bleu".into(), "length".into()], &[]);
        assert_eq!(without.metrics.keys().collect::<Vec<_>>(), ["length"]);
        assert!(passes(&Check::IsJson, " {\"a\": 1} "));
    }

    #[test]
    fn json_schema_checks_validate_the_output() {
        let check = Check::JsonSchema {
            file: "s.json".into(),
            schema: serde_json::json!({
                "type": "object",
                "properties": {"age": {"type": "integer"}},
                "required": ["age"]
            }),
        };
        assert!(passes(&check, " {\"age\": 3} "));
        assert!(!passes(&check, "{\"age\": \"3\"}"));
        assert!(!passes(&check, "{}"));
        assert!(!passes(&check, "{\"age\": 3"));
        assert_eq!(check.label(), "json-schema \"s.json\"");
    }
}
