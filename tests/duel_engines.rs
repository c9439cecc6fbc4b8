//! A duel between the two catalog models through real workers: SmolLM2 in
//! column A, Gemma 3 270M (with the chatml format: it has no template of
//! its own) in column B, one after the other and at once, greedy; a column
//! whose worker is killed mid-reply fails alone and comes back for its
//! next reply.

mod common;

use std::time::Duration;

use common::*;
use whet::arena::duel::{Column, Contender, Duel, ModelRef, ReplyState};
use whet::arena::runner::{ColumnSettings, ColumnStart, DuelEvent, DuelRunner};
use whet::engine::protocol::{ChatMessage, Role, StopReason};
use whet::engine::{SamplingParams, SpawnOptions};

fn start(model: std::path::PathBuf, chat_format: Option<&str>) -> ColumnStart {
    let mut load = load_request(model, 1024);
    load.chat_format = chat_format.map(String::from);
    ColumnStart {
        engine: None,
        spawn: SpawnOptions::local(whet_bin()),
        load,
    }
}

fn contender(name: &str, path: std::path::PathBuf) -> Contender {
    Contender {
        name: name.into(),
        model: ModelRef::Local { path, sha256: None },
    }
}

fn settings(max_tokens: u32) -> [ColumnSettings; 2] {
    let one = ColumnSettings {
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
    };
    [one.clone(), one]
}

fn new_duel(at_once: bool) -> Duel {
    Duel::new(
        vec![ChatMessage::new(
            Role::System,
            "Answer in one short sentence.",
        )],
        contender("smol", smollm2()),
        contender("gemma", gemma3()),
        false,
        at_once,
        false,
    )
}

/// Feeds the runner's events to the duel and the duel's jobs to the
/// runner until the turn is over; the order in which columns wrote.
async fn play(
    duel: &mut Duel,
    runner: &mut DuelRunner,
    settings: &[ColumnSettings; 2],
) -> Vec<Column> {
    let mut order = Vec::new();
    while duel.busy() {
        let event = tokio::time::timeout(Duration::from_secs(120), runner.events.recv())
            .await
            .expect("the engines answer")
            .expect("the runner is alive");
        let jobs = match event {
            DuelEvent::Token { column, text } => {
                if order.last() != Some(&column) {
                    order.push(column);
                }
                duel.token(column, &text);
                Vec::new()
            }
            DuelEvent::Done { column, generation } => {
                duel.finished(column, generation.reason, Some(generation.stats))
            }
            DuelEvent::Failed { column, message } => duel.failed(column, &message),
            DuelEvent::Loaded { .. } => Vec::new(),
            DuelEvent::LoadFailed { column, message } => panic!("{column:?}: {message}"),
        };
        for job in jobs {
            runner.run(job, settings);
        }
    }
    order
}

