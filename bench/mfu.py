"""Model FLOPs utilisation of base pretraining and SFT on this CPU, against a matmul peak measured in the same run.

    python bench/mfu.py [--steps 40] [--out bench/results/mfu.json]

- peak: a large square `torch.mm` (fp32, and bf16 where the CPU has AMX/AVX512-BF16), timed over
  repeats after a warm-up, at the thread count the stages use (components.modeling.configure_threads);
- the stages: the local profile's base pretraining (`components.base.run`, our own torch loop)
  and SFT (`components.sft.run`, TRL's SFTTrainer, without the pretraining replay) for a few steps each on the local profile's
  data, metered by components.accounting: real (non-padding) tokens over the time inside the
  training loop;
- FLOPs per trained token: 6 x N for the weight matmuls (forward 2N, backward 4N), N counting
  every linear weight including the LM head, whose matmul is real work even with tied
  embeddings, but not the embedding lookup; plus attention's score and value products,
  6 x 2 x layers x hidden x L per token, L the mean tokens per sequence (a causal mask computes
  the full L x L here: no flash attention on CPU).
MFU = achieved FLOP/s / fp32 peak. Ratios measured in one run; the absolute figures are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def matmul_peak(dtype_name: str, size: int = 2048, repeats: int = 10, probe_size: int = 256) -> float:
    """FLOP/s of `torch.mm` of a size x size matrix by itself, the best of `repeats` after a warm-up (components.modeling.matmul_rate).

    A probe at `probe_size` first: where it shows a slow fallback kernel, the peak is measured at
    that size instead (a slow path's figure does not need a 2048-wide product to be told)."""
    from components.modeling import matmul_rate

    if 2 * size**3 / matmul_rate(dtype_name, size=probe_size, repeats=1) > 2.0:
        # no fast kernel for this dtype here (bf16 on an EPYC without AMX ran at ~2.5 GFLOP/s against
        # fp32's ~155): the full-size repeats would take minutes to say the same, so the probe's size stands
        return matmul_rate(dtype_name, size=probe_size, repeats=3)
    return matmul_rate(dtype_name, size=size, repeats=repeats)


def flops_per_token(model_dir: str, mean_length: float) -> dict:
    """6N (every linear weight, the LM head included) plus attention's products at `mean_length` tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    config = model.config
    attention = 6 * 2 * config.num_hidden_layers * config.hidden_size * mean_length
    return {"linear_parameters": linear, "weights": 6 * linear, "attention": attention, "total": 6 * linear + attention}


def metered(run) -> dict:
    from components import accounting

    with accounting.metered() as usage:
        result = run()
    return {"tokens": usage.tokens_trained, "train_seconds": usage.train_seconds, "result": result}


def measure(steps: int, workdir: Path) -> dict:
    from components import base, data, sft
    from components.modeling import configure_threads
    from components.versioning import git_commit
    from flows.params import load_params

    threads = configure_threads()
    params = load_params(REPO / "params.yaml", "local")
    written = data.run(params.data.model_copy(update={"out_dir": str(workdir / "data")})).outputs
    peaks = {"float32": matmul_peak("float32"), "bfloat16": matmul_peak("bfloat16")}

    base_cfg = params.base.model_copy(update={"steps": steps, "warmup_steps": 1})
    pretraining = metered(lambda: base.run(base_cfg, {"pretrain": written["pretrain"], "sft": written["sft"]}, str(workdir / "base")))
    model_dir = pretraining["result"].outputs["model"]
    # replay off: its passes over pretraining text would count in the time but not in the SFT tokens
    sft_cfg = params.sft.model_copy(update={"max_steps": steps, "save_steps": steps + 1, "warmup_steps": 1, "replay_weight": 0.0})
    tuning = metered(lambda: sft.run(sft_cfg, {"model": model_dir, "sft": written["sft"]}, str(workdir / "sft")))

    results = {}
    for name, run, batch in (("base_pretraining", pretraining, base_cfg.batch_size), ("sft", tuning, sft_cfg.per_device_train_batch_size)):
        mean_length = run["tokens"] / (steps * batch)  # tokens per sequence, as trained
        per_token = flops_per_token(model_dir, mean_length)
        tokens_per_second = run["tokens"] / run["train_seconds"]
        achieved = tokens_per_second * per_token["total"]
        results[name] = {
            "tokens": run["tokens"],
            "train_seconds": round(run["train_seconds"], 2),
            "tokens_per_second": round(tokens_per_second, 1),
            "mean_tokens_per_sequence": round(mean_length, 1),
            "flops_per_token": per_token,
            "achieved_flops": achieved,
            "mfu_vs_fp32_peak": round(achieved / peaks["float32"], 4),
            "attention_share_of_flops": round(per_token["attention"] / per_token["total"], 3),
        }
    commit = git_commit(REPO)  # "-dirty" when the script ran on uncommitted changes
    return {"threads": threads, "peak_flops": peaks, "steps": steps, "stages": results, "commit": commit}


def report(result: dict) -> str:
    peaks = result["peak_flops"]
    lines = [
        f"matmul peak at {result['threads']} threads: fp32 {peaks['float32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bfloat16'] / 1e9:.1f} GFLOP/s",
        "",
        "| stage | tokens/s | GFLOP/s | MFU (fp32 peak) | goal |",
        "|---|---|---|---|---|",
    ]
    goals = {"base_pretraining": ">= 50%", "sft": "-"}
    for name, row in result["stages"].items():
        lines.append(
            f"| {name} | {row['tokens_per_second']:.0f} | {row['achieved_flops'] / 1e9:.2f} | {row['mfu_vs_fp32_peak']:.1%} | {goals[name]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "mfu.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mfu-") as workdir:
        result = measure(args.steps, Path(workdir))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
