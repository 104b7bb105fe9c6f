"""SFT stage (cold start, and round 2 on the rejection-sampled data): teach the model the format.

The training itself is components.supervised (shared with distillation); this stage is its
wiring: the model and the `messages` dataset in, the fine-tuned model out.

    posttrain sft --params params.yaml --model artifacts/base/<key>/model \\
        --sft data/sft.jsonl --out artifacts/sft/manual        [--section sft_round2]
        [--replay data/pretrain.jsonl]    # with replay_weight > 0: pretraining text mixed into every step
"""

from __future__ import annotations

from components.config import StageResult
from components.supervised import SFTConfig, train_sft

Config = SFTConfig  # the stage contract's name for it


def run(cfg: Config, inputs: dict[str, str], out_dir: str, callbacks: list | None = None) -> StageResult:
    """Fine-tune `inputs["model"]` on `inputs["sft"]` (replaying `inputs["replay"]`); the model lands in `out_dir/model`."""
    return train_sft(cfg, inputs["model"], inputs["sft"], out_dir, callbacks=callbacks, replay_path=inputs.get("replay"))
