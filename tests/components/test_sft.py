"""The SFT stage on the tiny model: trains, writes a loadable model, resumes from its checkpoint."""

import pytest

from components import sft
from components.modeling import load_model
from tests.conftest import pretraining_loss, stop_at, tiny_overrides

pytestmark = pytest.mark.slow


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


# ---------------------------------------------------------------- pretraining replay (replay_weight)


def test_replay_keeps_the_pretraining_loss_that_plain_sft_raises(tmp_path, tiny_base_model, tiny_data):
    from components.artifacts import read_records

    drills = [r["text"] for r in read_records(tiny_data["pretrain"])][-64:]
    plain = sft.run(_sft_cfg(), {"model": tiny_base_model, "sft": tiny_data["sft"]}, str(tmp_path / "plain"))
    cfg = _sft_cfg().model_copy(update={"replay_weight": 1.0, "replay_batch_size": 16})
    replayed = sft.run(cfg, {"model": tiny_base_model, "sft": tiny_data["sft"], "replay": tiny_data["pretrain"]}, str(tmp_path / "replay"))

    assert len(replayed.curves["replay_loss"]) == 8, "the replay loss is logged at every logging step"
    assert "replay_loss" not in plain.curves
    before = pretraining_loss(tiny_base_model, drills)
    after_plain, after_replay = pretraining_loss(plain.outputs["model"], drills), pretraining_loss(replayed.outputs["model"], drills)
    assert after_plain > before, "the premise: SFT alone moves the model off its pretraining text"
    assert after_replay < after_plain - 0.05, (before, after_plain, after_replay)


def test_a_resumed_replay_run_ends_where_an_uninterrupted_one_ends(tmp_path, tiny_base_model, tiny_data):
    import torch

    cfg = _sft_cfg().model_copy(update={"replay_weight": 0.5, "replay_batch_size": 8})
    inputs = {"model": tiny_base_model, "sft": tiny_data["sft"], "replay": tiny_data["pretrain"]}
    straight = sft.run(cfg, inputs, str(tmp_path / "straight"))
    with pytest.raises(KeyboardInterrupt):
        sft.run(cfg, inputs, str(tmp_path / "resumed"), callbacks=[stop_at(6)])
    resumed = sft.run(cfg, inputs, str(tmp_path / "resumed"))
    assert resumed.info["resumed_from"].endswith("checkpoint-4")
    a, b = load_model(straight.outputs["model"]), load_model(resumed.outputs["model"])
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(
            p, q, rtol=1e-4, atol=1e-5, msg=f"{name} differs after resume: the replayed rows must not depend on the run's history"
        )
