//! Two texts side by side with their word-level differences highlighted
//! (e.g. two refinement passes): the old text on the left with what it loses
//! in [`Slot::DiffDelete`], the new one on the right with what it gains in
//! [`Slot::DiffInsert`].
//!
//! Each column wraps its lines to its width (at spaces where it can; a word
//! longer than the column is broken between graphemes, never inside one;
//! wide characters count as two cells). A [`Row`] of the diff takes the
//! height of its taller side, the other side is padded, so a line and its
//! counterpart always start on the same screen row. One scroll offset, in
//! screen rows, moves both columns together.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use similar::DiffableStr;
use unicode_width::UnicodeWidthStr;

use super::sanitize::sanitize;
use super::theme::{Slot, Theme};
use super::widgets::pane;
use crate::diff::{Change, Piece, Row, WordDiff};

/// The widget: draw it with `frame.render_widget(side_by_side, area)`.
pub struct SideBySide<'a> {
    pub diff: &'a WordDiff,
    /// The left (old) and right (new) column's titles, e.g. `"Pass 1"` and
    /// `"Pass 2 · -3 +5 words"` (sanitized, drawn with a space either side).
    pub titles: (String, String),
    /// Screen rows scrolled past, shared by both columns; more than
    /// [`max_scroll`] shows the last page.
    pub scroll: u16,
    pub theme: &'a Theme,
    /// Both columns' borders show focus.
    pub focused: bool,
}

/// The two columns' outer areas: equal widths, and for an odd width a blank
/// column between them.
fn columns(area: Rect) -> (Rect, Rect) {
    let half = area.width / 2;
    let left = Rect {
        width: half,
        ..area
    };
    let right = Rect {
        x: area.x + (area.width - half),
        width: half,
        ..area
    };
    (left, right)
}

/// The text width of each column when the widget is drawn in `area`.
pub fn column_width(area: Rect) -> u16 {
    columns(area).0.width.saturating_sub(2)
}

/// The text rows each column shows when the widget is drawn in `area`.
pub fn visible_height(area: Rect) -> u16 {
    area.height.saturating_sub(2)
}

/// Screen rows the diff takes with columns `column_width` cells wide (at
/// most `u16::MAX`).
pub fn content_height(diff: &WordDiff, column_width: u16) -> u16 {
    let rows: usize = diff
        .rows
        .iter()
        .map(|row| {
            let (old, new) = row_lines(row, column_width, None);
            old.len().max(new.len())
        })
        .sum();
    rows.min(u16::MAX as usize) as u16
}

/// The largest useful scroll offset for the widget drawn in `area`: the one
/// that shows the last page.
pub fn max_scroll(diff: &WordDiff, area: Rect) -> u16 {
    content_height(diff, column_width(area)).saturating_sub(visible_height(area))
}

impl Widget for SideBySide<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let theme = self.theme;
        buf.set_style(area, theme.style(Slot::Text));
        let (left, right) = columns(area);
        let title =
            |text: &str| Span::styled(format!(" {} ", sanitize(text)), theme.style(Slot::Title));
        let left_block = pane(theme, self.focused).title(title(&self.titles.0));
        let right_block = pane(theme, self.focused).title(title(&self.titles.1));
        let (left_inner, right_inner) = (left_block.inner(left), right_block.inner(right));
        left_block.render(left, buf);
        right_block.render(right, buf);
        let (width, height) = (left_inner.width, left_inner.height);
        if width == 0 || height == 0 {
            return;
        }
        let scroll = self.scroll.min(max_scroll(self.diff, area)) as usize;
        let end = scroll + height as usize;
        // `top`: the screen row (from the content's start) a row begins on.
        let mut top = 0usize;
        for row in &self.diff.rows {
            if top >= end {
                break;
            }
            let (old, new) = row_lines(row, width, Some(theme));
            let rows = old.len().max(new.len());
            for k in 0..rows {
                let y = top + k;
                if y < scroll || y >= end {
                    continue;
                }
                let screen_y = (y - scroll) as u16;
                if let Some(line) = old.get(k) {
                    buf.set_line(left_inner.x, left_inner.y + screen_y, line, width);
                }
                if let Some(line) = new.get(k) {
                    buf.set_line(right_inner.x, right_inner.y + screen_y, line, width);
                }
            }
            top += rows;
        }
    }
}

