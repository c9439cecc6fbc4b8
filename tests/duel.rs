//! The compare mode's state (`whet::arena::duel`) driven by a scripted
//! engine: each job it asks for is answered the way a worker would (tokens,
//! then an end), in the order the test chooses.

use whet::arena::duel::{
    Column, Contender, Duel, DuelJob, ModelRef, Pace, ReplyState, VoteContext,
};
use whet::arena::Verdict;
use whet::engine::protocol::{ChatMessage, GenerationStats, Role, StopReason};
use whet::engine::remote::RemoteModel;
use whet::engine::SamplingParams;

fn local(name: &str) -> Contender {
    Contender {
        name: name.into(),
        model: ModelRef::Local {
            path: format!("/models/{name}.gguf").into(),
            sha256: Some(format!("{name}-sha")),
        },
    }
}

fn remote(name: &str) -> Contender {
    Contender {
        name: name.into(),
        model: ModelRef::Remote(RemoteModel {
            backend: "gpu".into(),
            model: Some(name.into()),
        }),
    }
}

fn prefix() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, "Be brief."),
        ChatMessage::new(Role::User, "Hello"),
        ChatMessage::new(Role::Assistant, "Hi."),
    ]
}

fn context() -> VoteContext {
    VoteContext {
        session: "s".into(),
        at_ms: 7,
        sampling: [SamplingParams::greedy(), SamplingParams::default()],
    }
}

/// The columns a batch of jobs starts.
fn started(jobs: &[DuelJob]) -> Vec<Column> {
    jobs.iter()
        .filter_map(|job| match job {
            DuelJob::Generate { column, .. } => Some(*column),
            DuelJob::Cancel { .. } => None,
        })
        .collect()
}

/// The engine of `column` answers in full: `text` in two pieces, then the end.
fn answer(duel: &mut Duel, column: Column, text: &str) -> Vec<DuelJob> {
    let (first, second) = text.split_at(text.len() / 2);
    duel.token(column, first);
    duel.token(column, second);
    let stats = GenerationStats {
        generated_tokens: 3,
        ..GenerationStats::default()
    };
    duel.finished(column, StopReason::Eos, Some(stats))
}

#[test]
fn local_replies_run_one_after_the_other_each_from_its_own_history() {
    let mut duel = Duel::new(prefix(), local("smol"), local("gemma"), false, false, false);
    assert_eq!(duel.pace, Pace::OneAfterTheOther);
    let jobs = duel.send("Name a colour.").unwrap();
    assert_eq!(started(&jobs), [Column::A]);
    let DuelJob::Generate { messages, .. } = &jobs[0] else {
        panic!()
    };
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[3], ChatMessage::new(Role::User, "Name a colour."));
    assert_eq!(duel.turns[0].replies[1].state, ReplyState::Queued);
    assert!(duel.send("too soon").is_err());

    // A's end starts B.
    let jobs = answer(&mut duel, Column::A, "Red.");
    assert_eq!(started(&jobs), [Column::B]);
    assert!(answer(&mut duel, Column::B, "Blue.").is_empty());
    assert!(!duel.busy());

    // The second turn: each side sees its own earlier reply.
    let jobs = duel.send("Another?").unwrap();
    let DuelJob::Generate { messages, .. } = &jobs[0] else {
        panic!()
    };
    assert_eq!(messages[4], ChatMessage::new(Role::Assistant, "Red."));
    let jobs = answer(&mut duel, Column::A, "Green.");
    let DuelJob::Generate { column, messages } = &jobs[0] else {
        panic!()
    };
    assert_eq!(*column, Column::B);
    assert_eq!(messages[4], ChatMessage::new(Role::Assistant, "Blue."));
    assert_eq!(messages.last().unwrap().content, "Another?");
    answer(&mut duel, Column::B, "Gold.");
    let b: Vec<String> = duel
        .history(Column::B)
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(b[3..], ["Name a colour.", "Blue.", "Another?", "Gold."]);
}

#[test]
fn at_once_both_start_and_end_in_either_order() {
    let mut duel = Duel::new(prefix(), local("smol"), local("gemma"), false, true, false);
    assert_eq!(started(&duel.send("Hi").unwrap()), [Column::A, Column::B]);
    duel.token(Column::B, "B first");
    duel.token(Column::A, "A ");
    assert!(answer(&mut duel, Column::B, "!").is_empty());
    assert!(duel.busy());
    answer(&mut duel, Column::A, "second");
    assert_eq!(duel.turns[0].replies[0].text, "A second");
    assert_eq!(duel.turns[0].replies[1].text, "B first!");
    // A remote model runs beside a local one whatever the choice.
    let duel = Duel::new(prefix(), local("smol"), remote("big"), false, false, false);
    assert_eq!(duel.pace, Pace::AtOnce);
}

#[test]
fn esc_stops_both_and_a_queued_reply_never_starts() {
    let mut duel = Duel::new(prefix(), local("smol"), local("gemma"), false, false, false);
    duel.send("Tell a story.").unwrap();
    duel.token(Column::A, "Once upon");
    assert_eq!(duel.stop(), [DuelJob::Cancel { column: Column::A }]);
    assert_eq!(
        duel.turns[0].replies[1].state,
        ReplyState::Done(StopReason::Cancelled)
    );
    // The cancelled reply's end does not start the other.
    assert!(duel
        .finished(Column::A, StopReason::Cancelled, None)
        .is_empty());
    assert!(!duel.busy());
    assert_eq!(duel.turns[0].replies[0].text, "Once upon");
    // A token that arrives after the stop is not added.
    duel.token(Column::A, " late");
    assert_eq!(duel.turns[0].replies[0].text, "Once upon");
}

