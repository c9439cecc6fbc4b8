//! The settings panel: the session's system prompt and how replies are
//! generated, edited as text fields and applied together (or not at all).

use ratatui_textarea::TextArea;

use crate::engine::sampling::{Knob, SamplingOverrides};
use crate::engine::SamplingParams;
use crate::sampling_defaults::{SamplingDefaults, Source};
use crate::store::session::ReplySettings;

/// What the panel edits, as the session holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSettings {
    pub system_prompt: Option<String>,
    /// All sampler settings, as the next turn uses them.
    pub sampling: SamplingParams,
    /// The ones the session chose; the rest follow `SamplingDefaults`.
    pub sampling_set: SamplingOverrides,
    pub reply: ReplySettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    SystemPrompt,
    Temperature,
    TopK,
    TopP,
    MinP,
    RepeatPenalty,
    Seed,
    MaxTokens,
    Stop,
    Context,
    Probabilities,
    Output,
}

/// The Output field's word for replies under no grammar.
const FREE_OUTPUT: &str = "free";

impl Field {
    pub const ALL: [Field; 12] = [
        Field::SystemPrompt,
        Field::Temperature,
        Field::TopK,
        Field::TopP,
        Field::MinP,
        Field::RepeatPenalty,
        Field::Seed,
        Field::MaxTokens,
        Field::Stop,
        Field::Context,
        Field::Probabilities,
        Field::Output,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::SystemPrompt => "System prompt",
            Field::Temperature => "Temperature",
            Field::TopK => "Top-k",
            Field::TopP => "Top-p",
            Field::MinP => "Min-p",
            Field::RepeatPenalty => "Repeat penalty",
            Field::Seed => "Seed",
            Field::MaxTokens => "Max tokens",
            Field::Stop => "Stop strings",
            Field::Context => "Context size",
            Field::Probabilities => "Probabilities",
            Field::Output => "Output",
        }
    }

    /// The sampler knob this field edits, for fields whose value can come
    /// from the model or the user's defaults.
    pub fn knob(self) -> Option<Knob> {
        match self {
            Field::Temperature => Some(Knob::Temperature),
            Field::TopK => Some(Knob::TopK),
            Field::TopP => Some(Knob::TopP),
            Field::MinP => Some(Knob::MinP),
            Field::RepeatPenalty => Some(Knob::RepeatPenalty),
            _ => None,
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            Field::SystemPrompt => "sent before the conversation; empty for none",
            Field::Temperature => "0 = greedy (deterministic)",
            Field::TopK => "0 = off",
            Field::TopP => "1 = off",
            Field::MinP => "0 = off",
            Field::RepeatPenalty => "1 = off",
            Field::Seed => "a number, or 'random' for a new seed every turn",
            Field::MaxTokens => "per reply; 0 = until the context is full",
            Field::Stop => "comma-separated; \\n newline, \\, comma, \\\\ backslash",
            Field::Context => "tokens; 'default' = the command line's; reloads the model",
            Field::Probabilities => {
                "on: keep each token's probability and alternatives (the lens); off"
            }
            Field::Output => {
                "'free', or the grammar or JSON schema of the template the chat came from"
            }
        }
    }
}

pub struct SettingsForm {
    pub fields: Vec<(Field, TextArea<'static>)>,
    pub focused: usize,
    /// The message of the last failed apply, naming the field.
    pub error: Option<String>,
    /// Each field's text when the panel opened: an untouched sampler
    /// field keeps following the model or the user's defaults.
    initial: Vec<String>,
    /// For sampler fields: where the shown value comes from, and what an
    /// emptied field goes back to (its source and value).
    origins: Vec<Option<Origin>>,
}

/// Where a sampler field's value comes from, as the panel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub source: Source,
    pub described: String,
    /// Without the session's own value: the described source and its value.
    pub inherited: String,
}

fn area(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut area = TextArea::new(lines);
    area.move_cursor(ratatui_textarea::CursorMove::Bottom);
    area.move_cursor(ratatui_textarea::CursorMove::End);
    area
}

