//! Drawing the UI on ratatui's TestBackend and reading the screen back.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use unicode_width::UnicodeWidthStr;
use whet::tui::app::App;
use whet::tui::view;

pub fn draw(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| view::render(app, frame)).unwrap();
    terminal.backend().buffer().clone()
}

/// The screen as a terminal shows it: the cell after a wide character is
/// covered by it, so it is skipped.
pub fn text_of(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut x = 0;
        while x < area.width {
            let symbol = buffer[(x, y)].symbol();
            out.push_str(symbol);
            x += (UnicodeWidthStr::width(symbol) as u16).max(1);
        }
        out.push('\n');
    }
    out
}

/// Where `needle` starts on screen.
pub fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..buffer.area.height {
        let cells: Vec<&str> = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        for x in 0..cells.len() {
            if cells[x..].concat().starts_with(needle) {
                return Some((x as u16, y));
            }
        }
    }
    None
}
