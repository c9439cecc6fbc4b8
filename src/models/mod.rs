//! Model files: the catalog of fetchable models, fetching them, and reading
//! GGUF headers without llama.cpp.

pub mod catalog;
pub mod fetch;
pub mod gguf;

use crate::engine::protocol::ModelInfo;

/// Longest name shown for a model that is not in the catalog.
const NAME_CHARS: usize = 40;

/// A model's name for people: the catalog's name, else the file's
/// `general.name` tidied, else the file name; with the quantization.
pub fn display_name(info: &ModelInfo) -> String {
    let file_name = info
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // llama-server names its model by the file it loaded, path and all.
    let name = info.name.as_deref().map(short_model_id);
    let base = catalog::by_file_name(&file_name)
        .or_else(|| name.and_then(catalog::by_file_name))
        .map(|m| m.name.to_string())
        .or_else(|| name.map(tidy).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| {
            info.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or(file_name)
        });
    match info.quantization.as_deref() {
        Some(quant) if !base.contains(quant) => format!("{base} {quant}"),
        _ => base,
    }
}

/// A server's model id as a person reads it: a file path (llama-server
/// gives the one it loaded) by its file name; other ids ("Qwen/Qwen2.5-7B",
/// "llama3:8b") as they are.
pub fn short_model_id(id: &str) -> &str {
    if id.starts_with('/') {
        id.rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(id)
    } else {
        id
    }
}

/// `general.name` as written by converters ("smollm2_135m-instruct") made
/// readable: separators as spaces, at most `NAME_CHARS` characters.
fn tidy(name: &str) -> String {
    let spaced: String = name
        .chars()
        .map(|c| if c == '_' || c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= NAME_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(NAME_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut + "…"
}

#[cfg(test)]
mod display_name_tests {
    use super::*;
    use crate::engine::protocol::ChatFormat;
    use std::path::PathBuf;

    fn info(path: &str, name: Option<&str>, quant: Option<&str>) -> ModelInfo {
        ModelInfo {
            path: PathBuf::from(path),
            file_size: 0,
            architecture: None,
            name: name.map(str::to_string),
            parameter_count: 0,
            quantization: quant.map(str::to_string),
            n_ctx_train: None,
            n_ctx: 0,
            n_batch: 0,
            threads: 0,
            n_vocab: 0,
            chat_template_present: false,
            chat_format: ChatFormat::Missing,
        }
    }

    #[test]
    fn catalog_models_get_the_catalog_name_others_a_tidy_one() {
        assert_eq!(
            display_name(&info(
                "/m/SmolLM2-135M-Instruct.Q4_1.gguf",
                Some("Smollm2 135M 8k Lc100K Mix1 Ep2"),
                Some("Q4_1")
            )),
            "SmolLM2 135M Instruct Q4_1"
        );
        assert_eq!(
            display_name(&info("/m/x.gguf", Some("my_model\tv2"), Some("Q8_0"))),
            "my model v2 Q8_0"
        );
        assert_eq!(
            display_name(&info("/m/plain-file.gguf", None, None)),
            "plain-file"
        );
        // A remote model llama-server names by its path.
        assert_eq!(
            display_name(&info(
                "http://127.0.0.1:8080/v1",
                Some("/srv/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
                None
            )),
            "SmolLM2 135M Instruct"
        );
        assert_eq!(short_model_id("Qwen/Qwen2.5-7B"), "Qwen/Qwen2.5-7B");
        assert_eq!(short_model_id("/srv/a.gguf"), "a.gguf");
        let long = display_name(&info("/m/x.gguf", Some(&"a".repeat(80)), None));
        assert_eq!(long.chars().count(), NAME_CHARS);
        assert!(long.ends_with('…'));
    }
}
