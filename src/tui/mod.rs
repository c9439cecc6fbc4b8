//! The terminal UI: a chat with the model.
//!
//! `app` holds the state and its pure `update`; `view` draws it; this module
//! is the driver: it owns the terminal and the engine, turns terminal and
//! engine events into messages, runs the effects `update` returns (IO lives
//! only here), and redraws on a frame tick rather than once per token.

pub mod app;
pub mod chat;
pub mod compare;
pub mod conversation;
pub mod duel_view;
pub mod experiments;
pub mod keymap;
pub mod lens;
pub mod markdown;
pub mod model_list;
pub mod picker;
pub mod rating;
pub mod rounds;
pub mod run_settings;
pub mod sanitize;
pub mod sessions;
pub mod settings;
pub mod side_by_side;
pub mod terminal;
pub mod theme;
pub mod view;
pub mod widgets;
pub mod workbench;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::engine::protocol::{
    BeamRequest, ChatMessage, Command, Event, GenerateRequest, LoadRequest, ModelInfo, Prompt, Role,
};
use crate::engine::remote::RemoteModel;
use crate::engine::sampling::SamplingOverrides;
use crate::engine::{EngineClient, EngineError, SamplingParams, SpawnOptions};
use crate::sampling_defaults;
use crate::store::dates::now_unix_ms;
use crate::store::lock::SessionLock;
use crate::store::runs;
use crate::store::session::{self, Session, StoredMessage};
use crate::store::{export, library, rescue};
use app::{update, App, Effect, Msg, Notice, TurnFigures};
use keymap::Keymap;
use picker::{PickerItem, PickerKind};
use sessions::{SessionFiles, StreamSaves};
use theme::Theme;

/// At most this often the screen is redrawn while tokens stream in.
const FRAME: Duration = Duration::from_millis(33);

/// The workbench asks the engine for the exact input once typing has
/// paused this long, not on every key.
const PREVIEW_DEBOUNCE: Duration = Duration::from_millis(250);

/// A preview waiting for typing to pause, then for the engine's answer.
#[derive(Default)]
struct PreviewRequests {
    /// The latest messages to format, and when to ask.
    waiting: Option<(u64, Vec<ChatMessage>, Instant)>,
    /// The request sent: (engine request id, preview revision).
    sent: Option<(u64, u64)>,
}

/// Set to make the UI panic on the first key: the test of the panic hook.
pub const PANIC_TEST_ENV: &str = "WHET_TEST_PANIC_ON_KEY";

type Loading = oneshot::Receiver<Result<(EngineClient, ModelInfo), EngineError>>;

/// Where the conversation is kept: a session, the folder of session files,
/// and the lock that keeps other whets off this session.
pub struct SessionTarget {
    pub session: Session,
    pub dir: PathBuf,
    pub lock: SessionLock,
}

/// How the UI ended: what the exit code and the lines printed once the
/// terminal is back should say.
#[derive(Debug, Default)]
pub struct Farewell {
    /// The signal that ended it (SIGTERM, SIGHUP, SIGINT, SIGQUIT).
    pub signal: Option<i32>,
    /// The session file could not be written at the end.
    pub session_lost: bool,
    /// Lines for stderr: where unsaved work was put.
    pub lines: Vec<String>,
    /// The session as JSON, for stdout, when not even a rescue copy could
    /// be written anywhere.
    pub session_json: Option<String>,
}

/// The look and the keys, read before the UI starts, with what was wrong
/// in the user's files (shown in the UI, never fatal).
pub struct UiConfig {
    pub theme: Theme,
    pub keymap: Keymap,
    /// The user's sampling defaults (`<config>/sampling.toml`).
    pub sampling: SamplingOverrides,
    pub problems: Vec<String>,
}

impl UiConfig {
    /// Reads theme `name` (shipped or from `<config>/themes`) and
    /// `<config>/keymap.toml` and `<config>/sampling.toml`. Only an unknown
    /// theme name is an error.
    pub fn load(theme_name: &str, config_dir: Option<&Path>) -> Result<Self, String> {
        let themes_dir = config_dir.map(|d| d.join("themes"));
        let loaded = theme::load(theme_name, themes_dir.as_deref())?;
        let mut problems = loaded.warnings;
        let keymap = match config_dir {
            Some(dir) => {
                let (keymap, keymap_problems) = Keymap::load(&dir.join("keymap.toml"));
                problems.extend(keymap_problems);
                keymap
            }
            None => Keymap::defaults(),
        };
        let sampling = match config_dir {
            Some(dir) => {
                let (sampling, sampling_problems) =
                    sampling_defaults::load_user_file(&dir.join(sampling_defaults::USER_FILE));
                problems.extend(sampling_problems);
                sampling
            }
            None => SamplingOverrides::default(),
        };
        Ok(Self {
            theme: loaded.theme,
            keymap,
            sampling,
            problems,
        })
    }
}

