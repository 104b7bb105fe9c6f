"""The distillation stage on the tiny model: a smaller student, both methods, a student too large refused."""

import pytest

from components import distill
from components.modeling import load_model, load_tokenizer
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def test_distill_trains_a_smaller_student_and_its_sft_baseline(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    cfg = distill.Config(**tiny_overrides()["distill"])
    inputs = {
        "teacher": tiny_sft_model,
        "base": tiny_base_model,
        "sft": tiny_data["sft"],
        "rl": tiny_data["rl"],
        "pretrain": tiny_data["pretrain"],
    }
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
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"], "pretrain": tiny_data["pretrain"]}
    result = distill.run(cfg, inputs, str(tmp_path))
    assert load_model(result.outputs["model"]).config.num_hidden_layers == 1


def test_a_student_as_large_as_its_teacher_is_refused_before_training(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    cfg = distill.Config(**{**tiny_overrides()["distill"], "student_layers": 2})
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"], "pretrain": tiny_data["pretrain"]}
    with pytest.raises(distill.StudentTooLarge, match="student_layers is 2 but the teacher .* has 2"):
        distill.run(cfg, inputs, str(tmp_path))
    assert not any(tmp_path.iterdir())  # nothing was built or trained


def test_student_layers_are_spread_over_the_stack():
    assert distill.kept_layers(4, 2) == [0, 3]
    assert distill.kept_layers(12, 4) == [0, 4, 7, 11]
    assert distill.kept_layers(4, 1) == [3]


def kl_to_teacher(student_dir: str, teacher_dir: str, texts: list[str]) -> float:
    """Mean per-token KL(teacher || student) over `texts`, both models teacher-forced on them."""
    import torch

    tokenizer = load_tokenizer(teacher_dir)
    student, teacher = load_model(student_dir), load_model(teacher_dir)
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            p = teacher(ids).logits.log_softmax(-1)
            q = student(ids).logits.log_softmax(-1)
            total += float((p.exp() * (p - q)).sum())
            tokens += ids.shape[1]
    return total / tokens


def test_on_policy_distillation_brings_the_student_closer_to_its_teacher(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    """The student's KL to the teacher, on the teacher's own answers to prompts the student never
    trained on, falls below where it started and below a control: the same student trained as
    long on the same rows by plain SFT (it learns the data, not the teacher)."""
    import json

    from components.artifacts import read_records
    from components.generation import chat_prompts, generate
    from components.supervised import SFTConfig, train_sft

    rows = read_records(tiny_data["sft"])
    train, held_out = rows[:64], rows[-8:]
    train_file = tmp_path / "teacher.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in train))
    tokenizer = load_tokenizer(tiny_sft_model)
    prompts = chat_prompts(tokenizer, [r["messages"][:-1] for r in held_out])
    answers = generate(load_model(tiny_sft_model), tokenizer, prompts, max_new_tokens=32, desc="teacher")
    texts = [prompt + answer[0] for prompt, answer in zip(prompts, answers, strict=True)]

    student = distill.build_student(tiny_base_model, 1, tmp_path / "student-init")
    before = kl_to_teacher(student, tiny_sft_model, texts)
    on_policy = {**tiny_overrides()["distill"]["on_policy"], "max_steps": 20, "per_device_train_batch_size": 8, "learning_rate": 1e-3}
    cfg = distill.Config(**{**tiny_overrides()["distill"], "on_policy": on_policy})
    distilled = distill.run_on_policy(cfg, student, tiny_sft_model, str(train_file), tmp_path / "on-policy")
    after = kl_to_teacher(distilled, tiny_sft_model, texts)
    control_cfg = SFTConfig(**{**tiny_overrides()["sft"], "max_steps": 20, "learning_rate": 1e-3})
    control = train_sft(control_cfg, student, str(train_file), str(tmp_path / "control"), stage="control").outputs["model"]
    controlled = kl_to_teacher(control, tiny_sft_model, texts)
    print(f"KL(teacher || student) on held-out teacher answers: {before:.3f} -> {after:.3f}; SFT control {controlled:.3f}")
    assert after <= 0.8 * before, f"KL to the teacher {before:.3f} -> {after:.3f}: distillation did not learn (margin 20%)"
    assert after <= 0.8 * controlled, f"distilled {after:.3f} vs SFT control {controlled:.3f}: no closer to the teacher (margin 20%)"


def corpus_loss(model_dir: str, texts: list[str]) -> float:
    """The mean answer-token loss of `model_dir` on `texts`, as pretraining counts it."""
    import torch

    from components.plain_text import length_sorted_passes, mean_token_loss, tokenize_with_loss_mask

    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    with torch.inference_mode():
        return float(
            mean_token_loss(model, length_sorted_passes(tokenize_with_loss_mask(tokenizer, texts, 256), tokenizer.pad_token_id, 1))
        )


def test_healing_retrains_the_cut_student_on_the_base_corpus(tmp_path, tiny_base_model, tiny_data):
    """A cut of the base loses what the base learnt; `heal_steps` of the base's own loop win some of it back."""
    from components.artifacts import read_records

    texts = [record["text"] for record in read_records(tiny_data["pretrain"])][:64]
    cut = distill.build_student(tiny_base_model, 1, tmp_path / "cut")
    cfg = distill.Config(**{**tiny_overrides()["distill"], "heal_steps": 30, "heal_learning_rate": 3e-3})
    healed = distill.heal_student(cfg, cut, tiny_data["pretrain"], tmp_path / "healed")
    assert load_model(healed).config.num_hidden_layers == 1
    before, after = corpus_loss(cut, texts), corpus_loss(healed, texts)
    assert after < before - 0.1


def test_a_rerun_reuses_the_student_an_interrupted_run_healed(tmp_path, tiny_base_model, tiny_data, monkeypatch):
    cut = distill.build_student(tiny_base_model, 1, tmp_path / "cut")
    cfg = distill.Config(**{**tiny_overrides()["distill"], "heal_steps": 2})
    healed = distill.heal_student(cfg, cut, tiny_data["pretrain"], tmp_path / "healed")
    weights = {name: tensor.clone() for name, tensor in load_model(healed).state_dict().items()}

    def no_second_healing(*args, **kwargs):
        raise AssertionError("healed again")

    monkeypatch.setattr(distill, "pretrain", no_second_healing)
    again = distill.heal_student(cfg, cut, tiny_data["pretrain"], tmp_path / "healed")
    assert again == healed
    assert all(tensor.equal(weights[name]) for name, tensor in load_model(again).state_dict().items())


def test_healing_without_the_pretraining_corpus_is_refused_by_name(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    from components.stages import StageInputError

    cfg = distill.Config(**{**tiny_overrides()["distill"], "heal_steps": 5})
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"]}
    with pytest.raises(StageInputError, match="distill.heal_steps is 5 but no pretraining corpus was given"):
        distill.run(cfg, inputs, str(tmp_path))
    assert not (tmp_path / "teacher_sft.jsonl").exists()  # refused before the teacher sampled anything


def test_both_students_replay_the_pretraining_corpus_when_student_sft_does(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    overrides = tiny_overrides()["distill"]
    student_sft = {**overrides.get("student_sft", {}), "replay_weight": 1.0, "replay_batch_size": 4}
    cfg = distill.Config(**{**overrides, "method": "sequence", "student_sft": student_sft})
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"], "pretrain": tiny_data["pretrain"]}
    result = distill.run(cfg, inputs, str(tmp_path))
    assert result.curves["distilled_replay_loss"] and result.curves["baseline_replay_loss"]
    assert all(loss > 0 for loss in result.curves["distilled_replay_loss"] + result.curves["baseline_replay_loss"])


def test_student_replay_without_the_pretraining_corpus_is_refused_by_name(tmp_path, tiny_sft_model, tiny_base_model, tiny_data):
    from components.stages import StageInputError

    overrides = tiny_overrides()["distill"]
    student_sft = {**overrides.get("student_sft", {}), "replay_weight": 0.5}
    cfg = distill.Config(**{**overrides, "heal_steps": 0, "student_sft": student_sft})
    inputs = {"teacher": tiny_sft_model, "base": tiny_base_model, "sft": tiny_data["sft"]}
    with pytest.raises(StageInputError, match="distill.student_sft.replay_weight is 0.5 but no pretraining corpus was given"):
        distill.run(cfg, inputs, str(tmp_path))
    assert not (tmp_path / "teacher_sft.jsonl").exists()
