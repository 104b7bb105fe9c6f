"""The final policy's best-of-N is scored by the verifier, a reward model retrained from that policy;
every policy before it by the reward model cut from the SFT model (what GRPO and rejection sampling used)."""

from __future__ import annotations

import logging

import pytest

from components.config import StageResult
from flows.params import PipelineParams
from flows.post_training import Recipe
from flows.report import RunSummary

DATASETS = {name: f"data/{name}.jsonl" for name in ("pretrain", "sft", "prefs", "rl", "eval", "probe")}


@pytest.fixture
def calls(monkeypatch):
    """The recipe run against stages that only say what they were given: (label, stage name, inputs), in order."""
    ran = []

    def fake_stage(name, cfg, inputs, params, force, label=None, artifacts=None):
        label = label or name
        ran.append((label, name, dict(inputs)))
        outputs = {"model": f"artifacts/{label}/model", "metrics": f"artifacts/{label}/metrics.json"}
        if name == "rejection_sampling":
            outputs |= {"pairs": "artifacts/rs/pairs.jsonl", "sft": "artifacts/rs/sft.jsonl"}
        return StageResult(stage=name, outputs=outputs, metrics={"preference_pairs": 10.0}), False

    monkeypatch.setattr("flows.post_training.stage", fake_stage)
    monkeypatch.setattr("flows.post_training.get_run_logger", lambda: logging.getLogger("test"))
    return ran


def recipe(**recipe_switches) -> Recipe:
    params = PipelineParams.model_validate({"recipe": recipe_switches})
    return Recipe(RunSummary(), DATASETS, params, force=False)


def scorer_of(calls, evaluated: str) -> str | None:
    [inputs] = [inputs for label, _, inputs in calls if label == f"evaluate-{evaluated}"]
    return inputs.get("reward_model")


def test_the_final_policy_is_evaluated_after_its_verifier_trained_from_it(calls):
    run = recipe()
    final = run.run()

    order = [label for label, _, _ in calls]
    assert final.label == "alignment"
    assert order.index("verifier") > order.index("alignment") and order.index("evaluate-alignment") > order.index("verifier")
    [(_, name, inputs)] = [call for call in calls if call[0] == "verifier"]
    assert name == "reward_model" and inputs["model"] == "artifacts/alignment/model", "the reward_model stage, from the final policy"
    assert scorer_of(calls, "alignment") == "artifacts/verifier/model"
    for earlier in ("sft", "grpo", "sft_control", "sft_round2"):
        assert scorer_of(calls, earlier) == "artifacts/reward_model/model", earlier
    [(_, _, grpo)] = [call for call in calls if call[0] == "grpo"]
    assert grpo.get("reward_model") == "artifacts/reward_model/model", "RL and rejection sampling keep the SFT's reward model"
    # each policy before the final one is still evaluated before the next stage trains on from it
    assert order.index("evaluate-grpo") < order.index("sft_round2")
    assert sorted(label for label in order if label.startswith("evaluate-")) == sorted(
        f"evaluate-{label}" for label in ("base", "sft", "grpo", "sft_control", "sft_round2", "alignment")
    ), "every policy evaluated exactly once"


def test_without_the_verifier_the_final_policy_is_scored_by_the_reward_model(calls):
    recipe(verifier=False).run()
    assert "verifier" not in [label for label, _, _ in calls]
    assert scorer_of(calls, "alignment") == "artifacts/reward_model/model"


def test_a_recipe_that_ends_at_the_sft_model_trains_no_verifier(calls):
    recipe(grpo=False, rejection_sampling=False, alignment=False).run()
    assert "verifier" not in [label for label, _, _ in calls], "the SFT model's reward model already is cut from the final policy"
