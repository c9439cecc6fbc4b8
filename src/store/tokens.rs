//! A reply's tokens as kept with it, for the lens: each sampled token's id,
//! the text it added, its log-probability, the entropy of the distribution
//! it came from and the most likely alternatives there.
//!
//! Log-probabilities are kept in thousandths of a nat: exact enough to
//! shade and show (a probability to 0.1 % of itself), comparable without
//! floats (messages derive `Eq`), and short on disk. A token is written as
//! an array, `[id, "text", logprob, entropy, [[id, "text", logprob], …]]`,
//! and a session file writes a reply's tokens one line for the reply (see
//! [`write_pretty`]).

use std::io;

use serde::{Deserialize, Serialize};
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

use crate::engine::probs::{Alternative, TokenProbs};
use crate::engine::protocol::FLUSH_TOKEN;

/// A quantity in nats, kept to a thousandth.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MilliNats(pub i32);

impl MilliNats {
    /// −∞ (a token the model ruled out) is kept as the lowest value.
    pub fn from_nats(value: f32) -> Self {
        if value.is_nan() {
            return Self(i32::MIN);
        }
        Self((f64::from(value) * 1000.0).round().clamp(-2e9, 2e9) as i32)
    }

    pub fn nats(self) -> f32 {
        self.0 as f32 / 1000.0
    }

    /// The probability of a log-probability.
    pub fn prob(self) -> f32 {
        self.nats().exp()
    }
}

/// One sampled token of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TokenRepr", into = "TokenRepr")]
pub struct KeptToken {
    pub id: i32,
    /// What the token added to the reply as shown: the reply's text is its
    /// tokens' texts one after another. Empty for a token that held part of
    /// a character finished by the next one.
    pub text: String,
    pub logprob: MilliNats,
    /// Of the whole distribution at this point, when it was computed.
    pub entropy: Option<MilliNats>,
    /// The most likely tokens there, most likely first.
    pub top: Vec<KeptAlternative>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(i32, String, MilliNats)", into = "(i32, String, MilliNats)")]
pub struct KeptAlternative {
    pub id: i32,
    /// The token's own text, special tokens by name.
    pub text: String,
    pub logprob: MilliNats,
}

type TokenRepr = (
    i32,
    String,
    MilliNats,
    Option<MilliNats>,
    Vec<KeptAlternative>,
);

impl From<TokenRepr> for KeptToken {
    fn from((id, text, logprob, entropy, top): TokenRepr) -> Self {
        Self {
            id,
            text,
            logprob,
            entropy,
            top,
        }
    }
}

impl From<KeptToken> for TokenRepr {
    fn from(t: KeptToken) -> Self {
        (t.id, t.text, t.logprob, t.entropy, t.top)
    }
}

impl From<(i32, String, MilliNats)> for KeptAlternative {
    fn from((id, text, logprob): (i32, String, MilliNats)) -> Self {
        Self { id, text, logprob }
    }
}

impl From<KeptAlternative> for (i32, String, MilliNats) {
    fn from(a: KeptAlternative) -> Self {
        (a.id, a.text, a.logprob)
    }
}

impl From<&Alternative> for KeptAlternative {
    fn from(a: &Alternative) -> Self {
        Self {
            id: a.token,
            text: a.text.clone(),
            logprob: MilliNats::from_nats(a.logprob),
        }
    }
}

impl KeptToken {
    /// A sampled token with the facts its `Token` event carried.
    pub fn new(id: i32, text: impl Into<String>, probs: &TokenProbs) -> Self {
        Self {
            id,
            text: text.into(),
            logprob: MilliNats::from_nats(probs.logprob),
            entropy: probs.entropy.map(MilliNats::from_nats),
            top: probs.top.iter().map(KeptAlternative::from).collect(),
        }
    }

    /// The token's probability.
    pub fn prob(&self) -> f32 {
        self.logprob.prob()
    }

    /// This token's place taken by alternative `choice`: same distribution
    /// (entropy, alternatives), the alternative's id, text and probability.
    pub fn forced(&self, choice: &KeptAlternative) -> Self {
        Self {
            id: choice.id,
            text: choice.text.clone(),
            logprob: choice.logprob,
            entropy: self.entropy,
            top: self.top.clone(),
        }
    }
}

/// Adds a streamed piece of a reply to its kept tokens: a sampled token
/// with its probabilities, or text held back to the end (a stop string's
/// near-miss, a split UTF-8 character; [`FLUSH_TOKEN`]), which belongs to the
/// last token. When the pieces no longer spell the reply token by token
/// (probabilities missing), nothing is kept rather than something wrong.
pub fn keep_piece(
    tokens: &mut Option<Vec<KeptToken>>,
    text: &str,
    token: i32,
    probs: Option<&TokenProbs>,
) {
    let Some(kept) = tokens else {
        return;
    };
    match (probs, kept.last_mut()) {
        (Some(probs), _) if token >= 0 => kept.push(KeptToken::new(token, text, probs)),
        (None, Some(last)) if token == FLUSH_TOKEN => last.text.push_str(text),
        (None, None) if token == FLUSH_TOKEN && text.is_empty() => {}
        _ => *tokens = None,
    }
}

/// Writes `value` as pretty JSON (two spaces, as `to_string_pretty`),
/// except that the value of every `tokens` key goes on one line: a reply's
/// tokens with their alternatives are hundreds of small arrays, which
/// pretty printing would spread over thousands of lines.
pub fn write_pretty<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, TokensOnOneLine::new());
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// The key whose value is written compactly.
const COMPACT_KEY: &[u8] = b"tokens";

