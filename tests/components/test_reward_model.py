"""The reward model stage on the tiny model: trains and scores held-out pairs."""

from pathlib import Path

import pytest

from components import reward_model, scoring
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def test_reward_model_trains_and_scores_held_out_pairs(tmp_path, tiny_sft_model, tiny_data):
    cfg = reward_model.Config(**tiny_overrides()["reward_model"])
    result = reward_model.run(cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path))
    assert 0.0 <= result.metrics["held_out_pairwise_accuracy"] <= 1.0
    assert result.metrics["held_out_pairs"] >= 1
    scorer = scoring.RewardScorer(result.outputs["model"])
    scores = scorer.score(["What is 2+3?", "What is 2+3?"], ["The answer is \\boxed{5}.", "no idea"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert (Path(result.outputs["model"]) / "model.safetensors").is_file()
