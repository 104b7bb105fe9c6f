"""Checkpoints of a dispatched stage mirrored to the store, and a pre-empted stage resumed from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.artifacts import digest_path
from flows.stage_runner import Dispatch, StageRequest
from tests.flows.conftest import KEY


def fake_checkpoint(folder: Path, step: int, complete: bool = True) -> Path:
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"w" * step)
    if complete:  # HF's Trainer writes trainer_state.json last
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return checkpoint


def test_only_the_newest_complete_checkpoint_is_mirrored_and_restored(store, tmp_path):
    from flows.checkpoint_mirror import CheckpointMirror

    out = tmp_path / "pod-1" / "out"
    for step in (2, 4):
        fake_checkpoint(out / "checkpoints", step)
    fake_checkpoint(out / "checkpoints", 6, complete=False)  # being written when the pod died
    fake_checkpoint(out / "baseline" / "checkpoints", 3)  # a stage may train more than one model
    remote_out = store.output_uri("sft/0123")
    mirror = CheckpointMirror(store, out, remote_out)
    mirror.sync()
    fake_checkpoint(out / "checkpoints", 8)
    mirror.sync()  # the newer one replaces the older in the store

    restored_out = tmp_path / "pod-2" / "out"
    assert CheckpointMirror(store, restored_out, remote_out).restore() == ["baseline/checkpoints/checkpoint-3", "checkpoints/checkpoint-8"]
    assert sorted(p.name for p in (restored_out / "checkpoints").iterdir()) == ["checkpoint-8"]
    assert (restored_out / "checkpoints" / "checkpoint-8" / "model.safetensors").read_bytes() == b"w" * 8

    # An upload cut off before its marker is never restored.
    store.write_bytes(f"{mirror.remote}/checkpoints/checkpoint-10/model.safetensors", b"partial")
    assert "checkpoints/checkpoint-10" not in CheckpointMirror(store, tmp_path / "pod-3" / "out", remote_out).restore()
    mirror.clear()
    assert CheckpointMirror(store, tmp_path / "pod-4" / "out", remote_out).restore() == []


def test_a_failing_stage_leaves_its_last_checkpoint_in_the_store(store, tmp_path):
    from flows.checkpoint_mirror import CheckpointMirror

    out = tmp_path / "out"
    mirror = CheckpointMirror(store, out, store.output_uri("grpo/0123"))
    with pytest.raises(RuntimeError, match="CUDA out of memory"), mirror.running(interval_seconds=3600):
        fake_checkpoint(out / "checkpoints", 5)
        raise RuntimeError("CUDA out of memory")
    assert mirror.uploaded == {"checkpoints": "checkpoint-5"}


@pytest.mark.slow
def test_a_dispatched_sft_resumes_from_the_checkpoint_a_dead_job_mirrored(store, child_runs, tiny_base_model, tiny_data, tmp_path):
    from components import sft
    from flows.checkpoint_mirror import CheckpointMirror
    from tests.conftest import stop_at, tiny_overrides

    cfg = sft.Config(**{**tiny_overrides()["sft"], "max_steps": 8, "save_steps": 4, "logging_steps": 1})
    inputs = {"model": tiny_base_model, "sft": tiny_data["sft"]}
    remote_out = store.output_uri("sft/" + KEY[:16])

    # The first Job: pre-empted at step 6, after checkpoint-4 (mirrored on the way down).
    dead_pod = tmp_path / "dead-pod" / "out"
    with pytest.raises(KeyboardInterrupt), CheckpointMirror(store, dead_pod, remote_out).running(interval_seconds=3600):
        sft.run(cfg, inputs, str(dead_pod), callbacks=[stop_at(6)])

    request = StageRequest(
        module="sft", config=cfg.model_dump(mode="json"), inputs=inputs, out_dir=str(tmp_path / "artifacts" / "sft" / KEY[:16]), key=KEY
    )
    digests = {name: digest_path(path) for name, path in inputs.items()}
    result = Dispatch("run-stage/run-stage-gpu", store, digests, remote_out).run(request)

    assert result.info["restored_checkpoints"] == ["checkpoints/checkpoint-4"]
    assert result.info["resumed_from"].endswith("checkpoint-4") and result.metrics["global_step"] == 8
    assert not store.fs.exists(store.fs_path(remote_out) + ".checkpoints"), "cleared once the model is published"
