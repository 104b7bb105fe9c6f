"""GRPO settings against the cold-start SFT model: held-out accuracy after each, side by side.

    python bench/grpo_sweep.py --sft artifacts/sft/<key>/model [--runs bench/grpo_runs/default.json] [--data data] [--rl-limit N]

Each run trains GRPO from the same SFT model with the settings given (over the `grpo`
defaults) and evaluates the result with the `evaluate` defaults on the validation split
(components.tuning: never the held-out eval set, which only the flow's evaluations read); a
run without `grpo` only evaluates (`model` or the SFT model, with its `eval` overrides). One
JSON line per run. `--rl-limit N` trains on the first N RL prompts only: a policy that cannot
raise its reward on a few prompts it sees over and over (train_accuracy) has a broken reward or
update. Results behind the defaults: bench/results/tuning.md (bench/results/grpo_sweep.md is an
earlier sweep that was evaluated on the held-out set, before the validation split existed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from components import evaluate, grpo
from components.artifacts import read_records, write_records

HEADLINE = ("pass@1", "sample_accuracy", "maj@8", "pass@8", "ece")


def run_one(name: str, spec: dict, sft: str, out: Path, data_dir: str = "data", rl_limit: int | None = None) -> dict:
    started = time.perf_counter()
    model, curve, zero_std, selection = spec.get("model", sft), [], [], {}
    if spec.get("grpo") is not None:
        rl = rl_prompts(Path(data_dir) / "rl.jsonl", rl_limit, out)
        result = grpo.run(grpo.Config(**spec["grpo"]), {"model": sft, "rl": str(rl)}, str(out / name))
        model, curve = result.outputs["model"], result.curves.get("reward_accuracy", [])
        zero_std = result.curves.get("frac_reward_zero_std", [])
        # what grpo.informative_prompts kept, when a run sets it
        selection = {k: round(result.metrics[k], 3) for k in ("informative_prompts", "never_solved_share") if k in result.metrics}
    train_seconds = time.perf_counter() - started
    metrics = evaluate.evaluate_for_tuning(evaluate.Config(**spec.get("eval", {})), model, data_dir, out / name / "eval").metrics
    return {
        "run": name,
        "grpo_seconds": round(train_seconds),
        "train_accuracy": [round(x, 3) for x in curve],
        "zero_std_share": [round(x, 2) for x in zero_std],
        **selection,
    } | {f"val_{k}": round(metrics[k], 3) for k in HEADLINE if k in metrics}


def rl_prompts(rl: Path, limit: int | None, out: Path) -> Path:
    """The RL prompts file, or a copy of its first `limit` rows."""
    if limit is None:
        return rl
    subset = out / f"rl-first-{limit}.jsonl"
    return write_records(subset, read_records(rl)[:limit])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", required=True, help="the cold-start SFT model every run starts from")
    parser.add_argument("--runs", default="bench/grpo_runs/default.json")
    parser.add_argument("--data", default="data", help="the data folder: its val.jsonl is what runs are compared on")
    parser.add_argument("--rl-limit", type=int, help="train on the first N RL prompts only (a can-it-learn-at-all check)")
    parser.add_argument("--out", default="/tmp/grpo-sweep")
    args = parser.parse_args()
    for name, spec in json.loads(Path(args.runs).read_text()).items():
        print(json.dumps(run_one(name, spec, args.sft, Path(args.out), args.data, args.rl_limit)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
