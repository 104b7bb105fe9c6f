"""Pretraining replay in SFT against forgetting: the probe and pass@1 after each setting, side by side.

    python bench/replay_sweep.py --base artifacts/base/<key>/model [--data data] \\
        [--runs '{"w0": {}, "w0.5": {"replay_weight": 0.5}}'] [--params params.yaml]

Each run fine-tunes the same base with the `sft` section of params.yaml (overridden by the run),
replaying data/pretrain.jsonl when the run sets replay_weight, and evaluates greedily on the
validation split (pass@1: did it learn the format) and on a *validation probe*: bare sums and
differences drawn like the held-out probe with another seed, none of them in it (did it keep
the arithmetic). Neither the held-out eval set nor the held-out probe is read
(components.tuning refuses both). One JSON line per run; the choice behind params.yaml's
replay_weight is in bench/results/replay_sweep.jsonl and tuning.md.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import yaml

from components import data, evaluate, sft
from components.artifacts import read_records, write_records

SEED = 1_000  # not the data seed: the held-out probe was drawn from that one


def validation_probe(data_dir: str, out: Path, n: int = 200) -> str:
    """`n` bare sums and differences drawn with another seed; none of the held-out probe's prompts."""
    held_out = {record["prompt"] for record in read_records(Path(data_dir) / "probe.jsonl")}
    drawn = data.arithmetic_probe(random.Random(SEED), data.Config(n_probe=n + len(held_out)))
    path = out / "val_probe.jsonl"
    write_records(path, [probe for probe in drawn if probe["prompt"] not in held_out][:n])
    return str(path)


def run_one(name: str, overrides: dict, defaults: dict, base: str, data_dir: str, probe: str, out: Path) -> dict:
    started = time.perf_counter()
    cfg = sft.Config(**(defaults | overrides))
    inputs = {"model": base, "sft": f"{data_dir}/sft.jsonl"}
    if cfg.replay_weight:
        inputs["replay"] = f"{data_dir}/pretrain.jsonl"
    result = sft.run(cfg, inputs, str(out / name))
    train_seconds = time.perf_counter() - started
    greedy = evaluate.Config(num_samples=1, ks=[1])
    metrics = evaluate.evaluate_for_tuning(greedy, result.outputs["model"], data_dir, out / name / "eval", {"probe": probe}).metrics
    return {"run": name, **overrides, "sft_seconds": round(train_seconds)} | {
        f"val_{key}": round(metrics[key], 3) for key in ("pass@1", "probe_accuracy")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the base model every run fine-tunes")
    parser.add_argument("--data", default="data")
    parser.add_argument("--params", default="params.yaml", help="its `sft` section is every run's defaults")
    parser.add_argument("--runs", default='{"none": {"replay_weight": 0}, "w1": {"replay_weight": 1.0}}')
    parser.add_argument("--out", default="/tmp/replay-sweep")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    defaults = yaml.safe_load(Path(args.params).read_text())["sft"]
    probe = validation_probe(args.data, out)
    # the base only needs its probe; evaluate wants an eval set, so it reads one validation problem
    base_probe = evaluate.evaluate_for_tuning(
        evaluate.Config(num_samples=1, ks=[1], limit=1), args.base, args.data, out / "base-eval", {"probe": probe}
    ).metrics["probe_accuracy"]
    print(json.dumps({"run": "base", "val_probe_accuracy": round(base_probe, 3)}), flush=True)
    for name, overrides in json.loads(args.runs).items():
        print(json.dumps(run_one(name, overrides, defaults, args.base, args.data, probe, out)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
