"""Pretraining replay against forgetting, in SFT or in DPO: the probe and pass@1 after each setting, side by side.

    python bench/replay_sweep.py --base artifacts/base/<key>/model [--data data] \\
        [--runs '{"w0": {}, "w0.5": {"replay_weight": 0.5}}'] [--params params.yaml]
    python bench/replay_sweep.py --stage alignment --base artifacts/sft_round2/<key>/model \\
        --prefs artifacts/rejection_sampling/<key>/pairs.jsonl --runs '{...}'
    python bench/replay_sweep.py --stage distill --base artifacts/base/<key>/model \\
        --teacher artifacts/alignment/<key>/model --reuse artifacts/distill/<key> --runs '{...}'

Each run trains the same start (`--base`: the base model for SFT, the round-2 model for DPO)
with params.yaml's `sft` (or `alignment.dpo`) section, overridden by the run, replaying
data/pretrain.jsonl when the run sets replay_weight, and evaluates greedily on the
validation split (pass@1: did it learn the format) and on a *validation probe*: bare sums and
differences drawn like the held-out probe with another seed, none of them in it (did it keep
the arithmetic). Neither the held-out eval set nor the held-out probe is read
(components.tuning refuses both). One JSON line per run; the choice behind params.yaml's
replay_weight is in bench/results/replay_sweep.jsonl and tuning.md.

`--stage distill` runs the whole distillation stage from the base with the run's settings for
`distill.student_sft` and scores both students, the distilled one (`val_*`) and the directly
trained one (`direct_val_*`). `--reuse` hands every run a finished distill folder's teacher
answers and healed student, which the runs do not change, so they are not drawn and healed again.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import yaml

from components import alignment, data, distill, evaluate, sft
from components.artifacts import read_records, write_records

SEED = 1_000  # not the data seed: the held-out probe was drawn from that one


def validation_probe(data_dir: str, out: Path, n: int = 200, task: data.Config | None = None) -> str:
    """`n` bare sums and differences drawn with another seed; none of the held-out probe's prompts.

    `task`: the data settings the probe's operands follow (the default task's when not given)."""
    held_out = {record["prompt"] for record in read_records(Path(data_dir) / "probe.jsonl")}
    drawn = data.arithmetic_probe(random.Random(SEED), (task or data.Config()).model_copy(update={"n_probe": n + len(held_out)}))
    path = out / "val_probe.jsonl"
    write_records(path, [probe for probe in drawn if probe["prompt"] not in held_out][:n])
    return str(path)


def reuse_distill_folder(finished: str, out: Path) -> None:
    """A finished distill run's teacher answers and healed student, copied where the stage looks for an interrupted run's."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("teacher_sft.jsonl", "teacher_stats.json"):
        shutil.copy(Path(finished) / name, out / name)
    if (Path(finished) / "student-healed" / "healed.json").is_file():
        shutil.copytree(Path(finished) / "student-healed", out / "student-healed", dirs_exist_ok=True)


def train(stage: str, overrides: dict, defaults: dict, base: str, data_dir: str, prefs: str | None, out: Path, args=None):
    """One run of the SFT stage (on data/sft.jsonl), the DPO stage (on `prefs`) from `base`, or the distill stage."""
    settings = defaults | overrides
    if stage == "distill":
        cfg = distill.Config(**(args.distill_params | {"student_sft": settings}))
        inputs = {"teacher": args.teacher, "base": base, "sft": f"{data_dir}/sft.jsonl", "rl": f"{data_dir}/rl.jsonl"}
        if cfg.corpus_knobs():
            inputs["pretrain"] = f"{data_dir}/pretrain.jsonl"
        if args.reuse:
            reuse_distill_folder(args.reuse, out)
        return distill.run(cfg, inputs, str(out))
    if stage == "sft":
        cfg, run, inputs = sft.Config(**settings), sft.run, {"model": base, "sft": f"{data_dir}/sft.jsonl"}
    else:
        cfg, run, inputs = alignment.Config(pairs="on_policy", dpo=settings), alignment.run, {"model": base, "prefs": prefs}
    if settings.get("replay_weight"):
        inputs["replay"] = f"{data_dir}/pretrain.jsonl"
    return run(cfg, inputs, str(out))


def run_one(name: str, overrides: dict, defaults: dict, args, probe: str, out: Path) -> dict:
    started = time.perf_counter()
    result = train(args.stage, overrides, defaults, args.base, args.data, args.prefs, out / name, args)
    train_seconds = time.perf_counter() - started
    # distill: both students, the distilled one (`model`) and the directly trained yardstick (`baseline_model`)
    models = {"": result.outputs["model"]} | ({"direct_": result.outputs["baseline_model"]} if args.stage == "distill" else {})
    row = {"run": name, **overrides, f"{args.stage}_seconds": round(train_seconds)}
    for prefix, model in models.items():
        row |= {prefix + key: value for key, value in validation_scores(model, args.data, out / name / f"{prefix}eval", probe).items()}
    return row


def validation_scores(model: str, data_dir: str, out: Path, probe: str, limit: int | None = None) -> dict[str, float]:
    """Greedy pass@1 on the validation split (its first `limit` problems) and accuracy on the validation probe (never the held-out files)."""
    greedy = evaluate.Config.greedy_only(limit=limit)
    metrics = evaluate.evaluate_for_tuning(greedy, model, data_dir, out, {"probe": probe}).metrics
    return {f"val_{key}": round(metrics[key], 3) for key in ("pass@1", "probe_accuracy")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage", choices=("sft", "alignment", "distill"), default="sft", help="replay in the SFT stage, the DPO pass or both students"
    )
    parser.add_argument(
        "--base", required=True, help="the model every run starts from (the base for SFT and distill, the round-2 model for DPO)"
    )
    parser.add_argument("--teacher", help="distill: the teacher (the final model)")
    parser.add_argument("--reuse", help="distill: a finished distill folder whose teacher answers and healed student every run reuses")
    parser.add_argument("--prefs", help="alignment: the preference pairs (rejection sampling's pairs.jsonl)")
    parser.add_argument("--data", default="data")
    parser.add_argument(
        "--params", default="params.yaml", help="its `sft` (`alignment.dpo`, `distill.student_sft`) section is every run's defaults"
    )
    parser.add_argument("--runs", default='{"none": {"replay_weight": 0}, "w1": {"replay_weight": 1.0}}')
    parser.add_argument("--out", default="/tmp/replay-sweep")
    args = parser.parse_args()
    if args.stage == "alignment" and not args.prefs:
        parser.error("--stage alignment needs --prefs (the pairs the DPO pass trains on)")
    if args.stage == "distill" and not args.teacher:
        parser.error("--stage distill needs --teacher (the model the students learn from)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load(Path(args.params).read_text())
    args.distill_params = params["distill"]
    defaults = {"sft": params["sft"], "alignment": params["alignment"]["dpo"], "distill": params["distill"]["student_sft"]}[args.stage]
    probe = validation_probe(args.data, out)
    # SFT's start (the base) only needs its probe, and evaluate wants an eval set: one validation problem;
    # DPO's start (the round-2 model) gets its pass@1 too, the mark each run is judged against
    start = validation_scores(args.base, args.data, out / "start-eval", probe, limit=1 if args.stage != "alignment" else None)
    shown = ("val_probe_accuracy",) if args.stage != "alignment" else ("val_pass@1", "val_probe_accuracy")
    print(json.dumps({"run": "base" if args.stage != "alignment" else "start"} | {k: start[k] for k in shown}), flush=True)
    for name, overrides in json.loads(args.runs).items():
        print(json.dumps(run_one(name, overrides, defaults, args, probe, out)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
