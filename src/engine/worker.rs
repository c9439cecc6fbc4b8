//! The engine worker process (`whet engine`): reads commands on stdin, runs
//! llama.cpp, writes events on stdout. It is a separate process because
//! llama.cpp can abort() on malformed models; the front end survives that.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::{send_logs_to_tracing, LogOptions};

use super::beams::serve as beam_serve;
use super::llama_log;
use super::parallel::{generate_many, Backend, MAX_PARALLEL};
use super::protocol::{encode_line, Command, Event, LoadRequest};
use super::protocol::{BeamRequest, Prompt};
use super::runner::{LoadedModel, Session};
use super::scripted::{self, Script, ToyBackend};

/// Cancel marker for "whatever is running", set when stdin closes.
const CANCEL_ALL: u64 = u64::MAX;

/// How long the worker may go on once its stdin has closed. A generation
/// stops within a token and the main loop exits well inside this; a model
/// load cannot be interrupted and may take a minute on a hostile file.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs the worker until Shutdown or the end of stdin; returns the exit code.
pub fn run() -> i32 {
    let protocol_out = match claim_stdout_for_protocol() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("whet engine: cannot set up the protocol channel: {e}");
            return 2;
        }
    };
    init_stderr_tracing();
    disable_core_dumps();
    ignore_terminal_interrupts();
    let mut io = WorkerIo::start(protocol_out);
    if let Some(script) = std::env::var_os(scripted::SCRIPT_ENV) {
        return serve_script(Path::new(&script), &mut io);
    }

    let backend = match LlamaBackend::init() {
        Ok(backend) => backend,
        Err(e) => {
            io.emit(&Event::Error {
                id: None,
                message: format!("cannot initialise llama.cpp: {e}"),
            });
            return 2;
        }
    };
    // llama.cpp's logs become tracing events on stderr, which the parent
    // writes to the log file: never onto the user's terminal.
    send_logs_to_tracing(LogOptions::default());

    io.emit(&Event::Ready {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
    });

    let mut pending_load: Option<LoadRequest> = None;
    loop {
        let request = match pending_load.take() {
            Some(request) => request,
            None => match io.next_command() {
                None | Some(Command::Shutdown) => break,
                Some(Command::Load(request)) => request,
                Some(Command::Generate(r)) => {
                    io.error(Some(r.id), "no model is loaded");
                    continue;
                }
                Some(Command::GenerateMany { requests, .. }) => {
                    for r in requests {
                        io.error(Some(r.id), "no model is loaded");
                    }
                    continue;
                }
                Some(Command::CountTokens { id, .. })
                | Some(Command::FormatPrompt { id, .. })
                | Some(Command::Beams(BeamRequest { id, .. })) => {
                    io.error(Some(id), "no model is loaded");
                    continue;
                }
                Some(Command::Cancel { .. }) => continue,
            },
        };
        match serve_model(&backend, request, &mut io) {
            Next::Load(request) => pending_load = Some(request),
            Next::Idle => {}
            Next::Exit => break,
        }
    }
    0
}

enum Next {
    Load(LoadRequest),
    Idle,
    Exit,
}

