//! Turns a stream of token byte pieces into text without ever splitting a
//! character: a token may carry only part of a multi-byte UTF-8 sequence
//! (emoji, CJK), and the rest arrives with the next token.

#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the text that is now complete. Bytes that can
    /// never become valid UTF-8 are replaced by U+FFFD (the model produced them).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    // The prefix was just validated by from_utf8.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match err.error_len() {
                        // Incomplete sequence at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes at the end of generation: an unfinished sequence becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_one_byte_at_a_time(text: &str) -> Vec<String> {
        let mut stream = Utf8Stream::new();
        text.as_bytes().iter().map(|b| stream.push(&[*b])).collect()
    }

    #[test]
    fn splits_never_break_characters() {
        let text = "a😀b日本語👩‍👩‍👧é";
        let pieces = feed_one_byte_at_a_time(text);
        assert_eq!(pieces.concat(), text);
        for piece in pieces {
            assert!(!piece.contains(char::REPLACEMENT_CHARACTER));
        }
    }

    #[test]
    fn emoji_split_across_tokens_is_held_back_then_released() {
        let bytes = "😀".as_bytes();
        let mut stream = Utf8Stream::new();
        assert_eq!(stream.push(&bytes[..2]), "");
        assert!(stream.has_pending());
        assert_eq!(stream.push(&bytes[2..]), "😀");
        assert!(!stream.has_pending());
    }

    #[test]
    fn invalid_bytes_become_replacement_and_stream_continues() {
        let mut stream = Utf8Stream::new();
        assert_eq!(stream.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(stream.push("ü".as_bytes()), "ü");
    }

    #[test]
    fn unfinished_sequence_at_end_is_flushed_as_replacement() {
        let mut stream = Utf8Stream::new();
        assert_eq!(stream.push(&"日".as_bytes()[..1]), "");
        assert_eq!(stream.finish(), "\u{fffd}");
    }
}
