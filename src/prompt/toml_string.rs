//! Where each byte of a decoded TOML string came from in the file, so that
//! an error found inside the string (a bad placeholder) can be reported at
//! its line and column in the file.
//!
//! [`decode`] takes the raw string token as written, delimiters included —
//! basic `"…"`, multi-line basic `"""…"""` (a newline right after the
//! opening quotes is trimmed; a backslash at the end of a line removes the
//! line break and the whitespace after it), literal `'…'` and multi-line
//! literal `'''…'''` — and decodes the escapes of TOML 1.1 (`\b \t \n \f \r
//! \e \" \\ \xHH \uXXXX \UXXXXXXXX`), recording the raw offset of every
//! decoded byte (an escape's bytes all map to its backslash).

/// A decoded string with the raw offset of each of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedString {
    pub text: String,
    /// One per byte of `text`, plus one for the end (the closing delimiter).
    offsets: Vec<usize>,
}

impl DecodedString {
    /// The offset in the raw token of the byte at `decoded` in `text`
    /// (past the end: the closing delimiter).
    pub fn raw_offset(&self, decoded: usize) -> usize {
        self.offsets[decoded.min(self.text.len())]
    }
}

/// Decodes a raw TOML string token; `None` if it is not one.
pub fn decode(raw: &str) -> Option<DecodedString> {
    let (delimiter, basic, multi_line) = if raw.starts_with("\"\"\"") {
        ("\"\"\"", true, true)
    } else if raw.starts_with("'''") {
        ("'''", false, true)
    } else if raw.starts_with('"') {
        ("\"", true, false)
    } else if raw.starts_with('\'') {
        ("'", false, false)
    } else {
        return None;
    };
    let d = delimiter.len();
    if raw.len() < 2 * d || !raw.ends_with(delimiter) {
        return None;
    }
    let end = raw.len() - d;
    let mut pos = d;
    if multi_line {
        if raw[pos..end].starts_with('\n') {
            pos += 1;
        } else if raw[pos..end].starts_with("\r\n") {
            pos += 2;
        }
    }
    let mut out = DecodedString {
        text: String::new(),
        offsets: Vec::new(),
    };
    let push = |out: &mut DecodedString, s: &str, at: usize, same_offset: bool| {
        for i in 0..s.len() {
            out.offsets.push(if same_offset { at } else { at + i });
        }
        out.text.push_str(s);
    };
    while pos < end {
        let c = raw[pos..end].chars().next()?;
        if !basic || c != '\\' {
            push(&mut out, c.encode_utf8(&mut [0; 4]), pos, false);
            pos += c.len_utf8();
            continue;
        }
        let escape = raw[pos + 1..end].chars().next()?;
        let simple = match escape {
            'b' => Some('\u{8}'),
            't' => Some('\t'),
            'n' => Some('\n'),
            'f' => Some('\u{c}'),
            'r' => Some('\r'),
            'e' => Some('\u{1b}'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            _ => None,
        };
        if let Some(decoded) = simple {
            push(&mut out, decoded.encode_utf8(&mut [0; 4]), pos, true);
            pos += 2;
            continue;
        }
        let digits = match escape {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        if digits > 0 {
            let hex = raw.get(pos + 2..pos + 2 + digits)?;
            if pos + 2 + digits > end || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let decoded = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
            push(&mut out, decoded.encode_utf8(&mut [0; 4]), pos, true);
            pos += 2 + digits;
            continue;
        }
        // A line-ending backslash: whitespace up to the line break, then
        // every space, tab and line break after it, are dropped.
        if !multi_line {
            return None;
        }
        let rest = &raw[pos + 1..end];
        let blank = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let after_blank = &rest[blank..];
        if !(after_blank.starts_with('\n') || after_blank.starts_with("\r\n")) {
            return None;
        }
        let skipped = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
        pos += 1 + skipped;
    }
    out.offsets.push(end);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every decoded byte of `raw`, with the raw text from its offset on.
    fn check(raw: &str, expected: &str) -> DecodedString {
        let decoded = decode(raw).unwrap();
        assert_eq!(decoded.text, expected, "{raw}");
        // Agrees with the TOML parser.
        let doc: toml::Table = toml::from_str(&format!("v = {raw}")).unwrap();
        assert_eq!(doc["v"].as_str().unwrap(), expected, "{raw}");
        decoded
    }

    #[test]
    fn basic_strings_map_escapes_to_their_backslash() {
        let d = check(r#""a\n\u00e9\tb{{""#, "a\né\tb{{");
        assert_eq!(d.raw_offset(0), 1); // a
        assert_eq!(d.raw_offset(1), 2); // \n
        assert_eq!(d.raw_offset(2), 4); // é (2 bytes) from \u00e9
        assert_eq!(d.raw_offset(3), 4);
        assert_eq!(d.raw_offset(4), 10); // \t
        assert_eq!(d.raw_offset(5), 12); // b
        assert_eq!(d.raw_offset(6), 13); // {
        assert_eq!(d.raw_offset(8), 15); // the closing quote
        let d = check(
            r#""\"\\\U0001F600\x41\e\b\f\r.""#,
            "\"\\😀A\u{1b}\u{8}\u{c}\r.",
        );
        assert_eq!(d.raw_offset(d.text.len() - 1), 27);
    }

    #[test]
    fn literal_strings_are_copied() {
        let d = check(r"'a\n {{x'", r"a\n {{x");
        assert_eq!(d.raw_offset(4), 5);
        let d = check("'''\nx\\y\n'z'''", "x\\y\n'z");
        assert_eq!(d.raw_offset(0), 4);
        assert_eq!(d.raw_offset(4), 8);
        let d = check("'''\r\n日本{{'''", "日本{{");
        assert_eq!(d.raw_offset(6), 11);
    }

    #[test]
    fn multi_line_basic_trims_the_first_newline_and_line_ending_backslashes() {
        let raw = "\"\"\"\nab \\  \n\n   cd\r\ne\\\r\n\tf\"\"\"\"\"";
        let d = check(raw, "ab cd\r\nef\"\"");
        assert_eq!(d.raw_offset(0), 4); // a
        assert_eq!(d.raw_offset(3), 15); // c
        assert_eq!(d.raw_offset(8), 24); // f
        assert_eq!(d.raw_offset(9), 25); // the quotes before the delimiter
        assert_eq!(d.raw_offset(11), 27);
        let d = check("\"\"\"x\"\"\"", "x");
        assert_eq!(d.raw_offset(0), 3);
    }

    #[test]
    fn not_a_string() {
        assert_eq!(decode("12"), None);
        assert_eq!(decode("\""), None);
        assert_eq!(decode(r#""\q""#), None);
    }
}