/// A row's screen lines on the left and on the right (the shorter side is
/// padded by the caller); unstyled without a theme (for measuring).
fn row_lines(
    row: &Row,
    width: u16,
    theme: Option<&Theme>,
) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let side = |pieces: &Option<Vec<Piece>>| match pieces {
        Some(pieces) => wrap(pieces, width, theme),
        None => Vec::new(),
    };
    let (old, new) = (side(&row.old), side(&row.new));
    // A row is at least one screen row, whatever the width.
    if old.is_empty() && new.is_empty() {
        return (vec![Line::default()], Vec::new());
    }
    (old, new)
}

fn piece_style(change: Change, theme: Option<&Theme>) -> Style {
    let Some(theme) = theme else {
        return Style::default();
    };
    let text = theme.style(Slot::Text);
    match change {
        Change::Same => text,
        Change::Deleted => text.patch(theme.style(Slot::DiffDelete)),
        Change::Inserted => text.patch(theme.style(Slot::DiffInsert)),
    }
}

/// One grapheme of a line, with its style and width in cells.
struct Cell<'t> {
    symbol: &'t str,
    style: Style,
    width: usize,
    space: bool,
}

/// A line's pieces as screen lines `width` cells wide: broken at spaces
/// where it can (the spaces at a break are dropped, except a line's own
/// indentation), a word longer than a line broken between graphemes. An
/// empty line is one empty screen line.
fn wrap(pieces: &[Piece], width: u16, theme: Option<&Theme>) -> Vec<Line<'static>> {
    let texts: Vec<(String, Style)> = pieces
        .iter()
        .map(|piece| (sanitize(&piece.text), piece_style(piece.change, theme)))
        .collect();
    let cells: Vec<Cell> = texts
        .iter()
        .flat_map(|(text, style)| {
            text.tokenize_graphemes().into_iter().map(|symbol| Cell {
                symbol,
                style: *style,
                width: symbol.width(),
                space: symbol.chars().all(breaks),
            })
        })
        .collect();
    let width = width as usize;
    if width == 0 {
        return vec![Line::default()];
    }
    let mut out = Wrapped::default();
    // Spaces wait for the next word: they are dropped at a break.
    let mut pending: &[Cell] = &[];
    // Runs of spaces and of non-spaces (words).
    let mut start = 0;
    while start < cells.len() {
        let space = cells[start].space;
        let len = cells[start..]
            .iter()
            .position(|cell| cell.space != space)
            .unwrap_or(cells.len() - start);
        let run = &cells[start..start + len];
        start += len;
        if space {
            if !(out.continued && out.width == 0) {
                pending = run;
            }
            continue;
        }
        if out.width == 0 {
            // A line's indentation, as far as it fits.
            out.fit(std::mem::take(&mut pending), width);
        }
        let spaces: usize = pending.iter().map(|cell| cell.width).sum();
        let word: usize = run.iter().map(|cell| cell.width).sum();
        if out.width + spaces + word <= width {
            out.fit(pending, width);
            run.iter().for_each(|cell| out.push(cell));
        } else if word <= width {
            out.break_line();
            run.iter().for_each(|cell| out.push(cell));
        } else {
            // Longer than a line: fill this one, then as many as it takes.
            out.fit(pending, width);
            for cell in run {
                if out.width + cell.width > width && out.width > 0 {
                    out.break_line();
                }
                out.push(cell);
            }
        }
        pending = &[];
    }
    // The line's own trailing spaces, as far as they fit.
    out.fit(pending, width);
    out.finish()
}

/// A space a line may break at (not a no-break space).
fn breaks(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{a0}' | '\u{2007}' | '\u{202f}')
}

