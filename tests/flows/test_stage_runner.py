"""Stages dispatched as child flow runs (flows.stage_runner), exchanging artifacts through a store.

The store and the in-process stand-in for `run_deployment` are tests/flows/conftest.py's fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import validate
from components.artifacts import digest_path
from flows.artifact_exchange import ORIGIN_FILE
from flows.stage_runner import Dispatch, StageRequest
from tests.flows.conftest import KEY


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


def test_a_dispatched_stage_that_outlives_its_timeout_fails_naming_the_knob(monkeypatch, tmp_path):
    from contextlib import nullcontext
    from types import SimpleNamespace

    from flows.params import ExecutionConfig
    from flows.stage_runner import StageDispatchFailed, StageRequest, dispatch_for

    waited = {}

    def run_deployment(name, parameters, job_variables=None, timeout=None):
        waited.update(returned_after=timeout, deadline=job_variables["active_deadline_seconds"])
        return SimpleNamespace(name="slow-child", state=SimpleNamespace(is_final=lambda: False, is_completed=lambda: False, name="Running"))

    def follow(child, module, timeout):
        waited["followed_for"] = timeout
        return child  # still running when the wait ends

    monkeypatch.setattr("prefect.deployments.run_deployment", run_deployment)
    monkeypatch.setattr("flows.stage_runner.follow", follow)
    monkeypatch.setattr("flows.stage_runner.gpu_slots", lambda gpus, pool_size: nullcontext())
    execution = ExecutionConfig(mode="deployments", stage_timeout_seconds=3600, stage_timeouts={"sft": 120})
    dispatch = dispatch_for("sft", execution, {}, "sft/0000")
    request = StageRequest(module="sft", config={}, inputs={}, out_dir=str(tmp_path), key="0" * 64)
    with pytest.raises(
        StageDispatchFailed, match=r"sft: flow run slow-child .* still Running after 120 s \(execution.stage_timeout_seconds"
    ):
        dispatch.run(request)
    assert waited == {"returned_after": 0, "followed_for": 120, "deadline": 120}, "a bounded wait, and the Job's own deadline"
    assert dispatch_for("grpo", execution, {}, "grpo/0000").timeout == 3600, "stages without their own limit get stage_timeout_seconds"


@pytest.mark.slow
def test_the_dispatched_stages_log_is_relayed_into_the_orchestrators_and_the_wait_is_bounded(prefect_server, monkeypatch):
    """`follow` against a real Prefect API: a child flow run's log lines (more than a page) reach the
    orchestrator's log in order; a child that never ends is returned, still running, once the timeout passes."""
    import logging
    import time
    from datetime import UTC, datetime

    from prefect import flow, get_client
    from prefect.client.schemas.actions import LogCreate
    from prefect.states import Completed, Running

    from flows import stage_runner

    @flow(name="stand-in-child")
    def child():
        pass

    relayed = []

    class Catch(logging.Handler):
        def emit(self, record):
            relayed.append(record.getMessage())

    logger = logging.getLogger("relay-test")
    logger.addHandler(Catch())
    logger.setLevel(logging.DEBUG)
    monkeypatch.setattr(stage_runner, "_logger", lambda: logger)
    monkeypatch.setattr(stage_runner, "LOG_POLL_SECONDS", 0.2)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(child, state=Running())
        now = time.time()

        lines = [
            LogCreate(
                name="posttrain",
                level=logging.INFO,
                message=f"step {i}",
                timestamp=datetime.fromtimestamp(now + i / 1000, UTC),
                flow_run_id=run.id,
            )
            for i in range(250)
        ]
        client.create_logs(lines)
        time.sleep(1)  # the API writes logs asynchronously
        started = time.monotonic()
        still = stage_runner.follow(run, "sft", timeout=2)
        assert not still.state.is_final() and time.monotonic() - started < 30, "the wait ends at the timeout"
        client.set_flow_run_state(run.id, Completed(), force=True)
        ended = stage_runner.follow(run, "sft", timeout=60)
    assert ended.state.is_completed()
    messages = [m for m in relayed if m.startswith("[sft, flow run")]
    assert [m.rsplit("] ", 1)[1] for m in messages[:250]] == [f"step {i}" for i in range(250)], "in order, past the first page"
