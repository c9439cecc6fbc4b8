//! The front end's side of the engine: spawns the worker process, speaks the
//! protocol asynchronously, and turns a dead worker into an error that says
//! how it died and what it last logged. Nothing here panics on worker failure.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use super::parallel::ManyStats;
use super::probs::TokenProbs;
use super::protocol::{
    encode_line, Beam, BeamRequest, BeamStats, Command, Event, GenerateRequest, GenerationStats,
    LoadRequest, ModelInfo, Prompt, StopReason,
};

/// Lines of the worker's log kept for the "engine stopped" message.
const LOG_TAIL_LINES: usize = 64;
/// Lines of that tail shown in the message itself.
const LOG_LINES_IN_MESSAGE: usize = 2;

/// How an engine is started: a worker process from the `whet` binary, or,
/// with `remote`, a connection to that backend instead (every front end
/// that starts engines, restarts included, then talks to the server).
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// The `whet` binary that provides the hidden `engine` subcommand.
    pub exe: PathBuf,
    pub remote: Option<super::remote::Backend>,
}

impl SpawnOptions {
    /// Workers from `exe`.
    pub fn local(exe: PathBuf) -> Self {
        Self { exe, remote: None }
    }

    /// Spawns workers from the running binary.
    pub fn from_current_exe() -> std::io::Result<Self> {
        Ok(Self::local(std::env::current_exe()?))
    }
}

/// How a worker ended, with its last log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerExit {
    pub status: String,
    pub last_lines: Vec<String>,
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the engine stopped: {}", self.status)?;
        let words = last_words(&self.last_lines);
        if !words.is_empty() {
            write!(f, " — {}", words.join(" | "))?;
        }
        Ok(())
    }
}

/// The log lines that explain a death: error-looking lines if there are any
/// (an abort's GGML_ASSERT is the last line), else the last few lines.
pub fn last_words(lines: &[String]) -> Vec<String> {
    let looks_like_error = |l: &&String| {
        let lower = l.to_ascii_lowercase();
        ["error", "assert", "failed", "panicked", "abort"]
            .iter()
            .any(|w| lower.contains(w))
    };
    let errors: Vec<&String> = lines.iter().filter(looks_like_error).collect();
    let chosen: Vec<&String> = if errors.is_empty() {
        lines.iter().filter(|l| !l.trim().is_empty()).collect()
    } else {
        errors
    };
    let skip = chosen.len().saturating_sub(LOG_LINES_IN_MESSAGE);
    chosen[skip..].iter().map(|l| tidy_log_line(l)).collect()
}

/// Drops tracing decorations: level, span, the crate prefix and trailing fields.
fn tidy_log_line(line: &str) -> String {
    let text = line
        .rsplit_once("llama-cpp-2: ")
        .map_or(line, |(_, rest)| rest);
    let text = text.split(" module=\"").next().unwrap_or(text);
    text.trim().to_string()
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the engine: {0}")]
    Spawn(String),
    #[error("{0}")]
    Stopped(WorkerExit),
    /// The worker refused a request; the message says why.
    #[error("{0}")]
    Request(String),
    #[error("engine protocol error: {0}")]
    Protocol(String),
}

/// Timings seen from this side of the pipe, including the protocol's cost.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ClientTiming {
    /// From sending the request to receiving the first token.
    pub ttft_ms: f64,
    /// From the first token received to the last.
    pub first_to_last_ms: f64,
    pub token_events: u32,
}

