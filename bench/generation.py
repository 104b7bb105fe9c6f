"""Generation throughput: batched, left-padded, KV-cached against one prompt at a time, in one run.

    python bench/generation.py [--prompts 64] [--max-new-tokens 48] [--out bench/results/generation.json]
        [--model artifacts/sft/<key>/model --data data --batch-sizes 64 128 256 512]

The model is the local profile's base shape, pretrained here for a few steps on the local data
(random weights would write until max_new_tokens every time); the prompts are validation problems
in its chat template (timing reads no held-out problem). Both ways call components.generation.generate, the function evaluation,
rejection sampling and distillation use (GRPO's rollouts are TRL's, batched by TRL): once with
the evaluation's batch size, once with batch_size=1. Greedy decoding, so both write the same
answers (checked); tokens are the generated non-padding tokens components.accounting counts.
Goal: >= 5x at the local profile's sizes.

With `--batch-sizes`, also the evaluation's own workload at each batch size, side by side in the
same run: `evaluate.num_samples` samples at `evaluate.temperature` for `evaluate.max_new_tokens`
on the validation split's prompts (never the held-out set), so the batch size the stages sample
with (`evaluate.batch_size`, `rejection_sampling.batch_size`, distillation's teacher sampling) is
chosen on a measurement. `--model` times a trained model (an SFT model writes answers of the
length the stages see) instead of the few-step base.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from components.modeling import cpu_model  # noqa: E402


def timed_generation(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int) -> dict:
    from components import accounting
    from components.generation import generate

    with accounting.metered() as usage:
        started = time.perf_counter()
        outputs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
        seconds = time.perf_counter() - started
    return {
        "batch_size": batch_size,
        "seconds": seconds,
        "tokens": usage.tokens_generated,
        "tokens_per_second": usage.tokens_generated / seconds,
        "outputs": outputs,
    }


def sampling_sweep(model, tokenizer, prompts: list[str], cfg, batch_sizes: list[int]) -> list[dict]:
    """The evaluation's sampling (cfg.num_samples at cfg.temperature) once per batch size, same prompts and seed."""
    from components import accounting
    from components.generation import sample

    rows = []
    for batch_size in batch_sizes:
        with accounting.metered() as usage:
            started = time.perf_counter()
            sample(model, tokenizer, prompts, cfg.model_copy(update={"batch_size": batch_size}), desc=f"batch {batch_size}")
            seconds = time.perf_counter() - started
        rows.append(
            {
                "batch_size": batch_size,
                "seconds": round(seconds, 2),
                "tokens": usage.tokens_generated,
                "tokens_per_second": round(usage.tokens_generated / seconds),
            }
        )
        print(f"batch {batch_size}: {rows[-1]['tokens_per_second']} tokens/s ({seconds:.1f} s, {usage.tokens_generated} tokens)")
    first = rows[0]["tokens_per_second"]
    return [row | {"relative_to_first": round(row["tokens_per_second"] / first, 2)} for row in rows]


def measure(
    n_prompts: int, max_new_tokens: int, workdir: Path, base_steps: int = 60, model_dir=None, data_dir=None, batch_sizes=()
) -> dict:
    from components import base, data
    from components.dataset_frames import read_dataset
    from components.generation import chat_prompts
    from components.modeling import configure_threads, load_model, load_tokenizer, math_settings
    from components.tuning import validation_set
    from components.versioning import git_commit
    from flows.params import load_params

    threads = configure_threads()
    params = load_params(REPO / "params.yaml", "local")
    if data_dir is None:
        data_dir = str(workdir / "data")
        data.run(params.data.model_copy(update={"out_dir": data_dir}))
    timed_model = f"{model_dir} (given)" if model_dir else f"the local base after {base_steps} steps"
    if model_dir is None:
        cfg = params.base.model_copy(update={"steps": base_steps, "warmup_steps": 1})
        model_dir = base.run(
            cfg, {"pretrain": f"{data_dir}/pretrain.jsonl", "sft": f"{data_dir}/sft.jsonl"}, str(workdir / "base")
        ).outputs["model"]
    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    problems = read_dataset(str(validation_set(data_dir)), "val")[:n_prompts]
    prompts = chat_prompts(tokenizer, [p["prompt"] for p in problems])
    batched = timed_generation(model, tokenizer, prompts, max_new_tokens, params.evaluate.batch_size)
    single = timed_generation(model, tokenizer, prompts, max_new_tokens, 1)
    same = sum(a == b for a, b in zip(batched.pop("outputs"), single.pop("outputs"), strict=True)) / len(prompts)
    sweep = {}
    if batch_sizes:
        cfg = params.evaluate
        sweep = {
            "sampling_sweep": {
                "num_samples": cfg.num_samples,
                "temperature": cfg.temperature,
                "max_new_tokens": cfg.max_new_tokens,
                "prompts": len(prompts),
                "model": timed_model,
                "commit": git_commit(REPO, short=True),
                "cpu": cpu_model(),
                "cpu_flags": math_settings()["cpu_flags"],
                "runs": sampling_sweep(model, tokenizer, prompts, cfg, list(batch_sizes)),
            }
        }
    return sweep | {
        "threads": threads,
        "prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        "batched": batched,
        "one_at_a_time": single,
        "speedup": round(batched["tokens_per_second"] / single["tokens_per_second"], 2),
        "same_answers": same,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "generation.json"))
    parser.add_argument("--model", help="a trained model to time (default: the local base after 60 steps, trained here)")
    parser.add_argument("--data", help="the data folder its validation prompts come from (default: generated here)")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[], help="also time the evaluation's sampling at each")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="generation-") as workdir:
        result = measure(
            args.prompts, args.max_new_tokens, Path(workdir), model_dir=args.model, data_dir=args.data, batch_sizes=args.batch_sizes
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    b, s = result["batched"], result["one_at_a_time"]
    print(
        f"batched (batch {b['batch_size']}): {b['tokens_per_second']:.0f} tokens/s; one at a time: {s['tokens_per_second']:.0f} tokens/s; "
        f"speedup {result['speedup']}x (goal >= 5x); same greedy answers for {result['same_answers']:.0%} of prompts"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
