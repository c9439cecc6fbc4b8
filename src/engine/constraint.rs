//! Constrained output: a GBNF grammar or a JSON Schema a generation must
//! follow, as the protocol carries it, read from files with positioned
//! errors, and turned into the GBNF text llama.cpp's grammar sampler takes.
//!
//! The grammar engine is llama.cpp's own (`llama_sampler_init_grammar`) and
//! the schema converter is llama.cpp's `json_schema_to_grammar` from its
//! `common` library, through llama-cpp-2's `common` feature. Not the crate's
//! `llguidance` feature: `common` is compiled and linked already (llama-cpp-2
//! turns on llama-cpp-sys-2's default features, which include it, whatever
//! whet asks for), so using it costs no build time and no new crates, and
//! its grammars are the GBNF files llama.cpp's tools take. `llguidance` would
//! add a Rust crate tree (llguidance, toktrie, derivre and their
//! dependencies), a Lark-style grammar format of its own and a token trie
//! built per model; its faster masking matters for big grammars over big
//! vocabularies, while whet's "sample, check the one token, resample only if
//! rejected" keeps the grammar off the hot path in the common case.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What a generation's output must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Constraint {
    /// A grammar in llama.cpp's GBNF, starting at rule `root`.
    Grammar {
        text: String,
        /// Where it came from (a file name), for messages.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        source: String,
    },
    /// A JSON Schema (its JSON text), converted to GBNF by llama.cpp.
    JsonSchema {
        schema: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        source: String,
    },
}

/// The root rule of every grammar whet passes to llama.cpp (the converter
/// names its start rule `root` too).
pub const ROOT: &str = "root";

impl Constraint {
    /// Reads a GBNF file. Its syntax is checked by llama.cpp in the worker.
    pub fn grammar_file(path: &Path) -> Result<Self, String> {
        let text = read(path, "grammar")?;
        if text.trim().is_empty() {
            return Err(format!("{}: the grammar file is empty", path.display()));
        }
        Ok(Constraint::Grammar {
            text,
            source: path.display().to_string(),
        })
    }

    /// Reads a JSON Schema file and checks that it is JSON (an error says
    /// file:line:col) and an object or a boolean, as a schema must be.
    pub fn schema_file(path: &Path) -> Result<Self, String> {
        let schema = read(path, "JSON schema")?;
        let source = path.display().to_string();
        check_schema_json(&schema, &source)?;
        Ok(Constraint::JsonSchema { schema, source })
    }

    /// The name messages use for it.
    pub fn source(&self) -> &str {
        let (source, fallback) = match self {
            Constraint::Grammar { source, .. } => (source, "grammar"),
            Constraint::JsonSchema { source, .. } => (source, "JSON schema"),
        };
        if source.is_empty() {
            fallback
        } else {
            source
        }
    }

    /// A short description for reports: "grammar FILE" / "JSON schema FILE".
    pub fn describe(&self) -> String {
        match self {
            Constraint::Grammar { .. } => format!("grammar {}", self.source()),
            Constraint::JsonSchema { .. } => format!("JSON schema {}", self.source()),
        }
    }

    /// The GBNF text for llama.cpp: the grammar itself, or the schema
    /// converted by llama.cpp's `json_schema_to_grammar`.
    pub fn gbnf(&self) -> Result<String, String> {
        match self {
            Constraint::Grammar { text, .. } => Ok(text.clone()),
            Constraint::JsonSchema { schema, .. } => {
                check_schema_json(schema, self.source())?;
                schema_to_gbnf(schema).map_err(|reason| format!("{}: {reason}", self.source()))
            }
        }
    }
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} file {}: {e}", path.display()))
}

/// The schema text must be JSON, and a schema is an object or a boolean.
pub fn check_schema_json(schema: &str, source: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value = serde_json::from_str(schema).map_err(|e| {
        format!(
            "{source}:{}:{}: not valid JSON: {}",
            e.line(),
            e.column(),
            without_position(&e)
        )
    })?;
    if !(value.is_object() || value.is_boolean()) {
        return Err(format!(
            "{source}: a JSON schema is an object (or true/false), not {}",
            json_kind(&value)
        ));
    }
    Ok(value)
}

/// serde_json's message without its own " at line L column C" suffix.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// llama.cpp's converter. llama-cpp-2's wrapper catches the converter's
/// exception and drops its message, so the reason it can give is only that
/// the conversion failed; the converter's warnings (parts of the schema it
/// could not express and accepts anything for) go to stderr and are
/// captured here.
fn schema_to_gbnf(schema: &str) -> Result<String, String> {
    let (result, stderr) =
        super::stderr_capture::capture(|| llama_cpp_2::json_schema_to_grammar(schema));
    let warnings = stderr.trim();
    match result {
        Ok(gbnf) => {
            if !warnings.is_empty() {
                tracing::warn!("JSON schema conversion: {warnings}");
            }
            Ok(gbnf)
        }
        Err(e) => {
            let mut reason = format!(
                "llama.cpp's JSON-schema converter cannot convert it ({e}); it rejects \
                 unresolved $ref, unknown rule references and invalid or unsupported \
                 patterns, and llama-cpp-2 does not pass on its exact message"
            );
            if !warnings.is_empty() {
                reason.push_str(&format!(" ({warnings})"));
            }
            Err(reason)
        }
    }
}

