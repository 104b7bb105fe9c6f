"""Component tests on the tiny model: each stage writes a loadable HF model; SFT resumes."""

import json
from pathlib import Path

import pytest

from components import evaluate, sft
from components.modeling import ModelLoadError, load_model, load_tokenizer
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


def test_base_model_is_a_loadable_hf_model_with_a_chat_template(tiny_base_model):
    tokenizer = load_tokenizer(tiny_base_model)
    model = load_model(tiny_base_model)
    assert (Path(tiny_base_model) / "model.safetensors").is_file()
    ids = tokenizer("12+34=46", add_special_tokens=False)["input_ids"]
    # digits are one token each, so arithmetic is learnable; the reloaded tokenizer keeps that
    assert tokenizer.convert_ids_to_tokens(ids)[:2] == ["1", "2"]
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n")
    assert model.config.vocab_size == len(tokenizer)


def test_loading_a_missing_model_says_which_path():
    with pytest.raises(ModelLoadError, match="does-not-exist"):
        load_tokenizer("/tmp/does-not-exist")
    with pytest.raises(ModelLoadError, match="does-not-exist"):
        load_model("/tmp/does-not-exist")


def stop_at(step):
    """A trainer callback that simulates a pre-empted job after `step` steps."""
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                raise KeyboardInterrupt("simulated pre-emption")

    return StopAt()


def _sft_cfg():
    return sft.Config(**{**tiny_overrides()["sft"], "max_steps": 8, "save_steps": 4, "logging_steps": 1})


def test_sft_trains_and_writes_a_loadable_model(tmp_path, tiny_base_model, tiny_data):
    result = sft.run(_sft_cfg(), {"model": tiny_base_model, "sft": tiny_data["sft"]}, str(tmp_path))
    assert result.metrics["global_step"] == 8
    assert result.curves["train_loss"][-1] < result.curves["train_loss"][0]
    assert load_model(result.outputs["model"]) is not None
    assert result.info["resumed_from"] is None
    assert not (tmp_path / "checkpoints").exists(), "checkpoints are dropped once the model is final"


def test_sft_resumes_from_the_last_checkpoint_and_ends_where_an_uninterrupted_run_ends(tmp_path, tiny_base_model, tiny_data):
    import torch

    inputs = {"model": tiny_base_model, "sft": tiny_data["sft"]}
    straight = sft.run(_sft_cfg(), inputs, str(tmp_path / "straight"))

    with pytest.raises(KeyboardInterrupt):
        sft.run(_sft_cfg(), inputs, str(tmp_path / "resumed"), callbacks=[stop_at(6)])
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-4").is_dir()
    resumed = sft.run(_sft_cfg(), inputs, str(tmp_path / "resumed"))
    assert resumed.info["resumed_from"].endswith("checkpoint-4")
    assert resumed.metrics["global_step"] == 8

    a, b = load_model(straight.outputs["model"]), load_model(resumed.outputs["model"])
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=f"{name} differs after resume")


def test_evaluate_reports_every_metric(tmp_path, tiny_base_model, tiny_data):
    cfg = evaluate.Config(**{**tiny_overrides()["evaluate"], "limit": 8})
    result = evaluate.run(cfg, {"model": tiny_base_model, "eval": tiny_data["eval"], "probe": tiny_data["probe"]}, str(tmp_path))
    for key in ("pass@1", "pass@2", "maj@1", "maj@2", "sample_accuracy", "format_rate", "probe_accuracy"):
        assert 0.0 <= result.metrics[key] <= 1.0, key
    assert result.metrics["pass@2"] >= result.metrics["sample_accuracy"]
    assert 0 < result.metrics["mean_length"] <= cfg.max_new_tokens
    assert result.metrics["n_problems"] == 8
    rows = [json.loads(line) for line in Path(result.outputs["predictions"]).read_text().splitlines()]
    assert len(rows) == 8 and len(rows[0]["sample_answers"]) == 2
