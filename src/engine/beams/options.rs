//! What a beam search is asked to do, with transformers' option names and
//! meanings, checked before anything runs.

use serde::{Deserialize, Serialize};

/// When the search may stop before `max_new_tokens` (transformers'
/// `early_stopping`, see `GenerationMixin._check_early_stop_heuristic` and
/// `_beam_search_has_unfinished_sequences` in `generation/utils.py`).
///
/// In TOML and JSON it is written as transformers takes it: `true`,
/// `false` or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EarlyStoppingValue", into = "EarlyStoppingValue")]
pub enum EarlyStopping {
    /// `True`: stop as soon as `num_beams` hypotheses have finished.
    True,
    /// `False` (transformers' default): stop when the best running beam,
    /// scored at its current length, can no longer beat the worst kept
    /// hypothesis.
    False,
    /// `"never"`: like `False`, but with `length_penalty > 0` the best
    /// running beam is scored as if it reached `max_new_tokens`, so the
    /// search stops only when no beam can improve (canonical beam search).
    Never,
}

/// `early_stopping` as written: a boolean or a word.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum EarlyStoppingValue {
    Bool(bool),
    Word(String),
}

/// The word for it, as the command line and TOML strings write it.
impl std::str::FromStr for EarlyStopping {
    type Err = String;

    fn from_str(word: &str) -> Result<Self, String> {
        match word {
            "never" => Ok(Self::Never),
            "true" => Ok(Self::True),
            "false" => Ok(Self::False),
            _ => Err(format!(
                "early_stopping must be true, false or \"never\", not {word:?}"
            )),
        }
    }
}

impl TryFrom<EarlyStoppingValue> for EarlyStopping {
    type Error = String;

    fn try_from(value: EarlyStoppingValue) -> Result<Self, String> {
        match value {
            EarlyStoppingValue::Bool(true) => Ok(Self::True),
            EarlyStoppingValue::Bool(false) => Ok(Self::False),
            EarlyStoppingValue::Word(word) => word.parse(),
        }
    }
}

impl From<EarlyStopping> for EarlyStoppingValue {
    fn from(value: EarlyStopping) -> Self {
        match value {
            EarlyStopping::True => Self::Bool(true),
            EarlyStopping::False => Self::Bool(false),
            EarlyStopping::Never => Self::Word("never".into()),
        }
    }
}

/// The most beams a search may run: each is a sequence of the context
/// besides the prompt's, and llama.cpp's batch of one step holds them all.
pub const MAX_BEAMS: usize = 8;

/// A beam search as a user asks for it (the command line, a template's
/// `[sampling]`, the protocol): transformers' option names and defaults;
/// the token limit and the end-of-generation tokens come from elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeamSettings {
    pub num_beams: usize,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub num_return_sequences: usize,
    pub no_repeat_ngram_size: usize,
}

impl Default for BeamSettings {
    fn default() -> Self {
        Self {
            num_beams: 4,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            num_return_sequences: 1,
            no_repeat_ngram_size: 0,
        }
    }
}

impl BeamSettings {
    /// The search's options for `max_new_tokens` and the model's
    /// end-of-generation tokens.
    pub fn options(&self, max_new_tokens: usize, eos: Vec<i32>) -> BeamOptions {
        BeamOptions {
            num_beams: self.num_beams,
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping,
            num_return_sequences: self.num_return_sequences,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            max_new_tokens,
            eos,
        }
    }

    /// What `BeamOptions::validate` checks, plus the beam limit of this
    /// engine; said before a model is involved.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_beams > MAX_BEAMS {
            return Err(format!(
                "num_beams is {}; whet runs at most {MAX_BEAMS} beams",
                self.num_beams
            ));
        }
        self.options(1, Vec::new()).validate()
    }
}

