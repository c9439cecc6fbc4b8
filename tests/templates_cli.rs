//! `whet templates` and `whet run --template` with the real binary and the
//! real default model: every shipped template validates, `show --exact` is
//! the model's own chat format, and a template runs deterministically.

mod common;

use std::path::Path;

use common::*;

const SHIPPED: [&str; 7] = [
    "acronym",
    "codegen",
    "persona",
    "qa",
    "sentiment-reversal",
    "story",
    "summarize",
];

/// whet with a private (empty) config dir, so only shipped templates exist.
fn whet_in(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(whet_bin())
        .args(args)
        .env("WHET_CONFIG_DIR", dir.join("config"))
        .env("WHET_LOG_DIR", dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_shipped_template_is_listed_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let listed = stdout(&whet_in(dir.path(), &["templates", "list"]));
    for name in SHIPPED {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(name) && l.contains("shipped")),
            "{name} in {listed}"
        );
    }
    let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let mut args = vec!["templates".to_string(), "check".to_string()];
    for name in SHIPPED {
        args.push(prompts.join(format!("{name}.toml")).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = whet_in(dir.path(), &args);
    assert!(output.status.success(), "{}", stdout(&output));
    assert_eq!(stdout(&output).matches(": ok").count(), SHIPPED.len());
}

#[test]
fn check_reports_template_errors_at_their_file_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "version = 1\nname = \"broken\"\ndescription = \"x\"\nprompt = \"\"\"\nHello {{name\"\"\"\n",
    )
    .unwrap();
    let output = whet_in(dir.path(), &["templates", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output).trim_end(),
        format!(
            "{}:5:7: unclosed '{{{{' (no '}}}}' after it)",
            file.display()
        )
    );
}

#[test]
fn check_compares_example_vars_with_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(
        &file,
        "version = 1\nname = \"t\"\ndescription = \"d\"\nprompt = \"{{word}}, {{n}} times\"\n\
         \n[[examples]]\noutput = \"o\"\n\
         [examples.vars]\nwrod = \"x\"\nn = \"2\"\n",
    )
    .unwrap();
    let output = whet_in(dir.path(), &["templates", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let f = file.display();
    assert_eq!(
        stdout(&output),
        format!(
            "{f}:8:1: example 1 lacks variable 'word' that the prompt uses\n\
             {f}:9:1: example 1: unknown variable 'wrod' (the prompt uses: word, n)\n"
        )
    );
    // The same file is refused where it is loaded: `templates show`.
    let prompts = dir.path().join("config/prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::copy(&file, prompts.join("t.toml")).unwrap();
    let output = whet_in(dir.path(), &["templates", "show", "t"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("t.toml:9:1: example 1: unknown variable 'wrod'"),
        "{}",
        stderr(&output)
    );

    // With word declared with a default and wrod fixed to n only: it
    // loads, and check warns that the example takes the default.
    std::fs::write(
        &file,
        "version = 1\nname = \"t\"\ndescription = \"d\"\nprompt = \"{{word}}, {{n}} times\"\n\
         [variables.word]\ndefault = \"hello\"\n\
         [[examples]]\noutput = \"o\"\n\
         [examples.vars]\nn = \"2\"\n",
    )
    .unwrap();
    let output = whet_in(dir.path(), &["templates", "check", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{f}:9:1: warning: example 1 lacks variable 'word' that the prompt uses (it takes the declared default)\n\
             {f}: ok (1 warning)\n"
        )
    );
}

#[test]
fn check_refuses_an_endless_file_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    // Unbounded, it would read until memory runs out: a 2 GiB address space
    // makes that a quick failure instead of the machine's problem.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 2097152 && exec \"$0\" \"$@\""])
        .arg(whet_bin())
        .args(["templates", "check", "/dev/zero"])
        .env("WHET_CONFIG_DIR", dir.path().join("config"))
        .env("WHET_LOG_DIR", dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`whet templates check /dev/zero` still running after 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "/dev/zero: too large for a template (more than 4 MiB)\n"
    );
}

#[test]
fn check_columns_on_line_one_of_a_file_with_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.toml");
    std::fs::write(
        &file,
        "\u{feff}version = 0\nname = \"bom\"\ndescription = \"d\"\nprompt = \"p\"\n",
    )
    .unwrap();
    let output = whet_in(dir.path(), &["templates", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output).trim_end(),
        format!(
            "{}:1:11: template format version 0 does not exist (this whet reads 1)",
            file.display()
        )
    );
}

#[test]
fn show_renders_values_once_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let value = dir.path().join("description.txt");
    std::fs::write(&value, "print {{title}} and a brace }\n").unwrap();
    let arg = format!("description=@{}", value.display());
    let output = whet_in(
        dir.path(),
        &[
            "templates",
            "show",
            "codegen",
            "--examples",
            "none",
            "--var",
            &arg,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("print {{title}} and a brace }"),
        "{}",
        stdout(&output)
    );
    let output = whet_in(dir.path(), &["templates", "show", "codegen"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim_end(),
        "error: template 'codegen': missing values for: description"
    );
    // Values without a template are a mistake, not something to ignore.
    let output = whet_in(dir.path(), &["run", "--var", "x=1", "hello"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim_end(),
        "error: --var and --examples need --template NAME"
    );
}

/// SmolLM2's chat format is ChatML: the exact input must be the rendered
/// messages in ChatML, ending with the assistant's opening tag.
#[test]
fn show_exact_is_the_models_chat_format() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2();
    let model = model.to_str().unwrap();
    for name in ["acronym", "qa", "summarize"] {
        let shown = stdout(&whet_in(dir.path(), &["templates", "show", name]));
        let mut expected = String::new();
        for block in shown.split("## ").filter(|b| !b.is_empty()) {
            let (role, content) = block.split_once('\n').unwrap();
            let content = content.strip_suffix("\n\n").unwrap();
            expected.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
        }
        expected.push_str("<|im_start|>assistant\n");
        let output = whet_in(
            dir.path(),
            &["templates", "show", name, "--exact", "--model", model],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("{expected}\n"), "{name}");
        assert!(stderr(&output).trim_end().ends_with(" tokens"));
    }
}

#[test]
fn a_shipped_template_runs_on_the_real_model_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2();
    let model = model.to_str().unwrap();
    let exact = whet_in(
        dir.path(),
        &["templates", "show", "acronym", "--exact", "--model", model],
    );
    let tokens: u32 = stderr(&exact)
        .trim_end()
        .strip_suffix(" tokens")
        .unwrap()
        .parse()
        .unwrap();
    let run = || {
        let output = whet_in(
            dir.path(),
            &[
                "run",
                "--template",
                "acronym",
                "--temp",
                "0",
                "--json",
                "--model",
                model,
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        json(&output)
    };
    let first = run();
    let second = run();
    let text = first["text"].as_str().unwrap();
    assert!(!text.trim().is_empty());
    // The few-shot examples taught the format: "ACRONYM: words".
    assert!(text.contains(':'), "{text:?}");
    assert_eq!(first["text"], second["text"]);
    // The model saw exactly what `show --exact` printed.
    assert_eq!(
        first["stats"]["prompt_tokens"].as_u64(),
        Some(u64::from(tokens))
    );
}
