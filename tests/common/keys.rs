//! Keys for the state tests: pressed through `update` with the default
//! keymap, as a terminal reports them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use whet::tui::app::{update, App, Effect, Msg};

pub fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    update(app, Msg::Key(KeyEvent::new(code, modifiers)))
}

pub fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    press(app, code, KeyModifiers::NONE)
}

/// A character as a terminal reports it: uppercase letters with Shift.
pub fn ch(app: &mut App, c: char) -> Vec<Effect> {
    let modifiers = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    press(app, KeyCode::Char(c), modifiers)
}

pub fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    press(app, KeyCode::Char(c), KeyModifiers::CONTROL)
}

pub fn alt(app: &mut App, code: KeyCode) -> Vec<Effect> {
    press(app, code, KeyModifiers::ALT)
}

pub fn shift_tab(app: &mut App) -> Vec<Effect> {
    press(app, KeyCode::BackTab, KeyModifiers::SHIFT)
}

/// Types `text` one key at a time; the effects of every key, in order.
pub fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| ch(app, c)).collect()
}

pub fn backspace(app: &mut App, times: usize) -> Vec<Effect> {
    (0..times)
        .flat_map(|_| key(app, KeyCode::Backspace))
        .collect()
}

pub fn notice(app: &App) -> String {
    app.notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

pub fn notice_is_error(app: &App) -> bool {
    app.notice.as_ref().is_some_and(|n| n.error)
}
