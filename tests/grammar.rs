//! Constrained output through the real worker and the real default model,
//! greedy: JSON-schema output that always parses and validates, a small
//! GBNF grammar, refusals with llama.cpp's reason before anything is
//! generated, a grammar that keeps the model from ending early without
//! aborting the worker, max tokens reported as unfinished output, the
//! parallel path, and `whet run` end to end.

mod common;

use std::path::Path;

use common::*;
use whet::engine::protocol::{
    ChatMessage, Constraint, GenerateRequest, GrammarEnd, Prompt, Role, StopReason,
};
use whet::engine::{EngineClient, EngineError, SamplingParams, SpawnOptions};

const PERSON_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 24},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "mood": {"enum": ["happy", "sad", "calm"]}
  },
  "required": ["name", "age", "mood"],
  "additionalProperties": false
}"#;

const PROMPTS: [&str; 10] = [
    "Describe a person as JSON.",
    "Invent a character for a story.",
    "Who is your favourite scientist?",
    "Tell me about a pirate.",
    "Give me a JSON object for a happy child.",
    "Describe an old sailor.",
    "Make up a teacher.",
    "Write about a sad king.",
    "Who lives next door?",
    "Create a calm librarian.",
];

fn schema() -> Constraint {
    Constraint::JsonSchema {
        schema: PERSON_SCHEMA.to_string(),
        source: "person.json".to_string(),
    }
}

fn grammar(text: &str) -> Constraint {
    Constraint::Grammar {
        text: text.to_string(),
        source: "test.gbnf".to_string(),
    }
}

fn ask(text: &str, max_tokens: u32, constraint: Option<Constraint>) -> GenerateRequest {
    GenerateRequest {
        id: 0,
        prompt: Prompt::Chat {
            messages: vec![ChatMessage::new(Role::User, text)],
        },
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        reuse_prefix: true,
        ignore_eos: false,
        probs: None,
        constraint,
    }
}

