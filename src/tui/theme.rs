//! Themes: styles by meaning (`user_message`, `border_focused`,
//! `status_error`…), read from TOML files with inheritance.
//!
//! The shipped themes (`themes/*.toml` in the repository: dark, light,
//! high-contrast) are compiled into the binary. A user's themes live in a
//! directory of their own (`<config dir>/themes/NAME.toml`): a user file named
//! like a shipped theme is layered over it, any other name adds a theme.
//!
//! ```toml
//! parent = "dark"     # optional; a theme without parent inherits from the built-in base
//! [styles]
//! user_message = "green"                                  # shorthand: foreground colour
//! code_block = { fg = "#d0d0d0", bg = "#1c1c1c" }
//! heading = { fg = "cyan", modifiers = ["bold", "underlined"] }
//! text = {}                                               # the terminal's own colours
//! ```
//!
//! - Each key under `[styles]` is a [`Slot`]'s name. A slot the file leaves
//!   out comes from the parent; a slot it sets is replaced as a whole (a field
//!   left out of the table is unset, not inherited).
//! - Colours: ratatui's names (`black`, `red`, …, `darkgray`, `lightred`, …,
//!   `white`, `reset`), `"#rrggbb"`, or a 256-palette index (`123` or
//!   `"123"`). Modifiers: `bold`, `dim`, `italic`, `underlined`, `reversed`,
//!   `crossed_out`.
//! - `parent = "x"` is the user's theme `x` if there is one, else the shipped
//!   `x`; in a user file named like a shipped theme, naming itself means the
//!   shipped one. Without `parent`, a user file named like a shipped theme
//!   inherits from it, any other file from the built-in base
//!   ([`Theme::fallback`], which looks like the shipped dark theme). Every
//!   chain ends in the base, so every slot has a style.
//!
//! Mistakes in a file never stop loading; each gives one warning naming the
//! file (its path, or `themes/NAME.toml` for a shipped theme) and the key:
//!
//! - `FILE:LINE:COL: MESSAGE` — not valid TOML; the whole file is skipped
//!   (the theme falls back to its implicit parent);
//! - `FILE: unknown key 'styles.blurb' (ignored)`;
//! - `FILE: styles.code.fg: 'blurple' is not a colour (using the parent's)`;
//! - `FILE: styles.code.modifiers: 'blink' is not a modifier (using the parent's)`;
//! - `FILE: styles.code: expected a colour or a table (using the parent's)`;
//! - `FILE: styles.code.modifiers: expected a list of modifiers (using the parent's)`;
//! - `FILE: styles: expected a table (ignored)`;
//! - `FILE: parent: no theme named 'x' (ignored)`;
//! - `FILE: parent: expected a theme name (ignored)`;
//! - `FILE: ERROR` — a user file that cannot be read (skipped).
//!
//! [`load`] fails only when the theme does not exist or its parents form a
//! cycle.

use crate::text_position::line_col;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use ratatui::style::{Color, Modifier, Style};
use toml::{Table, Value};

/// The theme used when the configuration names none.
pub const DEFAULT_THEME: &str = "dark";

/// The shipped themes, by name, sorted.
const SHIPPED: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("light", include_str!("../../themes/light.toml")),
];

/// A meaning that has a style. The names in theme files are [`Slot::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Ordinary text; a view may fill its background with it.
    Text,
    /// Hints, secondary information, a streaming reply's "…".
    Muted,
    /// Titles of panes and dialogs.
    Title,
    /// The user's messages (at least their header).
    UserMessage,
    /// The model's messages.
    AssistantMessage,
    /// System prompts.
    SystemMessage,
    /// The selected message (patched over its text, e.g. a background).
    Selection,
    /// Code's base look: what is code-like without a more specific slot, such
    /// as a fenced block's fences and language tag.
    Code,
    /// The text of a fenced code block.
    CodeBlock,
    /// `inline code` in a paragraph.
    InlineCode,
    /// Markdown headings.
    Heading,
    /// *Emphasis* (patched over the surrounding text).
    Emphasis,
    /// **Strong** text (patched over the surrounding text).
    Strong,
    /// Links.
    Link,
    /// Block quotes.
    Quote,
    /// List bullets and numbers.
    ListMarker,
    /// Borders of panes without focus.
    Border,
    /// The border of the pane with focus.
    BorderFocused,
    /// The status line's base.
    StatusBar,
    /// A good state (engine ready).
    StatusOk,
    /// Work in progress (loading, generating).
    StatusBusy,
    /// Something to notice (a stopped reply, a notice).
    StatusWarning,
    /// Something failed.
    StatusError,
    /// Keys in help texts and hints.
    HelpKey,
    /// Text a diff adds.
    DiffInsert,
    /// Text a diff removes.
    DiffDelete,
    /// `{{var}}` placeholders in prompts.
    Variable,
    /// The heat scale of a results matrix, from the lowest fifth of a
    /// score's range to the highest (usually a background).
    HeatWorst,
    HeatBad,
    HeatMiddle,
    HeatGood,
    HeatBest,
    /// The lens: tokens the model gave less than 25 % (always underlined
    /// as well, so they show without colour), 25–60 %, and more.
    ConfidenceLow,
    ConfidenceMedium,
    ConfidenceHigh,
}

