"""Screen base pretrainings by where they leave the plateau: each seed pretrained to base.abandon_at of its schedule.

    python bench/base_screen.py --seeds 0 1000 2000 [--data '{"pretrain_worked_fraction": 0.2}'] [--base '{}'] \\
        [--name drills80] [--out bench/results/base_screen_val.jsonl]

Whether the local base learns to add is a lottery over its seed (tuning.md): a learning base
answers most validation sums by half its schedule and a stuck one under a tenth, which is the
base stage's own abandon rule. So a corpus or schedule is screened by the sums each seed answers
every base.probe_every steps up to base.abandon_at of its steps, at half a pretraining's cost,
with the schedule (warm-up, cosine) of the whole one. Data from params.yaml's `data` section
overridden by `--data`, the base from its `base` section overridden by `--base`; the validation
split's sums only, never the held-out files. One JSON line per seed, printed and appended to `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: components is importable

from components import base, data  # noqa: E402
from components.modeling import cpu_model, math_settings  # noqa: E402
from components.versioning import git_commit  # noqa: E402


def screen(name: str, data_overrides: dict, base_overrides: dict, seeds: list[int], params: dict, work: Path):
    """Yield one row per seed: its validation sums by step up to abandon_at, and its loss every 200 steps."""
    task = data.Config(**(params["data"] | data_overrides | {"out_dir": str(work / "data")}))
    data.run(task)
    inputs = {kind: f"{task.out_dir}/{kind}.jsonl" for kind in ("pretrain", "sft", "val")}
    # abandon_below 1.0: every try is stopped at the first check at or past abandon_at, as a stuck one would be
    cfg = base.Config(**(params["base"] | base_overrides | {"abandon_below": 1.0}))
    tokenizer, texts, probes = base.pretraining_inputs(cfg, inputs)
    # the same seed can learn on one CPU and not on another (tuning.md): each row names where it ran
    machine = {"cpu": cpu_model(), "cpu_flags": math_settings().get("cpu_flags"), "commit": git_commit(REPO, short=True)}
    for seed in seeds:
        started = time.perf_counter()
        tried = base.pretrain_once(cfg, tokenizer, texts, probes, seed, may_abandon=True)
        yield {
            "run": name,
            "data": data_overrides,
            "base": base_overrides,
            "seed": seed,
            "val_sums_by_step": tried["val_probe_curve"],
            "loss_every_200": [round(loss, 3) for loss in tried["curve"][19::20]],
            "seconds": round(time.perf_counter() - started),
            **machine,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--data", default="{}", help="overrides of params.yaml's data section")
    parser.add_argument("--base", default="{}", help="overrides of params.yaml's base section")
    parser.add_argument("--name", default="screen")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/base_screen_val.jsonl")
    args = parser.parse_args()
    params = yaml.safe_load(Path(args.params).read_text())
    with tempfile.TemporaryDirectory(prefix="base-screen-") as work:
        for row in screen(args.name, json.loads(args.data), json.loads(args.base), args.seeds, params, Path(work)):
            print(json.dumps(row), flush=True)
            with args.out.open("a") as out:
                out.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