impl ClientTiming {
    pub fn generation_tokens_per_sec(&self) -> f64 {
        super::protocol::per_second(self.token_events.saturating_sub(1), self.first_to_last_ms)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenRecord {
    pub token: i32,
    pub prob: f32,
    pub text: String,
    /// When the request asked for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probs: Option<TokenProbs>,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Generation {
    pub id: u64,
    pub text: String,
    pub reason: StopReason,
    pub stats: GenerationStats,
    pub timing: ClientTiming,
    pub tokens: Vec<TokenRecord>,
}

enum Incoming {
    Event(Event),
    Exited(WorkerExit),
}

/// Sends Cancel for a running generation; cheap to clone and usable from a
/// signal handler task while another task awaits the generation.
#[derive(Clone)]
pub struct Canceller {
    commands: mpsc::UnboundedSender<Command>,
}

impl Canceller {
    pub fn cancel(&self, id: u64) {
        let _ = self.commands.send(Command::Cancel { id });
    }
}

pub struct EngineClient {
    pid: u32,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Incoming>,
    log_tail: Arc<Mutex<VecDeque<String>>>,
    exited: Option<WorkerExit>,
    next_id: u64,
}

impl EngineClient {
    /// Starts a worker (or connects to the remote backend of `options`)
    /// and waits until it reads commands.
    pub async fn spawn(options: &SpawnOptions) -> Result<Self, EngineError> {
        if let Some(backend) = &options.remote {
            return Self::connect(backend.clone()).await;
        }
        let mut child = tokio::process::Command::new(&options.exe)
            .arg("engine")
            // An abort must not start a debugger to print a backtrace.
            .env("GGML_NO_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: terminal signals (Ctrl+C, Ctrl+Z) reach
            // the front end only, which decides what the worker should do.
            .process_group(0)
            .spawn()
            .map_err(|e| EngineError::Spawn(format!("{}: {e}", options.exe.display())))?;
        // A pid of 0 would mean "my own process group" to kill(2); refuse it.
        let Some(pid) = child.id().filter(|&pid| pid != 0) else {
            return Err(EngineError::Spawn("the worker exited at once".into()));
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(EngineError::Spawn("the worker's pipes are missing".into()));
        };

        let log_tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL_LINES)));
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(write_commands(stdin, command_rx));
        let stderr_task = tokio::spawn(collect_logs(stderr, Arc::clone(&log_tail)));
        tokio::spawn(read_events(
            child,
            stdout,
            stderr_task,
            Arc::clone(&log_tail),
            event_tx,
        ));

        let mut client = Self {
            pid,
            commands: command_tx,
            events,
            log_tail,
            exited: None,
            next_id: 1,
        };
        match tokio::time::timeout(Duration::from_secs(60), client.next_event()).await {
            Ok(Ok(Event::Ready { .. })) => Ok(client),
            Ok(Ok(other)) => Err(EngineError::Protocol(format!(
                "expected Ready from the worker, got {other:?}"
            ))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(EngineError::Spawn(
                "the worker did not start within 60 s".into(),
            )),
        }
    }

    /// Connects to a remote backend instead of starting a worker: the same
    /// commands and events, answered over HTTP by a task of this process
    /// (see [`super::remote`]). Loading the "model" probes the server.
    pub async fn connect(backend: super::remote::Backend) -> Result<Self, EngineError> {
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, mut remote_events) = mpsc::unbounded_channel::<Event>();
        let (incoming, events) = mpsc::unbounded_channel();
        let name = backend.name.clone();
        tokio::spawn(super::remote::serve::serve(backend, command_rx, event_tx));
        tokio::spawn(async move {
            while let Some(event) = remote_events.recv().await {
                if incoming.send(Incoming::Event(event)).is_err() {
                    return;
                }
            }
            let _ = incoming.send(Incoming::Exited(WorkerExit {
                status: format!("the connection to backend '{name}' was closed"),
                last_lines: Vec::new(),
            }));
        });
        let mut client = Self {
            pid: 0,
            commands: command_tx,
            events,
            log_tail: Arc::default(),
            exited: None,
            next_id: 1,
        };
        match client.next_event().await? {
            Event::Ready { .. } => Ok(client),
            other => Err(EngineError::Protocol(format!(
                "expected Ready from the remote engine, got {other:?}"
            ))),
        }
    }

