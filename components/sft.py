"""SFT stage (cold start): teach the base model the reasoning format on `messages` data.

TRL's SFTTrainer with the loss on the assistant turns only (the chat template marks them with
`{% generation %}`). Checkpoints go to `out_dir/checkpoints`; a re-run with the same output
directory resumes from the last one, which is the normal path after a pre-empted job.

    python -m components.sft --params params.yaml --model artifacts/base/<key>/model \\
        --data data/sft.jsonl --out artifacts/sft/manual
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from pydantic import Field

from components.artifacts import read_records
from components.config import DeepSpeedFile, StageResult, StrictModel, load_section, placement_args
from components.modeling import load_model, load_tokenizer, set_generation_defaults


class SFTConfig(StrictModel):
    max_steps: int = Field(300, ge=1, description="optimizer steps")
    batch_size: int = Field(32, ge=1, description="per-device batch size")
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(5e-4, gt=0, le=1)
    warmup_steps: int = Field(25, ge=0)
    lr_scheduler: str = Field("cosine", description="any transformers scheduler name")
    max_length: int = Field(256, ge=16, description="tokens per example; longer ones are truncated")
    save_steps: int = Field(50, ge=1, description="checkpoint every N steps (what resume restarts from)")
    logging_steps: int = Field(10, ge=1)
    seed: int = 0
    resume: bool = Field(True, description="continue from the last checkpoint in the output directory")
    use_cpu: bool = Field(True, description="False on GPU nodes")
    bf16: bool = False
    gradient_checkpointing: bool = False
    deepspeed: DeepSpeedFile = Field(None, description="DeepSpeed config path (cluster profile); must parse with DeepSpeed")


Config = SFTConfig  # the stage contract's name for it


def training_args(cfg: Config, checkpoint_dir: Path):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(checkpoint_dir),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        max_length=cfg.max_length,
        assistant_only_loss=True,
        packing=False,  # padding-free packing is ~5x slower on CPU; examples are short anyway
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        **placement_args(cfg),
        dataset_num_proc=1,
    )


def last_checkpoint(checkpoint_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None


def run(cfg: Config, inputs: dict[str, str], out_dir: str, callbacks: list | None = None) -> StageResult:
    """Fine-tune `inputs["model"]` on `inputs["sft"]`; the model lands in `out_dir/model`."""
    from datasets import Dataset
    from trl import SFTTrainer

    start = time.perf_counter()
    out = Path(out_dir)
    checkpoint_dir = out / "checkpoints"

    # ---- load
    tokenizer = load_tokenizer(inputs["model"])
    model = load_model(inputs["model"])
    records = read_records(inputs["sft"])
    dataset = Dataset.from_list([{"messages": r["messages"]} for r in records])

    # ---- train (resume is the default path)
    resume_from = last_checkpoint(checkpoint_dir) if cfg.resume else None
    if resume_from:
        print(f"[sft] resuming from {resume_from}")
    trainer = SFTTrainer(
        model=model,
        args=training_args(cfg, checkpoint_dir),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=resume_from)

    # ---- save: through the trainer, which gathers ZeRO-3 shards and writes on the main process only
    set_generation_defaults(trainer.model, tokenizer)
    trainer.save_model(str(out / "model"))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if trainer.is_world_process_zero():
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # finished: the final model supersedes them
    return StageResult(
        stage="sft",
        outputs={"model": str(out / "model")},
        metrics={
            "final_loss": losses[-1] if losses else float("nan"),
            "train_examples": float(len(dataset)),
            "global_step": float(trainer.state.global_step),
        },
        curves={"train_loss": losses},
        info={"resumed_from": resume_from, "parent_model": inputs["model"]},
        wall_seconds=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--section", default="sft", help="params.yaml section (e.g. a second SFT round)")
    parser.add_argument("--model", required=True, help="path or hub id of the model to fine-tune")
    parser.add_argument("--data", default="data/sft.jsonl")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    cfg = load_section(args.params, args.section, Config, args.profile)
    print(run(cfg, {"model": args.model, "sft": args.data}, args.out).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