impl SettingsForm {
    pub fn new(settings: &ChatSettings, defaults: &SamplingDefaults) -> Self {
        let s = &settings.sampling;
        let r = &settings.reply;
        let value = |field: Field| match field {
            Field::SystemPrompt => settings.system_prompt.clone().unwrap_or_default(),
            Field::Temperature => s.temperature.to_string(),
            Field::TopK => s.top_k.to_string(),
            Field::TopP => s.top_p.to_string(),
            Field::MinP => s.min_p.to_string(),
            Field::RepeatPenalty => s.repeat_penalty.to_string(),
            Field::Seed => {
                if r.fixed_seed {
                    s.seed.to_string()
                } else {
                    "random".to_string()
                }
            }
            Field::MaxTokens => r.max_tokens.to_string(),
            Field::Stop => join_stops(&r.stop),
            Field::Context => r
                .n_ctx
                .map_or_else(|| "default".to_string(), |n| n.to_string()),
            Field::Probabilities => if r.probabilities { "on" } else { "off" }.to_string(),
            Field::Output => output_text(r),
        };
        let without_session = defaults.resolve(&SamplingOverrides::default(), s);
        let origin = |field: Field| {
            let knob = field.knob()?;
            let source = defaults.source(&settings.sampling_set, knob);
            let inherited = format!(
                "{} of {}",
                number_text(knob.value(&without_session)),
                defaults.describe(defaults.inherited_source(knob))
            );
            Some(Origin {
                source,
                described: defaults.describe(source),
                inherited,
            })
        };
        let initial: Vec<String> = Field::ALL.iter().map(|&f| value(f)).collect();
        Self {
            fields: Field::ALL
                .iter()
                .zip(&initial)
                .map(|(&f, text)| (f, area(text)))
                .collect(),
            focused: 0,
            error: None,
            initial,
            origins: Field::ALL.iter().map(|&f| origin(f)).collect(),
        }
    }

    /// Where the value now in `field` would come from, as a short label:
    /// the source it had, "this session" once edited, or what an emptied
    /// field goes back to.
    pub fn origin_label(&self, field: Field) -> Option<String> {
        let index = Field::ALL.iter().position(|&f| f == field)?;
        let origin = self.origins.get(index)?.as_ref()?;
        let text = self.text(field);
        Some(if text == self.initial[index] {
            origin.described.clone()
        } else if text.trim().is_empty() {
            format!("back to {}", origin.inherited)
        } else {
            "this session".to_string()
        })
    }

    /// What emptying a sampler field gives back, for the footer.
    pub fn inherited(&self, field: Field) -> Option<&str> {
        let index = Field::ALL.iter().position(|&f| f == field)?;
        Some(self.origins.get(index)?.as_ref()?.inherited.as_str())
    }

    pub fn focused_field(&self) -> Field {
        self.fields[self.focused].0
    }

