"""GRPO's memory on SmolLM2: one step's 32 completions at once vs in micro-batches, side by side.

    python bench/grpo_memory.py --model artifacts/sft/<key>/model --rl data/rl.jsonl [--steps 3]
                                [--out bench/results/grpo_memory.json]

The `smol` profile's GRPO settings (params.yaml), each configuration in its own subprocess (so
each peak RSS is its own) for `--steps` optimizer steps from the same SFT model and seed. The
configurations differ only in how a step's completions are cut for the forward and backward
passes: the generation batch, the prompts, the group size and the optimizer step stay the same
(TRL generates `per_device_train_batch_size x gradient_accumulation_steps` completions at once).
What it measures: the peak RSS, and the seconds per optimizer step after the first. On a
2-core machine the seconds are noisy: compare the ratio of one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONFIGS = {
    "one_batch_of_32": {"per_device_train_batch_size": 32, "gradient_accumulation_steps": 1},
    "four_micro_batches_of_8": {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 4},
}


def one(name: str, model: str, rl: str, steps: int) -> dict:
    """Train one configuration here (the subprocess's body); returns its measurements."""
    from bench.lora_precision import StepTimer
    from components import grpo
    from flows.params import load_params

    smol = load_params(REPO / "params.yaml", "smol").grpo.model_dump()
    cfg = grpo.Config(**smol | CONFIGS[name] | {"max_steps": steps, "save_steps": 10_000, "warmup_steps": 0, "resume": False})
    timer = StepTimer()
    grpo.run(cfg, {"model": model, "rl": rl}, tempfile.mkdtemp(prefix=f"bench-grpo-{name}-"), callbacks=[timer.callback])
    timed = timer.seconds[1:] or timer.seconds  # the first step pays for warm-up
    return {
        "seconds_per_step": sum(timed) / len(timed),
        "completions_per_step": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the SFT model GRPO starts from (a smol run's artifacts/sft/<key>/model)")
    parser.add_argument("--rl", required=True, help="the RL prompts (a smol run's data/rl.jsonl)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "grpo_memory.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the subprocess's entry: one configuration
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.model, args.rl, args.steps)))
        return 0

    results = {}
    for name in CONFIGS:
        started = time.perf_counter()
        command = [sys.executable, __file__, "--one", name, "--model", args.model, "--rl", args.rl, "--steps", str(args.steps)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        results[name] = json.loads(done.stdout.strip().splitlines()[-1]) | {"wall_seconds": time.perf_counter() - started}
        print(name, json.dumps(results[name]), flush=True)
    first = next(iter(results.values()))
    for r in results.values():
        r["time_vs_first"] = r["seconds_per_step"] / first["seconds_per_step"]
        r["memory_vs_first"] = r["peak_rss_gib"] / first["peak_rss_gib"]
    out = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "steps": args.steps, "configs": results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
