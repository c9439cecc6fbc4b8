//! The loop driven by a scripted engine: every way it ends, what it sends,
//! what it keeps, and a saved run read back the same.

use super::*;
use crate::engine::protocol::{ChatMessage, GenerationStats, Role, StopReason};

/// Answers each step with the next scripted reply; records the steps.
struct Script {
    replies: Vec<(&'static str, StopReason)>,
    steps: Vec<Step>,
    fail_at: Option<usize>,
}

impl Script {
    fn new(replies: &[&'static str]) -> Script {
        Script {
            replies: replies.iter().map(|r| (*r, StopReason::Eos)).collect(),
            steps: Vec::new(),
            fail_at: None,
        }
    }
}

impl Generator for Script {
    async fn generate(
        &mut self,
        step: &Step,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generated, String> {
        let n = self.steps.len();
        self.steps.push(step.clone());
        if self.fail_at == Some(n) {
            return Err("the engine stopped".into());
        }
        let (text, reason) = self.replies.get(n).copied().expect("script ran out");
        on_text(text);
        // A prompt of 100 tokens, of which every step after the first
        // shares 40 with the one before.
        Ok(Generated {
            text: text.to_string(),
            reason,
            stats: GenerationStats {
                prompt_tokens: 100,
                reused_tokens: if n == 0 { 0 } else { 40 },
                generated_tokens: 10,
                ..Default::default()
            },
            tokens: None,
        })
    }
}

fn setup(config: LoopConfig, refine: Refine) -> RefineSetup {
    RefineSetup {
        template: "t".into(),
        template_toml: String::new(),
        values: Default::default(),
        model: None,
        sampling: SamplingParams::default(),
        max_tokens: 64,
        stop: Vec::new(),
        constraint: None,
        config,
        refine,
        draft_messages: vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Name a colour."),
        ],
        references: vec!["Blue.".into()],
    }
}

fn own_prompts() -> Refine {
    Refine {
        feedback: Some("FB task={{task}} answer={{answer}}".into()),
        refine: Some("RF task={{task}} answer={{answer}} feedback={{feedback}}".into()),
        stop_phrase: Some("DONE".into()),
        ..Refine::default()
    }
}

fn run_script(config: LoopConfig, refine: Refine, script: &mut Script) -> RefineRun {
    let mut refine = RefineLoop::new(setup(config, refine)).unwrap();
    let mut streamed = String::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(drive(&mut refine, script, |event| {
        if let LoopEvent::Text(text) = event {
            streamed.push_str(text);
        }
    }));
    assert!(refine.is_finished());
    let run = refine.into_run();
    // Everything generated streamed through the events.
    let all: String = run
        .passes
        .iter()
        .flat_map(|p| {
            [
                Some(p.text.as_str()),
                p.feedback.as_ref().map(|f| f.text.as_str()),
            ]
        })
        .flatten()
        .collect();
    assert_eq!(streamed, all);
    run
}

fn texts(run: &RefineRun) -> Vec<&str> {
    run.passes.iter().map(|p| p.text.as_str()).collect()
}

#[test]
fn max_rounds_ends_after_the_last_refined_pass() {
    let mut script = Script::new(&["Red", "fb1", "Green", "fb2", "Blue."]);
    let config = LoopConfig {
        max_rounds: 2,
        history: History::Fresh,
        ..LoopConfig::default()
    };
    let run = run_script(config, own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red", "Green", "Blue."]);
    assert_eq!(run.end, Some(LoopEnd::MaxRounds));
    assert_eq!(run.passes[0].feedback.as_ref().unwrap().text, "fb1");
    assert_eq!(run.passes[1].feedback.as_ref().unwrap().text, "fb2");
    assert!(run.passes[2].feedback.is_none());

    // What was sent: the draft's own messages, then the filled prompts.
    assert_eq!(
        script.steps[0].messages,
        setup(LoopConfig::default(), Refine::default()).draft_messages
    );
    assert_eq!(
        script.steps[1].messages,
        [ChatMessage::new(
            Role::User,
            "FB task=Name a colour. answer=Red"
        )]
    );
    assert_eq!(
        script.steps[2].messages,
        [ChatMessage::new(
            Role::User,
            "RF task=Name a colour. answer=Red feedback=fb1"
        )]
    );
    assert_eq!(
        script.steps[3].messages[0].content,
        "FB task=Name a colour. answer=Green"
    );
    let kinds: Vec<StepKind> = script.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::Draft,
            StepKind::Feedback { round: 1 },
            StepKind::Refine { round: 1 },
            StepKind::Feedback { round: 2 },
            StepKind::Refine { round: 2 },
        ]
    );
    // Each pass is scored against the reference; the last one matches it.
    assert_eq!(run.passes[2].scores.exact_match, Some(true));
    assert_eq!(run.passes[0].scores.exact_match, Some(false));
    assert!(run.passes[0].diff.is_none());
    assert_eq!(
        run.passes[1].diff,
        Some(DiffSize {
            deleted: 1,
            inserted: 1
        })
    );
}

#[test]
fn in_a_conversation_each_step_continues_the_one_before() {
    let mut script = Script::new(&["Red", "fb1", "Green", "fb2", "Blue."]);
    let config = LoopConfig {
        max_rounds: 2,
        ..LoopConfig::default()
    };
    assert_eq!(config.history, History::Conversation);
    let run = run_script(config, own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red", "Green", "Blue."]);
    let draft = setup(LoopConfig::default(), Refine::default()).draft_messages;
    let mut expected = draft.clone();
    assert_eq!(script.steps[0].messages, expected);
    for (step, (answer, request)) in script.steps[1..].iter().zip([
        ("Red", "FB task=Name a colour. answer=Red"),
        ("fb1", "RF task=Name a colour. answer=Red feedback=fb1"),
        ("Green", "FB task=Name a colour. answer=Green"),
        ("fb2", "RF task=Name a colour. answer=Green feedback=fb2"),
    ]) {
        // The step before, its answer, then the new request.
        expected.push(ChatMessage::new(Role::Assistant, answer));
        expected.push(ChatMessage::new(Role::User, request));
        assert_eq!(step.messages, expected);
    }
    // What each pass and feedback was sent is kept with it.
    assert_eq!(run.passes[2].messages, script.steps[4].messages);
    assert_eq!(
        run.passes[1].feedback.as_ref().unwrap().messages,
        script.steps[3].messages
    );
}

#[test]
fn the_stop_phrase_in_the_feedback_ends_the_loop_in_any_case() {
    let mut script = Script::new(&["Red", "Fine. done", "never"]);
    let run = run_script(LoopConfig::default(), own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red"]);
    assert_eq!(run.end, Some(LoopEnd::StopPhrase));
    assert_eq!(script.steps.len(), 2);
}

#[test]
fn an_unchanged_pass_ends_the_loop() {
    let mut script = Script::new(&["Red", "fb", " Red\n", "never"]);
    let run = run_script(LoopConfig::default(), own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red", " Red\n"]);
    assert_eq!(run.end, Some(LoopEnd::Unchanged));
}

#[test]
fn a_score_at_the_threshold_ends_the_loop() {
    let mut script = Script::new(&[
        "Red",
        "Total score: 12/25",
        "Green",
        "Scores... Total score: 23 (out of 25)",
        "never",
    ]);
    let config = LoopConfig {
        score_threshold: Some(22.0),
        ..LoopConfig::default()
    };
    let run = run_script(config, own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red", "Green"]);
    assert_eq!(run.passes[0].feedback.as_ref().unwrap().score, Some(12.0));
    assert_eq!(run.end, Some(LoopEnd::ScoreThreshold { score: 23.0 }));
}

#[test]
fn a_cancelled_step_ends_the_loop_and_keeps_the_partial_pass() {
    let mut script = Script::new(&["Red", "fb", "Gre"]);
    script.replies[2].1 = StopReason::Cancelled;
    let run = run_script(LoopConfig::default(), own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red", "Gre"]);
    assert_eq!(run.passes[1].reason, StopReason::Cancelled);
    assert_eq!(run.end, Some(LoopEnd::Cancelled));
}

#[test]
fn a_failed_step_ends_the_loop_keeping_what_is_done() {
    let mut script = Script::new(&["Red", "fb"]);
    script.fail_at = Some(2);
    let run = run_script(LoopConfig::default(), own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red"]);
    assert_eq!(
        run.end,
        Some(LoopEnd::Failed {
            message: "the engine stopped".into()
        })
    );
}

#[test]
fn cancel_between_steps_stops_before_the_next() {
    let mut refine = RefineLoop::new(setup(LoopConfig::default(), own_prompts())).unwrap();
    let step = refine.next_step().unwrap();
    refine.record(
        &step,
        Generated {
            text: "Red".into(),
            reason: StopReason::Eos,
            stats: Default::default(),
            tokens: None,
        },
    );
    refine.cancel();
    assert!(refine.next_step().is_none());
    assert_eq!(refine.run().end, Some(LoopEnd::Cancelled));
    // A late result for a step that is no longer current is ignored.
    refine.record(
        &step,
        Generated {
            text: "late".into(),
            reason: StopReason::Eos,
            stats: Default::default(),
            tokens: None,
        },
    );
    assert_eq!(texts(refine.run()), ["Red"]);
}

#[test]
fn the_constraint_binds_the_draft_and_the_passes_not_the_feedback() {
    let grammar = crate::engine::constraint::Constraint::Grammar {
        text: "root ::= [a-z]+".into(),
        source: "words.gbnf".into(),
    };
    let mut config = setup(LoopConfig::default(), own_prompts());
    config.constraint = Some(grammar.clone());
    let mut refine = RefineLoop::new(config).unwrap();
    let mut kinds = Vec::new();
    for text in ["red", "more blue", "blue"] {
        let step = refine.next_step().unwrap();
        let request = step.request(&SamplingParams::default(), 8, &[]);
        assert_eq!(request.constraint, step.constraint);
        kinds.push((step.kind, step.constraint.is_some()));
        refine.record(
            &step,
            Generated {
                text: text.into(),
                reason: StopReason::Eos,
                stats: Default::default(),
                tokens: None,
            },
        );
    }
    assert_eq!(
        kinds,
        [
            (StepKind::Draft, true),
            (StepKind::Feedback { round: 1 }, false),
            (StepKind::Refine { round: 1 }, true),
        ]
    );
    assert_eq!(refine.run().constraint, Some(grammar));
}

#[test]
fn a_pass_keeps_its_tokens_and_a_version_1_run_loads_without() {
    let mut refine = RefineLoop::new(setup(LoopConfig::default(), own_prompts())).unwrap();
    let step = refine.next_step().unwrap();
    let probs = crate::engine::probs::TokenProbs {
        logprob: -0.25,
        top: Vec::new(),
        entropy: Some(0.5),
    };
    let tokens = vec![crate::store::tokens::KeptToken::new(42, "Red", &probs)];
    refine.record(
        &step,
        Generated {
            text: "Red".into(),
            reason: StopReason::Eos,
            stats: Default::default(),
            tokens: Some(tokens.clone()),
        },
    );
    let run = refine.run().clone();
    assert_eq!(run.passes[0].tokens.as_deref(), Some(&tokens[..]));
    let json = serde_json::to_string(&run).unwrap();
    let back: RefineRun = serde_json::from_str(&json).unwrap();
    assert_eq!(back, run);
    // A version 1 file has no tokens and no constraint.
    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    old["version"] = 1.into();
    old["passes"][0].as_object_mut().unwrap().remove("tokens");
    let old: RefineRun = serde_json::from_value(old).unwrap();
    assert_eq!(old.passes[0].tokens, None);
    assert_eq!(old.constraint, None);
}

#[test]
fn a_template_without_prompts_gets_the_shipped_defaults() {
    let mut script = Script::new(&["Red", "NO FURTHER CHANGES"]);
    let run = run_script(LoopConfig::default(), Refine::default(), &mut script);
    let defaults = defaults::prompts();
    assert_eq!(run.prompts.feedback, defaults.feedback);
    assert_eq!(
        run.config.stop_phrase.as_deref(),
        Some("NO FURTHER CHANGES")
    );
    assert_eq!(run.end, Some(LoopEnd::StopPhrase));
    let request = script.steps[1].messages.last().unwrap();
    assert!(request.content.starts_with("Task:"), "{}", request.content);
    assert!(request.content.contains("Name a colour."));
}

#[test]
fn zero_rounds_is_only_the_draft() {
    let mut script = Script::new(&["Red"]);
    let config = LoopConfig {
        max_rounds: 0,
        ..LoopConfig::default()
    };
    let run = run_script(config, own_prompts(), &mut script);
    assert_eq!(texts(&run), ["Red"]);
    assert_eq!(run.end, Some(LoopEnd::MaxRounds));
}

#[test]
fn token_totals_count_the_reuse_per_round() {
    let mut script = Script::new(&["Red", "fb1", "Green"]);
    let config = LoopConfig {
        max_rounds: 1,
        ..LoopConfig::default()
    };
    let run = run_script(config, own_prompts(), &mut script);
    let rounds = run.round_totals();
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[0].generations, 1);
    assert_eq!(rounds[0].decoded(), 110);
    // Round 1: feedback and pass, each reusing 40 of 100 prompt tokens.
    assert_eq!(rounds[1].generations, 2);
    assert_eq!(rounds[1].decoded(), 2 * (60 + 10));
    assert_eq!(rounds[1].decoded_without_reuse(), 2 * 110);
    let total = run.totals();
    assert_eq!(total.decoded(), 110 + 140);
    assert_eq!(total.decoded_without_reuse(), 330);
}

#[test]
fn a_bad_score_pattern_is_refused_when_a_threshold_needs_it() {
    let config = LoopConfig {
        score_threshold: Some(3.0),
        score_pattern: "(".into(),
        ..LoopConfig::default()
    };
    let error = RefineLoop::new(setup(config, own_prompts())).err().unwrap();
    assert!(error.starts_with("the score pattern:"), "{error}");
}

#[test]
fn a_saved_run_reads_back_the_same() {
    let mut script = Script::new(&["Red 日本 🎉", "fb1", "Blue."]);
    let config = LoopConfig {
        max_rounds: 1,
        ..LoopConfig::default()
    };
    let mut run = run_script(config, own_prompts(), &mut script);
    run.created_unix_ms = 1_795_876_496_042;
    run.id = store::new_id(run.created_unix_ms, &run.template);
    run.passes[1].rating = Some(4);
    run.passes[1].note = "better".into();
    run.best = Some(1);
    let dir = tempfile::tempdir().unwrap();
    store::save(dir.path(), &run).unwrap();
    let loaded: RefineRun = store::load(dir.path(), &run.id).unwrap();
    assert_eq!(loaded, run);
    let listed = store::list::<RefineRun>(dir.path());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].output_preview, "Blue.");
}

#[test]
fn the_acronym_template_ends_on_its_total_score() {
    let entry = crate::prompt::find("acronym", None).unwrap();
    let template = crate::prompt::load(&entry).unwrap();
    assert_eq!(template.refine.score_threshold, Some(22.0));
    let mut script = Script::new(&[
        "SCUBA: ...",
        "* Total score: (out of 25)\nTotal score: 17/25",
        "SCUBA: Self-Contained Underwater Breathing Apparatus",
        "* Ease of pronunciation: 5\nTotal score: 23 (out of 25)",
        "never",
    ]);
    let run = run_script(LoopConfig::default(), template.refine.clone(), &mut script);
    assert_eq!(run.passes[0].feedback.as_ref().unwrap().score, Some(17.0));
    assert_eq!(run.end, Some(LoopEnd::ScoreThreshold { score: 23.0 }));
}

#[test]
fn a_conversation_that_might_not_fit_sends_the_request_alone() {
    // The draft's 23 bytes took 100 tokens: the conversation for the
    // feedback (59 bytes and 4 turns) is estimated at about 346 tokens,
    // and 64 more may be generated.
    for (n_ctx, continued) in [(420, true), (400, false)] {
        let mut script = Script::new(&["Red", "fb1", "Green"]);
        let config = LoopConfig {
            max_rounds: 1,
            n_ctx: Some(n_ctx),
            ..LoopConfig::default()
        };
        let run = run_script(config, own_prompts(), &mut script);
        let feedback_step = &script.steps[1].messages;
        assert_eq!(feedback_step.len() > 1, continued, "n_ctx {n_ctx}");
        assert_eq!(
            feedback_step.last().unwrap().content,
            "FB task=Name a colour. answer=Red"
        );
        assert_eq!(texts(&run), ["Red", "Green"]);
    }
}
