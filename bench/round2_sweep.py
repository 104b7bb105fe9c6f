"""Rejection sampling's settings, judged by the round-2 SFT they feed, on the validation split.

    python bench/round2_sweep.py --policy artifacts/grpo/<key>/model [--reward-model artifacts/reward_model/<key>/model]
        [--data data] [--params params.yaml] [--runs '{"unchecked": {"check_steps": false}, "checked": {}}'] [--control]

Each run samples the policy on data/rl.jsonl with params.yaml's `rejection_sampling` section
(overridden by the run), trains round 2 from the policy on what it kept with the `sft_round2`
section (replaying data/pretrain.jsonl as the flow does), and scores the round-2 model greedily on
the validation split: the round-2 claim, on validation; `--control` also trains round 2's control (as many steps from the
policy on the original SFT data), the claim's other side. The held-out eval set is not read
(components.tuning). One JSON line per run: the sampling's statistics, then val pass@1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from components import evaluate, rejection_sampling, sft


def greedy_score(model: str, data_dir: str, out: Path) -> float:
    """`model`'s greedy pass@1 on the validation split (its predictions land in `out`)."""
    return evaluate.evaluate_for_tuning(evaluate.Config.greedy_only(), model, data_dir, out).metrics["pass@1"]


def trained_model(out: Path) -> Path:
    """Where `train_and_score(..., out)` leaves the model it trained."""
    return out / "round2" / "model"


def train_and_score(policy: str, sft_data: str, params: dict, args, out: Path) -> float:
    """Round 2 (the `sft_round2` section) from `policy` on `sft_data`, scored greedily on validation; the model: trained_model(out)."""
    cfg = sft.Config(**params["sft_round2"])
    inputs = {"model": policy, "sft": sft_data} | ({"replay": f"{args.data}/pretrain.jsonl"} if cfg.replay_weight else {})
    trained = sft.run(cfg, inputs, str(trained_model(out).parent))
    return greedy_score(trained.outputs["model"], args.data, out / "eval")


def run_one(name: str, overrides: dict, params: dict, args, out: Path) -> dict:
    started = time.perf_counter()
    inputs = {"model": args.policy, "prompts": f"{args.data}/rl.jsonl", "sft": f"{args.data}/sft.jsonl"}
    if args.reward_model:
        inputs["reward_model"] = args.reward_model
    sampled = rejection_sampling.run(rejection_sampling.Config(**params["rejection_sampling"] | overrides), inputs, str(out / name / "rs"))
    score = train_and_score(args.policy, sampled.outputs["sft"], params, args, out / name)
    shown = ("verified_correct_rate", "wrong_step_share", "kept", "prompt_coverage", "verified_row_share", "preference_pairs")
    return (
        {"run": name, **overrides, "seconds": round(time.perf_counter() - started)}
        | {key: round(sampled.metrics[key], 3) for key in shown}
        | {"val_pass@1": round(score, 3)}
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="the model rejection sampling samples and round 2 starts from (the grpo stage's)")
    parser.add_argument("--reward-model", help="ranks the verified answers, as in the flow (else the shortest first)")
    parser.add_argument("--data", default="data")
    parser.add_argument("--params", default="params.yaml", help="its rejection_sampling and sft_round2 sections are every run's defaults")
    parser.add_argument("--runs", default='{"unchecked": {"check_steps": false}, "checked": {"check_steps": true}}')
    parser.add_argument("--control", action="store_true", help="also train round 2's control (the original SFT data only) and score it")
    parser.add_argument("--out", default="/tmp/round2-sweep")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load(Path(args.params).read_text())
    start = greedy_score(args.policy, args.data, out / "start-eval")
    print(json.dumps({"run": "policy (round 2's start)", "val_pass@1": round(start, 3)}), flush=True)
    if args.control:  # the claim's other side: as many steps from the policy on the original data
        score = train_and_score(args.policy, f"{args.data}/sft.jsonl", params, args, out / "control")
        print(json.dumps({"run": "control (original SFT data)", "val_pass@1": round(score, 3)}), flush=True)
    for name, overrides in json.loads(args.runs).items():
        print(json.dumps(run_one(name, overrides, params, args, out)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
