//! The two engines of a duel, one per column, each served by a task of its
//! own so that the columns can generate at once. A column's engine is a
//! worker process (crash-isolated as everywhere: a dead worker fails that
//! column's reply, not the other's, and is started again for the column's
//! next request) or a remote server. The runner only runs what a `Duel`
//! asks for and reports what happened; deciding what comes next stays with
//! the duel.

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::duel::{Column, DuelJob, Pace};
use crate::engine::client::Generation;
use crate::engine::protocol::{GenerateRequest, LoadRequest, ModelInfo, Prompt};
use crate::engine::{EngineClient, EngineError, SamplingParams, SpawnOptions};

/// How a column's engine starts (and starts again after a crash), and the
/// engine itself when one is already running (the chat's own).
pub struct ColumnStart {
    pub engine: Option<EngineClient>,
    pub spawn: SpawnOptions,
    pub load: LoadRequest,
}

/// llama.cpp threads for each local worker of a duel with `cores`
/// physical cores: all of them when the replies run one after the other;
/// half each when two local workers run at once — two full thread pools on
/// the same cores spin against each other (`whet bench --duel`: 15 tok/s a
/// side at 2+2 threads on 2 cores, 90 and 53 at 1+1).
pub fn threads_per_worker(pace: Pace, local_workers: usize, cores: u32) -> u32 {
    match pace {
        Pace::AtOnce if local_workers >= 2 => (cores / 2).max(1),
        _ => cores.max(1),
    }
}

/// What a column generates with.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSettings {
    pub sampling: SamplingParams,
    pub max_tokens: u32,
    pub stop: Vec<String>,
}

#[derive(Debug)]
pub enum DuelEvent {
    /// The column's engine is up (started, or started again; `info` is
    /// None for an engine handed over already running); `pid` is its
    /// worker's (0 for a remote server), for its memory.
    Loaded {
        column: Column,
        info: Option<Box<ModelInfo>>,
        pid: u32,
    },
    /// It could not start.
    LoadFailed {
        column: Column,
        message: String,
    },
    Token {
        column: Column,
        text: String,
    },
    Done {
        column: Column,
        generation: Box<Generation>,
    },
    /// The reply failed (the text that arrived came as tokens).
    Failed {
        column: Column,
        message: String,
    },
}

struct ColumnHandle {
    requests: mpsc::UnboundedSender<GenerateRequest>,
    /// Requests sent so far; a cancel covers all of them.
    sent: u64,
    cancel: watch::Sender<u64>,
    task: JoinHandle<Option<EngineClient>>,
}

pub struct DuelRunner {
    columns: [ColumnHandle; 2],
    pub events: mpsc::UnboundedReceiver<DuelEvent>,
}

impl DuelRunner {
    /// Starts both columns' engines (those not already running) at once.
    pub fn start(columns: [ColumnStart; 2]) -> DuelRunner {
        let (events_tx, events) = mpsc::unbounded_channel();
        let [a, b] = columns;
        let handle = |column: Column, start: ColumnStart| {
            let (requests, requests_rx) = mpsc::unbounded_channel();
            let (cancel, cancel_rx) = watch::channel(0);
            let task = tokio::spawn(serve(
                column,
                start,
                requests_rx,
                cancel_rx,
                events_tx.clone(),
            ));
            ColumnHandle {
                requests,
                sent: 0,
                cancel,
                task,
            }
        };
        DuelRunner {
            columns: [handle(Column::A, a), handle(Column::B, b)],
            events,
        }
    }

    /// Runs a job of the duel with the columns' settings.
    pub fn run(&mut self, job: DuelJob, settings: &[ColumnSettings; 2]) {
        match job {
            DuelJob::Generate { column, messages } => {
                let settings = &settings[column.index()];
                let handle = &mut self.columns[column.index()];
                let request = GenerateRequest {
                    id: 0,
                    prompt: Prompt::Chat { messages },
                    sampling: settings.sampling.clone(),
                    max_tokens: settings.max_tokens,
                    stop: settings.stop.clone(),
                    reuse_prefix: true,
                    ignore_eos: false,
                    probs: None,
                    constraint: None,
                };
                if handle.requests.send(request).is_ok() {
                    handle.sent += 1;
                }
            }
            DuelJob::Cancel { column } => self.cancel(column),
        }
    }

