//! Time to first token of a chat turn deep into a long conversation: a
//! history of about `--history-tokens` tokens is cached by one turn, then
//! the next turn (its reply and a new question decoded on top) is timed,
//! against the bare loop decoding as many tokens at the same depth.

use serde::Serialize;

use super::raw::RawModel;
use super::stats::Summary;
use super::{chat_turn, TurnShape};
use crate::engine::protocol::{ChatMessage, Role};
use crate::engine::EngineClient;

/// An earlier exchange, repeated to build the history: long enough that a
/// 3k-token history is a dozen turns, as a real long chat would be.
const EARLIER_QUESTION: &str = "Tell me more about looking after the beds through the season.";
const EARLIER_ANSWER: &str = "Keep the soil covered with a thin mulch of straw or \
compost so it holds moisture and stays cool in summer. Water deeply once or twice a week \
rather than a little every day, early in the morning, at the base of the plants. Pull weeds \
while they are small, after rain when the roots come out easily. Feed hungry crops such as \
tomatoes and squash every two weeks once they flower, and stake or tie tall plants before \
the wind does it for you. Walk the beds every few days to catch slugs, aphids and mildew \
early, and pick often: many plants give more when they are picked.";
const FIRST_QUESTION: &str = "Which of these jobs matters most in a dry summer?";
const NEXT_QUESTION: &str = "And in a wet one?";

/// Markup a chat template adds around one message, roughly (role tags and
/// separators); only used to size the history, which is reported as cached.
const MARKUP_PER_MESSAGE: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct HistoryTtft {
    /// The history asked for; `shape.cached` is what the turn found cached.
    pub target_tokens: usize,
    pub shape: TurnShape,
    pub whet_ms: Summary,
    pub raw_ms: Summary,
    /// whet median / raw median.
    pub ratio: f64,
}

/// The system prompt and enough earlier exchanges to make about
/// `target` tokens.
fn history(raw_model: &RawModel, target: usize) -> Vec<ChatMessage> {
    let per_exchange = raw_model.tokenize(EARLIER_QUESTION).len()
        + raw_model.tokenize(EARLIER_ANSWER).len()
        + 2 * MARKUP_PER_MESSAGE;
    let exchanges = target.div_ceil(per_exchange.max(1)).max(1);
    let mut messages = vec![ChatMessage::new(
        Role::System,
        "You are a friendly gardening assistant. Answer briefly.",
    )];
    for _ in 0..exchanges {
        messages.push(ChatMessage::new(Role::User, EARLIER_QUESTION));
        messages.push(ChatMessage::new(Role::Assistant, EARLIER_ANSWER));
    }
    messages
}

pub async fn measure(
    engine: &mut EngineClient,
    raw_model: &RawModel,
    raw_ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
    filler: &[llama_cpp_2::token::LlamaToken],
    target: usize,
    reps: usize,
) -> Result<HistoryTtft, String> {
    let mut whet = Vec::new();
    let mut raw = Vec::new();
    let mut shape = TurnShape::default();
    for _ in 0..reps {
        let mut messages = history(raw_model, target);
        messages.push(ChatMessage::new(Role::User, FIRST_QUESTION));
        // The turn before: evaluates the whole history (not timed), as the
        // cache holds it when a long chat goes on.
        let before = chat_turn(engine, &messages, false).await?;
        messages.push(ChatMessage::new(Role::Assistant, before.text));
        messages.push(ChatMessage::new(Role::User, NEXT_QUESTION));
        let turn = chat_turn(engine, &messages, true).await?;
        whet.push(turn.timing.ttft_ms);
        shape = TurnShape {
            cached: turn.stats.reused_tokens as usize,
            decoded: (turn.stats.prompt_tokens - turn.stats.reused_tokens) as usize,
        };
        raw.push(raw_model.measure_suffix(raw_ctx, filler, shape.cached, shape.decoded)?);
    }
    let whet_ms = Summary::of(&whet);
    let raw_ms = Summary::of(&raw);
    let ratio = if raw_ms.median > 0.0 {
        whet_ms.median / raw_ms.median
    } else {
        0.0
    };
    Ok(HistoryTtft {
        target_tokens: target,
        shape,
        whet_ms,
        raw_ms,
        ratio,
    })
}
