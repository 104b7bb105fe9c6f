"""Reward model stage: a Bradley-Terry scorer of responses, trained on preference pairs.

TRL's RewardTrainer puts a one-output head on the policy's backbone (initialized from the
cold-start SFT model, as in the R1 recipe) and trains `-log sigmoid(r_chosen - r_rejected)`.
A slice of the pairs is held out; the stage reports pairwise accuracy on it, scored by the
same `RewardScorer` that best-of-N evaluation, GRPO's optional `reward_model` reward and
rejection sampling use, so the number measures the scorer the later stages actually get.

    posttrain reward-model --params params.yaml --model artifacts/sft/<key>/model \\
        --prefs data/prefs.jsonl --out artifacts/reward_model/manual
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from pydantic import Field

from components.artifacts import DataError, write_json
from components.config import StageResult
from components.dataset_frames import read_dataset
from components.modeling import load_tokenizer
from components.scoring import RewardScorer
from components.trainer_args import TrainerConfig, save_trained, train_resumably, trl_config


class RewardModelConfig(TrainerConfig):
    """`trl.RewardConfig`: any of its fields may be set here; the held-out split is ours."""

    TRL_CLASS = "trl.RewardConfig"
    OWN_FIELDS = frozenset({"held_out_fraction"})

    max_steps: int = Field(150, ge=1, description="optimizer steps")
    per_device_train_batch_size: int = Field(16, ge=1, description="preference pairs per step")
    learning_rate: float = Field(5e-4, gt=0, le=1)
    warmup_steps: int = Field(10, ge=0)
    max_length: int = Field(256, ge=16, description="tokens of prompt + response")
    held_out_fraction: float = Field(0.1, gt=0, lt=1, description="pairs kept aside for pairwise accuracy")
    center_rewards_coefficient: float | None = Field(0.01, ge=0, description="keeps scores near 0 (TRL's option)")
    logging_steps: int = Field(10, ge=1)


Config = RewardModelConfig  # the stage contract's name for it


def split_pairs(records: list[dict], held_out_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded train/held-out split; the held-out part keeps at least one pair."""
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    n_held_out = max(1, round(len(shuffled) * held_out_fraction))
    return shuffled[n_held_out:], shuffled[:n_held_out]


def pairwise_accuracy(scorer: RewardScorer, pairs: list[dict]) -> tuple[float, float]:
    """Share of pairs where chosen outscores rejected, and the mean margin."""
    prompts = [p["prompt"] for p in pairs]
    chosen = scorer.score(prompts, [p["chosen"][-1]["content"] for p in pairs])
    rejected = scorer.score(prompts, [p["rejected"][-1]["content"] for p in pairs])
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return sum(m > 0 for m in margins) / len(margins), sum(margins) / len(margins)


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Train a reward model from `inputs["model"]` on `inputs["prefs"]`; it lands in `out_dir/model`."""
    from datasets import Dataset
    from trl import RewardTrainer

    start = time.perf_counter()
    out = Path(out_dir)
    records = read_dataset(inputs["prefs"], "prefs")
    if len(records) < 2:
        raise DataError(f"{inputs['prefs']}: the reward model needs at least 2 preference pairs, got {len(records)}")
    train, held_out = split_pairs(records, cfg.held_out_fraction, cfg.seed)

    tokenizer = load_tokenizer(inputs["model"])
    columns = ("prompt", "chosen", "rejected")
    dataset = Dataset.from_list([{k: r[k] for k in columns} for r in train])
    trainer = RewardTrainer(
        model=inputs["model"],  # a path: TRL builds the sequence-classification head on it
        args=trl_config(cfg, out / "checkpoints", dataset_num_proc=1),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=cfg.peft_config("SEQ_CLS", modules_to_save=["score"]),  # LoRA: the score head trains in full
    )
    trainer.model.config.pad_token_id = tokenizer.pad_token_id  # where the score is read: last non-pad token
    resumed_from = train_resumably(trainer, cfg, out / "checkpoints", "reward_model")
    outputs = save_trained(trainer, out / "model", tokenizer, generation_defaults=False)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)

    accuracy, margin = pairwise_accuracy(RewardScorer(str(out / "model")), held_out)
    history = trainer.state.log_history
    metrics = {
        "held_out_pairwise_accuracy": accuracy,
        "held_out_mean_margin": margin,
        "train_pairs": float(len(train)),
        "held_out_pairs": float(len(held_out)),
        "final_loss": next((e["loss"] for e in reversed(history) if "loss" in e), float("nan")),
    }
    write_json(out / "metrics.json", metrics)
    return StageResult(
        stage="reward_model",
        outputs=outputs,
        metrics=metrics,
        curves={name: [e[name] for e in history if name in e] for name in ("loss", "accuracy", "margin")},
        info={"parent_model": inputs["model"], "resumed_from": resumed_from},
        wall_seconds=time.perf_counter() - start,
    )
