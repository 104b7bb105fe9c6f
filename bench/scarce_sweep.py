"""Scarce cold-start data: does round 2 beat more SFT on the references when the references are few?

    python bench/scarce_sweep.py --base artifacts/base/<key>/model [--data data] [--rows 300 3000]
    python bench/scarce_sweep.py --drills-base [--data data] [--rows 300]
    python bench/scarce_sweep.py --base ... --rows 300 --rl-prompts 3200

R1's cold start is a few thousand curated solutions; its RL and rejection sampling then run on far
more prompts that have answers only. The local recipe's data is the other way round (3000
reference solutions, 800 RL prompts, and a pretraining corpus half made of worked problems), so
more SFT on the references is the best teacher there and round 2 never beats its control
(tuning.md). This sweep measures the R1 shape on validation, for each N in `--rows`:

1. the cold-start SFT (params.yaml's `sft`) from the base on the first N rows of data/sft.jsonl;
2. round 2's control: `sft_round2` from that model on the same N rows;
3. round 2: rejection sampling (params.yaml's section) of that model on data/rl.jsonl, then
   `sft_round2` from it on the kept answers plus the N rows, as the flow does;

each scored greedily on the validation split (components.tuning: the held-out set is not read).
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

from components import base, claims, data, sft  # noqa: E402
from components.artifacts import read_records, write_records  # noqa: E402

FRESH_SEED = 99  # not the data seed: --rl-prompts draws another set of problems


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


def round2_over_control(out: Path) -> dict:
    """Round 2 minus its control on the same validation problems, with the claims' paired 95% interval."""
    scores = {arm: claims.greedy_scores(str(out / arm / "eval" / "predictions.jsonl")) for arm in ("round2", "control")}
    claim = claims.paired("round 2 beats its control", "val pass@1: round2 - control", scores["round2"], scores["control"])
    return {"effect": round(claim.effect, 3), "interval": [round(claim.low, 3), round(claim.high, 3)], "holds": claim.holds}


def sweep_rows(rows: int, base_model: str, pretrain: Path, params: dict, args, out: Path) -> dict:
    started = time.perf_counter()
    rl = fresh_rl_prompts(params, Path(args.data), args.rl_prompts) if args.rl_prompts else None
    folder = cold_start_dir(Path(args.data), rows, pretrain, out / "data", rl)
    cfg = sft.Config(**params["sft"])
    replay = {"replay": str(pretrain)} if cfg.replay_weight else {}
    trained = sft.run(cfg, {"model": base_model, "sft": str(folder / "sft.jsonl")} | replay, str(out / "sft"))
    cold_start = trained.outputs["model"]
    bench_args = SimpleNamespace(policy=cold_start, data=str(folder), reward_model=None)
    control = round2_sweep.train_and_score(cold_start, str(folder / "sft.jsonl"), params, bench_args, out / "control")
    round2 = round2_sweep.run_one("round2", {}, params, bench_args, out)
    return {
        "rows": rows,
        "rl_prompts": len(read_records(folder / "rl.jsonl")),
        "base": base_model,
        "sft_val_pass@1": round(round2_sweep.greedy_score(cold_start, str(folder), out / "sft-eval"), 3),
        "control_val_pass@1": round(control, 3),
        "round2_val_pass@1": round2.pop("val_pass@1"),
        "round2_minus_control": round2_over_control(out),
        "rejection_sampling": {k: v for k, v in round2.items() if k not in ("run", "seconds")},
        "seconds": round(time.perf_counter() - started),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="the base model every cold start trains from (else --drills-base)")
    parser.add_argument("--drills-base", action="store_true", help="pretrain a base on arithmetic drills only first")
    parser.add_argument("--data", default="data")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rows", type=int, nargs="+", default=[300])
    parser.add_argument("--rl-prompts", type=int, help="round 2 samples this many fresh RL prompts (else data/rl.jsonl)")
    parser.add_argument("--out", default="/tmp/scarce-sweep")
    parser.add_argument("--log", default="bench/results/scarce_sweep_val.jsonl")
    args = parser.parse_args()
    if bool(args.base) == args.drills_base:
        parser.error("give --base or --drills-base (one of them)")
    params = yaml.safe_load(Path(args.params).read_text())
    out = Path(args.out)
    if args.drills_base:
        base_model, pretrain = drills_base(params, Path(args.data), out)
    else:
        base_model, pretrain = args.base, Path(args.data) / "pretrain.jsonl"
    for rows in args.rows:
        result = sweep_rows(rows, base_model, pretrain, params, args, out / f"rows{rows}") | {"drills_base": args.drills_base}
        print(json.dumps(result), flush=True)
        with open(args.log, "a") as log:
            log.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
