//! The terminal UI: a chat with the model (more screens to come).
//!
//! `app` holds the state and its pure `update`; `view` draws it; this module
//! is the driver: it owns the terminal and the engine, turns terminal and
//! engine events into messages, runs the effects `update` returns, and
//! redraws on a frame tick rather than once per token.

pub mod app;
pub mod keymap;
pub mod markdown;
pub mod sanitize;
pub mod theme;
pub mod view;

use std::io::stdout;
use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, EnableBracketedPaste, Event as TermEvent, EventStream, KeyEventKind,
};
use crossterm::execute;
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::engine::protocol::{Event, GenerateRequest, LoadRequest, ModelInfo, Prompt};
use crate::engine::{EngineClient, EngineError, SamplingParams, SpawnOptions};
use crate::store::session::{self, Session};
use app::{update, App, Effect, Msg, TurnFigures};

/// At most this often the screen is redrawn while tokens stream in.
const FRAME: Duration = Duration::from_millis(33);
const MAX_REPLY_TOKENS: u32 = 1024;

type Loading = oneshot::Receiver<Result<(EngineClient, ModelInfo), EngineError>>;

/// Where the conversation is kept: a session and its file.
pub struct SessionTarget {
    pub session: Session,
    pub path: PathBuf,
}

pub async fn run(
    load: LoadRequest,
    spawn: SpawnOptions,
    target: SessionTarget,
) -> Result<(), String> {
    // Installs a panic hook that restores the terminal before printing.
    let mut terminal = ratatui::init();
    let _ = execute!(stdout(), EnableBracketedPaste);
    let result = event_loop(&mut terminal, load, spawn, target).await;
    let _ = execute!(stdout(), DisableBracketedPaste);
    ratatui::restore();
    result
}

fn start_loading(load: &LoadRequest, spawn: &SpawnOptions) -> Loading {
    let (sender, receiver) = oneshot::channel();
    let (load, spawn) = (load.clone(), spawn.clone());
    tokio::spawn(async move {
        let result = async {
            let mut engine = EngineClient::spawn(&spawn).await?;
            let info = engine.load(load).await?;
            Ok((engine, info))
        }
        .await;
        let _ = sender.send(result);
    });
    receiver
}

