//! The settings panel: the session's system prompt and how replies are
//! generated, edited as text fields and applied together (or not at all).

use ratatui_textarea::TextArea;

use crate::engine::SamplingParams;
use crate::store::session::ReplySettings;

/// What the panel edits, as the session holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatSettings {
    pub system_prompt: Option<String>,
    pub sampling: SamplingParams,
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
}

impl Field {
    pub const ALL: [Field; 10] = [
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
        }
    }
}

pub struct SettingsForm {
    pub fields: Vec<(Field, TextArea<'static>)>,
    pub focused: usize,
    /// The message of the last failed apply, naming the field.
    pub error: Option<String>,
}

fn area(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut area = TextArea::new(lines);
    area.move_cursor(ratatui_textarea::CursorMove::Bottom);
    area.move_cursor(ratatui_textarea::CursorMove::End);
    area
}

impl SettingsForm {
    pub fn new(settings: &ChatSettings) -> Self {
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
        };
        Self {
            fields: Field::ALL.iter().map(|&f| (f, area(&value(f)))).collect(),
            focused: 0,
            error: None,
        }
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
    /// An error names the field and the value.
    pub fn parse(&self, current: &ChatSettings) -> Result<ChatSettings, String> {
        let mut next = current.clone();
        let system = self.text(Field::SystemPrompt);
        next.system_prompt = (!system.trim().is_empty()).then_some(system);
        let s = &mut next.sampling;
        s.temperature = number(Field::Temperature, &self.text(Field::Temperature))?;
        s.top_k = number(Field::TopK, &self.text(Field::TopK))?;
        s.top_p = number(Field::TopP, &self.text(Field::TopP))?;
        s.min_p = number(Field::MinP, &self.text(Field::MinP))?;
        s.repeat_penalty = number(Field::RepeatPenalty, &self.text(Field::RepeatPenalty))?;
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
        Ok(next)
    }
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

    fn current() -> ChatSettings {
        ChatSettings {
            system_prompt: Some("Be brief.".into()),
            sampling: SamplingParams::default(),
            reply: ReplySettings::default(),
        }
    }

    fn set(form: &mut SettingsForm, field: Field, text: &str) {
        let index = form.fields.iter().position(|(f, _)| *f == field).unwrap();
        form.fields[index].1 = area(text);
    }

    #[test]
    fn unchanged_fields_give_back_the_same_settings() {
        let form = SettingsForm::new(&current());
        assert_eq!(form.parse(&current()).unwrap(), current());
    }

    #[test]
    fn every_field_is_applied() {
        let mut form = SettingsForm::new(&current());
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
        let next = form.parse(&current()).unwrap();
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
        assert_eq!(SettingsForm::new(&next).parse(&next).unwrap(), next);
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
            let mut form = SettingsForm::new(&current());
            set(&mut form, field, value);
            let error = form.parse(&current()).unwrap_err();
            assert!(error.contains(message), "{field:?}: {error}");
        }
    }
}
