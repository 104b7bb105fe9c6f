"""The GRPO stage: the informative-prompt filter (fast), and on the tiny model (slow) it trains,
logs each reward and the accuracy gap, and learns what the accuracy reward pays for."""

import pytest

from components import grpo
from components.modeling import load_model
from tests.conftest import tiny_overrides


def test_only_prompts_sometimes_solved_and_sometimes_not_are_informative():
    records = [{"prompt": i} for i in range(5)]
    kept, stats = grpo.informative_subset(records, correct=[0, 3, 8, 1, 7], samples=8)
    assert [r["prompt"] for r in kept] == [1, 3, 4]
    assert stats == {
        "rl_prompts": 5.0,
        "informative_prompts": 3.0,
        "informative_share": 0.6,
        "never_solved_share": 0.2,
        "always_solved_share": 0.2,
    }


def test_one_rollout_per_prompt_cannot_tell_an_informative_prompt():
    with pytest.raises(ValueError, match="informative_prompts: one sample"):
        grpo.Config(informative_prompts=1)


def test_too_few_informative_prompts_for_one_step_is_named_before_training(monkeypatch):
    """A policy that solves everything (or nothing) leaves no group with an advantage: say so, with the shares."""
    from components import generation

    class Tokenizer:
        def apply_chat_template(self, conversation, tokenize, add_generation_prompt):
            return conversation[0]["content"]

    monkeypatch.setattr(generation, "load_for_generation", lambda *a, **k: (Tokenizer(), None, "hf", "stand-in"))
    always_right = lambda model, tokenizer, prompts, *a, **k: [[r"<think>x</think> \boxed{2}"] * 4 for _ in prompts]  # noqa: E731
    monkeypatch.setattr(generation, "generate", always_right)
    records = [{"prompt": [{"role": "user", "content": f"1+1 ({i})"}], "answer": "2"} for i in range(40)]
    cfg = grpo.Config(informative_prompts=4, per_device_train_batch_size=32, num_generations=8)
    with pytest.raises(ValueError, match=r"only 0 of 40 RL prompts .* \(0% never, 100% always\), fewer than one step's 4"):
        grpo.keep_informative(records, "some/model", cfg)


@pytest.mark.slow
def test_grpo_trains_logs_each_reward_and_the_gap(tmp_path, tiny_sft_model, tiny_data):
    cfg = grpo.Config(**tiny_overrides()["grpo"])
    result = grpo.run(cfg, {"model": tiny_sft_model, "rl": tiny_data["rl"]}, str(tmp_path))
    assert load_model(result.outputs["model"]) is not None
    assert result.info["generation_backend"] in ("hf", "vllm") and result.info["generation_backend_reason"]  # it says why
    for name in ("reward_accuracy", "reward_format", "reward_language_consistency", "kl", "reward_accuracy_gap"):
        assert len(result.curves[name]) == 3, name
    assert all(0.0 <= v <= 1.0 for v in result.curves["reward_accuracy"])
    assert not (tmp_path / "checkpoints").exists()


def verified_reward(model_dir: str, problems: list[dict], seed: int = 1) -> tuple[float, list[list[str]]]:
    """Mean accuracy reward of 8 sampled answers per prompt (fixed seed), and the samples."""
    from components.answers import score
    from components.generation import chat_prompts, sample
    from components.modeling import load_tokenizer
    from components.sampling import SamplingConfig

    tokenizer = load_tokenizer(model_dir)
    cfg = SamplingConfig(num_samples=8, temperature=1.0, max_new_tokens=64, seed=seed)
    samples = sample(load_model(model_dir), tokenizer, chat_prompts(tokenizer, [p["prompt"] for p in problems]), cfg, desc="check")
    hits = [score(s, p["answer"]) for p, group in zip(problems, samples, strict=True) for s in group]
    return sum(hits) / len(hits), samples


