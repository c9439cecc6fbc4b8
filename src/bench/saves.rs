//! What saving a reply while it streams costs: the session file rewritten
//! by the chat's own policy (`StreamSaves`) while a reply arrives at the
//! model's pace. The saves are real (serialise, write, fsync, rename, in a
//! folder beside the real sessions); only the arrival of tokens is
//! simulated, on a clock that the saves' real cost advances too.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::Summary;
use crate::engine::protocol::Role;
use crate::store::session;
use crate::tui::conversation::{Entry, EntryStatus};
use crate::tui::sessions::StreamSaves;

#[derive(Debug, Serialize)]
pub struct SavesReport {
    pub messages: usize,
    pub session_bytes: u64,
    /// One full save of the session (before the reply).
    pub save_ms: Summary,
    pub reply_tokens: usize,
    pub tokens_per_sec: f64,
    /// Saves while the reply streamed (the turn's first and last saves,
    /// which happened before too, not counted).
    pub saves_while_streaming: usize,
    pub bytes_written_while_streaming: u64,
    /// Time spent saving, as a share of the reply's duration.
    pub saving_share: f64,
}

/// The frame tick on which the driver checks whether a save is due.
const FRAME: Duration = Duration::from_millis(33);

pub fn measure(
    messages: usize,
    reply_tokens: usize,
    tokens_per_sec: f64,
    dir: &Path,
) -> Result<SavesReport, String> {
    let mut app = super::ui::sample_app(messages);
    let path = dir.join("bench.json");
    let save = |app: &crate::tui::app::App| -> Result<(Duration, u64), String> {
        let started = Instant::now();
        session::save(&path, &app.to_session()).map_err(|e| e.to_string())?;
        let cost = started.elapsed();
        let bytes = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        Ok((cost, bytes))
    };
    let mut samples = Vec::new();
    let mut session_bytes = 0;
    for _ in 0..7 {
        let (cost, bytes) = save(&app)?;
        samples.push(cost.as_secs_f64() * 1000.0);
        session_bytes = bytes;
    }

    app.chat.entries.push(Entry::new(
        Role::User,
        "Tell me a long story.",
        EntryStatus::Done,
    ));
    app.chat
        .entries
        .push(Entry::new(Role::Assistant, "", EntryStatus::Streaming));
    let mut saves = StreamSaves::default();
    let start = Instant::now();
    // The reply starts with a save (the empty reply), as in the chat.
    let (cost, _) = save(&app)?;
    saves.saved(start, cost, 0);
    let mut clock = start + cost;
    let per_token = Duration::from_secs_f64(1.0 / tokens_per_sec);
    let mut arrived = 0;
    let mut next_token = clock;
    let (mut count, mut bytes_written, mut saving) = (0, 0, Duration::ZERO);
    while arrived < reply_tokens {
        while arrived < reply_tokens && next_token <= clock {
            if let Some(reply) = app.chat.entries.last_mut() {
                reply.text.push_str(" word");
            }
            arrived += 1;
            next_token += per_token;
        }
        let len = app.chat.entries.last().map_or(0, |e| e.text.len());
        if saves.due(clock, len) {
            let (cost, bytes) = save(&app)?;
            saves.saved(clock, cost, len);
            clock += cost;
            count += 1;
            bytes_written += bytes;
            saving += cost;
        }
        clock += FRAME;
    }
    let duration = clock - start;
    Ok(SavesReport {
        messages,
        session_bytes,
        save_ms: Summary::of(&samples),
        reply_tokens,
        tokens_per_sec,
        saves_while_streaming: count,
        bytes_written_while_streaming: bytes_written,
        saving_share: saving.as_secs_f64() / duration.as_secs_f64(),
    })
}