pub async fn run(
    load: LoadRequest,
    spawn: SpawnOptions,
    target: SessionTarget,
    config: UiConfig,
) -> Result<Farewell, String> {
    let mut terminal = terminal::enter();
    terminal::install_panic_hook();
    let result = event_loop(&mut terminal, load, spawn, target, config).await;
    terminal::leave();
    result
}

/// Spawns a worker and loads the model in the background; progress comes
/// through `progress` so the UI can show it while staying responsive.
fn start_loading(
    load: LoadRequest,
    spawn: &SpawnOptions,
    progress: tokio::sync::mpsc::UnboundedSender<f32>,
) -> Loading {
    let (sender, receiver) = oneshot::channel();
    let spawn = spawn.clone();
    tokio::spawn(async move {
        let result = async {
            let mut engine = EngineClient::spawn(&spawn).await?;
            let info = engine
                .load_with_progress(load, |fraction| {
                    let _ = progress.send(fraction);
                })
                .await?;
            Ok((engine, info))
        }
        .await;
        let _ = sender.send(result);
    });
    receiver
}

/// The next message of the experiment running in the background.
async fn next_experiment_msg(task: &mut Option<experiments::driver::Task>) -> Option<Msg> {
    match task.as_mut() {
        Some(task) => task.messages.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_duel_event(
    runner: &mut Option<crate::arena::runner::DuelRunner>,
) -> Option<crate::arena::runner::DuelEvent> {
    match runner.as_mut() {
        Some(runner) => runner.events.recv().await,
        None => std::future::pending().await,
    }
}

/// How one column of a comparison starts: a worker for a local model
/// with `threads`, or the remote backend.
fn duel_column(
    model: &crate::arena::duel::ModelRef,
    workers: &SpawnOptions,
    base: LoadRequest,
    threads: u32,
) -> Result<crate::arena::runner::ColumnStart, String> {
    use crate::arena::duel::ModelRef;
    let (spawn, model) = match model {
        ModelRef::Local { path, .. } => (workers.clone(), path.clone()),
        ModelRef::Remote(remote) => (
            SpawnOptions {
                remote: Some(crate::engine::remote::Backends::load()?.resolve_model(remote)?),
                ..workers.clone()
            },
            PathBuf::from(&remote.backend),
        ),
    };
    Ok(crate::arena::runner::ColumnStart {
        engine: None,
        spawn,
        load: LoadRequest {
            model,
            threads,
            ..base
        },
    })
}

async fn next_engine_event(engine: &mut Option<EngineClient>) -> Result<Event, EngineError> {
    match engine.as_mut() {
        Some(engine) => engine.next_event().await,
        None => std::future::pending().await,
    }
}

/// How the engine for the app's model starts: a worker for a local file,
/// or a connection to the remote backend (read from backends.toml again,
/// so that an edit there applies to the next pick).
fn engine_spawn(workers: &SpawnOptions, app: &App) -> Result<SpawnOptions, String> {
    let remote = match &app.remote {
        Some(remote) => Some(crate::engine::remote::Backends::load()?.resolve_model(remote)?),
        None => None,
    };
    Ok(SpawnOptions {
        remote,
        ..workers.clone()
    })
}

/// The load request for the model and context size the app holds now.
fn load_request(base: &LoadRequest, app: &App) -> LoadRequest {
    LoadRequest {
        model: app.model_path.clone(),
        n_ctx: app.chat.settings.reply.n_ctx.unwrap_or(base.n_ctx),
        ..base.clone()
    }
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    load: LoadRequest,
    spawn: SpawnOptions,
    target: SessionTarget,
    config: UiConfig,
) -> Result<Farewell, String> {
    let mut app = App::with_session(&target.session, load.model.clone());
    // The engine the UI starts with; a model picked later replaces it.
    app.remote = spawn.remote.as_ref().map(|backend| RemoteModel {
        backend: backend.name.clone(),
        model: backend.model.clone(),
    });
    let workers = SpawnOptions {
        remote: None,
        ..spawn.clone()
    };
    // Answers that arrive on their own time (the picker's backends).
    let (background, mut background_msgs) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let rescue_places = rescue::candidates();
    app.chat.rescue_hint = rescue::first_place(&rescue_places);
    app.theme = config.theme;
    app.keymap = config.keymap;
    app.set_user_sampling(config.sampling);
    if let Some(first) = config.problems.first() {
        for problem in &config.problems {
            tracing::warn!("{problem}");
        }
        let more = match config.problems.len() {
            1 => String::new(),
            n => format!(" (+{} more in the log)", n - 1),
        };
        app.notice = Some(Notice {
            text: format!("{first}{more}"),
            error: true,
        });
    }
    let mut files = SessionFiles::new(target.dir, target.lock);
    let sessions_dir = files.dir.clone();
    let mut stream_saves = StreamSaves::default();
    let mut farewell = Farewell::default();
    let panic_on_key = std::env::var_os(PANIC_TEST_ENV).is_some();
    let mut engine: Option<EngineClient> = None;
    let (progress_sender, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let mut loading: Option<Loading> = Some(start_loading(
        load_request(&load, &app),
        &spawn,
        progress_sender.clone(),
    ));
    let mut terminal_events = EventStream::new();
    let mut frame_tick = tokio::time::interval(FRAME);
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    // In raw mode Ctrl+C is a key; SIGINT can only come from another shell.
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    // Its default would dump core and leave the terminal raw.
    let mut sigquit = signal(SignalKind::quit()).map_err(|e| e.to_string())?;
    let mut dirty = true;
    let mut previews = PreviewRequests::default();
    let templates_dir = crate::paths::user_templates_dir();
    // The experiment running in the background, if any.
    let mut experiment: Option<experiments::driver::Task> = None;
    // The compare mode's two engines, while a comparison runs.
    let mut duel_runner: Option<crate::arena::runner::DuelRunner> = None;

    loop {
        let msg = tokio::select! {
            event = terminal_events.next() => match event {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                    if panic_on_key {
                        panic!("{PANIC_TEST_ENV} is set: panicking on a key as asked");
                    }
                    Msg::Key(key)
                }
                Some(Ok(TermEvent::Paste(text))) => Msg::Paste(text),
                Some(Ok(TermEvent::Mouse(mouse))) => Msg::Mouse(mouse),
                Some(Ok(TermEvent::Resize(..))) => { dirty = true; continue }
                Some(Ok(_)) => continue,
                // The terminal is gone: nothing left to draw on.
                Some(Err(_)) | None => break,
            },
            event = next_engine_event(&mut engine) => match event {
                Ok(event) => match preview_answer(&mut previews, &event).or_else(|| engine_msg(event)) {
                    Some(msg) => msg,
                    None => continue,
                },
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
                            model_name: crate::models::display_name(&info),
                            model_path: info.path.clone(),
                            n_ctx: info.n_ctx,
                        }
                    }
                    Ok(Err(error)) => Msg::EngineLoadFailed(error.to_string()),
                    Err(_) => Msg::EngineLoadFailed("the loader stopped".into()),
                }
            },
            Some(fraction) = progress.recv() => Msg::LoadProgress(fraction),
            Some(msg) = background_msgs.recv() => msg,
            Some(event) = next_duel_event(&mut duel_runner) => Msg::Duel(Box::new(event)),
            Some(msg) = next_experiment_msg(&mut experiment) => {
                if matches!(msg, Msg::ExperimentFinished { .. }) {
                    experiment = None;
                }
                msg
            },
            _ = preview_due(&previews), if previews.waiting.is_some() && engine.is_some() => {
                let (revision, messages, _) = previews.waiting.take().expect("guarded");
                if let Some(engine) = engine.as_mut() {
                    let id = engine.fresh_id();
                    let sent = engine.send(Command::FormatPrompt { id, prompt: Prompt::Chat { messages } });
                    match sent {
                        Ok(()) => previews.sent = Some((id, revision)),
                        Err(error) => {
                            update(&mut app, Msg::PreviewFormatted { revision, result: Err(error.to_string()) });
                        }
                    }
                }
                dirty = true;
                continue;
            },
            _ = frame_tick.tick() => {
                // A growing reply reaches the disk every few seconds, so a
                // kill -9 or a power cut keeps what was on screen.
                if app.is_busy() && stream_saves.due(Instant::now(), streamed_len(&app)) {
                    let msg = save_timed(&app, &files, &mut stream_saves);
                    update(&mut app, msg);
                }
                if dirty {
                    terminal.draw(|frame| view::render(&app, frame)).map_err(|e| e.to_string())?;
                    dirty = false;
                }
                continue;
            },
            _ = sigterm.recv() => { farewell.signal = Some(libc::SIGTERM); break }
            _ = sighup.recv() => { farewell.signal = Some(libc::SIGHUP); break }
            _ = sigint.recv() => { farewell.signal = Some(libc::SIGINT); break }
            _ = sigquit.recv() => { farewell.signal = Some(libc::SIGQUIT); break }
        };
        dirty = true;
        let mut pending = update(&mut app, msg);
        // Effects can answer with messages, whose effects run in turn.
        while !pending.is_empty() {
            let mut answers = Vec::new();
            for effect in pending {
                let answer = match effect {
                    Effect::Quit => None,
                    Effect::SaveSession => Some(save_timed(&app, &files, &mut stream_saves)),
                    Effect::Generate {
                        messages,
                        continue_reply,
                    } => Some(start_generation(
                        &app,
                        engine.as_mut(),
                        messages,
                        continue_reply,
                        None,
                    )),
                    Effect::ContinueFrom {
                        messages,
                        open_tokens,
                    } => Some(start_generation(
                        &app,
                        engine.as_mut(),
                        messages,
                        true,
                        Some(open_tokens),
                    )),
                    Effect::Cancel { id } => {
                        if let Some(engine) = &engine {
                            engine.canceller().cancel(id);
                        }
                        None
                    }
                    Effect::StartDuelEngines {
                        models,
                        chat_column,
                        pace,
                    } => {
                        // Engines of an earlier start stop (the pace changed
                        // their threads); the first start takes the chat's.
                        let mut chat_engine = engine.take();
                        if let Some(runner) = duel_runner.take() {
                            for old in runner.finish().await.into_iter().flatten() {
                                old.shutdown().await;
                            }
                        }
                        let base = load_request(&load, &app);
                        let local = models.iter().filter(|m| !m.is_remote()).count();
                        let threads =
                            crate::arena::runner::threads_per_worker(pace, local, base.threads);
                        let mut problem = None;
                        let mut columns = Vec::new();
                        for column in crate::arena::duel::Column::BOTH {
                            let model = &models[column.index()];
                            match duel_column(model, &workers, base.clone(), threads) {
                                Ok(mut start) => {
                                    if column == chat_column
                                        && (threads == base.threads || model.is_remote())
                                    {
                                        start.engine = chat_engine.take();
                                    }
                                    columns.push(start);
                                }
                                Err(message) => problem = Some(message),
                            }
                        }
                        if let Some(unused) = chat_engine.take() {
                            unused.shutdown().await;
                        }
                        match (problem, <[_; 2]>::try_from(columns)) {
                            (None, Ok(columns)) => {
                                duel_runner =
                                    Some(crate::arena::runner::DuelRunner::start(columns));
                                None
                            }
                            (problem, _) => Some(error_notice(format!(
                                "cannot start the comparison's engines: {}",
                                problem.unwrap_or_default()
                            ))),
                        }
                    }
                    Effect::DuelJobs { jobs, settings } => match duel_runner.as_mut() {
                        Some(runner) => {
                            for job in jobs {
                                runner.run(job, &settings);
                            }
                            None
                        }
                        None => Some(error_notice(
                            "the comparison's engines are not running".into(),
                        )),
                    },
                    Effect::RecordVote(vote) => crate::arena::votes_file::default_path()
                        .and_then(|path| crate::arena::votes_file::append(&path, &vote))
                        .err()
                        .map(error_notice),
                    Effect::EndDuel { keep } => match duel_runner.take() {
                        Some(runner) => {
                            let [a, b] = runner.finish().await;
                            let (kept, other) = match keep {
                                crate::arena::duel::Column::A => (a, b),
                                crate::arena::duel::Column::B => (b, a),
                            };
                            if let Some(other) = other {
                                other.shutdown().await;
                            }
                            match kept {
                                Some(kept) => {
                                    engine = Some(kept);
                                    None
                                }
                                None => Some(Msg::EngineStopped(
                                    "the kept model's engine had stopped".into(),
                                )),
                            }
                        }
                        None => None,
                    },
                    Effect::RestartEngine => {
                        if let Some(old) = engine.take() {
                            old.shutdown().await;
                        }
                        match engine_spawn(&workers, &app) {
                            Ok(spawn) => {
                                loading = Some(start_loading(
                                    load_request(&load, &app),
                                    &spawn,
                                    progress_sender.clone(),
                                ));
                                None
                            }
                            Err(message) => Some(Msg::EngineLoadFailed(message)),
                        }
                    }
                    Effect::Suspend => {
                        terminal::suspend(terminal).map_err(|e| e.to_string())?;
                        None
                    }
                    Effect::Copy(text) => terminal::copy_to_clipboard(&text)
                        .err()
                        .map(|e| error_notice(format!("cannot copy: {e}"))),
                    Effect::Export => Some(export_session(&app)),
                    Effect::ListModels => {
                        let local = (app.remote.is_none()).then_some(app.model_path.as_path());
                        let mut items = model_list::local_items(
                            crate::paths::models_dir().ok().as_deref(),
                            local,
                        );
                        let backends = crate::engine::remote::Backends::load();
                        items.extend(model_list::backend_stand_ins(
                            &backends,
                            app.remote.as_ref(),
                        ));
                        if let Ok(backends) = backends {
                            model_list::ask_backends(
                                backends,
                                app.remote.clone(),
                                background.clone(),
                            );
                        }
                        Some(Msg::PickerItems(PickerKind::Models, items))
                    }
                    Effect::ListSessions => Some(Msg::PickerItems(
                        PickerKind::Sessions,
                        session_items(&sessions_dir, &app.chat.session_name),
                    )),
                    Effect::OpenSession(name) => Some(match files.open(&app.to_session(), &name) {
                        Ok(session) => Msg::SessionOpened(Box::new(session)),
                        Err(error) => error_notice(error),
                    }),
                    Effect::RenameSession { from, to } => {
                        match files.rename(&app.chat.session_name, &from, &to) {
                            Ok(_) => {
                                answers.push(Msg::SessionRenamed { from, to });
                                Some(Msg::PickerItems(
                                    PickerKind::Sessions,
                                    session_items(&sessions_dir, &app.chat.session_name),
                                ))
                            }
                            Err(error) => Some(error_notice(error)),
                        }
                    }
                    Effect::ListTemplates => Some(Msg::Templates(crate::prompt::list(
                        templates_dir.as_deref(),
                    ))),
                    Effect::SaveTemplate(template) => {
                        Some(save_template(*template, templates_dir.as_deref()))
                    }
                    Effect::ReadValueFile { var, path } => Some(read_value_file(var, &path)),
                    Effect::FormatPreview { revision, messages } => {
                        previews.waiting =
                            Some((revision, messages, Instant::now() + PREVIEW_DEBOUNCE));
                        None
                    }
                    Effect::RunTemplate {
                        messages,
                        sampling,
                        max_tokens,
                        stop,
                        constraint,
                    } => {
                        let request = GenerateRequest {
                            id: 0,
                            prompt: Prompt::Chat { messages },
                            sampling,
                            max_tokens,
                            stop,
                            reuse_prefix: true,
                            ignore_eos: false,
                            probs: run_probs(&app),
                            constraint,
                        };
                        Some(started(engine.as_mut(), request))
                    }
                    Effect::ForkRun {
                        messages,
                        open_tokens,
                        sampling,
                        max_tokens,
                        stop,
                    } => {
                        let request = GenerateRequest {
                            id: 0,
                            prompt: Prompt::ChatContinue {
                                messages,
                                open_tokens: Some(open_tokens),
                            },
                            sampling,
                            max_tokens,
                            stop,
                            reuse_prefix: true,
                            ignore_eos: false,
                            probs: run_probs(&app),
                            constraint: None,
                        };
                        Some(started(engine.as_mut(), request))
                    }
                    Effect::RunBeams {
                        messages,
                        beams,
                        max_tokens,
                    } => Some(match engine.as_mut() {
                        Some(engine) => {
                            let id = engine.fresh_id();
                            let request = BeamRequest {
                                id,
                                prompt: Prompt::Chat { messages },
                                beams,
                                max_tokens,
                            };
                            match engine.send(Command::Beams(request)) {
                                Ok(()) => Msg::GenerationStarted { id },
                                Err(error) => Msg::GenerationFailed {
                                    id: None,
                                    message: error.to_string(),
                                },
                            }
                        }
                        None => Msg::GenerationFailed {
                            id: None,
                            message: "the engine is not running".into(),
                        },
                    }),
                    Effect::SaveRun(record) => Some(save_run(*record)),
                    Effect::ListRuns => Some(Msg::Runs(
                        runs::runs_dir()
                            .map(|dir| runs::list::<runs::RunRecord>(&dir))
                            .unwrap_or_default(),
                    )),
                    Effect::OpenRun(id) => Some(
                        match runs::runs_dir().and_then(|dir| runs::load(&dir, &id)) {
                            Ok(record) => Msg::RunOpened(Box::new(record)),
                            Err(error) => error_notice(error),
                        },
                    ),
                    Effect::SaveRefinement(run) => Some(save_refinement(*run)),
                    Effect::ListRefinements => Some(Msg::Refinements(
                        crate::refine::store::refinements_dir()
                            .map(|dir| runs::list::<crate::refine::RefineRun>(&dir))
                            .unwrap_or_default(),
                    )),
                    Effect::OpenRefinement { id, compare } => Some(
                        match crate::refine::store::refinements_dir()
                            .and_then(|dir| runs::load(&dir, &id))
                        {
                            Ok(run) => Msg::RefinementOpened {
                                run: Box::new(run),
                                compare,
                            },
                            Err(error) => error_notice(error),
                        },
                    ),
                    Effect::ExportRefinement(run) => Some(export_refinement(&run)),
                    Effect::StartChat {
                        messages,
                        sampling,
                        reply,
                    } => Some(start_chat(&app, &mut files, messages, sampling, reply)),
                    Effect::ListExperiments => Some(experiments::driver::list()),
                    Effect::OpenExperimentRun(id) => Some(experiments::driver::open(&id)),
                    Effect::StartExperiment(file) => {
                        match engine_spawn(&workers, &app)
                            .map_err(error_notice)
                            .and_then(|spawn| {
                                experiments::driver::start(
                                    &file,
                                    &load_request(&load, &app),
                                    &spawn,
                                )
                            }) {
                            Ok(task) => {
                                experiment = Some(task);
                                Some(experiments::driver::list())
                            }
                            Err(msg) => Some(msg),
                        }
                    }
                    Effect::ResumeExperiment(id) => {
                        match engine_spawn(&workers, &app)
                            .map_err(error_notice)
                            .and_then(|spawn| {
                                experiments::driver::resume(&id, &load_request(&load, &app), &spawn)
                            }) {
                            Ok(task) => {
                                experiment = Some(task);
                                None
                            }
                            Err(msg) => Some(msg),
                        }
                    }
                    Effect::StopExperiment => {
                        if let Some(task) = experiment.as_mut() {
                            task.stop();
                        }
                        None
                    }
                    Effect::SaveRatings { dir, ratings } => {
                        Some(experiments::driver::save_ratings(&dir, &ratings))
                    }
                    Effect::CompareExperimentRuns { a, b } => {
                        Some(experiments::driver::compare_runs(&a, &b))
                    }
                    Effect::ExportExperimentRun(id) => Some(experiments::driver::export(&id)),
                    Effect::MakeExperiment {
                        saved,
                        edited,
                        dataset,
                    } => Some(experiments::driver::make_from_template(
                        saved.as_deref(),
                        edited.as_deref(),
                        &dataset,
                    )),
                    Effect::DeleteSession(name) => match files.delete(&name) {
                        Ok(moved_to) => {
                            answers.push(Msg::Notice(Notice {
                                text: library::deleted_message(&name, &moved_to),
                                error: false,
                            }));
                            Some(Msg::PickerItems(
                                PickerKind::Sessions,
                                session_items(&sessions_dir, &app.chat.session_name),
                            ))
                        }
                        Err(error) => Some(error_notice(error)),
                    },
                };
                answers.extend(answer);
            }
            pending = Vec::new();
            for answer in answers {
                pending.extend(update(&mut app, answer));
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
    // Whatever arrived of a reply in flight is kept, and a save that
    // failed is tried once more; if it fails again, a copy goes elsewhere.
    if app.is_busy() || app.chat.unsaved.is_some() {
        keep_session(&app, &files, &rescue_places, &mut farewell);
    }
    if let Some(run) = app.wb.run.as_ref().filter(|r| r.is_streaming()) {
        if let Msg::Notice(notice) = save_run(run.record.clone()) {
            tracing::warn!("{}", notice.text);
        }
    }
    if let Some(rounds) = app.rounds.as_ref().filter(|r| r.is_running()) {
        if let Msg::Notice(notice) = save_refinement(rounds.run().clone()) {
            tracing::warn!("{}", notice.text);
        }
    }
    farewell.lines.extend(keep_unsaved_template(&app));
    if let Some(engine) = engine {
        engine.shutdown().await;
    }
    Ok(farewell)
}

/// The length of the reply streaming in, to tell whether it grew.
fn streamed_len(app: &App) -> usize {
    app.chat.entries.last().map_or(0, |e| e.text.len())
}

/// Writes the session file, timing it so that saves while streaming stay
/// a small share of the time.
fn save_timed(app: &App, files: &SessionFiles, stream_saves: &mut StreamSaves) -> Msg {
    let started = Instant::now();
    let result = files.save(&app.to_session());
    stream_saves.saved(started, started.elapsed(), streamed_len(app));
    if let Err(error) = &result {
        tracing::error!("{error}");
    }
    Msg::SessionSaved(result)
}

/// On the way out with turns not on disk: one more try at the session
/// file, else a rescue copy, else the session printed once the terminal
/// is back.
fn keep_session(app: &App, files: &SessionFiles, places: &[PathBuf], farewell: &mut Farewell) {
    let session = app.to_session();
    let Err(error) = files.save(&session) else {
        return;
    };
    farewell.session_lost = true;
    tracing::error!("{error}");
    match rescue::write_copy(&session, places) {
        Ok(copy) => farewell.lines.push(format!(
            "whet: {error}\nwhet: the conversation was written to {} instead; move it into {} to open it again",
            copy.display(),
            files.dir.display()
        )),
        Err(rescue_error) => {
            farewell.lines.push(format!(
                "whet: {error}\nwhet: no copy could be written either ({rescue_error}); the session follows on stdout as JSON"
            ));
            farewell.session_json = serde_json::to_string_pretty(&session).ok();
        }
    }
}

fn error_notice(text: String) -> Msg {
    Msg::Notice(Notice { text, error: true })
}

fn start_generation(
    app: &App,
    engine: Option<&mut EngineClient>,
    messages: Vec<crate::engine::protocol::ChatMessage>,
    continue_reply: bool,
    open_tokens: Option<Vec<i32>>,
) -> Msg {
    let settings = &app.chat.settings;
    let continued = continue_reply || open_tokens.is_some();
    let request = GenerateRequest {
        id: 0,
        prompt: if continued {
            Prompt::ChatContinue {
                messages,
                open_tokens,
            }
        } else {
            Prompt::Chat { messages }
        },
        sampling: SamplingParams {
            // A new seed per turn unless the user fixed one, or
            // regenerating would repeat the reply.
            seed: if settings.reply.fixed_seed {
                settings.sampling.seed
            } else {
                SamplingParams::fresh_seed()
            },
            ..settings.sampling.clone()
        },
        max_tokens: settings.reply.max_tokens,
        stop: settings.reply.stop.clone(),
        reuse_prefix: true,
        ignore_eos: false,
        probs: settings.reply.probabilities.then_some(lens::PROBS),
        // A continued reply's start was not generated under the grammar,
        // whose state would not know it.
        constraint: settings.reply.constraint.clone().filter(|_| !continued),
    };
    started(engine, request)
}

/// A workbench run asks for probabilities when its record keeps them, a
/// step of the rounds when it keeps its tokens.
fn run_probs(app: &App) -> Option<crate::engine::probs::ProbsRequest> {
    let run_keeps = app
        .wb
        .run
        .as_ref()
        .is_some_and(|run| run.is_streaming() && run.record.tokens.is_some());
    (run_keeps || rounds::update::wants_probs(app)).then_some(lens::PROBS)
}

fn started(engine: Option<&mut EngineClient>, request: GenerateRequest) -> Msg {
    let started = match engine {
        Some(engine) => engine.start_generate(request),
        None => Err(EngineError::Request("the engine is not running".into())),
    };
    match started {
        Ok(id) => Msg::GenerationStarted { id },
        // A failure to start is saved like any other failed turn.
        Err(error) => Msg::GenerationFailed {
            id: None,
            message: error.to_string(),
        },
    }
}

async fn preview_due(previews: &PreviewRequests) {
    match &previews.waiting {
        Some((_, _, at)) => tokio::time::sleep_until((*at).into()).await,
        None => std::future::pending().await,
    }
}

/// The engine's answer to the preview request in flight, if this is it.
fn preview_answer(previews: &mut PreviewRequests, event: &Event) -> Option<Msg> {
    let (request, revision) = previews.sent?;
    let result = match event {
        Event::Formatted { id, text, tokens } if *id == request => Ok((text.clone(), *tokens)),
        Event::Error {
            id: Some(id),
            message,
        } if *id == request => Err(message.clone()),
        _ => return None,
    };
    previews.sent = None;
    Some(Msg::PreviewFormatted { revision, result })
}

fn save_template(template: crate::prompt::Template, dir: Option<&Path>) -> Msg {
    let Some(dir) = dir else {
        return Msg::TemplateSaveFailed("no config directory to save templates in".into());
    };
    match crate::prompt::save_user(&template, dir) {
        Ok(path) => Msg::TemplateSaved {
            template: Box::new(template),
            path,
        },
        Err(error) => Msg::TemplateSaveFailed(error),
    }
}

fn read_value_file(var: String, path: &Path) -> Msg {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Msg::ValueLoaded { var, text },
            Err(_) => error_notice(format!("{}: not UTF-8 text", path.display())),
        },
        Err(error) => error_notice(format!("{}: {error}", path.display())),
    }
}

