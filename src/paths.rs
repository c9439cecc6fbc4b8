//! Where whet keeps its files. Environment variables override the platform
//! directories so that tests and scripts can use private locations.

use std::path::PathBuf;

use directories::ProjectDirs;

/// Overrides the data directory (models live in `<data>/models`).
pub const DATA_DIR_ENV: &str = "WHET_DATA_DIR";
/// Overrides the directory of `whet.log`.
pub const LOG_DIR_ENV: &str = "WHET_LOG_DIR";
/// Overrides the config directory (user themes, keymap, templates).
pub const CONFIG_DIR_ENV: &str = "WHET_CONFIG_DIR";

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The log file's name inside `log_dir()`.
pub const LOG_FILE: &str = "whet.log";

fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "whet")
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub fn data_dir() -> Result<PathBuf, String> {
    env_path(DATA_DIR_ENV)
        .or_else(|| project_dirs().map(|d| d.data_dir().to_path_buf()))
        .ok_or_else(|| format!("cannot find a home directory; set {DATA_DIR_ENV}"))
}

/// The user's configuration: `themes/*.toml`, `keymap.toml`.
pub fn config_dir() -> Result<PathBuf, String> {
    env_path(CONFIG_DIR_ENV)
        .or_else(|| project_dirs().map(|d| d.config_dir().to_path_buf()))
        .ok_or_else(|| format!("cannot find a home directory; set {CONFIG_DIR_ENV}"))
}

/// The user's templates: `<config>/prompts` (None without a config
/// directory).
pub fn user_templates_dir() -> Option<PathBuf> {
    config_dir().ok().map(|dir| dir.join("prompts"))
}

pub fn models_dir() -> Result<PathBuf, String> {
    Ok(data_dir()?.join("models"))
}

pub fn default_model_path() -> Result<PathBuf, String> {
    Ok(models_dir()?.join(DEFAULT_MODEL_FILE))
}

/// The log directory: explicit override, else beside the data when that is
/// overridden, else the platform's state directory.
pub fn log_dir() -> Result<PathBuf, String> {
    if let Some(dir) = env_path(LOG_DIR_ENV) {
        return Ok(dir);
    }
    if let Some(data) = env_path(DATA_DIR_ENV) {
        return Ok(data.join("logs"));
    }
    let dirs =
        project_dirs().ok_or_else(|| format!("cannot find a home directory; set {LOG_DIR_ENV}"))?;
    Ok(dirs
        .state_dir()
        .map(|d| d.to_path_buf())
        .unwrap_or_else(|| dirs.data_dir().join("logs")))
}

/// Physical cores: llama.cpp's default of 4 threads is several times slower
/// on a 2-core machine than one thread per core.
pub fn default_threads() -> u32 {
    u32::try_from(num_cpus::get_physical().max(1)).unwrap_or(1)
}
