"""Scarce cold-start data: does round 2 beat more SFT on the references when the references are few?

    python bench/scarce_sweep.py --base artifacts/base/<key>/model [--data data] [--rows 300 3000]
    python bench/scarce_sweep.py --drills-base [--data data] [--rows 300]
    python bench/scarce_sweep.py --base ... --rows 300 --rl-prompts 3200
    python bench/scarce_sweep.py --base ... --rows 300 --arms grpo [--grpo '{"learning_rate": 2e-5}']
    python bench/scarce_sweep.py --base ... --rows 300 --seed-offsets 0 1 2

R1's cold start is a few thousand curated solutions; its RL and rejection sampling then run on far
more prompts that have answers only. The local recipe's data is the other way round (3000
reference solutions, 800 RL prompts, and a pretraining corpus half made of worked problems), so
more SFT on the references is the best teacher there and round 2 never beats its control
(tuning.md). This sweep measures the R1 shape on validation, for each N in `--rows`:

1. the cold-start SFT (params.yaml's `sft`) from the base on the first N rows of data/sft.jsonl;
2. round 2's control: `sft_round2` from that model on the same N rows;
3. round 2: rejection sampling (params.yaml's section) of that model on data/rl.jsonl, then
   `sft_round2` from it on the kept answers plus the N rows, as the flow does;

4. (`--arms grpo`) GRPO (params.yaml's `grpo`, overridden by `--grpo`) from that model on the
   same RL prompts: R1's own claim, that RL lifts the cold start, with the control beside it;
5. (`--arms distill`, with round2) the `distill` stage with round 2's model as the teacher: a
   student cut from the base learns the teacher's verified answers to the RL and reference
   prompts; the direct student learns the N references, for as many steps (the stage's own
   equal-compute yardstick): R1's claim that a small model gains more from a strong teacher's
   answers than from the data alone;

each scored greedily on the validation split (components.tuning: the held-out set is not read).
`--arms` picks which of control, round2 and grpo run (the cold start always does).
`--seed-offsets` runs it all once per offset added to every post-training seed (the base and the
data stay), then pools the differences: per validation problem, the mean over the runs, and the
claims' paired interval over problems (a problem is one unit, however many runs solved it).
`--drills-base` first pretrains a base as params.yaml's `base` does, on a corpus of arithmetic
drills only (`data.pretrain_worked_fraction: 0`): no worked word problem outside the N rows.
`--rl-prompts M` samples round 2 from M RL prompts drawn afresh (answers only, another data seed,
none of them a question of data/'s splits) instead of data/rl.jsonl's 800.
One JSON line per N, appended to `--log`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: components is importable
sys.path.insert(0, str(Path(__file__).resolve().parent))  # and so is round2_sweep, beside it

import round2_sweep  # noqa: E402

from components import accounting, base, claims, data, distill, grpo, sft  # noqa: E402
from components.artifacts import read_records, write_records  # noqa: E402

FRESH_SEED = 99  # not the data seed: --rl-prompts draws another set of problems
SEEDED = ("sft", "sft_round2", "rejection_sampling", "grpo")  # what --seed-offsets shifts: every arm's training and sampling
SEEDED_WITHIN = {"distill": ("teacher_sampling", "student_sft", "on_policy")}  # sections whose seeds are a level down
DIFFERENCES = (("round2", "control"), ("grpo", "sft"), ("grpo", "control"), ("distill", "student"))


def question(record: dict) -> str:
    """The user's question of a chat record (a prompt, or an SFT conversation)."""
    return next(m["content"] for m in record.get("prompt") or record["messages"] if m["role"] == "user")


def fresh_rl_prompts(params: dict, data_dir: Path, count: int, seed: int = FRESH_SEED) -> list[dict]:
    """`count` RL prompts drawn like data/rl.jsonl's with another seed, none of them a question of data_dir's splits."""
    taken = {question(r) for name in ("sft", "prefs", "rl", "eval", "val") for r in read_records(data_dir / f"{name}.jsonl")}
    settings = data.Config(**params["data"] | {"seed": seed, "n_rl": 2 * count, "n_pretrain": 0, "n_val": 0})
    drawn = [record for record in data.generate(settings)["rl"] if question(record) not in taken]
    if len(drawn) < count:
        raise SystemExit(f"only {len(drawn)} fresh RL prompts could be drawn, {count} asked: raise data.max_operand")
    return drawn[:count]


def cold_start_dir(data_dir: Path, rows: int, pretrain: Path, out: Path, rl: list[dict] | None = None) -> Path:
    """A data folder whose sft.jsonl is the first `rows` references (and rl.jsonl `rl`, if given); every other split is data_dir's."""
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "sft.jsonl", read_records(data_dir / "sft.jsonl")[:rows])
    if rl is not None:
        write_records(out / "rl.jsonl", rl)
    for name in ("val.jsonl", "eval.jsonl", "probe.jsonl") + (() if rl is not None else ("rl.jsonl",)):
        link = out / name
        link.unlink(missing_ok=True)
        link.symlink_to((data_dir / name).resolve())
    (out / "pretrain.jsonl").unlink(missing_ok=True)
    (out / "pretrain.jsonl").symlink_to(pretrain.resolve())
    return out


