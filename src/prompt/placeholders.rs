//! `{{name}}` placeholders: scanning a text into literal pieces and
//! variables, and filling the variables in.
//!
//! A name is `[A-Za-z_][A-Za-z0-9_]*`, with spaces or tabs allowed inside the
//! braces (`{{ name }}`). There is no escape: a single `{` or `}` is literal,
//! `{{` always opens a placeholder and `}}` always closes one. Values are
//! inserted once and never scanned again, so a value containing `{{x}}`
//! stays literal.

use std::fmt;
use std::ops::Range;

/// A piece of a scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text, copied as is.
    Text(String),
    /// A placeholder; `span` is the byte range of the whole `{{ … }}`.
    Var { name: String, span: Range<usize> },
}

/// What is wrong with a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceholderErrorKind {
    /// `{{` with no `}}` before the end or before the next `{{`.
    Unclosed,
    /// `}}` outside a placeholder.
    Stray,
    /// `{{ }}`; holds the placeholder as written.
    Empty(String),
    /// `{{1x}}`, `{{a b}}`; holds the name as written (trimmed).
    InvalidName(String),
}

/// A syntax error at `offset`, the byte offset of its first character (the
/// `{{` of the placeholder, or the stray `}}`) in the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderError {
    pub offset: usize,
    pub kind: PlaceholderErrorKind,
}

impl fmt::Display for PlaceholderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PlaceholderErrorKind::Unclosed => f.write_str("unclosed '{{' (no '}}' after it)"),
            PlaceholderErrorKind::Stray => f.write_str("'}}' without an opening '{{'"),
            PlaceholderErrorKind::Empty(written) => write!(f, "empty placeholder '{written}'"),
            PlaceholderErrorKind::InvalidName(name) => write!(
                f,
                "invalid variable name '{name}' (use letters, digits and '_')"
            ),
        }
    }
}

impl std::error::Error for PlaceholderError {}

/// Variables without a value, in order of first use, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub Vec<String>);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "missing values for: {}", self.0.join(", "))
    }
}

impl std::error::Error for Missing {}

/// Whether `name` can be a variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Scans `text`; every syntax error in it, in text order, if any.
pub fn parse(text: &str) -> Result<Vec<Segment>, Vec<PlaceholderError>> {
    let (segments, errors) = scan(text);
    if errors.is_empty() {
        Ok(segments)
    } else {
        Err(errors)
    }
}

/// The variables `text` uses, in order of first use, each once. Malformed
/// placeholders are skipped.
pub fn variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    add_variables(&scan(text).0, &mut names);
    names
}

/// Appends the variables of `segments` not already in `names`, in order.
pub fn add_variables(segments: &[Segment], names: &mut Vec<String>) {
    for segment in segments {
        if let Segment::Var { name, .. } = segment {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
}

/// The text with every variable replaced by its value. Values are inserted
/// as they are, never scanned for placeholders. Every variable `values`
/// has no value for is reported.
pub fn fill<'v>(
    segments: &[Segment],
    values: &dyn Fn(&str) -> Option<&'v str>,
) -> Result<String, Missing> {
    let mut out = String::new();
    let mut missing: Vec<String> = Vec::new();
    for segment in segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Var { name, .. } => match values(name) {
                Some(value) => out.push_str(value),
                None => {
                    if !missing.contains(name) {
                        missing.push(name.clone());
                    }
                }
            },
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(Missing(missing))
    }
}

