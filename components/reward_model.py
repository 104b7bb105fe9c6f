"""Reward model stage: a Bradley-Terry scorer of responses, trained on preference pairs.

TRL's RewardTrainer trains `-log sigmoid(r_chosen - r_rejected)` from the cold-start SFT model,
as in the R1 recipe. What r is (`scorer`, components/scoring.py): by default the SFT LM's own
log-likelihood of the exchange, which already sees a wrong step or a final answer that does not
follow (the LM has learned the arithmetic) and which the pairs sharpen at a small learning rate;
or TRL's one-output head on the last token, which on the tiny model learned format breaks and
little else (validation: bench/results/tuning.md).
A slice of the pairs is held out; the stage reports pairwise accuracy on it, scored by the
same `RewardScorer` that best-of-N evaluation, GRPO's optional `reward_model` reward and
rejection sampling use, so the number measures the scorer the later stages actually get.
It is also reported per kind of rejected answer (`rejected_kind`: a format break, a wrong final
answer under right steps, a wrong step), since "separates good from bad" means little when one
easy kind carries the average; held_out_pairs.jsonl keeps every held-out pair's margin.

With `prompts` (the flow passes the RL prompts), the starting model also answers each one
`on_policy_samples` times and a verified right answer against a wrong one becomes a pair: the
synthetic near-misses are mistakes we imagined, these are the ones the policy makes (the pairs
best-of-N and rejection sampling rank). A slice of them is held out too, reported apart
(`on_policy_pairwise_accuracy`, kind `on_policy` in held_out_pairs.jsonl).

    posttrain reward-model --params params.yaml --model artifacts/sft/<key>/model \\
        --prefs data/prefs.jsonl [--prompts data/rl.jsonl] --out artifacts/reward_model/manual
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from components.answers import THINK_CLOSE, extract_answer
from components.artifacts import DataError, write_json, write_records
from components.config import StageResult
from components.dataset_frames import read_dataset
from components.modeling import load_model, load_tokenizer
from components.sampling import SamplingConfig, sample_verified, to_preference_pairs
from components.scoring import ON_POLICY, RewardScorer, use_scorer
from components.trainer_args import TrainerConfig, save_trained, train_resumably, trl_config


class RewardModelConfig(TrainerConfig):
    """`trl.RewardConfig`: any of its fields may be set here; the held-out split is ours."""

    TRL_CLASS = "trl.RewardConfig"
    OWN_FIELDS = frozenset({"held_out_fraction", "scorer", "on_policy_samples", "on_policy_temperature"})

    max_steps: int = Field(150, ge=1, description="optimizer steps")
    per_device_train_batch_size: int = Field(16, ge=1, description="preference pairs per step")
    learning_rate: float = Field(1e-5, gt=0, le=1)
    warmup_steps: int = Field(10, ge=0)
    max_length: int = Field(256, ge=16, description="tokens of prompt + response")
    held_out_fraction: float = Field(0.1, gt=0, lt=1, description="pairs kept aside for pairwise accuracy")
    center_rewards_coefficient: float | None = Field(0.01, ge=0, description="keeps scores near 0 (TRL's option; head only)")
    logging_steps: int = Field(10, ge=1)
    scorer: Literal["head", "log_likelihood"] = Field(
        "log_likelihood",
        description="head: a score head on the last token (TRL's); log_likelihood: the LM's own log-likelihood of the answer,"
        " trained with the same loss (components/scoring.py)",
    )

    on_policy_samples: int = Field(
        8,
        ge=0,
        le=64,
        description="answers the starting model samples per verifiable prompt (`prompts`): a verified right one against a wrong one"
        " becomes a pair too, so the scorer learns the mistakes the policy makes (0: the preference pairs only)",
    )
    on_policy_temperature: float = Field(0.8, gt=0, le=2.0, description="sampling temperature of those answers")


Config = RewardModelConfig  # the stage contract's name for it


def split_pairs(records: list[dict], held_out_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded train/held-out split; the held-out part keeps at least one pair."""
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    n_held_out = max(1, round(len(shuffled) * held_out_fraction))
    return shuffled[n_held_out:], shuffled[:n_held_out]


REJECTED_KINDS = ("format", "wrong_final", "wrong_step")


def rejected_kind(chosen: str, rejected: str) -> str:
    """What is wrong with the rejected answer, read off the pair itself (so any user's pairs have kinds too).

    format: it has no strict boxed answer; wrong_final: its reasoning equals the chosen one's but
    the final answer differs; wrong_step: its reasoning differs (a slip, and what follows from it)."""
    if extract_answer(rejected) is None or THINK_CLOSE in chosen and THINK_CLOSE not in rejected:
        return "format"
    if THINK_CLOSE in chosen and chosen.split(THINK_CLOSE, 1)[0] == rejected.split(THINK_CLOSE, 1)[0]:
        return "wrong_final"
    return "wrong_step"


def score_pairs(scorer: RewardScorer, pairs: list[dict]) -> list[dict]:
    """Per pair: its question, its kind and the margin r(chosen) - r(rejected) (above 0: the scorer ranks it right).

    The question names the pair, so that runs which split the pairs alike can be pooled pair by pair (components.claims)."""
    prompts = [p["prompt"] for p in pairs]
    chosen_texts, rejected_texts = [p["chosen"][-1]["content"] for p in pairs], [p["rejected"][-1]["content"] for p in pairs]
    chosen, rejected = scorer.score(prompts, chosen_texts), scorer.score(prompts, rejected_texts)
    return [
        {"prompt": question(prompt), "kind": rejected_kind(c_text, r_text), "margin": c - r, "correct": c > r}
        for prompt, c_text, r_text, c, r in zip(prompts, chosen_texts, rejected_texts, chosen, rejected, strict=True)
    ]