def drills_base(params: dict, data_dir: Path, out: Path) -> tuple[str, Path]:
    """A base pretrained like params.yaml's on arithmetic drills only; returns (model, its corpus)."""
    corpus = out / "pretrain_drills.jsonl"
    settings = data.Config(**params["data"] | {"pretrain_worked_fraction": 0.0})
    write_records(corpus, data.generate(settings)["pretrain"])
    trained = base.run(base.Config(**params["base"]), {"pretrain": str(corpus), "sft": str(data_dir / "sft.jsonl")}, str(out / "base"))
    return trained.outputs["model"], corpus


def shifted_seeds(params: dict, offset: int) -> dict:
    """params with the seed of every section in SEEDED (and of SEEDED_WITHIN's subsections) moved by `offset`."""

    def moved(section: dict) -> dict:
        return section | {"seed": section.get("seed", 0) + offset}

    shifted = params | {name: moved(params[name]) for name in SEEDED if name in params}
    for name, parts in SEEDED_WITHIN.items():
        if name in params:
            shifted[name] = params[name] | {part: moved(params[name].get(part, {})) for part in parts}
    return shifted


def mean_scores(outs: list[Path], arm: str) -> list[float]:
    """Per validation problem, `arm`'s greedy score averaged over the runs in `outs`."""
    runs = [read_records(out / arm / "eval" / "predictions.jsonl") for out in outs]
    if any([r["reference"] for r in run] != [r["reference"] for r in runs[0]] for run in runs):
        raise ValueError(f"{arm}: the runs in {[str(o) for o in outs]} did not score the same problems in the same order")
    return [sum(float(run[i]["greedy_correct"]) for run in runs) / len(runs) for i in range(len(runs[0]))]


def difference(outs: Path | list[Path], left: str, right: str) -> dict:
    """Arm `left` minus arm `right` on the same validation problems (their mean over runs), with the claims' paired 95% interval."""
    outs = [outs] if isinstance(outs, Path) else outs
    claim = claims.paired(f"{left} beats {right}", f"val pass@1: {left} - {right}", mean_scores(outs, left), mean_scores(outs, right))
    return {"effect": round(claim.effect, 3), "interval": [round(claim.low, 3), round(claim.high, 3)], "holds": claim.holds}


def grpo_arm(cold_start: str, folder: Path, params: dict, overrides: dict, out: Path) -> dict:
    """GRPO from the cold start on the folder's RL prompts, scored greedily on validation; its training curves' tails."""
    started = time.perf_counter()
    cfg = grpo.Config(**params["grpo"] | overrides)
    trained = grpo.run(cfg, {"model": cold_start, "rl": str(folder / "rl.jsonl")}, str(out / "grpo" / "train"))
    score = round2_sweep.greedy_score(trained.outputs["model"], str(folder), out / "grpo" / "eval")
    shown = ("final_reward", "final_kl", "final_frac_reward_zero_std", "final_completions_mean_length")
    return {
        "grpo": overrides,
        "grpo_val_pass@1": round(score, 3),
        "grpo_training": {key: round(trained.metrics[key], 3) for key in shown if key in trained.metrics},
        "grpo_seconds": round(time.perf_counter() - started),
    }


def distill_arm(teacher: str, base_model: str, pretrain: Path, folder: Path, params: dict, out: Path) -> dict:
    """The distill stage from `teacher` on the folder's prompts, and its direct student on the folder's references, scored on validation."""
    started = time.perf_counter()
    inputs = {
        "teacher": teacher,
        "base": base_model,
        "pretrain": str(pretrain),
        "rl": str(folder / "rl.jsonl"),
        "sft": str(folder / "sft.jsonl"),
    }
    with accounting.metered():  # the stage counts the tokens each student trained on through the open meter
        trained = distill.run(distill.Config(**params["distill"]), inputs, str(out / "distill" / "train"))
    students = {"distill": trained.outputs["model"], "student": trained.outputs["baseline_model"]}
    scores = {arm: round2_sweep.greedy_score(model, str(folder), out / arm / "eval") for arm, model in students.items()}
    shown = ("teacher_kept", "teacher_verified_correct_rate", "distilled_tokens_trained", "baseline_tokens_trained")
    return {
        "distill_val_pass@1": round(scores["distill"], 3),
        "student_val_pass@1": round(scores["student"], 3),
        "distill_training": {key: trained.metrics[key] for key in shown if key in trained.metrics},
        "distill_seconds": round(time.perf_counter() - started),
    }