/// Screen lines being filled.
#[derive(Default)]
struct Wrapped {
    lines: Vec<Line<'static>>,
    spans: Vec<Span<'static>>,
    /// Cells used on the current line.
    width: usize,
    /// The current line continues a wrapped one.
    continued: bool,
}

impl Wrapped {
    fn push(&mut self, cell: &Cell) {
        match self.spans.last_mut() {
            Some(span) if span.style == cell.style => span.content.to_mut().push_str(cell.symbol),
            _ => self
                .spans
                .push(Span::styled(cell.symbol.to_string(), cell.style)),
        }
        self.width += cell.width;
    }

    /// Pushes cells while they fit on the line.
    fn fit(&mut self, cells: &[Cell], width: usize) {
        for cell in cells {
            if self.width + cell.width > width {
                break;
            }
            self.push(cell);
        }
    }

    fn break_line(&mut self) {
        self.lines.push(Line::from(std::mem::take(&mut self.spans)));
        self.width = 0;
        self.continued = true;
    }

    fn finish(mut self) -> Vec<Line<'static>> {
        if !self.spans.is_empty() || self.lines.is_empty() {
            self.lines.push(Line::from(self.spans));
        }
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::word_diff;

    fn plain(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|line| line.to_string()).collect()
    }

    fn wrapped(text: &str, width: u16) -> Vec<String> {
        let pieces = vec![Piece {
            text: text.into(),
            change: Change::Same,
        }];
        plain(&wrap(&pieces, width, None))
    }

    #[test]
    fn wraps_at_spaces_and_breaks_long_words_between_graphemes() {
        assert_eq!(
            wrapped("the quick brown fox", 10),
            ["the quick", "brown fox"]
        );
        assert_eq!(wrapped("  indented line", 10), ["  indented", "line"]);
        assert_eq!(
            wrapped("a supercalifragilistic word", 8),
            ["a superc", "alifragi", "listic", "word"]
        );
        assert_eq!(wrapped("", 8), [""]);
        assert_eq!(wrapped("abc", 0), [""]);
        // Wide characters take two cells; a combining accent stays on its letter.
        assert_eq!(
            wrapped("日本語のテキスト", 5),
            ["日本", "語の", "テキ", "スト"]
        );
        assert_eq!(
            wrapped("e\u{301}e\u{301}e\u{301}", 2),
            ["e\u{301}e\u{301}", "e\u{301}"]
        );
        assert_eq!(wrapped("👩‍👩‍👧👩‍👩‍👧", 3), ["👩‍👩‍👧", "👩‍👩‍👧"]);
        // A character wider than the column gets a line of its own (clipped
        // when drawn) rather than looping.
        assert_eq!(wrapped("日本", 1), ["日", "本"]);
        // No break at a no-break space.
        assert_eq!(wrapped("a b\u{a0}c", 3), ["a", "b\u{a0}c"]);
        // Control characters are shown as symbols.
        assert_eq!(wrapped("a\tb\x1b", 20), ["a    b␛"]);
    }

    #[test]
    fn rows_take_their_taller_side() {
        let diff = word_diff(
            "short\nthe same line",
            "a much longer line than before\nthe same line",
        );
        // At 12 cells: the first row is 1 line on the left, 3 on the right
        // ("a much" / "longer line" / "than before"); the second 2 on both
        // ("the same" / "line").
        assert_eq!(content_height(&diff, 12), 3 + 2);
        assert_eq!(content_height(&diff, 40), 2);
        assert_eq!(content_height(&diff, 0), 2);
        // 29 columns: two of 14 (12 inside the borders) and one between.
        let area = Rect::new(0, 0, 29, 6);
        assert_eq!(column_width(area), 12);
        assert_eq!(visible_height(area), 4);
        assert_eq!(max_scroll(&diff, area), 5 - 4);
        assert_eq!(max_scroll(&diff, Rect::new(0, 0, 29, 20)), 0);
    }
}
