//! Positions in text files for messages of the `file:line:col: …` kind
//! (theme, keymap and prompt template files).

/// 1-based line and column (in characters) of a byte offset; an offset past
/// the end or inside a character counts from the nearest boundary before it.
/// A byte order mark starting the text is no column: editors do not show it,
/// and parsers (TOML's) skip it but give offsets in the text that has it.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let mut line_text = &before[line_start..];
    if line_start == 0 {
        line_text = line_text.strip_prefix(BOM).unwrap_or(line_text);
    }
    let col = line_text.chars().count() + 1;
    (line, col)
}

/// The UTF-8 byte order mark, as a character.
const BOM: char = '\u{feff}';

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\né x", 6), (2, 3));
        assert_eq!(line_col("ab", 99), (1, 3));
        assert_eq!(line_col("é", 1), (1, 1));
    }

    #[test]
    fn a_leading_byte_order_mark_is_no_column() {
        let text = "\u{feff}ab\n\u{feff}c";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 1), (1, 1));
        assert_eq!(line_col(text, 3), (1, 1));
        assert_eq!(line_col(text, 4), (1, 2));
        assert_eq!(line_col(text, 5), (1, 3));
        // Only at the start of the text: elsewhere it is a character.
        assert_eq!(line_col(text, 9), (2, 2));
    }
}
