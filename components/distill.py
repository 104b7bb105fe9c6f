"""Distillation stage: a smaller student learns from the final model's verified answers.

The student is the base model with fewer layers (kept evenly spaced, embeddings shared), so
it speaks the teacher's vocabulary and starts from pretrained weights, like the small dense
models R1 distils into. Two students are trained from that same start at equal compute:

- `distilled`: SFT on the teacher's verified generations (sequence-level distillation: the
  teacher samples on the SFT and RL prompts and only verified-correct, well-formed answers
  are kept); with `method: on_policy`, TRL's stable DistillationTrainer then samples the
  student on those prompts and pulls its token distributions toward the teacher's on its own
  samples (a generalized JSD, logit-level: on-policy distillation);
- `baseline`: SFT on the original SFT data, for as many steps (same batch) as the distilled student
  trained in all, on-policy phase included: the yardstick distillation has to beat. The
  tokens each trained are in the metrics (`distilled_tokens_trained`, `baseline_tokens_trained`).

    posttrain distill --params params.yaml --teacher artifacts/alignment/<key>/model \\
        --base artifacts/base/<key>/model --out artifacts/distill/manual
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from components import accounting
from components.answers import extract_answer
from components.artifacts import DataError, read_records, write_json, write_records
from components.config import StageResult, StrictModel, spoken_list
from components.dataset_frames import read_dataset
from components.modeling import load_model, load_tokenizer, save_pretrained
from components.plain_text import pretrain
from components.sampling import SamplingConfig, sample_verified, to_sft_records
from components.stages import StageInputError
from components.supervised import SFTConfig, train_sft
from components.trainer_args import TrainerConfig, save_trained, train_resumably, trl_config


class StudentTooLarge(ValueError):
    """The student would not be smaller than its teacher."""


def _teacher_sampling() -> SamplingConfig:
    return SamplingConfig(num_samples=4, keep_per_prompt=2, temperature=0.7, include_sft_data=False, limit=1600)


class OnPolicySettings(TrainerConfig):
    """`trl.DistillationConfig` (on-policy: the student samples, the teacher scores every token)."""

    TRL_CLASS = "trl.DistillationConfig"
    COUNTS_OWN_TOKENS = True

    max_steps: int = Field(60, ge=1)
    per_device_train_batch_size: int = Field(32, ge=1, description="prompts per step")
    learning_rate: float = Field(2e-4, gt=0, le=1)
    beta: float = Field(0.5, ge=0, le=1, description="generalized JSD interpolation (0: forward KL, 1: reverse KL)")
    temperature: float = Field(0.9, gt=0, le=2.0, description="sampling and loss temperature")
    max_completion_length: int = Field(80, ge=1, description="tokens the student samples per prompt")
    logging_steps: int = Field(10, ge=1)


class DistillConfig(StrictModel):
    student_layers: int = Field(2, ge=1, description="decoder layers of the student (fewer than the teacher's)")
    method: Literal["sequence", "on_policy"] = Field(
        "on_policy", description="sequence-level SFT on the teacher's answers, or that plus on-policy logit-level distillation"
    )
    teacher_sampling: SamplingConfig = Field(default_factory=_teacher_sampling, description="how the teacher's answers are drawn")
    heal_steps: int = Field(
        300,
        ge=0,
        description="pretraining steps on the base's corpus for the cut student, before either arm trains: a cut of the tiny base "
        "keeps almost none of its arithmetic, and neither arm learns from there (bench/results/tuning.md); 0: none",
    )
    heal_learning_rate: float = Field(1e-3, gt=0, le=1, description="the healing's peak learning rate (the tiny base's own)")
    student_sft: SFTConfig = Field(
        # both arms replay the pretraining corpus as the main SFT does: it keeps the healed arithmetic at no pass@1 cost (tuning.md)
        default_factory=lambda: SFTConfig(max_steps=250, replay_weight=1.0),
        description="the distilled student's SFT; the yardstick student gets it plus the on-policy phase's steps (equal compute)",
    )
    on_policy: OnPolicySettings = Field(default_factory=OnPolicySettings, description="method on_policy: TRL's DistillationTrainer")

    def corpus_knobs(self) -> dict[str, float]:
        """The knobs set to read the base's pretraining corpus (the `pretrain` input), by their params.yaml path."""
        knobs = {"distill.heal_steps": self.heal_steps, "distill.student_sft.replay_weight": self.student_sft.replay_weight}
        return {name: value for name, value in knobs.items() if value}


Config = DistillConfig  # the stage contract's name for it


