"""The reward model stage on the tiny model: trains and scores held-out pairs."""

from pathlib import Path

import pytest

from components import reward_model, scoring
from components.artifacts import read_records
from components.reward_model import pairwise_metrics, rejected_kind, score_pairs
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scorer", ["log_likelihood", "head"])
def test_reward_model_trains_and_scores_held_out_pairs(tmp_path, tiny_sft_model, tiny_data, scorer):
    cfg = reward_model.Config(**tiny_overrides()["reward_model"], scorer=scorer)
    result = reward_model.run(cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path))
    assert scoring.saved_scorer(result.outputs["model"]) == scorer  # what every later stage's RewardScorer loads
    assert 0.0 <= result.metrics["held_out_pairwise_accuracy"] <= 1.0
    assert result.metrics["held_out_pairs"] >= 1
    scorer = scoring.RewardScorer(result.outputs["model"])
    scores = scorer.score(["What is 2+3?", "What is 2+3?"], ["The answer is \\boxed{5}.", "no idea"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert (Path(result.outputs["model"]) / "model.safetensors").is_file()


def _separable_pairs(tiny_data, path) -> str:
    """Chosen: the dataset's worked answer; rejected: the same reasoning with no final answer (a format break)."""
    from components.artifacts import read_records, write_records

    pairs = []
    for pair in read_records(tiny_data["prefs"]):
        chosen = pair["chosen"][-1]["content"]
        broken = chosen.split("\\boxed")[0].rstrip() + " I am not sure."
        pairs.append({"prompt": pair["prompt"], "chosen": pair["chosen"], "rejected": [{"role": "assistant", "content": broken}]})
    return str(write_records(path, pairs))


def test_the_reward_model_learns_to_separate_held_out_pairs(tmp_path, tiny_sft_model, tiny_data):
    """Held-out pairwise accuracy beats chance by a stated margin (>= 0.75 vs 0.5) on pairs it can see apart."""
    prefs = _separable_pairs(tiny_data, tmp_path / "prefs.jsonl")
    cfg = reward_model.Config(**{**tiny_overrides()["reward_model"], "max_steps": 30, "held_out_fraction": 0.25})
    result = reward_model.run(cfg, {"model": tiny_sft_model, "prefs": prefs}, str(tmp_path / "rm"))
    assert result.metrics["held_out_pairs"] >= 8
    assert result.metrics["held_out_pairwise_accuracy"] >= 0.75, result.metrics
    assert result.metrics["held_out_mean_margin"] > 0


def test_each_rejected_answer_is_read_as_its_kind():
    chosen = "<think>\n2+3=5\n5+1=6\n</think>\nThe answer is \\boxed{6}."
    assert rejected_kind(chosen, chosen.replace("\\boxed{6}", "6")) == "format"
    assert rejected_kind(chosen, chosen.replace("</think>\n", "")) == "format"
    assert rejected_kind(chosen, chosen.replace("{6}", "{7}")) == "wrong_final"
    assert rejected_kind(chosen, "<think>\n2+3=6\n6+1=7\n</think>\nThe answer is \\boxed{7}.") == "wrong_step"


def test_pairwise_metrics_are_given_per_kind_of_rejected_answer():
    scored = [
        {"kind": "format", "margin": 2.0, "correct": True},
        {"kind": "format", "margin": 1.0, "correct": True},
        {"kind": "wrong_step", "margin": -1.0, "correct": False},
    ]
    metrics = pairwise_metrics(scored)
    assert metrics["held_out_pairwise_accuracy"] == pytest.approx(2 / 3)
    assert metrics["held_out_pairwise_accuracy.format"] == 1.0 and metrics["held_out_pairwise_accuracy.wrong_step"] == 0.0
    assert metrics["held_out_pairs.format"] == 2.0 and "held_out_pairwise_accuracy.wrong_final" not in metrics


def test_the_policys_own_right_and_wrong_answers_become_pairs(tmp_path, tiny_sft_model, tiny_data, monkeypatch):
    """Per prompt, a verified right answer against a wrong one; a prompt with only one of them gives no pair."""
    from components.sampling import Candidates

    right, wrong = "<think>\n2+3=5\n</think>\nThe answer is \\boxed{5}.", "<think>\n2+3=6\n</think>\nThe answer is \\boxed{6}."
    drawn = [
        Candidates(prompt=[{"role": "user", "content": "q1"}], answer="5", kept=[right], wrong=[wrong]),
        Candidates(prompt=[{"role": "user", "content": "q2"}], answer="5", kept=[right]),
        Candidates(prompt=[{"role": "user", "content": "q3"}], answer="5", wrong=[wrong]),
    ]
    monkeypatch.setattr(
        reward_model, "sample_verified", lambda *_a, **_k: (drawn, {"verified_correct_rate": 0.25, "wrong_step_share": 0.1}, "hf")
    )
    pairs, stats = reward_model.on_policy_pairs(reward_model.Config(on_policy_samples=4), tiny_sft_model, tiny_data["rl"])
    assert [(p["prompt"][0]["content"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [("q1", right, wrong)]
    assert stats == {"on_policy_verified_rate": 0.25, "on_policy_wrong_step_share": 0.1, "on_policy_pairs": 1.0}
    assert reward_model.on_policy_pairs(reward_model.Config(on_policy_samples=0), tiny_sft_model, tiny_data["rl"]) == ([], {})


def test_the_stage_samples_its_starting_model_on_the_prompts_it_is_given(tmp_path, tiny_sft_model, tiny_data):
    cfg = reward_model.Config(**{**tiny_overrides()["reward_model"], "on_policy_samples": 4})
    inputs = {"model": tiny_sft_model, "prefs": tiny_data["prefs"], "prompts": tiny_data["rl"]}
    metrics = reward_model.run(cfg, inputs, str(tmp_path)).metrics
    assert 0.0 <= metrics["on_policy_verified_rate"] <= 1.0 and metrics["on_policy_pairs"] >= 0
    synthetic_train = metrics["train_pairs"] - metrics["on_policy_pairs"] + metrics.get("on_policy_held_out_pairs", 0)
    assert synthetic_train + metrics["held_out_pairs"] == len(read_records(tiny_data["prefs"]))


def test_each_scored_pair_names_its_question_so_runs_of_one_split_pool_pair_by_pair():
    class LengthScorer:  # ranks the longer answer higher: enough to score pairs without a model
        def score(self, prompts, responses):
            return [float(len(r)) for r in responses]

    pairs = [
        {"prompt": [{"role": "system", "content": "Solve."}, {"role": "user", "content": "2+3?"}],
         "chosen": [{"role": "assistant", "content": "<think>\n2+3=5\n</think>\nThe answer is \\boxed{5}."}],
         "rejected": [{"role": "assistant", "content": "5"}]},
        {"prompt": "1+1?", "chosen": [{"role": "assistant", "content": "2"}], "rejected": [{"role": "assistant", "content": "11"}]},
    ]  # fmt: skip
    scored = score_pairs(LengthScorer(), pairs)
    assert [row["prompt"] for row in scored] == ["2+3?", "1+1?"]
    assert [row["correct"] for row in scored] == [True, False] and scored[0]["kind"] == "format"
