//! The real binary in a real terminal (tmux), with the real default model:
//! type a question, watch the reply stream, stop one with Esc, regenerate,
//! edit and continue, copy, change settings, quit, and find the terminal
//! restored, also after SIGTERM, SIGINT and a panic.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::{assert_cooked_terminal, process_alive, streamed_reply_line, Tmux};
use common::*;

fn start_tmux(name: &str, logs: &Path, env: &str) -> Tmux {
    common::tmux::chat_tmux(name, logs, env)
}

fn start_whet(tmux: &Tmux, dir: &Path) -> (i32, i32) {
    common::tmux::start_chat(tmux, dir, "e2e")
}

/// After whet exits, the shell's terminal is back in cooked mode with echo.
fn assert_terminal_restored(tmux: &Tmux, dir: &Path, worker: i32) {
    assert_terminal_restored_after(tmux, dir, worker, "EXIT=0");
}

fn assert_terminal_restored_after(tmux: &Tmux, dir: &Path, worker: i32, exit: &str) {
    tmux.wait_for("whet to exit", |s| s.contains(exit));
    assert_cooked_terminal(&dir.join("stty.txt"));
    // The UI's worker is gone too (a zombie awaiting its reaper counts as gone).
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(worker) {
        assert!(Instant::now() < deadline, "worker {worker} survived the UI");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn chat_stream_stop_and_quit_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = start_tmux("chat", dir.path(), "");
    let (_, worker) = start_whet(&tmux, dir.path());

    tmux.keys(&["What is the capital of France?", "Enter"]);
    let screen = tmux.wait_for("a finished reply", |s| {
        s.contains("Assistant") && s.contains("tok/s") && !s.contains("● generating")
    });
    let reply: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("Assistant"))
        .skip(1)
        .take_while(|l| !l.trim_matches(|c| c == '│' || c == ' ').is_empty())
        .collect();
    assert!(!reply.is_empty(), "the reply has text:\n{screen}");

    // A long reply, stopped while it streams: the partial text stays.
    tmux.keys(&[
        "Write a very long story about a lighthouse keeper and the sea.",
        "Enter",
    ]);
    // Stop only once some of the reply is on screen (the machine may be slow
    // to evaluate the prompt).
    tmux.wait_for("reply text streaming in", |s| {
        s.contains("● generating") && !streamed_reply_line(s).is_empty()
    });
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("the stop", |s| s.contains("Assistant [stopped]"));
    assert!(screen.contains("● stopped"), "{screen}");

    // Regenerate: the stopped reply is replaced by a new one, streamed.
    tmux.keys(&["C-g"]);
    tmux.wait_for("the new reply streaming in", |s| {
        s.contains("● generating") && !streamed_reply_line(s).is_empty()
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the second stop", |s| s.contains("Assistant [stopped]"));

    // Ctrl+C once only warns; twice quits.
    tmux.keys(&["C-c"]);
    tmux.wait_for("the quit warning", |s| {
        s.contains("press Ctrl+C again to quit")
    });
    tmux.keys(&["C-c"]);
    assert_terminal_restored(&tmux, dir.path(), worker);

    // The session on disk holds the conversation, the stopped reply marked.
    let saved = whet::store::session::load(&dir.path().join("sessions/e2e.json")).unwrap();
    let texts: Vec<(&str, &str)> = saved
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(texts[0], ("user", "What is the capital of France?"));
    assert_eq!(texts[1].0, "assistant");
    assert!(!texts[1].1.is_empty());
    assert_eq!(
        texts[2],
        (
            "user",
            "Write a very long story about a lighthouse keeper and the sea."
        )
    );
    assert_eq!(saved.messages[3].note.as_deref(), Some("stopped"));
    assert!(!saved.messages[3].text.is_empty());
    assert_eq!(saved.model.as_deref(), Some(smollm2().as_path()));
}

/// `whet --session NAME` with NAME's file unreadable: one line, exit 1, the
/// file byte for byte as it was.
fn open_session(dir: &Path, name: &str) -> std::process::Output {
    Command::new(whet_bin())
        .args(["--model", smollm2().to_str().unwrap(), "--session", name])
        .env("WHET_DATA_DIR", dir)
        .env("WHET_LOG_DIR", dir)
        .output()
        .unwrap()
}

#[test]
fn corrupt_and_future_sessions_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    std::fs::create_dir_all(&sessions).unwrap();

    let broken = sessions.join("broken.json");
    let text = "{\n  \"version\": 1,\n  \"name\": \"broken\",\n  \"messages\": [ oops ]\n}\n";
    std::fs::write(&broken, text).unwrap();
    let output = open_session(dir.path(), "broken");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        format!(
            "error: {}:4:17: not a valid session file: expected value (the file was left untouched)",
            broken.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), text);

    let future = sessions.join("future.json");
    let text = "{\"version\": 99, \"name\": \"future\", \"tabs\": []}";
    std::fs::write(&future, text).unwrap();
    let output = open_session(dir.path(), "future");
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        err.contains(&format!(
            "session format version 99 is newer than this whet reads ({})",
            whet::store::session::SESSION_VERSION
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&future).unwrap(), text);
}