#[test]
fn one_side_is_regenerated_alone_and_its_vote_goes() {
    let mut duel = Duel::new(prefix(), local("smol"), local("gemma"), false, false, false);
    duel.send("Hi").unwrap();
    answer(&mut duel, Column::A, "a1");
    answer(&mut duel, Column::B, "b1");
    duel.vote(Verdict::A, None, context()).unwrap();
    let jobs = duel.regenerate(Column::B).unwrap();
    assert_eq!(started(&jobs), [Column::B]);
    let DuelJob::Generate { messages, .. } = &jobs[0] else {
        panic!()
    };
    // From B's history without its old reply.
    assert_eq!(messages.last().unwrap().content, "Hi");
    assert!(duel.turns[0].vote.is_none());
    answer(&mut duel, Column::B, "b2");
    assert_eq!(duel.turns[0].replies[0].text, "a1");
    assert_eq!(duel.turns[0].replies[1].text, "b2");
    assert!(duel.vote(Verdict::B, None, context()).is_ok());
}

#[test]
fn a_blind_vote_reveals_the_names_and_later_votes_are_not_blind() {
    // The coin puts the chat's model in column B.
    let mut duel = Duel::new(prefix(), local("smol"), remote("big"), true, false, true);
    assert_eq!(duel.contender(Column::A).name, "big");
    assert_eq!(duel.shown_name(Column::A), "A");
    assert_eq!(duel.shown_name(Column::B), "B");
    duel.send("Hi").unwrap();
    assert!(
        duel.vote(Verdict::Tie, None, context()).is_err(),
        "not while replies run"
    );
    answer(&mut duel, Column::A, "a");
    answer(&mut duel, Column::B, "b");
    let vote = duel
        .vote(Verdict::BothBad, Some("  both wrong ".into()), context())
        .unwrap();
    assert!(vote.blind);
    assert_eq!(vote.turn, 1, "the prefix had one user turn");
    assert_eq!(vote.a.model, "big");
    assert!(vote.a.backend.is_some() && vote.a.file.is_none());
    assert_eq!(vote.b.sha256.as_deref(), Some("smol-sha"));
    assert_eq!(vote.b.sampling, SamplingParams::default());
    assert_eq!(vote.a.stats.as_ref().unwrap().generated_tokens, 3);
    assert_eq!(vote.note.as_deref(), Some("  both wrong "));
    assert_eq!(duel.shown_name(Column::A), "A · big");
    assert!(
        duel.vote(Verdict::A, None, context()).is_err(),
        "one vote a turn"
    );

    duel.send("More").unwrap();
    answer(&mut duel, Column::A, "a");
    answer(&mut duel, Column::B, "b");
    let vote = duel.vote(Verdict::A, Some(" ".into()), context()).unwrap();
    assert!(!vote.blind);
    assert_eq!(vote.note, None);
}

#[test]
fn a_crashed_worker_keeps_its_text_and_the_other_side_goes_on() {
    let mut duel = Duel::new(prefix(), local("smol"), local("gemma"), false, false, false);
    duel.send("Hi").unwrap();
    duel.token(Column::A, "partial");
    let jobs = duel.failed(Column::A, "the engine stopped (signal 6)");
    assert_eq!(started(&jobs), [Column::B]);
    assert_eq!(duel.turns[0].replies[0].text, "partial");
    assert_eq!(
        duel.turns[0].replies[0].state,
        ReplyState::Failed("the engine stopped (signal 6)".into())
    );
    answer(&mut duel, Column::B, "fine");
    assert!(!duel.busy());
    // The failed side can be regenerated once its worker is back.
    assert_eq!(started(&duel.regenerate(Column::A).unwrap()), [Column::A]);
}

#[test]
fn continuing_with_one_side_gives_its_conversation_and_model() {
    let mut duel = Duel::new(prefix(), local("smol"), local("gemma"), false, false, false);
    duel.send("Hi").unwrap();
    answer(&mut duel, Column::A, "from smol");
    assert!(duel.continue_with(Column::B).is_err(), "B still queued");
    answer(&mut duel, Column::B, "from gemma");
    let (messages, contender) = duel.continue_with(Column::B).unwrap();
    assert_eq!(contender.name, "gemma");
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[4].content, "from gemma");
}

#[test]
fn a_duel_saved_mid_reply_reads_back_stopped() {
    let mut duel = Duel::new(prefix(), local("smol"), local("gemma"), true, false, false);
    duel.send("Hi").unwrap();
    duel.token(Column::A, "half");
    let text = serde_json::to_string(&duel).unwrap();
    let mut back: Duel = serde_json::from_str(&text).unwrap();
    assert_eq!(back, duel);
    back.settle();
    assert!(!back.busy());
    assert_eq!(back.turns[0].replies[0].text, "half");
    assert_eq!(
        back.turns[0].replies[1].state,
        ReplyState::Done(StopReason::Cancelled)
    );
}