def layer_count(model_dir: str) -> int:
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return int(config.get("num_hidden_layers") or config.get("text_config", {}).get("num_hidden_layers"))


def check_student_size(cfg: Config, teacher: str) -> int:
    """The teacher's layer count; raises before any work if the student is not smaller."""
    teacher_layers = layer_count(teacher)
    if cfg.student_layers >= teacher_layers:
        raise StudentTooLarge(
            f"distill.student_layers is {cfg.student_layers} but the teacher {teacher} has {teacher_layers}: "
            "the student must have fewer layers than its teacher"
        )
    return teacher_layers


def kept_layers(total: int, keep: int) -> list[int]:
    """`keep` evenly spaced layer indices of `total`, always including the first and the last."""
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def build_student(base_dir: str, n_layers: int, out_dir: Path) -> str:
    """The base model cut down to `n_layers` decoder layers, saved as a normal HF model."""
    import torch

    model, tokenizer = load_model(base_dir), load_tokenizer(base_dir)
    keep = kept_layers(model.config.num_hidden_layers, n_layers)
    model.model.layers = torch.nn.ModuleList(model.model.layers[i] for i in keep)
    for new_index, layer in enumerate(model.model.layers):
        layer.self_attn.layer_idx = new_index  # the KV cache is indexed by position in the stack
    model.config.num_hidden_layers = len(keep)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in keep]
    save_pretrained(model, tokenizer, out_dir)
    return str(out_dir)


def check_corpus(cfg: Config, pretrain_file: str | None) -> None:
    """Refuse, before anything is built or sampled, knobs that read a pretraining corpus the stage was not given."""
    knobs = cfg.corpus_knobs()
    if knobs and not pretrain_file:
        named = spoken_list([f"{name} is {value:g}" for name, value in knobs.items()])
        raise StageInputError(
            f"{named} but no pretraining corpus was given (the `pretrain` input): give it, or set {'them' if len(knobs) > 1 else 'it'} to 0"
        )


