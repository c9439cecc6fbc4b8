//! Sampling settings, shared by the CLI, the protocol and (later) saved sessions.

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
