"""GRPO stage: reasoning RL from the cold-start SFT model with verifiable rewards.

TRL's GRPOTrainer samples `num_generations` responses per prompt, scores them with the reward
functions named in `rewards` (see components/rewards.py) and pushes the policy toward the
better ones of each group, with a KL penalty (`beta`) to the SFT reference. The verified
accuracy is always computed (weight 0 when not rewarded) so that the gap between the total
reward and the verified accuracy can be watched: a policy that earns reward without getting
answers right is hacking its reward.

Rollouts use vLLM (TRL's colocate or server mode) when it is installed and a GPU is present,
and plain `generate` otherwise; the choice and its reason are logged.

    posttrain grpo --params params.yaml --model artifacts/sft/<key>/model \\
        --rl data/rl.jsonl --out artifacts/grpo/manual [--reward-model PATH]
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from components import accounting, rewards
from components.config import StageResult
from components.dataset_frames import read_dataset
from components.generation import choose_backend
from components.modeling import load_model, load_tokenizer
from components.trainer_args import TrainerConfig, save_trained, train_resumably, trl_config


class GRPOStageConfig(TrainerConfig):
    """`trl.GRPOConfig`: any of its fields may be set here; the reward plan and the backend are ours."""

    TRL_CLASS = "trl.GRPOConfig"
    COUNTS_OWN_TOKENS = True
    OWN_FIELDS = frozenset({"rewards", "target_script", "length_buffer", "generation_backend", "informative_prompts"})

    max_steps: int = Field(100, ge=1, description="optimizer steps")
    per_device_train_batch_size: int = Field(
        128,
        ge=2,
        description="completions per micro-batch; a step takes gradient_accumulation_steps of them (prompts x num_generations in all)",
    )
    num_generations: int = Field(8, ge=2, description="responses sampled per prompt (the group)")
    max_completion_length: int = Field(80, ge=8, description="tokens per sampled response")
    learning_rate: float = Field(
        5e-6, gt=0, le=1, description="chosen on validation (bench/results/tuning.md); the tiny model degrades from ~5e-5"
    )
    warmup_steps: int = Field(20, ge=0, description="Adam's first steps move every weight by ~lr: warm up")
    beta: float = Field(0.02, ge=0, description="KL penalty to the SFT reference (0 drops the reference model)")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field("dapo", description="TRL's loss aggregation")
    scale_rewards: Literal["group", "batch", "none"] = Field("group", description="advantage normalization (Dr. GRPO: none)")
    epsilon: float = Field(0.2, gt=0, le=1, description="PPO-style clipping of the policy ratio")
    temperature: float = Field(0.8, gt=0, le=2.0, description="rollout sampling temperature")
    rewards: dict[str, float] = Field(
        {"accuracy": 1.0, "language_consistency": 0.1},
        description=f"reward function -> weight (TRL's reward_funcs + reward_weights); known: {', '.join(rewards.REWARD_NAMES)}",
    )
    target_script: Literal["latin", "cyrillic", "greek", "cjk"] = Field("latin", description="for language_consistency")
    length_buffer: int = Field(16, ge=1, description="the `length` penalty ramps over the last N tokens")
    generation_backend: Literal["auto", "vllm", "hf"] = Field("auto", description="auto: vLLM when installed with a GPU")
    vllm_mode: Literal["colocate", "server"] = Field("colocate", description="TRL's vLLM mode")
    informative_prompts: int = Field(
        0,
        ge=0,
        le=64,
        description="before training, sample N rollouts per RL prompt from the starting policy at `temperature` and train only "
        "on the prompts it sometimes solves and sometimes fails (DAPO's dynamic sampling, done once up front): a group "
        "that is all right or all wrong has no advantage and teaches nothing; 0 keeps every prompt",
    )
    logging_steps: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _check(self) -> GRPOStageConfig:
        rewards.check_reward_names(list(self.rewards))
        if not self.rewards:
            raise ValueError("rewards: name at least one reward function")
        if self.per_device_train_batch_size % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple of num_generations ({self.num_generations})"
            )
        if self.informative_prompts == 1:
            raise ValueError("informative_prompts: one sample cannot be both right and wrong; use 0 (off) or at least 2")
        if self.length_buffer >= self.max_completion_length:
            raise ValueError("length_buffer must be smaller than max_completion_length")
        return self


Config = GRPOStageConfig  # the stage contract's name for it


def training_args(cfg: Config, checkpoint_dir: Path, backend: str, weights: list[float]):
    stage_set = {"reward_weights": weights, "use_vllm": backend == "vllm"}
    return trl_config(cfg, checkpoint_dir, **stage_set)


def reward_plan(cfg: Config) -> tuple[list[str], list[float]]:
    """Reward names and weights, with verified accuracy always computed (weight 0 if unrewarded)."""
    names, weights = list(cfg.rewards), list(cfg.rewards.values())
    if "accuracy" not in names:
        names.append("accuracy")
        weights.append(0.0)
    return names, weights


def reward_gap_curve(history: list[dict], weights: dict[str, float]) -> list[float]:
    """Per logging step: total reward, normalized by the positive weights, minus verified accuracy.

    0 when reward and correctness agree; it grows when the policy earns reward without being right.
    """
    scale = sum(w for w in weights.values() if w > 0) or 1.0
    return [e["reward"] / scale - e["rewards/accuracy/mean"] for e in history if "reward" in e and "rewards/accuracy/mean" in e]


class CountedRollouts:
    """A reward function that also counts the rollouts it scores (components.accounting).

    TRL hands every reward function the completions' token ids, so the first one sees all the
    tokens GRPO generated; it keeps the function's name, which TRL logs its reward by."""

    def __init__(self, reward):
        self.reward, self.__name__ = reward, reward.__name__

    def __call__(self, *args, completion_ids=None, **kwargs) -> list[float]:
        if completion_ids is not None:
            accounting.add(tokens_generated=sum(len(ids) for ids in completion_ids), samples_generated=len(completion_ids))
        return self.reward(*args, completion_ids=completion_ids, **kwargs)


