//! The side-by-side diff view drawn on ratatui's TestBackend: snapshots of
//! two passes of a review rewrite at two sizes, Unicode, a long line that
//! wraps and a shared scroll offset, tiny sizes, and the theme's diff colours
//! asserted on buffer cells.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use whet::diff::{word_diff, WordDiff};
use whet::tui::side_by_side::{self, SideBySide};
use whet::tui::theme::{self, Slot, Theme};
mod common;

use common::screen::{find, text_of};

const PASS_1: &str = "\
The blender arrived late and the box was damaged.
It works, but the manual is confusing.
I would not buy it again.";

const PASS_2: &str = "\
The blender arrived two days late and the box was dented.
It works well, but the manual is hard to follow.
Overall it is fine for the price.
I might buy it again.";

fn render(diff: &WordDiff, theme: &Theme, scroll: u16, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            let widget = SideBySide {
                diff,
                titles: ("Pass 1".into(), format!("Pass 2 · {}", diff.summary())),
                scroll,
                theme,
                focused: true,
            };
            frame.render_widget(widget, frame.area());
        })
        .unwrap();
    terminal.backend().buffer().clone()
}

fn draw(old: &str, new: &str, scroll: u16, width: u16, height: u16) -> Buffer {
    render(
        &word_diff(old, new),
        &Theme::fallback(),
        scroll,
        width,
        height,
    )
}

#[test]
fn two_passes_of_a_review() {
    let diff = word_diff(PASS_1, PASS_2);
    assert_eq!(diff.summary(), "-4 +16 words");
    insta::assert_snapshot!("review_80x12", text_of(&draw(PASS_1, PASS_2, 0, 80, 12)));
    insta::assert_snapshot!("review_40x10", text_of(&draw(PASS_1, PASS_2, 0, 40, 10)));
}

#[test]
fn unicode() {
    let old = "日本語のレビュー：とても良い製品です。\n家族 👩‍👩‍👧 と使っています。\nLe cafe\u{301} est bon.\ttab";
    let new = "日本語のレビュー：まあまあの製品です。\n家族 👩‍👩‍👧 と毎日使っています 🐝\nLe cafe\u{301} est tre\u{300}s bon.\ttab";
    let screen = text_of(&draw(old, new, 0, 60, 10));
    insta::assert_snapshot!("unicode_60x10", screen);
    let narrow = text_of(&draw(old, new, 0, 31, 12));
    insta::assert_snapshot!("unicode_31x12", narrow);
}

/// A long line (wrapping at spaces) and a very long word (broken inside);
/// the same scroll offset moves both columns.
#[test]
fn long_lines_wrap_and_both_columns_scroll_together() {
    let old = "Header line\nThis first paragraph is long enough to wrap several times inside a narrow column of the view.\nAnother line\nEnd";
    let new = "Header line\nThis first paragraph is now long enough to wrap many times inside a narrow column of the side by side view.\nhttps://example.com/a/very/long/address/that/cannot/wrap/at/any/space\nEnd";
    let diff = word_diff(old, new);
    let (width, height) = (40, 10);
    let area = ratatui::layout::Rect::new(0, 0, width, height);
    let lines = side_by_side::content_height(&diff, side_by_side::column_width(area));
    assert!(
        lines > side_by_side::visible_height(area),
        "{lines} lines fit without scrolling"
    );
    let top = render(&diff, &Theme::fallback(), 0, width, height);
    let scrolled = render(&diff, &Theme::fallback(), 3, width, height);
    insta::assert_snapshot!("long_lines_40x10", text_of(&top));
    insta::assert_snapshot!("long_lines_scrolled_3_40x10", text_of(&scrolled));

    // Both columns moved by 3: each inner row of the scrolled view is the
    // row 3 further down of the whole content drawn at once.
    let whole = render(&diff, &Theme::fallback(), 0, width, lines + 2);
    let rows = |buffer: &Buffer| -> Vec<String> {
        text_of(buffer)
            .lines()
            .skip(1)
            .take((buffer.area.height - 2) as usize)
            .map(str::to_string)
            .collect()
    };
    let (scrolled_rows, whole_rows) = (rows(&scrolled), rows(&whole));
    assert_eq!(scrolled_rows[..], whole_rows[3..3 + scrolled_rows.len()]);
    // The address is broken inside, each part on its own row, and the
    // first part sits on the row of the line it replaces on the left.
    let (address_x, address_y) = find(&whole, "https://example.co").expect("the address");
    assert!(address_x > width / 2);
    let (left_x, left_y) = find(&whole, "Another line").expect("the line it replaces");
    assert_eq!((left_x, left_y), (1, address_y));

    // Scrolling past the end shows the last page.
    let max = side_by_side::max_scroll(&diff, area);
    assert_eq!(max, lines - (height - 2));
    let last = text_of(&render(&diff, &Theme::fallback(), max, width, height));
    assert_eq!(
        last,
        text_of(&render(&diff, &Theme::fallback(), u16::MAX, width, height))
    );
    assert!(last.contains("End"), "{last}");
}