    pub fn focused_area(&mut self) -> &mut TextArea<'static> {
        &mut self.fields[self.focused].1
    }

    pub fn move_focus(&mut self, forward: bool) {
        let n = self.fields.len();
        self.focused = if forward {
            (self.focused + 1) % n
        } else {
            (self.focused + n - 1) % n
        };
        // A one-line value is selected on arrival, so typing replaces it,
        // as in any form.
        if self.focused_field() != Field::SystemPrompt {
            let area = self.focused_area();
            area.move_cursor(ratatui_textarea::CursorMove::End);
            area.select_all();
        }
    }

    fn text(&self, field: Field) -> String {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, area)| area.lines().join("\n"))
            .unwrap_or_default()
    }

    /// The settings the fields spell, starting from `current` (which keeps
    /// what the panel does not show, like the seed of a random-seed session).
    /// A sampler field left as it was keeps following where its value came
    /// from; an emptied one goes back to the model's or the user's value.
    /// An error names the field and the value.
    pub fn parse(
        &self,
        current: &ChatSettings,
        defaults: &SamplingDefaults,
    ) -> Result<ChatSettings, String> {
        let mut next = current.clone();
        let system = self.text(Field::SystemPrompt);
        next.system_prompt = (!system.trim().is_empty()).then_some(system);
        for (index, &field) in Field::ALL.iter().enumerate() {
            let Some(knob) = field.knob() else { continue };
            let text = self.text(field);
            if text == self.initial[index] {
                continue;
            }
            if text.trim().is_empty() {
                next.sampling_set.clear(knob);
                continue;
            }
            let s = &mut next.sampling;
            match knob {
                Knob::Temperature => s.temperature = number(field, &text)?,
                Knob::TopK => s.top_k = number(field, &text)?,
                Knob::TopP => s.top_p = number(field, &text)?,
                Knob::MinP => s.min_p = number(field, &text)?,
                Knob::RepeatPenalty => s.repeat_penalty = number(field, &text)?,
            }
            next.sampling_set.take(knob, s);
        }
        next.sampling = defaults.resolve(&next.sampling_set, &next.sampling);
        let s = &mut next.sampling;
        let seed = self.text(Field::Seed);
        if seed.trim().eq_ignore_ascii_case("random") || seed.trim().is_empty() {
            next.reply.fixed_seed = false;
        } else {
            s.seed = number(Field::Seed, &seed)?;
            next.reply.fixed_seed = true;
        }
        s.validate()?;
        next.reply.max_tokens = number(Field::MaxTokens, &self.text(Field::MaxTokens))?;
        next.reply.stop = split_stops(&self.text(Field::Stop))?;
        let ctx = self.text(Field::Context);
        next.reply.n_ctx = if ctx.trim().eq_ignore_ascii_case("default") || ctx.trim().is_empty() {
            None
        } else {
            let n: u32 = number(Field::Context, &ctx)?;
            if !(64..=1_048_576).contains(&n) {
                return Err(format!(
                    "{}: {n} is outside 64–1048576",
                    Field::Context.label()
                ));
            }
            Some(n)
        };
        let probabilities = self.text(Field::Probabilities);
        next.reply.probabilities = match probabilities.trim().to_ascii_lowercase().as_str() {
            "on" | "yes" | "true" | "" => true,
            "off" | "no" | "false" => false,
            other => {
                return Err(format!(
                    "{}: '{other}' is not on or off",
                    Field::Probabilities.label()
                ))
            }
        };
        // A grammar comes only from a template; here it can only be dropped.
        let output = self.text(Field::Output);
        if output.trim() != output_text(&current.reply).trim() {
            if output.trim().is_empty() || output.trim().eq_ignore_ascii_case(FREE_OUTPUT) {
                next.reply.constraint = None;
            } else {
                return Err(format!(
                    "{}: '{}' is not '{FREE_OUTPUT}'; a grammar or JSON schema comes from a \
                     template's [sampling] (send the template to the chat)",
                    Field::Output.label(),
                    output.trim()
                ));
            }
        }
        Ok(next)
    }
}

/// "free", or "grammar FILE" / "JSON schema FILE".
fn output_text(reply: &ReplySettings) -> String {
    reply
        .constraint
        .as_ref()
        .map_or_else(|| FREE_OUTPUT.to_string(), |c| c.describe())
}

/// A sampler value as a person writes it: `0.2`, not `0.20000000298`.
fn number_text(value: f64) -> String {
    // Values come from f32 fields; printing them as f32 gives the shortest
    // text that reads back to the same value.
    (value as f32).to_string()
}

fn number<T: std::str::FromStr>(field: Field, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{}: '{}' is not a valid number", field.label(), text.trim()))
}

