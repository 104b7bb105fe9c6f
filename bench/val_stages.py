"""Every model of a finished run, scored on the validation split: the recipe's picture without the held-out set.

    python bench/val_stages.py --summary <run>/reports/summary.json [--data <run>/data] [--out val_stages.jsonl]

A run's summary names each stage's model (the distill stage's two students: `model`, the
distilled one, and `baseline_model`, the directly trained one). Each is evaluated greedily on
the validation split (pass@1) and on the validation probe of bench/replay_sweep.py (bare sums
drawn with another seed than the held-out probe), through `evaluate_for_tuning`, which refuses
the held-out files. This is how a change that moves every model (the base's shape, say) has its
downstream choices re-checked: does each stage still do on validation what it was chosen to do?
Paths in the summary are taken relative to the run's folder (`--root`, default: the nearest folder
above the summary that holds `artifacts/`, so a seed-spread run's reports/seedN/summary.json works
too). One JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: components and bench are importable

from bench.demo_bench import EVALUATED as ORDER  # noqa: E402  (the recipe's order, as the demo table)
from bench.replay_sweep import validation_probe, validation_scores  # noqa: E402

STUDENT_NAMES = {"model": "distill", "baseline_model": "student_sft"}
NOT_POLICIES = ("reward_model",)  # a scorer: its greedy answers measure nothing the recipe ships


def stage_models(summary: dict, root: Path) -> dict[str, Path]:
    """Each evaluated model of the run by the name the demo table gives it, in the recipe's order."""
    models = {}
    for stage, row in summary["stages"].items():
        outputs = row.get("outputs", {})
        if stage == "distill":
            models |= {name: root / outputs[key] for key, name in STUDENT_NAMES.items() if key in outputs}
        elif "model" in outputs and stage not in NOT_POLICIES:
            models[stage] = root / outputs["model"]
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(models.items(), key=lambda item: rank.get(item[0], len(ORDER))))


def run_folder(summary: Path) -> Path:
    """The nearest folder above the summary that holds the run's artifacts/."""
    for folder in summary.resolve().parents:
        if (folder / "artifacts").is_dir():
            return folder
    raise SystemExit(f"no artifacts/ folder above {summary}: pass the run's folder as --root")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, required=True, help="a finished run's reports/summary.json")
    parser.add_argument("--root", type=Path, help="the run's folder (default: the nearest above the summary with artifacts/)")
    parser.add_argument("--data", help="its data folder (default: <root>/data)")
    parser.add_argument("--stages", nargs="*", help="only these (default: every model)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/val-stages/val_stages.jsonl"))
    args = parser.parse_args()
    root = args.root or run_folder(args.summary)
    data_dir = args.data or str(root / "data")
    summary = json.loads(args.summary.read_text())
    models = stage_models(summary, root)
    unknown = set(args.stages or ()) - set(models)
    if unknown:
        parser.error(f"--stages {sorted(unknown)}: the run's models are {sorted(models)}")
    work = args.out.parent
    work.mkdir(parents=True, exist_ok=True)
    probe = validation_probe(data_dir, work)
    lines = [
        {
            "note": f"greedy on {data_dir}/val.jsonl and a validation probe; models of {args.summary}",
            "commit": summary["lineage"].get("git_commit", "")[:7],
        }
    ]
    for name, model in models.items():
        if args.stages and name not in args.stages:
            continue
        lines.append({"stage": name} | validation_scores(str(model), data_dir, work / name, probe))
        print(json.dumps(lines[-1]), flush=True)
    args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
