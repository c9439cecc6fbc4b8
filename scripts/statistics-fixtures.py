#!/usr/bin/env python3
"""Computes the expected values for tests/statistics_fixtures.rs.

Reads tests/fixtures/statistics/inputs.json and writes expected.json with
what scipy and statsmodels give:

- wilson:        statsmodels.stats.proportion.proportion_confint(
                     s, n, alpha=0.05, method="wilson")
- sign_test:     scipy.stats.binomtest(wins, wins + losses, 0.5).pvalue
- permutation:   scipy.stats.permutation_test((d,), numpy.mean,
                     permutation_type="samples", n_resamples=numpy.inf,
                     alternative="two-sided").pvalue        (exact: sign flips)
- permutation_sampled: the same with n_resamples=10000 (Monte Carlo; the
                 test allows for sampling error)
- bootstrap:     scipy.stats.bootstrap((x,), numpy.mean, confidence_level=0.95,
                     n_resamples=10000, method="percentile", random_state=0)
                 (its interval; the test allows for resampling error)

plus the package versions. It installs nothing. Set up its environment once:

    python3 -m venv /tmp/sf && /tmp/sf/bin/pip install scipy==1.17.1 statsmodels==0.15.0

then run, from the repository root:

    /tmp/sf/bin/python scripts/statistics-fixtures.py
"""

import json
import pathlib
from importlib.metadata import version

import numpy
import scipy.stats
from statsmodels.stats.proportion import proportion_confint

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "statistics"


def permutation_p(differences, resamples):
    result = scipy.stats.permutation_test(
        (numpy.array(differences, dtype=float),),
        numpy.mean,
        permutation_type="samples",
        n_resamples=resamples,
        alternative="two-sided",
        random_state=0,
    )
    return float(result.pvalue)


def main():
    inputs = json.loads((FIXTURES / "inputs.json").read_text())
    expected = {
        "versions": {name: version(name) for name in ["scipy", "statsmodels", "numpy"]},
        "wilson": [
            list(map(float, proportion_confint(s, n, alpha=0.05, method="wilson")))
            for s, n in inputs["wilson"]
        ],
        "sign_test": [
            1.0 if w + l == 0 else float(scipy.stats.binomtest(w, w + l, 0.5).pvalue)
            for w, l in inputs["sign_test"]
        ],
        "permutation": [permutation_p(d, numpy.inf) for d in inputs["permutation"]],
        "permutation_sampled": [permutation_p(d, 10000) for d in inputs["permutation_sampled"]],
        "bootstrap": [],
    }
    for values in inputs["bootstrap"]:
        result = scipy.stats.bootstrap(
            (numpy.array(values, dtype=float),),
            numpy.mean,
            confidence_level=0.95,
            n_resamples=10000,
            method="percentile",
            random_state=0,
        )
        interval = result.confidence_interval
        expected["bootstrap"].append(
            {"mean": float(numpy.mean(values)), "low": float(interval.low), "high": float(interval.high)}
        )
    (FIXTURES / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