impl Slot {
    /// Every slot, in declaration order.
    pub const ALL: &'static [Slot] = &[
        Slot::Text,
        Slot::Muted,
        Slot::Title,
        Slot::UserMessage,
        Slot::AssistantMessage,
        Slot::SystemMessage,
        Slot::Selection,
        Slot::Code,
        Slot::CodeBlock,
        Slot::InlineCode,
        Slot::Heading,
        Slot::Emphasis,
        Slot::Strong,
        Slot::Link,
        Slot::Quote,
        Slot::ListMarker,
        Slot::Border,
        Slot::BorderFocused,
        Slot::StatusBar,
        Slot::StatusOk,
        Slot::StatusBusy,
        Slot::StatusWarning,
        Slot::StatusError,
        Slot::HelpKey,
        Slot::DiffInsert,
        Slot::DiffDelete,
        Slot::Variable,
        Slot::HeatWorst,
        Slot::HeatBad,
        Slot::HeatMiddle,
        Slot::HeatGood,
        Slot::HeatBest,
        Slot::ConfidenceLow,
        Slot::ConfidenceMedium,
        Slot::ConfidenceHigh,
    ];

    /// The name in theme files (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            Slot::Text => "text",
            Slot::Muted => "muted",
            Slot::Title => "title",
            Slot::UserMessage => "user_message",
            Slot::AssistantMessage => "assistant_message",
            Slot::SystemMessage => "system_message",
            Slot::Selection => "selection",
            Slot::Code => "code",
            Slot::CodeBlock => "code_block",
            Slot::InlineCode => "inline_code",
            Slot::Heading => "heading",
            Slot::Emphasis => "emphasis",
            Slot::Strong => "strong",
            Slot::Link => "link",
            Slot::Quote => "quote",
            Slot::ListMarker => "list_marker",
            Slot::Border => "border",
            Slot::BorderFocused => "border_focused",
            Slot::StatusBar => "status_bar",
            Slot::StatusOk => "status_ok",
            Slot::StatusBusy => "status_busy",
            Slot::StatusWarning => "status_warning",
            Slot::StatusError => "status_error",
            Slot::HelpKey => "help_key",
            Slot::DiffInsert => "diff_insert",
            Slot::DiffDelete => "diff_delete",
            Slot::Variable => "variable",
            Slot::HeatWorst => "heat_worst",
            Slot::HeatBad => "heat_bad",
            Slot::HeatMiddle => "heat_middle",
            Slot::HeatGood => "heat_good",
            Slot::HeatBest => "heat_best",
            Slot::ConfidenceLow => "confidence_low",
            Slot::ConfidenceMedium => "confidence_medium",
            Slot::ConfidenceHigh => "confidence_high",
        }
    }

    pub fn from_name(name: &str) -> Option<Slot> {
        Slot::ALL.iter().copied().find(|slot| slot.name() == name)
    }

    /// The heat slot of a value placed on its scale (0 worst, 1 best).
    pub fn heat(position: f64) -> Slot {
        const SCALE: [Slot; 5] = [
            Slot::HeatWorst,
            Slot::HeatBad,
            Slot::HeatMiddle,
            Slot::HeatGood,
            Slot::HeatBest,
        ];
        let index = (position.clamp(0.0, 1.0) * 5.0).floor() as usize;
        SCALE[index.min(4)]
    }
}

const SLOTS: usize = Slot::ALL.len();

