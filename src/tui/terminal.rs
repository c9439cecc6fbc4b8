//! Taking the terminal and giving it back, on every way out: normal exit,
//! a signal, Ctrl+Z, and a panic (the hook restores before the message).

use std::io::{stdout, Write};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// Raw mode, the alternate screen, bracketed paste and mouse reports.
pub fn enter() -> DefaultTerminal {
    // ratatui::init installs a panic hook that restores raw mode and the
    // screen; ours runs first and also turns off what ratatui does not know.
    let terminal = ratatui::init();
    let _ = execute!(stdout(), EnableBracketedPaste, EnableMouseCapture);
    terminal
}

pub fn leave() {
    let _ = execute!(stdout(), DisableMouseCapture, DisableBracketedPaste);
    ratatui::restore();
    let _ = stdout().flush();
}

/// Wraps the current panic hook (ratatui's) so mouse reporting and
/// bracketed paste are switched off too before the panic is printed.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableMouseCapture, DisableBracketedPaste);
        previous(info);
    }));
}

/// Ctrl+Z: give the terminal back, stop, and take it again on `fg`.
pub fn suspend(terminal: &mut DefaultTerminal) -> std::io::Result<()> {
    leave();
    // What the terminal does for Ctrl+Z outside raw mode: stop the whole
    // foreground process group, so a wrapping shell or pipeline stops too
    // and the user's shell takes over. (The engine worker has a group of
    // its own and just waits.)
    // SAFETY: sending a signal to our own process group.
    unsafe {
        libc::kill(0, libc::SIGTSTP);
    }
    // Execution continues here after SIGCONT: the same modes again, without
    // ratatui::init, which would stack one more panic hook per suspend.
    crossterm::terminal::enable_raw_mode()?;
    execute!(
        stdout(),
        crossterm::terminal::EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture
    )?;
    terminal.clear()
}

/// Puts text on the clipboard of the terminal the user sits at (OSC 52),
/// which works over SSH and inside tmux with `set-clipboard on`.
pub fn copy_to_clipboard(text: &str) -> std::io::Result<()> {
    execute!(
        stdout(),
        crossterm::clipboard::CopyToClipboard::to_clipboard_from(text)
    )
}