def informative_subset(records: list[dict], correct: list[int], samples: int) -> tuple[list[dict], dict[str, float]]:
    """The prompts whose `samples` rollouts were neither all right nor all wrong, and the shares of each kind."""
    kept = [r for r, c in zip(records, correct, strict=True) if 0 < c < samples]
    total = max(1, len(records))
    stats = {
        "rl_prompts": float(len(records)),
        "informative_prompts": float(len(kept)),
        "informative_share": len(kept) / total,
        "never_solved_share": sum(c == 0 for c in correct) / total,
        "always_solved_share": sum(c == samples for c in correct) / total,
    }
    return kept, stats


def keep_informative(records: list[dict], model_dir: str, cfg: Config) -> tuple[list[dict], dict[str, float]]:
    """Sample `cfg.informative_prompts` rollouts per prompt as GRPO would, count the verified ones, keep the mixed prompts."""
    from components.answers import extract_answer, is_correct
    from components.generation import chat_prompts, generate, load_for_generation

    tokenizer, model, backend, why = load_for_generation(model_dir, cfg.generation_backend, cfg.seed)
    print(f"[grpo] choosing informative prompts: {cfg.informative_prompts} rollouts per prompt with {backend} ({why})")
    prompts = chat_prompts(tokenizer, [r["prompt"] for r in records])
    n = cfg.informative_prompts
    rollouts = generate(
        model, tokenizer, prompts, cfg.max_completion_length, n, cfg.temperature, seed=cfg.seed, desc=f"prompt filter n={n}"
    )
    correct = [sum(is_correct(extract_answer(t), str(r["answer"])) for t in texts) for r, texts in zip(records, rollouts, strict=True)]
    kept, stats = informative_subset(records, correct, n)
    micro_batches = getattr(cfg, "gradient_accumulation_steps", 1)  # a TRL extra: present only when set
    prompts_per_step = cfg.per_device_train_batch_size * micro_batches // cfg.num_generations
    if len(kept) < prompts_per_step:
        raise ValueError(
            f"grpo.informative_prompts: only {len(kept)} of {len(records)} RL prompts are sometimes solved and sometimes "
            f"not by the starting policy ({stats['never_solved_share']:.0%} never, {stats['always_solved_share']:.0%} always), fewer "
            f"than one step's {prompts_per_step}: give prompts of the policy's level, or set informative_prompts: 0"
        )
    print(
        f"[grpo] training on {len(kept)} of {len(records)} prompts ({stats['never_solved_share']:.0%} never solved, "
        f"{stats['always_solved_share']:.0%} always solved in {n} rollouts)"
    )
    return kept, stats


def run(cfg: Config, inputs: dict[str, str], out_dir: str, callbacks: list | None = None) -> StageResult:
    """RL-train `inputs["model"]` on the prompts of `inputs["rl"]`; the policy lands in `out_dir/model`."""
    from datasets import Dataset
    from trl import GRPOTrainer

    start = time.perf_counter()
    out = Path(out_dir)
    checkpoint_dir = out / "checkpoints"
    names, weights = reward_plan(cfg)
    functions = rewards.build(
        names,
        max_completion_length=cfg.max_completion_length,
        length_buffer=cfg.length_buffer,
        target_script=cfg.target_script,
        reward_model=inputs.get("reward_model"),
    )
    backend, why = choose_backend(cfg.generation_backend)
    print(f"[grpo] rollouts with {backend}: {why}")

    tokenizer = load_tokenizer(inputs["model"])
    tokenizer.padding_side = "left"
    records = read_dataset(inputs["rl"], "rl")
    selection = {}
    if cfg.informative_prompts:
        records, selection = keep_informative(records, inputs["model"], cfg)
    model = load_model(inputs["model"])
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": str(r["answer"])} for r in records])
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[CountedRollouts(functions[0]), *functions[1:]],
        args=training_args(cfg, checkpoint_dir, backend, weights),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=cfg.peft_config(),
    )
    resume_from = train_resumably(trainer, cfg, checkpoint_dir, "grpo")

    outputs = save_trained(trainer, out / "model", tokenizer)
    if trainer.is_world_process_zero():
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    history = [e for e in trainer.state.log_history if "reward" in e]
    curves = {key: [e[key] for e in history if key in e] for key in ("reward", "kl", "completions/mean_length", "frac_reward_zero_std")}
    curves.update({f"reward/{n}": [e[f"rewards/{n}/mean"] for e in history if f"rewards/{n}/mean" in e] for n in names})
    curves["reward_accuracy_gap"] = reward_gap_curve(history, dict(zip(names, weights, strict=True)))
    return StageResult(
        stage="grpo",
        outputs=outputs,
        metrics={f"final_{_slug(k)}": _tail_mean(v) for k, v in curves.items() if v}
        | {"global_step": float(trainer.state.global_step)}
        | selection,
        curves={_slug(k): v for k, v in curves.items()},
        info={
            "generation_backend": backend,
            "generation_backend_reason": why,
            "parent_model": inputs["model"],
            "resumed_from": resume_from,
        },
        wall_seconds=time.perf_counter() - start,
    )


def _tail_mean(values: list[float], tail: int = 3) -> float:
    """Mean of the last few logged values: single GRPO steps are noisy."""
    last = values[-tail:]
    return sum(last) / len(last)


def _slug(key: str) -> str:
    return key.replace("/", "_")
