//! Where a chat's sampler settings come from. Each knob takes the first
//! value it finds in: what the session set, the user's defaults
//! (`<config>/sampling.toml`), the model publisher's recommendation (from
//! the catalog), llama.cpp's defaults. Keeping the layers apart, rather than
//! copying values into the session, lets a chat follow its model when the
//! model changes and shows the user where each value came from.

use std::path::Path;

use crate::engine::sampling::{Knob, SamplingOverrides, SamplingParams};
use crate::models::catalog::{self, Recommendation};
use crate::text_position::line_col;

/// The user's defaults file inside the config directory.
pub const USER_FILE: &str = "sampling.toml";

/// Where one knob's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// llama.cpp's default: nobody chose it.
    Llama,
    /// The model's publisher recommends it.
    Model,
    /// The user's defaults file.
    User,
    /// Set in this session.
    Session,
}

/// The layers under a session's own settings, for one model.
#[derive(Debug, Clone, Default)]
pub struct SamplingDefaults {
    /// The model's name and its publisher's recommendation, if it has one.
    pub model: Option<(String, Recommendation)>,
    pub user: SamplingOverrides,
}

impl SamplingDefaults {
    /// The layers for the model at `model_path`, recognised by its file
    /// name (through symlinks) in the catalog.
    pub fn for_model(model_path: &Path, user: SamplingOverrides) -> Self {
        let model = catalog_model(model_path)
            .and_then(|m| m.recommended_sampling.map(|r| (m.name.to_string(), r)));
        Self { model, user }
    }

    /// `base` (which keeps the seed and what the layers do not cover) with
    /// every knob taken from the first layer that sets it.
    pub fn resolve(&self, session: &SamplingOverrides, base: &SamplingParams) -> SamplingParams {
        let mut params = base.clone();
        let llama = SamplingParams::default();
        SamplingOverrides::all_of(&llama).apply(&mut params);
        if let Some((_, recommendation)) = &self.model {
            recommendation.sampling.apply(&mut params);
        }
        self.user.apply(&mut params);
        session.apply(&mut params);
        params
    }

    /// Which layer `knob`'s value comes from.
    pub fn source(&self, session: &SamplingOverrides, knob: Knob) -> Source {
        if session.is_set(knob) {
            Source::Session
        } else {
            self.inherited_source(knob)
        }
    }

    /// Where `knob` comes from when the session does not set it.
    pub fn inherited_source(&self, knob: Knob) -> Source {
        if self.user.is_set(knob) {
            Source::User
        } else if self
            .model
            .as_ref()
            .is_some_and(|(_, r)| r.sampling.is_set(knob))
        {
            Source::Model
        } else {
            Source::Llama
        }
    }

    /// How a source is shown beside a value: "model card (SmolLM2 135M
    /// Instruct)", "your sampling.toml", …
    pub fn describe(&self, source: Source) -> String {
        match source {
            Source::Llama => "llama.cpp default".to_string(),
            Source::Model => match &self.model {
                Some((name, recommendation)) => format!("{} ({name})", recommendation.source),
                None => "model".to_string(),
            },
            Source::User => format!("your {USER_FILE}"),
            Source::Session => "this session".to_string(),
        }
    }
}

/// The catalog entry of the model file at `path`, also when `path` is a
/// symlink to it under another name.
pub fn catalog_model(path: &Path) -> Option<&'static catalog::CatalogModel> {
    let by_name = |p: &Path| {
        p.file_name()
            .and_then(|n| catalog::by_file_name(&n.to_string_lossy()))
    };
    by_name(path).or_else(|| std::fs::canonicalize(path).ok().and_then(|p| by_name(&p)))
}

/// The user's defaults, with what was wrong in the file (`file:line:col`).
/// A missing file is no defaults; a bad one is ignored as a whole, so a
/// typo never half-applies.
pub fn load_user_file(path: &Path) -> (SamplingOverrides, Vec<String>) {
    match std::fs::read_to_string(path) {
        Ok(text) => match parse_user_file(&text, &path.display().to_string()) {
            Ok(overrides) => (overrides, Vec::new()),
            Err(problem) => (SamplingOverrides::default(), vec![problem]),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (SamplingOverrides::default(), Vec::new())
        }
        Err(e) => (
            SamplingOverrides::default(),
            vec![format!("{}: {e}", path.display())],
        ),
    }
}

/// The file's own shape, with positions for messages about values.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    temperature: Option<toml::Spanned<f32>>,
    top_k: Option<toml::Spanned<i32>>,
    top_p: Option<toml::Spanned<f32>>,
    min_p: Option<toml::Spanned<f32>>,
    repeat_penalty: Option<toml::Spanned<f32>>,
}

