"""The artifact exchange (flows.artifact_exchange): stage inputs and outputs in object storage.

The `store` fixture (tests/flows/conftest.py) is a local folder behind fsspec's `file://`: the
code path `s3://` takes too.
"""

from __future__ import annotations

import json

import pytest

from components.config import StageResult
from flows.artifact_exchange import ArtifactExchange, ExchangeError, relocate
from flows.stage_runner import Dispatch
from flows.stage_runner import outputs_present as _outputs_present
from tests.flows.conftest import KEY


def test_inputs_are_uploaded_once_and_fetched_outputs_are_referenced_where_they_are(store, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "sft.jsonl").write_text('{"x": 1}\n')
    uploads = []
    real_put = store.fs.put
    monkeypatch.setattr(store.fs, "put", lambda *args, **kwargs: uploads.append(args[0]) or real_put(*args, **kwargs))

    first = store.publish_inputs({"data": str(data), "base": "Qwen/Qwen2.5-0.5B-Instruct"}, {"data": "d" * 64, "base": "id:Qwen"})
    second = store.publish_inputs({"data": str(data)}, {"data": "d" * 64})
    assert uploads == [str(data)], "an unchanged input is not uploaded again"
    assert first["data"] == second["data"] and first["data"].endswith("/inputs/" + "d" * 32 + "/data")
    assert first["base"] == "Qwen/Qwen2.5-0.5B-Instruct", "a hub id passes through"

    # A stage output fetched from the store is referenced in place, not uploaded again.
    remote_out = store.output_uri("sft/0123")
    folder = store.fs_path(remote_out)
    store.write_bytes(f"{folder}/model/config.json", b"{}")
    store.write_bytes(f"{folder}/result.json", json.dumps({"key": KEY, "stage": "sft", "outputs": {}}).encode())
    local_out = tmp_path / "artifacts" / "sft" / "0123"
    store.fetch_outputs(remote_out, str(local_out))
    published = store.publish_inputs({"model": str(local_out / "model")}, {"model": "m" * 64})
    assert published == {"model": f"{remote_out}/model"} and len(uploads) == 1


def test_an_unfinished_publish_is_never_taken_for_outputs(store, tmp_path):
    remote_out = store.output_uri("grpo/0123")
    store.write_bytes(f"{store.fs_path(remote_out)}/model/config.json", b"{}")  # the Job died before result.json
    local_out = tmp_path / "artifacts" / "grpo" / "0123"
    local_out.mkdir(parents=True)
    (local_out / "keep.txt").write_text("earlier")

    assert not store.has_outputs(remote_out)
    with pytest.raises(ExchangeError, match=r"grpo/0123: no result.json, so the stage did not finish publishing"):
        store.fetch_outputs(remote_out, str(local_out))
    assert (local_out / "keep.txt").read_text() == "earlier", "what was there is untouched"
    dispatch = Dispatch("run-stage/run-stage-gpu", store, {}, remote_out)
    assert not _outputs_present(str(tmp_path / "elsewhere"), dispatch), "so the stage runs again"


def test_a_new_orchestrator_finds_published_outputs_in_the_store(store, tmp_path):
    remote_out = store.output_uri("sft/4567")
    folder = store.fs_path(remote_out)
    store.write_bytes(f"{folder}/model/config.json", b"{}")
    outputs = {"model": str(tmp_path / "artifacts" / "sft" / "4567" / "model")}
    store.write_bytes(f"{folder}/result.json", json.dumps({"key": KEY, "stage": "sft", "outputs": outputs}).encode())

    out_dir = tmp_path / "artifacts" / "sft" / "4567"  # an empty disk: a new pod
    assert _outputs_present(str(out_dir), Dispatch("run-stage/run-stage-gpu", store, {}, remote_out))
    assert (out_dir / "model" / "config.json").is_file() and (out_dir / "result.json").is_file()
    assert not (out_dir.with_name("4567.partial")).exists()


def test_a_missing_input_is_named(store, tmp_path):
    url = store.url(f"{store.root}/inputs/nothing/sft.jsonl")
    with pytest.raises(ExchangeError, match=r"input 'sft': .*inputs/nothing/sft.jsonl does not exist"):
        store.fetch_inputs({"sft": url}, tmp_path)


def test_relocate_maps_scratch_paths_to_the_orchestrators_longest_prefix_first():
    result = StageResult(
        stage="distill",
        outputs={
            "model": "/tmp/s/out/distilled/model",
            "teacher": "/tmp/s/inputs/ab/model",
            "base": "Qwen/Qwen2.5-0.5B",
            "odd": "/tmp/s/outer",
        },
    )
    moved = relocate(result, {"/tmp/s/out": "/ckpt/distill/k", "/tmp/s/inputs/ab/model": "/ckpt/grpo/k/model"})
    assert moved.outputs == {
        "model": "/ckpt/distill/k/distilled/model",
        "teacher": "/ckpt/grpo/k/model",
        "base": "Qwen/Qwen2.5-0.5B",
        "odd": "/tmp/s/outer",  # a sibling that merely shares the prefix's letters
    }


def test_an_unreachable_store_is_named(monkeypatch):
    pytest.importorskip("s3fs", reason="s3fs is missing: pip install -e . (it is a dependency)")
    from tests.conftest import free_port

    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "AWS_ACCESS_KEY_ID": "posttrain-test",
        "AWS_SECRET_ACCESS_KEY": "posttrain-test-secret",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    store = ArtifactExchange("s3://posttrain-missing/exchange")
    with pytest.raises(ExchangeError, match=r"^s3://posttrain-missing/exchange: EndpointConnectionError: Could not connect"):
        store.has_outputs(store.output_uri("sft/0123"))
