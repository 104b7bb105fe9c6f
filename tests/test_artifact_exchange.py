"""Dispatched stages exchanging artifacts through object storage (flows.artifact_exchange).

Here the store is a local folder behind fsspec's `file://` (same code path as `s3://`, which
tests/test_ui_api.py runs against an S3-compatible server). The child flow run is called in
process in place of `run_deployment`, with its own scratch ($TMPDIR), so every input it reads
came through the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from components import stages, validate
from components.artifacts import digest_path
from components.config import StageResult
from flows.artifact_exchange import ORIGIN_FILE, ArtifactExchange, ExchangeError, relocate
from flows.params import ExecutionConfig
from flows.stage_runner import Dispatch, StageRequest, run_stage_flow
from flows.stage_runner import outputs_present as _outputs_present

KEY = "a" * 64


@pytest.fixture
def store(tmp_path) -> ArtifactExchange:
    return ArtifactExchange(f"file://{tmp_path / 'bucket'}/exchange")


@pytest.fixture
def child_runs(monkeypatch, tmp_path):
    """`run_deployment` replaced by the run-stage flow's body, run with a scratch of its own."""
    scratch = tmp_path / "child-scratch"
    scratch.mkdir()
    requests = []

    def run_deployment(name, parameters, job_variables=None, timeout=None):
        resources = stages.get(parameters["request"]["module"]).resources
        assert job_variables == (resources.job_variables() if resources else None), "the registry's resources reach the Job"
        monkeypatch.setenv("TMPDIR", str(scratch))
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
        request = StageRequest.model_validate(json.loads(json.dumps(parameters["request"])))  # as the API carries it
        requests.append(request)
        run_stage_flow.fn(request)
        return SimpleNamespace(name="child", state=SimpleNamespace(is_completed=lambda: True, name="Completed"))

    monkeypatch.setattr("prefect.deployments.run_deployment", run_deployment)
    return SimpleNamespace(requests=requests, scratch=scratch)


def test_a_dispatched_stage_runs_on_inputs_fetched_from_the_store(store, child_runs, tiny_data, tmp_path):
    inputs = dict(tiny_data)
    digests = {name: digest_path(path) for name, path in inputs.items()}
    out_dir = tmp_path / "orchestrator" / "artifacts" / "validate" / KEY[:16]
    dispatch = Dispatch("run-stage/run-stage-gpu", store, digests, store.output_uri(f"validate/{KEY[:16]}"))
    request = StageRequest(
        module="validate", config=validate.Config().model_dump(mode="json"), inputs=inputs, out_dir=str(out_dir), key=KEY
    )

    result = dispatch.run(request)

    (sent,) = child_runs.requests
    assert sent.inputs == inputs, "the request still names the orchestrator's paths"
    assert all(url.startswith("file://") and "/exchange/inputs/" in url for url in sent.exchange.inputs.values())
    assert result.metrics["passed"] == 1.0
    # The result names the orchestrator's paths, and they hold the files the child wrote.
    assert Path(result.outputs["report"]).is_relative_to(out_dir) and Path(result.outputs["report"]).is_file()
    assert json.loads((out_dir / "result.json").read_text())["key"] == KEY
    assert (out_dir / ORIGIN_FILE).read_text() == sent.exchange.out
    assert list(child_runs.scratch.iterdir()) == [], "the child cleans its scratch up"


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


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"exchange_uri": "s3://bucket/x"}, "execution.exchange_uri is set, but execution.mode is in_process"),
        ({"mode": "deployments", "exchange_uri": "s4://bucket/x"}, "unknown storage protocol 's4'"),
        ({"mode": "deployments", "exchange_uri": "bucket/x"}, "String should match pattern"),
    ],
)
def test_a_bad_exchange_uri_is_refused_naming_it(execution, message):
    with pytest.raises(ValidationError, match=message):
        ExecutionConfig.model_validate(execution)


@pytest.mark.parametrize(
    ("basepath", "message"),
    [("file:///tmp/results", "must be a shared store URL"), ("posttrain/results", "protocol ''"), ("s4://b/results", "protocol 's4'")],
)
def test_result_storage_refuses_a_store_other_pods_cannot_reach(basepath, message, capsys):
    from flows.result_storage import main

    assert main([basepath]) == 2
    assert message in capsys.readouterr().err


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


@pytest.mark.slow
def test_a_chain_of_stages_passes_models_through_the_store(store, child_runs, tiny_base_model, tiny_data, tmp_path):
    """SFT then evaluate, each dispatched: the SFT model comes back as a loadable folder, and
    evaluate is handed it where SFT published it (not uploaded a second time)."""
    from components import evaluate, sft
    from components.modeling import load_model
    from tests.conftest import tiny_overrides

    def dispatched(module, cfg, inputs: dict[str, str], key: str):
        digests = {name: digest_path(path) for name, path in inputs.items()}
        relative = f"{module}/{key[:16]}"
        request = StageRequest(
            module=module, config=cfg.model_dump(mode="json"), inputs=inputs, out_dir=str(tmp_path / "artifacts" / relative), key=key
        )
        return Dispatch("run-stage/run-stage-gpu", store, digests, store.output_uri(relative)).run(request)

    sft_cfg = sft.Config(**{**tiny_overrides()["sft"], "max_steps": 2, "save_steps": 2})
    trained = dispatched("sft", sft_cfg, {"model": tiny_base_model, "sft": tiny_data["sft"]}, "b" * 64)
    assert Path(trained.outputs["model"]).is_relative_to(tmp_path / "artifacts" / "sft")
    load_model(trained.outputs["model"])  # a whole HF model folder came back

    eval_cfg = evaluate.Config(**{**tiny_overrides()["evaluate"], "limit": 4})
    scored = dispatched("evaluate", eval_cfg, {"model": trained.outputs["model"], "eval": tiny_data["eval"]}, "c" * 64)
    assert 0.0 <= scored.metrics["pass@1"] <= 1.0 and scored.metrics["n_problems"] == 4 and Path(scored.outputs["predictions"]).is_file()
    sent = child_runs.requests[-1].exchange.inputs
    assert sent["model"] == f"{store.output_uri('sft/' + 'b' * 16)}/model", "referenced where SFT published it"


# ---------------------------------------------------------------- checkpoints of a dispatched stage


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
    from tests.conftest import tiny_overrides
    from tests.test_components import stop_at

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
