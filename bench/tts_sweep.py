"""Test-time scaling's sampling temperature, chosen on the validation split (never the held-out set).

    python bench/tts_sweep.py --model artifacts/alignment/<key>/model [--data data] [--temperatures 0.4 0.6 0.8 1.0]

Evaluates the model on data/val.jsonl (components.tuning) at each temperature with the
`evaluate` defaults otherwise, and picks the temperature whose maj@k (k = num_samples) is
highest, the smaller one on a tie: `evaluate.temperature` in params.yaml is set from it by
hand, and the result is committed (bench/results/tts_sweep.json) so the choice can be checked.
When no temperature's vote beats greedy decoding, nothing is picked (`chosen: null`): the
highest maj@k is then the coldest temperature's, whose samples are copies of the greedy answer,
and choosing it would only make test-time scaling measure nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from components import evaluate, tuning

HEADLINE = ("pass@1", "sample_accuracy", "maj@4", "maj@8", "pass@8", "ece")


def sweep(model: str, data_dir: str, temperatures: list[float], out: Path) -> dict:
    runs = {}
    for temperature in temperatures:
        cfg = evaluate.Config(temperature=temperature)
        metrics = evaluate.evaluate_for_tuning(cfg, model, data_dir, out / f"t{temperature}").metrics
        runs[str(temperature)] = {k: round(metrics[k], 3) for k in HEADLINE if k in metrics}
        print(json.dumps({"temperature": temperature, **runs[str(temperature)]}), flush=True)
    k = f"maj@{evaluate.Config().num_samples}"
    chosen = choose(runs, k)
    return {"model": model, "split": str(tuning.validation_set(data_dir)), "chosen_by": k, "runs": runs} | chosen


def choose(runs: dict[str, dict], k: str) -> dict:
    """The temperature with the highest maj@k (the colder on a tie), if its vote beats greedy decoding (pass@1)."""
    best = max(runs, key=lambda t: (runs[t][k], -float(t)))
    if runs[best][k] > runs[best]["pass@1"]:
        return {"chosen": float(best), "reason": f"{k} {runs[best][k]} > greedy {runs[best]['pass@1']}"}
    return {
        "chosen": None,
        "reason": f"no temperature's {k} beats greedy decoding (best: {runs[best][k]} at T={best}, greedy {runs[best]['pass@1']})",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default="data")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.4, 0.6, 0.8, 1.0])
    parser.add_argument("--out", default="bench/results/tts_sweep.json")
    args = parser.parse_args()
    result = sweep(args.model, args.data, args.temperatures, Path("/tmp/tts-sweep"))
    result["machine"] = {"platform": platform.platform()}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"chosen": result["chosen"], "by": result["chosen_by"], "reason": result["reason"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