/// llama.cpp's reason for refusing a grammar, from what it printed while
/// parsing it, with the position turned into a line and column of `text`.
/// llama.cpp prints `parse: error parsing grammar: REASON at REST\n\nTEXT`,
/// where REST is the grammar from the error on; some refusals only go to
/// its log (`undefined rule`, `left recursion`).
pub fn grammar_reason(text: &str, printed: &str, logged: Option<&str>) -> String {
    const MARK: &str = "error parsing grammar: ";
    let Some(start) = printed.find(MARK) else {
        return logged
            .map(str::to_string)
            .unwrap_or_else(|| "llama.cpp could not parse it".to_string());
    };
    let rest = &printed[start + MARK.len()..];
    // The message ends where llama.cpp prints the whole grammar after it.
    let message = match rest.find("\n\n") {
        Some(end) => &rest[..end],
        None => rest.trim_end(),
    };
    let Some((reason, tail)) = message.split_once(" at ") else {
        return message.trim().to_string();
    };
    let Some(offset) = locate_tail(text, tail) else {
        return message.trim().to_string();
    };
    let (line, column) = crate::text_position::line_col(text, offset);
    let near: String = tail.lines().next().unwrap_or("").chars().take(30).collect();
    format!("parse error at line {line} column {column}: {reason} (at `{near}`)")
}

/// Where the grammar text ending `tail` starts: llama.cpp prints the rest
/// of the source from the error on (the message is one line of output, so
/// only a prefix of a multi-line rest is certain).
fn locate_tail(text: &str, tail: &str) -> Option<usize> {
    if tail.is_empty() {
        return Some(text.len());
    }
    if text.ends_with(tail) {
        return Some(text.len() - tail.len());
    }
    let first_line = tail.lines().next()?;
    let matches: Vec<usize> = text.match_indices(first_line).map(|(i, _)| i).collect();
    match matches.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_json_errors_say_line_and_column() {
        let err = check_schema_json(
            "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}",
            "s.json",
        )
        .unwrap_err();
        assert!(err.starts_with("s.json:3:18: not valid JSON: "), "{err}");
        assert!(!err.contains(" at line "), "{err}");
    }

    #[test]
    fn a_schema_is_an_object_or_a_boolean() {
        assert!(check_schema_json("{}", "s").is_ok());
        assert!(check_schema_json("true", "s").is_ok());
        let err = check_schema_json("[1]", "s").unwrap_err();
        assert!(err.contains("not an array"), "{err}");
    }

    #[test]
    fn grammar_parse_errors_get_a_line_and_column() {
        let text = "root ::= answer\nanswer ::= \"yes\" | \"no\"\nbad ::= (\"x\"\n";
        let printed = format!("parse: error parsing grammar: expecting ')' at \n\n{text}\n");
        let reason = grammar_reason(text, &printed, None);
        assert_eq!(
            reason,
            "parse error at line 4 column 1: expecting ')' (at ``)"
        );

        let text = "root ::= \"a\"\nx := \"b\"\n";
        let printed =
            format!("parse: error parsing grammar: expecting ::= at := \"b\"\n\n\n{text}\n");
        let reason = grammar_reason(text, &printed, None);
        assert_eq!(
            reason,
            "parse error at line 2 column 3: expecting ::= (at `:= \"b\"`)"
        );
    }

    #[test]
    fn grammar_reasons_without_a_position_are_kept_whole() {
        let printed =
            "parse: error parsing grammar: Undefined rule identifier 'foo'\n\nroot ::= foo\n";
        assert_eq!(
            grammar_reason("root ::= foo\n", printed, None),
            "Undefined rule identifier 'foo'"
        );
        assert_eq!(
            grammar_reason("x", "", Some("left recursion detected")),
            "left recursion detected"
        );
        assert_eq!(
            grammar_reason("x", "", None),
            "llama.cpp could not parse it"
        );
    }

    #[test]
    fn old_messages_without_a_constraint_still_parse() {
        let c: Constraint =
            serde_json::from_str(r#"{"kind":"grammar","text":"root ::= \"a\""}"#).unwrap();
        assert_eq!(c.source(), "grammar");
        assert_eq!(c.gbnf().unwrap(), "root ::= \"a\"");
    }
}