async fn engine(parallel: u32) -> EngineClient {
    let mut engine = EngineClient::spawn(&SpawnOptions::local(whet_bin()))
        .await
        .expect("spawn worker");
    let mut request = load_request(smollm2(), 4096);
    request.parallel = parallel;
    engine.load(request).await.expect("load model");
    engine
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(PERSON_SCHEMA).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// The output parses as JSON and matches the schema.
fn assert_valid(text: &str) {
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("output is not JSON ({e}): {text:?}"));
    let errors: Vec<String> = validator()
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{text:?} does not match: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_output_always_parses_and_validates() {
    let mut engine = engine(1).await;
    // Unconstrained, the model does not answer these with such JSON.
    let free = engine
        .generate(ask(PROMPTS[2], 48, None), |_| {})
        .await
        .unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&free.text).is_err(),
        "the control answer should not already be JSON: {:?}",
        free.text
    );
    for prompt in PROMPTS {
        let generation = engine
            .generate(ask(prompt, 200, Some(schema())), |_| {})
            .await
            .unwrap();
        assert_eq!(
            generation.reason,
            StopReason::Eos,
            "{prompt}: {generation:?}"
        );
        assert_eq!(generation.stats.grammar, Some(GrammarEnd::Complete));
        assert_valid(&generation.text);
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_grammar_gives_exactly_one_of_its_strings() {
    let mut engine = engine(1).await;
    for prompt in [
        "Is the sky blue?",
        "Is fire cold?",
        "Write a poem about cats.",
    ] {
        let generation = engine
            .generate(
                ask(prompt, 16, Some(grammar("root ::= (\"yes\" | \"no\")\n"))),
                |_| {},
            )
            .await
            .unwrap();
        assert!(
            generation.text == "yes" || generation.text == "no",
            "{prompt}: {:?}",
            generation.text
        );
        assert_eq!(generation.reason, StopReason::Eos);
        assert_eq!(generation.stats.grammar, Some(GrammarEnd::Complete));
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grammar_that_does_not_parse_is_refused_with_llama_cpps_reason_before_any_token() {
    let mut engine = engine(1).await;
    let bad = "root ::= answer\nanswer ::= \"yes\" | \"no\"\nbad ::= (\"x\"\n";
    let mut tokens = 0;
    let err = engine
        .generate(ask("Is the sky blue?", 16, Some(grammar(bad))), |_| {
            tokens += 1
        })
        .await
        .unwrap_err();
    let EngineError::Request(message) = err else {
        panic!("expected a request error, got {err:?}");
    };
    assert_eq!(tokens, 0);
    assert!(
        message.starts_with("test.gbnf: parse error at line 4 column 1: expecting ')'"),
        "{message}"
    );

    let undefined = "root ::= answer\n";
    let err = engine
        .generate(ask("Hi", 16, Some(grammar(undefined))), |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("test.gbnf: Undefined rule identifier 'answer'"),
        "{err}"
    );

    let unconvertible = Constraint::JsonSchema {
        schema: r##"{"$ref": "#/definitions/missing"}"##.to_string(),
        source: "broken.json".to_string(),
    };
    let err = engine
        .generate(ask("Hi", 16, Some(unconvertible)), |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("broken.json: llama.cpp's JSON-schema converter cannot convert it"),
        "{err}"
    );

    // The worker is still there and answers.
    let generation = engine
        .generate(ask("Is the sky blue?", 8, None), |_| {})
        .await
        .unwrap();
    assert!(!generation.text.is_empty());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_wants_to_stop_early_does_not_abort_the_worker() {
    let mut engine = engine(1).await;
    // Unconstrained, the reply to this ends after a few tokens.
    let free = engine
        .generate(ask("Say only the word hi.", 64, None), |_| {})
        .await
        .unwrap();
    assert_eq!(free.reason, StopReason::Eos);
    let fixed = "The quick brown fox jumps over the lazy dog while the band plays on";
    let text = format!("root ::= \"{fixed}\" [0-9] [0-9]\n");
    let generation = engine
        .generate(
            ask("Say only the word hi.", 64, Some(grammar(&text))),
            |_| {},
        )
        .await
        .unwrap();
    assert!(
        free.stats.generated_tokens < generation.stats.generated_tokens,
        "the free reply should be shorter: {:?}",
        free.text
    );
    assert_eq!(generation.reason, StopReason::Eos);
    assert_eq!(generation.stats.grammar, Some(GrammarEnd::Complete));
    let digits = generation
        .text
        .strip_prefix(fixed)
        .unwrap_or_else(|| panic!("{:?}", generation.text));
    assert!(
        digits.len() == 2 && digits.chars().all(|c| c.is_ascii_digit()),
        "{:?}",
        generation.text
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_cut_by_max_tokens_is_reported_unfinished() {
    let mut engine = engine(1).await;
    let generation = engine
        .generate(ask(PROMPTS[0], 6, Some(schema())), |_| {})
        .await
        .unwrap();
    assert_eq!(generation.reason, StopReason::MaxTokens);
    assert_eq!(generation.stats.grammar, Some(GrammarEnd::Unfinished));
    assert_eq!(
        GrammarEnd::Unfinished.note(generation.reason).unwrap(),
        "output incomplete: the grammar was not finished (stopped by max tokens)"
    );
    // A grammar finished exactly at the limit is complete.
    let generation = engine
        .generate(
            ask(
                "Is the sky blue?",
                1,
                Some(grammar("root ::= \"yes\" | \"no\"\n")),
            ),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(generation.reason, StopReason::MaxTokens);
    assert_eq!(generation.stats.grammar, Some(GrammarEnd::Complete));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_constrained_requests_equal_one_at_a_time_and_validate() {
    let mut engine = engine(4).await;
    let mut requests: Vec<GenerateRequest> = PROMPTS[..4]
        .iter()
        .map(|p| ask(p, 200, Some(schema())))
        .collect();
    requests.push(ask(
        "Is the sky blue?",
        16,
        Some(grammar("root ::= \"yes\" | \"no\"\n")),
    ));
    requests.push(ask("What do bees make?", 24, None));
    requests.push(ask("Hi", 16, Some(grammar("root ::= (\n"))));
    let mut alone = Vec::new();
    for request in &requests[..6] {
        alone.push(engine.generate(request.clone(), |_| {}).await.unwrap().text);
    }
    let (results, _) = engine
        .generate_many(requests.clone(), 4, |_, _| {})
        .await
        .unwrap();
    for (index, result) in results.iter().enumerate().take(6) {
        let generation = result.as_ref().unwrap();
        assert_eq!(generation.text, alone[index], "request {index}");
        if index < 4 {
            assert_eq!(generation.stats.grammar, Some(GrammarEnd::Complete));
            assert_valid(&generation.text);
        }
    }
    assert!(
        results[4].as_ref().unwrap().text == "yes" || results[4].as_ref().unwrap().text == "no"
    );
    assert_eq!(results[5].as_ref().unwrap().stats.grammar, None);
    let refused = results[6].as_ref().unwrap_err();
    assert!(refused.starts_with("test.gbnf: "), "{refused}");
    engine.shutdown().await;
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn whet_run_json_schema_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let schema = write(dir.path(), "person.json", PERSON_SCHEMA);
    let model = smollm2();
    let model = model.to_str().unwrap();
    let output = whet(
        &[
            "run",
            "--model",
            model,
            "--temp",
            "0",
            "--json-schema",
            &schema,
            "--json",
            PROMPTS[3],
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    assert_valid(report["text"].as_str().unwrap());
    assert_eq!(report["stats"]["grammar"], "complete");
    assert!(report["note"].is_null());

    // Cut short: the note says so on stderr.
    let output = whet(
        &[
            "run",
            "--model",
            model,
            "--temp",
            "0",
            "--json-schema",
            &schema,
            "--max-tokens",
            "4",
            PROMPTS[3],
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("output incomplete: the grammar was not finished (stopped by max tokens)"),
        "{}",
        stderr(&output)
    );

    // A schema that is not JSON: file:line:col, before a model is loaded.
    let broken = write(
        dir.path(),
        "broken.json",
        "{\n  \"type\": \"object\",,\n}\n",
    );
    let output = whet(
        &[
            "run",
            "--model",
            "/nonexistent.gguf",
            "--json-schema",
            &broken,
            "hi",
        ],
        dir.path(),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("{broken}:2:20: not valid JSON")),
        "{}",
        stderr(&output)
    );

    // One constraint at a time.
    let grammar = write(dir.path(), "yn.gbnf", "root ::= \"yes\" | \"no\"\n");
    let output = whet(
        &["run", "--grammar", &grammar, "--json-schema", &schema, "hi"],
        dir.path(),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );

    let output = whet(
        &[
            "run",
            "--model",
            model,
            "--temp",
            "0",
            "--grammar",
            &grammar,
            "Is water wet?",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.trim() == "yes" || text.trim() == "no", "{text:?}");
}

#[test]
fn an_experiment_variant_with_a_schema_passes_the_json_schema_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(dir.path(), "person.json", PERSON_SCHEMA);
    let dataset: String = PROMPTS[..3]
        .iter()
        .map(|p| format!("{{\"q\": \"{p}\"}}\n"))
        .collect();
    write(dir.path(), "items.jsonl", &dataset);
    let file = write(
        dir.path(),
        "people.toml",
        "name = \"people\"\nprompt = \"{{q}}\"\ndataset = \"items.jsonl\"\n\
         checks = [{ json-schema = \"person.json\" }]\n\
         [[variants]]\nname = \"schema\"\njson_schema = \"person.json\"\ntemperature = 0\nmax_tokens = 200\n\
         [[variants]]\nname = \"free\"\ntemperature = 0\nmax_tokens = 48\n",
    );
    let model = smollm2();
    let output = std::process::Command::new(whet_bin())
        .args([
            "experiment",
            "run",
            &file,
            "--parallel",
            "2",
            "--model",
            model.to_str().unwrap(),
        ])
        .env("WHET_DATA_DIR", &data)
        .env("WHET_CONFIG_DIR", data.join("config"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let run = std::fs::read_dir(data.join("experiments"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let results = whet::experiment::results::read_results(&run).unwrap();
    assert_eq!(results.len(), 6);
    for result in &results {
        if result.variant == "schema" {
            assert_eq!(result.scores.checks, [true], "{:?}", result.output);
            assert_valid(&result.output);
        } else {
            assert_eq!(result.scores.checks, [false], "{:?}", result.output);
        }
    }
}

#[test]
fn a_templates_grammar_is_read_relative_to_the_template_file() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("config").join("prompts");
    std::fs::create_dir_all(prompts.join("grammars")).unwrap();
    write(&prompts, "grammars/yn.gbnf", "root ::= \"yes\" | \"no\"\n");
    write(
        &prompts,
        "yn.toml",
        "version = 1\nname = \"yn\"\ndescription = \"d\"\nprompt = \"Is {{thing}} blue?\"\n\
         [variables.thing]\ndefault = \"the sky\"\n[sampling]\ntemperature = 0\ngrammar = \"grammars/yn.gbnf\"\n",
    );
    let model = smollm2();
    let output = whet(
        &[
            "run",
            "--model",
            model.to_str().unwrap(),
            "--template",
            "yn",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.trim() == "yes" || text.trim() == "no", "{text:?}");
}
