"""The alignment stage on the tiny model: DPO, a missing preference file, and alignment by GRPO."""

import pytest

from components import alignment, grpo, reward_model
from components.artifacts import DataError
from components.modeling import load_model
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def test_dpo_alignment_logs_margins_and_accuracies(tmp_path, tiny_sft_model, tiny_data):
    cfg = alignment.Config(**{**tiny_overrides()["alignment"], "pairs": "dataset"})
    result = alignment.run(cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path))
    assert len(result.curves["rewards_margins"]) == 3 and len(result.curves["rewards_accuracies"]) == 3
    assert load_model(result.outputs["model"]) is not None


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