/// Segments of the well-formed parts and the errors, both in text order.
/// A malformed placeholder is kept as literal text.
fn scan(text: &str) -> (Vec<Segment>, Vec<PlaceholderError>) {
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let open = rest.find("{{");
        let close = rest.find("}}");
        match (open, close) {
            (None, None) => {
                literal.push_str(rest);
                break;
            }
            // A `}}` before any `{{`: stray.
            (open, Some(c)) if open.is_none_or(|o| c < o) => {
                errors.push(PlaceholderError {
                    offset: pos + c,
                    kind: PlaceholderErrorKind::Stray,
                });
                literal.push_str(&rest[..c + 2]);
                pos += c + 2;
            }
            (Some(o), _) => {
                literal.push_str(&rest[..o]);
                let start = pos + o;
                let inner_start = start + 2;
                let after = &text[inner_start..];
                let end = after.find("}}");
                let next_open = after.find("{{");
                match end {
                    Some(e) if next_open.is_none_or(|n| e <= n) => {
                        let written = &text[start..inner_start + e + 2];
                        let name = after[..e].trim_matches([' ', '\t']);
                        let kind = if name.is_empty() {
                            Some(PlaceholderErrorKind::Empty(written.to_string()))
                        } else if !is_variable_name(name) {
                            Some(PlaceholderErrorKind::InvalidName(name.to_string()))
                        } else {
                            None
                        };
                        match kind {
                            Some(kind) => {
                                errors.push(PlaceholderError {
                                    offset: start,
                                    kind,
                                });
                                literal.push_str(written);
                            }
                            None => {
                                if !literal.is_empty() {
                                    segments.push(Segment::Text(std::mem::take(&mut literal)));
                                }
                                segments.push(Segment::Var {
                                    name: name.to_string(),
                                    span: start..inner_start + e + 2,
                                });
                            }
                        }
                        pos = inner_start + e + 2;
                    }
                    _ => {
                        // No `}}` before the end or before the next `{{`:
                        // this one is unclosed; go on from the next `{{`.
                        errors.push(PlaceholderError {
                            offset: start,
                            kind: PlaceholderErrorKind::Unclosed,
                        });
                        let resume = next_open.map_or(text.len(), |n| inner_start + n);
                        literal.push_str(&text[start..resume]);
                        pos = resume;
                    }
                }
            }
            (None, Some(_)) => unreachable!("handled by the stray arm"),
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Text(literal));
    }
    (segments, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn errors(text: &str) -> Vec<(usize, String)> {
        parse(text)
            .unwrap_err()
            .iter()
            .map(|e| (e.offset, e.to_string()))
            .collect()
    }

    fn fill_map(text: &str, pairs: &[(&str, &str)]) -> Result<String, Missing> {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        fill(&parse(text).unwrap(), &|name| map.get(name).copied())
    }

    #[test]
    fn scans_text_and_variables_with_spans() {
        let segments = parse("Hi {{ name }}, {x} {{n_2}}!").unwrap();
        assert_eq!(
            segments,
            [
                Segment::Text("Hi ".into()),
                Segment::Var {
                    name: "name".into(),
                    span: 3..13
                },
                Segment::Text(", {x} ".into()),
                Segment::Var {
                    name: "n_2".into(),
                    span: 19..26
                },
                Segment::Text("!".into()),
            ]
        );
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse("{ } { {").unwrap(), [Segment::Text("{ } { {".into())]);
    }

    #[test]
    fn variables_in_order_of_first_use_once() {
        assert_eq!(
            variables("{{b}} {{a}} {{ b }} {{_c}} {{1x}}"),
            ["b", "a", "_c"]
        );
        assert_eq!(variables("none"), Vec::<String>::new());
    }

    #[test]
    fn syntax_errors_with_their_offsets() {
        assert_eq!(
            errors("ab {{x"),
            [(3, "unclosed '{{' (no '}}' after it)".into())]
        );
        assert_eq!(
            errors("a }} b"),
            [(2, "'}}' without an opening '{{'".into())]
        );
        assert_eq!(errors("{{ }}"), [(0, "empty placeholder '{{ }}'".into())]);
        assert_eq!(errors("x{{}}"), [(1, "empty placeholder '{{}}'".into())]);
        assert_eq!(
            errors("{{1x}}"),
            [(
                0,
                "invalid variable name '1x' (use letters, digits and '_')".into()
            )]
        );
        assert_eq!(
            errors("é {{ a b }}"),
            [(
                3,
                "invalid variable name 'a b' (use letters, digits and '_')".into()
            )]
        );
        // A `{{` followed by another `{{` before any `}}` is the unclosed one.
        assert_eq!(
            errors("{{a {{b}} }}"),
            [
                (0, "unclosed '{{' (no '}}' after it)".into()),
                (10, "'}}' without an opening '{{'".into()),
            ]
        );
        // Every error is reported, in order.
        assert_eq!(
            errors("}} {{ok}} {{-}} {{"),
            [
                (0, "'}}' without an opening '{{'".into()),
                (
                    10,
                    "invalid variable name '-' (use letters, digits and '_')".into()
                ),
                (16, "unclosed '{{' (no '}}' after it)".into()),
            ]
        );
        // `{{` opens greedily: triple braces are not an escape.
        assert_eq!(
            errors("{{{x}}}"),
            [(
                0,
                "invalid variable name '{x' (use letters, digits and '_')".into()
            )]
        );
        assert_eq!(
            errors("{{x\n}}"),
            [(
                0,
                "invalid variable name 'x\n' (use letters, digits and '_')".into()
            )]
        );
    }

    #[test]
    fn fills_values_once_without_re_expanding() {
        assert_eq!(
            fill_map("<{{a}}|{{ b }}>", &[("a", "{{b}}"), ("b", "}} {x} {{")]).unwrap(),
            "<{{b}}|}} {x} {{>"
        );
        assert_eq!(
            fill_map("{{a}}-{{a}}", &[("a", "日本語 🎉")]).unwrap(),
            "日本語 🎉-日本語 🎉"
        );
        assert_eq!(fill_map("{{a}}", &[("a", "")]).unwrap(), "");
    }

    #[test]
    fn every_missing_variable_in_order_of_first_use() {
        let missing = fill_map("{{c}} {{a}} {{b}} {{c}} {{a}}", &[("b", "1")]).unwrap_err();
        assert_eq!(missing, Missing(vec!["c".into(), "a".into()]));
        assert_eq!(missing.to_string(), "missing values for: c, a");
    }

    #[test]
    fn variable_names() {
        for good in ["a", "_", "A_1", "_x9"] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a b", "é", "a.b"] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }
}