async fn send(
    duel: &mut Duel,
    runner: &mut DuelRunner,
    text: &str,
    settings: &[ColumnSettings; 2],
) -> Vec<Column> {
    for job in duel.send(text).unwrap() {
        runner.run(job, settings);
    }
    play(duel, runner, settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_models_answer_one_after_the_other_each_from_its_own_history() {
    let mut runner = DuelRunner::start([start(smollm2(), None), start(gemma3(), Some("chatml"))]);
    let settings = settings(24);
    let mut duel = new_duel(false);
    let order = send(&mut duel, &mut runner, "Name a colour.", &settings).await;
    // A streamed to its end before B began.
    assert_eq!(order, [Column::A, Column::B]);
    let first = duel.turns[0].clone();
    for reply in &first.replies {
        assert!(!reply.text.is_empty());
        assert!(
            matches!(reply.state, ReplyState::Done(_)),
            "{:?}",
            reply.state
        );
        assert!(reply.stats.as_ref().unwrap().generated_tokens > 0);
    }
    assert_ne!(first.replies[0].text, first.replies[1].text);

    // The second turn: each column is asked with its own earlier reply,
    // and greedy decoding gives the same replies when B is asked again.
    send(&mut duel, &mut runner, "Why that one?", &settings).await;
    let b_second = duel.turns[1].replies[1].text.clone();
    for job in duel.regenerate(Column::B).unwrap() {
        runner.run(job, &settings);
    }
    play(&mut duel, &mut runner, &settings).await;
    assert_eq!(duel.turns[1].replies[1].text, b_second);
    assert_eq!(duel.turns[0], first);
    let [a, b] = runner.finish().await;
    assert!(a.is_some() && b.is_some());
    a.unwrap().shutdown().await;
    b.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_once_both_stream_and_esc_stops_both() {
    let mut runner = DuelRunner::start([start(smollm2(), None), start(gemma3(), Some("chatml"))]);
    let long = settings(400);
    let mut duel = new_duel(true);
    for job in duel.send("Tell a long story about a lighthouse.").unwrap() {
        runner.run(job, &long);
    }
    // Both columns write before either ends.
    let mut seen = [false, false];
    while !(seen[0] && seen[1]) {
        match runner.events.recv().await.unwrap() {
            DuelEvent::Token { column, text } => {
                seen[column.index()] = true;
                duel.token(column, &text);
            }
            DuelEvent::Loaded { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    for job in duel.stop() {
        runner.run(job, &long);
    }
    play(&mut duel, &mut runner, &long).await;
    for reply in &duel.turns[0].replies {
        assert_eq!(reply.state, ReplyState::Done(StopReason::Cancelled));
        assert!(!reply.text.is_empty());
        assert!(reply.stats.as_ref().unwrap().generated_tokens < 400);
    }
    runner.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_fails_its_column_alone_and_restarts_for_the_next_reply() {
    let mut runner = DuelRunner::start([start(smollm2(), None), start(gemma3(), Some("chatml"))]);
    let settings = settings(300);
    let mut duel = new_duel(false);
    for job in duel.send("Tell a long story about a lighthouse.").unwrap() {
        runner.run(job, &settings);
    }
    // Kill A's worker once it has written something and B's is up.
    let mut pids = [0u32; 2];
    loop {
        match runner.events.recv().await.unwrap() {
            DuelEvent::Loaded { column, pid, .. } => pids[column.index()] = pid,
            DuelEvent::Token { column, text } => {
                duel.token(column, &text);
                if pids[1] > 0 && duel.turns[0].replies[0].text.len() > 20 {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        pids[0] > 0 && pids[1] > 0 && pids[0] != pids[1],
        "two workers: {pids:?}"
    );
    unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    let order = play(&mut duel, &mut runner, &settings).await;
    assert_eq!(order.last(), Some(&Column::B), "B went on after A failed");
    let a = &duel.turns[0].replies[0];
    assert!(matches!(a.state, ReplyState::Failed(_)), "{:?}", a.state);
    assert!(a.text.len() > 20, "the partial reply is kept: {:?}", a.text);
    assert!(matches!(
        duel.turns[0].replies[1].state,
        ReplyState::Done(_)
    ));

    // A's next reply starts a new worker.
    let short = self::settings(8);
    for job in duel.regenerate(Column::A).unwrap() {
        runner.run(job, &short);
    }
    play(&mut duel, &mut runner, &short).await;
    assert!(matches!(
        duel.turns[0].replies[0].state,
        ReplyState::Done(_)
    ));
    assert!(!duel.turns[0].replies[0].text.is_empty());
    runner.finish().await;
}

#[test]
fn the_duel_benchmark_reports_both_paces_and_both_workers_memory() {
    let dir = tempfile::tempdir().unwrap();
    let gemma = gemma3();
    let output = whet(
        &[
            "bench",
            "--model",
            smollm2().to_str().unwrap(),
            "--duel",
            gemma.to_str().unwrap(),
            "--duel-chat-format",
            "chatml",
            "--reps",
            "1",
            "--gen-tokens",
            "8",
            "--json",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    let duel = &report["duel"];
    for pace in ["one_after_the_other", "at_once"] {
        for figure in ["a_tok_s", "b_tok_s", "turn_ms"] {
            let median = duel[pace][figure]["median"].as_f64().unwrap();
            assert!(
                median > 0.0 && median.is_finite(),
                "{pace} {figure}: {duel}"
            );
        }
    }
    // Two workers, the larger model the larger one.
    let rss = duel["worker_peak_rss_mib"].as_array().unwrap();
    let (a, b) = (rss[0].as_f64().unwrap(), rss[1].as_f64().unwrap());
    assert!(a > 50.0 && b > a, "{rss:?}");

    let output = whet(&["bench", "--duel", "/nonexistent.gguf"], dir.path());
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("/nonexistent.gguf: no such model file"),
        "{}",
        stderr(&output)
    );
}