@pytest.mark.slow
def test_grpo_raises_the_mean_verified_reward_on_its_training_prompts(tmp_path, tiny_base_model, tiny_data):
    """GRPO must move the policy toward what the accuracy reward pays for.

    The tiny model cannot solve the arithmetic, so its groups would have no reward variance.
    The start is instead an SFT model whose data boxes `7` as the answer in a quarter of its
    rows: it answers 7 now and then, and the task's reference answer is 7 for every prompt.
    The mean verified reward on the training prompts is measured before and after with the
    same sampling seed; a negated or disconnected accuracy reward makes it fall or stay put.
    The informative-prompt filter, run on this policy first, keeps the task's prompts and drops
    sixteen more whose answer no rollout gives."""
    import re

    from components import sft
    from components.artifacts import read_records, write_records

    rows = read_records(tiny_data["sft"])
    for row in rows[::4]:
        row["messages"][-1]["content"] = re.sub(r"\\boxed\{[^}]*\}", r"\\boxed{7}", row["messages"][-1]["content"])
    sevens = write_records(tmp_path / "sft-sevens.jsonl", rows)
    sft_cfg = sft.Config(**{**tiny_overrides()["sft"], "max_steps": 150, "learning_rate": 3e-3, "warmup_steps": 10})
    start = sft.run(sft_cfg, {"model": tiny_base_model, "sft": str(sevens)}, str(tmp_path / "sft")).outputs["model"]
    task = [{**p, "answer": "7"} for p in read_records(tiny_data["rl"])[:16]]
    rl = write_records(tmp_path / "rl.jsonl", task)
    before, _ = verified_reward(start, task, seed=2)

    overrides = {
        **tiny_overrides()["grpo"],
        "rewards": {"accuracy": 1.0},
        "max_steps": 20,
        "per_device_train_batch_size": 32,
        "num_generations": 8,  # 4 prompts x 8 answers a step
        "learning_rate": 5e-4,
        "beta": 0.0,
        "temperature": 1.0,
        "max_completion_length": 64,
    }
    impossible = [{**p, "answer": "-4321"} for p in read_records(tiny_data["rl"])[16:32]]
    kept, shares = grpo.keep_informative(task + impossible, start, grpo.Config(**overrides, informative_prompts=8))
    assert shares["never_solved_share"] >= 0.5 and all(r["answer"] == "7" for r in kept), "an unsolvable prompt was kept"
    assert len(kept) >= 4, f"only {len(kept)} of the 16 sometimes-solved prompts kept"

    result = grpo.run(grpo.Config(**overrides), {"model": start, "rl": str(rl)}, str(tmp_path / "grpo"))
    after, _ = verified_reward(result.outputs["model"], task, seed=2)
    print(f"GRPO on {len(task)} prompts: verified reward {before:.3f} -> {after:.3f}; curve {result.curves['reward_accuracy']}")
    assert after >= before + 0.15, f"mean verified reward {before:.3f} -> {after:.3f}: GRPO did not learn (margin 0.15)"


def test_a_step_of_micro_batches_needs_the_prompts_of_all_of_them(monkeypatch):
    """8 completions x 4 micro-batches in groups of 4: one step trains on 8 prompts, not 2."""
    from components import generation

    class Tokenizer:
        def apply_chat_template(self, conversation, tokenize, add_generation_prompt):
            return conversation[0]["content"]

    monkeypatch.setattr(generation, "load_for_generation", lambda *a, **k: (Tokenizer(), None, "hf", "stand-in"))
    half_right = lambda model, tokenizer, prompts, *a, **k: [[r"\boxed{2}", r"\boxed{3}"] for _ in prompts]  # noqa: E731
    monkeypatch.setattr(generation, "generate", half_right)
    records = [{"prompt": [{"role": "user", "content": f"1+1 ({i})"}], "answer": "2"} for i in range(5)]
    cfg = grpo.Config(informative_prompts=2, per_device_train_batch_size=8, gradient_accumulation_steps=4, num_generations=4)
    with pytest.raises(ValueError, match=r"only 5 of 5 RL prompts .* fewer than one step's 8"):
        grpo.keep_informative(records, "some/model", cfg)
