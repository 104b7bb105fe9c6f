"""The alignment stage on the tiny model: DPO, a missing preference file, and alignment by GRPO."""

import pytest

from components import alignment, grpo, reward_model
from components.artifacts import DataError
from components.modeling import load_model
from tests.conftest import pretraining_loss, tiny_overrides

pytestmark = pytest.mark.slow


def test_dpo_alignment_logs_margins_and_accuracies(tmp_path, tiny_sft_model, tiny_data):
    """3 steps logged every 2: TRL's end-of-training summary carries the last step's rewards but no loss."""
    overrides = tiny_overrides()["alignment"]
    cfg = alignment.Config(**{**overrides, "dpo": {**overrides["dpo"], "logging_steps": 2}, "pairs": "dataset"})
    result = alignment.run(cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path))
    assert len(result.curves["rewards_margins"]) == 2 and len(result.curves["rewards_accuracies"]) == 2
    assert len(result.curves["loss"]) == 1 and "final_loss" in result.metrics
    assert load_model(result.outputs["model"]) is not None


def test_dpo_with_replay_ends_with_a_lower_pretraining_loss_than_plain_dpo(tmp_path, tiny_sft_model, tiny_data):
    """The PPO-ptx term in DPO (components.replay): the same DPO run, with and without the base's text replayed.

    The tiny SFT model is barely pretrained, so DPO's own SFT term lowers that loss too (4.49 -> 3.52
    when measured); the replay must lower it further (3.02), whatever plain DPO does to it."""
    from components.artifacts import read_records

    drills = [r["text"] for r in read_records(tiny_data["pretrain"])][-64:]
    dpo = {**tiny_overrides()["alignment"]["dpo"], "max_steps": 8, "learning_rate": 2e-3, "logging_steps": 2}
    inputs = {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}
    plain = alignment.run(alignment.Config(pairs="dataset", dpo=dpo), inputs, str(tmp_path / "plain"))
    cfg = alignment.Config(pairs="dataset", dpo=dpo | {"replay_weight": 1.0, "replay_batch_size": 16})
    replayed = alignment.run(cfg, inputs | {"replay": tiny_data["pretrain"]}, str(tmp_path / "replay"))

    assert len(replayed.curves["replay_loss"]) == 4 and "final_replay_loss" in replayed.metrics
    assert "replay_loss" not in plain.curves
    before = pretraining_loss(tiny_sft_model, drills)
    after_plain, after_replay = pretraining_loss(plain.outputs["model"], drills), pretraining_loss(replayed.outputs["model"], drills)
    assert after_replay < after_plain - 0.05, (before, after_plain, after_replay)


def test_alignment_on_a_missing_preference_file_names_it(tmp_path, tiny_sft_model):
    cfg = alignment.Config(**tiny_overrides()["alignment"])
    with pytest.raises(DataError, match="dataset file not found: .*missing-prefs.jsonl"):
        alignment.run(cfg, {"model": tiny_sft_model, "prefs": str(tmp_path / "missing-prefs.jsonl")}, str(tmp_path / "out"))


def test_alignment_by_grpo_on_the_reward_model(tmp_path, tiny_sft_model, tiny_data):
    """method grpo: the recipe runs the grpo stage with the alignment_grpo section (flows.post_training.Recipe.align)."""
    from flows.params import PipelineParams

    rm_cfg = reward_model.Config(**tiny_overrides()["reward_model"])
    scorer = reward_model.run(rm_cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path / "rm")).outputs["model"]
    overrides = {**tiny_overrides()["grpo"], "rewards": {"reward_model": 1.0, "accuracy": 1.0}, "max_steps": 2}
    params = PipelineParams.model_validate({"alignment": {"method": "grpo"}, "alignment_grpo": overrides})
    inputs = {"model": tiny_sft_model, "rl": tiny_data["rl"], "reward_model": scorer}
    result = grpo.run(params.alignment_grpo, inputs, str(tmp_path / "aligned"))
    assert all(0.0 < v < 1.0 for v in result.curves["reward_reward_model"])  # a sigmoid of the scorer's output
    assert load_model(result.outputs["model"]) is not None
    with pytest.raises(ValueError, match="reward model"):
        grpo.run(params.alignment_grpo, {"model": tiny_sft_model, "rl": tiny_data["rl"]}, str(tmp_path / "no-rm"))
    with pytest.raises(ValueError, match="that is the grpo stage run with the alignment_grpo section"):
        alignment.run(params.alignment, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path / "dpo"))


def _completion_logprob(model, tokenizer, prompt: list[dict], completion: str) -> float:
    """log p(completion | prompt) under `model`, the completion rendered as the chat template's assistant turn."""
    import torch

    context = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    ids = context_ids + tokenizer(completion + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
    targets = torch.tensor(ids[1:])
    return float(logits[torch.arange(len(targets)), targets][len(context_ids) - 1 :].sum())


def implicit_margin(policy_dir: str, reference_dir: str, pairs: list[dict]) -> float:
    """DPO's implicit reward margin, measured from the saved models on the original pairs (not TRL's log)."""
    from components.modeling import load_model, load_tokenizer

    tokenizer, policy, reference = load_tokenizer(policy_dir), load_model(policy_dir), load_model(reference_dir)
    total = 0.0
    for pair in pairs:
        ratios = []
        for side in ("chosen", "rejected"):
            text = pair[side][-1]["content"]
            ratios.append(
                _completion_logprob(policy, tokenizer, pair["prompt"], text)
                - _completion_logprob(reference, tokenizer, pair["prompt"], text)
            )
        total += ratios[0] - ratios[1]
    return total / len(pairs)


def test_dpo_raises_the_chosen_over_rejected_margin_on_its_pairs(tmp_path, tiny_sft_model, tiny_data):
    """Learning, not just running: after DPO the policy prefers chosen over rejected relative to its start.

    Margin stated: the mean implicit log-ratio margin must exceed 0.01 nats (it is 0 at the start,
    where policy == reference); with chosen/rejected swapped in the stage it goes negative."""
    from components.artifacts import read_records

    dpo = {**tiny_overrides()["alignment"]["dpo"], "max_steps": 8, "learning_rate": 1e-4, "loss_type": ["sigmoid"]}
    cfg = alignment.Config(pairs="dataset", dpo=dpo)
    result = alignment.run(cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path))
    pairs = read_records(tiny_data["prefs"])[:16]
    assert implicit_margin(result.outputs["model"], tiny_sft_model, pairs) > 0.01  # measured 0.033 here