/// Writes a run record (a new one is given its time and id).
fn save_run(mut record: runs::RunRecord) -> Msg {
    let saved = runs::runs_dir().and_then(|dir| runs::save_new(&dir, &mut record));
    match saved {
        Ok(_) => Msg::RunSaved {
            id: record.id,
            created_unix_ms: record.created_unix_ms,
        },
        Err(error) => error_notice(format!("cannot save the run: {error}")),
    }
}

/// Writes a refinement run (a new one is given its time and id).
fn save_refinement(mut run: crate::refine::RefineRun) -> Msg {
    let saved =
        crate::refine::store::refinements_dir().and_then(|dir| runs::save_new(&dir, &mut run));
    match saved {
        Ok(_) => Msg::RefinementSaved {
            id: run.id,
            created_unix_ms: run.created_unix_ms,
        },
        Err(error) => error_notice(format!("cannot save the refinement run: {error}")),
    }
}

/// The run as Markdown (passes, feedback, diffs, scores) and JSON.
fn export_refinement(run: &crate::refine::RefineRun) -> Msg {
    let written = export::exports_dir().and_then(|dir| {
        let stem = if run.id.is_empty() {
            format!("refinement-{}", now_unix_ms())
        } else {
            format!("refinement-{}", run.id)
        };
        let markdown = dir.join(format!("{stem}.md"));
        let json = dir.join(format!("{stem}.json"));
        let text = serde_json::to_string_pretty(run).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        crate::store::atomic::write_atomic(
            &markdown,
            crate::refine::export::to_markdown(run).as_bytes(),
        )
        .map_err(|e| format!("{}: {e}", markdown.display()))?;
        crate::store::atomic::write_atomic(&json, format!("{text}\n").as_bytes())
            .map_err(|e| format!("{}: {e}", json.display()))?;
        Ok((markdown, json))
    });
    match written {
        Ok((markdown, json)) => Msg::Notice(Notice {
            text: format!("exported to {} and {}", markdown.display(), json.display()),
            error: false,
        }),
        Err(error) => error_notice(format!("cannot export: {error}")),
    }
}