/// Loads one model and answers requests for it until another Load or the end.
fn serve_model(backend: &LlamaBackend, request: LoadRequest, io: &mut WorkerIo) -> Next {
    let loaded = match LoadedModel::load(backend, &request, io.progress_reporter()) {
        Ok(loaded) => loaded,
        Err(message) => {
            io.error(None, &message);
            return Next::Idle;
        }
    };
    let mut session = if request.vocab_only {
        None
    } else {
        match loaded.new_session(backend, &request) {
            Ok(session) => Some(session),
            Err(message) => {
                io.error(None, &message);
                return Next::Idle;
            }
        }
    };
    let mut info = loaded.info.clone();
    info.n_ctx = session.as_ref().map_or(0, |s| s.n_ctx());
    io.emit(&Event::Loaded { info });

    loop {
        match io.next_command() {
            None | Some(Command::Shutdown) => return Next::Exit,
            Some(Command::Load(next)) => return Next::Load(next),
            Some(Command::Cancel { .. }) => {}
            Some(Command::Generate(request)) => {
                let Some(session) = session.as_mut() else {
                    io.error(
                        Some(request.id),
                        "the model was loaded without a context (vocab only)",
                    );
                    continue;
                };
                let id = request.id;
                let cancel = Arc::clone(&io.cancel);
                let cancelled = move || {
                    let target = cancel.load(Ordering::Relaxed);
                    target == id || target == CANCEL_ALL
                };
                let out = &mut io.out;
                let result = session.generate(&request, &cancelled, &mut |event| out.emit(&event));
                match result {
                    Ok((text, reason, stats)) => io.emit(&Event::Done {
                        id,
                        text,
                        reason,
                        stats,
                    }),
                    Err(message) => io.error(Some(id), &message),
                }
            }
            Some(Command::GenerateMany {
                id,
                requests,
                parallel,
            }) => {
                let Some(session) = session.as_mut() else {
                    for r in &requests {
                        io.error(
                            Some(r.id),
                            "the model was loaded without a context (vocab only)",
                        );
                    }
                    continue;
                };
                let cancel = Arc::clone(&io.cancel);
                let cancelled = move |request: u64| {
                    let target = cancel.load(Ordering::Relaxed);
                    target == request || target == id || target == CANCEL_ALL
                };
                let out = &mut io.out;
                // Each request's Done or Error is sent as it ends.
                let (_, stats) =
                    session.generate_many(&requests, parallel, &cancelled, &mut |event| {
                        out.emit(&event)
                    });
                io.emit(&Event::ManyDone { id, stats });
            }
            Some(Command::Beams(beams)) => {
                let id = beams.id;
                if session.is_none() {
                    io.error(
                        Some(id),
                        "the model was loaded without a context (vocab only)",
                    );
                    continue;
                }
                if let Err(message) =
                    make_room_for_beams(backend, &loaded, &request, &mut session, &beams)
                {
                    io.error(Some(id), &message);
                    continue;
                }
                let Some(session) = session.as_mut() else {
                    continue;
                };
                let cancel = Arc::clone(&io.cancel);
                let cancelled = move || {
                    let target = cancel.load(Ordering::Relaxed);
                    target == id || target == CANCEL_ALL
                };
                let n_vocab = loaded.info.n_vocab as usize;
                let outcome = session.tokenize(&beams.prompt).and_then(|prompt| {
                    session.check_prompt_fits(&prompt)?;
                    let eos = beam_serve::eog_tokens(session, n_vocab);
                    beam_serve::serve(session, &beams, &prompt, eos, &cancelled)
                });
                match outcome {
                    Ok((list, stats)) => io.emit(&Event::BeamsDone {
                        id,
                        beams: list,
                        stats,
                    }),
                    Err(message) => io.error(Some(id), &message),
                }
            }
            Some(Command::CountTokens { id, prompt }) => match tokenize(&loaded, &session, &prompt)
            {
                Ok(tokens) => io.emit(&Event::TokenCount {
                    id,
                    tokens: tokens.len() as u32,
                    n_ctx: session.as_ref().map_or(0, |s| s.n_ctx()),
                }),
                Err(message) => io.error(Some(id), &message),
            },
            Some(Command::FormatPrompt { id, prompt }) => {
                match tokenize(&loaded, &session, &prompt) {
                    Ok(tokens) => io.emit(&Event::Formatted {
                        id,
                        text: loaded.render_tokens(&tokens),
                        tokens: tokens.len() as u32,
                    }),
                    Err(message) => io.error(Some(id), &message),
                }
            }
        }
    }
}