def heal_student(cfg: Config, student_dir: str, pretrain_file: str, out_dir: Path) -> str:
    """The cut student after `cfg.heal_steps` steps of the base's own pretraining loop on its corpus (the same for both arms).

    As with the teacher's answers, a healed student left in the stage run's own folder by a run
    that was killed later on is this run's: it is reused, not healed again."""
    done = out_dir / "healed.json"  # written after the weights: its presence means they are complete
    if done.is_file():
        print(f"[distill] reusing the healed student of an interrupted run: {out_dir}")
        return str(out_dir)
    model, tokenizer = load_model(student_dir), load_tokenizer(student_dir)
    texts = [record["text"] for record in read_dataset(pretrain_file, "pretrain")]
    # the tiny base's own batch (64 rows in 3 length-sorted passes): the setting the validation runs in tuning.md healed with
    settings = {"batch_size": 64, "micro_batches": 3, "seed": cfg.student_sft.seed, "max_length": cfg.student_sft.max_length}
    warmup = max(1, cfg.heal_steps // 10)
    pretrain(
        model,
        tokenizer,
        texts,
        steps=cfg.heal_steps,
        learning_rate=cfg.heal_learning_rate,
        warmup_steps=warmup,
        desc="healing the student",
        **settings,
    )
    save_pretrained(model, tokenizer, out_dir)
    write_json(done, {"heal_steps": cfg.heal_steps, "heal_learning_rate": cfg.heal_learning_rate})
    return str(out_dir)


def teacher_dataset(cfg: Config, teacher: str, prompt_files: list[str], sft_file: str, out: Path) -> tuple[str, dict]:
    """The teacher's verified answers on the prompts of `prompt_files` (the first `limit`), as SFT messages.

    The output folder is the stage run's own (keyed by config and inputs), so answers left there
    by a run that was killed later on are this run's answers: they are reused, not drawn again."""
    done = out / "teacher_stats.json"  # written after the answers: its presence means they are complete
    if done.is_file():
        print(f"[distill] reusing the teacher's answers of an interrupted run: {out / 'teacher_sft.jsonl'}")
        return str(out / "teacher_sft.jsonl"), json.loads(done.read_text())
    problems = []
    for path in prompt_files:
        for record in read_records(path):
            if "messages" in record:  # SFT data: the prompt is every turn but the last
                record = {"prompt": record["messages"][:-1], "answer": _reference(record["messages"][-1]["content"])}
            problems.append(record)
    candidates, stats, _ = sample_verified(teacher, problems[: cfg.teacher_sampling.limit], cfg.teacher_sampling, desc="teacher sampling")
    records = to_sft_records(candidates)
    if cfg.teacher_sampling.include_sft_data:  # off by default: it blurs the comparison with the baseline
        records += read_records(sft_file)
    if not records:
        raise DataError(f"the teacher {teacher} produced no verified-correct answer on {len(problems)} prompts: nothing to distil")
    path = write_records(out / "teacher_sft.jsonl", records)
    stats = {f"teacher_{k}": v for k, v in stats.items()}
    write_json(done, stats)
    return str(path), stats


def _reference(solution: str) -> str:
    return extract_answer(solution) or ""


def run_on_policy(cfg: Config, student: str, teacher: str, data: str, out: Path) -> str:
    """TRL's DistillationTrainer on the prompts of the teacher's data; the student lands in `out/model`."""
    from datasets import Dataset
    from trl import DistillationTrainer

    tokenizer = load_tokenizer(student)
    tokenizer.padding_side = "left"  # the student generates from the prompts
    prompts = [{"prompt": r["messages"][:-1]} for r in read_records(data)]
    trainer = DistillationTrainer(
        model=load_model(student),
        teacher_model=load_model(teacher),
        args=trl_config(cfg.on_policy, out / "checkpoints"),
        train_dataset=Dataset.from_list(prompts),
        processing_class=tokenizer,
        peft_config=cfg.on_policy.peft_config(),
    )
    train_resumably(trainer, cfg.on_policy, out / "checkpoints", "distill")
    tokenizer.padding_side = "right"
    model = save_trained(trainer, out / "model", tokenizer)["model"]
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # finished: the saved student supersedes them
    return model


def baseline_budget(cfg: Config):
    """The yardstick student's SFT: as many steps as the distilled one trained in all (its on-policy phase included),
    so the comparison is distillation against plain SFT at equal compute, not against fewer steps."""
    extra = cfg.on_policy.max_steps if cfg.method == "on_policy" else 0
    return cfg.student_sft.model_copy(update={"max_steps": cfg.student_sft.max_steps + extra})


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Distil `inputs["teacher"]` into a cut-down `inputs["base"]`; also train the SFT baseline student."""
    start = time.perf_counter()
    out = Path(out_dir)
    teacher_layers = check_student_size(cfg, inputs["teacher"])
    check_corpus(cfg, inputs.get("pretrain"))
    student_init = build_student(inputs["base"], cfg.student_layers, out / "student-init")
    if cfg.heal_steps:
        student_init = heal_student(cfg, student_init, inputs["pretrain"], out / "student-healed")
    # RL prompts first: with a `limit`, the teacher labels prompts the SFT data does not have.
    prompt_files = [*([inputs["rl"]] if inputs.get("rl") else []), inputs["sft"]]
    data, stats = teacher_dataset(cfg, inputs["teacher"], prompt_files, inputs["sft"], out)

    before = accounting.counted("tokens_trained")
    # both students replay the pretraining corpus when student_sft does (replay_weight): the same for both arms
    replay = inputs["pretrain"] if cfg.student_sft.replay_weight else None
    distilled = train_sft(cfg.student_sft, student_init, data, str(out / "distilled"), stage="distill", replay_path=replay)
    model = distilled.outputs["model"]
    if cfg.method == "on_policy":
        model = run_on_policy(cfg, model, inputs["teacher"], data, out / "distilled-on-policy")
    distilled_tokens = accounting.counted("tokens_trained") - before
    baseline = train_sft(baseline_budget(cfg), student_init, inputs["sft"], str(out / "baseline"), stage="distill", replay_path=replay)
    metrics = stats | {
        "distilled_tokens_trained": float(distilled_tokens),
        "baseline_tokens_trained": float(accounting.counted("tokens_trained") - before - distilled_tokens),
        "student_layers": float(cfg.student_layers),
        "student_heal_steps": float(cfg.heal_steps),
        "teacher_layers": float(teacher_layers),
        "distilled_final_loss": distilled.metrics["final_loss"],
        "baseline_final_loss": baseline.metrics["final_loss"],
    }
    write_json(out / "metrics.json", metrics)
    return StageResult(
        stage="distill",
        outputs={"model": model, "baseline_model": baseline.outputs["model"], "teacher_data": data},
        metrics=metrics,
        curves={
            f"{arm}_{name}": curve for arm, run in (("distilled", distilled), ("baseline", baseline)) for name, curve in run.curves.items()
        },
        info={"method": cfg.method, "parent_model": inputs["teacher"], "student_init": student_init},
        wall_seconds=time.perf_counter() - start,
    )