#[test]
fn sigterm_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = start_tmux("sigterm", dir.path(), "");
    let (whet_pid, worker) = start_whet(&tmux, dir.path());
    assert_eq!(unsafe { libc::kill(whet_pid, libc::SIGTERM) }, 0);
    // 128 + 15: the exit status says a signal ended it.
    assert_terminal_restored_after(&tmux, dir.path(), worker, "EXIT=143");
}

#[test]
fn sigint_from_another_shell_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = start_tmux("sigint", dir.path(), "");
    let (whet_pid, worker) = start_whet(&tmux, dir.path());
    assert_eq!(unsafe { libc::kill(whet_pid, libc::SIGINT) }, 0);
    assert_terminal_restored_after(&tmux, dir.path(), worker, "EXIT=130");
}

#[test]
fn a_panic_restores_the_terminal_before_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = start_tmux(
        "panic",
        dir.path(),
        "WHET_TEST_PANIC_ON_KEY=1 RUST_BACKTRACE=0",
    );
    let (_, worker) = start_whet(&tmux, dir.path());
    tmux.keys(&["x"]);
    // Rust exits 101 after a panic; the message is readable on the shell's screen.
    assert_terminal_restored_after(&tmux, dir.path(), worker, "EXIT=101");
    let screen = tmux.screen();
    assert!(screen.contains("panicking on a key as asked"), "{screen}");
}

