//! A template and values made into the chat messages a model is given:
//! the system prompt, the selected few-shot examples as user/assistant
//! pairs, then the user's prompt.

use super::placeholders::{self, Segment};
use super::template::Template;
use crate::engine::protocol::{ChatMessage, Role};
use crate::text_position::line_col;
use std::collections::BTreeMap;
use std::fmt;

/// Which few-shot examples go into the messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ExampleSelection {
    /// Those the file marks enabled (the default).
    #[default]
    Enabled,
    /// None at all.
    None,
    /// These, by 1-based number, in this order, whatever the file's flags.
    Only(Vec<usize>),
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// Variables of the system prompt or the prompt with neither a value nor
    /// a default, in order of first use.
    Missing(Vec<String>),
    /// Variables of the prompt that a `vars` example (1-based) gives no
    /// value for and that have no default.
    ExampleMissing { example: usize, names: Vec<String> },
    /// An example number that is not in the template.
    NoSuchExample { example: usize, count: usize },
    /// A malformed placeholder in `field` (a template made in memory, not
    /// read by [`super::parse`]); line and column inside the field's text.
    Syntax {
        field: String,
        line: usize,
        col: usize,
        message: String,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Missing(names) => {
                write!(f, "missing values for: {}", names.join(", "))
            }
            RenderError::ExampleMissing { example, names } => write!(
                f,
                "example {example}: missing values for: {}",
                names.join(", ")
            ),
            RenderError::NoSuchExample { example, count } => match count {
                0 => write!(f, "no example {example} (the template has no examples)"),
                1 => write!(f, "no example {example} (the template has 1 example)"),
                n => write!(f, "no example {example} (the template has {n} examples)"),
            },
            RenderError::Syntax {
                field,
                line,
                col,
                message,
            } => write!(f, "{field}:{line}:{col}: {message}"),
        }
    }
}

impl std::error::Error for RenderError {}

/// Rendered messages, with the user prompt at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub messages: Vec<ChatMessage>,
}

impl Rendered {
    /// [`render`], kept together.
    pub fn new(
        template: &Template,
        values: &BTreeMap<String, String>,
        examples: ExampleSelection,
    ) -> Result<Rendered, RenderError> {
        render(template, values, examples).map(|messages| Rendered { messages })
    }

    /// The rendered user prompt (the last message): `{{task}}` in the
    /// template's refine prompts.
    pub fn prompt(&self) -> &str {
        self.messages.last().map_or("", |m| m.content.as_str())
    }
}