/// Parses `sampling.toml`; `file` names it in the message.
pub fn parse_user_file(text: &str, file: &str) -> Result<SamplingOverrides, String> {
    let at = |offset: usize, message: &str| {
        let (line, col) = line_col(text, offset);
        format!("{file}:{line}:{col}: {message}")
    };
    let parsed: UserFile = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => at(span.start, e.message()),
        None => format!("{file}: {}", e.message()),
    })?;
    let overrides = SamplingOverrides {
        temperature: parsed.temperature.as_ref().map(|v| *v.get_ref()),
        top_k: parsed.top_k.as_ref().map(|v| *v.get_ref()),
        top_p: parsed.top_p.as_ref().map(|v| *v.get_ref()),
        min_p: parsed.min_p.as_ref().map(|v| *v.get_ref()),
        repeat_penalty: parsed.repeat_penalty.as_ref().map(|v| *v.get_ref()),
    };
    // Each value alone against llama.cpp's defaults, so the message can
    // point at the one that is out of range.
    let spans = [
        (Knob::Temperature, parsed.temperature.map(|v| v.span())),
        (Knob::TopK, parsed.top_k.map(|v| v.span())),
        (Knob::TopP, parsed.top_p.map(|v| v.span())),
        (Knob::MinP, parsed.min_p.map(|v| v.span())),
        (Knob::RepeatPenalty, parsed.repeat_penalty.map(|v| v.span())),
    ];
    for (knob, span) in spans {
        let Some(span) = span else { continue };
        let mut check = SamplingParams::default();
        overrides.only(knob).apply(&mut check);
        check.validate().map_err(|e| at(span.start, &e))?;
    }
    Ok(overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> SamplingDefaults {
        SamplingDefaults::for_model(
            Path::new("/x/SmolLM2-135M-Instruct.Q4_1.gguf"),
            SamplingOverrides::default(),
        )
    }

    #[test]
    fn a_catalog_model_brings_its_recommendation_and_others_get_llama_cpps() {
        let base = SamplingParams {
            seed: 7,
            ..SamplingParams::default()
        };
        let params = smollm2().resolve(&SamplingOverrides::default(), &base);
        assert_eq!((params.temperature, params.top_p), (0.2, 0.9));
        assert_eq!((params.top_k, params.min_p), (40, 0.05));
        assert_eq!(params.seed, 7, "the seed is the session's");

        let gemma = SamplingDefaults::for_model(
            Path::new("gemma-3-270m-q4_k_m.gguf"),
            SamplingOverrides::default(),
        );
        assert!(gemma.model.is_none());
        let unknown =
            SamplingDefaults::for_model(Path::new("mine.gguf"), SamplingOverrides::default());
        let params = unknown.resolve(&SamplingOverrides::default(), &base);
        assert_eq!(params, base);
        assert_eq!(
            unknown.source(&SamplingOverrides::default(), Knob::Temperature),
            Source::Llama
        );
    }

    #[test]
    fn the_session_beats_the_user_who_beats_the_model() {
        let mut defaults = smollm2();
        defaults.user.temperature = Some(0.7);
        let session = SamplingOverrides {
            top_p: Some(0.5),
            ..SamplingOverrides::default()
        };
        let params = defaults.resolve(&session, &SamplingParams::default());
        assert_eq!((params.temperature, params.top_p), (0.7, 0.5));
        assert_eq!(defaults.source(&session, Knob::Temperature), Source::User);
        assert_eq!(defaults.source(&session, Knob::TopP), Source::Session);
        assert_eq!(defaults.source(&session, Knob::TopK), Source::Llama);
        assert_eq!(defaults.inherited_source(Knob::TopP), Source::Model);
        assert_eq!(
            defaults.describe(Source::Model),
            "model card (SmolLM2 135M Instruct)"
        );
    }

    #[test]
    fn a_symlink_to_a_catalog_file_is_that_model() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
        std::fs::write(&target, b"GGUF").unwrap();
        let link = dir.path().join("default.gguf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(catalog_model(&link).map(|m| m.id), Some("smollm2-135m"));
    }

    #[test]
    fn the_user_file_reads_and_its_mistakes_have_positions() {
        let ok = parse_user_file("temperature = 0.5\ntop_k = 20\n", "s.toml").unwrap();
        assert_eq!(ok.temperature, Some(0.5));
        assert_eq!(ok.top_k, Some(20));
        assert_eq!(ok.top_p, None);
        assert_eq!(
            parse_user_file("temperature = 0.5\ntop_p = 1.5\n", "s.toml").unwrap_err(),
            "s.toml:2:9: top-p must be in 0..=1, got 1.5"
        );
        let unknown = parse_user_file("temprature = 0.5\n", "s.toml").unwrap_err();
        assert!(
            unknown.starts_with("s.toml:1:1: unknown field `temprature`"),
            "{unknown}"
        );
        let wrong_type = parse_user_file("top_k = 1.5\n", "s.toml").unwrap_err();
        assert!(wrong_type.starts_with("s.toml:1:9: "), "{wrong_type}");
    }

    #[test]
    fn a_bad_user_file_applies_nothing_and_a_missing_one_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(USER_FILE);
        assert_eq!(
            load_user_file(&path),
            (SamplingOverrides::default(), vec![])
        );
        std::fs::write(&path, "temperature = 0.3\nmin_p = -1\n").unwrap();
        let (overrides, problems) = load_user_file(&path);
        assert!(overrides.is_empty());
        assert_eq!(
            problems,
            [format!(
                "{}:2:9: min-p must be in 0..=1, got -1",
                path.display()
            )]
        );
    }
}
