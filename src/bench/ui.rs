//! Frame render time of the chat screen with a long session, on ratatui's
//! TestBackend (drawing cost without the terminal's own).

use std::time::Instant;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde::Serialize;

use super::stats::Summary;
use crate::engine::protocol::Role;
use crate::tui::app::App;
use crate::tui::conversation::{Entry, EntryStatus};
use crate::tui::view;

#[derive(Debug, Serialize)]
pub struct UiReport {
    pub messages: usize,
    pub width: u16,
    pub height: u16,
    pub frame_ms: Summary,
}

/// A chat of `messages` turns of typical length (Markdown and code
/// included), for the UI and session-save benchmarks.
pub fn sample_app(messages: usize) -> App {
    let mut app = App::new("SmolLM2-135M-Instruct.Q4_1.gguf".into());
    app.chat.session_name = "bench".into();
    for i in 0..messages {
        let (role, text) = if i % 2 == 0 {
            (
                Role::User,
                format!("Question {i}: how do I keep slugs away from lettuce? 日本語 ok"),
            )
        } else {
            (
                Role::Assistant,
                format!(
                    "Answer {i}: use copper tape around the bed, water in the morning, and pick them \
                     off at dusk. Beer traps work too, and so does a border of crushed shells.\n\
                     ```\nprint('code block {i}')\n```"
                ),
            )
        };
        app.chat
            .entries
            .push(Entry::new(role, text, EntryStatus::Done));
    }
    app
}

pub fn measure(messages: usize, frames: usize) -> Result<UiReport, String> {
    let mut app = sample_app(messages);
    let (width, height) = (120, 40);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).map_err(|e| e.to_string())?;
    let mut samples = Vec::with_capacity(frames);
    for frame in 0..frames {
        // A token arrives between frames, as while streaming.
        if let Some(last) = app.chat.entries.last_mut() {
            last.text
                .push_str(if frame % 2 == 0 { " tok" } else { "en" });
        }
        let started = Instant::now();
        terminal
            .draw(|f| view::render(&app, f))
            .map_err(|e| e.to_string())?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(UiReport {
        messages,
        width,
        height,
        frame_ms: Summary::of(&samples),
    })
}
