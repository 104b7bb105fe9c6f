"""How hard the local task is: for each data setting, new data, a new base and the cold-start SFT, scored on validation.

    python bench/task_sweep.py --runs '{"ops3-6": {"min_steps": 3, "max_steps": 6}}' \\
        [--sft '{"max_steps": 600}'] [--seeds 1 2] [--params params.yaml] [--out /tmp/task-sweep]
    python bench/task_sweep.py --runs '{"task": {}}' --base '{"learning_rate": 0.002}' --base-seeds 0 1 2 --sft '{}' --seeds 0
    python bench/task_sweep.py --runs '{"op999": {"max_operand": 999}}' --base '{"steps": 3600}' --base-seeds 0 --seeds

The task's difficulty (operations per problem, operand size) changes every dataset, so each run
draws its own data from params.yaml's `data` section overridden by the run, pretrains its own
base on it with params.yaml's `base`, and trains the cold-start SFT (params.yaml's `sft`,
overridden by `--sft`) once per SFT seed (bench/replay_sweep.py's training and scoring). Every
model is scored greedily on that run's validation split and on a validation probe drawn with the
run's operands, never on the held-out files. The SFT with enough steps to be seed-stable ends close to where the whole recipe's final
model ends (tuning.md), so its validation pass@1 is what a setting is judged by: issue 16 wants
the final model between 0.5 and 0.8. One JSON line per model.

The base's schedule is swept the same way: `--base` overrides params.yaml's base section, and
`--base-seeds` pretrains one base per seed on the run's data (each with its own SFTs), because
whether the local base learns arithmetic depends on its seed (tuning.md, "Every choice above is
one base's"): a schedule is judged by its worst base seed. `--seeds` with no seed screens the
bases alone (their loss and validation probe), without the SFTs' time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: components and bench are importable

from bench import replay_sweep  # noqa: E402
from bench.replay_sweep import validation_probe, validation_scores  # noqa: E402
from components import base, data  # noqa: E402


def draw_data(overrides: dict, defaults: dict, out: Path) -> tuple[str, data.Config]:
    task = data.Config(**(defaults | overrides | {"out_dir": str(out / "data")}))
    data.run(task)
    return task.out_dir, task


def pretrain_base(settings: dict, data_dir: str, out: Path) -> tuple[str, dict]:
    """The base's model folder, and its pretraining seconds and final loss for the row."""
    started = time.perf_counter()
    inputs = {kind: f"{data_dir}/{kind}.jsonl" for kind in ("pretrain", "sft", "val")}  # val: the base checks its sums (restarts)
    result = base.run(base.Config(**settings), inputs, str(out))
    return result.outputs["model"], {
        "base_seconds": round(time.perf_counter() - started),
        "base_final_loss": round(result.metrics["final_loss"], 4),
        # the loss every 200 steps (the curve has one every 10): where a base leaves the plateau, if it does
        "base_loss_every_200": [round(loss, 3) for loss in result.curves["pretrain_loss"][19::20]],
        "base_tries": result.info.get("tries", []),  # each pretraining's seed and validation sums (base.restarts)
    }


def sweep_one(
    name: str,
    overrides: dict,
    params: dict,
    sft_overrides: dict,
    seeds: list[int],
    out: Path,
    base_overrides: dict | None = None,
    base_seeds: list[int] | None = None,
):
    """Yield, for each base (params.yaml's base seed, or each of `base_seeds`), one row for it, then one per SFT seed."""
    data_dir, task = draw_data(overrides, params["data"], out)
    probe = validation_probe(data_dir, out, task=task)  # sums with the run's own operands
    base_overrides = base_overrides or {}
    for base_seed in base_seeds or [None]:
        settings = params["base"] | base_overrides | ({} if base_seed is None else {"seed": base_seed})
        tag = "" if base_seed is None else f"-base{base_seed}"  # one base per folder
        named = {"run": name, "task": overrides} | ({"base": base_overrides} if base_overrides else {})
        named |= {"base_seed": base_seed} if base_seeds else {}
        model, pretraining = pretrain_base(settings, data_dir, out / f"base{tag}")
        # the base only needs its probe; evaluate wants an eval set, so one validation problem
        base_probe = validation_scores(model, data_dir, out / f"base{tag}-eval", probe, limit=1)["val_probe_accuracy"]
        yield named | {"model": "base", **pretraining, "val_probe_accuracy": base_probe}
        for seed in seeds:
            started = time.perf_counter()
            sft_model = replay_sweep.train(
                "sft", sft_overrides | {"seed": seed}, params["sft"], model, data_dir, None, out / f"sft{tag}-seed{seed}"
            )
            sft_seconds = round(time.perf_counter() - started)
            scores = validation_scores(sft_model.outputs["model"], data_dir, out / f"sft{tag}-seed{seed}-eval", probe)
            yield named | {"model": "sft", "sft": sft_overrides, "sft_seed": seed, "sft_seconds": sft_seconds, **scores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help='{"name": {data overrides}, ...}')
    parser.add_argument("--sft", default='{"max_steps": 600}', help="overrides of params.yaml's sft section for every SFT")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2], help="the SFT seeds, for each base (none: the bases only)")
    parser.add_argument("--base", default="{}", help="overrides of params.yaml's base section for every base")
    parser.add_argument("--base-seeds", type=int, nargs="+", help="pretrain one base per seed (default: params.yaml's base seed)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="/tmp/task-sweep")
    args = parser.parse_args()
    params = yaml.safe_load(Path(args.params).read_text())
    for name, overrides in json.loads(args.runs).items():
        out = Path(args.out) / name
        out.mkdir(parents=True, exist_ok=True)
        rows = sweep_one(name, overrides, params, json.loads(args.sft), args.seeds, out, json.loads(args.base), args.base_seeds)
        for row in rows:
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
