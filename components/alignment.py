"""Alignment stage: the final preference-tuning pass of the recipe, DPO or GRPO on the reward model.

- `method: dpo`: TRL's DPOTrainer on preference pairs, against a frozen copy of the starting
  model as the reference. The pairs are the rejection-sampling stage's on-policy pairs when
  the flow has them (verified-correct vs. wrong answers of the model itself), the dataset's
  `prefs` otherwise; off-policy pairs hurt accuracy on the tiny model, on-policy ones far less.
  `loss_type: [sigmoid, sft]` adds an SFT term on the chosen responses, which keeps the
  policy's own good answers likely.
- `method: grpo`: the GRPO stage with the reward model's score as a reward (plus whatever
  `grpo.rewards` names), the R1 paper's "RL for all scenarios" step.

Logs DPO's reward margins and accuracies (or GRPO's rewards and KL).

    python -m components.alignment --params params.yaml --model artifacts/sft_round2/<key>/model \\
        --prefs artifacts/rejection_sampling/<key>/pairs.jsonl --out artifacts/alignment/manual
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from components import grpo as grpo_stage
from components.artifacts import DataError, read_records
from components.config import DeepSpeedFile, StageResult, StrictModel, load_section, placement_args
from components.grpo import GRPOStageConfig
from components.modeling import load_model, load_tokenizer, set_generation_defaults

DPO_LOSSES = ("sigmoid", "hinge", "ipo", "robust", "sft")


class DPOSettings(StrictModel):
    max_steps: int = Field(60, ge=1)
    batch_size: int = Field(16, ge=1, description="preference pairs per step")
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


def _rm_grpo() -> GRPOStageConfig:
    return GRPOStageConfig(rewards={"reward_model": 1.0, "accuracy": 1.0}, max_steps=30, beta=0.05)


class AlignmentConfig(StrictModel):
    method: Literal["dpo", "grpo"] = Field("dpo", description="dpo on preference pairs, or grpo on the reward model")
    pairs: Literal["auto", "on_policy", "dataset"] = Field(
        "auto", description="DPO pairs: rejection sampling's (on_policy), data/prefs (dataset), or on_policy when available"
    )
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    grpo: GRPOStageConfig = Field(default_factory=_rm_grpo, description="used when method is grpo")
    seed: int = 0
    use_cpu: bool = True
    bf16: bool = False
    gradient_checkpointing: bool = False
    deepspeed: DeepSpeedFile = Field(None, description="DeepSpeed config path (cluster profile); must parse with DeepSpeed")


Config = AlignmentConfig  # the stage contract's name for it


def dpo_args(cfg: Config, checkpoint_dir: Path):
    from trl import DPOConfig

    s = cfg.dpo
    return DPOConfig(
        output_dir=str(checkpoint_dir),
        max_steps=s.max_steps,
        per_device_train_batch_size=s.batch_size,
        learning_rate=s.learning_rate,
        warmup_steps=s.warmup_steps,
        beta=s.beta,
        loss_type=s.loss_type,
        max_length=s.max_length,
        logging_steps=s.logging_steps,
        save_strategy="no",
        seed=cfg.seed,
        **placement_args(cfg),
        dataset_num_proc=1,
    )


def run_dpo(cfg: Config, inputs: dict[str, str], out: Path) -> StageResult:
    from datasets import Dataset
    from trl import DPOTrainer

    start = time.perf_counter()
    pairs = read_records(inputs["prefs"])
    if not pairs:
        raise DataError(f"{inputs['prefs']}: no preference pairs to align on")
    tokenizer = load_tokenizer(inputs["model"])
    dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    trainer = DPOTrainer(
        model=load_model(inputs["model"]),  # ref_model=None: TRL loads the reference from the same path
        args=dpo_args(cfg, out / "checkpoints"),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    set_generation_defaults(trainer.model, tokenizer)
    trainer.save_model(str(out / "model"))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    history = [e for e in trainer.state.log_history if "rewards/margins" in e]
    curves = {
        k.replace("/", "_"): [e[k] for e in history]
        for k in ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")
    }
    return StageResult(
        stage="alignment",
        outputs={"model": str(out / "model")},
        metrics={f"final_{k}": v[-1] for k, v in curves.items() if v} | {"pairs": float(len(pairs))},
        curves=curves,
        info={"method": "dpo", "pairs_file": inputs["prefs"], "parent_model": inputs["model"]},
        wall_seconds=time.perf_counter() - start,
    )


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Align `inputs["model"]`: DPO on `inputs["prefs"]`, or GRPO on `inputs["rl"]` with `inputs["reward_model"]`."""
    out = Path(out_dir)
    if cfg.method == "dpo":
        return run_dpo(cfg, inputs, out)
    if "reward_model" in cfg.grpo.rewards and not inputs.get("reward_model"):
        raise ValueError("alignment.method is grpo with a reward_model reward, but no reward model was given")
    result = grpo_stage.run(cfg.grpo, inputs, out_dir)
    return result.model_copy(update={"stage": "alignment", "info": {**result.info, "method": "grpo"}})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--model", required=True)
    parser.add_argument("--prefs", default="data/prefs.jsonl", help="preference pairs (dpo)")
    parser.add_argument("--rl", default="data/rl.jsonl", help="prompts with answers (grpo)")
    parser.add_argument("--reward-model", default=None, help="(grpo)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "alignment", Config, args.profile)
    inputs = {"model": args.model, "prefs": args.prefs, "rl": args.rl}
    if args.reward_model:
        inputs["reward_model"] = args.reward_model
    print(run(cfg, inputs, args.out).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
