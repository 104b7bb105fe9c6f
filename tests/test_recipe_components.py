"""Component tests of the R1 recipe's stages on the tiny model: a few steps each, loadable outputs."""

from pathlib import Path

import pytest

from components import alignment, distill, grpo, rejection_sampling, reward_model, sampling, scoring
from components.artifacts import DataError, read_records
from components.modeling import load_model, load_tokenizer
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


def test_grpo_trains_logs_each_reward_and_the_gap(tmp_path, tiny_sft_model, tiny_data):
    cfg = grpo.Config(**tiny_overrides()["grpo"])
    result = grpo.run(cfg, {"model": tiny_sft_model, "rl": tiny_data["rl"]}, str(tmp_path))
    assert load_model(result.outputs["model"]) is not None
    assert result.info["generation_backend"] == "hf"  # no GPU here: the fallback, and it says why
    assert "GPU present=False" in result.info["generation_backend_reason"]
    for name in ("reward_accuracy", "reward_format", "reward_language_consistency", "kl", "reward_accuracy_gap"):
        assert len(result.curves[name]) == 3, name
    assert all(0.0 <= v <= 1.0 for v in result.curves["reward_accuracy"])
    assert not (tmp_path / "checkpoints").exists()


def test_rejection_sampling_keeps_verified_unique_answers_and_writes_both_datasets(tmp_path, tiny_sft_model, tiny_data):
    cfg = rejection_sampling.Config(**tiny_overrides()["rejection_sampling"])
    inputs = {"model": tiny_sft_model, "prompts": tiny_data["rl"], "sft": tiny_data["sft"]}
    result = rejection_sampling.run(cfg, inputs, str(tmp_path))
    stats = result.metrics
    assert stats["samples"] == 16 and 0.0 <= stats["acceptance_rate"] <= stats["verified_correct_rate"] <= 1.0
    records = read_records(result.outputs["sft"])
    assert len(records) == stats["kept"] + len(read_records(tiny_data["sft"]))
    assert all(r["messages"][-1]["role"] == "assistant" for r in records)


def test_selection_keeps_only_verified_formatted_unique_answers():
    prompt = [{"role": "user", "content": "q"}]
    good = "<think>\n2+3=5\n</think>\nThe answer is \\boxed{5}."
    samples = [good, good.replace("\n", " \n"), "<think>\n2+3=6\n</think>\n\\boxed{6}", "\\boxed{5}", "nothing"]
    found = sampling.select(prompt, "5", samples, require_format=True)
    assert found.kept == [good]  # the second is the same text up to whitespace; "\\boxed{5}" alone is unformatted
    assert found.n_correct == 3 and found.n_duplicates == 1
    assert len(found.wrong) == 2
    pairs = rejection_sampling.to_preference_pairs([found])
    assert pairs[0]["chosen"][0]["content"] == good and "6" in pairs[0]["rejected"][0]["content"]


def test_ranking_prefers_the_reward_models_favourite():
    class Scorer:
        def score(self, prompts, responses):
            return [float(len(r)) for r in responses]  # a "reward model" that likes long answers

    found = sampling.Candidates(prompt=[], answer="5", kept=["short", "much longer", "mid size"])
    sampling.rank([found], keep_per_prompt=2, scorer=Scorer())
    assert found.kept == ["much longer", "mid size"]
    found = sampling.Candidates(prompt=[], answer="5", kept=["much longer", "short"])
    sampling.rank([found], keep_per_prompt=1)
    assert found.kept == ["short"]  # no reward model: the shortest verified answer


def test_dpo_alignment_logs_margins_and_accuracies(tmp_path, tiny_sft_model, tiny_data):
    cfg = alignment.Config(**{**tiny_overrides()["alignment"], "pairs": "dataset"})
    result = alignment.run(cfg, {"model": tiny_sft_model, "prefs": tiny_data["prefs"]}, str(tmp_path))
    assert len(result.curves["rewards_margins"]) == 3 and len(result.curves["rewards_accuracies"]) == 3
    assert load_model(result.outputs["model"]) is not None


def test_alignment_on_a_missing_preference_file_names_it(tmp_path, tiny_sft_model):
    cfg = alignment.Config(**tiny_overrides()["alignment"])
    with pytest.raises(DataError, match="dataset file not found: .*missing-prefs.jsonl"):
        alignment.run(cfg, {"model": tiny_sft_model, "prefs": str(tmp_path / "missing-prefs.jsonl")}, str(tmp_path / "out"))


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