#[test]
fn tiny_and_huge_sizes_do_not_panic() {
    let long_word = "x".repeat(500);
    let texts = [
        (PASS_1, PASS_2),
        ("", ""),
        ("", "only new"),
        (long_word.as_str(), "short"),
        ("日本語 👩‍👩‍👧 e\u{301}", "日本 🐝 e\u{301}\x1b[31m"),
    ];
    for (old, new) in texts {
        for (width, height) in [
            (0, 0),
            (1, 1),
            (3, 3),
            (3, 12),
            (4, 4),
            (5, 3),
            (7, 5),
            (200, 5),
            (200, 60),
        ] {
            for scroll in [0, 1, 1000] {
                let screen = text_of(&draw(old, new, scroll, width, height));
                assert_eq!(screen.lines().count(), height as usize);
            }
        }
    }
    let diff = word_diff(&long_word, "short");
    assert_eq!(side_by_side::content_height(&diff, 0), 1);
    assert_eq!(side_by_side::content_height(&diff, 1), 500);
    assert_eq!(side_by_side::content_height(&diff, 200), 3);
}

#[test]
fn diff_colours_come_from_the_theme() {
    let diff = word_diff(PASS_1, PASS_2);
    for name in ["dark", "light", "high-contrast"] {
        let theme = theme::load(name, None).unwrap().theme;
        let buffer = render(&diff, &theme, 0, 80, 12);
        // The cells of `len` characters from (x, y) have the slot's style.
        let assert_cells = |x: u16, y: u16, len: u16, slot: Slot, what: &str| {
            let style = theme.style(slot);
            for i in 0..len {
                let cell = &buffer[(x + i, y)];
                let what = format!("{name}: {what}, cell {i}");
                assert_eq!(cell.fg, style.fg.unwrap_or(Color::Reset), "{what}: fg");
                assert_eq!(cell.bg, style.bg.unwrap_or(Color::Reset), "{what}: bg");
                assert!(
                    cell.modifier.contains(style.add_modifier),
                    "{what}: {:?} lacks {:?}",
                    cell.modifier,
                    style.add_modifier
                );
            }
        };
        let assert_slot = |needle: &str, right: bool, slot: Slot| {
            let (x, y) = find(&buffer, needle).unwrap_or_else(|| panic!("{needle} on screen"));
            assert_eq!(x >= 40, right, "{name}: {needle} at {x}");
            assert_cells(x, y, needle.len() as u16, slot, needle);
        };
        // Deleted on the left, inserted on the right, unchanged on both.
        assert_slot("damaged", false, Slot::DiffDelete);
        assert_slot("confusing", false, Slot::DiffDelete);
        assert_slot("would not", false, Slot::DiffDelete);
        assert_slot("dented", true, Slot::DiffInsert);
        assert_slot("two days", true, Slot::DiffInsert);
        assert_slot("Overall it is fine", true, Slot::DiffInsert);
        assert_slot("The blender arrived", false, Slot::Text);
        assert_slot("manual", false, Slot::Text);
        // The right column's text starts at x = 41 (after its border).
        assert_eq!(find(&buffer, "┃The blender arrived two"), Some((40, 1)));
        assert_cells(
            41,
            1,
            "The blender arrived ".len() as u16,
            Slot::Text,
            "unchanged on the right",
        );
        assert_eq!(find(&buffer, "the box was dented"), Some((41, 2)));
        assert_cells(
            41,
            2,
            "the box was ".len() as u16,
            Slot::Text,
            "unchanged on the right",
        );
        // The space between two deleted words is not highlighted at the
        // run's edges: the cell before "damaged" is plain text.
        let (x, y) = find(&buffer, "damaged").unwrap();
        assert_eq!(
            buffer[(x - 1, y)].bg,
            theme.style(Slot::Text).bg.unwrap_or(Color::Reset),
            "{name}: the space before a deleted word"
        );
        // Crossed out where the theme says so.
        if theme
            .style(Slot::DiffDelete)
            .add_modifier
            .contains(Modifier::CROSSED_OUT)
        {
            assert!(buffer[(x, y)].modifier.contains(Modifier::CROSSED_OUT));
        }
    }
}