    /// Whether this engine is a remote backend (no worker process).
    pub fn is_remote(&self) -> bool {
        self.pid == 0
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The worker's peak resident memory in KiB, while it is alive (Linux);
    /// None for a remote backend.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        if self.is_remote() {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn last_log_lines(&self) -> Vec<String> {
        self.log_tail
            .lock()
            .map(|tail| tail.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn canceller(&self) -> Canceller {
        Canceller {
            commands: self.commands.clone(),
        }
    }

    /// Sends a command without waiting for an answer.
    pub fn send(&self, command: Command) -> Result<(), EngineError> {
        if let Some(exit) = &self.exited {
            return Err(EngineError::Stopped(exit.clone()));
        }
        self.commands
            .send(command)
            .map_err(|_| EngineError::Protocol("the command channel is closed".into()))
    }

    /// The next event from the worker; an error once it has exited.
    pub async fn next_event(&mut self) -> Result<Event, EngineError> {
        if let Some(exit) = &self.exited {
            return Err(EngineError::Stopped(exit.clone()));
        }
        let exit = match self.events.recv().await {
            Some(Incoming::Event(event)) => return Ok(event),
            Some(Incoming::Exited(exit)) => exit,
            None => WorkerExit {
                status: "its event channel closed".into(),
                last_lines: self.last_log_lines(),
            },
        };
        self.exited = Some(exit.clone());
        Err(EngineError::Stopped(exit))
    }

    pub fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub async fn load(&mut self, request: LoadRequest) -> Result<ModelInfo, EngineError> {
        self.load_with_progress(request, |_| {}).await
    }

    /// Like `load`, calling `on_progress` with the fraction of the file read.
    pub async fn load_with_progress(
        &mut self,
        request: LoadRequest,
        mut on_progress: impl FnMut(f32),
    ) -> Result<ModelInfo, EngineError> {
        self.send(Command::Load(request))?;
        loop {
            match self.next_event().await? {
                Event::LoadProgress { fraction } => on_progress(fraction),
                Event::Loaded { info } => return Ok(info),
                Event::Error { id: None, message } => return Err(EngineError::Request(message)),
                _ => {}
            }
        }
    }

    /// Starts a generation; its events then arrive through `next_event`.
    pub fn start_generate(&mut self, mut request: GenerateRequest) -> Result<u64, EngineError> {
        request.id = self.fresh_id();
        let id = request.id;
        self.send(Command::Generate(request))?;
        Ok(id)
    }

    /// Runs a generation to its end, calling `on_text` with each piece of
    /// printable text as it arrives.
    pub async fn generate(
        &mut self,
        request: GenerateRequest,
        on_text: impl FnMut(&str),
    ) -> Result<Generation, EngineError> {
        self.generate_until(request, on_text, std::future::pending())
            .await
    }

    /// Like `generate`, but sends Cancel when `cancel` completes (e.g. on
    /// Ctrl+C); the generation then ends with the partial text.
    pub async fn generate_until(
        &mut self,
        request: GenerateRequest,
        mut on_text: impl FnMut(&str),
        cancel: impl Future<Output = ()>,
    ) -> Result<Generation, EngineError> {
        self.generate_tokens_until(request, |text, _| on_text(text), cancel)
            .await
    }

    /// Like `generate_until`, calling `on_token` with each event's printable
    /// text and the sampled token's probabilities (when the request asked
    /// for them; `None` for text released at the end).
    pub async fn generate_tokens_until(
        &mut self,
        request: GenerateRequest,
        mut on_token: impl FnMut(&str, Option<&TokenProbs>),
        cancel: impl Future<Output = ()>,
    ) -> Result<Generation, EngineError> {
        let canceller = self.canceller();
        let sent = Instant::now();
        let id = self.start_generate(request)?;
        let mut timing = ClientTiming::default();
        let mut first: Option<Instant> = None;
        let mut last = sent;
        let mut tokens = Vec::new();
        tokio::pin!(cancel);
        let mut cancel_sent = false;
        loop {
            let event = tokio::select! {
                event = self.next_event() => event?,
                () = &mut cancel, if !cancel_sent => {
                    canceller.cancel(id);
                    cancel_sent = true;
                    continue;
                }
            };
            match event {
                Event::Token {
                    id: event_id,
                    text,
                    token,
                    prob,
                    probs,
                    ..
                } if event_id == id => {
                    on_token(&text, probs.as_ref());
                    // A flush of held-back text at the end is not a sample.
                    if token != super::protocol::FLUSH_TOKEN {
                        let now = Instant::now();
                        if first.is_none() {
                            first = Some(now);
                            timing.ttft_ms = ms_between(sent, now);
                        }
                        last = now;
                        timing.token_events += 1;
                        tokens.push(TokenRecord {
                            token,
                            prob,
                            text,
                            probs,
                        });
                    }
                }
                Event::Done {
                    id: event_id,
                    text,
                    reason,
                    stats,
                } if event_id == id => {
                    if let Some(first) = first {
                        timing.first_to_last_ms = ms_between(first, last);
                    }
                    return Ok(Generation {
                        id,
                        text,
                        reason,
                        stats,
                        timing,
                        tokens,
                    });
                }
                Event::Error {
                    id: Some(event_id),
                    message,
                } if event_id == id => return Err(EngineError::Request(message)),
                _ => {}
            }
        }
    }

    /// Runs `requests` as parallel sequences (at most `parallel` at once, and
    /// at most what the model was loaded with), calling `on_text` with each
    /// request's index and printable text as it arrives. Returns each
    /// request's result, in order, and the batch's figures.
    pub async fn generate_many(
        &mut self,
        requests: Vec<GenerateRequest>,
        parallel: u32,
        on_text: impl FnMut(usize, &str),
    ) -> Result<(Vec<Result<Generation, String>>, ManyStats), EngineError> {
        self.generate_many_each(requests, parallel, on_text, |_, _| {})
            .await
    }

    /// [`EngineClient::generate_many`], also calling `on_done` with each
    /// request's index and result as soon as it ends (to save it before
    /// the others finish).
    pub async fn generate_many_each(
        &mut self,
        requests: Vec<GenerateRequest>,
        parallel: u32,
        mut on_text: impl FnMut(usize, &str),
        mut on_done: impl FnMut(usize, &Result<Generation, String>),
    ) -> Result<(Vec<Result<Generation, String>>, ManyStats), EngineError> {
        let sent = Instant::now();
        let batch = self.fresh_id();
        let mut index_of = std::collections::HashMap::new();
        let mut requests = requests;
        for (index, request) in requests.iter_mut().enumerate() {
            request.id = self.fresh_id();
            index_of.insert(request.id, index);
        }
        let mut results: Vec<Option<Result<Generation, String>>> =
            requests.iter().map(|_| None).collect();
        let mut tokens: Vec<Vec<TokenRecord>> = requests.iter().map(|_| Vec::new()).collect();
        let mut firsts: Vec<Option<Instant>> = requests.iter().map(|_| None).collect();
        self.send(Command::GenerateMany {
            id: batch,
            requests,
            parallel,
        })?;
        loop {
            match self.next_event().await? {
                Event::Token {
                    id,
                    text,
                    token,
                    prob,
                    probs,
                    ..
                } => {
                    let Some(&index) = index_of.get(&id) else {
                        continue;
                    };
                    on_text(index, &text);
                    if token != super::protocol::FLUSH_TOKEN {
                        firsts[index].get_or_insert_with(Instant::now);
                        tokens[index].push(TokenRecord {
                            token,
                            prob,
                            text,
                            probs,
                        });
                    }
                }
                Event::Done {
                    id,
                    text,
                    reason,
                    stats,
                } => {
                    let Some(&index) = index_of.get(&id) else {
                        continue;
                    };
                    let timing = ClientTiming {
                        ttft_ms: firsts[index].map_or(0.0, |f| ms_between(sent, f)),
                        token_events: tokens[index].len() as u32,
                        ..ClientTiming::default()
                    };
                    let result = Ok(Generation {
                        id,
                        text,
                        reason,
                        stats,
                        timing,
                        tokens: std::mem::take(&mut tokens[index]),
                    });
                    on_done(index, &result);
                    results[index] = Some(result);
                }
                Event::Error {
                    id: Some(id),
                    message,
                } => {
                    if let Some(&index) = index_of.get(&id) {
                        let result = Err(message);
                        on_done(index, &result);
                        results[index] = Some(result);
                    }
                }
                Event::ManyDone { id, stats } if id == batch => {
                    let results = results
                        .into_iter()
                        .map(|r| r.unwrap_or_else(|| Err("no answer from the worker".into())))
                        .collect();
                    return Ok((results, stats));
                }
                _ => {}
            }
        }
    }

    /// Runs a beam search; sends Cancel when `cancel` completes, and the
    /// search then ends with the worker's "cancelled" error.
    pub async fn beams_until(
        &mut self,
        mut request: BeamRequest,
        cancel: impl Future<Output = ()>,
    ) -> Result<(Vec<Beam>, BeamStats), EngineError> {
        request.id = self.fresh_id();
        let id = request.id;
        self.send(Command::Beams(request))?;
        let canceller = self.canceller();
        let answer = self.reply(id, |event| match event {
            Event::BeamsDone {
                id: event_id,
                beams,
                stats,
            } if event_id == id => Some((beams, stats)),
            _ => None,
        });
        tokio::pin!(answer);
        tokio::pin!(cancel);
        let mut cancel_sent = false;
        loop {
            tokio::select! {
                result = &mut answer => return result,
                () = &mut cancel, if !cancel_sent => {
                    canceller.cancel(id);
                    cancel_sent = true;
                }
            }
        }
    }

    /// Tokens the prompt takes after formatting, and the context size.
    pub async fn count_tokens(&mut self, prompt: Prompt) -> Result<(u32, u32), EngineError> {
        let id = self.fresh_id();
        self.send(Command::CountTokens { id, prompt })?;
        self.reply(id, |event| match event {
            Event::TokenCount {
                id: event_id,
                tokens,
                n_ctx,
            } if event_id == id => Some((tokens, n_ctx)),
            _ => None,
        })
        .await
    }

    /// The exact text the model sees for a prompt, and its token count.
    pub async fn format_prompt(&mut self, prompt: Prompt) -> Result<(String, u32), EngineError> {
        let id = self.fresh_id();
        self.send(Command::FormatPrompt { id, prompt })?;
        self.reply(id, |event| match event {
            Event::Formatted {
                id: event_id,
                text,
                tokens,
            } if event_id == id => Some((text, tokens)),
            _ => None,
        })
        .await
    }

    /// Waits for the answer to request `id`: whatever `answer` accepts, or the
    /// worker's error for that request. Other events are stale and skipped.
    async fn reply<T>(
        &mut self,
        id: u64,
        mut answer: impl FnMut(Event) -> Option<T>,
    ) -> Result<T, EngineError> {
        loop {
            match self.next_event().await? {
                Event::Error {
                    id: Some(event_id),
                    message,
                } if event_id == id => return Err(EngineError::Request(message)),
                event => {
                    if let Some(value) = answer(event) {
                        return Ok(value);
                    }
                }
            }
        }
    }

    /// Asks the worker to exit and waits briefly for it.
    pub async fn shutdown(mut self) {
        if self.send(Command::Shutdown).is_ok() {
            let wait = async { while self.next_event().await.is_ok() {} };
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
    }
}

async fn write_commands(mut stdin: ChildStdin, mut commands: mpsc::UnboundedReceiver<Command>) {
    while let Some(command) = commands.recv().await {
        let mut line = encode_line(&command);
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    // Dropping stdin tells the worker to exit.
}

/// The worker's stderr becomes tracing events (the log file, and stderr too
/// with `--verbose`); the last lines are kept for the "engine stopped" message.
async fn collect_logs(stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "whet::engine", "{line}");
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

async fn read_events(
    mut child: Child,
    stdout: ChildStdout,
    stderr_task: tokio::task::JoinHandle<()>,
    tail: Arc<Mutex<VecDeque<String>>>,
    events: mpsc::UnboundedSender<Incoming>,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Event>(&line) {
            Ok(event) => {
                let _ = events.send(Incoming::Event(event));
            }
            Err(e) => {
                tracing::warn!(target: "whet::engine", "unreadable protocol line ({e}): {line}")
            }
        }
    }
    let status = match child.wait().await {
        Ok(status) => describe_exit(status),
        Err(e) => format!("its exit status is unknown ({e})"),
    };
    // The stderr pipe closes when the process is gone; wait so the last lines are in.
    let _ = tokio::time::timeout(Duration::from_secs(2), stderr_task).await;
    let last_lines = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    tracing::info!(target: "whet::engine", "worker exited: {status}");
    let _ = events.send(Incoming::Exited(WorkerExit { status, last_lines }));
}

pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGABRT => " (SIGABRT: llama.cpp aborted)",
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGSEGV => " (SIGSEGV: crashed)",
            libc::SIGTERM => " (SIGTERM)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGFPE => " (SIGFPE)",
            _ => "",
        };
        return format!("killed by signal {signal}{name}");
    }
    match status.code() {
        Some(0) => "exited normally (code 0)".to_string(),
        Some(code) => format!("exit code {code}"),
        None => "unknown exit status".to_string(),
    }
}

fn ms_between(start: Instant, end: Instant) -> f64 {
    end.duration_since(start).as_secs_f64() * 1000.0
}