/// A new chat session holding the rendered messages: the system prompt as
/// the session's, the few-shot pairs and the prompt as its messages.
fn start_chat(
    app: &App,
    files: &mut SessionFiles,
    messages: Vec<ChatMessage>,
    sampling: SamplingParams,
    reply: session::ReplySettings,
) -> Msg {
    let seconds = now_unix_ms() / 1000;
    let name = sessions::unused_name(&files.dir, &session::fresh_name(seconds));
    let mut session = Session::new(name);
    session.model = Some(app.model_path.clone());
    // The workbench's settings, all of them, so the chat goes on exactly
    // as the run did.
    session.sampling_set = Some(SamplingOverrides::all_of(&sampling));
    session.sampling = sampling;
    session.reply = reply;
    let mut messages = messages.into_iter().peekable();
    if let Some(system) = messages.next_if(|m| m.role == Role::System) {
        session.system_prompt = Some(system.content);
    }
    session.messages = messages
        .map(|m| StoredMessage::new(m.role, m.content))
        .collect();
    match files.start(&app.to_session(), &session) {
        Ok(()) => Msg::ChatStarted(Box::new(session)),
        Err(error) => error_notice(error),
    }
}

/// On the way out, a template with unsaved changes is written to
/// `<data>/unsaved-templates/<unix ms>/NAME.toml`, so quitting by a signal
/// or a closed terminal loses nothing. Returns the line saying where.
fn keep_unsaved_template(app: &App) -> Option<String> {
    let doc = app.wb.doc.as_ref().filter(|d| d.is_dirty())?;
    // A folder per exit keeps the file's name the template's, so it passes
    // `whet templates check` and can be copied into the prompts folder.
    let Ok(dir) = crate::paths::data_dir()
        .map(|d| d.join("unsaved-templates").join(now_unix_ms().to_string()))
    else {
        return None;
    };
    let path = dir.join(format!("{}.toml", doc.name()));
    let text = crate::prompt::to_toml(&doc.to_template_anyway());
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| crate::store::atomic::write_atomic(&path, text.as_bytes()));
    match written {
        Ok(()) => {
            tracing::warn!(
                "unsaved changes to template {} kept in {}",
                doc.name(),
                path.display()
            );
            Some(format!(
                "whet: unsaved changes to template {} were kept in {}",
                doc.name(),
                path.display()
            ))
        }
        Err(error) => {
            tracing::error!("cannot keep the unsaved template: {error}");
            Some(format!(
                "whet: unsaved changes to template {} could not be kept: {error}",
                doc.name()
            ))
        }
    }
}

