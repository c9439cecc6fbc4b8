//! The real binary reading a user's config directory: `whet config check`
//! reports every problem in the theme and keymap files on stdout with exit
//! status 1 (and says so when there are none), and `whet --theme NAME` with
//! an unknown name fails before it needs a terminal. Every directory whet
//! uses points into a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Dirs {
    root: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Self {
        Dirs {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.root.path().join("config")
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Writes `<config>/<relative>` and returns its path as whet names it.
    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.config().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn whet(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_whet"))
            .args(args)
            .env("WHET_CONFIG_DIR", self.config())
            .env("WHET_DATA_DIR", self.data())
            .env("WHET_LOG_DIR", self.root.path().join("logs"))
            .env_remove("WHET_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn lines(output: &Output) -> Vec<String> {
    stdout(output).lines().map(str::to_string).collect()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("whet exited by a signal")
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn check_without_any_config_files_is_valid() {
    let dirs = Dirs::new();
    // The config directory does not even exist.
    let output = dirs.whet(&["config", "check"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "theme 'dark', the keymap and the sampling defaults are valid\n"
    );
    assert_eq!(stderr(&output), "");
    // An empty one, with an empty themes folder, is the same.
    std::fs::create_dir_all(dirs.config().join("themes")).unwrap();
    let output = dirs.whet(&["config", "check", "--theme", "light"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "theme 'light', the keymap and the sampling defaults are valid\n"
    );
}

#[test]
fn check_names_the_theme_file_and_each_bad_key() {
    let dirs = Dirs::new();
    let file = dirs.write(
        "themes/mine.toml",
        "parent = \"light\"\n[styles]\nblurb = \"red\"\ncode = { fg = \"blurple\" }\nlink = \"green\"\n",
    );
    let output = dirs.whet(&["config", "check", "--theme", "mine"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let file = shown(&file);
    assert_eq!(
        lines(&output),
        [
            format!("{file}: unknown key 'styles.blurb' (ignored)"),
            format!("{file}: styles.code.fg: 'blurple' is not a colour (using the parent's)"),
        ]
    );
    assert_eq!(stderr(&output), "");
    // Another theme does not read that file.
    let output = dirs.whet(&["config", "check", "--theme", "dark"]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
}

#[test]
fn check_reports_sampling_defaults_with_line_and_column() {
    let dirs = Dirs::new();
    let file = dirs.write("sampling.toml", "temperature = 0.3\nrepeat_penalty = 0\n");
    let output = dirs.whet(&["config", "check"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert_eq!(
        lines(&output),
        [format!(
            "{}:2:18: repeat-penalty must be > 0 (1 = off), got 0",
            shown(&file)
        )]
    );
    dirs.write("sampling.toml", "temperature = 0.3\n");
    let output = dirs.whet(&["config", "check"]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
}

#[test]
fn check_reports_a_theme_syntax_error_with_line_and_column() {
    let dirs = Dirs::new();
    let file = dirs.write(
        "themes/broken.toml",
        "[styles]\nborder = \"blue\"\ncode = = 3\n",
    );
    let output = dirs.whet(&["config", "check", "--theme", "broken"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let lines = lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let prefix = format!("{}:3:8: ", shown(&file));
    assert!(
        lines[0].starts_with(&prefix) && lines[0].len() > prefix.len(),
        "{:?} should start with {prefix:?} and say what is wrong",
        lines[0]
    );
}

#[test]
fn check_reports_keymap_problems_with_line_and_column() {
    let dirs = Dirs::new();
    let file = dirs.write(
        "keymap.toml",
        "[global]\nfrobnicate = \"f6\"\nexport = \"ctrl+\"\n\n[messages]\nedit_message = \"x\"\ncopy_message = [\"y\", \"x\"]\n",
    );
    let output = dirs.whet(&["config", "check"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let file = shown(&file);
    assert_eq!(
        lines(&output),
        [
            format!("{file}:2:1: unknown action 'frobnicate'"),
            format!("{file}:3:10: 'ctrl+' is not a key: no key after the modifiers"),
            format!(
                "{file}:7:22: 'x' is bound to both edit_message and copy_message in [messages]; keeping edit_message"
            ),
        ]
    );
}

#[test]
fn check_reports_a_keymap_syntax_error_and_theme_problems_together() {
    let dirs = Dirs::new();
    let theme = dirs.write("themes/mine.toml", "colour = 1\n");
    let keymap = dirs.write("keymap.toml", "[global]\nregenerate = \"f5\"\n[messages\n");
    let output = dirs.whet(&["config", "check", "--theme", "mine"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let lines = lines(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    // The theme's problems first, then the keymap's.
    assert_eq!(
        lines[0],
        format!("{}: unknown key 'colour' (ignored)", shown(&theme))
    );
    assert!(
        lines[1].starts_with(&format!("{}:3:10: ", shown(&keymap))),
        "{:?}",
        lines[1]
    );
}

#[test]
fn check_with_an_unknown_theme_fails_and_lists_the_themes() {
    let dirs = Dirs::new();
    dirs.write("themes/mine.toml", "");
    let output = dirs.whet(&["config", "check", "--theme", "nosuch"]);
    assert_eq!(code(&output), 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: no theme named 'nosuch' (available: dark, high-contrast, light, mine)\n"
    );
}

#[test]
fn every_shipped_theme_file_passes_the_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| path.file_stem().unwrap().to_str().unwrap().to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    let dirs = Dirs::new();
    for name in &names {
        // As compiled into the binary…
        let output = dirs.whet(&["config", "check", "--theme", name]);
        assert_eq!(code(&output), 0, "{name}: {}", stdout(&output));
        assert_eq!(
            stdout(&output),
            format!("theme '{name}', the keymap and the sampling defaults are valid\n")
        );
    }
    // …and the files themselves, copied in as a user's themes.
    for name in &names {
        let text = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        dirs.write(&format!("themes/{name}.toml"), &text);
    }
    for name in &names {
        let output = dirs.whet(&["config", "check", "--theme", name]);
        assert_eq!(code(&output), 0, "{name}: {}", stdout(&output));
    }
}

#[test]
fn an_unknown_theme_fails_before_the_ui_needs_a_terminal() {
    let dirs = Dirs::new();
    // Any existing file will do: the theme is checked before the model loads.
    let model = dirs.root.path().join("model.gguf");
    std::fs::write(&model, b"not a model").unwrap();
    let output = dirs.whet(&["--theme", "nosuch", "--model", model.to_str().unwrap()]);
    assert_eq!(code(&output), 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: no theme named 'nosuch' (available: dark, high-contrast, light)\n"
    );
    // A known theme gets as far as the terminal check.
    let output = dirs.whet(&["--theme", "light", "--model", model.to_str().unwrap()]);
    assert_eq!(code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: the chat UI needs a terminal; use `whet run` in scripts and pipes\n"
    );
}

/// What `whet --theme nosuch` says on a machine without the default model:
/// the model is looked for before the theme, so the bad theme name is not
/// reported until a model is installed.
#[test]
fn an_unknown_theme_is_reported_before_anything_else_is_looked_at() {
    let dirs = Dirs::new();
    // No model is installed and the session name is bad: the theme is what
    // the user hears about first, without fetching a model.
    let output = dirs.whet(&["--theme", "nosuch", "--session", "../bad"]);
    assert_eq!(code(&output), 1);
    assert_eq!(
        stderr(&output),
        "error: no theme named 'nosuch' (available: dark, high-contrast, light)\n"
    );
}
