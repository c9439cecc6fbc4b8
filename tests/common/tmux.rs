//! A real terminal for the end-to-end tests: a tmux server of its own with
//! one shell, keys sent to it and the screen read back.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own, killed when the test ends.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A `width`×`height` bash; `env` is `env` arguments for it (variables
    /// to set, `-u NAME` to unset).
    pub fn start(name: &str, width: u16, height: u16, env: &str) -> Self {
        let tmux = Tmux {
            socket: format!("whet-test-{name}-{}", std::process::id()),
        };
        let shell = format!("env {env} PS1='$ ' bash --norc --noprofile");
        let (width, height) = (width.to_string(), height.to_string());
        tmux.run(&["new-session", "-d", "-x", &width, "-y", &height, &shell]);
        // Let OSC 52 from the application set tmux's paste buffer.
        tmux.run(&["set-option", "-s", "set-clipboard", "on"]);
        tmux
    }

    pub fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (scripts/test installs it)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Esc on its own: a key sent right after it would arrive as Alt+key.
    pub fn escape(&self) {
        std::thread::sleep(Duration::from_millis(100));
        self.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(300));
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    /// Waits (up to a minute) until the screen satisfies `done`, or fails
    /// with the screen.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for_within(Duration::from_secs(60), what, done)
    }

    pub fn wait_for_within(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn shell_pid(&self) -> i32 {
        self.run(&["list-panes", "-F", "#{pane_pid}"])
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// Whether `pid` runs (a zombie does not count).
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z')))
        })
        .unwrap_or(false)
}

pub fn children(pid: i32) -> Vec<i32> {
    let output = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The `stty -a` the shell wrote to `stty_file` after whet exited shows a
/// terminal back in cooked mode: line editing, echo, signals, CR/NL and
/// output processing.
pub fn assert_cooked_terminal(stty_file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(stty_file).map_or(true, |m| m.len() == 0) {
        assert!(Instant::now() < deadline, "no stty output");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let stty = std::fs::read_to_string(stty_file).unwrap();
    let flags: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(
            flags.contains(&flag),
            "terminal mode {flag} not restored: {stty}"
        );
    }
}

/// A 100x30 shell whose whet keeps its data, logs and config in `dir`;
/// `env` is extra `env` words.
pub fn chat_tmux(name: &str, dir: &Path, env: &str) -> Tmux {
    Tmux::start(
        name,
        100,
        30,
        &format!(
            "WHET_LOG_DIR={0} WHET_DATA_DIR={0} WHET_CONFIG_DIR={0}/config {env}",
            dir.display()
        ),
    )
}

/// Starts the chat UI on `session` with the default model and waits for
/// it to load; the shell then prints `EXIT=<code>` and writes `stty -a` to
/// `dir/stty.txt`. Returns the pids of whet and its worker.
pub fn start_chat(tmux: &Tmux, dir: &Path, session: &str) -> (i32, i32) {
    let command = format!(
        "{} --model {} --session {session}; echo EXIT=$?; stty -a > {}/stty.txt",
        super::whet_bin().display(),
        super::smollm2().display(),
        dir.display()
    );
    tmux.keys(&[&command, "Enter"]);
    tmux.wait_for("the model to load", |s| s.contains("● ready"));
    let whet = children(tmux.shell_pid())[0];
    let worker = children(whet)[0];
    (whet, worker)
}

/// The first line of text under the reply that is still streaming.
pub fn streamed_reply_line(screen: &str) -> String {
    let mut lines = screen.lines().skip_while(|l| !l.contains("Assistant …"));
    lines.next();
    lines
        .next()
        .unwrap_or_default()
        .trim_matches(|c: char| c == '│' || c.is_whitespace())
        .to_string()
}
