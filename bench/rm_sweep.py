"""Reward-model settings against the cold-start SFT model, compared on validation pairs.

    python bench/rm_sweep.py --sft artifacts/sft/<key>/model [--data data] [--runs '{"steps600": {"max_steps": 600}}']

Each run trains the reward model (the `reward_model` defaults, overridden by the run) on
data/prefs.jsonl and scores preference pairs built from the validation split (data/val.jsonl's
solutions against near-misses drawn like the training pairs' rejected answers): neither the
reward model's own held-out pairs, which claims.md reports, nor the held-out eval set is used to
choose. One JSON line per run: pairwise accuracy overall and per kind of rejected answer.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from components import reward_model
from components.artifacts import read_records
from components.data import corrupt_solution
from components.scoring import RewardScorer
from components.tuning import validation_set


def validation_pairs(data_dir: str, seed: int = 7) -> list[dict]:
    rng, pairs = random.Random(seed), []
    for record in read_records(validation_set(data_dir)):
        lines = record["solution"].split("\n")
        steps = lines[1 : lines.index("</think>")]
        rejected = corrupt_solution(rng, steps, int(record["answer"]))
        pairs.append(
            {
                "prompt": record["prompt"],
                "chosen": [{"role": "assistant", "content": record["solution"]}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return pairs


def run_one(name: str, overrides: dict, sft: str, data_dir: str, pairs: list[dict], out: Path) -> dict:
    started = time.perf_counter()
    result = reward_model.run(reward_model.Config(**overrides), {"model": sft, "prefs": f"{data_dir}/prefs.jsonl"}, str(out / name))
    metrics = reward_model.pairwise_metrics(reward_model.score_pairs(RewardScorer(result.outputs["model"]), pairs))
    return {"run": name, "seconds": round(time.perf_counter() - started), **{f"val_{k}": round(v, 3) for k, v in metrics.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", required=True)
    parser.add_argument("--data", default="data")
    parser.add_argument("--runs", default='{"default": {}}', help="JSON: run name -> reward_model overrides")
    parser.add_argument("--out", default="/tmp/rm-sweep")
    args = parser.parse_args()
    pairs = validation_pairs(args.data)
    for name, overrides in json.loads(args.runs).items():
        print(json.dumps(run_one(name, overrides, args.sft, args.data, pairs, Path(args.out))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