/// The messages for `template`: its system prompt (if any), each selected
/// example as a user message and an assistant reply, then the prompt.
///
/// The system prompt and the prompt take `values`, then the declared
/// defaults. A `vars` example renders the prompt with its own vars, then the
/// defaults — never the user's values; an `input` example is sent as
/// written. Values are inserted as they are, never expanded again.
pub fn render(
    template: &Template,
    values: &BTreeMap<String, String>,
    examples: ExampleSelection,
) -> Result<Vec<ChatMessage>, RenderError> {
    let selected = select(template, &examples)?;
    let system = match &template.system {
        Some(text) => Some(segments("system", text)?),
        None => None,
    };
    let prompt = segments("prompt", &template.prompt)?;

    let given = |name: &str| {
        values
            .get(name)
            .map(String::as_str)
            .or_else(|| template.default_of(name))
    };
    let system = system.map(|s| placeholders::fill(&s, &given));
    let user = placeholders::fill(&prompt, &given);
    let mut missing = Vec::new();
    for result in system.iter().chain([&user]) {
        if let Err(placeholders::Missing(names)) = result {
            for name in names {
                if !missing.contains(name) {
                    missing.push(name.clone());
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(RenderError::Missing(missing));
    }

    let mut messages = Vec::new();
    if let Some(Ok(system)) = system {
        messages.push(ChatMessage::new(Role::System, system));
    }
    for number in selected {
        let example = &template.examples[number - 1];
        let input = match (&example.vars, &example.input) {
            (Some(vars), _) => {
                let given = |name: &str| {
                    vars.get(name)
                        .map(String::as_str)
                        .or_else(|| template.default_of(name))
                };
                placeholders::fill(&prompt, &given).map_err(|missing| {
                    RenderError::ExampleMissing {
                        example: number,
                        names: missing.0,
                    }
                })?
            }
            (None, Some(input)) => input.clone(),
            // Refused by `parse`; a template made in memory may have it.
            (None, None) => String::new(),
        };
        messages.push(ChatMessage::new(Role::User, input));
        messages.push(ChatMessage::new(Role::Assistant, example.output.clone()));
    }
    messages.push(ChatMessage::new(
        Role::User,
        user.expect("missing values were reported above"),
    ));
    Ok(messages)
}

/// `text` (a refine prompt, say) with its placeholders filled from `values`;
/// every variable without a value is reported.
pub fn render_text(text: &str, values: &BTreeMap<String, String>) -> Result<String, RenderError> {
    let segments = segments("text", text)?;
    placeholders::fill(&segments, &|name| values.get(name).map(String::as_str))
        .map_err(|missing| RenderError::Missing(missing.0))
}

/// The 1-based numbers of the examples to use, in order.
fn select(template: &Template, selection: &ExampleSelection) -> Result<Vec<usize>, RenderError> {
    let count = template.examples.len();
    match selection {
        ExampleSelection::Enabled => Ok((1..=count)
            .filter(|&n| template.examples[n - 1].enabled)
            .collect()),
        ExampleSelection::None => Ok(Vec::new()),
        ExampleSelection::Only(numbers) => {
            if let Some(&example) = numbers.iter().find(|&&n| n == 0 || n > count) {
                return Err(RenderError::NoSuchExample { example, count });
            }
            Ok(numbers.clone())
        }
    }
}

fn segments(field: &str, text: &str) -> Result<Vec<Segment>, RenderError> {
    placeholders::parse(text).map_err(|errors| {
        let first = &errors[0];
        let (line, col) = line_col(text, first.offset);
        RenderError::Syntax {
            field: field.to_string(),
            line,
            col,
            message: first.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::template::{parse, Example};

    fn template() -> Template {
        parse(
            r#"version = 1
name = "t"
description = "d"
system = "You write in {{lang}}."
prompt = "Summarise in {{n}} sentences: {{text}}"

[variables.n]
default = "two"
[variables.lang]
default = "English"

[[examples]]
output = "one"
[examples.vars]
text = "first"

[[examples]]
enabled = false
input = "literal {{text}}"
output = "two"

[[examples]]
output = "three"
[examples.vars]
text = "third"
n = "one"
"#,
            "t.toml",
        )
        .unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn contents(messages: &[ChatMessage]) -> Vec<(Role, &str)> {
        messages
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect()
    }

    #[test]
    fn system_then_enabled_examples_then_the_prompt() {
        let messages = render(
            &template(),
            &values(&[("text", "Long text."), ("lang", "French")]),
            ExampleSelection::Enabled,
        )
        .unwrap();
        assert_eq!(
            contents(&messages),
            [
                (Role::System, "You write in French."),
                // An example's vars, then defaults; not the user's values.
                (Role::User, "Summarise in two sentences: first"),
                (Role::Assistant, "one"),
                (Role::User, "Summarise in one sentences: third"),
                (Role::Assistant, "three"),
                (Role::User, "Summarise in two sentences: Long text."),
            ]
        );
    }

    #[test]
    fn selection_overrides_the_flags_in_the_given_order() {
        let t = template();
        let v = values(&[("text", "x")]);
        let messages = render(&t, &v, ExampleSelection::Only(vec![2, 1])).unwrap();
        assert_eq!(
            contents(&messages)[1..5],
            [
                (Role::User, "literal {{text}}"),
                (Role::Assistant, "two"),
                (Role::User, "Summarise in two sentences: first"),
                (Role::Assistant, "one"),
            ]
        );
        let messages = render(&t, &v, ExampleSelection::None).unwrap();
        assert_eq!(
            contents(&messages),
            [
                (Role::System, "You write in English."),
                (Role::User, "Summarise in two sentences: x"),
            ]
        );
        for bad in [0, 4] {
            let error = render(&t, &v, ExampleSelection::Only(vec![1, bad])).unwrap_err();
            assert_eq!(
                error,
                RenderError::NoSuchExample {
                    example: bad,
                    count: 3
                }
            );
            assert_eq!(
                error.to_string(),
                format!("no example {bad} (the template has 3 examples)")
            );
        }
    }

    #[test]
    fn values_stay_literal() {
        let messages = render(
            &template(),
            &values(&[("text", "{{n}} and {x} }} {{"), ("n", "日本語 🎉")]),
            ExampleSelection::None,
        )
        .unwrap();
        assert_eq!(
            messages.last().unwrap().content,
            "Summarise in 日本語 🎉 sentences: {{n}} and {x} }} {{"
        );
    }

    #[test]
    fn every_missing_value_in_order_of_first_use() {
        let mut t = template();
        t.variables.clear();
        let error = render(&t, &values(&[]), ExampleSelection::None).unwrap_err();
        assert_eq!(
            error,
            RenderError::Missing(vec!["lang".into(), "n".into(), "text".into()])
        );
        assert_eq!(error.to_string(), "missing values for: lang, n, text");
    }

    #[test]
    fn an_example_without_a_value_names_itself() {
        let mut t = template();
        t.variables.remove("n");
        let error = render(
            &t,
            &values(&[("text", "x"), ("n", "3")]),
            ExampleSelection::Enabled,
        )
        .unwrap_err();
        assert_eq!(
            error,
            RenderError::ExampleMissing {
                example: 1,
                names: vec!["n".into()]
            }
        );
        assert_eq!(error.to_string(), "example 1: missing values for: n");
        // Example 3 gives n itself.
        assert!(render(
            &t,
            &values(&[("text", "x"), ("n", "3")]),
            ExampleSelection::Only(vec![3])
        )
        .is_ok());
    }

    #[test]
    fn a_template_made_in_memory_with_a_bad_placeholder() {
        let mut t = template();
        t.prompt = "ok\n  {{x".into();
        t.examples.push(Example {
            vars: None,
            input: None,
            output: String::new(),
            enabled: true,
        });
        let error = render(&t, &values(&[]), ExampleSelection::None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "prompt:2:3: unclosed '{{' (no '}}' after it)"
        );
    }

    #[test]
    fn rendered_keeps_the_prompt_for_refinement() {
        let t = template();
        let rendered =
            Rendered::new(&t, &values(&[("text", "x")]), ExampleSelection::None).unwrap();
        assert_eq!(rendered.prompt(), "Summarise in two sentences: x");
        let feedback = t.prompt.replace("Summarise", "{{task}} / {{answer}}");
        assert_eq!(
            render_text(
                &feedback,
                &values(&[
                    ("task", "T {{answer}}"),
                    ("answer", "A"),
                    ("n", "1"),
                    ("text", "z")
                ])
            )
            .unwrap(),
            "T {{answer}} / A in 1 sentences: z"
        );
        assert_eq!(
            render_text("{{task}} {{answer}}", &values(&[]))
                .unwrap_err()
                .to_string(),
            "missing values for: task, answer"
        );
    }
}
