"""Supervised fine-tuning on chat data, shared below the stages that fine-tune: SFT and distill.

TRL's SFTTrainer with the loss on the assistant's answer only, whatever the model's chat
template: a template that marks assistant turns with `{% generation %}` (the local tiny model's)
trains on `messages` with `assistant_only_loss`; a stock template without markers (SmolLM2's,
Qwen2.5's) trains on the same conversations split into TRL's prompt/completion format, where
the loss falls on the completion only (the final assistant turn and its end-of-turn token).
Checkpoints go to `out_dir/checkpoints`; a re-run with the same output directory resumes from
the last one, which is the normal path after a pre-empted job.

With `replay_weight` > 0 and a plain-text `replay` dataset (the base's pretraining corpus),
every step adds `replay_weight` x the language-model loss on `replay_batch_size` rows of it:
the model keeps what pretraining taught it while it learns the format (see components.replay).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pydantic import Field

from components.config import StageResult
from components.dataset_frames import read_dataset
from components.modeling import load_model, load_tokenizer
from components.replay import REPLAY_FIELDS, ReplaySettings, trainer_with_replay
from components.trainer_args import TrainerConfig, save_trained, train_resumably, trl_config


class SFTConfig(ReplaySettings, TrainerConfig):
    """`trl.SFTConfig`: any of its fields may be set here, plus the pretraining replay."""

    TRL_CLASS = "trl.SFTConfig"
    OWN_FIELDS = REPLAY_FIELDS

    max_steps: int = Field(300, ge=1, description="optimizer steps")
    per_device_train_batch_size: int = Field(32, ge=1, description="examples per step and device")
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(5e-4, gt=0, le=1)
    warmup_steps: int = Field(25, ge=0)
    lr_scheduler_type: str = Field("cosine", description="any transformers scheduler name")
    max_length: int = Field(256, ge=16, description="tokens per example; longer ones are truncated")
    logging_steps: int = Field(10, ge=1)


# The stage's choices where TRL's defaults are GPU defaults; params.yaml may override each.
SFT_DEFAULTS = {
    "assistant_only_loss": True,
    "packing": False,  # padding-free packing is ~5x slower on CPU; examples are short anyway
    "dataset_num_proc": 1,
}


def training_args(cfg: SFTConfig, checkpoint_dir: Path, mode: str = "assistant_only"):
    # prompt/completion data: TRL's completion_only_loss (on by default for that format) does the masking
    masking = {} if mode == "assistant_only" else {"assistant_only_loss": False}
    return trl_config(cfg, checkpoint_dir, defaults=SFT_DEFAULTS | masking)


def loss_mask_mode(tokenizer) -> str:
    """`assistant_only` when the chat template marks assistant turns, else `completion_only`."""
    return "assistant_only" if "{% generation %}" in (tokenizer.chat_template or "") else "completion_only"


def sft_records(records: list[dict], mode: str) -> list[dict]:
    """The conversations as TRL wants them for `mode`: whole `messages`, or prompt + final assistant turn."""
    if mode == "assistant_only":
        return [{"messages": r["messages"]} for r in records]
    return [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in records]


def build_trainer(
    cfg: SFTConfig, model_path: str, data_path: str, checkpoint_dir: Path, callbacks: list | None = None, replay_path: str | None = None
):
    """The SFTTrainer on `data_path`'s conversations, its loss on the answers only (see the module docstring)."""
    from datasets import Dataset
    from trl import SFTTrainer

    tokenizer = load_tokenizer(model_path)
    mode = loss_mask_mode(tokenizer)
    dataset = Dataset.from_list(sft_records(read_dataset(data_path, "sft"), mode))
    trainer_class, extra = trainer_with_replay(SFTTrainer, cfg, tokenizer, replay_path)
    trainer = trainer_class(
        model=load_model(model_path),
        args=training_args(cfg, checkpoint_dir, mode),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=cfg.peft_config(),
        **extra,
    )
    return trainer, tokenizer, mode


def train_sft(
    cfg: SFTConfig,
    model_path: str,
    data_path: str,
    out_dir: str,
    callbacks: list | None = None,
    stage: str = "sft",
    replay_path: str | None = None,
) -> StageResult:
    """Fine-tune `model_path` on the conversations of `data_path`; the model lands in `out_dir/model`."""
    start = time.perf_counter()
    out = Path(out_dir)
    checkpoint_dir = out / "checkpoints"
    trainer, tokenizer, mode = build_trainer(cfg, model_path, data_path, checkpoint_dir, callbacks, replay_path)
    dataset = trainer.train_dataset

    # ---- train (resume is the default path)
    resume_from = train_resumably(trainer, cfg, checkpoint_dir, stage)

    outputs = save_trained(trainer, out / "model", tokenizer)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    replay_losses = [entry["replay_loss"] for entry in trainer.state.log_history if "replay_loss" in entry]
    if trainer.is_world_process_zero():
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # finished: the final model supersedes them
    return StageResult(
        stage=stage,
        outputs=outputs,
        metrics={
            "final_loss": losses[-1] if losses else float("nan"),
            "train_examples": float(len(dataset)),
            "global_step": float(trainer.state.global_step),
        },
        curves={"train_loss": losses} | ({"replay_loss": replay_losses} if replay_losses else {}),
        info={"resumed_from": resume_from, "parent_model": model_path, "loss_mask": mode},
        wall_seconds=time.perf_counter() - start,
    )
