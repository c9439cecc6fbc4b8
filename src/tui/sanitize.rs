//! Model output must never drive the terminal: an escape sequence, a bell or
//! a bare carriage return in generated text would otherwise reach the screen
//! through the backend. Control characters become visible symbols instead.

/// Spaces a tab becomes; cells for `\t` have no defined width.
const TAB: &str = "    ";

pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str(TAB),
            // CRLF is a line break; a lone CR would move the cursor back.
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push('\u{240D}'),
            // C0 controls (ESC, BEL, …) as Unicode control pictures (␛, ␇).
            '\0'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\u{7f}' => out.push('\u{2421}'),
            // C1 controls include CSI (U+009B), an escape sequence on its own.
            '\u{80}'..='\u{9f}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_bell_and_bare_cr_are_neutralised() {
        let hostile = "red\x1b[31m!\x07 \x1b]52;c;ZXZpbA==\x07 over\rwrite \u{9b}2J";
        let safe = sanitize(hostile);
        assert!(
            !safe.chars().any(|c| c.is_control() && c != '\n'),
            "{safe:?}"
        );
        assert_eq!(safe, "red␛[31m!␇ ␛]52;c;ZXZpbA==␇ over␍write \u{fffd}2J");
    }

    #[test]
    fn newlines_tabs_and_unicode_survive() {
        assert_eq!(
            sanitize("a\r\nb\tc 日本 👩‍👩‍👧 e\u{301}"),
            "a\nb    c 日本 👩‍👩‍👧 e\u{301}"
        );
    }
}