    /// Stops the column's running reply (and any it was sent before).
    pub fn cancel(&self, column: Column) {
        let handle = &self.columns[column.index()];
        handle.cancel.send_replace(handle.sent);
    }

    /// Ends the runner when the columns are idle, giving their engines
    /// back (None for one that died or never started).
    pub async fn finish(self) -> [Option<EngineClient>; 2] {
        let [a, b] = self.columns;
        for handle in [&a, &b] {
            handle.cancel.send_replace(handle.sent);
        }
        drop(a.requests);
        drop(b.requests);
        let (a, b) = tokio::join!(a.task, b.task);
        [a.ok().flatten(), b.ok().flatten()]
    }
}

async fn serve(
    column: Column,
    start: ColumnStart,
    mut requests: mpsc::UnboundedReceiver<GenerateRequest>,
    cancel: watch::Receiver<u64>,
    events: mpsc::UnboundedSender<DuelEvent>,
) -> Option<EngineClient> {
    let ColumnStart {
        mut engine,
        spawn,
        load,
    } = start;
    match &engine {
        Some(running) => {
            let pid = if running.is_remote() {
                0
            } else {
                running.pid()
            };
            let _ = events.send(DuelEvent::Loaded {
                column,
                info: None,
                pid,
            });
        }
        None => engine = start_engine(column, &spawn, &load, &events).await,
    }
    let mut served = 0u64;
    while let Some(request) = requests.recv().await {
        served += 1;
        let ticket = served;
        // A worker that died on an earlier reply starts again.
        if engine.is_none() {
            engine = start_engine(column, &spawn, &load, &events).await;
        }
        let Some(client) = engine.as_mut() else {
            let _ = events.send(DuelEvent::Failed {
                column,
                message: "the engine is not running".into(),
            });
            continue;
        };
        let mut cancelled = cancel.clone();
        let stop = async move {
            // Also ends when the runner is gone: nothing would read the rest.
            let _ = cancelled.wait_for(|up_to| *up_to >= ticket).await;
        };
        let tokens = events.clone();
        let result = client
            .generate_until(
                request,
                |text| {
                    let _ = tokens.send(DuelEvent::Token {
                        column,
                        text: text.to_string(),
                    });
                },
                stop,
            )
            .await;
        match result {
            Ok(generation) => {
                let _ = events.send(DuelEvent::Done {
                    column,
                    generation: Box::new(generation),
                });
            }
            Err(error) => {
                if !matches!(error, EngineError::Request(_)) {
                    // The worker is gone or unreadable: drop it.
                    engine = None;
                }
                let _ = events.send(DuelEvent::Failed {
                    column,
                    message: error.to_string(),
                });
            }
        }
    }
    engine
}

async fn start_engine(
    column: Column,
    spawn: &SpawnOptions,
    load: &LoadRequest,
    events: &mpsc::UnboundedSender<DuelEvent>,
) -> Option<EngineClient> {
    let result = async {
        let mut engine = EngineClient::spawn(spawn).await?;
        let info = engine.load(load.clone()).await?;
        Ok::<_, EngineError>((engine, info))
    }
    .await;
    match result {
        Ok((engine, info)) => {
            let pid = if engine.is_remote() { 0 } else { engine.pid() };
            let _ = events.send(DuelEvent::Loaded {
                column,
                info: Some(Box::new(info)),
                pid,
            });
            Some(engine)
        }
        Err(error) => {
            let _ = events.send(DuelEvent::LoadFailed {
                column,
                message: error.to_string(),
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_local_workers_at_once_split_the_cores() {
        assert_eq!(threads_per_worker(Pace::OneAfterTheOther, 2, 2), 2);
        assert_eq!(threads_per_worker(Pace::AtOnce, 2, 2), 1);
        assert_eq!(threads_per_worker(Pace::AtOnce, 2, 8), 4);
        assert_eq!(threads_per_worker(Pace::AtOnce, 2, 1), 1);
        // Beside a remote model the local worker has the machine to itself.
        assert_eq!(threads_per_worker(Pace::AtOnce, 1, 2), 2);
    }
}
