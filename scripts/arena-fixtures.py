#!/usr/bin/env python3
"""Makes the fixtures of tests/arena_fixtures.rs.

Writes tests/fixtures/arena/votes.jsonl (votes between four models, drawn
from fixed strengths with a fixed seed: some blind, some ties and both-bad,
one torn line, one vote of a model against itself) and expected.json with:

- pairs:   per pair (in name order) wins / ties / losses / both_bad / blind,
           and the Wilson interval of the first model's win rate over the
           decisive votes: statsmodels.stats.proportion.proportion_confint(
           wins, wins + losses, alpha=0.05, method="wilson")
- ratings: the Bradley–Terry fit with ties as half a win and a Gaussian
           prior (sd 2 logits) on θ, maximised by
           scipy.optimize.minimize(method="BFGS") — not Newton's method, as
           whet does — on the Elo scale 1000 + 400·θ/ln 10
- bootstrap: percentile intervals (2.5%, 97.5%) of those ratings over
           10000 resamples of the votes drawn with numpy (whet's own
           resampling differs: the test allows for resampling error)

plus the package versions. It installs nothing. Set up its environment once:

    python3 -m venv /tmp/sf && /tmp/sf/bin/pip install scipy==1.17.1 statsmodels==0.15.0

then run, from the repository root:

    /tmp/sf/bin/python scripts/arena-fixtures.py
"""

import json
import math
import pathlib
import random
from importlib.metadata import version

import numpy
from scipy.optimize import minimize
from statsmodels.stats.proportion import proportion_confint

PRIOR_SD = 2.0
OUT = pathlib.Path("tests/fixtures/arena")
MODELS = {"SmolLM2-135M-Instruct": 0.0, "gemma-3-270m": 0.6, "big @ gpu": 1.3, "llama | pipe": -0.4}


def side(model):
    if " @ " in model:
        name, backend = model.split(" @ ")
        return {"model": model, "backend": {"backend": backend, "model": name},
                "sampling": sampling()}
    return {"model": model, "file": f"/models/{model}.gguf", "sha256": "ab" * 32,
            "sampling": sampling()}


def sampling():
    return {"temperature": 0.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05,
            "repeat_penalty": 1.0, "repeat_last_n": 64, "seed": 42}


def make_votes():
    rng = random.Random(20261201)
    names = sorted(MODELS)
    votes = []
    for turn in range(120):
        a, b = rng.sample(names, 2)
        p = 1 / (1 + math.exp(-(MODELS[a] - MODELS[b])))
        r = rng.random()
        if r < 0.15:
            verdict = "tie"
        elif r < 0.22:
            verdict = "both_bad"
        else:
            verdict = "a" if rng.random() < p else "b"
        votes.append({"version": 1, "at_ms": 1764547200000 + turn, "session": "fixture",
                      "turn": turn, "blind": turn % 3 != 0, "verdict": verdict,
                      "a": side(a), "b": side(b)})
    return votes


def fit(names, games):
    index = {m: i for i, m in enumerate(names)}
    a = numpy.array([index[g[0]] for g in games])
    b = numpy.array([index[g[1]] for g in games])
    s = numpy.array([g[2] for g in games])

    def objective(theta):
        d = theta[a] - theta[b]
        ll = s * -numpy.logaddexp(0, -d) + (1 - s) * -numpy.logaddexp(0, d)
        return -(ll.sum() - (theta ** 2).sum() / (2 * PRIOR_SD ** 2))

    result = minimize(objective, numpy.zeros(len(names)), method="BFGS",
                      options={"gtol": 1e-12, "maxiter": 10000})
    return 1000 + 400 * result.x / math.log(10)


def main():
    votes = make_votes()
    lines = [json.dumps(v, ensure_ascii=False) for v in votes]
    # One vote of a model against itself: left out of every figure.
    selfvote = dict(votes[0], a=side("gemma-3-270m"), b=side("gemma-3-270m"), verdict="a")
    lines.insert(7, json.dumps(selfvote))
    # A torn line (a crash mid-write): reported, left out.
    lines.insert(30, '{"version":1,"at_ms":17645')
    (OUT / "votes.jsonl").write_text("\n".join(lines) + "\n")

    names = sorted(MODELS)
    score = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}
    games = [(v["a"]["model"], v["b"]["model"], score[v["verdict"]]) for v in votes]

    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            rec = {"first": first, "second": second, "wins": 0, "losses": 0, "ties": 0,
                   "both_bad": 0, "blind": 0}
            for v in votes:
                models = (v["a"]["model"], v["b"]["model"])
                if set(models) != {first, second}:
                    continue
                winner = {"a": models[0], "b": models[1]}.get(v["verdict"])
                if winner == first:
                    rec["wins"] += 1
                elif winner == second:
                    rec["losses"] += 1
                else:
                    rec["ties"] += 1
                    rec["both_bad"] += v["verdict"] == "both_bad"
                rec["blind"] += v["blind"]
            decisive = rec["wins"] + rec["losses"]
            low, high = proportion_confint(rec["wins"], decisive, alpha=0.05, method="wilson")
            rec["win_rate"] = [rec["wins"] / decisive, float(low), float(high)]
            pairs.append(rec)

    estimate = fit(names, games)
    rng = numpy.random.default_rng(0)
    draws = []
    for _ in range(10000):
        picks = rng.integers(0, len(games), len(games))
        draws.append(fit(names, [games[k] for k in picks]))
    draws = numpy.array(draws)
    ratings = {
        m: [float(estimate[i]), float(numpy.percentile(draws[:, i], 2.5)),
            float(numpy.percentile(draws[:, i], 97.5))]
        for i, m in enumerate(names)
    }
    expected = {
        "versions": {p: version(p) for p in ("numpy", "scipy", "statsmodels")},
        "votes": len(votes),
        "blind": sum(v["blind"] for v in votes),
        "both_bad": sum(v["verdict"] == "both_bad" for v in votes),
        "pairs": pairs,
        "ratings": ratings,
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
