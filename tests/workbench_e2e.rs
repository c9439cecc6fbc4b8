//! The prompt workbench in a real terminal (tmux, 130x40) with the real
//! default model: open a shipped template, change a variable, add a
//! few-shot example, watch the exact model input and its token count
//! follow, run it, find the run record, save your copy, then quit through
//! the unsaved-changes question and find the terminal restored.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::tmux::{assert_cooked_terminal, children, process_alive, Tmux};
use common::*;

/// A 130x40 shell with the XDG config and data homes inside `dir` (the
/// WHET_* overrides removed, so whet finds its files through XDG).
fn start_tmux(name: &str, dir: &Path) -> Tmux {
    Tmux::start(
        name,
        130,
        40,
        &format!(
            "-u WHET_DATA_DIR -u WHET_CONFIG_DIR WHET_LOG_DIR={0}/logs \
             XDG_CONFIG_HOME={0}/config XDG_DATA_HOME={0}/data",
            dir.display()
        ),
    )
}

/// What the workbench test does with the terminal beyond keys and screens.
trait WorkbenchKeys {
    fn focus(&self, title: &str);
    fn preview_showing(&self, text: &str) -> String;
}

impl WorkbenchKeys for Tmux {
    /// Tab until the pane whose title starts with `title` has the focus.
    fn focus(&self, title: &str) {
        for _ in 0..7 {
            let screen = self.screen();
            if focused_title(&screen).is_some_and(|t| t.starts_with(title)) {
                return;
            }
            self.keys(&["Tab"]);
            let before = focused_title(&screen);
            let deadline = Instant::now() + Duration::from_secs(5);
            while focused_title(&self.screen()) == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("Tab never focused {title}; screen:\n{}", self.screen());
    }

    /// Scrolls the exact model input (which must have the focus) from its top
    /// until `text` is in view, retrying until the preview has caught up;
    /// returns the screen that shows it.
    fn preview_showing(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.keys(&["PageUp"; 20]);
            let mut pane = self.wait_for("the preview at its top", |s| {
                pane_text(s, "Exact model input")
                    .first()
                    .is_some_and(|l| l.contains("<|im_start|>system"))
            });
            for _ in 0..20 {
                if flat(&pane_text(&pane, "Exact model input").join(" ")).contains(text) {
                    return pane;
                }
                let before = pane_text(&pane, "Exact model input");
                if before.iter().all(|l| l.trim().is_empty()) {
                    break;
                }
                self.keys(&["PageDown"]);
                let scrolled = Instant::now() + Duration::from_secs(3);
                loop {
                    pane = self.screen();
                    if pane_text(&pane, "Exact model input") != before || Instant::now() > scrolled
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
            }
            assert!(
                Instant::now() < deadline,
                "the exact model input never showed {text:?}; screen:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// The title of the focused pane (the one drawn with a heavy border).
fn focused_title(screen: &str) -> Option<String> {
    screen.lines().find_map(|line| {
        let (_, rest) = line.split_once("┏ ")?;
        let end = rest.find(" ━").or_else(|| rest.find('┓'))?;
        Some(rest[..end].trim().to_string())
    })
}

/// The inside of the pane whose title starts with `title`, line by line.
fn pane_text(screen: &str, title: &str) -> Vec<String> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let title: Vec<char> = format!(" {title}").chars().collect();
    for (row, line) in lines.iter().enumerate() {
        for col in 0..line.len() {
            if !matches!(line[col], '┌' | '┏') || !line[col + 1..].starts_with(&title) {
                continue;
            }
            let Some(end) = line[col..]
                .iter()
                .position(|c| matches!(c, '┐' | '┓'))
                .map(|p| col + p)
            else {
                continue;
            };
            return lines[row + 1..]
                .iter()
                .take_while(|l| matches!(l.get(col), Some('│' | '┃')))
                .map(|l| l.get(col + 1..end.min(l.len())).unwrap_or_default())
                .map(|chars| chars.iter().collect())
                .collect();
        }
    }
    Vec::new()
}

/// Words joined by single spaces (wrapping moves line breaks around).
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// T in the preview's title "Exact model input · T / 4096 tokens …".
fn preview_tokens(screen: &str) -> Option<u32> {
    let (_, rest) = screen.split_once("Exact model input · ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if !rest[digits.len()..].starts_with(" / 4096 tokens") {
        return None;
    }
    digits.parse().ok()
}

fn run_records(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn workbench_edit_examples_run_save_and_quit_in_a_real_terminal() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let saved_path = dir.path().join("config/whet/prompts/summarize.toml");
    let runs_dir = dir.path().join("data/whet/runs");
    let tmux = start_tmux("workbench", dir.path());
    let command = format!(
        "{} --model {}; echo EXIT=$?; stty -a > {}/stty.txt",
        whet_bin().display(),
        smollm2().display(),
        dir.path().display()
    );
    tmux.keys(&[&command, "Enter"]);
    tmux.wait_for("the model to load", |s| s.contains("● ready"));
    let whet_pid = children(tmux.shell_pid())[0];
    let worker = children(whet_pid)[0];

    // 1. The workbench; `/` finds summarize, Enter opens it in the editor.
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("the template list", |s| {
        s.contains("Templates") && s.contains("sentiment-reversal")
    });
    for name in [
        "acronym",
        "codegen",
        "persona",
        "qa",
        "sentiment-reversal",
        "story",
        "summarize",
    ] {
        assert!(
            pane_text(&screen, "Templates")
                .iter()
                .any(|l| l.trim() == name),
            "{name} is listed:\n{screen}"
        );
    }
    tmux.keys(&["/"]);
    tmux.keys(&["summ"]);
    let screen = tmux.wait_for("the search to narrow the list", |s| {
        !s.contains("acronym") && s.contains("summarize")
    });
    let listed: Vec<String> = pane_text(&screen, "Templates")
        .iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        listed.iter().filter(|l| l.contains("summarize")).count() == 1
            && !listed.iter().any(|l| l.contains("story")),
        "{screen}"
    );
    // Enter in the search opens the first match.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("summarize open, its exact input counted", |s| {
        s.contains("summarize · shipped") && preview_tokens(s).is_some()
    });
    assert!(
        focused_title(&screen).is_some_and(|t| t.starts_with("summarize")),
        "opening a template focuses the editor:\n{screen}"
    );
    assert!(!screen.contains("● unsaved"), "{screen}");
    assert!(screen.contains("Few-shot examples · 2/2 on"), "{screen}");
    let editor = flat(&pane_text(&screen, "summarize").join(" "));
    assert!(
        editor.contains("Summarize the text below in {{length}}."),
        "{screen}"
    );
    let variables = pane_text(&screen, "Variables");
    let length_row = variables
        .iter()
        .position(|l| l.starts_with("{{length}}"))
        .unwrap_or_else(|| panic!("a {{{{length}}}} field:\n{screen}"));
    assert_eq!(
        variables[length_row + 1].trim(),
        "two sentences",
        "{screen}"
    );
    let t1 = preview_tokens(&screen).unwrap();

    // 2. {{length}} changed: the exact input shows it, with more tokens.
    tmux.keys(&["Tab"]);
    tmux.wait_for("the variables focused", |s| {
        focused_title(s).as_deref() == Some("Variables")
    });
    tmux.keys(&["Home", "C-k", "three short sentences"]);
    tmux.wait_for("the value typed and recounted", |s| {
        s.contains(" three short sentences ") && preview_tokens(s).is_some_and(|t| t != t1)
    });
    tmux.focus("Exact model input");
    let screen = tmux.preview_showing("Summarize the text below in three short sentences.");
    let t2 = preview_tokens(&screen).unwrap();
    assert!(t2 > t1, "{t1} then {t2}:\n{screen}");
    assert!(
        !screen.contains("● unsaved"),
        "a value is not a template change:\n{screen}"
    );

    // 3. A third few-shot example through the form: listed, on, in the input.
    tmux.focus("Few-shot examples");
    tmux.keys(&["a"]);
    tmux.wait_for("the example form", |s| {
        s.contains("New example") && s.contains("expected output")
    });
    tmux.keys(&["one sentence"]);
    tmux.keys(&["Tab"]);
    tmux.keys(&["Cats sleep a lot."]);
    tmux.keys(&["Tab"]);
    tmux.keys(&["Cats sleep much of the day."]);
    tmux.wait_for("the form filled in", |s| {
        s.contains("Cats sleep much of the day.")
    });
    tmux.keys(&["C-s"]);
    let screen = tmux.wait_for("the example kept", |s| {
        !s.contains("New example") && s.contains("3/3 on")
    });
    assert!(screen.contains("● unsaved"), "{screen}");
    assert!(
        pane_text(&screen, "Few-shot examples")
            .iter()
            .any(|l| l.contains("text=Cats")),
        "{screen}"
    );
    tmux.focus("Exact model input");
    let screen = tmux.preview_showing("Cats sleep much of the day.");
    let t3 = preview_tokens(&screen).unwrap();
    assert!(t3 > t2, "{t2} then {t3}:\n{screen}");
    eprintln!("exact input: {t1} tokens, {t2} with the value, {t3} with the example");

    // 4. Ctrl+G runs it: the output streams in and a run record lands.
    tmux.keys(&["C-g"]);
    let screen = tmux.wait_for_within(Duration::from_secs(90), "the run to finish", |s| {
        s.contains("Output · end of generation") || s.contains("Output · max tokens")
    });
    let runs = run_records(&runs_dir);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&runs[0]).unwrap()).unwrap();
    assert_eq!(record["template"], "summarize");
    assert_eq!(record["values"]["length"], "three short sentences");
    assert!(
        record["values"]["text"]
            .as_str()
            .unwrap()
            .starts_with("The town of Alder Creek"),
        "{record}"
    );
    assert_eq!(record["examples"].as_array().map(Vec::len), Some(3));
    let output = record["output"].as_str().unwrap().trim().to_string();
    assert!(!output.is_empty(), "{record}");
    let shown = flat(&pane_text(&screen, "Output").join(" "));
    let first_words: String = flat(&output)
        .split(' ')
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        shown.starts_with(&first_words),
        "{first_words:?} in the output pane:\n{screen}"
    );
    let messages = record["messages"].as_array().unwrap();
    let contents: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(
        contents.contains(&"Cats sleep much of the day."),
        "{record}"
    );
    assert!(
        contents
            .last()
            .unwrap()
            .contains("Summarize the text below in three short sentences."),
        "{record}"
    );
    let id = record["id"].as_str().unwrap().to_string();
    assert!(
        runs[0].file_name().unwrap().to_string_lossy().contains(&id),
        "{runs:?} {id}"
    );

    // The history lists it.
    tmux.keys(&["F6"]);
    tmux.wait_for("the run history", |s| {
        s.contains("Runs · newest first") && s.contains(&id)
    });
    tmux.escape();
    tmux.wait_for("the history closed", |s| !s.contains("Runs · newest first"));

    // 5. Ctrl+S saves the user's copy.
    tmux.keys(&["C-s"]);
    let screen = tmux.wait_for("the save", |s| {
        s.contains("saved ") && s.contains("summarize.toml") && !s.contains("● unsaved")
    });
    let saved = std::fs::read_to_string(&saved_path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{screen}", saved_path.display()));
    assert!(saved.contains("Cats sleep much of the day."), "{saved}");
    assert!(
        saved.contains("Summarize the text below in {{length}}. Keep the main points and use only facts from the text."),
        "{saved}"
    );
    let check = whet(
        &["templates", "check", saved_path.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    let template = whet::prompt::parse(&saved, &saved_path.display().to_string())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(template.name, "summarize");
    assert_eq!(template.examples.len(), 3);
    let cats = template
        .examples
        .iter()
        .find(|e| e.output == "Cats sleep much of the day.")
        .expect("the new example is saved");
    let vars = cats.vars.as_ref().unwrap();
    assert_eq!(vars["length"], "one sentence");
    assert_eq!(vars["text"], "Cats sleep a lot.");
    // The typed value is not a default unless asked for (F8).
    assert_eq!(template.default_of("length"), Some("two sentences"));

    // 6. One more edit; Ctrl+C asks, Esc keeps editing, then d discards.
    tmux.focus("summarize");
    tmux.keys(&["ZZZ "]);
    tmux.wait_for("the edit", |s| {
        s.contains("ZZZ Summarize") && s.contains("● unsaved")
    });
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("the unsaved-changes question", |s| {
        s.contains("Unsaved changes")
    });
    assert!(screen.contains("keep editing"), "{screen}");
    tmux.escape();
    tmux.wait_for("the question gone", |s| {
        !s.contains("Unsaved changes") && s.contains("● unsaved")
    });
    assert!(process_alive(whet_pid), "Esc keeps whet running");
    tmux.keys(&["Y"]);
    tmux.wait_for("editing going on", |s| s.contains("ZZZ YSummarize"));
    tmux.keys(&["C-c"]);
    tmux.wait_for("the question again", |s| s.contains("Unsaved changes"));
    tmux.keys(&["d"]);
    tmux.wait_for("whet to exit", |s| s.contains("EXIT=0"));

    // The terminal is back in cooked mode with echo; nothing is left running.
    assert_cooked_terminal(&dir.path().join("stty.txt"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(whet_pid) || process_alive(worker) {
        assert!(
            Instant::now() < deadline,
            "left behind: whet {} worker {}",
            process_alive(whet_pid),
            process_alive(worker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        children(tmux.shell_pid()).is_empty(),
        "the shell has no children left"
    );

    // The discarded edit never reached the file.
    assert_eq!(std::fs::read_to_string(&saved_path).unwrap(), saved);
    assert_eq!(run_records(&runs_dir).len(), 1);
    eprintln!("workbench e2e took {:.1?}", started.elapsed());
}

/// F9 on a shipped template: refinement rounds stream into the rounds
/// screen and end; a pass is rated and marked best, the run (with them) is
/// on disk and exported; F5 goes back to the workbench and Ctrl+C quits.
#[test]
fn refinement_rounds_run_rate_and_export_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = start_tmux("rounds", dir.path());
    let command = format!(
        "{} --model {}; echo EXIT=$?",
        whet_bin().display(),
        smollm2().display()
    );
    tmux.keys(&[&command, "Enter"]);
    tmux.wait_for("the model to load", |s| s.contains("● ready"));
    tmux.keys(&["F5"]);
    tmux.wait_for("the template list", |s| s.contains("acronym"));
    tmux.keys(&["/"]);
    tmux.keys(&["acro"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("acronym open", |s| s.contains("acronym · shipped"));
    tmux.keys(&["F9"]);
    let ended = |s: &str| {
        [
            "the rounds ran out",
            "nothing to fix",
            "came out the same",
            "reached the threshold",
        ]
        .iter()
        .any(|end| s.contains(end))
    };
    let screen = tmux.wait_for_within(Duration::from_secs(120), "the rounds to end", |s| {
        s.contains("Rounds · acronym") && ended(s)
    });
    assert!(screen.contains("draft · "), "{screen}");
    assert!(screen.contains("decoded "), "{screen}");
    // The draft's column and the feedback that led on.
    assert!(screen.contains("Feedback"), "{screen}");

    // Rate the selected (latest) pass and mark it best.
    tmux.keys(&["r"]);
    tmux.wait_for("the rating prompt", |s| s.contains("1-5, then a note"));
    tmux.keys(&["5 the one to keep", "Enter"]);
    tmux.wait_for("the rating shown", |s| s.contains("★★★★★ the one to keep"));
    tmux.keys(&["*"]);
    tmux.wait_for("the best mark", |s| s.contains("marked best"));
    tmux.keys(&["C-e"]);
    let screen = tmux.wait_for("the export", |s| s.contains("exported to"));

    let runs_dir = dir.path().join("data/whet/refinements");
    let runs = run_records(&runs_dir);
    assert_eq!(runs.len(), 1, "{screen}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&runs[0]).unwrap()).unwrap();
    let passes = run["passes"].as_array().unwrap();
    let last = passes.len() - 1;
    assert_eq!(passes[last]["rating"], 5);
    assert_eq!(passes[last]["note"], "the one to keep");
    assert_eq!(run["best"], last);
    assert_eq!(run["template"], "acronym");
    let exports: Vec<_> = std::fs::read_dir(dir.path().join("data/whet/exports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(exports.iter().any(|n| n.ends_with(".md")), "{exports:?}");
    assert!(exports.iter().any(|n| n.ends_with(".json")), "{exports:?}");

    tmux.keys(&["F5"]);
    tmux.wait_for("the workbench again", |s| s.contains("acronym · shipped"));
    tmux.keys(&["C-c"]);
    tmux.keys(&["C-c"]);
    tmux.wait_for("whet to exit", |s| s.contains("EXIT=0"));
}