/// Gives the session the sequences a beam search needs (the prompt's, one
/// per beam and the graveyard, in one unified cache), re-creating its context when it
/// has fewer: the old context goes first, so both are never in memory.
fn make_room_for_beams<'m>(
    backend: &LlamaBackend,
    loaded: &'m LoadedModel,
    load: &LoadRequest,
    session: &mut Option<Session<'m>>,
    request: &BeamRequest,
) -> Result<(), String> {
    request.beams.validate()?;
    let needed = super::beams::sequences_for(request.beams.num_beams);
    if session.as_ref().is_some_and(|s| s.n_seq_max() >= needed) {
        return Ok(());
    }
    *session = None;
    let grown = LoadRequest {
        parallel: needed.max(load.parallel),
        ..load.clone()
    };
    tracing::info!("re-creating the context with {needed} sequences for a beam search");
    match loaded.new_session(backend, &grown) {
        Ok(grown) => {
            *session = Some(grown);
            Ok(())
        }
        Err(message) => {
            // Back to the context it had, so that plain requests still run.
            *session = loaded.new_session(backend, load).ok();
            Err(message)
        }
    }
}

/// The worker of the tests: no llama.cpp, the toy model of
/// [`scripted`] instead, and the failures `script` asks for.
fn serve_script(script: &Path, io: &mut WorkerIo) -> i32 {
    let script = match Script::read(script) {
        Ok(script) => script,
        Err(message) => {
            io.error(None, &message);
            return 2;
        }
    };
    tracing::warn!("following the engine script of the tests; no model is loaded");
    io.emit(&Event::Ready {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
    });
    let mut toy: Option<ToyBackend> = None;
    // Requests that ended (Done or Error) in this worker.
    let mut ended = 0u32;
    loop {
        let (batch, requests, parallel) = match io.next_command() {
            None | Some(Command::Shutdown) => return 0,
            Some(Command::Load(request)) => {
                let n_seq_max = request.parallel.clamp(1, MAX_PARALLEL);
                toy = Some(ToyBackend::new(
                    request.n_ctx.max(1) as usize,
                    request.n_batch.max(1) as usize,
                    n_seq_max,
                ));
                io.emit(&Event::Loaded {
                    info: scripted::model_info(&request),
                });
                continue;
            }
            Some(Command::Cancel { .. }) => continue,
            Some(Command::CountTokens { id, prompt }) => {
                io.emit(&Event::TokenCount {
                    id,
                    tokens: scripted::tokenize(&prompt).len() as u32,
                    n_ctx: toy.as_ref().map_or(0, |t| Backend::n_ctx(t) as u32),
                });
                continue;
            }
            Some(Command::FormatPrompt { id, prompt }) => {
                io.emit(&Event::Formatted {
                    id,
                    text: scripted::prompt_text(&prompt),
                    tokens: scripted::tokenize(&prompt).len() as u32,
                });
                continue;
            }
            Some(Command::Beams(request)) => {
                let Some(toy) = toy.as_mut() else {
                    io.error(Some(request.id), "no model is loaded");
                    continue;
                };
                let needed = super::beams::sequences_for(request.beams.num_beams);
                if Backend::n_seq_max(toy) < needed {
                    *toy = ToyBackend::new(Backend::n_ctx(toy), Backend::n_batch(toy), needed);
                }
                let prompt = scripted::tokenize(&request.prompt);
                let eos = beam_serve::eog_tokens(toy, scripted::EOS.0 as usize + 1);
                let cancel = Arc::clone(&io.cancel);
                let id = request.id;
                let cancelled = move || {
                    let target = cancel.load(Ordering::Relaxed);
                    target == id || target == CANCEL_ALL
                };
                match beam_serve::serve(toy, &request, &prompt, eos, &cancelled) {
                    Ok((beams, stats)) => io.emit(&Event::BeamsDone { id, beams, stats }),
                    Err(message) => io.error(Some(id), &message),
                }
                continue;
            }
            Some(Command::Generate(request)) => (None, vec![request], 1),
            Some(Command::GenerateMany {
                id,
                requests,
                parallel,
            }) => (Some(id), requests, parallel),
        };
        let Some(toy) = toy.as_mut() else {
            for r in &requests {
                io.error(Some(r.id), "no model is loaded");
            }
            continue;
        };
        script.journal(&requests.iter().map(|r| &r.prompt).collect::<Vec<_>>());
        let poisoned: std::collections::HashSet<u64> = match &script.abort_on {
            Some(text) => requests
                .iter()
                .filter(|r| scripted::prompt_text(&r.prompt).contains(text.as_str()))
                .map(|r| r.id)
                .collect(),
            None => Default::default(),
        };
        let hang_cancel = Arc::clone(&io.cancel);
        let hang = move || {
            tracing::warn!("the engine script hangs here");
            // Until the front end goes away (stdin closes) or says Shutdown.
            while hang_cancel.load(Ordering::Relaxed) != CANCEL_ALL {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::process::exit(0);
        };
        if ended == 0 && script.hang_after == Some(0) && script.fire() {
            hang();
        }
        let cancel = Arc::clone(&io.cancel);
        let cancelled = move |request: u64| {
            let target = cancel.load(Ordering::Relaxed);
            target == request || Some(target) == batch || target == CANCEL_ALL
        };
        let out = &mut io.out;
        let script = &script;
        let (_, stats) = generate_many(toy, &requests, parallel, &cancelled, &mut |event| {
            out.emit(&event);
            let fires = match &event {
                Event::Token { id, .. } => poisoned.contains(id),
                Event::Done { .. } | Event::Error { id: Some(_), .. } => {
                    ended += 1;
                    Some(ended) == script.abort_after || Some(ended) == script.hang_after
                }
                _ => false,
            };
            if !fires || !script.fire() {
                return;
            }
            if Some(ended) == script.hang_after && !matches!(event, Event::Token { .. }) {
                hang();
            }
            tracing::error!("the engine script aborts here");
            std::process::abort();
        });
        if let Some(id) = batch {
            io.emit(&Event::ManyDone { id, stats });
        }
    }
}

/// Tokens as the next generation would see them (with the last reply's
/// sampled tokens), or plain tokenization for a vocab-only load.
fn tokenize(
    loaded: &LoadedModel,
    session: &Option<Session<'_>>,
    prompt: &Prompt,
) -> Result<Vec<llama_cpp_2::token::LlamaToken>, String> {
    match session {
        Some(session) => session.tokenize(prompt),
        None => loaded.tokenize(prompt),
    }
}

/// The worker's side of the pipes.
struct WorkerIo {
    commands: Receiver<Incoming>,
    /// Id of the generation to cancel, set by the reader thread as soon as the
    /// Cancel line arrives, so that it takes effect within one token.
    cancel: Arc<AtomicU64>,
    out: EventWriter,
}

enum Incoming {
    Command(Command),
    Malformed(String),
}

impl WorkerIo {
    fn start(protocol_out: File) -> Self {
        let (sender, commands) = channel();
        let cancel = Arc::new(AtomicU64::new(0));
        let reader_cancel = Arc::clone(&cancel);
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let incoming = match serde_json::from_str::<Command>(&line) {
                    Ok(Command::Cancel { id }) => {
                        reader_cancel.store(id, Ordering::Relaxed);
                        continue;
                    }
                    // Shutdown also stops a generation in flight at once:
                    // queued behind it, it would wait for the token limit
                    // and the front end's exit with it.
                    Ok(Command::Shutdown) => {
                        reader_cancel.store(CANCEL_ALL, Ordering::Relaxed);
                        Incoming::Command(Command::Shutdown)
                    }
                    Ok(command) => Incoming::Command(command),
                    Err(e) => Incoming::Malformed(format!("malformed command ({e}): {line}")),
                };
                if sender.send(incoming).is_err() {
                    break;
                }
            }
            // The front end is gone: stop any generation now rather than at
            // its token limit; the main loop then sees the channel close.
            reader_cancel.store(CANCEL_ALL, Ordering::Relaxed);
            exit_if_still_running_after(ORPHAN_GRACE);
        });
        Self {
            commands,
            cancel,
            out: EventWriter(BufWriter::new(protocol_out)),
        }
    }

    /// The next command, or None when the parent closed stdin.
    fn next_command(&mut self) -> Option<Command> {
        loop {
            match self.commands.recv().ok()? {
                Incoming::Command(command) => return Some(command),
                Incoming::Malformed(message) => self.error(None, &message),
            }
        }
    }

    fn emit(&mut self, event: &Event) {
        self.out.emit(event);
    }

    /// Reports load progress on a second handle of the protocol pipe: the
    /// load runs on this thread, so nothing else writes meanwhile, and each
    /// line is written whole. Steps under 2% are not worth a line.
    fn progress_reporter(&self) -> impl FnMut(f32) + 'static {
        let mut out = self
            .out
            .0
            .get_ref()
            .try_clone()
            .ok()
            .map(|file| EventWriter(BufWriter::new(file)));
        let mut reported = 0.0f32;
        move |fraction| {
            if fraction - reported >= 0.02 || (fraction >= 1.0 && reported < 1.0) {
                reported = fraction;
                if let Some(out) = out.as_mut() {
                    out.emit(&Event::LoadProgress { fraction });
                }
            }
        }
    }

    fn error(&mut self, id: Option<u64>, message: &str) {
        tracing::warn!("{message}");
        self.emit(&Event::Error {
            id,
            message: message.to_string(),
        });
    }
}