async fn next_engine_event(engine: &mut Option<EngineClient>) -> Result<Event, EngineError> {
    match engine.as_mut() {
        Some(engine) => engine.next_event().await,
        None => std::future::pending().await,
    }
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    load: LoadRequest,
    spawn: SpawnOptions,
    target: SessionTarget,
) -> Result<(), String> {
    let model_name = load
        .model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut app = App::with_session(&target.session, model_name);
    let save = |app: &mut App| {
        if let Err(error) = session::save(&target.path, &app.to_session(Some(load.model.clone()))) {
            app.notice = Some(error.to_string());
        }
    };
    let mut engine: Option<EngineClient> = None;
    let mut loading: Option<Loading> = Some(start_loading(&load, &spawn));
    let mut terminal_events = EventStream::new();
    let mut frame_tick = tokio::time::interval(FRAME);
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut dirty = true;

    loop {
        let msg = tokio::select! {
            event = terminal_events.next() => match event {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => Msg::Key(key),
                Some(Ok(TermEvent::Paste(text))) => Msg::Paste(text),
                Some(Ok(TermEvent::Resize(..))) => { dirty = true; continue }
                Some(Ok(_)) => continue,
                // The terminal is gone: nothing left to draw on.
                Some(Err(_)) | None => break,
            },
            event = next_engine_event(&mut engine) => match event {
                Ok(event) => match engine_msg(event) { Some(msg) => msg, None => continue },
                Err(error) => {
                    engine = None;
                    Msg::EngineStopped(error.to_string())
                }
            },
            loaded = async { loading.as_mut().expect("guarded").await }, if loading.is_some() => {
                loading = None;
                match loaded {
                    Ok(Ok((client, info))) => {
                        engine = Some(client);
                        Msg::EngineLoaded {
                            model_name: info.name.clone().unwrap_or_else(|| app.model_name.clone()),
                            n_ctx: info.n_ctx,
                        }
                    }
                    Ok(Err(error)) => Msg::EngineLoadFailed(error.to_string()),
                    Err(_) => Msg::EngineLoadFailed("the loader stopped".into()),
                }
            },
            _ = frame_tick.tick() => {
                if dirty {
                    terminal.draw(|frame| view::render(&app, frame)).map_err(|e| e.to_string())?;
                    dirty = false;
                }
                continue;
            },
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
        };
        dirty = true;
        let effects = update(&mut app, msg);
        for effect in effects {
            match effect {
                Effect::Quit => {}
                Effect::SaveSession => save(&mut app),
                Effect::Generate { messages } => {
                    let request = GenerateRequest {
                        id: 0,
                        prompt: Prompt::Chat { messages },
                        // A new seed per turn, or regenerating would repeat the reply.
                        sampling: SamplingParams {
                            seed: SamplingParams::fresh_seed(),
                            ..SamplingParams::default()
                        },
                        max_tokens: MAX_REPLY_TOKENS,
                        stop: Vec::new(),
                        reuse_prefix: true,
                        ignore_eos: false,
                    };
                    let started = match engine.as_mut() {
                        Some(engine) => engine.start_generate(request),
                        None => Err(EngineError::Request("the engine is not running".into())),
                    };
                    let msg = match started {
                        Ok(id) => Msg::GenerationStarted { id },
                        Err(error) => Msg::GenerationFailed {
                            id: None,
                            message: error.to_string(),
                        },
                    };
                    // A failure to start is saved like any other failed turn.
                    if update(&mut app, msg).contains(&Effect::SaveSession) {
                        save(&mut app);
                    }
                }
                Effect::Cancel { id } => {
                    if let Some(engine) = &engine {
                        engine.canceller().cancel(id);
                    }
                }
                Effect::RestartEngine => {
                    engine = None;
                    loading = Some(start_loading(&load, &spawn));
                }
                Effect::Suspend => {
                    suspend(terminal)?;
                }
            }
        }
        if app.should_quit {
            break;
        }
        // Keys are drawn at once; streamed tokens wait for the frame tick.
        if !app.is_busy() {
            terminal
                .draw(|frame| view::render(&app, frame))
                .map_err(|e| e.to_string())?;
            dirty = false;
        }
    }
    // Whatever arrived of a reply in flight is kept.
    if app.is_busy() {
        save(&mut app);
    }
    if let Some(engine) = engine {
        engine.shutdown().await;
    }
    Ok(())
}

fn engine_msg(event: Event) -> Option<Msg> {
    match event {
        Event::Token { id, text, .. } => Some(Msg::Token { id, text }),
        Event::Done {
            id, reason, stats, ..
        } => Some(Msg::GenerationDone {
            id,
            reason,
            context_used: stats.prompt_tokens + stats.generated_tokens,
            figures: TurnFigures {
                ttft_ms: stats.ttft_ms,
                tokens_per_sec: stats.generation_tokens_per_sec(),
            },
        }),
        Event::Error { id, message } => Some(Msg::GenerationFailed { id, message }),
        _ => None,
    }
}

/// Ctrl+Z: give the terminal back, stop, and take it again on `fg`.
fn suspend(terminal: &mut DefaultTerminal) -> Result<(), String> {
    let _ = execute!(stdout(), DisableBracketedPaste);
    ratatui::restore();
    // SAFETY: raising a signal on our own process.
    unsafe {
        libc::raise(libc::SIGTSTP);
    }
    // Execution continues here after SIGCONT.
    *terminal = ratatui::init();
    let _ = execute!(stdout(), EnableBracketedPaste);
    terminal.clear().map_err(|e| e.to_string())
}
