"""The distillation stage on the tiny model: a smaller student, both methods, a student too large refused."""

import pytest

from components import distill
from components.modeling import load_model, load_tokenizer
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def test_distill_trains_a_smaller_student_and_its_sft_baseline(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    cfg = distill.Config(**tiny_overrides()["distill"])
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"], "rl": tiny_data["rl"]}
    result = distill.run(cfg, inputs, str(tmp_path))
    for key in ("model", "baseline_model"):
        student = load_model(result.outputs[key])
        assert student.config.num_hidden_layers == 1
        tokenizer = load_tokenizer(result.outputs[key])
        ids = tokenizer("1+1=", return_tensors="pt")
        assert student.generate(**ids, max_new_tokens=4, do_sample=False).shape[1] >= ids["input_ids"].shape[1]
    assert result.metrics["teacher_layers"] == 2


def test_distill_on_policy_writes_a_loadable_student(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    cfg = distill.Config(**{**tiny_overrides()["distill"], "method": "on_policy"})
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"]}
    result = distill.run(cfg, inputs, str(tmp_path))
    assert load_model(result.outputs["model"]).config.num_hidden_layers == 1


def test_a_student_as_large_as_its_teacher_is_refused_before_training(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    cfg = distill.Config(**{**tiny_overrides()["distill"], "student_layers": 2})
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"]}
    with pytest.raises(distill.StudentTooLarge, match="student_layers is 2 but the teacher .* has 2"):
        distill.run(cfg, inputs, str(tmp_path))
    assert not any(tmp_path.iterdir())  # nothing was built or trained


def test_student_layers_are_spread_over_the_stack():
    assert distill.kept_layers(4, 2) == [0, 3]
    assert distill.kept_layers(12, 4) == [0, 4, 7, 11]
    assert distill.kept_layers(4, 1) == [3]