/// The message under the last header that contains `header`, joined.
fn message_text(screen: &str, header: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(start) = lines.iter().rposition(|l| l.contains(header)) else {
        return String::new();
    };
    lines[start + 1..]
        .iter()
        .map(|l| l.trim_matches(|c: char| c == '│' || c == '┃' || c.is_whitespace()))
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn settings_continue_edit_branches_copy_and_config_problems() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("keymap.toml"),
        "[messages]\nfrobnicate = \"x\"\n",
    )
    .unwrap();
    let tmux = start_tmux("workflow", dir.path(), "");
    let (_, worker) = start_whet(&tmux, dir.path());
    // The bad keymap entry is reported, and everything else works.
    let screen = tmux.screen();
    assert!(
        screen.contains("keymap.toml:2:1: unknown action 'frobnicate'"),
        "{screen}"
    );

    // Settings: a new chat on the default model starts from its card's
    // recommendation, and says so. Then greedy decoding and short replies.
    tmux.keys(&["F2"]);
    let panel = tmux.wait_for("the settings panel", |s| s.contains("Temperature"));
    for (label, value) in [("Temperature", "0.2"), ("Top-p", "0.9")] {
        let row = panel
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label} row: {panel}"));
        assert!(
            row.contains(value) && row.contains("model card (SmolLM2 135M Instruct)"),
            "{row}"
        );
    }
    tmux.keys(&["Tab", "0", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "12"]);
    tmux.keys(&["C-s"]);
    tmux.wait_for("the settings applied", |s| s.contains("settings applied"));

    tmux.keys(&["Name three rivers in Europe.", "Enter"]);
    let screen = tmux.wait_for("a reply cut at 12 tokens", |s| {
        s.contains("Assistant [max tokens]") && s.contains("● stopped")
    });
    let cut = message_text(&screen, "Assistant [max tokens]");
    assert!(!cut.is_empty(), "{screen}");

    // Continue it: the reply grows from where it stopped.
    tmux.keys(&["Tab", "c"]);
    let screen = tmux.wait_for("the continued reply", |s| {
        !s.contains("● generating")
            && s.contains("tok/s")
            && !message_text(s, "Assistant").is_empty()
            && message_text(s, "Assistant").len() > cut.len()
    });
    let continued = message_text(&screen, "Assistant");
    assert!(continued.starts_with(&cut), "{cut:?} then {continued:?}");

    // Copy the selected reply (OSC 52 lands in tmux's buffer).
    tmux.keys(&["y"]);
    tmux.wait_for("the copy notice", |s| s.contains("copied the message"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buffer = String::new();
    while Instant::now() < deadline {
        buffer = tmux.run(&["show-buffer"]);
        if !buffer.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let first_words: String = cut.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert!(
        buffer.contains(&first_words),
        "{first_words:?} in {buffer:?}"
    );

    // Edit the question and resend: the old turn is kept as a branch.
    tmux.keys(&["k", "e"]);
    tmux.wait_for("the message in the editor", |s| {
        s.contains("Editing message 1")
    });
    tmux.keys(&["C-a", "C-k", "Name three rivers in Asia.", "Enter"]);
    tmux.wait_for("the reply to the edited question", |s| {
        s.contains("Name three rivers in Asia.")
            && s.contains("1 other version")
            && s.contains("● stopped")
    });
    tmux.keys(&["Tab", "k", "["]);
    tmux.wait_for("the first version back", |s| {
        s.contains("Name three rivers in Europe.")
    });

    tmux.keys(&["q"]);
    assert_terminal_restored(&tmux, dir.path(), worker);

    let saved = whet::store::session::load(&dir.path().join("sessions/e2e.json")).unwrap();
    assert_eq!(saved.sampling.temperature, 0.0);
    // The session chose its temperature; top-p still follows the model.
    let chosen = saved.sampling_set.unwrap();
    assert_eq!((chosen.temperature, chosen.top_p), (Some(0.0), None));
    assert_eq!(saved.sampling.top_p, 0.9);
    assert_eq!(saved.reply.max_tokens, 12);
    assert_eq!(saved.messages[0].text, "Name three rivers in Europe.");
    assert_eq!(saved.messages[0].branches.len(), 1);
    assert_eq!(
        saved.messages[0].branches[0][0].text,
        "Name three rivers in Asia."
    );
    assert!(saved.messages[1]
        .text
        .starts_with(&cut.split_whitespace().next().unwrap().to_string()));
}

#[test]
fn ctrl_z_gives_the_shell_back_and_fg_redraws() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = start_tmux("suspend", dir.path(), "");
    // Job control needs an interactive shell: the one tmux started is.
    let (whet, worker) = start_whet(&tmux, dir.path());
    tmux.keys(&["draft kept", "C-z"]);
    tmux.wait_for("the shell's job notice", |s| s.contains("Stopped"));
    tmux.keys(&["stty -a > $WHET_LOG_DIR/suspended.txt", "Enter"]);
    let stty_file = dir.path().join("suspended.txt");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&stty_file).map_or(true, |m| m.len() == 0) {
        assert!(Instant::now() < deadline, "no stty output");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stty = std::fs::read_to_string(&stty_file).unwrap();
    assert!(
        stty.split_whitespace().any(|f| f == "icanon"),
        "cooked mode while suspended: {stty}"
    );
    tmux.keys(&["fg", "Enter"]);
    let screen = tmux.wait_for("the UI back", |s| {
        s.contains("● ready") && s.contains("draft kept")
    });
    assert!(screen.contains("Message"), "{screen}");
    tmux.keys(&["C-c", "C-c"]);
    // The shell ran `echo EXIT` when whet stopped; check the mode by hand.
    let deadline = Instant::now() + Duration::from_secs(20);
    while process_alive(whet) {
        assert!(Instant::now() < deadline, "whet did not quit after fg");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(dir.path().join("stty.txt")).ok();
    tmux.keys(&["echo EXIT=0; stty -a > $WHET_LOG_DIR/stty.txt", "Enter"]);
    assert_terminal_restored(&tmux, dir.path(), worker);
}

#[test]
fn closing_the_terminal_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = start_tmux("hangup", dir.path(), "");
    let (whet, worker) = start_whet(&tmux, dir.path());
    tmux.keys(&["Write a very long story about the sea.", "Enter"]);
    tmux.wait_for("a reply streaming", |s| s.contains("● generating"));
    // The terminal goes away mid-reply (SIGHUP, then a dead tty).
    tmux.run(&["kill-server"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while process_alive(whet) || process_alive(worker) {
        assert!(
            Instant::now() < deadline,
            "left behind: whet {} worker {}",
            process_alive(whet),
            process_alive(worker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What had arrived of the reply was saved.
    let saved = whet::store::session::load(&dir.path().join("sessions/e2e.json")).unwrap();
    assert_eq!(saved.messages.len(), 2);
    assert_eq!(saved.messages[1].note.as_deref(), Some("interrupted"));
}