struct TokensOnOneLine {
    pretty: PrettyFormatter<'static>,
    compact: CompactFormatter,
    /// The key being written, while it is.
    key: Option<Vec<u8>>,
    /// The next object value is a `tokens` value.
    armed: bool,
    /// Inside a compact value: how deep in arrays and objects.
    inside: Option<usize>,
}

impl TokensOnOneLine {
    fn new() -> Self {
        Self {
            pretty: PrettyFormatter::new(),
            compact: CompactFormatter,
            key: None,
            armed: false,
            inside: None,
        }
    }
}

/// Calls the compact formatter inside a `tokens` value, the pretty one
/// elsewhere.
macro_rules! either {
    ($self:ident, $method:ident($($arg:expr),*)) => {
        if $self.inside.is_some() {
            $self.compact.$method($($arg),*)
        } else {
            $self.pretty.$method($($arg),*)
        }
    };
}

impl Formatter for TokensOnOneLine {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(depth) = &mut self.inside {
            *depth += 1;
        }
        either!(self, begin_array(writer))
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(depth) = &mut self.inside {
            *depth = depth.saturating_sub(1);
        }
        either!(self, end_array(writer))
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        either!(self, begin_array_value(writer, first))
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        either!(self, end_array_value(writer))
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(depth) = &mut self.inside {
            *depth += 1;
        }
        either!(self, begin_object(writer))
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(depth) = &mut self.inside {
            *depth = depth.saturating_sub(1);
        }
        either!(self, end_object(writer))
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if self.inside.is_none() {
            self.key = Some(Vec::new());
        }
        either!(self, begin_object_key(writer, first))
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(key) = self.key.take() {
            self.armed = key == COMPACT_KEY;
        }
        either!(self, end_object_key(writer))
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        either!(self, begin_object_value(writer))?;
        if std::mem::take(&mut self.armed) {
            self.inside = Some(0);
        }
        Ok(())
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.inside == Some(0) {
            self.inside = None;
        }
        either!(self, end_object_value(writer))
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if let Some(key) = &mut self.key {
            key.extend_from_slice(fragment.as_bytes());
        }
        writer.write_all(fragment.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> KeptToken {
        KeptToken {
            id: 42,
            text: " Paris\n".into(),
            logprob: MilliNats(-259),
            entropy: Some(MilliNats(1234)),
            top: vec![
                KeptAlternative {
                    id: 42,
                    text: " Paris\n".into(),
                    logprob: MilliNats(-259),
                },
                KeptAlternative {
                    id: 2,
                    text: "<|im_end|>".into(),
                    logprob: MilliNats(-2760),
                },
            ],
        }
    }

    #[test]
    fn a_token_is_a_short_array() {
        let json = serde_json::to_string(&token()).unwrap();
        assert_eq!(
            json,
            r#"[42," Paris\n",-259,1234,[[42," Paris\n",-259],[2,"<|im_end|>",-2760]]]"#
        );
        assert_eq!(serde_json::from_str::<KeptToken>(&json).unwrap(), token());
    }

    #[test]
    fn nats_are_kept_to_a_thousandth() {
        assert_eq!(MilliNats::from_nats(-0.2594), MilliNats(-259));
        assert_eq!(MilliNats::from_nats(f32::NEG_INFINITY).0, -2_000_000_000);
        assert!((MilliNats(-693).prob() - 0.5).abs() < 1e-3);
    }

    #[test]
    fn tokens_go_on_one_line_and_the_rest_stays_pretty() {
        #[derive(Serialize)]
        struct Message {
            text: String,
            tokens: Option<Vec<KeptToken>>,
            branches: Vec<Vec<Message>>,
        }
        let inner = Message {
            text: "b".into(),
            tokens: Some(vec![token()]),
            branches: vec![],
        };
        let outer = Message {
            text: "a".into(),
            tokens: None,
            branches: vec![vec![inner]],
        };
        let value = serde_json::json!({ "messages": [outer], "after": [1, 2] });
        let written = String::from_utf8(write_pretty(&value).unwrap()).unwrap();
        let tokens = serde_json::to_string(&vec![token()]).unwrap();
        assert!(
            written.contains(&format!("\"tokens\": {tokens}\n")),
            "{written}"
        );
        // Pretty everywhere else, and the same value as serde_json's own.
        assert!(written.contains("\"after\": [\n"), "{written}");
        let parsed: serde_json::Value = serde_json::from_slice(written.as_bytes()).unwrap();
        assert_eq!(parsed, value);
        let without = serde_json::json!({"a": [1, {"b": null}], "c": "tokens"});
        assert_eq!(
            String::from_utf8(write_pretty(&without).unwrap()).unwrap(),
            serde_json::to_string_pretty(&without).unwrap()
        );
    }
}
