//! Server-sent events as OpenAI-compatible servers stream them: bytes in,
//! the `data` of each event out. What the servers do that a parser must
//! take: `data:` with or without the space, several `data:` lines joined by
//! newlines, comment lines (`: ping`, llama-server's keep-alives), `event:`
//! / `id:` / `retry:` fields (ignored: only data matters here), CR, LF or
//! CRLF line ends, a multi-byte character split across reads, and the
//! `[DONE]` sentinel. Anything else is the caller's to judge (the JSON).

/// One thing the stream said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// An event's data (its `data:` lines joined by `\n`).
    Data(String),
    /// `data: [DONE]`: the stream's end, as OpenAI marks it.
    Done,
}

/// The longest event whet accepts: a chunk of a streamed reply is a few
/// hundred bytes, with top log-probabilities a few kilobytes. Anything far
/// beyond is a server (or something in between) gone wrong.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read (a line may arrive in pieces).
    line: Vec<u8>,
    /// The event being built: its data lines so far.
    data: Option<String>,
    /// The last byte was a CR: an LF right after it ends nothing more.
    after_cr: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the body; returns the events they complete.
    /// An error when one event grows beyond [`MAX_EVENT_BYTES`] or a line
    /// is not UTF-8.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseItem>, String> {
        let mut items = Vec::new();
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.end_line(&line, &mut items)?;
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(byte);
                    let pending = self.data.as_ref().map_or(0, String::len);
                    if self.line.len() + pending > MAX_EVENT_BYTES {
                        return Err(format!(
                            "an event of the stream is over {} MiB",
                            MAX_EVENT_BYTES >> 20
                        ));
                    }
                }
            }
        }
        Ok(items)
    }

    /// The body ended: an event not closed by a blank line still counts
    /// (some servers end the stream right after the last `data:` line).
    pub fn finish(&mut self) -> Result<Vec<SseItem>, String> {
        let mut items = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.end_line(&line, &mut items)?;
        }
        self.dispatch(&mut items);
        Ok(items)
    }

    fn end_line(&mut self, line: &[u8], items: &mut Vec<SseItem>) -> Result<(), String> {
        if line.is_empty() {
            self.dispatch(items);
            return Ok(());
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| "the stream sent a line that is not UTF-8".to_string())?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, items: &mut Vec<SseItem>) {
        if let Some(data) = self.data.take() {
            items.push(if data.trim() == "[DONE]" {
                SseItem::Done
            } else {
                SseItem::Data(data)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> Vec<SseItem> {
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        for piece in pieces {
            items.extend(parser.push(piece).unwrap());
        }
        items.extend(parser.finish().unwrap());
        items
    }

    fn data(text: &str) -> SseItem {
        SseItem::Data(text.into())
    }

    #[test]
    fn data_with_or_without_the_space_and_the_done_sentinel() {
        let items = parse_all(&[b"data: {\"a\":1}\n\ndata:{\"b\":2}\n\ndata: [DONE]\n\n"]);
        assert_eq!(items, [data("{\"a\":1}"), data("{\"b\":2}"), SseItem::Done]);
    }

    #[test]
    fn comments_and_other_fields_are_skipped() {
        let items =
            parse_all(&[b": ping - 2026-12-01\n\nevent: message\nid: 7\nretry: 100\ndata: x\n\n"]);
        assert_eq!(items, [data("x")]);
    }

    #[test]
    fn several_data_lines_are_one_event() {
        let items = parse_all(&[b"data: first\ndata:second\ndata\n\n"]);
        assert_eq!(items, [data("first\nsecond\n")]);
    }

    #[test]
    fn any_line_end_and_any_split_of_the_bytes() {
        let body = "data: é1\r\n\r\ndata: 2\r\rdata: 3\n\ndata: [DONE]\n\n".as_bytes();
        let whole = parse_all(&[body]);
        assert_eq!(whole, [data("é1"), data("2"), data("3"), SseItem::Done]);
        // Every split point, including inside the two bytes of é and
        // between CR and LF.
        for at in 0..body.len() {
            assert_eq!(
                parse_all(&[&body[..at], &body[at..]]),
                whole,
                "split at {at}"
            );
        }
        let bytewise: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(parse_all(&bytewise), whole);
    }

    #[test]
    fn an_event_cut_off_at_the_end_still_counts() {
        assert_eq!(
            parse_all(&[b"data: {\"usage\":{}}"]),
            [data("{\"usage\":{}}")]
        );
        assert_eq!(parse_all(&[b"data: last\n"]), [data("last")]);
        assert!(parse_all(&[b": only a comment"]).is_empty());
    }

    #[test]
    fn an_oversized_event_and_bad_utf8_are_errors() {
        let mut parser = SseParser::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        let mut input = b"data: ".to_vec();
        input.extend(&big);
        let error = parser.push(&input).unwrap_err();
        assert!(error.contains("over 4 MiB"), "{error}");
        let mut parser = SseParser::new();
        let error = parser.push(b"data: \xff\xfe\n\n").unwrap_err();
        assert!(error.contains("not UTF-8"), "{error}");
    }
}
