"""Verified sampling, shared below the stages: sample a model, keep the verified-correct answers.

For every prompt it samples `num_samples` responses, keeps those whose final answer is verified
correct (and, by default, that follow the answer format and whose written equations all hold:
a right answer reached through slips that cancel is no answer to learn from), drops duplicates, ranks the rest with
the reward model when there is one (shorter first otherwise) and keeps the best
`keep_per_prompt`. The rejection sampling stage, distillation's teacher and the reward model's
own-answer pairs all use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from components import accounting
from components.answers import extract_answer, is_correct, wrong_equations
from components.config import StrictModel
from components.generation import Backend, Precision, chat_prompts, load_for_generation, sample
from components.rewards import follows_format


class SamplingConfig(StrictModel):
    """How verified samples are drawn: rejection sampling's section, and distillation's teacher sampling."""

    num_samples: int = Field(8, ge=1, le=256, description="responses sampled per prompt")
    keep_per_prompt: int = Field(2, ge=1, description="best verified responses kept per prompt")
    temperature: float = Field(0.4, gt=0, le=2.0, description="0.4: the RL model verifies 3x more samples than at 0.8 (tuning.md)")
    top_p: float = Field(1.0, gt=0, le=1.0)
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(64, ge=1, description="sequences per generate call")
    require_format: bool = Field(True, description="keep only responses in the reasoning + boxed-answer format")
    check_steps: bool = Field(
        True,
        description="keep only responses whose written equations (`23+15=38`) all hold, not a right answer reached through wrong steps",
    )
    include_sft_data: bool = Field(True, description="append the original SFT data to the new dataset")
    limit: int | None = Field(None, ge=1, description="sample from the first N prompts only")
    generation_backend: Backend = Field("auto", description="auto: vLLM when installed with a GPU, else HF generate")
    generation_dtype: Precision = Field("float32", description="weights for HF generate; auto: bf16 where the hardware has it")
    seed: int = 0


@dataclass
class Candidates:
    """One prompt's samples, sorted into what the filters keep and reject."""

    prompt: list[dict]
    answer: str
    kept: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    n_correct: int = 0
    n_wrong_steps: int = 0  # verified correct, but an equation on the way is wrong
    n_duplicates: int = 0


def select(prompt: list[dict], answer: str, samples: list[str], require_format: bool, check_steps: bool = True) -> Candidates:
    """Verified-correct, well-formed, step-checked, de-duplicated responses of one prompt (in sample order)."""
    found = Candidates(prompt=prompt, answer=answer)
    seen: set[str] = set()
    for text in samples:
        if not is_correct(extract_answer(text), answer):
            found.wrong.append(text)
            continue
        found.n_correct += 1
        if require_format and not follows_format(text):
            continue
        if check_steps and wrong_equations(text):
            found.n_wrong_steps += 1
            continue
        key = " ".join(text.split())
        if key in seen:
            found.n_duplicates += 1
            continue
        seen.add(key)
        found.kept.append(text)
    return found


def rank(candidates: list[Candidates], keep_per_prompt: int, scorer=None) -> list[list[float]]:
    """Keep each prompt's best responses: by reward-model score, or shortest first without one."""
    all_scores = []
    for c in candidates:
        use_scorer = scorer is not None and c.kept
        scores = scorer.score([c.prompt] * len(c.kept), c.kept) if use_scorer else [-float(len(t)) for t in c.kept]
        order = sorted(range(len(c.kept)), key=lambda i: -scores[i])[:keep_per_prompt]
        c.kept = [c.kept[i] for i in order]
        all_scores.append([scores[i] for i in order])
    return all_scores


def sample_verified(
    model_dir: str, problems: list[dict], cfg: SamplingConfig, scorer=None, desc: str = "rejection sampling"
) -> tuple[list[Candidates], dict, str]:
    """Sample, verify, de-duplicate and rank; returns the candidates, acceptance statistics, engine used.
    `desc` names the progress bar, so an operator sees which stage is sampling."""
    tokenizer, model, backend, why = load_for_generation(model_dir, cfg.generation_backend, cfg.seed, cfg.generation_dtype)
    print(f"[sampling] generating with {backend}: {why}")
    prompts = chat_prompts(tokenizer, [p["prompt"] for p in problems])
    samples = sample(model, tokenizer, prompts, cfg, desc=desc)
    candidates = [
        select(p["prompt"], str(p["answer"]), s, cfg.require_format, cfg.check_steps) for p, s in zip(problems, samples, strict=True)
    ]
    n_unique = sum(len(c.kept) for c in candidates)
    scores = rank(candidates, cfg.keep_per_prompt, scorer)
    n_samples = len(problems) * cfg.num_samples
    kept_scores = [s for group in scores for s in group]
    n_correct = sum(c.n_correct for c in candidates)
    stats = {
        "prompts": float(len(problems)),
        "samples": float(n_samples),
        "verified_correct_rate": n_correct / n_samples,
        # of the verified-correct samples, those with a wrong equation on the way (counted only with check_steps)
        "wrong_step_share": sum(c.n_wrong_steps for c in candidates) / max(1, n_correct),
        "duplicate_rate": sum(c.n_duplicates for c in candidates) / n_samples,
        "unique_accepted": float(n_unique),
        "kept": float(len(kept_scores)),
        "acceptance_rate": len(kept_scores) / n_samples,
        "prompt_coverage": sum(bool(c.kept) for c in candidates) / max(1, len(candidates)),
    }
    accounting.add(samples_kept=len(kept_scores))
    if scorer is not None and kept_scores:
        stats["mean_kept_reward"] = sum(kept_scores) / len(kept_scores)
    return candidates, stats, f"{backend}: {why}"


def to_sft_records(candidates: list[Candidates]) -> list[dict]:
    return [{"messages": [*c.prompt, {"role": "assistant", "content": text}]} for c in candidates for text in c.kept]


def to_preference_pairs(candidates: list[Candidates]) -> list[dict]:
    """On-policy pairs: each prompt's best kept response against its first wrong one."""
    return [
        {
            "prompt": c.prompt,
            "chosen": [{"role": "assistant", "content": c.kept[0]}],
            "rejected": [{"role": "assistant", "content": c.wrong[0]}],
        }
        for c in candidates
        if c.kept and c.wrong
    ]
