//! What native code prints on stderr during one call.
//!
//! llama.cpp reports some failures only with a raw `fprintf(stderr, …)`
//! (a grammar that does not parse, a JSON schema it converts incompletely),
//! outside its log callback. To put that reason into an error message, fd 2
//! points at a temporary file while the call runs, and is put back after.
//! What was captured is not written on to the real stderr: a front end's
//! stderr may be the terminal under a full-screen UI. Callers log it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::sync::Mutex;

/// One capture at a time: fd 2 is process-wide.
static CAPTURING: Mutex<()> = Mutex::new(());

/// Runs `f` with stderr going to a temporary file and returns its result
/// and what was printed. If stderr cannot be redirected, `f` runs anyway
/// and the text is empty.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    let _one_at_a_time = CAPTURING.lock().unwrap_or_else(|p| p.into_inner());
    let Some(redirect) = Redirect::start() else {
        return (f(), String::new());
    };
    let result = f();
    let text = redirect.finish();
    (result, text)
}

struct Redirect {
    file: std::fs::File,
    saved: libc::c_int,
}

impl Redirect {
    fn start() -> Option<Self> {
        let file = tempfile::tempfile().ok()?;
        let _ = std::io::stderr().flush();
        // SAFETY: plain descriptor calls; `saved` is checked before use and
        // fd 2 is restored in `finish` (and in `drop` if `finish` never runs).
        unsafe {
            let saved = libc::dup(2);
            if saved < 0 {
                return None;
            }
            if libc::dup2(file.as_raw_fd(), 2) < 0 {
                libc::close(saved);
                return None;
            }
            Some(Self { file, saved })
        }
    }

    fn finish(mut self) -> String {
        self.restore();
        let mut bytes = Vec::new();
        if self.file.seek(SeekFrom::Start(0)).is_ok() {
            let _ = self.file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn restore(&mut self) {
        if self.saved < 0 {
            return;
        }
        // SAFETY: `saved` is the descriptor dup'ed from fd 2 in `start`.
        unsafe {
            libc::dup2(self.saved, 2);
            libc::close(self.saved);
        }
        self.saved = -1;
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_raw_writes_to_fd_2_and_restores_it() {
        let (value, text) = capture(|| {
            let message = b"from native code\n";
            // SAFETY: writing a valid buffer to fd 2.
            unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
            7
        });
        assert_eq!(value, 7);
        assert_eq!(text, "from native code\n");
        let (_, again) = capture(|| ());
        assert_eq!(again, "");
    }
}