struct EventWriter(BufWriter<File>);

impl EventWriter {
    fn emit(&mut self, event: &Event) {
        let line = encode_line(event);
        let written = writeln!(self.0, "{line}").and_then(|_| self.0.flush());
        if written.is_err() {
            // The parent is gone; nobody is left to answer.
            std::process::exit(0);
        }
    }
}

/// Ends the process from the stdin reader thread once stdin has closed and
/// the main thread has not finished within `grace`.
///
/// Stdin closes when the front end drops its engine, exits or dies, however
/// it dies (SIGKILL included): the kernel closes its end of the pipe. Nothing
/// the worker computes afterwards can reach anyone, but a load inside
/// llama.cpp does not look at stdin, so without this an orphaned worker
/// would go on loading, at gigabytes, for as long as the load takes.
/// `PR_SET_PDEATHSIG` was not used: it fires when the *thread* that spawned
/// the worker ends, and the front end spawns workers from tokio's threads,
/// which come and go.
fn exit_if_still_running_after(grace: std::time::Duration) {
    std::thread::sleep(grace);
    tracing::warn!("the front end closed the protocol pipe; exiting");
    // _exit, not exit: C++ static destructors must not run while the main
    // thread may still be inside llama.cpp.
    // SAFETY: _exit ends the process without touching any Rust state.
    unsafe { libc::_exit(0) }
}

/// Moves the real stdout to a private descriptor for protocol lines and points
/// fd 1 at stderr, so anything llama.cpp prints to stdout lands in the log
/// instead of corrupting the protocol.
fn claim_stdout_for_protocol() -> std::io::Result<File> {
    // SAFETY: plain descriptor duplication; the new descriptor is owned by the File.
    unsafe {
        let protocol_fd = libc::dup(1);
        if protocol_fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(protocol_fd))
    }
}

/// Ctrl+C in the terminal is the front end's to handle (it cancels the
/// generation and keeps the partial text); the worker must not die of it.
fn ignore_terminal_interrupts() {
    // SAFETY: installing SIG_IGN has no handler code to be unsafe in.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// An abort inside llama.cpp would otherwise leave a core file the size of
/// the model behind; the log already holds the reason.
fn disable_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit only reads the struct passed by reference.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
    }
}

/// Log lines go to stderr, which the front end writes to its log file; the
/// capture layer keeps llama.cpp's errors for the error events themselves.
fn init_stderr_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(true)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(llama_log::CaptureLayer)
        .try_init();
}
