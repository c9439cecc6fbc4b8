#!/usr/bin/env python3
"""Computes the expected metric values for tests/metrics_fixtures.rs.

Reads tests/fixtures/metrics/pairs.json (a list of {id, candidate,
references}) and writes tests/fixtures/metrics/expected.json with, for every
pair, what the reference implementations give with their defaults:

- sentence BLEU:  sacrebleu.sentence_bleu(candidate, references).score
- chrF:           sacrebleu.sentence_chrf(candidate, references).score
- ROUGE-1/2/L:    rouge_score.rouge_scorer.RougeScorer(
                      ['rouge1', 'rouge2', 'rougeL'], use_stemmer=False
                  ).score_multi(references, candidate)   (precision/recall/F1)
- exact match, words and characters (plain Python, for score())

and over the whole set sacrebleu.corpus_bleu and corpus_chrf (the reference
streams padded with None where a pair has fewer references), plus the
package versions used.

It installs nothing. Set up its environment once with:

    python3 -m venv /tmp/mf && /tmp/mf/bin/pip install sacrebleu==2.6.0 rouge-score==0.1.2

then run, from the repository root:

    /tmp/mf/bin/python scripts/metric-fixtures.py
"""

import json
import pathlib
from importlib.metadata import version

import sacrebleu
from rouge_score import rouge_scorer

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "metrics"


def rouge_dict(score):
    return {
        "precision": score.precision,
        "recall": score.recall,
        "f1": score.fmeasure,
    }


def main():
    pairs = json.loads((FIXTURES / "pairs.json").read_text(encoding="utf-8"))
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)

    expected_pairs = []
    for pair in pairs:
        candidate, references = pair["candidate"], pair["references"]
        rouge = scorer.score_multi(references, candidate)
        expected_pairs.append(
            {
                "id": pair["id"],
                "bleu": sacrebleu.sentence_bleu(candidate, references).score,
                "chrf": sacrebleu.sentence_chrf(candidate, references).score,
                "rouge1": rouge_dict(rouge["rouge1"]),
                "rouge2": rouge_dict(rouge["rouge2"]),
                "rougeL": rouge_dict(rouge["rougeL"]),
                "exact_match": candidate.strip() in [r.strip() for r in references],
                "words": len(candidate.split()),
                "chars": len(candidate),
            }
        )

    # sacrebleu wants one stream per reference position: streams[k][i] is
    # the k-th reference of candidate i, None where it has fewer.
    candidates = [pair["candidate"] for pair in pairs]
    most = max(len(pair["references"]) for pair in pairs)
    streams = [
        [pair["references"][k] if k < len(pair["references"]) else None for pair in pairs]
        for k in range(most)
    ]
    expected = {
        "generated_by": "scripts/metric-fixtures.py",
        "versions": {
            "python": ".".join(map(str, __import__("sys").version_info[:3])),
            "sacrebleu": version("sacrebleu"),
            "rouge-score": version("rouge-score"),
        },
        "corpus": {
            "bleu": sacrebleu.corpus_bleu(candidates, streams).score,
            "chrf": sacrebleu.corpus_chrf(candidates, streams).score,
        },
        "pairs": expected_pairs,
    }
    out = FIXTURES / "expected.json"
    out.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}: {len(expected_pairs)} pairs")


if __name__ == "__main__":
    main()
