"""What kinds of mistakes a model makes on the validation split (never the held-out set).

    python bench/mistakes.py --model artifacts/alignment/<key>/model [--data data] [--out bench/results/mistakes_val.json]

Each greedy answer is compared step by step with the reference solution (the synthetic task's
`a+b=c` lines) and its first mistake named (`components.data.mistake_kind`); a right final answer
reached through a wrong step (two slips that cancel) is counted apart. The reward model's
near-miss pairs should cover the kinds a policy actually makes: this is how we know which.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import Counter
from pathlib import Path

from components import evaluate, tuning
from components.artifacts import read_records
from components.data import mistake_kind


def tally(problems: list[dict], predictions: list[dict]) -> dict:
    """The first mistake of each wrong answer, and how many right final answers stand on a wrong step."""
    kinds = Counter()
    for problem, row in zip(problems, predictions, strict=True):
        kind = mistake_kind(problem["solution"], row["greedy"])
        kinds[("right_answer_wrong_steps" if kind != "right" else "right") if row["greedy_correct"] else kind] += 1
    wrong = sum(n for kind, n in kinds.items() if not kind.startswith("right"))
    return {
        "problems": len(problems),
        "kinds": dict(kinds.most_common()),
        "share_of_wrong": {k: round(n / max(1, wrong), 3) for k, n in kinds.items() if not k.startswith("right")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH, repeatable")
    parser.add_argument("--data", default="data")
    parser.add_argument("--out", default="bench/results/mistakes_val.json")
    args = parser.parse_args()
    problems = read_records(tuning.validation_set(args.data))
    result = {"split": str(tuning.validation_set(args.data)), "machine": {"platform": platform.platform()}, "models": {}}
    for named in args.model:
        name, path = named.split("=", 1)
        outcome = evaluate.evaluate_for_tuning(evaluate.Config.greedy_only(), path, args.data, Path(f"/tmp/mistakes/{name}"))
        result["models"][name] = tally(problems, read_records(outcome.outputs["predictions"]))
        print(json.dumps({name: result["models"][name]}), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
