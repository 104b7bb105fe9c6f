"""Evaluate stage: held-out accuracy of any model, greedy and with test-time sampling.

Metrics on the eval set (answers checked with the strict extractor + math-verify):
- pass@1: greedy decoding, one answer per problem;
- pass@k: unbiased estimator (Chen et al. 2021) from n sampled completions per problem;
- maj@k: self-consistency, the most frequent extracted answer among the first k samples;
- sample_accuracy: mean correctness of single samples (pass@1 under sampling);
- format_rate, mean_length (tokens of the greedy response);
- probe_accuracy: bare arithmetic (`23+15=`), the base capability later stages must keep.

    python -m components.evaluate --params params.yaml --model PATH --out reports/eval/manual
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from math import comb
from pathlib import Path

from pydantic import Field, model_validator

from components.answers import extract_answer, is_correct
from components.artifacts import read_records, write_json, write_records
from components.config import StageResult, StrictModel, load_section
from components.generation import chat_prompts, generate
from components.modeling import load_model, load_tokenizer


class EvaluateConfig(StrictModel):
    max_new_tokens: int = Field(96, ge=1, le=4096)
    num_samples: int = Field(8, ge=1, le=256, description="sampled completions per problem (n)")
    ks: list[int] = Field([1, 4, 8], description="k values for pass@k and maj@k; each <= num_samples")
    temperature: float = Field(0.6, gt=0, le=2.0, description="sampling temperature (greedy is always run too)")
    top_p: float = Field(1.0, gt=0, le=1.0)
    batch_size: int = Field(64, ge=1, description="sequences per generate call")
    limit: int | None = Field(None, ge=1, description="evaluate only the first N problems")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> EvaluateConfig:
        too_big = [k for k in self.ks if k > self.num_samples or k < 1]
        if too_big:
            raise ValueError(f"ks {too_big} must be between 1 and num_samples ({self.num_samples})")
        return self


Config = EvaluateConfig  # the stage contract's name for it


# ---------------------------------------------------------------- estimators


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: probability that at least one of k draws (of n, c correct) is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_answer(answers: list[str | None]) -> str | None:
    """Most frequent non-empty answer; ties go to the answer seen first."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


# ---------------------------------------------------------------- evaluation


def score_problems(greedy: list[str], samples: list[list[str]], references: list[str], ks: list[int]) -> tuple[dict, list[dict]]:
    """Per-problem records and the aggregate metrics of the eval set."""
    rows, totals = [], Counter()
    for response, sampled, reference in zip(greedy, samples, references, strict=True):
        answer = extract_answer(response)
        sample_answers = [extract_answer(s) for s in sampled]
        correct = [is_correct(a, reference) for a in sample_answers]
        row = {"reference": reference, "greedy": response, "greedy_answer": answer, "greedy_correct": is_correct(answer, reference)}
        row["sample_answers"], row["sample_correct"] = sample_answers, correct
        rows.append(row)
        totals["pass@1"] += row["greedy_correct"]
        totals["format_rate"] += answer is not None
        totals["sample_accuracy"] += sum(correct) / len(correct)
        for k in ks:
            # pass@1 is the greedy headline; its sampled estimate is sample_accuracy.
            if k > 1:
                totals[f"pass@{k}"] += pass_at_k(len(correct), sum(correct), k)
            totals[f"maj@{k}"] += is_correct(majority_answer(sample_answers[:k]), reference)
    n = max(1, len(rows))
    return {name: value / n for name, value in totals.items()}, rows


def probe_accuracy(model, tokenizer, probes: list[dict], cfg: Config) -> float:
    prompts = [p["prompt"] for p in probes]
    outputs = generate(model, tokenizer, prompts, max_new_tokens=8, batch_size=cfg.batch_size, desc="probe")
    hits = sum(o[0].strip().split()[0:1] == [p["answer"]] for o, p in zip(outputs, probes, strict=True))
    return hits / max(1, len(probes))


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Evaluate `inputs["model"]` on `inputs["eval"]` (and `inputs["probe"]` when given)."""
    start = time.perf_counter()
    tokenizer, model = load_tokenizer(inputs["model"]), load_model(inputs["model"])
    problems = read_records(inputs["eval"])[: cfg.limit]
    prompts = chat_prompts(tokenizer, [p["prompt"] for p in problems])
    references = [str(p["answer"]) for p in problems]

    greedy = [o[0] for o in generate(model, tokenizer, prompts, cfg.max_new_tokens, batch_size=cfg.batch_size, desc="greedy")]
    samples = generate(
        model,
        tokenizer,
        prompts,
        cfg.max_new_tokens,
        num_samples=cfg.num_samples,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        desc=f"sampling n={cfg.num_samples}",
    )
    metrics, rows = score_problems(greedy, samples, references, cfg.ks)
    metrics["mean_length"] = sum(len(tokenizer(g, add_special_tokens=False)["input_ids"]) for g in greedy) / max(1, len(greedy))
    metrics["n_problems"] = float(len(problems))
    if inputs.get("probe"):
        metrics["probe_accuracy"] = probe_accuracy(model, tokenizer, read_records(inputs["probe"]), cfg)

    out = Path(out_dir)
    write_records(out / "predictions.jsonl", rows)
    write_json(out / "metrics.json", metrics)
    return StageResult(
        stage="evaluate",
        outputs={"predictions": str(out / "predictions.jsonl"), "metrics": str(out / "metrics.json")},
        metrics=metrics,
        info={"model": inputs["model"]},
        wall_seconds=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--model", required=True)
    parser.add_argument("--eval", default="data/eval.jsonl")
    parser.add_argument("--probe", default="data/probe.jsonl")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "evaluate", Config, args.profile)
    result = run(cfg, {"model": args.model, "eval": args.eval, "probe": args.probe}, args.out)
    print(result.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
