//! The template open in the workbench: its texts in editors, the values of
//! its variables, its few-shot examples; what it renders to, what is wrong
//! with it (at the line and column of the text being edited), and whether
//! it differs from the file it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ratatui_textarea::{TextArea, WrapMode};

use crate::engine::constraint::Constraint;
use crate::engine::protocol::ChatMessage;
use crate::prompt::placeholders::{self, Segment};
use crate::prompt::template::{FEEDBACK_PLACEHOLDERS, REFINE_PLACEHOLDERS};
use crate::prompt::{render, Example, ExampleSelection, RenderError, Template, TemplateSampling};
use crate::text_position::line_col;

/// Where the open template comes from, which decides where Save writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into whet: saving makes the user's copy.
    Shipped,
    /// The user's file.
    User(PathBuf),
    /// Not saved yet.
    New,
}

/// The texts of a template the editor can show, in the order F7 visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    Prompt,
    System,
    /// The `[sampling]` table, as TOML.
    Sampling,
    Feedback,
    Refine,
}

impl TextField {
    pub const ALL: [TextField; 5] = [
        TextField::Prompt,
        TextField::System,
        TextField::Sampling,
        TextField::Feedback,
        TextField::Refine,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TextField::Prompt => "prompt",
            TextField::System => "system",
            TextField::Sampling => "sampling",
            TextField::Feedback => "feedback",
            TextField::Refine => "refine",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&f| f == self).unwrap_or(0)
    }

    pub fn next(self) -> TextField {
        Self::ALL[(self.index() + 1) % Self::ALL.len()]
    }
}

/// A problem in one of the texts, at its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextProblem {
    pub field: TextField,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for TextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.field.label(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// The value field of one variable the texts use.
pub struct VarField {
    pub name: String,
    pub description: Option<String>,
    pub default: Option<String>,
    pub value: TextArea<'static>,
}

impl VarField {
    pub fn text(&self) -> String {
        self.value.lines().join("\n")
    }
}

pub struct TemplateDoc {
    pub origin: Origin,
    /// The template as saved (or shipped): what "unsaved changes" compares
    /// with, and where the fields the workbench does not edit come from.
    pub saved: Template,
    texts: Vec<TextArea<'static>>,
    pub field: TextField,
    pub vars: Vec<VarField>,
    /// Fields of variables the texts stopped using, kept with their values
    /// in case the variable comes back (an edit in the middle of its name).
    hidden_vars: Vec<VarField>,
    pub var_selected: usize,
    pub examples: Vec<Example>,
    pub example_selected: usize,
    /// The `[variables]` table as edited (defaults set with F8).
    declared: BTreeMap<String, crate::prompt::Variable>,
}

/// Highlights `{{…}}` in the editors (their search pattern, kept on).
const PLACEHOLDER_PATTERN: &str = r"\{\{[^{}]*\}\}";

fn editor(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut area = TextArea::new(lines);
    area.set_wrap_mode(WrapMode::WordOrGlyph);
    area.set_max_histories(500);
    // The pattern is a constant that compiles; a failure would only lose
    // the highlighting.
    let _ = area.set_search_pattern(PLACEHOLDER_PATTERN);
    area
}

/// A value field holding `text`, cursor at its start (so a long value
/// shows its beginning).
pub fn value_field(text: &str) -> TextArea<'static> {
    let mut area = editor(text);
    area.set_search_pattern("").ok();
    area
}

fn sampling_text(sampling: &TemplateSampling) -> String {
    if sampling.is_empty() {
        return String::new();
    }
    toml::to_string(sampling).unwrap_or_default()
}

impl TemplateDoc {
    pub fn open(template: Template, origin: Origin) -> TemplateDoc {
        let texts = TextField::ALL
            .iter()
            .map(|&field| editor(&text_of(&template, field)))
            .collect();
        let mut doc = TemplateDoc {
            origin,
            examples: template.examples.clone(),
            declared: template.variables.clone(),
            saved: template,
            texts,
            field: TextField::Prompt,
            vars: Vec::new(),
            hidden_vars: Vec::new(),
            var_selected: 0,
            example_selected: 0,
        };
        doc.sync_vars();
        doc
    }

    /// A new, empty template called `name`.
    pub fn new_named(name: &str) -> TemplateDoc {
        let template = Template {
            version: crate::prompt::FORMAT_VERSION,
            name: name.to_string(),
            description: String::new(),
            system: None,
            prompt: String::new(),
            variables: BTreeMap::new(),
            examples: Vec::new(),
            sampling: TemplateSampling::default(),
            refine: Default::default(),
            references: Vec::new(),
        };
        TemplateDoc::open(template, Origin::New)
    }

    pub fn name(&self) -> &str {
        &self.saved.name
    }

    pub fn text(&self, field: TextField) -> String {
        self.texts[field.index()].lines().join("\n")
    }