/// transformers' `GenerationConfig` beam options, with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeamOptions {
    pub num_beams: usize,
    /// A hypothesis scores its summed log-probability divided by its
    /// generated length (end-of-generation token included, prompt
    /// excluded) to this power; > 0 favours longer ones.
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    /// The best hypotheses returned, at most `num_beams`.
    pub num_return_sequences: usize,
    /// No n-gram of this size (prompt included) appears twice; 0 is off.
    pub no_repeat_ngram_size: usize,
    pub max_new_tokens: usize,
    /// Tokens that end a hypothesis; empty: only `max_new_tokens` does.
    pub eos: Vec<i32>,
}

impl BeamOptions {
    /// transformers' defaults for `num_beams` beams.
    pub fn new(num_beams: usize, max_new_tokens: usize, eos: Vec<i32>) -> Self {
        Self {
            num_beams,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            num_return_sequences: 1,
            no_repeat_ngram_size: 0,
            max_new_tokens,
            eos,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.num_beams == 0 {
            return Err("num_beams must be at least 1".into());
        }
        if self.num_return_sequences == 0 {
            return Err("num_return_sequences must be at least 1".into());
        }
        if self.num_return_sequences > self.num_beams {
            return Err(format!(
                "num_return_sequences ({}) must not exceed num_beams ({})",
                self.num_return_sequences, self.num_beams
            ));
        }
        if self.max_new_tokens == 0 {
            return Err("max_new_tokens must be at least 1".into());
        }
        if !self.length_penalty.is_finite() {
            return Err(format!(
                "length_penalty must be a finite number, not {}",
                self.length_penalty
            ));
        }
        Ok(())
    }

    /// Candidates kept per step: transformers' `beams_to_keep`,
    /// `max(2, 1 + number of EOS tokens) * num_beams`, so that at least
    /// `num_beams` of them do not end even if every beam's best tokens are
    /// EOS tokens.
    pub fn candidates_per_step(&self) -> usize {
        (1 + self.eos.len()).max(2) * self.num_beams
    }

    pub fn is_eos(&self, token: i32) -> bool {
        self.eos.contains(&token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        let good = BeamOptions::new(4, 10, vec![0]);
        assert!(good.validate().is_ok());
        let cases = [
            (
                BeamOptions {
                    num_beams: 0,
                    ..good.clone()
                },
                "num_beams",
            ),
            (
                BeamOptions {
                    num_return_sequences: 5,
                    ..good.clone()
                },
                "must not exceed",
            ),
            (
                BeamOptions {
                    num_return_sequences: 0,
                    ..good.clone()
                },
                "num_return_sequences",
            ),
            (
                BeamOptions {
                    max_new_tokens: 0,
                    ..good.clone()
                },
                "max_new_tokens",
            ),
            (
                BeamOptions {
                    length_penalty: f32::NAN,
                    ..good.clone()
                },
                "length_penalty",
            ),
        ];
        for (options, reason) in cases {
            let err = options.validate().unwrap_err();
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn early_stopping_is_written_as_transformers_takes_it() {
        for (text, value) in [
            ("true", EarlyStopping::True),
            ("false", EarlyStopping::False),
            ("\"never\"", EarlyStopping::Never),
        ] {
            let parsed: EarlyStopping = serde_json::from_str(text).unwrap();
            assert_eq!(parsed, value);
            assert_eq!(serde_json::to_string(&value).unwrap(), text);
        }
        let err = serde_json::from_str::<EarlyStopping>("\"sometimes\"").unwrap_err();
        assert!(
            err.to_string().contains("true, false or \"never\""),
            "{err}"
        );
    }

    #[test]
    fn the_candidate_pool_grows_with_the_eos_tokens() {
        assert_eq!(BeamOptions::new(4, 10, vec![]).candidates_per_step(), 8);
        assert_eq!(BeamOptions::new(4, 10, vec![0]).candidates_per_step(), 8);
        assert_eq!(
            BeamOptions::new(4, 10, vec![0, 1, 2]).candidates_per_step(),
            16
        );
    }
}
