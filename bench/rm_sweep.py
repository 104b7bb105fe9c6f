"""Reward-model settings against the cold-start SFT model, compared on validation pairs.

    python bench/rm_sweep.py --sft artifacts/sft/<key>/model [--data data] [--runs '{"steps600": {"max_steps": 600}}']
        [--policy artifacts/alignment/<key>/model] [--trained artifacts/reward_model/<key>/model ...]

Each run trains the reward model (the `reward_model` defaults, overridden by the run) on
data/prefs.jsonl, with the SFT model's own answers to data/rl.jsonl as pairs when the run's
`on_policy_samples` is above 0, and scores preference pairs built from the validation split
(data/val.jsonl's solutions against near-misses drawn like the training pairs' rejected
answers): neither the reward model's own held-out pairs, which claims.md reports, nor the
held-out eval set is used to choose. With `--policy`, the policy's greedy answer and 8 samples
per validation problem are drawn once, and each run's reward model picks its best of 8: what
the best-of-N claim measures, on validation. `--trained` scores reward models already trained
(a pipeline run's) the same way first, without training. `--sft` is the model every run trains
from: the SFT model for the pipeline's reward model, the final policy for its verifier. One JSON
line per run.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from components import evaluate, reward_model
from components.artifacts import read_records
from components.data import corrupt_solution
from components.generation import chat_prompts, load_for_generation
from components.metrics import score_problems
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


def policy_answers(policy: str, data_dir: str) -> tuple[list[dict], list[str], list[list[str]]]:
    """The validation problems, the policy's greedy answers and its samples, as `evaluate` draws them."""
    cfg = evaluate.Config()
    problems = read_records(validation_set(data_dir))
    tokenizer, model, _, _ = load_for_generation(policy, cfg.generation_backend, cfg.seed, cfg.generation_dtype)
    greedy, samples = evaluate.sample_completions(model, tokenizer, chat_prompts(tokenizer, [p["prompt"] for p in problems]), cfg)
    return problems, greedy, samples


def best_of_n(model_dir: str, answers: tuple[list[dict], list[str], list[list[str]]]) -> dict:
    problems, greedy, samples = answers
    rewards = evaluate.reward_samples(model_dir, problems, samples, batch_size=64)
    metrics, _ = score_problems(greedy, samples, [str(p["answer"]) for p in problems], evaluate.Config().ks, rewards)
    return {
        f"policy_{k}": round(metrics[k], 3) for k in ("pass@1", "sample_accuracy", "maj@8", "bon@8", "pass@8", "reward_auc") if k in metrics
    }


def run_one(name: str, overrides: dict, sft: str, data_dir: str, pairs: list[dict], out: Path, answers=None) -> dict:
    started = time.perf_counter()
    inputs = {"model": sft, "prefs": f"{data_dir}/prefs.jsonl", "prompts": f"{data_dir}/rl.jsonl"}
    result = reward_model.run(reward_model.Config(**overrides), inputs, str(out / name))
    metrics = reward_model.pairwise_metrics(reward_model.score_pairs(RewardScorer(result.outputs["model"]), pairs))
    row = {"run": name, "seconds": round(time.perf_counter() - started), **{f"val_{k}": round(v, 3) for k, v in metrics.items()}}
    row |= {k: round(v, 3) for k, v in result.metrics.items() if k.startswith("on_policy")}
    return row | (best_of_n(result.outputs["model"], answers) if answers else {})


def score_trained(model_dir: str, pairs: list[dict], answers=None) -> dict:
    metrics = reward_model.pairwise_metrics(reward_model.score_pairs(RewardScorer(model_dir), pairs))
    row = {"run": f"trained: {model_dir}", **{f"val_{k}": round(v, 3) for k, v in metrics.items()}}
    return row | (best_of_n(model_dir, answers) if answers else {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", required=True)
    parser.add_argument("--data", default="data")
    parser.add_argument("--runs", default='{"default": {}}', help="JSON: run name -> reward_model overrides")
    parser.add_argument("--policy", help="a policy whose best-of-8 on validation each reward model picks (e.g. the final model)")
    parser.add_argument("--trained", nargs="*", default=[], help="reward models already trained, scored as they are")
    parser.add_argument("--out", default="/tmp/rm-sweep")
    args = parser.parse_args()
    pairs = validation_pairs(args.data)
    answers = policy_answers(args.policy, args.data) if args.policy else None
    for model_dir in args.trained:
        print(json.dumps(score_trained(model_dir, pairs, answers)), flush=True)
    for name, overrides in json.loads(args.runs).items():
        print(json.dumps(run_one(name, overrides, args.sft, args.data, pairs, Path(args.out), answers)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
