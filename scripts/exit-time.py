#!/usr/bin/env python3
"""Time from a signal to whet's exit while a reply is streaming, in a real
terminal (tmux): the figure of issue 10's closing note.

    python3 scripts/exit-time.py [--signal TERM] [--reps 5] WHET_BINARY [WHET_BINARY ...]

Each binary is run in turn (alternating, `--reps` times): the chat UI is
started on the default model, asked for a long story, and once the reply
is streaming the signal is sent; the time until the process is gone is
printed, then the median per binary. Needs tmux and an installed default
model; uses private data, config and log folders.
"""
import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time


def tmux(socket, *args):
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True).stdout


def wait_for(socket, check, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        screen = tmux(socket, "capture-pane", "-p", "-t", "0")
        if check(screen):
            return screen
        time.sleep(0.05)
    raise SystemExit("timed out; screen:\n" + screen)


def one_run(binary, model, sig):
    with tempfile.TemporaryDirectory() as folder:
        socket = f"whet-exit-time-{os.getpid()}"
        env = f"WHET_DATA_DIR={folder} WHET_LOG_DIR={folder} WHET_CONFIG_DIR={folder}/config"
        tmux(socket, "new-session", "-d", "-x", "100", "-y", "30",
             f"env {env} PS1='$ ' bash --norc --noprofile")
        try:
            tmux(socket, "send-keys", "-t", "0",
                 f"{binary} --model {model} --session t; echo EXIT=$?", "Enter")
            wait_for(socket, lambda s: "● ready" in s)
            shell = int(tmux(socket, "list-panes", "-F", "#{pane_pid}").strip())
            whet = int(subprocess.run(["pgrep", "-P", str(shell)], capture_output=True,
                                      text=True).stdout.split()[0])
            tmux(socket, "send-keys", "-t", "0", "Write a very long story about the sea.", "Enter")
            wait_for(socket, lambda s: "● generating" in s)
            time.sleep(1.0)
            sent = time.monotonic()
            os.kill(whet, sig)
            while os.path.exists(f"/proc/{whet}") and not open(f"/proc/{whet}/stat").read().split(") ")[1].startswith("Z"):
                time.sleep(0.005)
            return (time.monotonic() - sent) * 1000
        finally:
            tmux(socket, "kill-server")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--signal", default="TERM")
    parser.add_argument("--model", default=os.path.expanduser(
        "~/.local/share/whet/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = parser.parse_args()
    sig = getattr(signal, "SIG" + args.signal)
    times = {b: [] for b in args.binaries}
    for rep in range(args.reps):
        for binary in args.binaries:
            ms = one_run(binary, args.model, sig)
            times[binary].append(ms)
            print(f"{binary}: SIG{args.signal} to exit {ms:.0f} ms", flush=True)
    for binary, values in times.items():
        print(f"{binary}: median {statistics.median(values):.0f} ms "
              f"[{min(values):.0f}-{max(values):.0f}] over {len(values)}")


if __name__ == "__main__":
    main()
