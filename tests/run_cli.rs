//! `whet run` end to end: the real binary, the real default model, greedy decoding.

mod common;

use std::process::Output;

use common::*;

/// `whet run --model <default model> ARGS`, with its logs in a private directory.
fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let logs = tempfile::tempdir().unwrap();
    let model = smollm2();
    let mut full = vec!["run", "--model", model.to_str().unwrap()];
    full.extend_from_slice(args);
    whet_with_stdin(&full, logs.path(), stdin)
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let output = run(&full);
    assert!(
        output.status.success(),
        "whet run failed: {}",
        stderr(&output)
    );
    json(&output)
}

#[test]
fn greedy_raw_output_is_deterministic_across_runs() {
    let args = [
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "32",
        "The three primary colours are",
    ];
    let first = run(&args);
    let second = run(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&first).trim().len() > 10,
        "too little output: {:?}",
        stdout(&first)
    );
    assert_eq!(stdout(&first), stdout(&second));
    // The summary is one line on stderr and names the stop reason.
    let summary = stderr(&first);
    assert_eq!(summary.lines().count(), 1, "stderr: {summary}");
    assert!(
        summary.contains("generated 32 tok") && summary.contains("stop: max tokens"),
        "{summary}"
    );
}

#[test]
fn chat_answers_a_short_question_and_stops_at_end_of_generation() {
    let report = run_json(&["--temp", "0", "What is the capital of France?"]);
    let text = report["text"].as_str().unwrap();
    assert!(text.contains("Paris"), "answer: {text:?}");
    assert_eq!(report["stop_reason"], "eos");
    let stats = &report["stats"];
    assert!(stats["generated_tokens"].as_u64().unwrap() > 0);
    assert!(stats["prompt_tokens"].as_u64().unwrap() > 5);
    // Streamed pieces add up to the final text.
    let streamed: String = report["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, text);
    // Probabilities are real probabilities; greedy picks likely tokens.
    for token in report["tokens"].as_array().unwrap() {
        let p = token["prob"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "probability {p}");
    }
}

#[test]
fn sampling_starts_from_the_models_recommendation_then_the_users_file_then_the_flags() {
    let sampling_of = |report: &serde_json::Value, key: &str| report["sampling"][key].as_f64();
    // The default model's card: temperature 0.2, top-p 0.9; the rest is
    // llama.cpp's.
    let report = run_json(&["--max-tokens", "1", "Hi"]);
    assert_eq!(sampling_of(&report, "temperature"), Some(0.2f32.into()));
    assert_eq!(sampling_of(&report, "top_p"), Some(0.9f32.into()));
    assert_eq!(sampling_of(&report, "top_k"), Some(40.0));
    let flagged = run_json(&["--max-tokens", "1", "--temp", "0.5", "Hi"]);
    assert_eq!(sampling_of(&flagged, "temperature"), Some(0.5));

    // The user's defaults come before the model's.
    let logs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs.path().join("config")).unwrap();
    let file = logs.path().join("config/sampling.toml");
    std::fs::write(&file, "temperature = 0.6\n").unwrap();
    let model = smollm2();
    let args = [
        "run",
        "--model",
        model.to_str().unwrap(),
        "--json",
        "--max-tokens",
        "1",
        "Hi",
    ];
    let output = whet(&args, logs.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(sampling_of(&report, "temperature"), Some(0.6f32.into()));
    assert_eq!(sampling_of(&report, "top_p"), Some(0.9f32.into()));

    // A mistake in it stops the command with its place, before loading.
    std::fs::write(&file, "temperature = 0.6\ntop_p = 3\n").unwrap();
    let output = whet(&args, logs.path());
    assert!(!output.status.success());
    assert_eq!(
        stderr(&output).trim(),
        format!(
            "error: {}:2:9: top-p must be in 0..=1, got 3",
            file.display()
        )
    );
}

#[test]
fn stop_string_ends_generation_and_is_not_printed() {
    let prompt = "1, 2, 3, 4, 5,";
    let free = run_json(&["--raw", "--temp", "0", "--max-tokens", "40", prompt]);
    let free_text = free["text"].as_str().unwrap().to_string();
    assert!(
        free_text.contains(" 9,"),
        "expected counting, got {free_text:?}"
    );
    let stopped = run_json(&[
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "40",
        "--stop",
        " 9,",
        prompt,
    ]);
    let text = stopped["text"].as_str().unwrap();
    assert_eq!(stopped["stop_reason"], "stop_string");
    assert!(!text.contains(" 9,"), "{text:?}");
    assert_eq!(text, &free_text[..free_text.find(" 9,").unwrap()]);

    // The streamed (stdout) form agrees with the JSON form.
    let output = run(&[
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "40",
        "--stop",
        " 9,",
        prompt,
    ]);
    assert_eq!(stdout(&output).trim_end_matches('\n'), text);
    assert!(stderr(&output).contains("stop: stop string"));
}

#[test]
fn max_tokens_is_honoured() {
    let report = run_json(&[
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "5",
        "Once upon a time",
    ]);
    assert_eq!(report["stats"]["generated_tokens"], 5);
    assert_eq!(report["stop_reason"], "max_tokens");
    assert_eq!(report["tokens"].as_array().unwrap().len(), 5);
}

#[test]
fn generation_that_fills_the_context_stops_and_keeps_the_text() {
    let report = run_json(&[
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "0",
        "--ctx",
        "256",
        "1, 2, 3, 4, 5,",
    ]);
    assert_eq!(report["stop_reason"], "context_full");
    let stats = &report["stats"];
    let used =
        stats["prompt_tokens"].as_u64().unwrap() + stats["generated_tokens"].as_u64().unwrap();
    // The last sampled token is kept but has no cache slot: 256 + 1.
    assert_eq!(used, 257, "stats: {stats}");
    assert!(report["text"].as_str().unwrap().contains(" 40,"));
}

#[test]
fn prompt_longer_than_the_context_is_refused_before_decoding() {
    let long_prompt = "word ".repeat(400);
    let output = run(&["--ctx", "256", "--raw", &long_prompt]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(
        err.starts_with("error: the prompt is ")
            && err.contains("tokens but the context holds 256"),
        "{err}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn a_context_beyond_the_models_training_is_refused_before_loading() {
    for ctx in ["100000", "99999999"] {
        let output = run(&["--ctx", ctx, "hi"]);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert_eq!(
            err.trim_end(),
            format!(
                "error: cannot load model '{}': a context of {ctx} tokens is more than it was trained for (8192); use --ctx 8192 or less",
                smollm2().display()
            )
        );
    }
    // The training context itself is fine.
    let output = run(&["--ctx", "8192", "--max-tokens", "2", "--temp", "0", "hi"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn cjk_and_emoji_output_has_no_replacement_characters() {
    for prompt in [
        "English: Good morning. 日本語: おはようございます。English: Thank you. 日本語:",
        "Happy 😀, sad 😢, love ❤️, cat",
    ] {
        let report = run_json(&["--raw", "--temp", "0", "--max-tokens", "30", prompt]);
        let text = report["text"].as_str().unwrap();
        assert!(
            !text.contains('\u{fffd}'),
            "replacement character in {text:?}"
        );
        assert!(
            text.chars().any(|c| c.len_utf8() >= 3),
            "expected multi-byte output for {prompt:?}, got {text:?}"
        );
        // Pieces split mid-character are held back, never emitted broken.
        for token in report["tokens"].as_array().unwrap() {
            assert!(!token["text"].as_str().unwrap().contains('\u{fffd}'));
        }
    }
}

#[test]
fn prompt_is_read_from_stdin() {
    let args = ["--raw", "--temp", "0", "--max-tokens", "8"];
    let from_stdin = run_with_stdin(&args, Some("The sky is"));
    let mut with_arg = args.to_vec();
    with_arg.push("The sky is");
    let from_arg = run(&with_arg);
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    assert_eq!(stdout(&from_stdin), stdout(&from_arg));
}

#[test]
fn bad_options_give_one_line_errors() {
    let logs = tempfile::tempdir().unwrap();
    let model = smollm2();
    let m = model.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--model", m, "--top-p", "1.5", "hi"],
            "error: top-p must be in 0..=1, got 1.5",
        ),
        (
            &["run", "--model", m, "--temp=-1", "hi"],
            "error: temperature must be >= 0",
        ),
        (
            &["run", "--model", m, "--stop", "", "hi"],
            "error: --stop needs a non-empty string",
        ),
        (
            &["run", "--model", m, "--chat-format", "nonsense", "hi"],
            "error: unknown chat format 'nonsense'",
        ),
    ];
    for (args, expected) in cases {
        let output = whet(args, logs.path());
        let err = stderr(&output);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with(expected), "{args:?}: {err}");
    }
}

#[test]
fn logs_go_to_the_log_file_not_the_terminal() {
    let logs = tempfile::tempdir().unwrap();
    let model = smollm2();
    let output = whet(
        &[
            "run",
            "--model",
            model.to_str().unwrap(),
            "--raw",
            "--max-tokens",
            "3",
            "Hi",
        ],
        logs.path(),
    );
    assert!(output.status.success());
    assert_eq!(
        stderr(&output).lines().count(),
        1,
        "stderr: {}",
        stderr(&output)
    );
    let log = std::fs::read_to_string(logs.path().join("whet.log")).unwrap();
    assert!(
        log.contains("llama"),
        "llama.cpp's log lines are in the log file"
    );
}

#[test]
fn interrupt_cancels_and_keeps_the_partial_text() {
    use std::io::Read;
    let logs = tempfile::tempdir().unwrap();
    let model = smollm2();
    let mut child = std::process::Command::new(whet_bin())
        .args([
            "run",
            "--model",
            model.to_str().unwrap(),
            "--raw",
            "--temp",
            "0",
            "--max-tokens",
            "0",
            "1, 2, 3,",
        ])
        .env("WHET_LOG_DIR", logs.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until text streams, then interrupt as Ctrl+C would.
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    out.read_exact(&mut first).unwrap();
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let text = format!("{}{rest}", String::from_utf8_lossy(&first));
    assert!(text.starts_with(" 4, 5,"), "{text:?}");
    let summary = stderr(&output);
    assert!(summary.trim_end().ends_with("stop: cancelled"), "{summary}");
}