/// A style for every slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    /// Indexed by `Slot as usize` (`Slot::ALL` is in declaration order).
    styles: [Style; SLOTS],
}

impl Theme {
    pub fn style(&self, slot: Slot) -> Style {
        self.styles[slot as usize]
    }

    /// The built-in base every theme chain ends in (so every slot always has
    /// a value); equals the shipped dark theme's look.
    pub fn fallback() -> Theme {
        static BASE: OnceLock<Theme> = OnceLock::new();
        BASE.get_or_init(|| {
            let mut theme = Theme {
                name: DEFAULT_THEME.to_string(),
                styles: [Style::new(); SLOTS],
            };
            let (name, text) = SHIPPED[0];
            debug_assert_eq!(name, DEFAULT_THEME);
            let label = shipped_label(name);
            // The shipped files are tested to give no warnings.
            let mut ignored = Vec::new();
            if let Some(table) = parse(text, &label, &mut ignored) {
                apply(&mut theme, &table, &label, &mut ignored);
            }
            theme
        })
        .clone()
    }
}

impl Theme {
    /// No colours and no modifiers in any slot: what `NO_COLOR` asks for.
    /// Views add what must show without colour (a selection marker, the
    /// lens's underline) themselves.
    pub fn plain() -> Theme {
        Theme {
            name: "plain".to_string(),
            styles: [Style::new(); SLOTS],
        }
    }
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::fallback()
    }
}

/// A theme and what was wrong with its files.
#[derive(Debug, Clone)]
pub struct LoadedTheme {
    pub theme: Theme,
    /// One line each, `FILE: …` (see the module documentation).
    pub warnings: Vec<String>,
}

/// Names of all themes: shipped plus user (`<user_dir>/*.toml`), sorted,
/// deduplicated.
pub fn available(user_dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
    names.extend(user_themes(user_dir).into_keys());
    names.sort();
    names.dedup();
    names
}

/// Loads theme `name`. Err only when no theme of that name exists (message
/// lists the available ones) or the parent chain has a cycle.
pub fn load(name: &str, user_dir: Option<&Path>) -> Result<LoadedTheme, String> {
    let users = user_themes(user_dir);
    let Some(top) = resolve(name, &users) else {
        return Err(format!(
            "no theme named '{name}' (available: {})",
            available(user_dir).join(", ")
        ));
    };
    // The chain from the theme up to (not including) the base.
    let mut chain: Vec<(Layer, Option<Table>, Vec<String>)> = Vec::new();
    let mut next = Some(top);
    while let Some(layer) = next {
        if chain.iter().any(|(seen, _, _)| *seen == layer) {
            let mut names: Vec<&str> = chain.iter().map(|(l, _, _)| l.name()).collect();
            names.push(layer.name());
            return Err(format!(
                "theme '{name}': its parents form a cycle ({})",
                names.join(" -> ")
            ));
        }
        let mut warnings = Vec::new();
        let table = layer.read(&mut warnings);
        next = layer.parent(table.as_ref(), &users, &mut warnings);
        chain.push((layer, table, warnings));
    }
    let mut theme = Theme::fallback();
    let mut warnings = Vec::new();
    for (layer, table, layer_warnings) in chain.iter().rev() {
        warnings.extend_from_slice(layer_warnings);
        if let Some(table) = table {
            apply(&mut theme, table, &layer.label(), &mut warnings);
        }
    }
    theme.name = name.to_string();
    Ok(LoadedTheme { theme, warnings })
}

/// One file of a theme chain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layer {
    Shipped(&'static str, &'static str),
    User(String, PathBuf),
}

impl Layer {
    fn name(&self) -> &str {
        match self {
            Layer::Shipped(name, _) => name,
            Layer::User(name, _) => name,
        }
    }

    /// How warnings name the file.
    fn label(&self) -> String {
        match self {
            Layer::Shipped(name, _) => shipped_label(name),
            Layer::User(_, path) => path.display().to_string(),
        }
    }

    /// The file's table; None when it cannot be read or parsed (warned).
    fn read(&self, warnings: &mut Vec<String>) -> Option<Table> {
        match self {
            Layer::Shipped(_, text) => parse(text, &self.label(), warnings),
            Layer::User(_, path) => match std::fs::read_to_string(path) {
                Ok(text) => parse(&text, &self.label(), warnings),
                Err(e) => {
                    warnings.push(format!("{}: {e}", self.label()));
                    None
                }
            },
        }
    }