fn export_session(app: &App) -> Msg {
    let written = export::exports_dir().and_then(|dir| export::write(&app.to_session(), &dir));
    match written {
        Ok((markdown, json)) => Msg::Notice(Notice {
            text: format!("exported to {} and {}", markdown.display(), json.display()),
            error: false,
        }),
        Err(error) => error_notice(format!("cannot export: {error}")),
    }
}

fn session_items(dir: &Path, current: &str) -> Vec<PickerItem> {
    library::list(dir)
        .into_iter()
        .map(|summary| {
            // Shown, so that the refusal to open it is no surprise.
            let elsewhere = (summary.name != current)
                .then(|| crate::store::lock::holder(dir, &summary.name))
                .flatten()
                .map(|pid| match pid {
                    Some(pid) => format!(" · open in another whet (pid {pid})"),
                    None => " · open in another whet".to_string(),
                })
                .unwrap_or_default();
            (summary, elsewhere)
        })
        .map(|(summary, elsewhere)| PickerItem {
            current: summary.name == current,
            key: summary.name.clone(),
            label: summary.name,
            detail: format!(
                "{} message{}{}{}{elsewhere}",
                summary.messages,
                if summary.messages == 1 { "" } else { "s" },
                if summary.title.is_empty() { "" } else { " · " },
                summary.title
            ),
            problem: summary.problem,
            remote: None,
        })
        .collect()
}

fn engine_msg(event: Event) -> Option<Msg> {
    match event {
        Event::Token {
            id,
            text,
            context_used,
            token,
            probs,
            ..
        } => Some(Msg::Token {
            id,
            text,
            context_used,
            token,
            probs,
        }),
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
            stats: Some(stats),
        }),
        Event::Error { id, message } => Some(Msg::GenerationFailed { id, message }),
        Event::BeamsDone { id, beams, stats } => Some(Msg::BeamsDone { id, beams, stats }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_in_another_whet_say_so() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["mine", "theirs"] {
            let path = session::session_path(dir.path(), name).unwrap();
            session::save(&path, &Session::new(name)).unwrap();
        }
        let _mine = SessionLock::acquire(dir.path(), "mine").unwrap();
        let _theirs = SessionLock::acquire(dir.path(), "theirs").unwrap();
        let items = session_items(dir.path(), "mine");
        let detail = |name: &str| items.iter().find(|i| i.key == name).unwrap().detail.clone();
        assert_eq!(detail("mine"), "0 messages");
        assert_eq!(
            detail("theirs"),
            format!(
                "0 messages · open in another whet (pid {})",
                std::process::id()
            )
        );
    }
}