    pub fn editor(&self) -> &TextArea<'static> {
        &self.texts[self.field.index()]
    }

    pub fn editor_mut(&mut self) -> &mut TextArea<'static> {
        &mut self.texts[self.field.index()]
    }

    /// Every problem of every text, in the order of [`TextField::ALL`].
    pub fn problems(&self) -> Vec<TextProblem> {
        let mut problems = Vec::new();
        for field in TextField::ALL {
            let text = self.text(field);
            match field {
                TextField::Sampling => {
                    if let Err(problem) = parse_sampling(&text) {
                        problems.push(problem);
                    }
                }
                TextField::Prompt | TextField::System => {
                    check_placeholders(field, &text, None, &mut problems);
                }
                TextField::Feedback => {
                    check_placeholders(field, &text, Some(FEEDBACK_PLACEHOLDERS), &mut problems)
                }
                TextField::Refine => {
                    check_placeholders(field, &text, Some(REFINE_PLACEHOLDERS), &mut problems)
                }
            }
        }
        problems
    }

    /// The template as edited, or what stops it from being one.
    pub fn to_template(&self) -> Result<Template, Vec<TextProblem>> {
        let problems = self.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        let optional = |field| Some(self.text(field)).filter(|t| !t.trim().is_empty());
        let mut template = self.saved.clone();
        template.prompt = self.text(TextField::Prompt);
        template.system = optional(TextField::System);
        template.sampling = parse_sampling(&self.text(TextField::Sampling)).unwrap_or_default();
        template.refine.feedback = optional(TextField::Feedback);
        template.refine.refine = optional(TextField::Refine);
        template.examples = self.examples.clone();
        template.variables = self.declared_used();
        Ok(template)
    }

    /// The template as edited even with problems in its texts (the
    /// sampling text then keeps the saved settings): for keeping unsaved
    /// work on the way out.
    pub fn to_template_anyway(&self) -> Template {
        if let Ok(template) = self.to_template() {
            return template;
        }
        let optional = |field| Some(self.text(field)).filter(|t: &String| !t.trim().is_empty());
        let mut template = self.saved.clone();
        template.prompt = self.text(TextField::Prompt);
        template.system = optional(TextField::System);
        if let Ok(sampling) = parse_sampling(&self.text(TextField::Sampling)) {
            template.sampling = sampling;
        }
        template.refine.feedback = optional(TextField::Feedback);
        template.refine.refine = optional(TextField::Refine);
        template.examples = self.examples.clone();
        template.variables = self.declared_used();
        template
    }

    /// The declared variables, without entries left empty by removing a
    /// default that was only set here.
    fn declared_used(&self) -> BTreeMap<String, crate::prompt::Variable> {
        self.declared
            .iter()
            .filter(|(name, v)| {
                v.description.is_some()
                    || v.default.is_some()
                    || self.saved.variables.contains_key(*name)
            })
            .map(|(name, v)| (name.clone(), v.clone()))
            .collect()
    }

    /// Whether there is anything Save would write.
    pub fn is_dirty(&self) -> bool {
        if self.origin == Origin::New {
            return true;
        }
        match self.to_template() {
            Ok(template) => template != self.saved,
            // The saved template has no problems, so this one differs.
            Err(_) => true,
        }
    }

    /// Makes the selected variable's value its declared default (an empty
    /// value removes the default); returns the variable's name.
    pub fn make_default(&mut self) -> Option<String> {
        let var = self.vars.get_mut(self.var_selected)?;
        let value = var.text();
        var.default = Some(value.clone()).filter(|v| !v.is_empty());
        let declared = self.declared.entry(var.name.clone()).or_default();
        declared.default = var.default.clone();
        Some(var.name.clone())
    }

    /// The template was written to `path` as `template`.
    pub fn mark_saved(&mut self, template: Template, path: PathBuf) {
        self.saved = template;
        self.origin = Origin::User(path);
    }

    /// Keeps one value field per variable the prompt and system texts use,
    /// in order of first use; values typed for a variable survive edits that
    /// remove it for a moment (they come back with it).
    pub fn sync_vars(&mut self) {
        let mut names = Vec::new();
        for field in [TextField::System, TextField::Prompt] {
            for name in placeholders::variables(&self.text(field)) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let current: Vec<&str> = self.vars.iter().map(|v| v.name.as_str()).collect();
        if current == names.iter().map(String::as_str).collect::<Vec<_>>() {
            return;
        }
        let mut old: Vec<VarField> = std::mem::take(&mut self.vars);
        old.append(&mut self.hidden_vars);
        for name in names {
            let field = match old.iter().position(|v| v.name == name) {
                Some(i) => old.remove(i),
                None => {
                    let declared = self.declared.get(&name).cloned().unwrap_or_default();
                    VarField {
                        value: value_field(declared.default.as_deref().unwrap_or("")),
                        name,
                        description: declared.description,
                        default: declared.default,
                    }
                }
            };
            self.vars.push(field);
        }
        self.hidden_vars = old;
        self.var_selected = self.var_selected.min(self.vars.len().saturating_sub(1));
    }

    /// The values given: each non-empty field. An empty field means "not
    /// given": the declared default applies, or the run is blocked.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .map(|v| (v.name.clone(), v.text()))
            .filter(|(_, text)| !text.is_empty())
            .collect()
    }

    /// Replaces the values (a reopened run's); variables not in `values`
    /// are emptied.
    pub fn set_values(&mut self, values: &BTreeMap<String, String>) {
        for var in &mut self.vars {
            var.value = value_field(values.get(&var.name).map_or("", String::as_str));
        }
    }

    /// 1-based numbers of the enabled examples, in order.
    pub fn enabled_examples(&self) -> Vec<usize> {
        self.examples
            .iter()
            .enumerate()
            .filter(|(_, e)| e.enabled)
            .map(|(i, _)| i + 1)
            .collect()
    }

    /// The chat messages the model is given, or why there are none: the
    /// texts' problems (`prompt:2:14: …`), or the missing values.
    pub fn render(&self) -> Result<Vec<ChatMessage>, String> {
        let template = self.to_template().map_err(|problems| {
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        render(&template, &self.values(), ExampleSelection::Enabled).map_err(|e| match e {
            RenderError::ExampleMissing { .. } => format!(
                "{e}\n(examples fill the prompt with their own values: give the variable a default, or edit the example)"
            ),
            e => e.to_string(),
        })
    }

    /// The grammar or JSON schema `template` (this document's) sets, read
    /// from its file: relative to the template's own file, or to the working
    /// directory for a shipped or unsaved one, as `whet run` reads it.
    pub fn constraint(&self, template: &Template) -> Result<Option<Constraint>, String> {
        let base = match &self.origin {
            Origin::User(path) => path.parent().map(PathBuf::from).unwrap_or_default(),
            Origin::Shipped | Origin::New => PathBuf::from("."),
        };
        template.sampling.constraint(&base)
    }

    // --- the examples list -------------------------------------------------

    pub fn selected_example(&self) -> Option<&Example> {
        self.examples.get(self.example_selected)
    }

    /// Puts `example` after the selected one (or first) and selects it.
    pub fn insert_example(&mut self, example: Example) {
        let at = if self.examples.is_empty() {
            0
        } else {
            (self.example_selected + 1).min(self.examples.len())
        };
        self.examples.insert(at, example);
        self.example_selected = at;
    }

    pub fn replace_example(&mut self, index: usize, example: Example) {
        if let Some(slot) = self.examples.get_mut(index) {
            *slot = example;
        }
    }

    pub fn duplicate_example(&mut self) {
        if let Some(example) = self.selected_example().cloned() {
            self.insert_example(example);
        }
    }

    pub fn delete_example(&mut self) -> Option<Example> {
        if self.example_selected >= self.examples.len() {
            return None;
        }
        let removed = self.examples.remove(self.example_selected);
        self.example_selected = self
            .example_selected
            .min(self.examples.len().saturating_sub(1));
        Some(removed)
    }

    pub fn toggle_example(&mut self) {
        if let Some(example) = self.examples.get_mut(self.example_selected) {
            example.enabled = !example.enabled;
        }
    }

    /// Moves the selected example one place up (or down); it stays selected.
    pub fn move_example(&mut self, up: bool) {
        let i = self.example_selected;
        let j = if up { i.checked_sub(1) } else { Some(i + 1) };
        if let Some(j) = j.filter(|&j| j < self.examples.len() && i < self.examples.len()) {
            self.examples.swap(i, j);
            self.example_selected = j;
        }
    }

    pub fn select_example(&mut self, step: isize) {
        let last = self.examples.len().saturating_sub(1);
        self.example_selected = self.example_selected.saturating_add_signed(step).min(last);
    }
}

/// The text of `field` as the template holds it.
fn text_of(template: &Template, field: TextField) -> String {
    match field {
        TextField::Prompt => template.prompt.clone(),
        TextField::System => template.system.clone().unwrap_or_default(),
        TextField::Sampling => sampling_text(&template.sampling),
        TextField::Feedback => template.refine.feedback.clone().unwrap_or_default(),
        TextField::Refine => template.refine.refine.clone().unwrap_or_default(),
    }
}

/// The sampling text as the template's `[sampling]` table.
fn parse_sampling(text: &str) -> Result<TemplateSampling, TextProblem> {
    toml::from_str::<TemplateSampling>(text).map_err(|error| {
        let (line, col) = error
            .span()
            .map_or((1, 1), |span| line_col(text, span.start));
        TextProblem {
            field: TextField::Sampling,
            line,
            col,
            message: error.message().trim().to_string(),
        }
    })
}

fn check_placeholders(
    field: TextField,
    text: &str,
    allowed: Option<&[&str]>,
    problems: &mut Vec<TextProblem>,
) {
    let at = |offset: usize, message: String| {
        let (line, col) = line_col(text, offset);
        TextProblem {
            field,
            line,
            col,
            message,
        }
    };
    match placeholders::parse(text) {
        Err(errors) => {
            problems.extend(
                errors
                    .into_iter()
                    .map(|error| at(error.offset, error.to_string())),
            );
        }
        Ok(segments) => {
            let Some(allowed) = allowed else { return };
            for segment in segments {
                if let Segment::Var { name, span } = segment {
                    if !allowed.contains(&name.as_str()) {
                        problems.push(at(
                            span.start,
                            format!(
                                "unknown placeholder '{{{{{name}}}}}' (the {} prompt can use {})",
                                field.label(),
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
}