def sweep_rows(rows: int, base_model: str, pretrain: Path, params: dict, args, out: Path) -> dict:
    started = time.perf_counter()
    rl = fresh_rl_prompts(params, Path(args.data), args.rl_prompts) if args.rl_prompts else None
    folder = cold_start_dir(Path(args.data), rows, pretrain, out / "data", rl)
    cfg = sft.Config(**params["sft"])
    replay = {"replay": str(pretrain)} if cfg.replay_weight else {}
    trained = sft.run(cfg, {"model": base_model, "sft": str(folder / "sft.jsonl")} | replay, str(out / "sft"))
    cold_start = trained.outputs["model"]
    result = {
        "rows": rows,
        "rl_prompts": len(read_records(folder / "rl.jsonl")),
        "base": base_model,
        "sft_val_pass@1": round(round2_sweep.greedy_score(cold_start, str(folder), out / "sft" / "eval"), 3),
    }
    bench_args = SimpleNamespace(policy=cold_start, data=str(folder), reward_model=None)
    if "control" in args.arms:
        control = round2_sweep.train_and_score(cold_start, str(folder / "sft.jsonl"), params, bench_args, out / "control")
        result["control_val_pass@1"] = round(control, 3)
    if "round2" in args.arms:
        round2 = round2_sweep.run_one("round2", {}, params, bench_args, out)
        result["round2_val_pass@1"] = round2.pop("val_pass@1")
        result["rejection_sampling"] = {k: v for k, v in round2.items() if k not in ("run", "seconds")}
    if "grpo" in args.arms:
        result |= grpo_arm(cold_start, folder, params, args.grpo, out)
    if "distill" in args.arms:
        teacher = round2_sweep.trained_model(out / "round2")
        result |= distill_arm(str(teacher), base_model, pretrain, folder, params, out)
    result |= {f"{left}_minus_{right}": difference(out, left, right) for left, right in compared(args.arms)}
    return result | {"seconds": round(time.perf_counter() - started)}


def compared(arms: list[str]) -> list[tuple[str, str]]:
    """The differences the arms run give (the cold start, `sft`, always runs; `distill` trains the direct `student` too)."""
    scored = {"sft", *arms} | ({"student"} if "distill" in arms else set())
    return [(left, right) for left, right in DIFFERENCES if {left, right} <= scored]


def log(result: dict, path: str) -> None:
    print(json.dumps(result), flush=True)
    with open(path, "a") as file:
        file.write(json.dumps(result) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="the base model every cold start trains from (else --drills-base)")
    parser.add_argument("--drills-base", action="store_true", help="pretrain a base on arithmetic drills only first")
    parser.add_argument("--data", default="data")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rows", type=int, nargs="+", default=[300])
    parser.add_argument("--rl-prompts", type=int, help="round 2 samples this many fresh RL prompts (else data/rl.jsonl)")
    parser.add_argument("--arms", nargs="+", choices=("control", "round2", "grpo", "distill"), default=["control", "round2"])
    parser.add_argument("--grpo", default="{}", help="JSON overrides of params.yaml's grpo section for the grpo arm")
    parser.add_argument("--seed-offsets", type=int, nargs="+", default=[0], help="one run per offset of the post-training seeds, pooled")
    parser.add_argument("--out", default="/tmp/scarce-sweep")
    parser.add_argument("--log", default="bench/results/scarce_sweep_val.jsonl")
    args = parser.parse_args()
    if bool(args.base) == args.drills_base:
        parser.error("give --base or --drills-base (one of them)")
    if "distill" in args.arms and "round2" not in args.arms:
        parser.error("--arms distill needs round2: round 2's model is the teacher")
    try:  # before any training: a typo here would otherwise surface after the cold start's minutes
        args.grpo = json.loads(args.grpo)
    except json.JSONDecodeError as error:
        parser.error(f"--grpo {args.grpo!r} is not JSON: {error}")
    if not isinstance(args.grpo, dict):
        parser.error(f"--grpo {json.dumps(args.grpo)}: give a JSON object of grpo fields, e.g. '{{\"learning_rate\": 3e-5}}'")
    params = yaml.safe_load(Path(args.params).read_text())
    out = Path(args.out)
    if args.drills_base:
        base_model, pretrain = drills_base(params, Path(args.data), out)
    else:
        base_model, pretrain = args.base, Path(args.data) / "pretrain.jsonl"
    for rows in args.rows:
        outs = [out / f"rows{rows}" / f"seed{offset}" for offset in args.seed_offsets]
        for offset, run_dir in zip(args.seed_offsets, outs, strict=True):
            result = sweep_rows(rows, base_model, pretrain, shifted_seeds(params, offset), args, run_dir)
            log(result | {"drills_base": args.drills_base, "seed_offset": offset}, args.log)
        if len(outs) > 1:
            pooled = {f"{left}_minus_{right}": difference(outs, left, right) for left, right in compared(args.arms)}
            log({"rows": rows, "seed_offsets": args.seed_offsets, "pooled": pooled}, args.log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
