//! Sampling settings, shared by the CLI, the protocol and saved sessions.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 selects greedy decoding (deterministic).
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: i32,
    /// 1.0 disables top-p.
    pub top_p: f32,
    /// 0.0 disables min-p.
    pub min_p: f32,
    /// 1.0 disables the repetition penalty.
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repeat_last_n: i32,
    pub seed: u32,
}

impl Default for SamplingParams {
    /// llama.cpp's own defaults, so results compare with its tools.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// A seed that differs from run to run, for when the user gave none.
    pub fn fresh_seed() -> u32 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0)
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// Rejects values llama.cpp would misbehave on, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        let finite = [
            ("temperature", self.temperature),
            ("top-p", self.top_p),
            ("min-p", self.min_p),
            ("repeat-penalty", self.repeat_penalty),
        ];
        for (name, value) in finite {
            if !value.is_finite() {
                return Err(format!("{name} must be a finite number, got {value}"));
            }
        }
        if self.temperature < 0.0 {
            return Err(format!(
                "temperature must be >= 0 (0 = greedy), got {}",
                self.temperature
            ));
        }
        if self.top_k < 0 {
            return Err(format!("top-k must be >= 0 (0 = off), got {}", self.top_k));
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return Err(format!("top-p must be in 0..=1, got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min-p must be in 0..=1, got {}", self.min_p));
        }
        if self.repeat_penalty <= 0.0 {
            return Err(format!(
                "repeat-penalty must be > 0 (1 = off), got {}",
                self.repeat_penalty
            ));
        }
        if self.repeat_last_n < -1 {
            return Err(format!(
                "repeat-last-n must be >= -1 (-1 = whole context), got {}",
                self.repeat_last_n
            ));
        }
        Ok(())
    }
}

/// One of the sampler settings a chat can take from several places (the
/// model's publisher, the user's defaults, the session); the seed is the
/// session's alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    Temperature,
    TopK,
    TopP,
    MinP,
    RepeatPenalty,
}

impl Knob {
    pub const ALL: [Knob; 5] = [
        Knob::Temperature,
        Knob::TopK,
        Knob::TopP,
        Knob::MinP,
        Knob::RepeatPenalty,
    ];

    /// The key in TOML files and sessions.
    pub fn key(self) -> &'static str {
        match self {
            Knob::Temperature => "temperature",
            Knob::TopK => "top_k",
            Knob::TopP => "top_p",
            Knob::MinP => "min_p",
            Knob::RepeatPenalty => "repeat_penalty",
        }
    }

    /// The value in `params`, as a number for display and comparison.
    pub fn value(self, params: &SamplingParams) -> f64 {
        match self {
            Knob::Temperature => f64::from(params.temperature),
            Knob::TopK => f64::from(params.top_k),
            Knob::TopP => f64::from(params.top_p),
            Knob::MinP => f64::from(params.min_p),
            Knob::RepeatPenalty => f64::from(params.repeat_penalty),
        }
    }
}

/// Some sampler settings, each one left out taking its value from
/// elsewhere: a model's recommendation, the user's defaults, what a session
/// set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
}

impl SamplingOverrides {
    pub fn is_empty(&self) -> bool {
        Knob::ALL.iter().all(|&k| !self.is_set(k))
    }

    /// Every knob set to its value in `params`.
    pub fn all_of(params: &SamplingParams) -> Self {
        Self {
            temperature: Some(params.temperature),
            top_k: Some(params.top_k),
            top_p: Some(params.top_p),
            min_p: Some(params.min_p),
            repeat_penalty: Some(params.repeat_penalty),
        }
    }

    pub fn is_set(&self, knob: Knob) -> bool {
        match knob {
            Knob::Temperature => self.temperature.is_some(),
            Knob::TopK => self.top_k.is_some(),
            Knob::TopP => self.top_p.is_some(),
            Knob::MinP => self.min_p.is_some(),
            Knob::RepeatPenalty => self.repeat_penalty.is_some(),
        }
    }

    pub fn clear(&mut self, knob: Knob) {
        match knob {
            Knob::Temperature => self.temperature = None,
            Knob::TopK => self.top_k = None,
            Knob::TopP => self.top_p = None,
            Knob::MinP => self.min_p = None,
            Knob::RepeatPenalty => self.repeat_penalty = None,
        }
    }

    /// Sets `knob` to its value in `params`.
    pub fn take(&mut self, knob: Knob, params: &SamplingParams) {
        match knob {
            Knob::Temperature => self.temperature = Some(params.temperature),
            Knob::TopK => self.top_k = Some(params.top_k),
            Knob::TopP => self.top_p = Some(params.top_p),
            Knob::MinP => self.min_p = Some(params.min_p),
            Knob::RepeatPenalty => self.repeat_penalty = Some(params.repeat_penalty),
        }
    }

    /// Just `knob`, as set here (or not).
    pub fn only(&self, knob: Knob) -> Self {
        let mut one = Self::default();
        match knob {
            Knob::Temperature => one.temperature = self.temperature,
            Knob::TopK => one.top_k = self.top_k,
            Knob::TopP => one.top_p = self.top_p,
            Knob::MinP => one.min_p = self.min_p,
            Knob::RepeatPenalty => one.repeat_penalty = self.repeat_penalty,
        }
        one
    }

    /// Writes the knobs that are set into `params`.
    pub fn apply(&self, params: &mut SamplingParams) {
        if let Some(v) = self.temperature {
            params.temperature = v;
        }
        if let Some(v) = self.top_k {
            params.top_k = v;
        }
        if let Some(v) = self.top_p {
            params.top_p = v;
        }
        if let Some(v) = self.min_p {
            params.min_p = v;
        }
        if let Some(v) = self.repeat_penalty {
            params.repeat_penalty = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_greedy_is_greedy() {
        assert!(SamplingParams::default().validate().is_ok());
        assert!(SamplingParams::greedy().is_greedy());
        assert!(!SamplingParams::default().is_greedy());
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let bad = SamplingParams {
            top_p: 1.5,
            ..SamplingParams::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "top-p must be in 0..=1, got 1.5"
        );
        let nan = SamplingParams {
            temperature: f32::NAN,
            ..SamplingParams::default()
        };
        assert!(nan.validate().unwrap_err().starts_with("temperature"));
    }
}