def question(prompt: str | list[dict]) -> str:
    """A pair's question: a plain prompt, or a chat prompt's last message."""
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


def pairwise_metrics(scored: list[dict]) -> dict[str, float]:
    """Held-out pairwise accuracy and mean margin, overall and per kind of rejected answer present."""
    metrics = {
        "held_out_pairwise_accuracy": sum(p["correct"] for p in scored) / len(scored),
        "held_out_mean_margin": sum(p["margin"] for p in scored) / len(scored),
    }
    for kind in REJECTED_KINDS:
        members = [p for p in scored if p["kind"] == kind]
        if members:
            metrics[f"held_out_pairwise_accuracy.{kind}"] = sum(p["correct"] for p in members) / len(members)
            metrics[f"held_out_pairs.{kind}"] = float(len(members))
    return metrics


def on_policy_metrics(scored: list[dict]) -> dict[str, float]:
    """How often the scorer ranked the policy's own right answer over its wrong one, on held-out prompts."""
    if not scored:
        return {}
    return {"on_policy_pairwise_accuracy": sum(p["correct"] for p in scored) / len(scored), "on_policy_held_out_pairs": float(len(scored))}


def scorer_model(cfg: Config, model_dir: str) -> dict:
    """The trainer's model and LoRA settings for `cfg.scorer`."""
    if cfg.scorer == "head":  # a path: TRL builds the sequence-classification head on it; LoRA trains the head in full
        return {"model": model_dir, "peft_config": cfg.peft_config("SEQ_CLS", modules_to_save=["score"])}
    model = load_model(model_dir)
    model.config.num_labels = 1  # TRL's check that a reward model outputs one score: the hook makes it so
    return {"model": model, "peft_config": cfg.peft_config("CAUSAL_LM")}


def scorer_settings(cfg: Config) -> dict:
    # Centering pulls (r_chosen + r_rejected) to 0: on log-likelihoods (about -460 a sequence here) it would
    # swamp the pairwise loss and train the LM to make every answer likelier.
    return {"center_rewards_coefficient": None} if cfg.scorer == "log_likelihood" else {}


def on_policy_pairs(cfg: Config, model_dir: str, prompts: str | None) -> tuple[list[dict], dict[str, float]]:
    """The starting model's own answers to verifiable prompts: per prompt, a verified right one (the
    shortest whose written steps all hold) against a wrong one, and the sampling's statistics. These are the mistakes the policy
    makes: on the local task, arithmetic slips the LM believes, where a synthetic slip is a random one."""
    if not cfg.on_policy_samples or not prompts:
        return [], {}
    sampling = SamplingConfig(
        num_samples=cfg.on_policy_samples, keep_per_prompt=1, temperature=cfg.on_policy_temperature, include_sft_data=False, seed=cfg.seed
    )
    candidates, stats, _ = sample_verified(model_dir, read_dataset(prompts, "rl"), sampling, desc="reward model: own answers")
    pairs = to_preference_pairs(candidates)
    return pairs, {
        "on_policy_verified_rate": stats["verified_correct_rate"],
        "on_policy_wrong_step_share": stats["wrong_step_share"],  # right answers left out of the chosen side: a wrong step
        "on_policy_pairs": float(len(pairs)),
    }


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Train a reward model from `inputs["model"]` on `inputs["prefs"]` (and, with `inputs["prompts"]`,
    on pairs of its own answers to them); it lands in `out_dir/model`."""
    from datasets import Dataset
    from trl import RewardTrainer

    start = time.perf_counter()
    out = Path(out_dir)
    records = read_dataset(inputs["prefs"], "prefs")
    if len(records) < 2:
        raise DataError(f"{inputs['prefs']}: the reward model needs at least 2 preference pairs, got {len(records)}")
    train, held_out = split_pairs(records, cfg.held_out_fraction, cfg.seed)
    own_pairs, sampling_metrics = on_policy_pairs(cfg, inputs["model"], inputs.get("prompts"))
    own_train, own_held_out = split_pairs(own_pairs, cfg.held_out_fraction, cfg.seed) if len(own_pairs) >= 2 else (own_pairs, [])
    train = train + own_train

    tokenizer = load_tokenizer(inputs["model"])
    columns = ("prompt", "chosen", "rejected")
    dataset = Dataset.from_list([{k: r[k] for k in columns} for r in train])
    trainer = RewardTrainer(
        args=trl_config(cfg, out / "checkpoints", dataset_num_proc=1, **scorer_settings(cfg)),
        train_dataset=dataset,
        processing_class=tokenizer,
        **scorer_model(cfg, inputs["model"]),
    )
    trainer.model.config.pad_token_id = tokenizer.pad_token_id  # where a head's score is read: last non-pad token
    use_scorer(trainer.model, cfg.scorer)
    resumed_from = train_resumably(trainer, cfg, out / "checkpoints", "reward_model")
    outputs = save_trained(trainer, out / "model", tokenizer, generation_defaults=False)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)

    scorer = RewardScorer(str(out / "model"))
    scored, own_scored = score_pairs(scorer, held_out), [p | {"kind": ON_POLICY} for p in score_pairs(scorer, own_held_out)]
    outputs["held_out_pairs"] = str(write_records(out / "held_out_pairs.jsonl", scored + own_scored))
    history = trainer.state.log_history
    metrics = {
        **pairwise_metrics(scored),
        **sampling_metrics,
        **on_policy_metrics(own_scored),
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
