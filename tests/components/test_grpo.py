"""The GRPO stage on the tiny model: trains, logs each reward and the accuracy gap."""

import pytest

from components import grpo
from components.modeling import load_model
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def test_grpo_trains_logs_each_reward_and_the_gap(tmp_path, tiny_sft_model, tiny_data):
    cfg = grpo.Config(**tiny_overrides()["grpo"])
    result = grpo.run(cfg, {"model": tiny_sft_model, "rl": tiny_data["rl"]}, str(tmp_path))
    assert load_model(result.outputs["model"]) is not None
    assert result.info["generation_backend"] in ("hf", "vllm") and result.info["generation_backend_reason"]  # it says why
    for name in ("reward_accuracy", "reward_format", "reward_language_consistency", "kl", "reward_accuracy_gap"):
        assert len(result.curves[name]) == 3, name
    assert all(0.0 <= v <= 1.0 for v in result.curves["reward_accuracy"])
    assert not (tmp_path / "checkpoints").exists()