    /// The layer below this one; None for the built-in base.
    fn parent(
        &self,
        table: Option<&Table>,
        users: &BTreeMap<String, PathBuf>,
        warnings: &mut Vec<String>,
    ) -> Option<Layer> {
        let implicit = match self {
            Layer::User(name, _) => shipped(name),
            Layer::Shipped(..) => None,
        };
        let Some(table) = table else {
            // Unreadable or not TOML: skipped, so its namesake or the base.
            return implicit;
        };
        let label = self.label();
        match table.get("parent") {
            None => implicit,
            Some(Value::String(parent)) => {
                if let Layer::User(name, _) = self {
                    if parent == name && implicit.is_some() {
                        return implicit;
                    }
                }
                match resolve(parent, users) {
                    Some(layer) => Some(layer),
                    None => {
                        warnings.push(format!(
                            "{label}: parent: no theme named '{parent}' (ignored)"
                        ));
                        implicit
                    }
                }
            }
            Some(_) => {
                warnings.push(format!("{label}: parent: expected a theme name (ignored)"));
                implicit
            }
        }
    }
}

fn shipped_label(name: &str) -> String {
    format!("themes/{name}.toml")
}

fn shipped(name: &str) -> Option<Layer> {
    SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(n, text)| Layer::Shipped(n, text))
}

/// A theme by name: the user's file, else the shipped one.
fn resolve(name: &str, users: &BTreeMap<String, PathBuf>) -> Option<Layer> {
    match users.get(name) {
        Some(path) => Some(Layer::User(name.to_string(), path.clone())),
        None => shipped(name),
    }
}

/// The user's theme files by name; none when the directory is missing or
/// unreadable.
fn user_themes(user_dir: Option<&Path>) -> BTreeMap<String, PathBuf> {
    let mut themes = BTreeMap::new();
    let Some(entries) = user_dir.and_then(|dir| std::fs::read_dir(dir).ok()) else {
        return themes;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "toml") || !path.is_file() {
            continue;
        }
        if let Some(name) = path.file_stem().and_then(|s| s.to_str()) {
            if !name.is_empty() {
                themes.insert(name.to_string(), path.clone());
            }
        }
    }
    themes
}

/// The file as a table, or a `FILE:LINE:COL: message` warning.
fn parse(text: &str, label: &str, warnings: &mut Vec<String>) -> Option<Table> {
    match Table::from_str(text) {
        Ok(table) => Some(table),
        Err(e) => {
            let message = e.message().trim_end();
            warnings.push(match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("{label}:{line}:{col}: {message}")
                }
                None => format!("{label}: {message}"),
            });
            None
        }
    }
}

/// Lays a theme file over `theme`.
fn apply(theme: &mut Theme, table: &Table, label: &str, warnings: &mut Vec<String>) {
    for (key, value) in table {
        match key.as_str() {
            "parent" => {}
            "styles" => match value {
                Value::Table(styles) => {
                    for (name, value) in styles {
                        let path = format!("styles.{name}");
                        match Slot::from_name(name) {
                            Some(slot) => {
                                let parent = theme.styles[slot as usize];
                                theme.styles[slot as usize] =
                                    entry(parent, value, &path, label, warnings);
                            }
                            None => {
                                warnings.push(format!("{label}: unknown key '{path}' (ignored)"))
                            }
                        }
                    }
                }
                _ => warnings.push(format!("{label}: styles: expected a table (ignored)")),
            },
            _ => warnings.push(format!("{label}: unknown key '{key}' (ignored)")),
        }
    }
}

