"""Base pretraining's step with each batch in one padded pass against length-sorted passes, side by side in one run.

    python bench/padding.py [--steps 30] [--passes 1 3] [--out bench/results/padding.json]

The local profile's base model and pretraining rows (components.base, components.plain_text); one
model per setting, all from the same initial weights and fed the same batches. Steps alternate
between the settings (setting A's step 1, B's step 1, A's step 2, ...), so the machine's drift
falls on all of them alike. Reported per setting: the median step time after a warm-up, the real
share of the padded positions, and the loss after the last step (the settings train the same
update, so their losses agree to rounding); and each setting's step time over the one-pass one.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WARMUP_STEPS = 3


def measure(cfg, inputs: dict[str, str], steps: int, passes: list[int]) -> dict:
    """Train one copy of the initial model per setting on the same batches, steps interleaved."""
    import torch

    from components.artifacts import read_records
    from components.base import tokenizer_corpus
    from components.modeling import build_model, train_tokenizer
    from components.plain_text import length_sorted_passes, mean_token_loss, tokenize_with_loss_mask

    tokenizer = train_tokenizer(tokenizer_corpus(inputs), cfg.vocab_size)  # as the base stage trains it
    texts = [r["text"] for r in read_records(inputs["pretrain"])]
    rows = tokenize_with_loss_mask(tokenizer, texts, cfg.max_positions)
    initial = build_model(
        tokenizer, cfg.hidden_size, cfg.layers, cfg.heads, cfg.kv_heads, cfg.intermediate_size, cfg.max_positions, cfg.seed
    )
    models = {n: copy.deepcopy(initial).train() for n in passes}
    optimizers = {n: torch.optim.AdamW(models[n].parameters(), lr=cfg.learning_rate, weight_decay=0.01, betas=(0.9, 0.95)) for n in passes}
    times = {n: [] for n in passes}
    positions = {n: 0 for n in passes}
    losses, real_tokens = {}, 0
    generator = torch.Generator().manual_seed(cfg.seed)
    for _ in range(steps):
        picks = torch.randint(len(rows), (cfg.batch_size,), generator=generator).tolist()
        batch = [rows[i] for i in picks]
        real_tokens += sum(len(ids) for ids, _ in batch)
        for n in passes:
            started = time.perf_counter()
            sliced = length_sorted_passes(batch, tokenizer.pad_token_id, n)
            loss = mean_token_loss(models[n], sliced)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(models[n].parameters(), 1.0)
            optimizers[n].step()
            optimizers[n].zero_grad(set_to_none=True)
            times[n].append(time.perf_counter() - started)
            positions[n] += sum(ids.numel() for ids, _ in sliced)
            losses[n] = loss.item()
    one = statistics.median(times[passes[0]][WARMUP_STEPS:])
    return {
        str(n): {
            "median_step_seconds": round(statistics.median(times[n][WARMUP_STEPS:]), 4),
            "step_time_vs_first": round(statistics.median(times[n][WARMUP_STEPS:]) / one, 3),
            "real_token_share": round(real_tokens / positions[n], 3),
            "last_loss": round(losses[n], 5),
        }
        for n in passes
    }


def main(argv: list[str] | None = None) -> int:
    from components import data
    from components.modeling import configure_threads
    from components.versioning import git_commit
    from flows.params import load_params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--passes", type=int, nargs="+", default=[1, 3], help="the first is the yardstick")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "padding.json"))
    args = parser.parse_args(argv)
    if args.steps <= WARMUP_STEPS:
        parser.error(f"--steps must be more than the {WARMUP_STEPS} warm-up steps")
    threads = configure_threads()
    params = load_params(args.params, "local")
    with tempfile.TemporaryDirectory(prefix="padding-") as workdir:
        written = data.run(params.data.model_copy(update={"out_dir": workdir})).outputs
        settings = measure(params.base, written, args.steps, args.passes)
    commit = git_commit(REPO)  # "-dirty" when the script ran on uncommitted changes
    result = {"threads": threads, "steps": args.steps, "batch_size": params.base.batch_size, "passes": settings, "commit": commit}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
