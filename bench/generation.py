"""Generation throughput: batched, left-padded, KV-cached against one prompt at a time, in one run.

    python bench/generation.py [--prompts 64] [--max-new-tokens 48] [--out bench/results/generation.json]

The model is the local profile's base shape, pretrained here for a few steps on the local data
(random weights would write until max_new_tokens every time); the prompts are held-out problems in
its chat template. Both ways call components.generation.generate, the function evaluation,
rejection sampling and distillation use (GRPO's rollouts are TRL's, batched by TRL): once with
the evaluation's batch size, once with batch_size=1. Greedy decoding, so both write the same
answers (checked); tokens are the generated non-padding tokens components.accounting counts.
Goal: >= 5x at the local profile's sizes.
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


def measure(n_prompts: int, max_new_tokens: int, workdir: Path, base_steps: int = 60) -> dict:
    from components import base, data
    from components.dataset_frames import read_dataset
    from components.generation import chat_prompts
    from components.modeling import configure_threads, load_model, load_tokenizer
    from flows.params import load_params

    threads = configure_threads()
    params = load_params(REPO / "params.yaml", "local")
    written = data.run(params.data.model_copy(update={"out_dir": str(workdir / "data")})).outputs
    cfg = params.base.model_copy(update={"steps": base_steps, "warmup_steps": 1})
    model_dir = base.run(cfg, {"pretrain": written["pretrain"], "sft": written["sft"]}, str(workdir / "base")).outputs["model"]
    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    problems = read_dataset(written["eval"], "eval")[:n_prompts]
    prompts = chat_prompts(tokenizer, [p["prompt"] for p in problems])
    batched = timed_generation(model, tokenizer, prompts, max_new_tokens, params.evaluate.batch_size)
    single = timed_generation(model, tokenizer, prompts, max_new_tokens, 1)
    same = sum(a == b for a, b in zip(batched.pop("outputs"), single.pop("outputs"), strict=True)) / len(prompts)
    return {
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
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="generation-") as workdir:
        result = measure(args.prompts, args.max_new_tokens, Path(workdir))
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