/// One slot's style from its entry; what is wrong in it keeps the parent's.
fn entry(
    parent: Style,
    value: &Value,
    path: &str,
    label: &str,
    warnings: &mut Vec<String>,
) -> Style {
    match value {
        Value::String(_) | Value::Integer(_) => match colour(value) {
            Ok(colour) => Style::new().fg(colour),
            Err(shown) => {
                warnings.push(format!(
                    "{label}: {path}: '{shown}' is not a colour (using the parent's)"
                ));
                parent
            }
        },
        Value::Table(fields) => {
            let mut style = Style::new();
            for (key, value) in fields {
                let path = format!("{path}.{key}");
                let bad_colour = |shown: String| {
                    format!("{label}: {path}: '{shown}' is not a colour (using the parent's)")
                };
                match key.as_str() {
                    "fg" => {
                        style.fg = colour(value).map(Some).unwrap_or_else(|shown| {
                            warnings.push(bad_colour(shown));
                            parent.fg
                        })
                    }
                    "bg" => {
                        style.bg = colour(value).map(Some).unwrap_or_else(|shown| {
                            warnings.push(bad_colour(shown));
                            parent.bg
                        })
                    }
                    "modifiers" => {
                        style.add_modifier = modifiers(value).unwrap_or_else(|problem| {
                            warnings
                                .push(format!("{label}: {path}: {problem} (using the parent's)"));
                            parent.add_modifier
                        })
                    }
                    _ => warnings.push(format!("{label}: unknown key '{path}' (ignored)")),
                }
            }
            style
        }
        _ => {
            warnings.push(format!(
                "{label}: {path}: expected a colour or a table (using the parent's)"
            ));
            parent
        }
    }
}

/// A colour, or how to show the value that is not one.
fn colour(value: &Value) -> Result<Color, String> {
    match value {
        Value::String(s) => Color::from_str(s.trim()).map_err(|_| s.clone()),
        Value::Integer(i) => u8::try_from(*i)
            .map(Color::Indexed)
            .map_err(|_| i.to_string()),
        other => Err(other.to_string()),
    }
}