/// Stop strings as one line: commas separate, backslash escapes.
pub fn join_stops(stops: &[String]) -> String {
    stops
        .iter()
        .map(|s| {
            s.replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace('\n', "\\n")
                .replace('\t', "\\t")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn split_stops(text: &str) -> Result<Vec<String>, String> {
    let mut stops = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => current.push('\n'),
                Some('t') => current.push('\t'),
                Some(',') => current.push(','),
                Some('\\') => current.push('\\'),
                Some(other) => {
                    return Err(format!(
                        "{}: unknown escape '\\{other}' (use \\n, \\t, \\, or \\\\)",
                        Field::Stop.label()
                    ))
                }
                None => return Err(format!("{}: a lone '\\' at the end", Field::Stop.label())),
            },
            ',' => stops.push(std::mem::take(&mut current)),
            '\n' => current.push('\n'),
            c => current.push(c),
        }
    }
    stops.push(current);
    // Spaces around commas are for reading; a stop of only spaces is kept.
    Ok(stops
        .into_iter()
        .map(|s| {
            if s.chars().all(|c| c == ' ') {
                s
            } else {
                s.trim_matches(' ').to_string()
            }
        })
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session that chose all of its sampler settings, on a model
    /// without a recommendation.
    fn current() -> ChatSettings {
        ChatSettings {
            system_prompt: Some("Be brief.".into()),
            sampling: SamplingParams::default(),
            sampling_set: SamplingOverrides::all_of(&SamplingParams::default()),
            reply: ReplySettings::default(),
        }
    }

    fn plain() -> SamplingDefaults {
        SamplingDefaults::default()
    }

    /// SmolLM2 (which recommends temperature 0.2 and top-p 0.9), with the
    /// user's own top-k.
    fn smollm2_with_user_top_k() -> SamplingDefaults {
        SamplingDefaults::for_model(
            std::path::Path::new("SmolLM2-135M-Instruct.Q4_1.gguf"),
            SamplingOverrides {
                top_k: Some(20),
                ..SamplingOverrides::default()
            },
        )
    }

    /// A new chat: the session has chosen nothing yet.
    fn fresh(defaults: &SamplingDefaults) -> ChatSettings {
        let sampling_set = SamplingOverrides::default();
        ChatSettings {
            system_prompt: None,
            sampling: defaults.resolve(&sampling_set, &SamplingParams::default()),
            sampling_set,
            reply: ReplySettings::default(),
        }
    }

    fn set(form: &mut SettingsForm, field: Field, text: &str) {
        let index = form.fields.iter().position(|(f, _)| *f == field).unwrap();
        form.fields[index].1 = area(text);
    }

    #[test]
    fn unchanged_fields_give_back_the_same_settings() {
        let form = SettingsForm::new(&current(), &plain());
        assert_eq!(form.parse(&current(), &plain()).unwrap(), current());
    }

    #[test]
    fn every_field_is_applied() {
        let mut form = SettingsForm::new(&current(), &plain());
        set(
            &mut form,
            Field::SystemPrompt,
            "You are a pirate.\nSpeak like one.",
        );
        set(&mut form, Field::Temperature, "0");
        set(&mut form, Field::TopK, "10");
        set(&mut form, Field::TopP, "0.5");
        set(&mut form, Field::MinP, "0.1");
        set(&mut form, Field::RepeatPenalty, "1.1");
        set(&mut form, Field::Seed, "42");
        set(&mut form, Field::MaxTokens, "64");
        set(&mut form, Field::Stop, "\\n\\n, User:, a\\,b");
        set(&mut form, Field::Context, "1024");
        let next = form.parse(&current(), &plain()).unwrap();
        assert_eq!(
            next.system_prompt.as_deref(),
            Some("You are a pirate.\nSpeak like one.")
        );
        assert_eq!(next.sampling.temperature, 0.0);
        assert_eq!(next.sampling.top_k, 10);
        assert_eq!(next.sampling.top_p, 0.5);
        assert_eq!(next.sampling.min_p, 0.1);
        assert_eq!(next.sampling.repeat_penalty, 1.1);
        assert_eq!(next.sampling.seed, 42);
        assert!(next.reply.fixed_seed);
        assert_eq!(next.reply.max_tokens, 64);
        assert_eq!(next.reply.stop, ["\n\n", "User:", "a,b"]);
        assert_eq!(next.reply.n_ctx, Some(1024));
        // And the form shows them back the same way.
        assert_eq!(
            SettingsForm::new(&next, &plain())
                .parse(&next, &plain())
                .unwrap(),
            next
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        for (field, value, message) in [
            (
                Field::Temperature,
                "hot",
                "Temperature: 'hot' is not a valid number",
            ),
            (Field::TopK, "1.5", "Top-k: '1.5' is not a valid number"),
            (
                Field::Context,
                "10",
                "Context size: 10 is outside 64–1048576",
            ),
            (Field::Stop, "a\\q", "Stop strings: unknown escape '\\q'"),
            (Field::TopP, "2", "top-p"),
        ] {
            let mut form = SettingsForm::new(&current(), &plain());
            set(&mut form, field, value);
            let error = form.parse(&current(), &plain()).unwrap_err();
            assert!(error.contains(message), "{field:?}: {error}");
        }
    }

    #[test]
    fn each_sampler_field_says_where_its_value_comes_from() {
        let defaults = smollm2_with_user_top_k();
        let mut settings = fresh(&defaults);
        settings.sampling_set.min_p = Some(0.1);
        settings.sampling = defaults.resolve(&settings.sampling_set, &settings.sampling);
        let form = SettingsForm::new(&settings, &defaults);
        let label = |field| form.origin_label(field).unwrap();
        assert_eq!(
            label(Field::Temperature),
            "model card (SmolLM2 135M Instruct)"
        );
        assert_eq!(label(Field::TopP), "model card (SmolLM2 135M Instruct)");
        assert_eq!(label(Field::TopK), "your sampling.toml");
        assert_eq!(label(Field::MinP), "this session");
        assert_eq!(label(Field::RepeatPenalty), "llama.cpp default");
        assert_eq!(form.origin_label(Field::Seed), None);
        assert_eq!(
            form.inherited(Field::MinP),
            Some("0.05 of llama.cpp default")
        );
        // The values shown are the ones in use.
        assert_eq!(form.text(Field::Temperature), "0.2");
        assert_eq!(form.text(Field::TopK), "20");
    }

    #[test]
    fn untouched_fields_keep_following_edited_ones_become_the_sessions_emptied_ones_go_back() {
        let defaults = smollm2_with_user_top_k();
        let mut settings = fresh(&defaults);
        settings.sampling_set.min_p = Some(0.1);
        let mut form = SettingsForm::new(&settings, &defaults);
        set(&mut form, Field::Temperature, "0.6");
        set(&mut form, Field::MinP, "");
        assert_eq!(
            form.origin_label(Field::Temperature).unwrap(),
            "this session"
        );
        assert_eq!(
            form.origin_label(Field::MinP).unwrap(),
            "back to 0.05 of llama.cpp default"
        );
        let next = form.parse(&settings, &defaults).unwrap();
        assert_eq!(
            next.sampling_set,
            SamplingOverrides {
                temperature: Some(0.6),
                ..SamplingOverrides::default()
            }
        );
        assert_eq!(next.sampling.temperature, 0.6);
        assert_eq!(next.sampling.top_p, 0.9, "still the model's");
        assert_eq!(next.sampling.top_k, 20, "still the user's");
        assert_eq!(next.sampling.min_p, 0.05, "back to llama.cpp's");

        // Typing the value a field already shows changes nothing.
        let mut form = SettingsForm::new(&next, &defaults);
        set(&mut form, Field::TopP, "0.9");
        assert_eq!(form.parse(&next, &defaults).unwrap(), next);
    }

    #[test]
    fn a_bad_emptied_field_cannot_hide_a_bad_edited_one() {
        let defaults = smollm2_with_user_top_k();
        let settings = fresh(&defaults);
        let mut form = SettingsForm::new(&settings, &defaults);
        set(&mut form, Field::TopP, "");
        set(&mut form, Field::MinP, "7");
        let error = form.parse(&settings, &defaults).unwrap_err();
        assert!(error.starts_with("min-p must be in 0..=1"), "{error}");
    }
}
