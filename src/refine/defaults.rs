//! The feedback and refine prompts for a template without its own:
//! `prompts/defaults/refine.toml`, compiled in.

use crate::prompt::Refine;

const TEXT: &str = include_str!("../../prompts/defaults/refine.toml");

pub struct DefaultPrompts {
    pub feedback: String,
    pub refine: String,
    pub stop_phrase: Option<String>,
}

/// The shipped defaults (checked by a test, so they always parse).
pub fn prompts() -> DefaultPrompts {
    let refine: Refine = toml::from_str(TEXT).unwrap_or_default();
    DefaultPrompts {
        feedback: refine.feedback.unwrap_or_default(),
        refine: refine.refine.unwrap_or_default(),
        stop_phrase: refine.stop_phrase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::placeholders;
    use crate::prompt::template::{FEEDBACK_PLACEHOLDERS, REFINE_PLACEHOLDERS};

    #[test]
    fn the_defaults_parse_and_use_only_their_placeholders() {
        let refine: Refine = toml::from_str(TEXT).expect("prompts/defaults/refine.toml parses");
        let defaults = prompts();
        assert_eq!(Some(defaults.feedback.clone()), refine.feedback);
        assert_eq!(defaults.stop_phrase.as_deref(), Some("NO FURTHER CHANGES"));
        for (text, allowed) in [
            (&defaults.feedback, FEEDBACK_PLACEHOLDERS),
            (&defaults.refine, REFINE_PLACEHOLDERS),
        ] {
            let names = placeholders::variables(text);
            assert!(names.iter().any(|n| n == "answer"), "{text}");
            for name in names {
                assert!(allowed.contains(&name.as_str()), "{name} in {text}");
            }
        }
        assert!(placeholders::variables(&defaults.refine).contains(&"feedback".to_string()));
    }
}
