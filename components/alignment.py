"""Alignment stage: the final preference-tuning pass of the recipe, DPO on preference pairs.

TRL's DPOTrainer against a frozen copy of the starting model as the reference. The pairs are
the rejection-sampling stage's on-policy pairs when the flow has them (verified-correct vs.
wrong answers of the model itself), the dataset's `prefs` otherwise; off-policy pairs hurt
accuracy on the tiny model, on-policy ones far less. `loss_type: [sigmoid, sft]` adds an SFT
term on the chosen responses, which keeps the policy's own good answers likely; `replay_weight`
adds the LM loss on the base's pretraining text (a `replay` input), which keeps what the base
knew outside the preference pairs (components.replay).
(`method: grpo`, the R1 paper's "RL for all scenarios" step, is the GRPO stage run by the flow
with the `alignment_grpo` section and the reward model's score as a reward.)

Logs DPO's reward margins and accuracies.

    posttrain alignment --params params.yaml --model artifacts/sft_round2/<key>/model \\
        --prefs artifacts/rejection_sampling/<key>/pairs.jsonl --out artifacts/alignment/manual \\
        [--replay data/pretrain.jsonl]    # with dpo.replay_weight > 0
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from components.config import StageResult, StrictModel
from components.dataset_frames import read_dataset
from components.modeling import load_model, load_tokenizer
from components.replay import REPLAY_FIELDS, ReplaySettings, trainer_with_replay
from components.trainer_args import TrainerConfig, save_trained, train_resumably, trl_config

DPO_LOSSES = ("sigmoid", "hinge", "ipo", "robust", "sft")


class DPOSettings(ReplaySettings, TrainerConfig):
    """`trl.DPOConfig`: any of its fields may be set here, plus the pretraining replay."""

    TRL_CLASS = "trl.DPOConfig"
    OWN_FIELDS = REPLAY_FIELDS

    max_steps: int = Field(60, ge=1)
    per_device_train_batch_size: int = Field(16, ge=1, description="preference pairs per step")
    learning_rate: float = Field(5e-6, gt=0, le=1)
    warmup_steps: int = Field(0, ge=0)
    beta: float = Field(0.1, gt=0, description="strength of the implicit KL to the reference")
    loss_type: list[str] = Field(["sigmoid", "sft"], min_length=1, description=f"TRL DPO losses, summed; from {DPO_LOSSES}")
    max_length: int = Field(256, ge=16)
    logging_steps: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _known_losses(self) -> DPOSettings:
        unknown = [loss for loss in self.loss_type if loss not in DPO_LOSSES]
        if unknown:
            raise ValueError(f"unknown DPO loss(es) {unknown}; known: {', '.join(DPO_LOSSES)}")
        return self


class AlignmentConfig(StrictModel):
    method: Literal["dpo", "grpo"] = Field(
        "dpo", description="dpo on preference pairs, or grpo on the reward model (the alignment_grpo section)"
    )
    pairs: Literal["auto", "on_policy", "dataset"] = Field(
        "auto", description="DPO pairs: rejection sampling's (on_policy), data/prefs (dataset), or on_policy when available"
    )
    dpo: DPOSettings = Field(default_factory=DPOSettings)


Config = AlignmentConfig  # the stage contract's name for it


def run_dpo(cfg: DPOSettings, inputs: dict[str, str], out: Path) -> StageResult:
    from datasets import Dataset
    from trl import DPOTrainer

    start = time.perf_counter()
    pairs = read_dataset(inputs["prefs"], "prefs")  # refuses an empty or malformed file, naming it
    tokenizer = load_tokenizer(inputs["model"])
    dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    trainer_class, replay = trainer_with_replay(DPOTrainer, cfg, tokenizer, inputs.get("replay"))
    trainer = trainer_class(
        model=load_model(inputs["model"]),  # ref_model=None: TRL loads the reference from the same path
        args=trl_config(cfg, out / "checkpoints", dataset_num_proc=1),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=cfg.peft_config(),  # with LoRA the reference is the adapter-disabled model, not a second copy
        **replay,
    )
    resumed_from = train_resumably(trainer, cfg, out / "checkpoints", "alignment")
    outputs = save_trained(trainer, out / "model", tokenizer)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    # The periodic logs, and the end-of-training summary when max_steps is not a multiple of
    # logging_steps: it averages the last partial period's rewards but carries no `loss`.
    history = [e for e in trainer.state.log_history if "rewards/margins" in e]
    curves = {
        k.replace("/", "_"): [e[k] for e in history if k in e]
        for k in ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected", "replay_loss")
    }
    curves = {k: v for k, v in curves.items() if v}
    return StageResult(
        stage="alignment",
        outputs=outputs,
        metrics={f"final_{k}": v[-1] for k, v in curves.items()} | {"pairs": float(len(pairs))},
        curves=curves,
        info={"method": "dpo", "pairs_file": inputs["prefs"], "parent_model": inputs["model"], "resumed_from": resumed_from},
        wall_seconds=time.perf_counter() - start,
    )


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """DPO-align `inputs["model"]` on the pairs of `inputs["prefs"]` (replaying `inputs["replay"]`); the model lands in `out_dir/model`."""
    if cfg.method != "dpo":
        raise ValueError("alignment.method is grpo: that is the grpo stage run with the alignment_grpo section, not this one")
    return run_dpo(cfg.dpo, inputs, Path(out_dir))
