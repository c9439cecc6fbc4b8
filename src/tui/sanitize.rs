//! Model output must never drive the terminal: an escape sequence, a bell or
//! a bare carriage return in generated text would otherwise reach the screen
//! through the backend. Control characters become visible symbols instead.

/// Spaces a tab becomes; cells for `\t` have no defined width.
const TAB: &str = "    ";

pub fn sanitize(text: &str) -> String {
    neutralise(text, TAB)
}

/// Control characters as visible symbols; `tab` is what a tab becomes.
fn neutralise(text: &str, tab: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str(tab),
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

/// Streamed model output bound for a terminal that whet does not draw on
/// (`whet run` with stdout a terminal): control characters become visible
/// symbols as in the UI, so that text cannot clear the screen, retitle the
/// window or fill the clipboard (OSC 52); tabs stay tabs, and a CR whose
/// LF comes in the next piece is still a line break.
#[derive(Debug, Default)]
pub struct TerminalStream {
    held_cr: bool,
}

impl TerminalStream {
    pub fn push(&mut self, piece: &str) -> String {
        let mut text = String::with_capacity(piece.len() + 1);
        if std::mem::take(&mut self.held_cr) {
            text.push('\r');
        }
        text.push_str(piece);
        if text.ends_with('\r') {
            text.pop();
            self.held_cr = true;
        }
        neutralise(&text, "\t")
    }

    /// What is still held at the end of the stream.
    pub fn finish(&mut self) -> String {
        if std::mem::take(&mut self.held_cr) {
            "\u{240D}".into()
        } else {
            String::new()
        }
    }
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
    fn a_terminal_stream_neutralises_sequences_split_across_pieces() {
        let mut stream = TerminalStream::default();
        let pieces = [
            "clip\x1b",
            "]52;c;cm0gLXJmIH4=\x07",
            " tab\there\r",
            "\nnext\r",
            "over",
        ];
        let out: String =
            pieces.iter().map(|p| stream.push(p)).collect::<String>() + &stream.finish();
        assert_eq!(out, "clip␛]52;c;cm0gLXJmIH4=␇ tab\there\nnext␍over");
        stream.push("end\r");
        assert_eq!(stream.finish(), "␍");
    }

    #[test]
    fn newlines_tabs_and_unicode_survive() {
        assert_eq!(
            sanitize("a\r\nb\tc 日本 👩‍👩‍👧 e\u{301}"),
            "a\nb    c 日本 👩‍👩‍👧 e\u{301}"
        );
    }
}
