//! The popup that adds or edits one few-shot example: a field per variable
//! of the prompt (or one "input" field, for an example written as a plain
//! user message) and the expected output.

use std::collections::BTreeMap;

use ratatui_textarea::TextArea;

use super::doc::{value_field, TemplateDoc, TextField};
use crate::prompt::placeholders;
use crate::prompt::Example;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRole {
    /// The value of this variable.
    Var(String),
    /// The whole user message (an `input` example).
    Input,
    Output,
}

pub struct FormField {
    pub role: FieldRole,
    pub area: TextArea<'static>,
}

impl FormField {
    pub fn label(&self) -> String {
        match &self.role {
            FieldRole::Var(name) => format!("{{{{{name}}}}}"),
            FieldRole::Input => "input (user message)".into(),
            FieldRole::Output => "expected output".into(),
        }
    }

    pub fn text(&self) -> String {
        self.area.lines().join("\n")
    }
}

pub struct ExampleForm {
    /// The example edited, or None for a new one.
    pub index: Option<usize>,
    pub fields: Vec<FormField>,
    pub focused: usize,
    enabled: bool,
    /// Esc with changes asks once more before throwing them away.
    pub discard_armed: bool,
    pub error: Option<String>,
    /// Set by a key that kept or dropped the form: the popup goes.
    pub closed: bool,
    initial: Vec<String>,
}

impl ExampleForm {
    /// A new example for `doc`: one field per variable of its prompt (an
    /// input field if it has none), then the output.
    pub fn new(doc: &TemplateDoc) -> ExampleForm {
        let names = placeholders::variables(&doc.text(TextField::Prompt));
        let mut fields: Vec<FormField> = if names.is_empty() {
            vec![field(FieldRole::Input, "")]
        } else {
            names
                .into_iter()
                .map(|name| field(FieldRole::Var(name), ""))
                .collect()
        };
        fields.push(field(FieldRole::Output, ""));
        ExampleForm::with_fields(None, fields, true)
    }

    /// The form for example `index` of `doc` (None if there is no such).
    pub fn edit(doc: &TemplateDoc, index: usize) -> Option<ExampleForm> {
        let example = doc.examples.get(index)?;
        let mut fields = Vec::new();
        match (&example.vars, &example.input) {
            (Some(vars), _) => {
                // The prompt's variables first, then any others the example has.
                let mut names = placeholders::variables(&doc.text(TextField::Prompt));
                for name in vars.keys() {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                for name in names {
                    let value = vars.get(&name).cloned().unwrap_or_default();
                    fields.push(field(FieldRole::Var(name), &value));
                }
            }
            (None, input) => fields.push(field(FieldRole::Input, input.as_deref().unwrap_or(""))),
        }
        fields.push(field(FieldRole::Output, &example.output));
        Some(ExampleForm::with_fields(
            Some(index),
            fields,
            example.enabled,
        ))
    }

    fn with_fields(index: Option<usize>, fields: Vec<FormField>, enabled: bool) -> ExampleForm {
        let initial = fields.iter().map(FormField::text).collect();
        ExampleForm {
            index,
            fields,
            focused: 0,
            enabled,
            discard_armed: false,
            error: None,
            closed: false,
            initial,
        }
    }

    pub fn is_changed(&self) -> bool {
        self.fields
            .iter()
            .map(FormField::text)
            .ne(self.initial.iter().cloned())
    }

    pub fn focused_area(&mut self) -> &mut TextArea<'static> {
        let i = self.focused.min(self.fields.len() - 1);
        &mut self.fields[i].area
    }

    pub fn move_focus(&mut self, forward: bool) {
        let n = self.fields.len();
        self.focused = if forward {
            (self.focused + 1) % n
        } else {
            (self.focused + n - 1) % n
        };
    }

    /// The example the form describes; an empty output is refused.
    pub fn to_example(&self) -> Result<Example, String> {
        let mut vars = BTreeMap::new();
        let mut input = None;
        let mut output = String::new();
        for field in &self.fields {
            let text = field.text();
            match &field.role {
                // An empty value leaves the variable to its default.
                FieldRole::Var(name) if !text.is_empty() => {
                    vars.insert(name.clone(), text);
                }
                FieldRole::Var(_) => {}
                FieldRole::Input => input = Some(text),
                FieldRole::Output => output = text,
            }
        }
        if output.trim().is_empty() {
            return Err("the expected output is empty".into());
        }
        if input.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return Err("the input is empty".into());
        }
        Ok(Example {
            vars: input.is_none().then_some(vars),
            input,
            output,
            enabled: self.enabled,
        })
    }
}

fn field(role: FieldRole, text: &str) -> FormField {
    let mut area = value_field(text);
    area.move_cursor(ratatui_textarea::CursorMove::Top);
    area.move_cursor(ratatui_textarea::CursorMove::Head);
    FormField { role, area }
}