/// A list of modifier names (or a single one), or what is wrong with it.
fn modifiers(value: &Value) -> Result<Modifier, String> {
    let names: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::String(_) => vec![value],
        _ => return Err("expected a list of modifiers".to_string()),
    };
    let mut all = Modifier::empty();
    for name in names {
        let modifier = match name.as_str() {
            Some("bold") => Modifier::BOLD,
            Some("dim") => Modifier::DIM,
            Some("italic") => Modifier::ITALIC,
            Some("underlined") => Modifier::UNDERLINED,
            Some("reversed") => Modifier::REVERSED,
            Some("crossed_out") => Modifier::CROSSED_OUT,
            Some(other) => return Err(format!("'{other}' is not a modifier")),
            None => return Err(format!("'{name}' is not a modifier")),
        };
        all |= modifier;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn label(dir: &tempfile::TempDir, file: &str) -> String {
        dir.path().join(file).display().to_string()
    }

    fn fg(colour: Color) -> Style {
        Style::new().fg(colour)
    }

    #[test]
    fn slot_names_round_trip_and_all_is_in_declaration_order() {
        for (i, slot) in Slot::ALL.iter().enumerate() {
            assert_eq!(*slot as usize, i);
            assert_eq!(Slot::from_name(slot.name()), Some(*slot));
        }
        assert_eq!(Slot::UserMessage.name(), "user_message");
        assert_eq!(Slot::BorderFocused.name(), "border_focused");
        assert_eq!(Slot::StatusError.name(), "status_error");
        assert_eq!(Slot::CodeBlock.name(), "code_block");
        assert_eq!(Slot::from_name("UserMessage"), None);
    }

    #[test]
    fn shipped_themes_parse_without_warnings_and_set_every_slot() {
        assert_eq!(available(None), ["dark", "high-contrast", "light"]);
        for (name, text) in SHIPPED {
            let loaded = load(name, None).unwrap();
            assert_eq!(loaded.warnings, Vec::<String>::new(), "{name}");
            assert_eq!(loaded.theme.name, *name);
            // Every slot explicitly, so none depends on the base.
            let table = Table::from_str(text).unwrap();
            let styles = table["styles"].as_table().unwrap();
            for slot in Slot::ALL {
                assert!(styles.contains_key(slot.name()), "{name}: {}", slot.name());
            }
        }
    }

    #[test]
    fn fallback_is_the_dark_theme() {
        let dark = load(DEFAULT_THEME, None).unwrap().theme;
        assert_eq!(Theme::fallback(), dark);
        assert_eq!(Theme::default(), dark);
        assert_eq!(dark.style(Slot::BorderFocused), fg(Color::Cyan));
        assert_eq!(
            dark.style(Slot::UserMessage),
            fg(Color::Green).add_modifier(Modifier::BOLD)
        );
        assert_eq!(dark.style(Slot::Text), Style::new());
    }

    #[test]
    fn roles_are_distinct_and_light_avoids_light_foregrounds() {
        for (name, _) in SHIPPED {
            let theme = load(name, None).unwrap().theme;
            let roles = [
                theme.style(Slot::UserMessage),
                theme.style(Slot::AssistantMessage),
                theme.style(Slot::SystemMessage),
            ];
            assert_ne!(roles[0], roles[1], "{name}");
            assert_ne!(roles[1], roles[2], "{name}");
            assert_ne!(roles[0], roles[2], "{name}");
            assert_ne!(theme.style(Slot::Selection), Style::new(), "{name}");
        }
        let light = load("light", None).unwrap().theme;
        for slot in Slot::ALL {
            let fg = light.style(*slot).fg;
            assert!(
                !matches!(fg, Some(Color::White | Color::Gray | Color::Reset)),
                "light {}: {fg:?}",
                slot.name()
            );
        }
        let hc = load("high-contrast", None).unwrap().theme;
        assert!(hc
            .style(Slot::Selection)
            .add_modifier
            .contains(Modifier::REVERSED));
        assert!(hc.style(Slot::Border).add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn colours_named_hex_and_indexed() {
        let dir = user_dir(&[(
            "c.toml",
            r##"[styles]
text = "lightred"
muted = "#1a2B3c"
title = 123
code = "45"
code_block = { fg = 0, bg = "Dark Gray" }
link = { fg = "reset", modifiers = ["bold", "dim", "italic", "underlined", "reversed", "crossed_out"] }
heading = { modifiers = "italic" }
quote = {}
"##,
        )]);
        let loaded = load("c", Some(dir.path())).unwrap();
        assert_eq!(loaded.warnings, Vec::<String>::new());
        let t = &loaded.theme;
        assert_eq!(t.style(Slot::Text), fg(Color::LightRed));
        assert_eq!(t.style(Slot::Muted), fg(Color::Rgb(0x1a, 0x2b, 0x3c)));
        assert_eq!(t.style(Slot::Title), fg(Color::Indexed(123)));
        assert_eq!(t.style(Slot::Code), fg(Color::Indexed(45)));
        assert_eq!(
            t.style(Slot::CodeBlock),
            fg(Color::Indexed(0)).bg(Color::DarkGray)
        );
        assert_eq!(
            t.style(Slot::Link),
            fg(Color::Reset).add_modifier(
                Modifier::BOLD
                    | Modifier::DIM
                    | Modifier::ITALIC
                    | Modifier::UNDERLINED
                    | Modifier::REVERSED
                    | Modifier::CROSSED_OUT
            )
        );
        assert_eq!(
            t.style(Slot::Heading),
            Style::new().add_modifier(Modifier::ITALIC)
        );
        assert_eq!(t.style(Slot::Quote), Style::new());
        // Not in the file: from the base.
        let base = Theme::fallback();
        assert_eq!(t.style(Slot::Variable), base.style(Slot::Variable));
    }

    #[test]
    fn child_overrides_one_key_and_inherits_the_rest() {
        let dir = user_dir(&[
            ("base.toml", "[styles]\ncode = \"red\"\nlink = \"blue\"\n"),
            (
                "child.toml",
                "parent = \"base\"\n[styles]\nlink = { fg = \"green\", bg = 17 }\n",
            ),
        ]);
        let loaded = load("child", Some(dir.path())).unwrap();
        assert_eq!(loaded.warnings, Vec::<String>::new());
        let t = &loaded.theme;
        assert_eq!(t.name, "child");
        assert_eq!(t.style(Slot::Link), fg(Color::Green).bg(Color::Indexed(17)));
        assert_eq!(t.style(Slot::Code), fg(Color::Red));
        let base = Theme::fallback();
        assert_eq!(t.style(Slot::Heading), base.style(Slot::Heading));
        assert!(available(Some(dir.path())).contains(&"child".to_string()));
    }

    #[test]
    fn user_theme_with_a_shipped_parent() {
        let dir = user_dir(&[(
            "paper.toml",
            "parent = \"light\"\n[styles]\ntitle = \"#000000\"\n",
        )]);
        let t = load("paper", Some(dir.path())).unwrap().theme;
        let light = load("light", None).unwrap().theme;
        assert_eq!(t.style(Slot::Title), fg(Color::Rgb(0, 0, 0)));
        assert_eq!(t.style(Slot::Text), light.style(Slot::Text));
        assert_eq!(t.style(Slot::CodeBlock), light.style(Slot::CodeBlock));
        assert_eq!(
            available(Some(dir.path())),
            ["dark", "high-contrast", "light", "paper"]
        );
    }

    #[test]
    fn user_file_named_like_a_shipped_theme_is_layered_over_it() {
        let shipped = load("light", None).unwrap().theme;
        for text in [
            "[styles]\nborder = \"blue\"\n",
            "parent = \"light\"\n[styles]\nborder = \"blue\"\n",
        ] {
            let dir = user_dir(&[("light.toml", text)]);
            let loaded = load("light", Some(dir.path())).unwrap();
            assert_eq!(loaded.warnings, Vec::<String>::new());
            let t = &loaded.theme;
            assert_eq!(t.style(Slot::Border), fg(Color::Blue));
            for slot in Slot::ALL.iter().filter(|s| **s != Slot::Border) {
                assert_eq!(t.style(*slot), shipped.style(*slot), "{}", slot.name());
            }
            assert_eq!(
                available(Some(dir.path())),
                ["dark", "high-contrast", "light"]
            );
        }
    }

    #[test]
    fn parent_names_the_users_version_of_a_shipped_theme() {
        let dir = user_dir(&[
            ("dark.toml", "[styles]\nborder = \"blue\"\n"),
            ("mine.toml", "parent = \"dark\"\n[styles]\ncode = \"red\"\n"),
        ]);
        let t = load("mine", Some(dir.path())).unwrap().theme;
        assert_eq!(t.style(Slot::Border), fg(Color::Blue));
        assert_eq!(t.style(Slot::Code), fg(Color::Red));
    }

    #[test]
    fn unknown_keys_are_named_and_ignored() {
        let dir = user_dir(&[(
            "k.toml",
            "colour = 1\n[styles]\nblurb = \"red\"\ncode = { fg = \"red\", fgg = \"blue\" }\n",
        )]);
        let loaded = load("k", Some(dir.path())).unwrap();
        let file = label(&dir, "k.toml");
        assert_eq!(
            loaded.warnings,
            [
                format!("{file}: unknown key 'colour' (ignored)"),
                format!("{file}: unknown key 'styles.blurb' (ignored)"),
                format!("{file}: unknown key 'styles.code.fgg' (ignored)"),
            ]
        );
        assert_eq!(loaded.theme.style(Slot::Code), fg(Color::Red));
    }

    #[test]
    fn bad_colour_keeps_the_parents_value() {
        let dir = user_dir(&[
            (
                "p.toml",
                "[styles]\ncode = { fg = \"red\", bg = \"blue\", modifiers = [\"bold\"] }\nlink = \"green\"\n",
            ),
            (
                "c.toml",
                "parent = \"p\"\n[styles]\ncode = { fg = \"blurple\", bg = 300 }\nlink = \"#12345\"\n",
            ),
        ]);
        let loaded = load("c", Some(dir.path())).unwrap();
        let file = label(&dir, "c.toml");
        assert_eq!(
            loaded.warnings,
            [
                format!("{file}: styles.code.bg: '300' is not a colour (using the parent's)"),
                format!("{file}: styles.code.fg: 'blurple' is not a colour (using the parent's)"),
                format!("{file}: styles.link: '#12345' is not a colour (using the parent's)"),
            ]
        );
        let t = &loaded.theme;
        // The entry replaces the parent's style, but the bad fields keep its
        // colours; modifiers were not given, so none.
        assert_eq!(t.style(Slot::Code), fg(Color::Red).bg(Color::Blue));
        assert_eq!(t.style(Slot::Link), fg(Color::Green));
    }

    #[test]
    fn bad_modifiers_and_bad_types_keep_the_parents_value() {
        let dir = user_dir(&[(
            "m.toml",
            "[styles]\nheading = { fg = \"red\", modifiers = [\"bold\", \"blink\"] }\nlink = { modifiers = 3 }\nquote = true\nstyles = 1\n",
        )]);
        let loaded = load("m", Some(dir.path())).unwrap();
        let file = label(&dir, "m.toml");
        assert_eq!(
            loaded.warnings,
            [
                format!(
                    "{file}: styles.heading.modifiers: 'blink' is not a modifier (using the parent's)"
                ),
                format!(
                    "{file}: styles.link.modifiers: expected a list of modifiers (using the parent's)"
                ),
                format!("{file}: styles.quote: expected a colour or a table (using the parent's)"),
                format!("{file}: unknown key 'styles.styles' (ignored)"),
            ]
        );
        let base = Theme::fallback();
        let t = &loaded.theme;
        assert_eq!(
            t.style(Slot::Heading),
            fg(Color::Red).add_modifier(base.style(Slot::Heading).add_modifier)
        );
        assert_eq!(
            t.style(Slot::Link),
            Style::new().add_modifier(base.style(Slot::Link).add_modifier)
        );
        assert_eq!(t.style(Slot::Quote), base.style(Slot::Quote));
    }

    #[test]
    fn bad_parent_and_bad_styles_table() {
        let dir = user_dir(&[
            ("a.toml", "parent = \"nope\"\nstyles = \"red\"\n"),
            ("light.toml", "parent = 7\n"),
        ]);
        let a = load("a", Some(dir.path())).unwrap();
        let file = label(&dir, "a.toml");
        assert_eq!(
            a.warnings,
            [
                format!("{file}: parent: no theme named 'nope' (ignored)"),
                format!("{file}: styles: expected a table (ignored)"),
            ]
        );
        assert_eq!(
            a.theme.style(Slot::Code),
            Theme::fallback().style(Slot::Code)
        );
        let light = load("light", Some(dir.path())).unwrap();
        assert_eq!(
            light.warnings,
            [format!(
                "{}: parent: expected a theme name (ignored)",
                label(&dir, "light.toml")
            )]
        );
        assert_eq!(light.theme, load("light", None).unwrap().theme);
    }

    #[test]
    fn syntax_error_names_file_line_and_column_and_skips_the_file() {
        let dir = user_dir(&[
            ("light.toml", "[styles]\nborder = \"blue\"\ncode = = 3\n"),
            ("x.toml", "parent = \"light\"\n[styles]\nlink = \"red\"\n"),
        ]);
        let loaded = load("x", Some(dir.path())).unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        let prefix = format!("{}:3:8: ", label(&dir, "light.toml"));
        assert!(
            loaded.warnings[0].starts_with(&prefix),
            "{:?} should start with {prefix:?}",
            loaded.warnings[0]
        );
        assert!(!loaded.warnings[0].contains('\n'));
        // The broken user light.toml is skipped: the shipped light shows.
        let shipped = load("light", None).unwrap().theme;
        assert_eq!(
            loaded.theme.style(Slot::Border),
            shipped.style(Slot::Border)
        );
        assert_eq!(loaded.theme.style(Slot::Link), fg(Color::Red));
    }

    #[test]
    fn unknown_theme_lists_the_available_ones() {
        let dir = user_dir(&[("solar.toml", ""), ("notes.txt", "")]);
        let err = load("blurple", Some(dir.path())).unwrap_err();
        assert_eq!(
            err,
            "no theme named 'blurple' (available: dark, high-contrast, light, solar)"
        );
        // An empty file is a theme with nothing changed.
        let solar = load("solar", Some(dir.path())).unwrap();
        assert!(solar.warnings.is_empty());
        assert_eq!(
            solar.theme.style(Slot::Code),
            Theme::fallback().style(Slot::Code)
        );
        // A missing user directory is no error.
        let missing = dir.path().join("missing");
        assert_eq!(available(Some(&missing)), available(None));
    }

    #[test]
    fn cycles_are_errors() {
        let dir = user_dir(&[
            ("a.toml", "parent = \"b\"\n"),
            ("b.toml", "parent = \"a\"\n"),
            ("self.toml", "parent = \"self\"\n"),
            ("dark.toml", "parent = \"m\"\n"),
            ("m.toml", "parent = \"dark\"\n"),
        ]);
        let user = Some(dir.path());
        assert_eq!(
            load("a", user).unwrap_err(),
            "theme 'a': its parents form a cycle (a -> b -> a)"
        );
        assert_eq!(
            load("self", user).unwrap_err(),
            "theme 'self': its parents form a cycle (self -> self)"
        );
        assert_eq!(
            load("m", user).unwrap_err(),
            "theme 'm': its parents form a cycle (m -> dark -> m)"
        );
    }
}
