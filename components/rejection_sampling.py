"""Rejection sampling stage: turn the RL model's verified answers into a new SFT dataset.

For every prompt it samples `num_samples` responses, keeps those whose final answer is
verified correct (and, by default, that follow the answer format), drops duplicates, ranks
the rest with the reward model when there is one (shorter first otherwise) and keeps the best
`keep_per_prompt`. The result is written in the SFT `messages` format for the round-2 SFT,
together with on-policy preference pairs (a kept response against a wrong one for the same
prompt) that the alignment stage can use, and acceptance statistics.

    posttrain rejection-sampling --params params.yaml --model artifacts/grpo/<key>/model \\
        --prompts data/rl.jsonl --out artifacts/rejection_sampling/manual [--reward-model PATH]
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field

from components.artifacts import DataError, read_records, write_json, write_records
from components.config import StageResult
from components.dataset_frames import read_dataset
from components.sampling import SamplingConfig, sample_verified, to_preference_pairs, to_sft_records


class RejectionSamplingConfig(SamplingConfig):
    """The shared sampler's knobs, plus how much the kept answers weigh in round 2's dataset."""

    verified_copies: int = Field(
        1,
        ge=1,
        le=64,
        description="times each kept answer is written to round 2's dataset, beside one copy of the original SFT data (its weight there)",
    )


Config = RejectionSamplingConfig  # the stage contract's name for it


def run(cfg: Config, inputs: dict[str, str], out_dir: str) -> StageResult:
    """Sample from `inputs["model"]` on `inputs["prompts"]`; writes `sft.jsonl`, `pairs.jsonl`, `stats.json`."""
    start = time.perf_counter()
    out = Path(out_dir)
    problems = read_dataset(inputs["prompts"], "rl")[: cfg.limit]
    scorer = None
    if inputs.get("reward_model"):
        from components.scoring import RewardScorer

        scorer = RewardScorer(inputs["reward_model"], batch_size=cfg.batch_size)
    candidates, stats, engine = sample_verified(inputs["model"], problems, cfg, scorer)
    records = to_sft_records(candidates) * cfg.verified_copies
    verified_rows = len(records)
    if not records:
        message = f"rejection sampling kept no response of {inputs['model']}: no verified-correct sample in {len(problems)} prompts"
        if not (cfg.include_sft_data and inputs.get("sft")):
            raise DataError(message)
        print(f"[rejection_sampling] warning: {message}; the new dataset is the original SFT data only")
    if cfg.include_sft_data and inputs.get("sft"):
        records += read_records(inputs["sft"])
    pairs = to_preference_pairs(candidates)
    stats.update(
        dataset_size=float(len(records)),
        verified_row_share=verified_rows / max(len(records), 1),  # what weight round 2 gives the new answers
        preference_pairs=float(len(pairs)),
    )
    write_records(out / "sft.jsonl", records)
    write_records(out / "pairs.jsonl", pairs)
    write_json(out / "stats.json", stats)
    return StageResult(
        stage="rejection_sampling",
        outputs={"sft": str(out / "sft.jsonl"), "pairs": str(out / "pairs.jsonl"), "stats": str(out / "stats.json")},
        metrics=stats,
        info={
            "parent_model": inputs["model"],
            "generation_backend": engine,
            "ranked_by": "reward model" if scorer else "length (no reward model)",
        },
        wall_seconds=time.perf_counter() - start,
    )
